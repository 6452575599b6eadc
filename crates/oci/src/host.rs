use std::collections::BTreeSet;

/// What the spec needs to know about the machine. The daemon reads it once; tests give fixed
/// values.
pub trait HostFacts {
    /// AppArmor usable as containerd decides it (securityfs, no `container` variable,
    /// `/sbin/apparmor_parser`, module enabled).
    fn apparmor_supported(&self) -> bool;
    /// A unified (cgroup v2) hierarchy at /sys/fs/cgroup.
    fn cgroup_v2(&self) -> bool;
    /// The capabilities the daemon itself may hand out (its bounding set), as `CAP_*` names.
    fn bounding_caps(&self) -> BTreeSet<String>;
    /// The machine's hostname (for `--network host`).
    fn hostname(&self) -> String;
}

/// Host facts as plain values.
#[derive(Debug, Clone, Default)]
pub struct StaticHost {
    pub apparmor: bool,
    pub cgroup_v2: bool,
    pub bounding: BTreeSet<String>,
    pub hostname: String,
}

impl HostFacts for StaticHost {
    fn apparmor_supported(&self) -> bool {
        self.apparmor
    }
    fn cgroup_v2(&self) -> bool {
        self.cgroup_v2
    }
    fn bounding_caps(&self) -> BTreeSet<String> {
        self.bounding.clone()
    }
    fn hostname(&self) -> String {
        self.hostname.clone()
    }
}
