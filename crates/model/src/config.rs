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
    /// `--health-*`, or the image's `HEALTHCHECK`; `Test: ["NONE"]` turns it off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
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

/// `Config.Healthcheck`: how the daemon probes a container. Durations are in nanoseconds;
/// 0 (left out on the wire, as dockerd's `omitempty`) means the default; `null` (docker-py,
/// so Compose v1, sends `"StartPeriod": null`) is 0 too, as Go's decoder leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` (inherit the image's), `["NONE"]`, `["CMD", argv...]` or `["CMD-SHELL", command]`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
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
    // Networking.
    /// `-p`: `"80/tcp"` → the host addresses and ports it is published on.
    #[serde(deserialize_with = "nullable")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`: every exposed port on an ephemeral host port.
    pub publish_all_ports: bool,
    /// `--link name[:alias]` (the default bridge's legacy links).
    pub links: Option<Vec<String>>,
    /// The list fields the client sent as `[]`: inspect shows those as `[]` and the other
    /// empty ones as `null`, as dockerd's Go does with empty and nil slices. berth's own
    /// record; the API leaves it out of inspect.
    #[serde(
        rename = "BerthEmptyLists",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub empty_lists: Vec<String>,
    /// The fields berth keeps without acting on them (`ConsoleSize`, `Isolation`,
    /// `VolumeDriver`, `CgroupnsMode`...): echoed in inspect as the client sent them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
    // Volumes.
    /// `--mount`: bind, volume and tmpfs mounts.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// `--volumes-from NAME[:ro|:rw]`.
    #[serde(deserialize_with = "nullable")]
    pub volumes_from: Vec<String>,
    /// `--volume-driver`: the driver of the volumes `-v` creates.
    #[serde(deserialize_with = "nullable")]
    pub volume_driver: String,
}

/// One `HostConfig.Mounts` entry (`--mount type=volume,src=v,dst=/data`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    #[serde(rename = "Type", deserialize_with = "nullable")]
    pub typ: String,
    #[serde(deserialize_with = "nullable")]
    pub source: String,
    #[serde(deserialize_with = "nullable")]
    pub target: String,
    pub read_only: bool,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub consistency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

/// `Mount.BindOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub propagation: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub non_recursive: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub create_mountpoint: bool,
}

/// `Mount.VolumeOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<DriverConfig>,
    /// A folder inside the volume to mount instead of its root (API 1.45+).
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub subpath: String,
}

/// `VolumeOptions.DriverConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverConfig {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
}

/// `Mount.TmpfsOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// One host side of a published port (`127.0.0.1:8080`); ports are strings on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    #[serde(deserialize_with = "nullable")]
    pub host_ip: String,
    #[serde(deserialize_with = "nullable")]
    pub host_port: String,
}

/// `EndpointSettings.IPAMConfig` (`--ip`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointIpamConfig {
    #[serde(
        rename = "IPv4Address",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
    #[serde(
        rename = "IPv6Address",
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_address: String,
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "Option::is_none")]
    pub link_local_ips: Option<Vec<String>>,
}

/// A container's place on one network: what was asked (aliases, `--ip`) and, while it runs,
/// what it got. Docker's `EndpointSettings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    pub links: Option<Vec<String>>,
    pub aliases: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    pub mac_address: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "NetworkID", deserialize_with = "nullable")]
    pub network_id: String,
    #[serde(rename = "EndpointID", deserialize_with = "nullable")]
    pub endpoint_id: String,
    #[serde(deserialize_with = "nullable")]
    pub gateway: String,
    #[serde(rename = "IPAddress", deserialize_with = "nullable")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway", deserialize_with = "nullable")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address", deserialize_with = "nullable")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    /// API 1.44+; left out when unset, as older daemons have no such key.
    #[serde(rename = "DNSNames", skip_serializing_if = "Option::is_none")]
    pub dns_names: Option<Vec<String>>,
}

/// What a container's networking is: its networks (asked, and while it runs, got), its
/// published ports and its sandbox. Docker's `NetworkSettings` without the deprecated
/// top-level copies (the API adds those).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    /// Network name → endpoint.
    #[serde(deserialize_with = "nullable")]
    pub networks: BTreeMap<String, EndpointSettings>,
    /// `"80/tcp"` → host sides (`null`: exposed, not published).
    #[serde(deserialize_with = "nullable")]
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    #[serde(rename = "SandboxID", deserialize_with = "nullable")]
    pub sandbox_id: String,
    #[serde(deserialize_with = "nullable")]
    pub sandbox_key: String,
}

/// `NetworkingConfig` of a create request: the networks to join, by name or ID, with their
/// endpoint settings (API 1.44+ sends every `--network` here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
}

/// One entry of inspect's `Mounts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub typ: String,
    /// The volume's name (volumes only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    /// The volume's driver (volumes only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
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
        // docker-py (Compose v1) sends a healthcheck's unset durations as null.
        let hc: HealthConfig = serde_json::from_str(
            r#"{"Test": ["CMD", "true"], "Interval": 1000000000, "Timeout": null, "Retries": 3, "StartPeriod": null}"#,
        )
        .unwrap();
        assert_eq!(
            (hc.interval, hc.timeout, hc.start_period, hc.retries),
            (1_000_000_000, 0, 0, 3)
        );
    }

    #[test]
    fn healthchecks_leave_out_what_is_unset() {
        let c: ContainerConfig = serde_json::from_str(
            r#"{"Healthcheck":{"Test":["CMD-SHELL","test -f /tmp/ok"],"Interval":1000000000,"Retries":2,"Timeout":0}}"#,
        )
        .unwrap();
        let h = c.healthcheck.clone().unwrap();
        assert_eq!((h.interval, h.retries, h.timeout), (1_000_000_000, 2, 0));
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v["Healthcheck"],
            serde_json::json!({"Test":["CMD-SHELL","test -f /tmp/ok"],"Interval":1000000000,"Retries":2})
        );
        let none = serde_json::to_value(ContainerConfig::default()).unwrap();
        assert!(none.get("Healthcheck").is_none());
        let c: ContainerConfig = serde_json::from_str(r#"{"Healthcheck":{"Test":null}}"#).unwrap();
        assert!(c.healthcheck.unwrap().test.is_empty());
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(serde_json::from_str::<HostConfig>(r#"{"Memory": "lots"}"#).is_err());
    }
}
