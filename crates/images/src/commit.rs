//! `docker commit`: a container's upper folder becomes a new layer on its image.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::io;
use crate::{
    ContainerConfig, HistoryEntry, ImageError, ImageId, ImageStore, Reference, apply_changes,
};

/// What `docker commit` adds.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub reference: Option<Reference>,
    pub comment: String,
    pub author: String,
    pub changes: Vec<String>,
    /// The container's config, which becomes the image's.
    pub config: ContainerConfig,
    /// The container's command, for the history entry.
    pub created_by: String,
    pub container_id: String,
}

/// Writes the overlay upper folder `upper` as a layer tar: overlay whiteouts (0/0 character
/// devices) become `.wh.NAME` files and opaque folders get `.wh..wh..opq`. The folder is
/// walked by descriptor, so a running container changing it cannot lead the walk out.
pub(crate) fn upper_to_tar(upper: &Path, out: impl Write) -> Result<(), ImageError> {
    let mut b = tar::Builder::new(out);
    let root = berth_inroot::Root::open(upper).map_err(|e| root_err(upper, e))?;
    let dir = root
        .fd()
        .try_clone_to_owned()
        .map_err(|source| ImageError::Io {
            path: upper.into(),
            source,
        })?;
    berth_inroot::tar_out::TarWriter::new(
        &mut b,
        berth_inroot::tar_out::TarOptions {
            overlay_whiteouts: true,
        },
    )
    .append_contents(&dir, Path::new(""))
    .map_err(|e| root_err(upper, e))?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(ImageError::Stream)
}

fn root_err(upper: &Path, e: berth_inroot::RootError) -> ImageError {
    ImageError::Io {
        path: upper.into(),
        source: std::io::Error::other(e),
    }
}

impl ImageStore {
    /// Stores an overlay upper folder as a layer (whiteouts and opaque folders in Docker's
    /// form) and returns its diff ID: a build step's changes.
    pub fn layer_from_upper(&self, upper: &Path) -> Result<String, ImageError> {
        let work = self.tmp_dir()?;
        let tar_path = work.join("step.tar");
        let result = (|| {
            let f = fs::File::create(&tar_path).map_err(io(&tar_path))?;
            upper_to_tar(upper, std::io::BufWriter::new(f))?;
            let f = fs::File::open(&tar_path).map_err(io(&tar_path))?;
            self.put_layer(std::io::BufReader::new(f))
        })();
        let _ = fs::remove_dir_all(&work);
        result
    }

    /// A new image: `parent`'s layers plus the container's changes from `upper`.
    pub fn commit(
        &self,
        parent: &str,
        upper: &Path,
        opts: &CommitOptions,
    ) -> Result<ImageId, ImageError> {
        let base = self.get(parent)?;
        let work = self.tmp_dir()?;
        let tar_path = work.join("commit.tar");
        let result = (|| {
            let f = fs::File::create(&tar_path).map_err(io(&tar_path))?;
            upper_to_tar(upper, std::io::BufWriter::new(f))?;
            let f = fs::File::open(&tar_path).map_err(io(&tar_path))?;
            self.put_layer(f)
        })();
        let _ = fs::remove_dir_all(&work);
        let diff_id = result?;

        let mut config = base.config.clone();
        let mut container = opts.config.clone();
        apply_changes(&mut container, &opts.changes)?;
        config.config = container;
        config.rootfs.diff_ids.push(diff_id);
        let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        config.created = Some(now.clone());
        config.author = opts.author.clone();
        config.comment = opts.comment.clone();
        config.history.push(HistoryEntry {
            created: Some(now),
            created_by: opts.created_by.clone(),
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            empty_layer: false,
        });
        config.extra.insert(
            "container".into(),
            serde_json::Value::String(opts.container_id.clone()),
        );
        let raw = serde_json::to_vec(&config).map_err(|e| ImageError::Stream(e.into()))?;
        let tags: Vec<Reference> = opts.reference.iter().cloned().collect();
        // The container's image is the new one's parent, as dockerd records it.
        self.put_child_image(&raw, Some(&base.id), &tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(upper: &Path) -> Vec<String> {
        let mut tar = Vec::new();
        upper_to_tar(upper, &mut tar).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn upper_folder_becomes_a_layer() {
        let d = tempfile::tempdir().unwrap();
        let upper = d.path().join("upper");
        fs::create_dir_all(upper.join("etc/sub")).unwrap();
        fs::write(upper.join("etc/new.conf"), "x").unwrap();
        std::os::unix::fs::symlink("/", upper.join("etc/root")).unwrap();
        assert_eq!(
            names_in(&upper),
            ["etc", "etc/new.conf", "etc/root", "etc/sub"]
        );
    }

    #[test]
    #[ignore = "needs root: mknod of a whiteout, trusted.* xattrs"]
    fn whiteouts_and_opaque_folders_become_docker_whiteout_files() {
        let d = tempfile::tempdir().unwrap();
        let upper = d.path().join("upper");
        fs::create_dir_all(upper.join("etc/opaque")).unwrap();
        fs::write(upper.join("etc/new.conf"), "x").unwrap();
        nix::sys::stat::mknod(
            &upper.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        xattr::set(upper.join("etc/opaque"), "trusted.overlay.opaque", b"y").unwrap();
        assert_eq!(
            names_in(&upper),
            [
                "etc",
                "etc/.wh.gone",
                "etc/new.conf",
                "etc/opaque",
                "etc/opaque/.wh..wh..opq",
            ]
        );
    }

    #[test]
    fn commit_adds_a_layer_and_keeps_the_parents() {
        let d = tempfile::tempdir().unwrap();
        let s = ImageStore::open(d.path().join("store")).unwrap();
        let parent = s
            .import(
                &crate::store::tests::tar_with(&[("bin/sh", "sh")])[..],
                &Default::default(),
            )
            .unwrap();
        let upper = d.path().join("upper");
        fs::create_dir_all(upper.join("srv")).unwrap();
        fs::write(upper.join("srv/data"), "kept").unwrap();
        let id = s
            .commit(
                &parent,
                &upper,
                &CommitOptions {
                    reference: Some(Reference::parse("acc/committed:1").unwrap()),
                    changes: vec!["ENV A=1".into()],
                    comment: "snap".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        let r = s.get(&id).unwrap();
        assert_eq!(r.layer_dirs.len(), 2);
        assert_eq!(
            fs::read_to_string(r.layer_dirs[1].join("srv/data")).unwrap(),
            "kept"
        );
        assert_eq!(r.config.config.env, Some(vec!["A=1".to_string()]));
        assert_eq!(r.config.comment, "snap");
        assert_eq!(s.resolve("acc/committed:1").unwrap(), id);
        // The image committed from is the parent, as dockerd records it.
        assert_eq!(r.parent.as_deref(), Some(parent.as_str()));
        assert!(s.get(&parent).unwrap().has_children);
    }
}
