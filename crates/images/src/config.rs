use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The part of an image config a container starts from (Docker's `config` object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Fields berth does not interpret, kept as they came.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub typ: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// An image config (Docker's and OCI's shape). The image ID is the sha256 of the exact bytes
/// it was stored with, so the store keeps those bytes and this is only their reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_docker_config_and_keeps_unknown_fields() {
        let raw = r#"{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z",
            "config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Healthcheck":{"Test":["NONE"]}},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]},
            "history":[{"created":"2026-01-01T00:00:00Z","created_by":"x","empty_layer":true}],
            "docker_version":"20.10"}"#;
        let c: ImageConfig = serde_json::from_str(raw).unwrap();
        assert_eq!(c.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert!(c.config.extra.contains_key("Healthcheck"));
        assert!(c.extra.contains_key("docker_version"));
        assert!(c.history[0].empty_layer);
        let again = serde_json::to_value(&c).unwrap();
        assert_eq!(again["config"]["Healthcheck"]["Test"][0], "NONE");
    }
}
