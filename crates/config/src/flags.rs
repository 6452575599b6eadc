use std::path::PathBuf;

use clap::Parser;

/// Where berthd reads its configuration file when `--config-file` is not given. A missing
/// default file is fine; a missing explicit one is an error.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

/// berthd's command line. Flags are named as dockerd's. Every value flag is optional here so
/// that "given on the command line" is visible, which dockerd's flag/file conflict rule needs;
/// the defaults named in the help are applied by `DaemonConfig::build`.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "berthd",
    version,
    about = "berth: a container engine that speaks the Docker Engine API and runs containers \
             through containerd and runc",
    long_about = None,
    after_help = "Every flag can also be set in the configuration file under the same name \
                  (hosts, labels, default-ulimits, default-address-pools, dns-opts and log-opts in the \
                  plural); a key given both ways is an error. SIGHUP reloads the configuration \
                  file (the networking options need a restart); SIGTERM or SIGINT shuts down."
)]
pub struct Flags {
    /// Daemon configuration file [default: /etc/berth/daemon.json]
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Check the configuration (flags and file) and exit: prints "configuration OK"
    #[arg(long)]
    pub validate: bool,

    /// Socket(s) to listen on: unix:///path or tcp://host:port (tcp needs TLS)
    /// [default: unix:///run/berth.sock]
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    pub hosts: Vec<String>,

    /// Group that owns the unix sockets (mode 0660); root when the group does not exist
    /// [default: docker]
    #[arg(short = 'G', long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Root of persistent state: images, containers, runtimes [default: /var/lib/berth]
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,

    /// Root of volatile state: FIFOs, the managed containerd's socket [default: /run/berth]
    #[arg(long, value_name = "DIR")]
    pub exec_root: Option<PathBuf>,

    /// Daemon pid file, locked while berthd runs [default: /run/berth.pid]
    #[arg(short = 'p', long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Address of a containerd to use; without it berthd starts and supervises its own
    #[arg(long, value_name = "ADDR")]
    pub containerd: Option<String>,

    /// containerd namespace for berth's containers [default: berth]
    #[arg(long, value_name = "NAME")]
    pub containerd_namespace: Option<String>,

    /// Parent cgroup of every container's cgroup: from the cgroup root with a leading /,
    /// else under berthd's own cgroup [default: /berth]
    #[arg(long, value_name = "CGROUP")]
    pub cgroup_parent: Option<String>,

    /// Runtime used when a container names none [default: runc]
    #[arg(long, value_name = "NAME")]
    pub default_runtime: Option<String>,

    /// Register a runc-compatible runtime binary (repeatable)
    #[arg(long = "add-runtime", value_name = "NAME=PATH")]
    pub add_runtimes: Vec<String>,

    /// Default ulimit for containers, e.g. nofile=1024:2048 (repeatable)
    #[arg(long = "default-ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub default_ulimits: Vec<String>,

    /// Keep containers running while the daemon is down
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub live_restore: Option<bool>,

    /// Log level: debug, info, warn, error, fatal [default: info]
    #[arg(short = 'l', long, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Default log driver of new containers: json-file, local or none [default: json-file]
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,

    /// Default log driver option for new containers, e.g. max-size=10m (repeatable)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opts: Vec<String>,

    /// Debug mode: log level debug, one line per API request
    #[arg(short = 'D', long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub debug: Option<bool>,

    /// Serve Prometheus metrics on this TCP address, e.g. 127.0.0.1:9323
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,

    /// Engine label key=value, shown by docker info (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Seconds to wait for containers to stop at shutdown, -1 for no limit [default: 15]
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub shutdown_timeout: Option<i64>,

    /// A registry spoken to over plain HTTP: host[:port] or CIDR (repeatable; 127.0.0.0/8
    /// always is)
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    pub insecure_registries: Vec<String>,

    /// A mirror tried before Docker Hub, as a URL (repeatable)
    #[arg(long = "registry-mirror", value_name = "URL")]
    pub registry_mirrors: Vec<String>,

    /// Layers downloaded at once by a pull [default: 3]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_concurrent_downloads: Option<i64>,

    /// Layers uploaded at once by a push [default: 5]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_concurrent_uploads: Option<i64>,

    /// Attempts per layer download [default: 5]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_download_attempts: Option<i64>,

    /// Attach containers to a network bridge: berth's own berth0, which berthd creates (so
    /// that it can run beside dockerd's docker0), or an existing device; "none" disables the
    /// default bridge network [default: berth0]
    #[arg(short = 'b', long, value_name = "BRIDGE")]
    pub bridge: Option<String>,

    /// The default bridge's IPv4 address with its prefix length, e.g. 172.17.0.1/16
    #[arg(long, value_name = "CIDR")]
    pub bip: Option<String>,

    /// IPv4 subnet of the default bridge that containers' addresses are taken from, e.g.
    /// 172.17.1.0/24 (within the bridge's network)
    #[arg(long, value_name = "CIDR")]
    pub fixed_cidr: Option<String>,

    /// Default address pool for networks created without a subnet, e.g.
    /// base=10.10.0.0/16,size=24 (repeatable)
    #[arg(long = "default-address-pool", value_name = "base=CIDR,size=N")]
    pub default_address_pools: Vec<String>,

    /// MTU of the default bridge and of containers' interfaces on it [default: 1500]
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true)]
    pub mtu: Option<i64>,

    /// Manage berth's nftables table (NAT, published ports, isolation) [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub iptables: Option<bool>,

    /// Manage IPv6 packet filtering rules (accepted; berth's networks are IPv4)
    /// [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub ip6tables: Option<bool>,

    /// Enable IP forwarding in the kernel [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub ip_forward: Option<bool>,

    /// Masquerade containers' traffic leaving the host (off when --iptables=false)
    /// [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub ip_masq: Option<bool>,

    /// Let containers on the default bridge talk to each other [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub icc: Option<bool>,

    /// Use a userland proxy for loopback traffic to published ports (accepted; berth
    /// forwards in the kernel) [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub userland_proxy: Option<bool>,

    /// Default IPv4 address to bind published container ports to [default: 0.0.0.0]
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,

    /// DNS server for containers to use (repeatable)
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,

    /// DNS search domain for containers (repeatable)
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,

    /// DNS resolver option for containers, e.g. ndots:2 (repeatable)
    #[arg(long = "dns-opt", value_name = "OPT")]
    pub dns_opts: Vec<String>,

    /// Use TLS on tcp hosts
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub tls: Option<bool>,

    /// Use TLS and verify clients
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    pub tlsverify: Option<bool>,

    /// Trust certs signed only by this CA
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,

    /// Path to the TLS certificate file
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,

    /// Path to the TLS key file
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
}

impl Flags {
    /// The daemon.json keys this command line sets, with the values as text, for dockerd's
    /// "specified both as a flag and in the configuration file" check. `--add-runtime` is
    /// absent on purpose: dockerd merges flag and file runtimes instead.
    pub fn given_keys(&self) -> Vec<(&'static str, String)> {
        let mut keys = Vec::new();
        let mut opt = |key: &'static str, v: Option<String>| {
            if let Some(v) = v {
                keys.push((key, v));
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.join(", "));
        opt("hosts", list(&self.hosts));
        opt("group", self.group.clone());
        opt("data-root", path(&self.data_root));
        opt("exec-root", path(&self.exec_root));
        opt("pidfile", path(&self.pidfile));
        opt("containerd", self.containerd.clone());
        opt("containerd-namespace", self.containerd_namespace.clone());
        opt("cgroup-parent", self.cgroup_parent.clone());
        opt("default-runtime", self.default_runtime.clone());
        opt("default-ulimits", list(&self.default_ulimits));
        opt("live-restore", self.live_restore.map(|b| b.to_string()));
        opt("log-level", self.log_level.clone());
        opt("log-driver", self.log_driver.clone());
        opt("log-opts", list(&self.log_opts));
        opt("debug", self.debug.map(|b| b.to_string()));
        opt("metrics-addr", self.metrics_addr.clone());
        opt("labels", list(&self.labels));
        opt(
            "shutdown-timeout",
            self.shutdown_timeout.map(|t| t.to_string()),
        );
        opt("insecure-registries", list(&self.insecure_registries));
        opt("registry-mirrors", list(&self.registry_mirrors));
        let num = |n: Option<i64>| n.map(|n| n.to_string());
        opt(
            "max-concurrent-downloads",
            num(self.max_concurrent_downloads),
        );
        opt("max-concurrent-uploads", num(self.max_concurrent_uploads));
        opt("max-download-attempts", num(self.max_download_attempts));
        let flag = |b: Option<bool>| b.map(|b| b.to_string());
        opt("bridge", self.bridge.clone());
        opt("bip", self.bip.clone());
        opt("fixed-cidr", self.fixed_cidr.clone());
        opt("default-address-pools", list(&self.default_address_pools));
        opt("mtu", num(self.mtu));
        opt("iptables", flag(self.iptables));
        opt("ip6tables", flag(self.ip6tables));
        opt("ip-forward", flag(self.ip_forward));
        opt("ip-masq", flag(self.ip_masq));
        opt("icc", flag(self.icc));
        opt("userland-proxy", flag(self.userland_proxy));
        opt("ip", self.ip.clone());
        opt("dns", list(&self.dns));
        opt("dns-search", list(&self.dns_search));
        opt("dns-opts", list(&self.dns_opts));
        opt("tls", self.tls.map(|b| b.to_string()));
        opt("tlsverify", self.tlsverify.map(|b| b.to_string()));
        opt("tlscacert", path(&self.tlscacert));
        opt("tlscert", path(&self.tlscert));
        opt("tlskey", path(&self.tlskey));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Flags::command().debug_assert();
    }

    #[test]
    fn parses_dockerd_style_flags() {
        let f = Flags::try_parse_from([
            "berthd",
            "-H",
            "unix:///tmp/a.sock",
            "--host=unix:///tmp/b.sock",
            "--data-root",
            "/tmp/d",
            "--live-restore",
            "--debug",
            "--default-ulimit",
            "nofile=1:2",
            "--add-runtime",
            "x=/bin/true",
            "--shutdown-timeout",
            "-1",
        ])
        .unwrap();
        assert_eq!(f.hosts.len(), 2);
        assert_eq!(f.live_restore, Some(true));
        assert_eq!(f.debug, Some(true));
        assert_eq!(f.shutdown_timeout, Some(-1));
        let keys: Vec<&str> = f.given_keys().iter().map(|(k, _)| *k).collect();
        assert!(keys.contains(&"hosts") && keys.contains(&"default-ulimits"));
        assert!(
            !keys.contains(&"runtimes"),
            "add-runtime merges, never conflicts"
        );
    }

    #[test]
    fn bool_flags_take_explicit_values() {
        let f = Flags::try_parse_from(["berthd", "--live-restore=false"]).unwrap();
        assert_eq!(f.live_restore, Some(false));
        assert_eq!(
            Flags::try_parse_from(["berthd"]).unwrap().live_restore,
            None
        );
    }

    #[test]
    fn networking_flags_parse_as_dockerds() {
        let f = Flags::try_parse_from([
            "berthd",
            "-b",
            "none",
            "--fixed-cidr",
            "10.1.0.0/24",
            "--default-address-pool",
            "base=10.10.0.0/16,size=24",
            "--default-address-pool=base=10.20.0.0/16,size=20",
            "--mtu",
            "-1",
            "--iptables=false",
            "--ip6tables",
            "--ip-forward=false",
            "--ip-masq=true",
            "--icc=false",
            "--userland-proxy=false",
            "--ip",
            "127.0.0.1",
            "--dns",
            "1.1.1.1",
            "--dns=8.8.8.8",
            "--dns-search",
            "example.com",
            "--dns-opt",
            "ndots:2",
        ])
        .unwrap();
        assert_eq!(f.bridge.as_deref(), Some("none"));
        assert_eq!(f.default_address_pools.len(), 2);
        assert_eq!(f.mtu, Some(-1), "negative reaches dockerd's MTU message");
        assert_eq!(
            (f.iptables, f.ip6tables, f.ip_forward, f.ip_masq, f.icc),
            (
                Some(false),
                Some(true),
                Some(false),
                Some(true),
                Some(false)
            )
        );
        assert_eq!(f.userland_proxy, Some(false));
        assert_eq!(f.dns, vec!["1.1.1.1", "8.8.8.8"]);
        let keys = f.given_keys();
        let value = |k: &str| {
            keys.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(value("bridge").as_deref(), Some("none"));
        assert_eq!(value("iptables").as_deref(), Some("false"));
        assert_eq!(value("dns-opts").as_deref(), Some("ndots:2"));
        assert_eq!(
            value("default-address-pools").as_deref(),
            Some("base=10.10.0.0/16,size=24, base=10.20.0.0/16,size=20")
        );
        assert_eq!(value("bip"), None);
        let f = Flags::try_parse_from(["berthd", "--bip", "172.18.0.1/16"]).unwrap();
        assert_eq!(f.bip.as_deref(), Some("172.18.0.1/16"));
        let none = Flags::try_parse_from(["berthd"]).unwrap();
        assert_eq!(
            (none.iptables, none.icc, none.userland_proxy, none.mtu),
            (None, None, None, None)
        );
        assert!(Flags::try_parse_from(["berthd", "--iptables", "false"]).is_err());
        assert!(Flags::try_parse_from(["berthd", "--icc=maybe"]).is_err());
    }

    #[test]
    fn help_names_every_contract_flag() {
        let help = Flags::command().render_long_help().to_string();
        for flag in [
            "--config-file",
            "--host",
            "--data-root",
            "--exec-root",
            "--pidfile",
            "--containerd",
            "--containerd-namespace",
            "--cgroup-parent",
            "--default-runtime",
            "--add-runtime",
            "--default-ulimit",
            "--live-restore",
            "--log-level",
            "--log-driver",
            "--log-opt",
            "--debug",
            "--validate",
            "--group",
            "--metrics-addr",
            "--bridge",
            "--bip",
            "--fixed-cidr",
            "--default-address-pool",
            "--mtu",
            "--iptables",
            "--ip6tables",
            "--ip-forward",
            "--ip-masq",
            "--icc",
            "--userland-proxy",
            "--ip <IP>",
            "--dns <IP>",
            "--dns-search",
            "--dns-opt",
            "berth0",
        ] {
            assert!(help.contains(flag), "help lacks {flag}");
        }
    }
}
