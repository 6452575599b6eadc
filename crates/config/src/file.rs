use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{AddressPool, ConfigError, RuntimeEntry, Ulimit};

/// daemon.json as written by the user: every key optional, named as dockerd's. `set` holds
/// the keys that were present, which reload rules ("replaced if the key is present") need.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    pub hosts: Option<Vec<String>>,
    pub group: Option<String>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub containerd: Option<String>,
    pub containerd_namespace: Option<String>,
    pub cgroup_parent: Option<String>,
    pub default_runtime: Option<String>,
    pub runtimes: Option<BTreeMap<String, RuntimeEntry>>,
    pub default_ulimits: Option<BTreeMap<String, Ulimit>>,
    pub live_restore: Option<bool>,
    pub log_level: Option<String>,
    /// The default log driver of new containers (not reloaded).
    pub log_driver: Option<String>,
    /// The default log driver's options (not reloaded).
    pub log_opts: Option<BTreeMap<String, String>>,
    pub debug: Option<bool>,
    pub metrics_addr: Option<String>,
    pub labels: Option<Vec<String>>,
    pub shutdown_timeout: Option<i64>,
    pub insecure_registries: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub max_concurrent_downloads: Option<i64>,
    pub max_concurrent_uploads: Option<i64>,
    pub max_download_attempts: Option<i64>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub fixed_cidr: Option<String>,
    pub default_address_pools: Option<Vec<AddressPool>>,
    pub mtu: Option<i64>,
    pub iptables: Option<bool>,
    pub ip6tables: Option<bool>,
    pub ip_forward: Option<bool>,
    pub ip_masq: Option<bool>,
    pub icc: Option<bool>,
    pub userland_proxy: Option<bool>,
    pub ip: Option<String>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_opts: Option<Vec<String>>,
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    #[serde(skip)]
    pub set: BTreeSet<String>,
}

/// The keys daemon.json may hold.
pub(crate) const KNOWN_KEYS: &[&str] = &[
    "hosts",
    "group",
    "data-root",
    "exec-root",
    "pidfile",
    "containerd",
    "containerd-namespace",
    "cgroup-parent",
    "default-runtime",
    "runtimes",
    "default-ulimits",
    "live-restore",
    "log-level",
    "log-driver",
    "log-opts",
    "debug",
    "metrics-addr",
    "labels",
    "shutdown-timeout",
    "insecure-registries",
    "registry-mirrors",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "bridge",
    "bip",
    "fixed-cidr",
    "default-address-pools",
    "mtu",
    "iptables",
    "ip6tables",
    "ip-forward",
    "ip-masq",
    "icc",
    "userland-proxy",
    "ip",
    "dns",
    "dns-search",
    "dns-opts",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
];

impl FileConfig {
    /// Parses daemon.json bytes: a UTF-8 BOM is skipped, an empty or all-white-space file is
    /// an empty config, unknown keys are one error naming all of them (sorted), and a value of
    /// the wrong type is an error naming its key.
    pub fn parse(bytes: &[u8]) -> Result<FileConfig, ConfigError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(FileConfig::default());
        }
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(ConfigError::Json)?;
        let serde_json::Value::Object(map) = value else {
            return Err(ConfigError::NotAnObject);
        };
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(ConfigError::UnknownKeys { keys: unknown });
        }
        let set = map.keys().cloned().collect();
        let mut config: FileConfig =
            serde_path_to_error::deserialize(serde_json::Value::Object(map)).map_err(|e| {
                ConfigError::InvalidValue {
                    key: e.path().to_string(),
                    reason: e.inner().to_string(),
                }
            })?;
        config.set = set;
        Ok(config)
    }

    /// Whether the file named this key.
    pub fn has(&self, key: &str) -> bool {
        self.set.contains(key)
    }
}

/// Reads and parses a configuration file. A missing file is `Ok(None)` when `explicit` is
/// false (the default path), and an error when the user named the file.
pub fn read_config_file(path: &Path, explicit: bool) -> Result<Option<FileConfig>, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    FileConfig::parse(&bytes)
        .map(Some)
        .map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = FileConfig::parse(br#"{"no-such-key": 1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the following directives don't match any configuration option: no-such-key"
        );
    }

    #[test]
    fn all_unknown_keys_are_named() {
        let err = FileConfig::parse(br#"{"debug": true, "zzz": 1, "aaa": 2}"#).unwrap_err();
        assert!(err.to_string().ends_with("aaa, zzz"), "{err}");
    }

    #[test]
    fn known_keys_parse() {
        let c = FileConfig::parse(
            br#"{"debug": true, "live-restore": true, "data-root": "/x",
                 "runtimes": {"alt": {"path": "/usr/bin/runc", "runtimeArgs": ["--debug"]}},
                 "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1, "Hard": 2}}}"#,
        )
        .unwrap();
        assert_eq!(c.debug, Some(true));
        assert!(c.has("runtimes") && !c.has("labels"));
        assert_eq!(
            c.runtimes.unwrap()["alt"].args.as_deref(),
            Some(&["--debug".to_string()][..])
        );
        assert_eq!(c.default_ulimits.unwrap()["nofile"].hard, 2);
    }

    #[test]
    fn networking_keys_parse() {
        let c = FileConfig::parse(
            br#"{"bridge": "br0", "fixed-cidr": "10.1.0.0/24", "mtu": 1400,
                 "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}],
                 "iptables": false, "ip6tables": true, "ip-forward": false, "ip-masq": false,
                 "icc": true, "userland-proxy": false, "ip": "127.0.0.1",
                 "dns": ["1.1.1.1"], "dns-search": ["example.com"], "dns-opts": ["ndots:2"]}"#,
        )
        .unwrap();
        assert_eq!(c.bridge.as_deref(), Some("br0"));
        assert_eq!(c.mtu, Some(1400));
        assert_eq!(
            c.default_address_pools.as_deref(),
            Some(
                &[AddressPool {
                    base: "10.10.0.0/16".to_string(),
                    size: 24
                }][..]
            )
        );
        assert_eq!(c.iptables, Some(false));
        assert_eq!(c.dns_opts, Some(vec!["ndots:2".to_string()]));
        assert!(c.has("dns-search") && c.has("userland-proxy") && !c.has("bip"));
        // dockerd's names only: the flag's singular is not a file key.
        for json in [
            r#"{"dns-opt": ["ndots:2"]}"#,
            r#"{"default-address-pool": []}"#,
        ] {
            let err = FileConfig::parse(json.as_bytes()).unwrap_err();
            assert!(
                matches!(err, ConfigError::UnknownKeys { .. }),
                "{json}: {err}"
            );
        }
        for (json, path) in [
            (
                r#"{"default-address-pools": [{"base": "10.0.0.0/8"}]}"#,
                "size",
            ),
            (
                r#"{"default-address-pools": [{"base": "10.0.0.0/8", "size": 300}]}"#,
                "default-address-pools[0].size",
            ),
            (
                r#"{"default-address-pools": [{"base": "10.0.0.0/8", "size": 8, "x": 1}]}"#,
                "x",
            ),
            (r#"{"mtu": "1500"}"#, "mtu"),
            (r#"{"iptables": "false"}"#, "iptables"),
            (r#"{"dns": "1.1.1.1"}"#, "dns"),
        ] {
            let err = FileConfig::parse(json.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(path), "{json}: {err}");
        }
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = FileConfig::parse(br#"{"debug": "yes"}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("invalid value for debug:"), "{text}");
        let err = FileConfig::parse(br#"{"runtimes": {"x": {"path": 3}}}"#).unwrap_err();
        assert!(err.to_string().contains("runtimes.x.path"), "{err}");
    }

    #[test]
    fn unknown_runtime_field_is_refused() {
        let err = FileConfig::parse(br#"{"runtimes": {"x": {"pth": "/bin/true"}}}"#).unwrap_err();
        assert!(err.to_string().contains("pth"), "{err}");
    }

    #[test]
    fn bom_and_blank_files() {
        assert_eq!(FileConfig::parse(b"  \n").unwrap(), FileConfig::default());
        let c = FileConfig::parse(b"\xEF\xBB\xBF{\"debug\": false}").unwrap();
        assert_eq!(c.debug, Some(false));
    }

    #[test]
    fn broken_json_and_non_objects() {
        assert!(matches!(
            FileConfig::parse(b"{ \"runtimes\": "),
            Err(ConfigError::Json(_))
        ));
        assert!(matches!(
            FileConfig::parse(b"[1]"),
            Err(ConfigError::NotAnObject)
        ));
    }

    #[test]
    fn missing_default_file_is_fine_missing_explicit_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("daemon.json");
        assert!(read_config_file(&p, false).unwrap().is_none());
        let err = read_config_file(&p, true).unwrap_err();
        assert!(err.to_string().contains("daemon.json"), "{err}");
        std::fs::write(&p, r#"{"bogus": 1}"#).unwrap();
        let err = read_config_file(&p, false).unwrap_err().to_string();
        assert!(err.contains("unable to configure the daemon with file") && err.contains("bogus"));
    }
}
