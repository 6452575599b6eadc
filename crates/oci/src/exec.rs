use std::collections::BTreeMap;

use berth_config::Ulimit;
use oci_spec::runtime::{Process, UserBuilder};

use crate::{ResolvedUser, SpecError, merged_rlimits};

/// What `docker exec` asks for.
#[derive(Debug, Clone, Copy)]
pub struct ExecInput<'a> {
    /// The container's own process spec, as it was started.
    pub container_process: &'a Process,
    pub args: &'a [String],
    pub env: &'a [String],
    /// Empty: the container's working directory.
    pub working_dir: &'a str,
    /// None: the container's user.
    pub user: Option<&'a ResolvedUser>,
    pub tty: bool,
    pub privileged: bool,
    /// The daemon's bounding set, for `exec --privileged`.
    pub bounding: &'a std::collections::BTreeSet<String>,
    pub container_ulimits: &'a [Ulimit],
    /// `default-ulimits` of the snapshot the exec loaded.
    pub default_ulimits: &'a BTreeMap<String, Ulimit>,
}

/// An exec's process: the container's process (capabilities, AppArmor profile,
/// no-new-privileges, rlimits) with the exec's command, environment, directory, user and
/// terminal.
pub fn exec_process(input: ExecInput<'_>) -> Result<Process, SpecError> {
    let mut p = input.container_process.clone();
    p.set_args(Some(input.args.to_vec()));
    let mut env = p.env().clone().unwrap_or_default();
    for e in input.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if !input.working_dir.is_empty() {
        p.set_cwd(input.working_dir.into());
    }
    p.set_terminal(Some(input.tty));
    p.set_console_size(None);
    if let Some(u) = input.user {
        let mut b = UserBuilder::default().uid(u.uid).gid(u.gid);
        if !u.additional_gids.is_empty() {
            b = b.additional_gids(u.additional_gids.clone());
        }
        p.set_user(b.build()?);
    }
    if input.privileged {
        let all = crate::spec::capability_set(input.bounding)?;
        p.set_capabilities(Some(crate::spec::capabilities(all)?));
    }
    p.set_rlimits(Some(merged_rlimits(
        input.container_ulimits,
        input.default_ulimits,
    )?));
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ResolvedUser, SpecInput, StaticHost, build_spec};
    use berth_model::{ContainerConfig, HostConfig};

    fn container(h: &HostConfig, host: &StaticHost) -> Process {
        let c = ContainerConfig {
            hostname: "h".into(),
            cmd: Some(vec!["sleep".into()]),
            env: vec!["A=1".into(), "B=2".into()],
            working_dir: "/srv".into(),
            ..Default::default()
        };
        build_spec(SpecInput {
            id: "x",
            config: &c,
            host_config: h,
            default_ulimits: &BTreeMap::new(),
            user: &ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![],
            },
            host,
            etc_files: &[],
            cgroup_parent: "/berth",
            init_binary: None,
            netns: None,
            mounts: &[],
        })
        .unwrap()
        .process()
        .clone()
        .unwrap()
    }

    #[test]
    fn exec_inherits_caps_rlimits_profile_and_user() {
        let host = StaticHost {
            apparmor: true,
            bounding: crate::caps_from_mask(0x1fffeffffff),
            ..Default::default()
        };
        let ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 1234,
            hard: 2345,
        }];
        let h = HostConfig {
            cap_drop: vec!["ALL".into()],
            ulimits: ulimits.clone(),
            ..Default::default()
        };
        let cp = container(&h, &host);
        let p = exec_process(ExecInput {
            container_process: &cp,
            args: &["sh".into()],
            env: &["B=3".into()],
            working_dir: "",
            user: None,
            tty: true,
            privileged: false,
            bounding: &host.bounding,
            container_ulimits: &ulimits,
            default_ulimits: &BTreeMap::new(),
        })
        .unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &vec!["sh".to_string()]);
        assert!(
            p.capabilities()
                .as_ref()
                .unwrap()
                .effective()
                .as_ref()
                .unwrap()
                .is_empty()
        );
        assert_eq!(p.rlimits().as_ref().unwrap()[0].soft(), 1234);
        assert_eq!(p.apparmor_profile().as_deref(), Some("docker-default"));
        assert_eq!(p.user().uid(), 1000);
        assert_eq!(p.cwd().display().to_string(), "/srv");
        let env = p.env().as_ref().unwrap();
        assert!(
            env.contains(&"A=1".to_string())
                && env.contains(&"B=3".to_string())
                && !env.contains(&"B=2".to_string())
        );
        assert_eq!(p.terminal(), Some(true));
    }

    #[test]
    fn privileged_exec_gets_the_bounding_set_and_keeps_the_profile() {
        let host = StaticHost {
            apparmor: true,
            bounding: crate::caps_from_mask(0xff),
            ..Default::default()
        };
        let cp = container(&HostConfig::default(), &host);
        let p = exec_process(ExecInput {
            container_process: &cp,
            args: &["id".into()],
            env: &[],
            working_dir: "/tmp",
            user: Some(&ResolvedUser::default()),
            tty: false,
            privileged: true,
            bounding: &host.bounding,
            container_ulimits: &[],
            default_ulimits: &BTreeMap::new(),
        })
        .unwrap();
        assert_eq!(
            p.capabilities()
                .as_ref()
                .unwrap()
                .effective()
                .as_ref()
                .unwrap()
                .len(),
            8
        );
        assert_eq!(p.apparmor_profile().as_deref(), Some("docker-default"));
        assert_eq!(p.user().uid(), 0);
        assert_eq!(p.cwd().display().to_string(), "/tmp");
    }
}
