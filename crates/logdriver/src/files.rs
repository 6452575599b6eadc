//! A log's files on disk and the lock its writer and readers share.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The files of one log: the current one (`<log>`) and the rotated ones, newest first
/// (`<log>.1`, `<log>.2`..., each maybe gzipped: `<log>.1.gz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFiles {
    pub current: PathBuf,
}

/// A rotated file as found: plain or gzipped.
#[derive(Debug)]
pub(crate) enum Rotated {
    Plain(File),
    Gz(File),
}

impl LogFiles {
    pub fn new(current: impl Into<PathBuf>) -> LogFiles {
        LogFiles {
            current: current.into(),
        }
    }

    /// `<log>.k`, or `<log>.k.gz`.
    pub(crate) fn rotated(&self, k: u32, gz: bool) -> PathBuf {
        let mut s = self.current.clone().into_os_string();
        s.push(format!(".{k}"));
        if gz {
            s.push(".gz");
        }
        PathBuf::from(s)
    }

    /// Opens `<log>.k` (or its gzipped form); `None` when neither exists.
    pub(crate) fn open_rotated(&self, k: u32) -> std::io::Result<Option<(Rotated, PathBuf)>> {
        for gz in [false, true] {
            let p = self.rotated(k, gz);
            match File::open(&p) {
                Ok(f) if gz => return Ok(Some((Rotated::Gz(f), p))),
                Ok(f) => return Ok(Some((Rotated::Plain(f), p))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Opens the current file; `None` when it does not exist (yet).
    pub(crate) fn open_current(&self) -> std::io::Result<Option<File>> {
        match File::open(&self.current) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// How many rotated files there are (they are numbered from 1 without gaps).
    pub(crate) fn rotated_count(&self) -> u32 {
        let mut k = 0;
        while self.rotated(k + 1, false).exists() || self.rotated(k + 1, true).exists() {
            k += 1;
        }
        k
    }

    /// Every file of the log, for removal.
    pub fn all(&self) -> Vec<PathBuf> {
        let mut out = vec![self.current.clone()];
        for k in 1..=self.rotated_count() {
            out.push(self.rotated(k, false));
            out.push(self.rotated(k, true));
        }
        out
    }

    pub fn dir(&self) -> Option<&Path> {
        self.current.parent()
    }
}

/// The rotation lock of one log and how many rotations it has seen. The writer holds it
/// while it renames, compresses and reopens; readers hold it while they open files, so they
/// see the files either before or after a rotation, never halfway. A follower that opened
/// the current file at generation `g` and now sees `g + r` knows its file became `<log>.r`
/// and that `<log>.(r-1)` ... `<log>.1` and the new current file follow it.
#[derive(Debug, Default)]
pub struct Rotation {
    generation: Mutex<u64>,
}

impl Rotation {
    pub fn new() -> Rotation {
        Rotation::default()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, u64> {
        self.generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
