//! A fake containerd for tests (feature `fake`): a gRPC server on a unix socket that answers
//! the Containers, Tasks, Events and Version calls berth makes, keeps a little task state,
//! records every call in order, and publishes exit events the way containerd does (a killed
//! task exits with 128 + signal; an exec exits 0 as soon as it starts). It lets the daemon's
//! lifecycle be tested without root, and asserts exactly which RPCs each operation makes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use containerd_client::events::TaskExit;
use containerd_client::services::v1::{
    Container as ContainerRecord, CreateContainerRequest, CreateContainerResponse,
    CreateTaskRequest, CreateTaskResponse, DeleteContainerRequest, DeleteProcessRequest,
    DeleteResponse, DeleteTaskRequest, ExecProcessRequest, GetContainerRequest,
    GetContainerResponse, GetRequest, GetResponse, KillRequest, ListPidsRequest, ListPidsResponse,
    ListTasksRequest, ListTasksResponse, PauseTaskRequest, ResumeTaskRequest, StartRequest,
    StartResponse, SubscribeRequest, VersionResponse,
};
use containerd_client::tonic::{self, Status};
use containerd_client::types::Envelope;
use containerd_client::types::v1::{Process, Status as ProcStatus};
use futures_util::Stream;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::sync::broadcast;

type EventStream = Pin<Box<dyn Stream<Item = Result<Envelope, Status>> + Send>>;

#[derive(Debug)]
struct FakeTask {
    pid: u32,
    status: ProcStatus,
    exit_status: u32,
    /// The write ends of its stdio FIFOs, held as a shim holds them until the task goes.
    _stdio: Vec<std::fs::File>,
}

/// Opens the write ends of stdio FIFOs, as the shim does (the reader is already there).
fn open_writers(paths: &[&str]) -> Vec<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    paths
        .iter()
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(p)
                .ok()
        })
        .collect()
}

#[derive(Debug, Default)]
struct State {
    /// An exec's stdout and stderr FIFOs, opened (and closed) when it starts.
    exec_stdio: HashMap<String, [String; 2]>,
    calls: Vec<String>,
    containers: HashMap<String, ContainerRecord>,
    tasks: HashMap<String, FakeTask>,
    next_pid: u32,
}

/// The fake: serve it with [`FakeContainerd::start`], point a [`crate::Client`] at
/// [`FakeContainerd::socket`].
#[derive(Debug, Clone)]
pub struct FakeContainerd {
    socket: PathBuf,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Option<Envelope>>,
}

impl FakeContainerd {
    /// Listens on `socket` until the runtime ends.
    pub fn start(socket: &Path) -> std::io::Result<FakeContainerd> {
        let listener = tokio::net::UnixListener::bind(socket)?;
        let fake = FakeContainerd {
            socket: socket.to_path_buf(),
            state: Arc::new(Mutex::new(State {
                next_pid: 1000,
                ..State::default()
            })),
            events: broadcast::channel(256).0,
        };
        let server = fake.clone();
        tokio::spawn(async move {
            while let Ok((io, _)) = listener.accept().await {
                let fake = server.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let fake = fake.clone();
                    async move { Ok::<_, Infallible>(fake.handle(req).await) }
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(io), svc),
                );
            }
        });
        Ok(fake)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every call so far, as `Service.Method`, in order; clears the record.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().calls)
    }

    /// Marks a task stopped with `code` without telling anyone, as when it exits while the
    /// event stream is down.
    pub fn stop_silently(&self, container_id: &str, code: u32) {
        if let Some(t) = self.lock().tasks.get_mut(container_id) {
            t.status = ProcStatus::Stopped;
            t.exit_status = code;
        }
    }

    /// Ends every event subscription, as a containerd restart does.
    pub fn drop_subscribers(&self) {
        let _ = self.events.send(None);
    }

    fn publish_exit(&self, container_id: &str, exec_id: &str, pid: u32, code: u32) {
        let exit = TaskExit {
            container_id: container_id.to_string(),
            id: exec_id.to_string(),
            pid,
            exit_status: code,
            exited_at: None,
        };
        let env = Envelope {
            timestamp: None,
            namespace: "berth".into(),
            topic: "/tasks/exit".into(),
            event: Some(prost_types::Any {
                type_url: "containerd.events.TaskExit".into(),
                value: exit.encode_to_vec(),
            }),
        };
        let tx = self.events.clone();
        // As containerd, the event may come before or after the answer to the call.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let _ = tx.send(Some(env));
        });
    }

    async fn handle(
        &self,
        req: http::Request<hyper::body::Incoming>,
    ) -> http::Response<tonic::body::Body> {
        let path = req.uri().path().to_string();
        let method = path
            .rsplit_once('/')
            .map(|(svc, m)| {
                let svc = svc.rsplit('.').next().unwrap_or(svc);
                format!("{svc}.{m}")
            })
            .unwrap_or_default();
        self.lock().calls.push(method.clone());
        macro_rules! unary {
            ($req:ty, $f:expr) => {{
                let fake = self.clone();
                let f = $f;
                let svc = tower::service_fn(move |r: tonic::Request<$req>| {
                    let out = f(&fake, r.into_inner());
                    async move { out.map(tonic::Response::new) }
                });
                tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
                    .unary(svc, req)
                    .await
            }};
        }
        match method.as_str() {
            "Version.Version" => unary!((), |_: &FakeContainerd, _| Ok::<_, Status>(
                VersionResponse {
                    version: "fake".into(),
                    revision: "0".into(),
                }
            )),
            "Containers.Create" => unary!(
                CreateContainerRequest,
                |f: &FakeContainerd, r: CreateContainerRequest| {
                    let c = r.container.unwrap_or_default();
                    let mut s = f.lock();
                    if s.containers.contains_key(&c.id) {
                        return Err(Status::already_exists(format!(
                            "container \"{}\": already exists",
                            c.id
                        )));
                    }
                    s.containers.insert(c.id.clone(), c.clone());
                    Ok(CreateContainerResponse { container: Some(c) })
                }
            ),
            "Containers.Get" => unary!(
                GetContainerRequest,
                |f: &FakeContainerd, r: GetContainerRequest| {
                    f.lock()
                        .containers
                        .get(&r.id)
                        .cloned()
                        .map(|c| GetContainerResponse { container: Some(c) })
                        .ok_or_else(|| Status::not_found("container not found"))
                }
            ),
            "Containers.Delete" => unary!(
                DeleteContainerRequest,
                |f: &FakeContainerd, r: DeleteContainerRequest| {
                    f.lock()
                        .containers
                        .remove(&r.id)
                        .map(|_| ())
                        .ok_or_else(|| Status::not_found("container not found"))
                }
            ),
            "Tasks.Create" => unary!(
                CreateTaskRequest,
                |f: &FakeContainerd, r: CreateTaskRequest| {
                    let mut s = f.lock();
                    if !s.containers.contains_key(&r.container_id) {
                        return Err(Status::not_found("container not found"));
                    }
                    s.next_pid += 1;
                    let pid = s.next_pid;
                    s.tasks.insert(
                        r.container_id.clone(),
                        FakeTask {
                            pid,
                            status: ProcStatus::Created,
                            exit_status: 0,
                            _stdio: open_writers(&[&r.stdout, &r.stderr]),
                        },
                    );
                    Ok(CreateTaskResponse {
                        container_id: r.container_id,
                        pid,
                    })
                }
            ),
            "Tasks.Start" => unary!(StartRequest, |f: &FakeContainerd, r: StartRequest| {
                let mut s = f.lock();
                let Some(t) = s.tasks.get_mut(&r.container_id) else {
                    return Err(Status::not_found("no running task found"));
                };
                if r.exec_id.is_empty() {
                    t.status = ProcStatus::Running;
                    return Ok(StartResponse { pid: t.pid });
                }
                s.next_pid += 1;
                let pid = s.next_pid;
                let stdio = s.exec_stdio.remove(&r.exec_id).unwrap_or_default();
                drop(s);
                // It runs and ends at once: its output opens and closes.
                drop(open_writers(&[&stdio[0], &stdio[1]]));
                f.publish_exit(&r.container_id, &r.exec_id, pid, 0);
                Ok(StartResponse { pid })
            }),
            "Tasks.Exec" => unary!(
                ExecProcessRequest,
                |f: &FakeContainerd, r: ExecProcessRequest| {
                    let mut s = f.lock();
                    if !s.tasks.contains_key(&r.container_id) {
                        return Err(Status::not_found("no running task found"));
                    }
                    s.exec_stdio.insert(r.exec_id, [r.stdout, r.stderr]);
                    Ok(())
                }
            ),
            "Tasks.Kill" => unary!(KillRequest, |f: &FakeContainerd, r: KillRequest| {
                let mut s = f.lock();
                let Some(t) = s.tasks.get_mut(&r.container_id) else {
                    return Err(Status::not_found("no running task found"));
                };
                if r.exec_id.is_empty() && t.status == ProcStatus::Running {
                    t.status = ProcStatus::Stopped;
                    t.exit_status = 128 + r.signal;
                    let pid = t.pid;
                    drop(s);
                    f.publish_exit(&r.container_id, &r.container_id, pid, 128 + r.signal);
                }
                Ok(())
            }),
            "Tasks.Delete" => unary!(
                DeleteTaskRequest,
                |f: &FakeContainerd, r: DeleteTaskRequest| {
                    f.lock()
                        .tasks
                        .remove(&r.container_id)
                        .map(|t| DeleteResponse {
                            id: r.container_id.clone(),
                            pid: t.pid,
                            exit_status: t.exit_status,
                            exited_at: None,
                        })
                        .ok_or_else(|| Status::not_found("no running task found"))
                }
            ),
            "Tasks.DeleteProcess" => unary!(
                DeleteProcessRequest,
                |_: &FakeContainerd, r: DeleteProcessRequest| {
                    Ok::<_, Status>(DeleteResponse {
                        id: r.exec_id,
                        pid: 0,
                        exit_status: 0,
                        exited_at: None,
                    })
                }
            ),
            "Tasks.Get" => unary!(GetRequest, |f: &FakeContainerd, r: GetRequest| {
                f.lock()
                    .tasks
                    .get(&r.container_id)
                    .map(|t| GetResponse {
                        process: Some(process(&r.container_id, t)),
                    })
                    .ok_or_else(|| Status::not_found("no running task found"))
            }),
            "Tasks.List" => unary!(ListTasksRequest, |f: &FakeContainerd, _| {
                Ok::<_, Status>(ListTasksResponse {
                    tasks: f
                        .lock()
                        .tasks
                        .iter()
                        .map(|(id, t)| process(id, t))
                        .collect(),
                })
            }),
            "Tasks.Pause" | "Tasks.Resume" => {
                if method == "Tasks.Pause" {
                    unary!(
                        PauseTaskRequest,
                        |_: &FakeContainerd, _| Ok::<_, Status>(())
                    )
                } else {
                    unary!(ResumeTaskRequest, |_: &FakeContainerd, _| Ok::<_, Status>(
                        ()
                    ))
                }
            }
            "Tasks.ListPids" => {
                unary!(ListPidsRequest, |f: &FakeContainerd, r: ListPidsRequest| {
                    Ok::<_, Status>(ListPidsResponse {
                        processes: f
                            .lock()
                            .tasks
                            .get(&r.container_id)
                            .map(|t| {
                                vec![containerd_client::types::v1::ProcessInfo {
                                    pid: t.pid,
                                    info: None,
                                }]
                            })
                            .unwrap_or_default(),
                    })
                })
            }
            "Events.Subscribe" => {
                let rx = self.events.subscribe();
                let svc = tower::service_fn(move |_: tonic::Request<SubscribeRequest>| {
                    let stream: EventStream = Box::pin(futures_util::stream::unfold(
                        rx.resubscribe(),
                        |mut rx| async move {
                            loop {
                                match rx.recv().await {
                                    Ok(Some(env)) => return Some((Ok(env), rx)),
                                    Ok(None) | Err(broadcast::error::RecvError::Closed) => {
                                        return None;
                                    }
                                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                                }
                            }
                        },
                    ));
                    async move { Ok::<_, Status>(tonic::Response::new(stream)) }
                });
                tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
                    .server_streaming(svc, req)
                    .await
            }
            _ => Status::unimplemented(format!("the fake containerd has no {path}")).into_http(),
        }
    }
}

fn process(id: &str, t: &FakeTask) -> Process {
    Process {
        container_id: id.to_string(),
        id: id.to_string(),
        pid: t.pid,
        status: t.status as i32,
        exit_status: t.exit_status,
        ..Default::default()
    }
}
