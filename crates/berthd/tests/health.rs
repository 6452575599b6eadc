//! Tier 2: health checks through a real berthd, containerd and runc, driven by the docker
//! CLI: the state machine on real probes, events, pause, live-restore continuity, and the
//! `berth.health-on-failure` label. Waits are bounded; nothing asserts a duration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestDaemon, import_busybox_as, wait_until};

const TOOLS: &[&str] = &["containerd", "runc", "docker", "busybox"];
const IMG: &str = "test/busybox:1";
const WAIT: Duration = Duration::from_secs(30);

/// busybox with the applets these probes use.
fn import_busybox(d: &TestDaemon) {
    import_busybox_as(d, IMG, |root| {
        for applet in ["touch", "rm", "false", "test"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    });
}

fn status(d: &TestDaemon, name: &str) -> String {
    d.inspect(
        name,
        "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
    )
}

fn wait_status(d: &TestDaemon, name: &str, want: &str) {
    wait_until(&format!("{name} {want}"), WAIT, || status(d, name) == want);
}

fn log_len(d: &TestDaemon, name: &str) -> usize {
    d.inspect(name, "{{len .State.Health.Log}}")
        .parse()
        .unwrap_or(0)
}

/// The `End` of the newest probe in the log.
fn last_end(d: &TestDaemon, name: &str) -> String {
    d.inspect(name, "{{range .State.Health.Log}}{{.End}}|{{end}}")
        .split('|')
        .rfind(|e| !e.is_empty())
        .unwrap_or_default()
        .to_string()
}

/// `docker events` of a container's health changes, streamed from `since` on: each probe's
/// exec events soon push older ones out of the daemon's ring of 256, so a later query could
/// miss them.
struct HealthEvents {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl HealthEvents {
    fn watch(d: &TestDaemon, name: &str, since: u64) -> HealthEvents {
        use std::io::BufRead;
        let mut child = std::process::Command::new("docker")
            .args([
                "events",
                "--since",
                &since.to_string(),
                "--filter",
                &format!("container={name}"),
                "--filter",
                "event=health_status",
                "--format",
                "{{.Action}}",
            ])
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        HealthEvents { child, lines }
    }

    /// The events until the last ones are `want` (or the wait ends).
    fn until(mut self, want: &[&str]) -> Vec<String> {
        let deadline = std::time::Instant::now() + WAIT;
        let mut got: Vec<String> = Vec::new();
        while !got.ends_with(&want.iter().map(|w| w.to_string()).collect::<Vec<_>>()) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => got.push(l),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        got
    }
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn probes_move_the_status_and_leave_no_execs_behind() {
    common::require_root_tier("health_probes", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    let events = HealthEvents::watch(&d, "hh", common::a_second_ago());
    d.run_d(&[
        "--name",
        "hh",
        "--health-cmd",
        "echo probing; test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        IMG,
        "sleep",
        "600",
    ]);
    assert_eq!(
        d.inspect("hh", "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","echo probing; test -f /tmp/ok"],"Interval":200000000,"Retries":2}"#
    );
    wait_status(&d, "hh", "unhealthy");
    let entry = d.inspect(
        "hh",
        "{{with index .State.Health.Log 0}}{{.ExitCode}} {{.Output}}{{end}}",
    );
    assert_eq!(entry.trim(), "1 probing");
    let streak: u64 = d
        .inspect("hh", "{{.State.Health.FailingStreak}}")
        .parse()
        .unwrap();
    assert!(streak >= 2, "{streak}");
    let (_, ps, _) = d.docker(&[
        "ps",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.starts_with("hh Up ") && ps.ends_with("(unhealthy)"),
        "{ps}"
    );

    assert_eq!(d.docker(&["exec", "hh", "touch", "/tmp/ok"]).0, 0);
    wait_status(&d, "hh", "healthy");
    assert_eq!(d.inspect("hh", "{{.State.Health.FailingStreak}}"), "0");
    wait_until("the log holds its last 5", WAIT, || log_len(&d, "hh") == 5);
    let want = ["health_status: unhealthy", "health_status: healthy"];
    assert_eq!(
        events.until(&want),
        want,
        "both changes as events, no others"
    );
    // Probes are execs, forgotten once they end: at most the one under way is listed.
    let execs = d.inspect("hh", "{{len .ExecIDs}}");
    assert!(matches!(execs.as_str(), "0" | "1"), "{execs}");
    let (_, none, _) = d.docker(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]);
    assert_eq!(none, "");
    let (code, _, err) = d.docker(&["ps", "--filter", "health=sick"]);
    assert!(
        code != 0 && err.contains("Unrecognised filter value for health: sick"),
        "{err}"
    );
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn bad_healthchecks_are_refused_at_create() {
    common::require_root_tier("health_create", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    let (code, _, err) = d.docker(&[
        "create",
        "--health-cmd",
        "true",
        "--health-interval",
        "500us",
        IMG,
        "true",
    ]);
    assert!(
        code != 0 && err.contains("Interval in Healthcheck cannot be less than 1ms"),
        "{err}"
    );
    let (code, _, err) = d.docker(&[
        "create",
        "--label",
        "berth.health-on-failure=reboot",
        IMG,
        "true",
    ]);
    assert!(
        code != 0 && err.contains("berth.health-on-failure"),
        "{err}"
    );
    let (_, all, _) = d.docker(&["ps", "-aq"]);
    assert_eq!(all, "", "nothing was created");
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn pause_stops_the_probes_and_unpause_resumes_them() {
    common::require_root_tier("health_pause", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    d.run_d(&[
        "--name",
        "hp",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        IMG,
        "sleep",
        "600",
    ]);
    wait_status(&d, "hp", "healthy");
    assert_eq!(d.docker(&["pause", "hp"]).0, 0);
    // A probe under way when it froze may still land; after that nothing changes.
    std::thread::sleep(Duration::from_millis(500));
    let frozen = last_end(&d, "hp");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(last_end(&d, "hp"), frozen, "no probe runs while paused");
    let (_, ps, _) = d.docker(&["ps", "--filter", "name=hp", "--format", "{{.Status}}"]);
    assert!(ps.ends_with("(Paused)"), "{ps}");
    assert_eq!(d.docker(&["unpause", "hp"]).0, 0);
    wait_until("probes again", WAIT, || last_end(&d, "hp") != frozen);
    assert_eq!(status(&d, "hp"), "healthy");
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn live_restore_keeps_the_health_and_the_probes_go_on() {
    common::require_root_tier("health_live_restore", TOOLS);
    let d = TestDaemon::new();
    d.write_config(r#"{"live-restore": true}"#);
    let mut d = d.start(&[]);
    import_busybox(&d);
    d.run_d(&[
        "--name",
        "lr",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "--health-start-period",
        "1h",
        IMG,
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 600",
    ]);
    wait_status(&d, "lr", "healthy");
    let before = log_len(&d, "lr");
    assert!(before >= 1);

    assert_eq!(d.stop(), Some(0));
    let mut d = d.start(&[]);
    assert_eq!(status(&d, "lr"), "healthy", "the health outlives berthd");
    assert!(log_len(&d, "lr") >= before, "and so does its log");
    // The probes go on: a failure counts at once (it passed before, start period or not).
    assert_eq!(d.docker(&["exec", "lr", "rm", "/tmp/ok"]).0, 0);
    wait_status(&d, "lr", "unhealthy");

    d.crash();
    let d = d.start(&[]);
    assert_eq!(status(&d, "lr"), "unhealthy", "and a crash");
    assert_eq!(d.docker(&["exec", "lr", "touch", "/tmp/ok"]).0, 0);
    wait_status(&d, "lr", "healthy");
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn health_on_failure_restart_and_kill() {
    common::require_root_tier("health_on_failure", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    // Each start clears the marker; the probe fails while it is there.
    d.run_d(&[
        "--name",
        "hr",
        "--label",
        "berth.health-on-failure=restart",
        "--stop-timeout",
        "1",
        "--health-cmd",
        "test ! -e /tmp/bad",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        IMG,
        "sh",
        "-c",
        "rm -f /tmp/bad; exec sleep 600",
    ]);
    wait_status(&d, "hr", "healthy");
    let pid = d.pid_of("hr");
    let events = HealthEvents::watch(&d, "hr", common::a_second_ago());
    assert_eq!(d.docker(&["exec", "hr", "touch", "/tmp/bad"]).0, 0);
    wait_until("a restart by its label", WAIT, || {
        d.inspect("hr", "{{.State.Running}}") == "true" && d.pid_of("hr") != pid
    });
    wait_status(&d, "hr", "healthy");
    let want = ["health_status: unhealthy", "health_status: healthy"];
    let got = events.until(&want);
    assert!(
        got.ends_with(&want.map(String::from)),
        "unhealthy, then healthy again: {got:?}"
    );

    d.run_d(&[
        "--name",
        "hk",
        "--label",
        "berth.health-on-failure=kill",
        "--restart",
        "unless-stopped",
        "--health-cmd",
        "false",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        IMG,
        "sleep",
        "600",
    ]);
    wait_until("killed when unhealthy", WAIT, || {
        d.inspect("hk", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    });
    // Killed as by hand: its restart policy leaves it stopped.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.inspect("hk", "{{.State.Status}}"), "exited");
}
