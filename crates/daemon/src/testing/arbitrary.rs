//! proptest strategies for what clients send: JSON values built from Docker's field names
//! and typical words, and request bodies (objects of those fields, or arbitrary bytes).
//! Shared by the API's body fuzzing and the engine's.

use proptest::prelude::*;
use serde_json::Value;

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

pub fn json() -> impl Strategy<Value = Value> {
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

pub fn body() -> impl Strategy<Value = Vec<u8>> {
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
