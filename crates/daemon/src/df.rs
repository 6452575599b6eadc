//! `docker system df`: what images, containers and volumes take on disk.

use std::collections::BTreeMap;
use std::path::Path;

use berth_images::ImageRecord;

use crate::containers::Summary;
use crate::{Daemon, DaemonError};

/// An image with what `df` adds to it.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: ImageRecord,
    /// Containers created from it.
    pub containers: u64,
    /// Bytes of its layers that other images use too.
    pub shared_size: u64,
}

/// A container with its sizes.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub summary: Summary,
    /// Bytes written by the container (its upper folder).
    pub size_rw: u64,
    /// `size_rw` plus its image.
    pub size_root_fs: u64,
}

/// A volume with its size and users.
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub volume: berth_volumes::Volume,
    pub size: u64,
    /// Containers that use it.
    pub ref_count: usize,
}

/// What `GET /system/df` reports.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    /// Bytes of every stored layer, each once.
    pub layers_size: u64,
    pub images: Vec<ImageUsage>,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    /// The classic builder's cached steps.
    pub build_cache: Vec<crate::BuildCacheRecord>,
}

/// Bytes of the regular files under `dir` (links and folders count nothing; hard links once
/// per path, as `du --apparent-size` without `-l` would not, close enough for a report).
/// Walked by descriptor, so a running container swapping one of its folders for a link to
/// the host cannot make it count (or walk) the host's files, and without recursion.
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(root) = berth_inroot::Root::open(dir) else {
        return 0;
    };
    let Ok(fd) = root.fd().try_clone_to_owned() else {
        return 0;
    };
    let Ok(mut walk) = berth_inroot::walk::Walk::new(fd, Path::new("")) else {
        return 0;
    };
    let mut total = 0;
    while let Some(item) = walk.next() {
        let Ok(item) = item else {
            continue;
        };
        if item.meta.is_dir() {
            let _ = walk.descend(item);
        } else if item.meta.is_file() {
            total += item.meta.size;
        }
    }
    total
}

impl Daemon {
    /// The bytes a container wrote, and with its image.
    pub fn container_size(&self, record: &crate::Record) -> (u64, u64) {
        let rw = dir_size(
            &self
                .paths()
                .container_dir(&record.id)
                .join("fs")
                .join("upper"),
        );
        let image = self.images.get(&record.image).map_or(0, |i| i.size);
        (rw, rw + image)
    }

    /// `GET /system/df`.
    pub fn system_df(&self) -> Result<DiskUsage, DaemonError> {
        let images = self.images.list();
        let mut layer_users: BTreeMap<String, u64> = BTreeMap::new();
        for i in &images {
            for d in &i.config.rootfs.diff_ids {
                *layer_users.entry(d.clone()).or_default() += 1;
            }
        }
        let layers_size = layer_users.keys().map(|d| self.images.layer_size(d)).sum();
        let summaries = self.container_list(&crate::ListOptions {
            all: true,
            ..Default::default()
        })?;
        let mut per_image: BTreeMap<String, u64> = BTreeMap::new();
        for s in &summaries {
            *per_image.entry(s.record.image.clone()).or_default() += 1;
        }
        let images = images
            .into_iter()
            .map(|image| ImageUsage {
                containers: per_image.get(&image.id).copied().unwrap_or(0),
                shared_size: image
                    .config
                    .rootfs
                    .diff_ids
                    .iter()
                    .filter(|d| layer_users.get(*d).is_some_and(|n| *n > 1))
                    .map(|d| self.images.layer_size(d))
                    .sum(),
                image,
            })
            .collect();
        let containers = summaries
            .into_iter()
            .map(|summary| {
                let (size_rw, size_root_fs) = self.container_size(&summary.record);
                ContainerUsage {
                    summary,
                    size_rw,
                    size_root_fs,
                }
            })
            .collect();
        let volumes = self
            .volumes
            .list(&Default::default())
            .into_iter()
            .map(|volume| {
                let (size, ref_count) = self.volumes.usage(&volume.name);
                VolumeUsage {
                    volume,
                    size,
                    ref_count,
                }
            })
            .collect();
        Ok(DiskUsage {
            layers_size,
            images,
            containers,
            volumes,
            build_cache: self.build_cache(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_size_counts_file_bytes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/x"), vec![0u8; 100]).unwrap();
        std::fs::write(d.path().join("y"), vec![0u8; 20]).unwrap();
        std::os::unix::fs::symlink("y", d.path().join("l")).unwrap();
        assert_eq!(dir_size(d.path()), 120);
        assert_eq!(dir_size(&d.path().join("none")), 0);
    }
}
