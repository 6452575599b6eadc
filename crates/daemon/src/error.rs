use std::path::PathBuf;

/// Everything an engine operation can fail with. The API layer maps each variant to a
/// Docker status code in one exhaustive match.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("invalid configuration")]
    Config(#[from] berth_config::ConfigError),
    #[error("invalid runtime configuration")]
    Runtime(#[from] berth_runtimes::RuntimeError),
    /// A containerd call failed; its gRPC code says whose fault (see `ContainerdError::code`).
    #[error(transparent)]
    Containerd(#[from] berth_containerd::ContainerdError),
    #[error("image operation failed")]
    Image(#[from] berth_images::ImageError),
    #[error("registry operation failed")]
    Registry(#[from] berth_registry::RegistryError),
    /// `docker build`: a bad Dockerfile or request, or a step that failed.
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    /// Networks, sandboxes, addresses, ports.
    #[error(transparent)]
    Network(#[from] berth_network::NetworkError),
    /// Volumes and mount specifications.
    #[error(transparent)]
    Volume(#[from] berth_volumes::VolumeError),
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// Refused by the container's state (409), with Docker's words.
    #[error(transparent)]
    Conflict(#[from] crate::containers::state::Conflict),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    NotFoundPath(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("not modified")]
    NotModified,
    /// A container's or an exec's process could not be started; `message` is the runtime's
    /// own words, `kind` says whose fault it was (classified once, where it failed).
    #[error("{message}")]
    StartFailed { kind: StartFailure, message: String },
    #[error("invalid container configuration")]
    Spec(#[from] berth_oci::SpecError),
    #[error("invalid container configuration")]
    Invalid(#[from] crate::containers::InvalidConfig),
    #[error("{0}")]
    AppArmor(String),
    #[error("a background task failed: {0}")]
    Task(String),
    /// A path inside a container or an image (not found, not a regular file, too large, a
    /// bad layer entry, or the host failing).
    #[error(transparent)]
    InRoot(#[from] berth_inroot::RootError),
    /// An operation failed and undoing what it had done failed too: both are reported, and
    /// the status is the operation's.
    #[error("{error} (cleaning up after it also failed: {cleanup})")]
    CleanupFailed {
        error: Box<DaemonError>,
        cleanup: Box<DaemonError>,
    },
    /// A container's log: its driver keeps nothing to read (501), or its files failed.
    #[error(transparent)]
    Log(#[from] berth_logdriver::LogError),
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a process could not start, as dockerd tells them apart. runc reports a failed start
/// only in words, so `StartFailure::of` is the one place those words are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFailure {
    /// A file the start needs does not exist, usually the command (exit code 127).
    NotFound,
    /// The command, or a folder on its way, may not be run (exit code 126).
    PermissionDenied,
    /// A path that must be a folder is not: a mount of a file onto a folder or the reverse,
    /// or a working dir that is a file (exit code 128).
    NotADirectory,
    /// The runtime or the machine failed (exit code 128).
    System,
}

impl StartFailure {
    /// Classifies runc's message (as containerd passes it on).
    pub fn of(runtime_message: &str) -> StartFailure {
        let m = runtime_message.to_ascii_lowercase();
        if m.contains("executable file not found") || m.contains("no such file or directory") {
            StartFailure::NotFound
        } else if m.contains("permission denied") {
            StartFailure::PermissionDenied
        } else if m.contains("not a directory") {
            StartFailure::NotADirectory
        } else {
            StartFailure::System
        }
    }

    /// The exit code dockerd records for a container whose start failed this way.
    pub fn exit_code(self) -> i64 {
        match self {
            StartFailure::NotFound => 127,
            StartFailure::PermissionDenied => 126,
            StartFailure::NotADirectory | StartFailure::System => 128,
        }
    }
}

impl From<crate::containers::state::Refusal> for DaemonError {
    fn from(r: crate::containers::state::Refusal) -> DaemonError {
        use crate::containers::state::Refusal;
        match r {
            Refusal::AlreadyThere => DaemonError::NotModified,
            Refusal::Conflict(c) => DaemonError::Conflict(c),
        }
    }
}

impl DaemonError {
    /// `self`, and the failure of the cleanup that followed it if there was one (logged
    /// here, for the container `id`).
    pub(crate) fn with_cleanup(self, id: &str, cleanup: Option<DaemonError>) -> DaemonError {
        match cleanup {
            None => self,
            Some(cleanup) => {
                tracing::warn!(container = %id, error = %self, cleanup = %cleanup, "cleanup after a failure failed too");
                DaemonError::CleanupFailed {
                    error: Box::new(self),
                    cleanup: Box::new(cleanup),
                }
            }
        }
    }

    /// A failed Tasks.Start (or Tasks.Create, or an exec's start), classified once, here. A
    /// call containerd itself could not serve (it is gone, or the call was cut off) is not
    /// the runtime's answer and stays a containerd error, mapped by its gRPC code.
    pub(crate) fn start_failed(e: berth_containerd::ContainerdError) -> DaemonError {
        use berth_containerd::Code;
        let runtime_answered = match e.code() {
            Some(Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded) | None => false,
            Some(
                Code::Ok
                | Code::Unknown
                | Code::InvalidArgument
                | Code::NotFound
                | Code::AlreadyExists
                | Code::PermissionDenied
                | Code::ResourceExhausted
                | Code::FailedPrecondition
                | Code::Aborted
                | Code::OutOfRange
                | Code::Unimplemented
                | Code::Internal
                | Code::DataLoss
                | Code::Unauthenticated,
            ) => true,
        };
        match e.status_message() {
            Some(m) if runtime_answered && !m.is_empty() => DaemonError::StartFailed {
                kind: StartFailure::of(m),
                message: m.to_string(),
            },
            _ => DaemonError::Containerd(e),
        }
    }
}

/// A cleanup step whose failure changes nothing for the caller but must be seen: logged,
/// unless what it removes was already gone.
pub(crate) fn log_io_cleanup(what: &str, path: &std::path::Path, result: std::io::Result<()>) {
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cleanup failed: {what}");
    }
}

/// `log_io_cleanup` for containerd objects.
pub(crate) fn log_containerd_cleanup<T>(
    what: &str,
    id: &str,
    result: Result<T, berth_containerd::ContainerdError>,
) {
    if let Err(e) = result
        && !e.is_not_found()
    {
        tracing::warn!(container = %id, error = %e, "cleanup failed: {what}");
    }
}

impl DaemonError {
    /// What the user is told: the inner error (with its sources) where the outer variant
    /// only names the layer.
    pub fn user_message(&self) -> String {
        let e = self;
        match e {
            DaemonError::Config(inner) => error_chain(inner),
            DaemonError::Runtime(inner) => error_chain(inner),
            DaemonError::Image(inner) => error_chain(inner),
            DaemonError::Registry(inner) => error_chain(inner),
            DaemonError::Network(inner) => error_chain(inner),
            DaemonError::Volume(inner) => error_chain(inner),
            DaemonError::Spec(inner) => error_chain(inner),
            DaemonError::Invalid(inner) => error_chain(inner),
            DaemonError::NoSuchContainer(_)
            | DaemonError::NoSuchExec(_)
            | DaemonError::NotFoundPath(_)
            | DaemonError::Forbidden(_)
            | DaemonError::Conflict(_)
            | DaemonError::InvalidParameter(_)
            | DaemonError::NotModified
            | DaemonError::StartFailed { .. }
            | DaemonError::Build(_)
            | DaemonError::AppArmor(_) => e.to_string(),
            DaemonError::CleanupFailed { error, cleanup } => format!(
                "{} (cleaning up after it also failed: {})",
                error.user_message(),
                cleanup.user_message()
            ),
            DaemonError::Containerd(_)
            | DaemonError::Io { .. }
            | DaemonError::Task(_)
            | DaemonError::Log(_)
            | DaemonError::InRoot(_) => error_chain(e),
        }
    }
}

/// An error with its sources, each said once, joined as dockerd joins wrapped errors
/// (`outer: inner: innermost`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_containerd::{Code, ContainerdError};

    /// runc 1.1's words for each failure, as containerd passes them on.
    const PREFIX: &str = "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: ";

    fn kind(rest: &str) -> StartFailure {
        StartFailure::of(&format!("{PREFIX}{rest}: unknown"))
    }

    #[test]
    fn a_command_not_on_path_is_not_found_127() {
        let k = kind("exec: \"nosuch\": executable file not found in $PATH");
        assert_eq!((k, k.exit_code()), (StartFailure::NotFound, 127));
    }

    #[test]
    fn a_missing_command_path_is_not_found_127() {
        let k = kind("exec: \"/no/such\": stat /no/such: no such file or directory");
        assert_eq!((k, k.exit_code()), (StartFailure::NotFound, 127));
    }

    #[test]
    fn a_command_that_cannot_run_is_permission_denied_126() {
        let k = kind("exec: \"/etc\": permission denied");
        assert_eq!((k, k.exit_code()), (StartFailure::PermissionDenied, 126));
    }

    #[test]
    fn a_file_mounted_onto_a_folder_is_not_a_directory_128() {
        let k = kind(
            "error during container init: error mounting \"/tmp/f\" to rootfs at \"/etc\": mount /tmp/f:/etc (via /proc/self/fd/6), flags: 0x5000: not a directory",
        );
        assert_eq!((k, k.exit_code()), (StartFailure::NotADirectory, 128));
    }

    #[test]
    fn a_working_dir_that_is_a_file_is_not_a_directory() {
        let k = kind(
            "error during container init: chdir to cwd (\"/etc/passwd\") set in config.json failed: not a directory",
        );
        assert_eq!(k, StartFailure::NotADirectory);
    }

    #[test]
    fn anything_else_is_the_machines_128() {
        let k = kind(
            "error during container init: error setting cgroup config for procHooks process: openat2 /sys/fs/cgroup/berth/x/memory.max: operation not permitted",
        );
        assert_eq!((k, k.exit_code()), (StartFailure::System, 128));
        assert_eq!(
            StartFailure::of("EXECUTABLE FILE NOT FOUND"),
            StartFailure::NotFound
        );
    }

    fn rpc(code: Code, message: &str) -> ContainerdError {
        ContainerdError::Rpc {
            method: "Tasks.Start",
            code,
            message: message.into(),
            cause: None,
        }
    }

    #[test]
    fn the_runtimes_answer_is_a_start_failure_and_a_lost_containerd_is_not() {
        let words = "exec: \"x\": executable file not found in $PATH";
        assert!(matches!(
            DaemonError::start_failed(rpc(Code::Unknown, words)),
            DaemonError::StartFailed { kind: StartFailure::NotFound, message } if message == words
        ));
        assert!(matches!(
            DaemonError::start_failed(rpc(Code::Unavailable, "transport error")),
            DaemonError::Containerd(_)
        ));
        assert!(matches!(
            DaemonError::start_failed(rpc(Code::Unknown, "")),
            DaemonError::Containerd(_)
        ));
    }
}
