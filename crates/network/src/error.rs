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

    // --- ipam and networks (below) ---
}
