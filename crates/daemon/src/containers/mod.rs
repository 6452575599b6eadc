//! Containers: the store, the persisted record, the lifecycle (one file per verb), and the
//! values inspect and stats report.

mod archive;
mod attach;
mod changes;
mod create;
mod exec;
mod exit;
mod extract;
pub(crate) mod fs;
mod health;
mod inspect;
mod io;
pub(crate) mod kill;
mod list;
mod logs;
mod mounts;
pub(crate) mod networks;
mod pause;
mod remove;
mod rename;
mod resize;
mod restart;
mod restore;
mod start;
pub mod state;
mod stop;
mod top;
pub(crate) mod validate;
pub(crate) mod wait;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use berth_model::{ContainerConfig, HostConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use archive::PathStat;
pub use changes::{Change, UpdateRequest};
pub use exec::{Exec, ExecConfig, ExecInspect};
pub use extract::{UNTAR_HELPER, untar_helper_main};
pub use fs::CgroupStats;
pub use health::{Health, HealthStatus, ProbeResult};
pub use inspect::{ContainerInspect, StatsSample};
pub use io::{OutputChunk, STDIN_QUEUE, StdinMsg, StreamKind};
pub use list::{ListOptions, Summary};
pub use logs::{LogLine, LogOptions};
pub use state::{State, Status};
pub(crate) use validate::parse_uint_list;
pub use validate::{InvalidConfig, ListError};

use crate::DaemonError;

/// Bumped when a container record's shape changes.
pub const RECORD_SCHEMA: u32 = 1;

/// What berthd keeps of a container, in `<data-root>/containers/<id>/config.v2.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    pub schema: u32,
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The image ID.
    pub image: String,
    pub state: State,
    pub restart_count: u64,
    pub has_been_started: bool,
    /// Stopped or killed by a user: restart policies leave it stopped.
    #[serde(default)]
    pub has_been_manually_stopped: bool,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// The OCI process of the last start, which execs derive from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<serde_json::Value>,
    /// The `cgroupsPath` of the last start: where its cgroup is, whatever the daemon's
    /// `--cgroup-parent` is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    /// Its networks (asked, and got while it runs) and published ports.
    #[serde(default)]
    pub network_settings: berth_model::NetworkSettings,
    /// Its mounts (binds, volumes, `--mount` tmpfs), as planned at create.
    #[serde(default)]
    pub mount_points: Vec<berth_volumes::MountPoint>,
}

/// A container and what berthd holds for it while it lives: its containerd handles, its
/// stdio, its execs.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Serialises lifecycle operations (start, stop, kill, remove) on this container.
    op: tokio::sync::Mutex<()>,
    /// Held by every write of the record, and by what changes the record and the store
    /// together (rename, removal): writes never interleave, the last one holds the latest
    /// state, and none lands after the removal. Taken before `inner` and the store's index.
    disk: Mutex<()>,
    /// Bumped on every state change; waiters watch it.
    changed: watch::Sender<u64>,
    io: Arc<io::Io>,
    /// Held by a health probe while it runs: one at a time, whichever monitor asked.
    probe: tokio::sync::Mutex<()>,
    /// Read-held by an exec from its check to its start's answer, write-held by a pause until
    /// the container is frozen: runc cannot finish starting an exec in a frozen container,
    /// and the shim then answers nothing (not even the resume) until it does.
    exec_gate: tokio::sync::RwLock<()>,
    /// Shared by the log's writer and its readers (followers see rotations through it).
    log_rotation: Arc<berth_logdriver::Rotation>,
}

#[derive(Debug)]
struct Inner {
    record: Record,
    ctr: Option<berth_containerd::Container>,
    task: Option<berth_containerd::Task>,
    /// Output copiers of the running task; done when its stdout and stderr closed.
    copiers: Option<tokio::task::JoinHandle<()>>,
    execs: Vec<String>,
    removed: bool,
    backoff: restart::Backoff,
    /// A start is between Tasks.Start and its `start` event: the exit waits for it, so
    /// `die` never comes before `start`.
    starting: bool,
    /// Its exit restarts nothing (a stop by restore without live-restore; the policy is
    /// applied at the daemon's start instead).
    restart_held: bool,
    /// The running health monitor's handle (dropping it stops the monitor).
    health_monitor: Option<health::Monitor>,
    /// Counts monitors started, so a result lands only from the current one.
    health_generation: u64,
}

impl Container {
    fn new(record: Record, dir: PathBuf) -> Container {
        Container {
            id: record.id.clone(),
            dir,
            io: Arc::new(io::Io::new(record.config.tty)),
            log_rotation: Arc::new(berth_logdriver::Rotation::new()),
            inner: Mutex::new(Inner {
                record,
                ctr: None,
                task: None,
                copiers: None,
                execs: Vec::new(),
                removed: false,
                backoff: restart::Backoff::default(),
                starting: false,
                restart_held: false,
                health_monitor: None,
                health_generation: 0,
            }),
            op: tokio::sync::Mutex::new(()),
            disk: Mutex::new(()),
            changed: watch::channel(0).0,
            probe: tokio::sync::Mutex::new(()),
            exec_gate: tokio::sync::RwLock::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the record as it is now.
    pub fn record(&self) -> Record {
        self.lock().record.clone()
    }

    pub fn name(&self) -> String {
        self.lock().record.name.clone()
    }

    pub fn state(&self) -> State {
        self.lock().record.state.clone()
    }

    /// What every event of this container carries: its labels, image and name.
    pub(crate) fn event_attributes(&self) -> BTreeMap<String, String> {
        let inner = self.lock();
        let r = &inner.record;
        let mut attrs = r.config.labels.clone();
        attrs.insert("image".into(), r.config.image.clone());
        attrs.insert("name".into(), r.name.clone());
        attrs
    }

    pub fn exec_ids(&self) -> Vec<String> {
        self.lock().execs.clone()
    }

    pub fn is_removed(&self) -> bool {
        self.lock().removed
    }

    /// Watches state changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Until no start is between Tasks.Start and its `start` event (at most `limit`).
    async fn wait_start_logged(&self, limit: std::time::Duration) {
        let mut rx = self.subscribe();
        let _ = tokio::time::timeout(limit, async {
            while self.lock().starting {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    fn disk_lock(&self) -> MutexGuard<'_, ()> {
        self.disk.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the record as it is now, atomically, under the container's record lock.
    fn persist(&self) -> Result<(), DaemonError> {
        let _disk = self.disk_lock();
        self.persist_locked()
    }

    /// `persist` for a caller holding the record lock. A removed container's record is gone
    /// with its folder and is not written again.
    fn persist_locked(&self) -> Result<(), DaemonError> {
        let record = {
            let inner = self.lock();
            if inner.removed {
                return Ok(());
            }
            inner.record.clone()
        };
        write_record(&self.dir, &record)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Modes of what a container's folder holds, as dockerd's: the folder 0710, the record
/// 0600, the json log 0640, and the files bind-mounted into the container (hostname, hosts,
/// resolv.conf) 0644 so that a non-root user inside can read them.
pub(crate) const DIR_MODE: u32 = 0o710;
pub(crate) const RECORD_MODE: u32 = 0o600;
pub(crate) const LOG_MODE: u32 = 0o640;
pub(crate) const MOUNTED_FILE_MODE: u32 = 0o644;

/// Writes `config.v2.json` whole: a temporary name of its own, fsync, rename.
pub(crate) fn write_record(dir: &Path, record: &Record) -> Result<(), DaemonError> {
    let path = dir.join("config.v2.json");
    let bytes = serde_json::to_vec(record).map_err(|e| DaemonError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    berth_images::files::write_atomic(&path, &bytes, RECORD_MODE)
        .map_err(|source| DaemonError::Io { path, source })
}

#[derive(Debug, Default)]
struct Index {
    by_id: BTreeMap<String, Arc<Container>>,
    /// Name (without `/`) → ID: the names of the containers, and those reserved by creates
    /// and renames in progress.
    names: BTreeMap<String, String>,
}

/// Every container, by ID and by name. Names are reserved and released here only, under
/// the one lock that also guards the IDs, so a name is never held by two containers nor
/// left held by a removed one.
#[derive(Debug, Default)]
pub struct Containers {
    index: RwLock<Index>,
}

impl Containers {
    /// Loads every container record under `dir` (those that fail to load are logged and
    /// skipped; a half-written record never replaced a whole one). The record is a
    /// container's commit point: a folder without one (a create cut short) and a removal cut
    /// short (`.removing-<id>`) are deleted.
    pub(crate) fn load(dir: &Path) -> Containers {
        let store = Containers::default();
        // The containers root is 0710, as dockerd's.
        if let Err(e) = berth_images::files::dir_with_mode(dir, DIR_MODE) {
            tracing::warn!(path = %dir.display(), error = %e, "cannot create the containers folder");
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return store;
        };
        for e in entries.flatten() {
            let path = e.path().join("config.v2.json");
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            if hidden || !path.exists() {
                tracing::info!(path = %e.path().display(), "removing an unfinished container folder");
                if let Err(err) = std::fs::remove_dir_all(e.path()) {
                    tracing::warn!(path = %e.path().display(), error = %err, "cannot remove it");
                }
                continue;
            }
            // Temporary files of record writes a crash cut short.
            for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                if berth_images::files::is_temporary(&f.file_name().to_string_lossy()) {
                    crate::log_io_cleanup(
                        "a temporary record",
                        &f.path(),
                        std::fs::remove_file(f.path()),
                    );
                }
            }
            let record: Option<Record> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            match record {
                Some(r) if r.schema == RECORD_SCHEMA => {
                    store.insert(Arc::new(Container::new(r, e.path())));
                }
                _ => {
                    tracing::warn!(path = %path.display(), "skipping an unreadable container record")
                }
            }
        }
        store
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a container under its name (reserved for it by a create, or read at load).
    fn insert(&self, c: Arc<Container>) {
        let name = c.name();
        let mut index = self.write();
        index.names.insert(name, c.id.clone());
        index.by_id.insert(c.id.clone(), c);
    }

    /// Reserves `name` for `id` (a container being created); the holder's ID if it is taken.
    fn reserve_name(&self, name: &str, id: &str) -> Result<(), String> {
        let mut index = self.write();
        if let Some(holder) = index.names.get(name) {
            return Err(holder.clone());
        }
        index.names.insert(name.to_string(), id.to_string());
        Ok(())
    }

    /// Releases `name` if `id` holds it.
    fn release_name(&self, name: &str, id: &str) {
        let mut index = self.write();
        if index.names.get(name).is_some_and(|holder| holder == id) {
            index.names.remove(name);
        }
    }

    /// Renames `c` to `new_name` (already validated): under the container's record lock the
    /// new name is reserved, the record written with it, and the old name released; a
    /// failed write gives the new name back. Returns the old name.
    fn rename(&self, c: &Arc<Container>, new_name: &str) -> Result<String, DaemonError> {
        let _disk = c.disk_lock();
        let old = c.name();
        if old == new_name {
            return Err(DaemonError::InvalidParameter(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        {
            let mut index = self.write();
            if !index.by_id.get(&c.id).is_some_and(|x| Arc::ptr_eq(x, c)) {
                // Removed while the request was on its way.
                return Err(DaemonError::NoSuchContainer(c.id.clone()));
            }
            if let Some(holder) = index.names.get(new_name) {
                return Err(state::Conflict::RenameInUse {
                    name: new_name.to_string(),
                    holder: holder.clone(),
                }
                .into());
            }
            index.names.insert(new_name.to_string(), c.id.clone());
        }
        c.lock().record.name = new_name.to_string();
        if let Err(e) = c.persist_locked() {
            c.lock().record.name = old;
            self.release_name(new_name, &c.id);
            return Err(e);
        }
        self.release_name(&old, &c.id);
        Ok(old)
    }

    /// Forgets the container `id` and every name it holds.
    fn remove(&self, id: &str) {
        let mut index = self.write();
        index.by_id.remove(id);
        index.names.retain(|_, holder| holder != id);
    }

    /// By full ID, name (with or without `/`), or unique ID prefix, as dockerd looks up.
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Container>, DaemonError> {
        let not_found = || DaemonError::NoSuchContainer(name_or_id.to_string());
        if name_or_id.is_empty() {
            return Err(not_found());
        }
        let index = self.read();
        let by_id = &index.by_id;
        if let Some(c) = by_id.get(name_or_id) {
            return Ok(c.clone());
        }
        let name = name_or_id.trim_start_matches('/');
        if let Some(id) = index.names.get(name)
            && let Some(c) = by_id.get(id)
        {
            return Ok(c.clone());
        }
        let mut matches = by_id
            .range(name_or_id.to_string()..)
            .take_while(|(k, _)| k.starts_with(name_or_id));
        match (matches.next(), matches.next()) {
            (Some((_, c)), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(DaemonError::InvalidParameter(format!(
                "multiple IDs found with provided prefix: {name_or_id}"
            ))),
            _ => Err(not_found()),
        }
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.read().by_id.values().cloned().collect()
    }
}

/// A new 64-hex ID.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    hex::encode(buf)
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            schema: RECORD_SCHEMA,
            id: id.into(),
            name: format!("n{id}"),
            created: now_rfc3339(),
            path: "true".into(),
            args: vec![],
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            image: "sha256:x".into(),
            state: State::new(),
            restart_count: 0,
            has_been_started: false,
            has_been_manually_stopped: false,
            log_path: String::new(),
            hostname_path: String::new(),
            hosts_path: String::new(),
            resolv_conf_path: String::new(),
            process: None,
            cgroups_path: None,
            network_settings: Default::default(),
            mount_points: Vec::new(),
        }
    }

    #[test]
    fn load_keeps_whole_containers_and_clears_unfinished_ones() {
        let d = tempfile::tempdir().unwrap();
        let whole = d.path().join("a");
        std::fs::create_dir(&whole).unwrap();
        write_record(&whole, &record("a")).unwrap();
        std::fs::write(whole.join(".config.v2.json.tmp-1-0"), "{\"Sche").unwrap();
        // A create cut short before its record, one cut short while writing it, a removal
        // cut short, and a record from another schema (kept on disk, not loaded).
        let no_record = d.path().join("b");
        std::fs::create_dir(&no_record).unwrap();
        std::fs::write(no_record.join("hostname"), "b").unwrap();
        let tmp_only = d.path().join("c");
        std::fs::create_dir(&tmp_only).unwrap();
        std::fs::write(tmp_only.join(".config.v2.json.tmp"), "{\"Sche").unwrap();
        let removing = d.path().join(".removing-e");
        std::fs::create_dir(&removing).unwrap();
        write_record(&removing, &record("e")).unwrap();
        let other = d.path().join("f");
        std::fs::create_dir(&other).unwrap();
        let mut r = record("f");
        r.schema = 99;
        write_record(&other, &r).unwrap();

        let store = Containers::load(d.path());
        let ids: Vec<String> = store.all().iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, ["a"]);
        assert!(
            !whole.join(".config.v2.json.tmp-1-0").exists(),
            "a temporary record a crash left is cleared"
        );
        assert!(store.get("na").is_ok(), "by name");
        assert!(!no_record.exists() && !tmp_only.exists() && !removing.exists());
        assert!(other.exists(), "an unknown schema is not destroyed");
    }

    #[test]
    fn concurrent_renames_and_a_removal_leave_names_consistent() {
        let d = tempfile::tempdir().unwrap();
        let store = Arc::new(Containers::default());
        let mut cs = Vec::new();
        for id in ["a", "b", "c"] {
            let dir = d.path().join(id);
            std::fs::create_dir(&dir).unwrap();
            let r = record(id);
            write_record(&dir, &r).unwrap();
            let c = Arc::new(Container::new(r, dir));
            store.insert(c.clone());
            cs.push(c);
        }
        let (a, b, c) = (cs[0].clone(), cs[1].clone(), cs[2].clone());
        let results = std::thread::scope(|s| {
            let mut renames_of_a = Vec::new();
            for i in 0..20 {
                let (store, a) = (store.clone(), a.clone());
                renames_of_a.push(s.spawn(move || store.rename(&a, &format!("a{i}"))));
            }
            let contested: Vec<_> = [b.clone(), c.clone()]
                .into_iter()
                .map(|x| {
                    let store = store.clone();
                    s.spawn(move || store.rename(&x, "shared").is_ok())
                })
                .collect();
            let a_ok = renames_of_a.into_iter().all(|h| h.join().unwrap().is_ok());
            let winners = contested
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|won| *won)
                .count();
            (a_ok, winners)
        });
        assert_eq!(
            results,
            (true, 1),
            "every rename of a; one winner of the shared name"
        );
        let final_a = a.name();
        let on_disk: Record =
            serde_json::from_slice(&std::fs::read(a.dir().join("config.v2.json")).unwrap())
                .unwrap();
        assert_eq!(on_disk.name, final_a);
        let held: Vec<String> = store
            .read()
            .names
            .iter()
            .filter(|(_, id)| *id == "a")
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(held, [final_a], "a holds its final name only");

        // A removal racing renames: no name of the removed container stays held.
        let renames = std::thread::scope(|s| {
            let handles: Vec<_> = (0..10)
                .map(|i| {
                    let (store, a) = (store.clone(), a.clone());
                    s.spawn(move || store.rename(&a, &format!("late{i}")))
                })
                .collect();
            store.remove("a");
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert!(
            renames
                .iter()
                .all(|r| matches!(r, Ok(_) | Err(DaemonError::NoSuchContainer(_))))
        );
        assert!(
            !store.read().names.values().any(|id| id == "a"),
            "{:?}",
            store.read().names
        );
        assert!(store.get("a").is_err());
    }
}
