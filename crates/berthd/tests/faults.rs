//! Tier 2: faults. containerd killed under running containers; berthd SIGKILLed while idle
//! and in the middle of 100 concurrent `docker run`s, then started again: the store must hold
//! only whole containers, and every running one must still be managed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestDaemon, alive, import_busybox, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TOOLS: &[&str] = &["containerd", "runc", "docker", "busybox"];

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    u64::from_le_bytes(b) % n
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn containerd_killed_and_restarted_keeps_containers_managed() {
    common::require_root_tier("containerd_crash", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    for name in ["stays", "dies"] {
        d.run_d(&["--name", name, "test/busybox:1", "sleep", "600"]);
    }
    let (stays, dies) = (d.pid_of("stays"), d.pid_of("dies"));
    let old = d.containerd_pid().unwrap();

    // containerd goes; while it is away one container is killed from outside.
    kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
    kill(Pid::from_raw(dies), Signal::SIGKILL).unwrap();
    wait_until("containerd is back", Duration::from_secs(30), || {
        d.containerd_pid().is_some_and(|p| p != old && alive(p))
    });
    wait_until(
        "the exit during the gap is recorded",
        Duration::from_secs(30),
        || {
            d.docker(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                "dies",
            ])
            .1 == "exited 137"
        },
    );
    assert!(alive(stays), "the shim kept it running");
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.State.Running}}", "stays"])
            .1,
        "true"
    );
    assert_eq!(d.docker(&["exec", "stays", "echo", "still"]).1, "still");
    let (code, _, err) = d.docker(&["stop", "-t", "1", "stays"]);
    assert_eq!(code, 0, "{err}");
    assert!(!alive(stays));
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "stays"
        ])
        .1,
        "exited 137"
    );
    assert_eq!(d.docker(&["rm", "stays", "dies"]).0, 0);
}

/// After a crash: every container folder holds a record, `docker ps -a` shows exactly those,
/// every running one has a live process that exec reaches, and all can be removed.
fn check_store(d: &TestDaemon) -> (usize, usize) {
    let dir = d.data_root().join("containers");
    let folders: Vec<_> = std::fs::read_dir(&dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    for f in &folders {
        assert!(
            f.join("config.v2.json").is_file(),
            "half container: {}",
            f.display()
        );
    }
    let (code, out, err) = d.docker(&["ps", "-aq", "--no-trunc"]);
    assert_eq!(code, 0, "{err}");
    let ids: Vec<&str> = out.lines().collect();
    assert_eq!(ids.len(), folders.len(), "the store and ps agree");
    let mut running = 0;
    for id in &ids {
        let (code, state, err) =
            d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", id]);
        assert_eq!(code, 0, "{err}");
        let (status, pid) = state.split_once(' ').unwrap();
        if status == "running" {
            running += 1;
            let pid: i32 = pid.parse().unwrap();
            assert!(
                alive(pid),
                "{id} is running with a live process: pid {pid}\n{}",
                d.log_text()
                    .lines()
                    .filter(|l| l.contains(&id[..12]) || l.contains(*id))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    // exec reaches a running one.
    if let Some(id) = ids
        .iter()
        .find(|id| d.docker(&["inspect", "-f", "{{.State.Running}}", id]).1 == "true")
    {
        let (code, out, err) = d.docker(&["exec", id, "echo", "ok"]);
        assert_eq!((code, out.as_str()), (0, "ok"), "exec in {id}: {err}");
    }
    (ids.len(), running)
}

fn remove_all(d: &TestDaemon) {
    let ids = d.docker(&["ps", "-aq"]).1;
    let ids: Vec<&str> = ids.lines().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        let (code, _, err) = d.docker(&args);
        assert_eq!(code, 0, "{err}");
    }
    let shims_left = || -> Vec<String> {
        d.own_processes()
            .into_iter()
            .filter_map(|p| {
                let cmd = std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .unwrap_or_default()
                    .replace('\0', " ");
                cmd.contains("shim").then(|| format!("{p}: {cmd}"))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !shims_left().is_empty() {
        if Instant::now() > deadline {
            let shims = shims_left();
            let log = d.log_text();
            let about: Vec<&str> = log
                .lines()
                .filter(|l| {
                    shims.iter().any(|s| {
                        s.split(" -id ")
                            .nth(1)
                            .and_then(|r| r.split_whitespace().next())
                            .is_some_and(|id| l.contains(id))
                    })
                })
                .collect();
            panic!("shims left: {shims:#?}\nberthd said:\n{}", about.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn sigkill_while_idle_and_during_100_concurrent_runs_leaves_a_whole_store() {
    common::require_root_tier("crash_during_load", TOOLS);
    let rounds: usize = std::env::var("BERTH_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let d = TestDaemon::new();
    d.write_config(r#"{"live-restore": true}"#);
    let mut d = d.start(&[]);
    import_busybox(&d);

    // Idle: a running container and a stopped one.
    d.run_d(&["test/busybox:1", "sleep", "600"]);
    assert_eq!(
        d.docker(&["create", "--network", "none", "test/busybox:1", "true"])
            .0,
        0
    );
    let containerd = d.containerd_pid().unwrap();
    d.crash();
    d = d.start(&[]);
    assert_eq!(
        d.containerd_pid(),
        Some(containerd),
        "the containerd left running is adopted"
    );
    assert_eq!(check_store(&d), (2, 1));
    remove_all(&d);

    for round in 0..rounds {
        let started = Instant::now();
        let kill_after = Duration::from_millis(300 + random_below(3000));
        std::thread::scope(|s| {
            // 100 runs at once, half detached, half --rm.
            for i in 0..100 {
                let d = &d;
                s.spawn(move || {
                    let args: &[&str] = if i % 2 == 0 {
                        &[
                            "run",
                            "-d",
                            "--network",
                            "none",
                            "test/busybox:1",
                            "sleep",
                            "600",
                        ]
                    } else {
                        &["run", "--rm", "--network", "none", "test/busybox:1", "true"]
                    };
                    // Fails once berthd is gone; that is the point.
                    let _ = d.docker(args);
                });
            }
            std::thread::sleep(kill_after);
            kill(Pid::from_raw(d.pid()), Signal::SIGKILL).unwrap();
        });
        let _ = d.child.take().unwrap().wait();
        eprintln!(
            "round {round}: SIGKILL after {kill_after:?} ({:?} in all)",
            started.elapsed()
        );
        d = d.start(&[]);
        let (total, running) = check_store(&d);
        eprintln!("round {round}: {total} containers after the crash, {running} running");
        remove_all(&d);
        let left = std::fs::read_dir(d.data_root().join("containers"))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "every container removed");
        assert!(
            !std::fs::read_to_string("/proc/mounts")
                .unwrap()
                .lines()
                .any(|l| l.contains(&*d.data_root().to_string_lossy())
                    && Path::new(l.split_whitespace().nth(1).unwrap_or(""))
                        .starts_with(d.data_root())),
            "no mount left under the data root"
        );
    }
}

/// What a container could leak: FIFOs, mounts, cgroups (under the daemon's own parent, in
/// every hierarchy), shims, berthd's open files, folders.
fn leftovers(d: &TestDaemon) -> [usize; 6] {
    let count = |dir: &Path| std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0);
    let fifo_dir = d.exec_root.join("fifo");
    let fifos = std::fs::read_dir(&fifo_dir)
        .map(|r| r.flatten().map(|e| count(&e.path())).sum())
        .unwrap_or(0);
    let mounts = std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| {
            Path::new(m).starts_with(&d.exec_root) || Path::new(m).starts_with(d.dir.path())
        })
        .count();
    let cgroups = d.cgroups().len();
    let shims = d
        .own_processes()
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .contains("shim")
        })
        .count();
    let fds = count(Path::new(&format!("/proc/{}/fd", d.pid())));
    let folders = count(&d.data_root().join("containers"));
    [fifos, mounts, cgroups, shims, fds, folders]
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn run_rm_leaves_nothing_behind() {
    common::require_root_tier("hygiene", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    let run = |ids: &mut Vec<String>| {
        let cidfile = d.dir.path().join(format!("cid-{}", ids.len()));
        let cid = cidfile.to_str().unwrap();
        let (code, _, err) = d.docker(&[
            "run",
            "--rm",
            "--cidfile",
            cid,
            "--network",
            "none",
            "test/busybox:1",
            "true",
        ]);
        assert_eq!(code, 0, "{err}");
        ids.push(std::fs::read_to_string(&cidfile).unwrap());
    };
    let mut ids = Vec::new();
    run(&mut ids);
    std::thread::sleep(Duration::from_millis(500));
    let before = leftovers(&d);
    assert!(
        d.cgroup_parents().iter().any(|p| p.is_dir()),
        "containers' cgroups go under the daemon's parent {}",
        d.cgroup_parent
    );
    for _ in 0..30 {
        run(&mut ids);
    }
    // Cgroups of runc go a moment after the task.
    let mut after = leftovers(&d);
    let deadline = Instant::now() + Duration::from_secs(10);
    while after[..4] != before[..4] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = leftovers(&d);
    }
    let names = [
        "FIFOs",
        "mounts",
        "cgroups",
        "shims",
        "berthd fds",
        "container folders",
    ];
    for (i, name) in names.iter().enumerate() {
        let slack = if *name == "berthd fds" { 2 } else { 0 };
        assert!(
            after[i] <= before[i] + slack,
            "{name}: {} before, {} after 30 run --rm",
            before[i],
            after[i]
        );
    }
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc, mount"]
fn views_left_mounted_by_a_crash_are_unmounted_at_the_next_start() {
    common::require_root_tier("stale_views", TOOLS);
    let mut d = TestDaemon::new().start(&[]);
    d.crash();
    // What a berthd killed in the middle of a cp or an export leaves: a mounted view.
    let view = d.exec_root.join("views/0123456789abcdef");
    std::fs::create_dir_all(&view).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &view,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(view.to_str().unwrap())
    };
    assert!(mounted());
    let d = d.start(&[]);
    assert!(!mounted(), "the view is still mounted");
    assert!(!view.exists(), "the view's folder is still there");
    drop(d);
}
