use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use berth_config::Ulimit;
use berth_model::{ContainerConfig, HostConfig};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::caps::container_caps;
use crate::{HostFacts, ResolvedUser, SpecError, merged_rlimits, parse_security_opts};

/// Where `--init` puts the init binary in the container (dockerd's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The PATH a container gets when neither it nor its image sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The paths a container sees masked (dockerd's list, and powercap as newer dockerd masks it).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// The paths a container sees read-only.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Everything a container's spec is made from. `config` already has the image's defaults
/// (Env, Cmd, Entrypoint, WorkingDir, User) merged in.
#[derive(Clone, Copy)]
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a ContainerConfig,
    pub host_config: &'a HostConfig,
    /// The daemon's `default-ulimits` from the snapshot the start loaded.
    pub default_ulimits: &'a BTreeMap<String, Ulimit>,
    pub user: &'a ResolvedUser,
    pub host: &'a dyn HostFacts,
    /// Generated files bind-mounted into the container: (destination, source).
    pub etc_files: &'a [(String, PathBuf)],
    /// The daemon's cgroup parent (`--cgroup-parent`, `/berth`); the container's own
    /// `CgroupParent` wins (see `cgroups_path`).
    pub cgroup_parent: &'a str,
    /// The init binary on the host (tini), for `--init`.
    pub init_binary: Option<&'a std::path::Path>,
    /// The network namespace to join, by path (berthd's own for a bridged container, another
    /// container's for `--network container:`); `None` gives a new, empty one (`none`).
    /// Unused with `--network host`.
    pub netns: Option<&'a std::path::Path>,
    /// The user's mounts (binds, volumes, `--mount` tmpfs), resolved, parents first.
    pub mounts: &'a [crate::UserMount],
}

impl std::fmt::Debug for SpecInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecInput")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A container's `linux.cgroupsPath` as dockerd makes it for the cgroupfs driver: its own
/// `CgroupParent`, else the daemon's, joined with its ID and cleaned as Go's `filepath.Join`
/// does. runc reads an absolute path from the cgroup root, a relative one from its own cgroup.
pub fn cgroups_path(host_config: &HostConfig, daemon_parent: &str, id: &str) -> String {
    let parent = if host_config.cgroup_parent.is_empty() {
        daemon_parent
    } else {
        &host_config.cgroup_parent
    };
    clean_path(&format!("{parent}/{id}"))
}

/// Go's `path.Clean`: one `/` between names, no `.`, `..` resolved by text (never above `/`).
fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut names: Vec<&str> = Vec::new();
    for name in p.split('/') {
        match name {
            "" | "." => {}
            ".." if names.last().is_some_and(|n| *n != "..") => {
                names.pop();
            }
            ".." if rooted => {}
            n => names.push(n),
        }
    }
    let joined = names.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The process's environment: the container's, with PATH if missing, HOSTNAME, and TERM for
/// a terminal.
fn environment(config: &ContainerConfig) -> Vec<String> {
    let mut env = config.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", config.hostname));
    }
    if config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
    env
}

/// The command: entrypoint then cmd.
pub fn command(config: &ContainerConfig) -> Vec<String> {
    config
        .entrypoint
        .iter()
        .flatten()
        .chain(config.cmd.iter().flatten())
        .cloned()
        .collect()
}

pub(crate) fn capability_set(
    names: &std::collections::BTreeSet<String>,
) -> Result<std::collections::HashSet<Capability>, SpecError> {
    names
        .iter()
        .map(|n| {
            n.trim_start_matches("CAP_")
                .parse::<Capability>()
                .map_err(|_| SpecError::Capability(n.clone()))
        })
        .collect()
}

/// Bounding, effective and permitted; no inheritable or ambient capabilities (as dockerd
/// since 23.0).
pub(crate) fn capabilities(
    set: std::collections::HashSet<Capability>,
) -> Result<oci_spec::runtime::LinuxCapabilities, SpecError> {
    let mut c = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .build()?;
    c.set_inheritable(None);
    c.set_ambient(None);
    Ok(c)
}

/// The OCI spec of a container. Pure: the same input always gives the same spec.
pub fn build_spec(input: SpecInput<'_>) -> Result<Spec, SpecError> {
    let c = input.config;
    let h = input.host_config;
    let security = parse_security_opts(&h.security_opt)?;
    let bounding = input.host.bounding_caps();
    let caps = container_caps(h.privileged, &h.cap_add, &h.cap_drop, &bounding)?;
    let cap_set = capability_set(&caps)?;

    let mut user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid);
    if !input.user.additional_gids.is_empty() {
        user = user.additional_gids(input.user.additional_gids.clone());
    }
    let mut args = command(c);
    let mut init_mount = None;
    if h.init == Some(true) {
        let init = input.init_binary.ok_or(SpecError::NoInit)?;
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
        init_mount = Some(init.to_path_buf());
    }
    let mut process = ProcessBuilder::default()
        .terminal(c.tty)
        .user(user.build()?)
        .args(args)
        .env(environment(c))
        .cwd(if c.working_dir.is_empty() {
            "/".to_string()
        } else {
            c.working_dir.clone()
        })
        .capabilities(capabilities(cap_set)?)
        .rlimits(merged_rlimits(&h.ulimits, input.default_ulimits)?)
        .no_new_privileges(security.no_new_privileges.unwrap_or(false))
        .build()?;
    if h.oom_score_adj != 0 {
        process.set_oom_score_adj(Some(h.oom_score_adj as i32));
    }
    if input.host.apparmor_supported() {
        let profile = match (&security.apparmor_profile, h.privileged) {
            (Some(p), _) => p.clone(),
            (None, true) => "unconfined".to_string(),
            (None, false) => "docker-default".to_string(),
        };
        process.set_apparmor_profile(Some(profile));
    }

    let host_network = h.network_mode == "host";
    let mut namespaces = Vec::new();
    for t in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(t).build()?);
    }
    if !host_network {
        let mut ns = LinuxNamespaceBuilder::default();
        ns = ns.typ(LinuxNamespaceType::Network);
        if let Some(p) = input.netns {
            ns = ns.path(p.to_path_buf());
        }
        namespaces.push(ns.build()?);
    }
    if input.host.cgroup_v2() {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()?,
        );
    }

    let mut sysctl: HashMap<String, String> = HashMap::new();
    if !host_network {
        sysctl.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        sysctl.insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
    }
    sysctl.extend(h.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())));

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(crate::resources::resources(h)?)
        .cgroups_path(PathBuf::from(cgroups_path(
            h,
            input.cgroup_parent,
            input.id,
        )))
        .sysctl(sysctl);
    let confined = !h.privileged && !security.unmask_system_paths;
    if confined {
        linux = linux
            .masked_paths(
                MASKED_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .readonly_paths(
                READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            );
    }
    if !h.privileged && !security.seccomp_unconfined {
        linux = linux.seccomp(crate::seccomp::seccomp_for(
            security.seccomp_profile.as_deref(),
            &caps,
        )?);
    }

    let mut linux = linux.build()?;
    if !confined {
        // The builder starts from runc-like defaults; a privileged container has none.
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    }

    let mut mounts =
        crate::mounts::container_mounts(h, input.etc_files, input.mounts, input.host.cgroup_v2())?;
    if let Some(init) = init_mount {
        mounts.push(
            oci_spec::runtime::MountBuilder::default()
                .destination(PathBuf::from(INIT_PATH))
                .typ("bind")
                .source(init)
                .options(vec![
                    "rbind".to_string(),
                    "ro".to_string(),
                    "rprivate".to_string(),
                ])
                .build()?,
        );
    }

    Ok(SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(h.readonly_rootfs)
                .build()?,
        )
        .hostname(c.hostname.clone())
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .annotations(HashMap::new())
        .build()?)
}

/// The spec's process, for execs to derive from.
pub fn spec_process(spec: &Spec) -> Option<&Process> {
    spec.process().as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StaticHost;

    pub(crate) fn host() -> StaticHost {
        StaticHost {
            apparmor: false,
            cgroup_v2: false,
            bounding: crate::caps_from_mask(0x1fffeffffff),
            hostname: "vm".into(),
        }
    }

    fn build(c: &ContainerConfig, h: &HostConfig, host: &StaticHost) -> Spec {
        build_spec(SpecInput {
            id: "abc",
            config: c,
            host_config: h,
            default_ulimits: &BTreeMap::from([(
                "nofile".to_string(),
                Ulimit {
                    name: "nofile".into(),
                    soft: 4321,
                    hard: 5432,
                },
            )]),
            user: &ResolvedUser::default(),
            host,
            etc_files: &[],
            cgroup_parent: "/berth",
            init_binary: Some(std::path::Path::new("/usr/bin/tini")),
            netns: None,
            mounts: &[],
        })
        .unwrap()
    }

    fn cfg() -> ContainerConfig {
        ContainerConfig {
            hostname: "abc123".into(),
            cmd: Some(vec!["echo".into(), "hi".into()]),
            env: vec!["FOO=bar".into()],
            ..Default::default()
        }
    }

    #[test]
    fn cgroups_path_is_dockerds_join() {
        let h = HostConfig::default();
        assert_eq!(cgroups_path(&h, "/berth", "abc"), "/berth/abc");
        assert_eq!(cgroups_path(&h, "/a//b/", "abc"), "/a/b/abc");
        assert_eq!(
            cgroups_path(&h, "rel", "abc"),
            "rel/abc",
            "relative stays relative"
        );
        assert_eq!(
            cgroups_path(&h, "/../../x", "abc"),
            "/x/abc",
            "never above the root"
        );
        assert_eq!(cgroups_path(&h, "../up/./y", "abc"), "../up/y/abc");
        let own = HostConfig {
            cgroup_parent: "/mine".into(),
            ..Default::default()
        };
        assert_eq!(
            cgroups_path(&own, "/berth", "abc"),
            "/mine/abc",
            "the container's wins"
        );
    }

    #[test]
    fn a_plain_docker_run() {
        let s = build(&cfg(), &HostConfig::default(), &host());
        let p = s.process().as_ref().unwrap();
        assert_eq!(
            p.args().as_ref().unwrap(),
            &vec!["echo".to_string(), "hi".to_string()]
        );
        assert_eq!(p.cwd().display().to_string(), "/");
        let env = p.env().as_ref().unwrap();
        assert!(
            env.contains(&DEFAULT_PATH.to_string()) && env.contains(&"HOSTNAME=abc123".to_string())
        );
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.effective().as_ref().unwrap().len(), 14);
        assert!(caps.ambient().is_none() && caps.inheritable().is_none());
        let r = p.rlimits().as_ref().unwrap();
        assert_eq!(
            (r[0].soft(), r[0].hard()),
            (4321, 5432),
            "daemon default-ulimits apply"
        );
        assert_eq!(p.apparmor_profile(), &None, "no AppArmor on this host");
        let l = s.linux().as_ref().unwrap();
        assert!(
            l.masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_string())
        );
        assert!(
            l.readonly_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/sys".to_string())
        );
        assert!(l.seccomp().is_some());
        assert!(
            l.namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network)
        );
        assert_eq!(
            l.cgroups_path().as_ref().unwrap().display().to_string(),
            "/berth/abc"
        );
        assert_eq!(s.hostname().as_deref(), Some("abc123"));
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
    }

    #[test]
    fn privileged_drops_confinement_and_takes_the_bounding_set() {
        let mut h = host();
        h.bounding.remove("CAP_SYS_RESOURCE");
        let s = build(
            &cfg(),
            &HostConfig {
                privileged: true,
                ..Default::default()
            },
            &h,
        );
        let l = s.linux().as_ref().unwrap();
        assert!(
            l.seccomp().is_none() && l.masked_paths().is_none() && l.readonly_paths().is_none()
        );
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
            .effective()
            .clone()
            .unwrap();
        assert_eq!(caps.len(), h.bounding.len());
        assert!(!caps.contains(&Capability::SysResource));
    }

    #[test]
    fn host_network_tty_readonly_nnp_and_unconfined_seccomp() {
        let c = ContainerConfig { tty: true, ..cfg() };
        let h = HostConfig {
            network_mode: "host".into(),
            readonly_rootfs: true,
            security_opt: vec!["no-new-privileges".into(), "seccomp=unconfined".into()],
            ..Default::default()
        };
        let s = build(&c, &h, &host());
        let l = s.linux().as_ref().unwrap();
        assert!(
            !l.namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network)
        );
        assert!(l.seccomp().is_none());
        assert!(l.sysctl().as_ref().unwrap().is_empty());
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert!(
            p.env()
                .as_ref()
                .unwrap()
                .contains(&"TERM=xterm".to_string())
        );
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    }

    #[test]
    fn apparmor_selection_when_the_host_supports_it() {
        let mut h = host();
        h.apparmor = true;
        let profile = |hc: HostConfig| {
            build(&cfg(), &hc, &h)
                .process()
                .as_ref()
                .unwrap()
                .apparmor_profile()
                .clone()
        };
        assert_eq!(
            profile(HostConfig::default()).as_deref(),
            Some("docker-default")
        );
        assert_eq!(
            profile(HostConfig {
                privileged: true,
                ..Default::default()
            })
            .as_deref(),
            Some("unconfined")
        );
        let explicit = HostConfig {
            privileged: true,
            security_opt: vec!["apparmor=custom".into()],
            ..Default::default()
        };
        assert_eq!(
            profile(explicit).as_deref(),
            Some("custom"),
            "explicit wins even when privileged"
        );
    }

    #[test]
    fn init_runs_first_from_a_read_only_bind() {
        let s = build(
            &cfg(),
            &HostConfig {
                init: Some(true),
                ..Default::default()
            },
            &host(),
        );
        let args = s.process().as_ref().unwrap().args().clone().unwrap();
        assert_eq!(args, ["/sbin/docker-init", "--", "echo", "hi"]);
        let m = s.mounts().as_ref().unwrap().last().unwrap();
        assert_eq!(m.destination().display().to_string(), "/sbin/docker-init");
        assert_eq!(
            m.source().as_ref().unwrap().display().to_string(),
            "/usr/bin/tini"
        );
    }

    #[test]
    fn container_ulimits_override_daemon_defaults() {
        let h = HostConfig {
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 1234,
                hard: 2345,
            }],
            ..Default::default()
        };
        let s = build(&cfg(), &h, &host());
        let r = s.process().as_ref().unwrap().rlimits().clone().unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].soft(), r[0].hard()), (1234, 2345));
    }

    #[test]
    fn a_given_network_namespace_is_joined_by_path() {
        let netns = std::path::Path::new("/run/berth/netns/0123456789ab");
        let s = build_spec(SpecInput {
            id: "x",
            config: &cfg(),
            host_config: &HostConfig::default(),
            default_ulimits: &BTreeMap::new(),
            user: &ResolvedUser::default(),
            host: &host(),
            etc_files: &[],
            cgroup_parent: "/berth",
            init_binary: None,
            netns: Some(netns),
            mounts: &[],
        })
        .unwrap();
        let ns = s.linux().as_ref().unwrap().namespaces().clone().unwrap();
        let net = ns
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path().as_deref(), Some(netns));
        let none = build(&cfg(), &HostConfig::default(), &host());
        let ns = none.linux().as_ref().unwrap().namespaces().clone().unwrap();
        let net = ns
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path(), &None, "none: a new namespace");
    }

    #[test]
    fn bad_input_is_an_error() {
        let bad = |h: HostConfig| {
            build_spec(SpecInput {
                id: "x",
                config: &cfg(),
                host_config: &h,
                default_ulimits: &BTreeMap::new(),
                user: &ResolvedUser::default(),
                host: &host(),
                etc_files: &[],
                cgroup_parent: "/berth",
                init_binary: None,
                netns: None,
                mounts: &[],
            })
            .is_err()
        };
        assert!(bad(HostConfig {
            cap_add: vec!["NOPE".into()],
            ..Default::default()
        }));
        assert!(bad(HostConfig {
            security_opt: vec!["bogus".into()],
            ..Default::default()
        }));
        assert!(bad(HostConfig {
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 9,
                hard: 1
            }],
            ..Default::default()
        }));
    }
}
