//! Networks as the engine uses them: the `docker network` operations, which networks a
//! container asks for at create, its sandbox made at start (before the task exists: runc
//! joins the namespace by path) and undone at exit, and the events. The networks themselves
//! (namespaces, bridges, rules, addresses, DNS) are berth-network's.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use berth_model::{EndpointSettings, HostConfig, NetworkSettings, NetworkingConfig};
use berth_network::{CreateRequest, JoinRequest, Joined, Network, NetworkError, Networks};

use super::Container;
use crate::{Daemon, DaemonError};

/// How a container is networked, from its `NetworkMode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    Host,
    None,
    /// Another container's namespace (`container:<id>`).
    Container(String),
    /// berth's own namespace with an interface on each network of its record.
    Bridged,
}

pub(crate) fn mode(network_mode: &str) -> Mode {
    match network_mode {
        "host" => Mode::Host,
        "none" => Mode::None,
        m => match m.strip_prefix("container:") {
            Some(id) => Mode::Container(id.to_string()),
            None => Mode::Bridged,
        },
    }
}

/// One container on a network, as `docker network inspect` lists it.
#[derive(Debug, Clone)]
pub struct NetworkMember {
    pub id: String,
    pub name: String,
    pub endpoint_id: String,
    pub mac_address: String,
    /// `10.99.0.2/24`.
    pub ipv4_address: String,
}

/// A network and the running containers on it.
#[derive(Debug, Clone)]
pub struct NetworkView {
    pub network: Network,
    pub members: Vec<NetworkMember>,
}

/// The settings of berth-network from the daemon's configuration.
fn settings(d: &Daemon) -> Result<berth_network::Settings, DaemonError> {
    let c = &d.config().config;
    let bad = |what: &str, v: &str| {
        DaemonError::InvalidParameter(format!("invalid {what} in the daemon configuration: {v}"))
    };
    let subnet = |what: &str, v: &Option<String>| -> Result<_, DaemonError> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| bad(what, s)))
            .transpose()
    };
    let mut pools = Vec::new();
    for p in &c.default_address_pools {
        pools.push(berth_network::ipam::Pool {
            base: p
                .base
                .parse()
                .map_err(|_| bad("default-address-pools", &p.base))?,
            size: p.size,
        });
    }
    if pools.is_empty() {
        pools = berth_network::ipam::default_pools();
    }
    let default_bind_ip = match c.ip.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.parse().map_err(|_| bad("ip", s))?,
        None => Ipv4Addr::UNSPECIFIED,
    };
    Ok(berth_network::Settings {
        data_dir: d.paths().data_root.join("network"),
        netns_dir: d.paths().exec_root.join("netns"),
        bridge: (c.bridge != "none" && !c.bridge.is_empty()).then(|| c.bridge.clone()),
        bip: subnet("bip", &c.bip)?,
        fixed_cidr: subnet("fixed-cidr", &c.fixed_cidr)?,
        pools,
        mtu: c.mtu.unwrap_or(1500),
        nftables: c.iptables,
        ip_forward: c.ip_forward,
        ip_masq: c.ip_masq,
        icc: c.icc,
        default_bind_ip,
        table: "berth".into(),
        dns: c.dns.clone(),
        dns_search: c.dns_search.clone(),
        dns_options: c.dns_opts.clone(),
    })
}

impl Daemon {
    /// Sets up networking (the predefined networks, bridges, berth's nftables table). Once,
    /// at start, before containers are restored.
    pub async fn open_networks(&self) -> Result<(), DaemonError> {
        let n = Networks::open(settings(self)?).await?;
        let _ = self.networks.set(n);
        Ok(())
    }

    pub(crate) fn net(&self) -> Result<&Arc<Networks>, DaemonError> {
        self.networks
            .get()
            .ok_or_else(|| DaemonError::Network(NetworkError::NoSuchNetwork("bridge".into())))
    }

    fn network_event(&self, action: &str, n: &Network, container: Option<&str>) {
        let mut attrs = BTreeMap::from([
            ("name".to_string(), n.name.clone()),
            ("type".to_string(), n.driver.clone()),
        ]);
        if let Some(c) = container {
            attrs.insert("container".into(), c.to_string());
        }
        self.events
            .log(crate::events::Event::new("network", action, &n.id, attrs));
    }

    fn view(&self, n: Network) -> NetworkView {
        let mut members = Vec::new();
        if let Ok(net) = self.net() {
            for c in self.containers.all() {
                if !net.has_sandbox(&c.id) {
                    continue;
                }
                let r = c.record();
                for e in r.network_settings.networks.values() {
                    if e.network_id == n.id && !e.ip_address.is_empty() {
                        members.push(NetworkMember {
                            id: c.id.clone(),
                            name: r.name.clone(),
                            endpoint_id: e.endpoint_id.clone(),
                            mac_address: e.mac_address.clone(),
                            ipv4_address: format!("{}/{}", e.ip_address, e.ip_prefix_len),
                        });
                    }
                }
            }
        }
        NetworkView {
            network: n,
            members,
        }
    }

    /// `GET /networks`.
    pub fn network_list(&self) -> Vec<NetworkView> {
        let Ok(net) = self.net() else {
            return Vec::new();
        };
        net.list().into_iter().map(|n| self.view(n)).collect()
    }

    /// `GET /networks/{id}`.
    pub fn network_inspect(&self, key: &str) -> Result<NetworkView, DaemonError> {
        Ok(self.view(self.net()?.get(key)?))
    }

    /// `POST /networks/create`: the new network's ID.
    pub async fn network_create(&self, req: CreateRequest) -> Result<String, DaemonError> {
        let n = self.net()?.create(req).await?;
        self.network_event("create", &n, None);
        Ok(n.id)
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(&self, key: &str) -> Result<(), DaemonError> {
        let n = self.net()?.remove(key).await?;
        self.network_event("destroy", &n, None);
        Ok(())
    }

    /// `POST /networks/prune`: the names of the networks removed. `keep` says which to keep
    /// (label and until filters).
    pub async fn network_prune(
        &self,
        keep: &(dyn Fn(&Network) -> bool + Send + Sync),
    ) -> Vec<String> {
        let Ok(net) = self.net() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for n in net.unused() {
            if keep(&n) {
                continue;
            }
            if net.remove(&n.id).await.is_ok() {
                self.network_event("destroy", &n, None);
                out.push(n.name);
            }
        }
        out
    }

    /// `docker network connect`: recorded on a stopped container, made at once on a running
    /// one.
    pub async fn network_connect(
        &self,
        key: &str,
        container: &str,
        asked: EndpointSettings,
    ) -> Result<(), DaemonError> {
        let net = self.net()?;
        let c = self.containers.get(container)?;
        let _op = c.op.lock().await;
        let n = net.check_endpoint(key, &asked)?;
        let m = mode(&c.record().host_config.network_mode);
        if m != Mode::Bridged {
            return Err(DaemonError::Forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network"
                    .to_string(),
            ));
        }
        if n.driver != "bridge" {
            return Err(DaemonError::Forbidden(format!(
                "container cannot be disconnected from host network or connected to {} network",
                n.name
            )));
        }
        if c.record().network_settings.networks.contains_key(&n.name) {
            return Err(DaemonError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name(),
                n.name
            )));
        }
        if net.has_sandbox(&c.id) {
            let req = self.join_request(&c, net)?;
            let got = net.connect(&c.id, &n.id, &asked, &req).await?;
            if let Some(text) = &got.resolv_conf {
                // Its first user-defined network: names now go to the embedded server.
                write_etc(&c.record().resolv_conf_path, text)?;
            }
            c.lock()
                .record
                .network_settings
                .networks
                .insert(got.network, got.endpoint);
        } else {
            let mut e = asked;
            e.network_id = n.id.clone();
            c.lock()
                .record
                .network_settings
                .networks
                .insert(n.name.clone(), e);
        }
        c.persist()?;
        self.network_event("connect", &n, Some(&c.id));
        Ok(())
    }

    /// `docker network disconnect`.
    pub async fn network_disconnect(&self, key: &str, container: &str) -> Result<(), DaemonError> {
        let net = self.net()?;
        let c = self.containers.get(container)?;
        let _op = c.op.lock().await;
        let n = net.get(key)?;
        let name = {
            let r = c.record();
            r.network_settings
                .networks
                .iter()
                .find(|(k, e)| **k == n.name || e.network_id == n.id)
                .map(|(k, _)| k.clone())
        };
        let Some(name) = name else {
            return Err(DaemonError::Forbidden(format!(
                "container {} is not connected to network {}",
                c.id, n.name
            )));
        };
        let gone = net.disconnect(&c.id, &n.id).await?;
        {
            let mut inner = c.lock();
            let ns = &mut inner.record.network_settings;
            ns.networks.remove(&name);
            for (key, binding) in gone {
                if let Some(Some(list)) = ns.ports.get_mut(&key) {
                    list.retain(|b| *b != binding);
                }
            }
        }
        c.persist()?;
        self.network_event("disconnect", &n, Some(&c.id));
        Ok(())
    }

    /// At create: the networks a container asks for (`NetworkMode` and `NetworkingConfig`),
    /// checked, keyed by name. `NetworkMode` `default` means the default bridge (or `none`
    /// when there is none); `container:NAME` is named by ID from here on.
    pub(crate) fn plan_networks(
        &self,
        host: &mut HostConfig,
        networking: &NetworkingConfig,
    ) -> Result<NetworkSettings, DaemonError> {
        let mut out = NetworkSettings::default();
        let endpoints = networking.endpoints_config.clone().unwrap_or_default();
        let asked_for = |key: &str| endpoints.get(key).cloned().unwrap_or_default();
        match host.network_mode.as_str() {
            "" | "default" => {
                let has_bridge = self.net().is_ok_and(|n| n.get("bridge").is_ok());
                if !has_bridge && endpoints.keys().all(|k| k == "default" || k == "bridge") {
                    host.network_mode = "none".into();
                    return Ok(out);
                }
                if host.network_mode.is_empty() {
                    host.network_mode = "default".into();
                }
            }
            "host" | "none" => {
                // Listed, as dockerd lists them; berth makes no endpoint for either.
                out.networks
                    .insert(host.network_mode.clone(), EndpointSettings::default());
                return Ok(out);
            }
            m if m.starts_with("container:") => {
                let name = &m["container:".len()..];
                let target = self.containers.get(name).map_err(|e| match e {
                    DaemonError::NoSuchContainer(n) => {
                        crate::containers::InvalidConfig::NoSuchContainer(n).into()
                    }
                    other => other,
                })?;
                if !host.port_bindings.is_empty() || host.publish_all_ports {
                    return Err(DaemonError::InvalidParameter(
                        "conflicting options: port publishing and the container type network mode"
                            .into(),
                    ));
                }
                host.network_mode = format!("container:{}", target.id);
                return Ok(out);
            }
            _ => {}
        }
        let net = self.net()?;
        let primary_key = match host.network_mode.as_str() {
            "default" => "bridge".to_string(),
            m => m.to_string(),
        };
        let mut primary = asked_for(&host.network_mode);
        if primary == EndpointSettings::default() {
            primary = asked_for(&primary_key);
        }
        let n = net.check_endpoint(&primary_key, &primary)?;
        if n.driver != "bridge" {
            // `--network host` by ID or `--network none` spelt otherwise.
            host.network_mode = n.name.clone();
            return Ok(out);
        }
        primary.network_id = n.id.clone();
        out.networks.insert(n.name.clone(), primary);
        for (k, e) in endpoints {
            if k == "default" || k == host.network_mode || k == primary_key {
                continue;
            }
            let other = net.check_endpoint(&k, &e)?;
            if other.driver != "bridge" {
                return Err(DaemonError::InvalidParameter(format!(
                    "container cannot be connected to network {} and to {}",
                    n.name, other.name
                )));
            }
            let mut e = e;
            e.network_id = other.id.clone();
            out.networks.insert(other.name.clone(), e);
        }
        for key in host.port_bindings.keys() {
            berth_network::parse_port_key(key)?;
        }
        for h in &host.extra_hosts {
            berth_network::etc::parse_extra_host(h)?;
        }
        Ok(out)
    }

    /// At start of a bridged container: its sandbox, its resolv.conf and hosts written, its
    /// record's endpoints and ports filled in. Returns the namespace's path.
    pub(crate) async fn join_networks(&self, c: &Arc<Container>) -> Result<PathBuf, DaemonError> {
        let net = self.net()?.clone();
        let r = c.record();
        let req = self.join_request(c, &net)?;
        let joined = net.join(&req).await?;
        let written = write_etc(&r.resolv_conf_path, &joined.resolv_conf)
            .and_then(|()| write_etc(&r.hosts_path, &joined.hosts));
        if let Err(e) = written {
            net.leave(&c.id).await;
            return Err(e);
        }
        let key = joined.sandbox_key.clone();
        let names: Vec<String> = joined.endpoints.keys().cloned().collect();
        record_joined(c, joined);
        for name in names {
            if let Ok(n) = net.get(&name) {
                self.network_event("connect", &n, Some(&c.id));
            }
        }
        Ok(key)
    }

    fn join_request(&self, c: &Container, net: &Networks) -> Result<JoinRequest, DaemonError> {
        let r = c.record();
        let h = &r.host_config;
        let extra_hosts = extra_hosts(h, Some(net))?;
        let mut links = Vec::new();
        for l in h.links.iter().flatten() {
            let (target, alias) = l.split_once(':').unwrap_or((l, l));
            let target = target.trim_start_matches('/');
            let alias = alias.trim_start_matches('/');
            let t = self.containers.get(target)?;
            if !t.state().running() {
                return Err(DaemonError::InvalidParameter(format!(
                    "Cannot link to a non running container: /{} AS /{}/{alias}",
                    t.name(),
                    r.name
                )));
            }
            links.push((t.id.clone(), alias.to_string()));
        }
        let exposed: Vec<String> = r
            .config
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        Ok(JoinRequest {
            container: c.id.clone(),
            name: r.name.clone(),
            hostname: r.config.hostname.clone(),
            domainname: r.config.domainname.clone(),
            networks: r
                .network_settings
                .networks
                .iter()
                .map(|(k, e)| {
                    let key = if e.network_id.is_empty() {
                        k.clone()
                    } else {
                        e.network_id.clone()
                    };
                    (key, e.clone())
                })
                .collect(),
            port_bindings: h.port_bindings.clone(),
            publish_all: if h.publish_all_ports {
                exposed.clone()
            } else {
                Vec::new()
            },
            exposed,
            dns: h.dns.clone(),
            dns_search: h.dns_search.clone(),
            dns_options: h.dns_options.clone(),
            extra_hosts,
            links,
            host_resolv_conf: std::fs::read_to_string(&self.paths().host.etc_resolv_conf)
                .unwrap_or_default(),
        })
    }

    /// After the task ended (or a start failed): the sandbox goes, the record keeps what was
    /// asked and forgets what was got.
    pub(crate) async fn leave_networks(&self, c: &Container) {
        let Ok(net) = self.net() else {
            return;
        };
        if !net.has_sandbox(&c.id) {
            return;
        }
        net.leave(&c.id).await;
        for (name, id) in forget_sandbox(c) {
            if let Ok(n) = net.get(if id.is_empty() { &name } else { &id }) {
                self.network_event("disconnect", &n, Some(&c.id));
            }
        }
    }

    /// At restore: a live container's sandbox taken back.
    pub(crate) async fn adopt_network(&self, c: &Container) {
        let Ok(net) = self.net() else {
            return;
        };
        let r = c.record();
        if mode(&r.host_config.network_mode) != Mode::Bridged
            || r.network_settings.sandbox_key.is_empty()
        {
            return;
        }
        let req = match self.join_request(c, net) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(container = %c.id, error = %e, "cannot take back the network");
                return;
            }
        };
        let joined = Joined {
            sandbox_id: r.network_settings.sandbox_id.clone(),
            sandbox_key: r.network_settings.sandbox_key.clone().into(),
            endpoints: r.network_settings.networks.clone(),
            ports: r.network_settings.ports.clone(),
            resolv_conf: String::new(),
            hosts: String::new(),
        };
        if let Err(e) = net.adopt(&req, &joined).await {
            tracing::warn!(container = %c.id, error = %e, "cannot take back the network");
        }
    }

    /// At start, once restore has taken back every live container (whether it succeeded or
    /// not): namespaces left by containers that ended while berthd was away go, and the rules
    /// are made again.
    pub async fn network_reconcile(&self) {
        let Ok(net) = self.net() else {
            return;
        };
        net.remove_stale_namespaces().await;
        for c in self.containers.all() {
            // A running one whose sandbox could not be taken back keeps its record (and so
            // its addresses, which a restart of berthd with it stopped gives back).
            if !net.has_sandbox(&c.id)
                && !c.state().running()
                && !c.record().network_settings.sandbox_key.is_empty()
            {
                forget_sandbox(&c);
                if let Err(e) = c.persist() {
                    tracing::warn!(container = %c.id, error = %e, "cannot record the network's end");
                }
            }
        }
        if let Err(e) = net.apply_rules().await {
            tracing::warn!(error = %e, "cannot apply the nftables rules");
        }
    }

    /// At shutdown without live-restore: every bridge and rule berth made goes.
    pub async fn network_teardown(&self) {
        if let Ok(net) = self.net() {
            net.teardown().await;
        }
    }

    /// A renamed container answers to its new name in DNS.
    pub(crate) fn network_rename(&self, c: &Container, name: &str) {
        if let Ok(net) = self.net() {
            net.rename(&c.id, name);
        }
    }
}

fn write_etc(path: &str, text: &str) -> Result<(), DaemonError> {
    std::fs::write(path, text).map_err(|source| DaemonError::Io {
        path: path.into(),
        source,
    })
}

/// The endpoints and ports a sandbox got, into the record (what was asked stays).
fn record_joined(c: &Container, joined: Joined) {
    let mut inner = c.lock();
    let ns = &mut inner.record.network_settings;
    ns.sandbox_id = joined.sandbox_id;
    ns.sandbox_key = joined.sandbox_key.display().to_string();
    ns.ports = joined.ports;
    for (name, got) in joined.endpoints {
        ns.networks
            .retain(|k, e| *k == name || e.network_id != got.network_id);
        ns.networks.insert(name, got);
    }
}

/// The record keeps what was asked of each network and forgets what the sandbox got.
/// Returns (name, network ID) of each.
fn forget_sandbox(c: &Container) -> Vec<(String, String)> {
    let mut inner = c.lock();
    let ns = &mut inner.record.network_settings;
    ns.ports.clear();
    ns.sandbox_id.clear();
    ns.sandbox_key.clear();
    for e in ns.networks.values_mut() {
        e.endpoint_id.clear();
        e.gateway.clear();
        e.ip_address.clear();
        e.ip_prefix_len = 0;
        e.mac_address.clear();
        e.dns_names = None;
    }
    ns.networks
        .iter()
        .map(|(k, e)| (k.clone(), e.network_id.clone()))
        .collect()
}

/// `--add-host` entries as (name, address): `host-gateway` is the default bridge's gateway
/// (127.0.0.1 without one, or without networking).
pub(crate) fn extra_hosts(
    h: &berth_model::HostConfig,
    net: Option<&Networks>,
) -> Result<Vec<(String, String)>, DaemonError> {
    let mut out = Vec::new();
    for e in &h.extra_hosts {
        let (name, mut ip) = berth_network::etc::parse_extra_host(e)?;
        if ip == "host-gateway" {
            ip = net
                .and_then(|net| net.get("bridge").ok())
                .and_then(|b| b.gateway)
                .map(|g| g.to_string())
                .unwrap_or_else(|| "127.0.0.1".into());
        }
        out.push((name, ip));
    }
    Ok(out)
}
