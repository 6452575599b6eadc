//! berth-containerd owns everything berthd says to containerd: the gRPC connection (tonic,
//! through `containerd-client`), the `containerd-namespace` header, the one counting layer
//! every RPC passes through (`RpcCounter`, exported as
//! `berth_containerd_rpc_total{method=...}`), and the managed containerd process berthd
//! starts, supervises and stops when no `--containerd` address is given.
//!
//! It hands out Container / Task / Process handles that the daemon keeps for a container's
//! life, each call one RPC, and one decoded task-event subscription; it finds shims containerd
//! lost track of, and (feature `fake`) serves a fake containerd for tests. It must not depend on
//! berth-daemon, berth-api, berth-images or berth-oci: it speaks containerd, not Docker.

mod client;
mod counter;
mod error;
mod events;
#[cfg(feature = "fake")]
pub mod fake;
mod handles;
mod managed;
mod options;
mod shims;

pub use client::{Client, ContainerdVersion, Service};
pub use containerd_client::types::Mount;
pub use counter::{Counted, RpcCounter};
pub use error::{Code, ContainerdError};
pub use events::TaskEvent;
pub use handles::{Container, ExitStatus, Process, Stdio, Task, TaskInfo, TaskStatus};
pub use managed::{ManagedContainerd, ManagedOptions, render_config};
pub use options::{GenericOptionsProto, RuncOptionsProto, RuntimeSpec};
pub use shims::{UntrackedShim, untracked_shims};
