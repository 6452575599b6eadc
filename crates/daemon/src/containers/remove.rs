//! `docker rm`, and forgetting a stopped container (also after `--rm`).

use std::sync::Arc;
use std::time::Duration;

use super::Container;
use super::state::Conflict;
use crate::{Daemon, DaemonError};

impl Daemon {
    /// `docker rm` (`force` kills a running container first).
    pub async fn container_remove(&self, name: &str, force: bool) -> Result<(), DaemonError> {
        self.container_remove_with(name, force, false).await
    }

    /// `docker rm [-f] [-v]`: `volumes` also removes its anonymous volumes (never named
    /// ones, nor one another container uses).
    pub async fn container_remove_with(
        &self,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let _op = c.op.lock().await;
        c.state().can_remove(&c.id, force)?;
        self.cancel_restart(&c, true);
        if c.state().running() {
            let task = Self::running_task(&c)?;
            if c.state().paused() {
                crate::log_containerd_cleanup("thawing before SIGKILL", &c.id, task.resume().await);
            }
            if let Err(e) = task.kill(9, true).await
                && !e.is_not_found()
            {
                return Err(e.into());
            }
            if !Self::wait_stopped(&c, Some(Duration::from_secs(30))).await {
                return Err(Conflict::NotKilled(c.id.clone()).into());
            }
        }
        self.remove_files_with(&c, volumes)
    }

    /// `docker rm --link /PARENT/ALIAS`: the parent forgets that link; no container goes.
    pub async fn container_remove_link(&self, name: &str) -> Result<(), DaemonError> {
        let full = format!("/{}", name.trim_start_matches('/'));
        let Some((parent, alias)) = full.rsplit_once('/').filter(|(p, _)| !p.is_empty()) else {
            // A container's own name is no link (and a name of nothing, nothing at all).
            self.containers.get(name)?;
            return Err(DaemonError::Conflict(Conflict::DefaultLinkName));
        };
        let c = self.containers.get(parent).map_err(|_| {
            DaemonError::NoSuchContainer(format!("Cannot get parent {parent} for link name {full}"))
        })?;
        let _op = c.op.lock().await;
        {
            let mut inner = c.lock();
            if let Some(links) = inner.record.host_config.links.as_mut() {
                links.retain(|l| {
                    let (_, a) = l.split_once(':').unwrap_or((l, l));
                    a.trim_start_matches('/') != alias
                });
            }
        }
        c.persist()
    }

    /// Forgets a stopped container: its files, its names, its execs, and its claim on its
    /// volumes (its anonymous ones removed if it was `--rm`).
    pub(crate) fn remove_files(&self, c: &Arc<Container>) -> Result<(), DaemonError> {
        let auto_remove = c.record().host_config.auto_remove;
        self.remove_files_with(c, auto_remove)
    }

    /// `remove_files`; `volumes`: its anonymous volumes go too. Under the record lock, so
    /// no record write lands after it and no rename reserves a name for it meanwhile.
    pub(crate) fn remove_files_with(
        &self,
        c: &Arc<Container>,
        volumes: bool,
    ) -> Result<(), DaemonError> {
        let graveyard = self
            .paths()
            .containers_dir()
            .join(format!(".removing-{}", c.id));
        {
            let _disk = c.disk_lock();
            if c.is_removed() {
                return Ok(());
            }
            let before = {
                let mut inner = c.lock();
                inner.record.state.begin_removal()
            };
            let dir = c.dir().to_path_buf();
            if let Err(source) = std::fs::rename(&dir, &graveyard) {
                c.lock().record.state.cancel_removal(before);
                return Err(DaemonError::Io { path: dir, source });
            }
            self.containers.remove(&c.id);
            c.lock().removed = true;
        }
        for e in c.exec_ids() {
            self.forget_exec(&e);
        }
        let mounts = super::mounts::record_mounts(&c.record());
        self.unclaim_volumes(&c.id, &mounts, volumes);
        self.container_event(c, "destroy", &[]);
        c.notify();
        if let Err(e) = std::fs::remove_dir_all(&graveyard) {
            tracing::warn!(path = %graveyard.display(), error = %e, "cannot remove a container's files");
        }
        Ok(())
    }
}
