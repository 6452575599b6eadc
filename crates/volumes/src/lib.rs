//! berth-volumes: Docker volumes with the local driver.
//!
//! Owns:
//! - [`VolumeStore`]: the volumes under `<data-root>/volumes/<name>/_data`, each with its
//!   metadata (driver, labels, options, creation time, anonymous or not) persisted beside it
//!   in `<name>/volume.json` (written whole: temp, fsync, rename); create (named, or
//!   anonymous with a 64-hex name), get, list, remove, prune; which containers use each
//!   volume (in memory, rebuilt from the containers at start) so a volume in use is never
//!   removed; and mounting: a volume made with `-o type=…,device=…,o=…` is mounted on its
//!   first user's start and unmounted when its last user stops.
//! - [`spec`]: a container's mount points from its `Binds` (`-v`), `Mounts` (`--mount`), the
//!   image's `VOLUME`s and `--volumes-from`, parsed and checked as dockerd does (pure).
//! - [`copy_up`]: an empty volume filled from the image's files at its mount point
//!   (owners, modes, times, xattrs and links kept), walked by descriptor through
//!   berth-inroot so nothing in the image points outside it.
//!
//! Blocking: callers on an async runtime run the copy and sizes on a blocking thread.
//! Must not depend on any berth crate but berth-inroot and berth-model.

pub mod copy_up;
mod error;
mod mount;
pub mod spec;
mod store;

pub use error::VolumeError;
pub use spec::{MountKind, MountPoint};
pub use store::{
    ANONYMOUS_LABEL, CreateOptions, DRIVER, ListFilter, Pruned, Volume, VolumeStore, dir_size,
};
