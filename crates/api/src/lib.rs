//! berth-api owns the Docker Engine API on the wire: HTTP/1.1 on unix sockets (created 0660,
//! never world-accessible), the `/v1.N` version prefix and its negotiation, the routes, the
//! JSON shapes Docker clients expect, the one place where engine errors become statuses
//! (`{"message": ...}` bodies), per-request tracing, and the Prometheus metrics endpoint.
//!
//! Request bodies are read in `body`, every JSON shape sent is built in `wire`, and the
//! handlers in `routes` (one file per resource, sharing only `routes::common`) glue a parsed
//! request to a `berth_daemon::Daemon` call and its value to a wire shape. Routing tests run
//! the shared test engine (`berth_daemon::testing`), with no containerd or the fake one.
//!
//! It depends on berth-daemon and berth-model only among berth's crates: what it needs from
//! images, runtimes, the OCI spec or the configuration comes through the daemon. It must not
//! talk to containerd itself, read host files, or read the configuration pointer twice in one
//! request.

mod body;
mod error;
#[cfg(test)]
mod fuzz;
mod hijack;
mod metrics;
mod middleware;
mod query;
mod routes;
mod server;
mod version;
pub mod wire;

pub use error::ApiError;
pub use metrics::{render_metrics, serve_metrics};
pub use routes::router;
pub use server::{BindError, bind_unix, serve};
pub use version::{ApiVersion, MAX_API_VERSION, MIN_API_VERSION};
