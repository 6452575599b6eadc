//! Fuzzing (proptest) of what the engine does with a request before it touches the machine:
//! create's checks as dockerd makes them, the OCI spec builder, user resolution, and the small
//! parsers of signals, event times, image references, binds, security options and ulimits.
//! No input may panic; every refusal is an error value. The API fuzzes its body parsing with
//! the same strategies (`testing::arbitrary`).

use berth_model::{ContainerConfig, HostConfig};
use proptest::prelude::*;
use serde_json::Value;

use crate::CpuFacts;
use crate::containers::validate;
use crate::testing::arbitrary::body;

/// A create body as the API reads it: Config fields at the top, `HostConfig` beside them.
fn create_request(b: &[u8]) -> Option<(ContainerConfig, HostConfig)> {
    let Ok(Value::Object(mut top)) = serde_json::from_slice::<Value>(b) else {
        return None;
    };
    let host = match top.remove("HostConfig") {
        None | Some(Value::Null) => HostConfig::default(),
        Some(h) => serde_json::from_value(h).ok()?,
    };
    top.remove("NetworkingConfig");
    Some((serde_json::from_value(Value::Object(top)).ok()?, host))
}

/// What the engine does with a parsed create request before touching the machine.
fn validate_create((config, host): (ContainerConfig, HostConfig)) {
    let cpu = CpuFacts {
        ncpu: 2,
        cpus: "0-1".into(),
        mems: "0".into(),
    };
    let _ = validate::container_config(&config);
    let _ = validate::host_config(&host, &cpu);
    let _ = validate::resources(&host, &cpu, false);
    let _ = berth_oci::parse_security_opts(&host.security_opt);
    let _ = berth_volumes::spec::plan(&[], Vec::new(), &host.binds, &host.mounts, "");
    let defaults = Default::default();
    let _ = berth_oci::merged_rlimits(&host.ulimits, &defaults);
    let _ = berth_oci::resources(&host);
    let user = berth_oci::resolve_user(
        &config.user,
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        "root:x:0:\napp:x:1000:\n",
        &host.group_add,
    )
    .unwrap_or_default();
    let facts = berth_oci::StaticHost {
        apparmor: true,
        cgroup_v2: false,
        bounding: berth_oci::DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .collect(),
        hostname: "h".into(),
    };
    let _ = berth_oci::build_spec(berth_oci::SpecInput {
        id: "0123456789ab",
        config: &config,
        host_config: &host,
        default_ulimits: &defaults,
        user: &user,
        host: &facts,
        etc_files: &[],
        cgroup_parent: "/berth",
        init_binary: None,
        netns: None,
        mounts: &[],
    });
    if let Some(s) = &config.stop_signal {
        let _ = crate::parse_signal(s);
    }
    let _ = berth_images::Reference::parse(&config.image);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn create_requests_never_panic(b in body()) {
        if let Some(parsed) = create_request(&b) {
            validate_create(parsed);
        }
    }

    #[test]
    fn small_parsers_never_panic(s in "\\PC{0,40}") {
        let _ = crate::parse_signal(&s);
        let _ = crate::events::parse_timestamp(&s);
        let _ = berth_images::Reference::parse(&s);
        let _ = berth_volumes::spec::parse_bind(&s, "");
        let _ = berth_volumes::spec::parse_volumes_from(&s);
        let _ = berth_oci::parse_security_opts(std::slice::from_ref(&s));
        let _ = berth_config::Ulimit::parse(&s);
    }
}
