//! Walking a tree by file descriptor without recursion: a folder nested as deep as a
//! container cares to make it (thousands of levels, made by `mv` one level at a time) costs
//! one descriptor and the names still to visit per level, never a stack frame, so it cannot
//! overflow the walking thread's stack and abort the daemon.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::RootError;
use crate::resolve::Meta;
use crate::tar_out::children;

/// One entry met by a [`Walk`]: its path (the walk's prefix joined with the names down to
/// it), an `O_PATH` descriptor opened `O_NOFOLLOW` relative to its folder, and its stat.
#[derive(Debug)]
pub struct Item {
    pub path: PathBuf,
    pub fd: OwnedFd,
    pub meta: Meta,
}

struct Frame {
    dir: OwnedFd,
    todo: std::vec::IntoIter<OsString>,
}

/// A pre-order walk of everything under a folder, names sorted in each folder. The caller
/// decides which folders to enter ([`Walk::descend`]), right after their item.
pub struct Walk {
    /// The path of the folder of the top frame.
    at: PathBuf,
    frames: Vec<Frame>,
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("at", &self.at)
            .field("depth", &self.frames.len())
            .finish()
    }
}

impl Walk {
    /// A walk of what is under `dir`, its items named from `prefix`.
    pub fn new(dir: OwnedFd, prefix: &Path) -> Result<Walk, RootError> {
        let todo = children(&dir).map_err(RootError::io(prefix))?;
        Ok(Walk {
            at: prefix.to_path_buf(),
            frames: vec![Frame {
                dir,
                todo: todo.into_iter(),
            }],
        })
    }

    /// Enters the folder `item` (the last item returned): its contents come next.
    pub fn descend(&mut self, item: Item) -> Result<(), RootError> {
        let todo = children(&item.fd).map_err(RootError::io(&item.path))?;
        self.at = item.path;
        self.frames.push(Frame {
            dir: item.fd,
            todo: todo.into_iter(),
        });
        Ok(())
    }

    /// How many folders deep the walk is (1 in the top folder).
    pub fn depth(&self) -> usize {
        self.frames.len()
    }
}

impl Iterator for Walk {
    type Item = Result<Item, RootError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let frame = self.frames.last_mut()?;
            let Some(name) = frame.todo.next() else {
                self.frames.pop();
                if !self.frames.is_empty() {
                    self.at.pop();
                }
                continue;
            };
            let path = self.at.join(&name);
            let fd = match openat(
                &frame.dir,
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                // Gone since it was listed.
                Err(Errno::ENOENT) => continue,
                Err(e) => return Some(Err(RootError::io(&path)(e))),
                Ok(fd) => fd,
            };
            return Some(match Meta::of(&fd) {
                Ok(meta) => Ok(Item { path, fd, meta }),
                Err(e) => Err(RootError::io(&path)(e)),
            });
        }
    }
}

/// Removes `name` in the folder `dir`, a folder with everything in it; missing is fine.
/// Never follows a link, and never recurses (any depth is removed on a small stack).
pub fn remove_all_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> nix::Result<()> {
    if matches!(name.as_bytes(), b"" | b"." | b"..") || name.as_bytes().contains(&b'/') {
        // Only ever a name in `dir`: `..` would be the folder above it.
        return Err(Errno::EINVAL);
    }
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR | Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let open = |at: &OwnedFd, n: &std::ffi::OsStr| {
        openat(
            at,
            n,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    // Each level: the folder, its name in the level above, the names left in it.
    let first = open(dir, name)?;
    let todo = children(&first)?.into_iter();
    let mut stack: Vec<(OwnedFd, OsString, std::vec::IntoIter<OsString>)> =
        vec![(first, name.to_os_string(), todo)];
    while let Some((fd, _, todo)) = stack.last_mut() {
        let Some(child) = todo.next() else {
            // Emptied: remove it from the level above.
            let Some((_, done, _)) = stack.pop() else {
                break;
            };
            let parent = stack.last().map_or(dir, |(fd, _, _)| fd);
            match unlinkat(parent, done.as_os_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
            continue;
        };
        match unlinkat(&*fd, child.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR | Errno::EPERM) => {
                let sub = open(fd, &child)?;
                let todo = children(&sub)?.into_iter();
                stack.push((sub, child, todo));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A folder `depth` levels deep under `top/deep` (`d/d/d/...`), made one level at a time
    /// by descriptor as a container could, far past PATH_MAX; a file at the bottom.
    pub(crate) fn deep_tree(top: &Path, depth: usize) {
        let mut at = nix::fcntl::open(
            top,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        for i in 0..depth {
            let name = if i == 0 { "deep" } else { "d" };
            nix::sys::stat::mkdirat(&at, name, Mode::from_bits_truncate(0o755)).unwrap();
            at = openat(
                &at,
                name,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
        }
        let f = openat(
            &at,
            "bottom",
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        drop(f);
    }

    /// Runs `f` on a thread with the stack of tokio's blocking threads (2 MiB): a
    /// recursion per level would overflow it and abort the whole test binary.
    pub(crate) fn on_blocking_threads_stack<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn a_tree_deeper_than_path_max_is_walked_and_removed_on_a_small_stack() {
        let d = tempfile::tempdir().unwrap();
        deep_tree(d.path(), 5000);
        let top = d.path().to_path_buf();
        let (count, max_depth, bottom) = on_blocking_threads_stack(move || {
            let fd = nix::fcntl::open(
                &top,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
            let mut w = Walk::new(fd, Path::new("")).unwrap();
            let (mut count, mut max_depth, mut bottom) = (0, 0, PathBuf::new());
            while let Some(item) = w.next() {
                let item = item.unwrap();
                count += 1;
                max_depth = max_depth.max(w.depth());
                if item.meta.is_dir() {
                    w.descend(item).unwrap();
                } else {
                    bottom = item.path;
                }
            }
            let top_fd = nix::fcntl::open(
                &top,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
            remove_all_at(&top_fd, "deep".as_ref()).unwrap();
            (count, max_depth, bottom)
        });
        assert_eq!(count, 5001);
        assert_eq!(max_depth, 5001);
        assert!(bottom.starts_with("deep/d/d"));
        assert!(bottom.ends_with("d/bottom"));
        assert_eq!(bottom.components().count(), 5001);
        assert!(!d.path().join("deep").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn remove_all_at_refuses_dot_dot_and_never_follows_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("victim")).unwrap();
        std::fs::write(d.path().join("victim/f"), "keep").unwrap();
        std::fs::create_dir_all(d.path().join("dest/sub")).unwrap();
        std::os::unix::fs::symlink("../../victim", d.path().join("dest/sub/link")).unwrap();
        let dest = open_dir(&d.path().join("dest"));
        assert_eq!(remove_all_at(&dest, "..".as_ref()), Err(Errno::EINVAL));
        assert_eq!(remove_all_at(&dest, ".".as_ref()), Err(Errno::EINVAL));
        remove_all_at(&dest, "sub".as_ref()).unwrap();
        assert!(!d.path().join("dest/sub").exists());
        assert_eq!(std::fs::read(d.path().join("victim/f")).unwrap(), b"keep");
    }

    fn open_dir(p: &Path) -> OwnedFd {
        nix::fcntl::open(
            p,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }
}
