//! Containers: the store, the persisted record, and the lifecycle (one file per verb).

mod archive;
mod changes;
mod create;
mod exec;
mod exit;
mod extract;
mod fs;
mod io;
pub(crate) mod lifecycle;
mod list;
mod logs;
mod restart;
mod restore;
mod start;
pub mod state;
mod validate;

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
pub use io::{OutputChunk, StdinMsg, StreamKind};
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
    /// Bumped on every state change; waiters watch it.
    changed: watch::Sender<u64>,
    io: Arc<io::Io>,
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
}

impl Container {
    fn new(record: Record, dir: PathBuf) -> Container {
        Container {
            id: record.id.clone(),
            dir,
            io: Arc::new(io::Io::new(record.config.tty)),
            inner: Mutex::new(Inner {
                record,
                ctr: None,
                task: None,
                copiers: None,
                execs: Vec::new(),
                removed: false,
                backoff: restart::Backoff::default(),
                starting: false,
            }),
            op: tokio::sync::Mutex::new(()),
            changed: watch::channel(0).0,
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

    /// Writes the record atomically (temporary name, fsync, rename).
    fn persist(&self) -> Result<(), DaemonError> {
        let record = self.record();
        write_record(&self.dir, &record)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

pub(crate) fn write_record(dir: &Path, record: &Record) -> Result<(), DaemonError> {
    let path = dir.join("config.v2.json");
    let io = |source| DaemonError::Io {
        path: path.clone(),
        source,
    };
    let bytes = serde_json::to_vec(record).map_err(|e| io(e.into()))?;
    let tmp = dir.join(".config.v2.json.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Every container, by ID and by name.
#[derive(Debug, Default)]
pub struct Containers {
    by_id: RwLock<BTreeMap<String, Arc<Container>>>,
    names: RwLock<BTreeMap<String, String>>,
}

impl Containers {
    /// Loads every container record under `dir` (those that fail to load are logged and
    /// skipped; a half-written record never replaced a whole one). The record is a
    /// container's commit point: a folder without one (a create cut short) and a removal cut
    /// short (`.removing-<id>`) are deleted.
    pub(crate) fn load(dir: &Path) -> Containers {
        let store = Containers::default();
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

    fn insert(&self, c: Arc<Container>) {
        let name = c.name();
        self.names
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, c.id.clone());
        self.by_id
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(c.id.clone(), c);
    }

    /// Reserves `name` for `id`; the holder's ID if it is taken.
    fn reserve_name(&self, name: &str, id: &str) -> Result<(), String> {
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(holder) = names.get(name) {
            return Err(holder.clone());
        }
        names.insert(name.to_string(), id.to_string());
        Ok(())
    }

    fn release_name(&self, name: &str) {
        self.names
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    fn remove(&self, id: &str) {
        let c = self
            .by_id
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if let Some(c) = c {
            let name = c.name();
            let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
            if names.get(&name).is_some_and(|i| i == id) {
                names.remove(&name);
            }
        }
    }

    /// By full ID, name (with or without `/`), or unique ID prefix, as dockerd looks up.
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Container>, DaemonError> {
        let not_found = || DaemonError::NoSuchContainer(name_or_id.to_string());
        if name_or_id.is_empty() {
            return Err(not_found());
        }
        let by_id = self.by_id.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = by_id.get(name_or_id) {
            return Ok(c.clone());
        }
        let name = name_or_id.trim_start_matches('/');
        if let Some(id) = self
            .names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
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
        self.by_id
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
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
        }
    }

    #[test]
    fn load_keeps_whole_containers_and_clears_unfinished_ones() {
        let d = tempfile::tempdir().unwrap();
        let whole = d.path().join("a");
        std::fs::create_dir(&whole).unwrap();
        write_record(&whole, &record("a")).unwrap();
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
        assert!(store.get("na").is_ok(), "by name");
        assert!(!no_record.exists() && !tmp_only.exists() && !removing.exists());
        assert!(other.exists(), "an unknown schema is not destroyed");
    }
}
