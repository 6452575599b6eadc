//! The reference's acceptance checklist, items 1–20 (runtimes, wrapper scripts, the
//! read-copy-update config), one named test each. Items that need a running daemon are
//! covered by the integration tests named in their comment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_config::{DaemonConfig, FileConfig, Flags};
use berth_runtimes::{DeriveContext, RuncOptions, Runtimes, ShimOptions};
use clap::Parser;

use crate::ConfigStore;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn ctx(&self, systemd: bool, no_pivot: bool) -> DeriveContext {
        let rt = self.dir.path().join("runtimes");
        std::fs::create_dir_all(&rt).unwrap();
        DeriveContext {
            systemd_cgroup: systemd,
            no_pivot_root: no_pivot,
            ..DeriveContext::new(rt, self.dir.path().join("exec/runtime-runc"))
        }
    }
    fn file(&self) -> PathBuf {
        self.dir.path().join("daemon.json")
    }
    fn store(&self, json: &str) -> ConfigStore {
        std::fs::write(self.file(), json).unwrap();
        let flags =
            Flags::try_parse_from(["berthd", "--config-file", self.file().to_str().unwrap()])
                .unwrap();
        let config = DaemonConfig::load(&flags).unwrap();
        ConfigStore::new(config, flags, self.ctx(false, false)).unwrap()
    }
}

fn config(json: &str) -> DaemonConfig {
    let flags = Flags::try_parse_from(["berthd"]).unwrap();
    DaemonConfig::build(&flags, &FileConfig::parse(json.as_bytes()).unwrap()).unwrap()
}

fn runc(o: &Option<ShimOptions>) -> RuncOptions {
    match o {
        Some(ShimOptions::Runc(r)) => r.clone(),
        other => panic!("not runc options: {other:?}"),
    }
}

#[test]
fn item_01_stock_names_resolve_to_the_runc_shim_with_daemon_defaults() {
    let env = Env::new();
    for (systemd, no_pivot) in [(false, false), (true, true)] {
        let r = Runtimes::derive(&config("{}"), &env.ctx(systemd, no_pivot)).unwrap();
        for name in ["", "runc", "io.containerd.runc.v2"] {
            let got = r.get(name).unwrap();
            assert_eq!(got.shim, "io.containerd.runc.v2");
            let o = runc(&got.options);
            assert_eq!(o.binary_name, "runc");
            assert_eq!(Path::new(&o.root), env.dir.path().join("exec/runtime-runc"));
            assert_eq!((o.systemd_cgroup, o.no_pivot_root), (systemd, no_pivot));
        }
    }
}

#[test]
fn item_02_runc_is_reserved_at_startup_reload_and_flag() {
    let flags = Flags::try_parse_from(["berthd"]).unwrap();
    let file = FileConfig::parse(br#"{"runtimes": {"runc": {"path": "/x"}}}"#).unwrap();
    assert_eq!(
        DaemonConfig::build(&flags, &file).unwrap_err().to_string(),
        "runtime name 'runc' is reserved"
    );
    let flag = Flags::try_parse_from(["berthd", "--add-runtime", "runc=/x"]).unwrap();
    assert!(DaemonConfig::build(&flag, &FileConfig::default()).is_err());
    let env = Env::new();
    let store = env.store("{}");
    std::fs::write(env.file(), r#"{"runtimes": {"runc": {"path": "/x"}}}"#).unwrap();
    let err = store.reload().unwrap_err();
    assert!(format!("{err:?}").contains("RuncReserved"), "{err:?}");
}

#[test]
fn item_03_invalid_combinations_in_dockerds_precedence() {
    let env = Env::new();
    let err = |json: &str| {
        Runtimes::derive(&config(json), &env.ctx(false, false))
            .unwrap_err()
            .to_string()
    };
    assert!(err(r#"{"runtimes": {"x": {"path": "/p", "runtimeArgs": ["a"], "runtimeType": "t.v1", "options": {"a": 1}}}}"#).contains("cannot configure both"));
    assert!(
        err(r#"{"runtimes": {"x": {"path": "/p", "runtimeArgs": ["a"], "options": {"a": 1}}}}"#)
            .contains("options cannot be used with a path runtime")
    );
    assert!(err(r#"{"runtimes": {"x": {"runtimeType": "t.v1", "options": {"a": 1}, "runtimeArgs": ["a"]}}}"#).contains("args cannot be used with a runtimeType runtime"));
    assert!(
        err(r#"{"runtimes": {"x": {"runtimeArgs": ["a"]}}}"#)
            .contains("either a runtimeType or a path must be configured")
    );
}

#[test]
fn item_04_default_runtime_accepts_stock_configured_and_shim_names() {
    let env = Env::new();
    for d in [
        "runc",
        "io.containerd.runc.v2",
        "mine",
        "io.containerd.kata.v2",
    ] {
        let c = config(&format!(
            r#"{{"default-runtime": "{d}", "runtimes": {{"mine": {{"path": "/bin/true"}}}}}}"#
        ));
        assert_eq!(
            Runtimes::derive(&c, &env.ctx(false, false))
                .unwrap()
                .default_name(),
            d
        );
    }
    let e = Runtimes::derive(
        &config(r#"{"default-runtime": "nope"}"#),
        &env.ctx(false, false),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "specified default runtime 'nope' does not exist"
    );
}

#[test]
fn item_05_unknown_names_are_invalid_and_shim_names_pass_through() {
    let env = Env::new();
    let r = Runtimes::derive(
        &config(r#"{"runtimes": {"my/custom.runtime.v1": {"path": "/bin/true"}}}"#),
        &env.ctx(false, false),
    )
    .unwrap();
    for bad in ["myshim", "/abs/runc", "a/io.containerd.runc.v2"] {
        let e = r.get(bad).unwrap_err();
        assert!(e.is_invalid_parameter());
        assert_eq!(
            e.to_string(),
            format!("unknown or invalid runtime name: {bad}")
        );
    }
    let pass = r.get("io.containerd.kata.v2").unwrap();
    assert_eq!(
        (pass.shim.as_str(), pass.options.is_none()),
        ("io.containerd.kata.v2", true)
    );
    assert!(
        r.get("my/custom.runtime.v1").is_ok(),
        "configured names are exempt"
    );
}

#[test]
fn item_06_wrapper_name_is_a_pure_function_of_name_and_content() {
    let env = Env::new();
    let c =
        config(r#"{"runtimes": {"w": {"path": "/usr/sbin/runc", "runtimeArgs": ["--debug"]}}}"#);
    let a = runc(
        &Runtimes::derive(&c, &env.ctx(false, false))
            .unwrap()
            .get("w")
            .unwrap()
            .options,
    )
    .binary_name;
    let b = runc(
        &Runtimes::derive(&c, &env.ctx(false, false))
            .unwrap()
            .get("w")
            .unwrap()
            .options,
    )
    .binary_name;
    assert_eq!(a, b);
    let content = std::fs::read_to_string(&a).unwrap();
    assert!(
        content.contains("/usr/sbin/runc --debug \"$@\""),
        "{content}"
    );
    let file_name = Path::new(&a)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        file_name,
        format!("w-{}", berth_images::sha256_hex(content.as_bytes()))
    );
}

#[test]
fn item_07_changed_runtimes_never_touch_earlier_scripts() {
    let env = Env::new();
    let store = env.store(r#"{"runtimes": {"a": {"path": "/bin/true", "runtimeArgs": ["1"]}, "b": {"path": "/bin/true", "runtimeArgs": ["2"]}}}"#);
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(env.dir.path().join("runtimes"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    std::fs::write(
        env.file(),
        r#"{"runtimes": {"a": {"path": "/bin/false", "runtimeArgs": ["9"]}}}"#,
    )
    .unwrap();
    store.reload().unwrap();
    for (p, bytes) in before {
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "{} changed", p.display());
    }
}

#[test]
fn item_08_the_runtimes_folder_is_emptied_only_by_start_up() {
    let env = Env::new();
    let store = env.store(r#"{"runtimes": {"a": {"path": "/bin/true", "runtimeArgs": ["1"]}}}"#);
    let dir = env.dir.path().join("runtimes");
    std::fs::write(env.file(), "{}").unwrap();
    store.reload().unwrap();
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "a reload keeps scripts"
    );
    berth_runtimes::reset_runtimes_dir(&dir).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn item_09_only_wrapped_runtimes_check_their_binary() {
    let env = Env::new();
    let r = Runtimes::derive(
        &config(r#"{"runtimes": {"p": {"path": "/no/such"}, "w": {"path": "/no/such", "runtimeArgs": ["x"]}}}"#),
        &env.ctx(false, false),
    )
    .unwrap();
    assert!(r.get("p").is_ok());
    let e = r.get("w").unwrap_err();
    assert!(
        std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    );
}

#[test]
fn item_10_options_become_typed_shim_options_without_daemon_defaults() {
    let env = Env::new();
    let r = Runtimes::derive(
        &config(r#"{"runtimes": {"o": {"runtimeType": "io.containerd.runc.v2", "options": {"BinaryName": "crun", "IoUid": 7}}}}"#),
        &env.ctx(true, true),
    )
    .unwrap();
    let o = runc(&r.get("o").unwrap().options);
    assert_eq!((o.binary_name.as_str(), o.io_uid), ("crun", 7));
    assert!(
        o.root.is_empty() && !o.systemd_cgroup && !o.no_pivot_root,
        "no defaults injected"
    );
}

// Item 11 (only the runtime name is recorded) and item 12 (a reload that removes a running
// container's runtime leaves exec/stop working; start of a stopped one fails) need a daemon:
// berthd/tests/reload.rs `removed_runtime_keeps_running_containers_and_refuses_starts`.

#[test]
fn item_13_concurrent_readers_never_see_a_torn_snapshot() {
    let env = Env::new();
    let store =
        Arc::new(env.store(r#"{"runtimes": {"a0": {"path": "/bin/true", "runtimeArgs": ["0"]}}}"#));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let s = store.load();
                    // The user's runtimes and the derived ones come from one generation.
                    for name in s.config.runtimes.keys() {
                        assert!(
                            s.runtimes.info().contains_key(name),
                            "generation {}",
                            s.generation
                        );
                    }
                    for name in s.runtimes.info().keys() {
                        assert!(
                            name == "runc"
                                || name == "io.containerd.runc.v2"
                                || s.config.runtimes.contains_key(name)
                        );
                    }
                    seen = seen.max(s.generation);
                }
                seen
            })
        })
        .collect();
    for i in 1..=50 {
        std::fs::write(
            env.file(),
            format!(
                r#"{{"runtimes": {{"a{i}": {{"path": "/bin/true", "runtimeArgs": ["{i}"]}}}}}}"#
            ),
        )
        .unwrap();
        store.reload().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(store.load().generation, 50);
}

#[test]
fn item_14_a_failing_reload_changes_nothing() {
    let env = Env::new();
    let store = env.store(r#"{"debug": true, "runtimes": {"a": {"path": "/bin/true"}}}"#);
    let before = store.load();
    std::fs::write(env.file(), r#"{"debug": false, "runtimes": {"a": {}}}"#).unwrap();
    assert!(store.reload().is_err());
    let after = store.load();
    assert!(Arc::ptr_eq(&before, &after), "the very same snapshot");
}

#[test]
fn item_15_a_reload_swaps_a_new_generation() {
    // The "Reloaded configuration: {...}" line is logged by berthd/src/run.rs with this
    // snapshot's config as JSON; berth has no proxy settings to mask, and no events API yet.
    let env = Env::new();
    let store = env.store("{}");
    std::fs::write(env.file(), r#"{"labels": ["a=b"]}"#).unwrap();
    let s = store.reload().unwrap();
    assert_eq!(s.generation, 1);
    let json = serde_json::to_value(&s.config).unwrap();
    assert_eq!(json["labels"][0], "a=b");
}

#[test]
fn item_16_per_key_reload_rules() {
    let env = Env::new();
    let store = env.store(r#"{"default-runtime": "alt", "runtimes": {"alt": {"path": "/bin/true"}}, "debug": true, "shutdown-timeout": 5}"#);
    std::fs::write(
        env.file(),
        r#"{"runtimes": {"alt": {"path": "/bin/true"}}}"#,
    )
    .unwrap();
    let s = store.reload().unwrap();
    assert_eq!(
        s.config.default_runtime.as_deref(),
        Some("alt"),
        "not reset when removed"
    );
    assert!(s.config.debug, "absent keys keep their value");
    assert_eq!(s.config.shutdown_timeout, 5);
    std::fs::write(env.file(), r#"{"default-runtime": "runc", "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 1, "Hard": 2}}}"#).unwrap();
    let s = store.reload().unwrap();
    assert_eq!(s.runtimes.default_name(), "runc");
    assert_eq!(
        s.config.default_ulimits["nofile"].hard, 2,
        "berth reloads default-ulimits"
    );
}

#[test]
fn item_17_missing_files_and_labels() {
    let flags = Flags::try_parse_from(["berthd", "--config-file", "/no/such/daemon.json"]).unwrap();
    assert!(
        DaemonConfig::load(&flags).is_err(),
        "an explicit file must exist"
    );
    assert!(
        berth_config::read_config_file(Path::new("/no/such/daemon.json"), false)
            .unwrap()
            .is_none()
    );
    let env = Env::new();
    let store = env.store(r#"{"labels": ["a=1"]}"#);
    std::fs::write(env.file(), r#"{"labels": ["foo=bar", "foo=baz"]}"#).unwrap();
    assert!(store.reload().is_err());
    std::fs::write(env.file(), r#"{"labels": ["foo=same", "foo=same"]}"#).unwrap();
    assert_eq!(store.reload().unwrap().config.labels, vec!["foo=same"]);
}

#[test]
fn item_18_the_swap_is_the_only_commit() {
    // berth's reload has no commit or rollback callbacks to mix up: the new snapshot is built
    // whole and stored in one swap; anything that fails before it leaves no trace (item 14).
    let env = Env::new();
    let store = env.store("{}");
    std::fs::write(
        env.file(),
        r#"{"runtimes": {"ok": {"path": "/bin/true"}}, "default-runtime": "missing"}"#,
    )
    .unwrap();
    assert!(store.reload().is_err());
    assert!(!store.load().runtimes.info().contains_key("ok"));
}

#[test]
fn item_19_reloads_are_serialised() {
    let env = Env::new();
    let store = Arc::new(env.store("{}"));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || store.reload().unwrap().generation)
        })
        .collect();
    let mut gens: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    gens.sort();
    assert_eq!(
        gens,
        (1..=8).collect::<Vec<_>>(),
        "each reload saw the previous one"
    );
    // A start racing a reload keeps its script: berthd/tests/reload.rs storm test.
}

#[test]
fn item_20_there_is_always_a_snapshot() {
    // The store is built with its first snapshot; loading can never see "no config".
    let env = Env::new();
    let store = env.store("");
    assert_eq!(store.load().generation, 0);
    assert_eq!(store.load().runtimes.default_name(), "runc");
}

// Items 35 and 39 at the daemon: the AppArmor host seam is a prepared root folder.

fn daemon_on(host: &Path) -> crate::testing::TestEngine {
    crate::testing::TestEngine::builder()
        .host_root(host)
        .build()
}

/// A host root where AppArmor is supported, with a parser that logs its calls and exits
/// with `code`.
fn apparmor_host(root: &Path, code: u8) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("sys/kernel/security/apparmor")).unwrap();
    std::fs::write(root.join("sys/kernel/security/apparmor/profiles"), "").unwrap();
    std::fs::create_dir_all(root.join("sys/module/apparmor/parameters")).unwrap();
    std::fs::write(root.join("sys/module/apparmor/parameters/enabled"), "Y\n").unwrap();
    std::fs::create_dir_all(root.join("sbin")).unwrap();
    let parser = root.join("sbin/apparmor_parser");
    std::fs::write(
        &parser,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexit {code}\n",
            root.join("calls").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&parser, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn item_35_no_profile_loading_when_the_host_lacks_apparmor() {
    let env = Env::new();
    let host = env.dir.path().join("host");
    apparmor_host(&host, 0);
    std::fs::write(host.join("sys/module/apparmor/parameters/enabled"), "N\n").unwrap();
    let engine = daemon_on(&host);
    let d = &engine.daemon;
    d.load_default_apparmor();
    d.ensure_apparmor(Some("docker-default")).unwrap();
    assert!(!host.join("calls").exists(), "the parser was never run");
}

#[tokio::test]
async fn item_39_a_failed_load_is_logged_at_start_and_fails_a_start() {
    let env = Env::new();
    let host = env.dir.path().join("host");
    apparmor_host(&host, 1);
    let engine = daemon_on(&host);
    let d = &engine.daemon;
    d.load_default_apparmor(); // logged, not fatal
    let err = d.ensure_apparmor(Some("docker-default")).unwrap_err();
    assert!(
        err.to_string()
            .contains("docker-default profile could not be loaded"),
        "{err}"
    );
    d.ensure_apparmor(Some("custom")).unwrap();
    let calls = std::fs::read_to_string(host.join("calls")).unwrap();
    assert_eq!(calls.lines().count(), 2, "start-up and the start: {calls}");
    assert!(calls.lines().all(|l| l.starts_with("-Kr ")));
}
