//! berth-images will own the content-addressed image store: import, load, save, tag, list,
//! inspect, remove, and the overlay root filesystems of containers.
//!
//! It must not depend on berth-daemon or berth-api. (Filled by the images issue; the crate
//! exists now so the layering is fixed.)
