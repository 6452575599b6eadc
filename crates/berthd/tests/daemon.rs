//! Tier 2: a real berthd with its own containerd, driven by the docker CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestDaemon, alive, wait_until};

const TOOLS: &[&str] = &["containerd", "runc", "docker"];

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn docker_version_and_info_answer_from_berthd_with_its_own_containerd() {
    common::require_root_tier("version_and_info", TOOLS);
    let d = TestDaemon::new();
    d.write_config(r#"{"runtimes": {"alt": {"path": "/usr/sbin/runc"}}, "live-restore": true}"#);
    let d = d.start(&[]);

    let (code, out, err) = d.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!((code, out.as_str()), (0, "1.47"), "{err}");
    let (code, out, _) = d.docker(&[
        "version",
        "--format",
        "{{range .Server.Components}}{{.Name}} {{end}}",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Engine") && out.contains("containerd") && out.contains("runc"),
        "{out}"
    );

    let (code, out, err) = d.docker(&[
        "info",
        "--format",
        "{{json .Runtimes}}|{{.DefaultRuntime}}|{{.LiveRestoreEnabled}}|{{.DockerRootDir}}",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"runc\"") && out.contains("\"alt\""), "{out}");
    assert!(
        out.ends_with(&format!("|runc|true|{}", d.data_root().display())),
        "{out}"
    );

    // Its containerd runs on berthd's own paths, in its process tree.
    let cpid = d.containerd_pid().expect("containerd pid file");
    assert!(alive(cpid));
    let cmdline = std::fs::read_to_string(format!("/proc/{cpid}/cmdline")).unwrap();
    assert!(
        cmdline.contains(&d.exec_root.display().to_string()),
        "{cmdline}"
    );
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn killed_containerd_is_restarted() {
    common::require_root_tier("containerd_restart", TOOLS);
    let d = TestDaemon::new().start(&[]);
    let first = d.containerd_pid().expect("containerd pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("a new containerd", Duration::from_secs(20), || {
        d.containerd_pid().is_some_and(|p| p != first && alive(p))
    });
    wait_until(
        "containerd answering again",
        Duration::from_secs(20),
        || {
            let (code, out, _) = d.docker(&[
                "version",
                "--format",
                "{{range .Server.Components}}{{.Name}} {{end}}",
            ]);
            code == 0 && out.contains("containerd")
        },
    );
    assert!(
        d.log_text().contains("containerd exited unexpectedly"),
        "{}",
        d.log_text()
    );
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn sigterm_leaves_no_process_socket_or_pidfile() {
    common::require_root_tier("sigterm_cleanup", TOOLS);
    let mut d = TestDaemon::new().start(&[]);
    let berthd = d.pid();
    assert!(d.pidfile.exists() && d.socket.exists());
    assert!(!d.own_processes().is_empty(), "containerd should run");
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
    assert!(!alive(berthd));
    assert!(!d.socket.exists(), "socket left behind");
    assert!(!d.pidfile.exists(), "pid file left behind");
    assert_eq!(
        d.own_processes(),
        Vec::<i32>::new(),
        "processes left behind"
    );
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn a_second_berthd_on_the_same_pidfile_or_data_root_refuses_to_start() {
    common::require_root_tier("second_daemon", TOOLS);
    let d = TestDaemon::new().start(&[]);
    let pid_before = std::fs::read_to_string(&d.pidfile).unwrap();

    // Same pid file, every other path its own.
    let other = TestDaemon::new();
    let mut args = other.base_args();
    let i = args.iter().position(|a| a == "--pidfile").unwrap();
    args[i + 1] = d.pidfile.display().to_string();
    let out = std::process::Command::new(common::BERTHD)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pid file found"), "{err}");

    // Same data-root, its own pid file.
    let mut args = other.base_args();
    let i = args.iter().position(|a| a == "--data-root").unwrap();
    args[i + 1] = d.data_root().display().to_string();
    let out = std::process::Command::new(common::BERTHD)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another berthd is using data-root"), "{err}");

    // The first daemon is unharmed.
    assert_eq!(std::fs::read_to_string(&d.pidfile).unwrap(), pid_before);
    assert_eq!(d.request("GET", "/_ping").map(|r| r.0), Some(200));
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn metrics_count_containerd_rpcs_by_method() {
    common::require_root_tier("metrics", TOOLS);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let d = TestDaemon::new().start(&["--metrics-addr", &addr]);
    let scrape = || {
        let out = std::process::Command::new("curl")
            .args(["-sf", &format!("http://{addr}/metrics")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let count = |text: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with("berth_containerd_rpc_total{method=\"/containerd.services.version.v1.Version/Version\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = count(&scrape());
    assert_eq!(d.docker(&["version"]).0, 0);
    let after = count(&scrape());
    assert_eq!(after, before + 1, "one Version RPC per docker version");
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn sighup_reloads_runtimes_and_a_broken_file_changes_nothing() {
    common::require_root_tier("reload", TOOLS);
    let d = TestDaemon::new();
    d.write_config(r#"{"runtimes": {"alt": {"path": "/usr/sbin/runc"}}}"#);
    let d = d.start(&[]);
    let runtimes = || d.docker(&["info", "--format", "{{json .Runtimes}}"]).1;
    let hup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(d.pid()),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };

    d.write_config(
        r#"{"runtimes": {"fresh": {"path": "/usr/sbin/runc", "runtimeArgs": ["--debug"]}}}"#,
    );
    hup();
    wait_until("the reloaded runtimes", Duration::from_secs(10), || {
        runtimes().contains("\"fresh\"")
    });
    assert!(!runtimes().contains("\"alt\""));
    let wrappers: Vec<_> = std::fs::read_dir(d.data_root().join("runtimes"))
        .unwrap()
        .collect();
    assert_eq!(wrappers.len(), 1, "one content-addressed wrapper for fresh");

    d.write_config(r#"{ "runtimes": "#);
    hup();
    wait_until(
        "the reload error in the log",
        Duration::from_secs(10),
        || d.log_text().contains("Error reconfiguring the daemon"),
    );
    assert!(
        runtimes().contains("\"fresh\""),
        "a broken file changes nothing"
    );
    assert_eq!(d.request("GET", "/_ping").map(|r| r.0), Some(200));
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn tcp_without_tls_is_refused() {
    common::require_root_tier("tcp_refused", TOOLS);
    let d = TestDaemon::new();
    let mut args = d.base_args();
    let i = args.iter().position(|a| a == "-H").unwrap();
    args[i + 1] = "tcp://127.0.0.1:2375".into();
    let out = std::process::Command::new(common::BERTHD)
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without TLS"), "{err}");
    assert!(d.own_processes().is_empty(), "nothing started");
}
