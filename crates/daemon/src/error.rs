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
    #[error("a background task failed: {0}")]
    Task(String),
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
