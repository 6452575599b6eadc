use std::fs;
use std::path::{Path, PathBuf};

use berth_config::HostPaths;

/// What the cgroup file system offers containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupFacts {
    /// "1" or "2" (a hybrid v1 host with a unified mount is "1", as dockerd says).
    pub version: &'static str,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs: bool,
    pub cpu_shares: bool,
    pub cpuset: bool,
    pub pids_limit: bool,
    pub oom_kill_disable: bool,
    /// The CPUs and memory nodes containers may be given (`0-3`), empty when unknown.
    pub cpus: String,
    pub mems: String,
}

/// What a container's CPU settings are checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuFacts {
    /// CPUs this process may run on (Go's `runtime.NumCPU`), 0 when unknown.
    pub ncpu: usize,
    /// The cpuset lists of the cgroup root (`0-3`), empty when unknown.
    pub cpus: String,
    pub mems: String,
}

/// Facts about the machine, read from the host's files (`HostPaths`: `/`, `/proc` and
/// `/sys/fs/cgroup` in production, a prepared folder in tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub kernel_version: String,
    pub operating_system: String,
    pub os_version: String,
    pub hostname: String,
    pub mem_total: u64,
    /// CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`).
    pub ncpu: usize,
    pub cgroup: CgroupFacts,
    pub ipv4_forwarding: bool,
    pub seccomp: bool,
    pub apparmor: bool,
}

impl HostFacts {
    /// Reads every fact of `host`; a missing file gives the empty or false value.
    pub fn read(host: &HostPaths) -> HostFacts {
        let root = host.root.as_path();
        let at = |p: &str| root.join(p.trim_start_matches('/'));
        let text = |p: &str| fs::read_to_string(at(p)).unwrap_or_default();
        let proc = |p: &str| fs::read_to_string(host.proc_root.join(p)).unwrap_or_default();
        let os_release = {
            let etc = text("/etc/os-release");
            if etc.is_empty() {
                text("/usr/lib/os-release")
            } else {
                etc
            }
        };
        let os_field = |key: &str| {
            os_release
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map(|v| v.trim().trim_matches('"').to_string())
                .unwrap_or_default()
        };
        let mem_total = proc("meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0);
        let ncpu = proc("self/status")
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|v| cpu_list_len(v.trim()))
            .unwrap_or(0);
        HostFacts {
            ncpu,
            kernel_version: proc("sys/kernel/osrelease").trim().to_string(),
            operating_system: {
                let pretty = os_field("PRETTY_NAME");
                if pretty.is_empty() {
                    "Linux".to_string()
                } else {
                    pretty
                }
            },
            os_version: os_field("VERSION_ID"),
            hostname: proc("sys/kernel/hostname").trim().to_string(),
            mem_total,
            cgroup: cgroup_facts(&host.cgroup_root),
            ipv4_forwarding: proc("sys/net/ipv4/ip_forward").trim() == "1",
            seccomp: proc("self/status")
                .lines()
                .any(|l| l.starts_with("Seccomp:")),
            // systemd's `container` variable in berthd's own start-up environment, read under
            // the root like every other fact.
            apparmor: apparmor_supported(
                root,
                fs::read(at("/proc/self/environ"))
                    .unwrap_or_default()
                    .split(|b| *b == 0)
                    .any(|v| v.starts_with(b"container=")),
            ),
        }
    }
}

fn cgroup_facts(cg: &Path) -> CgroupFacts {
    let has = |p: &str| cg.join(p).exists();
    if has("cgroup.controllers") {
        let controllers = fs::read_to_string(cg.join("cgroup.controllers")).unwrap_or_default();
        let c = |name: &str| controllers.split_whitespace().any(|w| w == name);
        let read = |f: &str| {
            fs::read_to_string(cg.join(f))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        return CgroupFacts {
            cpus: read("cpuset.cpus.effective"),
            mems: read("cpuset.mems.effective"),
            version: "2",
            memory_limit: c("memory"),
            swap_limit: c("memory"),
            cpu_cfs: c("cpu"),
            cpu_shares: c("cpu"),
            cpuset: c("cpuset"),
            pids_limit: c("pids"),
            oom_kill_disable: false,
        };
    }
    CgroupFacts {
        version: "1",
        memory_limit: has("memory/memory.limit_in_bytes"),
        swap_limit: has("memory/memory.memsw.limit_in_bytes"),
        cpu_cfs: has("cpu/cpu.cfs_quota_us"),
        cpu_shares: has("cpu/cpu.shares"),
        cpuset: has("cpuset/cpuset.cpus"),
        pids_limit: has("pids/pids.max") || has("pids"),
        oom_kill_disable: has("memory/memory.oom_control"),
        cpus: fs::read_to_string(cg.join("cpuset/cpuset.cpus"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        mems: fs::read_to_string(cg.join("cpuset/cpuset.mems"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// How many CPUs a list such as `0-3,8` names (0 for a malformed list).
fn cpu_list_len(list: &str) -> usize {
    crate::containers::parse_uint_list(list, 0).map_or(0, |s| s.len())
}

/// containerd's four checks, in its order: the securityfs folder, no `container` variable
/// (set inside containers), `/sbin/apparmor_parser`, and the module enabled.
fn apparmor_supported(root: &Path, in_container: bool) -> bool {
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    at("/sys/kernel/security/apparmor").is_dir()
        && !in_container
        && at("/sbin/apparmor_parser").exists()
        && fs::read(at("/sys/module/apparmor/parameters/enabled"))
            .map(|b| b.len() > 1 && b[0] == b'Y')
            .unwrap_or(false)
}

/// The host as containers see it: read once at start and at each reload (the hostname
/// live).
#[derive(Debug, Clone)]
pub struct MachineHost {
    pub apparmor: bool,
    pub cgroup_v2: bool,
    pub bounding: std::collections::BTreeSet<String>,
    pub cpu: CpuFacts,
    /// The host's memory (`MemTotal`), the bound of a container's memory limit in stats.
    pub mem_total: u64,
    /// Where containers' cgroups are.
    pub cgroups: crate::Cgroups,
    proc_root: PathBuf,
}

impl MachineHost {
    pub fn read(host: &HostPaths) -> MachineHost {
        let facts = HostFacts::read(host);
        let cap_bnd = fs::read_to_string(host.proc_root.join("self/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapBnd:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(0);
        let cgroup_v2 = facts.cgroup.version == "2";
        MachineHost {
            apparmor: facts.apparmor,
            cgroup_v2,
            bounding: berth_oci::caps_from_mask(cap_bnd),
            cpu: CpuFacts {
                ncpu: facts.ncpu,
                cpus: facts.cgroup.cpus,
                mems: facts.cgroup.mems,
            },
            mem_total: facts.mem_total,
            cgroups: crate::Cgroups::read(host, cgroup_v2),
            proc_root: host.proc_root.clone(),
        }
    }
}

impl berth_oci::HostFacts for MachineHost {
    fn apparmor_supported(&self) -> bool {
        self.apparmor
    }
    fn cgroup_v2(&self) -> bool {
        self.cgroup_v2
    }
    fn bounding_caps(&self) -> std::collections::BTreeSet<String> {
        self.bounding.clone()
    }
    fn hostname(&self) -> String {
        fs::read_to_string(self.proc_root.join("sys/kernel/hostname"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }
}

/// The name dockerd gives the file system under `path` ("extfs", "xfs", ...).
pub fn backing_filesystem(path: &Path) -> String {
    use nix::sys::statfs::{self, statfs};
    let mut p: PathBuf = path.to_path_buf();
    // The data root may not exist yet on a first start: ask its nearest existing ancestor.
    while !p.exists() {
        if !p.pop() {
            break;
        }
    }
    let Ok(st) = statfs(&p) else {
        return "unknown".to_string();
    };
    let t = st.filesystem_type();
    let known = [
        (statfs::EXT4_SUPER_MAGIC, "extfs"),
        (statfs::XFS_SUPER_MAGIC, "xfs"),
        (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
        (statfs::TMPFS_MAGIC, "tmpfs"),
        (statfs::OVERLAYFS_SUPER_MAGIC, "overlayfs"),
        (statfs::NFS_SUPER_MAGIC, "nfs"),
    ];
    known
        .iter()
        .find(|(magic, _)| *magic == t)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| format!("<unknown {:#x}>", t.0))
}

impl MachineHost {
    /// The machine's CPU time in nanoseconds, as `docker stats` reports it: the first seven
    /// fields of `/proc/stat`'s `cpu` line (user to softirq), in 10 ms ticks; 0 when unreadable.
    pub fn system_cpu_ns(&self) -> u64 {
        fs::read_to_string(self.proc_root.join("stat"))
            .ok()
            .and_then(|s| {
                s.lines().next().map(|l| {
                    l.split_whitespace()
                        .skip(1)
                        .take(7)
                        .filter_map(|v| v.parse::<u64>().ok())
                        .sum::<u64>()
                        * 10_000_000
                })
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn reads_a_prepared_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "proc/sys/kernel/osrelease", "6.1.0-test\n");
        write(r, "proc/sys/kernel/hostname", "box\n");
        write(
            r,
            "proc/meminfo",
            "MemTotal:       1024 kB\nMemFree: 1 kB\n",
        );
        write(
            r,
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\n",
        );
        write(r, "proc/sys/net/ipv4/ip_forward", "0\n");
        write(
            r,
            "proc/self/status",
            "Name:\tberthd\nCpus_allowed_list:\t0-2,5\n",
        );
        write(r, "sys/fs/cgroup/cpuset/cpuset.cpus", "0-5\n");
        write(r, "sys/fs/cgroup/memory/memory.limit_in_bytes", "");
        write(r, "sys/fs/cgroup/pids/pids.max", "");
        write(r, "sys/fs/cgroup/unified/cgroup.controllers", "");
        let f = HostFacts::read(&HostPaths::under(r));
        assert_eq!(f.kernel_version, "6.1.0-test");
        assert_eq!(f.hostname, "box");
        assert_eq!(f.mem_total, 1024 * 1024);
        assert_eq!(f.operating_system, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(f.os_version, "12");
        assert_eq!(f.cgroup.version, "1", "hybrid counts as v1");
        assert_eq!((f.ncpu, f.cgroup.cpus.as_str()), (4, "0-5"));
        assert!(f.cgroup.memory_limit && f.cgroup.pids_limit && !f.cgroup.swap_limit);
        assert!(!f.ipv4_forwarding && !f.apparmor);
    }

    #[test]
    fn cgroup_v2_from_controllers() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        write(dir.path(), "sys/fs/cgroup/cpuset.cpus.effective", "0-1\n");
        write(dir.path(), "sys/fs/cgroup/cpuset.mems.effective", "0\n");
        let f = HostFacts::read(&HostPaths::under(dir.path()));
        assert_eq!(f.cgroup.version, "2");
        assert!(f.cgroup.memory_limit && f.cgroup.cpuset && f.cgroup.pids_limit);
        assert_eq!(
            (f.cgroup.cpus.as_str(), f.cgroup.mems.as_str()),
            ("0-1", "0")
        );
        assert_eq!(f.ncpu, 0, "no /proc/self/status: unknown");
    }

    #[test]
    fn apparmor_needs_all_four_checks() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("sys/kernel/security/apparmor")).unwrap();
        write(r, "sbin/apparmor_parser", "");
        write(r, "sys/module/apparmor/parameters/enabled", "Y\n");
        assert!(apparmor_supported(r, false));
        assert!(!apparmor_supported(r, true), "inside a container");
        write(r, "sys/module/apparmor/parameters/enabled", "N\n");
        assert!(!apparmor_supported(r, false), "module disabled");
        write(r, "sys/module/apparmor/parameters/enabled", "Y\n");
        fs::remove_file(r.join("sbin/apparmor_parser")).unwrap();
        assert!(!apparmor_supported(r, false), "no parser");
    }

    #[test]
    fn backing_filesystem_of_a_missing_path_uses_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let name = backing_filesystem(&dir.path().join("not/yet"));
        assert!(!name.is_empty() && name != "unknown", "{name}");
    }

    #[test]
    fn system_cpu_time_sums_seven_proc_stat_fields_in_ticks() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let host = MachineHost::read(&HostPaths::under(r));
        assert_eq!(host.system_cpu_ns(), 0, "unreadable is 0");
        write(
            r,
            "proc/stat",
            "cpu  1 2 3 4 5 6 7 100 100
cpu0 9 9 9
",
        );
        assert_eq!(host.system_cpu_ns(), 28 * 10_000_000);
    }
}
