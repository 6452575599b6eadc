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
    /// A path meant to pin a network namespace does not hold one.
    #[error("{path}: not a network namespace")]
    NotNetns { path: std::path::PathBuf },
    /// A netlink request (links, addresses, routes) failed.
    #[error("{context}: {source}")]
    Netlink {
        context: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// A network interface that had to exist does not.
    #[error("network interface {name} not found")]
    LinkNotFound { name: String },
    /// Netlink needs a tokio runtime and the caller is not inside one.
    #[error("{context}: not inside a tokio runtime")]
    NoRuntime { context: String },
    /// `nft` refused a script or could not be run; `stderr` is its own account.
    #[error("{context}: {stderr}")]
    Nft { context: String, stderr: String },
    /// A bridge or table name nft could not take as is (at most 15 letters, digits, `_-.`).
    #[error("invalid interface or table name {name:?}")]
    InvalidName { name: String },
    /// A port protocol other than `tcp` or `udp`.
    #[error("invalid proto: {proto}")]
    InvalidProto { proto: String },
    /// A published host port is taken (by another container or another program).
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    PortInUse {
        proto: crate::nft::Proto,
        ip: std::net::Ipv4Addr,
        port: u16,
    },
    /// Every port of a published host range is taken.
    #[error("Bind for {ip}:{start}-{end} failed: port is already allocated")]
    PortRangeInUse {
        proto: crate::nft::Proto,
        ip: std::net::Ipv4Addr,
        start: u16,
        end: u16,
    },
    // --- dns (below) ---

    // --- ipam and networks (below) ---
}
