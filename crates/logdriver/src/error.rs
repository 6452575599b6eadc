use std::path::PathBuf;

/// A log file that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The driver keeps nothing to read back (`none`); dockerd's words.
    #[error("configured logging driver does not support reading")]
    NotReadable,
    #[error("cannot write the log file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot rotate the log file {path}")]
    Rotate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the log file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
