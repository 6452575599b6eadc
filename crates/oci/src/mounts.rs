use std::path::PathBuf;

use berth_model::HostConfig;
use oci_spec::runtime::{Mount, MountBuilder};

use crate::SpecError;

/// A mount the container asked for (`-v`, `--mount`, a volume), resolved by the daemon: a
/// host path bound (a bind, or a volume's folder) or a new tmpfs, with runc's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMount {
    pub destination: String,
    /// `bind` or `tmpfs`.
    pub typ: String,
    pub source: String,
    pub options: Vec<String>,
}

fn mount(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(PathBuf::from(dest))
        .typ(typ)
        .source(PathBuf::from(source))
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// Docker's default mounts, the generated /etc files, the user's mounts (in the order given:
/// parents first) and `--tmpfs` mounts, in the order runc must mount them.
pub(crate) fn container_mounts(
    host: &HostConfig,
    etc_files: &[(String, PathBuf)],
    user_mounts: &[UserMount],
    cgroup_v2: bool,
) -> Result<Vec<Mount>, SpecError> {
    let user_dests: Vec<&str> = user_mounts
        .iter()
        .map(|b| b.destination.as_str())
        .chain(host.tmpfs.keys().map(String::as_str))
        .collect();
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        if cgroup_v2 {
            mount(
                "/sys/fs/cgroup",
                "cgroup2",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            )?
        } else {
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["ro", "nosuid", "noexec", "nodev"],
            )?
        },
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    if !user_dests.contains(&"/dev/shm") {
        let size = if host.shm_size > 0 {
            host.shm_size
        } else {
            64 << 20
        };
        let size_opt = format!("size={size}");
        out.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &size_opt],
        )?);
    }
    for (dest, source) in etc_files {
        if !user_dests.contains(&dest.as_str()) {
            out.push(mount(
                dest,
                "bind",
                &source.display().to_string(),
                &["rbind", "rprivate"],
            )?);
        }
    }
    for m in user_mounts {
        let opts: Vec<&str> = m.options.iter().map(String::as_str).collect();
        out.push(mount(&m.destination, &m.typ, &m.source, &opts)?);
    }
    for (dest, opts) in &host.tmpfs {
        if !dest.starts_with('/') {
            return Err(SpecError::Tmpfs(dest.clone()));
        }
        let mut all = vec!["nosuid", "nodev", "noexec"];
        all.extend(opts.split(',').filter(|o| !o.is_empty()));
        out.push(mount(dest, "tmpfs", "tmpfs", &all)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_etc_files_then_binds_and_tmpfs() {
        let host = HostConfig {
            tmpfs: [("/run".to_string(), "size=1m".to_string())].into(),
            ..Default::default()
        };
        let data = UserMount {
            destination: "/data".into(),
            typ: "bind".into(),
            source: "/srv".into(),
            options: vec!["rbind".into(), "rprivate".into(), "ro".into()],
        };
        let m = container_mounts(
            &host,
            &[("/etc/hostname".into(), "/c/hostname".into())],
            &[data],
            false,
        )
        .unwrap();
        let dests: Vec<String> = m
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm",
                "/etc/hostname",
                "/data",
                "/run"
            ]
        );
        let data = &m[8];
        assert!(data.options().as_ref().unwrap().contains(&"ro".to_string()));
        let sys = &m[3];
        assert!(sys.options().as_ref().unwrap().contains(&"ro".to_string()));
    }
}
