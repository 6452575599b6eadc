use serde::{Deserialize, Serialize};

/// A user-configured runtime as daemon.json spells it: either a runc-compatible binary
/// (`path`, optionally `runtimeArgs`) or a containerd shim (`runtimeType`, optionally
/// `options`). Which combinations are valid is decided by berth-runtimes, in dockerd's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(
        default,
        rename = "runtimeArgs",
        skip_serializing_if = "Option::is_none"
    )]
    pub args: Option<Vec<String>>,
    #[serde(
        default,
        rename = "runtimeType",
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<serde_json::Map<String, serde_json::Value>>,
}

impl RuntimeEntry {
    /// A plain `path` runtime, as `--add-runtime NAME=PATH` defines it.
    pub fn from_path(path: impl Into<String>) -> RuntimeEntry {
        RuntimeEntry {
            path: Some(path.into()),
            ..RuntimeEntry::default()
        }
    }
}
