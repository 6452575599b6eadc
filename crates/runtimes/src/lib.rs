//! berth-runtimes owns runtime resolution: from the user's `runtimes` / `default-runtime`
//! configuration to the derived set of containerd shims and their typed options, validated in
//! dockerd's order with dockerd's messages, and the content-addressed wrapper scripts that
//! give `path` + `runtimeArgs` runtimes a single binary for the shim to execute.
//!
//! A wrapper script lives at `<data-root>/runtimes/<name>-<sha256 hex of its contents>`; it is
//! written once (temporary name, fsync, rename) and never changed or removed while the daemon
//! lives. The folder is emptied only by `reset_runtimes_dir`, at daemon start-up.
//!
//! It must not depend on an async runtime, on containerd or on berth crates above
//! berth-config.

mod error;
mod options;
mod resolve;
mod wrapper;

pub use error::RuntimeError;
pub use options::{GenericOptions, RuncOptions, ShimOptions};
pub use resolve::{DeriveContext, ResolvedRuntime, RuntimeInfo, Runtimes, STOCK_SHIM};
pub use wrapper::{reset_runtimes_dir, wrapper_script_contents, write_wrapper_script};
