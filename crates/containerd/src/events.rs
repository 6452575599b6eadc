//! The daemon's one event subscription: task exits and OOMs, decoded, delivered in order.

use std::time::{Duration, SystemTime};

use containerd_client::events::{TaskExit, TaskOom};
use containerd_client::services::v1::SubscribeRequest;
use containerd_client::services::v1::events_client::EventsClient;
use prost::Message;
use tokio::sync::mpsc;

use crate::Client;

/// What the daemon hears from containerd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    /// A process ended; `exec_id` equals `container_id` for the init process.
    Exit {
        container_id: String,
        exec_id: String,
        pid: u32,
        exit_status: u32,
        exited_at: SystemTime,
    },
    Oom {
        container_id: String,
    },
    /// The subscription was (re)established after being lost: events may have been missed,
    /// so state should be reconciled.
    Resubscribed,
}

impl Client {
    /// Subscribes to this namespace's task events, for the daemon's life: when the stream
    /// breaks (containerd restarted) it subscribes again and sends `Resubscribed`.
    pub fn subscribe_task_events(&self) -> mpsc::UnboundedReceiver<TaskEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = self.clone();
        tokio::spawn(async move {
            let filter = format!("namespace=={},topic~=\"^/tasks/\"", client.namespace());
            let mut first = true;
            loop {
                let mut events = EventsClient::new(client.service());
                let sub = events
                    .subscribe(SubscribeRequest {
                        filters: vec![filter.clone()],
                    })
                    .await;
                let mut stream = match sub {
                    Ok(s) => s.into_inner(),
                    Err(e) => {
                        tracing::debug!(error = %e, "event subscription failed; retrying");
                        if tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                if !first && tx.send(TaskEvent::Resubscribed).is_err() {
                    return;
                }
                first = false;
                while let Ok(Some(env)) = stream.message().await {
                    if let Some(ev) = decode(&env.topic, env.event.as_ref())
                        && tx.send(ev).is_err()
                    {
                        return;
                    }
                }
                tracing::warn!("containerd event stream ended; subscribing again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        rx
    }
}

fn decode(topic: &str, any: Option<&prost_types::Any>) -> Option<TaskEvent> {
    let value = &any?.value;
    match topic {
        "/tasks/exit" => {
            let e = TaskExit::decode(value.as_slice()).ok()?;
            Some(TaskEvent::Exit {
                container_id: e.container_id,
                exec_id: e.id,
                pid: e.pid,
                exit_status: e.exit_status,
                exited_at: e
                    .exited_at
                    .and_then(|t| SystemTime::try_from(t).ok())
                    .unwrap_or_else(SystemTime::now),
            })
        }
        "/tasks/oom" => {
            let e = TaskOom::decode(value.as_slice()).ok()?;
            Some(TaskEvent::Oom {
                container_id: e.container_id,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exit_and_oom() {
        let exit = TaskExit {
            container_id: "c".into(),
            id: "c".into(),
            pid: 7,
            exit_status: 137,
            exited_at: None,
        };
        let any = prost_types::Any {
            type_url: "containerd.events.TaskExit".into(),
            value: exit.encode_to_vec(),
        };
        match decode("/tasks/exit", Some(&any)) {
            Some(TaskEvent::Exit {
                exit_status, pid, ..
            }) => assert_eq!((exit_status, pid), (137, 7)),
            other => panic!("{other:?}"),
        }
        let oom = prost_types::Any {
            type_url: "containerd.events.TaskOOM".into(),
            value: TaskOom {
                container_id: "c".into(),
            }
            .encode_to_vec(),
        };
        assert_eq!(
            decode("/tasks/oom", Some(&oom)),
            Some(TaskEvent::Oom {
                container_id: "c".into()
            })
        );
        assert_eq!(decode("/tasks/start", Some(&oom)), None);
    }
}
