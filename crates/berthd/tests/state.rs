//! Tier 2: what berthd keeps on disk. The data-root's modes are dockerd's (and a container
//! run as a non-root user still works through them); concurrent renames leave one winner per
//! name, a whole record, and no name held in vain; without live-restore a berthd restarted
//! after SIGKILL stops the containers it finds running and lets restart policies bring back
//! theirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{TestDaemon, alive, import_busybox, wait_until};

const TOOLS: &[&str] = &["containerd", "runc", "docker", "busybox", "tar"];

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn assert_mode(p: &Path, want: u32) {
    assert_eq!(
        mode(p),
        want,
        "{}: {:o} instead of {want:o}",
        p.display(),
        mode(p)
    );
}

/// Temporary files of whole writes left anywhere under `dir` (not below `skip`).
fn temporaries(dir: &Path, skip: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.starts_with(skip) {
            continue;
        }
        let name = e.file_name().to_string_lossy().to_string();
        if name.contains(".tmp") {
            out.push(p.display().to_string());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            temporaries(&p, skip, out);
        }
    }
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn data_root_modes_are_dockerds_and_a_non_root_user_still_runs() {
    common::require_root_tier("state_modes", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);

    // A user without any right on the data-root reads the files bind-mounted into its
    // container, execs and lists the image's layers, and writes to its own upper folder.
    let (code, out, err) = d.docker(&[
        "run",
        "--name",
        "nonroot",
        "--network",
        "none",
        "-u",
        "1000:1000",
        "test/busybox:1",
        "sh",
        "-c",
        "id -u; cat /etc/hostname /etc/hosts /etc/resolv.conf /etc/passwd >/dev/null && cd /bin && echo *",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"1000"), "{out}");
    assert!(lines.get(1).is_some_and(|l| l.contains("busybox")), "{out}");
    d.run_d(&[
        "--name",
        "nonroot2",
        "-u",
        "1000",
        "test/busybox:1",
        "sh",
        "-c",
        "echo up; sleep 600",
    ]);
    assert_eq!(
        d.docker(&["exec", "-u", "1000", "nonroot2", "cat", "/etc/hostname"])
            .0,
        0
    );
    assert_eq!(d.docker(&["logs", "nonroot2"]).1, "up");

    let root = d.data_root();
    assert_mode(&root, 0o710);
    assert_mode(&root.join("containers"), 0o710);
    let id = d.inspect("nonroot", "{{.Id}}");
    let c = root.join("containers").join(&id);
    assert_mode(&c, 0o710);
    assert_mode(&c.join("config.v2.json"), 0o600);
    for f in ["hostname", "hosts", "resolv.conf"] {
        assert_mode(&c.join(f), 0o644);
    }
    assert_mode(&c.join(format!("{id}-json.log")), 0o640);
    assert_mode(&c.join("fs"), 0o710);
    assert_mode(&c.join("fs/upper"), 0o755);
    assert_mode(&c.join("fs/work"), 0o700);
    assert_eq!(
        d.inspect("nonroot", "{{.LogPath}}"),
        c.join(format!("{id}-json.log")).display().to_string()
    );

    let image = root.join("image");
    for dir in ["", "imagedb", "layers", "tmp"] {
        assert_mode(&image.join(dir), 0o700);
    }
    assert_mode(&image.join("repositories.json"), 0o600);
    let configs: Vec<_> = std::fs::read_dir(image.join("imagedb"))
        .unwrap()
        .flatten()
        .collect();
    assert!(!configs.is_empty());
    for e in configs {
        assert_mode(&e.path(), 0o600);
    }
    let layers: Vec<_> = std::fs::read_dir(image.join("layers"))
        .unwrap()
        .flatten()
        .collect();
    assert!(!layers.is_empty());
    for e in layers {
        assert_mode(&e.path(), 0o710);
        assert_mode(&e.path().join("size"), 0o600);
        // The layer's root keeps the mode its tar gives it (the rootfs was made 0755).
        assert_mode(&e.path().join("diff"), 0o755);
    }
    assert_mode(&root.join("engine-id"), 0o600);

    let mut left = Vec::new();
    temporaries(&root, &root.join("containerd"), &mut left);
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let (code, _, err) = d.docker(&["rm", "-f", "nonroot", "nonroot2"]);
    assert_eq!(code, 0, "{err}");
}

/// `POST /containers/{id}/rename?name=NAME`: (status, body).
fn rename(d: &TestDaemon, id: &str, name: &str) -> (u16, String) {
    d.request("POST", &format!("/containers/{id}/rename?name={name}"))
        .expect("an answer")
}

fn create(d: &TestDaemon, name: &str) -> (i32, String, String) {
    d.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        name,
        "test/busybox:1",
        "true",
    ])
}

/// Every name in `names` is free: a create with it succeeds (and is removed again).
fn assert_free(d: &TestDaemon, names: &[String], why: &str) {
    for n in names {
        let (code, _, err) = create(d, n);
        assert_eq!(code, 0, "{n} should be free ({why}): {err}");
        assert_eq!(d.docker(&["rm", n]).0, 0);
    }
}

/// The record on disk: its name, and that it parses.
fn name_on_disk(d: &TestDaemon, id: &str) -> String {
    let path = d
        .data_root()
        .join("containers")
        .join(id)
        .join("config.v2.json");
    let bytes = std::fs::read(&path).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    v["Name"].as_str().expect("a name").to_string()
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn concurrent_renames_leave_one_winner_a_whole_record_and_no_ghost_name() {
    common::require_root_tier("state_rename_race", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    let mut ids = Vec::new();
    for n in ["ren-a", "ren-b", "ren-c"] {
        let (code, id, err) = create(&d, n);
        assert_eq!(code, 0, "{err}");
        ids.push(id);
    }
    let (a, b, c) = (ids[0].clone(), ids[1].clone(), ids[2].clone());

    let mut every_name_of_a: BTreeSet<String> = ["ren-a".to_string()].into();
    let mut previous_name_of_a = "ren-a".to_string();
    let mut contested_winners = Vec::new();
    for round in 0..3 {
        let targets: Vec<String> = (0..20).map(|i| format!("a{round}-{i}")).collect();
        every_name_of_a.extend(targets.iter().cloned());
        let shared = format!("shared-{round}");
        // 20 renames of one container to different names, and two containers renamed to
        // one name, all at once.
        let (answers, contested) = std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|t| {
                    let (d, a) = (&d, &a);
                    s.spawn(move || rename(d, a, t))
                })
                .collect();
            let contested: Vec<_> = [&b, &c]
                .into_iter()
                .map(|id| {
                    let (d, shared) = (&d, &shared);
                    s.spawn(move || (id.clone(), rename(d, id, shared)))
                })
                .collect();
            (
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>(),
                contested
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>(),
            )
        });
        for (t, (status, body)) in targets.iter().zip(&answers) {
            assert_eq!(*status, 204, "rename to {t}: {body}");
        }
        let winners: Vec<_> = contested.iter().filter(|(_, (s, _))| *s == 204).collect();
        let losers: Vec<_> = contested.iter().filter(|(_, (s, _))| *s != 204).collect();
        assert_eq!(winners.len(), 1, "one winner of {shared}: {contested:?}");
        let (winner, _) = winners[0];
        let (loser, (status, body)) = losers[0];
        assert_eq!(*status, 409, "{body}");
        assert!(
            body.contains(&format!(
                "Error when allocating new name: Conflict. The container name \\\"/{shared}\\\" is already in use by container \\\"{winner}\\\""
            )),
            "{body}"
        );
        contested_winners.push((winner.clone(), loser.clone(), shared.clone()));

        // The record on disk is whole and says what inspect says; every other name is free.
        let final_name = d.inspect(&a, "{{.Name}}");
        assert_eq!(format!("/{}", name_on_disk(&d, &a)), final_name);
        assert!(targets.iter().any(|t| format!("/{t}") == final_name));
        assert_eq!(d.inspect(&shared, "{{.Id}}"), *winner);
        assert_eq!(
            format!("/{}", name_on_disk(&d, winner)),
            format!("/{shared}")
        );
        let free: Vec<String> = targets
            .iter()
            .chain([&previous_name_of_a])
            .filter(|n| format!("/{n}") != final_name)
            .cloned()
            .collect();
        assert_free(&d, &free, "a's earlier names");
        previous_name_of_a = final_name.trim_start_matches('/').to_string();
        // The winner's old name is free too; it takes it back for the next round.
        let (status, body) = rename(&d, winner, &format!("back-{round}"));
        assert_eq!(status, 204, "{body}");
        assert_free(&d, std::slice::from_ref(&shared), "given up by the winner");
    }

    // A rename racing the removal: the container goes, and none of its names stays held.
    let (code, victim, err) = create(&d, "ren-victim");
    assert_eq!(code, 0, "{err}");
    let victim_names: Vec<String> = (0..10).map(|i| format!("victim-{i}")).collect();
    std::thread::scope(|s| {
        for n in &victim_names {
            let (d, victim) = (&d, &victim);
            s.spawn(move || {
                let (status, body) = rename(d, victim, n);
                assert!(
                    status == 204 || status == 404,
                    "rename during rm: {status} {body}"
                );
            });
        }
        let d = &d;
        let victim = &victim;
        s.spawn(move || assert_eq!(d.docker(&["rm", victim]).0, 0));
    });
    wait_until("the victim is gone", Duration::from_secs(10), || {
        d.docker(&["inspect", &victim]).0 != 0
    });
    let mut gone = victim_names.clone();
    gone.push("ren-victim".into());
    assert_free(&d, &gone, "names of a removed container");

    // A restart keeps the last names.
    let final_a = d.inspect(&a, "{{.Name}}");
    let names_before: Vec<String> = ids.iter().map(|i| d.inspect(i, "{{.Name}}")).collect();
    let mut d = d;
    assert_eq!(d.stop(), Some(0));
    let d = d.start(&[]);
    let names_after: Vec<String> = ids.iter().map(|i| d.inspect(i, "{{.Name}}")).collect();
    assert_eq!(names_before, names_after);
    assert_eq!(d.inspect(final_a.trim_start_matches('/'), "{{.Id}}"), a);

    // Removed, a container holds no name.
    let (code, _, err) = d.docker(&["rm", &a, &b, &c]);
    assert_eq!(code, 0, "{err}");
    let mut all: Vec<String> = every_name_of_a.into_iter().collect();
    all.extend(["ren-b".to_string(), "ren-c".to_string()]);
    for (_, _, shared) in &contested_winners {
        all.push(shared.clone());
    }
    all.extend((0..3).map(|r| format!("back-{r}")));
    assert_free(&d, &all, "names of removed containers");
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn without_live_restore_a_crashed_berthd_stops_what_ran_and_policies_bring_theirs_back() {
    common::require_root_tier("state_crash_no_live_restore", TOOLS);
    let mut d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    // `sleep` as pid 1 ignores SIGTERM: the stop at restart ends it with SIGKILL after 1 s.
    d.run_d(&[
        "--name",
        "plain",
        "--stop-timeout",
        "1",
        "test/busybox:1",
        "sleep",
        "600",
    ]);
    d.run_d(&[
        "--name",
        "always",
        "--restart",
        "always",
        "--stop-timeout",
        "1",
        "test/busybox:1",
        "sleep",
        "600",
    ]);
    for policy in ["unless-stopped", "on-failure"] {
        d.run_d(&[
            "--name",
            policy,
            "--restart",
            policy,
            "--stop-timeout",
            "1",
            "test/busybox:1",
            "sleep",
            "600",
        ]);
    }
    let (plain, always) = (d.pid_of("plain"), d.pid_of("always"));
    let others = [d.pid_of("unless-stopped"), d.pid_of("on-failure")];
    d.crash();
    assert!(
        alive(plain) && alive(always) && others.iter().all(|p| alive(*p)),
        "the containers outlive berthd"
    );

    let d = d.start(&[]);
    assert!(!alive(plain), "stopped at start-up without live-restore");
    assert_eq!(
        d.inspect(
            "plain",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}"
        ),
        "exited 137 false"
    );
    assert_ne!(
        d.inspect("plain", "{{.State.FinishedAt}}"),
        "0001-01-01T00:00:00Z",
        "its exit is recorded"
    );
    wait_until(
        "the always container is running again",
        Duration::from_secs(20),
        || d.inspect("always", "{{.State.Status}}") == "running",
    );
    let again = d.pid_of("always");
    assert_ne!(again, always, "a new process");
    assert!(!alive(always), "the old one was stopped");
    assert!(alive(again));
    // unless-stopped (not stopped by hand) and on-failure (137 is a failure) come back too.
    for (name, old) in ["unless-stopped", "on-failure"].into_iter().zip(others) {
        wait_until(
            &format!("{name} running again"),
            Duration::from_secs(20),
            || d.inspect(name, "{{.State.Status}}") == "running",
        );
        assert!(
            !alive(old) && d.pid_of(name) != old,
            "{name}: a new process"
        );
    }

    // The record on disk says so too, and the stopped one starts again.
    let (code, _, err) = d.docker(&["start", "plain"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(d.inspect("plain", "{{.State.Status}}"), "running");
    let (code, _, err) = d.docker(&[
        "rm",
        "-f",
        "plain",
        "always",
        "unless-stopped",
        "on-failure",
    ]);
    assert_eq!(code, 0, "{err}");
}
