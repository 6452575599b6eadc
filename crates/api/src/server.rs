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

/// How long a client may take to send a request's headers, and how long an idle kept-alive
/// connection is kept: a client that opens connections and sends nothing, or a header a
/// byte at a time, cannot hold the daemon's connections for ever.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting and lets
/// requests in flight finish.
pub async fn serve<F>(listener: UnixListener, router: Router, shutdown: F) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    serve_with(listener, router, shutdown, HEADER_TIMEOUT).await
}

/// [`serve`] with a given header timeout. Each connection is HTTP/1 with upgrades (attach and
/// exec hijack it).
pub async fn serve_with<F>(
    listener: UnixListener,
    router: Router,
    shutdown: F,
    header_timeout: std::time::Duration,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            tokio::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    // Finish the request in flight, take no other.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads until the server closes the connection; what it sent.
    async fn read_to_close(s: &mut tokio::net::UnixStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        let r =
            tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(r.is_ok(), "the connection was not closed");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn half_sent_and_idle_requests_are_closed_after_the_header_timeout() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let listener = bind_unix(&path, "no-such-group-berth").unwrap();
        let router = Router::new().route("/_ping", axum::routing::get(|| async { "OK" }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with(
            listener,
            router,
            async {
                let _ = rx.await;
            },
            std::time::Duration::from_millis(300),
        ));
        // Half a header, then nothing.
        let mut slow = tokio::net::UnixStream::connect(&path).await.unwrap();
        slow.write_all(b"GET /_ping HTTP/1.1\r\nHo").await.unwrap();
        let got = read_to_close(&mut slow).await;
        assert!(!got.contains("200 OK"), "{got}");
        // Kept alive after an answer, then idle.
        let mut idle = tokio::net::UnixStream::connect(&path).await.unwrap();
        idle.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let got = read_to_close(&mut idle).await;
        assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
        // A whole request is answered as usual.
        let mut ok = tokio::net::UnixStream::connect(&path).await.unwrap();
        ok.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").await.unwrap();
        assert!(read_to_close(&mut ok).await.ends_with("OK"));
        let _ = tx.send(());
        server.await.unwrap().unwrap();
    }

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
