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
    /// A subnet, gateway or range that cannot be used.
    #[error("invalid subnet {0}")]
    InvalidSubnet(String),
    /// `--ip` outside every subnet of the network.
    #[error("invalid address {ip}: it does not belong to any of this network's subnets ({subnet})")]
    AddressOutside {
        ip: std::net::Ipv4Addr,
        subnet: crate::ipam::Subnet,
    },
    /// `--ip` of an address another endpoint (or the gateway) has.
    #[error("Address already in use: {0}")]
    AddressInUse(std::net::Ipv4Addr),
}
