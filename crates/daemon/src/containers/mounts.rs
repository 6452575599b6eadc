//! A container's mounts: planned at create (binds, volumes, `--mount`, the image's
//! `VOLUME`s, `--volumes-from`), volumes made and claimed then; mounted, filled from the image
//! (copy-up) and turned into the spec's mounts at start; released at exit; bound into the
//! views `docker cp` reads and writes through.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_inroot::{Found, Root, Tree};
use berth_model::{ContainerConfig, HostConfig};
use berth_oci::UserMount;
use berth_volumes::{CreateOptions, MountKind, MountPoint, VolumeError, spec};
use nix::mount::MsFlags;

use super::{Container, Record};
use crate::{Daemon, DaemonError};

/// The record's mount points; a record written before berth had volumes has only its binds.
pub(crate) fn record_mounts(r: &Record) -> Vec<MountPoint> {
    if !r.mount_points.is_empty() || r.host_config.binds.is_empty() {
        return r.mount_points.clone();
    }
    spec::plan(&[], Vec::new(), &r.host_config.binds, &[], "").unwrap_or_default()
}

/// A mount of `source` (a host path, or `/proc/self/fd/N`) on `target`, recursive unless
/// asked otherwise.
fn bind(source: &Path, target: &Path, recursive: bool) -> nix::Result<()> {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    nix::mount::mount(Some(source), target, None::<&str>, flags, None::<&str>)
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// What `path` is inside the root at `root`, followed: a folder or another file.
fn lookup_in(root: &Path, path: &str) -> Result<Option<(OwnedFd, bool)>, DaemonError> {
    let r = Root::open(root)?;
    Ok(match r.lookup(Path::new(path), true)? {
        Some(Found::Dir(mut d)) if !d.is_empty() => Some((d.swap_remove(0), true)),
        Some(Found::Entry { fd, .. }) => Some((fd, false)),
        _ => None,
    })
}

impl Daemon {
    /// At create: the container's mount points, checked as dockerd checks them: the image's
    /// and the request's `Volumes`, `--volumes-from`, `Binds`, `Mounts`.
    pub(crate) fn plan_mounts(
        &self,
        config: &ContainerConfig,
        host: &HostConfig,
    ) -> Result<Vec<MountPoint>, DaemonError> {
        let image_volumes: Vec<String> = config
            .volumes
            .iter()
            .flat_map(|v| v.keys().cloned())
            .collect();
        let mut inherited = Vec::new();
        for from in &host.volumes_from {
            let (name, rw) = spec::parse_volumes_from(from)?;
            let source = self.containers.get(name)?;
            for mut mp in record_mounts(&source.record()) {
                if mp.kind == MountKind::Tmpfs {
                    continue;
                }
                if let Some(rw) = rw {
                    mp.rw = rw;
                    mp.mode = if rw { "rw" } else { "ro" }.into();
                }
                inherited.push(mp);
            }
        }
        let planned = spec::plan(
            &image_volumes,
            inherited,
            &host.binds,
            &host.mounts,
            &host.volume_driver,
        )?;
        for (mp, m) in planned
            .iter()
            .filter(|mp| mp.kind == MountKind::Bind)
            .filter_map(|mp| {
                host.mounts
                    .iter()
                    .find(|m| m.typ == "bind" && m.target.trim_end_matches('/') == mp.destination)
                    .map(|m| (mp, m))
            })
        {
            if !mp.create_source && !Path::new(&m.source).exists() {
                return Err(VolumeError::InvalidMount {
                    typ: "bind".into(),
                    reason: format!("bind source path does not exist: {}", m.source),
                }
                .into());
            }
        }
        Ok(planned)
    }

    /// At create, once the container has its ID: the volumes its mount points name are made
    /// (an anonymous one gets its name here) and `id` recorded as their user. On an error,
    /// what was done is undone.
    pub(crate) fn claim_volumes(
        &self,
        id: &str,
        mounts: &mut [MountPoint],
    ) -> Result<(), DaemonError> {
        for i in 0..mounts.len() {
            if mounts[i].kind != MountKind::Volume {
                continue;
            }
            let mp = &mounts[i];
            let made = self.volumes.create(CreateOptions {
                name: (!mp.name.is_empty()).then(|| mp.name.clone()),
                driver: mp.driver.clone(),
                labels: mp.volume_labels.clone(),
                options: mp.driver_options.clone(),
                user: Some(id.to_string()),
            });
            let (v, created) = match made {
                Ok(x) => x,
                Err(e) => {
                    self.unclaim_volumes(id, &mounts[..i], true);
                    return Err(e.into());
                }
            };
            if created {
                self.volume_event("create", &v.name, &v.driver, &[]);
            }
            let mp = &mut mounts[i];
            mp.name = v.name;
            mp.driver = v.driver;
            mp.source = v.mountpoint.display().to_string();
        }
        Ok(())
    }

    /// The container `id` no longer names its volumes; with `remove_anonymous`, its
    /// anonymous volumes that nothing else uses go (named ones never do).
    pub(crate) fn unclaim_volumes(&self, id: &str, mounts: &[MountPoint], remove_anonymous: bool) {
        for mp in mounts
            .iter()
            .filter(|m| m.kind == MountKind::Volume && !m.name.is_empty())
        {
            self.volumes.remove_ref(&mp.name, id);
            if !remove_anonymous {
                continue;
            }
            let Ok(v) = self.volumes.get(&mp.name) else {
                continue;
            };
            if !v.anonymous {
                continue;
            }
            match self.volumes.remove(&v.name, false) {
                Ok(()) => self.volume_event("destroy", &v.name, &v.driver, &[]),
                Err(VolumeError::InUse { .. }) => {}
                Err(e) => {
                    tracing::warn!(volume = %v.name, error = %e, "cannot remove an anonymous volume")
                }
            }
        }
    }

    /// At start: every volume mounted for this container (its driver options on first use),
    /// an empty one first filled from the image at its destination (unless `nocopy`), a
    /// subpath bound where runc can take it; the spec's mounts, parents first. On an error,
    /// what was mounted is released.
    pub(crate) async fn mount_volumes(
        &self,
        c: &Arc<Container>,
        record: &Record,
    ) -> Result<Vec<UserMount>, DaemonError> {
        let r = self.mount_volumes_inner(c, record).await;
        if r.is_err() {
            self.release_volumes(c);
        }
        r
    }

    async fn mount_volumes_inner(
        &self,
        c: &Arc<Container>,
        record: &Record,
    ) -> Result<Vec<UserMount>, DaemonError> {
        let mut mounts = record_mounts(record);
        spec::sorted_for_mounting(&mut mounts);
        let mut view: Option<super::fs::MergedView> = None;
        let mut out = Vec::with_capacity(mounts.len());
        for (i, mp) in mounts.iter().enumerate() {
            let ro = (!mp.rw).then(|| "ro".to_string());
            let rec = if mp.non_recursive { "bind" } else { "rbind" };
            match mp.kind {
                MountKind::Tmpfs => out.push(UserMount {
                    destination: mp.destination.clone(),
                    typ: "tmpfs".into(),
                    source: "tmpfs".into(),
                    options: spec::tmpfs_options(mp),
                }),
                MountKind::Bind => {
                    if mp.create_source && !Path::new(&mp.source).exists() {
                        std::fs::create_dir_all(&mp.source).map_err(|source| DaemonError::Io {
                            path: mp.source.clone().into(),
                            source,
                        })?;
                    }
                    out.push(UserMount {
                        destination: mp.destination.clone(),
                        typ: "bind".into(),
                        source: mp.source.clone(),
                        options: [rec.to_string(), mp.propagation_for_spec().to_string()]
                            .into_iter()
                            .chain(ro)
                            .collect(),
                    });
                }
                MountKind::Volume => {
                    let (v, _) = self.volumes.mount(&mp.name, &c.id)?;
                    self.volume_event(
                        "mount",
                        &v.name,
                        &v.driver,
                        &[
                            ("container", c.id.clone()),
                            ("destination", mp.destination.clone()),
                            ("propagation", mp.propagation.clone()),
                            ("read/write", mp.rw.to_string()),
                        ],
                    );
                    if mp.copy_data && berth_volumes::copy_up::is_empty(&v.mountpoint)? {
                        if view.is_none() {
                            view = Some(self.view_of(c, false, false)?);
                        }
                        if let Some(vw) = &view
                            && let Some((src, true)) = lookup_in(&vw.root, &mp.destination)?
                        {
                            let (store, vol) = (self.volumes.clone(), v.clone());
                            let n = tokio::task::spawn_blocking(move || {
                                store.copy_up_if_empty(&vol, src)
                            })
                            .await
                            .map_err(|e| DaemonError::Task(e.to_string()))??;
                            tracing::debug!(volume = %v.name, entries = n, "copied up");
                        }
                    }
                    let source = if mp.subpath.is_empty() {
                        v.mountpoint.clone()
                    } else {
                        self.bind_subpath(&c.id, i, &v, &mp.subpath)?
                    };
                    out.push(UserMount {
                        destination: mp.destination.clone(),
                        typ: "bind".into(),
                        source: source.display().to_string(),
                        options: [rec.to_string(), mp.propagation_for_spec().to_string()]
                            .into_iter()
                            .chain(ro)
                            .collect(),
                    });
                }
            }
        }
        drop(view);
        Ok(out)
    }

    /// The subpath of a volume, resolved inside the volume (no link in it leads out) and
    /// bound under `<exec-root>/subpaths/<id>/` for runc to take.
    fn bind_subpath(
        &self,
        id: &str,
        index: usize,
        v: &berth_volumes::Volume,
        subpath: &str,
    ) -> Result<PathBuf, DaemonError> {
        let missing = || VolumeError::Subpath {
            name: v.name.clone(),
            path: subpath.to_string(),
            source: berth_inroot::RootError::Io {
                path: subpath.into(),
                source: std::io::ErrorKind::NotFound.into(),
            },
        };
        let (fd, is_dir) = lookup_in(&v.mountpoint, subpath)?.ok_or_else(missing)?;
        let dir = self.paths().subpaths_dir(id);
        let target = dir.join(index.to_string());
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| DaemonError::Io { path: p, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        if is_dir {
            std::fs::create_dir_all(&target).map_err(io(&target))?;
        } else {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&target)
                .map_err(io(&target))?;
        }
        bind(&fd_path(&fd), &target, true).map_err(|e| DaemonError::Io {
            path: target.clone(),
            source: e.into(),
        })?;
        Ok(target)
    }

    /// The container stopped (or its start failed): its volumes are released (and
    /// unmounted once no running container uses them), its subpath binds undone.
    pub(crate) fn release_volumes(&self, c: &Container) {
        let record = c.record();
        for mp in record_mounts(&record)
            .iter()
            .filter(|m| m.kind == MountKind::Volume && !m.name.is_empty())
        {
            match self.volumes.unmount(&mp.name, &c.id) {
                Ok(None) => {}
                Ok(Some(_)) => self.volume_event(
                    "unmount",
                    &mp.name,
                    &mp.driver,
                    &[("container", c.id.clone())],
                ),
                Err(e) => tracing::warn!(volume = %mp.name, error = %e, "cannot unmount"),
            }
        }
        let dir = self.paths().subpaths_dir(&c.id);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            }
            crate::log_io_cleanup("subpath mounts", &dir, std::fs::remove_dir_all(&dir));
        }
    }

    /// A container restore found running: its volumes count it as a user again.
    pub(crate) fn adopt_volumes(&self, c: &Container) {
        for mp in record_mounts(&c.record())
            .iter()
            .filter(|m| m.kind == MountKind::Volume && !m.name.is_empty())
        {
            if let Err(e) = self.volumes.mount(&mp.name, &c.id) {
                tracing::warn!(volume = %mp.name, error = %e, "cannot re-mount a restored container's volume");
            }
        }
    }

    /// Binds the container's volumes and binds into a view of its files (mounted at
    /// `root`), each at its destination resolved inside the view, so `docker cp` reads and
    /// writes through them. A destination the read-only view lacks is skipped; a writable
    /// view gets it made. (A read-only mount point is not made read-only in a writable view.)
    pub(crate) fn mount_into_view(
        &self,
        record: &Record,
        root: &Path,
        writable: bool,
    ) -> Result<(), DaemonError> {
        let mut mounts = record_mounts(record);
        spec::sorted_for_mounting(&mut mounts);
        let view = Root::open(root)?;
        for mp in mounts.iter().filter(|m| m.kind != MountKind::Tmpfs) {
            let source = match mp.kind {
                MountKind::Volume => match self.volumes.get(&mp.name) {
                    Ok(v) if mp.subpath.is_empty() => v.mountpoint,
                    Ok(v) => match lookup_in(&v.mountpoint, &mp.subpath)? {
                        Some((fd, _)) => {
                            self.bind_view_entry(&view, mp, &fd_path(&fd), writable)?;
                            continue;
                        }
                        None => continue,
                    },
                    Err(_) => continue,
                },
                _ => PathBuf::from(&mp.source),
            };
            if !source.exists() {
                continue;
            }
            self.bind_view_entry(&view, mp, &source, writable)?;
        }
        Ok(())
    }

    fn bind_view_entry(
        &self,
        view: &Root,
        mp: &MountPoint,
        source: &Path,
        writable: bool,
    ) -> Result<(), DaemonError> {
        let dest = Path::new(&mp.destination);
        let target = match view.lookup(dest, true)? {
            Some(Found::Dir(mut d)) if !d.is_empty() => d.swap_remove(0),
            Some(Found::Entry { fd, .. }) => fd,
            _ if writable && source.is_dir() => view.mkdir_all(dest)?,
            _ => return Ok(()),
        };
        bind(source, &fd_path(&target), !mp.non_recursive).map_err(|e| DaemonError::Io {
            path: dest.into(),
            source: e.into(),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_from_before_volumes_mounts_its_binds() {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "Schema": 1, "Id": "x", "Name": "n", "Created": "", "Path": "true", "Args": [],
            "Config": {}, "HostConfig": {"Binds": ["/srv:/data:ro"]}, "Image": "sha256:x",
            "State": serde_json::to_value(super::super::State::new()).unwrap(), "RestartCount": 0, "HasBeenStarted": false, "LogPath": "",
            "HostnamePath": "", "HostsPath": "", "ResolvConfPath": ""
        }))
        .unwrap();
        let m = record_mounts(&r);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].kind, m[0].source.as_str(), m[0].rw),
            (MountKind::Bind, "/srv", false)
        );
        r.mount_points = vec![spec::parse_bind("v1:/v", "").unwrap()];
        assert_eq!(
            record_mounts(&r)[0].name,
            "v1",
            "the planned ones when there are some"
        );
    }
}
