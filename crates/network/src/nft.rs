//! berth's own nftables table: NAT for bridges, DNAT for published ports, isolation between
//! networks. The whole table is rendered from a [`Ruleset`] and replaced in one atomic `nft`
//! run; no other table, and no other table's chain policy, is ever touched.

use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::str::FromStr;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::NetworkError;

/// The `nft` binary (Debian's nftables package).
const NFT: &str = "nft";

/// Everything berth's table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// One entry per bridge network.
    pub bridges: Vec<BridgeRules>,
    /// One entry per published port (and per host address it is published on).
    pub ports: Vec<PortRule>,
}

/// What a bridge network needs from the firewall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    /// The bridge interface.
    pub name: String,
    /// The network's subnet (host bits are ignored).
    pub subnet: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// Whether traffic leaving the network is masqueraded (dockerd's
    /// `com.docker.network.bridge.enable_ip_masquerade`).
    pub masquerade: bool,
    /// Whether the network is internal: no traffic in or out of it, only within it.
    pub internal: bool,
    /// Whether containers of the network may talk to each other (`enable_icc`).
    pub icc: bool,
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`, as Docker and nft spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(NetworkError::InvalidProto {
                proto: s.to_owned(),
            }),
        }
    }
}

/// One published port: traffic to a local address on `host_port` goes to the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// The protocol.
    pub proto: Proto,
    /// The host address it is published on; `None` (or 0.0.0.0) for every local address.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub container_ip: Ipv4Addr,
    /// The container's port.
    pub container_port: u16,
    /// The bridge the container is reached through.
    pub bridge: String,
}

impl Ruleset {
    /// The nftables script that defines the table `table` (`ip` family) with these rules;
    /// only the table's body, without the statements that replace an older one.
    pub fn render(&self, table: &str) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.render_into(&mut out, table);
        out
    }

    fn render_into(&self, o: &mut String, table: &str) -> fmt::Result {
        writeln!(o, "table ip {table} {{")?;

        // Published ports: anything addressed to this host, from outside, from a bridge
        // (hairpin) or from the host itself (output).
        writeln!(o, "\tchain prerouting {{")?;
        writeln!(
            o,
            "\t\ttype nat hook prerouting priority dstnat; policy accept;"
        )?;
        writeln!(o, "\t\tfib daddr type local jump ports")?;
        writeln!(o, "\t}}")?;
        writeln!(o, "\tchain output {{")?;
        writeln!(o, "\t\ttype nat hook output priority -100; policy accept;")?;
        writeln!(o, "\t\tfib daddr type local jump ports")?;
        writeln!(o, "\t}}")?;
        writeln!(o, "\tchain ports {{")?;
        for p in &self.ports {
            o.push_str("\t\t");
            if let Some(ip) = p.host_ip.filter(|ip| !ip.is_unspecified()) {
                write!(o, "ip daddr {ip} ")?;
            }
            writeln!(
                o,
                "{} dport {} dnat to {}:{}",
                p.proto, p.host_port, p.container_ip, p.container_port
            )?;
        }
        writeln!(o, "\t}}")?;

        writeln!(o, "\tchain postrouting {{")?;
        writeln!(
            o,
            "\t\ttype nat hook postrouting priority srcnat; policy accept;"
        )?;
        for b in &self.bridges {
            let (br, net) = (&b.name, subnet(b));
            if b.masquerade && !b.internal {
                writeln!(o, "\t\tip saddr {net} oifname != \"{br}\" masquerade")?;
            }
            // From the host's 127.0.0.1 to a container (route_localnet), and hairpin: a
            // container reaching a published port of its own network through the host.
            writeln!(o, "\t\toifname \"{br}\" ip saddr 127.0.0.0/8 masquerade")?;
            writeln!(
                o,
                "\t\toifname \"{br}\" ip saddr {net} ct status dnat masquerade"
            )?;
        }
        writeln!(o, "\t}}")?;

        writeln!(o, "\tchain forward {{")?;
        writeln!(
            o,
            "\t\ttype filter hook forward priority filter; policy accept;"
        )?;
        for b in self.bridges.iter().filter(|b| b.internal) {
            let br = &b.name;
            writeln!(o, "\t\tiifname \"{br}\" oifname != \"{br}\" drop")?;
            writeln!(o, "\t\toifname \"{br}\" iifname != \"{br}\" drop")?;
        }
        writeln!(o, "\t\tct state established,related accept")?;
        writeln!(o, "\t\tct status dnat accept")?;
        for b in self.bridges.iter().filter(|b| !b.icc) {
            let br = &b.name;
            writeln!(o, "\t\tiifname \"{br}\" oifname \"{br}\" drop")?;
        }
        // Into a network from elsewhere (another network, outside): only replies and
        // published ports, accepted above.
        for b in self.bridges.iter().filter(|b| !b.internal) {
            let br = &b.name;
            writeln!(o, "\t\toifname \"{br}\" iifname != \"{br}\" drop")?;
        }
        writeln!(o, "\t}}")?;

        // route_localnet on the bridges lets the host's 127.0.0.1 reach containers; it must
        // not let containers reach the host's 127.0.0.1 (CVE-2020-8558): only replies pass.
        writeln!(o, "\tchain input {{")?;
        writeln!(
            o,
            "\t\ttype filter hook input priority filter; policy accept;"
        )?;
        writeln!(o, "\t\tct state established,related accept")?;
        for b in &self.bridges {
            writeln!(o, "\t\tiifname \"{}\" ip daddr 127.0.0.0/8 drop", b.name)?;
        }
        writeln!(o, "\t}}")?;

        writeln!(o, "}}")
    }
}

/// `a.b.c.d/n` with the host bits cleared.
fn subnet(b: &BridgeRules) -> String {
    let prefix = b.prefix.min(32);
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    format!("{}/{prefix}", Ipv4Addr::from(u32::from(b.subnet) & mask))
}

/// Whether `name` can be written in an nft script as is: a valid interface name with none of
/// the characters nft would parse.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Replaces berth's table `table` with one holding `rules`, in one atomic run of `nft`: the
/// old rules stay in force until the new ones are all accepted.
pub async fn apply(table: &str, rules: &Ruleset) -> Result<(), NetworkError> {
    let names = std::iter::once(table)
        .chain(rules.bridges.iter().map(|b| b.name.as_str()))
        .chain(rules.ports.iter().map(|p| p.bridge.as_str()));
    for name in names {
        if !plain_name(name) {
            return Err(NetworkError::InvalidName {
                name: name.to_owned(),
            });
        }
    }
    let script = format!(
        "table ip {table} {{}}\ndelete table ip {table}\n{}",
        rules.render(table)
    );
    run_nft(
        &["-f", "-"],
        Some(&script),
        &format!("applying the nftables table {table}"),
    )
    .await?;
    tracing::debug!(
        table,
        bridges = rules.bridges.len(),
        ports = rules.ports.len(),
        "nftables table applied"
    );
    Ok(())
}

/// Deletes berth's table `table`; a missing table is not an error.
pub async fn remove(table: &str) -> Result<(), NetworkError> {
    let script = format!("table ip {table} {{}}\ndelete table ip {table}\n");
    run_nft(
        &["-f", "-"],
        Some(&script),
        &format!("removing the nftables table {table}"),
    )
    .await
    .map(drop)
}

/// Whether the table `table` (`ip` family) exists.
pub async fn table_exists(table: &str) -> Result<bool, NetworkError> {
    let out = run_nft(&["list", "tables", "ip"], None, "listing nftables tables").await?;
    Ok(out
        .lines()
        .any(|l| l.trim().strip_prefix("table ip ") == Some(table)))
}

/// Runs `nft args`, feeding it `stdin`; its stdout, or an error carrying its stderr.
async fn run_nft(
    args: &[&str],
    stdin: Option<&str>,
    context: &str,
) -> Result<String, NetworkError> {
    let mut child = Command::new(NFT)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| NetworkError::Io {
            context: format!("{context}: running {NFT}"),
            source,
        })?;
    if let (Some(script), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(script.as_bytes())
            .await
            .map_err(|source| NetworkError::Io {
                context: format!("{context}: writing to {NFT}"),
                source,
            })?;
        // Dropping the pipe closes it: nft reads to its end.
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| NetworkError::Io {
            context: format!("{context}: waiting for {NFT}"),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(NetworkError::Nft {
            context: context.to_owned(),
            stderr: if stderr.is_empty() {
                format!("{NFT} exited with {}", out.status)
            } else {
                stderr
            },
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge(name: &str, subnet: [u8; 4], prefix: u8) -> BridgeRules {
        BridgeRules {
            name: name.to_owned(),
            subnet: Ipv4Addr::from(subnet),
            prefix,
            masquerade: true,
            internal: false,
            icc: true,
        }
    }

    fn rules(text: &str) -> Vec<&str> {
        text.lines().map(str::trim).collect()
    }

    fn chain<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let start = format!("chain {name} {{");
        text.lines()
            .map(str::trim)
            .skip_while(|l| *l != start)
            .skip(1)
            .take_while(|l| *l != "}")
            .collect()
    }

    #[test]
    fn empty_ruleset_has_all_chains_and_hooks() {
        let text = Ruleset::default().render("berth");
        assert!(text.starts_with("table ip berth {\n"));
        assert!(text.ends_with("}\n"));
        let lines = rules(&text);
        for hook in [
            "type nat hook prerouting priority dstnat; policy accept;",
            "type nat hook output priority -100; policy accept;",
            "type nat hook postrouting priority srcnat; policy accept;",
            "type filter hook forward priority filter; policy accept;",
        ] {
            assert!(lines.contains(&hook), "{hook} missing in\n{text}");
        }
        assert_eq!(
            chain(&text, "prerouting")[1],
            "fib daddr type local jump ports"
        );
        assert_eq!(chain(&text, "output")[1], "fib daddr type local jump ports");
        assert!(chain(&text, "ports").is_empty());
        assert_eq!(
            chain(&text, "forward")[1..],
            [
                "ct state established,related accept",
                "ct status dnat accept"
            ]
        );
    }

    #[test]
    fn ports_become_dnat_rules() {
        let rs = Ruleset {
            bridges: vec![bridge("berth0", [172, 17, 0, 0], 16)],
            ports: vec![
                PortRule {
                    proto: Proto::Tcp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 8080,
                    container_ip: Ipv4Addr::new(172, 17, 0, 2),
                    container_port: 80,
                    bridge: "berth0".to_owned(),
                },
                PortRule {
                    proto: Proto::Udp,
                    host_ip: None,
                    host_port: 5353,
                    container_ip: Ipv4Addr::new(172, 17, 0, 3),
                    container_port: 53,
                    bridge: "berth0".to_owned(),
                },
                PortRule {
                    proto: Proto::Tcp,
                    host_ip: Some(Ipv4Addr::UNSPECIFIED),
                    host_port: 443,
                    container_ip: Ipv4Addr::new(172, 17, 0, 3),
                    container_port: 8443,
                    bridge: "berth0".to_owned(),
                },
            ],
        };
        let text = rs.render("berth");
        assert_eq!(
            chain(&text, "ports"),
            [
                "ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.17.0.2:80",
                "udp dport 5353 dnat to 172.17.0.3:53",
                "tcp dport 443 dnat to 172.17.0.3:8443",
            ]
        );
    }

    #[test]
    fn postrouting_masquerades_outgoing_localhost_and_hairpin() {
        let mut quiet = bridge("br-quiet", [10, 1, 2, 3], 24);
        quiet.masquerade = false;
        let mut internal = bridge("br-int", [10, 9, 0, 0], 16);
        internal.internal = true;
        let rs = Ruleset {
            bridges: vec![bridge("berth0", [172, 17, 0, 0], 16), quiet, internal],
            ports: vec![],
        };
        let text = rs.render("t");
        assert_eq!(
            chain(&text, "postrouting")[1..],
            [
                "ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade",
                "oifname \"berth0\" ip saddr 127.0.0.0/8 masquerade",
                "oifname \"berth0\" ip saddr 172.17.0.0/16 ct status dnat masquerade",
                // no outgoing masquerade; the subnet's host bits cleared
                "oifname \"br-quiet\" ip saddr 127.0.0.0/8 masquerade",
                "oifname \"br-quiet\" ip saddr 10.1.2.0/24 ct status dnat masquerade",
                // internal: never masqueraded out
                "oifname \"br-int\" ip saddr 127.0.0.0/8 masquerade",
                "oifname \"br-int\" ip saddr 10.9.0.0/16 ct status dnat masquerade",
            ]
        );
    }

    #[test]
    fn forward_isolates_networks_internal_and_icc() {
        let mut internal = bridge("br-int", [10, 9, 0, 0], 16);
        internal.internal = true;
        let mut no_icc = bridge("br-noicc", [10, 8, 0, 0], 16);
        no_icc.icc = false;
        let rs = Ruleset {
            bridges: vec![bridge("berth0", [172, 17, 0, 0], 16), internal, no_icc],
            ports: vec![],
        };
        let text = rs.render("t");
        assert_eq!(
            chain(&text, "forward")[1..],
            [
                "iifname \"br-int\" oifname != \"br-int\" drop",
                "oifname \"br-int\" iifname != \"br-int\" drop",
                "ct state established,related accept",
                "ct status dnat accept",
                "iifname \"br-noicc\" oifname \"br-noicc\" drop",
                "oifname \"berth0\" iifname != \"berth0\" drop",
                "oifname \"br-noicc\" iifname != \"br-noicc\" drop",
            ]
        );
    }

    #[test]
    fn input_keeps_containers_off_the_hosts_loopback() {
        let rs = Ruleset {
            bridges: vec![
                bridge("berth0", [172, 17, 0, 0], 16),
                bridge("br-x", [10, 8, 0, 0], 16),
            ],
            ports: vec![],
        };
        let text = rs.render("t");
        assert!(rules(&text).contains(&"type filter hook input priority filter; policy accept;"));
        assert_eq!(
            chain(&text, "input")[1..],
            [
                "ct state established,related accept",
                "iifname \"berth0\" ip daddr 127.0.0.0/8 drop",
                "iifname \"br-x\" ip daddr 127.0.0.0/8 drop",
            ]
        );
    }

    #[test]
    fn subnet_masks_host_bits() {
        assert_eq!(
            subnet(&bridge("b", [192, 168, 5, 77], 20)),
            "192.168.0.0/20"
        );
        assert_eq!(subnet(&bridge("b", [1, 2, 3, 4], 0)), "0.0.0.0/0");
        assert_eq!(subnet(&bridge("b", [1, 2, 3, 4], 32)), "1.2.3.4/32");
    }

    #[test]
    fn proto_round_trips() {
        for p in [Proto::Tcp, Proto::Udp] {
            assert_eq!(p.to_string().parse::<Proto>().ok(), Some(p));
        }
        assert!("sctp".parse::<Proto>().is_err());
    }

    #[test]
    fn names_nft_would_parse_are_refused() {
        assert!(plain_name("berth0"));
        assert!(plain_name("br-0123456789ab"));
        assert!(!plain_name(""));
        assert!(!plain_name("a\"; flush ruleset"));
        assert!(!plain_name("0123456789abcdef"));
    }
}
