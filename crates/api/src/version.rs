use std::fmt;

/// The newest API version berth speaks.
pub const MAX_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 47,
};
/// `MAX_API_VERSION` as text, for headers (a unit test keeps the two equal).
pub(crate) const MAX_API_VERSION_TEXT: &str = "1.47";
/// The oldest API version berth accepts.
pub const MIN_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 24,
};

/// A Docker API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (major, minor) = s.split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What a request path says about the API version.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PathVersion<'a> {
    /// No `/vN.M` prefix: the request is served at the newest version.
    Unversioned,
    /// A prefix with a usable version, and the path after it.
    Versioned(ApiVersion, &'a str),
    /// A prefix with a version outside what berth supports (the message is dockerd's).
    Unsupported(String),
    /// Something that looks like a prefix but is not a version: no such page.
    Malformed,
}

/// Splits `/v1.41/containers/json` into its version and the rest.
pub(crate) fn split_version(path: &str) -> PathVersion<'_> {
    let Some(rest) = path.strip_prefix("/v") else {
        return PathVersion::Unversioned;
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (ver, tail) = rest.split_at(end);
    if ver.is_empty() || !ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
        // `/volumes`, `/version`: not a version prefix at all.
        return if ver.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            PathVersion::Malformed
        } else {
            PathVersion::Unversioned
        };
    }
    let Some(v) = ApiVersion::parse(ver) else {
        return PathVersion::Malformed;
    };
    if v > MAX_API_VERSION {
        return PathVersion::Unsupported(format!(
            "client version {ver} is too new. Maximum supported API version is {MAX_API_VERSION}"
        ));
    }
    if v < MIN_API_VERSION {
        return PathVersion::Unsupported(format!(
            "client version {ver} is too old. Minimum supported API version is \
             {MIN_API_VERSION}, please upgrade your client to a newer version"
        ));
    }
    PathVersion::Versioned(v, if tail.is_empty() { "/" } else { tail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        let a = ApiVersion::parse("1.9").unwrap();
        let b = ApiVersion::parse("1.41").unwrap();
        assert!(a < b, "1.9 < 1.41 numerically");
        assert_eq!(b.to_string(), "1.41");
        assert!(ApiVersion::parse("1").is_none() && ApiVersion::parse("a.b").is_none());
        assert!(
            MAX_API_VERSION
                >= ApiVersion {
                    major: 1,
                    minor: 44
                }
        );
        assert_eq!(MAX_API_VERSION_TEXT, MAX_API_VERSION.to_string());
    }

    #[test]
    fn splits_prefixes() {
        assert_eq!(split_version("/_ping"), PathVersion::Unversioned);
        assert_eq!(split_version("/version"), PathVersion::Unversioned);
        assert_eq!(split_version("/volumes/x"), PathVersion::Unversioned);
        assert_eq!(
            split_version("/v1.41/containers/json"),
            PathVersion::Versioned(
                ApiVersion {
                    major: 1,
                    minor: 41
                },
                "/containers/json"
            )
        );
        assert_eq!(
            split_version("/v1.24/_ping"),
            PathVersion::Versioned(MIN_API_VERSION, "/_ping")
        );
        assert_eq!(split_version("/v1.4.1/info"), PathVersion::Malformed);
        assert_eq!(split_version("/v1/info"), PathVersion::Malformed);
    }

    #[test]
    fn refuses_versions_outside_the_range() {
        assert_eq!(
            split_version("/v1.99/info"),
            PathVersion::Unsupported(
                "client version 1.99 is too new. Maximum supported API version is 1.47".into()
            )
        );
        let PathVersion::Unsupported(msg) = split_version("/v1.12/info") else {
            panic!()
        };
        assert!(
            msg.starts_with(
                "client version 1.12 is too old. Minimum supported API version is 1.24"
            )
        );
    }
}
