use std::path::PathBuf;

/// What can go wrong with a volume or a mount specification. Messages are dockerd's where
/// clients read them.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// 404.
    #[error("get {name}: no such volume")]
    NotFound { name: String },
    /// 409: a container (running or not) holds it.
    #[error("remove {name}: volume is in use - [{}]", users.join(" "))]
    InUse { name: String, users: Vec<String> },
    /// 400.
    #[error(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    InvalidName { name: String },
    /// 400: a driver option the local driver does not know, or a missing one.
    #[error("create {name}: {reason}")]
    InvalidOption { name: String, reason: String },
    /// 404: only the local driver exists.
    #[error("error looking up volume plugin {driver}: plugin \"{driver}\" not found")]
    UnknownDriver { driver: String },
    /// 409: a volume of that name exists with another driver.
    #[error("a volume with the name {name} already exists with driver \"{driver}\"")]
    DriverConflict { name: String, driver: String },
    /// 400: a `-v` entry.
    #[error("invalid volume specification: '{spec}'{}", reason_suffix(reason))]
    InvalidSpec { spec: String, reason: String },
    /// 400: a `--mount` entry.
    #[error("invalid mount config for type \"{typ}\": {reason}")]
    InvalidMount { typ: String, reason: String },
    /// 400: two mounts at one place.
    #[error("Duplicate mount point: {destination}")]
    DuplicateMountPoint { destination: String },
    /// A volume's driver options could not be mounted (or unmounted).
    #[error("error while mounting volume '{path}'")]
    Mount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// Copying the image's files into a volume failed.
    #[error("copying the image's files at {path} into the volume")]
    CopyUp {
        path: PathBuf,
        #[source]
        source: berth_inroot::RootError,
    },
    /// A path inside a volume (its `Subpath`).
    #[error("cannot access {path} in volume {name}")]
    Subpath {
        name: String,
        path: String,
        #[source]
        source: berth_inroot::RootError,
    },
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

impl VolumeError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> VolumeError {
        let path = path.into();
        move |source| VolumeError::Io { path, source }
    }
}
