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
        let mem = crate::HostFacts::read(std::path::Path::new("/")).mem_total;
        let stats = if c.state().running() {
            fs::cgroup_stats(&c.id, self.host_facts().cgroup_v2, mem)
        } else {
            fs::CgroupStats::default()
        };
        Ok((c, stats))
    }
}
