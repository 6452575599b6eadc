//! `docker stop`, and the stop every other path uses (restart, restore, shutdown).

use std::sync::Arc;
use std::time::Duration;

use super::Container;
use super::kill::parse_signal;
use super::state::Conflict;
use crate::{Daemon, DaemonError};

impl Daemon {
    /// Waits until the container is not running (or `timeout` passes); true if it stopped.
    pub(super) async fn wait_stopped(c: &Container, timeout: Option<Duration>) -> bool {
        let mut rx = c.subscribe();
        let wait = async {
            loop {
                let s = c.state();
                if !s.running() || s.restarting() {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, wait).await.is_ok(),
            None => {
                wait.await;
                true
            }
        }
    }

    pub(super) fn running_task(c: &Container) -> Result<berth_containerd::Task, DaemonError> {
        let inner = c.lock();
        inner.record.state.can_kill(&c.id)?;
        inner
            .task
            .clone()
            .ok_or_else(|| Conflict::NotRunning(c.id.clone()).into())
    }

    /// `docker stop`: the stop signal, then SIGKILL after `timeout` seconds (the container's
    /// StopTimeout, else 10; negative waits for ever).
    pub async fn container_stop(
        &self,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let _op = c.op.lock().await;
        self.stop_by_hand(&c, signal, timeout).await?;
        self.container_event(&c, "stop", &[]);
        Ok(())
    }

    /// A user's stop (stop, restart): no restart policy brings it back, and a pending
    /// restart is called off instead of stopping anything.
    pub(super) async fn stop_by_hand(
        &self,
        c: &Arc<Container>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), DaemonError> {
        c.lock().record.has_been_manually_stopped = true;
        if self.cancel_restart(c, true) {
            return Ok(());
        }
        self.stop_locked(c, signal, timeout).await
    }

    pub(crate) async fn stop_locked(
        &self,
        c: &Arc<Container>,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), DaemonError> {
        let (state, config) = {
            let inner = c.lock();
            (inner.record.state.clone(), inner.record.config.clone())
        };
        state.can_stop()?;
        let task = Self::running_task(c)?;
        let sig = match signal.or(config.stop_signal.as_deref()) {
            Some(s) => parse_signal(s)?,
            None => 15,
        };
        let secs = timeout.or(config.stop_timeout).unwrap_or(10);
        if state.paused() {
            // A frozen process cannot act on the signal.
            crate::log_containerd_cleanup(
                "thawing before the stop signal",
                &c.id,
                task.resume().await,
            );
        }
        self.container_event(c, "kill", &[("signal", sig.to_string())]);
        if let Err(e) = task.kill(sig, false).await
            && !e.is_not_found()
        {
            tracing::warn!(container = %c.id, error = %e, "stop signal failed; killing");
        }
        let grace = (secs >= 0).then(|| Duration::from_secs(secs as u64));
        if !Self::wait_stopped(c, grace).await {
            tracing::info!(container = %c.id, "did not stop in time; sending SIGKILL");
            self.container_event(c, "kill", &[("signal", "9".to_string())]);
            if let Err(e) = task.kill(9, true).await
                && !e.is_not_found()
            {
                return Err(e.into());
            }
            Self::wait_stopped(c, None).await;
        }
        Ok(())
    }
}
