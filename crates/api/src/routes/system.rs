//! `/_ping`, `/version`, `/info`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};

use crate::Backend;
use crate::types::{Info, Version};

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

pub(crate) async fn version<B: Backend>(State(backend): State<Arc<B>>) -> Json<Version> {
    Json(backend.version().await.into())
}

pub(crate) async fn info<B: Backend>(State(backend): State<Arc<B>>) -> Json<Info> {
    Json(backend.info().await.into())
}
