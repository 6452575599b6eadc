use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::Uri;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, SERVER};
use tracing::Instrument;

use crate::version::MAX_API_VERSION_TEXT;
use crate::version::{PathVersion, split_version};
use crate::{ApiError, MAX_API_VERSION};

const SERVER_HEADER: &str = concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)");

/// Runs before routing: strips the `/vN.M` prefix (refusing versions berth does not speak),
/// records the version as a request extension, adds the headers every Docker answer carries,
/// and logs one line per request at debug inside a per-request span.
pub(crate) async fn api_layer(mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::debug_span!("request", %method, %path);
    async move {
        let started = Instant::now();
        let version = match split_version(&path) {
            PathVersion::Unversioned => MAX_API_VERSION,
            PathVersion::Versioned(v, rest) => {
                let rest = rest.to_string();
                if let Some(uri) = rewrite_path(req.uri(), &rest) {
                    *req.uri_mut() = uri;
                }
                v
            }
            PathVersion::Unsupported(message) => {
                return finish(ApiError::bad_request(message).into_response(), started);
            }
            PathVersion::Malformed => {
                return finish(
                    ApiError::not_found("page not found").into_response(),
                    started,
                );
            }
        };
        req.extensions_mut().insert(version);
        let resp = as_docker_error(next.run(req).await).await;
        finish(resp, started)
    }
    .instrument(span)
    .await
}

fn finish(mut resp: Response, started: Instant) -> Response {
    let h = resp.headers_mut();
    h.insert(
        HeaderName::from_static("api-version"),
        HeaderValue::from_static(MAX_API_VERSION_TEXT),
    );
    h.insert(
        HeaderName::from_static("docker-experimental"),
        HeaderValue::from_static("false"),
    );
    h.insert(
        HeaderName::from_static("ostype"),
        HeaderValue::from_static("linux"),
    );
    h.insert(SERVER, HeaderValue::from_static(SERVER_HEADER));
    tracing::debug!(
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "served"
    );
    resp
}

/// Error answers that did not come from `ApiError` (axum's own rejections, 405s) get
/// Docker's `{"message": ...}` body too, keeping their status.
async fn as_docker_error(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let text = match axum::body::to_bytes(resp.into_body(), 64 * 1024).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_string(),
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    };
    ApiError::new(status, text).into_response()
}

fn rewrite_path(uri: &Uri, path: &str) -> Option<Uri> {
    let mut parts = uri.clone().into_parts();
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_keeps_the_query() {
        let uri: Uri = "/v1.41/containers/json?all=1".parse().unwrap();
        assert_eq!(
            rewrite_path(&uri, "/containers/json").unwrap().to_string(),
            "/containers/json?all=1"
        );
    }
}
