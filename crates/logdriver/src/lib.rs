//! berth-logdriver: what a container's output becomes on disk, and how `docker logs` reads
//! it back.
//!
//! Owns:
//! - [`LogSettings`]: a `HostConfig.LogConfig` checked as dockerd checks it (drivers, the
//!   options each takes, sizes, counts, booleans), with dockerd's messages.
//! - [`LogWriter`]: the `json-file` and `local` writers, with `max-size` / `max-file`
//!   rotation (`<log>`, `<log>.1`, `<log>.2`...) and `compress` (rotated files gzipped).
//! - [`LogReader`]: the entries of the current and rotated files, oldest first, with
//!   `--tail` (plain files read backwards from their end), `--since`, `--until` and follow
//!   across rotations; memory is a block and an entry whatever the log's size.
//! - [`Rotation`]: the lock and generation a writer and its readers share, so a follower
//!   knows which files were rotated under it.
//!
//! Formats: `json-file` is dockerd's (one `{"log","stream","time"}` object a line);
//! `local` is dockerd's too: each entry a protobuf `LogEntry` (source, time_nano, line,
//! partial) between two big-endian u32 lengths, so it reads backwards as well as forwards.
//!
//! Everything here is blocking: callers on an async runtime run it on a blocking thread.
//! Must not depend on any other berth crate.

mod error;
mod files;
mod format;
mod reader;
mod settings;
mod writer;

pub use error::LogError;
pub use files::{LogFiles, Rotation};
pub use format::{Entry, Format, Stream};
pub use reader::{Filter, LogReader, Progress};
pub use settings::{Driver, LogSettings, OptError, parse_human_size};
pub use writer::LogWriter;

#[cfg(test)]
mod tests;
