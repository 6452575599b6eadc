//! berth-inroot: every path inside a container's or an image's root file system, resolved as
//! the container would see it and never on the host.
//!
//! Owns:
//! - [`Root`]: a folder that is `/` for what is under it (a mounted view, `/proc/<pid>/root`,
//!   a layer being unpacked). Paths resolve with `openat2(RESOLVE_IN_ROOT)`: absolute
//!   symlinks and `..` stay inside. Kernels without openat2 get the same semantics from a
//!   walk in user space that never lets the kernel follow a link.
//! - [`Layers`]: a stack of overlay layer folders read as the one tree overlay would show
//!   (whiteouts and opaque folders honoured), without mounting anything.
//! - Capped reads of regular files ([`Tree::read_capped`]): opened without blocking (a FIFO
//!   cannot freeze the caller), refused unless regular, never read past a limit.
//! - [`tar_out`]: tar streams of a tree walked by file descriptors (cp out, export, commit).
//! - [`unpack`]: layer tars unpacked with every entry resolved inside the destination
//!   (import, load, pull, build), whiteouts and device nodes included.
//! - [`walk`]: trees walked by descriptor without recursion (any depth on a small stack), and
//!   removed the same way.
//!
//! Everything here is blocking: callers on an async runtime run it on a blocking thread.
//! Must not depend on any other berth crate.

mod error;
mod resolve;
pub mod tar_out;
pub mod unpack;
pub mod walk;

pub use error::RootError;
pub use resolve::{Found, Layers, Meta, Root, Tree, reopen};
