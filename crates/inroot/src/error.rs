use std::path::PathBuf;

/// What can go wrong inside a root.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{path}: {source}")]
    Io {
        /// The path as the container names it (or the host folder of a root).
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a regular file")]
    NotRegular { path: PathBuf },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("bad archive entry {path}: {reason}")]
    BadEntry { path: PathBuf, reason: String },
    #[error("reading the archive: {0}")]
    Stream(#[source] std::io::Error),
}

impl RootError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(nix::Error) -> RootError {
        let path = path.into();
        move |e| RootError::Io {
            path,
            source: e.into(),
        }
    }

    pub(crate) fn std_io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RootError {
        let path = path.into();
        move |source| RootError::Io { path, source }
    }

    /// The error says the path does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RootError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}
