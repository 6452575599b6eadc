//! `docker version` and `docker info`: the engine's, containerd's and runc's versions, and the
//! facts `info` reports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_containerd::ContainerdVersion;

use crate::{Daemon, HostFacts, Snapshot, backing_filesystem};

/// One entry of `Components` in `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    pub details: BTreeMap<String, String>,
}

/// What `GET /version` reports.
#[derive(Debug, Clone)]
pub struct SystemVersion {
    pub version: String,
    pub git_commit: String,
    pub compiler: String,
    pub kernel_version: String,
    /// Go-style architecture name, as Docker clients expect ("amd64").
    pub arch: String,
    pub components: Vec<ComponentVersion>,
}

/// What `GET /info` reports, as facts; the API layer gives it Docker's shape.
#[derive(Debug, Clone)]
pub struct SystemInfo {
    pub id: String,
    pub name: String,
    pub containers_running: u64,
    pub containers_paused: u64,
    pub containers_stopped: u64,
    pub images: u64,
    pub host: HostFacts,
    pub ncpu: usize,
    pub open_fds: u64,
    pub tasks: u64,
    pub system_time: SystemTime,
    pub backing_filesystem: String,
    pub snapshot: Arc<Snapshot>,
    pub containerd: Option<ContainerdVersion>,
    pub runc: Option<(String, String)>,
    pub server_version: String,
}

impl Daemon {
    /// Engine, containerd and runc versions. Asks containerd (one Version RPC, with a short
    /// timeout); a containerd that does not answer is left out of `components`.
    pub async fn version(&self) -> SystemVersion {
        let host = HostFacts::read(&self.paths.host);
        let mut components = vec![ComponentVersion {
            name: "Engine".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            details: BTreeMap::new(),
        }];
        if let Some(c) = self.containerd_version().await {
            components.push(ComponentVersion {
                name: "containerd".to_string(),
                version: c.version,
                details: BTreeMap::from([("GitCommit".to_string(), c.revision)]),
            });
        }
        if let Some((version, commit)) = &self.runc {
            components.push(ComponentVersion {
                name: "runc".to_string(),
                version: version.clone(),
                details: BTreeMap::from([("GitCommit".to_string(), commit.clone())]),
            });
        }
        SystemVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: env!("BERTH_GIT_COMMIT").to_string(),
            compiler: env!("BERTH_RUSTC_VERSION").to_string(),
            kernel_version: host.kernel_version,
            arch: go_arch(std::env::consts::ARCH).to_string(),
            components,
        }
    }

    /// Everything `docker info` prints, read now from the machine and the config snapshot.
    pub async fn info(&self) -> SystemInfo {
        let snapshot = self.config();
        let host = HostFacts::read(&self.paths.host);
        let states: Vec<crate::State> = self.containers.all().iter().map(|c| c.state()).collect();
        SystemInfo {
            id: self.engine_id.clone(),
            name: host.hostname.clone(),
            containers_running: states.iter().filter(|s| s.running() && !s.paused()).count() as u64,
            containers_paused: states.iter().filter(|s| s.paused()).count() as u64,
            containers_stopped: states.iter().filter(|s| !s.running()).count() as u64,
            images: self.images.list().len() as u64,
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count() as u64)
                .unwrap_or(0),
            tasks: tokio::runtime::Handle::try_current()
                .map(|h| h.metrics().num_alive_tasks() as u64)
                .unwrap_or(0),
            system_time: SystemTime::now(),
            backing_filesystem: backing_filesystem(&snapshot.config.data_root),
            host,
            containerd: self.containerd_version().await,
            runc: self.runc.clone(),
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            snapshot,
        }
    }

    async fn containerd_version(&self) -> Option<ContainerdVersion> {
        match tokio::time::timeout(Duration::from_secs(2), self.containerd.version()).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "containerd did not report its version");
                None
            }
            Err(_) => {
                tracing::warn!("containerd did not answer Version within 2s");
                None
            }
        }
    }
}

/// Docker clients name architectures as Go does.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `runc --version`: ("1.1.5+ds1", "1.1.5+ds1-1+deb12u1").
pub(crate) fn runc_version() -> Option<(String, String)> {
    let out = std::process::Command::new("runc")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    parse_runc_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_runc_version(text: &str) -> Option<(String, String)> {
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("runc version "))?
        .trim()
        .to_string();
    let commit = text
        .lines()
        .find_map(|l| l.strip_prefix("commit: "))
        .unwrap_or("")
        .trim()
        .to_string();
    Some((version, commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_version_is_parsed() {
        let text = "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n";
        assert_eq!(
            parse_runc_version(text),
            Some(("1.1.5+ds1".into(), "1.1.5+ds1-1+deb12u1".into()))
        );
        assert_eq!(parse_runc_version("nonsense"), None);
    }

    #[test]
    fn go_arch_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("riscv64"), "riscv64");
    }
}
