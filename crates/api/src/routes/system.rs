//! `/_ping`, `/version`, `/info`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};

use crate::types::{Info, Version};
use berth_daemon::Daemon;

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
