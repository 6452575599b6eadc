use std::path::{Path, PathBuf};

/// Every location berthd touches, derived from data-root and exec-root in one place so that
/// tests can point a whole daemon at a temporary directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
}

impl Paths {
    pub fn new(data_root: impl Into<PathBuf>, exec_root: impl Into<PathBuf>) -> Paths {
        Paths {
            data_root: data_root.into(),
            exec_root: exec_root.into(),
        }
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
