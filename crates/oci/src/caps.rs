use std::collections::BTreeSet;

use crate::SpecError;

/// Docker's default capability set (CapEff `00000000a80425fb`).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Capability names by number.
const BY_NUMBER: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The name of capability number `n`.
pub fn cap_name(n: usize) -> Option<&'static str> {
    BY_NUMBER.get(n).copied()
}

/// Names of the bits set in a capability mask (`CapBnd` of /proc/PID/status).
pub fn caps_from_mask(mask: u64) -> BTreeSet<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .filter_map(|b| cap_name(b as usize).map(str::to_string))
        .collect()
}

/// `sys_admin`, `SYS_ADMIN` and `CAP_SYS_ADMIN` all name CAP_SYS_ADMIN; `ALL` is kept as is.
pub fn parse_cap(s: &str) -> Result<String, SpecError> {
    let up = s.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if BY_NUMBER.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(SpecError::Capability(s.to_string()))
    }
}

/// Docker's rules: privileged gets everything the daemon holds; otherwise the defaults,
/// minus drops, plus adds (`ALL` in drops empties the base first, `ALL` in adds adds every
/// capability the daemon holds). Only capabilities the daemon holds are ever given.
pub fn container_caps(
    privileged: bool,
    add: &[String],
    drop: &[String],
    bounding: &BTreeSet<String>,
) -> Result<BTreeSet<String>, SpecError> {
    if privileged {
        return Ok(bounding.clone());
    }
    let add: Vec<String> = add.iter().map(|c| parse_cap(c)).collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop
        .iter()
        .map(|c| parse_cap(c))
        .collect::<Result<_, _>>()?;
    let mut caps: BTreeSet<String> = if drop.iter().any(|d| d == "ALL") {
        BTreeSet::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    for a in &add {
        if a == "ALL" {
            caps.extend(bounding.iter().cloned());
        } else if !drop.contains(a) || drop.iter().any(|d| d == "ALL") {
            caps.insert(a.clone());
        }
    }
    Ok(caps.intersection(bounding).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> BTreeSet<String> {
        BY_NUMBER.iter().map(|s| s.to_string()).collect()
    }
    fn mask(caps: &BTreeSet<String>) -> u64 {
        caps.iter()
            .map(|c| 1u64 << BY_NUMBER.iter().position(|n| n == c).unwrap())
            .sum()
    }

    #[test]
    fn default_set_is_dockers_cap_eff() {
        let c = container_caps(false, &[], &[], &all()).unwrap();
        assert_eq!(format!("{:016x}", mask(&c)), "00000000a80425fb");
    }

    #[test]
    fn add_drop_and_all() {
        let c = container_caps(false, &["SYS_ADMIN".into()], &[], &all()).unwrap();
        assert_eq!(format!("{:016x}", mask(&c)), "00000000a82425fb");
        assert!(
            container_caps(false, &[], &["ALL".into()], &all())
                .unwrap()
                .is_empty()
        );
        let c = container_caps(false, &["chown".into()], &["ALL".into()], &all()).unwrap();
        assert_eq!(c.into_iter().collect::<Vec<_>>(), vec!["CAP_CHOWN"]);
        let c = container_caps(false, &[], &["CAP_NET_RAW".into()], &all()).unwrap();
        assert!(!c.contains("CAP_NET_RAW"));
        assert!(matches!(
            container_caps(false, &["NOPE".into()], &[], &all()),
            Err(SpecError::Capability(_))
        ));
    }

    #[test]
    fn privileged_gets_the_daemons_bounding_set_not_every_capability() {
        let mut bounding = all();
        bounding.remove("CAP_SYS_RESOURCE");
        let c = container_caps(true, &[], &[], &bounding).unwrap();
        assert_eq!(c, bounding);
        let c = container_caps(false, &["ALL".into()], &[], &bounding).unwrap();
        assert!(!c.contains("CAP_SYS_RESOURCE"));
    }

    #[test]
    fn mask_parsing() {
        let c = caps_from_mask(0xa80425fb);
        assert_eq!(c.len(), 14);
        assert!(c.contains("CAP_AUDIT_WRITE") && c.contains("CAP_SETFCAP"));
    }
}
