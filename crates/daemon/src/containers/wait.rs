//! `POST /containers/{id}/wait`.

use crate::{Daemon, DaemonError};

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl Daemon {
    /// `POST /containers/{id}/wait`: the exit code once `condition` holds.
    pub async fn container_wait(
        &self,
        name: &str,
        condition: WaitCondition,
    ) -> Result<i64, DaemonError> {
        let c = self.containers.get(name)?;
        let mut rx = c.subscribe();
        let start_exits = c.state().finished_at().to_string();
        if condition == WaitCondition::NotRunning && !c.state().running() {
            return Ok(c.state().exit_code());
        }
        loop {
            let s = c.state();
            match condition {
                WaitCondition::NotRunning if !s.running() => return Ok(s.exit_code()),
                // An exit is recorded (a restarting container has exited too).
                WaitCondition::NotRunning | WaitCondition::NextExit
                    if (!s.running() || s.restarting()) && s.finished_at() != start_exits =>
                {
                    return Ok(s.exit_code());
                }
                WaitCondition::Removed if c.is_removed() => return Ok(s.exit_code()),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Ok(c.state().exit_code());
            }
        }
    }
}
