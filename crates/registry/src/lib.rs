//! berth-registry owns the conversation with image registries (the distribution API v2):
//! where a repository lives (Docker Hub, mirrors, other hosts by `host[:port]`; HTTPS through
//! rustls with the system's roots plus dockerd's `certs.d/<host[:port]>/` CAs and client
//! certificate, plain HTTP for 127.0.0.0/8, and HTTPS then plain HTTP for `localhost` and
//! `insecure-registries`), authentication (anonymous, basic and
//! bearer-token challenges, credentials from `X-Registry-Auth`), manifests (Docker schema 2,
//! OCI) and indexes (manifest lists, with the platform choice), and the pull pipeline: blobs
//! streamed to the image store's work folder and verified against their digests, then
//! unpacked in order through `ImageStore::put_layer_verified` (diff IDs checked against the
//! config), with dockerd's progress messages on the way; and the push pipeline (HEAD for
//! blobs the registry has, layers gzip-compressed once and uploaded, the manifest last).
//!
//! It depends on berth-images for the store and references, and must not depend on
//! berth-daemon or berth-api.

mod auth;
mod client;
mod error;
mod fetch;
mod manifest;
mod progress;
mod pull;
mod push;
mod settings;

pub use auth::{Challenge, Credentials, login, parse_challenges};
pub use error::RegistryError;
pub use fetch::{Fetched, fetch_url};
pub use manifest::{Descriptor, ImageManifest, Manifest, Platform};
pub use progress::{Detail, Progress, ProgressSink};
pub use pull::{PullOutcome, PullRequest, pull};
pub use push::{PushOutcome, PushRequest, push};
pub use settings::RegistrySettings;
