//! Golden spec: berth's spec for `docker run --network none --hostname golden IMG sleep 600`
//! against the config.json dockerd 20.10 gave runc for the same command on this machine
//! (`golden/dockerd-20.10-run-network-none.json`; host paths and dockerd's allow-list seccomp
//! profile removed). Where berth differs on purpose, the test says so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use berth_model::{ContainerConfig, HostConfig};
use berth_oci::{ResolvedUser, SpecInput, StaticHost, build_spec, caps_from_mask};
use serde_json::Value;

fn dockerd() -> Value {
    serde_json::from_str(include_str!("golden/dockerd-20.10-run-network-none.json")).unwrap()
}

fn berth() -> Value {
    let config = ContainerConfig {
        hostname: "golden".into(),
        cmd: Some(vec!["sleep".into(), "600".into()]),
        ..Default::default()
    };
    let host = HostConfig {
        network_mode: "none".into(),
        ..Default::default()
    };
    let facts = StaticHost {
        apparmor: false,
        cgroup_v2: false,
        bounding: caps_from_mask(0x1fffeffffff),
        hostname: "vm".into(),
    };
    let etc = [
        ("/etc/resolv.conf".to_string(), "/c/resolv.conf".into()),
        ("/etc/hostname".to_string(), "/c/hostname".into()),
        ("/etc/hosts".to_string(), "/c/hosts".into()),
    ];
    let spec = build_spec(SpecInput {
        id: "golden",
        config: &config,
        host_config: &host,
        default_ulimits: &BTreeMap::new(),
        user: &ResolvedUser::default(),
        host: &facts,
        etc_files: &etc,
        cgroup_parent: "/berth",
        init_binary: None,
        netns: None,
        mounts: &[],
    })
    .unwrap();
    serde_json::to_value(spec).unwrap()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn same_capabilities() {
    let (d, b) = (dockerd(), berth());
    for set in ["bounding", "effective", "permitted"] {
        assert_eq!(
            strings(&b["process"]["capabilities"][set]),
            strings(&d["process"]["capabilities"][set]),
            "{set}"
        );
    }
    assert!(b["process"]["capabilities"]["inheritable"].is_null());
    assert!(b["process"]["capabilities"]["ambient"].is_null());
}

#[test]
fn same_process() {
    let (d, b) = (dockerd(), berth());
    assert_eq!(b["process"]["args"], d["process"]["args"]);
    assert_eq!(b["process"]["cwd"], d["process"]["cwd"]);
    assert_eq!(b["process"]["user"]["uid"], d["process"]["user"]["uid"]);
    assert_eq!(b["process"]["user"]["gid"], d["process"]["user"]["gid"]);
    assert!(strings(&b["process"]["env"]).is_superset(&strings(&d["process"]["env"])));
    assert!(d["process"]["rlimits"].is_null());
    assert_eq!(
        b["process"]["rlimits"],
        serde_json::json!([]),
        "no daemon defaults here"
    );
    assert_eq!(b["root"]["path"], d["root"]["path"]);
    assert_eq!(b["hostname"], d["hostname"]);
}

#[test]
fn same_mounts() {
    let key = |v: &Value| -> BTreeSet<(String, String, BTreeSet<String>)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["destination"].as_str().unwrap().to_string(),
                    m["type"].as_str().unwrap().to_string(),
                    strings(&m["options"]),
                )
            })
            .collect()
    };
    assert_eq!(key(&berth()["mounts"]), key(&dockerd()["mounts"]));
}

#[test]
fn same_namespaces_sysctls_and_paths() {
    let (d, b) = (dockerd(), berth());
    let types = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        types(&b["linux"]["namespaces"]),
        types(&d["linux"]["namespaces"])
    );
    assert_eq!(b["linux"]["sysctl"], d["linux"]["sysctl"]);
    assert_eq!(
        strings(&b["linux"]["readonlyPaths"]),
        strings(&d["linux"]["readonlyPaths"])
    );
    // Newer dockerd also masks /sys/devices/virtual/powercap; berth does too.
    let extra: BTreeSet<String> = strings(&b["linux"]["maskedPaths"])
        .difference(&strings(&d["linux"]["maskedPaths"]))
        .cloned()
        .collect();
    assert_eq!(extra, ["/sys/devices/virtual/powercap".to_string()].into());
}

#[test]
fn devices_deny_by_default_and_allow_at_least_dockerds() {
    let (d, b) = (dockerd(), berth());
    let rules = |v: &Value| {
        v["linux"]["resources"]["devices"]
            .as_array()
            .unwrap()
            .clone()
    };
    let (dr, br) = (rules(&d), rules(&b));
    assert_eq!(br[0]["allow"], false, "everything denied first");
    assert_eq!(dr[0]["allow"], false);
    for r in dr.iter().skip(1).filter(|r| r["allow"] == true) {
        assert!(
            br.iter().any(|x| x["allow"] == true
                && x["type"] == r["type"]
                && x["major"] == r["major"]
                && x["minor"] == r["minor"]),
            "dockerd allows {r}, berth must too"
        );
    }
}

#[test]
fn unset_resources_are_omitted_where_dockerd_20_10_wrote_zeros() {
    let (d, b) = (dockerd(), berth());
    assert_eq!(
        d["linux"]["resources"]["cpu"]["shares"], 0,
        "the old dockerd behaviour"
    );
    assert!(b["linux"]["resources"]["cpu"].is_null());
    assert!(b["linux"]["resources"]["blockIO"].is_null());
    assert!(b["linux"]["resources"]["memory"].is_null());
}
