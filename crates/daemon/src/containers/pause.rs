//! `docker pause` and `docker unpause`.

use crate::{Daemon, DaemonError};

impl Daemon {
    pub async fn container_pause(&self, name: &str) -> Result<(), DaemonError> {
        self.set_paused(name, true).await
    }

    pub async fn container_unpause(&self, name: &str) -> Result<(), DaemonError> {
        self.set_paused(name, false).await
    }

    /// Freezes or thaws every process of a running container.
    async fn set_paused(&self, name: &str, pause: bool) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let _op = c.op.lock().await;
        let state = c.state();
        let allowed = if pause {
            state.can_pause(&c.id)
        } else {
            state.can_unpause(&c.id)
        };
        allowed?;
        let task = Self::running_task(&c)?;
        // Held until the state says paused: an exec being started finishes starting first,
        // and a later one sees the pause (see `exec_gate`).
        let _gate = if pause {
            // No probes of a frozen container; they resume with it.
            Self::stop_health_monitor(&c);
            let gate = c.exec_gate.write().await;
            if let Err(e) = task.pause().await {
                self.start_health_monitor(&c);
                return Err(e.into());
            }
            Some(gate)
        } else {
            task.resume().await?;
            None
        };
        c.lock().record.state.set_paused(pause);
        if !pause {
            self.start_health_monitor(&c);
        }
        c.persist()?;
        self.container_event(&c, if pause { "pause" } else { "unpause" }, &[]);
        c.notify();
        Ok(())
    }
}
