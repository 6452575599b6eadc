use std::path::PathBuf;

/// Everything that can be wrong with the daemon's configuration. Messages follow dockerd's
/// texts where clients or users match on them.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unable to read configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unable to configure the daemon with file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the configuration file is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the configuration file must hold a JSON object")]
    NotAnObject,
    #[error("the following directives don't match any configuration option: {}", keys.join(", "))]
    UnknownKeys { keys: Vec<String> },
    #[error("invalid value for {key}: {reason}")]
    InvalidValue { key: String, reason: String },
    #[error(
        "the following directives are specified both as a flag and in the configuration file: {}",
        conflicts.join(", ")
    )]
    FlagConflicts { conflicts: Vec<String> },
    #[error("invalid logging level: {0}")]
    LogLevel(String),
    #[error("bad attribute format: {0}")]
    LabelFormat(String),
    #[error("conflict labels for {first} and {second}")]
    LabelConflict { first: String, second: String },
    #[error("invalid bind address ({addr}): {reason}")]
    Host { addr: String, reason: String },
    #[error("invalid ulimit {spec}: {reason}")]
    Ulimit { spec: String, reason: String },
    #[error("invalid runtime argument: {0}")]
    RuntimeFlag(String),
    #[error("runtime name 'runc' is reserved")]
    RuncReserved,
    #[error("runtime '{0}' was already defined")]
    RuntimeDefinedTwice(String),
    #[error("{what} must be an absolute path, got {path}")]
    RelativePath { what: &'static str, path: PathBuf },
    #[error("invalid metrics address {addr}: {reason}")]
    MetricsAddr { addr: String, reason: String },
    #[error("invalid {what}: {value}")]
    RegistryLimit { what: &'static str, value: i64 },
    #[error("invalid mirror: {0}")]
    Mirror(String),
    #[error("invalid shutdown-timeout {0}: must be -1 or more")]
    ShutdownTimeout(i64),
    #[error("invalid default MTU: {value}{hint}")]
    Mtu { value: i64, hint: &'static str },
    #[error("{0} is not an ip address")]
    NotAnIp(String),
    #[error("{0} is not a valid domain")]
    NotADomain(String),
    #[error("invalid default address pool {spec}: {reason}")]
    AddressPool { spec: String, reason: String },
    #[error("You specified -b & --bip, mutually exclusive options. Please specify only one")]
    BridgeAndBip,
    #[error(
        "You specified --iptables=false with --icc=false. ICC=false uses iptables to function. \
         Please set --icc or --iptables to true"
    )]
    IccWithoutIptables,
}
