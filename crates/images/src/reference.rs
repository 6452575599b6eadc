use std::fmt;

use crate::ImageError;

const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_PREFIX: &str = "library/";

/// A normalised image reference: `docker.io/library/busybox:latest`. Displayed in Docker's
/// familiar form (`busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalises a reference. A reference with neither tag nor digest gets
    /// `latest` when `default_tag` is true.
    pub fn parse_with(s: &str, default_tag: bool) -> Result<Reference, ImageError> {
        let bad = |reason: &str| ImageError::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() || s.len() > 255 + 128 + 72 {
            return Err(bad("invalid reference format"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("invalid reference format"))?;
                if hex.len() != 64
                    || !hex
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                {
                    return Err(bad("invalid reference format"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag follows the last ':' after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(bad("invalid reference format"));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let path = if domain == DEFAULT_DOMAIN && !path.is_empty() && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad(&format!("repository name ({path}) must be lowercase")));
        }
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(bad("invalid reference format"));
        }
        if !valid_domain(&domain) {
            return Err(bad("invalid reference format"));
        }
        let tag = match (tag, &digest) {
            (None, None) if default_tag => Some("latest".to_string()),
            (t, _) => t,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `parse_with(s, true)`.
    pub fn parse(s: &str) -> Result<Reference, ImageError> {
        Reference::parse_with(s, true)
    }

    /// The repository, familiar: `busybox`, `acc/busybox`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .unwrap_or(&self.path)
                .to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    /// The familiar form: `busybox:latest`, `acc/x@sha256:...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar_name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ separated by '.', '_', '__' or runs of '-'.
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|ch| ch == '-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let r = Reference::parse(s).unwrap();
        format!("{}:{}", r.full_name(), r.tag.clone().unwrap_or_default())
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("acc/busybox:1"), "docker.io/acc/busybox:1");
        assert_eq!(norm("localhost:5000/x/y:t"), "localhost:5000/x/y:t");
        assert_eq!(norm("quay.io/a/b"), "quay.io/a/b:latest");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(
            Reference::parse("busybox").unwrap().to_string(),
            "busybox:latest"
        );
        assert_eq!(
            Reference::parse("docker.io/library/busybox:1")
                .unwrap()
                .to_string(),
            "busybox:1"
        );
        assert_eq!(
            Reference::parse("localhost:5000/x").unwrap().to_string(),
            "localhost:5000/x:latest"
        );
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        let r = Reference::parse(&format!("busybox:1@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
    }

    #[test]
    fn rejects_invalid_references() {
        for s in [
            "",
            "UPPER",
            "a//b",
            "a:",
            "a:-x",
            "-a",
            "a@sha256:short",
            "a b",
            "a/:t",
            "a__-b",
        ] {
            assert!(Reference::parse(s).is_err(), "{s:?} should be invalid");
        }
        let e = Reference::parse("Foo").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid reference format: repository name (library/Foo) must be lowercase"
        );
    }

    #[test]
    fn components() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "a1"] {
            assert!(valid_component(ok), "{ok}");
        }
        for bad in ["a.", ".a", "a..b", "a___b", "a-.b"] {
            assert!(!valid_component(bad), "{bad}");
        }
    }
}
