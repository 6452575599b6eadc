//! Fuzzing of the daemon.json parser and the configuration builder (proptest): no input may
//! panic; every refusal is an error value. Raw bytes, arbitrary JSON, and JSON made of the
//! known keys with values of any type.

use proptest::prelude::*;
use serde_json::Value;

use crate::{DaemonConfig, FileConfig, Flags};

const KEYS: &[&str] = &[
    "debug",
    "log-level",
    "log-driver",
    "log-opts",
    "max-size",
    "live-restore",
    "default-runtime",
    "runtimes",
    "default-ulimits",
    "hosts",
    "group",
    "data-root",
    "exec-root",
    "pidfile",
    "containerd",
    "containerd-namespace",
    "cgroup-parent",
    "labels",
    "shutdown-timeout",
    "metrics-addr",
    "tls",
    "tlsverify",
    "bridge",
    "bip",
    "fixed-cidr",
    "default-address-pools",
    "base",
    "size",
    "mtu",
    "iptables",
    "icc",
    "ip-masq",
    "ip",
    "dns",
    "dns-search",
    "dns-opts",
    "runtimeArgs",
    "path",
    "Name",
    "Soft",
    "Hard",
    "nofile",
    "runc",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(KEYS).prop_map(|k| Value::String(k.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_string),
                        "\\PC{0,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn build(bytes: &[u8]) {
    if let Ok(file) = FileConfig::parse(bytes)
        && let Ok(flags) = <Flags as clap::Parser>::try_parse_from(["berthd"])
    {
        let _ = DaemonConfig::build(&flags, &file).map(|c| c.validate());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn raw_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        build(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(v in json()) {
        build(v.to_string().as_bytes());
    }

    #[test]
    fn known_keys_with_any_values_never_panic(
        entries in prop::collection::vec((prop::sample::select(KEYS), json()), 0..8)
    ) {
        let obj: serde_json::Map<String, Value> =
            entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        build(Value::Object(obj).to_string().as_bytes());
    }
}
