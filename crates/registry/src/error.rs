/// Why a registry operation failed. `NotFound` is a 404 for the client, `BadPlatform` and
/// `Unsupported` its doing (400); the rest are the registry's or the network's (500).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// dockerd's words: `manifest for REF not found: manifest unknown: manifest unknown`.
    #[error("manifest for {reference} not found: {detail}")]
    NotFound { reference: String, detail: String },
    #[error("{method} \"{url}\": no basic auth credentials")]
    NoCredentials { method: String, url: String },
    #[error("{0}")]
    Denied(String),
    #[error("login attempt to {url} failed with status: {status}")]
    LoginFailed { url: String, status: String },
    #[error("{method} \"{url}\"")]
    Connect {
        method: String,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("error reading a blob from {url}")]
    Body {
        url: String,
        #[source]
        source: hyper::Error,
    },
    #[error("{method} {url}: unexpected status {status}{detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("invalid registry address {0:?}")]
    BadAddress(String),
    #[error("filesystem layer verification failed for digest {digest}")]
    DigestMismatch { digest: String, actual: String },
    #[error("blob {digest} is truncated: {got} of {want} bytes")]
    Truncated { digest: String, got: u64, want: u64 },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: usize },
    #[error("invalid manifest: {0}")]
    BadManifest(String),
    #[error("invalid image config: {0}")]
    BadConfig(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoMatchingPlatform(String),
    #[error("invalid platform {0:?}: want os/arch[/variant]")]
    BadPlatform(String),
    #[error("the client went away")]
    Cancelled,
    #[error("cannot write {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] berth_images::ImageError),
    #[error("a pull task failed: {0}")]
    Task(String),
}

impl RegistryError {
    /// An unexpected answer: `detail` is the registry's own error text (empty when none).
    pub(crate) fn status(
        method: &str,
        url: impl Into<String>,
        status: u16,
        detail: String,
    ) -> Self {
        RegistryError::Status {
            method: method.into(),
            url: url.into(),
            status,
            detail: if detail.is_empty() {
                detail
            } else {
                format!(": {detail}")
            },
        }
    }

    /// Whether trying again may help (the network, a 5xx, a 429).
    pub(crate) fn retryable(&self) -> bool {
        match self {
            RegistryError::Connect { .. } | RegistryError::Body { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
