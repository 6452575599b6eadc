use std::path::PathBuf;

/// Why an image operation failed. `NotFound`, `InvalidReference`, `Conflict` and
/// `BadArchive` are the client's doing (404, 400, 409, 400); the rest are faults.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("invalid reference format: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("invalid image archive: {0}")]
    BadArchive(String),
    #[error("invalid change {change:?}: {reason}")]
    BadChange { change: String, reason: String },
    #[error("layer {expected} does not match its content (got {actual})")]
    DiffMismatch { expected: String, actual: String },
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the image data")]
    Stream(#[source] std::io::Error),
    #[error("image metadata {path} is corrupt")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Io { path, source }
}
