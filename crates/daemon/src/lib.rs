//! berth-daemon is the engine behind the API: it owns the read-copy-update configuration
//! store (one immutable snapshot of user config plus derived runtimes behind an atomic
//! pointer; each operation loads it once), the facts read from the host, and the system
//! operations (`version`, `info`, reload). Containers, images, exec, logs and events join it
//! as their issues land.
//!
//! It must not depend on berth-api or on HTTP types: the API layer maps its results and
//! errors to the wire.

mod error;
mod host;
mod images;
mod snapshot;
mod system;

pub use berth_containerd::RpcCounter;
pub use error::DaemonError;
pub use host::{CgroupFacts, HostFacts, backing_filesystem};
pub use snapshot::{ConfigStore, Snapshot};
pub use system::{ComponentVersion, Daemon, SystemInfo, SystemVersion};
