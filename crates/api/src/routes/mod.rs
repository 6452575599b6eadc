//! The route table: one module per resource.

mod system;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::{ApiError, Backend};

/// The whole API for `backend`: the version layer wraps the routes, so every path is seen
/// without its `/vN.M` prefix.
pub fn router<B: Backend>(backend: Arc<B>) -> Router {
    let routes = Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version::<B>))
        .route("/info", get(system::info::<B>))
        .fallback(not_found)
        .with_state(backend);
    // An outer router whose only job is to run the version layer before the inner one routes.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn(crate::middleware::api_layer))
}

async fn not_found() -> ApiError {
    ApiError::not_found("page not found")
}

#[cfg(test)]
pub(crate) mod tests;
