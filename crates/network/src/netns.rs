//! Network namespaces berthd makes for containers, pinned at a path by a bind mount of their
//! nsfs file (what `ip netns add` does under /run/netns, but anywhere), so they outlive the
//! thread that made them and can be handed to runc by path before the task exists.
//!
//! A thread that has entered another network namespace is never reused: every namespaced
//! operation runs on a fresh std thread that ends with it.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::thread;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::statfs::{NSFS_MAGIC, fstatfs};

use crate::NetworkError;
use crate::link::Links;

/// The namespace file of the calling thread (not of the process: threads may differ).
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// A network namespace pinned at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    path: PathBuf,
}

impl Netns {
    /// Creates a new network namespace pinned at `path` (the file and its parent directories
    /// are made), with its loopback interface up. Blocking.
    pub fn create(path: &Path) -> Result<Netns, NetworkError> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| NetworkError::Io {
                context: format!("creating {}", parent.display()),
                source,
            })?;
        }
        if is_nsfs(path) {
            return Err(NetworkError::Io {
                context: format!("creating a network namespace at {}", path.display()),
                source: std::io::ErrorKind::AlreadyExists.into(),
            });
        }
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| NetworkError::Io {
                context: format!("creating {}", path.display()),
                source,
            })?;

        let target = path.to_path_buf();
        let made =
            spawn_and_join("berth-netns-new", move || pin_new_netns(&target)).and_then(|r| r);
        if let Err(err) = made {
            if let Err(cleanup) = Netns::remove(path) {
                tracing::warn!(path = %path.display(), error = %cleanup,
                    "removing a half-made network namespace failed");
            }
            return Err(err);
        }
        tracing::debug!(path = %path.display(), "network namespace created");
        Ok(Netns {
            path: path.to_path_buf(),
        })
    }

    /// Opens a network namespace already pinned at `path`; fails when `path` does not hold one.
    pub fn open(path: &Path) -> Result<Netns, NetworkError> {
        let ns = Netns {
            path: path.to_path_buf(),
        };
        ns.open_file()?;
        Ok(ns)
    }

    /// Where the namespace is pinned.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unpins the namespace at `path` and deletes the file; a missing file is not an error.
    /// The namespace itself goes when nothing else (a process, a socket) holds it.
    pub fn remove(path: &Path) -> Result<(), NetworkError> {
        // A path mounted over more than once (a crash between two attempts) needs one
        // unmount per layer; EINVAL means nothing is mounted there any more.
        for _ in 0..8 {
            match umount2(path, MntFlags::MNT_DETACH) {
                Ok(()) => continue,
                Err(Errno::EINVAL) => break,
                Err(Errno::ENOENT) => return Ok(()),
                Err(source) => {
                    return Err(NetworkError::Sys {
                        context: format!("unmounting {}", path.display()),
                        source,
                    });
                }
            }
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(NetworkError::Io {
                context: format!("removing {}", path.display()),
                source,
            }),
        }
    }

    /// Runs `f` inside this namespace, on a fresh thread that ends with it, and returns what
    /// it returned. Blocks the caller until `f` is done; a panic in `f` is resumed here.
    /// Sockets made by `f` stay in this namespace wherever they are used afterwards.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetworkError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let file = self.open_file()?;
        let path = self.path.clone();
        spawn_and_join("berth-netns-run", move || {
            setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| NetworkError::Sys {
                context: format!("entering the network namespace {}", path.display()),
                source,
            })?;
            drop(file);
            Ok(f())
        })?
    }

    /// Opens the namespace file, checking that it is one.
    pub(crate) fn open_file(&self) -> Result<File, NetworkError> {
        let file = File::open(&self.path).map_err(|source| NetworkError::Io {
            context: format!("opening the network namespace {}", self.path.display()),
            source,
        })?;
        let fs = fstatfs(&file).map_err(|source| NetworkError::Sys {
            context: format!("statfs {}", self.path.display()),
            source,
        })?;
        if fs.filesystem_type() != NSFS_MAGIC {
            return Err(NetworkError::NotNetns {
                path: self.path.clone(),
            });
        }
        Ok(file)
    }
}

/// Whether `path` holds a pinned namespace now.
fn is_nsfs(path: &Path) -> bool {
    File::open(path)
        .ok()
        .and_then(|f| fstatfs(&f).ok())
        .is_some_and(|fs| fs.filesystem_type() == NSFS_MAGIC)
}

/// On the calling (throwaway) thread: a new network namespace, pinned at `target`, `lo` up.
fn pin_new_netns(target: &Path) -> Result<(), NetworkError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|source| NetworkError::Sys {
        context: "unshare(CLONE_NEWNET)".to_owned(),
        source,
    })?;
    mount(
        Some(THREAD_NETNS),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| NetworkError::Sys {
        context: format!("bind-mounting {THREAD_NETNS} on {}", target.display()),
        source,
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|source| NetworkError::Io {
            context: "starting a runtime for netlink".to_owned(),
            source,
        })?;
    rt.block_on(async { Links::new()?.set_up("lo").await })
}

/// Runs `f` on a new named thread and waits for it; a panic in `f` is resumed here.
fn spawn_and_join<T, F>(name: &str, f: F) -> Result<T, NetworkError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|source| NetworkError::Io {
            context: format!("spawning the thread {name}"),
            source,
        })?;
    match handle.join() {
        Ok(v) => Ok(v),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
