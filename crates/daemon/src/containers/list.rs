//! `docker ps` and the data behind inspect.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Container, Record};
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
}

const FILTERS: &[&str] = &[
    "id", "name", "status", "label", "ancestor", "exited", "before", "since",
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

    /// `docker ps`.
    pub fn container_list(&self, o: &ListOptions) -> Result<Vec<Summary>, DaemonError> {
        if let Some(k) = o.filters.keys().find(|k| !FILTERS.contains(&k.as_str())) {
            return Err(DaemonError::InvalidParameter(format!(
                "invalid filter '{k}'"
            )));
        }
        let values = |k: &str| o.filters.get(k).cloned().unwrap_or_default();
        let ancestors: Vec<String> = values("ancestor")
            .iter()
            .filter_map(|a| self.image_resolve(a).ok())
            .collect();
        if !values("ancestor").is_empty() && ancestors.is_empty() {
            return Ok(Vec::new());
        }
        let mut out: Vec<Summary> = self
            .containers
            .all()
            .iter()
            .map(|c| c.record())
            .filter(|r| {
                let s = &r.state;
                let status_filter = values("status");
                (o.all || s.running || !status_filter.is_empty())
                    && (status_filter.is_empty()
                        || status_filter.iter().any(|f| f == s.status.as_str()))
                    && values("id").iter().all(|p| r.id.starts_with(p.as_str()))
                    && values("name").iter().all(|p| {
                        matches_pattern(p, &format!("/{}", r.name)) || matches_pattern(p, &r.name)
                    })
                    && values("label").iter().all(|l| match l.split_once('=') {
                        Some((k, v)) => r.config.labels.get(k).is_some_and(|x| x == v),
                        None => r.config.labels.contains_key(l),
                    })
                    && (ancestors.is_empty() || ancestors.contains(&r.image))
                    && values("exited").iter().all(|e| {
                        !s.running
                            && r.has_been_started
                            && e.parse::<i64>().is_ok_and(|n| n == s.exit_code)
                    })
            })
            .map(|record| Summary {
                image_name: record.config.image.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_patterns() {
        assert!(matches_pattern("s1", "/s1"));
        assert!(matches_pattern("^/s1$", "/s1"));
        assert!(!matches_pattern("^/s1$", "/s10"));
        assert!(!matches_pattern("x", "/s1"));
    }
}
