use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::Router;
use nix::unistd::{Gid, Group, Uid, chown};
use tokio::net::UnixListener;

/// Why a socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot create the folder of {path}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove the stale socket {path}")]
    Stale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {path}")]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set the owner or mode of {path}")]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Listens on a unix socket at `path`, mode 0660, owned by root and `group` (root's group
/// when `group` does not exist). The socket is made under a temporary name, given its owner
/// and mode, and only then renamed into place, so it is never reachable with looser
/// permissions. A stale socket file at `path` is replaced: the caller holds the daemon's
/// locks, so no live daemon owns it.
pub fn bind_unix(path: &Path, group: &str) -> Result<UnixListener, BindError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| BindError::Folder {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|source| BindError::Listen {
        path: path.to_path_buf(),
        source,
    })?;
    let perms = |source| BindError::Permissions {
        path: path.to_path_buf(),
        source,
    };
    let gid = match Group::from_name(group) {
        Ok(Some(g)) => g.gid,
        _ => {
            tracing::warn!(group, "socket group not found; the socket stays root's");
            Gid::from_raw(0)
        }
    };
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o660)).map_err(perms)?;
    chown(&tmp, Some(Uid::from_raw(0)), Some(gid)).map_err(|e| perms(std::io::Error::from(e)))?;
    match fs::remove_file(path) {
        Ok(()) => tracing::info!(path = %path.display(), "replaced a stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BindError::Stale {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    fs::rename(&tmp, path).map_err(|source| BindError::Listen {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(listener)
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting and lets
/// requests in flight finish.
pub async fn serve<F>(listener: UnixListener, router: Router, shutdown: F) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn socket_is_0660_and_replaces_a_stale_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/d.sock");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "stale").unwrap();
        let _l = bind_unix(&path, "no-such-group-berth").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::metadata(&path).unwrap().file_type().is_socket());
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }
}
