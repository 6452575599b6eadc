use std::fmt;
use std::path::PathBuf;

use crate::ConfigError;

/// One `-H`/`hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAddr {
    Unix(PathBuf),
    Tcp(String),
}

impl HostAddr {
    /// Parses `unix:///path`, a bare absolute path, or `tcp://host:port`.
    pub fn parse(addr: &str) -> Result<HostAddr, ConfigError> {
        let bad = |reason: &str| ConfigError::Host {
            addr: addr.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = addr.trim();
        if let Some(path) = trimmed.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad("a unix socket needs a path"));
            }
            if !path.starts_with('/') {
                return Err(bad("the unix socket path must be absolute"));
            }
            return Ok(HostAddr::Unix(PathBuf::from(path)));
        }
        if trimmed.starts_with('/') {
            return Ok(HostAddr::Unix(PathBuf::from(trimmed)));
        }
        if let Some(rest) = trimmed.strip_prefix("tcp://") {
            let hostport = rest.trim_end_matches('/');
            if hostport.contains('/') {
                return Err(bad("should not contain a path element"));
            }
            let (host, port) = hostport
                .rsplit_once(':')
                .ok_or_else(|| bad("a tcp address needs host:port"))?;
            port.parse::<u16>()
                .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
            let host = if host.is_empty() { "0.0.0.0" } else { host };
            return Ok(HostAddr::Tcp(format!("{host}:{port}")));
        }
        if trimmed.starts_with("fd://") {
            return Err(bad("socket activation (fd://) is not supported"));
        }
        Err(bad("expected unix:///path or tcp://host:port"))
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddr::Unix(p) => write!(f, "unix://{}", p.display()),
            HostAddr::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_tcp() {
        assert_eq!(
            HostAddr::parse("unix:///run/berth.sock").unwrap(),
            HostAddr::Unix("/run/berth.sock".into())
        );
        assert_eq!(
            HostAddr::parse("/tmp/x.sock").unwrap(),
            HostAddr::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            HostAddr::parse("tcp://127.0.0.1:2376").unwrap(),
            HostAddr::Tcp("127.0.0.1:2376".into())
        );
        assert_eq!(
            HostAddr::parse("tcp://:2375").unwrap(),
            HostAddr::Tcp("0.0.0.0:2375".into())
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        for a in [
            "unix://",
            "unix://relative.sock",
            "tcp://1.2.3.4:2375/path",
            "tcp://nohost",
            "fd://",
            "http://x",
        ] {
            assert!(HostAddr::parse(a).is_err(), "{a}");
        }
    }
}
