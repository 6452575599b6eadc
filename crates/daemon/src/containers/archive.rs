//! `docker cp` out of a container and `docker export`: tar streams of its files as its
//! processes see them (upper folder over the image's layers, mounted read-only).

use std::path::Path;

use berth_images::RootfsLayout;
use tokio::io::DuplexStream;
use tokio_util::io::SyncIoBridge;

use berth_inroot::tar_out::{TarOptions, TarWriter};
use berth_inroot::{Meta, Root, Tree};

use super::fs::MergedView;
use crate::{Daemon, DaemonError};

/// What `X-Docker-Container-Path-Stat` says of a path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits: permissions, plus 1<<31 for a folder, 1<<27 for a link.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

fn go_mode(m: &Meta) -> u32 {
    let mut mode = m.permissions() & 0o777;
    if m.is_dir() {
        mode |= 1 << 31;
    }
    if m.is_symlink() {
        mode |= 1 << 27;
    }
    mode
}

impl Daemon {
    fn merged_view(&self, name: &str, with_mounts: bool) -> Result<MergedView, DaemonError> {
        let c = self.containers.get(name)?;
        self.view_of(&c, false, with_mounts)
    }

    /// Mounts a view of a container's files under `<exec-root>/views/`; `with_mounts`: its
    /// volumes and binds bound in it at their destinations.
    pub(crate) fn view_of(
        &self,
        c: &super::Container,
        writable: bool,
        with_mounts: bool,
    ) -> Result<MergedView, DaemonError> {
        let image = self.images.get(&c.record().image)?;
        let layout = RootfsLayout::prepare(&image.layer_dirs, c.dir())?;
        let at = self
            .paths()
            .exec_root
            .join("views")
            .join(super::random_hex(8));
        let empty = self.paths().data_root.join("empty");
        let view = MergedView::mount(&layout, at.clone(), writable.then_some(empty.as_path()))
            .map_err(|source| DaemonError::Io { path: at, source })?;
        // Paths under a volume or a bind resolve in it, as the container sees them.
        if with_mounts {
            self.mount_into_view(&c.record(), &view.root, writable)?;
        }
        Ok(view)
    }

    /// Stat of `path` in the container, and (unless `stat_only`) a tar stream of it. The
    /// path resolves inside the container's root as its processes would resolve it, the
    /// last component not followed (unless it ends in `/`), as dockerd's; the tree is walked
    /// by descriptor, so no link in it, nor one made while it is read, reaches the host.
    pub fn container_archive(
        &self,
        name: &str,
        path: &str,
        stat_only: bool,
    ) -> Result<(PathStat, Option<DuplexStream>), DaemonError> {
        let view = self.merged_view(name, true)?;
        let root = Root::open(&view.root)?;
        let not_found = || {
            DaemonError::NotFoundPath(format!(
                "Could not find the file {path} in container {name}"
            ))
        };
        let found = root.lookup(Path::new(path), false)?.ok_or_else(not_found)?;
        let m = found.meta().map_err(|e| DaemonError::Io {
            path: path.into(),
            source: e.into(),
        })?;
        let base = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "/".to_string());
        let stat = PathStat {
            name: base.clone(),
            size: m.size as i64,
            mode: go_mode(&m),
            mtime: humantime::format_rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(m.mtime.max(0) as u64),
            )
            .to_string(),
            link_target: found
                .link_target()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        };
        if stat_only {
            return Ok((stat, None));
        }
        let (reader, writer) = tokio::io::duplex(1 << 16);
        let writer = SyncIoBridge::new(writer);
        tokio::task::spawn_blocking(move || {
            let mut b = tar::Builder::new(writer);
            let r = TarWriter::new(&mut b, TarOptions::default())
                .append(found, Path::new(&base))
                .and_then(|()| b.finish().map_err(berth_inroot::RootError::Stream));
            if let Err(e) = r {
                tracing::warn!(error = %e, "archive stopped");
            }
            drop(view);
        });
        Ok((stat, Some(reader)))
    }

    /// `docker export`: the whole file system as a tar stream, walked by descriptor.
    pub fn container_export(&self, name: &str) -> Result<DuplexStream, DaemonError> {
        // As dockerd's: the container's own files, not its volumes.
        let view = self.merged_view(name, false)?;
        let root = Root::open(&view.root)?;
        let dir = root
            .fd()
            .try_clone_to_owned()
            .map_err(|source| DaemonError::Io {
                path: view.root.clone(),
                source,
            })?;
        let (reader, writer) = tokio::io::duplex(1 << 16);
        let writer = SyncIoBridge::new(writer);
        tokio::task::spawn_blocking(move || {
            let mut b = tar::Builder::new(writer);
            let r = TarWriter::new(&mut b, TarOptions::default())
                .append_contents(&dir, Path::new(""))
                .and_then(|()| b.finish().map_err(berth_inroot::RootError::Stream));
            if let Err(e) = r {
                tracing::warn!(error = %e, "export stopped");
            }
            drop(view);
        });
        Ok(reader)
    }
}
