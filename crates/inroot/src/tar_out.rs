//! Tar streams of a tree walked by file descriptor: every entry is opened `O_NOFOLLOW`
//! relative to its folder's descriptor, so a container that swaps a folder for a link while
//! it is archived cannot make the walk leave its root (the race of CVE-2018-15664). Used by
//! `docker cp` out, `docker export` and `docker commit`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, readlinkat};
use nix::sys::stat::Mode;

use crate::resolve::{Meta, is_opaque, reopen};
use crate::walk::Walk;
use crate::{Found, RootError};

/// How a tree is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct TarOptions {
    /// The tree is an overlay upper folder: its whiteouts (0/0 character devices) become
    /// `.wh.NAME` files and opaque folders get a `.wh..wh..opq` entry, as in an image layer.
    pub overlay_whiteouts: bool,
}

/// Writes tar entries of trees into a builder.
pub struct TarWriter<'a, W: Write> {
    b: &'a mut tar::Builder<W>,
    opts: TarOptions,
    /// Files with several links already written, by (device, inode): later ones become
    /// hard links to the first, as Docker's archives do.
    seen: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> std::fmt::Debug for TarWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarWriter")
            .field("opts", &self.opts)
            .finish()
    }
}

impl<'a, W: Write> TarWriter<'a, W> {
    pub fn new(b: &'a mut tar::Builder<W>, opts: TarOptions) -> Self {
        TarWriter {
            b,
            opts,
            seen: HashMap::new(),
        }
    }

    /// What `found` is, named `name` in the archive (a folder with everything under it).
    pub fn append(&mut self, found: Found, name: &Path) -> Result<(), RootError> {
        match found {
            Found::Dir(mut dirs) => {
                let fd = dirs.swap_remove(0);
                let meta = Meta::of(&fd).map_err(RootError::io(name))?;
                if self.entry(&fd, meta, name)? {
                    self.append_contents(&fd, name)?;
                }
                Ok(())
            }
            Found::Entry { fd, meta } => self.entry(&fd, meta, name).map(drop),
        }
    }

    /// Everything under the folder `dir` (not the folder itself), named from `prefix`. The
    /// walk does not recurse: any depth is archived on a small stack.
    pub fn append_contents(&mut self, dir: &OwnedFd, prefix: &Path) -> Result<(), RootError> {
        let dir = dir.try_clone().map_err(RootError::std_io(prefix))?;
        let mut walk = Walk::new(dir, prefix)?;
        while let Some(item) = walk.next() {
            let item = item?;
            if self.entry(&item.fd, item.meta, &item.path)? {
                walk.descend(item)?;
            }
        }
        Ok(())
    }

    fn header(meta: &Meta, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.permissions());
        h.set_uid(meta.uid.into());
        h.set_gid(meta.gid.into());
        h.set_mtime(meta.mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    fn empty_file(&mut self, name: &Path) -> Result<(), RootError> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(0);
        self.b
            .append_data(&mut h, name, std::io::empty())
            .map_err(RootError::Stream)
    }

    /// Writes the one entry `fd` (not what is in it); true for a folder, whose contents
    /// come next.
    fn entry(&mut self, fd: &OwnedFd, meta: Meta, name: &Path) -> Result<bool, RootError> {
        let err = |e: std::io::Error| RootError::Io {
            path: name.into(),
            source: e,
        };
        if self.opts.overlay_whiteouts && meta.is_whiteout() {
            let mut wh = OsString::from(".wh.");
            wh.push(name.file_name().unwrap_or_default());
            return self.empty_file(&name.with_file_name(wh)).map(|()| false);
        }
        if meta.is_dir() {
            let mut h = Self::header(&meta, tar::EntryType::Directory);
            self.b
                .append_data(&mut h, name, std::io::empty())
                .map_err(err)?;
            if self.opts.overlay_whiteouts && is_opaque(fd) {
                self.empty_file(&name.join(".wh..wh..opq"))?;
            }
            return Ok(true);
        }
        if meta.is_file() {
            if meta.nlink > 1 {
                if let Some(first) = self.seen.get(&(meta.dev, meta.ino)) {
                    let mut h = Self::header(&meta, tar::EntryType::Link);
                    let first = first.clone();
                    return self
                        .b
                        .append_link(&mut h, name, first)
                        .map(|()| false)
                        .map_err(err);
                }
                self.seen.insert((meta.dev, meta.ino), name.to_path_buf());
            }
            let f = std::fs::File::from(reopen(fd, OFlag::O_RDONLY).map_err(RootError::io(name))?);
            let size = Meta::of(&f).map_err(RootError::io(name))?.size;
            if let Ok(Some(cap)) = xattr::FileExt::get_xattr(&f, "security.capability") {
                self.b
                    .append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])
                    .map_err(err)?;
            }
            let mut h = Self::header(&meta, tar::EntryType::Regular);
            h.set_size(size);
            // Exactly `size` bytes, whatever the file does meanwhile: cut when it grew, zeros
            // when it shrank.
            let data = f.take(size).chain(std::io::repeat(0)).take(size);
            return self
                .b
                .append_data(&mut h, name, data)
                .map(|()| false)
                .map_err(err);
        }
        if meta.is_symlink() {
            let target = readlinkat(fd, "").map_err(RootError::io(name))?;
            let mut h = Self::header(&meta, tar::EntryType::Symlink);
            // The target as it is, byte for byte (the builder would normalise `/` to `//`);
            // a long one through the builder's GNU long-link record.
            if target.len() <= 100 {
                h.set_link_name_literal(target.as_bytes()).map_err(err)?;
                return self
                    .b
                    .append_data(&mut h, name, std::io::empty())
                    .map(|()| false)
                    .map_err(err);
            }
            return self
                .b
                .append_link(&mut h, name, target)
                .map(|()| false)
                .map_err(err);
        }
        let kind = if meta.is_char_device() {
            tar::EntryType::Char
        } else if meta.is_block_device() {
            tar::EntryType::Block
        } else if meta.is_fifo() {
            tar::EntryType::Fifo
        } else {
            // Sockets are not archived, as in Docker.
            return Ok(false);
        };
        let mut h = Self::header(&meta, kind);
        h.set_device_major(nix::sys::stat::major(meta.rdev) as u32)
            .map_err(err)?;
        h.set_device_minor(nix::sys::stat::minor(meta.rdev) as u32)
            .map_err(err)?;
        self.b
            .append_data(&mut h, name, std::io::empty())
            .map(|()| false)
            .map_err(err)
    }
}

/// The names in a folder, sorted (a stable archive for the same tree).
pub fn children(dir: &OwnedFd) -> nix::Result<Vec<OsString>> {
    let mut d = nix::dir::Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsString::from(std::ffi::OsStr::from_bytes(n)));
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Root, Tree};
    use std::os::unix::fs::symlink;

    fn list(tar: &[u8]) -> Vec<(String, tar::EntryType, String)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let p = e.path().unwrap().display().to_string();
                let t = e.header().entry_type();
                let mut s = String::new();
                if t.is_file() {
                    e.read_to_string(&mut s).unwrap();
                } else if let Some(l) = e.link_name().unwrap() {
                    s = l.display().to_string();
                }
                (p, t, s)
            })
            .collect()
    }

    #[test]
    fn a_folder_is_archived_with_its_links_as_links() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("r");
        std::fs::create_dir_all(r.join("data/sub")).unwrap();
        std::fs::write(r.join("data/sub/f"), "hello").unwrap();
        symlink("/", r.join("data/escape")).unwrap();
        std::fs::hard_link(r.join("data/sub/f"), r.join("data/g")).unwrap();
        let root = Root::open(&r).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let found = root.lookup(Path::new("/data"), false).unwrap().unwrap();
        TarWriter::new(&mut b, TarOptions::default())
            .append(found, Path::new("data"))
            .unwrap();
        let entries = list(&b.into_inner().unwrap());
        let names: Vec<_> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["data", "data/escape", "data/g", "data/sub", "data/sub/f"]
        );
        assert_eq!(entries[1].1, tar::EntryType::Symlink);
        assert_eq!(entries[1].2, "/");
        assert_eq!(entries[2].2, "hello");
        assert_eq!(entries[4].1, tar::EntryType::Link);
        assert_eq!(entries[4].2, "data/g");
    }

    #[test]
    fn a_tree_deeper_than_path_max_is_archived_on_a_small_stack() {
        let d = tempfile::tempdir().unwrap();
        crate::walk::tests::deep_tree(d.path(), 5000);
        let top = d.path().to_path_buf();
        let entries = crate::walk::tests::on_blocking_threads_stack(move || {
            let root = Root::open(&top).unwrap();
            let dir = root.fd().try_clone_to_owned().unwrap();
            let mut b = tar::Builder::new(Vec::new());
            TarWriter::new(&mut b, TarOptions::default())
                .append_contents(&dir, Path::new(""))
                .unwrap();
            list(&b.into_inner().unwrap())
        });
        assert_eq!(entries.len(), 5001);
        assert_eq!(entries[0].0, "deep");
        assert_eq!(entries[4999].0.matches('/').count(), 4999);
        assert!(entries[5000].0.ends_with("/d/bottom"));
        assert_eq!(entries[5000].1, tar::EntryType::Regular);
    }
}
