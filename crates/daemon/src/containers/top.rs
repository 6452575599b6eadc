//! `docker top`.

use super::fs;
use crate::{Daemon, DaemonError};

impl Daemon {
    /// `docker top`.
    pub async fn container_top(
        &self,
        name: &str,
    ) -> Result<(Vec<String>, Vec<Vec<String>>), DaemonError> {
        let c = self.containers.get(name)?;
        let task = Self::running_task(&c)?;
        let pids = task.pids().await?;
        let host = &self.paths().host;
        Ok(fs::top(
            &host.proc_root,
            &host.root.join("etc/passwd"),
            &pids,
        ))
    }
}
