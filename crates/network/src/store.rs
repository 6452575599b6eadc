//! The networks berth knows, as `docker network inspect` shows them, persisted in
//! `<data-root>/network/networks.json` (written whole, through a temporary file).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::NetworkError;
use crate::ipam::Subnet;

/// One `IPAM.Config` entry, as given (a key absent when not given, as dockerd shows it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(rename = "IPRange", default, skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// A network: Docker's fields, and what berth derived (its bridge device and addresses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    pub ipam_driver: String,
    #[serde(default)]
    pub ipam_options: Option<BTreeMap<String, String>>,
    pub ipam_config: Vec<IpamEntry>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The bridge device (bridge driver only).
    #[serde(default)]
    pub bridge: String,
    /// Whether berth made the bridge device (then it removes it; one it found, it leaves).
    #[serde(default)]
    pub owned_bridge: bool,
    #[serde(default)]
    pub subnet: Option<Subnet>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub ip_range: Option<Subnet>,
}

impl Network {
    /// A network with nothing set but its ID, name, driver and creation time (the
    /// predefined `host` and `none` are just that).
    pub fn bare(id: String, name: &str, driver: &str, created: String) -> Network {
        Network {
            id,
            name: name.into(),
            driver: driver.into(),
            created,
            internal: false,
            attachable: false,
            enable_ipv6: false,
            ipam_driver: "default".into(),
            ipam_options: None,
            ipam_config: Vec::new(),
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
            bridge: String::new(),
            owned_bridge: false,
            subnet: None,
            gateway: None,
            ip_range: None,
        }
    }

    /// `bridge`, `host` and `none`: there from the start, never removed.
    pub fn is_predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }

    /// The default bridge (no DNS, `--link`, no `--ip`).
    pub fn is_default_bridge(&self) -> bool {
        self.name == "bridge"
    }
}

/// The persisted list.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StoreFile {
    pub networks: Vec<Network>,
}

pub(crate) fn load(path: &Path) -> Result<StoreFile, NetworkError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| NetworkError::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreFile::default()),
        Err(source) => Err(NetworkError::Io {
            context: format!("reading {}", path.display()),
            source,
        }),
    }
}

pub(crate) fn save(path: &Path, file: &StoreFile) -> Result<(), NetworkError> {
    let io = |source| NetworkError::Io {
        context: format!("writing {}", path.display()),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| NetworkError::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let tmp: PathBuf = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
