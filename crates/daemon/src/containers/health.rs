//! Health checks: a container's `Config.Healthcheck` probe runs as an exec in it (one at a
//! time), every interval while it runs unpaused, and the results move `State.Health` through
//! Docker's state machine (`Health::record`, pure). A change of status is a
//! `health_status: <status>` event; with the `berth.health-on-failure` label, turning
//! unhealthy also restarts, stops or kills the container (beyond dockerd, podman's idea).
//!
//! A monitor is one tokio task per container, started after a start, an unpause and a
//! live-restore adoption, and stopped (its handle dropped) at an exit or a pause. A result
//! lands only if the monitor that asked for it is still the container's.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Container, ExecConfig};
use crate::{Daemon, DaemonError};

/// The results `State.Health.Log` keeps.
pub const MAX_LOG: usize = 5;
/// The bytes of a probe's output kept (then `...`), as dockerd.
pub const MAX_OUTPUT: usize = 4096;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u64 = 3;
/// How long a killed probe's output may take to end before it is left behind.
const DRAIN_AFTER_KILL: Duration = Duration::from_secs(10);

/// The label that asks for an action when the container turns unhealthy.
pub const ON_FAILURE_LABEL: &str = "berth.health-on-failure";

/// `State.Health.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's run, as `State.Health.Log` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProbeResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health`: present only for a container with a healthcheck, once it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    status: HealthStatus,
    failing_streak: u64,
    #[serde(default, deserialize_with = "berth_model::nullable")]
    log: Vec<ProbeResult>,
}

impl Health {
    pub fn starting() -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    pub fn status(&self) -> HealthStatus {
        self.status
    }
    pub fn failing_streak(&self) -> u64 {
        self.failing_streak
    }
    /// The last results, oldest first.
    pub fn log(&self) -> &[ProbeResult] {
        &self.log
    }

    /// A (re)start: starting again with no failures; the log stays (dockerd's).
    pub(crate) fn restart(&mut self) {
        self.status = HealthStatus::Starting;
        self.failing_streak = 0;
    }

    /// dockerd's `handleProbeResult`: the result is logged (the last [`MAX_LOG`] kept); a
    /// pass makes it healthy; a failure counts unless the container is still starting inside
    /// its start period, and `retries` failures in a row make it unhealthy. Returns the new
    /// status when it changed.
    pub(crate) fn record(
        &mut self,
        result: ProbeResult,
        in_start_period: bool,
        retries: u64,
    ) -> Option<HealthStatus> {
        let before = self.status;
        let passed = result.exit_code == 0;
        self.log.push(result);
        if self.log.len() > MAX_LOG {
            let extra = self.log.len() - MAX_LOG;
            self.log.drain(..extra);
        }
        if passed {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        (self.status != before).then_some(self.status)
    }
}

/// A container's healthcheck with dockerd's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    /// What runs: `CMD`'s argv, or `/bin/sh -c` and `CMD-SHELL`'s command.
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    /// Between probes while starting inside the start period, when set.
    pub start_interval: Option<Duration>,
    pub retries: u64,
}

fn nanos(n: i64) -> Option<Duration> {
    u64::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .map(Duration::from_nanos)
}

impl Probe {
    /// The container's probe; none without a healthcheck, with `NONE`, or an unknown type
    /// (dockerd warns and runs none).
    pub(crate) fn of(config: &berth_model::ContainerConfig) -> Option<Probe> {
        let h = config.healthcheck.as_ref()?;
        let argv = match h.test.split_first() {
            Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
            Some((kind, rest)) if kind == "CMD-SHELL" => ["/bin/sh".to_string(), "-c".to_string()]
                .into_iter()
                .chain(rest.iter().cloned())
                .collect(),
            Some((kind, _)) if kind != "NONE" => {
                tracing::warn!(kind = %kind, "unknown healthcheck type (expected CMD or CMD-SHELL)");
                return None;
            }
            _ => return None,
        };
        Some(Probe {
            argv,
            interval: nanos(h.interval).unwrap_or(DEFAULT_INTERVAL),
            timeout: nanos(h.timeout).unwrap_or(DEFAULT_TIMEOUT),
            start_period: nanos(h.start_period).unwrap_or_default(),
            start_interval: nanos(h.start_interval),
            retries: u64::try_from(h.retries)
                .ok()
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_RETRIES),
        })
    }

    /// The wait before the next probe: the start interval while starting inside the start
    /// period (when one is set), the interval otherwise.
    pub(crate) fn next_wait(&self, since_start: Duration, status: HealthStatus) -> Duration {
        match self.start_interval {
            Some(i) if since_start < self.start_period && status == HealthStatus::Starting => i,
            _ => self.interval,
        }
    }
}

/// Go's `time.Duration.String()` (`1s`, `1m30s`, `500ms`, `1.5s`), for dockerd's texts.
pub(crate) fn go_duration(d: Duration) -> String {
    fn with_fraction(whole: u128, frac: u128, digits: usize) -> String {
        let frac = format!("{frac:0digits$}");
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{frac}")
        }
    }
    let ns = d.as_nanos();
    match ns {
        0 => "0s".into(),
        1..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{}µs", with_fraction(ns / 1_000, ns % 1_000, 3)),
        1_000_000..1_000_000_000 => {
            format!("{}ms", with_fraction(ns / 1_000_000, ns % 1_000_000, 6))
        }
        _ => {
            let (h, m) = (ns / 3_600_000_000_000, ns / 60_000_000_000 % 60);
            let rest = ns % 60_000_000_000;
            let s = with_fraction(rest / 1_000_000_000, rest % 1_000_000_000, 9);
            match (h, m) {
                (0, 0) => format!("{s}s"),
                (0, m) => format!("{m}m{s}s"),
                (h, m) => format!("{h}h{m}m{s}s"),
            }
        }
    }
}

/// What `berth.health-on-failure` asks for when the container turns unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFailure {
    None,
    Kill,
    Restart,
    Stop,
}

impl OnFailure {
    /// The label's action (none without it); the value when it names none.
    pub(crate) fn of(labels: &std::collections::BTreeMap<String, String>) -> Result<Self, String> {
        match labels.get(ON_FAILURE_LABEL).map(String::as_str) {
            None | Some("none") => Ok(OnFailure::None),
            Some("kill") => Ok(OnFailure::Kill),
            Some("restart") => Ok(OnFailure::Restart),
            Some("stop") => Ok(OnFailure::Stop),
            Some(other) => Err(other.to_string()),
        }
    }
}

/// A probe's output, as dockerd keeps it: the first [`MAX_OUTPUT`] bytes, then `...`.
#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Captured {
    fn push(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT.saturating_sub(self.bytes.len()).min(data.len());
        self.bytes.extend_from_slice(&data[..keep]);
        self.truncated |= keep < data.len();
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// The handle of a container's running monitor: dropping it stops the monitor.
#[derive(Debug)]
pub(crate) struct Monitor {
    generation: u64,
    _stop: watch::Sender<()>,
}

fn time_since(t: &str, now: SystemTime) -> Duration {
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
        .ok()
        .and_then(|t| now.duration_since(t).ok())
        .unwrap_or_default()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

impl Daemon {
    /// Starts the container's health monitor (replacing any) if it has a probe. Without the
    /// event loop (which hands probes their exits) no monitor runs.
    pub(crate) fn start_health_monitor(&self, c: &Arc<Container>) {
        let Some(probe) = Probe::of(&c.record().config) else {
            return;
        };
        let Some(me) = self.me.get().cloned() else {
            tracing::debug!(container = %c.id, "no event loop: no health monitor");
            return;
        };
        let (tx, rx) = watch::channel(());
        let generation = {
            let mut inner = c.lock();
            inner.health_generation += 1;
            inner.health_monitor = Some(Monitor {
                generation: inner.health_generation,
                _stop: tx,
            });
            inner.health_generation
        };
        tracing::debug!(container = %c.id, ?probe, "health monitor started");
        tokio::spawn(monitor(me, c.clone(), generation, Arc::new(probe), rx));
    }

    /// Stops the container's health monitor: a probe under way is left to end, its result
    /// not recorded.
    pub(crate) fn stop_health_monitor(c: &Container) {
        c.lock().health_monitor = None;
    }

    /// Runs one probe: an exec of its argv with stdout and stderr captured, killed past the
    /// timeout. None when the container cannot run it now (stopped, paused, restarting).
    async fn run_probe(
        &self,
        c: &Arc<Container>,
        probe: &Probe,
    ) -> Option<(SystemTime, ProbeResult)> {
        let _one_at_a_time = c.probe.lock().await;
        let start = SystemTime::now();
        let config = ExecConfig {
            attach_stdout: true,
            attach_stderr: true,
            cmd: probe.argv.clone(),
            ..ExecConfig::default()
        };
        let outcome = match self.exec_create(&c.id, config) {
            Ok(id) => {
                let outcome = self.probe_exec(&id, probe.timeout).await;
                self.forget_probe_exec(c, &id);
                outcome
            }
            Err(e) => Err(e),
        };
        let (exit_code, output) = match outcome {
            Ok(o) => o,
            Err(DaemonError::Conflict(_) | DaemonError::NoSuchContainer(_)) => return None,
            Err(e) => {
                tracing::warn!(container = %c.id, error = %e, "health check failed to run");
                (-1, e.to_string())
            }
        };
        let result = ProbeResult {
            start: rfc3339(start),
            end: rfc3339(SystemTime::now()),
            exit_code,
            output,
        };
        Some((start, result))
    }

    /// Starts the exec and reads its output until it ends or the timeout passes (then it
    /// is killed, and the result is dockerd's).
    async fn probe_exec(&self, id: &str, timeout: Duration) -> Result<(i64, String), DaemonError> {
        let Some((mut output, _stdin, _tty)) = self.exec_start(id, false).await? else {
            return Err(DaemonError::Task("a probe's exec gave no output".into()));
        };
        let mut captured = Captured::default();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let timed_out = loop {
            tokio::select! {
                chunk = output.recv() => match chunk {
                    Some((_, bytes)) => captured.push(&bytes),
                    None => break false,
                },
                () = &mut deadline => break true,
            }
        };
        let exec = self.exec_get(id)?;
        if timed_out {
            if let Some(p) = exec.running_process()
                && let Err(e) = p.kill(9).await
                && !e.is_not_found()
            {
                tracing::warn!(exec = %id, error = %e, "cannot kill a health check past its timeout");
            }
            let _ = tokio::time::timeout(DRAIN_AFTER_KILL, async {
                while output.recv().await.is_some() {}
            })
            .await;
            return Ok((
                -1,
                format!("Health check exceeded timeout ({})", go_duration(timeout)),
            ));
        }
        Ok((exec.inspect().exit_code.unwrap_or(-1), captured.text()))
    }

    /// A probe's exec is forgotten once it ended (one left running is forgotten with the
    /// container), so probes do not pile up in `ExecIDs`.
    fn forget_probe_exec(&self, c: &Container, id: &str) {
        let ended = self.exec_get(id).is_ok_and(|e| !e.inspect().running);
        if ended {
            self.forget_exec(id);
            c.lock().execs.retain(|e| e != id);
        }
    }

    /// Records a probe's result if the monitor `generation` is still the container's: the
    /// state machine, the record, and on a change the event and the on-failure action.
    fn record_probe(
        self: &Arc<Self>,
        c: &Arc<Container>,
        generation: u64,
        probe: &Probe,
        (start, result): (SystemTime, ProbeResult),
    ) {
        let (changed, labels) = {
            let mut inner = c.lock();
            if inner.health_monitor.as_ref().map(|m| m.generation) != Some(generation) {
                return;
            }
            let in_start_period =
                time_since(inner.record.state.started_at(), start) < probe.start_period;
            let changed = inner
                .record
                .state
                .record_health(result, in_start_period, probe.retries);
            (changed, inner.record.config.labels.clone())
        };
        if let Err(e) = c.persist() {
            tracing::warn!(container = %c.id, error = %e, "cannot record a health check");
        }
        let Some(status) = changed else {
            return;
        };
        tracing::info!(container = %c.id, status = status.as_str(), "health status changed");
        self.container_event(c, &format!("health_status: {}", status.as_str()), &[]);
        c.notify();
        if status == HealthStatus::Unhealthy {
            self.on_failure(c, OnFailure::of(&labels).unwrap_or(OnFailure::None));
        }
    }

    /// `berth.health-on-failure`: the action, on its own task (it stops this monitor).
    fn on_failure(self: &Arc<Self>, c: &Container, action: OnFailure) {
        if action == OnFailure::None {
            return;
        }
        let (d, id) = (self.clone(), c.id.clone());
        tokio::spawn(async move {
            tracing::info!(container = %id, ?action, "unhealthy: acting on {ON_FAILURE_LABEL}");
            let done = match action {
                OnFailure::Restart => d.container_restart(&id, None, None).await,
                OnFailure::Stop => d.container_stop(&id, None, None).await,
                OnFailure::Kill => d.container_kill(&id, Some("KILL")).await,
                OnFailure::None => Ok(()),
            };
            if let Err(e) = done {
                tracing::warn!(container = %id, ?action, error = %e, "the on-failure action failed");
            }
        });
    }
}

/// A container's monitor: wait, probe, record, until stopped (its handle dropped), the
/// container gone or the daemon gone.
async fn monitor(
    daemon: Weak<Daemon>,
    c: Arc<Container>,
    generation: u64,
    probe: Arc<Probe>,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let wait = {
            let inner = c.lock();
            let state = &inner.record.state;
            let status = state
                .health()
                .map_or(HealthStatus::Starting, Health::status);
            probe.next_wait(time_since(state.started_at(), SystemTime::now()), status)
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let Some(d) = daemon.upgrade() else { return };
        let state = c.state();
        if c.is_removed() || !state.running() || state.restarting() {
            // It exited (or went) between its start and this monitor's: nothing to probe.
            return;
        }
        // On a task of its own: a monitor stopped meanwhile leaves the probe to end.
        let run = tokio::spawn({
            let (d, c, probe) = (d.clone(), c.clone(), probe.clone());
            async move { d.run_probe(&c, &probe).await }
        });
        let result = tokio::select! {
            r = run => r,
            _ = stop.changed() => return,
        };
        if let Ok(Some(result)) = result {
            d.record_probe(&c, generation, &probe, result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> ProbeResult {
        ProbeResult {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: format!("out {code}"),
        }
    }

    fn state(h: &Health) -> (HealthStatus, u64, usize) {
        (h.status(), h.failing_streak(), h.log().len())
    }

    #[test]
    fn starting_until_a_pass_unhealthy_after_retries_failures() {
        use HealthStatus::*;
        let mut h = Health::starting();
        assert_eq!(h.record(result(1), false, 2), None);
        assert_eq!(state(&h), (Starting, 1, 1));
        assert_eq!(h.record(result(1), false, 2), Some(Unhealthy));
        assert_eq!(state(&h), (Unhealthy, 2, 2));
        assert_eq!(h.record(result(1), false, 2), None, "stays unhealthy");
        assert_eq!(h.record(result(0), false, 2), Some(Healthy));
        assert_eq!(state(&h), (Healthy, 0, 4));
        assert_eq!(
            h.record(result(1), false, 2),
            None,
            "one failure: still healthy"
        );
        assert_eq!(state(&h), (Healthy, 1, 5));
        assert_eq!(h.record(result(0), false, 2), None);
        assert_eq!(state(&h), (Healthy, 0, 5), "the log keeps 5");
        assert_eq!(h.log()[4].output, "out 0");
        assert_eq!(h.log()[0].output, "out 1", "the oldest went");
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_while_starting() {
        use HealthStatus::*;
        let mut h = Health::starting();
        for _ in 0..4 {
            assert_eq!(h.record(result(1), true, 1), None);
        }
        assert_eq!(state(&h), (Starting, 0, 4));
        assert_eq!(h.record(result(0), true, 1), Some(Healthy));
        // Once it passed, failures count even inside the start period.
        assert_eq!(h.record(result(1), true, 1), Some(Unhealthy));
        assert_eq!(h.record(result(-1), false, 1), None);
        assert_eq!(state(&h), (Unhealthy, 2, 5));
        h.restart();
        assert_eq!(state(&h), (Starting, 0, 5), "a restart keeps the log");
        assert_eq!(
            h.record(result(2), false, 3),
            None,
            "any non-zero code fails"
        );
        assert_eq!(h.failing_streak(), 1);
    }

    #[test]
    fn probes_and_their_defaults() {
        let config = |test: &[&str], interval: i64| berth_model::ContainerConfig {
            healthcheck: Some(berth_model::HealthConfig {
                test: test.iter().map(|s| s.to_string()).collect(),
                interval,
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = Probe::of(&config(&["CMD-SHELL", "test -f /ok"], 1_000_000_000)).unwrap();
        assert_eq!(p.argv, ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(
            (
                p.interval,
                p.timeout,
                p.retries,
                p.start_period,
                p.start_interval
            ),
            (
                Duration::from_secs(1),
                DEFAULT_TIMEOUT,
                3,
                Duration::ZERO,
                None
            )
        );
        let p = Probe::of(&config(&["CMD", "true", "x"], 0)).unwrap();
        assert_eq!(
            (p.argv.as_slice(), p.interval),
            (&["true".to_string(), "x".to_string()][..], DEFAULT_INTERVAL)
        );
        assert!(Probe::of(&config(&["NONE"], 0)).is_none());
        assert!(Probe::of(&config(&[], 0)).is_none());
        assert!(Probe::of(&config(&["RUN", "x"], 0)).is_none());
        assert!(Probe::of(&berth_model::ContainerConfig::default()).is_none());
    }

    #[test]
    fn the_start_interval_applies_while_starting_in_the_start_period() {
        let p = Probe {
            argv: vec![],
            interval: Duration::from_secs(30),
            timeout: DEFAULT_TIMEOUT,
            start_period: Duration::from_secs(60),
            start_interval: Some(Duration::from_secs(2)),
            retries: 3,
        };
        let s = Duration::from_secs;
        assert_eq!(p.next_wait(s(10), HealthStatus::Starting), s(2));
        assert_eq!(p.next_wait(s(10), HealthStatus::Healthy), s(30));
        assert_eq!(p.next_wait(s(61), HealthStatus::Starting), s(30));
        let no_start_interval = Probe {
            start_interval: None,
            ..p
        };
        assert_eq!(
            no_start_interval.next_wait(s(10), HealthStatus::Starting),
            s(30)
        );
    }

    #[test]
    fn durations_print_as_go_does() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn output_is_capped_as_dockerd_caps_it() {
        let mut c = Captured::default();
        c.push(b"probe-out\n");
        assert_eq!(c.text(), "probe-out\n");
        c.push(&[b'x'; MAX_OUTPUT]);
        let t = c.text();
        assert_eq!(t.len(), MAX_OUTPUT + 3);
        assert!(t.ends_with("x...") && t.starts_with("probe-out\n"));
    }

    #[test]
    fn on_failure_values() {
        let labels = |v: &str| [(ON_FAILURE_LABEL.to_string(), v.to_string())].into();
        assert_eq!(OnFailure::of(&labels("restart")), Ok(OnFailure::Restart));
        assert_eq!(OnFailure::of(&labels("kill")), Ok(OnFailure::Kill));
        assert_eq!(OnFailure::of(&labels("stop")), Ok(OnFailure::Stop));
        assert_eq!(OnFailure::of(&labels("none")), Ok(OnFailure::None));
        assert_eq!(OnFailure::of(&Default::default()), Ok(OnFailure::None));
        assert_eq!(OnFailure::of(&labels("reboot")), Err("reboot".to_string()));
    }

    #[test]
    fn health_json_is_dockers() {
        let mut h = Health::starting();
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            serde_json::json!({"Status": "starting", "FailingStreak": 0, "Log": []})
        );
        h.record(result(1), false, 3);
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(
            v["Log"][0],
            serde_json::json!({"Start": "s", "End": "e", "ExitCode": 1, "Output": "out 1"})
        );
        let back: Health = serde_json::from_value(v).unwrap();
        assert_eq!(back, h);
    }
}
