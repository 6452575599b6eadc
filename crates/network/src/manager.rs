//! `Networks`: the networks and the containers' sandboxes (a network namespace, an endpoint
//! per network, published ports, an embedded DNS server), kept in step with the kernel: bridges,
//! veths, berth's nftables table. The daemon calls it at create, start, exit, connect and
//! disconnect; it owns everything below.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_model::{EndpointIpamConfig, EndpointSettings, PortBinding};

use crate::NetworkError;
use crate::dns::{DnsServer, Names};
use crate::ipam::{self, AddressSpace, Pool, Subnet};
use crate::link::{self, Endpoint, Links};
use crate::netns::Netns;
use crate::nft::{self, BridgeRules, PortRule, Proto, Ruleset};
use crate::ports::{self, HeldPort};
use crate::store::{self, IpamEntry, Network, StoreFile};

/// The daemon's network settings (dockerd's flags; read at start, not reloadable).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<data-root>/network`: the persisted networks.
    pub data_dir: PathBuf,
    /// `<exec-root>/netns`: the containers' pinned network namespaces.
    pub netns_dir: PathBuf,
    /// The default bridge's device; `None` with `--bridge none`.
    pub bridge: Option<String>,
    /// `--bip`: the default bridge's address and prefix.
    pub bip: Option<Subnet>,
    /// `--fixed-cidr`: the default bridge's containers take addresses from here.
    pub fixed_cidr: Option<Subnet>,
    /// Where networks without `--subnet` take theirs.
    pub pools: Vec<Pool>,
    pub mtu: u32,
    /// Manage berth's nftables table (`--iptables`).
    pub nftables: bool,
    pub ip_forward: bool,
    pub ip_masq: bool,
    pub icc: bool,
    /// `--ip`: where `-p PORT:PORT` publishes.
    pub default_bind_ip: Ipv4Addr,
    /// berth's nftables table.
    pub table: String,
    /// The daemon's `--dns`, `--dns-search`, `--dns-opt`: under the container's own.
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
}

/// `POST /networks/create`.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    pub ipam_driver: String,
    /// As sent (`null` and `{}` differ on the wire).
    pub ipam_options: Option<BTreeMap<String, String>>,
    pub ipam_config: Vec<IpamEntry>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// What a container brings to its sandbox at start.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    pub container: String,
    pub name: String,
    pub hostname: String,
    pub domainname: String,
    /// The networks, by name or ID, with what was asked of each (aliases, `--ip`).
    pub networks: Vec<(String, EndpointSettings)>,
    /// `-p` (`"80/tcp"` → host sides).
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    /// `-P`: these (the image's and `--expose`'s) on ephemeral ports.
    pub publish_all: Vec<String>,
    /// The exposed ports, listed (unpublished ones as `null`) in `NetworkSettings.Ports`.
    pub exposed: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--add-host` as (name, address); `host-gateway` already substituted.
    pub extra_hosts: Vec<(String, String)>,
    /// `--link` targets as (container ID, alias).
    pub links: Vec<(String, String)>,
    /// The host's resolv.conf, read now.
    pub host_resolv_conf: String,
}

/// What `connect` made.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The network's name.
    pub network: String,
    pub endpoint: EndpointSettings,
    /// The container's new resolv.conf, when this connect gave it the embedded DNS server.
    pub resolv_conf: Option<String>,
}

/// What a sandbox got: for the container record, its inspect and its files.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    pub sandbox_id: String,
    pub sandbox_key: PathBuf,
    /// Network name → its endpoint, filled in.
    pub endpoints: BTreeMap<String, EndpointSettings>,
    /// `NetworkSettings.Ports`.
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    pub resolv_conf: String,
    pub hosts: String,
}

#[derive(Debug)]
struct Attached {
    network: String,
    ip: Ipv4Addr,
    aliases: Vec<String>,
    host_if: String,
    /// Its name inside the container (`eth0`).
    if_name: String,
    /// `links` of a user-defined network (compose's `links:`): (alias, target name), names
    /// only this container resolves.
    links: Vec<(String, String)>,
}

/// `EndpointSettings.Links` (`target[:alias]`) as (alias, target).
fn endpoint_links(e: &EndpointSettings) -> Vec<(String, String)> {
    e.links
        .iter()
        .flatten()
        .map(|l| {
            let (target, alias) = l.split_once(':').unwrap_or((l, l));
            (
                alias.trim_start_matches('/').to_ascii_lowercase(),
                target.trim_start_matches('/').to_string(),
            )
        })
        .collect()
}

/// One interface's counters, as the container sees them (`docker stats`' NET I/O).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

impl InterfaceStats {
    /// The counters of `/proc/net/dev` (this thread's namespace: berthd's, where the host
    /// sides of the veths are) by device. What a host side receives the container sent, so
    /// receive and transmit swap.
    fn of_host_sides(text: &str) -> HashMap<String, InterfaceStats> {
        let mut out = HashMap::new();
        for line in text.lines().skip(2) {
            let Some((dev, rest)) = line.split_once(':') else {
                continue;
            };
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if f.len() < 12 {
                continue;
            }
            out.insert(
                dev.trim().to_string(),
                InterfaceStats {
                    rx_bytes: f[8],
                    rx_packets: f[9],
                    rx_errors: f[10],
                    rx_dropped: f[11],
                    tx_bytes: f[0],
                    tx_packets: f[1],
                    tx_errors: f[2],
                    tx_dropped: f[3],
                },
            );
        }
        out
    }
}

#[derive(Debug)]
struct Published {
    /// `80/tcp` and the host side, as the record shows them.
    key: String,
    binding: PortBinding,
    rule: Option<PortRule>,
    /// The host socket; `None` when it could not be held again after a restart.
    _held: Option<HeldPort>,
    /// The userland copy (only with `--iptables=false`, where the kernel forwards nothing).
    proxy: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Published {
    fn drop(&mut self) {
        if let Some(p) = self.proxy.take() {
            p.abort();
        }
    }
}

#[derive(Debug)]
struct Sandbox {
    name: String,
    netns: Netns,
    endpoints: Vec<Attached>,
    ports: Vec<Published>,
    dns: Option<DnsServer>,
    upstreams: Vec<SocketAddr>,
    next_if: u32,
}

#[derive(Debug, Default)]
struct State {
    networks: BTreeMap<String, Network>,
    sandboxes: HashMap<String, Sandbox>,
    /// Addresses taken by sandboxes being made: (container, network ID, address).
    reserved: Vec<(String, String, Ipv4Addr)>,
}

impl State {
    /// Whether a container is on the network, or is joining it now.
    fn in_use(&self, network_id: &str) -> bool {
        self.sandboxes
            .values()
            .any(|s| s.endpoints.iter().any(|e| e.network == network_id))
            || self.reserved.iter().any(|r| r.1 == network_id)
    }
}

/// The networks and sandboxes; one per daemon.
#[derive(Debug)]
pub struct Networks {
    settings: Settings,
    links: Links,
    state: Mutex<State>,
    /// Serialises rule applications (each one replaces the whole table).
    nft: tokio::sync::Mutex<()>,
    /// Serialises writes of the networks file (each one writes it whole).
    file: Mutex<()>,
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// `02:42:ac:11:00:02`.
fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `"80/tcp"` → (80, tcp); a missing protocol is tcp.
pub fn parse_port_key(key: &str) -> Result<(u16, Proto), NetworkError> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let port: u16 = p
        .parse()
        .map_err(|_| NetworkError::InvalidPort(key.to_string()))?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return Err(NetworkError::InvalidPort(key.to_string())),
    };
    Ok((port, proto))
}

/// A host port spec: "" or "0" (ephemeral), "8080", or a range "8000-8010".
fn parse_host_ports(s: &str) -> Result<(u16, u16), NetworkError> {
    let bad = || NetworkError::InvalidPort(s.to_string());
    let s = s.trim();
    if s.is_empty() {
        return Ok((0, 0));
    }
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a > b {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let p: u16 = s.parse().map_err(|_| bad())?;
            Ok((p, p))
        }
    }
}

impl Networks {
    /// Loads the networks, sets up the predefined ones and every bridge, and applies the
    /// rules (no sandbox yet: [`Networks::adopt`] brings back the live ones).
    pub async fn open(settings: Settings) -> Result<Arc<Networks>, NetworkError> {
        let file = store::load(&settings.data_dir.join("networks.json"))?;
        let mut networks: BTreeMap<String, Network> = file
            .networks
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        let links = Links::new()?;
        let mut predefined = |name: &str, driver: &str| {
            if networks.values().any(|n| n.name == name) {
                return;
            }
            let n = Network::bare(random_hex(32), name, driver, now_rfc3339());
            networks.insert(n.id.clone(), n);
        };
        predefined("host", "host");
        predefined("none", "null");
        match &settings.bridge {
            None => networks.retain(|_, n| n.name != "bridge"),
            Some(dev) => {
                predefined("bridge", "bridge");
                let others: Vec<Subnet> = networks
                    .values()
                    .filter(|n| n.name != "bridge")
                    .filter_map(|n| n.subnet)
                    .collect();
                let Some(b) = networks.values_mut().find(|n| n.name == "bridge") else {
                    return Err(NetworkError::NoSuchNetwork("bridge".into()));
                };
                // Routes of other devices (dockerd's docker0, a VPN...) are taken; the
                // bridge's own route (it survives a restart) is not.
                let mut taken: Vec<Subnet> = ipam::host_routes()
                    .into_iter()
                    .filter(|(dev_name, _)| dev_name != dev)
                    .map(|(_, s)| s)
                    .collect();
                taken.extend(others);
                let (subnet, gateway) = match settings.bip {
                    Some(bip) => (bip.network(), bip.addr),
                    None => match (b.subnet, b.gateway) {
                        (Some(s), Some(g))
                            if b.bridge == *dev && !taken.iter().any(|t| t.overlaps(&s)) =>
                        {
                            (s, g)
                        }
                        _ => {
                            let s = ipam::next_subnet(&settings.pools, &taken)
                                .ok_or(NetworkError::NoPool)?;
                            (s, Ipv4Addr::from(s.first() + 1))
                        }
                    },
                };
                b.bridge = dev.clone();
                b.subnet = Some(subnet);
                b.gateway = Some(gateway);
                b.ip_range = settings.fixed_cidr;
                b.ipam_config = vec![IpamEntry {
                    subnet: subnet.to_string(),
                    ip_range: settings
                        .fixed_cidr
                        .map(|r| r.to_string())
                        .unwrap_or_default(),
                    gateway: if settings.bip.is_some() {
                        gateway.to_string()
                    } else {
                        String::new()
                    },
                }];
                let o = &mut b.options;
                o.clear();
                for (k, v) in [
                    ("com.docker.network.bridge.default_bridge", "true".into()),
                    (
                        "com.docker.network.bridge.enable_icc",
                        settings.icc.to_string(),
                    ),
                    (
                        "com.docker.network.bridge.enable_ip_masquerade",
                        settings.ip_masq.to_string(),
                    ),
                    (
                        "com.docker.network.bridge.host_binding_ipv4",
                        settings.default_bind_ip.to_string(),
                    ),
                    ("com.docker.network.bridge.name", dev.clone()),
                    ("com.docker.network.driver.mtu", settings.mtu.to_string()),
                ] {
                    o.insert(k.to_string(), v);
                }
            }
        }
        if settings.ip_forward {
            link::enable_ip_forward()?;
        }
        for n in networks.values_mut().filter(|n| n.driver == "bridge") {
            if let (Some(s), Some(g)) = (n.subnet, n.gateway) {
                let mtu = n
                    .options
                    .get("com.docker.network.driver.mtu")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(settings.mtu);
                let made = links
                    .ensure_bridge(&n.bridge, g, s.prefix, Some(mtu))
                    .await?;
                n.owned_bridge |= made;
            }
        }
        let this = Arc::new(Networks {
            settings,
            links,
            state: Mutex::new(State {
                networks,
                ..State::default()
            }),
            nft: tokio::sync::Mutex::new(()),
            file: Mutex::new(()),
        });
        this.persist()?;
        // A table left by the last berthd (live-restore, or a crash) keeps forwarding the
        // running containers' ports until the restore has taken them back and replaces it.
        let left = this.settings.nftables && nft::table_exists(&this.settings.table).await?;
        if !left {
            this.apply_rules().await?;
        }
        Ok(this)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self) -> Result<(), NetworkError> {
        let _one = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let file = StoreFile {
            networks: self.lock().networks.values().cloned().collect(),
        };
        store::save(&self.settings.data_dir.join("networks.json"), &file)
    }

    /// Every network.
    pub fn list(&self) -> Vec<Network> {
        self.lock().networks.values().cloned().collect()
    }

    /// A network by full ID, name, or unique ID prefix (dockerd's order).
    pub fn get(&self, key: &str) -> Result<Network, NetworkError> {
        find(&self.lock().networks, key).cloned()
    }

    /// The containers (ID → (name, endpoint ID, MAC, address/prefix)) with an endpoint on a
    /// network now.
    pub fn endpoints_of(&self, network_id: &str) -> Vec<(String, String, Ipv4Addr, u8)> {
        let st = self.lock();
        let prefix = st
            .networks
            .get(network_id)
            .and_then(|n| n.subnet)
            .map(|s| s.prefix)
            .unwrap_or(0);
        let mut out = Vec::new();
        for (id, sb) in &st.sandboxes {
            for e in sb.endpoints.iter().filter(|e| e.network == network_id) {
                out.push((id.clone(), sb.name.clone(), e.ip, prefix));
            }
        }
        out
    }

    /// `docker network create`.
    pub async fn create(&self, req: CreateRequest) -> Result<Network, NetworkError> {
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        if driver != "bridge" {
            return Err(NetworkError::UnsupportedDriver(driver));
        }
        if req.name.is_empty() {
            return Err(NetworkError::BadNetworkName(req.name));
        }
        if matches!(req.name.as_str(), "bridge" | "host" | "none") {
            return Err(NetworkError::Predefined(req.name));
        }
        if req.enable_ipv6 {
            return Err(NetworkError::InvalidSubnet(
                "berth's networks are IPv4 only: IPv6 cannot be enabled".into(),
            ));
        }
        if req.ipam_config.len() > 1 {
            return Err(NetworkError::InvalidSubnet(
                "berth supports one IPv4 subnet per network".into(),
            ));
        }
        let id = random_hex(32);
        let bridge = req
            .options
            .get("com.docker.network.bridge.name")
            .cloned()
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        if bridge.is_empty() || bridge.len() > 15 {
            return Err(NetworkError::BadNetworkName(bridge));
        }
        let given = req.ipam_config.first().cloned().unwrap_or_default();
        let parse_opt = |s: &str| -> Result<Option<Subnet>, NetworkError> {
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse().map(Some)
            }
        };
        let gateway: Option<Ipv4Addr> = if given.gateway.is_empty() {
            None
        } else {
            Some(
                given
                    .gateway
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|_| NetworkError::InvalidSubnet(given.gateway.clone()))?,
            )
        };
        let network = {
            let mut st = self.lock();
            if st.networks.values().any(|n| n.name == req.name) {
                return Err(NetworkError::NameExists(req.name));
            }
            if st.networks.values().any(|n| n.bridge == bridge) {
                return Err(NetworkError::BridgeInUse(bridge));
            }
            let others: Vec<Subnet> = st.networks.values().filter_map(|n| n.subnet).collect();
            let (subnet, auto) = match parse_opt(&given.subnet)? {
                Some(s) => {
                    let s = s.network();
                    if others.iter().any(|o| o.overlaps(&s)) {
                        return Err(NetworkError::PoolOverlap(s.to_string()));
                    }
                    (s, false)
                }
                None => {
                    if !given.ip_range.is_empty() || gateway.is_some() {
                        return Err(NetworkError::InvalidSubnet(
                            "a gateway or an IP range needs a subnet".into(),
                        ));
                    }
                    let mut taken: Vec<Subnet> =
                        ipam::host_routes().into_iter().map(|(_, s)| s).collect();
                    taken.extend(others);
                    (
                        ipam::next_subnet(&self.settings.pools, &taken)
                            .ok_or(NetworkError::NoPool)?,
                        true,
                    )
                }
            };
            let range = parse_opt(&given.ip_range)?;
            let space = AddressSpace::new(subnet, gateway, range)?;
            let mut ipam_config = vec![given.clone()];
            if auto {
                ipam_config = vec![IpamEntry {
                    subnet: subnet.to_string(),
                    ip_range: String::new(),
                    gateway: space.gateway.to_string(),
                }];
            }
            let n = Network {
                id: id.clone(),
                name: req.name.clone(),
                driver,
                created: now_rfc3339(),
                internal: req.internal,
                attachable: req.attachable,
                enable_ipv6: req.enable_ipv6,
                ipam_driver: if req.ipam_driver.is_empty() {
                    "default".into()
                } else {
                    req.ipam_driver.clone()
                },
                ipam_options: req.ipam_options.clone(),
                ipam_config,
                options: req.options.clone(),
                labels: req.labels.clone(),
                bridge: bridge.clone(),
                owned_bridge: false,
                subnet: Some(space.subnet),
                gateway: Some(space.gateway),
                ip_range: range,
            };
            st.networks.insert(id.clone(), n.clone());
            n
        };
        let made = async {
            let (Some(s), Some(g)) = (network.subnet, network.gateway) else {
                return Ok(());
            };
            let mtu = network
                .options
                .get("com.docker.network.driver.mtu")
                .and_then(|m| m.parse().ok())
                .unwrap_or(self.settings.mtu);
            let made = self
                .links
                .ensure_bridge(&bridge, g, s.prefix, Some(mtu))
                .await?;
            if let Some(n) = self.lock().networks.get_mut(&id) {
                n.owned_bridge = made;
            }
            self.persist()?;
            self.apply_rules().await
        }
        .await;
        if let Err(e) = made {
            let gone = self.lock().networks.remove(&id);
            if gone.is_some_and(|n| n.owned_bridge) {
                let _ = self.links.delete_link(&bridge).await;
            }
            let _ = self.persist();
            return Err(e);
        }
        Ok(network)
    }

    /// `docker network rm`: refused for the predefined ones and while a container is on it.
    pub async fn remove(&self, key: &str) -> Result<Network, NetworkError> {
        let n = {
            let mut st = self.lock();
            let n = find(&st.networks, key)?.clone();
            if n.is_predefined() {
                return Err(NetworkError::Predefined(n.name));
            }
            if st.in_use(&n.id) {
                return Err(NetworkError::InUse {
                    name: n.name,
                    id: n.id,
                });
            }
            st.networks.remove(&n.id);
            n
        };
        self.persist()?;
        if n.owned_bridge {
            self.links.delete_link(&n.bridge).await?;
        }
        self.apply_rules().await?;
        Ok(n)
    }

    /// The user-defined networks no container is on, for `docker network prune`.
    pub fn unused(&self) -> Vec<Network> {
        let st = self.lock();
        st.networks
            .values()
            .filter(|n| !n.is_predefined())
            .filter(|n| !st.in_use(&n.id))
            .cloned()
            .collect()
    }

    /// Checks what a container asks of a network before it is created or connected: the
    /// network exists, `--ip` and aliases only on user-defined networks, `--ip` inside it.
    pub fn check_endpoint(
        &self,
        key: &str,
        settings: &EndpointSettings,
    ) -> Result<Network, NetworkError> {
        let n = self.get(key)?;
        let ip = requested_ip(settings)?;
        if n.driver != "bridge" {
            if ip.is_some() {
                return Err(NetworkError::IpOnDefault);
            }
            return Ok(n);
        }
        if n.is_default_bridge() {
            if ip.is_some() {
                return Err(NetworkError::IpOnDefault);
            }
            if settings.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(NetworkError::AliasOnDefault);
            }
        }
        if let (Some(ip), Some(s)) = (ip, n.subnet) {
            AddressSpace::new(s, n.gateway, n.ip_range)?.check_requested(ip)?;
        }
        Ok(n)
    }

    /// Makes a container's sandbox: its network namespace (pinned at
    /// `<exec-root>/netns/<12 hex>`), an interface on each network, its published ports, its
    /// DNS server, and the text of its resolv.conf and hosts files. What fails is undone.
    pub async fn join(self: &Arc<Self>, req: &JoinRequest) -> Result<Joined, NetworkError> {
        let sandbox_id = random_hex(32);
        let key = self.settings.netns_dir.join(&sandbox_id[..12]);
        // Addresses first, under the lock, so two starts never take the same one.
        let mut plan = Vec::new();
        {
            let mut st = self.lock();
            if st.sandboxes.contains_key(&req.container)
                || st.reserved.iter().any(|r| r.0 == req.container)
            {
                return Err(NetworkError::SandboxExists(req.container.clone()));
            }
            let mut reserved = Vec::new();
            for (net_key, asked) in &req.networks {
                let n = find(&st.networks, net_key)?.clone();
                if plan.iter().any(|(p, _, _): &(Network, _, _)| p.id == n.id) {
                    continue;
                }
                if n.driver != "bridge" {
                    return Err(NetworkError::NotBridge(n.name));
                }
                let a = allocate(&st, &n, asked, &reserved)?;
                reserved.push((n.id.clone(), a.0));
                plan.push((n, asked.clone(), a));
            }
            st.reserved.extend(
                reserved
                    .into_iter()
                    .map(|(n, ip)| (req.container.clone(), n, ip)),
            );
        }
        let made = {
            let key = key.clone();
            tokio::task::spawn_blocking(move || Netns::create(&key))
                .await
                .map_err(|e| NetworkError::Io {
                    context: "creating a network namespace".into(),
                    source: std::io::Error::other(e),
                })
                .and_then(|r| r)
        };
        let netns = match made {
            Ok(n) => n,
            Err(e) => {
                self.lock().reserved.retain(|r| r.0 != req.container);
                return Err(e);
            }
        };
        let mut sb = Sandbox {
            name: req.name.clone(),
            netns,
            endpoints: Vec::new(),
            ports: Vec::new(),
            dns: None,
            upstreams: Vec::new(),
            next_if: 0,
        };
        let mut joined = Joined {
            sandbox_id: sandbox_id.clone(),
            sandbox_key: key,
            ..Joined::default()
        };
        let filled = self.fill(req, plan, &mut sb, &mut joined).await;
        if let Err(e) = filled {
            self.dispose(&req.container, sb).await;
            self.lock().reserved.retain(|r| r.0 != req.container);
            return Err(e);
        }
        let rules = sb.ports.iter().any(|p| p.rule.is_some());
        {
            // One guard: the addresses go from reserved to the sandbox with no gap.
            let mut st = self.lock();
            st.reserved.retain(|r| r.0 != req.container);
            st.sandboxes.insert(req.container.clone(), sb);
        }
        if rules && let Err(e) = self.apply_rules().await {
            self.leave(&req.container).await;
            return Err(e);
        }
        Ok(joined)
    }

    /// The interfaces, ports, files and DNS server of a new sandbox, made into `sb` as they
    /// come (so a failure part way leaves `sb` holding what to undo).
    async fn fill(
        self: &Arc<Self>,
        req: &JoinRequest,
        plan: Vec<(Network, EndpointSettings, (Ipv4Addr, u8, Ipv4Addr))>,
        sb: &mut Sandbox,
        joined: &mut Joined,
    ) -> Result<(), NetworkError> {
        let mut gateway_taken = false;
        let mut dnat_target: Option<(Ipv4Addr, String)> = None;
        let mut user_networks = false;
        let mut internal_only = true;
        let mut addresses = Vec::new();
        for (n, asked, (ip, prefix, gw)) in &plan {
            let endpoint_id = random_hex(32);
            let host_if = format!("veth{}", &endpoint_id[..7]);
            let mac = link::mac_for(*ip);
            let default_route = !n.internal && !gateway_taken;
            gateway_taken |= default_route;
            internal_only &= n.internal;
            user_networks |= !n.is_default_bridge();
            let mtu = n
                .options
                .get("com.docker.network.driver.mtu")
                .and_then(|m| m.parse().ok())
                .unwrap_or(self.settings.mtu);
            let if_name = format!("eth{}", sb.next_if);
            sb.next_if += 1;
            let mut aliases: Vec<String> = asked.aliases.clone().unwrap_or_default();
            aliases.retain(|a| !a.is_empty());
            sb.endpoints.push(Attached {
                network: n.id.clone(),
                ip: *ip,
                aliases: aliases.clone(),
                host_if: host_if.clone(),
                if_name: if_name.clone(),
                links: endpoint_links(asked),
            });
            self.links
                .attach(
                    &sb.netns,
                    &Endpoint {
                        host_if,
                        bridge: n.bridge.clone(),
                        if_name,
                        mac,
                        address: *ip,
                        prefix: *prefix,
                        gateway: default_route.then_some(*gw),
                        mtu,
                    },
                )
                .await?;
            if dnat_target.is_none() && !n.internal {
                dnat_target = Some((*ip, n.bridge.clone()));
            }
            addresses.push(*ip);
            let mut dns_names = vec![req.name.clone()];
            dns_names.extend(aliases.iter().cloned());
            dns_names.push(req.container.chars().take(12).collect());
            joined.endpoints.insert(
                n.name.clone(),
                EndpointSettings {
                    ipam_config: asked.ipam_config.clone(),
                    links: asked.links.clone(),
                    aliases: asked.aliases.clone().filter(|a| !a.is_empty()),
                    mac_address: format_mac(&mac),
                    driver_opts: asked.driver_opts.clone(),
                    network_id: n.id.clone(),
                    endpoint_id,
                    gateway: gw.to_string(),
                    ip_address: ip.to_string(),
                    ip_prefix_len: *prefix,
                    dns_names: (!n.is_default_bridge()).then_some(dns_names),
                    ..EndpointSettings::default()
                },
            );
        }
        // Published ports.
        let mut wanted: Vec<(String, PortBinding)> = Vec::new();
        for (k, v) in &req.port_bindings {
            if v.is_empty() {
                wanted.push((k.clone(), PortBinding::default()));
            }
            for b in v {
                wanted.push((k.clone(), b.clone()));
            }
        }
        for k in &req.publish_all {
            if !req.port_bindings.contains_key(k) {
                wanted.push((k.clone(), PortBinding::default()));
            }
        }
        for k in &req.exposed {
            joined.ports.entry(normalise_port_key(k)).or_insert(None);
        }
        for (k, b) in wanted {
            let (cport, proto) = parse_port_key(&k)?;
            let host_ip: Ipv4Addr = if b.host_ip.is_empty() {
                self.settings.default_bind_ip
            } else if b
                .host_ip
                .trim_matches(['[', ']'])
                .parse::<std::net::Ipv6Addr>()
                .is_ok()
            {
                // berth's networks are IPv4 only: an IPv6 host address (compose's `[::]`)
                // publishes nothing, as dockerd without IPv6.
                continue;
            } else {
                b.host_ip
                    .parse()
                    .map_err(|_| NetworkError::InvalidPort(format!("{}:{}", b.host_ip, k)))?
            };
            let (lo, hi) = parse_host_ports(&b.host_port)?;
            let held = if lo == hi {
                ports::hold(proto, host_ip, lo)?
            } else {
                ports::hold_in_range(proto, host_ip, lo, hi)?
            };
            let rule = dnat_target.as_ref().map(|(ip, bridge)| PortRule {
                proto,
                host_ip: (!host_ip.is_unspecified()).then_some(host_ip),
                host_port: held.port,
                container_ip: *ip,
                container_port: cport,
                bridge: bridge.clone(),
            });
            let key = format!("{cport}/{}", proto.as_str());
            let binding = PortBinding {
                host_ip: host_ip.to_string(),
                host_port: held.port.to_string(),
            };
            joined
                .ports
                .entry(key.clone())
                .or_insert(None)
                .get_or_insert_with(Vec::new)
                .push(binding.clone());
            let proxy = self.userland_proxy(&held, dnat_target.as_ref().map(|t| (t.0, cport)));
            sb.ports.push(Published {
                key,
                binding,
                rule,
                _held: Some(held),
                proxy,
            });
        }
        // resolv.conf, hosts, DNS.
        let resolv = self.resolv_conf(req, user_networks);
        joined.resolv_conf = resolv.text;
        // hosts_file takes (address, names).
        let mut extra: Vec<(String, String)> = req
            .extra_hosts
            .iter()
            .map(|(name, ip)| (ip.clone(), name.clone()))
            .collect();
        {
            let st = self.lock();
            for (target, alias) in &req.links {
                let Some(other) = st.sandboxes.get(target) else {
                    continue;
                };
                if let Some(e) = other.endpoints.first() {
                    let mut names = alias.clone();
                    if *alias != other.name {
                        names.push(' ');
                        names.push_str(&other.name);
                    }
                    extra.push((e.ip.to_string(), names));
                }
            }
        }
        joined.hosts = crate::etc::hosts_file(&req.hostname, &req.domainname, &addresses, &extra);
        sb.upstreams = if internal_only {
            Vec::new()
        } else {
            resolv.upstreams
        };
        if user_networks {
            sb.dns = Some(self.start_dns(&req.container, &sb.netns).await?);
        }
        Ok(())
    }

    /// A container's resolv.conf (its own `--dns*` over the daemon's), with the embedded
    /// server or without.
    fn resolv_conf(&self, req: &JoinRequest, embedded: bool) -> crate::etc::ResolvConf {
        let pick = |mine: &[String], daemon: &[String]| {
            if mine.is_empty() {
                daemon.to_vec()
            } else {
                mine.to_vec()
            }
        };
        crate::etc::resolv_conf(
            &req.host_resolv_conf,
            embedded,
            &pick(&req.dns, &self.settings.dns),
            &pick(&req.dns_search, &self.settings.dns_search),
            &pick(&req.dns_options, &self.settings.dns_options),
        )
    }

    /// With `--iptables=false` the kernel forwards nothing: a TCP port is copied in
    /// userland, as dockerd's docker-proxy does. `None` otherwise (or for UDP).
    fn userland_proxy(
        &self,
        held: &HeldPort,
        target: Option<(Ipv4Addr, u16)>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.settings.nftables || held.proto != Proto::Tcp {
            return None;
        }
        let (ip, port) = target?;
        let listener = held.try_clone_listener().ok()?;
        let listener = tokio::net::TcpListener::from_std(listener).ok()?;
        Some(tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect((ip, port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        }))
    }

    async fn start_dns(
        self: &Arc<Self>,
        container: &str,
        netns: &Netns,
    ) -> Result<DnsServer, NetworkError> {
        let at = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 53);
        let (udp, tcp) = netns.run(move || {
            let udp = std::net::UdpSocket::bind(at);
            let tcp = std::net::TcpListener::bind(at);
            (udp, tcp)
        })?;
        let io = |source| NetworkError::Io {
            context: "binding the DNS server at 127.0.0.11:53".into(),
            source,
        };
        let names: Arc<dyn Names> = self.clone();
        DnsServer::spawn(
            container.to_string(),
            udp.map_err(io)?,
            tcp.map_err(io)?,
            names,
        )
    }

    /// Undoes a sandbox: interfaces, ports, DNS, the namespace. Quiet: what is gone already
    /// is fine, what fails is logged.
    pub async fn leave(&self, container: &str) {
        let sb = self.lock().sandboxes.remove(container);
        if let Some(sb) = sb {
            self.dispose(container, sb).await;
        }
    }

    async fn dispose(&self, container: &str, sb: Sandbox) {
        let had_rules = sb.ports.iter().any(|p| p.rule.is_some());
        if let Some(d) = sb.dns {
            d.stop();
        }
        for e in sb.endpoints.iter().filter(|e| !e.host_if.is_empty()) {
            if let Err(err) = self.links.detach(&e.host_if).await {
                tracing::warn!(container, host_if = %e.host_if, error = %err, "cannot remove a veth");
            }
        }
        drop(sb.ports);
        let key = sb.netns.path().to_path_buf();
        drop(sb.netns);
        match tokio::task::spawn_blocking(move || Netns::remove(&key)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(container, error = %err, "cannot remove the network namespace")
            }
            Err(err) => {
                tracing::warn!(container, error = %err, "cannot remove the network namespace")
            }
        }
        if had_rules && let Err(err) = self.apply_rules().await {
            tracing::warn!(container, error = %err, "cannot update the nftables rules");
        }
    }

    /// A running container's interfaces and their counters.
    pub fn interface_stats(&self, container: &str) -> Vec<(String, InterfaceStats)> {
        let st = self.lock();
        let Some(sb) = st.sandboxes.get(container) else {
            return Vec::new();
        };
        let text = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap_or_default();
        let all = InterfaceStats::of_host_sides(&text);
        sb.endpoints
            .iter()
            .filter_map(|e| Some((e.if_name.clone(), *all.get(&e.host_if)?)))
            .collect()
    }

    /// Whether a container has a sandbox now.
    pub fn has_sandbox(&self, container: &str) -> bool {
        self.lock().sandboxes.contains_key(container)
    }

    /// `docker network connect` of a running container: a new interface in its namespace.
    /// `req` is the container's, for its resolv.conf: when this is its first user-defined
    /// network, the embedded DNS server starts and [`Connected::resolv_conf`] is its new file.
    pub async fn connect(
        self: &Arc<Self>,
        container: &str,
        net_key: &str,
        asked: &EndpointSettings,
        req: &JoinRequest,
    ) -> Result<Connected, NetworkError> {
        let (n, (ip, prefix, gw), netns_path, has_dns, has_gateway) = {
            let mut st = self.lock();
            let n = find(&st.networks, net_key)?.clone();
            let Some(sb) = st.sandboxes.get(container) else {
                return Err(NetworkError::NoSandbox(container.to_string()));
            };
            if sb.endpoints.iter().any(|e| e.network == n.id) {
                return Err(NetworkError::AlreadyConnected {
                    container: sb.name.clone(),
                    network: n.name.clone(),
                });
            }
            let gw_taken = sb.endpoints.iter().any(|e| {
                st.networks
                    .get(&e.network)
                    .is_some_and(|x| !x.internal && x.driver == "bridge")
            });
            let a = allocate(&st, &n, asked, &[])?;
            let Some(sb) = st.sandboxes.get_mut(container) else {
                return Err(NetworkError::NoSandbox(container.to_string()));
            };
            sb.endpoints.push(Attached {
                network: n.id.clone(),
                ip: a.0,
                aliases: Vec::new(),
                host_if: String::new(),
                if_name: String::new(),
                links: endpoint_links(asked),
            });
            (
                n,
                a,
                sb.netns.path().to_path_buf(),
                sb.dns.is_some(),
                gw_taken,
            )
        };
        let endpoint_id = random_hex(32);
        let host_if = format!("veth{}", &endpoint_id[..7]);
        let mac = link::mac_for(ip);
        let mtu = n
            .options
            .get("com.docker.network.driver.mtu")
            .and_then(|m| m.parse().ok())
            .unwrap_or(self.settings.mtu);
        let if_name = self.free_if_name(&netns_path).await;
        let done = match (&if_name, Netns::open(&netns_path)) {
            (Ok(if_name), Ok(netns)) => {
                self.links
                    .attach(
                        &netns,
                        &Endpoint {
                            host_if: host_if.clone(),
                            bridge: n.bridge.clone(),
                            if_name: if_name.clone(),
                            mac,
                            address: ip,
                            prefix,
                            gateway: (!n.internal && !has_gateway).then_some(gw),
                            mtu,
                        },
                    )
                    .await
            }
            (Err(e), _) => Err(NetworkError::Io {
                context: format!("connecting {container} to {}", n.name),
                source: std::io::Error::other(e.to_string()),
            }),
            (_, Err(e)) => Err(e),
        };
        let first_user_network = done.is_ok() && !has_dns && !n.is_default_bridge();
        let dns = match Netns::open(&netns_path) {
            Ok(netns) if first_user_network => self.start_dns(container, &netns).await.ok(),
            _ => None,
        };
        let resolv = dns.is_some().then(|| self.resolv_conf(req, true));
        let name = {
            let mut st = self.lock();
            let Some(sb) = st.sandboxes.get_mut(container) else {
                return Err(NetworkError::NoSandbox(container.to_string()));
            };
            match &done {
                Ok(()) => {
                    if let Some(e) = sb
                        .endpoints
                        .iter_mut()
                        .find(|e| e.network == n.id && e.host_if.is_empty())
                    {
                        e.host_if = host_if;
                        e.if_name = if_name.as_ref().cloned().unwrap_or_default();
                        e.aliases = asked.aliases.clone().unwrap_or_default();
                    }
                    if dns.is_some() {
                        sb.dns = dns;
                        if let Some(r) = &resolv {
                            sb.upstreams = if n.internal {
                                Vec::new()
                            } else {
                                r.upstreams.clone()
                            };
                        }
                    }
                }
                Err(_) => sb
                    .endpoints
                    .retain(|e| !(e.network == n.id && e.host_if.is_empty())),
            }
            sb.name.clone()
        };
        done?;
        let mut dns_names = vec![name];
        dns_names.extend(asked.aliases.clone().unwrap_or_default());
        dns_names.push(container.chars().take(12).collect());
        Ok(Connected {
            network: n.name.clone(),
            endpoint: EndpointSettings {
                ipam_config: asked.ipam_config.clone(),
                aliases: asked.aliases.clone().filter(|a| !a.is_empty()),
                mac_address: format_mac(&mac),
                network_id: n.id.clone(),
                endpoint_id,
                gateway: gw.to_string(),
                ip_address: ip.to_string(),
                ip_prefix_len: prefix,
                dns_names: (!n.is_default_bridge()).then_some(dns_names),
                ..EndpointSettings::default()
            },
            resolv_conf: resolv.map(|r| r.text),
        })
    }

    /// The first `ethN` not in the namespace yet.
    async fn free_if_name(&self, netns: &std::path::Path) -> Result<String, NetworkError> {
        let ns = Netns::open(netns)?;
        let links = Links::in_netns(&ns)?;
        let taken = links.links_with_prefix("eth").await?;
        Ok((0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !taken.contains(n))
            .unwrap_or_else(|| "eth0".into()))
    }

    /// `docker network disconnect` of a running container: its interface on that network
    /// goes.
    /// Returns the published ports that went with it (those forwarded to its address there),
    /// as (`80/tcp`, host side).
    pub async fn disconnect(
        &self,
        container: &str,
        network_id: &str,
    ) -> Result<Vec<(String, PortBinding)>, NetworkError> {
        let (host_if, gone) = {
            let mut st = self.lock();
            let Some(sb) = st.sandboxes.get_mut(container) else {
                return Ok(Vec::new());
            };
            let Some(pos) = sb.endpoints.iter().position(|e| e.network == network_id) else {
                return Ok(Vec::new());
            };
            let e = sb.endpoints.remove(pos);
            // Its address is free now: a port forwarded to it would reach the next holder.
            let (gone, kept): (Vec<Published>, Vec<Published>) = std::mem::take(&mut sb.ports)
                .into_iter()
                .partition(|p| p.rule.as_ref().is_some_and(|r| r.container_ip == e.ip));
            sb.ports = kept;
            (e.host_if, gone)
        };
        if !host_if.is_empty() {
            self.links.detach(&host_if).await?;
        }
        let out: Vec<(String, PortBinding)> = gone
            .iter()
            .map(|p| (p.key.clone(), p.binding.clone()))
            .collect();
        if !gone.is_empty() {
            drop(gone);
            self.apply_rules().await?;
        }
        Ok(out)
    }

    /// A container's new name, for the DNS answers.
    pub fn rename(&self, container: &str, name: &str) {
        if let Some(sb) = self.lock().sandboxes.get_mut(container) {
            sb.name = name.to_string();
        }
    }

    /// Takes back a running container's sandbox after a restart (live-restore): its pinned
    /// namespace, its addresses, its published host ports (held again) and its DNS server.
    pub async fn adopt(
        self: &Arc<Self>,
        req: &JoinRequest,
        joined: &Joined,
    ) -> Result<(), NetworkError> {
        let netns = Netns::open(&joined.sandbox_key)?;
        let mut endpoints = Vec::new();
        let mut user = false;
        let mut internal_only = true;
        let mut dnat: Option<(Ipv4Addr, String)> = None;
        {
            let st = self.lock();
            for (name, e) in &joined.endpoints {
                let Some(n) = st
                    .networks
                    .get(&e.network_id)
                    .or_else(|| st.networks.values().find(|n| n.name == *name))
                else {
                    continue;
                };
                let Ok(ip) = e.ip_address.parse::<Ipv4Addr>() else {
                    continue;
                };
                user |= !n.is_default_bridge() && n.driver == "bridge";
                internal_only &= n.internal;
                if dnat.is_none() && !n.internal && n.driver == "bridge" {
                    dnat = Some((ip, n.bridge.clone()));
                }
                endpoints.push(Attached {
                    if_name: format!("eth{}", endpoints.len()),
                    links: endpoint_links(e),
                    network: n.id.clone(),
                    ip,
                    aliases: e.aliases.clone().unwrap_or_default(),
                    host_if: if e.endpoint_id.len() >= 7 {
                        format!("veth{}", &e.endpoint_id[..7])
                    } else {
                        String::new()
                    },
                });
            }
        }
        let mut published = Vec::new();
        for (k, v) in &joined.ports {
            let (cport, proto) = parse_port_key(k)?;
            for b in v.iter().flatten() {
                let ip: Ipv4Addr = b.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
                let port: u16 = b.host_port.parse().unwrap_or(0);
                // The rule stays even when the socket cannot be held again: the kernel
                // forwards the port as before.
                let held = match ports::hold(proto, ip, port) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        tracing::warn!(container = %req.container, error = %e, "cannot hold a published port again");
                        None
                    }
                };
                let proxy = held
                    .as_ref()
                    .and_then(|h| self.userland_proxy(h, dnat.as_ref().map(|t| (t.0, cport))));
                published.push(Published {
                    key: k.clone(),
                    binding: b.clone(),
                    proxy,
                    rule: dnat.as_ref().map(|(cip, bridge)| PortRule {
                        proto,
                        host_ip: (!ip.is_unspecified()).then_some(ip),
                        host_port: port,
                        container_ip: *cip,
                        container_port: cport,
                        bridge: bridge.clone(),
                    }),
                    _held: held,
                });
            }
        }
        let resolv = self.resolv_conf(req, user);
        let dns = if user {
            match self.start_dns(&req.container, &netns).await {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(container = %req.container, error = %e, "cannot serve DNS again");
                    None
                }
            }
        } else {
            None
        };
        let next_if = endpoints.len() as u32 + 1;
        self.lock().sandboxes.insert(
            req.container.clone(),
            Sandbox {
                name: req.name.clone(),
                netns,
                endpoints,
                ports: published,
                dns,
                upstreams: if internal_only {
                    Vec::new()
                } else {
                    resolv.upstreams
                },
                next_if,
            },
        );
        Ok(())
    }

    /// Replaces berth's nftables table with the rules for the networks and published ports
    /// now (one atomic transaction).
    pub async fn apply_rules(&self) -> Result<(), NetworkError> {
        if !self.settings.nftables {
            return Ok(());
        }
        let _one = self.nft.lock().await;
        let rules = {
            let st = self.lock();
            let bridges = st
                .networks
                .values()
                .filter(|n| n.driver == "bridge")
                .filter_map(|n| {
                    let s = n.subnet?;
                    let opt = |k: &str, d: bool| {
                        n.options
                            .get(k)
                            .and_then(|v| v.parse::<bool>().ok())
                            .unwrap_or(d)
                    };
                    Some(BridgeRules {
                        name: n.bridge.clone(),
                        subnet: s.network().addr,
                        prefix: s.prefix,
                        masquerade: opt(
                            "com.docker.network.bridge.enable_ip_masquerade",
                            self.settings.ip_masq,
                        ),
                        internal: n.internal,
                        icc: opt("com.docker.network.bridge.enable_icc", self.settings.icc),
                    })
                })
                .collect();
            let ports = st
                .sandboxes
                .values()
                .flat_map(|s| s.ports.iter().filter_map(|p| p.rule.clone()))
                .collect();
            Ruleset { bridges, ports }
        };
        nft::apply(&self.settings.table, &rules).await
    }

    /// At shutdown without live-restore: every sandbox, bridge and rule berth made goes.
    pub async fn teardown(&self) {
        let ids: Vec<String> = self.lock().sandboxes.keys().cloned().collect();
        for id in ids {
            self.leave(&id).await;
        }
        let bridges: Vec<String> = self
            .lock()
            .networks
            .values()
            .filter(|n| n.owned_bridge)
            .map(|n| n.bridge.clone())
            .collect();
        for b in bridges {
            if let Err(e) = self.links.delete_link(&b).await {
                tracing::warn!(bridge = %b, error = %e, "cannot remove a bridge");
            }
        }
        if self.settings.nftables
            && let Err(e) = nft::remove(&self.settings.table).await
        {
            tracing::warn!(error = %e, "cannot remove the nftables table");
        }
    }

    /// Pinned namespaces under `<exec-root>/netns` that no sandbox holds (left by a crash),
    /// removed.
    pub async fn remove_stale_namespaces(&self) {
        let held: BTreeSet<PathBuf> = self
            .lock()
            .sandboxes
            .values()
            .map(|s| s.netns.path().to_path_buf())
            .collect();
        let Ok(dir) = std::fs::read_dir(&self.settings.netns_dir) else {
            return;
        };
        for e in dir.flatten() {
            let p = e.path();
            if !held.contains(&p) {
                let _ = tokio::task::spawn_blocking(move || Netns::remove(&p)).await;
            }
        }
    }
}

fn requested_ip(settings: &EndpointSettings) -> Result<Option<Ipv4Addr>, NetworkError> {
    match settings
        .ipam_config
        .as_ref()
        .map(|c| c.ipv4_address.as_str())
        .filter(|s| !s.is_empty())
    {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| NetworkError::InvalidSubnet(format!("invalid IPv4 address: {s}"))),
    }
}

/// An address on `n` for a new endpoint: the one asked for (free), else the first free one.
/// Returns (address, prefix, gateway).
fn allocate(
    st: &State,
    n: &Network,
    asked: &EndpointSettings,
    also: &[(String, Ipv4Addr)],
) -> Result<(Ipv4Addr, u8, Ipv4Addr), NetworkError> {
    let (Some(subnet), Some(gw)) = (n.subnet, n.gateway) else {
        return Err(NetworkError::NotBridge(n.name.clone()));
    };
    let space = AddressSpace::new(subnet, Some(gw), n.ip_range)?;
    let used: BTreeSet<Ipv4Addr> = st
        .sandboxes
        .values()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.network == n.id)
        .map(|e| e.ip)
        .chain(st.reserved.iter().filter(|r| r.1 == n.id).map(|r| r.2))
        .chain(also.iter().filter(|r| r.0 == n.id).map(|r| r.1))
        .collect();
    let ip = match requested_ip(asked)? {
        Some(ip) => {
            if n.is_default_bridge() {
                return Err(NetworkError::IpOnDefault);
            }
            space.check_requested(ip)?;
            if used.contains(&ip) {
                return Err(NetworkError::AddressInUse(ip));
            }
            ip
        }
        None => space
            .allocate(&|ip| used.contains(&ip))
            .ok_or_else(|| NetworkError::NoAddress(n.name.clone()))?,
    };
    Ok((ip, subnet.prefix, gw))
}

fn find<'a>(
    networks: &'a BTreeMap<String, Network>,
    key: &str,
) -> Result<&'a Network, NetworkError> {
    if key.is_empty() {
        return Err(NetworkError::NoSuchNetwork(key.to_string()));
    }
    if let Some(n) = networks.values().find(|n| n.name == key) {
        return Ok(n);
    }
    if let Some(n) = networks.get(key) {
        return Ok(n);
    }
    let mut by_prefix = networks.values().filter(|n| n.id.starts_with(key));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(NetworkError::Ambiguous(key.to_string())),
        _ => Err(NetworkError::NoSuchNetwork(key.to_string())),
    }
}

/// `"80"` → `"80/tcp"`.
fn normalise_port_key(k: &str) -> String {
    if k.contains('/') {
        k.to_ascii_lowercase()
    } else {
        format!("{k}/tcp")
    }
}

impl Names for Networks {
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let st = self.lock();
        let me = st.sandboxes.get(asker)?;
        let mine: BTreeSet<&str> = me
            .endpoints
            .iter()
            .filter(|e| {
                st.networks
                    .get(&e.network)
                    .is_some_and(|n| !n.is_default_bridge())
            })
            .map(|e| e.network.as_str())
            .collect();
        // A link alias of the asker's stands for its target's name.
        let name = me
            .endpoints
            .iter()
            .flat_map(|e| e.links.iter())
            .find(|(alias, _)| alias == name)
            .map_or(name, |(_, target)| target.as_str());
        let mut out = Vec::new();
        for (id, sb) in &st.sandboxes {
            let short = id.get(..12).unwrap_or(id);
            for e in sb
                .endpoints
                .iter()
                .filter(|e| mine.contains(e.network.as_str()))
            {
                let hit = sb.name.eq_ignore_ascii_case(name)
                    || short == name
                    || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name));
                if hit && !out.contains(&e.ip) {
                    out.push(e.ip);
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    fn reverse(&self, asker: &str, ip: Ipv4Addr) -> Option<String> {
        let st = self.lock();
        let me = st.sandboxes.get(asker)?;
        let mine: BTreeSet<&str> = me.endpoints.iter().map(|e| e.network.as_str()).collect();
        st.sandboxes.values().find_map(|sb| {
            sb.endpoints
                .iter()
                .any(|e| e.ip == ip && mine.contains(e.network.as_str()))
                .then(|| sb.name.clone())
        })
    }

    fn upstreams(&self, asker: &str) -> Vec<SocketAddr> {
        self.lock()
            .sandboxes
            .get(asker)
            .map(|s| s.upstreams.clone())
            .unwrap_or_default()
    }
}

/// `EndpointSettings` as a create asks for a network (just `--ip`), for tests and callers.
pub fn asking_ip(ip: &str) -> EndpointSettings {
    EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: ip.to_string(),
            ..EndpointIpamConfig::default()
        }),
        ..EndpointSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_keys_and_host_ports_parse() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, Proto::Tcp));
        assert_eq!(parse_port_key("53/udp").unwrap(), (53, Proto::Udp));
        assert_eq!(parse_port_key("8080").unwrap(), (8080, Proto::Tcp));
        assert!(parse_port_key("x/tcp").is_err());
        assert!(parse_port_key("80/sctp").is_err());
        assert_eq!(parse_host_ports("").unwrap(), (0, 0));
        assert_eq!(parse_host_ports("8080").unwrap(), (8080, 8080));
        assert_eq!(parse_host_ports("8000-8010").unwrap(), (8000, 8010));
        assert!(parse_host_ports("9-1").is_err());
        assert_eq!(normalise_port_key("80"), "80/tcp");
    }

    #[test]
    fn networks_are_found_by_name_id_and_prefix() {
        let mk = |id: &str, name: &str| Network::bare(id.into(), name, "bridge", String::new());
        let mut m = BTreeMap::new();
        for (id, name) in [("abc123", "one"), ("abd456", "two"), ("ffff", "abc123x")] {
            m.insert(id.to_string(), mk(id, name));
        }
        assert_eq!(find(&m, "one").unwrap().id, "abc123");
        assert_eq!(find(&m, "abd456").unwrap().name, "two");
        assert_eq!(find(&m, "abc").unwrap().name, "one");
        assert!(matches!(find(&m, "ab"), Err(NetworkError::Ambiguous(_))));
        assert!(matches!(
            find(&m, "zz"),
            Err(NetworkError::NoSuchNetwork(_))
        ));
        assert_eq!(find(&m, "abc123x").unwrap().id, "ffff", "a name first");
    }

    #[test]
    fn host_side_counters_swap_into_the_containers_view() {
        let text = "Inter-|   Receive                            |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n \
             veth1234567: 100 2 0 0 0 0 0 0 5000 7 1 3 0 0 0 0\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n";
        let s = InterfaceStats::of_host_sides(text);
        let v = s["veth1234567"];
        assert_eq!(
            (v.rx_bytes, v.rx_packets, v.tx_bytes, v.tx_packets),
            (5000, 7, 100, 2)
        );
        assert_eq!((v.rx_errors, v.rx_dropped), (1, 3));
        assert!(s.contains_key("lo"));
    }

    #[test]
    fn times_are_rfc3339() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && t.len() == 30, "{t}");
    }
}
