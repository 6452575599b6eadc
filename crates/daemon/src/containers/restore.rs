//! Daemon start and stop: re-attaching to tasks that outlived a berthd, and stopping
//! containers at shutdown unless live-restore keeps them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_containerd::TaskStatus;

use super::io::{ContainerLog, Readers, spawn_copiers};
use super::now_rfc3339;
use crate::{Daemon, DaemonError};

impl Daemon {
    /// Reconciles every container that was running with what containerd has: a live task is
    /// taken over (its handles kept, its output logged again); a task that ended while
    /// berthd was away is deleted and its exit recorded.
    ///
    /// A task whose container is recorded as not running (berthd died between starting it
    /// and recording that) is taken over too; a task of a container berthd has no record of
    /// is killed and deleted.
    ///
    /// Without live-restore the live tasks taken over are then stopped, as dockerd's restore
    /// shuts down the containers it finds alive: each with its stop signal and timeout, the
    /// exit recorded as any other; restart policies then bring back what they would at a
    /// daemon start (`start_by_policy`), not the exit itself.
    pub async fn restore(self: &Arc<Self>) -> Result<(), DaemonError> {
        self.remove_stale_views();
        self.remove_stale_builds();
        let tasks: HashMap<String, berth_containerd::TaskInfo> = self
            .containerd()
            .list_tasks()
            .await?
            .into_iter()
            .map(|t| (t.container_id.clone(), t))
            .collect();
        let all = self.containers.all();
        for (id, t) in &tasks {
            if all.iter().any(|c| &c.id == id) {
                continue;
            }
            tracing::warn!(container = %id, pid = t.pid, "removing a task berthd has no record of");
            let ctr = self.containerd().container(id);
            let task = ctr.task(t.pid);
            crate::log_containerd_cleanup(
                "killing a task without a record",
                id,
                task.kill(9, true).await,
            );
            for _ in 0..50 {
                if task.delete().await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            crate::log_containerd_cleanup(
                "deleting a container without a record",
                id,
                ctr.delete().await,
            );
        }
        let mut adopted = Vec::new();
        let mut ended = tokio::task::JoinSet::new();
        let candidates: Vec<_> = all
            .into_iter()
            .filter(|c| c.state().running() || tasks.contains_key(&c.id))
            .collect();
        for c in candidates {
            let ctr = self.containerd().container(&c.id);
            match tasks.get(&c.id) {
                Some(t)
                    if matches!(
                        t.status,
                        TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing
                    ) =>
                {
                    let task = ctr.task(t.pid);
                    if c.record().process.is_none() {
                        // berthd died between starting it and recording the start: the
                        // process execs derive from is in containerd's copy of the spec.
                        let process = ctr.spec().await.ok().and_then(|s| {
                            serde_json::from_slice::<serde_json::Value>(&s)
                                .ok()?
                                .get("process")
                                .cloned()
                        });
                        c.lock().record.process = process;
                    }
                    let fifos = self.paths().fifo_dir(&c.id);
                    let record = c.record();
                    let copiers =
                        reopen_output(&c, &fifos, record.config.tty).map(|readers| {
                            spawn_copiers(c.io.clone(), readers.0, readers.1, || {
                                tokio::spawn(async {})
                            })
                        });
                    {
                        let mut inner = c.lock();
                        if !inner.record.state.running() {
                            inner.record.has_been_started = true;
                            inner.record.state.set_running(t.pid, now_rfc3339());
                            if super::health::Probe::of(&inner.record.config).is_some() {
                                inner.record.state.set_health_starting();
                            }
                        }
                        inner.record.state.set_pid(t.pid);
                        inner
                            .record
                            .state
                            .set_paused(t.status != TaskStatus::Running);
                        inner.ctr = Some(ctr);
                        inner.task = Some(task);
                        inner.copiers = copiers;
                    }
                    self.adopt_network(&c).await;
                    self.adopt_volumes(&c);
                    tracing::info!(container = %c.id, pid = t.pid, "restored");
                    adopted.push(c.clone());
                }
                other => {
                    let state = c.state();
                    let code = match other {
                        Some(t) => t.exit_status,
                        // It had exited, waiting for a restart.
                        None if state.restarting() => state.exit_code() as u32,
                        None => 255,
                    };
                    // Deleting an ended task can wait on its shim for seconds: the ended
                    // ones are cleaned up side by side.
                    let had_task = other.is_some();
                    let d = self.clone();
                    ended.spawn(async move {
                        if let Err(e) = d.record_ended(&c, ctr, had_task, code).await {
                            tracing::warn!(container = %c.id, error = %e, "cannot record an exit found at start");
                        }
                    });
                    continue;
                }
            }
            c.persist()?;
            c.notify();
        }
        while ended.join_next().await.is_some() {}
        self.end_untracked_shims(&tasks).await;
        // An exit between the Tasks.List above and a container's adoption found no task to
        // handle it and was dropped: one more list finds those, as after a containerd restart.
        self.reconcile().await;
        if !self.config().config.live_restore {
            adopted.retain(|c| c.state().running());
            self.stop_restored(adopted).await;
        } else {
            // Kept running: their probes go on from the health they had.
            for c in adopted {
                let state = c.state();
                if state.running() && !state.paused() {
                    self.start_health_monitor(&c);
                }
            }
        }
        Ok(())
    }

    /// Stops the containers restore took over (in parallel), their exits recorded and no
    /// restart policy applied to them.
    async fn stop_restored(self: &Arc<Self>, containers: Vec<Arc<super::Container>>) {
        let mut set = tokio::task::JoinSet::new();
        for c in containers {
            let d = self.clone();
            set.spawn(async move {
                let _op = c.op.lock().await;
                tracing::info!(container = %c.id, "stopping a container left running (no live-restore)");
                c.lock().restart_held = true;
                if let Err(e) = d.stop_locked(&c, None, None).await {
                    tracing::warn!(container = %c.id, error = %e, "cannot stop a restored container");
                }
                c.lock().restart_held = false;
            });
        }
        while set.join_next().await.is_some() {}
    }

    /// Ends shims in our namespace that containerd does not track (no task), with what they
    /// run: left when a berthd died in the middle of creating or deleting a task (the record
    /// may be gone too, for a `--rm` container). containerd cannot manage them, and one would
    /// hold the shim socket a later start of the same container needs. Runs before the API
    /// serves, so no start of ours is in flight.
    async fn end_untracked_shims(&self, tasks: &HashMap<String, berth_containerd::TaskInfo>) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let with_task: std::collections::HashSet<String> = tasks.keys().cloned().collect();
        let client = self.containerd();
        for shim in berth_containerd::untracked_shims(
            &self.paths().host.proc_root,
            client.socket(),
            client.namespace(),
            &with_task,
        ) {
            tracing::warn!(container = %shim.id, pid = shim.pid, children = ?shim.children,
                "ending a shim containerd does not track");
            for child in &shim.children {
                let _ = kill(Pid::from_raw(*child), Signal::SIGKILL);
            }
            let _ = kill(Pid::from_raw(shim.pid), Signal::SIGKILL);
            // Its cgroups, once what ran in them is gone: where its record says, else under
            // the daemon's parent (a `--rm` container's record may be gone).
            let proc = &self.paths().host.proc_root;
            for _ in 0..20 {
                if shim
                    .children
                    .iter()
                    .all(|c| !proc.join(c.to_string()).exists())
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let cgroups_path = match self.containers.get(&shim.id) {
                Ok(c) => self.cgroups_path(&c),
                Err(_) => berth_oci::cgroups_path(
                    &Default::default(),
                    &self.config().config.cgroup_parent,
                    &shim.id,
                ),
            };
            for cg in self.host_facts().cgroups.dirs(&cgroups_path) {
                let _ = std::fs::remove_dir(cg);
            }
            // runc's record of a container it was creating, so the ID can start again.
            let runc_root = self.paths().runc_root().join(client.namespace());
            if runc_root.join(&shim.id).exists() {
                let _ = tokio::process::Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["delete", "--force", &shim.id])
                    .output()
                    .await;
            }
        }
    }

    /// At shutdown without live-restore, stops every running container (in parallel, each
    /// with the shutdown timeout), as dockerd does.
    pub async fn shutdown_containers(self: &Arc<Self>) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let snapshot = self.config();
        if snapshot.config.live_restore {
            return;
        }
        let timeout = snapshot.config.shutdown_timeout;
        let mut set = tokio::task::JoinSet::new();
        for c in self
            .containers
            .all()
            .into_iter()
            .filter(|c| c.state().running())
        {
            let d = self.clone();
            set.spawn(async move {
                let _op = c.op.lock().await;
                // Not a user's stop: the policy still applies at the next start.
                if d.cancel_restart(&c, false) {
                    return;
                }
                if let Err(e) = d
                    .stop_locked(&c, None, Some(timeout.min(i64::from(u32::MAX))))
                    .await
                {
                    tracing::warn!(container = %c.id, error = %e, "stop at shutdown failed");
                }
            });
        }
        let wait = Duration::from_secs(if timeout < 0 {
            3600
        } else {
            timeout as u64 + 10
        });
        let _ =
            tokio::time::timeout(wait, async { while set.join_next().await.is_some() {} }).await;
        // Without live-restore nothing berth made for networks outlives it.
        self.network_teardown().await;
    }
}

/// The adopted task's output FIFOs and the container's log writer (`None` inside for the
/// `none` driver); `None` when either cannot be opened.
fn reopen_output(
    c: &super::Container,
    dir: &std::path::Path,
    tty: bool,
) -> Option<(Readers, Option<Arc<ContainerLog>>)> {
    let fifos = super::io::Fifos {
        stdin: None,
        stdout: dir.join("init-stdout"),
        stderr: (!tty).then(|| dir.join("init-stderr")),
    };
    let readers = Readers::open(&fifos).ok()?;
    let log = c
        .open_log()
        .inspect_err(|e| tracing::warn!(container = %c.id, error = %e, "cannot reopen its log"))
        .ok()?;
    Some((readers, log))
}

impl Daemon {
    /// Views (the read-only and writable mounts of cp, export and commit) a berthd that died
    /// mid-operation left under `<exec-root>/views`: unmounted and removed.
    fn remove_stale_views(&self) {
        let views = self.paths().exec_root.join("views");
        let Ok(entries) = std::fs::read_dir(&views) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => tracing::info!(view = %p.display(), "unmounted a view left by a crash"),
                // Not a mount (any more): only the folder is left.
                Err(nix::errno::Errno::EINVAL) => {}
                Err(e) => {
                    tracing::warn!(view = %p.display(), error = %e, "cannot unmount a stale view")
                }
            }
            if let Err(e) = std::fs::remove_dir(&p) {
                tracing::warn!(view = %p.display(), error = %e, "cannot remove a stale view");
            }
        }
    }
}

impl Daemon {
    /// A container whose task ended while berthd was away: its task and containerd record
    /// deleted, its exit recorded (or the container removed, for `--rm`).
    async fn record_ended(
        self: &Arc<Self>,
        c: &Arc<super::Container>,
        ctr: berth_containerd::Container,
        had_task: bool,
        code: u32,
    ) -> Result<(), DaemonError> {
        if had_task {
            crate::log_containerd_cleanup(
                "deleting an ended task",
                &c.id,
                ctr.task(0).delete().await,
            );
        }
        crate::log_containerd_cleanup(
            "deleting the container of an ended task",
            &c.id,
            ctr.delete().await,
        );
        c.lock()
            .record
            .state
            .set_exited(i64::from(code), now_rfc3339());
        tracing::info!(container = %c.id, exit_code = code, "exited while berthd was away");
        if c.record().host_config.auto_remove {
            return self.remove_files(c);
        }
        c.persist()?;
        c.notify();
        Ok(())
    }
}
