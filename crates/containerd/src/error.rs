use std::path::PathBuf;
use std::time::Duration;

/// What went wrong talking to, or running, containerd.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error("invalid containerd namespace {0:?}")]
    Namespace(String),
    #[error("containerd call {method} failed")]
    Rpc {
        method: &'static str,
        #[source]
        source: Box<containerd_client::tonic::Status>,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {binary}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd exited during start-up ({status}); its log ends with:\n{log_tail}")]
    ExitedEarly { status: String, log_tail: String },
    #[error(
        "containerd did not answer on {address} within {waited:?}; its log ends with:\n{log_tail}"
    )]
    NotReady {
        address: PathBuf,
        waited: Duration,
        log_tail: String,
    },
    #[error("cannot stop the stale containerd (pid {pid}) left by an earlier berthd")]
    Stale {
        pid: i32,
        #[source]
        source: nix::Error,
    },
}

impl ContainerdError {
    /// containerd said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ContainerdError::Rpc { source, .. } if source.code() == containerd_client::tonic::Code::NotFound)
    }

    /// The gRPC status message, for errors shown to users (runc's own words).
    pub fn status_message(&self) -> Option<&str> {
        match self {
            ContainerdError::Rpc { source, .. } => Some(source.message()),
            _ => None,
        }
    }

    pub(crate) fn rpc(method: &'static str, status: containerd_client::tonic::Status) -> Self {
        ContainerdError::Rpc {
            method,
            source: Box::new(status),
        }
    }
}
