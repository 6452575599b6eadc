use axum::Json;
use axum::response::{IntoResponse, Response};
use berth_daemon::{
    Code, DaemonError, ImageError, LogError, NetworkError, RegistryError, RootError, StartFailure,
    VolumeError,
};
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
/// errors: `outer: inner: innermost` (the engine's one way of saying it).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    berth_daemon::error_chain(e)
}

/// A failed containerd call by its gRPC code: the objects berthd asks containerd about are
/// the user's containers, tasks and execs, so one that does not exist is a 404; a containerd
/// that does not answer is a 503; the rest are the machine's.
fn containerd_status(code: Option<Code>) -> StatusCode {
    match code {
        Some(Code::NotFound) => StatusCode::NOT_FOUND,
        Some(Code::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
        Some(
            Code::Ok
            | Code::Cancelled
            | Code::Unknown
            | Code::InvalidArgument
            | Code::DeadlineExceeded
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::ResourceExhausted
            | Code::FailedPrecondition
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss
            | Code::Unauthenticated,
        )
        | None => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The one mapping from engine errors to statuses. Every variant is named: a new variant
/// does not compile until it has a status.
impl From<DaemonError> for ApiError {
    fn from(e: DaemonError) -> ApiError {
        ApiError::new(status(&e), message(&e))
    }
}

fn status(e: &DaemonError) -> StatusCode {
    match e {
        DaemonError::Config(_) => StatusCode::BAD_REQUEST,
        DaemonError::Runtime(r) if r.is_invalid_parameter() => StatusCode::BAD_REQUEST,
        DaemonError::Runtime(_) => StatusCode::INTERNAL_SERVER_ERROR,
        DaemonError::Containerd(c) => containerd_status(c.code()),
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
        DaemonError::Registry(r) => registry_status(r),
        DaemonError::Build(b) => match b {
            berth_daemon::BuildError::Invalid(_) => StatusCode::BAD_REQUEST,
            berth_daemon::BuildError::Step(_) | berth_daemon::BuildError::RunFailed { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        },
        DaemonError::Network(n) => network_status(n),
        DaemonError::Volume(v) => volume_status(v),
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
        // As dockerd: what the user asked to run is at fault unless the machine is.
        DaemonError::StartFailed { kind, .. } => match kind {
            StartFailure::NotFound
            | StartFailure::PermissionDenied
            | StartFailure::NotADirectory => StatusCode::BAD_REQUEST,
            StartFailure::System => StatusCode::INTERNAL_SERVER_ERROR,
        },
        DaemonError::CleanupFailed { error, .. } => status(error),
        DaemonError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        DaemonError::Log(l) => match l {
            LogError::NotReadable => StatusCode::NOT_IMPLEMENTED,
            LogError::Write { .. } | LogError::Rotate { .. } | LogError::Read { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        },
        DaemonError::InRoot(r) => match r {
            RootError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                StatusCode::NOT_FOUND
            }
            RootError::NotRegular { .. }
            | RootError::TooLarge { .. }
            | RootError::BadEntry { .. } => StatusCode::BAD_REQUEST,
            RootError::Io { .. } | RootError::Stream(_) => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

/// dockerd's statuses for a pull or login: an unknown manifest is a 404, a bad request
/// (platform, unsupported content) a 400; the registry's refusals, the network and our
/// disk are 500s (dockerd answers a wrong password or missing credentials with 500 too).
fn registry_status(e: &RegistryError) -> StatusCode {
    match e {
        RegistryError::NotFound { .. } => StatusCode::NOT_FOUND,
        RegistryError::BadPlatform(_)
        | RegistryError::NoMatchingPlatform(_)
        | RegistryError::BadAddress(_) => StatusCode::BAD_REQUEST,
        RegistryError::Image(ImageError::InvalidReference { .. }) => StatusCode::BAD_REQUEST,
        RegistryError::NoCredentials { .. }
        | RegistryError::Denied(_)
        | RegistryError::LoginFailed { .. }
        | RegistryError::Connect { .. }
        | RegistryError::Body { .. }
        | RegistryError::Status { .. }
        | RegistryError::DigestMismatch { .. }
        | RegistryError::Truncated { .. }
        | RegistryError::TooLarge { .. }
        | RegistryError::BadManifest(_)
        | RegistryError::BadConfig(_)
        | RegistryError::Unsupported(_)
        | RegistryError::Cancelled
        | RegistryError::Io { .. }
        | RegistryError::Image(_)
        | RegistryError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// dockerd's statuses for networks: unknown ones 404, names taken 409, what libnetwork
/// forbids (predefined networks, networks in use, overlapping pools, endpoints) 403, bad
/// requests 400; the kernel failing is a 500.
fn network_status(e: &NetworkError) -> StatusCode {
    match e {
        NetworkError::NoSuchNetwork(_) | NetworkError::UnsupportedDriver(_) => {
            StatusCode::NOT_FOUND
        }
        NetworkError::NameExists(_) | NetworkError::SandboxExists(_) => StatusCode::CONFLICT,
        NetworkError::Predefined(_)
        | NetworkError::InUse { .. }
        | NetworkError::PoolOverlap(_)
        | NetworkError::BridgeInUse(_)
        | NetworkError::AlreadyConnected { .. }
        | NetworkError::NotBridge(_) => StatusCode::FORBIDDEN,
        NetworkError::InvalidSubnet(_)
        | NetworkError::AddressOutside { .. }
        | NetworkError::IpOnDefault
        | NetworkError::AliasOnDefault
        | NetworkError::BadNetworkName(_)
        | NetworkError::InvalidName { .. }
        | NetworkError::InvalidProto { .. }
        | NetworkError::NotABridge { .. }
        | NetworkError::InvalidPort(_)
        | NetworkError::AddHostFormat { .. }
        | NetworkError::AddHostAddress { .. }
        | NetworkError::Ambiguous(_) => StatusCode::BAD_REQUEST,
        NetworkError::NoSandbox(_) => StatusCode::CONFLICT,
        NetworkError::Io { .. }
        | NetworkError::Sys { .. }
        | NetworkError::NotNetns { .. }
        | NetworkError::Netlink { .. }
        | NetworkError::LinkNotFound { .. }
        | NetworkError::NoRuntime { .. }
        | NetworkError::Nft { .. }
        | NetworkError::PortInUse { .. }
        | NetworkError::PortRangeInUse { .. }
        | NetworkError::DnsRuntime { .. }
        | NetworkError::AddressInUse(_)
        | NetworkError::NoPool
        | NetworkError::NoAddress(_)
        | NetworkError::Store { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// dockerd's statuses for volumes: unknown volumes and drivers 404, in use or another
/// driver's 409, bad names, options and mount specifications 400; the host failing 500.
fn volume_status(e: &VolumeError) -> StatusCode {
    match e {
        VolumeError::NotFound { .. } | VolumeError::UnknownDriver { .. } => StatusCode::NOT_FOUND,
        VolumeError::InUse { .. } | VolumeError::DriverConflict { .. } => StatusCode::CONFLICT,
        VolumeError::InvalidName { .. }
        | VolumeError::InvalidOption { .. }
        | VolumeError::InvalidSpec { .. }
        | VolumeError::InvalidMount { .. }
        | VolumeError::DuplicateMountPoint { .. } => StatusCode::BAD_REQUEST,
        VolumeError::Subpath { source, .. } if source.is_not_found() => StatusCode::BAD_REQUEST,
        VolumeError::Mount { .. }
        | VolumeError::CopyUp { .. }
        | VolumeError::Subpath { .. }
        | VolumeError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The inner error says what the user needs; the outer variant only names the layer.
fn message(e: &DaemonError) -> String {
    e.user_message()
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

    fn rpc(code: Code, message: &str) -> DaemonError {
        DaemonError::Containerd(berth_daemon::ContainerdError::Rpc {
            method: "Tasks.Kill",
            code,
            message: message.into(),
            cause: None,
        })
    }

    #[test]
    fn containerd_errors_map_by_grpc_code_and_say_the_real_cause() {
        let e: ApiError = rpc(Code::NotFound, "task abc not found").into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(
            e.message,
            "containerd call Tasks.Kill failed: task abc not found"
        );
        let e: ApiError = rpc(Code::Unavailable, "connection refused").into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            e.message,
            "containerd call Tasks.Kill failed: connection refused"
        );
        let e: ApiError = rpc(Code::FailedPrecondition, "task is stopped").into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn start_failures_map_by_kind_with_the_runtimes_words() {
        for (kind, status) in [
            (StartFailure::NotFound, StatusCode::BAD_REQUEST),
            (StartFailure::PermissionDenied, StatusCode::BAD_REQUEST),
            (StartFailure::NotADirectory, StatusCode::BAD_REQUEST),
            (StartFailure::System, StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            let e: ApiError = DaemonError::StartFailed {
                kind,
                message: "runc's words".into(),
            }
            .into();
            assert_eq!((e.status, e.message.as_str()), (status, "runc's words"));
        }
    }

    #[test]
    fn a_failed_cleanup_is_reported_with_the_failure_it_followed() {
        let e: ApiError = DaemonError::CleanupFailed {
            error: Box::new(DaemonError::StartFailed {
                kind: StartFailure::NotFound,
                message: "exec: \"x\": executable file not found in $PATH".into(),
            }),
            cleanup: Box::new(rpc(Code::Unavailable, "connection refused")),
        }
        .into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "exec: \"x\": executable file not found in $PATH (cleaning up after it also failed: containerd call Tasks.Kill failed: connection refused)"
        );
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
