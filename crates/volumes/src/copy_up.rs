//! Copy-up: an empty volume mounted where the image has files gets a copy of them first, as
//! dockerd's. The source is a folder found inside the container's root (berth-inroot), and
//! it is walked by descriptor: every entry is opened `O_NOFOLLOW` relative to its folder, so
//! a link in the image is copied as a link and never followed out of the root. What is made
//! in the volume is made relative to the volume's own descriptors, in a folder that was
//! empty.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use berth_inroot::walk::Walk;
use berth_inroot::{Meta, RootError, reopen};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fchmod, futimens, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, symlinkat};

use crate::VolumeError;

/// Whether the folder `dir` holds nothing.
pub fn is_empty(dir: &Path) -> Result<bool, VolumeError> {
    let mut entries = std::fs::read_dir(dir).map_err(VolumeError::io(dir))?;
    Ok(entries.next().is_none())
}

fn open_dir(at: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        at,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn owner_mode(fd: &OwnedFd, meta: &Meta) -> nix::Result<()> {
    fchown(
        fd.as_fd(),
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
    )?;
    // After the owner: a chown clears setuid and setgid.
    fchmod(fd.as_fd(), Mode::from_bits_truncate(meta.permissions()))
}

fn times(fd: &OwnedFd, meta: &Meta) -> nix::Result<()> {
    let t = TimeSpec::new(meta.mtime, 0);
    futimens(fd.as_fd(), &t, &t)
}

/// Copies the extended attributes of `src` (an `O_PATH` descriptor) onto `dest`. A file
/// system without them (or refusing one, `trusted.*` as not root) loses them, as `cp -a`.
fn xattrs(src: &OwnedFd, dest: &OwnedFd, dir: bool) {
    use xattr::FileExt;
    let flags = if dir {
        OFlag::O_RDONLY | OFlag::O_DIRECTORY
    } else {
        OFlag::O_RDONLY
    };
    let (Ok(s), Ok(d)) = (reopen(src, flags), dest.try_clone()) else {
        return;
    };
    let (s, d) = (File::from(s), File::from(d));
    let Ok(names) = s.list_xattr() else { return };
    for n in names {
        if let Ok(Some(v)) = s.get_xattr(&n)
            && let Err(e) = d.set_xattr(&n, &v)
        {
            tracing::debug!(xattr = ?n, error = %e, "xattr not copied");
        }
    }
}

/// Fills the empty folder `dest` with what is under the folder `src` (an `O_PATH`
/// descriptor found inside a root), and gives `dest` the owner, mode and times of `src`.
/// Returns how many entries were copied.
pub fn copy_up(src: OwnedFd, dest: &Path) -> Result<u64, VolumeError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: Errno| VolumeError::CopyUp {
            path: path.clone(),
            source: RootError::Io {
                path: path.clone(),
                source: e.into(),
            },
        }
    };
    let top = nix::fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err(dest))?;
    let src_meta = Meta::of(&src).map_err(err(Path::new("/")))?;
    let mut walk = Walk::new(
        src.try_clone().map_err(|e| VolumeError::io(dest)(e))?,
        Path::new("/"),
    )
    .map_err(|source| VolumeError::CopyUp {
        path: "/".into(),
        source,
    })?;
    let mut stack: Vec<OwnedFd> = vec![top.try_clone().map_err(VolumeError::io(dest))?];
    let mut dir_times: Vec<(OwnedFd, Meta)> = Vec::new();
    let mut copied = 0u64;
    while let Some(item) = walk.next() {
        let item = item.map_err(|source| VolumeError::CopyUp {
            path: dest.to_path_buf(),
            source,
        })?;
        stack.truncate(walk.depth());
        let Some(parent) = stack.last() else { break };
        let Some(name) = item.path.file_name().map(OsStr::to_os_string) else {
            continue;
        };
        let e = err(&item.path);
        let m = item.meta;
        copied += 1;
        if m.is_dir() {
            mkdirat(parent, name.as_os_str(), Mode::from_bits_truncate(0o700)).map_err(&e)?;
            let d = open_dir(parent, &name).map_err(&e)?;
            owner_mode(&d, &m).map_err(&e)?;
            xattrs(&item.fd, &d, true);
            let d2 = d.try_clone().map_err(VolumeError::io(dest))?;
            dir_times.push((d, m));
            walk.descend(item).map_err(|source| VolumeError::CopyUp {
                path: dest.to_path_buf(),
                source,
            })?;
            stack.push(d2);
        } else if m.is_file() {
            let out = openat(
                parent,
                name.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(&e)?;
            let input = reopen(&item.fd, OFlag::O_RDONLY).map_err(&e)?;
            let mut outf = File::from(out.try_clone().map_err(VolumeError::io(dest))?);
            std::io::copy(&mut File::from(input), &mut outf).map_err(|source| {
                VolumeError::CopyUp {
                    path: item.path.clone(),
                    source: RootError::Io {
                        path: item.path.clone(),
                        source,
                    },
                }
            })?;
            owner_mode(&out, &m).map_err(&e)?;
            xattrs(&item.fd, &out, false);
            times(&out, &m).map_err(&e)?;
        } else if m.is_symlink() {
            let target = readlinkat(&item.fd, "").map_err(&e)?;
            symlinkat(target.as_os_str(), parent, name.as_os_str()).map_err(&e)?;
            fchownat(
                parent,
                name.as_os_str(),
                Some(Uid::from_raw(m.uid)),
                Some(Gid::from_raw(m.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(&e)?;
        } else if m.is_fifo() || m.is_char_device() || m.is_block_device() {
            let kind = SFlag::from_bits_truncate(m.mode & SFlag::S_IFMT.bits());
            mknodat(
                parent,
                name.as_os_str(),
                kind,
                Mode::from_bits_truncate(m.permissions()),
                m.rdev,
            )
            .map_err(&e)?;
            fchownat(
                parent,
                name.as_os_str(),
                Some(Uid::from_raw(m.uid)),
                Some(Gid::from_raw(m.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(&e)?;
        }
        // Sockets are not copied, as archives do not hold them.
    }
    // The folders' times last: what was made in them changed them.
    for (d, m) in dir_times.iter().rev() {
        times(d, m).map_err(err(dest))?;
    }
    owner_mode(&top, &src_meta).map_err(err(dest))?;
    xattrs(&src, &top, true);
    times(&top, &src_meta).map_err(err(dest))?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_inroot::{Found, Root, Tree};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn source_dir(root: &Path, path: &str) -> OwnedFd {
        match Root::open(root)
            .unwrap()
            .lookup(Path::new(path), true)
            .unwrap()
        {
            Some(Found::Dir(mut d)) => d.swap_remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn copies_files_folders_links_and_modes() {
        let img = tempfile::tempdir().unwrap();
        let data = img.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("seed"), b"seeded").unwrap();
        std::fs::set_permissions(data.join("seed"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::write(data.join("sub/deep"), b"deep").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", data.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", data.join("up")).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
        let vol = tempfile::tempdir().unwrap();
        assert!(is_empty(vol.path()).unwrap());
        let n = copy_up(source_dir(img.path(), "/data"), vol.path()).unwrap();
        assert_eq!(n, 5);
        assert_eq!(std::fs::read(vol.path().join("seed")).unwrap(), b"seeded");
        assert_eq!(std::fs::read(vol.path().join("sub/deep")).unwrap(), b"deep");
        let m = std::fs::metadata(vol.path().join("seed")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o640);
        assert_eq!(
            std::fs::read_link(vol.path().join("abs")).unwrap(),
            Path::new("/etc/shadow"),
            "a link is copied as a link, never followed"
        );
        assert_eq!(std::fs::metadata(vol.path()).unwrap().mode() & 0o777, 0o750);
        assert!(!is_empty(vol.path()).unwrap());
    }

    #[test]
    fn a_link_to_the_host_resolves_inside_the_root() {
        // The image's /data is a link to `/`: the copy is of the image's root, not the host's.
        let img = tempfile::tempdir().unwrap();
        std::fs::write(img.path().join("only-in-image"), b"x").unwrap();
        std::os::unix::fs::symlink("/", img.path().join("data")).unwrap();
        let vol = tempfile::tempdir().unwrap();
        copy_up(source_dir(img.path(), "/data"), vol.path()).unwrap();
        assert!(vol.path().join("only-in-image").exists());
        assert!(!vol.path().join("etc").exists() || img.path().join("etc").exists());
    }

    #[test]
    #[ignore = "needs root: chown"]
    fn owners_are_kept() {
        let img = tempfile::tempdir().unwrap();
        let data = img.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("f"), b"x").unwrap();
        nix::unistd::chown(
            &data.join("f"),
            Some(Uid::from_raw(1000)),
            Some(Gid::from_raw(1000)),
        )
        .unwrap();
        nix::unistd::chown(&data, Some(Uid::from_raw(1000)), Some(Gid::from_raw(1000))).unwrap();
        let vol = tempfile::tempdir().unwrap();
        copy_up(source_dir(img.path(), "/data"), vol.path()).unwrap();
        assert_eq!(std::fs::metadata(vol.path().join("f")).unwrap().uid(), 1000);
        assert_eq!(std::fs::metadata(vol.path()).unwrap().uid(), 1000);
    }
}
