//! `docker diff` and `docker update`.

use std::path::{Path, PathBuf};

use berth_inroot::Root;
use berth_inroot::walk::Walk;

use berth_model::HostConfig;
use serde::Deserialize;

use super::state::Conflict;
use crate::{Daemon, DaemonError};

/// One entry of `docker diff`: 0 changed, 1 added, 2 deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// The container's changes, read from its overlay upper folder against the image's layers.
/// The upper folder is walked by descriptor and the layers are asked without following any
/// link, so a running container cannot point the walk at the host.
pub(crate) fn changes(upper: &Path, lowers: &[PathBuf]) -> Vec<Change> {
    let mut out = Vec::new();
    let lowers: Vec<Root> = lowers.iter().filter_map(|l| Root::open(l).ok()).collect();
    let Ok(root) = Root::open(upper) else {
        return out;
    };
    let Ok(fd) = root.fd().try_clone_to_owned() else {
        return out;
    };
    // Without recursion: a container's folders may nest thousands deep.
    let Ok(mut walk) = Walk::new(fd, Path::new("/")) else {
        return out;
    };
    while let Some(item) = walk.next() {
        let Ok(item) = item else {
            continue;
        };
        let m = item.meta;
        // The empty files runc makes to mount the generated /etc files on are not changes.
        let name_str = item.path.display().to_string();
        if MOUNT_TARGETS.contains(&name_str.as_str()) && m.is_file() && m.size == 0 {
            continue;
        }
        let in_image = lowers.iter().any(|l| l.has_plain(&item.path));
        let kind = if m.is_whiteout() {
            2
        } else if in_image {
            0
        } else {
            1
        };
        out.push(Change {
            path: name_str,
            kind,
        });
        if m.is_dir() {
            // A folder that cannot be listed is shown without its contents.
            let _ = walk.descend(item);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

const MOUNT_TARGETS: &[&str] = &["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

/// What `docker update` may change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub restart_policy: Option<berth_model::RestartPolicy>,
}

/// A value the request sets: not zero, not empty.
fn given<T: Default + PartialEq>(v: &T) -> bool {
    *v != T::default()
}

impl UpdateRequest {
    /// Zero and empty values leave a setting as it is, as in dockerd (the docker CLI sends
    /// every field, zero when not asked for).
    fn apply(&self, h: &mut HostConfig) {
        macro_rules! set {
            ($($f:ident),*) => { $(
                if let Some(v) = self.$f.clone().filter(given) {
                    h.$f = v;
                }
            )* };
        }
        set!(
            memory,
            memory_swap,
            memory_reservation,
            cpu_shares,
            cpu_period,
            cpu_quota,
            nano_cpus,
            cpuset_cpus,
            cpuset_mems,
            blkio_weight
        );
        if let Some(p) = self.pids_limit {
            h.pids_limit = Some(p);
        }
        if let Some(r) = self.restart_policy.as_ref().filter(|r| !r.name.is_empty()) {
            h.restart_policy = r.clone();
        }
    }

    /// What dockerd refuses to change given what is already set (its
    /// `conflictingUpdateOptions`, a 409).
    fn conflict(&self, h: &HostConfig) -> Option<&'static str> {
        let set = |v: Option<i64>| v.is_some_and(|v| v > 0);
        if set(self.nano_cpus) && h.cpu_period > 0 {
            return Some(
                "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set",
            );
        }
        if set(self.nano_cpus) && h.cpu_quota > 0 {
            return Some(
                "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
            );
        }
        if set(self.cpu_period) && h.nano_cpus > 0 {
            return Some(
                "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set",
            );
        }
        if set(self.cpu_quota) && h.nano_cpus > 0 {
            return Some(
                "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
            );
        }
        // berth stores no swap as 0 (twice the memory), so only a swap that was set can be
        // passed by a new memory limit.
        if let Some(m) = self.memory.filter(|m| *m != 0)
            && self.memory_swap.unwrap_or(0) == 0
            && h.memory_swap > 0
            && m > h.memory_swap
        {
            return Some(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
            );
        }
        None
    }
}

impl Daemon {
    /// `docker diff`: the walk on a blocking thread (a container's folder may hold
    /// millions of entries).
    pub async fn container_changes(&self, name: &str) -> Result<Vec<Change>, DaemonError> {
        let c = self.containers.get(name)?;
        let image = self.images.get(&c.record().image)?;
        let upper = c.dir().join("fs").join("upper");
        tokio::task::spawn_blocking(move || changes(&upper, &image.layer_dirs))
            .await
            .map_err(|e| DaemonError::Task(e.to_string()))
    }

    /// `docker update`: the new limits are stored, and applied at once to a running task.
    pub async fn container_update(
        &self,
        name: &str,
        req: UpdateRequest,
    ) -> Result<(), DaemonError> {
        // The request alone first, as dockerd checks it; then against what is set.
        let mut asked = HostConfig::default();
        req.apply(&mut asked);
        super::validate::resources(&asked, &self.host_facts().cpu, true)?;
        let c = self.containers.get(name)?;
        let _op = c.op.lock().await;
        let mut host = c.record().host_config;
        if let Some(why) = req.conflict(&host) {
            return Err(Conflict::Update {
                id: c.id.clone(),
                why,
            }
            .into());
        }
        if let Some(p) = &req.restart_policy {
            if host.auto_remove && !matches!(p.name.as_str(), "" | "no") {
                return Err(DaemonError::InvalidParameter(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
            super::restart::validate_policy(p, false)?;
        }
        req.apply(&mut host);
        let task = {
            let inner = c.lock();
            inner
                .record
                .state
                .running()
                .then(|| inner.task.clone())
                .flatten()
        };
        if let Some(task) = task {
            let resources = berth_oci::resources(&host)?;
            let json =
                serde_json::to_vec(&resources).map_err(|e| DaemonError::Task(e.to_string()))?;
            task.update(json).await?;
        }
        c.lock().record.host_config = host;
        c.persist()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_and_deleted() {
        let d = tempfile::tempdir().unwrap();
        let (lower, upper) = (d.path().join("l"), d.path().join("u"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "y").unwrap();
        std::fs::create_dir_all(upper.join("new")).unwrap();
        std::fs::write(upper.join("new/file"), "z").unwrap();
        std::fs::write(upper.join("etc/hostname"), "").unwrap();
        let got = changes(&upper, &[lower]);
        let show: Vec<(String, u8)> = got.into_iter().map(|c| (c.path, c.kind)).collect();
        assert_eq!(
            show,
            [
                ("/etc".into(), 0),
                ("/etc/passwd".into(), 0),
                ("/new".into(), 1),
                ("/new/file".into(), 1)
            ]
        );
    }

    #[test]
    fn a_folder_nested_thousands_deep_is_diffed_on_a_blocking_threads_stack() {
        use nix::fcntl::{OFlag, open, openat};
        use nix::sys::stat::{Mode, mkdirat};
        let d = tempfile::tempdir().unwrap();
        let (lower, upper) = (d.path().join("l"), d.path().join("u"));
        std::fs::create_dir_all(&lower).unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        // 5000 levels, made by descriptor as a container's `mv` loop makes them.
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut at = open(&upper, flags, Mode::empty()).unwrap();
        for _ in 0..5000 {
            mkdirat(&at, "d", Mode::from_bits_truncate(0o755)).unwrap();
            at = openat(&at, "d", flags, Mode::empty()).unwrap();
        }
        let got = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || changes(&upper, &[lower]))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(got.len(), 5000);
        assert!(got.iter().all(|c| c.kind == 1));
    }

    #[test]
    fn update_changes_only_what_is_given() {
        let mut h = HostConfig {
            memory: 1,
            cpu_shares: 2,
            ..Default::default()
        };
        let req: UpdateRequest =
            serde_json::from_str(r#"{"Memory": 67108864, "RestartPolicy": {"Name": "always"}}"#)
                .unwrap();
        req.apply(&mut h);
        assert_eq!(
            (h.memory, h.cpu_shares, h.restart_policy.name.as_str()),
            (64 << 20, 2, "always")
        );
    }
}
