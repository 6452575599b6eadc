//! The classic builder's cache: which image a step made from which parent. A key is the
//! sha256 of the parent's ID, the step's history line and the config it leaves; each lives
//! in `<data-root>/builder/cache/<key>` (JSON: the image, the step, when it was made and last
//! used), so the cache survives a restart and goes with `docker builder prune`. Records are
//! written without waiting for the disk: a crash may lose one, which only costs a rebuild.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One step in the cache, as `system df` and `builder prune` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildCacheRecord {
    /// The key (64 hex).
    #[serde(skip)]
    pub id: String,
    /// The image the step made.
    pub image: String,
    /// The step's history line.
    pub description: String,
    /// Unix seconds.
    pub created_at: i64,
    pub last_used_at: i64,
    pub usage_count: u64,
    /// Bytes of the step's own layer (0 for a step that changed only the config).
    #[serde(default)]
    pub size: u64,
    /// Its layer is one of a tagged image's (removing the step frees nothing).
    #[serde(skip)]
    pub shared: bool,
}

/// What `docker builder prune` removed.
#[derive(Debug, Clone, Default)]
pub struct BuildCachePruned {
    pub deleted: Vec<String>,
    pub reclaimed: u64,
}

pub(super) fn key(
    parent: &str,
    created_by: &str,
    config: &serde_json::Value,
    extra: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [parent, created_by, &config.to_string(), extra] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn dir(builder: &Path) -> PathBuf {
    builder.join("cache")
}

/// The image cached for `key`, its use recorded.
pub(super) fn lookup(builder: &Path, key: &str) -> Option<String> {
    let p = dir(builder).join(key);
    let mut r: BuildCacheRecord = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
    r.last_used_at = now();
    r.usage_count += 1;
    if let Ok(bytes) = serde_json::to_vec(&r) {
        let _ = berth_images::files::write_replace(&p, &bytes, 0o600);
    }
    Some(r.image)
}

/// Records that `key` made `image`.
pub(super) fn store(builder: &Path, key: &str, image: &str, description: &str, size: u64) {
    let d = dir(builder);
    let r = BuildCacheRecord {
        id: key.to_string(),
        image: image.to_string(),
        description: description.to_string(),
        created_at: now(),
        last_used_at: now(),
        usage_count: 1,
        size,
        shared: false,
    };
    let written = std::fs::create_dir_all(&d).and_then(|()| {
        let bytes = serde_json::to_vec(&r).map_err(std::io::Error::other)?;
        berth_images::files::write_replace(&d.join(key), &bytes, 0o600)
    });
    if let Err(e) = written {
        tracing::warn!(error = %e, "cannot record a build step in the cache");
    }
}

/// Every record.
pub(crate) fn list(builder: &Path) -> Vec<BuildCacheRecord> {
    let Ok(entries) = std::fs::read_dir(dir(builder)) else {
        return Vec::new();
    };
    let mut out: Vec<BuildCacheRecord> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            if name.len() != 64 {
                return None;
            }
            let mut r: BuildCacheRecord =
                serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            r.id = name;
            Some(r)
        })
        .collect();
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    out
}

/// Forgets a record.
pub(crate) fn forget(builder: &Path, key: &str) {
    let _ = std::fs::remove_file(dir(builder).join(key));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_and_count_their_uses() {
        let d = tempfile::tempdir().unwrap();
        let k = key(
            "sha256:p",
            "/bin/sh -c echo",
            &serde_json::json!({"Env": []}),
            "",
        );
        assert_eq!(lookup(d.path(), &k), None);
        store(d.path(), &k, "sha256:c", "/bin/sh -c echo", 5);
        assert_eq!(lookup(d.path(), &k).as_deref(), Some("sha256:c"));
        let all = list(d.path());
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].usage_count, all[0].size), (2, 5));
        assert_ne!(
            k,
            key(
                "sha256:q",
                "/bin/sh -c echo",
                &serde_json::json!({"Env": []}),
                ""
            )
        );
        assert_ne!(
            k,
            key(
                "sha256:p",
                "/bin/sh -c echo",
                &serde_json::json!({"Env": ["A=1"]}),
                ""
            )
        );
        forget(d.path(), &k);
        assert!(list(d.path()).is_empty());
    }
}
