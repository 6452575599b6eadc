//! The pid file and the data-root lock: one berthd per pid file and per data-root.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("pid file found, ensure berthd is not running or delete {path}")]
    PidfileHeld { path: PathBuf },
    #[error(
        "another berthd is using data-root {data_root} (it holds {lock}); \
         give this one its own --data-root"
    )]
    DataRootHeld { data_root: PathBuf, lock: PathBuf },
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Locks held for the daemon's life; dropping them releases the locks.
#[derive(Debug)]
pub struct DaemonLocks {
    _data_root: Flock<File>,
    pidfile: Flock<File>,
    pidfile_path: PathBuf,
}

fn open(path: &Path) -> Result<File, LockError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })
}

impl DaemonLocks {
    /// Takes the data-root lock, then the pid file's, and writes our pid. Nothing is
    /// changed on disk when either is held by another berthd.
    pub fn acquire(
        data_root: &Path,
        data_root_lock: &Path,
        pidfile: &Path,
    ) -> Result<DaemonLocks, LockError> {
        let dr =
            Flock::lock(open(data_root_lock)?, FlockArg::LockExclusiveNonblock).map_err(|_| {
                LockError::DataRootHeld {
                    data_root: data_root.to_path_buf(),
                    lock: data_root_lock.to_path_buf(),
                }
            })?;
        let mut pf =
            Flock::lock(open(pidfile)?, FlockArg::LockExclusiveNonblock).map_err(|_| {
                LockError::PidfileHeld {
                    path: pidfile.to_path_buf(),
                }
            })?;
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.write_all(format!("{}\n", std::process::id()).as_bytes())?;
            f.sync_all()
        };
        write(&mut pf).map_err(|source| LockError::Open {
            path: pidfile.to_path_buf(),
            source,
        })?;
        Ok(DaemonLocks {
            _data_root: dr,
            pidfile: pf,
            pidfile_path: pidfile.to_path_buf(),
        })
    }

    /// Removes the pid file (while still holding its lock) and releases both locks.
    pub fn release(self) {
        if let Err(e) = std::fs::remove_file(&self.pidfile_path) {
            tracing::warn!(path = %self.pidfile_path.display(), error = %e, "cannot remove the pid file");
        }
        drop(self.pidfile);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let lock = root.join("berthd.lock");
        let pid = dir.path().join("b.pid");
        let first = DaemonLocks::acquire(&root, &lock, &pid).unwrap();
        let written = std::fs::read_to_string(&pid).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());

        let err = DaemonLocks::acquire(&root, &lock, &dir.path().join("other.pid")).unwrap_err();
        assert!(matches!(err, LockError::DataRootHeld { .. }), "{err}");
        // Same pid file, different data-root.
        let err = DaemonLocks::acquire(&dir.path().join("d2"), &dir.path().join("d2/l"), &pid)
            .unwrap_err();
        assert!(err.to_string().starts_with("pid file found"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&pid).unwrap(),
            written,
            "pid file untouched"
        );

        first.release();
        assert!(!pid.exists());
        DaemonLocks::acquire(&root, &lock, &pid).unwrap();
    }
}
