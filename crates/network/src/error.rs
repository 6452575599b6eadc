//! The crate's errors.

/// What can go wrong in networking; each variant carries what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A system call (namespaces, mounts) failed.
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    // --- kernel: netns, netlink, nftables, port holders (below) ---

    // --- dns (below) ---
    /// The embedded DNS server was started outside a tokio runtime.
    #[error("starting the embedded DNS server outside a tokio runtime")]
    DnsRuntime {
        #[source]
        source: tokio::runtime::TryCurrentError,
    },
    /// An `--add-host` value is not `name:ip` (or `name=ip`).
    #[error("bad format for add-host: {value:?}")]
    AddHostFormat { value: String },
    /// The address of an `--add-host` value is not an IP address (nor `host-gateway`).
    #[error("invalid IP address in add-host: {value:?}")]
    AddHostAddress { value: String },
    // --- ipam and networks (below) ---
}
