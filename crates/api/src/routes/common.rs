//! What handlers of several resources share: streamed request bodies and response shapes
//! that are not JSON objects (no content, newline-separated JSON, tar streams).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::Value;
use tokio_util::io::{ReaderStream, StreamReader};

/// A pull's (or push's) progress, streamed as dockerd streams it: the engine runs on its own
/// task; an error before its first message is the request's (a status and
/// `{"message"}`), an error after it the stream's last line (`errorDetail`). When the
/// client goes away the channel closes and the engine stops at its next message.
pub(crate) async fn progress_stream<Fut>(
    run: impl FnOnce(berth_daemon::ProgressSink) -> Fut,
) -> Result<Response, crate::ApiError>
where
    Fut: std::future::Future<Output = Result<(), berth_daemon::DaemonError>> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(run(tx));
    let Some(first) = rx.recv().await else {
        // Ended without a message.
        return match task.await {
            Ok(Ok(())) => Ok(json_lines(Vec::new())),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(crate::ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            )),
        };
    };
    let line = |v: &berth_daemon::Progress| {
        let mut s = serde_json::to_string(v).unwrap_or_default();
        s.push_str("\r\n");
        bytes::Bytes::from(s)
    };
    let head = futures_util::stream::once({
        let first = line(&first);
        async move { Ok::<_, std::io::Error>(first) }
    });
    let rest = futures_util::stream::unfold((rx, Some(task)), move |(mut rx, task)| async move {
        if let Some(m) = rx.recv().await {
            return Some((Ok(line(&m)), (rx, task)));
        }
        let result = task?.await;
        let (error, code) = match result {
            Ok(Ok(())) => return None,
            // A RUN that failed: its exit code in the detail, as dockerd's builder.
            Ok(Err(berth_daemon::DaemonError::Build(
                e @ berth_daemon::BuildError::RunFailed { code, .. },
            ))) => (e.to_string(), Some(code)),
            Ok(Err(e)) => (crate::ApiError::from(e).message, None),
            Err(e) => (e.to_string(), None),
        };
        // dockerd's order: errorDetail, then error.
        let m = serde_json::to_string(&error).unwrap_or_default();
        let line = match code {
            Some(c) => {
                format!("{{\"errorDetail\":{{\"code\":{c},\"message\":{m}}},\"error\":{m}}}\r\n")
            }
            None => format!("{{\"errorDetail\":{{\"message\":{m}}},\"error\":{m}}}\r\n"),
        };
        Some((Ok(bytes::Bytes::from(line)), (rx, None)))
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::StreamExt::chain(head, rest)),
    )
        .into_response())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use berth_daemon::{DaemonError, Progress};
    use http_body_util::BodyExt;

    async fn body_text(r: Response) -> String {
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_error_before_the_first_message_is_the_requests_status() {
        let err = progress_stream(|_tx| async {
            Err(DaemonError::InvalidParameter("bad platform".into()))
        })
        .await
        .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.message, "bad platform");
    }

    #[tokio::test]
    async fn an_error_after_it_is_the_streams_last_line() {
        let r = progress_stream(|tx| async move {
            let _ = tx.send(Progress::with_id("Pulling from acc/x", "1"));
            let _ = tx.send(Progress::layer("0123456789ab", "Pulling fs layer"));
            Err(DaemonError::InvalidParameter("broken".into()))
        })
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(
            body_text(r).await,
            "{\"status\":\"Pulling from acc/x\",\"id\":\"1\"}\r\n\
             {\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"0123456789ab\"}\r\n\
             {\"errorDetail\":{\"message\":\"broken\"},\"error\":\"broken\"}\r\n"
        );
        let r = progress_stream(|tx| async move {
            let _ = tx.send(Progress::status("Status: Image is up to date for x:1"));
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(
            body_text(r).await,
            "{\"status\":\"Status: Image is up to date for x:1\"}\r\n"
        );
    }
}
