//! `docker exec`: processes added to a running container's task, derived from the
//! container's own process spec.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::io::{Fifos, Io, Readers, spawn_copiers};
use super::state::{Conflict, exec_can_start};
use super::{OutputChunk, StdinMsg, random_hex};
use crate::{Daemon, DaemonError};
use berth_oci::HostFacts;

/// `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    #[serde(deserialize_with = "berth_model::nullable")]
    pub cmd: Vec<String>,
    #[serde(deserialize_with = "berth_model::nullable")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "berth_model::nullable")]
    pub working_dir: String,
    #[serde(deserialize_with = "berth_model::nullable")]
    pub user: String,
    pub privileged: bool,
    #[serde(deserialize_with = "berth_model::nullable")]
    pub detach_keys: String,
}

/// What `GET /exec/{id}/json` shows.
#[derive(Debug, Clone)]
pub struct ExecInspect {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: u32,
}

#[derive(Debug, Default)]
struct ExecInner {
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: u32,
    process: Option<berth_containerd::Process>,
    /// True once the exec's output copiers are done (or there are none). Made before the
    /// process starts, so an exit handled at once still waits for the output.
    output_done: Option<watch::Receiver<bool>>,
}

/// One exec instance.
#[derive(Debug)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    io: Arc<Io>,
    inner: Mutex<ExecInner>,
    done: watch::Sender<bool>,
    /// True once Tasks.Start of the process has answered (or will never be asked): its exit
    /// is handled only then, as a container's, so the delete never races the start.
    start_answered: watch::Sender<bool>,
}

impl Exec {
    fn lock(&self) -> std::sync::MutexGuard<'_, ExecInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn inspect(&self) -> ExecInspect {
        let i = self.lock();
        ExecInspect {
            id: self.id.clone(),
            container_id: self.container_id.clone(),
            config: self.config.clone(),
            running: i.running,
            exit_code: i.exit_code,
            pid: i.pid,
        }
    }

    /// The started process, while it runs.
    pub(crate) fn running_process(&self) -> Option<berth_containerd::Process> {
        let i = self.lock();
        if i.running { i.process.clone() } else { None }
    }

    fn finish(&self, code: i64) {
        {
            let mut i = self.lock();
            i.running = false;
            i.exit_code = Some(code);
        }
        let _ = self.done.send(true);
    }
}

/// The output and stdin of a started, attached exec.
pub type ExecStreams = (mpsc::Receiver<OutputChunk>, mpsc::Sender<StdinMsg>, bool);

impl Daemon {
    /// Creates an exec instance in a running container.
    pub fn exec_create(&self, container: &str, config: ExecConfig) -> Result<String, DaemonError> {
        let c = self.containers.get(container)?;
        c.state().can_exec(&c.id)?;
        if config.cmd.is_empty() {
            return Err(DaemonError::InvalidParameter(
                "No exec command specified".into(),
            ));
        }
        let id = random_hex(32);
        self.container_event(
            &c,
            &format!("exec_create: {}", config.cmd.join(" ")),
            &[("execID", id.clone())],
        );
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            io: Arc::new(Io::new(config.tty)),
            config,
            inner: Mutex::new(ExecInner::default()),
            done: watch::channel(false).0,
            start_answered: watch::channel(false).0,
        });
        self.execs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), exec);
        c.lock().execs.push(id.clone());
        Ok(id)
    }

    pub fn exec_get(&self, id: &str) -> Result<Arc<Exec>, DaemonError> {
        self.execs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
            .ok_or_else(|| DaemonError::NoSuchExec(id.to_string()))
    }

    pub(crate) fn forget_exec(&self, id: &str) {
        self.execs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Starts an exec. Attached (`detach` false), the output receiver and stdin sender are
    /// returned; they were connected before the process started, so nothing is lost.
    pub async fn exec_start(
        &self,
        id: &str,
        detach: bool,
    ) -> Result<Option<ExecStreams>, DaemonError> {
        let exec = self.exec_get(id)?;
        {
            let mut i = exec.lock();
            exec_can_start(id, i.started, i.running)?;
            i.started = true;
            i.running = true;
        }
        match self.exec_start_inner(&exec, detach).await {
            Ok(streams) => Ok(streams),
            Err(e) => {
                exec.start_answered.send_replace(true);
                exec.finish(126);
                exec.io.close_outputs();
                Err(e)
            }
        }
    }

    async fn exec_start_inner(
        &self,
        exec: &Arc<Exec>,
        detach: bool,
    ) -> Result<Option<ExecStreams>, DaemonError> {
        let c = self.containers.get(&exec.container_id)?;
        // No pause between the check and the start's answer (see `exec_gate`).
        let gate = c.exec_gate.read().await;
        let (task, process_json, record) = {
            let inner = c.lock();
            inner.record.state.can_exec(&c.id)?;
            (
                inner.task.clone(),
                inner.record.process.clone(),
                inner.record.clone(),
            )
        };
        let task = task.ok_or_else(|| DaemonError::from(Conflict::NotRunning(c.id.clone())))?;
        let base: oci_spec::runtime::Process = process_json
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| DaemonError::Task("the container's process spec is missing".into()))?;
        let cfg = &exec.config;
        let user = if cfg.user.is_empty() {
            None
        } else {
            let root = berth_inroot::Root::open(
                self.paths().host.proc_pid(record.state.pid()).join("root"),
            )?;
            let (passwd, group) = super::fs::user_files(root).await?;
            Some(berth_oci::resolve_user(
                &cfg.user,
                &passwd,
                &group,
                &record.host_config.group_add,
            )?)
        };
        let snapshot = self.config();
        let bounding = self.host_facts().bounding_caps();
        let process = berth_oci::exec_process(berth_oci::ExecInput {
            container_process: &base,
            args: &cfg.cmd,
            env: &cfg.env,
            working_dir: &cfg.working_dir,
            user: user.as_ref(),
            tty: cfg.tty,
            privileged: cfg.privileged,
            bounding: &bounding,
            container_ulimits: &record.host_config.ulimits,
            default_ulimits: &snapshot.config.default_ulimits,
        })?;
        self.ensure_apparmor(process.apparmor_profile().as_deref())?;
        let json = serde_json::to_vec(&process).map_err(|e| DaemonError::Task(e.to_string()))?;

        let mut streams = None;
        let mut readers = None;
        let stdio = if detach {
            berth_containerd::Stdio::default()
        } else {
            let dir = self.paths().fifo_dir(&c.id);
            let io_err = |source| DaemonError::Io {
                path: dir.clone(),
                source,
            };
            let fifos = Fifos::create(&dir, &exec.id, cfg.attach_stdin, cfg.tty).map_err(io_err)?;
            readers = Some(Readers::open(&fifos).map_err(io_err)?);
            let rx = exec.io.attach(cfg.attach_stdout, cfg.attach_stderr);
            streams = Some((rx, exec.io.stdin_sender(), cfg.tty));
            fifos.stdio(cfg.tty)
        };
        let mut process = task.exec(&exec.id, json, &stdio).await?;
        let (done_tx, done_rx) = watch::channel(false);
        {
            let mut i = exec.lock();
            i.process = Some(process.clone());
            i.output_done = Some(done_rx);
        }
        // Before the process runs, as dockerd: its exec_die cannot come first.
        self.container_event(
            &c,
            &format!("exec_start: {}", exec.config.cmd.join(" ")),
            &[("execID", exec.id.clone())],
        );
        // The shim opens an exec's FIFOs when it starts the process, so the copiers (which
        // read until the shim closes them) begin after a start that worked; after one that
        // failed the shim may never have opened them.
        let started = process.start().await;
        drop(gate);
        exec.start_answered.send_replace(true);
        match readers.filter(|_| started.is_ok()) {
            Some(readers) => {
                let closer = process.clone();
                let copiers = spawn_copiers(exec.io.clone(), readers, None, move || {
                    tokio::spawn(async move {
                        let _ = closer.close_stdin().await;
                    })
                });
                tokio::spawn(async move {
                    let _ = copiers.await;
                    let _ = done_tx.send(true);
                });
            }
            None => {
                let _ = done_tx.send(true);
            }
        }
        match started {
            Ok(pid) => {
                exec.lock().pid = pid;
                Ok(streams)
            }
            Err(e) => {
                exec.lock().process = None;
                let cleanup = process.delete().await.err().map(DaemonError::from);
                Err(DaemonError::start_failed(e).with_cleanup(&c.id, cleanup))
            }
        }
    }

    /// An exec's process ended: delete it, record the code, then end its output.
    pub(crate) async fn handle_exec_exit(&self, exec_id: &str, exit_status: u32) {
        let Ok(exec) = self.exec_get(exec_id) else {
            return;
        };
        let mut answered = exec.start_answered.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(10), answered.wait_for(|a| *a)).await;
        let (process, output_done) = {
            let mut i = exec.lock();
            (i.process.take(), i.output_done.take())
        };
        let code = match process {
            Some(p) => p.delete().await.map(|s| s.code).unwrap_or(exit_status),
            None => exit_status,
        };
        exec.finish(i64::from(code));
        if let Ok(c) = self.containers.get(&exec.container_id) {
            self.container_event(
                &c,
                "exec_die",
                &[("execID", exec.id.clone()), ("exitCode", code.to_string())],
            );
        }
        if let Some(mut done) = output_done {
            let _ = tokio::time::timeout(Duration::from_secs(2), done.wait_for(|d| *d)).await;
        }
        exec.io.close_outputs();
        let dir = self.paths().fifo_dir(&exec.container_id);
        for end in ["stdout", "stderr", "stdin"] {
            let fifo = dir.join(format!("{exec_id}-{end}"));
            crate::log_io_cleanup("an exec's FIFO", &fifo, std::fs::remove_file(&fifo));
        }
    }

    /// Resizes an exec's terminal.
    pub async fn exec_resize(&self, id: &str, height: u32, width: u32) -> Result<(), DaemonError> {
        let exec = self.exec_get(id)?;
        let process = exec.lock().process.clone();
        match process {
            Some(p) => Ok(p.resize(width, height).await?),
            None => Err(Conflict::ExecNotRunning(id.to_string()).into()),
        }
    }
}
