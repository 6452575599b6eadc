//! `docker ps` and the data behind inspect.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Container, Record, Status};
use crate::{Daemon, DaemonError};

/// What `docker ps` asks for.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub filters: BTreeMap<String, Vec<String>>,
}

/// A container as `docker ps` lists it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub record: Record,
    /// The image as the container was created from it (name or ID).
    pub image_name: String,
    pub mounts: Vec<berth_model::MountPoint>,
}

const FILTERS: &[&str] = &[
    "id", "name", "status", "label", "ancestor", "exited", "before", "since", "network", "publish",
    "expose", "health", "volume",
];

/// The values a `health` filter may take: a health status, or `none` (no healthcheck).
const HEALTH: &[&str] = &["starting", "healthy", "unhealthy", "none"];

/// A container's health as the `health` filter sees it.
fn health_of(r: &Record) -> &'static str {
    r.state.health().map_or("none", |h| h.status().as_str())
}

/// A `publish`/`expose` filter value (`80`, `80/udp`, `8000-8010/tcp`) against a port key
/// (`80/tcp`).
fn port_matches(filter: &str, key: &str) -> bool {
    let (fp, fproto) = filter.split_once('/').unwrap_or((filter, "tcp"));
    let (kp, kproto) = key.split_once('/').unwrap_or((key, "tcp"));
    if !fproto.eq_ignore_ascii_case(kproto) {
        return false;
    }
    let Ok(port) = kp.parse::<u16>() else {
        return false;
    };
    let (lo, hi) = fp.split_once('-').unwrap_or((fp, fp));
    matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if lo <= port && port <= hi)
}

/// The values a `status` filter may take.
const STATUSES: &[Status] = &[
    Status::Created,
    Status::Running,
    Status::Paused,
    Status::Restarting,
    Status::Removing,
    Status::Exited,
    Status::Dead,
];

/// `^`/`$` anchored or plain substring matching, which is what name filters use in practice.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    let (start, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    match (start, end) {
        (true, true) => text == p,
        (true, false) => text.starts_with(p),
        (false, true) => text.ends_with(p),
        (false, false) => text.contains(p),
    }
}

impl Daemon {
    pub fn container_get(&self, name: &str) -> Result<Arc<Container>, DaemonError> {
        self.containers.get(name)
    }

    /// Whether any container was created from image `id`.
    pub(crate) fn containers_using_image(&self, id: &str) -> bool {
        self.containers.all().iter().any(|c| c.record().image == id)
    }

    /// `docker ps`. Several values of one filter are alternatives (any may match), except
    /// `label`, `before` and `since`, which must all hold; a bad value is a 400 and a
    /// `before`/`since` naming no container a 404, as in dockerd.
    pub fn container_list(&self, o: &ListOptions) -> Result<Vec<Summary>, DaemonError> {
        if let Some(k) = o.filters.keys().find(|k| !FILTERS.contains(&k.as_str())) {
            return Err(DaemonError::InvalidParameter(format!(
                "invalid filter '{k}'"
            )));
        }
        let values = |k: &str| o.filters.get(k).map(Vec::as_slice).unwrap_or(&[]);
        let exited = values("exited")
            .iter()
            .map(|v| {
                go_atoi(v).map_err(|why| {
                    DaemonError::InvalidParameter(format!(
                        "invalid filter 'exited={v}': strconv.Atoi: parsing {v:?}: {why}"
                    ))
                })
            })
            .collect::<Result<Vec<i64>, _>>()?;
        let statuses = values("status");
        if let Some(bad) = statuses
            .iter()
            .find(|s| !STATUSES.iter().any(|x| x.as_str() == *s))
        {
            return Err(DaemonError::InvalidParameter(format!(
                "invalid filter 'status={bad}'"
            )));
        }
        if let Some(bad) = values("health")
            .iter()
            .find(|h| !HEALTH.contains(&h.as_str()))
        {
            return Err(DaemonError::InvalidParameter(format!(
                "Unrecognised filter value for health: {bad}"
            )));
        }
        let created = |name: &str| self.containers.get(name).map(|c| c.record().created);
        let before = values("before")
            .iter()
            .map(|n| created(n))
            .collect::<Result<Vec<_>, _>>()?;
        let since = values("since")
            .iter()
            .map(|n| created(n))
            .collect::<Result<Vec<_>, _>>()?;
        let ancestors: Vec<String> = values("ancestor")
            .iter()
            .filter_map(|a| self.image_resolve(a).ok())
            .collect();
        if !values("ancestor").is_empty() && ancestors.is_empty() {
            return Ok(Vec::new());
        }
        // Any value may match; no values, no filter.
        let any = |key: &str, matches: &dyn Fn(&str) -> bool| {
            let v = values(key);
            v.is_empty() || v.iter().any(|p| matches(p))
        };
        let mut out: Vec<Summary> = self
            .containers
            .all()
            .iter()
            .map(|c| c.record())
            .filter(|r| {
                let s = &r.state;
                (o.all || s.running() || !statuses.is_empty() || o.limit.is_some_and(|n| n > 0))
                    && any("status", &|f| f == s.status().as_str())
                    && any("health", &|f| f == health_of(r))
                    && any("id", &|p| r.id.starts_with(p))
                    && any("name", &|p| {
                        matches_pattern(p, &format!("/{}", r.name)) || matches_pattern(p, &r.name)
                    })
                    && values("label").iter().all(|l| match l.split_once('=') {
                        Some((k, v)) => r.config.labels.get(k).is_some_and(|x| x == v),
                        None => r.config.labels.contains_key(l),
                    })
                    && (ancestors.is_empty() || ancestors.contains(&r.image))
                    && (exited.is_empty()
                        || (!s.running() && r.has_been_started && exited.contains(&s.exit_code())))
                    && any("network", &|n| {
                        r.network_settings.networks.iter().any(|(name, e)| {
                            name == n || (!n.is_empty() && e.network_id.starts_with(n))
                        })
                    })
                    && any("publish", &|p| {
                        // The container's port, as dockerd matches it.
                        r.host_config
                            .port_bindings
                            .keys()
                            .chain(
                                r.network_settings
                                    .ports
                                    .iter()
                                    .filter(|(_, v)| v.is_some())
                                    .map(|(k, _)| k),
                            )
                            .any(|k| port_matches(p, k))
                    })
                    && any("expose", &|p| {
                        r.config
                            .exposed_ports
                            .iter()
                            .flat_map(|m| m.keys())
                            .any(|k| port_matches(p, k))
                    })
                    && any("volume", &|v| {
                        // A volume's name, or a mount's destination, as dockerd matches it.
                        super::mounts::record_mounts(r)
                            .iter()
                            .any(|m| m.name == v || m.destination == v)
                    })
                    && before.iter().all(|t| r.created < *t)
                    && since.iter().all(|t| r.created > *t)
            })
            .map(|record| Summary {
                image_name: record.config.image.clone(),
                mounts: super::inspect::mount_points(&record),
                record,
            })
            .collect();
        out.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        if let Some(n) = o.limit.filter(|n| *n > 0) {
            out.truncate(n);
        }
        Ok(out)
    }
}

/// Go's `strconv.Atoi` on a 64-bit machine, with its reason when it refuses.
fn go_atoi(v: &str) -> Result<i64, &'static str> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    v.parse().map_err(|_| "value out of range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_filters_match_ports_ranges_and_protocols() {
        assert!(port_matches("80", "80/tcp"));
        assert!(port_matches("80/tcp", "80/tcp"));
        assert!(!port_matches("80/udp", "80/tcp"));
        assert!(port_matches("8000-8010/udp", "8005/udp"));
        assert!(!port_matches("8000-8010", "8011/tcp"));
        assert!(!port_matches("x", "80/tcp"));
    }

    #[test]
    fn exit_codes_parse_as_go_does() {
        assert_eq!(go_atoi("0"), Ok(0));
        assert_eq!(go_atoi("-1"), Ok(-1));
        assert_eq!(go_atoi("+3"), Ok(3));
        assert_eq!(go_atoi("abc"), Err("invalid syntax"));
        assert_eq!(go_atoi(""), Err("invalid syntax"));
        assert_eq!(go_atoi("1 "), Err("invalid syntax"));
        assert_eq!(go_atoi("99999999999999999999"), Err("value out of range"));
    }

    #[test]
    fn name_patterns() {
        assert!(matches_pattern("s1", "/s1"));
        assert!(matches_pattern("^/s1$", "/s1"));
        assert!(!matches_pattern("^/s1$", "/s10"));
        assert!(!matches_pattern("x", "/s1"));
    }
}
