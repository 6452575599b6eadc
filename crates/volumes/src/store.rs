//! The local driver's store: `<root>/<name>/_data` and `<root>/<name>/volume.json`, the
//! containers that use each volume, and the mounts of volumes made with driver options.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::VolumeError;
use crate::mount;

/// The one driver.
pub const DRIVER: &str = "local";
/// The label dockerd (API 1.42+) puts on anonymous volumes; prune looks for it.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
const META_FILE: &str = "volume.json";
const DATA_DIR: &str = "_data";
const SCHEMA: u32 = 1;

/// Docker's volume-name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// What is persisted of a volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Meta {
    schema: u32,
    name: String,
    driver: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
    created_at: String,
    #[serde(default)]
    anonymous: bool,
}

/// A volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// The driver options it was made with (`-o`).
    pub options: BTreeMap<String, String>,
    /// RFC 3339, whole seconds, UTC.
    pub created_at: String,
    pub anonymous: bool,
    /// Its `_data` folder on the host.
    pub mountpoint: PathBuf,
}

impl Volume {
    fn from_meta(m: Meta, root: &Path) -> Volume {
        Volume {
            mountpoint: root.join(&m.name).join(DATA_DIR),
            name: m.name,
            driver: m.driver,
            labels: m.labels,
            options: m.options,
            created_at: m.created_at,
            anonymous: m.anonymous,
        }
    }

    fn meta(&self) -> Meta {
        Meta {
            schema: SCHEMA,
            name: self.name.clone(),
            driver: self.driver.clone(),
            labels: self.labels.clone(),
            options: self.options.clone(),
            created_at: self.created_at.clone(),
            anonymous: self.anonymous,
        }
    }
}

/// What a create asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `None`: an anonymous volume (a container's), with a random 64-hex name; empty: a
    /// random name too, not anonymous (`docker volume create` with none).
    pub name: Option<String>,
    /// Empty: local.
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// A container that uses it from now on, recorded in the same step (so no prune in
    /// between finds it unused).
    pub user: Option<String>,
}

/// `docker volume ls`'s filters (each given value must match; `None`: not asked).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Substrings of the name, any of which matches.
    pub names: Vec<String>,
    pub drivers: Vec<String>,
    /// `key` or `key=value`; every one must match.
    pub labels: Vec<String>,
    /// Used by no container.
    pub dangling: Option<bool>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub names: Vec<String>,
    pub space_reclaimed: u64,
}

#[derive(Debug, Default)]
struct State {
    volumes: BTreeMap<String, Volume>,
    /// Volume → the containers whose mount points name it.
    refs: BTreeMap<String, BTreeSet<String>>,
    /// Volume → the running containers it is mounted for.
    active: BTreeMap<String, BTreeSet<String>>,
}

/// Every volume of the local driver.
#[derive(Debug)]
pub struct VolumeStore {
    root: PathBuf,
    state: Mutex<State>,
    /// Held by a copy-up from its emptiness check to its end: two containers starting on one
    /// empty volume fill it once.
    copying: Mutex<()>,
}

fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

fn random_name() -> Result<String, VolumeError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(VolumeError::io("/dev/urandom"))?;
    Ok(hex::encode(bytes))
}

/// Writes `bytes` to `path` whole: a temporary name, fsync, rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), VolumeError> {
    let tmp = path.with_extension("json.tmp");
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    r.map_err(VolumeError::io(path))
}

/// Bytes of the regular files under `dir`, walked by descriptor (a link in it is never
/// followed), without recursion.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(root) = berth_inroot::Root::open(dir) else {
        return 0;
    };
    let Ok(fd) = root.fd().try_clone_to_owned() else {
        return 0;
    };
    let Ok(mut walk) = berth_inroot::walk::Walk::new(fd, Path::new("")) else {
        return 0;
    };
    let mut total = 0;
    while let Some(item) = walk.next() {
        let Ok(item) = item else { continue };
        if item.meta.is_dir() {
            let _ = walk.descend(item);
        } else if item.meta.is_file() {
            total += item.meta.size;
        }
    }
    total
}

impl VolumeStore {
    /// Opens (making it if needed) the store at `root` and reads every volume in it. A
    /// folder without metadata (made by a create cut short, or by another engine) is a
    /// named local volume made when its folder was.
    pub fn open(root: impl Into<PathBuf>) -> Result<VolumeStore, VolumeError> {
        let root = root.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o701)
            .create(&root)
            .map_err(VolumeError::io(&root))?;
        let mut state = State::default();
        for e in std::fs::read_dir(&root)
            .map_err(VolumeError::io(&root))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !valid_name(&name) || !e.path().join(DATA_DIR).is_dir() {
                continue;
            }
            let meta = std::fs::read(e.path().join(META_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
                .filter(|m| m.name == name);
            let meta = meta.unwrap_or_else(|| Meta {
                schema: SCHEMA,
                name: name.clone(),
                driver: DRIVER.into(),
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                created_at: e
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                    .unwrap_or_else(|_| now_rfc3339()),
                anonymous: false,
            });
            state.volumes.insert(name, Volume::from_meta(meta, &root));
        }
        Ok(VolumeStore {
            root,
            state: Mutex::new(state),
            copying: Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the volumes are.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a volume, or returns the one of that name (then `false`).
    pub fn create(&self, opts: CreateOptions) -> Result<(Volume, bool), VolumeError> {
        let driver = if opts.driver.is_empty() {
            DRIVER.to_string()
        } else {
            opts.driver.clone()
        };
        // Only a container's volume with no name is anonymous; `docker volume create` with
        // none gets a random name but is not (dockerd labels only the former).
        let anonymous = opts.name.is_none();
        let name = match opts.name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => random_name()?,
        };
        if name.len() == 1 {
            return Err(VolumeError::InvalidOption {
                name,
                reason:
                    "volume name is too short, names should be at least two alphanumeric characters"
                        .into(),
            });
        }
        if !valid_name(&name) {
            return Err(VolumeError::InvalidName { name });
        }
        let mut state = self.lock();
        if let Some(v) = state.volumes.get(&name) {
            if v.driver != driver {
                return Err(VolumeError::DriverConflict {
                    name,
                    driver: v.driver.clone(),
                });
            }
            let v = v.clone();
            if let Some(u) = opts.user {
                state.refs.entry(name).or_default().insert(u);
            }
            return Ok((v, false));
        }
        if driver != DRIVER {
            return Err(VolumeError::UnknownDriver { driver });
        }
        for key in opts.options.keys() {
            if !mount::KNOWN_OPTIONS.contains(&key.as_str()) {
                return Err(VolumeError::InvalidOption {
                    name,
                    reason: format!("invalid option: \"{key}\""),
                });
            }
        }
        if opts.options.contains_key("size") {
            return Err(VolumeError::InvalidOption {
                name,
                reason: "quota size requested but no quota support".into(),
            });
        }
        if mount::needs_mount(&opts.options) {
            for key in ["type", "device"] {
                if opts.options.get(key).is_none_or(String::is_empty) {
                    return Err(VolumeError::InvalidOption {
                        name,
                        reason: format!("missing required option: \"{key}\""),
                    });
                }
            }
        }
        let mut labels = opts.labels;
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let dir = self.root.join(&name);
        let data = dir.join(DATA_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&data)
            .map_err(VolumeError::io(&data))?;
        let v = Volume {
            name: name.clone(),
            driver,
            labels,
            options: opts.options,
            created_at: now_rfc3339(),
            anonymous,
            mountpoint: data,
        };
        let bytes = serde_json::to_vec(&v.meta()).map_err(|e| VolumeError::Io {
            path: dir.join(META_FILE),
            source: e.into(),
        })?;
        if let Err(e) = write_atomic(&dir.join(META_FILE), &bytes) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        state.volumes.insert(name.clone(), v.clone());
        if let Some(u) = opts.user {
            state.refs.entry(name).or_default().insert(u);
        }
        tracing::info!(volume = %v.name, anonymous, "volume created");
        Ok((v, true))
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        self.lock()
            .volumes
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound { name: name.into() })
    }

    /// The volumes that pass `filter`, by name.
    pub fn list(&self, filter: &ListFilter) -> Vec<Volume> {
        let state = self.lock();
        state
            .volumes
            .values()
            .filter(|v| {
                filter.names.is_empty() || filter.names.iter().any(|n| v.name.contains(n.as_str()))
            })
            .filter(|v| filter.drivers.is_empty() || filter.drivers.contains(&v.driver))
            .filter(|v| {
                filter.labels.iter().all(|l| match l.split_once('=') {
                    Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
                    None => v.labels.contains_key(l),
                })
            })
            .filter(|v| {
                filter
                    .dangling
                    .is_none_or(|d| state.refs.get(&v.name).is_none_or(BTreeSet::is_empty) == d)
            })
            .cloned()
            .collect()
    }

    /// Records that container `user` names volume `name` in its mount points.
    pub fn add_ref(&self, name: &str, user: &str) {
        self.lock()
            .refs
            .entry(name.to_string())
            .or_default()
            .insert(user.to_string());
    }

    /// Forgets that `user` names `name`.
    pub fn remove_ref(&self, name: &str, user: &str) {
        let mut state = self.lock();
        if let Some(r) = state.refs.get_mut(name) {
            r.remove(user);
            if r.is_empty() {
                state.refs.remove(name);
            }
        }
    }

    /// The containers that name `name`.
    pub fn users(&self, name: &str) -> Vec<String> {
        self.lock()
            .refs
            .get(name)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Removes a volume no container uses. `force`: a missing one is no error.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let mut state = self.lock();
        if !state.volumes.contains_key(name) {
            return if force {
                Ok(())
            } else {
                Err(VolumeError::NotFound { name: name.into() })
            };
        }
        if let Some(users) = state.refs.get(name).filter(|u| !u.is_empty()) {
            return Err(VolumeError::InUse {
                name: name.into(),
                users: users.iter().cloned().collect(),
            });
        }
        self.remove_locked(&mut state, name)
    }

    fn remove_locked(&self, state: &mut State, name: &str) -> Result<(), VolumeError> {
        let data = self.root.join(name).join(DATA_DIR);
        if mount::is_mountpoint(&data) {
            mount::unmount(&data).map_err(|source| VolumeError::Mount {
                path: data.clone(),
                source,
            })?;
        }
        let root = berth_inroot::Root::open(&self.root).map_err(|e| VolumeError::Io {
            path: self.root.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let dir = root
            .fd()
            .try_clone_to_owned()
            .map_err(VolumeError::io(&self.root))?;
        berth_inroot::walk::remove_all_at(&dir, std::ffi::OsStr::new(name)).map_err(|e| {
            VolumeError::Io {
                path: self.root.join(name),
                source: e.into(),
            }
        })?;
        state.volumes.remove(name);
        state.active.remove(name);
        tracing::info!(volume = name, "volume removed");
        Ok(())
    }

    /// Removes every volume no container uses and `keep` does not keep.
    pub fn prune(&self, keep: &dyn Fn(&Volume) -> bool) -> Pruned {
        let mut state = self.lock();
        let unused: Vec<Volume> = state
            .volumes
            .values()
            .filter(|v| state.refs.get(&v.name).is_none_or(BTreeSet::is_empty))
            .filter(|v| !keep(v))
            .cloned()
            .collect();
        let mut out = Pruned::default();
        for v in unused {
            let size = dir_size(&v.mountpoint);
            match self.remove_locked(&mut state, &v.name) {
                Ok(()) => {
                    out.names.push(v.name);
                    out.space_reclaimed += size;
                }
                Err(e) => tracing::warn!(volume = %v.name, error = %e, "cannot prune"),
            }
        }
        out
    }

    /// The volume's folder for container `user` starting: mounted with the volume's driver
    /// options for its first user. Returns the volume and whether this mounted it.
    pub fn mount(&self, name: &str, user: &str) -> Result<(Volume, bool), VolumeError> {
        let mut state = self.lock();
        let v = state
            .volumes
            .get(name)
            .cloned()
            .ok_or_else(|| VolumeError::NotFound { name: name.into() })?;
        let users = state.active.entry(name.to_string()).or_default();
        let first = users.is_empty();
        users.insert(user.to_string());
        if first && mount::needs_mount(&v.options) && !mount::is_mountpoint(&v.mountpoint) {
            if let Err(source) = mount::mount(&v.options, &v.mountpoint) {
                if let Some(u) = state.active.get_mut(name) {
                    u.remove(user);
                }
                return Err(VolumeError::Mount {
                    path: v.mountpoint,
                    source,
                });
            }
            tracing::info!(volume = name, "volume mounted");
        }
        Ok((v, first))
    }

    /// Container `user` stopped: the volume is unmounted once no running container uses it.
    /// `None` when `user` was not using it; else whether it was its last user.
    pub fn unmount(&self, name: &str, user: &str) -> Result<Option<bool>, VolumeError> {
        let mut state = self.lock();
        let Some(users) = state.active.get_mut(name) else {
            return Ok(None);
        };
        if !users.remove(user) {
            return Ok(None);
        }
        if !users.is_empty() {
            return Ok(Some(false));
        }
        state.active.remove(name);
        if let Some(v) = state.volumes.get(name)
            && mount::needs_mount(&v.options)
        {
            mount::unmount(&v.mountpoint).map_err(|source| VolumeError::Mount {
                path: v.mountpoint.clone(),
                source,
            })?;
            tracing::info!(volume = name, "volume unmounted");
        }
        Ok(Some(true))
    }

    /// Copy-up: fills the volume from the folder `src` (found inside a container's root) if
    /// it is still empty; returns how many entries were copied.
    pub fn copy_up_if_empty(
        &self,
        v: &Volume,
        src: std::os::fd::OwnedFd,
    ) -> Result<u64, VolumeError> {
        let _copying = self.copying.lock().unwrap_or_else(PoisonError::into_inner);
        if !crate::copy_up::is_empty(&v.mountpoint)? {
            return Ok(0);
        }
        crate::copy_up::copy_up(src, &v.mountpoint)
    }

    /// Bytes in a volume and how many containers name it (`docker system df`).
    pub fn usage(&self, name: &str) -> (u64, usize) {
        let (path, refs) = {
            let state = self.lock();
            (
                state.volumes.get(name).map(|v| v.mountpoint.clone()),
                state.refs.get(name).map_or(0, BTreeSet::len),
            )
        };
        (path.map_or(0, |p| dir_size(&p)), refs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str) -> CreateOptions {
        CreateOptions {
            name: Some(n.into()),
            ..Default::default()
        }
    }

    #[test]
    fn create_get_list_remove_persist() {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path().join("volumes")).unwrap();
        let mut o = named("v1");
        o.labels.insert("a".into(), "b".into());
        let (v, made) = s.create(o).unwrap();
        assert!(made && v.mountpoint.ends_with("volumes/v1/_data") && v.mountpoint.is_dir());
        assert!(
            v.created_at.ends_with('Z') && !v.created_at.contains('.'),
            "{}",
            v.created_at
        );
        assert!(
            !s.create(named("v1")).unwrap().1,
            "a second create returns it"
        );
        let (anon, _) = s.create(CreateOptions::default()).unwrap();
        assert_eq!(anon.name.len(), 64);
        assert!(anon.anonymous && anon.labels.contains_key(ANONYMOUS_LABEL));
        let (unnamed, _) = s.create(named("")).unwrap();
        assert!(unnamed.name.len() == 64 && !unnamed.anonymous && unnamed.labels.is_empty());
        s.remove(&unnamed.name, false).unwrap();

        let again = VolumeStore::open(d.path().join("volumes")).unwrap();
        assert_eq!(again.get("v1").unwrap(), v);
        assert!(again.get(&anon.name).unwrap().anonymous);

        s.add_ref("v1", "c1");
        let e = s.remove("v1", false).unwrap_err();
        assert_eq!(e.to_string(), "remove v1: volume is in use - [c1]");
        let f = ListFilter {
            dangling: Some(true),
            ..Default::default()
        };
        assert_eq!(s.list(&f).len(), 1, "only the anonymous one is unused");
        s.remove_ref("v1", "c1");
        s.remove("v1", false).unwrap();
        assert!(!d.path().join("volumes/v1").exists());
        assert_eq!(
            s.get("v1").unwrap_err().to_string(),
            "get v1: no such volume"
        );
        assert!(s.remove("v1", true).is_ok());
    }

    #[test]
    fn bad_names_options_and_drivers() {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path()).unwrap();
        for bad in ["-x", "a/b", "../x", "a b"] {
            assert!(
                matches!(s.create(named(bad)), Err(VolumeError::InvalidName { .. })),
                "{bad}"
            );
        }
        let mut o = named("vv");
        o.options.insert("bogus".into(), "1".into());
        assert!(
            s.create(o)
                .unwrap_err()
                .to_string()
                .contains("invalid option: \"bogus\"")
        );
        let mut o = named("vv");
        o.options.insert("type".into(), "tmpfs".into());
        assert!(s.create(o).unwrap_err().to_string().contains("\"device\""));
        let mut o = named("vv");
        o.driver = "nfs-plugin".into();
        assert!(matches!(
            s.create(o),
            Err(VolumeError::UnknownDriver { .. })
        ));
    }

    #[test]
    fn prune_keeps_used_and_kept_volumes() {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path()).unwrap();
        for n in ["used", "named"] {
            s.create(named(n)).unwrap();
        }
        let (anon, _) = s.create(CreateOptions::default()).unwrap();
        std::fs::write(anon.mountpoint.join("f"), b"12345").unwrap();
        s.add_ref("used", "c");
        let p = s.prune(&|v| !v.anonymous);
        assert_eq!(p.names, vec![anon.name]);
        assert_eq!(p.space_reclaimed, 5);
        let p = s.prune(&|_| false);
        assert_eq!(p.names, vec!["named".to_string()]);
        assert_eq!(s.list(&ListFilter::default()).len(), 1);
    }

    #[test]
    fn mount_users_are_counted() {
        let d = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(d.path()).unwrap();
        s.create(named("vv")).unwrap();
        assert!(s.mount("vv", "a").unwrap().1);
        assert!(!s.mount("vv", "b").unwrap().1);
        assert_eq!(s.unmount("vv", "a").unwrap(), Some(false));
        assert_eq!(s.unmount("vv", "b").unwrap(), Some(true));
        assert_eq!(s.unmount("vv", "b").unwrap(), None, "twice is nothing");
    }
}
