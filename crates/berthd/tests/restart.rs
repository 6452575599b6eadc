//! Tier 2: restart policies through a real berthd, containerd and runc: each policy, the
//! backoff, manual stops, `docker update --restart`, and the daemon's own restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestDaemon, a_second_ago, import_busybox, wait_until};

const TOOLS: &[&str] = &["containerd", "runc", "docker", "busybox"];

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn each_policy_restarts_as_dockerd_with_its_backoff() {
    common::require_root_tier("restart_policies", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    let t0 = a_second_ago();

    d.run_d(&["--name", "no", "test/busybox:1", "sh", "-c", "exit 1"]);
    d.run_d(&[
        "--name",
        "fail2",
        "--restart",
        "on-failure:2",
        "test/busybox:1",
        "sh",
        "-c",
        "exit 1",
    ]);
    d.run_d(&[
        "--name",
        "ok",
        "--restart",
        "on-failure",
        "test/busybox:1",
        "true",
    ]);
    d.run_d(&[
        "--name",
        "always",
        "--restart",
        "always",
        "test/busybox:1",
        "sh",
        "-c",
        "exit 3",
    ]);

    wait_until("on-failure:2 gives up", Duration::from_secs(20), || {
        d.inspect("fail2", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    assert_eq!(d.inspect("fail2", "{{.State.ExitCode}}"), "1");
    wait_until("always restarts", Duration::from_secs(20), || {
        d.inspect("always", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 4
    });
    assert_eq!(
        d.inspect("no", "{{.RestartCount}} {{.State.Status}}"),
        "0 exited"
    );
    assert_eq!(
        d.inspect("ok", "{{.RestartCount}} {{.State.Status}}"),
        "0 exited"
    );

    // The backoff the daemon decided (from its log, not from the wall clock): 100 ms, then
    // doubling, between an exit and the next start.
    let id = d.inspect("always", "{{.Id}}");
    let delays: Vec<Duration> = d
        .log_text()
        .lines()
        .filter(|l| l.contains("restarting by its restart policy") && l.contains(&id))
        .filter_map(|l| {
            l.split("delay=")
                .nth(1)?
                .split_whitespace()
                .next()
                .map(parse_debug_duration)
        })
        .collect();
    assert!(delays.len() >= 4, "{}", d.log_text());
    assert_eq!(
        delays[..4],
        [100, 200, 400, 800].map(Duration::from_millis),
        "{delays:?}"
    );
    // The starts are in the order the events say.
    let (code, out, err) = d.docker(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        "0s",
        "--filter",
        "container=always",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(code, 0, "{err}");
    let actions: Vec<&str> = out
        .lines()
        .filter(|a| *a == "start" || *a == "die")
        .collect();
    // Each restart's start follows the die before it (the events may still be catching up
    // with the last restarts).
    assert!(actions.len() >= 4, "{out}");
    for (i, a) in actions.iter().enumerate() {
        assert_eq!(*a, ["start", "die"][i % 2], "{out}");
    }

    // A manual stop is final; the count holds.
    assert_eq!(d.docker(&["stop", "-t", "1", "always"]).0, 0);
    let count = d.inspect("always", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        d.inspect("always", "{{.RestartCount}} {{.State.Status}}"),
        format!("{count} exited")
    );
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn manual_kill_update_and_daemon_restart() {
    common::require_root_tier("restart_daemon", TOOLS);
    let mut d = TestDaemon::new().start(&["--shutdown-timeout", "1"]);
    import_busybox(&d);
    d.run_d(&[
        "--name",
        "us",
        "--restart",
        "unless-stopped",
        "test/busybox:1",
        "sleep",
        "600",
    ]);
    d.run_d(&[
        "--name",
        "us-killed",
        "--restart",
        "unless-stopped",
        "test/busybox:1",
        "sleep",
        "600",
    ]);
    d.run_d(&[
        "--name",
        "al-stopped",
        "--restart",
        "always",
        "test/busybox:1",
        "sleep",
        "600",
    ]);
    d.run_d(&[
        "--name",
        "upd",
        "test/busybox:1",
        "sh",
        "-c",
        "trap 'exit 5' USR1; while true; do sleep 0.2; done",
    ]);

    assert_eq!(d.docker(&["kill", "us-killed"]).0, 0);
    assert_eq!(d.docker(&["stop", "-t", "1", "al-stopped"]).0, 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.inspect("us-killed", "{{.State.Status}}"),
        "exited",
        "kill is manual"
    );

    // A policy set on a running container applies at its next exit; a signal that is not the
    // stop signal is not a manual stop.
    let (code, _, err) = d.docker(&["update", "--restart", "always", "upd"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        d.inspect("upd", "{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    assert_eq!(d.docker(&["kill", "-s", "USR1", "upd"]).0, 0);
    wait_until("updated policy restarts", Duration::from_secs(10), || {
        d.inspect("upd", "{{.RestartCount}} {{.State.Status}}") == "1 running"
    });

    // Without live-restore the daemon stops them; at start it brings back `always` (even
    // stopped by hand) and `unless-stopped` unless stopped by hand.
    d.stop();
    let d = d.start(&["--shutdown-timeout", "1"]);
    wait_until(
        "policies applied at daemon start",
        Duration::from_secs(20),
        || {
            d.inspect("us", "{{.State.Status}}") == "running"
                && d.inspect("al-stopped", "{{.State.Status}}") == "running"
                && d.inspect("upd", "{{.State.Status}}") == "running"
        },
    );
    assert_eq!(d.inspect("us-killed", "{{.State.Status}}"), "exited");
    let (code, _, err) = d.docker(&["rm", "-f", "us", "al-stopped", "upd", "us-killed"]);
    assert_eq!(code, 0, "{err}");
}

/// `Duration`'s Debug form (`100ms`, `1.6s`) as logged.
fn parse_debug_duration(s: &str) -> Duration {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().unwrap();
    match unit {
        "ms" => Duration::from_secs_f64(n / 1e3),
        "s" => Duration::from_secs_f64(n),
        "µs" => Duration::from_secs_f64(n / 1e6),
        other => panic!("unit {other} in {s}"),
    }
}
