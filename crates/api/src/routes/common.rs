//! What handlers of several resources share: streamed request bodies and response shapes
//! that are not JSON objects (no content, newline-separated JSON, tar streams).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::Value;
use tokio_util::io::{ReaderStream, StreamReader};

/// A request body as an async reader (image archives, `docker cp` tars).
pub(crate) fn body_reader(body: Body) -> impl tokio::io::AsyncRead + Send + Unpin + 'static {
    StreamReader::new(body.into_data_stream().map_err(std::io::Error::other))
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Progress lines as dockerd writes them: one JSON value per line, CRLF-terminated.
pub(crate) fn json_lines(lines: Vec<Value>) -> Response {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l.to_string());
        text.push_str("\r\n");
    }
    ([(CONTENT_TYPE, "application/json")], text).into_response()
}

/// A tar stream (image save, container export and archive).
pub(crate) fn tar_response(reader: impl tokio::io::AsyncRead + Send + 'static) -> Response {
    (
        [(CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(ReaderStream::new(reader)),
    )
        .into_response()
}
