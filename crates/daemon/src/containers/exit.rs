//! What happens when a container's process ends: containerd's exit event is the only source
//! of exit codes (no polling).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use berth_containerd::{TaskEvent, TaskStatus};

use super::Container;
use crate::Daemon;

impl Daemon {
    /// Runs the daemon's one event subscription for its life. Events are queued per
    /// container: one container's are handled strictly in order, different containers'
    /// concurrently.
    pub fn spawn_event_loop(self: &Arc<Self>) {
        let _ = self.me.set(Arc::downgrade(self));
        let mut rx = self.containerd().subscribe_task_events();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut queues: HashMap<String, mpsc::UnboundedSender<TaskEvent>> = HashMap::new();
            while let Some(ev) = rx.recv().await {
                let Some(d) = weak.upgrade() else { return };
                let container_id = match &ev {
                    TaskEvent::Exit { container_id, .. } | TaskEvent::Oom { container_id } => {
                        container_id.clone()
                    }
                    TaskEvent::Resubscribed => {
                        tracing::info!("containerd events resumed; reconciling");
                        tokio::spawn(async move { d.reconcile().await });
                        continue;
                    }
                };
                if !queues.contains_key(&container_id) {
                    // Queues of containers that are gone end (their workers drain and stop);
                    // checked when a queue is made, not at every event.
                    queues.retain(|id, _| d.containers.get(id).is_ok());
                }
                let queue = queues.entry(container_id).or_insert_with(|| {
                    let (tx, mut rx) = mpsc::unbounded_channel::<TaskEvent>();
                    let weak = Arc::downgrade(&d);
                    tokio::spawn(async move {
                        while let Some(ev) = rx.recv().await {
                            let Some(d) = weak.upgrade() else { return };
                            d.handle_task_event(ev).await;
                        }
                    });
                    tx
                });
                if let Err(mpsc::error::SendError(ev)) = queue.send(ev) {
                    // Its worker is gone: handle it here rather than lose it.
                    d.handle_task_event(ev).await;
                }
            }
        });
    }

    async fn handle_task_event(self: &Arc<Self>, ev: TaskEvent) {
        match ev {
            TaskEvent::Exit {
                container_id,
                exec_id,
                exit_status,
                exited_at,
                ..
            } => {
                if exec_id == container_id || exec_id.is_empty() {
                    if let Ok(c) = self.containers.get(&container_id) {
                        self.handle_init_exit(&c, exit_status, exited_at).await;
                    }
                } else {
                    self.handle_exec_exit(&exec_id, exit_status).await;
                }
            }
            TaskEvent::Oom { container_id } => {
                if let Ok(c) = self.containers.get(&container_id) {
                    c.lock().record.state.set_oom_killed();
                    self.container_event(&c, "oom", &[]);
                }
            }
            TaskEvent::Resubscribed => {}
        }
    }

    /// After containerd came back: exits it may not have told us about (the stream was
    /// down) are found with one `Tasks.List` and handled as if their events had come; execs
    /// still thought running are checked one `Tasks.Get` each.
    pub(crate) async fn reconcile(self: &Arc<Self>) {
        let tasks = match self.containerd().list_tasks().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list tasks to reconcile");
                return;
            }
        };
        let by_id: std::collections::HashMap<_, _> =
            tasks.iter().map(|t| (t.container_id.as_str(), t)).collect();
        for c in self.containers.all() {
            if c.lock().task.is_none() {
                continue;
            }
            let exit = match by_id.get(c.id.as_str()) {
                Some(t) if t.status == TaskStatus::Stopped => Some(t.exit_status),
                Some(_) => None,
                None => Some(255),
            };
            if let Some(code) = exit {
                tracing::info!(container = %c.id, exit_code = code, "exit missed while containerd was away");
                self.handle_init_exit(&c, code, SystemTime::now()).await;
            }
        }
        let execs: Vec<_> = self
            .execs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for e in execs {
            let Some(p) = e.running_process() else {
                continue;
            };
            let code = match p.state().await {
                Ok((TaskStatus::Stopped, code)) => code,
                Ok(_) => continue,
                Err(err) if err.is_not_found() => 255,
                Err(_) => continue,
            };
            self.handle_exec_exit(&e.id, code).await;
        }
    }

    /// The init process ended: delete the task (the shim goes), let the output drain, delete
    /// the containerd record, record the exit, and remove the container if it asked for it.
    pub(crate) async fn handle_init_exit(
        self: &Arc<Self>,
        c: &Arc<Container>,
        exit_status: u32,
        exited_at: SystemTime,
    ) {
        c.wait_start_logged(Duration::from_secs(10)).await;
        let (task, ctr, copiers) = {
            let mut inner = c.lock();
            (inner.task.take(), inner.ctr.take(), inner.copiers.take())
        };
        let Some(task) = task else {
            // Already handled (a duplicate event, or the exit of a task we no longer hold).
            return;
        };
        Self::stop_health_monitor(c);
        let code = match task.delete().await {
            Ok(s) => s.code,
            Err(e) => {
                tracing::warn!(container = %c.id, error = %e, "deleting the exited task failed");
                exit_status
            }
        };
        if let Some(copiers) = copiers
            && tokio::time::timeout(Duration::from_secs(2), copiers)
                .await
                .is_err()
        {
            tracing::warn!(container = %c.id, "output still open 2s after exit");
        }
        c.io.close_outputs();
        if let Some(ctr) = ctr
            && let Err(e) = ctr.delete().await
        {
            tracing::warn!(container = %c.id, error = %e, "deleting the containerd container failed");
        }
        self.leave_networks(c).await;
        self.release_volumes(c);
        let fifos = self.paths().fifo_dir(&c.id);
        crate::log_io_cleanup(
            "the container's FIFOs",
            &fifos,
            std::fs::remove_dir_all(&fifos),
        );
        let finished = humantime::format_rfc3339_nanos(exited_at).to_string();
        let auto_remove = {
            let mut inner = c.lock();
            inner.record.state.set_exited(i64::from(code), finished);
            inner.record.host_config.auto_remove
        };
        self.container_event(c, "die", &[("exitCode", code.to_string())]);
        let restarting = !auto_remove && self.maybe_restart(c);
        if let Err(e) = c.persist() {
            tracing::error!(container = %c.id, error = %e, "cannot record the exit");
        }
        c.notify();
        tracing::info!(container = %c.id, exit_code = code, restarting, "exited");
        if auto_remove {
            let _op = c.op.lock().await;
            if let Err(e) = self.remove_files(c) {
                tracing::error!(container = %c.id, error = %e, "auto-remove failed");
            }
        }
    }
}
