//! `docker resize` of a container's terminal (an exec's is in `exec.rs`).

use crate::{Daemon, DaemonError};

impl Daemon {
    /// `docker resize` of a container's terminal.
    pub async fn container_resize(
        &self,
        name: &str,
        height: u32,
        width: u32,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let task = Self::running_task(&c)?;
        task.resize(width, height).await?;
        Ok(())
    }
}
