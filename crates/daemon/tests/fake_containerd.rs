//! The lifecycle against a fake containerd (no root): which RPCs each operation makes, in
//! order, and what the daemon does with the events the fake sends — exits, a containerd
//! restart with an exit missed meanwhile, a restart policy, the state machine's refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use berth_daemon::testing::{FakeContainerd, TestEngine};
use berth_daemon::{Daemon, DaemonError, ExecConfig, WaitCondition};
use berth_model::{ContainerConfig, HostConfig};

/// An engine over the fake containerd with one image, `fake/img:1`, and no calls recorded yet.
async fn setup() -> TestEngine {
    let engine = TestEngine::builder().fake_containerd().build();
    engine.import_image("fake/img:1").await;
    engine
}

fn config(cmd: &[&str]) -> ContainerConfig {
    ContainerConfig {
        image: "fake/img:1".into(),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

/// The calls made, without the long-lived event subscription.
fn calls(fake: &FakeContainerd) -> Vec<String> {
    fake.take_calls()
        .into_iter()
        .filter(|c| c != "Events.Subscribe")
        .collect()
}

async fn wait_status(d: &Daemon, id: &str, want: &str) {
    for _ in 0..300 {
        if d.container_get(id).unwrap().state().status().as_str() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never became {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_rm_exec_and_stop_make_only_the_rpcs_they_need() {
    let s = setup().await;
    let d = &s.daemon;

    // run --rm: create, start, the exit, the clean-up.
    let host = HostConfig {
        auto_remove: true,
        ..Default::default()
    };
    let id = d
        .container_create(None, config(&["true"]), host)
        .await
        .unwrap();
    assert!(calls(s.fake()).is_empty(), "create is local");
    d.container_start(&id).await.unwrap();
    assert_eq!(
        calls(s.fake()),
        ["Containers.Create", "Tasks.Create", "Tasks.Start"]
    );
    // As the CLI, wait before the end.
    let waiter = {
        let (d, id) = (d.clone(), id.clone());
        tokio::spawn(async move { d.container_wait(&id, WaitCondition::Removed).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    d.container_kill(&id, Some("KILL")).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), 137);
    assert_eq!(
        calls(s.fake()),
        ["Tasks.Kill", "Tasks.Delete", "Containers.Delete"]
    );
    assert!(matches!(
        d.container_get(&id),
        Err(DaemonError::NoSuchContainer(_))
    ));

    // exec: Exec, Start, and DeleteProcess after its exit event.
    let id = d
        .container_create(Some("svc"), config(&["sleep"]), HostConfig::default())
        .await
        .unwrap();
    d.container_start(&id).await.unwrap();
    calls(s.fake());
    let exec = d
        .exec_create(
            "svc",
            ExecConfig {
                cmd: vec!["true".into()],
                ..Default::default()
            },
        )
        .unwrap();
    d.exec_start(&exec, true).await.unwrap();
    for _ in 0..300 {
        if d.exec_get(&exec).unwrap().inspect().exit_code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(d.exec_get(&exec).unwrap().inspect().exit_code, Some(0));
    assert_eq!(
        calls(s.fake()),
        ["Tasks.Exec", "Tasks.Start", "Tasks.DeleteProcess"]
    );

    // stop: the signal, then the exit's clean-up; 128 + 15 recorded.
    d.container_stop("svc", None, Some(5)).await.unwrap();
    assert_eq!(
        calls(s.fake()),
        ["Tasks.Kill", "Tasks.Delete", "Containers.Delete"]
    );
    let state = d.container_get("svc").unwrap().state();
    assert_eq!(
        (state.status().as_str(), state.exit_code()),
        ("exited", 143)
    );

    // Refusals are decided without asking containerd.
    assert!(matches!(
        d.container_stop("svc", None, None).await,
        Err(DaemonError::NotModified)
    ));
    assert!(matches!(
        d.container_kill("svc", None).await,
        Err(DaemonError::Conflict(_))
    ));
    assert!(matches!(
        d.container_pause("svc").await,
        Err(DaemonError::Conflict(_))
    ));
    assert!(calls(s.fake()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_missed_while_containerd_restarted_is_reconciled() {
    let s = setup().await;
    let d = &s.daemon;
    let id = d
        .container_create(Some("quiet"), config(&["sleep"]), HostConfig::default())
        .await
        .unwrap();
    d.container_start(&id).await.unwrap();
    wait_status(d, &id, "running").await;
    calls(s.fake());

    // The task ends while the event stream is down: no event, only containerd's record.
    s.fake().stop_silently(&id, 7);
    s.fake().drop_subscribers();
    wait_status(d, &id, "exited").await;
    assert_eq!(d.container_get(&id).unwrap().state().exit_code(), 7);
    assert_eq!(
        calls(s.fake()),
        ["Tasks.List", "Tasks.Delete", "Containers.Delete"],
        "one List finds it; then the usual clean-up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_policy_restarts_through_containerd() {
    let s = setup().await;
    let d = &s.daemon;
    let host = HostConfig {
        restart_policy: berth_model::RestartPolicy {
            name: "on-failure".into(),
            maximum_retry_count: 1,
        },
        ..Default::default()
    };
    let id = d
        .container_create(Some("flaky"), config(&["sleep"]), host)
        .await
        .unwrap();
    d.container_start(&id).await.unwrap();
    calls(s.fake());
    // A signal that is not the stop signal is not a manual stop: the policy applies once.
    d.container_kill(&id, Some("USR1")).await.unwrap();
    for _ in 0..300 {
        if d.container_get(&id).unwrap().record().restart_count == 1
            && d.container_get(&id).unwrap().state().status().as_str() == "running"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(d.container_get(&id).unwrap().record().restart_count, 1);
    d.container_kill(&id, Some("USR1")).await.unwrap();
    wait_status(d, &id, "exited").await;
    assert_eq!(d.container_get(&id).unwrap().record().restart_count, 1);
    assert_eq!(
        calls(s.fake()),
        [
            "Tasks.Kill",
            "Tasks.Delete",
            "Containers.Delete",
            "Containers.Create",
            "Tasks.Create",
            "Tasks.Start",
            "Tasks.Kill",
            "Tasks.Delete",
            "Containers.Delete"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_top_and_etc_files_come_from_the_host_paths() {
    // A prepared host of its own: cgroup v1 (no cgroup.controllers), 1 GiB, named "box".
    let hostdir = tempfile::tempdir().unwrap();
    let host = hostdir.path().to_path_buf();
    let put = |rel: &str, text: &str| {
        let p = host.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put("proc/sys/kernel/hostname", "box\n");
    put("proc/meminfo", "MemTotal: 1048576 kB\n");
    put("proc/self/status", "Cpus_allowed_list:\t0-1\n");
    let s = TestEngine::builder()
        .fake_containerd()
        .host_root(&host)
        .build();
    s.import_image("fake/img:1").await;
    let d = &s.daemon;
    put("etc/hosts", "10.1.1.1\tthe-host\n");
    put("etc/resolv.conf", "nameserver 10.1.1.53\n");

    // The host's files are what a container copies.
    let id = d
        .container_create(
            Some("hostnet"),
            config(&["sleep"]),
            HostConfig {
                network_mode: "host".into(),
                cgroup_parent: "/mine".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let record = d.container_get(&id).unwrap().record();
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    assert_eq!(read(&record.hosts_path), "10.1.1.1\tthe-host\n");
    assert_eq!(read(&record.resolv_conf_path), "nameserver 10.1.1.53\n");
    assert_eq!(
        record.config.hostname, "box",
        "--network host: the host's name"
    );

    // Stats read the container's cgroup (its own parent wins) in the host's cgroup tree:
    // v1 here, as the prepared host has no cgroup.controllers.
    d.container_start(&id).await.unwrap();
    let record = d.container_get(&id).unwrap().record();
    assert_eq!(
        record.cgroups_path.as_deref(),
        Some(&*format!("/mine/{id}"))
    );
    put(
        &format!("sys/fs/cgroup/memory/mine/{id}/memory.usage_in_bytes"),
        "4096\n",
    );
    put(&format!("sys/fs/cgroup/pids/mine/{id}/pids.current"), "2\n");
    let stats = d.container_stats("hostnet").unwrap().cgroup;
    assert_eq!((stats.memory_usage, stats.pids), (4096, 2));
    assert_eq!(stats.memory_limit, 1 << 30, "no limit: the host's memory");

    // top reads the host's procfs for the task's pids.
    let pid = record.state.pid();
    put(
        &format!("proc/{pid}/stat"),
        &format!("{pid} (sleep) S 1 0 0 0"),
    );
    put(&format!("proc/{pid}/status"), "Uid:\t0\t0\t0\t0\n");
    put(&format!("proc/{pid}/cmdline"), "sleep\0inf\0");
    let (_, rows) = d.container_top("hostnet").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0][0].as_str(), rows[0][1].clone(), rows[0][7].as_str()),
        ("0", pid.to_string(), "sleep inf")
    );

    // Without a parent of its own, the daemon's (`/berth` by default).
    let other = d
        .container_create(Some("nonet"), config(&["sleep"]), HostConfig::default())
        .await
        .unwrap();
    let record = d.container_get(&other).unwrap().record();
    assert_eq!(
        read(&record.hosts_path).lines().last(),
        Some(&*format!("127.0.1.1\t{}", &other[..12]))
    );
    assert_eq!(read(&record.resolv_conf_path), "nameserver 10.1.1.53\n");
    d.container_start(&other).await.unwrap();
    put(
        &format!("sys/fs/cgroup/memory/berth/{other}/memory.usage_in_bytes"),
        "8192\n",
    );
    assert_eq!(
        d.container_stats("nonet").unwrap().cgroup.memory_usage,
        8192
    );
    d.container_kill("hostnet", None).await.unwrap();
    d.container_kill("nonet", None).await.unwrap();
}
