use std::path::PathBuf;

/// Everything an engine operation can fail with. The API layer maps each variant to a
/// Docker status code in one exhaustive match.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("invalid configuration")]
    Config(#[from] berth_config::ConfigError),
    #[error("invalid runtime configuration")]
    Runtime(#[from] berth_runtimes::RuntimeError),
    #[error("containerd is not available")]
    Containerd(#[from] berth_containerd::ContainerdError),
    #[error("image operation failed")]
    Image(#[from] berth_images::ImageError),
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    NotFoundPath(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("not modified")]
    NotModified,
    #[error("{0}")]
    StartFailed(String),
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
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
