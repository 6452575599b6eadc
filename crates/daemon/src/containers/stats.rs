//! `docker stats`: one sample of a container's cgroup statistics.

use std::sync::Arc;

use super::{Container, fs};
use crate::{Daemon, DaemonError};

impl Daemon {
    /// One sample of a container's cgroup statistics.
    pub fn container_stats(
        &self,
        name: &str,
    ) -> Result<(Arc<Container>, fs::CgroupStats), DaemonError> {
        let c = self.containers.get(name)?;
        let stats = if c.state().running() {
            let host = self.host_facts();
            let path = self.cgroups_path(&c);
            fs::cgroup_stats(&host.cgroups, &path, host.mem_total)
        } else {
            fs::CgroupStats::default()
        };
        Ok((c, stats))
    }
}
