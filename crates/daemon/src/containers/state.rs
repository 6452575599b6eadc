//! Docker's container states and the transitions between them.

use serde::{Deserialize, Serialize};

use super::health::{Health, HealthStatus, ProbeResult};

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
    /// Not allowed from this state (409).
    Conflict(Conflict),
}

impl From<Conflict> for Refusal {
    fn from(c: Conflict) -> Refusal {
        Refusal::Conflict(c)
    }
}

/// Every 409 berthd answers, with Docker's words. The container's state machine (`State`'s
/// `can_*`) decides most; an exec's run (`exec_can_start`), the handles a live container
/// holds, and the store's names decide the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("Container {0} is not running")]
    NotRunning(String),
    /// `docker rm --link NAME` of a name that is no link.
    #[error("Conflict, cannot remove the default link name of the container")]
    DefaultLinkName,
    /// `docker kill` of a container that is not running: dockerd names it as asked.
    #[error("Cannot kill container: {name}: Container {id} is not running")]
    CannotKill { name: String, id: String },
    #[error("Container {0} is already paused")]
    AlreadyPaused(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    #[error("cannot start a paused container {0}, try unpause instead")]
    StartPaused(String),
    #[error("container {0} is marked for removal and cannot be started")]
    MarkedForRemoval(String),
    #[error("removal of container {0} is already in progress")]
    RemovalInProgress(String),
    #[error(
        "cannot remove container \"{id}\": container is {what}: stop the container before removing or force remove"
    )]
    RemoveActive { id: String, what: &'static str },
    /// SIGKILL did not end it in time.
    #[error("could not kill running container {0}, cannot remove")]
    NotKilled(String),
    #[error("Container {0} is restarting, wait until the container is running")]
    ExecRestarting(String),
    #[error("Container {0} is paused, unpause the container before exec")]
    ExecPaused(String),
    #[error("You cannot attach to a stopped container, start it first")]
    AttachStopped,
    #[error("Error: Exec command {0} is already running")]
    ExecRunning(String),
    #[error("Error: Exec command {0} has already run")]
    ExecRan(String),
    #[error("exec {0} is not running")]
    ExecNotRunning(String),
    /// An update that contradicts what the container has set.
    #[error("Cannot update container {id}: {why}")]
    Update { id: String, why: &'static str },
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, holder: String },
    #[error(
        "Error when allocating new name: Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    RenameInUse { name: String, holder: String },
}

/// An exec runs once: a second start is refused.
pub fn exec_can_start(id: &str, started: bool, running: bool) -> Result<(), Conflict> {
    match (started, running) {
        (false, _) => Ok(()),
        (true, true) => Err(Conflict::ExecRunning(id.to_string())),
        (true, false) => Err(Conflict::ExecRan(id.to_string())),
    }
}

/// Inspect's `State`, persisted with the container. Its fields change only through the
/// transitions below.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    status: Status,
    running: bool,
    paused: bool,
    restarting: bool,
    #[serde(rename = "OOMKilled")]
    oom_killed: bool,
    dead: bool,
    pid: u32,
    exit_code: i64,
    error: String,
    started_at: String,
    finished_at: String,
    /// Only for a container with a healthcheck, from its first start on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    health: Option<Health>,
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

    pub fn status(&self) -> Status {
        self.status
    }
    /// Running, paused, or exited with a restart pending.
    pub fn running(&self) -> bool {
        self.running
    }
    pub fn paused(&self) -> bool {
        self.paused
    }
    pub fn restarting(&self) -> bool {
        self.restarting
    }
    pub fn oom_killed(&self) -> bool {
        self.oom_killed
    }
    pub fn dead(&self) -> bool {
        self.dead
    }
    pub fn pid(&self) -> u32 {
        self.pid
    }
    pub fn exit_code(&self) -> i64 {
        self.exit_code
    }
    /// Why the last start failed, in the runtime's words; empty otherwise.
    pub fn error(&self) -> &str {
        &self.error
    }
    pub fn started_at(&self) -> &str {
        &self.started_at
    }
    pub fn finished_at(&self) -> &str {
        &self.finished_at
    }
    pub fn health(&self) -> Option<&Health> {
        self.health.as_ref()
    }

    pub fn can_start(&self, id: &str) -> Result<(), Refusal> {
        match self.status {
            Status::Running => Err(Refusal::AlreadyThere),
            Status::Paused => Err(Conflict::StartPaused(id.to_string()).into()),
            Status::Removing | Status::Dead => {
                Err(Conflict::MarkedForRemoval(id.to_string()).into())
            }
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

    pub fn can_kill(&self, id: &str) -> Result<(), Conflict> {
        if self.running {
            Ok(())
        } else {
            Err(Conflict::NotRunning(id.to_string()))
        }
    }

    pub fn can_pause(&self, id: &str) -> Result<(), Conflict> {
        match (self.running, self.paused) {
            (false, _) => Err(Conflict::NotRunning(id.to_string())),
            (true, true) => Err(Conflict::AlreadyPaused(id.to_string())),
            (true, false) => Ok(()),
        }
    }

    pub fn can_unpause(&self, id: &str) -> Result<(), Conflict> {
        if self.paused {
            Ok(())
        } else {
            Err(Conflict::NotPaused(id.to_string()))
        }
    }

    pub fn can_remove(&self, id: &str, force: bool) -> Result<(), Conflict> {
        if self.status == Status::Removing {
            return Err(Conflict::RemovalInProgress(id.to_string()));
        }
        if self.running && !force {
            let what = if self.restarting {
                "restarting"
            } else if self.paused {
                "paused"
            } else {
                "running"
            };
            return Err(Conflict::RemoveActive {
                id: id.to_string(),
                what,
            });
        }
        Ok(())
    }

    /// Whether a process may be executed in the container (checked at exec create and at
    /// exec start, as dockerd does).
    pub fn can_exec(&self, id: &str) -> Result<(), Conflict> {
        if !self.running {
            Err(Conflict::NotRunning(id.to_string()))
        } else if self.restarting {
            Err(Conflict::ExecRestarting(id.to_string()))
        } else if self.paused {
            Err(Conflict::ExecPaused(id.to_string()))
        } else {
            Ok(())
        }
    }

    /// A stopped container that is not about to start cannot be attached.
    pub fn can_attach(&self) -> Result<(), Conflict> {
        match self.status {
            Status::Exited | Status::Removing | Status::Dead => Err(Conflict::AttachStopped),
            Status::Created | Status::Running | Status::Paused | Status::Restarting => Ok(()),
        }
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

    /// A start of a container with a healthcheck: its health is starting again.
    pub fn set_health_starting(&mut self) {
        match &mut self.health {
            Some(h) => h.restart(),
            None => self.health = Some(Health::starting()),
        }
    }

    /// A probe's result through the health state machine; the new status if it changed.
    pub(crate) fn record_health(
        &mut self,
        result: ProbeResult,
        in_start_period: bool,
        retries: u64,
    ) -> Option<HealthStatus> {
        self.health
            .get_or_insert_with(Health::starting)
            .record(result, in_start_period, retries)
    }

    /// A live task taken over at restore: its pid, whatever the record said.
    pub fn set_pid(&mut self, pid: u32) {
        self.pid = pid;
    }

    /// The process ran and its exit was handled before its start was answered: it started
    /// at `started_at`, and stays exited.
    pub fn set_started_after_exit(&mut self, started_at: String) {
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

    /// A start that failed: exited with the code dockerd records, and the runtime's words.
    pub fn set_start_failed(&mut self, code: i64, error: String, finished_at: String) {
        self.set_exited(code, finished_at);
        self.error = error;
    }

    pub fn set_oom_killed(&mut self) {
        self.oom_killed = true;
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

    /// A removal begins; the status it had is returned, for `cancel_removal`.
    pub fn begin_removal(&mut self) -> Status {
        std::mem::replace(&mut self.status, Status::Removing)
    }

    /// A removal that failed: the status it had comes back.
    pub fn cancel_removal(&mut self, before: Status) {
        self.status = before;
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
        assert!(matches!(s.can_kill("c"), Err(e) if e.to_string() == "Container c is not running"));
        s.set_running(42, "t".into());
        assert_eq!(s.can_start("c"), Err(Refusal::AlreadyThere));
        assert!(s.can_remove("c", false).is_err());
        assert!(s.can_remove("c", true).is_ok());
        s.set_paused(true);
        assert_eq!(s.status(), Status::Paused);
        assert_eq!(
            s.can_start("c"),
            Err(Refusal::Conflict(Conflict::StartPaused("c".into())))
        );
        assert_eq!(s.can_exec("c"), Err(Conflict::ExecPaused("c".into())));
        assert!(s.can_attach().is_ok());
        assert!(s.can_unpause("c").is_ok());
        s.set_paused(false);
        s.set_exited(137, "t2".into());
        assert_eq!(
            (s.status, s.exit_code, s.pid, s.running),
            (Status::Exited, 137, 0, false)
        );
        assert!(s.can_start("c").is_ok() && s.can_remove("c", false).is_ok());
        assert_eq!(s.can_attach(), Err(Conflict::AttachStopped));
        assert_eq!(s.can_exec("c"), Err(Conflict::NotRunning("c".into())));
        s.set_restarting();
        assert_eq!(s.can_exec("c"), Err(Conflict::ExecRestarting("c".into())));
        let before = s.begin_removal();
        assert_eq!(
            s.can_remove("c", true),
            Err(Conflict::RemovalInProgress("c".into()))
        );
        s.cancel_removal(before);
        assert_eq!(s.status(), Status::Restarting);
    }

    #[test]
    fn conflicts_say_what_docker_says() {
        let said = |c: Conflict| c.to_string();
        assert_eq!(
            said(Conflict::ExecPaused("c".into())),
            "Container c is paused, unpause the container before exec"
        );
        assert_eq!(
            said(Conflict::RemoveActive {
                id: "c".into(),
                what: "running"
            }),
            "cannot remove container \"c\": container is running: stop the container before removing or force remove"
        );
        assert_eq!(
            said(Conflict::RenameInUse {
                name: "a".into(),
                holder: "h".into()
            }),
            "Error when allocating new name: Conflict. The container name \"/a\" is already in use by container \"h\". You have to remove (or rename) that container to be able to reuse that name."
        );
        assert_eq!(exec_can_start("e", false, false), Ok(()));
        assert_eq!(
            exec_can_start("e", true, true).map_err(said),
            Err("Error: Exec command e is already running".into())
        );
        assert_eq!(
            exec_can_start("e", true, false).map_err(said),
            Err("Error: Exec command e has already run".into())
        );
    }

    #[test]
    fn json_names_are_dockers() {
        let v = serde_json::to_value(State::new()).unwrap();
        assert_eq!(v["Status"], "created");
        assert!(v.get("OOMKilled").is_some() && v.get("ExitCode").is_some());
    }
}
