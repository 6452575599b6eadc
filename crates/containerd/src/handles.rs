//! Container, Task and Process handles: made once, kept by the daemon, each call one RPC.

use std::collections::HashMap;
use std::time::SystemTime;

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    CloseIoRequest, Container as ContainerRecord, CreateContainerRequest, CreateTaskRequest,
    DeleteContainerRequest, DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest,
    GetContainerRequest, GetRequest, KillRequest, ListPidsRequest, ListTasksRequest,
    PauseTaskRequest, ResizePtyRequest, ResumeTaskRequest, StartRequest, UpdateTaskRequest,
};
use containerd_client::tonic::{Code, Status};
use containerd_client::types::Mount;
use prost_types::Any;

use crate::{Client, ContainerdError, RuntimeSpec};

const SPEC_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
const PROCESS_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const RESOURCES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// Where a process's stdio goes: FIFO paths, empty for /dev/null.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: u32,
    pub at: SystemTime,
}

fn exited_at(t: Option<prost_types::Timestamp>) -> SystemTime {
    t.and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or_else(SystemTime::now)
}

/// A task state as containerd reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Unknown,
    Created,
    Running,
    Stopped,
    Paused,
    Pausing,
}

impl TaskStatus {
    fn from_proto(s: i32) -> TaskStatus {
        match s {
            1 => TaskStatus::Created,
            2 => TaskStatus::Running,
            3 => TaskStatus::Stopped,
            4 => TaskStatus::Paused,
            5 => TaskStatus::Pausing,
            _ => TaskStatus::Unknown,
        }
    }
}

/// A task containerd knows of (for reconciling after a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub container_id: String,
    pub pid: u32,
    pub status: TaskStatus,
    pub exit_status: u32,
}

impl Client {
    fn tasks(&self) -> TasksClient<crate::Service> {
        TasksClient::new(self.service())
    }
    fn containers(&self) -> ContainersClient<crate::Service> {
        ContainersClient::new(self.service())
    }

    /// Creates the containerd container record (spec, runtime, labels). A record left with
    /// the same ID (a crash, a daemon restart without live-restore) is replaced: its task is
    /// killed and deleted, the record deleted, and the create made again.
    pub async fn create_container(
        &self,
        id: &str,
        spec_json: Vec<u8>,
        runtime: &RuntimeSpec,
        labels: HashMap<String, String>,
    ) -> Result<Container, ContainerdError> {
        let record = ContainerRecord {
            id: id.to_string(),
            labels,
            runtime: Some(Runtime {
                name: runtime.shim.clone(),
                options: runtime.options.clone(),
            }),
            spec: Some(Any {
                type_url: SPEC_TYPE.to_string(),
                value: spec_json,
            }),
            ..Default::default()
        };
        let req = || CreateContainerRequest {
            container: Some(record.clone()),
        };
        match self.containers().create(req()).await {
            Ok(_) => {}
            Err(s) if s.code() == Code::AlreadyExists => {
                tracing::warn!(container = id, "replacing a stale containerd container");
                let stale = self.container(id);
                let task = stale.task(0);
                let _ = task.kill(9, true).await;
                match task.delete().await {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
                match stale.delete().await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
                self.containers()
                    .create(req())
                    .await
                    .map_err(|s| ContainerdError::rpc("Containers.Create", s))?;
            }
            Err(s) => return Err(ContainerdError::rpc("Containers.Create", s)),
        }
        Ok(self.container(id))
    }

    /// A handle on an existing containerd container (no RPC).
    pub fn container(&self, id: &str) -> Container {
        Container {
            client: self.clone(),
            id: id.to_string(),
        }
    }

    /// Every task in the namespace.
    pub async fn list_tasks(&self) -> Result<Vec<TaskInfo>, ContainerdError> {
        let resp = self
            .tasks()
            .list(ListTasksRequest::default())
            .await
            .map_err(|s| ContainerdError::rpc("Tasks.List", s))?
            .into_inner();
        Ok(resp
            .tasks
            .into_iter()
            .map(|p| TaskInfo {
                // containerd 1.6 names the task's container in `id` and leaves
                // `container_id` empty in List.
                container_id: if p.container_id.is_empty() {
                    p.id
                } else {
                    p.container_id
                },
                pid: p.pid,
                status: TaskStatus::from_proto(p.status),
                exit_status: p.exit_status,
            })
            .collect())
    }
}

/// A containerd container record.
#[derive(Debug, Clone)]
pub struct Container {
    client: Client,
    id: String,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Creates its task (the shim starts, runc creates the container): `Tasks.Create`.
    pub async fn new_task(
        &self,
        rootfs: Vec<Mount>,
        stdio: &Stdio,
    ) -> Result<Task, ContainerdError> {
        let resp = self
            .client
            .tasks()
            .create(CreateTaskRequest {
                container_id: self.id.clone(),
                rootfs,
                stdin: stdio.stdin.clone(),
                stdout: stdio.stdout.clone(),
                stderr: stdio.stderr.clone(),
                terminal: stdio.terminal,
                ..Default::default()
            })
            .await
            .map_err(|s| ContainerdError::rpc("Tasks.Create", s))?
            .into_inner();
        Ok(self.task(resp.pid))
    }

    /// A handle on its task (no RPC), e.g. after a daemon restart.
    pub fn task(&self, pid: u32) -> Task {
        Task {
            client: self.client.clone(),
            container_id: self.id.clone(),
            pid,
        }
    }

    /// The OCI spec it was created with (JSON): `Containers.Get`.
    pub async fn spec(&self) -> Result<Vec<u8>, ContainerdError> {
        let r = self
            .client
            .containers()
            .get(GetContainerRequest {
                id: self.id.clone(),
            })
            .await
            .map_err(|s| ContainerdError::rpc("Containers.Get", s))?
            .into_inner();
        Ok(r.container
            .and_then(|c| c.spec)
            .map(|s| s.value)
            .unwrap_or_default())
    }

    /// Deletes the record: `Containers.Delete`. Its task must be gone first.
    pub async fn delete(&self) -> Result<(), ContainerdError> {
        self.client
            .containers()
            .delete(DeleteContainerRequest {
                id: self.id.clone(),
            })
            .await
            .map_err(|s| ContainerdError::rpc("Containers.Delete", s))?;
        Ok(())
    }
}

/// One process of a task (the init process when `exec_id` is empty): the calls the init
/// process and exec processes share.
struct Target<'a> {
    client: &'a Client,
    container_id: &'a str,
    exec_id: &'a str,
}

impl Target<'_> {
    async fn start(&self) -> Result<u32, ContainerdError> {
        let r = self
            .client
            .tasks()
            .start(StartRequest {
                container_id: self.container_id.to_string(),
                exec_id: self.exec_id.to_string(),
            })
            .await
            .map_err(ok_or("Tasks.Start"))?
            .into_inner();
        Ok(r.pid)
    }

    async fn kill(&self, signal: u32, all: bool) -> Result<(), ContainerdError> {
        self.client
            .tasks()
            .kill(KillRequest {
                container_id: self.container_id.to_string(),
                exec_id: self.exec_id.to_string(),
                signal,
                all,
            })
            .await
            .map_err(ok_or("Tasks.Kill"))?;
        Ok(())
    }

    async fn resize(&self, width: u32, height: u32) -> Result<(), ContainerdError> {
        self.client
            .tasks()
            .resize_pty(ResizePtyRequest {
                container_id: self.container_id.to_string(),
                exec_id: self.exec_id.to_string(),
                width,
                height,
            })
            .await
            .map_err(ok_or("Tasks.ResizePty"))?;
        Ok(())
    }

    /// `Tasks.Get`: the process's status and, once stopped, its exit status.
    async fn state(&self) -> Result<(TaskStatus, u32), ContainerdError> {
        let r = self
            .client
            .tasks()
            .get(GetRequest {
                container_id: self.container_id.to_string(),
                exec_id: self.exec_id.to_string(),
            })
            .await
            .map_err(ok_or("Tasks.Get"))?
            .into_inner();
        let p = r.process.unwrap_or_default();
        Ok((TaskStatus::from_proto(p.status), p.exit_status))
    }

    async fn close_stdin(&self) -> Result<(), ContainerdError> {
        self.client
            .tasks()
            .close_io(CloseIoRequest {
                container_id: self.container_id.to_string(),
                exec_id: self.exec_id.to_string(),
                stdin: true,
            })
            .await
            .map_err(ok_or("Tasks.CloseIO"))?;
        Ok(())
    }
}

/// A container's task (its init process).
#[derive(Debug, Clone)]
pub struct Task {
    client: Client,
    container_id: String,
    pid: u32,
}

fn ok_or(method: &'static str) -> impl Fn(Status) -> ContainerdError {
    move |s| ContainerdError::rpc(method, s)
}

impl Task {
    fn target(&self) -> Target<'_> {
        Target {
            client: &self.client,
            container_id: &self.container_id,
            exec_id: "",
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Starts the init process: `Tasks.Start`.
    pub async fn start(&mut self) -> Result<u32, ContainerdError> {
        self.pid = self.target().start().await?;
        Ok(self.pid)
    }

    /// Signals the init process (`all`: every process of the container).
    pub async fn kill(&self, signal: u32, all: bool) -> Result<(), ContainerdError> {
        self.target().kill(signal, all).await
    }

    pub async fn pause(&self) -> Result<(), ContainerdError> {
        self.client
            .tasks()
            .pause(PauseTaskRequest {
                container_id: self.container_id.clone(),
            })
            .await
            .map_err(ok_or("Tasks.Pause"))?;
        Ok(())
    }

    pub async fn resume(&self) -> Result<(), ContainerdError> {
        self.client
            .tasks()
            .resume(ResumeTaskRequest {
                container_id: self.container_id.clone(),
            })
            .await
            .map_err(ok_or("Tasks.Resume"))?;
        Ok(())
    }

    /// The host pids of the container's processes.
    pub async fn pids(&self) -> Result<Vec<u32>, ContainerdError> {
        let r = self
            .client
            .tasks()
            .list_pids(ListPidsRequest {
                container_id: self.container_id.clone(),
            })
            .await
            .map_err(ok_or("Tasks.ListPids"))?
            .into_inner();
        Ok(r.processes.into_iter().map(|p| p.pid).collect())
    }

    pub async fn resize(&self, width: u32, height: u32) -> Result<(), ContainerdError> {
        self.target().resize(width, height).await
    }

    pub async fn close_stdin(&self) -> Result<(), ContainerdError> {
        self.target().close_stdin().await
    }

    /// Applies new cgroup resources (OCI `LinuxResources` JSON).
    pub async fn update(&self, resources_json: Vec<u8>) -> Result<(), ContainerdError> {
        self.client
            .tasks()
            .update(UpdateTaskRequest {
                container_id: self.container_id.clone(),
                resources: Some(Any {
                    type_url: RESOURCES_TYPE.to_string(),
                    value: resources_json,
                }),
                ..Default::default()
            })
            .await
            .map_err(ok_or("Tasks.Update"))?;
        Ok(())
    }

    /// Deletes the stopped task (the shim and bundle go) and returns how it ended.
    pub async fn delete(&self) -> Result<ExitStatus, ContainerdError> {
        let r = self
            .client
            .tasks()
            .delete(DeleteTaskRequest {
                container_id: self.container_id.clone(),
            })
            .await
            .map_err(ok_or("Tasks.Delete"))?
            .into_inner();
        Ok(ExitStatus {
            code: r.exit_status,
            at: exited_at(r.exited_at),
        })
    }

    /// Adds an exec process (not started): `Tasks.Exec`. `process_json` is the OCI process.
    pub async fn exec(
        &self,
        exec_id: &str,
        process_json: Vec<u8>,
        stdio: &Stdio,
    ) -> Result<Process, ContainerdError> {
        self.client
            .tasks()
            .exec(ExecProcessRequest {
                container_id: self.container_id.clone(),
                stdin: stdio.stdin.clone(),
                stdout: stdio.stdout.clone(),
                stderr: stdio.stderr.clone(),
                terminal: stdio.terminal,
                spec: Some(Any {
                    type_url: PROCESS_TYPE.to_string(),
                    value: process_json,
                }),
                exec_id: exec_id.to_string(),
            })
            .await
            .map_err(ok_or("Tasks.Exec"))?;
        Ok(Process {
            client: self.client.clone(),
            container_id: self.container_id.clone(),
            exec_id: exec_id.to_string(),
            pid: 0,
        })
    }
}

/// An exec process.
#[derive(Debug, Clone)]
pub struct Process {
    client: Client,
    container_id: String,
    exec_id: String,
    pid: u32,
}

impl Process {
    fn target(&self) -> Target<'_> {
        Target {
            client: &self.client,
            container_id: &self.container_id,
            exec_id: &self.exec_id,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
    pub fn exec_id(&self) -> &str {
        &self.exec_id
    }

    /// `Tasks.Start` of the exec.
    pub async fn start(&mut self) -> Result<u32, ContainerdError> {
        self.pid = self.target().start().await?;
        Ok(self.pid)
    }

    pub async fn kill(&self, signal: u32) -> Result<(), ContainerdError> {
        self.target().kill(signal, false).await
    }

    pub async fn resize(&self, width: u32, height: u32) -> Result<(), ContainerdError> {
        self.target().resize(width, height).await
    }

    pub async fn close_stdin(&self) -> Result<(), ContainerdError> {
        self.target().close_stdin().await
    }

    /// The exec's status and exit status (one `Tasks.Get`), for reconciling missed exits.
    pub async fn state(&self) -> Result<(TaskStatus, u32), ContainerdError> {
        self.target().state().await
    }

    /// `Tasks.DeleteProcess`: the exec's resources go; returns how it ended.
    pub async fn delete(&self) -> Result<ExitStatus, ContainerdError> {
        let r = self
            .client
            .tasks()
            .delete_process(DeleteProcessRequest {
                container_id: self.container_id.clone(),
                exec_id: self.exec_id.clone(),
            })
            .await
            .map_err(ok_or("Tasks.DeleteProcess"))?
            .into_inner();
        Ok(ExitStatus {
            code: r.exit_status,
            at: exited_at(r.exited_at),
        })
    }
}
