//! `/containers/{id}/exec` and `/exec/...`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use berth_daemon::Daemon;
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use crate::hijack::{Session, upgrade};
use crate::query::Query;
use crate::{ApiError, body, wire};

pub(crate) async fn create(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let exec_id = d.exec_create(&id, body::exec(&body)?)?;
    Ok((StatusCode::CREATED, Json(wire::id(&exec_id))).into_response())
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
    let b = body::exec_start(&bytes)?;
    let exec = d.exec_get(&id)?;
    if b.detach {
        d.exec_start(&id, true).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let tty = exec.config.tty || b.tty;
    let detach_keys = crate::hijack::detach_keys(
        tty,
        exec.config.attach_stdin,
        Some(exec.config.detach_keys.as_str()),
    )?;
    let req = Request::from_parts(parts, axum::body::Body::empty());
    upgrade(req, tty, async move {
        match d.exec_start(&id, false).await {
            Ok(Some((output, stdin, tty))) => Session {
                output,
                stdin: exec.config.attach_stdin.then_some(stdin),
                tty,
                error: None,
                detach_keys,
            },
            Ok(None) => Session {
                output: tokio::sync::mpsc::channel(1).1,
                stdin: None,
                tty,
                error: None,
                detach_keys: None,
            },
            Err(e) => Session {
                output: tokio::sync::mpsc::channel(1).1,
                stdin: None,
                tty,
                error: Some(crate::error::chain(&e)),
                detach_keys: None,
            },
        }
    })
}

pub(crate) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(wire::exec::inspect(&d.exec_get(&id)?.inspect())))
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
