use std::path::PathBuf;

use berth_model::HostConfig;
use oci_spec::runtime::{Mount, MountBuilder};

use crate::SpecError;

/// A `-v /src:/dst[:opts]` bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    pub propagation: String,
}

/// Parses a `Binds` entry. Only host paths are binds; a bare name would be a named volume,
/// which berth does not have yet.
pub fn parse_bind(spec: &str) -> Result<Bind, SpecError> {
    let bad = || SpecError::Bind(spec.to_string());
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(bad()),
    };
    if !source.starts_with('/') || !destination.starts_with('/') || destination == "/" {
        return Err(bad());
    }
    let mut b = Bind {
        source: source.to_string(),
        destination: destination.trim_end_matches('/').to_string(),
        read_only: false,
        propagation: "rprivate".to_string(),
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => b.read_only = true,
            "rw" => b.read_only = false,
            "z" | "Z" | "nocopy" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                b.propagation = o.to_string()
            }
            _ => return Err(bad()),
        }
    }
    Ok(b)
}

fn mount(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(PathBuf::from(dest))
        .typ(typ)
        .source(PathBuf::from(source))
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// Docker's default mounts, the generated /etc files, binds and tmpfs mounts, in the order
/// runc must mount them.
pub(crate) fn container_mounts(
    host: &HostConfig,
    etc_files: &[(String, PathBuf)],
    cgroup_v2: bool,
) -> Result<Vec<Mount>, SpecError> {
    let binds: Vec<Bind> = host
        .binds
        .iter()
        .map(|b| parse_bind(b))
        .collect::<Result<_, _>>()?;
    let user_dests: Vec<&str> = binds
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
    for b in &binds {
        let mut opts = vec!["rbind", b.propagation.as_str()];
        if b.read_only {
            opts.push("ro");
        }
        out.push(mount(&b.destination, "bind", &b.source, &opts)?);
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
    fn bind_forms() {
        let b = parse_bind("/host/vol:/data:ro").unwrap();
        assert_eq!(
            (b.source.as_str(), b.destination.as_str(), b.read_only),
            ("/host/vol", "/data", true)
        );
        assert!(!parse_bind("/a:/b").unwrap().read_only);
        assert_eq!(
            parse_bind("/a:/b:rw,rshared").unwrap().propagation,
            "rshared"
        );
        for bad in ["named:/data", "/a", "/a:relative", "/a:/b:bogus", "/a:/"] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_then_etc_files_then_binds_and_tmpfs() {
        let host = HostConfig {
            binds: vec!["/srv:/data:ro".into()],
            tmpfs: [("/run".to_string(), "size=1m".to_string())].into(),
            ..Default::default()
        };
        let m = container_mounts(
            &host,
            &[("/etc/hostname".into(), "/c/hostname".into())],
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
