//! `/containers/{id}/exec` and `/exec/...`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use berth_daemon::{Daemon, ExecConfig};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::containers::parse_body;
use crate::ApiError;
use crate::hijack::{Session, upgrade};
use crate::query::Query;

pub(crate) async fn create(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config: ExecConfig = parse_body(&body)?;
    let exec_id = d.exec_create(&id, config)?;
    Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    tty: bool,
}

/// `POST /exec/{id}/start`: detached, 200; attached, a hijacked stream. A start that fails
/// after the upgrade is written to the stream and the exec records exit code 126.
pub(crate) async fn start(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let b: StartBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        parse_body(&bytes)?
    };
    let exec = d.exec_get(&id)?;
    if b.detach {
        d.exec_start(&id, true).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let tty = exec.config.tty || b.tty;
    let req = Request::from_parts(parts, axum::body::Body::empty());
    upgrade(req, tty, async move {
        match d.exec_start(&id, false).await {
            Ok(Some((output, stdin, tty))) => Session {
                output,
                stdin: exec.config.attach_stdin.then_some(stdin),
                tty,
                error: None,
            },
            Ok(None) => Session {
                output: tokio::sync::mpsc::channel(1).1,
                stdin: None,
                tty,
                error: None,
            },
            Err(e) => Session {
                output: tokio::sync::mpsc::channel(1).1,
                stdin: None,
                tty,
                error: Some(crate::error::chain(&e)),
            },
        }
    })
}

pub(crate) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let e = d.exec_get(&id)?.inspect();
    let (entry, args) = match e.config.cmd.split_first() {
        Some((a, rest)) => (a.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    Ok(Json(json!({
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {"tty": e.config.tty, "entrypoint": entry, "arguments": args,
                          "privileged": e.config.privileged, "user": e.config.user},
        "OpenStdin": e.config.attach_stdin,
        "OpenStderr": e.config.attach_stderr,
        "OpenStdout": e.config.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": e.config.detach_keys,
        "Pid": e.pid,
    })))
}

pub(crate) async fn resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let (h, w) = q.resize_dims()?;
    d.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}
