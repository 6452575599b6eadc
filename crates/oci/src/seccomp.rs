use std::collections::BTreeSet;

use oci_spec::runtime::LinuxSeccomp;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::SpecError;

const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
}

fn native_arches() -> Vec<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        _ => vec![],
    }
}

/// A Docker-format profile (berth's default when `profile` is None) for a container holding
/// `caps`: rules whose `includes.caps` the container lacks, or whose `excludes.caps` it
/// holds, are left out, as dockerd does.
pub(crate) fn seccomp_for(
    profile: Option<&str>,
    caps: &BTreeSet<String>,
) -> Result<LinuxSeccomp, SpecError> {
    let p: Profile = serde_json::from_str(profile.unwrap_or(DEFAULT_PROFILE))
        .map_err(|e| SpecError::Seccomp(e.to_string()))?;
    let mut arches: Vec<String> = p.architectures.clone();
    for m in &p.arch_map {
        if native_arches().contains(&m.architecture.as_str()) {
            arches.push(m.architecture.clone());
            arches.extend(m.sub_architectures.iter().cloned());
        }
    }
    if arches.is_empty() {
        arches = native_arches().iter().map(|s| s.to_string()).collect();
    }
    let mut syscalls = Vec::new();
    for r in p.syscalls {
        if !r.includes.caps.iter().all(|c| caps.contains(c)) {
            continue;
        }
        if r.excludes.caps.iter().any(|c| caps.contains(c)) {
            continue;
        }
        let mut names = r.names.clone();
        names.extend(r.name.clone());
        let mut s = json!({ "names": names, "action": r.action });
        if let Some(e) = r.errno_ret {
            s["errnoRet"] = json!(e);
        }
        if let Some(a) = r.args.filter(|a| !a.is_empty()) {
            s["args"] = json!(a);
        }
        syscalls.push(s);
    }
    let mut v = json!({
        "defaultAction": p.default_action,
        "architectures": arches,
        "syscalls": syscalls,
    });
    if let Some(e) = p.default_errno_ret {
        v["defaultErrnoRet"] = json!(e);
    }
    serde_json::from_value(v).map_err(|e| SpecError::Seccomp(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccompAction;

    fn blocked(s: &LinuxSeccomp) -> BTreeSet<String> {
        s.syscalls()
            .clone()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.args().is_none())
            .flat_map(|r| r.names().clone())
            .collect()
    }

    #[test]
    fn default_profile_blocks_what_docker_blocks_for_the_default_caps() {
        let caps: BTreeSet<String> = crate::DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        let s = seccomp_for(None, &caps).unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
        let b = blocked(&s);
        for call in [
            "unshare",
            "mount",
            "keyctl",
            "add_key",
            "bpf",
            "setns",
            "init_module",
            "reboot",
            "kexec_load",
        ] {
            assert!(b.contains(call), "{call} should be refused");
        }
        let clone_rules = s
            .syscalls()
            .clone()
            .unwrap()
            .iter()
            .filter(|r| r.names().contains(&"clone".to_string()))
            .count();
        assert_eq!(clone_rules, 7, "one rule per namespace flag");
    }

    #[test]
    fn capabilities_lift_their_rules() {
        let caps: BTreeSet<String> = ["CAP_SYS_ADMIN".to_string()].into();
        let b = blocked(&seccomp_for(None, &caps).unwrap());
        assert!(!b.contains("mount") && !b.contains("unshare") && !b.contains("bpf"));
        assert!(b.contains("keyctl") && b.contains("reboot"));
    }

    #[test]
    fn custom_profiles_in_dockers_format() {
        let p = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_PTRACE"]}}]}"#;
        let s = seccomp_for(Some(p), &BTreeSet::new()).unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.syscalls().clone().unwrap().len(), 1);
        assert!(seccomp_for(Some("{nope"), &BTreeSet::new()).is_err());
    }
}
