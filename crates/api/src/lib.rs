//! berth-api owns the Docker Engine API on the wire: HTTP/1.1 on unix sockets (created 0660,
//! never world-accessible), the `/v1.N` version prefix and its negotiation, the routes, the
//! JSON shapes Docker clients expect, the one place where engine errors become statuses
//! (`{"message": ...}` bodies), per-request tracing, and the Prometheus metrics endpoint.
//!
//! Handlers call `berth_daemon::Daemon`; routing tests run a real daemon on temporary
//! folders with no containerd behind it. It must not talk to containerd itself or read the
//! configuration pointer twice in one request.

mod error;
#[cfg(test)]
mod fuzz;
mod hijack;
mod metrics;
mod middleware;
mod query;
mod routes;
mod server;
pub mod types;
mod version;

pub use error::ApiError;
pub use metrics::{render_metrics, serve_metrics};
pub use routes::router;
pub use server::{BindError, bind_unix, serve};
pub use version::{ApiVersion, MAX_API_VERSION, MIN_API_VERSION};
