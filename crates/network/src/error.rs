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
    /// A device of that name exists and is not a bridge: berth does not take it over.
    #[error("{name} exists and is not a bridge")]
    NotABridge { name: String },
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
    /// No network has this name, ID or ID prefix.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// An ID prefix that fits several networks.
    #[error("network {0} is ambiguous: it matches several networks")]
    Ambiguous(String),
    /// Every pool subnet overlaps a network or a host route.
    #[error(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )]
    NoPool,
    /// A driver berth does not have.
    #[error("could not find plugin {0} in v1 plugin registry: plugin not found")]
    UnsupportedDriver(String),
    /// An empty or unusable network or bridge name.
    #[error("invalid network or bridge name: {0:?}")]
    BadNetworkName(String),
    /// `bridge`, `host`, `none`.
    #[error("{0} is a pre-defined network and cannot be modified")]
    Predefined(String),
    #[error("network with name {0} already exists")]
    NameExists(String),
    #[error("bridge device {0} is already used by another network")]
    BridgeInUse(String),
    /// `--subnet` overlapping another network's.
    #[error("Pool overlaps with other one on this address space: {0}")]
    PoolOverlap(String),
    /// `docker network rm` of a network containers are on.
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    InUse { name: String, id: String },
    #[error("user specified IP address is supported on user defined networks only")]
    IpOnDefault,
    #[error("network-scoped alias is supported only for containers in user defined networks")]
    AliasOnDefault,
    #[error("container {0} already has a network sandbox")]
    SandboxExists(String),
    #[error("container {0} is not running")]
    NoSandbox(String),
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    /// A network containers cannot have an address on (`host`, `none`).
    #[error("container cannot be connected to network {0}")]
    NotBridge(String),
    #[error("no available IPv4 addresses on network {0}")]
    NoAddress(String),
    /// A port key or host port that does not parse.
    #[error("invalid port specification: {0:?}")]
    InvalidPort(String),
    /// The networks file cannot be read or written as JSON.
    #[error("{path}: {message}")]
    Store {
        path: std::path::PathBuf,
        message: String,
    },
}
