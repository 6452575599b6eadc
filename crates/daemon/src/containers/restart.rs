//! `docker restart`, and restart policies (`no`, `always`, `unless-stopped`, `on-failure[:N]`) with dockerd's
//! backoff: the first restart waits 100 ms, each next one twice as long (at most a minute),
//! and a container that ran 10 s or more starts again from 100 ms.
//!
//! While it waits the container is `restarting` (and, as in dockerd, counts as running for
//! stop, kill and remove, which cancel the pending restart). A manual stop or kill means no
//! restart; `always` containers come back at the next daemon start anyway, `unless-stopped`
//! ones do not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_model::RestartPolicy;

use super::Container;
use super::state::Status;
use crate::{Daemon, DaemonError};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the backoff.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// Refuses what dockerd refuses, with its words.
pub(crate) fn validate_policy(p: &RestartPolicy, auto_remove: bool) -> Result<(), DaemonError> {
    let bad = |m: String| Err(DaemonError::InvalidParameter(m));
    match p.name.as_str() {
        "" | "no" => {}
        "always" | "unless-stopped" | "on-failure" if auto_remove => {
            return bad("can't create 'AutoRemove' container with restart policy".into());
        }
        "always" | "unless-stopped" | "on-failure" => {}
        other => return bad(format!("invalid restart policy '{other}'")),
    }
    if p.maximum_retry_count < 0 {
        return bad("invalid restart policy: maximum retry count cannot be negative".into());
    }
    if p.maximum_retry_count > 0 && p.name != "on-failure" {
        return bad(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'".into(),
        );
    }
    Ok(())
}

/// The restart state of one container between manual starts.
#[derive(Debug, Default, Clone)]
pub(crate) struct Backoff {
    delay: Duration,
    /// Restarts since the last manual start (what `on-failure:N` counts).
    count: i64,
    /// When the running process started.
    pub started: Option<Instant>,
}

impl Backoff {
    /// After an exit: the delay before the restart, or `None` for no restart.
    pub fn next(
        &mut self,
        policy: &RestartPolicy,
        exit_code: i64,
        manually_stopped: bool,
        ran_for: Duration,
    ) -> Option<Duration> {
        if manually_stopped {
            return None;
        }
        if ran_for >= RESET_AFTER {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() {
            FIRST_DELAY
        } else {
            (self.delay * 2).min(MAX_DELAY)
        };
        let restart = match policy.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                exit_code != 0
                    && (policy.maximum_retry_count == 0 || self.count < policy.maximum_retry_count)
            }
            _ => false,
        };
        if !restart {
            return None;
        }
        self.count += 1;
        Some(self.delay)
    }
}

/// Whether a stopped container starts with the daemon, as dockerd decides at start-up.
pub(crate) fn starts_with_daemon(
    policy: &RestartPolicy,
    exit_code: i64,
    manually_stopped: bool,
) -> bool {
    match policy.name.as_str() {
        "always" => true,
        "unless-stopped" => !manually_stopped,
        "on-failure" => exit_code != 0,
        _ => false,
    }
}

impl Daemon {
    /// Called with the exit recorded in the container's state: decides on a restart and, if
    /// there is one, marks the container restarting and starts it after the backoff.
    /// Returns whether a restart is pending.
    pub(crate) fn maybe_restart(self: &Arc<Self>, c: &Arc<Container>) -> bool {
        if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        let delay = {
            let mut inner = c.lock();
            if inner.restart_held {
                return false;
            }
            let ran_for = inner
                .backoff
                .started
                .take()
                .map_or(Duration::ZERO, |s| s.elapsed());
            let policy = inner.record.host_config.restart_policy.clone();
            let code = inner.record.state.exit_code();
            let manual = inner.record.has_been_manually_stopped;
            let delay = inner.backoff.next(&policy, code, manual, ran_for);
            if delay.is_some() {
                inner.record.state.set_restarting();
                inner.record.restart_count += 1;
            }
            delay
        };
        let Some(delay) = delay else {
            return false;
        };
        tracing::info!(container = %c.id, ?delay, "restarting by its restart policy");
        let d = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _op = c.op.lock().await;
            if c.is_removed() || c.state().status() != Status::Restarting {
                // Stopped, killed or removed meanwhile.
                return;
            }
            if let Err(e) = d.start_locked(&c).await {
                tracing::warn!(container = %c.id, error = %e, "restart failed");
                // start_failed recorded the exit; a failed start does not restart again.
                let mut inner = c.lock();
                if inner.record.state.status() == Status::Restarting {
                    let code = inner.record.state.exit_code();
                    inner.record.state.set_exited(code, super::now_rfc3339());
                }
                drop(inner);
                if let Err(e) = c.persist() {
                    tracing::warn!(container = %c.id, error = %e, "cannot record the failed restart");
                }
                c.notify();
            }
        });
        true
    }

    /// A pending restart is called off: by a user's stop, kill or remove (`by_hand`, so the
    /// policy leaves it stopped), or by the daemon's shutdown. True if one was pending.
    pub(crate) fn cancel_restart(&self, c: &Container, by_hand: bool) -> bool {
        let mut inner = c.lock();
        if inner.record.state.status() != Status::Restarting {
            return false;
        }
        let code = inner.record.state.exit_code();
        let finished = inner.record.state.finished_at().to_string();
        inner.record.state.set_exited(code, finished);
        inner.record.has_been_manually_stopped |= by_hand;
        drop(inner);
        if let Err(e) = c.persist() {
            tracing::warn!(container = %c.id, error = %e, "cannot record the cancelled restart");
        }
        c.notify();
        true
    }

    /// At daemon start: starts the stopped containers their policy brings back.
    pub async fn start_by_policy(self: &Arc<Self>) {
        for c in self.containers.all() {
            let record = c.record();
            if record.state.running()
                || !record.has_been_started
                || !starts_with_daemon(
                    &record.host_config.restart_policy,
                    record.state.exit_code(),
                    record.has_been_manually_stopped,
                )
            {
                continue;
            }
            let d = self.clone();
            tokio::spawn(async move {
                let _op = c.op.lock().await;
                if c.state().running() || c.is_removed() {
                    return;
                }
                c.reset_restarts();
                match d.start_locked(&c).await {
                    Ok(()) => tracing::info!(container = %c.id, "started by its restart policy"),
                    Err(e) => {
                        tracing::warn!(container = %c.id, error = %e, "cannot start by policy")
                    }
                }
            });
        }
    }
}

impl Daemon {
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
}

impl Container {
    /// A start by a user: the policy's count and backoff begin again.
    pub(crate) fn reset_restarts(&self) {
        let mut inner = self.lock();
        inner.record.has_been_manually_stopped = false;
        inner.record.restart_count = 0;
        inner.backoff = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn backoff_doubles_from_100ms_and_resets_after_10s() {
        let mut b = Backoff::default();
        let p = policy("always", 0);
        let short = Duration::from_millis(50);
        let delays: Vec<_> = (0..4)
            .map(|_| b.next(&p, 0, false, short).unwrap())
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800].map(Duration::from_millis),
            "doubling"
        );
        assert_eq!(
            b.next(&p, 0, false, Duration::from_secs(10)),
            Some(FIRST_DELAY),
            "a 10 s run resets"
        );
        for _ in 0..20 {
            b.next(&p, 0, false, short);
        }
        assert_eq!(b.next(&p, 0, false, short), Some(MAX_DELAY), "capped");
    }

    #[test]
    fn policies_decide_as_dockerd() {
        let short = Duration::ZERO;
        assert_eq!(
            Backoff::default().next(&policy("no", 0), 1, false, short),
            None
        );
        assert!(
            Backoff::default()
                .next(&policy("always", 0), 0, false, short)
                .is_some()
        );
        assert!(
            Backoff::default()
                .next(&policy("unless-stopped", 0), 0, false, short)
                .is_some()
        );
        assert_eq!(
            Backoff::default().next(&policy("always", 0), 0, true, short),
            None,
            "a manual stop is never undone by the policy"
        );
        assert_eq!(
            Backoff::default().next(&policy("on-failure", 0), 0, false, short),
            None,
            "success is not a failure"
        );
        let mut b = Backoff::default();
        let p = policy("on-failure", 2);
        assert!(b.next(&p, 3, false, short).is_some());
        assert!(b.next(&p, 3, false, short).is_some());
        assert_eq!(b.next(&p, 3, false, short), None, "at most 2 retries");
        let mut unlimited = Backoff::default();
        for _ in 0..50 {
            assert!(
                unlimited
                    .next(&policy("on-failure", 0), 1, false, short)
                    .is_some()
            );
        }
    }

    #[test]
    fn daemon_start_brings_back_what_dockerd_does() {
        assert!(starts_with_daemon(&policy("always", 0), 0, true));
        assert!(starts_with_daemon(&policy("unless-stopped", 0), 0, false));
        assert!(!starts_with_daemon(&policy("unless-stopped", 0), 0, true));
        assert!(starts_with_daemon(&policy("on-failure", 0), 1, false));
        assert!(!starts_with_daemon(&policy("on-failure", 0), 0, false));
        assert!(!starts_with_daemon(&policy("no", 0), 1, false));
    }

    #[test]
    fn invalid_policies_are_refused_with_dockers_words() {
        let msg = |p: RestartPolicy, rm: bool| match validate_policy(&p, rm) {
            Err(DaemonError::InvalidParameter(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(validate_policy(&policy("on-failure", 3), false).is_ok());
        assert!(validate_policy(&policy("no", 0), true).is_ok());
        assert_eq!(
            msg(policy("sometimes", 0), false),
            "invalid restart policy 'sometimes'"
        );
        assert!(msg(policy("always", 2), false).contains("maximum retry count"));
        assert!(msg(policy("on-failure", -1), false).contains("cannot be negative"));
        assert_eq!(
            msg(policy("always", 0), true),
            "can't create 'AutoRemove' container with restart policy"
        );
    }
}
