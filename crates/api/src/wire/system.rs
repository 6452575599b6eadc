//! `/version`, `/info`, `/events` and `/system/df`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use berth_daemon::events::Event;
use berth_daemon::{DiskUsage, RuntimeInfo, SystemInfo, SystemVersion};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{MAX_API_VERSION, MIN_API_VERSION};

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Platform {
    pub name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Component {
    pub name: String,
    pub version: String,
    pub details: BTreeMap<String, String>,
}

/// `GET /version`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub platform: Platform,
    pub components: Vec<Component>,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    pub build_time: String,
}

impl From<SystemVersion> for Version {
    fn from(v: SystemVersion) -> Version {
        let components = v
            .components
            .into_iter()
            .map(|c| {
                let mut details = c.details;
                if c.name == "Engine" {
                    // `docker version` prints the Server block from these.
                    details.insert("ApiVersion".into(), MAX_API_VERSION.to_string());
                    details.insert("MinAPIVersion".into(), MIN_API_VERSION.to_string());
                    details.insert("GitCommit".into(), v.git_commit.clone());
                    details.insert("GoVersion".into(), v.compiler.clone());
                    details.insert("Os".into(), "linux".into());
                    details.insert("Arch".into(), v.arch.clone());
                    details.insert("KernelVersion".into(), v.kernel_version.clone());
                    details.insert("Experimental".into(), "false".into());
                    details.insert("BuildTime".into(), String::new());
                }
                Component {
                    name: c.name,
                    version: c.version,
                    details,
                }
            })
            .collect();
        Version {
            platform: Platform {
                name: "berth".into(),
            },
            components,
            version: v.version,
            api_version: MAX_API_VERSION.to_string(),
            min_api_version: MIN_API_VERSION.to_string(),
            git_commit: v.git_commit,
            go_version: v.compiler,
            os: "linux".into(),
            arch: v.arch,
            kernel_version: v.kernel_version,
            build_time: String::new(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Plugins {
    pub volume: Vec<String>,
    pub network: Vec<String>,
    pub authorization: Option<Vec<String>>,
    pub log: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Commit {
    #[serde(rename = "ID")]
    pub id: String,
    pub expected: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexInfo {
    pub name: String,
    pub mirrors: Vec<String>,
    pub secure: bool,
    pub official: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryConfig {
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    pub index_configs: BTreeMap<String, IndexInfo>,
    pub mirrors: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Swarm {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    pub local_node_state: String,
    pub control_available: bool,
    pub error: String,
    pub remote_managers: Option<Vec<String>>,
}

/// A `/proc/sys` flag that reads `1`.
fn proc_flag(path: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| s.trim() == "1")
}

/// `GET /info`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: u64,
    pub containers_running: u64,
    pub containers_paused: u64,
    pub containers_stopped: u64,
    pub images: u64,
    pub driver: String,
    pub driver_status: Vec<[String; 2]>,
    pub plugins: Plugins,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    pub pids_limit: bool,
    pub kernel_memory: bool,
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    pub bridge_nf_iptables: bool,
    pub bridge_nf_ip6tables: bool,
    pub debug: bool,
    #[serde(rename = "NFd")]
    pub nfd: u64,
    pub oom_kill_disable: bool,
    pub n_goroutines: u64,
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub n_events_listener: u64,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    pub index_server_address: String,
    pub registry_config: RegistryConfig,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    pub generic_resources: Option<Vec<String>>,
    pub docker_root_dir: String,
    pub http_proxy: String,
    pub https_proxy: String,
    pub no_proxy: String,
    pub name: String,
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub server_version: String,
    pub runtimes: BTreeMap<String, RuntimeInfo>,
    pub default_runtime: String,
    pub swarm: Swarm,
    pub live_restore_enabled: bool,
    pub isolation: String,
    pub init_binary: String,
    pub containerd_commit: Commit,
    pub runc_commit: Commit,
    pub init_commit: Commit,
    pub security_options: Vec<String>,
    pub warnings: Vec<String>,
}

impl From<SystemInfo> for Info {
    fn from(i: SystemInfo) -> Info {
        let config = &i.snapshot.config;
        let mut security_options = Vec::new();
        if i.host.apparmor {
            security_options.push("name=apparmor".to_string());
        }
        if i.host.seccomp {
            security_options.push("name=seccomp,profile=builtin".to_string());
        }
        if i.host.cgroup.version == "2" {
            security_options.push("name=cgroupns".to_string());
        }
        let mut warnings = Vec::new();
        if !i.host.cgroup.swap_limit {
            warnings.push("WARNING: No swap limit support".to_string());
        }
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let containerd_commit = i.containerd.map(|c| c.revision).unwrap_or_default();
        let runc_commit = i.runc.map(|(_, c)| c).unwrap_or_default();
        Info {
            id: i.id,
            containers: i.containers_running + i.containers_paused + i.containers_stopped,
            containers_running: i.containers_running,
            containers_paused: i.containers_paused,
            containers_stopped: i.containers_stopped,
            images: i.images,
            driver: "overlay2".into(),
            driver_status: vec![["Backing Filesystem".into(), i.backing_filesystem]],
            plugins: Plugins {
                volume: vec![],
                network: vec!["bridge".into(), "host".into(), "null".into()],
                authorization: None,
                log: vec!["json-file".into()],
            },
            memory_limit: i.host.cgroup.memory_limit,
            swap_limit: i.host.cgroup.swap_limit,
            cpu_cfs_period: i.host.cgroup.cpu_cfs,
            cpu_cfs_quota: i.host.cgroup.cpu_cfs,
            cpu_shares: i.host.cgroup.cpu_shares,
            cpu_set: i.host.cgroup.cpuset,
            pids_limit: i.host.cgroup.pids_limit,
            ipv4_forwarding: i.host.ipv4_forwarding,
            // cgroup v1 has kernel memory accounting; the bridge netfilter hooks as the
            // kernel has them now.
            kernel_memory: i.host.cgroup.version == "1",
            kernel_memory_tcp: i.host.cgroup.version == "1",
            bridge_nf_iptables: proc_flag("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            bridge_nf_ip6tables: proc_flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
            debug: config.debug,
            nfd: i.open_fds,
            oom_kill_disable: i.host.cgroup.oom_kill_disable,
            n_goroutines: i.tasks,
            system_time: rfc3339(i.system_time),
            logging_driver: i.snapshot.config.log_driver.clone(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: i.host.cgroup.version.into(),
            n_events_listener: 0,
            kernel_version: i.host.kernel_version,
            operating_system: i.host.operating_system,
            os_version: i.host.os_version,
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            index_server_address: "https://index.docker.io/v1/".into(),
            registry_config: RegistryConfig {
                insecure_registry_cidrs: vec!["127.0.0.0/8".into()],
                index_configs: BTreeMap::from([(
                    "docker.io".to_string(),
                    IndexInfo {
                        name: "docker.io".into(),
                        mirrors: vec![],
                        secure: true,
                        official: true,
                    },
                )]),
                mirrors: vec![],
            },
            ncpu: i.ncpu,
            mem_total: i.host.mem_total,
            generic_resources: None,
            docker_root_dir: config.data_root.display().to_string(),
            http_proxy: env("HTTP_PROXY"),
            https_proxy: env("HTTPS_PROXY"),
            no_proxy: env("NO_PROXY"),
            name: i.name,
            labels: config.labels.clone(),
            experimental_build: false,
            server_version: i.server_version,
            runtimes: i.snapshot.runtimes.info().clone(),
            default_runtime: i.snapshot.runtimes.default_name().to_string(),
            swarm: Swarm {
                node_id: String::new(),
                node_addr: String::new(),
                local_node_state: "inactive".into(),
                control_available: false,
                error: String::new(),
                remote_managers: None,
            },
            live_restore_enabled: config.live_restore,
            isolation: String::new(),
            init_binary: String::new(),
            containerd_commit: Commit {
                id: containerd_commit.clone(),
                expected: containerd_commit,
            },
            runc_commit: Commit {
                id: runc_commit.clone(),
                expected: runc_commit,
            },
            init_commit: Commit {
                id: String::new(),
                expected: String::new(),
            },
            security_options,
            warnings,
        }
    }
}

/// One event as dockerd sends it, with the pre-1.22 `status`/`id`/`from` fields for container
/// and image events.
pub(crate) fn event(e: &Event) -> Value {
    let mut v = json!({
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.actor_id, "Attributes": e.attributes},
        "scope": "local",
        "time": e.time_nano.div_euclid(1_000_000_000),
        "timeNano": e.time_nano,
    });
    if matches!(e.kind, "container" | "image") {
        v["status"] = e.action.clone().into();
        v["id"] = e.actor_id.clone().into();
        if let Some(from) = e.attributes.get("image") {
            v["from"] = from.clone().into();
        }
    }
    v
}

/// `GET /system/df`: images, containers and their sizes (no volumes or build cache in berth).
pub(crate) fn disk_usage(usage: &DiskUsage) -> Value {
    let images: Vec<_> = usage
        .images
        .iter()
        .map(|u| {
            let mut v = super::images::summary(&u.image);
            v["Containers"] = u.containers.into();
            v["SharedSize"] = u.shared_size.into();
            if v.get("VirtualSize").is_none() {
                v["VirtualSize"] = v["Size"].clone();
            }
            v
        })
        .collect();
    let containers: Vec<_> = usage
        .containers
        .iter()
        .map(|u| super::containers::summary(&u.summary, Some((u.size_rw, u.size_root_fs))))
        .collect();
    let secs =
        |t: i64| rfc3339(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64));
    let build_cache: Vec<Value> = usage
        .build_cache
        .iter()
        .map(|r| {
            json!({
                "ID": r.id,
                "Parents": null,
                "Type": "regular",
                "Description": r.description,
                "InUse": false,
                "Shared": r.shared,
                "Size": r.size,
                "CreatedAt": secs(r.created_at),
                "LastUsedAt": secs(r.last_used_at),
                "UsageCount": r.usage_count,
            })
        })
        .collect();
    let builder_size: u64 = usage.build_cache.iter().map(|r| r.size).sum();
    json!({
        "LayersSize": usage.layers_size,
        "BuilderSize": builder_size,
        "Images": images,
        "Containers": containers,
        "Volumes": usage
            .volumes
            .iter()
            .map(|u| super::volumes::with_usage(&u.volume, u.size, u.ref_count))
            .collect::<Vec<_>>(),
        "BuildCache": build_cache,
    })
}

/// RFC 3339 with nanoseconds in UTC, as Go formats `time.Time`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_908_743, 855_737_746);
        assert_eq!(rfc3339(t), "2026-11-28T23:32:23.855737746Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000000Z");
    }
}
