//! `docker kill`, and signal names as dockerd reads them.

use std::time::Duration;

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

impl Daemon {
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
        let task = Self::running_task(&c).map_err(|e| match e {
            DaemonError::Conflict(super::state::Conflict::NotRunning(id)) => {
                super::state::Conflict::CannotKill {
                    name: name.to_string(),
                    id,
                }
                .into()
            }
            other => other,
        })?;
        task.kill(sig, sig == 9).await?;
        self.container_event(&c, "kill", &[("signal", sig.to_string())]);
        if sig == 9 {
            Self::wait_stopped(&c, Some(Duration::from_secs(10))).await;
        }
        Ok(())
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
