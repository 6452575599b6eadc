//! `docker start`: resolve the runtime from the snapshot loaded now, build the spec, create
//! the containerd container and task, wire stdio, start.

use std::collections::HashMap;
use std::sync::Arc;

use berth_containerd::{GenericOptionsProto, Mount, RuncOptionsProto, RuntimeSpec};
use berth_images::{RootfsLayout, overlay_options};
use berth_runtimes::{ResolvedRuntime, ShimOptions};

use super::io::{Fifos, Readers, spawn_copiers};
use super::networks::{Mode, mode};
use super::state::Conflict;
use super::{Container, now_rfc3339};
use crate::{Daemon, DaemonError, StartFailure};

/// The runtime as containerd's container record takes it.
pub(crate) fn runtime_spec(r: &ResolvedRuntime) -> RuntimeSpec {
    let options = r.options.as_ref().map(|o| match o {
        ShimOptions::Runc(o) => RuncOptionsProto {
            no_pivot_root: o.no_pivot_root,
            no_new_keyring: o.no_new_keyring,
            shim_cgroup: o.shim_cgroup.clone(),
            io_uid: o.io_uid,
            io_gid: o.io_gid,
            binary_name: o.binary_name.clone(),
            root: o.root.clone(),
            criu_path: o.criu_path.clone(),
            systemd_cgroup: o.systemd_cgroup,
            criu_image_path: o.criu_image_path.clone(),
            criu_work_path: o.criu_work_path.clone(),
        }
        .to_any(),
        ShimOptions::Generic(g) => GenericOptionsProto {
            type_url: g.type_url.clone(),
            config_path: g.config_path.clone(),
        }
        .to_any(),
    });
    RuntimeSpec {
        shim: r.shim.clone(),
        options,
    }
}

/// The init binary for `--init`: dockerd's `docker-init`, else tini (static builds first:
/// the container may have no C library), searched on PATH and in the sbin folders, with
/// links resolved (the bind mount takes the file itself).
pub(crate) fn init_binary() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(
        [
            "/usr/local/sbin",
            "/usr/sbin",
            "/sbin",
            "/usr/libexec/docker",
        ]
        .map(Into::into),
    );
    ["docker-init", "tini-static", "tini"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
}

impl Daemon {
    /// Starts a created or stopped container.
    pub async fn container_start(&self, name: &str) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let _op = c.op.lock().await;
        c.reset_restarts();
        let result = self.start_locked(&c).await;
        if let Err(e) = &result
            && !matches!(e, DaemonError::NotModified | DaemonError::Conflict(_))
            && c.record().host_config.auto_remove
        {
            // `--rm` removes a container whose start failed, as dockerd does.
            if let Err(re) = self.remove_files(&c) {
                tracing::warn!(container = %c.id, error = %re, "cannot remove after a failed start");
            }
        }
        result
    }

    /// Where a container's cgroup is: the `cgroupsPath` its last start gave runc, else the
    /// one a start would give it now.
    pub(crate) fn cgroups_path(&self, c: &Container) -> String {
        let inner = c.lock();
        inner.record.cgroups_path.clone().unwrap_or_else(|| {
            berth_oci::cgroups_path(
                &inner.record.host_config,
                &self.config().config.cgroup_parent,
                &c.id,
            )
        })
    }

    /// The start itself; the caller holds the container's operation lock. The network comes
    /// first (a bridged container's sandbox is made before its task, and runc joins it by
    /// path), and goes again when the start fails.
    pub(crate) async fn start_locked(&self, c: &Arc<Container>) -> Result<(), DaemonError> {
        let record = {
            let inner = c.lock();
            inner.record.state.can_start(&c.id)?;
            inner.record.clone()
        };
        let (netns, etc_from, bridged) = match mode(&record.host_config.network_mode) {
            Mode::Bridged => (Some(self.join_networks(c).await?), None, true),
            Mode::Container(id) => {
                let t = self.containers.get(&id)?;
                let tr = t.record();
                let pid = tr.state.pid();
                if !tr.state.running() || pid == 0 {
                    return Err(DaemonError::Conflict(Conflict::NotRunning(id.clone())));
                }
                let ns = if tr.network_settings.sandbox_key.is_empty() {
                    std::path::PathBuf::from(format!("/proc/{pid}/ns/net"))
                } else {
                    tr.network_settings.sandbox_key.clone().into()
                };
                (Some(ns), Some(tr), false)
            }
            Mode::Host | Mode::None => (None, None, false),
        };
        let result = self
            .start_task(c, record, netns.as_deref(), etc_from.as_ref())
            .await;
        if result.is_err() {
            self.release_volumes(c);
        }
        if result.is_err() && bridged {
            self.leave_networks(c).await;
            if let Err(e) = c.persist() {
                tracing::warn!(container = %c.id, error = %e, "cannot record the network's end");
            }
        }
        result
    }

    async fn start_task(
        &self,
        c: &Arc<Container>,
        record: super::Record,
        netns: Option<&std::path::Path>,
        etc_from: Option<&super::Record>,
    ) -> Result<(), DaemonError> {
        let snapshot = self.config();
        let runtime = snapshot.runtimes.get(&record.host_config.runtime)?;
        let image = self.images.get(&record.image)?;
        let layout = RootfsLayout::prepare(&image.layer_dirs, c.dir())?;
        let (passwd, group) = super::fs::user_files(super::fs::layers_of(&layout)?).await?;
        let user = berth_oci::resolve_user(
            &record.config.user,
            &passwd,
            &group,
            &record.host_config.group_add,
        )?;
        // `--network container:` shares the other container's hosts and resolv.conf.
        let files = etc_from.unwrap_or(&record);
        let etc_files = [
            (
                "/etc/hostname".to_string(),
                record.hostname_path.clone().into(),
            ),
            ("/etc/hosts".to_string(), files.hosts_path.clone().into()),
            (
                "/etc/resolv.conf".to_string(),
                files.resolv_conf_path.clone().into(),
            ),
        ];
        let host = self.host_facts();
        let user_mounts = self.mount_volumes(c, &record).await?;
        let spec = berth_oci::build_spec(berth_oci::SpecInput {
            id: &c.id,
            config: &record.config,
            host_config: &record.host_config,
            default_ulimits: &snapshot.config.default_ulimits,
            user: &user,
            host: host.as_ref(),
            etc_files: &etc_files,
            cgroup_parent: &snapshot.config.cgroup_parent,
            init_binary: init_binary().as_deref(),
            netns,
            mounts: &user_mounts,
        })?;
        self.ensure_apparmor(
            spec.process()
                .as_ref()
                .and_then(|p| p.apparmor_profile().as_deref()),
        )?;
        let process_json = spec
            .process()
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok());
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.display().to_string());
        let spec_json = serde_json::to_vec(&spec).map_err(|e| DaemonError::Task(e.to_string()))?;

        let fifo_dir = self.paths().fifo_dir(&c.id);
        let tty = record.config.tty;
        let io_err = |source| DaemonError::Io {
            path: fifo_dir.clone(),
            source,
        };
        let fifos =
            Fifos::create(&fifo_dir, "init", record.config.open_stdin, tty).map_err(io_err)?;
        let readers = Readers::open(&fifos).map_err(io_err)?;
        let log = c.open_log()?;

        let rootfs = vec![Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: overlay_options(&layout, &self.paths().data_root.join("empty")),
        }];
        let labels = HashMap::from([("berth.name".to_string(), record.name.clone())]);
        let client = self.containerd();
        let ctr = client
            .create_container(&c.id, spec_json, &runtime_spec(&runtime), labels)
            .await?;
        let mut task = match ctr.new_task(rootfs, &fifos.stdio(tty)).await {
            Ok(t) => t,
            Err(e) => {
                let cleanup = ctr.delete().await.err().map(DaemonError::from);
                return Err(self.start_failed(c, e, cleanup));
            }
        };
        let closer = task.clone();
        let copiers = spawn_copiers(c.io.clone(), readers, log, move || {
            tokio::spawn(async move {
                let _ = closer.close_stdin().await;
            })
        });
        // The handles are in place before the process starts: a process that ends at once
        // has its exit handled like any other.
        {
            let mut inner = c.lock();
            inner.ctr = Some(ctr.clone());
            inner.task = Some(task.clone());
            inner.copiers = Some(copiers);
            inner.record.process = process_json;
            inner.record.cgroups_path = cgroups_path;
        }
        /// Clears `starting` and wakes the exit handler however the start ends.
        struct Starting<'a>(&'a Container);
        impl Drop for Starting<'_> {
            fn drop(&mut self) {
                self.0.lock().starting = false;
                self.0.notify();
            }
        }
        c.lock().starting = true;
        let _starting = Starting(c);
        let pid = match task.start().await {
            Ok(pid) => pid,
            Err(e) => {
                let exit_already_handled = {
                    let mut inner = c.lock();
                    let handled = inner.task.is_none();
                    inner.ctr = None;
                    inner.task = None;
                    inner.copiers = None;
                    handled
                };
                if exit_already_handled {
                    // The process ran and its exit was handled (task deleted) before
                    // containerd answered Start, which then fails to read the task's state:
                    // the start succeeded.
                    tracing::debug!(container = %c.id, error = %e, "start answered after the exit");
                    let mut inner = c.lock();
                    inner.record.has_been_started = true;
                    inner.record.state.set_started_after_exit(now_rfc3339());
                    drop(inner);
                    c.persist()?;
                    self.container_event(c, "start", &[]);
                    return Ok(());
                }
                let cleanup = match (task.delete().await, ctr.delete().await) {
                    (Err(t), _) => Some(t.into()),
                    (Ok(_), Err(r)) => Some(r.into()),
                    (Ok(_), Ok(())) => None,
                };
                c.io.close_outputs();
                return Err(self.start_failed(c, e, cleanup));
            }
        };
        {
            let mut inner = c.lock();
            inner.record.has_been_started = true;
            inner.backoff.started = Some(std::time::Instant::now());
            if inner.task.is_some() {
                inner.record.state.set_running(pid, now_rfc3339());
                if super::health::Probe::of(&inner.record.config).is_some() {
                    inner.record.state.set_health_starting();
                }
            } else {
                // Its exit was handled while the start returned.
                inner.record.state.set_started_after_exit(now_rfc3339());
            }
        }
        c.persist()?;
        self.container_event(c, "start", &[]);
        if c.state().running() {
            self.start_health_monitor(c);
        }
        c.notify();
        tracing::info!(container = %c.id, pid, "started");
        Ok(())
    }

    /// Records a failed start (exit code and error, as dockerd does) and makes the error,
    /// classified once, here; a failed cleanup after it is logged and reported with it.
    fn start_failed(
        &self,
        c: &Container,
        e: berth_containerd::ContainerdError,
        cleanup: Option<DaemonError>,
    ) -> DaemonError {
        let err = DaemonError::start_failed(e);
        let (code, message) = match &err {
            DaemonError::StartFailed { kind, message } => (kind.exit_code(), message.clone()),
            other => (StartFailure::System.exit_code(), other.to_string()),
        };
        {
            let mut inner = c.lock();
            inner
                .record
                .state
                .set_start_failed(code, message, now_rfc3339());
        }
        if let Err(pe) = c.persist() {
            tracing::warn!(container = %c.id, error = %pe, "cannot record the failed start");
        }
        c.notify();
        err.with_cleanup(&c.id, cleanup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_runtime_options_become_the_runc_proto() {
        let r = ResolvedRuntime {
            shim: "io.containerd.runc.v2".into(),
            options: Some(ShimOptions::Runc(berth_runtimes::RuncOptions {
                binary_name: "/x/runc-args-abc".into(),
                ..Default::default()
            })),
        };
        let spec = runtime_spec(&r);
        assert_eq!(spec.shim, "io.containerd.runc.v2");
        assert_eq!(spec.options.unwrap().type_url, "containerd.runc.v1.Options");
    }
}
