//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use berth_daemon::Daemon;
use berth_daemon::events::EventFilter;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use tokio::sync::broadcast::error::RecvError;

use crate::ApiError;
use crate::query::Query;
use crate::wire::{self, Info, Version};

pub(crate) async fn ping() -> impl IntoResponse {
    (
        [
            (CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (PRAGMA, "no-cache"),
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "OK",
    )
}

pub(crate) async fn version(State(d): State<Arc<Daemon>>) -> Json<Version> {
    Json(d.version().await.into())
}

pub(crate) async fn info(State(d): State<Arc<Daemon>>) -> Json<Info> {
    Json(d.info().await.into())
}

/// One event on the stream: its JSON and a newline.
fn event_line(e: &berth_daemon::events::Event) -> Bytes {
    Bytes::from(format!("{}\n", wire::system::event(e)))
}

/// `GET /events`: the kept past between `since` and `until`, then live events, until `until`
/// passes or the client goes.
pub(crate) async fn events(State(d): State<Arc<Daemon>>, q: Query) -> Result<Response, ApiError> {
    let since = q.event_time("since")?;
    let until = q.event_time("until")?;
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(ApiError::bad_request(
            "`since` time cannot be after `until` time",
        ));
    }
    let filter = EventFilter::new(q.filters()?.0).map_err(ApiError::bad_request)?;
    let (past, rx) = d.events().subscribe(since, until);
    let deadline = until.map(|u| {
        let now = berth_daemon::events::now_nanos();
        tokio::time::Instant::now() + Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
    });
    struct St {
        past: std::vec::IntoIter<berth_daemon::events::Event>,
        rx: tokio::sync::broadcast::Receiver<berth_daemon::events::Event>,
        deadline: Option<tokio::time::Instant>,
        until: Option<i64>,
        filter: EventFilter,
    }
    let st = St {
        past: past.into_iter(),
        rx,
        deadline,
        until,
        filter,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        for e in st.past.by_ref() {
            if st.filter.matches(&e) {
                return Some((Ok::<_, Infallible>(event_line(&e)), st));
            }
        }
        loop {
            let next = async {
                loop {
                    match st.rx.recv().await {
                        Ok(e) => return Some(e),
                        Err(RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "an events client fell behind");
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            };
            let e = match st.deadline {
                Some(at) => tokio::time::timeout_at(at, next).await.ok()??,
                None => next.await?,
            };
            if st.until.is_some_and(|u| e.time_nano > u) {
                return None;
            }
            if st.filter.matches(&e) {
                return Some((Ok(event_line(&e)), st));
            }
        }
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `GET /system/df`: images, containers, volumes and their sizes (no build cache in berth).
pub(crate) async fn df(State(d): State<Arc<Daemon>>) -> Result<Json<serde_json::Value>, ApiError> {
    let usage = tokio::task::spawn_blocking(move || d.system_df())
        .await
        .map_err(|e| ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(wire::system::disk_usage(&usage)))
}

/// `POST /auth` (`docker login`): the registry tries the credentials; berth keeps nothing
/// (the CLI stores them and sends them with each pull and push).
pub(crate) async fn auth(
    State(d): State<Arc<Daemon>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let creds: berth_daemon::Credentials = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid login request: {e}")))?;
    let server = creds.serveraddress.clone();
    d.registry_login(&server, creds).await?;
    Ok(Json(
        serde_json::json!({ "IdentityToken": "", "Status": "Login Succeeded" }),
    ))
}
