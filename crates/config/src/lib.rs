//! berth-config owns the daemon's user configuration: the command-line flags (named as
//! dockerd's), the `daemon.json` file (dockerd's key names), their merge with dockerd's
//! conflict rules, validation, reload semantics, and the `Paths` value every other layer takes
//! its file-system locations from.
//!
//! It must not depend on any other berth crate, on an async runtime or on containerd: it is
//! pure data plus file reading, and every rule here is unit-tested without root.

mod daemon_config;
mod error;
mod file;
mod flags;
#[cfg(test)]
mod fuzz;
mod host;
mod network;
mod paths;
mod runtime;
mod ulimit;

pub use daemon_config::{DaemonConfig, LogLevel, TlsConfig};
pub use error::ConfigError;
pub use file::{FileConfig, read_config_file};
pub use flags::{DEFAULT_CONFIG_FILE, Flags};
pub use host::HostAddr;
pub use network::AddressPool;
pub use paths::{HostPaths, Paths};
pub use runtime::RuntimeEntry;
pub use ulimit::{ULIMIT_NAMES, Ulimit};
