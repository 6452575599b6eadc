use std::path::PathBuf;

/// Why a runtime configuration or a runtime name was refused. Texts are dockerd's.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("runtime name 'runc' is reserved")]
    RuncReserved,
    #[error("specified default runtime '{0}' does not exist")]
    NoSuchDefault(String),
    #[error("runtime {0}: either a runtimeType or a path must be configured")]
    NeitherPathNorType(String),
    #[error("runtime {0}: cannot configure both path and runtimeType for the same runtime")]
    BothPathAndType(String),
    #[error("runtime {0}: options cannot be used with a path runtime")]
    OptionsWithPath(String),
    #[error("runtime {0}: args cannot be used with a runtimeType runtime")]
    ArgsWithType(String),
    #[error("runtime {name}: invalid option {key}: {reason}")]
    BadOption {
        name: String,
        key: String,
        reason: String,
    },
    #[error("unknown or invalid runtime name: {0}")]
    Unknown(String),
    #[error("error while looking up the specified runtime path {path}")]
    Preflight {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write runtime wrapper script {path}")]
    Wrapper {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    /// Whether the error is the user's (a bad name or configuration: 400) rather than the
    /// machine's.
    /// Every variant is named: a new one does not compile until it is placed.
    pub fn is_invalid_parameter(&self) -> bool {
        match self {
            RuntimeError::RuncReserved
            | RuntimeError::NoSuchDefault(_)
            | RuntimeError::NeitherPathNorType(_)
            | RuntimeError::BothPathAndType(_)
            | RuntimeError::OptionsWithPath(_)
            | RuntimeError::ArgsWithType(_)
            | RuntimeError::BadOption { .. }
            | RuntimeError::Unknown(_)
            | RuntimeError::Preflight { .. } => true,
            RuntimeError::Wrapper { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_mistakes_are_invalid_parameters_and_the_machines_are_not() {
        assert!(RuntimeError::Unknown("x".into()).is_invalid_parameter());
        assert!(
            RuntimeError::Preflight {
                path: "/no/such".into(),
                source: std::io::ErrorKind::NotFound.into(),
            }
            .is_invalid_parameter()
        );
        assert!(
            !RuntimeError::Wrapper {
                path: "/x".into(),
                source: std::io::Error::other("disk full"),
            }
            .is_invalid_parameter()
        );
    }
}
