use std::collections::BTreeMap;

use berth_config::Ulimit;
use serde::{Deserialize, Serialize};

use crate::nullable;

/// A container's `Config` (what runs): Docker's names and shapes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    #[serde(deserialize_with = "nullable")]
    pub hostname: String,
    #[serde(deserialize_with = "nullable")]
    pub domainname: String,
    #[serde(deserialize_with = "nullable")]
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub image: String,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(deserialize_with = "nullable")]
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    pub on_build: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
}

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub maximum_retry_count: i64,
}

/// One entry of `HostConfig.Devices` (`--device /dev/fuse:/dev/fuse:rwm`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    #[serde(deserialize_with = "nullable")]
    pub path_on_host: String,
    #[serde(deserialize_with = "nullable")]
    pub path_in_container: String,
    #[serde(deserialize_with = "nullable")]
    pub cgroup_permissions: String,
}

/// `HostConfig.LogConfig` (`--log-driver`, `--log-opt`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type", deserialize_with = "nullable")]
    pub typ: String,
    #[serde(deserialize_with = "nullable")]
    pub config: BTreeMap<String, String>,
}

/// A container's `HostConfig` (what it may use).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    #[serde(deserialize_with = "nullable")]
    pub binds: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    #[serde(deserialize_with = "nullable")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub cap_drop: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub dns: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub dns_search: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub extra_hosts: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub group_add: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub ipc_mode: String,
    #[serde(deserialize_with = "nullable")]
    pub pid_mode: String,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "nullable")]
    pub security_opt: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub runtime: String,
    /// The container's parent cgroup, over the daemon's `--cgroup-parent`.
    #[serde(deserialize_with = "nullable")]
    pub cgroup_parent: String,
    pub shm_size: i64,
    pub oom_score_adj: i64,
    pub init: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    pub log_config: LogConfig,
    // Resources.
    pub cpu_shares: i64,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    #[serde(deserialize_with = "nullable")]
    pub cpuset_cpus: String,
    #[serde(deserialize_with = "nullable")]
    pub cpuset_mems: String,
    pub blkio_weight: u16,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub ulimits: Vec<Ulimit>,
    #[serde(deserialize_with = "nullable")]
    pub devices: Vec<DeviceMapping>,
}

/// `NetworkingConfig` of a create request (accepted, not interpreted yet).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, serde_json::Value>>,
}

/// One entry of inspect's `Mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub typ: String,
    pub source: String,
    pub destination: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_read_as_empty_and_unknown_fields_are_ignored() {
        let c: ContainerConfig = serde_json::from_str(
            r#"{"Env": null, "Cmd": ["echo"], "Labels": null, "Image": "x", "NewField": 1, "Tty": true}"#,
        )
        .unwrap();
        assert!(c.env.is_empty() && c.labels.is_empty() && c.tty);
        let h: HostConfig = serde_json::from_str(
            r#"{"Binds": null, "Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 2}], "PidsLimit": null, "Memory": 67108864}"#,
        )
        .unwrap();
        assert!(h.binds.is_empty());
        assert_eq!(h.ulimits[0].hard, 2);
        assert_eq!(h.pids_limit, None);
        assert_eq!(h.memory, 64 << 20);
        let h: HostConfig = serde_json::from_str(
            r#"{"Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}], "LogConfig": {"Type": "json-file", "Config": null}}"#,
        )
        .unwrap();
        assert_eq!(h.devices[0].path_on_host, "/dev/fuse");
        assert_eq!(h.log_config.typ, "json-file");
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(serde_json::from_str::<HostConfig>(r#"{"Memory": "lots"}"#).is_err());
    }
}
