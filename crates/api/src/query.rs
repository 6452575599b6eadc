//! Docker's query strings: repeated keys (`changes=a&changes=b`), booleans as `1`/`true`,
//! and `filters` as JSON.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::ApiError;

/// Every `key=value` pair of the query string, in order.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: &str) -> Result<Query, ApiError> {
        serde_urlencoded::from_str(query)
            .map(Query)
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's `BoolValue`: absent, "", "0", "no", "false" and "none" are false.
    pub fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }

    /// A terminal size from `h` and `w`, both required, as dockerd reads them: an unsigned
    /// 32-bit number, or a 400 saying why not (`invalid resize height "abc": invalid
    /// syntax`, `... "-1": value out of range`).
    pub fn resize_dims(&self) -> Result<(u32, u32), ApiError> {
        let dim = |key: &str, what: &str| {
            let raw = self.get(key).unwrap_or("");
            let (digits, negative) = match raw.strip_prefix('-') {
                Some(d) => (d, true),
                None => (raw, false),
            };
            let reason = if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                "invalid syntax"
            } else {
                match digits.parse::<u32>() {
                    Ok(n) if !negative => return Ok(n),
                    // `-0` is out of range too: dockerd refuses any minus sign on a number.
                    _ => "value out of range",
                }
            };
            Err(ApiError::bad_request(format!(
                "invalid resize {what} {raw:?}: {reason}"
            )))
        };
        Ok((dim("h", "height")?, dim("w", "width")?))
    }

    /// Stop and restart timeouts: `t` (or `timeout`) in seconds, absent or empty for the
    /// container's own.
    pub fn timeout(&self) -> Result<Option<i64>, ApiError> {
        match self.get("t").or(self.get("timeout")) {
            None | Some("") => Ok(None),
            Some(t) => t
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t:?}"))),
        }
    }

    /// A point in time (`since`, `until` of logs): Unix seconds with an optional fraction
    /// (`1700000000.123`) or RFC 3339; absent, empty or `0` for none.
    pub fn time(&self, key: &str) -> Result<Option<SystemTime>, ApiError> {
        let Some(s) = self.get(key).filter(|s| !s.is_empty() && *s != "0") else {
            return Ok(None);
        };
        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
        if !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && frac.len() <= 9
            && frac.bytes().all(|b| b.is_ascii_digit())
            && let (Ok(secs), Ok(nanos)) =
                (secs.parse::<u64>(), format!("{frac:0<9}").parse::<u32>())
        {
            return Ok(Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)));
        }
        humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid time: {s:?}")))
    }

    /// A `since`/`until` of `docker events`, in nanoseconds since the epoch.
    pub fn event_time(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => berth_daemon::events::parse_timestamp(s)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::bad_request(format!("failed to parse value {s} as a time for {key}"))
                }),
        }
    }

    /// `filters={"name":{"x":true}}` or the older `{"name":["x"]}`.
    pub fn filters(&self) -> Result<Filters, ApiError> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(Filters::default());
        };
        let bad = |e: String| ApiError::bad_request(format!("invalid filter: {e}"));
        let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        let obj = v.as_object().ok_or_else(|| bad("not an object".into()))?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let values: Vec<String> = match v {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, b)| b.as_bool() != Some(false))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
                _ => return Err(bad(format!("{k} must be an object or a list"))),
            };
            out.insert(k.clone(), values);
        }
        Ok(Filters(out))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Query, ApiError> {
        Query::parse(parts.uri.query().unwrap_or(""))
    }
}

/// Parsed `filters`: each key with its values.
#[derive(Debug, Clone, Default)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn values(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
    /// A boolean filter (`dangling=true`): `true`/`1` or `false`/`0`; anything else, or both,
    /// is dockerd's `invalid filter 'dangling=[maybe]'`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        let values = self.values(key);
        if values.is_empty() {
            return Ok(None);
        }
        let yes = values.iter().any(|v| v == "true" || v == "1");
        let no = values.iter().any(|v| v == "false" || v == "0");
        if yes == no {
            // dockerd prints its (unordered) set; sorted here, so the text is stable.
            let mut shown = values.to_vec();
            shown.sort();
            return Err(ApiError::bad_request(format!(
                "invalid filter '{key}=[{}]'",
                shown.join(" ")
            )));
        }
        Ok(Some(yes))
    }

    /// Refuses keys the endpoint does not know, as dockerd does.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }
}

/// `path.Match`-style glob: `*` matches any run without `/`, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && t[0] != '/' && go(p, &t[1..])),
            (Some('?'), Some(c)) if *c != '/' => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let time = |v: &str| Query::parse(&format!("since={v}")).unwrap().time("since");
        assert_eq!(
            time("10.5").unwrap(),
            Some(SystemTime::UNIX_EPOCH + Duration::new(10, 500_000_000))
        );
        assert_eq!(time("0").unwrap(), None);
        assert!(time("2026-01-01T00:00:00Z").unwrap().is_some());
        assert!(time("1.%C3%A9").is_err());
        assert!(time("soon").is_err());
    }

    #[test]
    fn repeated_keys_and_booleans() {
        let q =
            Query::parse("changes=ENV%20A%3D1&changes=WORKDIR%20%2Fsrv&stream=1&all=0&x=").unwrap();
        assert_eq!(q.all("changes"), vec!["ENV A=1", "WORKDIR /srv"]);
        assert!(q.bool("stream") && !q.bool("all") && !q.bool("x") && !q.bool("missing"));
    }

    #[test]
    fn filters_both_shapes() {
        let q =
            Query::parse("filters=%7B%22reference%22%3A%7B%22acc%2Fbusybox%3A1%22%3Atrue%7D%7D")
                .unwrap();
        assert_eq!(q.filters().unwrap().values("reference"), ["acc/busybox:1"]);
        let q = Query::parse("filters=%7B%22status%22%3A%5B%22exited%22%5D%7D").unwrap();
        assert_eq!(q.filters().unwrap().values("status"), ["exited"]);
        assert!(Query::parse("filters=nope").unwrap().filters().is_err());
    }

    #[test]
    fn resize_dims_as_dockerd_reads_them() {
        let dims = |q: &str| Query::parse(q).unwrap().resize_dims();
        assert_eq!(dims("h=40&w=120").unwrap(), (40, 120));
        assert_eq!(dims("h=0&w=4294967295").unwrap(), (0, u32::MAX));
        for (q, msg) in [
            (
                "h=abc&w=1",
                r#"invalid resize height "abc": invalid syntax"#,
            ),
            ("w=1", r#"invalid resize height "": invalid syntax"#),
            (
                "h=1&w=-1",
                r#"invalid resize width "-1": value out of range"#,
            ),
            (
                "h=1&w=4294967296",
                r#"invalid resize width "4294967296": value out of range"#,
            ),
            (
                "h=%2B1&w=1",
                r#"invalid resize height "+1": invalid syntax"#,
            ),
            (
                "h=1.5&w=1",
                r#"invalid resize height "1.5": invalid syntax"#,
            ),
            ("h=-x&w=1", r#"invalid resize height "-x": invalid syntax"#),
        ] {
            let e = dims(q).unwrap_err();
            assert_eq!(
                (e.status, e.message.as_str()),
                (http::StatusCode::BAD_REQUEST, msg),
                "{q}"
            );
        }
    }

    #[test]
    fn boolean_filters() {
        let f = |v: &[&str]| {
            Filters(
                [(
                    "dangling".to_string(),
                    v.iter().map(|s| s.to_string()).collect(),
                )]
                .into(),
            )
            .bool("dangling")
        };
        assert_eq!(f(&[]).unwrap(), None);
        assert_eq!(f(&["true"]).unwrap(), Some(true));
        assert_eq!(f(&["1", "true"]).unwrap(), Some(true));
        assert_eq!(f(&["0"]).unwrap(), Some(false));
        assert_eq!(
            f(&["maybe"]).unwrap_err().message,
            "invalid filter 'dangling=[maybe]'"
        );
        assert_eq!(
            f(&["true", "false"]).unwrap_err().message,
            "invalid filter 'dangling=[false true]'"
        );
    }

    #[test]
    fn globs() {
        assert!(glob("acc/*", "acc/busybox"));
        assert!(!glob("*", "acc/busybox"));
        assert!(glob("busy?ox:*", "busybox:1"));
        assert!(!glob("a", "ab"));
    }
}
