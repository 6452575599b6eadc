//! stop, kill, restart, pause, unpause, rename, remove, wait, resize, top, stats.

use std::sync::Arc;
use std::time::Duration;

use super::start::refusal;
use super::state::Status;
use super::{Container, fs};
use crate::{Daemon, DaemonError};

/// `SIGTERM`, `TERM`, `15` → 15.
pub fn parse_signal(s: &str) -> Result<u32, DaemonError> {
    if let Ok(n) = s.parse::<u32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(DaemonError::InvalidParameter(format!(
                "Invalid signal: {s}"
            )))
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            return Err(DaemonError::InvalidParameter(format!(
                "Invalid signal: {s}"
            )));
        }
    };
    Ok(n)
}

/// An attached client's ends: the container, its output, and its stdin.
pub type Attached = (
    Arc<Container>,
    tokio::sync::mpsc::Receiver<super::OutputChunk>,
    tokio::sync::mpsc::UnboundedSender<super::StdinMsg>,
);

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl Daemon {
    /// Waits until the container is not running (or `timeout` passes); true if it stopped.
    async fn wait_stopped(c: &Container, timeout: Option<Duration>) -> bool {
        let mut rx = c.subscribe();
        let wait = async {
            loop {
                let s = c.state();
                if !s.running || s.restarting {
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

    fn running_task(c: &Container) -> Result<berth_containerd::Task, DaemonError> {
        let inner = c.lock();
        inner.record.state.can_kill(&c.id).map_err(refusal)?;
        inner
            .task
            .clone()
            .ok_or_else(|| DaemonError::Conflict(format!("Container {} is not running", c.id)))
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
    async fn stop_by_hand(
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
        state.can_stop().map_err(refusal)?;
        let task = Self::running_task(c)?;
        let sig = match signal.or(config.stop_signal.as_deref()) {
            Some(s) => parse_signal(s)?,
            None => 15,
        };
        let secs = timeout.or(config.stop_timeout).unwrap_or(10);
        if state.paused {
            // A frozen process cannot act on the signal.
            let _ = task.resume().await;
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

    /// `docker kill`.
    pub async fn container_kill(
        &self,
        name: &str,
        signal: Option<&str>,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        if self.cancel_restart(&c, true) {
            return Ok(());
        }
        let stop_signal = c
            .record()
            .config
            .stop_signal
            .as_deref()
            .and_then(|s| parse_signal(s).ok())
            .unwrap_or(15);
        if sig == 9 || sig == stop_signal {
            // Ending it by hand: no restart policy brings it back.
            c.lock().record.has_been_manually_stopped = true;
        }
        let task = Self::running_task(&c)?;
        task.kill(sig, sig == 9).await?;
        self.container_event(&c, "kill", &[("signal", sig.to_string())]);
        if sig == 9 {
            Self::wait_stopped(&c, Some(Duration::from_secs(10))).await;
        }
        Ok(())
    }

    /// `docker restart`: stop if running, then start.
    pub async fn container_restart(
        &self,
        name: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let _op = c.op.lock().await;
        match self.stop_by_hand(&c, signal, timeout).await {
            Ok(()) | Err(DaemonError::NotModified) => {}
            Err(e) => return Err(e),
        }
        c.reset_restarts();
        self.start_locked(&c).await?;
        self.container_event(&c, "restart", &[]);
        Ok(())
    }

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
        allowed.map_err(refusal)?;
        let task = Self::running_task(&c)?;
        if pause {
            task.pause().await?;
        } else {
            task.resume().await?;
        }
        c.lock().record.state.set_paused(pause);
        c.persist()?;
        self.container_event(&c, if pause { "pause" } else { "unpause" }, &[]);
        c.notify();
        Ok(())
    }

    /// `docker rename`, with dockerd's checks and words. The store reserves the new name and
    /// releases the old one under the container's record lock, so concurrent renames of one
    /// container, or of two to one name, leave exactly one winner and no name held in vain.
    pub fn container_rename(&self, name: &str, new_name: &str) -> Result<(), DaemonError> {
        let (name, new_name) = (name.trim(), new_name.trim());
        if name.trim_start_matches('/').is_empty() || new_name.trim_start_matches('/').is_empty() {
            return Err(DaemonError::InvalidParameter(
                "Neither old nor new names may be empty".into(),
            ));
        }
        let c = self.containers.get(name)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !super::create::valid_name(new_name) {
            return Err(DaemonError::InvalidParameter(format!(
                "Error when allocating new name: Invalid container name (/{new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let old = self.containers.rename(&c, new_name)?;
        self.container_event(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `docker rm` (`force` kills a running container first).
    pub async fn container_remove(&self, name: &str, force: bool) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let _op = c.op.lock().await;
        c.state().can_remove(&c.id, force).map_err(refusal)?;
        self.cancel_restart(&c, true);
        if c.state().running {
            let task = Self::running_task(&c)?;
            if c.state().paused {
                let _ = task.resume().await;
            }
            if let Err(e) = task.kill(9, true).await
                && !e.is_not_found()
            {
                return Err(e.into());
            }
            if !Self::wait_stopped(&c, Some(Duration::from_secs(30))).await {
                return Err(DaemonError::Conflict(format!(
                    "could not kill running container {}, cannot remove",
                    c.id
                )));
            }
        }
        self.remove_files(&c)
    }

    /// Forgets a stopped container: its files, its names, its execs. Under the record lock,
    /// so no record write lands after it and no rename reserves a name for it meanwhile.
    pub(crate) fn remove_files(&self, c: &Arc<Container>) -> Result<(), DaemonError> {
        let graveyard = self
            .paths()
            .containers_dir()
            .join(format!(".removing-{}", c.id));
        {
            let _disk = c.disk_lock();
            if c.is_removed() {
                return Ok(());
            }
            let before = {
                let mut inner = c.lock();
                std::mem::replace(&mut inner.record.state.status, Status::Removing)
            };
            let dir = c.dir().to_path_buf();
            if let Err(source) = std::fs::rename(&dir, &graveyard) {
                c.lock().record.state.status = before;
                return Err(DaemonError::Io { path: dir, source });
            }
            self.containers.remove(&c.id);
            c.lock().removed = true;
        }
        for e in c.exec_ids() {
            self.forget_exec(&e);
        }
        self.container_event(c, "destroy", &[]);
        c.notify();
        if let Err(e) = std::fs::remove_dir_all(&graveyard) {
            tracing::warn!(path = %graveyard.display(), error = %e, "cannot remove a container's files");
        }
        Ok(())
    }

    /// `POST /containers/{id}/wait`: the exit code once `condition` holds.
    pub async fn container_wait(
        &self,
        name: &str,
        condition: WaitCondition,
    ) -> Result<i64, DaemonError> {
        let c = self.containers.get(name)?;
        let mut rx = c.subscribe();
        let start_exits = c.state().finished_at.clone();
        if condition == WaitCondition::NotRunning && !c.state().running {
            return Ok(c.state().exit_code);
        }
        loop {
            let s = c.state();
            match condition {
                WaitCondition::NotRunning if !s.running => return Ok(s.exit_code),
                // An exit is recorded (a restarting container has exited too).
                WaitCondition::NotRunning | WaitCondition::NextExit
                    if (!s.running || s.restarting) && s.finished_at != start_exits =>
                {
                    return Ok(s.exit_code);
                }
                WaitCondition::Removed if c.is_removed() => return Ok(s.exit_code),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Ok(c.state().exit_code);
            }
        }
    }

    /// `docker resize` of a container's terminal.
    pub async fn container_resize(
        &self,
        name: &str,
        height: u32,
        width: u32,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let task = Self::running_task(&c)?;
        task.resize(width, height).await?;
        Ok(())
    }

    /// `docker top`.
    pub async fn container_top(
        &self,
        name: &str,
    ) -> Result<(Vec<String>, Vec<Vec<String>>), DaemonError> {
        let c = self.containers.get(name)?;
        let task = Self::running_task(&c)?;
        let pids = task.pids().await?;
        Ok(fs::top(&pids))
    }

    /// Attaches a client: output chunks until the container's output ends, and a sender for
    /// its stdin. A stopped container that is not about to start cannot be attached.
    pub fn container_attach(
        &self,
        name: &str,
        stdout: bool,
        stderr: bool,
    ) -> Result<Attached, DaemonError> {
        let c = self.containers.get(name)?;
        let s = c.state();
        if s.status == Status::Exited || s.status == Status::Removing || s.status == Status::Dead {
            return Err(DaemonError::Conflict(
                "You cannot attach to a stopped container, start it first".into(),
            ));
        }
        let rx = c.io.attach(stdout, stderr);
        let tx = c.io.stdin_sender();
        self.container_event(&c, "attach", &[]);
        Ok((c, rx, tx))
    }
}

impl Container {
    /// A start by a user: the policy's count and backoff begin again.
    pub(crate) fn reset_restarts(&self) {
        let mut inner = self.lock();
        inner.record.has_been_manually_stopped = false;
        inner.record.restart_count = 0;
        inner.backoff = super::restart::Backoff::default();
    }

    pub fn tty(&self) -> bool {
        self.io.tty
    }
    pub fn open_stdin(&self) -> bool {
        self.lock().record.config.open_stdin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
