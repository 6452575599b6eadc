use std::path::PathBuf;
use std::time::Duration;

pub use containerd_client::tonic::Code;

/// What went wrong talking to, or running, containerd.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error("invalid containerd namespace {0:?}")]
    Namespace(String),
    /// containerd (or the runtime under it) refused or failed a call: its gRPC code, which
    /// callers branch on, and its words (for a failed start, runc's).
    #[error("containerd call {method} failed: {message}{}", cause_suffix(.cause))]
    Rpc {
        method: &'static str,
        code: Code,
        message: String,
        /// What lay under the status (a transport failure), when anything did.
        cause: Option<String>,
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

fn cause_suffix(cause: &Option<String>) -> String {
    cause.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
}

impl ContainerdError {
    /// The gRPC code of a failed call; `None` for what is not a call (start-up, files).
    pub fn code(&self) -> Option<Code> {
        match self {
            ContainerdError::Rpc { code, .. } => Some(*code),
            ContainerdError::Namespace(_)
            | ContainerdError::Write { .. }
            | ContainerdError::Spawn { .. }
            | ContainerdError::ExitedEarly { .. }
            | ContainerdError::NotReady { .. }
            | ContainerdError::Stale { .. } => None,
        }
    }

    /// containerd said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(Code::NotFound)
    }

    /// The gRPC status message, for errors shown to users (runc's own words).
    pub fn status_message(&self) -> Option<&str> {
        match self {
            ContainerdError::Rpc { message, .. } => Some(message),
            ContainerdError::Namespace(_)
            | ContainerdError::Write { .. }
            | ContainerdError::Spawn { .. }
            | ContainerdError::ExitedEarly { .. }
            | ContainerdError::NotReady { .. }
            | ContainerdError::Stale { .. } => None,
        }
    }

    pub(crate) fn rpc(method: &'static str, status: containerd_client::tonic::Status) -> Self {
        use std::error::Error;
        let mut cause: Option<String> = None;
        let mut next = status.source();
        while let Some(e) = next {
            let text = e.to_string();
            cause = Some(match cause {
                Some(c) => format!("{c}: {text}"),
                None => text,
            });
            next = e.source();
        }
        ContainerdError::Rpc {
            method,
            code: status.code(),
            message: status.message().to_string(),
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_client::tonic::Status;

    #[test]
    fn a_failed_call_keeps_its_code_and_says_why() {
        let e = ContainerdError::rpc("Tasks.Kill", Status::not_found("task abc not found"));
        assert_eq!(e.code(), Some(Code::NotFound));
        assert!(e.is_not_found());
        assert_eq!(e.status_message(), Some("task abc not found"));
        assert_eq!(
            e.to_string(),
            "containerd call Tasks.Kill failed: task abc not found"
        );
        let e = ContainerdError::Namespace("x y".into());
        assert_eq!((e.code(), e.is_not_found()), (None, false));
    }
}
