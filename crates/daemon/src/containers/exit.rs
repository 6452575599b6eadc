//! What happens when a container's process ends: containerd's exit event is the only source
//! of exit codes (no polling).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_containerd::TaskEvent;

use super::Container;
use crate::Daemon;

impl Daemon {
    /// Runs the daemon's one event subscription for its life.
    pub fn spawn_event_loop(self: &Arc<Self>) {
        let mut rx = self.containerd().subscribe_task_events();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let Some(d) = weak.upgrade() else { return };
                match ev {
                    TaskEvent::Exit {
                        container_id,
                        exec_id,
                        exit_status,
                        exited_at,
                        ..
                    } => {
                        tokio::spawn(async move {
                            if exec_id == container_id || exec_id.is_empty() {
                                if let Ok(c) = d.containers.get(&container_id) {
                                    d.handle_init_exit(&c, exit_status, exited_at).await;
                                }
                            } else {
                                d.handle_exec_exit(&exec_id, exit_status).await;
                            }
                        });
                    }
                    TaskEvent::Oom { container_id } => {
                        if let Ok(c) = d.containers.get(&container_id) {
                            c.lock().record.state.oom_killed = true;
                            d.container_event(&c, "oom", &[]);
                        }
                    }
                    TaskEvent::Resubscribed => {
                        tracing::info!("containerd events resumed");
                    }
                }
            }
        });
    }

    /// The init process ended: delete the task (the shim goes), let the output drain, delete
    /// the containerd record, record the exit, and remove the container if it asked for it.
    pub(crate) async fn handle_init_exit(
        self: &Arc<Self>,
        c: &Arc<Container>,
        exit_status: u32,
        exited_at: SystemTime,
    ) {
        let (task, ctr, copiers) = {
            let mut inner = c.lock();
            (inner.task.take(), inner.ctr.take(), inner.copiers.take())
        };
        let Some(task) = task else {
            // Already handled (a duplicate event, or the exit of a task we no longer hold).
            return;
        };
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
        let _ = std::fs::remove_dir_all(self.paths().fifo_dir(&c.id));
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
