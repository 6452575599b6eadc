//! Container networks, owned here: the network namespaces berthd makes for containers (made
//! before the task exists and handed to runc by path: no prestart hook), bridges and veth
//! pairs over netlink, berth's own nftables table (NAT, published ports, isolation between
//! networks), the host sockets that hold published ports, address management (IPAM) and the
//! embedded DNS server user-defined networks give their containers at 127.0.0.11, and the
//! text of a container's `/etc/hosts` and `/etc/resolv.conf`.
//!
//! The daemon orchestrates (which container joins which network, when); everything that
//! touches the kernel or a wire protocol for that lives in this crate.

mod error;

pub mod dns;
pub mod etc;
pub mod ipam;
pub mod link;
mod manager;
pub mod netns;
pub mod nft;
pub mod ports;
mod store;

pub use error::NetworkError;
pub use manager::{
    Connected, CreateRequest, InterfaceStats, JoinRequest, Joined, Networks, Settings, asking_ip,
    parse_port_key,
};
pub use store::{IpamEntry, Network};
