use axum::Json;
use axum::response::{IntoResponse, Response};
use berth_daemon::{DaemonError, ImageError, RootError};
use http::StatusCode;

/// An error as Docker clients receive it: a status and `{"message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

/// A start that failed because of what the user asked to run (a missing or unusable
/// command), not because of the machine.
fn user_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("no such file or directory")
        || m.contains("executable file not found")
        || m.contains("permission denied")
        || m.contains("not a directory")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::NOT_MODIFIED {
            // 304 carries no body.
            return self.status.into_response();
        }
        (
            self.status,
            Json(serde_json::json!({ "message": self.message })),
        )
            .into_response()
    }
}

/// The message of an error and of every error under it, joined as dockerd joins wrapped
/// errors: `outer: inner: innermost`.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// The one mapping from engine errors to statuses. Every variant is named: a new variant
/// does not compile until it has a status.
impl From<DaemonError> for ApiError {
    fn from(e: DaemonError) -> ApiError {
        let status = match &e {
            DaemonError::Config(_) => StatusCode::BAD_REQUEST,
            DaemonError::Runtime(r) if r.is_invalid_parameter() => StatusCode::BAD_REQUEST,
            DaemonError::Runtime(_) => StatusCode::INTERNAL_SERVER_ERROR,
            DaemonError::Containerd(_) => StatusCode::INTERNAL_SERVER_ERROR,
            DaemonError::Image(i) => match i {
                ImageError::NotFound(_) => StatusCode::NOT_FOUND,
                ImageError::InvalidReference { .. }
                | ImageError::BadArchive(_)
                | ImageError::BadChange { .. }
                | ImageError::DiffMismatch { .. } => StatusCode::BAD_REQUEST,
                ImageError::Conflict(_) => StatusCode::CONFLICT,
                ImageError::Io { .. } | ImageError::Stream(_) | ImageError::Corrupt { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            DaemonError::Task(_) | DaemonError::AppArmor(_) => StatusCode::INTERNAL_SERVER_ERROR,
            DaemonError::NoSuchContainer(_)
            | DaemonError::NoSuchExec(_)
            | DaemonError::NotFoundPath(_) => StatusCode::NOT_FOUND,
            DaemonError::Conflict(_) => StatusCode::CONFLICT,
            DaemonError::Forbidden(_) => StatusCode::FORBIDDEN,
            DaemonError::InvalidParameter(_) | DaemonError::Spec(_) | DaemonError::Invalid(_) => {
                StatusCode::BAD_REQUEST
            }
            DaemonError::NotModified => StatusCode::NOT_MODIFIED,
            DaemonError::StartFailed(m) if user_error(m) => StatusCode::BAD_REQUEST,
            DaemonError::StartFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            DaemonError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            DaemonError::InRoot(r) => match r {
                RootError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    StatusCode::NOT_FOUND
                }
                RootError::NotRegular { .. }
                | RootError::TooLarge { .. }
                | RootError::BadEntry { .. } => StatusCode::BAD_REQUEST,
                RootError::Io { .. } | RootError::Stream(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        };
        // The inner error says what the user needs; the outer variant only names the layer.
        let message = match &e {
            DaemonError::Config(inner) => chain(inner),
            DaemonError::Runtime(inner) => chain(inner),
            DaemonError::Image(inner) => chain(inner),
            DaemonError::Spec(inner) => chain(inner),
            DaemonError::Invalid(inner) => chain(inner),
            DaemonError::NoSuchContainer(_)
            | DaemonError::NoSuchExec(_)
            | DaemonError::NotFoundPath(_)
            | DaemonError::Forbidden(_)
            | DaemonError::Conflict(_)
            | DaemonError::InvalidParameter(_)
            | DaemonError::NotModified
            | DaemonError::StartFailed(_)
            | DaemonError::AppArmor(_) => e.to_string(),
            DaemonError::Containerd(_)
            | DaemonError::Io { .. }
            | DaemonError::Task(_)
            | DaemonError::InRoot(_) => chain(&e),
        };
        ApiError::new(status, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_daemon::RuntimeError;

    #[test]
    fn unknown_runtime_is_a_bad_request_with_dockers_text() {
        let e: ApiError = DaemonError::Runtime(RuntimeError::Unknown("nosuch".into())).into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "unknown or invalid runtime name: nosuch");
    }

    #[test]
    fn io_faults_are_500_and_say_what_failed() {
        let e: ApiError = DaemonError::Io {
            path: "/x".into(),
            source: std::io::Error::other("disk on fire"),
        }
        .into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.message, "cannot access /x: disk on fire");
    }

    #[tokio::test]
    async fn body_is_a_message_object() {
        use http_body_util::BodyExt;
        let resp = ApiError::not_found("page not found").into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"message":"page not found"}"#);
    }
}
