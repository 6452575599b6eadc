//! berth-daemon is the engine behind the API: it owns the read-copy-update configuration
//! store (one immutable snapshot of user config plus derived runtimes behind an atomic
//! pointer; each operation loads it once), the facts read from the host (every host path
//! from `Paths::host`) and where containers' cgroups are, the system
//! operations (`version`, `info`, reload), images (through berth-images), and containers:
//! their store and state machine, lifecycle over retained containerd handles, stdio and the
//! container's log (through berth-logdriver), exec, cp in and out, restart policies, restore and reconciliation, and the
//! one containerd event loop that records exits; the events ring behind `docker events`;
//! disk usage; volumes (through berth-volumes): their API operations and events, and a
//! container's mounts (planned at create, mounted and filled at start, released at exit);
//! `docker build` (the classic builder, over berth-dockerfile): stages, one image per step,
//! the step cache, RUN in its own containers.
//!
//! It returns values (inspect, summaries, stats samples, history) that the API shapes for
//! the wire, and re-exports what the API needs from the crates below it (image values and
//! errors, runtime errors), so the API depends on no crate under this one. `testing`
//! (feature `test-support`) is the one real engine for tests, over no containerd or the fake.
//!
//! It must not depend on berth-api or on HTTP types: the API layer maps its results and
//! errors to the wire.

pub mod apparmor;
mod build;
mod cgroups;
#[cfg(test)]
mod checklist;
mod containers;
mod daemon;
mod df;
mod error;
pub mod events;
#[cfg(test)]
mod fuzz;
mod host;
pub(crate) mod images;
mod snapshot;
mod system;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
mod volumes;

pub use berth_containerd::{Code, ContainerdError, RpcCounter};
// What the API names of the layers under the engine: image values and errors, runtime
// errors and `docker info`'s runtime entries.
pub use berth_images::{
    DeleteResult, ImageError, ImageRecord, ImportOptions, LoadedImage, Reference,
};
pub use berth_inroot::RootError;
pub use berth_logdriver::LogError;
pub use berth_network::{
    CreateRequest as NetworkCreateRequest, InterfaceStats, IpamEntry, Network, NetworkError,
};
pub use berth_registry::{Credentials, Platform, Progress, ProgressSink, RegistryError};
pub use berth_runtimes::{RuntimeError, RuntimeInfo};
pub use berth_volumes::{
    ListFilter as VolumeListFilter, Pruned as VolumesPruned, Volume, VolumeError,
};
pub use build::{BuildCachePruned, BuildCacheRecord, BuildError, BuildOptions};
pub use cgroups::Cgroups;
pub use containers::kill::parse_signal;
pub use containers::networks::{NetworkMember, NetworkView};
pub use containers::wait::WaitCondition;
pub use containers::{
    CgroupStats, Change, Container, ContainerInspect, Exec, ExecConfig, ExecInspect, Health,
    HealthStatus, InvalidConfig, ListError, ListOptions, LogLine, LogOptions, OutputChunk,
    PathStat, ProbeResult, Record, STDIN_QUEUE, State, StatsSample, Status, StdinMsg, StreamKind,
    Summary, UNTAR_HELPER, UpdateRequest, untar_helper_main,
};
pub use daemon::Daemon;
pub use df::{ContainerUsage, DiskUsage, ImageUsage, VolumeUsage};
pub use error::{DaemonError, StartFailure, error_chain};
pub(crate) use error::{log_containerd_cleanup, log_io_cleanup};
pub use host::{CgroupFacts, CpuFacts, HostFacts, MachineHost, backing_filesystem};
pub use images::{CommitRequest, HistoryItem};
pub use snapshot::{ConfigStore, Snapshot};
pub use system::{ComponentVersion, SystemInfo, SystemVersion};
