//! Tier 2: reloads racing container starts, and containers outliving their runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestDaemon, import_busybox, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TOOLS: &[&str] = &["containerd", "runc", "docker", "busybox"];

fn runc() -> String {
    [
        "/usr/sbin/runc",
        "/usr/bin/runc",
        "/usr/local/sbin/runc",
        "/sbin/runc",
    ]
    .iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("runc")
    .to_string()
}

fn flip_config(args: &str) -> String {
    format!(
        r#"{{"runtimes": {{"flip": {{"path": "{}", "runtimeArgs": ["--log-format", "{args}"]}}}}}}"#,
        runc()
    )
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn a_hundred_runs_racing_a_hundred_reloads_all_succeed() {
    common::require_root_tier("reload_storm", TOOLS);
    let d = TestDaemon::new();
    d.write_config(&flip_config("json"));
    let d = Arc::new(d.start(&[]));
    import_busybox(&d);
    let pid = Pid::from_raw(d.pid());

    let done = Arc::new(AtomicBool::new(false));
    let reloads = Arc::new(AtomicUsize::new(0));
    let storm = {
        let (d, done, reloads) = (d.clone(), done.clone(), reloads.clone());
        std::thread::spawn(move || {
            for i in 0..100 {
                d.write_config(&flip_config(if i % 2 == 0 { "text" } else { "json" }));
                kill(pid, Signal::SIGHUP).unwrap();
                reloads.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(30));
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let failures = Arc::new(AtomicUsize::new(0));
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let (d, failures) = (d.clone(), failures.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let (code, _, err) = d.docker(&[
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "--runtime",
                        "flip",
                        "test/busybox:1",
                        "true",
                    ]);
                    if code != 0 {
                        eprintln!("run failed: {err}");
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for r in runs {
        r.join().unwrap();
    }
    storm.join().unwrap();
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(reloads.load(Ordering::SeqCst), 100);
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "runs failed while reloading"
    );
    wait_until("every reload applied", Duration::from_secs(10), || {
        d.log_text().matches("Reloaded configuration").count() >= 1
    });
    let scripts = std::fs::read_dir(d.data_root().join("runtimes"))
        .unwrap()
        .count();
    assert_eq!(
        scripts, 2,
        "two contents, two scripts, whatever the number of reloads"
    );
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn removed_runtime_keeps_running_containers_and_refuses_starts() {
    common::require_root_tier("removed_runtime", TOOLS);
    let d = TestDaemon::new();
    d.write_config(&format!(
        r#"{{"runtimes": {{"gone": {{"path": "{}", "runtimeArgs": ["--log-format", "json"]}}}}}}"#,
        runc()
    ));
    let d = d.start(&[]);
    import_busybox(&d);
    let (code, _, err) = d.docker(&[
        "run",
        "-d",
        "--name",
        "r1",
        "--network",
        "none",
        "--runtime",
        "gone",
        "test/busybox:1",
        "sleep",
        "600",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.HostConfig.Runtime}}", "r1"])
            .1,
        "gone"
    );

    // Runtimes are replaced only when the file names the key (dockerd's rule).
    d.write_config(r#"{"runtimes": {}}"#);
    kill(Pid::from_raw(d.pid()), Signal::SIGHUP).unwrap();
    wait_until(
        "the runtime gone from info",
        Duration::from_secs(10),
        || {
            !d.docker(&["info", "--format", "{{json .Runtimes}}"])
                .1
                .contains("gone")
        },
    );
    assert_eq!(d.docker(&["exec", "r1", "echo", "still"]).1, "still");
    assert_eq!(d.docker(&["stop", "-t", "1", "r1"]).0, 0);
    let (code, _, err) = d.docker(&["start", "r1"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown or invalid runtime name: gone"),
        "{err}"
    );
    let (code, _, err) = d.docker(&["run", "--rm", "--runtime", "gone", "test/busybox:1", "true"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown or invalid runtime name: gone"),
        "{err}"
    );
}
