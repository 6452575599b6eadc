//! The reference's acceptance checklist, items 29–40 (ulimits and AppArmor), one named test
//! each, through the spec crate's public functions. Loading profiles (36, 39) and the "no
//! loading when unsupported" half of 35 are daemon work: berth-daemon's `apparmor` tests and
//! `checklist::item_35_*`/`item_39_*` there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use berth_config::Ulimit;
use berth_model::{ContainerConfig, HostConfig};
use berth_oci::{
    ExecInput, ResolvedUser, SpecInput, StaticHost, build_spec, caps_from_mask, exec_process,
    merge_ulimits, merged_rlimits, parse_security_opts,
};
use oci_spec::runtime::{PosixRlimitType, Process, Spec};

fn u(name: &str, soft: i64, hard: i64) -> Ulimit {
    Ulimit {
        name: name.into(),
        soft,
        hard,
    }
}

fn host(apparmor: bool) -> StaticHost {
    StaticHost {
        apparmor,
        cgroup_v2: false,
        bounding: caps_from_mask(0x1fffeffffff),
        hostname: "h".into(),
    }
}

fn spec(h: &HostConfig, defaults: &BTreeMap<String, Ulimit>, facts: &StaticHost) -> Spec {
    let c = ContainerConfig {
        hostname: "h".into(),
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    build_spec(SpecInput {
        id: "c",
        config: &c,
        host_config: h,
        default_ulimits: defaults,
        user: &ResolvedUser::default(),
        host: facts,
        etc_files: &[],
        cgroup_parent: "/berth",
        init_binary: None,
        netns: None,
        mounts: &[],
    })
    .unwrap()
}

fn exec(p: &Process, privileged: bool, facts: &StaticHost) -> Process {
    exec_process(ExecInput {
        container_process: p,
        args: &["id".into()],
        env: &[],
        working_dir: "",
        user: None,
        tty: false,
        privileged,
        bounding: &facts.bounding,
        container_ulimits: &[],
        default_ulimits: &BTreeMap::new(),
    })
    .unwrap()
}

#[test]
fn item_29_container_ulimits_then_daemon_defaults() {
    let defaults = BTreeMap::from([
        ("nofile".into(), u("nofile", 10, 20)),
        ("core".into(), u("core", -1, -1)),
    ]);
    let r = merged_rlimits(&[u("nofile", 1, 2)], &defaults).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0].typ(), r[0].soft(), r[0].hard()),
        (PosixRlimitType::RlimitNofile, 1, 2)
    );
    assert_eq!(
        (r[1].typ(), r[1].hard()),
        (PosixRlimitType::RlimitCore, u64::MAX)
    );
}

#[test]
fn item_30_exec_gets_the_merged_rlimits_and_inspect_shows_them() {
    let defaults = BTreeMap::from([("nproc".into(), u("nproc", 5, 6))]);
    let facts = host(false);
    let h = HostConfig {
        ulimits: vec![u("nofile", 1, 2)],
        ..Default::default()
    };
    let p = spec(&h, &defaults, &facts).process().clone().unwrap();
    let e = exec_process(ExecInput {
        container_process: &p,
        args: &["x".into()],
        env: &[],
        working_dir: "",
        user: None,
        tty: false,
        privileged: false,
        bounding: &facts.bounding,
        container_ulimits: &h.ulimits,
        default_ulimits: &defaults,
    })
    .unwrap();
    assert_eq!(e.rlimits(), p.rlimits());
    let shown = merge_ulimits(&h.ulimits, &defaults);
    assert_eq!(shown, vec![u("nofile", 1, 2), u("nproc", 5, 6)]);
    assert_eq!(h.ulimits.len(), 1, "the stored HostConfig is not changed");
}

#[test]
fn item_31_no_missing_section_makes_an_option_fail() {
    // An exec from a bare process (no capabilities, rlimits or profile) still builds.
    let facts = host(true);
    let e = exec(&Process::default(), true, &facts);
    assert_eq!(e.args().as_deref(), Some(&["id".to_string()][..]));
    assert!(e.capabilities().is_some());
}

#[test]
fn item_32_unset_resources_are_omitted() {
    let s = spec(&HostConfig::default(), &BTreeMap::new(), &host(false));
    let r = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
    assert!(
        r.cpu().is_none() && r.block_io().is_none() && r.memory().is_none() && r.pids().is_none()
    );
}

#[test]
fn item_33_default_ulimit_flag_rules_and_json_shape() {
    assert!(Ulimit::parse("bogus=1").is_err());
    assert!(Ulimit::parse("nofile=2:1").is_err());
    assert!(Ulimit::parse("nofile=1:2:3").is_err());
    let json = serde_json::to_string(&u("nofile", 1024, 2048)).unwrap();
    assert_eq!(json, r#"{"Name":"nofile","Soft":1024,"Hard":2048}"#);
    assert_eq!(
        serde_json::from_str::<Ulimit>(&json).unwrap(),
        u("nofile", 1024, 2048)
    );
}

#[test]
fn item_34_host_support_is_a_fact_given_to_the_builder() {
    // The four checks and the once-per-process reading are berth-daemon's
    // (`host::tests::apparmor_needs_all_four_checks`, `MachineHost::read` at start); the
    // builder only takes the answer.
    let with = spec(&HostConfig::default(), &BTreeMap::new(), &host(true));
    let without = spec(&HostConfig::default(), &BTreeMap::new(), &host(false));
    assert!(
        with.process()
            .as_ref()
            .unwrap()
            .apparmor_profile()
            .is_some()
    );
    assert!(
        without
            .process()
            .as_ref()
            .unwrap()
            .apparmor_profile()
            .is_none()
    );
}

#[test]
fn item_35_unsupported_hosts_get_no_profile_in_container_or_exec() {
    let facts = host(false);
    for privileged in [false, true] {
        let h = HostConfig {
            privileged,
            security_opt: vec!["apparmor=custom".into()],
            ..Default::default()
        };
        let p = spec(&h, &BTreeMap::new(), &facts)
            .process()
            .clone()
            .unwrap();
        assert!(p.apparmor_profile().is_none());
        assert!(exec(&p, privileged, &facts).apparmor_profile().is_none());
    }
}

#[test]
fn item_36_explicit_then_privileged_then_default() {
    let facts = host(true);
    let profile = |h: HostConfig| {
        spec(&h, &BTreeMap::new(), &facts)
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
    assert_eq!(
        profile(HostConfig {
            security_opt: vec!["apparmor=mine".into()],
            ..Default::default()
        })
        .as_deref(),
        Some("mine")
    );
}

#[test]
fn item_37_exec_matrix() {
    let facts = host(true);
    let cases = [
        (HostConfig::default(), "docker-default"),
        (
            HostConfig {
                security_opt: vec!["apparmor=my-custom-profile".into()],
                ..Default::default()
            },
            "my-custom-profile",
        ),
        (
            HostConfig {
                privileged: true,
                ..Default::default()
            },
            "unconfined",
        ),
        (
            HostConfig {
                privileged: true,
                security_opt: vec!["apparmor=my-custom-profile".into()],
                ..Default::default()
            },
            "my-custom-profile",
        ),
    ];
    for (h, want) in cases {
        let p = spec(&h, &BTreeMap::new(), &facts)
            .process()
            .clone()
            .unwrap();
        for exec_privileged in [false, true] {
            let e = exec(&p, exec_privileged, &facts);
            assert_eq!(
                e.apparmor_profile().as_deref(),
                Some(want),
                "{h:?} exec privileged {exec_privileged}"
            );
            if exec_privileged {
                let caps = e
                    .capabilities()
                    .as_ref()
                    .unwrap()
                    .effective()
                    .as_ref()
                    .unwrap()
                    .len();
                assert_eq!(
                    caps,
                    facts.bounding.len(),
                    "exec --privileged gets every capability"
                );
            }
        }
    }
}

#[test]
fn item_38_a_privileged_container_keeps_its_explicit_profile_on_every_start() {
    let facts = host(true);
    let h = HostConfig {
        privileged: true,
        security_opt: vec!["apparmor=kept".into()],
        ..Default::default()
    };
    for _start in 0..3 {
        let p = spec(&h, &BTreeMap::new(), &facts)
            .process()
            .clone()
            .unwrap();
        assert_eq!(p.apparmor_profile().as_deref(), Some("kept"));
    }
}

#[test]
fn item_39_loading_failures() {
    // The builder never loads; berth-daemon's `apparmor::tests` and `checklist::item_39_*`
    // show a failed load logged at start and failing a start or exec.
    let p = spec(&HostConfig::default(), &BTreeMap::new(), &host(true));
    assert_eq!(
        p.process().as_ref().unwrap().apparmor_profile().as_deref(),
        Some("docker-default")
    );
}

#[test]
fn item_40_security_opt_forms_and_errors() {
    let o = parse_security_opts(&["apparmor=a".into()]).unwrap();
    assert_eq!(o.apparmor_profile.as_deref(), Some("a"));
    let o = parse_security_opts(&["apparmor:b".into()]).unwrap();
    assert_eq!(o.apparmor_profile.as_deref(), Some("b"));
    assert_eq!(
        parse_security_opts(&["x".into()]).unwrap_err().to_string(),
        r#"invalid --security-opt 1: "x""#
    );
    assert_eq!(
        parse_security_opts(&["x=y".into()])
            .unwrap_err()
            .to_string(),
        r#"invalid --security-opt 2: "x=y""#
    );
}
