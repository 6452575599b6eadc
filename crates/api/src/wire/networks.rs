//! Networks on the wire: `docker network ls` / `inspect` shapes.

use berth_daemon::NetworkView;
use serde_json::{Map, Value, json};

/// One network as `GET /networks` and `GET /networks/{id}` show it; `Containers` is filled
/// only by inspect (dockerd's list leaves it `{}`).
pub(crate) fn network(v: &NetworkView, with_containers: bool) -> Value {
    let n = &v.network;
    let mut containers = Map::new();
    if with_containers {
        for m in &v.members {
            containers.insert(
                m.id.clone(),
                json!({
                    "Name": m.name,
                    "EndpointID": m.endpoint_id,
                    "MacAddress": m.mac_address,
                    "IPv4Address": m.ipv4_address,
                    "IPv6Address": "",
                }),
            );
        }
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {
            "Driver": n.ipam_driver,
            "Options": n.ipam_options,
            "Config": n.ipam_config,
        },
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}
