use std::fs;
use std::path::{Path, PathBuf};

use crate::ImageError;
use crate::error::io;

/// A container's overlay: the image's layers below (bottom first), its own upper and work
/// folders above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsLayout {
    pub lowers: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl RootfsLayout {
    /// Creates (if missing) the upper and work folders under `container_dir`, with
    /// overlay2's modes: `fs` 0710, `upper` 0755 (it is the root of the container's file
    /// system, which users inside must traverse), `work` 0700. Existing folders keep theirs:
    /// a `chmod /` inside the container is the upper folder's mode.
    pub fn prepare(
        layer_dirs: &[PathBuf],
        container_dir: &Path,
    ) -> Result<RootfsLayout, ImageError> {
        let fs_dir = container_dir.join("fs");
        let upper = fs_dir.join("upper");
        let work = fs_dir.join("work");
        for (d, mode) in [(&fs_dir, 0o710), (&upper, 0o755), (&work, 0o700)] {
            match fs::create_dir(d) {
                Ok(()) => crate::files::dir_with_mode(d, mode).map_err(io(d))?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(d)(e)),
            }
        }
        Ok(RootfsLayout {
            lowers: layer_dirs.to_vec(),
            upper,
            work,
        })
    }
}

/// overlay mount options for a layout; the top layer comes first in `lowerdir`. An image with
/// no layers gets an empty folder as its only lower layer.
pub fn overlay_options(layout: &RootfsLayout, empty_lower: &Path) -> Vec<String> {
    let lowers: Vec<String> = if layout.lowers.is_empty() {
        vec![empty_lower.display().to_string()]
    } else {
        layout
            .lowers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect()
    };
    vec![
        format!("lowerdir={}", lowers.join(":")),
        format!("upperdir={}", layout.upper.display()),
        format!("workdir={}", layout.work.display()),
        "index=off".to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_layer_first() {
        let l = RootfsLayout {
            lowers: vec!["/l/1".into(), "/l/2".into()],
            upper: "/c/up".into(),
            work: "/c/wk".into(),
        };
        assert_eq!(
            overlay_options(&l, Path::new("/empty")),
            vec![
                "lowerdir=/l/2:/l/1",
                "upperdir=/c/up",
                "workdir=/c/wk",
                "index=off"
            ]
        );
    }
}
