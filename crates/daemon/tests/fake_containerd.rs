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
        if d.container_get(id).unwrap().state().status.as_str() == want {
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
    assert_eq!((state.status.as_str(), state.exit_code), ("exited", 143));

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
    assert_eq!(d.container_get(&id).unwrap().state().exit_code, 7);
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
            && d.container_get(&id).unwrap().state().status.as_str() == "running"
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
