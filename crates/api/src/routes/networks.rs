//! `/networks/...`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use berth_daemon::{Daemon, IpamEntry, Network, NetworkCreateRequest, NetworkView};
use berth_model::{EndpointSettings, nullable};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::common::no_content;
use crate::query::{Filters, Query, glob};
use crate::{ApiError, body, wire};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfigBody {
    #[serde(deserialize_with = "nullable")]
    subnet: String,
    #[serde(rename = "IPRange", deserialize_with = "nullable")]
    ip_range: String,
    #[serde(deserialize_with = "nullable")]
    gateway: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamBody {
    #[serde(deserialize_with = "nullable")]
    driver: String,
    #[serde(deserialize_with = "nullable")]
    config: Vec<IpamConfigBody>,
    options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    driver: String,
    internal: bool,
    attachable: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamBody>,
    #[serde(deserialize_with = "nullable")]
    options: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    #[serde(deserialize_with = "nullable")]
    container: String,
    endpoint_config: Option<EndpointSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DisconnectBody {
    #[serde(deserialize_with = "nullable")]
    container: String,
}

/// Whether a network passes `docker network ls`'s filters.
fn passes(f: &Filters, n: &Network) -> bool {
    let any = |key: &str, hit: &dyn Fn(&str) -> bool| {
        let v = f.values(key);
        v.is_empty() || v.iter().any(|x| hit(x))
    };
    let predefined = matches!(n.name.as_str(), "bridge" | "host" | "none");
    any("name", &|x| n.name.contains(x) || glob(x, &n.name))
        && any("id", &|x| n.id.starts_with(x))
        && any("driver", &|x| n.driver == x)
        && any("scope", &|x| x == "local")
        && any("type", &|x| match x {
            "custom" => !predefined,
            "builtin" => predefined,
            _ => false,
        })
        && f.values("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
            None => n.labels.contains_key(l),
        })
}

pub(crate) async fn list(State(d): State<Arc<Daemon>>, q: Query) -> Result<Response, ApiError> {
    let f = q.filters()?;
    f.only(&["name", "id", "driver", "scope", "type", "label", "dangling"])?;
    let dangling = f.bool("dangling")?;
    let views: Vec<NetworkView> = d.network_list();
    let out: Vec<_> = views
        .iter()
        .filter(|v| passes(&f, &v.network))
        .filter(|v| match dangling {
            None => true,
            Some(want) => {
                let predefined = matches!(v.network.name.as_str(), "bridge" | "host" | "none");
                (!predefined && v.members.is_empty()) == want
            }
        })
        .map(|v| wire::networks::network(v, false))
        .collect();
    Ok(Json(out).into_response())
}

pub(crate) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let v = d.network_inspect(&id)?;
    Ok(Json(wire::networks::network(&v, true)).into_response())
}

pub(crate) async fn create(
    State(d): State<Arc<Daemon>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: CreateBody = body::parse(&body)?;
    if b.name.is_empty() {
        return Err(ApiError::bad_request("network name is required"));
    }
    let ipam = b.ipam.unwrap_or_default();
    let req = NetworkCreateRequest {
        name: b.name,
        driver: b.driver,
        internal: b.internal,
        attachable: b.attachable,
        enable_ipv6: b.enable_ipv6.unwrap_or(false),
        ipam_driver: ipam.driver,
        ipam_options: ipam.options,
        ipam_config: ipam
            .config
            .into_iter()
            .map(|c| IpamEntry {
                subnet: c.subnet,
                ip_range: c.ip_range,
                gateway: c.gateway,
            })
            .collect(),
        options: b.options,
        labels: b.labels,
    };
    let id = d.network_create(req).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warning": ""}))).into_response())
}

pub(crate) async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    d.network_remove(&id).await?;
    Ok(no_content())
}

pub(crate) async fn connect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: ConnectBody = body::parse(&body)?;
    d.network_connect(&id, &b.container, b.endpoint_config.unwrap_or_default())
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn disconnect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: DisconnectBody = body::parse(&body)?;
    d.network_disconnect(&id, &b.container).await?;
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn prune(State(d): State<Arc<Daemon>>, q: Query) -> Result<Response, ApiError> {
    let f = q.filters()?;
    f.only(&["label", "label!", "until"])?;
    let until = match f.values("until").first() {
        None => None,
        Some(u) => Some(
            Query::parse(&format!("t={u}"))
                .and_then(|q| q.time("t"))?
                .ok_or_else(|| ApiError::bad_request(format!("invalid filter 'until={u}'")))?,
        ),
    };
    let labels = f.values("label").to_vec();
    let not_labels = f.values("label!").to_vec();
    let keep = move |n: &Network| {
        let has = |l: &String| match l.split_once('=') {
            Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
            None => n.labels.contains_key(l),
        };
        let created = humantime::parse_rfc3339_weak(n.created.trim_end_matches('Z')).ok();
        !labels.iter().all(has)
            || not_labels.iter().any(has)
            || until.is_some_and(|u| created.is_some_and(|c| c > u))
    };
    let deleted = d.network_prune(&keep).await;
    Ok(Json(json!({"NetworksDeleted": deleted})).into_response())
}
