//! The values behind `docker inspect` and `docker stats`: what the engine knows about a
//! container, resolved against the configuration and the host, ready for the API to shape.

use std::path::PathBuf;
use std::time::SystemTime;

use berth_config::Ulimit;
use berth_model::MountPoint;

use super::{Record, fs};
use crate::{Daemon, DaemonError};

/// A container as `docker inspect` shows it.
#[derive(Debug, Clone)]
pub struct ContainerInspect {
    pub record: Record,
    pub exec_ids: Vec<String>,
    /// The overlay's upper and work folders.
    pub upper_dir: PathBuf,
    pub work_dir: PathBuf,
    /// The ulimits the container gets: its own over the daemon's defaults.
    pub ulimits: Vec<Ulimit>,
    pub mounts: Vec<MountPoint>,
    /// (bytes written, with the image's) when asked for.
    pub size: Option<(u64, u64)>,
}

/// One sample of a container's resource use, as `docker stats` reads it.
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub running: bool,
    pub read: SystemTime,
    pub cgroup: fs::CgroupStats,
    /// The machine's CPU time in nanoseconds.
    pub system_cpu_ns: u64,
    pub online_cpus: usize,
    /// Its interfaces (`eth0`) and their counters.
    pub networks: Vec<(String, berth_network::InterfaceStats)>,
}

/// The mounts of a container as inspect and `docker ps` list them (dockerd's shape).
pub(crate) fn mount_points(r: &Record) -> Vec<MountPoint> {
    super::mounts::record_mounts(r)
        .into_iter()
        .map(|m| {
            let volume = m.kind == berth_volumes::MountKind::Volume;
            let source = if volume && !m.subpath.is_empty() {
                format!("{}/{}", m.source, m.subpath.trim_start_matches('/'))
            } else {
                m.source
            };
            MountPoint {
                typ: m.kind.as_str().into(),
                name: m.name,
                source,
                destination: m.destination,
                driver: if volume { m.driver } else { String::new() },
                mode: m.mode,
                rw: m.rw,
                propagation: m.propagation,
            }
        })
        .collect()
}

impl Daemon {
    /// `docker inspect` of a container; `size` adds its disk use.
    pub fn container_inspect(
        &self,
        name: &str,
        size: bool,
    ) -> Result<ContainerInspect, DaemonError> {
        let c = self.containers.get(name)?;
        let record = c.record();
        let snapshot = self.config();
        Ok(ContainerInspect {
            exec_ids: c.exec_ids(),
            upper_dir: c.dir().join("fs/upper"),
            work_dir: c.dir().join("fs/work"),
            ulimits: berth_oci::merge_ulimits(
                &record.host_config.ulimits,
                &snapshot.config.default_ulimits,
            ),
            mounts: mount_points(&record),
            size: size.then(|| self.container_size(&record)),
            record,
        })
    }

    /// One sample of a container's cgroup statistics (zeros when it does not run).
    pub fn container_stats(&self, name: &str) -> Result<StatsSample, DaemonError> {
        let c = self.containers.get(name)?;
        let running = c.state().running();
        let host = self.host_facts();
        let cgroup = if running {
            let path = self.cgroups_path(&c);
            fs::cgroup_stats(&host.cgroups, &path, host.mem_total)
        } else {
            fs::CgroupStats::default()
        };
        Ok(StatsSample {
            id: c.id.clone(),
            name: c.name(),
            running,
            read: SystemTime::now(),
            cgroup,
            system_cpu_ns: host.system_cpu_ns(),
            online_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            networks: self
                .networks
                .get()
                .map(|n| n.interface_stats(&c.id))
                .unwrap_or_default(),
        })
    }
}
