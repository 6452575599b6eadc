use std::path::{Path, PathBuf};

/// Every location berthd touches, derived from data-root and exec-root in one place so that
/// tests can point a whole daemon at a temporary directory; the host's own files and file
/// systems are in `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub host: HostPaths,
}

/// What berthd reads or writes of the host outside its own roots: the host's `/` in
/// production, a prepared folder in tests (`HostPaths::under`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// Where host facts are read from (`/etc/os-release`, `/sys/kernel/security`, ...).
    pub root: PathBuf,
    /// The cgroup file system's mount (`/sys/fs/cgroup`): container cgroups, host facts.
    pub cgroup_root: PathBuf,
    /// procfs (`/proc`): host facts, `docker top`, processes left by a dead berthd.
    pub proc_root: PathBuf,
    /// The host's `/etc/hosts`, copied into `--network host` containers.
    pub etc_hosts: PathBuf,
    /// The host's `/etc/resolv.conf`, copied into every container.
    pub etc_resolv_conf: PathBuf,
}

impl HostPaths {
    /// Every host location under `root` (`/` gives the real ones).
    pub fn under(root: impl Into<PathBuf>) -> HostPaths {
        let root = root.into();
        HostPaths {
            cgroup_root: root.join("sys/fs/cgroup"),
            proc_root: root.join("proc"),
            etc_hosts: root.join("etc/hosts"),
            etc_resolv_conf: root.join("etc/resolv.conf"),
            root,
        }
    }

    /// `/proc/<pid>`.
    pub fn proc_pid(&self, pid: impl std::fmt::Display) -> PathBuf {
        self.proc_root.join(pid.to_string())
    }
}

impl Default for HostPaths {
    fn default() -> HostPaths {
        HostPaths::under("/")
    }
}

impl Paths {
    /// berthd's roots on the real host.
    pub fn new(data_root: impl Into<PathBuf>, exec_root: impl Into<PathBuf>) -> Paths {
        Paths {
            data_root: data_root.into(),
            exec_root: exec_root.into(),
            host: HostPaths::default(),
        }
    }

    /// The same roots over other host locations (tests).
    pub fn with_host(self, host: HostPaths) -> Paths {
        Paths { host, ..self }
    }

    /// Held locked for the daemon's life: one berthd per data-root.
    pub fn data_root_lock(&self) -> PathBuf {
        self.data_root.join("berthd.lock")
    }
    /// The engine's stable identity, shown as `ID` by `docker info`.
    pub fn engine_id(&self) -> PathBuf {
        self.data_root.join("engine-id")
    }
    /// Content-addressed runtime wrapper scripts.
    pub fn runtimes_dir(&self) -> PathBuf {
        self.data_root.join("runtimes")
    }
    /// Per-container state (config, logs).
    pub fn containers_dir(&self) -> PathBuf {
        self.data_root.join("containers")
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    /// Image and layer store.
    pub fn images_dir(&self) -> PathBuf {
        self.data_root.join("image")
    }
    /// The classic builder's own: `cache/` (step → image) and `tmp/` (contexts being built).
    pub fn builder_dir(&self) -> PathBuf {
        self.data_root.join("builder")
    }
    /// The local volume driver's volumes (`<name>/_data`).
    pub fn volumes_dir(&self) -> PathBuf {
        self.data_root.join("volumes")
    }
    /// Bind mounts of volumes' subpaths, per container, while it runs.
    pub fn subpaths_dir(&self, container_id: &str) -> PathBuf {
        self.exec_root.join("subpaths").join(container_id)
    }
    /// The managed containerd's persistent root.
    pub fn containerd_root(&self) -> PathBuf {
        self.data_root.join("containerd")
    }
    /// Everything volatile of the managed containerd: config, socket, state, pid file.
    pub fn containerd_exec_dir(&self) -> PathBuf {
        self.exec_root.join("containerd")
    }
    pub fn containerd_config(&self) -> PathBuf {
        self.containerd_exec_dir().join("containerd.toml")
    }
    pub fn containerd_socket(&self) -> PathBuf {
        self.containerd_exec_dir().join("containerd.sock")
    }
    pub fn containerd_debug_socket(&self) -> PathBuf {
        self.containerd_exec_dir().join("containerd-debug.sock")
    }
    pub fn containerd_state(&self) -> PathBuf {
        self.containerd_exec_dir().join("state")
    }
    pub fn containerd_pidfile(&self) -> PathBuf {
        self.containerd_exec_dir().join("containerd.pid")
    }
    pub fn containerd_log(&self) -> PathBuf {
        self.containerd_exec_dir().join("containerd.log")
    }
    /// runc's state root for every runc-compatible runtime (`RuncOptions.root`).
    pub fn runc_root(&self) -> PathBuf {
        self.exec_root.join("runtime-runc")
    }
    /// stdio FIFOs of containers and execs.
    pub fn fifo_dir(&self, container_id: &str) -> PathBuf {
        self.exec_root.join("fifo").join(container_id)
    }

    pub fn data_root(&self) -> &Path {
        &self.data_root
    }
    pub fn exec_root(&self) -> &Path {
        &self.exec_root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_default_to_the_real_host() {
        let h = Paths::new("/d", "/e").host;
        assert_eq!(h.cgroup_root, Path::new("/sys/fs/cgroup"));
        assert_eq!(h.proc_root, Path::new("/proc"));
        assert_eq!(h.proc_pid(42), Path::new("/proc/42"));
        assert_eq!(h.etc_hosts, Path::new("/etc/hosts"));
        assert_eq!(h.etc_resolv_conf, Path::new("/etc/resolv.conf"));
        let t = HostPaths::under("/tmp/h");
        assert_eq!(t.cgroup_root, Path::new("/tmp/h/sys/fs/cgroup"));
        assert_eq!(t.etc_resolv_conf, Path::new("/tmp/h/etc/resolv.conf"));
    }
}
