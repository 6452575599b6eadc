//! A container's `/etc/resolv.conf` and `/etc/hosts`, as dockerd writes them: pure functions
//! of the host's files and the container's options; the daemon reads and writes the files.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::NetworkError;

/// The address of the embedded DNS server inside a container on a user-defined network.
pub const EMBEDDED_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// The nameservers dockerd falls back to when the host's are all local (IPv4 networks).
const DEFAULT_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The value of `--add-host` that the daemon replaces with the host's gateway address.
pub const HOST_GATEWAY: &str = "host-gateway";

/// A container's `/etc/resolv.conf` and the servers its embedded DNS server forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// The file's text, ending with a newline.
    pub text: String,
    /// Where the embedded DNS server forwards names that are not ours (port 53), in order;
    /// empty when the container does not use the embedded server.
    pub upstreams: Vec<SocketAddr>,
}

/// One line of a resolv.conf, classified.
#[derive(Debug)]
enum Line<'a> {
    Nameserver(&'a str),
    Search,
    Domain,
    Options(Vec<&'a str>),
    Other,
}

fn classify(line: &str) -> Line<'_> {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("nameserver") => match words.next() {
            Some(addr) => Line::Nameserver(addr),
            None => Line::Other,
        },
        Some("search") => Line::Search,
        Some("domain") => Line::Domain,
        Some("options") => Line::Options(words.collect()),
        _ => Line::Other,
    }
}

/// A nameserver's address, if it is one (glibc allows an IPv6 zone: `fe80::1%eth0`).
fn nameserver_ip(addr: &str) -> Option<IpAddr> {
    addr.parse().ok().or_else(|| {
        let (ip, _zone) = addr.split_once('%')?;
        ip.parse().ok()
    })
}

/// A place in the container's resolv.conf: a line kept, or where the lines of a kind go.
#[derive(Debug)]
enum Slot {
    Text(String),
    Nameservers,
    Search,
    Options,
}

/// A container's `/etc/resolv.conf`, as dockerd makes it.
///
/// `host` is the text of the host's resolv.conf; `dns`, `search` and `options` are the
/// container's `--dns`, `--dns-search` and `--dns-option` (merged with the daemon's `dns`,
/// `dns-search` and `dns-opts` by the caller). Each one given replaces the host's lines of its
/// kind, written where the first of them was (at the end when the host had none); a given
/// search also drops the host's `domain` lines, which would otherwise compete with it, and
/// `--dns-search .` alone means no search line at all. The host's `options` lines are merged
/// into one. Other lines (comments, `sortlist`) are kept as they are.
///
/// Without the embedded server (`embedded` false: the default bridge), the host's nameservers
/// on localhost (127.0.0.0/8, ::1) are removed, as the container's namespace cannot reach
/// them, and when none remains 8.8.8.8 and 8.8.4.4 take their place; nameservers given by
/// `--dns` are written as given. `upstreams` is empty.
///
/// With it (user-defined networks), the only nameserver is 127.0.0.11 and `ndots:0` joins the
/// options unless they set `ndots` already; `upstreams` are the nameservers the file would
/// otherwise have named (`--dns`, else the host's, localhost ones included: the forwarder runs
/// in berthd's namespace), port 53, in order; empty when there are none (then names that are
/// not ours get SERVFAIL). A host nameserver line whose address does not parse is dropped (the
/// C library could not use it either); a given one is written, never forwarded to.
pub fn resolv_conf(
    host: &str,
    embedded: bool,
    dns: &[String],
    search: &[String],
    options: &[String],
) -> ResolvConf {
    let mut slots: Vec<Slot> = Vec::new();
    // The host's nameserver lines as (address, line).
    let mut host_nameservers: Vec<(Option<IpAddr>, &str)> = Vec::new();
    let mut host_options: Vec<&str> = Vec::new();
    let (mut ns_slot, mut search_slot, mut options_slot) = (false, false, false);

    for line in host.lines() {
        match classify(line) {
            Line::Nameserver(addr) => {
                if !std::mem::replace(&mut ns_slot, true) {
                    slots.push(Slot::Nameservers);
                }
                host_nameservers.push((nameserver_ip(addr), line));
            }
            Line::Search | Line::Domain if !search.is_empty() => {
                if !std::mem::replace(&mut search_slot, true) {
                    slots.push(Slot::Search);
                }
            }
            Line::Options(words) => {
                if !std::mem::replace(&mut options_slot, true) {
                    slots.push(Slot::Options);
                }
                host_options.extend(words);
            }
            Line::Search | Line::Domain | Line::Other => slots.push(Slot::Text(line.to_string())),
        }
    }
    for (present, slot) in [
        (ns_slot, Slot::Nameservers),
        (search_slot, Slot::Search),
        (options_slot, Slot::Options),
    ] {
        if !present {
            slots.push(slot);
        }
    }

    // The nameservers the container would use without the embedded server.
    let named: Vec<IpAddr> = if dns.is_empty() {
        host_nameservers.iter().filter_map(|(ip, _)| *ip).collect()
    } else {
        dns.iter().filter_map(|a| nameserver_ip(a)).collect()
    };
    let mut upstreams = Vec::new();
    let nameserver_lines: Vec<String> = if embedded {
        upstreams = named.iter().map(|ip| SocketAddr::new(*ip, 53)).collect();
        vec![format!("nameserver {EMBEDDED_DNS}")]
    } else if !dns.is_empty() {
        dns.iter().map(|a| format!("nameserver {a}")).collect()
    } else {
        let kept: Vec<String> = host_nameservers
            .iter()
            .filter(|(ip, _)| ip.is_some_and(|ip| !ip.is_loopback()))
            .map(|(_, line)| (*line).to_string())
            .collect();
        if kept.is_empty() {
            tracing::info!(
                "no nameserver outside localhost in the host's resolv.conf: using the default ones"
            );
            DEFAULT_NAMESERVERS
                .iter()
                .map(|a| format!("nameserver {a}"))
                .collect()
        } else {
            kept
        }
    };

    let domains: Vec<&str> = search
        .iter()
        .map(String::as_str)
        .filter(|s| *s != ".")
        .collect();
    let search_line = (!domains.is_empty()).then(|| format!("search {}", domains.join(" ")));

    let mut opts: Vec<&str> = if options.is_empty() {
        host_options
    } else {
        options.iter().map(String::as_str).collect()
    };
    if embedded && !opts.iter().any(|o| o.starts_with("ndots:")) {
        opts.push("ndots:0");
    }
    let options_line = (!opts.is_empty()).then(|| format!("options {}", opts.join(" ")));

    let mut text = String::new();
    let mut push = |line: &str| {
        text.push_str(line);
        text.push('\n');
    };
    for slot in &slots {
        match slot {
            Slot::Text(line) => push(line),
            Slot::Nameservers => nameserver_lines.iter().for_each(|l| push(l)),
            Slot::Search => search_line.iter().for_each(|l| push(l)),
            Slot::Options => options_line.iter().for_each(|l| push(l)),
        }
    }
    ResolvConf { text, upstreams }
}

/// The lines every container's `/etc/hosts` starts with (dockerd's).
const HOSTS_HEADER: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
ff00::0\tip6-mcastprefix\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

/// The address berth gives a container's own name when it has no network (`--network none`):
/// pass it as the only address.
pub const NO_NETWORK_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 1);

/// A container's `/etc/hosts`, in dockerd's layout: localhost and the IPv6 names, then the
/// `extra` entries as `(ip, names)` pairs (`--add-host`, `--link`: `names` is written as
/// given, space-separated), then one line per address of the container naming it: its fully
/// qualified name (`hostname.domainname`, or `hostname` itself when it has a dot) and, when
/// that has a dot, the short name before it.
///
/// With no address no line names the container; berth's `--network none` passes
/// [`NO_NETWORK_ADDRESS`] (127.0.1.1) so the container still resolves its own name.
pub fn hosts_file(
    hostname: &str,
    domainname: &str,
    addresses: &[Ipv4Addr],
    extra: &[(String, String)],
) -> String {
    let mut text = String::from(HOSTS_HEADER);
    for (ip, names) in extra {
        text.push_str(&format!("{ip}\t{names}\n"));
    }
    let mut fqdn = hostname.to_string();
    if !domainname.is_empty() {
        fqdn = format!("{fqdn}.{domainname}");
    }
    let names = match fqdn.split_once('.') {
        Some((short, _)) => format!("{fqdn} {short}"),
        None => fqdn,
    };
    for ip in addresses {
        text.push_str(&format!("{ip}\t{names}\n"));
    }
    text
}

/// Parses an `--add-host` value, `name:ip` or (API 1.44+) `name=ip`, into `(name, ip)` (note
/// the order: [`hosts_file`] takes `(ip, names)`). The address is returned as written, without
/// the square brackets an IPv6 one may carry (`name:[::1]`; bare `name:::1` also works, as the
/// value is split at the first colon); [`HOST_GATEWAY`] is returned as is, for the caller to
/// replace. Errors are dockerd's words.
pub fn parse_extra_host(s: &str) -> Result<(String, String), NetworkError> {
    let (name, addr) = match s.split_once('=') {
        Some(parts) => parts,
        None => s
            .split_once(':')
            .ok_or_else(|| NetworkError::AddHostFormat {
                value: s.to_string(),
            })?,
    };
    if name.is_empty() || name.contains(':') {
        return Err(NetworkError::AddHostFormat {
            value: s.to_string(),
        });
    }
    if addr == HOST_GATEWAY {
        return Ok((name.to_string(), addr.to_string()));
    }
    let addr = match addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        Some(inner) if !inner.is_empty() => inner,
        _ => addr,
    };
    if addr.trim().parse::<IpAddr>().is_err() {
        return Err(NetworkError::AddHostAddress {
            value: addr.to_string(),
        });
    }
    Ok((name.to_string(), addr.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const SYSTEMD_STUB: &str = "# This is /run/systemd/resolve/stub-resolv.conf\n\
nameserver 127.0.0.53\n\
options edns0 trust-ad\n\
search lan\n";

    #[test]
    fn default_bridge_keeps_the_hosts_file_without_local_nameservers() {
        let host = "# comment\nnameserver 10.0.0.53\nnameserver 127.0.0.1\nnameserver ::1\n\
nameserver 2001:db8::53\nsearch lan corp\noptions rotate\nsortlist 10.0.0.0/8\n";
        let rc = resolv_conf(host, false, &[], &[], &[]);
        assert_eq!(
            rc.text,
            "# comment\nnameserver 10.0.0.53\nnameserver 2001:db8::53\nsearch lan corp\n\
options rotate\nsortlist 10.0.0.0/8\n"
        );
        assert!(rc.upstreams.is_empty());
    }

    #[test]
    fn default_bridge_falls_back_to_public_nameservers_when_only_local_ones() {
        let rc = resolv_conf(SYSTEMD_STUB, false, &[], &[], &[]);
        assert_eq!(
            rc.text,
            "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 8.8.8.8\n\
nameserver 8.8.4.4\noptions edns0 trust-ad\nsearch lan\n"
        );
        let rc = resolv_conf("", false, &[], &[], &[]);
        assert_eq!(rc.text, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }

    #[test]
    fn given_settings_replace_the_hosts_acceptance_case() {
        let host = "nameserver 10.0.0.53\nnameserver 10.0.0.54\ndomain corp\nsearch lan\n\
options ndots:2 rotate\n";
        let rc = resolv_conf(
            host,
            false,
            &strings(&["203.0.113.53"]),
            &strings(&["acc.test"]),
            &strings(&["ndots:3"]),
        );
        assert_eq!(
            rc.text,
            "nameserver 203.0.113.53\nsearch acc.test\noptions ndots:3\n"
        );
        let mut lines: Vec<&str> = rc
            .text
            .lines()
            .filter(|l| {
                l.starts_with("nameserver") || l.starts_with("search") || l.starts_with("options")
            })
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "nameserver 203.0.113.53",
                "options ndots:3",
                "search acc.test"
            ]
        );
        assert!(rc.upstreams.is_empty());
    }

    #[test]
    fn given_settings_are_added_when_the_host_has_none_of_their_kind() {
        let rc = resolv_conf(
            "# empty\n",
            false,
            &strings(&["127.0.0.1", "192.0.2.1"]),
            &strings(&["a.test", "b.test"]),
            &strings(&["timeout:1", "attempts:2"]),
        );
        // Given nameservers are written as given, localhost ones included.
        assert_eq!(
            rc.text,
            "# empty\nnameserver 127.0.0.1\nnameserver 192.0.2.1\nsearch a.test b.test\n\
options timeout:1 attempts:2\n"
        );
    }

    #[test]
    fn dns_search_dot_removes_the_search_line() {
        let rc = resolv_conf(
            "nameserver 10.0.0.53\nsearch lan\ndomain corp\n",
            false,
            &[],
            &strings(&["."]),
            &[],
        );
        assert_eq!(rc.text, "nameserver 10.0.0.53\n");
    }

    #[test]
    fn host_options_lines_merge_into_one() {
        let rc = resolv_conf(
            "options rotate\nnameserver 10.0.0.53\noptions timeout:2\n",
            false,
            &[],
            &[],
            &[],
        );
        assert_eq!(rc.text, "options rotate timeout:2\nnameserver 10.0.0.53\n");
    }

    #[test]
    fn embedded_names_only_the_internal_server_and_forwards_to_the_hosts() {
        let rc = resolv_conf(SYSTEMD_STUB, true, &[], &[], &[]);
        assert_eq!(
            rc.text,
            "# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.11\n\
options edns0 trust-ad ndots:0\nsearch lan\n"
        );
        assert_eq!(rc.upstreams, vec!["127.0.0.53:53".parse().unwrap()]);

        let host = "nameserver 10.0.0.53\nnameserver junk\nnameserver fe80::1%eth0\n";
        let rc = resolv_conf(host, true, &[], &[], &[]);
        assert_eq!(rc.text, "nameserver 127.0.0.11\noptions ndots:0\n");
        assert_eq!(
            rc.upstreams,
            vec![
                "10.0.0.53:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn embedded_with_given_settings() {
        let rc = resolv_conf(
            "nameserver 10.0.0.53\nsearch lan\n",
            true,
            &strings(&["203.0.113.53", "127.0.0.1"]),
            &strings(&["acc.test"]),
            &strings(&["ndots:3", "rotate"]),
        );
        assert_eq!(
            rc.text,
            "nameserver 127.0.0.11\nsearch acc.test\noptions ndots:3 rotate\n"
        );
        assert_eq!(
            rc.upstreams,
            vec![
                "203.0.113.53:53".parse().unwrap(),
                "127.0.0.1:53".parse().unwrap()
            ]
        );
        // The host's ndots is kept as well; no nameserver at all: nothing to forward to.
        let rc = resolv_conf("options ndots:5\n", true, &[], &[], &[]);
        assert_eq!(rc.text, "options ndots:5\nnameserver 127.0.0.11\n");
        assert!(rc.upstreams.is_empty());
    }

    #[test]
    fn hosts_file_layout() {
        let header = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";
        assert_eq!(
            hosts_file("abc123", "", &[Ipv4Addr::new(172, 18, 0, 2)], &[]),
            format!("{header}172.18.0.2\tabc123\n")
        );
        assert_eq!(
            hosts_file(
                "web",
                "example.test",
                &[Ipv4Addr::new(172, 18, 0, 2), Ipv4Addr::new(172, 19, 0, 5)],
                &[
                    ("192.0.2.7".to_string(), "db".to_string()),
                    (
                        "172.17.0.3".to_string(),
                        "alias 0123456789ab other".to_string()
                    ),
                ],
            ),
            format!(
                "{header}192.0.2.7\tdb\n172.17.0.3\talias 0123456789ab other\n\
172.18.0.2\tweb.example.test web\n172.19.0.5\tweb.example.test web\n"
            )
        );
        assert_eq!(
            hosts_file("a.b.c", "", &[Ipv4Addr::new(10, 0, 0, 1)], &[]),
            format!("{header}10.0.0.1\ta.b.c a\n")
        );
        assert_eq!(
            hosts_file("abc123", "", &[NO_NETWORK_ADDRESS], &[]),
            format!("{header}127.0.1.1\tabc123\n")
        );
        assert_eq!(hosts_file("abc123", "", &[], &[]), header);
    }

    #[test]
    fn extra_hosts_parse_like_dockerd() {
        let ok = |s: &str| parse_extra_host(s).unwrap();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(ok("db:192.0.2.7"), pair("db", "192.0.2.7"));
        assert_eq!(ok("db=192.0.2.7"), pair("db", "192.0.2.7"));
        assert_eq!(ok("v6:::1"), pair("v6", "::1"));
        assert_eq!(ok("v6:[2001:db8::1]"), pair("v6", "2001:db8::1"));
        assert_eq!(ok("v6=2001:db8::1"), pair("v6", "2001:db8::1"));
        assert_eq!(ok("v4:[10.0.0.1]"), pair("v4", "10.0.0.1"));
        assert_eq!(ok("gw:host-gateway"), pair("gw", "host-gateway"));

        let err = |s: &str| parse_extra_host(s).unwrap_err().to_string();
        assert_eq!(err("db:x"), r#"invalid IP address in add-host: "x""#);
        assert_eq!(err("db:"), r#"invalid IP address in add-host: """#);
        assert_eq!(err("db=[x]"), r#"invalid IP address in add-host: "x""#);
        assert_eq!(err("db"), r#"bad format for add-host: "db""#);
        assert_eq!(err(":10.0.0.1"), r#"bad format for add-host: ":10.0.0.1""#);
        assert_eq!(
            err("a:b=10.0.0.1"),
            r#"bad format for add-host: "a:b=10.0.0.1""#
        );
    }
}
