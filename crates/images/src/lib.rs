//! berth-images owns images: references parsed as Docker parses them, the content-addressed
//! store (image configs by the sha256 of their bytes, layers by diff ID, each layer stored
//! and unpacked once and shared by every image that has it), `docker import`, `load` and
//! `save` archives, and the overlay mounts that give a container its root file system.
//!
//! Everything here is synchronous file work; callers run it on blocking threads. Nothing
//! half-done is ever visible: new files go to temporary names and are renamed into place.
//! It must not depend on berth-daemon, berth-api, containerd or an async runtime.

mod archive;
mod changes;
mod commit;
mod config;
mod error;
pub mod files;
mod layer;
mod reference;
mod rootfs;
mod store;

pub use archive::LoadedImage;
pub use changes::apply_changes;
pub use commit::CommitOptions;
pub use config::{ContainerConfig, HistoryEntry, ImageConfig, RootFs};
pub use error::ImageError;
pub use layer::{DiffId, sha256_hex};
pub use reference::Reference;
pub use rootfs::{RootfsLayout, overlay_options};
pub use store::{DeleteResult, ImageId, ImageRecord, ImageStore, ImportOptions, LayerBlob};
