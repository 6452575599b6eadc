//! Fuzzing of what a client sends (proptest): request bodies for create, exec, update and
//! commit, query strings and filters, and the pure functions they feed (the OCI spec
//! builder, user resolution, signals, image references, event times). No input may panic;
//! every refusal is an error value the API turns into a 4xx.

use proptest::prelude::*;
use serde_json::Value;

use crate::query::Query;

const KEYS: &[&str] = &[
    "Image",
    "Cmd",
    "Entrypoint",
    "Env",
    "User",
    "WorkingDir",
    "Hostname",
    "Labels",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "AttachStdout",
    "StopSignal",
    "StopTimeout",
    "Healthcheck",
    "HostConfig",
    "Binds",
    "NetworkMode",
    "AutoRemove",
    "Runtime",
    "Ulimits",
    "Name",
    "Soft",
    "Hard",
    "Memory",
    "MemorySwap",
    "PidsLimit",
    "CapAdd",
    "CapDrop",
    "Privileged",
    "SecurityOpt",
    "ReadonlyRootfs",
    "Init",
    "RestartPolicy",
    "MaximumRetryCount",
    "Tmpfs",
    "GroupAdd",
    "CpuShares",
    "NanoCpus",
    "CpusetCpus",
    "Detach",
    "DetachKeys",
    "ExposedPorts",
    "Volumes",
    "NetworkingConfig",
    "Devices",
    "Sysctls",
    "OomKillDisable",
    "ShmSize",
];

const WORDS: &[&str] = &[
    "ALL",
    "NET_ADMIN",
    "CAP_SYS_ADMIN",
    "seccomp=unconfined",
    "apparmor=unconfined",
    "no-new-privileges",
    "label=disable",
    "nofile",
    "nproc",
    "/tmp:/data:ro",
    "/a:/b:rw,z",
    "none",
    "host",
    "always",
    "on-failure",
    "1000:1000",
    "root",
    "nobody",
    "SIGTERM",
    "9",
    "/run:size=1m",
    "runc",
    "-1",
    "0",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-5i64..70000).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(WORDS).prop_map(|w| Value::String(w.to_string())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        4 => prop::sample::select(KEYS).prop_map(str::to_string),
                        1 => "\\PC{0,8}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec((prop::sample::select(KEYS), json()), 0..10).prop_map(|kv| {
            let o: serde_json::Map<String, Value> =
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            Value::Object(o).to_string().into_bytes()
        }),
        prop::collection::vec(any::<u8>(), 0..128),
    ]
}

/// What the daemon does with a parsed create request before touching the machine.
fn validate_create((config, host): (berth_model::ContainerConfig, berth_model::HostConfig)) {
    let _ = berth_oci::parse_security_opts(&host.security_opt);
    for bind in &host.binds {
        let _ = berth_oci::parse_bind(bind);
    }
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
    });
    if let Some(s) = &config.stop_signal {
        let _ = berth_daemon::parse_signal(s);
    }
    let _ = berth_images::Reference::parse(&config.image);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn create_bodies_never_panic(b in body()) {
        if let Ok(parsed) = crate::routes::containers::parse_create(&b) {
            validate_create(parsed);
        }
    }

    #[test]
    fn exec_update_and_commit_bodies_never_panic(b in body()) {
        let _ = crate::routes::containers::parse_body::<berth_daemon::ExecConfig>(&b);
        let _ = crate::routes::containers::parse_body::<berth_daemon::UpdateRequest>(&b);
        let _ = crate::routes::containers::parse_body::<berth_model::ContainerConfig>(&b);
    }

    #[test]
    fn queries_and_filters_never_panic(q in "\\PC{0,64}", f in json()) {
        if let Ok(parsed) = Query::parse(&q) {
            let _ = parsed.filters();
            let _ = parsed.resize_dims();
            let _ = parsed.bool("all");
        }
        let encoded = serde_urlencoded::to_string([("filters", f.to_string())]).unwrap_or_default();
        if let Ok(parsed) = Query::parse(&encoded) {
            let _ = parsed.filters();
        }
    }

    #[test]
    fn small_parsers_never_panic(s in "\\PC{0,40}") {
        let _ = berth_daemon::parse_signal(&s);
        let _ = berth_daemon::events::parse_timestamp(&s);
        let _ = berth_images::Reference::parse(&s);
        let _ = berth_oci::parse_bind(&s);
        let _ = berth_oci::parse_security_opts(std::slice::from_ref(&s));
        let _ = berth_config::Ulimit::parse(&s);
    }
}

#[test]
fn a_wrong_type_is_a_400_naming_the_field() {
    let parse = |b: &[u8]| crate::routes::containers::parse_create(b).unwrap_err();
    let e = parse(br#"{"Image": "x", "HostConfig": {"Memory": "lots"}}"#);
    assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
    assert!(e.message.contains("at HostConfig.Memory:"), "{}", e.message);
    assert!(parse(br#"{"Image": 5}"#).message.contains("at Image:"));
    assert!(
        parse(br#"{"Image": "x", "Env": [1]}"#)
            .message
            .contains("at Env[0]:")
    );
    assert!(parse(br#"[1]"#).message.contains("must be a JSON object"));
}
