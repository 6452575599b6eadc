//! The route table: one module per resource.

mod images;
mod system;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use berth_daemon::Daemon;

use crate::ApiError;

/// The whole API: the version layer wraps the routes, so every path is seen without its
/// `/vN.M` prefix.
pub fn router(daemon: Arc<Daemon>) -> Router {
    let routes = Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/prune", post(images::prune))
        // Image names hold slashes: the rest of the path is parsed by the handler.
        .route(
            "/images/{*rest}",
            get(images::get_by_name)
                .post(images::post_by_name)
                .delete(images::delete),
        )
        .fallback(not_found)
        .with_state(daemon);
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
