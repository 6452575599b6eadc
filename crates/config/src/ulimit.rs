use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// The ulimit names Docker accepts (`as` is deliberately absent, as in dockerd).
pub const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// One resource limit, in Docker's wire and daemon.json shape: `{"Name", "Soft", "Hard"}`.
/// `-1` means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    /// Parses `name=soft[:hard]` as `--default-ulimit` and `docker run --ulimit` give it.
    pub fn parse(spec: &str) -> Result<Ulimit, ConfigError> {
        let bad = |reason: &str| ConfigError::Ulimit {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (name, values) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected the form name=soft[:hard]"))?;
        let parts: Vec<&str> = values.split(':').collect();
        if parts.len() > 2 {
            return Err(bad("too many limit value arguments"));
        }
        let number = |s: &str| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| bad(&format!("invalid limit value {s:?}")))
        };
        let soft = number(parts[0])?;
        let hard = match parts.get(1) {
            Some(h) => number(h)?,
            None => soft,
        };
        let ulimit = Ulimit {
            name: name.trim().to_string(),
            soft,
            hard,
        };
        ulimit.validate()?;
        Ok(ulimit)
    }

    /// Checks the name and the soft/hard relation: a known name, soft ≤ hard unless hard is
    /// unlimited, and no unlimited soft limit under a finite hard one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |reason: String| ConfigError::Ulimit {
            spec: format!("{}={}:{}", self.name, self.soft, self.hard),
            reason,
        };
        if !ULIMIT_NAMES.contains(&self.name.as_str()) {
            return Err(bad(format!("invalid ulimit type: {}", self.name)));
        }
        if self.soft < -1 || self.hard < -1 {
            return Err(bad("limits must be -1 (unlimited) or more".to_string()));
        }
        if self.hard != -1 && (self.soft == -1 || self.soft > self.hard) {
            return Err(bad(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                self.soft, self.hard
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_soft_and_hard() {
        let u = Ulimit::parse("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
    }

    #[test]
    fn hard_defaults_to_soft() {
        let u = Ulimit::parse("nproc=50").unwrap();
        assert_eq!((u.soft, u.hard), (50, 50));
    }

    #[test]
    fn unlimited_hard_is_fine() {
        let u = Ulimit::parse("core=100:-1").unwrap();
        assert_eq!((u.soft, u.hard), (100, -1));
    }

    #[test]
    fn rejects_bad_forms() {
        for (spec, needle) in [
            ("nofile", "name=soft"),
            ("nofile=1:2:3", "too many"),
            ("nofile=9:1", "soft limit must be less than"),
            ("as=1:2", "invalid ulimit type: as"),
            ("bogus=1", "invalid ulimit type: bogus"),
            ("nofile=x", "invalid limit value"),
            ("nofile=-1:10", "soft limit"),
        ] {
            let err = Ulimit::parse(spec).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn json_shape_is_pascal_case() {
        let u: Ulimit = serde_json::from_str(r#"{"Name":"nofile","Soft":1,"Hard":2}"#).unwrap();
        assert_eq!(u.hard, 2);
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"Name":"nofile","Soft":1,"Hard":2}"#
        );
    }
}
