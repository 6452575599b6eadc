use std::collections::BTreeMap;

use berth_config::Ulimit;
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use crate::SpecError;

/// Container ulimits first, in their order, then every daemon default whose name the
/// container did not set (what inspect shows, and what becomes the rlimits).
pub fn merge_ulimits(container: &[Ulimit], defaults: &BTreeMap<String, Ulimit>) -> Vec<Ulimit> {
    let mut all: Vec<Ulimit> = container.to_vec();
    for (key, d) in defaults {
        if !container.iter().any(|c| &c.name == key) {
            all.push(d.clone());
        }
    }
    all
}

/// The merged ulimits as OCI rlimits (`RLIMIT_<NAME>`); `-1` is unlimited.
pub fn merged_rlimits(
    container: &[Ulimit],
    defaults: &BTreeMap<String, Ulimit>,
) -> Result<Vec<PosixRlimit>, SpecError> {
    merge_ulimits(container, defaults)
        .iter()
        .map(to_rlimit)
        .collect()
}

fn to_rlimit(u: &Ulimit) -> Result<PosixRlimit, SpecError> {
    u.validate().map_err(|e| SpecError::Ulimit {
        name: u.name.clone(),
        reason: e.to_string(),
    })?;
    let typ: PosixRlimitType = format!("RLIMIT_{}", u.name.to_ascii_uppercase())
        .parse()
        .map_err(|_| SpecError::Ulimit {
            name: u.name.clone(),
            reason: "unknown limit".to_string(),
        })?;
    let v = |n: i64| if n < 0 { u64::MAX } else { n as u64 };
    Ok(PosixRlimitBuilder::default()
        .typ(typ)
        .soft(v(u.soft))
        .hard(v(u.hard))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(name: &str, soft: i64, hard: i64) -> Ulimit {
        Ulimit {
            name: name.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn container_wins_and_defaults_fill_in() {
        let defaults = BTreeMap::from([
            ("nofile".to_string(), u("nofile", 4321, 5432)),
            ("nproc".to_string(), u("nproc", 100, 200)),
        ]);
        let r = merged_rlimits(&[u("nofile", 1234, 2345)], &defaults).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((r[0].soft(), r[0].hard()), (1234, 2345));
        assert_eq!(r[1].typ(), PosixRlimitType::RlimitNproc);
    }

    #[test]
    fn minus_one_is_unlimited_and_bad_values_are_refused() {
        let r = merged_rlimits(&[u("core", -1, -1)], &BTreeMap::new()).unwrap();
        assert_eq!(r[0].hard(), u64::MAX);
        let e = merged_rlimits(&[u("nofile", 9, 1)], &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("soft limit"), "{e}");
        assert!(merged_rlimits(&[u("bogus", 1, 1)], &BTreeMap::new()).is_err());
        assert!(merged_rlimits(&[], &BTreeMap::new()).unwrap().is_empty());
    }
}
