//! Docker's container states and the transitions between them.

use serde::{Deserialize, Serialize};

/// `State.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// Why a transition is refused; the API maps these to 304 and 409.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Already in the wanted state (304 for start and stop).
    AlreadyThere,
    /// Not allowed from this state (409), with Docker's message.
    Conflict(String),
}

/// Inspect's `State`, persisted with the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: Status,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: u32,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl State {
    pub fn new() -> State {
        State {
            started_at: ZERO_TIME.to_string(),
            finished_at: ZERO_TIME.to_string(),
            ..State::default()
        }
    }

    pub fn can_start(&self, id: &str) -> Result<(), Refusal> {
        match self.status {
            Status::Running => Err(Refusal::AlreadyThere),
            Status::Paused => Err(Refusal::Conflict(format!(
                "cannot start a paused container {id}, try unpause instead"
            ))),
            Status::Removing | Status::Dead => Err(Refusal::Conflict(format!(
                "container {id} is marked for removal and cannot be started"
            ))),
            Status::Created | Status::Exited | Status::Restarting => Ok(()),
        }
    }

    pub fn can_stop(&self) -> Result<(), Refusal> {
        if self.running {
            Ok(())
        } else {
            Err(Refusal::AlreadyThere)
        }
    }

    pub fn can_kill(&self, id: &str) -> Result<(), Refusal> {
        if self.running {
            Ok(())
        } else {
            Err(Refusal::Conflict(format!("Container {id} is not running")))
        }
    }

    pub fn can_pause(&self, id: &str) -> Result<(), Refusal> {
        match (self.running, self.paused) {
            (false, _) => Err(Refusal::Conflict(format!("Container {id} is not running"))),
            (true, true) => Err(Refusal::Conflict(format!(
                "Container {id} is already paused"
            ))),
            (true, false) => Ok(()),
        }
    }

    pub fn can_unpause(&self, id: &str) -> Result<(), Refusal> {
        if self.paused {
            Ok(())
        } else {
            Err(Refusal::Conflict(format!("Container {id} is not paused")))
        }
    }

    pub fn can_remove(&self, id: &str, force: bool) -> Result<(), Refusal> {
        if self.status == Status::Removing {
            return Err(Refusal::Conflict(format!(
                "removal of container {id} is already in progress"
            )));
        }
        if self.running && !force {
            let what = if self.restarting {
                "restarting"
            } else if self.paused {
                "paused"
            } else {
                "running"
            };
            return Err(Refusal::Conflict(format!(
                "cannot remove container \"{id}\": container is {what}: stop the container before removing or force remove"
            )));
        }
        Ok(())
    }

    pub fn set_running(&mut self, pid: u32, started_at: String) {
        self.status = Status::Running;
        self.running = true;
        self.paused = false;
        self.restarting = false;
        self.oom_killed = false;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.started_at = started_at;
    }

    pub fn set_exited(&mut self, code: i64, finished_at: String) {
        self.status = Status::Exited;
        self.running = false;
        self.paused = false;
        self.restarting = false;
        self.pid = 0;
        self.exit_code = code;
        self.finished_at = finished_at;
    }

    /// Exited, with a restart pending: counted as running (stop, kill and remove act on
    /// it), as dockerd does.
    pub fn set_restarting(&mut self) {
        self.status = Status::Restarting;
        self.running = true;
        self.restarting = true;
        self.paused = false;
        self.pid = 0;
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        self.status = if paused {
            Status::Paused
        } else {
            Status::Running
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let mut s = State::new();
        assert!(s.can_start("c").is_ok());
        assert_eq!(s.can_stop(), Err(Refusal::AlreadyThere));
        assert!(
            matches!(s.can_kill("c"), Err(Refusal::Conflict(m)) if m == "Container c is not running")
        );
        s.set_running(42, "t".into());
        assert_eq!(s.can_start("c"), Err(Refusal::AlreadyThere));
        assert!(s.can_remove("c", false).is_err());
        assert!(s.can_remove("c", true).is_ok());
        s.set_paused(true);
        assert_eq!(s.status, Status::Paused);
        assert!(matches!(s.can_start("c"), Err(Refusal::Conflict(_))));
        assert!(s.can_unpause("c").is_ok());
        s.set_paused(false);
        s.set_exited(137, "t2".into());
        assert_eq!(
            (s.status, s.exit_code, s.pid, s.running),
            (Status::Exited, 137, 0, false)
        );
        assert!(s.can_start("c").is_ok() && s.can_remove("c", false).is_ok());
    }

    #[test]
    fn json_names_are_dockers() {
        let v = serde_json::to_value(State::new()).unwrap();
        assert_eq!(v["Status"], "created");
        assert!(v.get("OOMKilled").is_some() && v.get("ExitCode").is_some());
    }
}
