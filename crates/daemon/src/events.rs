//! `docker events`: what happened to containers, images and the daemon, kept in an in-memory
//! ring of the recent past (dockerd keeps 256) and broadcast to every subscriber.
//!
//! A subscriber gets the past it asked for (`since`/`until`) and then the live stream, with no
//! gap and no duplicate: both are taken under the ring's lock.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

/// How many events the ring keeps, as dockerd.
pub const RING_SIZE: usize = 256;

/// One event, in Docker's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `container`, `image` or `daemon`.
    pub kind: &'static str,
    pub action: String,
    pub actor_id: String,
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
}

impl Event {
    pub fn new(
        kind: &'static str,
        action: impl Into<String>,
        actor_id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        let time_nano = now_nanos();
        Event {
            kind,
            action: action.into(),
            actor_id: actor_id.into(),
            attributes,
            time_nano,
        }
    }
}

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The ring and the live broadcast.
#[derive(Debug)]
pub struct Events {
    ring: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            ring: Mutex::new(VecDeque::with_capacity(RING_SIZE)),
            live: broadcast::channel(1024).0,
        }
    }
}

impl Events {
    /// Records an event and hands it to every subscriber.
    pub fn log(&self, ev: Event) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == RING_SIZE {
            ring.pop_front();
        }
        ring.push_back(ev.clone());
        // No subscriber is not an error.
        let _ = self.live.send(ev);
    }

    /// The kept events between `since` and `until` (nanoseconds; `None` is open), and a
    /// receiver of everything logged after them. Without either bound no past is replayed,
    /// as dockerd.
    pub fn subscribe(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let past = if since.is_none() && until.is_none() {
            Vec::new()
        } else {
            ring.iter()
                .filter(|e| since.is_none_or(|s| e.time_nano >= s))
                .filter(|e| until.is_none_or(|u| e.time_nano <= u))
                .cloned()
                .collect()
        };
        (past, self.live.subscribe())
    }
}

/// `docker events --filter`: keys with the values any of which must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub filters: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// Refuses keys dockerd does not know for events.
    pub fn new(filters: BTreeMap<String, Vec<String>>) -> Result<EventFilter, String> {
        const KNOWN: &[&str] = &[
            "config",
            "container",
            "daemon",
            "event",
            "image",
            "label",
            "network",
            "node",
            "plugin",
            "scope",
            "secret",
            "service",
            "type",
            "volume",
        ];
        if let Some(k) = filters.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!("invalid filter '{k}'"));
        }
        Ok(EventFilter { filters })
    }

    fn any(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        match self.filters.get(key) {
            None => true,
            Some(vals) if vals.is_empty() => true,
            Some(vals) => vals.iter().any(|v| pred(v)),
        }
    }

    /// Whether `ev` passes every filter.
    pub fn matches(&self, ev: &Event) -> bool {
        let attr = |k: &str| ev.attributes.get(k).map(String::as_str);
        let fuzzy_event = self.filters.get("event").is_some_and(|vals| {
            vals.iter()
                .any(|v| matches!(v.as_str(), "exec_create" | "exec_start" | "health_status"))
        });
        self.any("type", |v| v == ev.kind)
            && self.any("scope", |v| v == "local")
            && self.any("event", |v| {
                if fuzzy_event {
                    ev.action == v || ev.action.starts_with(&format!("{v}:"))
                } else {
                    ev.action == v
                }
            })
            && self.any("container", |v| {
                ev.kind == "container"
                    && (ev.actor_id.starts_with(v)
                        || attr("name").is_some_and(|n| n.starts_with(v)))
            })
            && self.any("image", |v| {
                let name = attr(if ev.kind == "image" { "name" } else { "image" }).unwrap_or("");
                [ev.actor_id.as_str(), name]
                    .iter()
                    .any(|s| *s == v || strip_tag(s) == v)
            })
            && self.any("daemon", |v| {
                ev.kind == "daemon" && (ev.actor_id == v || attr("name") == Some(v))
            })
            && self.any("network", |v| {
                ev.kind == "network" && (ev.actor_id.starts_with(v) || attr("name") == Some(v))
            })
            && self.any("volume", |v| ev.kind == "volume" && ev.actor_id == v)
            && self.any("label", |v| match v.split_once('=') {
                Some((k, val)) => attr(k) == Some(val),
                None => ev.attributes.contains_key(v),
            })
            && ["config", "node", "plugin", "secret", "service"]
                .iter()
                .all(|k| self.filters.get(*k).is_none_or(|v| v.is_empty()))
    }
}

/// `busybox:1` → `busybox` (a registry port is not a tag).
fn strip_tag(s: &str) -> &str {
    match s.rfind(':') {
        _ if s.starts_with("sha256:") => s,
        Some(i) if !s[i..].contains('/') && !s.contains('@') => &s[..i],
        _ => s,
    }
}

/// A timestamp as the API takes it: `secs[.nanos]` (what the docker CLI sends); nanoseconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{frac:0<9}").parse().ok()?
    };
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &'static str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event::new(
            kind,
            action,
            id,
            attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn ring_keeps_the_recent_past_only() {
        let events = Events::default();
        for i in 0..RING_SIZE + 10 {
            events.log(ev("container", "start", &i.to_string(), &[]));
        }
        let (past, _) = events.subscribe(Some(0), None);
        assert_eq!(past.len(), RING_SIZE);
        assert_eq!(past[0].actor_id, "10");
        let (none, _) = events.subscribe(None, None);
        assert!(none.is_empty(), "no bounds, no replay");
    }

    #[test]
    fn since_and_until_bound_the_replay() {
        let events = Events::default();
        let mut a = ev("container", "create", "a", &[]);
        a.time_nano = 100;
        let mut b = ev("container", "start", "a", &[]);
        b.time_nano = 200;
        let mut c = ev("container", "die", "a", &[]);
        c.time_nano = 300;
        for e in [a, b, c] {
            events.log(e);
        }
        let actions = |since, until| -> Vec<String> {
            events
                .subscribe(since, until)
                .0
                .into_iter()
                .map(|e| e.action)
                .collect()
        };
        assert_eq!(actions(Some(150), None), ["start", "die"]);
        assert_eq!(actions(Some(100), Some(200)), ["create", "start"]);
        assert_eq!(actions(None, Some(250)), ["create", "start"]);
    }

    #[tokio::test]
    async fn subscribers_see_what_is_logged_after() {
        let events = Events::default();
        let (_, mut rx) = events.subscribe(None, None);
        events.log(ev("image", "tag", "sha256:x", &[("name", "a:b")]));
        assert_eq!(rx.recv().await.unwrap().action, "tag");
    }

    #[test]
    fn filters_match_as_dockerd() {
        let f = |pairs: &[(&str, &[&str])]| {
            EventFilter::new(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                    .collect(),
            )
            .unwrap()
        };
        let start = ev(
            "container",
            "start",
            "abcdef0123456789",
            &[("name", "web"), ("image", "busybox"), ("tier", "front")],
        );
        let exec = ev(
            "container",
            "exec_create: sh -c true",
            "abcdef0123456789",
            &[("name", "web")],
        );
        let tag = ev("image", "tag", "sha256:1", &[("name", "busybox:2")]);
        assert!(f(&[]).matches(&start));
        assert!(f(&[("container", &["web"])]).matches(&start));
        assert!(f(&[("container", &["abcdef0123456789"])]).matches(&start));
        assert!(!f(&[("container", &["db"])]).matches(&start));
        assert!(!f(&[("container", &["web"])]).matches(&tag));
        assert!(f(&[("type", &["image"])]).matches(&tag));
        assert!(f(&[("event", &["start", "die"])]).matches(&start));
        assert!(!f(&[("event", &["die"])]).matches(&start));
        assert!(f(&[("event", &["exec_create"])]).matches(&exec));
        assert!(!f(&[("event", &["exec"])]).matches(&exec));
        assert!(f(&[("image", &["busybox"])]).matches(&start));
        assert!(f(&[("image", &["busybox:2"])]).matches(&tag));
        assert!(f(&[("label", &["tier=front"])]).matches(&start));
        assert!(f(&[("label", &["tier"])]).matches(&start));
        assert!(!f(&[("label", &["tier=back"])]).matches(&start));
        assert!(!f(&[("volume", &["v"])]).matches(&start));
        assert!(EventFilter::new([("nope".to_string(), vec![])].into()).is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("12"), Some(12_000_000_000));
        assert_eq!(parse_timestamp("12.5"), Some(12_500_000_000));
        assert_eq!(parse_timestamp("1.000000001"), Some(1_000_000_001));
        assert_eq!(parse_timestamp("x"), None);
        assert_eq!(parse_timestamp("1.x"), None);
    }
}
