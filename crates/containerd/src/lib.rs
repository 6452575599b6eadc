//! berth-containerd owns everything berthd says to containerd: the gRPC connection (tonic,
//! through `containerd-client`), the `containerd-namespace` header, the one counting layer
//! every RPC passes through (`RpcCounter`, exported as
//! `berth_containerd_rpc_total{method=...}`), and the managed containerd process berthd
//! starts, supervises and stops when no `--containerd` address is given.
//!
//! Later layers add the Container / Task / Process handles here. It must not depend on
//! berth-daemon, berth-api, berth-images or berth-oci: it speaks containerd, not Docker.

mod client;
mod counter;
mod error;
mod managed;

pub use client::{Client, ContainerdVersion, Service};
pub use counter::{Counted, RpcCounter};
pub use error::ContainerdError;
pub use managed::{ManagedContainerd, ManagedOptions, render_config};
