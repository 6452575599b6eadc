use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_config::Paths;
use berth_containerd::{Client, ContainerdVersion, RpcCounter};
use berth_images::ImageStore;

use crate::{ConfigStore, DaemonError, HostFacts, Snapshot, backing_filesystem};

/// One entry of `Components` in `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    pub details: BTreeMap<String, String>,
}

/// What `GET /version` reports.
#[derive(Debug, Clone)]
pub struct SystemVersion {
    pub version: String,
    pub git_commit: String,
    pub compiler: String,
    pub kernel_version: String,
    /// Go-style architecture name, as Docker clients expect ("amd64").
    pub arch: String,
    pub components: Vec<ComponentVersion>,
}

/// What `GET /info` reports, as facts; the API layer gives it Docker's shape.
#[derive(Debug, Clone)]
pub struct SystemInfo {
    pub id: String,
    pub name: String,
    pub containers_running: u64,
    pub containers_paused: u64,
    pub containers_stopped: u64,
    pub images: u64,
    pub host: HostFacts,
    pub ncpu: usize,
    pub open_fds: u64,
    pub tasks: u64,
    pub system_time: SystemTime,
    pub backing_filesystem: String,
    pub snapshot: Arc<Snapshot>,
    pub containerd: Option<ContainerdVersion>,
    pub runc: Option<(String, String)>,
    pub server_version: String,
}

/// The engine. One per berthd; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Daemon {
    store: ConfigStore,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) containers: crate::containers::Containers,
    pub(crate) execs:
        std::sync::RwLock<std::collections::BTreeMap<String, Arc<crate::containers::Exec>>>,
    /// Read at start and at each reload.
    host: arc_swap::ArcSwap<crate::MachineHost>,
    apparmor: crate::apparmor::AppArmor,
    containerd: Client,
    paths: Paths,
    engine_id: String,
    runc: Option<(String, String)>,
    events: crate::events::Events,
    /// Set when berthd stops: exits then restart nothing.
    pub(crate) shutting_down: std::sync::atomic::AtomicBool,
}

impl Daemon {
    /// Builds the engine over a config store and a containerd client. `host_root` is the
    /// host's `/` (a prepared folder in tests): host facts, cgroups, procfs and the host files
    /// containers copy are found under it (`Paths::host`).
    pub fn new(
        store: ConfigStore,
        containerd: Client,
        host_root: impl Into<PathBuf>,
    ) -> Result<Daemon, DaemonError> {
        let snapshot = store.load();
        let paths = snapshot
            .config
            .paths()
            .with_host(berth_config::HostPaths::under(host_root));
        let engine_id = engine_id(&paths.engine_id())?;
        let images = Arc::new(ImageStore::open(paths.images_dir())?);
        let containers = crate::containers::Containers::load(&paths.containers_dir());
        Ok(Daemon {
            store,
            images,
            containers,
            execs: Default::default(),
            host: arc_swap::ArcSwap::from_pointee(crate::MachineHost::read(&paths.host)),
            apparmor: crate::apparmor::AppArmor::new(
                &paths.host.root,
                paths.host.root.join("sbin/apparmor_parser"),
            ),
            containerd,
            paths,
            engine_id,
            runc: runc_version(),
            events: Default::default(),
            shutting_down: Default::default(),
        })
    }

    /// The current configuration snapshot; load it once per operation.
    pub fn config(&self) -> Arc<Snapshot> {
        self.store.load()
    }

    /// Re-reads the configuration file and swaps in a new snapshot, and reads the host
    /// again; on a configuration error nothing changes.
    pub fn reload(&self) -> Result<Arc<Snapshot>, DaemonError> {
        let snapshot = self.store.reload()?;
        self.host
            .store(Arc::new(crate::MachineHost::read(&self.paths.host)));
        let c = &snapshot.config;
        let hostname = HostFacts::read(&self.paths.host).hostname;
        let attrs = BTreeMap::from([
            ("debug".to_string(), c.debug.to_string()),
            (
                "default-runtime".to_string(),
                snapshot.runtimes.default_name().to_string(),
            ),
            (
                "labels".to_string(),
                serde_json::to_string(&c.labels).unwrap_or_default(),
            ),
            ("live-restore".to_string(), c.live_restore.to_string()),
            ("name".to_string(), hostname),
            (
                "runtimes".to_string(),
                snapshot
                    .runtimes
                    .info()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            (
                "shutdown-timeout".to_string(),
                c.shutdown_timeout.to_string(),
            ),
        ]);
        self.events.log(crate::events::Event::new(
            "daemon",
            "reload",
            &self.engine_id,
            attrs,
        ));
        Ok(snapshot)
    }

    /// The event ring and broadcast behind `docker events`.
    pub fn events(&self) -> &crate::events::Events {
        &self.events
    }

    /// Logs a container event: its labels, image and name, and `extra`, as attributes.
    pub(crate) fn container_event(
        &self,
        c: &crate::containers::Container,
        action: &str,
        extra: &[(&str, String)],
    ) {
        let mut attrs = c.event_attributes();
        attrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.events
            .log(crate::events::Event::new("container", action, &c.id, attrs));
    }

    /// Logs an image event; `name` is the reference it concerns, if any.
    pub(crate) fn image_event(&self, action: &str, id: &str, name: Option<&str>) {
        let attrs = name
            .map(|n| BTreeMap::from([("name".to_string(), n.to_string())]))
            .unwrap_or_default();
        self.events
            .log(crate::events::Event::new("image", action, id, attrs));
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn containerd(&self) -> &Client {
        &self.containerd
    }

    /// containerd RPC counts by method.
    pub fn rpc_counter(&self) -> &RpcCounter {
        self.containerd.counter()
    }

    /// Engine, containerd and runc versions. Asks containerd (one Version RPC, with a short
    /// timeout); a containerd that does not answer is left out of `components`.
    pub async fn version(&self) -> SystemVersion {
        let host = HostFacts::read(&self.paths.host);
        let mut components = vec![ComponentVersion {
            name: "Engine".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            details: BTreeMap::new(),
        }];
        if let Some(c) = self.containerd_version().await {
            components.push(ComponentVersion {
                name: "containerd".to_string(),
                version: c.version,
                details: BTreeMap::from([("GitCommit".to_string(), c.revision)]),
            });
        }
        if let Some((version, commit)) = &self.runc {
            components.push(ComponentVersion {
                name: "runc".to_string(),
                version: version.clone(),
                details: BTreeMap::from([("GitCommit".to_string(), commit.clone())]),
            });
        }
        SystemVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: env!("BERTH_GIT_COMMIT").to_string(),
            compiler: env!("BERTH_RUSTC_VERSION").to_string(),
            kernel_version: host.kernel_version,
            arch: go_arch(std::env::consts::ARCH).to_string(),
            components,
        }
    }

    /// Everything `docker info` prints, read now from the machine and the config snapshot.
    pub async fn info(&self) -> SystemInfo {
        let snapshot = self.config();
        let host = HostFacts::read(&self.paths.host);
        let states: Vec<crate::State> = self.containers.all().iter().map(|c| c.state()).collect();
        SystemInfo {
            id: self.engine_id.clone(),
            name: host.hostname.clone(),
            containers_running: states.iter().filter(|s| s.running && !s.paused).count() as u64,
            containers_paused: states.iter().filter(|s| s.paused).count() as u64,
            containers_stopped: states.iter().filter(|s| !s.running).count() as u64,
            images: self.images.list().len() as u64,
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count() as u64)
                .unwrap_or(0),
            tasks: tokio::runtime::Handle::try_current()
                .map(|h| h.metrics().num_alive_tasks() as u64)
                .unwrap_or(0),
            system_time: SystemTime::now(),
            backing_filesystem: backing_filesystem(&snapshot.config.data_root),
            host,
            containerd: self.containerd_version().await,
            runc: self.runc.clone(),
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            snapshot,
        }
    }

    /// At start: loads the default AppArmor profile when the host supports AppArmor. A
    /// failure is logged; the containers that need the profile will fail to start.
    pub fn load_default_apparmor(&self) {
        if self.host.load().apparmor
            && let Err(e) = self.apparmor.ensure_default()
        {
            tracing::error!(error = %e, "cannot load the default AppArmor profile");
        }
    }

    /// Before a process runs under `profile`: the default profile is (re)loaded if the kernel
    /// lost it.
    pub(crate) fn ensure_apparmor(&self, profile: Option<&str>) -> Result<(), DaemonError> {
        if self.host.load().apparmor && profile == Some(crate::apparmor::DEFAULT_PROFILE) {
            self.apparmor.ensure_default()?;
        }
        Ok(())
    }

    /// The host as container specs see it.
    pub fn host_facts(&self) -> Arc<crate::MachineHost> {
        self.host.load_full()
    }

    async fn containerd_version(&self) -> Option<ContainerdVersion> {
        match tokio::time::timeout(Duration::from_secs(2), self.containerd.version()).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "containerd did not report its version");
                None
            }
            Err(_) => {
                tracing::warn!("containerd did not answer Version within 2s");
                None
            }
        }
    }
}

/// Docker clients name architectures as Go does.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The engine's stable ID: read from `path`, or made (random, UUID-shaped) and saved there.
fn engine_id(path: &Path) -> Result<String, DaemonError> {
    let io = |source| DaemonError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(id) = std::fs::read_to_string(path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // 0600 and whole, as dockerd's `engine-id`.
    berth_images::files::write_atomic(path, id.as_bytes(), 0o600).map_err(io)?;
    Ok(id)
}

/// `runc --version`: ("1.1.5+ds1", "1.1.5+ds1-1+deb12u1").
fn runc_version() -> Option<(String, String)> {
    let out = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    parse_runc_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_runc_version(text: &str) -> Option<(String, String)> {
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("runc version "))?
        .trim()
        .to_string();
    let commit = text
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .unwrap_or("")
        .trim()
        .to_string();
    Some((version, commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_version_is_parsed() {
        let text = "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n";
        assert_eq!(
            parse_runc_version(text),
            Some(("1.1.5+ds1".into(), "1.1.5+ds1-1+deb12u1".into()))
        );
        assert_eq!(parse_runc_version("nonsense"), None);
    }

    #[test]
    fn engine_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/engine-id");
        let a = engine_id(&p).unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(engine_id(&p).unwrap(), a);
    }

    #[test]
    fn go_arch_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("riscv64"), "riscv64");
    }
}
