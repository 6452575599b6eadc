//! The networking options' values and their checks: IPv4 CIDRs (`bip`, `fixed-cidr`, pool
//! bases), `default-address-pools`, the DNS lists, the bridge's device name and the MTU.
//! Messages follow dockerd's where it has one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// One `default-address-pools` entry: networks of prefix `size` carved from `base`, in
/// daemon.json's shape (`{"base": "10.10.0.0/16", "size": 24}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

impl AddressPool {
    /// Parses `--default-address-pool base=10.10.0.0/16,size=24` as dockerd does: comma
    /// separated `key=value` fields, keys case-insensitive, a repeated key's last value wins.
    pub fn parse(spec: &str) -> Result<AddressPool, ConfigError> {
        let bad = |reason: String| ConfigError::AddressPool {
            spec: spec.to_string(),
            reason,
        };
        let (mut base, mut size) = (None, None);
        for field in spec.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| bad(format!("invalid field '{field}' must be a key=value pair")))?;
            match key.trim().to_ascii_lowercase().as_str() {
                "base" => base = Some(value.trim().to_string()),
                "size" => {
                    size = Some(value.trim().parse::<u8>().map_err(|_| {
                        bad(format!("invalid size value: {value:?} (must be integer)"))
                    })?)
                }
                _ => return Err(bad(format!("unexpected key '{key}' in '{field}'"))),
            }
        }
        let pool = AddressPool {
            base: base.ok_or_else(|| bad("base is required".to_string()))?,
            size: size.ok_or_else(|| bad("size is required".to_string()))?,
        };
        pool.validate()?;
        Ok(pool)
    }

    /// The base is an IPv4 CIDR and `size` lies between its prefix and 32.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |reason: String| ConfigError::AddressPool {
            spec: self.to_string(),
            reason,
        };
        let (_, prefix) = parse_ipv4_cidr(&self.base).map_err(bad)?;
        if self.size < prefix || self.size > 32 {
            return Err(bad(format!(
                "size {} must be between the base's prefix length {prefix} and 32",
                self.size
            )));
        }
        Ok(())
    }
}

impl fmt::Display for AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "base={},size={}", self.base, self.size)
    }
}

/// An IPv4 address with a prefix length, `a.b.c.d/n`; the error is the reason, in Go's
/// words where it has them (`invalid CIDR address: x`).
pub(crate) fn parse_ipv4_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("invalid CIDR address: {s}");
    let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
    if addr.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(format!("{s} is not an IPv4 CIDR (only IPv4 is supported)"));
    }
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    if prefix.is_empty()
        || prefix.len() > 2
        || (prefix.len() > 1 && prefix.starts_with('0'))
        || !prefix.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    Ok((addr, prefix))
}

/// The network (first address, prefix) of a parsed CIDR.
pub(crate) fn network_of((addr, prefix): (Ipv4Addr, u8)) -> (u32, u8) {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    (u32::from(addr) & mask, prefix)
}

/// Whether the network `inner` lies within the network `outer`.
pub(crate) fn cidr_within(inner: (Ipv4Addr, u8), outer: (Ipv4Addr, u8)) -> bool {
    let (outer_net, outer_prefix) = network_of(outer);
    inner.1 >= outer_prefix && network_of((inner.0, outer_prefix)).0 == outer_net
}

/// A `dns` entry: an IPv4 or IPv6 address (dockerd's `1.1.1.1o is not an ip address`).
pub(crate) fn validate_dns_server(s: &str) -> Result<(), ConfigError> {
    s.trim()
        .parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| ConfigError::NotAnIp(s.to_string()))
}

/// A `dns-search` entry, with dockerd's rule: `.` alone, or a name with at least one letter
/// whose dot-separated labels are letters, digits and inner hyphens, an optional final dot,
/// under 255 characters (dockerd's `123456 is not a valid domain`).
pub(crate) fn validate_dns_search(s: &str) -> Result<(), ConfigError> {
    let v = s.trim_matches(' ');
    if v == "." {
        return Ok(());
    }
    let name = v.trim_end();
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if v.bytes().any(|b| b.is_ascii_alphabetic())
        && name.len() < 255
        && name.split('.').all(label_ok)
    {
        Ok(())
    } else {
        Err(ConfigError::NotADomain(s.to_string()))
    }
}

/// The default bridge's device name: `none`, or a Linux interface name (1 to 15 bytes, no
/// `/`, `:` or white space, not `.` or `..`).
pub(crate) fn validate_bridge_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            key: "bridge".to_string(),
            reason: format!(
                "{name:?} is not a valid interface name (1 to 15 characters, no '/', ':' or \
                 white space)"
            ),
        })
    }
}

/// The MTU: dockerd's `invalid default MTU: -1` for zero or less, and Linux's bounds for IPv4
/// (68 to 65535).
pub(crate) fn mtu(value: i64) -> Result<u32, ConfigError> {
    match u32::try_from(value) {
        Ok(n @ 68..=65535) => Ok(n),
        _ => Err(ConfigError::Mtu {
            value,
            hint: if value > 0 {
                " (must be between 68 and 65535)"
            } else {
                ""
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(
            parse_ipv4_cidr("172.17.0.1/16").unwrap(),
            (Ipv4Addr::new(172, 17, 0, 1), 16)
        );
        assert_eq!(parse_ipv4_cidr("0.0.0.0/0").unwrap().1, 0);
        for bad in [
            "172.17.0.1",
            "172.17.0.1/",
            "172.17.0.1/33",
            "172.17.0.1/016",
            "172.17.0.1/+8",
            "172.17.0/16",
            "x/8",
            "",
        ] {
            assert_eq!(
                parse_ipv4_cidr(bad).unwrap_err(),
                format!("invalid CIDR address: {bad}")
            );
        }
        assert!(
            parse_ipv4_cidr("fd00::1/64")
                .unwrap_err()
                .contains("only IPv4")
        );
        let c = |s| parse_ipv4_cidr(s).unwrap();
        assert!(cidr_within(c("172.17.1.0/24"), c("172.17.0.1/16")));
        assert!(cidr_within(c("172.17.0.0/16"), c("172.17.0.1/16")));
        assert!(!cidr_within(c("172.18.0.0/24"), c("172.17.0.1/16")));
        assert!(!cidr_within(c("172.16.0.0/12"), c("172.17.0.1/16")));
        assert!(cidr_within(c("10.0.0.0/8"), c("1.2.3.4/0")));
    }

    #[test]
    fn pools_parse_and_validate() {
        assert_eq!(
            AddressPool::parse("base=10.10.0.0/16,size=24").unwrap(),
            AddressPool {
                base: "10.10.0.0/16".to_string(),
                size: 24
            }
        );
        assert_eq!(
            AddressPool::parse("SIZE=20,Base=10.0.0.0/8").unwrap().size,
            20
        );
        for (spec, want) in [
            (
                "base=10.10.0.0/16",
                "invalid default address pool base=10.10.0.0/16: size is required",
            ),
            ("size=24", "base is required"),
            ("base=10.10.0.0/16,size=x", "invalid size value: \"x\""),
            ("base=10.10.0.0/16,size=-1", "(must be integer)"),
            ("base=10.10.0.0/16,bits=24", "unexpected key 'bits'"),
            ("base", "invalid field 'base' must be a key=value pair"),
            ("base=10.10.0.0,size=24", "invalid CIDR address: 10.10.0.0"),
            (
                "base=10.10.0.0/16,size=8",
                "size 8 must be between the base's prefix length 16 and 32",
            ),
            ("base=10.10.0.0/16,size=33", "size 33 must be between"),
        ] {
            let err = AddressPool::parse(spec).unwrap_err().to_string();
            assert!(err.contains(want), "{spec}: {err}");
        }
    }

    #[test]
    fn dns_servers_and_search_domains() {
        for ok in ["1.1.1.1", "8.8.8.8 ", "2001:4860:4860::8888", "::1"] {
            validate_dns_server(ok).unwrap();
        }
        for bad in ["1.1.1.1o", "", "dns.google", "1.1.1.1:53"] {
            assert_eq!(
                validate_dns_server(bad).unwrap_err().to_string(),
                format!("{bad} is not an ip address")
            );
        }
        for ok in [
            ".",
            "example.com",
            "a.b.c",
            "example.com.",
            "x-1.test",
            "a1",
        ] {
            validate_dns_search(ok).unwrap();
        }
        let long = format!("{}.com", "a".repeat(251));
        for bad in [
            "123456",
            "",
            "-a.com",
            "a-.com",
            "a..com",
            "a_b.com",
            "ex ample.com",
            long.as_str(),
        ] {
            assert_eq!(
                validate_dns_search(bad).unwrap_err().to_string(),
                format!("{bad} is not a valid domain")
            );
        }
    }

    #[test]
    fn bridge_names_and_mtu() {
        for ok in ["berth0", "docker0", "none", "br-0123456789ab", "a.b"] {
            validate_bridge_name(ok).unwrap();
        }
        for bad in ["", "sixteen-chars-xx", "a/b", "a:b", "a b", ".", ".."] {
            let err = validate_bridge_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid value for bridge:"), "{bad}: {err}");
        }
        assert_eq!(mtu(1500).unwrap(), 1500);
        assert_eq!(mtu(68).unwrap(), 68);
        assert_eq!(mtu(65535).unwrap(), 65535);
        assert_eq!(mtu(-1).unwrap_err().to_string(), "invalid default MTU: -1");
        assert_eq!(mtu(0).unwrap_err().to_string(), "invalid default MTU: 0");
        assert_eq!(
            mtu(67).unwrap_err().to_string(),
            "invalid default MTU: 67 (must be between 68 and 65535)"
        );
        assert!(mtu(65536).is_err() && mtu(i64::MAX).is_err());
    }
}
