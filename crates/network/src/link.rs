//! Bridges and veth pairs over netlink (rtnetlink), and the few sysctls bridged networking
//! needs. A [`Links`] talks to one network namespace: the one its netlink socket was made in.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures_util::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage, Stats64,
};
use nix::errno::Errno;
use rtnetlink::{
    LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::NetworkError;
use crate::netns::Netns;

/// A netlink connection to one network namespace's links, addresses and routes.
#[derive(Debug, Clone)]
pub struct Links {
    handle: rtnetlink::Handle,
}

/// One container's interface on one network: a veth pair between a bridge and a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host side of the pair, e.g. `veth` + 7 hex digits (15 bytes at most).
    pub host_if: String,
    /// The bridge the host side is enslaved to.
    pub bridge: String,
    /// The name inside the container: `eth0`, `eth1`, ...
    pub if_name: String,
    /// The container side's MAC address (see [`mac_for`]).
    pub mac: [u8; 6],
    /// The container's address on the network.
    pub address: Ipv4Addr,
    /// The network's prefix length.
    pub prefix: u8,
    /// The default route's gateway; `None` for internal networks or a second network.
    pub gateway: Option<Ipv4Addr>,
    /// The MTU of both sides.
    pub mtu: u32,
}

/// dockerd's MAC address for a container address: `02:42:` then the address's 4 bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// Writes `value` to the sysctl at `key_path`, relative to /proc/sys with slashes
/// (`net/ipv4/ip_forward`). Network sysctls are those of the calling thread's namespace.
pub fn set_sysctl(key_path: &str, value: &str) -> Result<(), NetworkError> {
    let path = std::path::Path::new("/proc/sys").join(key_path);
    if key_path.starts_with('/') || key_path.split('/').any(|c| c == "..") {
        return Err(NetworkError::Io {
            context: format!("setting the sysctl {key_path}"),
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    }
    std::fs::write(&path, value).map_err(|source| NetworkError::Io {
        context: format!("writing {value} to {}", path.display()),
        source,
    })
}

/// Turns IPv4 forwarding on (`net.ipv4.ip_forward = 1`) in the calling thread's namespace.
pub fn enable_ip_forward() -> Result<(), NetworkError> {
    set_sysctl("net/ipv4/ip_forward", "1")
}

impl Links {
    /// Connects to the caller's network namespace; the connection is driven by the current
    /// tokio runtime (an error outside one).
    pub fn new() -> Result<Links, NetworkError> {
        let rt = current_runtime("connecting to netlink")?;
        connect(&rt)
    }

    /// Connects to the namespace `ns`: the netlink socket is made on a thread inside it, then
    /// driven by the current tokio runtime like any other. Blocks briefly.
    pub fn in_netns(ns: &Netns) -> Result<Links, NetworkError> {
        let rt = current_runtime("connecting to netlink")?;
        ns.run(move || connect(&rt))?
    }

    /// Creates the bridge `name` if missing, gives it `addr/prefix` if it lacks it (other
    /// addresses stay), sets its MTU when given, brings it up and sets its `route_localnet`
    /// (so published ports on 127.0.0.1 can be DNATed to containers). Idempotent. The sysctl
    /// is written in the calling thread's namespace: meant for a [`Links::new`] of the host.
    /// Returns whether it made the bridge; a device of that name that is not a bridge is
    /// refused ([`NetworkError::NotABridge`]), never taken over.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        addr: Ipv4Addr,
        prefix: u8,
        mtu: Option<u32>,
    ) -> Result<bool, NetworkError> {
        let mut created = false;
        let index = match self.index_of(name).await? {
            Some(index) => {
                // Never take over a device that is not a bridge (an uplink, a VPN...).
                if !self.is_bridge(name).await? {
                    return Err(NetworkError::NotABridge {
                        name: name.to_owned(),
                    });
                }
                index
            }
            None => {
                let added = self
                    .handle
                    .link()
                    .add(LinkBridge::new(name).build())
                    .execute()
                    .await;
                match added {
                    Ok(()) => {
                        created = true;
                        tracing::info!(bridge = name, "bridge created");
                    }
                    // Made meanwhile by someone else: adopt it.
                    Err(e) if errno(&e) == Some(Errno::EEXIST) => {}
                    Err(source) => {
                        return Err(NetworkError::Netlink {
                            context: format!("creating the bridge {name}"),
                            source,
                        });
                    }
                }
                self.index_of(name)
                    .await?
                    .ok_or_else(|| NetworkError::LinkNotFound {
                        name: name.to_owned(),
                    })?
            }
        };

        if !self.has_address(index, addr, prefix).await? {
            let added = self
                .handle
                .address()
                .add(index, IpAddr::V4(addr), prefix)
                .execute()
                .await;
            match added {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(Errno::EEXIST) => {}
                Err(source) => {
                    return Err(NetworkError::Netlink {
                        context: format!("adding {addr}/{prefix} to {name}"),
                        source,
                    });
                }
            }
        }

        let mut set = LinkUnspec::new_with_index(index).up();
        if let Some(mtu) = mtu {
            set = set.mtu(mtu);
        }
        self.handle
            .link()
            .set(set.build())
            .execute()
            .await
            .map_err(|source| NetworkError::Netlink {
                context: format!("setting {name} up"),
                source,
            })?;
        set_sysctl(&format!("net/ipv4/conf/{name}/route_localnet"), "1")?;
        Ok(created)
    }

    /// Brings the link `name` up.
    pub async fn set_up(&self, name: &str) -> Result<(), NetworkError> {
        let index = self.require_index(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|source| NetworkError::Netlink {
                context: format!("setting {name} up"),
                source,
            })
    }

    /// Deletes the link `name` (a veth's peer goes with it); a missing link is not an error.
    pub async fn delete_link(&self, name: &str) -> Result<(), NetworkError> {
        let Some(index) = self.index_of(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(Errno::ENODEV) => Ok(()),
            Err(source) => Err(NetworkError::Netlink {
                context: format!("deleting the link {name}"),
                source,
            }),
        }
    }

    /// Whether a link named `name` exists.
    pub async fn link_exists(&self, name: &str) -> Result<bool, NetworkError> {
        Ok(self.index_of(name).await?.is_some())
    }

    /// The names of the links starting with `prefix`.
    pub async fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>, NetworkError> {
        let mut links = self.handle.link().get().execute();
        let mut names = Vec::new();
        while let Some(msg) = links
            .try_next()
            .await
            .map_err(|source| NetworkError::Netlink {
                context: "listing links".to_owned(),
                source,
            })?
        {
            if let Some(name) = link_name(&msg)
                && name.starts_with(prefix)
            {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// Connects `ns` to a bridge of this namespace: a veth pair whose host side `host_if` is
    /// enslaved to `ep.bridge` (hairpin mode on) and up, and whose other side is made inside `ns` as
    /// `ep.if_name` with the endpoint's MAC, MTU and address, up, with `lo` up and a default
    /// route via `ep.gateway` when there is one. On failure nothing is left behind.
    pub async fn attach(&self, ns: &Netns, ep: &Endpoint) -> Result<(), NetworkError> {
        let bridge = self.require_index(&ep.bridge).await?;
        let ns_file = ns.open_file()?;
        // The peer is made directly inside the namespace under its final name: no temporary
        // name in the host's namespace, no rename.
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(ep.if_name.clone())
            .address(ep.mac.to_vec())
            .mtu(ep.mtu)
            .setns_by_fd(ns_file.as_raw_fd())
            .build();
        let veth = LinkVeth::new(&ep.host_if, &ep.if_name)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .mtu(ep.mtu)
            .controller(bridge)
            .up()
            .build();
        let made = self.handle.link().add(veth).execute().await;
        drop(ns_file);
        if let Err(source) = made {
            // The kernel may have made the pair before failing to enslave it.
            self.undo_attach(&ep.host_if).await;
            return Err(NetworkError::Netlink {
                context: format!(
                    "creating the veth pair {} / {} in {}",
                    ep.host_if,
                    ep.if_name,
                    ns.path().display()
                ),
                source,
            });
        }
        if let Err(err) = self.set_hairpin(&ep.host_if).await {
            self.undo_attach(&ep.host_if).await;
            return Err(err);
        }
        if let Err(err) = configure_inside(ns, ep).await {
            self.undo_attach(&ep.host_if).await;
            return Err(err);
        }
        tracing::debug!(host_if = %ep.host_if, bridge = %ep.bridge, if_name = %ep.if_name,
            address = %ep.address, netns = %ns.path().display(), "endpoint attached");
        Ok(())
    }

    /// Removes an endpoint by deleting its host side (its peer in the container goes too);
    /// a missing link is not an error.
    pub async fn detach(&self, host_if: &str) -> Result<(), NetworkError> {
        self.delete_link(host_if).await
    }

    /// Removes the interface `if_name` from inside `ns` (disconnecting a running container
    /// from one network; the host side goes too); a missing interface is not an error.
    pub async fn detach_in(ns: &Netns, if_name: &str) -> Result<(), NetworkError> {
        Links::in_netns(ns)?.delete_link(if_name).await
    }

    /// Lets the bridge send a frame back out of the port it came in by: with br_netfilter,
    /// a container reaching its own published port through the host is DNATed and bridged
    /// back to itself (what dockerd does without its userland proxy).
    async fn set_hairpin(&self, host_if: &str) -> Result<(), NetworkError> {
        let index = self.require_index(host_if).await?;
        self.handle
            .link()
            .set_port(LinkBridgePort::new(index).hairpin(true).build())
            .execute()
            .await
            .map_err(|source| NetworkError::Netlink {
                context: format!("setting hairpin mode on {host_if}"),
                source,
            })
    }

    async fn undo_attach(&self, host_if: &str) {
        if let Err(err) = self.delete_link(host_if).await {
            tracing::warn!(host_if, error = %err, "removing a half-made veth pair failed");
        }
    }

    /// Whether the link `name` is a bridge.
    async fn is_bridge(&self, name: &str) -> Result<bool, NetworkError> {
        Ok(self.message_of(name).await?.is_some_and(|m| {
            m.attributes.iter().any(|a| {
                matches!(a, LinkAttribute::LinkInfo(infos)
                    if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))))
            })
        }))
    }

    /// A link's 64-bit counters, as its own side counts them; `None` when it is gone.
    pub async fn stats(&self, name: &str) -> Result<Option<Stats64>, NetworkError> {
        Ok(self.message_of(name).await?.and_then(|m| {
            m.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::Stats64(s) => Some(s),
                _ => None,
            })
        }))
    }

    async fn message_of(&self, name: &str) -> Result<Option<LinkMessage>, NetworkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(msg) => Ok(msg),
            Err(e) if errno(&e) == Some(Errno::ENODEV) => Ok(None),
            Err(source) => Err(NetworkError::Netlink {
                context: format!("looking up the link {name}"),
                source,
            }),
        }
    }

    async fn index_of(&self, name: &str) -> Result<Option<u32>, NetworkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(msg) => Ok(msg.map(|m| m.header.index)),
            Err(e) if errno(&e) == Some(Errno::ENODEV) => Ok(None),
            Err(source) => Err(NetworkError::Netlink {
                context: format!("looking up the link {name}"),
                source,
            }),
        }
    }

    async fn require_index(&self, name: &str) -> Result<u32, NetworkError> {
        self.index_of(name)
            .await?
            .ok_or_else(|| NetworkError::LinkNotFound {
                name: name.to_owned(),
            })
    }

    async fn has_address(
        &self,
        index: u32,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<bool, NetworkError> {
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(msg) = addrs
            .try_next()
            .await
            .map_err(|source| NetworkError::Netlink {
                context: format!("listing the addresses of link {index}"),
                source,
            })?
        {
            let ours = msg
                .attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Local(IpAddr::V4(ip)) if *ip == addr));
            if ours && msg.header.prefix_len == prefix {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Inside `ns`: address, up, `lo` up, default route.
async fn configure_inside(ns: &Netns, ep: &Endpoint) -> Result<(), NetworkError> {
    let inner = Links::in_netns(ns)?;
    let index = inner.require_index(&ep.if_name).await?;
    inner
        .handle
        .address()
        .add(index, IpAddr::V4(ep.address), ep.prefix)
        .execute()
        .await
        .map_err(|source| NetworkError::Netlink {
            context: format!("adding {}/{} to {}", ep.address, ep.prefix, ep.if_name),
            source,
        })?;
    inner.set_up(&ep.if_name).await?;
    inner.set_up("lo").await?;
    if let Some(gateway) = ep.gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        inner
            .handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(|source| NetworkError::Netlink {
                context: format!("adding the default route via {gateway} on {}", ep.if_name),
                source,
            })?;
    }
    Ok(())
}

fn current_runtime(context: &str) -> Result<tokio::runtime::Handle, NetworkError> {
    tokio::runtime::Handle::try_current().map_err(|_| NetworkError::NoRuntime {
        context: context.to_owned(),
    })
}

/// A netlink connection made in the calling thread's namespace, driven by `rt`.
fn connect(rt: &tokio::runtime::Handle) -> Result<Links, NetworkError> {
    let _entered = rt.enter();
    let (connection, handle, _unsolicited) =
        rtnetlink::new_connection().map_err(|source| NetworkError::Io {
            context: "opening a netlink socket".to_owned(),
            source,
        })?;
    // The connection ends when the last handle is dropped.
    rt.spawn(connection);
    Ok(Links { handle })
}

/// The errno of a netlink error answer.
fn errno(e: &rtnetlink::Error) -> Option<Errno> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| Errno::from_raw(-c.get())),
        _ => None,
    }
}

fn link_name(msg: &LinkMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_dockerds() {
        assert_eq!(
            mac_for(Ipv4Addr::new(172, 17, 0, 2)),
            [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]
        );
    }

    #[test]
    fn sysctl_paths_stay_under_proc_sys() {
        assert!(set_sysctl("../etc/passwd", "x").is_err());
        assert!(set_sysctl("/etc/passwd", "x").is_err());
    }
}
