//! Files written whole or not at all, and folders with the modes dockerd gives them.
//!
//! A file is written to a temporary name of its own (unique in the process, created with
//! `O_EXCL`, so two writers of the same file never share one), synced, then renamed over the
//! target: a reader or a crash sees the old file or the new one, never a mix. Temporary names
//! start with `.` and hold `.tmp-`, so a store can recognise and clear those a crash left.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// What every temporary name of this module holds.
pub const TMP_MARK: &str = ".tmp-";

/// Whether `name` is one of this module's temporary names.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(TMP_MARK)
}

/// Replaces `path` whole with `bytes` (a unique temporary name, then a rename) without
/// waiting for the disk: for records a crash may lose (a cache's statistics), never for
/// what the daemon's state depends on.
pub fn write_replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_whole(path, bytes, mode, false)
}

/// Writes `bytes` to `path` with `mode` (exactly, whatever the umask): a unique temporary
/// name beside it, fsync, rename, and an fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_whole(path, bytes, mode, true)
}

fn write_whole(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut f) = create_unique(dir, &name, mode)?;
    let written = (|| {
        f.write_all(bytes)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if durable && let Ok(d) = fs::File::open(dir) {
        // Makes the rename durable; a failure only weakens crash durability.
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new file `.<name>.tmp-<pid>-<n>` in `dir`, never one that exists (a crash of an earlier
/// process with the same pid may have left one).
fn create_unique(dir: &Path, name: &str, mode: u32) -> io::Result<(PathBuf, fs::File)> {
    let mut last = None;
    for _ in 0..64 {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}{TMP_MARK}{}-{n}", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// Creates `path` (and missing parents) and sets its mode exactly, also when it existed, as
/// dockerd's `MkdirAllAndChown` does.
pub fn dir_with_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Creates the file `path` (it must not exist) with `mode` exactly and `bytes`, unsynced: for
/// files inside a folder that is itself committed by a rename or a record.
pub fn create_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn concurrent_writers_of_one_file_never_mix() {
        let d = tempfile::tempdir().unwrap();
        let path = Arc::new(d.path().join("config.v2.json"));
        let barrier = Arc::new(Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    // Each writer's content is long and uniform: a mix would show.
                    let body = vec![b'a' + i as u8; 64 * 1024 + i * 100];
                    barrier.wait();
                    for _ in 0..20 {
                        write_atomic(&path, &body, 0o600).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let got = fs::read(&*path).unwrap();
        let first = got[0];
        let i = usize::from(first - b'a');
        assert_eq!(got.len(), 64 * 1024 + i * 100, "one writer's whole file");
        assert!(got.iter().all(|b| *b == first), "not a mix of writers");
        let meta = fs::metadata(&*path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        let left: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "config.v2.json")
            .collect();
        assert!(left.is_empty(), "no temporary file left: {left:?}");
    }

    #[test]
    fn modes_are_exact_whatever_the_umask_and_temps_are_recognised() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        dir_with_mode(&sub, 0o710).unwrap();
        assert_eq!(
            fs::metadata(&sub).unwrap().permissions().mode() & 0o7777,
            0o710
        );
        dir_with_mode(&sub, 0o700).unwrap();
        assert_eq!(
            fs::metadata(&sub).unwrap().permissions().mode() & 0o7777,
            0o700,
            "an existing folder gets the mode too"
        );
        let f = sub.join("hosts");
        create_with_mode(&f, b"x", 0o644).unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o644
        );
        assert!(create_with_mode(&f, b"y", 0o644).is_err(), "never replaces");
        assert!(is_temporary(".config.v2.json.tmp-12-3"));
        assert!(!is_temporary("config.v2.json") && !is_temporary(".removing-x"));
    }
}
