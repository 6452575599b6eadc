//! The json-file and local writers: entries appended to the current file, which is rotated
//! (and the rotated files gzipped) as the settings say.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::files::LogFiles;
use crate::{Format, LogError, LogSettings, Rotation, Stream};

/// The mode of log files (dockerd's 0640).
const LOG_MODE: u32 = 0o640;

/// Entries are written to the file once this many bytes are encoded.
const FLUSH_AT: usize = 64 * 1024;

/// One container's log being written. Not shared: the output copier owns it.
#[derive(Debug)]
pub struct LogWriter {
    format: Format,
    settings: LogSettings,
    files: LogFiles,
    rotation: Arc<Rotation>,
    file: File,
    /// Bytes in the current file.
    size: u64,
    buf: Vec<u8>,
}

fn open_current(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(path)
}

impl LogWriter {
    /// Opens (or creates) the current file, appending; `None` for a driver that keeps
    /// nothing.
    pub fn open(
        settings: &LogSettings,
        files: LogFiles,
        rotation: Arc<Rotation>,
    ) -> Result<Option<LogWriter>, LogError> {
        let Some(format) = settings.driver.format() else {
            return Ok(None);
        };
        let write_err = |source| LogError::Write {
            path: files.current.clone(),
            source,
        };
        if let Some(dir) = files.dir() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let file = open_current(&files.current).map_err(write_err)?;
        let size = file.metadata().map_err(write_err)?.len();
        Ok(Some(LogWriter {
            format,
            settings: settings.clone(),
            files,
            rotation,
            file,
            size,
            buf: Vec::new(),
        }))
    }

    /// Appends one entry per line, all with the time `time`, rotating first whenever the
    /// current file has reached `max-size` (as dockerd: a file ends with the entry that
    /// took it to or past the limit).
    pub fn write(
        &mut self,
        stream: Stream,
        time: SystemTime,
        lines: &[&[u8]],
    ) -> Result<(), LogError> {
        for line in lines {
            if let Some(max) = self.settings.max_size {
                let pending = self.size + self.buf.len() as u64;
                if pending > 0 && pending >= max {
                    self.flush()?;
                    self.rotate()?;
                }
            }
            self.format.encode(stream, time, line, &mut self.buf);
            if self.buf.len() >= FLUSH_AT {
                self.flush()?;
            }
        }
        self.flush()
    }

    fn flush(&mut self) -> Result<(), LogError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.buf);
        self.size += self.buf.len() as u64;
        self.buf.clear();
        r.map_err(|source| LogError::Write {
            path: self.files.current.clone(),
            source,
        })
    }

    /// dockerd's rotation: `<log>.(n-1)` is dropped, each `<log>.k` becomes `<log>.(k+1)`,
    /// the current file becomes `<log>.1` (gzipped into `<log>.1.gz` with `compress`), and a
    /// new current file starts. With one file only, the current file starts again empty.
    /// Readers that hold the old file keep reading it (it is renamed or unlinked, never
    /// truncated).
    fn rotate(&mut self) -> Result<(), LogError> {
        let mut generation = self.rotation.lock();
        let rotate_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LogError::Rotate { path, source }
        };
        let keep = self.settings.max_file.saturating_sub(1);
        let gz = self.settings.compress;
        if keep == 0 {
            remove_if_there(&self.files.current).map_err(rotate_err(&self.files.current))?;
        } else {
            for compressed in [false, true] {
                let oldest = self.files.rotated(keep, compressed);
                remove_if_there(&oldest).map_err(rotate_err(&oldest))?;
            }
            for k in (1..keep).rev() {
                for compressed in [false, true] {
                    let from = self.files.rotated(k, compressed);
                    let to = self.files.rotated(k + 1, compressed);
                    match std::fs::rename(&from, &to) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(rotate_err(&from)(e)),
                    }
                }
            }
            let first = self.files.rotated(1, gz);
            if gz {
                gzip(&self.files.current, &first).map_err(rotate_err(&first))?;
                remove_if_there(&self.files.current).map_err(rotate_err(&self.files.current))?;
            } else {
                std::fs::rename(&self.files.current, &first)
                    .map_err(rotate_err(&self.files.current))?;
            }
        }
        self.file = open_current(&self.files.current).map_err(rotate_err(&self.files.current))?;
        self.size = 0;
        *generation += 1;
        Ok(())
    }
}

fn remove_if_there(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Gzips `from` into `to` (through a temporary name, so `to` is whole or absent).
fn gzip(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut tmp = to.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let out = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(LOG_MODE)
        .open(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    std::io::copy(&mut File::open(from)?, &mut enc)?;
    enc.finish()?;
    std::fs::rename(&tmp, to)
}
