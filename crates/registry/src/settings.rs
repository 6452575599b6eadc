use std::net::IpAddr;
use std::path::PathBuf;

/// What the daemon's configuration says about registries (dockerd's keys and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `insecure-registries`: CIDRs, `host[:port]`s, host names. 127.0.0.0/8 always is.
    pub insecure: Vec<String>,
    /// `registry-mirrors`: base URLs tried first for Docker Hub.
    pub mirrors: Vec<String>,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    pub max_download_attempts: u32,
    /// Folders of per-registry TLS files, `<dir>/<host[:port]>/`: `*.crt` CAs, and
    /// `client.cert` with `client.key`. dockerd's `/etc/docker/certs.d`, then berth's own.
    pub certs_dirs: Vec<PathBuf>,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            insecure: Vec::new(),
            mirrors: Vec::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            max_download_attempts: 5,
            certs_dirs: vec![
                PathBuf::from("/etc/docker/certs.d"),
                PathBuf::from("/etc/berth/certs.d"),
            ],
        }
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl RegistrySettings {
    /// Whether `host` (`host[:port]`) is a loopback address (127.0.0.0/8, `::1`): spoken to
    /// over plain HTTP at once, as before berth had TLS (a name, `localhost` too, tries
    /// HTTPS first).
    pub fn is_loopback_address(&self, host: &str) -> bool {
        let name = match host.rsplit_once(':') {
            Some((h, port)) if !h.ends_with(':') && port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether `host` (`host[:port]`) is spoken to over plain HTTP: loopback (127.0.0.0/8,
    /// `::1`, `localhost`) as in dockerd, and what `insecure-registries` names.
    pub fn is_insecure(&self, host: &str) -> bool {
        if self.insecure.iter().any(|i| i == host) {
            return true;
        }
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if name == "localhost" || self.insecure.iter().any(|i| i == name) {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => {
                ip.is_loopback()
                    || self
                        .insecure
                        .iter()
                        .any(|c| in_cidr(ip, c) || c.parse::<IpAddr>() == Ok(ip))
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_are_insecure() {
        let s = RegistrySettings {
            insecure: vec![
                "10.1.0.0/16".into(),
                "reg.test:5000".into(),
                "plain.test".into(),
            ],
            ..Default::default()
        };
        for h in [
            "127.0.0.1:5000",
            "127.3.4.5",
            "localhost:5000",
            "10.1.2.3:443",
            "reg.test:5000",
            "plain.test:8080",
            "[::1]:5000",
        ] {
            assert!(s.is_insecure(h), "{h}");
        }
        for h in [
            "10.2.0.1",
            "reg.test:5001",
            "registry-1.docker.io",
            "example.com",
        ] {
            assert!(!s.is_insecure(h), "{h}");
        }
        for h in ["127.0.0.1:5000", "127.3.4.5", "[::1]:5000", "::1"] {
            assert!(s.is_loopback_address(h), "{h}");
        }
        for h in ["localhost:5000", "10.1.2.3:443", "example.com"] {
            assert!(!s.is_loopback_address(h), "{h}");
        }
    }
}
