use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::Serialize;

use crate::network::{self, cidr_within, parse_ipv4_cidr};
use crate::{AddressPool, ConfigError, FileConfig, Flags, HostAddr, Paths, RuntimeEntry, Ulimit};

/// dockerd's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    pub fn parse(s: &str) -> Result<LogLevel, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            "fatal" | "panic" => Ok(LogLevel::Fatal),
            _ => Err(ConfigError::LogLevel(s.to_string())),
        }
    }

    /// The `tracing` filter directive for this level.
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::Fatal => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        })
    }
}

/// TLS settings for tcp hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsConfig {
    pub tls: bool,
    pub tlsverify: bool,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether any TLS flag asks for TLS.
    pub fn requested(&self) -> bool {
        self.tls || self.tlsverify
    }
}

/// The daemon's user configuration after flags and file are merged and validated. It holds
/// no derived state (resolved runtimes live beside it in the daemon's snapshot).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DaemonConfig {
    pub hosts: Vec<String>,
    pub group: String,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub containerd: Option<String>,
    pub containerd_namespace: String,
    /// The parent of every container's cgroup (`--cgroup-parent`, dockerd's cgroupfs
    /// meaning: from the cgroup root with a leading `/`, else under berthd's own cgroup); a
    /// container's `HostConfig.CgroupParent` overrides it. Needs a restart, as in dockerd.
    pub cgroup_parent: String,
    pub default_runtime: Option<String>,
    pub runtimes: BTreeMap<String, RuntimeEntry>,
    pub default_ulimits: BTreeMap<String, Ulimit>,
    pub live_restore: bool,
    pub log_level: LogLevel,
    /// The log driver a new container gets when it names none (`log-driver`); read at
    /// start only, as in dockerd: a reload keeps it. Checked by the daemon, which knows the
    /// drivers.
    pub log_driver: String,
    /// The default driver's options (`log-opts`, `--log-opt`): a new container of that
    /// driver gets those it does not set itself. Read at start only.
    pub log_opts: BTreeMap<String, String>,
    pub debug: bool,
    pub metrics_addr: Option<SocketAddr>,
    pub labels: Vec<String>,
    pub shutdown_timeout: i64,
    /// Registries spoken to over plain HTTP (host[:port], names, CIDRs), besides 127.0.0.0/8.
    pub insecure_registries: Vec<String>,
    /// Mirrors tried first for Docker Hub, normalised with a trailing `/`.
    pub registry_mirrors: Vec<String>,
    pub max_concurrent_downloads: u32,
    pub max_concurrent_uploads: u32,
    pub max_download_attempts: u32,
    /// The default bridge's device name (`--bridge`/`-b`): berth's own `berth0` unless
    /// given, so that berthd runs beside dockerd's `docker0`; `none` disables the default
    /// bridge network. Needs a restart, as every networking option here.
    pub bridge: String,
    /// The default bridge's IPv4 address with its prefix, `a.b.c.d/n` (`--bip`); exclusive
    /// with a given `bridge`.
    pub bip: Option<String>,
    /// The IPv4 subnet of the default bridge containers' addresses come from (`--fixed-cidr`),
    /// within `bip`'s network when both are set.
    pub fixed_cidr: Option<String>,
    /// Pools that networks created without a subnet take theirs from; empty: dockerd's
    /// built-in pools.
    pub default_address_pools: Vec<AddressPool>,
    /// The default bridge's and its containers' MTU, 68 to 65535; `None`: 1500.
    pub mtu: Option<u32>,
    /// Whether berth manages its nftables table (dockerd's `--iptables`).
    pub iptables: bool,
    /// `--ip6tables`: accepted and kept; berth's networks are IPv4.
    pub ip6tables: bool,
    /// Whether berth turns on IPv4 forwarding in the kernel.
    pub ip_forward: bool,
    /// Whether containers' outgoing traffic is masqueraded; false whenever `iptables` is, as
    /// in dockerd.
    pub ip_masq: bool,
    /// Whether containers on the default bridge may talk to each other; false needs
    /// `iptables`.
    pub icc: bool,
    /// `--userland-proxy`: accepted and kept; berth forwards published ports in the kernel.
    pub userland_proxy: bool,
    /// The default host IPv4 address published ports bind to (`--ip`); `None`: `0.0.0.0`,
    /// see [`DaemonConfig::default_bind_ip`].
    pub ip: Option<String>,
    /// DNS servers for containers (IPv4 or IPv6 addresses).
    pub dns: Vec<String>,
    /// DNS search domains for containers.
    pub dns_search: Vec<String>,
    /// resolv.conf options for containers (`--dns-opt`, daemon.json `dns-opts`).
    pub dns_opts: Vec<String>,
    #[serde(skip)]
    pub tls: TlsConfig,
    /// The configuration file this config was read from (reloads read it again).
    #[serde(skip)]
    pub config_file: PathBuf,
    /// Whether the user named the file (then a missing file is an error).
    #[serde(skip)]
    pub config_file_explicit: bool,
}

impl Default for DaemonConfig {
    fn default() -> DaemonConfig {
        DaemonConfig {
            hosts: vec!["unix:///run/berth.sock".to_string()],
            group: "docker".to_string(),
            data_root: PathBuf::from("/var/lib/berth"),
            exec_root: PathBuf::from("/run/berth"),
            pidfile: PathBuf::from("/run/berth.pid"),
            containerd: None,
            containerd_namespace: "berth".to_string(),
            cgroup_parent: "/berth".to_string(),
            default_runtime: None,
            runtimes: BTreeMap::new(),
            default_ulimits: BTreeMap::new(),
            live_restore: false,
            log_level: LogLevel::Info,
            log_driver: "json-file".to_string(),
            log_opts: BTreeMap::new(),
            debug: false,
            metrics_addr: None,
            labels: Vec::new(),
            shutdown_timeout: 15,
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            max_download_attempts: 5,
            bridge: "berth0".to_string(),
            bip: None,
            fixed_cidr: None,
            default_address_pools: Vec::new(),
            mtu: None,
            iptables: true,
            ip6tables: false,
            ip_forward: true,
            ip_masq: true,
            icc: true,
            userland_proxy: true,
            ip: None,
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_opts: Vec::new(),
            tls: TlsConfig::default(),
            config_file: PathBuf::from(crate::DEFAULT_CONFIG_FILE),
            config_file_explicit: false,
        }
    }
}

impl DaemonConfig {
    /// Reads the configuration file the flags name (or the default one) and builds the
    /// configuration from both.
    pub fn load(flags: &Flags) -> Result<DaemonConfig, ConfigError> {
        let explicit = flags.config_file.is_some();
        let path = flags
            .config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_CONFIG_FILE));
        let file = crate::read_config_file(&path, explicit)?.unwrap_or_default();
        let mut config = DaemonConfig::build(flags, &file).map_err(|e| match e {
            // Conflicts and validation failures are about the file: say which.
            e @ (ConfigError::FlagConflicts { .. }
            | ConfigError::LogLevel(_)
            | ConfigError::LabelFormat(_)
            | ConfigError::LabelConflict { .. }) => ConfigError::File {
                path: path.clone(),
                reason: e.to_string(),
            },
            e => e,
        })?;
        config.config_file = path;
        config.config_file_explicit = explicit;
        Ok(config)
    }

    /// Merges flags over file over defaults, with dockerd's rules: a key given both as a flag
    /// and in the file is an error (runtimes excepted: flag and file runtimes are united, the
    /// file's entry winning a name clash), then validates the result.
    pub fn build(flags: &Flags, file: &FileConfig) -> Result<DaemonConfig, ConfigError> {
        let conflicts: Vec<String> = flags
            .given_keys()
            .into_iter()
            .filter(|(key, _)| file.has(key))
            .map(|(key, flag_value)| {
                format!(
                    "{key}: (from flag: {flag_value}, from file: {})",
                    file_value_text(file, key)
                )
            })
            .collect();
        if !conflicts.is_empty() {
            return Err(ConfigError::FlagConflicts { conflicts });
        }

        let d = DaemonConfig::default();
        let pick_vec = |flag: &Vec<String>, file: &Option<Vec<String>>, default: Vec<String>| {
            if !flag.is_empty() {
                flag.clone()
            } else {
                file.clone().unwrap_or(default)
            }
        };

        let mut runtimes = BTreeMap::new();
        for spec in &flags.add_runtimes {
            let (name, path) = parse_add_runtime(spec)?;
            if runtimes.contains_key(&name) {
                return Err(ConfigError::RuntimeDefinedTwice(name));
            }
            runtimes.insert(name, RuntimeEntry::from_path(path));
        }
        if let Some(file_runtimes) = &file.runtimes {
            runtimes.extend(file_runtimes.clone());
        }

        let default_ulimits = if flags.default_ulimits.is_empty() {
            file.default_ulimits.clone().unwrap_or_default()
        } else {
            let mut map = BTreeMap::new();
            for spec in &flags.default_ulimits {
                let u = Ulimit::parse(spec)?;
                map.insert(u.name.clone(), u);
            }
            map
        };

        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let bridge = non_empty(&flags.bridge).or(non_empty(&file.bridge));
        let bip = non_empty(&flags.bip).or(non_empty(&file.bip));
        if bridge.is_some() && bip.is_some() {
            return Err(ConfigError::BridgeAndBip);
        }
        let default_address_pools = if flags.default_address_pools.is_empty() {
            file.default_address_pools.clone().unwrap_or_default()
        } else {
            flags
                .default_address_pools
                .iter()
                .map(|spec| AddressPool::parse(spec))
                .collect::<Result<_, _>>()?
        };
        let iptables = flags.iptables.or(file.iptables).unwrap_or(d.iptables);
        let trimmed = |v: Vec<String>| v.into_iter().map(|s| s.trim().to_string()).collect();

        let config = DaemonConfig {
            hosts: pick_vec(&flags.hosts, &file.hosts, d.hosts),
            group: flags
                .group
                .clone()
                .or(file.group.clone())
                .unwrap_or(d.group),
            data_root: absolute(
                flags.data_root.clone().or(file.data_root.clone()),
                d.data_root,
            ),
            exec_root: absolute(
                flags.exec_root.clone().or(file.exec_root.clone()),
                d.exec_root,
            ),
            pidfile: absolute(flags.pidfile.clone().or(file.pidfile.clone()), d.pidfile),
            containerd: flags.containerd.clone().or(file.containerd.clone()),
            containerd_namespace: flags
                .containerd_namespace
                .clone()
                .or(file.containerd_namespace.clone())
                .unwrap_or(d.containerd_namespace),
            cgroup_parent: flags
                .cgroup_parent
                .clone()
                .or(file.cgroup_parent.clone())
                .filter(|p| !p.is_empty())
                .unwrap_or(d.cgroup_parent),
            default_runtime: flags
                .default_runtime
                .clone()
                .or(file.default_runtime.clone())
                .filter(|s| !s.is_empty()),
            runtimes,
            default_ulimits,
            live_restore: flags.live_restore.or(file.live_restore).unwrap_or(false),
            log_level: LogLevel::Info,
            log_driver: non_empty(&flags.log_driver)
                .or(non_empty(&file.log_driver))
                .unwrap_or(d.log_driver),
            log_opts: if flags.log_opts.is_empty() {
                file.log_opts.clone().unwrap_or_default()
            } else {
                parse_log_opts(&flags.log_opts)?
            },
            debug: flags.debug.or(file.debug).unwrap_or(false),
            metrics_addr: flags
                .metrics_addr
                .clone()
                .or(file.metrics_addr.clone())
                .map(|a| parse_metrics_addr(&a))
                .transpose()?,
            labels: dedupe_labels(&pick_vec(&flags.labels, &file.labels, Vec::new()))?,
            shutdown_timeout: flags
                .shutdown_timeout
                .or(file.shutdown_timeout)
                .unwrap_or(d.shutdown_timeout),
            insecure_registries: pick_vec(
                &flags.insecure_registries,
                &file.insecure_registries,
                Vec::new(),
            ),
            registry_mirrors: normalise_mirrors(&pick_vec(
                &flags.registry_mirrors,
                &file.registry_mirrors,
                Vec::new(),
            ))?,
            max_concurrent_downloads: limit(
                "max concurrent downloads",
                flags
                    .max_concurrent_downloads
                    .or(file.max_concurrent_downloads),
                d.max_concurrent_downloads,
            )?,
            max_concurrent_uploads: limit(
                "max concurrent uploads",
                flags.max_concurrent_uploads.or(file.max_concurrent_uploads),
                d.max_concurrent_uploads,
            )?,
            max_download_attempts: limit(
                "max download attempts",
                flags.max_download_attempts.or(file.max_download_attempts),
                d.max_download_attempts,
            )?,
            bridge: bridge.unwrap_or(d.bridge),
            bip,
            fixed_cidr: non_empty(&flags.fixed_cidr).or(non_empty(&file.fixed_cidr)),
            default_address_pools,
            mtu: flags.mtu.or(file.mtu).map(network::mtu).transpose()?,
            iptables,
            ip6tables: flags.ip6tables.or(file.ip6tables).unwrap_or(d.ip6tables),
            ip_forward: flags.ip_forward.or(file.ip_forward).unwrap_or(d.ip_forward),
            // dockerd: masquerading is nftables' (iptables') work, so off without it.
            ip_masq: flags.ip_masq.or(file.ip_masq).unwrap_or(d.ip_masq) && iptables,
            icc: flags.icc.or(file.icc).unwrap_or(d.icc),
            userland_proxy: flags
                .userland_proxy
                .or(file.userland_proxy)
                .unwrap_or(d.userland_proxy),
            ip: non_empty(&flags.ip).or(non_empty(&file.ip)),
            dns: trimmed(pick_vec(&flags.dns, &file.dns, Vec::new())),
            dns_search: trimmed(pick_vec(&flags.dns_search, &file.dns_search, Vec::new())),
            dns_opts: pick_vec(&flags.dns_opts, &file.dns_opts, Vec::new()),
            tls: TlsConfig {
                tls: flags.tls.or(file.tls).unwrap_or(false),
                tlsverify: flags.tlsverify.or(file.tlsverify).unwrap_or(false),
                cacert: flags.tlscacert.clone().or(file.tlscacert.clone()),
                cert: flags.tlscert.clone().or(file.tlscert.clone()),
                key: flags.tlskey.clone().or(file.tlskey.clone()),
            },
            config_file: d.config_file,
            config_file_explicit: false,
        };
        let log_level = match flags.log_level.clone().or(file.log_level.clone()) {
            Some(l) => LogLevel::parse(&l)?,
            None => LogLevel::Info,
        };
        let config = DaemonConfig {
            log_level,
            ..config
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks what the merge cannot: host addresses, ulimits, the namespace, timeouts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for h in &self.hosts {
            HostAddr::parse(h)?;
        }
        for (key, u) in &self.default_ulimits {
            u.validate().map_err(|e| ConfigError::InvalidValue {
                key: format!("default-ulimits.{key}"),
                reason: e.to_string(),
            })?;
        }
        if self.runtimes.contains_key("runc") {
            return Err(ConfigError::RuncReserved);
        }
        if self.containerd_namespace.is_empty()
            || !self
                .containerd_namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError::InvalidValue {
                key: "containerd-namespace".to_string(),
                reason: format!(
                    "{:?} is not a valid containerd namespace",
                    self.containerd_namespace
                ),
            });
        }
        if self.shutdown_timeout < -1 {
            return Err(ConfigError::ShutdownTimeout(self.shutdown_timeout));
        }
        self.validate_network()
    }

    /// The networking options: the bridge's name, `bip` and `fixed-cidr` as IPv4 CIDRs (the
    /// latter within the former), the pools, the MTU, `ip`, the DNS lists, and dockerd's
    /// `--icc=false` needs `--iptables`.
    fn validate_network(&self) -> Result<(), ConfigError> {
        network::validate_bridge_name(&self.bridge)?;
        let cidr = |key: &str, v: &str| {
            parse_ipv4_cidr(v).map_err(|reason| ConfigError::InvalidValue {
                key: key.to_string(),
                reason,
            })
        };
        let bip = self.bip.as_deref().map(|b| cidr("bip", b)).transpose()?;
        if let Some(fixed) = &self.fixed_cidr {
            let parsed = cidr("fixed-cidr", fixed)?;
            if let Some(bip_net) = bip.filter(|b| !cidr_within(parsed, *b)) {
                return Err(ConfigError::InvalidValue {
                    key: "fixed-cidr".to_string(),
                    reason: format!(
                        "{fixed} is not within the default bridge's network {}/{}",
                        Ipv4Addr::from(network::network_of(bip_net).0),
                        bip_net.1
                    ),
                });
            }
        }
        for pool in &self.default_address_pools {
            pool.validate()?;
        }
        if let Some(mtu) = self.mtu {
            network::mtu(i64::from(mtu))?;
        }
        if let Some(ip) = &self.ip {
            match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => {}
                Ok(IpAddr::V6(_)) => {
                    return Err(ConfigError::InvalidValue {
                        key: "ip".to_string(),
                        reason: format!("{ip} is not an IPv4 address"),
                    });
                }
                Err(_) => return Err(ConfigError::NotAnIp(ip.clone())),
            }
        }
        for server in &self.dns {
            network::validate_dns_server(server)?;
        }
        for domain in &self.dns_search {
            network::validate_dns_search(domain)?;
        }
        if !self.iptables && !self.icc {
            return Err(ConfigError::IccWithoutIptables);
        }
        Ok(())
    }

    /// Whether there is a default bridge network (`bridge` is not `none`).
    pub fn default_bridge_enabled(&self) -> bool {
        self.bridge != "none"
    }

    /// The host address published ports bind to when a port binding names none: `ip`, else
    /// `0.0.0.0`.
    pub fn default_bind_ip(&self) -> Ipv4Addr {
        self.ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// The hosts, parsed (validated at build time).
    pub fn host_addrs(&self) -> Result<Vec<HostAddr>, ConfigError> {
        self.hosts.iter().map(|h| HostAddr::parse(h)).collect()
    }

    /// The level logs are written at: debug when `debug` is on, else `log-level`.
    pub fn effective_log_level(&self) -> LogLevel {
        if self.debug {
            LogLevel::Debug
        } else {
            self.log_level
        }
    }

    pub fn paths(&self) -> Paths {
        Paths::new(&self.data_root, &self.exec_root)
    }

    /// The configuration a reload produces from a freshly read file, with dockerd's rules for
    /// the reloadable keys: `runtimes`, `debug`, `labels`, `live-restore`, `log-level`,
    /// `shutdown-timeout` and `default-ulimits` are replaced when the file has the key;
    /// `default-runtime` only when it is non-empty. Every other key (sockets, roots,
    /// containerd, the cgroup parent, the default log driver and its options, the networking
    /// options, ...) needs a restart and keeps
    /// its running value. `flags` are the
    /// command line the daemon started with: a key now in the file that was also a flag is
    /// still a conflict.
    pub fn reloaded(&self, flags: &Flags, file: &FileConfig) -> Result<DaemonConfig, ConfigError> {
        // Re-run the start-up merge to get the same conflict checks and validation.
        DaemonConfig::build(flags, file)?;
        let mut next = self.clone();
        if let Some(r) = file.default_runtime.as_ref().filter(|r| !r.is_empty()) {
            next.default_runtime = Some(r.clone());
        }
        if file.has("runtimes") {
            next.runtimes = file.runtimes.clone().unwrap_or_default();
        }
        if file.has("debug") {
            next.debug = file.debug.unwrap_or(false);
        }
        if let Some(level) = &file.log_level {
            next.log_level = LogLevel::parse(level)?;
        }
        if file.has("labels") {
            next.labels = dedupe_labels(&file.labels.clone().unwrap_or_default())?;
        }
        if file.has("live-restore") {
            next.live_restore = file.live_restore.unwrap_or(false);
        }
        if let Some(t) = file.shutdown_timeout {
            next.shutdown_timeout = t;
        }
        if file.has("default-ulimits") {
            next.default_ulimits = file.default_ulimits.clone().unwrap_or_default();
        }
        // dockerd: the limits go back to their defaults, then take the file's non-zero value.
        let d = DaemonConfig::default();
        let reset =
            |v: Option<i64>, default: u32| v.filter(|n| *n > 0).map_or(default, |n| n as u32);
        next.max_concurrent_downloads =
            reset(file.max_concurrent_downloads, d.max_concurrent_downloads);
        next.max_concurrent_uploads = reset(file.max_concurrent_uploads, d.max_concurrent_uploads);
        next.max_download_attempts = reset(file.max_download_attempts, d.max_download_attempts);
        if file.has("insecure-registries") {
            next.insecure_registries = file.insecure_registries.clone().unwrap_or_default();
        }
        if file.has("registry-mirrors") {
            next.registry_mirrors =
                normalise_mirrors(&file.registry_mirrors.clone().unwrap_or_default())?;
        }
        next.validate()?;
        Ok(next)
    }
}

fn file_value_text(file: &FileConfig, key: &str) -> String {
    fn show<T: Serialize>(v: &Option<T>) -> String {
        v.as_ref()
            .and_then(|v| serde_json::to_string(v).ok())
            .unwrap_or_default()
    }
    match key {
        "hosts" => show(&file.hosts),
        "group" => show(&file.group),
        "data-root" => show(&file.data_root),
        "exec-root" => show(&file.exec_root),
        "pidfile" => show(&file.pidfile),
        "containerd" => show(&file.containerd),
        "containerd-namespace" => show(&file.containerd_namespace),
        "cgroup-parent" => show(&file.cgroup_parent),
        "default-runtime" => show(&file.default_runtime),
        "default-ulimits" => show(&file.default_ulimits),
        "live-restore" => show(&file.live_restore),
        "log-level" => show(&file.log_level),
        "log-driver" => show(&file.log_driver),
        "log-opts" => show(&file.log_opts),
        "debug" => show(&file.debug),
        "metrics-addr" => show(&file.metrics_addr),
        "labels" => show(&file.labels),
        "shutdown-timeout" => show(&file.shutdown_timeout),
        "insecure-registries" => show(&file.insecure_registries),
        "registry-mirrors" => show(&file.registry_mirrors),
        "max-concurrent-downloads" => show(&file.max_concurrent_downloads),
        "max-concurrent-uploads" => show(&file.max_concurrent_uploads),
        "max-download-attempts" => show(&file.max_download_attempts),
        "bridge" => show(&file.bridge),
        "bip" => show(&file.bip),
        "fixed-cidr" => show(&file.fixed_cidr),
        "default-address-pools" => show(&file.default_address_pools),
        "mtu" => show(&file.mtu),
        "iptables" => show(&file.iptables),
        "ip6tables" => show(&file.ip6tables),
        "ip-forward" => show(&file.ip_forward),
        "ip-masq" => show(&file.ip_masq),
        "icc" => show(&file.icc),
        "userland-proxy" => show(&file.userland_proxy),
        "ip" => show(&file.ip),
        "dns" => show(&file.dns),
        "dns-search" => show(&file.dns_search),
        "dns-opts" => show(&file.dns_opts),
        "tls" => show(&file.tls),
        "tlsverify" => show(&file.tlsverify),
        "tlscacert" => show(&file.tlscacert),
        "tlscert" => show(&file.tlscert),
        "tlskey" => show(&file.tlskey),
        _ => String::new(),
    }
}

/// `--log-opt key=value` flags as a map (dockerd: a later key wins).
fn parse_log_opts(opts: &[String]) -> Result<BTreeMap<String, String>, ConfigError> {
    opts.iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(ConfigError::InvalidValue {
                key: "log-opts".to_string(),
                reason: format!("invalid key value pair format: {o:?}, expected key=value"),
            }),
        })
        .collect()
}

/// A registry limit: absent or 0 is the default, negative is dockerd's error.
fn limit(what: &'static str, v: Option<i64>, default: u32) -> Result<u32, ConfigError> {
    match v {
        None | Some(0) => Ok(default),
        Some(n) if n < 0 || n > i64::from(u32::MAX) => {
            Err(ConfigError::RegistryLimit { what, value: n })
        }
        Some(n) => Ok(n as u32),
    }
}

/// dockerd's mirror rules: an http or https URI with no path but `/`, no query, fragment
/// or user; normalised with a trailing `/`.
fn normalise_mirrors(mirrors: &[String]) -> Result<Vec<String>, ConfigError> {
    mirrors
        .iter()
        .map(|m| {
            let (scheme, rest) = m
                .split_once("://")
                .ok_or_else(|| ConfigError::Mirror(format!("{m:?} is not a valid URI")))?;
            if scheme != "http" && scheme != "https" {
                return Err(ConfigError::Mirror(format!(
                    "unsupported scheme {scheme:?} in {m:?}"
                )));
            }
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            if host.is_empty() || host.contains('@') {
                return Err(ConfigError::Mirror(format!("{m:?} is not a valid URI")));
            }
            if !path.is_empty() || rest.contains(['?', '#']) {
                return Err(ConfigError::Mirror(format!(
                    "path, query, or fragment at end of the URI {m:?}"
                )));
            }
            Ok(format!("{scheme}://{host}/"))
        })
        .collect()
}

fn absolute(p: Option<PathBuf>, default: PathBuf) -> PathBuf {
    let p = p.unwrap_or(default);
    if p.is_absolute() {
        p
    } else {
        std::path::absolute(&p).unwrap_or(p)
    }
}

/// `--add-runtime NAME=PATH`: the name lower-cased and trimmed, `runc` reserved.
fn parse_add_runtime(spec: &str) -> Result<(String, String), ConfigError> {
    let (name, path) = spec
        .split_once('=')
        .ok_or_else(|| ConfigError::RuntimeFlag(spec.to_string()))?;
    let name = name.trim().to_ascii_lowercase();
    let path = path.trim();
    if name.is_empty() || path.is_empty() {
        return Err(ConfigError::RuntimeFlag(spec.to_string()));
    }
    if name == "runc" {
        return Err(ConfigError::RuncReserved);
    }
    Ok((name, path.to_string()))
}

fn parse_metrics_addr(addr: &str) -> Result<SocketAddr, ConfigError> {
    let with_host = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    with_host
        .parse()
        .map_err(|e: std::net::AddrParseError| ConfigError::MetricsAddr {
            addr: addr.to_string(),
            reason: e.to_string(),
        })
}

/// Labels are `key=value`; identical duplicates collapse, the same key with two values is an
/// error (dockerd's rule).
fn dedupe_labels(labels: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let mut out = Vec::new();
    for label in labels {
        let (k, v) = label
            .split_once('=')
            .ok_or_else(|| ConfigError::LabelFormat(label.clone()))?;
        match seen.get(k) {
            Some(prev) if *prev == v => continue,
            Some(prev) => {
                return Err(ConfigError::LabelConflict {
                    first: format!("{k}={prev}"),
                    second: label.clone(),
                });
            }
            None => {
                seen.insert(k, v);
                out.push(label.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::path::Path;

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["berthd"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all).unwrap()
    }
    fn file(json: &str) -> FileConfig {
        FileConfig::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn defaults_are_dockerds_shape() {
        let c = DaemonConfig::build(&flags(&[]), &FileConfig::default()).unwrap();
        assert_eq!(c.hosts, vec!["unix:///run/berth.sock"]);
        assert_eq!(c.data_root, Path::new("/var/lib/berth"));
        assert_eq!(c.exec_root, Path::new("/run/berth"));
        assert_eq!(c.containerd_namespace, "berth");
        assert_eq!(c.cgroup_parent, "/berth");
        assert_eq!(c.log_level, LogLevel::Info);
        assert!(!c.live_restore && !c.debug);
    }

    #[test]
    fn file_values_apply_and_flags_win_elsewhere() {
        let c = DaemonConfig::build(
            &flags(&["--data-root", "/d"]),
            &file(r#"{"debug": true, "exec-root": "/e", "labels": ["a=b"]}"#),
        )
        .unwrap();
        assert!(c.debug);
        assert_eq!(c.data_root, Path::new("/d"));
        assert_eq!(c.exec_root, Path::new("/e"));
        assert_eq!(c.labels, vec!["a=b"]);
        assert_eq!(c.effective_log_level(), LogLevel::Debug);
    }

    #[test]
    fn flag_and_file_conflict_names_the_key() {
        let err = DaemonConfig::build(&flags(&["--debug"]), &file(r#"{"debug": false}"#))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the following directives are specified both as a flag and in the configuration \
             file: debug: (from flag: true, from file: false)"
        );
        let err = DaemonConfig::build(
            &flags(&["-H", "unix:///a.sock"]),
            &file(r#"{"hosts": ["unix:///b.sock"]}"#),
        )
        .unwrap_err();
        assert!(err.to_string().contains("hosts"), "{err}");
    }

    #[test]
    fn runtimes_from_flag_and_file_are_united() {
        let c = DaemonConfig::build(
            &flags(&[
                "--add-runtime",
                "Fast=/bin/fast",
                "--add-runtime",
                "x=/bin/x1",
            ]),
            &file(r#"{"runtimes": {"x": {"path": "/bin/x2"}}}"#),
        )
        .unwrap();
        assert_eq!(c.runtimes["fast"].path.as_deref(), Some("/bin/fast"));
        assert_eq!(
            c.runtimes["x"].path.as_deref(),
            Some("/bin/x2"),
            "file wins"
        );
    }

    #[test]
    fn add_runtime_rules() {
        for (arg, needle) in [
            ("runc=/bin/x", "reserved"),
            ("noequals", "invalid runtime argument"),
            ("=/bin/x", "invalid runtime argument"),
            ("x=", "invalid runtime argument"),
        ] {
            let err = DaemonConfig::build(&flags(&["--add-runtime", arg]), &FileConfig::default())
                .unwrap_err();
            assert!(err.to_string().contains(needle), "{arg}: {err}");
        }
        let err = DaemonConfig::build(
            &flags(&["--add-runtime", "a=/x", "--add-runtime", "A=/y"]),
            &FileConfig::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "runtime 'a' was already defined");
        let err = DaemonConfig::build(
            &flags(&[]),
            &file(r#"{"runtimes": {"runc": {"path": "/x"}}}"#),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "runtime name 'runc' is reserved");
    }

    #[test]
    fn invalid_values_are_refused() {
        for (json, needle) in [
            (
                r#"{"log-level": "foobar"}"#,
                "invalid logging level: foobar",
            ),
            (r#"{"labels": ["one"]}"#, "bad attribute format: one"),
            (
                r#"{"labels": ["foo=bar", "foo=baz"]}"#,
                "conflict labels for foo=bar and foo=baz",
            ),
            (r#"{"hosts": ["tcp://1.2.3.4:2375/p"]}"#, "path element"),
            (
                r#"{"default-ulimits": {"nofile": {"Name": "nofile", "Soft": 9, "Hard": 1}}}"#,
                "default-ulimits.nofile",
            ),
            (r#"{"metrics-addr": "nope"}"#, "invalid metrics address"),
            (r#"{"containerd-namespace": "a/b"}"#, "containerd-namespace"),
            (r#"{"shutdown-timeout": -5}"#, "shutdown-timeout"),
        ] {
            let err = DaemonConfig::build(&flags(&[]), &file(json)).unwrap_err();
            assert!(err.to_string().contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn identical_labels_collapse() {
        let c = DaemonConfig::build(&flags(&[]), &file(r#"{"labels": ["a=1", "a=1", "b=2"]}"#))
            .unwrap();
        assert_eq!(c.labels, vec!["a=1", "b=2"]);
    }

    #[test]
    fn default_ulimit_flag_parses() {
        let c = DaemonConfig::build(
            &flags(&["--default-ulimit", "nofile=10:20"]),
            &FileConfig::default(),
        )
        .unwrap();
        assert_eq!(c.default_ulimits["nofile"].soft, 10);
    }

    #[test]
    fn metrics_addr_forms() {
        let c = DaemonConfig::build(&flags(&["--metrics-addr", ":9323"]), &FileConfig::default())
            .unwrap();
        assert_eq!(c.metrics_addr.unwrap().port(), 9323);
    }

    #[test]
    fn registry_keys_have_dockerds_defaults_checks_and_reload_rules() {
        let d = DaemonConfig::build(&flags(&[]), &FileConfig::default()).unwrap();
        assert_eq!(
            (
                d.max_concurrent_downloads,
                d.max_concurrent_uploads,
                d.max_download_attempts
            ),
            (3, 5, 5)
        );
        let f = flags(&[
            "--insecure-registry",
            "10.0.0.0/8",
            "--max-concurrent-uploads",
            "2",
        ]);
        let c = DaemonConfig::build(
            &f,
            &file(
                r#"{"registry-mirrors": ["http://127.0.0.1:5000", "https://m.test/"],
                    "max-concurrent-downloads": 1, "max-download-attempts": 0}"#,
            ),
        )
        .unwrap();
        assert_eq!(c.insecure_registries, vec!["10.0.0.0/8"]);
        assert_eq!(
            c.registry_mirrors,
            vec!["http://127.0.0.1:5000/", "https://m.test/"]
        );
        assert_eq!(
            (
                c.max_concurrent_downloads,
                c.max_concurrent_uploads,
                c.max_download_attempts
            ),
            (1, 2, 5)
        );
        for (json, want) in [
            (
                r#"{"max-concurrent-downloads": -1}"#,
                "invalid max concurrent downloads: -1",
            ),
            (
                r#"{"max-download-attempts": -3}"#,
                "invalid max download attempts: -3",
            ),
            (
                r#"{"registry-mirrors": ["10.10.1.11:5000"]}"#,
                "invalid mirror",
            ),
            (
                r#"{"registry-mirrors": ["mirror.test1.com"]}"#,
                "invalid mirror",
            ),
            (
                r#"{"registry-mirrors": ["https://m.test/v2"]}"#,
                "path, query, or fragment",
            ),
            (
                r#"{"registry-mirrors": ["ftp://m.test"]}"#,
                "unsupported scheme",
            ),
        ] {
            let err = DaemonConfig::build(&flags(&[]), &file(json)).unwrap_err();
            assert!(err.to_string().contains(want), "{json}: {err}");
        }
        let err = DaemonConfig::build(&f, &file(r#"{"insecure-registries": ["x"]}"#)).unwrap_err();
        assert!(err.to_string().contains("insecure-registries"), "{err}");
        // Reload: limits back to their defaults unless the file sets them; lists replaced
        // when present.
        let start = DaemonConfig::build(
            &flags(&[]),
            &file(r#"{"max-concurrent-downloads": 1, "insecure-registries": ["a.test"]}"#),
        )
        .unwrap();
        let next = start
            .reloaded(&flags(&[]), &file(r#"{"max-download-attempts": 2}"#))
            .unwrap();
        assert_eq!(
            (next.max_concurrent_downloads, next.max_download_attempts),
            (3, 2)
        );
        assert_eq!(next.insecure_registries, vec!["a.test"], "absent: kept");
        let next = next
            .reloaded(&flags(&[]), &file(r#"{"insecure-registries": []}"#))
            .unwrap();
        assert!(next.insecure_registries.is_empty());
    }

    #[test]
    fn reload_replaces_only_reloadable_keys() {
        let f = flags(&["--data-root", "/d"]);
        let start = DaemonConfig::build(
            &f,
            &file(
                r#"{"debug": true, "default-runtime": "alt", "labels": ["a=1"],
                      "runtimes": {"alt": {"path": "/bin/alt"}}}"#,
            ),
        )
        .unwrap();
        let next = start
            .reloaded(
                &f,
                &file(r#"{"exec-root": "/elsewhere", "labels": ["a=2"], "live-restore": true}"#),
            )
            .unwrap();
        assert_eq!(next.exec_root, start.exec_root, "exec-root needs a restart");
        assert!(next.debug, "debug not in the file keeps its value");
        assert_eq!(
            next.default_runtime.as_deref(),
            Some("alt"),
            "absent keeps it"
        );
        assert_eq!(next.labels, vec!["a=2"]);
        assert!(next.live_restore);
        assert_eq!(next.runtimes, start.runtimes, "runtimes absent: kept");
        let dropped = next.reloaded(&f, &file(r#"{"runtimes": {}}"#)).unwrap();
        assert!(dropped.runtimes.is_empty());
    }

    #[test]
    fn cgroup_parent_from_flag_or_file_and_not_reloaded() {
        let f = flags(&["--cgroup-parent", "/it-1"]);
        let c = DaemonConfig::build(&f, &FileConfig::default()).unwrap();
        assert_eq!(c.cgroup_parent, "/it-1");
        let from_file =
            DaemonConfig::build(&flags(&[]), &file(r#"{"cgroup-parent": "under-berthd"}"#))
                .unwrap();
        assert_eq!(from_file.cgroup_parent, "under-berthd", "relative is kept");
        let empty = DaemonConfig::build(&flags(&[]), &file(r#"{"cgroup-parent": ""}"#)).unwrap();
        assert_eq!(
            empty.cgroup_parent, "/berth",
            "empty is the default, as in dockerd"
        );
        let err = DaemonConfig::build(&f, &file(r#"{"cgroup-parent": "/x"}"#)).unwrap_err();
        assert!(err.to_string().contains("cgroup-parent"), "{err}");
        let next = from_file
            .reloaded(&flags(&[]), &file(r#"{"cgroup-parent": "/y"}"#))
            .unwrap();
        assert_eq!(
            next.cgroup_parent, "under-berthd",
            "cgroup-parent needs a restart"
        );
    }

    #[test]
    fn log_driver_and_opts_from_flags_or_file_and_not_reloaded() {
        let c = DaemonConfig::build(&flags(&[]), &FileConfig::default()).unwrap();
        assert_eq!((c.log_driver.as_str(), c.log_opts.len()), ("json-file", 0));
        let f = flags(&[
            "--log-driver",
            "local",
            "--log-opt",
            "max-size=2m",
            "--log-opt=max-file=3",
        ]);
        let c = DaemonConfig::build(&f, &FileConfig::default()).unwrap();
        assert_eq!(c.log_driver, "local");
        assert_eq!(
            c.log_opts,
            BTreeMap::from([
                ("max-file".to_string(), "3".to_string()),
                ("max-size".to_string(), "2m".to_string())
            ])
        );
        let from_file = DaemonConfig::build(
            &flags(&[]),
            &file(r#"{"log-driver": "local", "log-opts": {"max-size": "2m"}}"#),
        )
        .unwrap();
        assert_eq!(from_file.log_driver, "local");
        assert_eq!(from_file.log_opts["max-size"], "2m");
        let err = DaemonConfig::build(&f, &file(r#"{"log-driver": "none"}"#)).unwrap_err();
        assert!(err.to_string().contains("log-driver"), "{err}");
        assert!(
            DaemonConfig::build(&flags(&["--log-opt", "novalue"]), &FileConfig::default()).is_err()
        );
        assert!(
            FileConfig::parse(br#"{"log-opts": {"max-size": 1}}"#).is_err(),
            "strings only"
        );
        let next = from_file
            .reloaded(
                &flags(&[]),
                &file(r#"{"log-driver": "json-file", "log-opts": {}}"#),
            )
            .unwrap();
        assert_eq!(next.log_driver, "local", "log-driver needs a restart");
        assert_eq!(next.log_opts["max-size"], "2m", "log-opts need a restart");
    }

    #[test]
    fn networking_defaults() {
        let c = DaemonConfig::build(&flags(&[]), &FileConfig::default()).unwrap();
        assert_eq!(c, DaemonConfig::default());
        assert_eq!(c.bridge, "berth0");
        assert!(c.default_bridge_enabled());
        assert_eq!((c.bip.as_deref(), c.fixed_cidr.as_deref()), (None, None));
        assert!(c.default_address_pools.is_empty());
        assert_eq!(c.mtu, None);
        assert_eq!(
            (c.iptables, c.ip6tables, c.ip_forward, c.ip_masq, c.icc),
            (true, false, true, true, true)
        );
        assert!(c.userland_proxy);
        assert_eq!(c.ip, None);
        assert_eq!(c.default_bind_ip(), Ipv4Addr::UNSPECIFIED);
        assert!(c.dns.is_empty() && c.dns_search.is_empty() && c.dns_opts.is_empty());
    }

    #[test]
    fn networking_flags_apply() {
        let c = DaemonConfig::build(
            &flags(&[
                "--bip",
                "172.18.0.1/16",
                "--fixed-cidr",
                "172.18.1.0/24",
                "--default-address-pool",
                "base=10.10.0.0/16,size=24",
                "--mtu",
                "1400",
                "--ip6tables",
                "--ip-forward=false",
                "--icc=false",
                "--userland-proxy=false",
                "--ip",
                "127.0.0.1",
                "--dns",
                " 1.1.1.1",
                "--dns",
                "2001:4860:4860::8888",
                "--dns-search",
                "example.com",
                "--dns-opt",
                "ndots:2",
                "--dns-opt",
                "timeout:1",
            ]),
            &FileConfig::default(),
        )
        .unwrap();
        assert_eq!(c.bridge, "berth0", "--bip keeps berth's own bridge");
        assert_eq!(c.bip.as_deref(), Some("172.18.0.1/16"));
        assert_eq!(c.fixed_cidr.as_deref(), Some("172.18.1.0/24"));
        assert_eq!(
            c.default_address_pools,
            vec![AddressPool {
                base: "10.10.0.0/16".to_string(),
                size: 24
            }]
        );
        assert_eq!(c.mtu, Some(1400));
        assert_eq!(
            (c.iptables, c.ip6tables, c.ip_forward, c.ip_masq, c.icc),
            (true, true, false, true, false)
        );
        assert!(
            !c.userland_proxy,
            "kept, though berth forwards in the kernel"
        );
        assert_eq!(c.default_bind_ip(), Ipv4Addr::LOCALHOST);
        assert_eq!(c.dns, vec!["1.1.1.1", "2001:4860:4860::8888"]);
        assert_eq!(c.dns_search, vec!["example.com"]);
        assert_eq!(c.dns_opts, vec!["ndots:2", "timeout:1"]);

        let none = DaemonConfig::build(&flags(&["-b", "none"]), &FileConfig::default()).unwrap();
        assert_eq!(none.bridge, "none");
        assert!(!none.default_bridge_enabled());
        let br = DaemonConfig::build(&flags(&["--bridge=br-ext"]), &FileConfig::default()).unwrap();
        assert_eq!(br.bridge, "br-ext");
    }

    #[test]
    fn networking_file_keys_apply() {
        let c = DaemonConfig::build(
            &flags(&[]),
            &file(
                r#"{"bridge": "br-ext", "fixed-cidr": "10.1.0.0/24", "mtu": 9000,
                    "default-address-pools": [{"base": "10.10.0.0/16", "size": 24},
                                              {"base": "10.20.0.0/16", "size": 16}],
                    "iptables": true, "ip6tables": true, "ip-forward": false,
                    "ip-masq": false, "icc": false, "userland-proxy": false,
                    "ip": "192.0.2.1", "dns": ["1.1.1.1", "::1"],
                    "dns-search": ["a.test", "."], "dns-opts": ["ndots:2"]}"#,
            ),
        )
        .unwrap();
        assert_eq!(c.bridge, "br-ext");
        assert_eq!(c.fixed_cidr.as_deref(), Some("10.1.0.0/24"));
        assert_eq!(c.mtu, Some(9000));
        assert_eq!(c.default_address_pools.len(), 2);
        assert_eq!(c.default_address_pools[1].size, 16);
        assert_eq!(
            (c.iptables, c.ip6tables, c.ip_forward, c.ip_masq, c.icc),
            (true, true, false, false, false)
        );
        assert!(!c.userland_proxy);
        assert_eq!(c.ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(c.dns, vec!["1.1.1.1", "::1"]);
        assert_eq!(c.dns_search, vec!["a.test", "."]);
        assert_eq!(c.dns_opts, vec!["ndots:2"]);
        let c = DaemonConfig::build(
            &flags(&[]),
            &file(r#"{"bridge": "", "bip": "", "fixed-cidr": "", "ip": ""}"#),
        )
        .unwrap();
        assert_eq!(
            (c.bridge.as_str(), c.bip, c.fixed_cidr, c.ip),
            ("berth0", None, None, None),
            "empty is unset, as in dockerd"
        );
    }

    #[test]
    fn networking_flag_and_file_conflicts() {
        for (args, json, want) in [
            (
                &["-b", "br0"][..],
                r#"{"bridge": "br1"}"#,
                r#"bridge: (from flag: br0, from file: "br1")"#,
            ),
            (
                &["--bip", "10.0.0.1/8"],
                r#"{"bip": "10.0.0.1/8"}"#,
                "bip: (from flag: 10.0.0.1/8",
            ),
            (
                &["--fixed-cidr", "10.0.0.0/24"],
                r#"{"fixed-cidr": "10.0.1.0/24"}"#,
                "fixed-cidr: ",
            ),
            (
                &["--default-address-pool", "base=10.0.0.0/8,size=24"],
                r#"{"default-address-pools": [{"base": "10.0.0.0/8", "size": 16}]}"#,
                r#"default-address-pools: (from flag: base=10.0.0.0/8,size=24, from file: "#,
            ),
            (
                &["--mtu", "1400"],
                r#"{"mtu": 1500}"#,
                "mtu: (from flag: 1400, from file: 1500)",
            ),
            (
                &["--iptables=false"],
                r#"{"iptables": true}"#,
                "iptables: (from flag: false, from file: true)",
            ),
            (&["--ip6tables"], r#"{"ip6tables": false}"#, "ip6tables: "),
            (&["--ip-forward"], r#"{"ip-forward": true}"#, "ip-forward: "),
            (&["--ip-masq=false"], r#"{"ip-masq": false}"#, "ip-masq: "),
            (&["--icc"], r#"{"icc": true}"#, "icc: "),
            (
                &["--userland-proxy=false"],
                r#"{"userland-proxy": false}"#,
                "userland-proxy: ",
            ),
            (
                &["--ip", "127.0.0.1"],
                r#"{"ip": "0.0.0.0"}"#,
                "ip: (from flag: 127.0.0.1",
            ),
            (
                &["--dns", "1.1.1.1"],
                r#"{"dns": ["8.8.8.8"]}"#,
                r#"dns: (from flag: 1.1.1.1, from file: ["8.8.8.8"])"#,
            ),
            (
                &["--dns-search", "a.test"],
                r#"{"dns-search": []}"#,
                "dns-search: ",
            ),
            (
                &["--dns-opt", "ndots:1"],
                r#"{"dns-opts": ["ndots:2"]}"#,
                "dns-opts: (from flag: ndots:1",
            ),
        ] {
            let err = DaemonConfig::build(&flags(args), &file(json))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(
                    "the following directives are specified both as a flag and in the \
                     configuration file: "
                ) && err.contains(want),
                "{args:?} {json}: {err}"
            );
        }
    }

    #[test]
    fn address_pool_conflict_shows_both_values() {
        let err = DaemonConfig::build(
            &flags(&["--default-address-pool", "base=10.0.0.0/8,size=24"]),
            &file(r#"{"default-address-pools": [{"base": "10.0.0.0/8", "size": 16}]}"#),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with(concat!(
                r#"default-address-pools: (from flag: base=10.0.0.0/8,size=24, "#,
                r#"from file: [{"base":"10.0.0.0/8","size":16}])"#
            )),
            "{err}"
        );
    }

    #[test]
    fn networking_values_are_checked() {
        for (args, json, want) in [
            (
                &[][..],
                r#"{"dns": ["1.1.1.1o"]}"#,
                "1.1.1.1o is not an ip address",
            ),
            (
                &["--dns", "1.1.1.1", "--dns", "1.1.1.1o"],
                "{}",
                "1.1.1.1o is not an ip address",
            ),
            (
                &[],
                r#"{"dns-search": ["a.b.c", "123456"]}"#,
                "123456 is not a valid domain",
            ),
            (
                &["--dns-search", "123456"],
                "{}",
                "123456 is not a valid domain",
            ),
            (&["--mtu", "-1"], "{}", "invalid default MTU: -1"),
            (&[], r#"{"mtu": -10}"#, "invalid default MTU: -10"),
            (&[], r#"{"mtu": 0}"#, "invalid default MTU: 0"),
            (
                &["--mtu", "65536"],
                "{}",
                "invalid default MTU: 65536 (must be between 68 and 65535)",
            ),
            (
                &["--bip", "172.17.0.1"],
                "{}",
                "invalid value for bip: invalid CIDR address: 172.17.0.1",
            ),
            (
                &[],
                r#"{"bip": "172.17.0.1/33"}"#,
                "invalid value for bip: invalid CIDR address: 172.17.0.1/33",
            ),
            (
                &[],
                r#"{"bip": "fd00::1/64"}"#,
                "invalid value for bip: fd00::1/64 is not an IPv4 CIDR",
            ),
            (
                &["--fixed-cidr", "10.0.0.0"],
                "{}",
                "invalid value for fixed-cidr: invalid CIDR address: 10.0.0.0",
            ),
            (
                &["--bip", "172.17.0.1/16", "--fixed-cidr", "172.18.0.0/24"],
                "{}",
                "invalid value for fixed-cidr: 172.18.0.0/24 is not within the default \
                 bridge's network 172.17.0.0/16",
            ),
            (
                &["--bip", "172.17.0.1/16", "--fixed-cidr", "172.16.0.0/12"],
                "{}",
                "is not within the default bridge's network",
            ),
            (
                &["--default-address-pool", "base=10.10.0.0/16,size=8"],
                "{}",
                "invalid default address pool base=10.10.0.0/16,size=8: size 8 must be \
                 between the base's prefix length 16 and 32",
            ),
            (
                &[],
                r#"{"default-address-pools": [{"base": "10.10.0.0", "size": 24}]}"#,
                "invalid default address pool base=10.10.0.0,size=24: invalid CIDR \
                 address: 10.10.0.0",
            ),
            (
                &["--default-address-pool", "10.10.0.0/16"],
                "{}",
                "must be a key=value pair",
            ),
            (&["--ip", "1.2.3"], "{}", "1.2.3 is not an ip address"),
            (
                &[],
                r#"{"ip": "::1"}"#,
                "invalid value for ip: ::1 is not an IPv4 address",
            ),
            (
                &["-b", "a/b"],
                "{}",
                r#"invalid value for bridge: "a/b" is not a valid interface name"#,
            ),
            (
                &[],
                r#"{"bridge": "a-very-long-bridge-name"}"#,
                "invalid value for bridge:",
            ),
            (
                &["-b", "br0", "--bip", "10.0.0.1/8"],
                "{}",
                "You specified -b & --bip, mutually exclusive options. Please specify only one",
            ),
            (
                &["-b", "none"],
                r#"{"bip": "10.0.0.1/8"}"#,
                "You specified -b & --bip",
            ),
            (
                &["--iptables=false"],
                r#"{"icc": false}"#,
                "You specified --iptables=false with --icc=false. ICC=false uses iptables to \
                 function. Please set --icc or --iptables to true",
            ),
        ] {
            let err = DaemonConfig::build(&flags(args), &file(json))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{args:?} {json}: {err}");
        }
    }

    #[test]
    fn ip_masq_is_off_without_iptables() {
        let c = DaemonConfig::build(
            &flags(&["--iptables=false", "--ip-masq"]),
            &FileConfig::default(),
        )
        .unwrap();
        assert!(!c.iptables && !c.ip_masq, "dockerd's rule");
        assert!(c.icc, "icc on without iptables is fine");
    }

    #[test]
    fn networking_options_need_a_restart() {
        let f = flags(&["--dns", "1.1.1.1"]);
        let start = DaemonConfig::build(
            &f,
            &file(r#"{"bip": "172.18.0.1/16", "mtu": 1400, "icc": false, "dns-opts": ["a"]}"#),
        )
        .unwrap();
        let next = start
            .reloaded(
                &f,
                &file(
                    r#"{"bip": "10.0.0.1/8", "fixed-cidr": "10.1.0.0/16", "mtu": 9000,
                        "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}],
                        "iptables": false, "ip6tables": true, "ip-forward": false,
                        "ip-masq": false, "icc": true, "userland-proxy": false,
                        "ip": "127.0.0.1", "dns-search": ["a.test"], "dns-opts": ["b"],
                        "debug": true}"#,
                ),
            )
            .unwrap();
        assert!(next.debug, "the reloadable key changed");
        let kept = DaemonConfig {
            debug: true,
            ..start.clone()
        };
        assert_eq!(
            next, kept,
            "every networking option keeps its running value"
        );
        let next = start.reloaded(&f, &file(r#"{"bridge": "none"}"#)).unwrap();
        assert_eq!(next.bridge, "berth0");
        assert!(next.icc == start.icc && next.dns == start.dns);
        // The file is still checked: bad values and flag conflicts refuse the reload.
        assert!(start.reloaded(&f, &file(r#"{"mtu": -1}"#)).is_err());
        assert!(
            start
                .reloaded(&f, &file(r#"{"dns": ["8.8.8.8"]}"#))
                .is_err()
        );
    }

    #[test]
    fn reload_keeps_conflict_rule() {
        let f = flags(&["--debug"]);
        let start = DaemonConfig::build(&f, &FileConfig::default()).unwrap();
        assert!(start.reloaded(&f, &file(r#"{"debug": false}"#)).is_err());
    }
}
