//! The engine: what it holds (config store, images, containers, execs, containerd, host
//! facts, the events ring) and the services every operation uses.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_config::Paths;
use berth_containerd::{Client, RpcCounter};
use berth_images::ImageStore;

use crate::{ConfigStore, DaemonError, HostFacts, Snapshot};

/// The engine. One per berthd; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Daemon {
    pub(crate) store: ConfigStore,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) containers: crate::containers::Containers,
    pub(crate) execs:
        std::sync::RwLock<std::collections::BTreeMap<String, Arc<crate::containers::Exec>>>,
    /// Read at start and at each reload.
    pub(crate) host: arc_swap::ArcSwap<crate::MachineHost>,
    pub(crate) apparmor: crate::apparmor::AppArmor,
    pub(crate) containerd: Client,
    pub(crate) paths: Paths,
    pub(crate) engine_id: String,
    pub(crate) runc: Option<(String, String)>,
    pub(crate) events: crate::events::Events,
    /// Set when berthd stops: exits then restart nothing.
    pub(crate) shutting_down: std::sync::atomic::AtomicBool,
    /// The engine itself, for the tasks it spawns from `&self` (health monitors); set by
    /// `spawn_event_loop`, without which those tasks could not see their execs end.
    pub(crate) me: std::sync::OnceLock<std::sync::Weak<Daemon>>,
    /// Networking, once `open_networks` has set it up (never in engines without it: tests
    /// without root, where only `none` and `host` exist).
    pub(crate) networks: std::sync::OnceLock<Arc<berth_network::Networks>>,
    /// The local volume driver's store.
    pub(crate) volumes: Arc<berth_volumes::VolumeStore>,
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
        let volumes = Arc::new(berth_volumes::VolumeStore::open(paths.volumes_dir())?);
        for c in containers.all() {
            for mp in &c.record().mount_points {
                if mp.kind == berth_volumes::MountKind::Volume && !mp.name.is_empty() {
                    volumes.add_ref(&mp.name, &c.id);
                }
            }
        }
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
            runc: crate::system::runc_version(),
            events: Default::default(),
            shutting_down: Default::default(),
            me: Default::default(),
            networks: Default::default(),
            volumes,
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
            (
                "insecure-registries".to_string(),
                serde_json::to_string(&c.insecure_registries).unwrap_or_default(),
            ),
            (
                "registry-mirrors".to_string(),
                serde_json::to_string(&c.registry_mirrors).unwrap_or_default(),
            ),
            (
                "max-concurrent-downloads".to_string(),
                c.max_concurrent_downloads.to_string(),
            ),
            (
                "max-concurrent-uploads".to_string(),
                c.max_concurrent_uploads.to_string(),
            ),
            (
                "max-download-attempts".to_string(),
                c.max_download_attempts.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/engine-id");
        let a = engine_id(&p).unwrap();
        assert_eq!(a.len(), 36);
        assert_eq!(engine_id(&p).unwrap(), a);
    }
}
