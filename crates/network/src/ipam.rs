//! Address management: IPv4 subnets, the pools new networks take their subnet from (dockerd's
//! defaults, or `default-address-pools`), and the addresses of one network (gateway, an
//! optional `--ip-range`, the addresses in use). Pure: the caller says which subnets the host
//! already routes and which addresses are taken.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::NetworkError;

/// An IPv4 subnet, `172.17.0.0/16`; the address keeps its host bits as given (`bip` is
/// `172.17.0.1/16`), [`Subnet::network`] drops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// `addr/prefix`; a prefix over 32 is an error.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet, NetworkError> {
        if prefix > 32 {
            return Err(NetworkError::InvalidSubnet(format!("{addr}/{prefix}")));
        }
        Ok(Subnet { addr, prefix })
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The subnet with its host bits cleared.
    pub fn network(&self) -> Subnet {
        Subnet {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    /// The first address (the network address).
    pub fn first(&self) -> u32 {
        u32::from(self.addr) & self.mask()
    }

    /// The last address (the broadcast address).
    pub fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// Whether `other` lies wholly inside.
    pub fn covers(&self, other: &Subnet) -> bool {
        self.first() <= other.first() && other.last() <= self.last()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetworkError;

    /// `a.b.c.d/n`; a bare address is a /32.
    fn from_str(s: &str) -> Result<Subnet, NetworkError> {
        let bad = || NetworkError::InvalidSubnet(s.to_string());
        let (a, p) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let prefix: u8 = p.trim().parse().map_err(|_| bad())?;
        Subnet::new(addr, prefix).map_err(|_| bad())
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One `default-address-pools` entry: subnets of `/size` carved from `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub base: Subnet,
    pub size: u8,
}

/// dockerd's default pools: 172.17.0.0/16 … 172.31.0.0/16 as /16s, then 192.168.0.0/16 as
/// /20s.
pub fn default_pools() -> Vec<Pool> {
    vec![
        Pool {
            base: Subnet {
                addr: Ipv4Addr::new(172, 17, 0, 0),
                prefix: 16,
            },
            size: 16,
        },
        Pool {
            base: Subnet {
                addr: Ipv4Addr::new(172, 18, 0, 0),
                prefix: 15,
            },
            size: 16,
        },
        Pool {
            base: Subnet {
                addr: Ipv4Addr::new(172, 20, 0, 0),
                prefix: 14,
            },
            size: 16,
        },
        Pool {
            base: Subnet {
                addr: Ipv4Addr::new(172, 24, 0, 0),
                prefix: 14,
            },
            size: 16,
        },
        Pool {
            base: Subnet {
                addr: Ipv4Addr::new(172, 28, 0, 0),
                prefix: 14,
            },
            size: 16,
        },
        Pool {
            base: Subnet {
                addr: Ipv4Addr::new(192, 168, 0, 0),
                prefix: 16,
            },
            size: 20,
        },
    ]
}

/// The first subnet of the pools that overlaps none of `taken` (other networks' subnets and
/// the host's routes).
pub fn next_subnet(pools: &[Pool], taken: &[Subnet]) -> Option<Subnet> {
    for pool in pools {
        if pool.size < pool.base.prefix || pool.size > 30 {
            continue;
        }
        let step = 1u64 << (32 - u32::from(pool.size));
        let mut at = u64::from(pool.base.first());
        let end = u64::from(pool.base.last());
        while at <= end {
            let candidate = Subnet {
                addr: Ipv4Addr::from(at as u32),
                prefix: pool.size,
            };
            if !taken.iter().any(|t| t.overlaps(&candidate)) {
                return Some(candidate);
            }
            at += step;
        }
    }
    None
}

/// The IPv4 routes of the host's main table (`/proc/net/route`), as (interface, subnet); the
/// default route is left out (it overlaps everything).
pub fn parse_proc_routes(text: &str) -> Vec<(String, Subnet)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        // The kernel prints each address's bytes (network order) as a native integer.
        let (dst, mask) = (Ipv4Addr::from(dst.to_ne_bytes()), mask.to_ne_bytes());
        let prefix = u32::from_be_bytes(mask).count_ones() as u8;
        if prefix == 0 {
            continue;
        }
        out.push((f[0].to_string(), Subnet { addr: dst, prefix }));
    }
    out
}

/// The host's routes now, as (interface, subnet) (an unreadable table is no routes).
pub fn host_routes() -> Vec<(String, Subnet)> {
    std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_proc_routes(&t))
        .unwrap_or_default()
}

/// The addresses of one network: its subnet, gateway, the range containers take addresses
/// from, and the addresses in use.
#[derive(Debug, Clone)]
pub struct AddressSpace {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub range: Subnet,
}

impl AddressSpace {
    /// A network's space: `gateway` defaults to the subnet's first host address; `range`
    /// (`--ip-range`, `fixed-cidr`) must lie inside the subnet, and the gateway too.
    pub fn new(
        subnet: Subnet,
        gateway: Option<Ipv4Addr>,
        range: Option<Subnet>,
    ) -> Result<AddressSpace, NetworkError> {
        let subnet = subnet.network();
        if subnet.prefix > 30 {
            return Err(NetworkError::InvalidSubnet(format!(
                "{subnet}: too small for a network"
            )));
        }
        let gateway = gateway.unwrap_or(Ipv4Addr::from(subnet.first() + 1));
        if !subnet.contains(gateway) {
            return Err(NetworkError::InvalidSubnet(format!(
                "no matching subnet for gateway {gateway}"
            )));
        }
        let range = match range {
            Some(r) => {
                let r = r.network();
                if !subnet.covers(&r) {
                    return Err(NetworkError::InvalidSubnet(format!(
                        "no matching subnet for range {r}"
                    )));
                }
                r
            }
            None => subnet,
        };
        Ok(AddressSpace {
            subnet,
            gateway,
            range,
        })
    }

    /// Whether a container may take `ip` (`--ip`): inside the subnet, not the network,
    /// broadcast or gateway address.
    pub fn check_requested(&self, ip: Ipv4Addr) -> Result<(), NetworkError> {
        let n = u32::from(ip);
        if !self.subnet.contains(ip) {
            return Err(NetworkError::AddressOutside {
                ip,
                subnet: self.subnet,
            });
        }
        if n == self.subnet.first() || n == self.subnet.last() || ip == self.gateway {
            return Err(NetworkError::AddressInUse(ip));
        }
        Ok(())
    }

    /// The first free address of the range (network, broadcast and gateway excluded), after
    /// `used`.
    pub fn allocate(&self, used: &dyn Fn(Ipv4Addr) -> bool) -> Option<Ipv4Addr> {
        let lo = self.range.first().max(self.subnet.first() + 1);
        let hi = self.range.last().min(self.subnet.last() - 1);
        (lo..=hi)
            .map(Ipv4Addr::from)
            .find(|ip| *ip != self.gateway && !used(*ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> Subnet {
        t.parse().unwrap()
    }

    #[test]
    fn subnets_parse_contain_and_overlap() {
        let a = s("172.17.0.1/16");
        assert_eq!(a.network().to_string(), "172.17.0.0/16");
        assert!(a.contains("172.17.255.254".parse().unwrap()));
        assert!(!a.contains("172.18.0.1".parse().unwrap()));
        assert!(a.overlaps(&s("172.17.3.0/24")));
        assert!(!a.overlaps(&s("172.18.0.0/16")));
        assert!(s("172.30.1.0/24").overlaps(&s("172.30.1.128/25")));
        assert!(s("10.0.0.0/8").covers(&s("10.1.0.0/16")));
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("x/8".parse::<Subnet>().is_err());
        assert_eq!(s("10.0.0.5").prefix, 32);
    }

    #[test]
    fn pools_skip_what_is_taken() {
        let pools = default_pools();
        assert_eq!(next_subnet(&pools, &[]).unwrap(), s("172.17.0.0/16"));
        let taken = [s("172.17.0.0/16"), s("172.18.5.0/24")];
        assert_eq!(next_subnet(&pools, &taken).unwrap(), s("172.19.0.0/16"));
        let all16: Vec<Subnet> = (17..=31).map(|b| s(&format!("172.{b}.0.0/16"))).collect();
        assert_eq!(next_subnet(&pools, &all16).unwrap(), s("192.168.0.0/20"));
        let custom = [Pool {
            base: s("10.10.0.0/16"),
            size: 24,
        }];
        assert_eq!(
            next_subnet(&custom, &[s("10.10.0.0/24")]).unwrap(),
            s("10.10.1.0/24")
        );
        assert_eq!(next_subnet(&custom, &[s("10.0.0.0/8")]), None);
    }

    #[test]
    fn proc_routes_are_read_in_network_order() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(
            parse_proc_routes(text),
            vec![
                ("eth0".to_string(), s("192.168.2.0/24")),
                ("docker0".to_string(), s("172.17.0.0/16"))
            ]
        );
    }

    #[test]
    fn addresses_are_allocated_in_order_around_the_gateway() {
        let space = AddressSpace::new(s("172.30.1.0/24"), None, None).unwrap();
        assert_eq!(space.gateway, Ipv4Addr::new(172, 30, 1, 1));
        let used = |ip: Ipv4Addr| ip == Ipv4Addr::new(172, 30, 1, 2);
        assert_eq!(space.allocate(&used), Some(Ipv4Addr::new(172, 30, 1, 3)));
        assert!(space.check_requested(Ipv4Addr::new(172, 30, 1, 50)).is_ok());
        assert!(matches!(
            space.check_requested(Ipv4Addr::new(172, 30, 9, 9)),
            Err(NetworkError::AddressOutside { .. })
        ));
        assert!(space.check_requested(space.gateway).is_err());
        let ranged = AddressSpace::new(
            s("10.5.0.0/16"),
            Some(Ipv4Addr::new(10, 5, 0, 254)),
            Some(s("10.5.7.0/24")),
        )
        .unwrap();
        assert_eq!(
            ranged.allocate(&|_| false),
            Some(Ipv4Addr::new(10, 5, 7, 0))
        );
        assert!(AddressSpace::new(s("10.5.0.0/16"), None, Some(s("10.6.0.0/24"))).is_err());
        assert!(
            AddressSpace::new(s("10.5.0.0/16"), Some(Ipv4Addr::new(10, 9, 0, 1)), None).is_err()
        );
        let tiny = AddressSpace::new(s("10.0.0.0/30"), None, None).unwrap();
        assert_eq!(tiny.allocate(&|_| false), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(tiny.allocate(&|ip| ip == Ipv4Addr::new(10, 0, 0, 2)), None);
    }
}
