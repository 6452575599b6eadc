//! The `docker-default` AppArmor profile: generated from berth's own template, loaded with
//! `apparmor_parser -Kr` when the kernel does not have it, at daemon start (a failure is
//! logged) and before a container or exec that uses it (a failure fails the operation).
//! Only called when the host supports AppArmor (see `HostFacts`); every path comes from a
//! root folder and a parser path, so tests use a prepared folder and a fake parser.

use std::path::{Path, PathBuf};

use crate::DaemonError;

/// The profile containers get by default.
pub const DEFAULT_PROFILE: &str = "docker-default";

/// Loads and checks AppArmor profiles on a host.
#[derive(Debug, Clone)]
pub struct AppArmor {
    root: PathBuf,
    parser: PathBuf,
}

/// berth's default profile: what a container may not touch on the host. Includes the
/// distribution's tunables and base abstraction only when they exist.
pub fn render_profile(name: &str, daemon_profile: &str, etc_apparmor: &Path) -> String {
    let has = |p: &str| etc_apparmor.join(p).exists();
    let mut out = String::new();
    if has("tunables/global") {
        out.push_str("#include <tunables/global>\n");
    } else {
        out.push_str("@{PROC}=/proc/\n");
    }
    out.push_str(&format!(
        "\nprofile {name} flags=(attach_disconnected,mediate_deleted) {{\n"
    ));
    if has("abstractions/base") {
        out.push_str("  #include <abstractions/base>\n");
    }
    let rules = [
        "# What a container does inside itself is allowed.",
        "network,",
        "capability,",
        "file,",
        "umount,",
        "# Signals and tracing stay among containers and the daemon.",
        &format!("signal (receive) peer={daemon_profile},"),
        &format!("signal (send,receive) peer={name},"),
        &format!("ptrace (trace,read,tracedby,readby) peer={name},"),
        "# No mounting, and no writes to the kernel's knobs.",
        "deny mount,",
        "deny @{PROC}/sysrq-trigger rwklx,",
        "deny @{PROC}/kcore rwklx,",
        "deny @{PROC}/kmem rwklx,",
        "deny @{PROC}/mem rwklx,",
        "deny @{PROC}/sys/[^k]** w,",
        "deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,",
        "deny /sys/firmware/** rwklx,",
        "deny /sys/kernel/security/** rwklx,",
        "deny /sys/[^f]*/** wklx,",
        "deny /sys/f[^s]*/** wklx,",
        "deny /sys/fs/[^c]*/** wklx,",
    ];
    for r in rules {
        out.push_str("  ");
        out.push_str(r);
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

impl AppArmor {
    /// The host's: `/` and `/sbin/apparmor_parser`.
    pub fn host() -> AppArmor {
        AppArmor::new("/", "/sbin/apparmor_parser")
    }

    pub fn new(root: impl Into<PathBuf>, parser: impl Into<PathBuf>) -> AppArmor {
        AppArmor {
            root: root.into(),
            parser: parser.into(),
        }
    }

    fn at(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// Whether the kernel has a profile of this name loaded.
    pub fn is_loaded(&self, name: &str) -> Result<bool, DaemonError> {
        let p = self.at("/sys/kernel/security/apparmor/profiles");
        let text = std::fs::read_to_string(&p).map_err(|e| {
            DaemonError::AppArmor(format!(
                "Could not check if {name} AppArmor profile was loaded: {e}"
            ))
        })?;
        let prefix = format!("{name} ");
        Ok(text.lines().any(|l| l.starts_with(&prefix)))
    }

    /// The profile the daemon itself runs under (`unconfined` when none).
    fn daemon_profile(&self) -> String {
        std::fs::read_to_string(self.at("/proc/self/attr/current"))
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_string))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unconfined".to_string())
    }

    /// Loads `docker-default` unless the kernel already has it.
    pub fn ensure_default(&self) -> Result<(), DaemonError> {
        if self.is_loaded(DEFAULT_PROFILE)? {
            return Ok(());
        }
        let fail = |why: String| {
            DaemonError::AppArmor(format!(
                "AppArmor enabled on system but the {DEFAULT_PROFILE} profile could not be loaded: {why}"
            ))
        };
        let text = render_profile(
            DEFAULT_PROFILE,
            &self.daemon_profile(),
            &self.at("/etc/apparmor.d"),
        );
        // In a folder of our own (mkdir with a random name, 0700): a name in the shared temp
        // folder could be a link planted by a local user, which root would write through.
        let dir = std::env::temp_dir().join(format!(
            "berth-apparmor-{}",
            crate::containers::random_hex(16)
        ));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| fail(e.to_string()))?;
        }
        let file = dir.join(DEFAULT_PROFILE);
        let out = berth_images::files::create_with_mode(&file, text.as_bytes(), 0o600)
            .map_err(|e| fail(e.to_string()))
            .map(|()| {
                // -K: do not write the cache (the file system may be read-only); -r: replace.
                std::process::Command::new(&self.parser)
                    .arg("-Kr")
                    .arg(&file)
                    .output()
            });
        crate::log_io_cleanup(
            "the profile's temporary folder",
            &dir,
            std::fs::remove_dir_all(&dir),
        );
        let out = out?;
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(fail(format!(
                "{}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ))),
            Err(e) => Err(fail(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn host(dir: &Path, profiles: &str) -> PathBuf {
        let p = dir.join("sys/kernel/security/apparmor");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("profiles"), profiles).unwrap();
        let log = dir.join("parser.log");
        let parser = dir.join("apparmor_parser");
        std::fs::write(
            &parser,
            format!(
                "#!/bin/sh\necho \"$@\" >> {}\ncp \"$2\" {}\n",
                log.display(),
                dir.join("loaded").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&parser, std::fs::Permissions::from_mode(0o755)).unwrap();
        parser
    }

    #[test]
    fn a_loaded_profile_is_not_loaded_again() {
        let d = tempfile::tempdir().unwrap();
        let parser = host(d.path(), "docker-default (enforce)\nother (complain)\n");
        let a = AppArmor::new(d.path(), parser);
        assert!(a.is_loaded("docker-default").unwrap());
        assert!(
            !a.is_loaded("docker").unwrap(),
            "the name and a space, not a prefix"
        );
        a.ensure_default().unwrap();
        assert!(!d.path().join("parser.log").exists());
    }

    #[test]
    fn a_missing_profile_is_generated_and_loaded_with_kr() {
        let d = tempfile::tempdir().unwrap();
        let parser = host(d.path(), "other (enforce)\n");
        AppArmor::new(d.path(), parser).ensure_default().unwrap();
        let args = std::fs::read_to_string(d.path().join("parser.log")).unwrap();
        assert!(args.starts_with("-Kr "), "{args}");
        let loaded = std::fs::read_to_string(d.path().join("loaded")).unwrap();
        assert!(
            loaded.contains("profile docker-default flags=(attach_disconnected,mediate_deleted)")
        );
        assert!(loaded.contains("deny mount,"));
        assert!(
            loaded.contains("@{PROC}=/proc/"),
            "no tunables here: PROC is defined inline"
        );
        assert!(loaded.contains("signal (receive) peer=unconfined,"));
    }

    #[test]
    fn parser_failures_and_unreadable_profile_lists_are_errors() {
        let d = tempfile::tempdir().unwrap();
        host(d.path(), "");
        let err = AppArmor::new(d.path(), "/bin/false")
            .ensure_default()
            .unwrap_err();
        assert!(
            err.to_string().contains("profile could not be loaded"),
            "{err}"
        );
        let err = AppArmor::new(d.path().join("nowhere"), "/bin/true")
            .ensure_default()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("Could not check if docker-default AppArmor profile was loaded"),
            "{err}"
        );
    }

    #[test]
    fn tunables_and_abstractions_are_used_when_present() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tunables")).unwrap();
        std::fs::create_dir_all(d.path().join("abstractions")).unwrap();
        std::fs::write(d.path().join("tunables/global"), "").unwrap();
        std::fs::write(d.path().join("abstractions/base"), "").unwrap();
        let p = render_profile("docker-default", "unconfined", d.path());
        assert!(p.starts_with("#include <tunables/global>"));
        assert!(p.contains("  #include <abstractions/base>"));
    }
}
