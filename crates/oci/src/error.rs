/// A container configuration that cannot become a spec. Every variant is the client's
/// doing (400), with Docker's wording where clients match on it.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid ulimit {name}: {reason}")]
    Ulimit { name: String, reason: String },
    #[error("unknown capability: {0:?}")]
    Capability(String),
    /// `1`: no `=` or `:` separator; `2`: an unknown key or value (dockerd's numbering).
    #[error("invalid --security-opt {kind}: {opt:?}")]
    SecurityOpt { kind: u8, opt: String },
    #[error("invalid seccomp profile: {0}")]
    Seccomp(String),
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    #[error("invalid tmpfs specification {0:?}")]
    Tmpfs(String),
    #[error("--init needs an init binary: install tini (apt-get install tini) or docker-init")]
    NoInit,
    #[error("invalid OCI spec: {0}")]
    Oci(String),
}

impl From<oci_spec::OciSpecError> for SpecError {
    fn from(e: oci_spec::OciSpecError) -> SpecError {
        SpecError::Oci(e.to_string())
    }
}
