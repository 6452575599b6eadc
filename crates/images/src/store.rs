use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::io;
use crate::layer::{self, DiffId};
use crate::{ImageConfig, ImageError, Reference, RootFs, apply_changes, sha256_hex};

/// `sha256:<hex>` of an image's config bytes.
pub type ImageId = String;

/// An image as the API shows it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub id: ImageId,
    pub config: ImageConfig,
    pub repo_tags: Vec<Reference>,
    /// `repo@sha256:<manifest digest>` for each repository it was pulled from or pushed to.
    pub repo_digests: Vec<Reference>,
    /// Bytes of file content over all its layers.
    pub size: u64,
    /// Seconds since the epoch (0 when the config has no valid `created`).
    pub created: i64,
    /// The unpacked layers, bottom first.
    pub layer_dirs: Vec<PathBuf>,
    /// The image it was made from by a build step or `docker commit` (dockerd's parent
    /// link), when that image is still here.
    pub parent: Option<ImageId>,
    /// Whether images here name it as their parent (an untagged one is intermediate).
    pub has_children: bool,
    /// When it was last tagged here (RFC 3339), as dockerd's `Metadata.LastTagTime`.
    pub last_tag_time: Option<String>,
}

/// One step of `docker rmi`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteResult {
    Untagged(String),
    Deleted(String),
}

/// A compressed form of a layer that a registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    pub digest: String,
    pub size: u64,
    /// `host/repository` it was pulled from or pushed to (no spaces in either).
    pub repository: Option<String>,
}

/// What `docker import` adds to the layer.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub reference: Option<Reference>,
    pub message: String,
    pub changes: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Repositories {
    schema: u32,
    tags: BTreeMap<String, ImageId>,
    /// `docker.io/library/busybox@sha256:...` → image (absent in stores written before).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    digests: BTreeMap<String, ImageId>,
    /// Image → when it was last tagged (`docker tag`, import, commit, build; RFC 3339), as
    /// dockerd's `Metadata.LastTagTime`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    last_tagged: BTreeMap<ImageId, String>,
}

#[derive(Debug)]
struct Entry {
    config: ImageConfig,
    created: i64,
}

#[derive(Debug, Default)]
struct Index {
    images: BTreeMap<ImageId, Entry>,
    tags: BTreeMap<Reference, ImageId>,
    /// Repository digests (references with a digest and no tag).
    digests: BTreeMap<Reference, ImageId>,
    layer_sizes: BTreeMap<DiffId, u64>,
    /// Child → parent, both stored images.
    parents: BTreeMap<ImageId, ImageId>,
    last_tagged: BTreeMap<ImageId, String>,
}

impl Index {
    fn has_children(&self, id: &str) -> bool {
        self.parents.values().any(|p| p == id)
    }

    fn is_tagged(&self, id: &str) -> bool {
        self.tags.values().any(|i| i == id)
    }

    /// Whether `id` is `of` or one of its ancestors.
    fn is_ancestor(&self, id: &str, of: &str) -> bool {
        let mut cur = Some(of);
        // A chain never has more links than there are images; this bounds a corrupt one.
        for _ in 0..=self.parents.len() {
            match cur {
                Some(c) if c == id => return true,
                Some(c) => cur = self.parents.get(c).map(String::as_str),
                None => return false,
            }
        }
        false
    }
}

/// The image and layer store under one root (`<data-root>/image`):
/// `imagedb/<hex>` config bytes, `layers/<hex>/{layer.tar,diff/,size}`, `repositories.json`,
/// `parents/<child hex>` (the parent's `sha256:` ID, as dockerd's `imagedb/metadata/sha256/
/// <id>/parent`) and `tmp/` for work in progress (emptied at open).
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    index: RwLock<Index>,
    writer: Mutex<()>,
}

fn hex_of(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

fn parse_created(s: Option<&str>) -> i64 {
    s.and_then(|s| {
        humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
            .ok()
            .or_else(|| humantime::parse_rfc3339(s).ok())
    })
    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
    .map(|d| d.as_secs() as i64)
    .unwrap_or(0)
}

/// The store's folders are the daemon's alone, as dockerd's `image/` (0700); a layer's
/// folder is 0710 as overlay2's, and its `diff` keeps the mode its tar gives the root.
pub(crate) const DIR_MODE: u32 = 0o700;
const LAYER_DIR_MODE: u32 = 0o710;
/// Metadata files (configs, tags, sizes): 0600, as dockerd's image store writes them.
const FILE_MODE: u32 = 0o600;

/// Writes `bytes` to `path` whole (a unique temporary name, synced, then renamed), 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    crate::files::write_atomic(path, bytes, FILE_MODE).map_err(io(path))
}

impl ImageStore {
    /// Opens (or creates) the store and loads its index.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        let root = root.into();
        for d in [
            &root,
            &root.join("imagedb"),
            &root.join("layers"),
            &root.join("parents"),
        ] {
            crate::files::dir_with_mode(d, DIR_MODE).map_err(io(d))?;
        }
        let tmp = root.join("tmp");
        let _ = fs::remove_dir_all(&tmp);
        crate::files::dir_with_mode(&tmp, DIR_MODE).map_err(io(&tmp))?;
        // Downloads a later pull may resume; a day old, they are given up.
        let downloads = root.join("downloads");
        crate::files::dir_with_mode(&downloads, DIR_MODE).map_err(io(&downloads))?;
        for e in fs::read_dir(&downloads).map_err(io(&downloads))?.flatten() {
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age > std::time::Duration::from_secs(24 * 3600));
            if stale {
                let _ = fs::remove_file(e.path());
            }
        }
        // Temporary files a crash left beside `repositories.json`.
        for e in fs::read_dir(&root).map_err(io(&root))?.flatten() {
            if crate::files::is_temporary(&e.file_name().to_string_lossy()) {
                let _ = fs::remove_file(e.path());
            }
        }

        let mut index = Index::default();
        let layers_dir = root.join("layers");
        for e in fs::read_dir(&layers_dir)
            .map_err(io(&layers_dir))?
            .flatten()
        {
            let hex = e.file_name().to_string_lossy().to_string();
            let size = fs::read_to_string(e.path().join("size"))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            match size {
                Some(size) => {
                    index.layer_sizes.insert(format!("sha256:{hex}"), size);
                }
                // A layer without its size file was never completed.
                None => {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let db = root.join("imagedb");
        for e in fs::read_dir(&db).map_err(io(&db))?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.len() != 64 {
                let _ = fs::remove_file(e.path());
                continue;
            }
            let bytes = fs::read(e.path()).map_err(io(e.path()))?;
            let config: ImageConfig =
                serde_json::from_slice(&bytes).map_err(|source| ImageError::Corrupt {
                    path: e.path(),
                    source,
                })?;
            let created = parse_created(config.created.as_deref());
            index
                .images
                .insert(format!("sha256:{name}"), Entry { config, created });
        }
        let repos_path = root.join("repositories.json");
        if let Ok(bytes) = fs::read(&repos_path) {
            let repos: Repositories =
                serde_json::from_slice(&bytes).map_err(|source| ImageError::Corrupt {
                    path: repos_path.clone(),
                    source,
                })?;
            for (name, id) in repos.tags {
                if let (Ok(r), true) = (Reference::parse(&name), index.images.contains_key(&id)) {
                    index.tags.insert(r, id);
                }
            }
            for (name, id) in repos.digests {
                if let (Ok(r), true) = (Reference::parse(&name), index.images.contains_key(&id)) {
                    index.digests.insert(r, id);
                }
            }
            index.last_tagged = repos
                .last_tagged
                .into_iter()
                .filter(|(id, _)| index.images.contains_key(id))
                .collect();
        }
        // Parent links; one whose child or parent is gone (or a crash's temporary file) goes.
        let parents = root.join("parents");
        for e in fs::read_dir(&parents).map_err(io(&parents))?.flatten() {
            let child = format!("sha256:{}", e.file_name().to_string_lossy());
            let parent = fs::read_to_string(e.path())
                .ok()
                .map(|p| p.trim().to_string())
                .filter(|p| {
                    *p != child && index.images.contains_key(p) && index.images.contains_key(&child)
                });
            match parent {
                Some(p) => {
                    index.parents.insert(child, p);
                }
                None => {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(ImageStore {
            root,
            index: RwLock::new(index),
            writer: Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }
    fn serialise(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.root.join("layers").join(hex_of(diff_id))
    }

    /// Where blobs being downloaded live so that a pull cut short can be resumed by the
    /// next one (`downloads/`, on the store's file system; a day old, they go at open). They
    /// are blobs, never layers: a layer is only what `put_layer*` renamed into place.
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// A new, empty folder of the store's own for work in progress (on the store's file
    /// system, emptied when the store opens); the caller removes it.
    pub fn tmp_dir(&self) -> Result<PathBuf, ImageError> {
        let mut bytes = [0u8; 8];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(io("/dev/urandom"))?;
        let d = self.root.join("tmp").join(hex::encode(bytes));
        crate::files::dir_with_mode(&d, DIR_MODE).map_err(io(&d))?;
        Ok(d)
    }

    /// Stores a layer stream (plain or gzip tar) once: a layer already present is not
    /// unpacked again. Returns its diff ID.
    pub(crate) fn put_layer(&self, src: impl Read) -> Result<DiffId, ImageError> {
        self.put_layer_checked(src, None)
    }

    /// Stores a layer stream that must be `expected` (a diff ID): a stream of other content
    /// is refused (`DiffMismatch`) and leaves nothing behind. Unpacked with every entry
    /// kept inside the layer (`berth_inroot::unpack`).
    pub fn put_layer_verified(&self, src: impl Read, expected: &str) -> Result<(), ImageError> {
        self.put_layer_checked(src, Some(expected)).map(|_| ())
    }

    fn put_layer_checked(
        &self,
        src: impl Read,
        expected: Option<&str>,
    ) -> Result<DiffId, ImageError> {
        let work = self.tmp_dir()?;
        let result = layer::ingest(src, &work.join("layer.tar"), &work.join("diff"));
        let ingested = match result {
            Ok(i) => i,
            Err(e) => {
                let _ = fs::remove_dir_all(&work);
                return Err(e);
            }
        };
        if let Some(expected) = expected
            && ingested.diff_id != expected
        {
            let _ = fs::remove_dir_all(&work);
            return Err(ImageError::DiffMismatch {
                expected: expected.to_string(),
                actual: ingested.diff_id,
            });
        }
        let _guard = self.serialise();
        let target = self.layer_dir(&ingested.diff_id);
        if self.read().layer_sizes.contains_key(&ingested.diff_id) {
            let _ = fs::remove_dir_all(&work);
            return Ok(ingested.diff_id);
        }
        let _ = fs::remove_dir_all(&target);
        write_atomic(&work.join("size"), ingested.size.to_string().as_bytes())?;
        fs::set_permissions(&work, fs::Permissions::from_mode(LAYER_DIR_MODE))
            .map_err(io(&work))?;
        fs::rename(&work, &target).map_err(io(&target))?;
        self.write()
            .layer_sizes
            .insert(ingested.diff_id.clone(), ingested.size);
        Ok(ingested.diff_id)
    }

    /// Whether the layer is stored.
    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.read().layer_sizes.contains_key(diff_id)
    }

    /// Stores an image config (whose layers must all be stored) and names it.
    pub(crate) fn put_image(
        &self,
        raw_config: &[u8],
        tags: &[Reference],
    ) -> Result<ImageId, ImageError> {
        let id = self.put_config(raw_config, None, tags, &[])?;
        if !tags.is_empty() {
            let _guard = self.serialise();
            let mut index = self.write();
            index.last_tagged.insert(id.clone(), now_rfc3339());
            self.persist_tags(&index)?;
        }
        Ok(id)
    }

    /// Stores an image config whose layers are all stored (a build step's image), names it
    /// with `tags` and records `parent` (an image ID) as its parent when that image is here
    /// (and is not the image itself or one of its descendants).
    pub fn put_child_image(
        &self,
        raw_config: &[u8],
        parent: Option<&str>,
        tags: &[Reference],
    ) -> Result<ImageId, ImageError> {
        self.put_config(raw_config, parent, tags, &[])
    }

    /// Stores an image config whose layers are all stored (a pull's last step), names it
    /// with `tags` and records its repository digests (`repo@sha256:...`).
    pub fn put_named_image(
        &self,
        raw_config: &[u8],
        tags: &[Reference],
        digests: &[Reference],
    ) -> Result<ImageId, ImageError> {
        self.put_config(raw_config, None, tags, digests)
    }

    fn put_config(
        &self,
        raw_config: &[u8],
        parent: Option<&str>,
        tags: &[Reference],
        digests: &[Reference],
    ) -> Result<ImageId, ImageError> {
        let config: ImageConfig = serde_json::from_slice(raw_config)
            .map_err(|e| ImageError::BadArchive(format!("image config: {e}")))?;
        for d in &config.rootfs.diff_ids {
            if !self.has_layer(d) {
                return Err(ImageError::BadArchive(format!("layer {d} is missing")));
            }
        }
        let hex = sha256_hex(raw_config);
        let id = format!("sha256:{hex}");
        let _guard = self.serialise();
        write_atomic(&self.root.join("imagedb").join(&hex), raw_config)?;
        let mut index = self.write();
        let created = parse_created(config.created.as_deref());
        index.images.insert(id.clone(), Entry { config, created });
        for t in tags {
            index.tags.insert(t.clone(), id.clone());
        }
        for d in digests {
            index.digests.insert(d.clone(), id.clone());
        }
        self.persist_tags(&index)?;
        let parent = parent.and_then(|p| {
            let p = format!("sha256:{}", hex_of(p));
            (index.images.contains_key(&p) && !index.is_ancestor(&id, &p)).then_some(p)
        });
        if let Some(p) = parent {
            write_atomic(&self.root.join("parents").join(&hex), p.as_bytes())?;
            index.parents.insert(id.clone(), p);
        }
        Ok(id)
    }

    /// The image's parent, when it has one here.
    pub fn parent(&self, id: &str) -> Option<ImageId> {
        self.read().parents.get(id).cloned()
    }

    /// The images whose parent is `id`.
    pub fn children(&self, id: &str) -> Vec<ImageId> {
        self.read()
            .parents
            .iter()
            .filter(|(_, p)| p.as_str() == id)
            .map(|(c, _)| c.clone())
            .collect()
    }

    fn persist_tags(&self, index: &Index) -> Result<(), ImageError> {
        let repos = Repositories {
            schema: 1,
            tags: index
                .tags
                .iter()
                .map(|(r, id)| {
                    (
                        format!("{}:{}", r.full_name(), r.tag.clone().unwrap_or_default()),
                        id.clone(),
                    )
                })
                .collect(),
            digests: index
                .digests
                .iter()
                .map(|(r, id)| {
                    (
                        format!("{}@{}", r.full_name(), r.digest.clone().unwrap_or_default()),
                        id.clone(),
                    )
                })
                .collect(),
            last_tagged: index.last_tagged.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&repos).map_err(|e| ImageError::Stream(e.into()))?;
        write_atomic(&self.root.join("repositories.json"), &bytes)
    }

    /// `docker import`: one layer from a tar stream, a config made from `opts`.
    pub fn import(&self, src: impl Read, opts: &ImportOptions) -> Result<ImageId, ImageError> {
        let mut container = crate::ContainerConfig::default();
        apply_changes(&mut container, &opts.changes)?;
        let diff_id = self.put_layer(src)?;
        let created = now_rfc3339();
        let config = ImageConfig {
            created: Some(created.clone()),
            architecture: go_arch().to_string(),
            os: "linux".to_string(),
            config: container,
            rootfs: RootFs {
                typ: "layers".to_string(),
                diff_ids: vec![diff_id],
            },
            history: vec![crate::HistoryEntry {
                created: Some(created),
                comment: if opts.message.is_empty() {
                    "Imported from -".to_string()
                } else {
                    opts.message.clone()
                },
                ..Default::default()
            }],
            comment: opts.message.clone(),
            ..Default::default()
        };
        let raw = serde_json::to_vec(&config).map_err(|e| ImageError::Stream(e.into()))?;
        let tags: Vec<Reference> = opts.reference.iter().cloned().collect();
        self.put_image(&raw, &tags)
    }

    /// Finds an image by reference, full ID, or unique ID prefix (with or without `sha256:`).
    pub fn resolve(&self, name: &str) -> Result<ImageId, ImageError> {
        let index = self.read();
        let not_found = || ImageError::NotFound(name.to_string());
        if let Some(hex) = name.strip_prefix("sha256:") {
            return prefix_match(&index, hex).ok_or_else(not_found);
        }
        if let Ok(r) = Reference::parse(name)
            && let Some(id) = index.tags.get(&r).or_else(|| index.digests.get(&r))
        {
            return Ok(id.clone());
        }
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_hexdigit())
            && let Some(id) = prefix_match(&index, &name.to_ascii_lowercase())
        {
            return Ok(id);
        }
        // An invalid name is a 400, as dockerd says; a valid unknown one a 404.
        if name.contains('@') || name.chars().any(|c| c.is_ascii_uppercase()) {
            Reference::parse(name)?;
        }
        Err(not_found())
    }

    /// The image's record.
    pub fn get(&self, id: &str) -> Result<ImageRecord, ImageError> {
        let index = self.read();
        self.record(&index, id)
            .ok_or_else(|| ImageError::NotFound(id.to_string()))
    }

    fn record(&self, index: &Index, id: &str) -> Option<ImageRecord> {
        let e = index.images.get(id)?;
        let size = e
            .config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| index.layer_sizes.get(d).copied().unwrap_or(0))
            .sum();
        Some(ImageRecord {
            id: id.to_string(),
            config: e.config.clone(),
            repo_tags: index
                .tags
                .iter()
                .filter(|(_, i)| i.as_str() == id)
                .map(|(r, _)| r.clone())
                .collect(),
            repo_digests: index
                .digests
                .iter()
                .filter(|(_, i)| i.as_str() == id)
                .map(|(r, _)| r.clone())
                .collect(),
            size,
            created: e.created,
            layer_dirs: e
                .config
                .rootfs
                .diff_ids
                .iter()
                .map(|d| self.layer_dir(d).join("diff"))
                .collect(),
            parent: index.parents.get(id).cloned(),
            has_children: index.has_children(id),
            last_tag_time: index.last_tagged.get(id).cloned(),
        })
    }

    /// Every image.
    pub fn list(&self) -> Vec<ImageRecord> {
        let index = self.read();
        index
            .images
            .keys()
            .filter_map(|id| self.record(&index, id))
            .collect()
    }

    /// The raw config bytes (what the ID is the digest of).
    pub fn raw_config(&self, id: &str) -> Result<Vec<u8>, ImageError> {
        let p = self.root.join("imagedb").join(hex_of(id));
        fs::read(&p).map_err(io(p))
    }

    /// Size in bytes of a stored layer's content.
    pub fn layer_size(&self, diff_id: &str) -> u64 {
        self.read().layer_sizes.get(diff_id).copied().unwrap_or(0)
    }

    /// The stored tar of a layer (exactly the bytes its diff ID is the digest of).
    pub fn layer_tar(&self, diff_id: &str) -> PathBuf {
        self.layer_dir(diff_id).join("layer.tar")
    }

    /// The compressed forms of a stored layer a registry is known to hold (dockerd's
    /// distribution metadata), the newest last. A push asks the registry for these before
    /// compressing the layer again, and mounts them from the repository they are in.
    pub fn layer_blobs(&self, diff_id: &str) -> Vec<LayerBlob> {
        let p = self.layer_dir(diff_id).join("blobs");
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some(LayerBlob {
                    digest: f.next()?.to_string(),
                    size: f.next()?.parse().ok()?,
                    repository: f.next().map(str::to_string),
                })
            })
            .collect()
    }

    /// Remembers a compressed form of a stored layer (and the repository holding it).
    pub fn remember_layer_blob(&self, diff_id: &str, blob: LayerBlob) -> Result<(), ImageError> {
        let _guard = self.serialise();
        if !self.has_layer(diff_id) {
            return Ok(());
        }
        let mut known = self.layer_blobs(diff_id);
        known.retain(|b| b.digest != blob.digest || b.repository != blob.repository);
        known.push(blob);
        // A few forms are plenty; the oldest go first.
        let skip = known.len().saturating_sub(8);
        let text: String = known[skip..]
            .iter()
            .map(|b| match &b.repository {
                Some(r) => format!("{} {} {r}\n", b.digest, b.size),
                None => format!("{} {}\n", b.digest, b.size),
            })
            .collect();
        write_atomic(&self.layer_dir(diff_id).join("blobs"), text.as_bytes())
    }

    /// Records `repo@digest` for an image (a push's manifest digest).
    pub fn add_repo_digest(&self, id: &str, reference: Reference) -> Result<(), ImageError> {
        let _guard = self.serialise();
        let mut index = self.write();
        if !index.images.contains_key(id) {
            return Err(ImageError::NotFound(id.to_string()));
        }
        index.digests.insert(reference, id.to_string());
        self.persist_tags(&index)
    }

    /// Names `id` as `reference` (moving the name if another image had it).
    pub fn tag(&self, id: &str, reference: Reference) -> Result<(), ImageError> {
        let _guard = self.serialise();
        let mut index = self.write();
        if !index.images.contains_key(id) {
            return Err(ImageError::NotFound(id.to_string()));
        }
        index.tags.insert(reference, id.to_string());
        index.last_tagged.insert(id.to_string(), now_rfc3339());
        self.persist_tags(&index)
    }

    /// `docker rmi`. `in_use` says whether a container uses an image. With `prune_parents`
    /// (dockerd's default; `noprune` turns it off), a deleted image's parent goes too while
    /// it is unnamed, has no other child and no container uses it, and so on up the chain.
    pub fn delete(
        &self,
        name: &str,
        force: bool,
        prune_parents: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<DeleteResult>, ImageError> {
        let id = self.resolve(name)?;
        let by_tag = Reference::parse(name).ok().filter(|r| {
            let index = self.read();
            index.tags.get(r) == Some(&id) || index.digests.get(r) == Some(&id)
        });
        let _guard = self.serialise();
        let mut index = self.write();
        let tags: Vec<Reference> = index
            .tags
            .iter()
            .filter(|(_, i)| **i == id)
            .map(|(r, _)| r.clone())
            .collect();
        let digests: Vec<Reference> = index
            .digests
            .iter()
            .filter(|(_, i)| **i == id)
            .map(|(r, _)| r.clone())
            .collect();
        // A name is a tag or a repository digest; an image whose last tag goes loses its
        // digests with it, as dockerd's `rmi` untags them too.
        let remaining = |r: &Reference| match r.digest {
            Some(_) => tags.len() + digests.len() - 1,
            None => tags.len() - 1,
        };
        let short = &hex_of(&id)[..12];
        let mut out = Vec::new();
        match by_tag {
            Some(r) => {
                if remaining(&r) == 0 && in_use(&id) && !force {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{r}\" (must force) - \
                         a container is using its referenced image {short}"
                    )));
                }
                index.tags.remove(&r);
                index.digests.remove(&r);
                out.push(DeleteResult::Untagged(r.to_string()));
                // An image with children stays, untagged: an intermediate one now.
                if remaining(&r) > 0 || in_use(&id) || index.has_children(&id) {
                    self.persist_tags(&index)?;
                    return Ok(out);
                }
                for d in digests.iter().filter(|d| **d != r) {
                    index.digests.remove(d);
                    out.push(DeleteResult::Untagged(d.to_string()));
                }
            }
            None => {
                // Not even `force` deletes an image others are made from, as in dockerd.
                if index.has_children(&id) {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to delete {short} (cannot be forced) - image has \
                         dependent child images"
                    )));
                }
                if in_use(&id) {
                    if !force {
                        return Err(ImageError::Conflict(format!(
                            "conflict: unable to delete {short} (must be forced) - image is being \
                             used by a container"
                        )));
                    }
                    for r in &tags {
                        index.tags.remove(r);
                        out.push(DeleteResult::Untagged(r.to_string()));
                    }
                    for r in &digests {
                        index.digests.remove(r);
                        out.push(DeleteResult::Untagged(r.to_string()));
                    }
                    self.persist_tags(&index)?;
                    return Ok(out);
                }
                if tags.len() > 1 && !force {
                    return Err(ImageError::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is \
                         referenced in multiple repositories"
                    )));
                }
                for r in &tags {
                    index.tags.remove(r);
                    out.push(DeleteResult::Untagged(r.to_string()));
                }
                for r in &digests {
                    index.digests.remove(r);
                    out.push(DeleteResult::Untagged(r.to_string()));
                }
            }
        }
        self.persist_tags(&index)?;
        let mut parent = self.remove_image(&mut index, &id)?;
        out.push(DeleteResult::Deleted(id));
        // dockerd prunes quietly: the first parent that must stay ends the walk.
        while prune_parents && let Some(p) = parent {
            let named = index.is_tagged(&p) || index.digests.values().any(|i| *i == p);
            if named || index.has_children(&p) || in_use(&p) {
                break;
            }
            parent = self.remove_image(&mut index, &p)?;
            out.push(DeleteResult::Deleted(p));
        }
        Ok(out)
    }

    /// Removes an untagged image, its parent link and its children's (they become
    /// parentless, as in dockerd), and the layers no other image has. Returns its parent.
    fn remove_image(&self, index: &mut Index, id: &str) -> Result<Option<ImageId>, ImageError> {
        let Some(entry) = index.images.remove(id) else {
            return Ok(None);
        };
        index.digests.retain(|_, i| i != id);
        index.last_tagged.remove(id);
        let p = self.root.join("imagedb").join(hex_of(id));
        fs::remove_file(&p).map_err(io(&p))?;
        let parent = index.parents.remove(id);
        let children: Vec<ImageId> = index
            .parents
            .iter()
            .filter(|(_, p)| p.as_str() == id)
            .map(|(c, _)| c.clone())
            .collect();
        for link in children.iter().map(String::as_str).chain([id]) {
            index.parents.remove(link);
            let p = self.root.join("parents").join(hex_of(link));
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&p)(e)),
                _ => {}
            }
        }
        let still_used: BTreeSet<&DiffId> = index
            .images
            .values()
            .flat_map(|e| e.config.rootfs.diff_ids.iter())
            .collect();
        for d in &entry.config.rootfs.diff_ids {
            if still_used.contains(d) {
                continue;
            }
            index.layer_sizes.remove(d);
            let dir = self.layer_dir(d);
            let graveyard = self.root.join("tmp").join(format!("deleted-{}", hex_of(d)));
            if fs::rename(&dir, &graveyard).is_ok() {
                let _ = fs::remove_dir_all(&graveyard);
            }
        }
        Ok(parent)
    }

    /// `docker image prune`: deletes the dangling images (no tag, no child) that no container
    /// uses, or with `all` (`-a`) every image without a child that no container uses, its
    /// names first. What a deletion leaves prunable goes too (an untagged chain under a
    /// removed leaf), as dockerd's pruning deletes parents; images under a kept one stay.
    /// Returns what went and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<(Vec<DeleteResult>, u64), ImageError> {
        let _guard = self.serialise();
        let mut index = self.write();
        let prunable = |index: &Index, id: &str| {
            index.images.contains_key(id)
                && (all || !index.is_tagged(id))
                && !index.has_children(id)
                && !in_use(id)
        };
        let mut out = Vec::new();
        let mut reclaimed = 0;
        loop {
            let victims: Vec<ImageId> = index
                .images
                .keys()
                .filter(|id| prunable(&index, id))
                .cloned()
                .collect();
            if victims.is_empty() {
                break;
            }
            for victim in victims {
                let mut next = Some(victim);
                while let Some(id) = next.take().filter(|id| prunable(&index, id)) {
                    let names: Vec<Reference> = index
                        .tags
                        .iter()
                        .chain(index.digests.iter())
                        .filter(|(_, i)| **i == id)
                        .map(|(r, _)| r.clone())
                        .collect();
                    if !names.is_empty() {
                        for r in names {
                            index.tags.remove(&r);
                            index.digests.remove(&r);
                            out.push(DeleteResult::Untagged(r.to_string()));
                        }
                        self.persist_tags(&index)?;
                    }
                    let before: u64 = index.layer_sizes.values().sum();
                    next = self.remove_image(&mut index, &id)?;
                    reclaimed += before - index.layer_sizes.values().sum::<u64>();
                    out.push(DeleteResult::Deleted(id));
                }
            }
        }
        Ok((out, reclaimed))
    }
}

fn prefix_match(index: &Index, hex: &str) -> Option<ImageId> {
    if hex.is_empty() {
        return None;
    }
    let mut found = index.images.keys().filter(|id| hex_of(id).starts_with(hex));
    let first = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some(first.clone())
}

/// The machine's architecture as image configs name it.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tar_with(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn import(store: &ImageStore, files: &[(&str, &str)], name: Option<&str>) -> ImageId {
        store
            .import(
                &tar_with(files)[..],
                &ImportOptions {
                    reference: name.map(|n| Reference::parse(n).unwrap()),
                    message: String::new(),
                    changes: vec!["CMD [\"sh\"]".into()],
                },
            )
            .unwrap()
    }

    #[test]
    fn tagging_records_the_last_tag_time_and_keeps_it_over_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let id = import(&s, &[("f", "x")], None);
        assert_eq!(s.get(&id).unwrap().last_tag_time, None, "never tagged");
        s.tag(&id, Reference::parse("acc/t:1").unwrap()).unwrap();
        let t = s.get(&id).unwrap().last_tag_time.expect("tagged");
        assert!(humantime::parse_rfc3339(&t).is_ok(), "{t}");
        let again = ImageStore::open(dir.path()).unwrap();
        assert_eq!(again.get(&id).unwrap().last_tag_time, Some(t));
    }

    #[test]
    fn import_names_the_image_by_the_digest_of_its_config() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let id = import(&s, &[("bin/sh", "#!")], Some("acc/busybox:1"));
        let raw = s.raw_config(&id).unwrap();
        assert_eq!(id, format!("sha256:{}", sha256_hex(&raw)));
        assert_eq!(s.resolve("acc/busybox:1").unwrap(), id);
        assert_eq!(s.resolve(&id).unwrap(), id);
        assert_eq!(s.resolve(&hex_of(&id)[..12]).unwrap(), id);
        let r = s.get(&id).unwrap();
        assert_eq!(r.repo_tags[0].to_string(), "acc/busybox:1");
        assert_eq!(
            r.config.config.cmd.as_deref(),
            Some(&["sh".to_string()][..])
        );
        assert_eq!(r.size, 2);
        assert!(r.layer_dirs[0].join("bin/sh").is_file());
        assert!(matches!(s.resolve("nope:1"), Err(ImageError::NotFound(_))));
        assert!(matches!(
            s.resolve("Bad"),
            Err(ImageError::InvalidReference { .. })
        ));
    }

    #[test]
    fn layers_are_stored_once_and_removed_with_their_last_image() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let a = import(&s, &[("f", "same")], Some("a:1"));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = import(&s, &[("f", "same")], Some("b:1"));
        assert_ne!(a, b, "created times differ");
        assert_eq!(fs::read_dir(dir.path().join("layers")).unwrap().count(), 1);
        let out = s.delete("a:1", false, true, &|_| false).unwrap();
        assert_eq!(
            out,
            vec![
                DeleteResult::Untagged("a:1".into()),
                DeleteResult::Deleted(a)
            ]
        );
        assert_eq!(
            fs::read_dir(dir.path().join("layers")).unwrap().count(),
            1,
            "b keeps it"
        );
        s.delete("b:1", false, true, &|_| false).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("layers")).unwrap().count(), 0);
    }

    #[test]
    fn tags_untag_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let id = import(&s, &[("f", "x")], Some("a:1"));
        s.tag(&id, Reference::parse("alias:2").unwrap()).unwrap();
        let err = s.delete(&id, false, true, &|_| false).unwrap_err();
        assert!(
            err.to_string()
                .contains("referenced in multiple repositories"),
            "{err}"
        );
        assert_eq!(
            s.delete("alias:2", false, true, &|_| false).unwrap(),
            vec![DeleteResult::Untagged("alias:2".into())]
        );
        let err = s.delete("a:1", false, true, &|_| true).unwrap_err();
        assert!(matches!(err, ImageError::Conflict(_)));
        // Survives a reopen.
        drop(s);
        let s = ImageStore::open(dir.path()).unwrap();
        assert_eq!(s.resolve("a:1").unwrap(), id);
        assert!(s.resolve("alias:2").is_err());
    }

    #[test]
    fn prune_removes_dangling_images_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let kept = import(&s, &[("f", "1")], Some("keep:1"));
        let dangling = import(&s, &[("g", "22")], None);
        let (gone, bytes) = s.prune(false, &|_| false).unwrap();
        assert_eq!(gone, vec![DeleteResult::Deleted(dangling)]);
        assert_eq!(bytes, 2);
        assert!(s.get(&kept).is_ok());
    }

    #[test]
    fn repository_digests_name_an_image_persist_and_go_with_its_last_tag() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let tar = tar_with(&[("f", "pulled")]);
        let diff_id = format!("sha256:{}", sha256_hex(&tar));
        // A layer that is not what the config says is refused and leaves nothing.
        let err = s
            .put_layer_verified(&tar[..], &format!("sha256:{}", "0".repeat(64)))
            .unwrap_err();
        assert!(matches!(err, ImageError::DiffMismatch { .. }), "{err:?}");
        assert!(!s.has_layer(&diff_id));
        assert_eq!(fs::read_dir(dir.path().join("layers")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        s.put_layer_verified(&tar[..], &diff_id).unwrap();
        // The compressed forms a registry holds, newest last, kept with the layer.
        let blob = |d: &str, size, repo: Option<&str>| LayerBlob {
            digest: d.into(),
            size,
            repository: repo.map(str::to_string),
        };
        s.remember_layer_blob(&diff_id, blob("sha256:aa", 3, Some("h:1/a")))
            .unwrap();
        s.remember_layer_blob(&diff_id, blob("sha256:bb", 4, None))
            .unwrap();
        s.remember_layer_blob(&diff_id, blob("sha256:aa", 3, Some("h:1/a")))
            .unwrap();
        assert_eq!(
            s.layer_blobs(&diff_id),
            vec![
                blob("sha256:bb", 4, None),
                blob("sha256:aa", 3, Some("h:1/a"))
            ]
        );
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
        );
        let digest = format!("sha256:{}", "d".repeat(64));
        let tag = Reference::parse("127.0.0.1:5000/acc/x:1").unwrap();
        let by_digest = Reference::parse(&format!("127.0.0.1:5000/acc/x@{digest}")).unwrap();
        let id = s
            .put_named_image(
                config.as_bytes(),
                std::slice::from_ref(&tag),
                std::slice::from_ref(&by_digest),
            )
            .unwrap();
        drop(s);
        let s = ImageStore::open(dir.path()).unwrap();
        assert_eq!(s.resolve(&by_digest.to_string()).unwrap(), id);
        let r = s.get(&id).unwrap();
        assert_eq!(r.repo_digests, vec![by_digest.clone()]);
        assert_eq!(r.repo_tags, vec![tag]);
        let out = s
            .delete("127.0.0.1:5000/acc/x:1", false, true, &|_| false)
            .unwrap();
        assert_eq!(
            out,
            vec![
                DeleteResult::Untagged("127.0.0.1:5000/acc/x:1".into()),
                DeleteResult::Untagged(by_digest.to_string()),
                DeleteResult::Deleted(id),
            ]
        );
    }

    /// A build step's image: `parent`'s config with one more (empty) history entry, stored
    /// as its child.
    fn child(store: &ImageStore, parent: &str, step: &str, tag: Option<&str>) -> ImageId {
        let mut config = store.get(parent).unwrap().config;
        config.history.push(crate::HistoryEntry {
            created_by: step.to_string(),
            empty_layer: true,
            ..Default::default()
        });
        let raw = serde_json::to_vec(&config).unwrap();
        let tags: Vec<Reference> = tag
            .map(|t| Reference::parse(t).unwrap())
            .into_iter()
            .collect();
        store.put_child_image(&raw, Some(parent), &tags).unwrap()
    }

    fn deleted(ids: &[&ImageId]) -> Vec<DeleteResult> {
        ids.iter()
            .map(|id| DeleteResult::Deleted(id.to_string()))
            .collect()
    }

    #[test]
    fn parent_links_survive_reopen_and_go_with_their_images() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let base = import(&s, &[("f", "1")], Some("base:1"));
        let mid = child(&s, &base, "RUN a", None);
        let top = child(&s, &mid, "RUN b", Some("top:1"));
        // A parent that is not here is not recorded.
        let mut config = s.get(&base).unwrap().config;
        config.comment = "orphan".into();
        let raw = serde_json::to_vec(&config).unwrap();
        let orphan = s
            .put_child_image(&raw, Some(&format!("sha256:{}", "e".repeat(64))), &[])
            .unwrap();
        assert_eq!(s.parent(&orphan), None);
        // Nor one that would make a loop.
        assert_eq!(
            s.put_child_image(&s.raw_config(&base).unwrap(), Some(&top), &[])
                .unwrap(),
            base
        );
        assert_eq!(s.parent(&base), None);
        // A link whose child is gone is dropped at open.
        fs::write(dir.path().join("parents").join("a".repeat(64)), &base).unwrap();
        drop(s);
        let s = ImageStore::open(dir.path()).unwrap();
        assert!(!dir.path().join("parents").join("a".repeat(64)).exists());
        assert_eq!(s.parent(&top), Some(mid.clone()));
        assert_eq!(s.parent(&mid), Some(base.clone()));
        assert_eq!(s.children(&base), vec![mid.clone()]);
        let r = s.get(&mid).unwrap();
        assert_eq!(
            (r.parent.as_deref(), r.has_children),
            (Some(base.as_str()), true)
        );
        let r = s.get(&top).unwrap();
        assert!(!r.has_children);
        // Removing an image removes its link and its children's.
        s.delete("top:1", false, false, &|_| false).unwrap();
        assert_eq!(s.children(&mid), Vec::<ImageId>::new());
        s.tag(&mid, Reference::parse("mid:1").unwrap()).unwrap();
        let child_of_mid = child(&s, &mid, "RUN c", None);
        s.tag(&child_of_mid, Reference::parse("c:1").unwrap())
            .unwrap();
        // By tag, an image with children is only untagged.
        assert_eq!(
            s.delete("base:1", false, true, &|_| false).unwrap(),
            vec![DeleteResult::Untagged("base:1".into())]
        );
        s.delete("mid:1", true, true, &|_| true).unwrap();
        assert_eq!(s.parent(&child_of_mid), Some(mid.clone()));
        s.delete("c:1", false, false, &|_| false).unwrap();
        drop(s);
        let s = ImageStore::open(dir.path()).unwrap();
        assert_eq!(s.children(&mid), Vec::<ImageId>::new());
        assert_eq!(s.parent(&mid), Some(base));
        assert_eq!(fs::read_dir(dir.path().join("parents")).unwrap().count(), 1);
    }

    #[test]
    fn rmi_deletes_untagged_parents_up_to_a_named_shared_or_used_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let base = import(&s, &[("f", "1")], Some("base:1"));
        let a = child(&s, &base, "RUN a", None);
        let b = child(&s, &a, "RUN b", None);
        let top = child(&s, &b, "RUN top", Some("top:1"));
        let mut out = vec![DeleteResult::Untagged("top:1".into())];
        out.extend(deleted(&[&top, &b, &a]));
        assert_eq!(s.delete("top:1", false, true, &|_| false).unwrap(), out);
        assert!(s.get(&base).is_ok(), "a tagged parent stays");

        // A parent with another child stays, and so does one a container uses.
        let a = child(&s, &base, "RUN a", None);
        let b1 = child(&s, &a, "RUN b1", Some("b1:1"));
        let b2 = child(&s, &a, "RUN b2", Some("b2:1"));
        let out = s.delete("b1:1", false, true, &|_| false).unwrap();
        assert_eq!(out[1..], deleted(&[&b1]));
        let out = s.delete("b2:1", false, true, &|id| id == base).unwrap();
        assert_eq!(out[1..], deleted(&[&b2, &a]));
        let out = s.delete(&base, true, true, &|_| false).unwrap();
        assert_eq!(out.last(), Some(&DeleteResult::Deleted(base.clone())));

        // noprune keeps the parents, intermediate (untagged, childless now: dangling).
        let base = import(&s, &[("g", "2")], Some("base:2"));
        let a = child(&s, &base, "RUN a", None);
        let top = child(&s, &a, "RUN top", Some("top:2"));
        let out = s.delete("top:2", false, false, &|_| false).unwrap();
        assert_eq!(out[1..], deleted(&[&top]));
        assert!(s.get(&a).is_ok_and(|r| !r.has_children));
    }

    #[test]
    fn an_image_with_children_cannot_be_deleted_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let base = import(&s, &[("f", "1")], None);
        let a = child(&s, &base, "RUN a", Some("a:1"));
        for force in [false, true] {
            let err = s.delete(&base, force, true, &|_| false).unwrap_err();
            assert!(matches!(err, ImageError::Conflict(_)), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "conflict: unable to delete {} (cannot be forced) - image has dependent \
                     child images",
                    &hex_of(&base)[..12]
                )
            );
        }
        assert!(s.get(&base).is_ok() && s.get(&a).is_ok());
    }

    #[test]
    fn prune_keeps_intermediate_images_and_removes_dangling_chains() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let base = import(&s, &[("f", "1")], Some("base:1"));
        let kept = child(&s, &base, "RUN kept", None);
        let tagged = child(&s, &kept, "RUN tagged", Some("t:1"));
        let d1 = child(&s, &base, "RUN d1", None);
        let d2 = child(&s, &d1, "RUN d2", None);
        let (gone, bytes) = s.prune(false, &|_| false).unwrap();
        assert_eq!(gone, deleted(&[&d2, &d1]));
        assert_eq!(bytes, 0, "their layers are base's");
        for id in [&base, &kept, &tagged] {
            assert!(s.get(id).is_ok());
        }
        // A used one stays, and so does its parent.
        let d1 = child(&s, &base, "RUN d1", None);
        let d2 = child(&s, &d1, "RUN d2", None);
        let (gone, _) = s.prune(false, &|id| id == d2).unwrap();
        assert!(gone.is_empty());
        // `-a`: every unused image without children goes, its names first, repeatedly.
        let (gone, bytes) = s.prune(true, &|id| id == d2).unwrap();
        let mut want = vec![DeleteResult::Untagged("t:1".into())];
        want.extend(deleted(&[&tagged, &kept]));
        assert_eq!(gone, want);
        assert_eq!(bytes, 0);
        let (gone, bytes) = s.prune(true, &|_| false).unwrap();
        let mut want = deleted(&[&d2, &d1]);
        want.push(DeleteResult::Untagged("base:1".into()));
        want.extend(deleted(&[&base]));
        assert_eq!(gone, want);
        assert_eq!(bytes, 1);
        assert!(s.list().is_empty());
    }

    #[test]
    fn created_times_parse() {
        assert_eq!(parse_created(Some("1970-01-01T00:00:10Z")), 10);
        assert_eq!(
            parse_created(Some("2026-11-28T23:19:08.123456789Z")),
            1_795_907_948
        );
        assert_eq!(parse_created(None), 0);
    }
}
