//! berth-daemon is the engine behind the API: it owns the read-copy-update configuration
//! store (one immutable snapshot of user config plus derived runtimes behind an atomic
//! pointer; each operation loads it once), the facts read from the host, the system
//! operations (`version`, `info`, reload), images (through berth-images), and containers:
//! their store and state machine, lifecycle over retained containerd handles, stdio and the
//! json-file log, exec, cp in and out, restart policies, restore and reconciliation, and the
//! one containerd event loop that records exits; the events ring behind `docker events`;
//! disk usage.
//!
//! It must not depend on berth-api or on HTTP types: the API layer maps its results and
//! errors to the wire.

pub mod apparmor;
#[cfg(test)]
mod checklist;
mod containers;
mod df;
mod error;
pub mod events;
mod host;
pub(crate) mod images;
mod snapshot;
mod system;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use berth_containerd::RpcCounter;
pub use berth_inroot::RootError;
pub use containers::lifecycle::{WaitCondition, parse_signal};
pub use containers::{
    CgroupStats, Change, Container, Exec, ExecConfig, ExecInspect, InvalidConfig, ListError,
    ListOptions, LogLine, LogOptions, OutputChunk, PathStat, Record, State, Status, StdinMsg,
    StreamKind, Summary, UNTAR_HELPER, UpdateRequest, untar_helper_main,
};
pub use df::{ContainerUsage, DiskUsage, ImageUsage};
pub use error::DaemonError;
pub use host::{CgroupFacts, CpuFacts, HostFacts, MachineHost, backing_filesystem};
pub use images::CommitRequest;
pub use snapshot::{ConfigStore, Snapshot};
pub use system::{ComponentVersion, Daemon, SystemInfo, SystemVersion};
