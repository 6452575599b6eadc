//! `docker logs`: the container's log driver's files (current and rotated), read with
//! tail, since and until, and followed across rotations; and which files a container's
//! driver writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_logdriver::{Filter, LogError, LogFiles, LogReader, LogSettings, LogWriter, Progress};
use tokio::sync::mpsc;

use super::io::ContainerLog;
use super::{Container, StreamKind};
use crate::{Daemon, DaemonError};

/// What `docker logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    pub follow: bool,
    /// `None`: all lines.
    pub tail: Option<usize>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

/// One log entry.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub stream: StreamKind,
    pub time: String,
    pub text: String,
}

impl LogLine {
    fn of(e: berth_logdriver::Entry) -> LogLine {
        LogLine {
            stream: match e.stream {
                berth_logdriver::Stream::Stdout => StreamKind::Stdout,
                berth_logdriver::Stream::Stderr => StreamKind::Stderr,
            },
            time: humantime::format_rfc3339_nanos(e.time).to_string(),
            text: String::from_utf8_lossy(&e.line).into_owned(),
        }
    }
}

/// json-file's log: `<container dir>/<id>-json.log` (its `LogPath`).
pub(crate) fn json_log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

impl Container {
    /// The container's log settings (checked at create) and its log's files; `None` for a
    /// driver that keeps nothing. The local driver's files are dockerd's:
    /// `<container dir>/local-logs/container.log`.
    pub(crate) fn log_target(&self) -> Result<Option<(LogSettings, LogFiles)>, DaemonError> {
        let cfg = self.record().host_config.log_config;
        let typ = if cfg.typ.is_empty() {
            "json-file"
        } else {
            cfg.typ.as_str()
        };
        let settings =
            LogSettings::parse(typ, &cfg.config).map_err(|e| DaemonError::Invalid(e.into()))?;
        let files = match settings.driver {
            berth_logdriver::Driver::JsonFile => json_log_path(self.dir(), &self.id),
            berth_logdriver::Driver::Local => self.dir().join("local-logs").join("container.log"),
            berth_logdriver::Driver::None => return Ok(None),
        };
        Ok(Some((settings, LogFiles::new(files))))
    }

    /// Opens the writer of the container's log for a process's output (at start and when a
    /// running container is adopted); `None` for the `none` driver.
    pub(crate) fn open_log(&self) -> Result<Option<Arc<ContainerLog>>, DaemonError> {
        let Some((settings, files)) = self.log_target()? else {
            return Ok(None);
        };
        let writer = LogWriter::open(&settings, files, self.log_rotation.clone())?;
        Ok(writer.map(|w| Arc::new(ContainerLog::new(w))))
    }
}

impl Daemon {
    /// Refuses `docker logs` of a container whose driver keeps nothing (dockerd's 501),
    /// before a stream is answered.
    pub fn container_logs_readable(&self, name: &str) -> Result<(), DaemonError> {
        match self.containers.get(name)?.log_target()? {
            Some(_) => Ok(()),
            None => Err(LogError::NotReadable.into()),
        }
    }

    /// Streams a container's log entries into `tx`: the existing ones (oldest rotated file
    /// first), then (with `follow`) new ones until the container stops, across rotations.
    /// Each read runs on a blocking thread and each entry waits for the client to take the
    /// one before (the channel is bounded), so a slow or stuck client holds a block and a
    /// few entries, not the log; a follower between reads holds no thread.
    pub async fn container_logs(
        &self,
        name: &str,
        o: LogOptions,
        tx: mpsc::Sender<LogLine>,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let (settings, files) = c.log_target()?.ok_or(LogError::NotReadable)?;
        let format = settings.driver.format().ok_or(LogError::NotReadable)?;
        let mut changes = c.subscribe();
        let filter = Filter {
            stdout: o.stdout,
            stderr: o.stderr,
            since: o.since,
            until: o.until,
        };
        let rotation = c.log_rotation.clone();
        let tail = o.tail;
        let mut reader =
            blocking(move || LogReader::open(format, files, rotation, filter, tail)).await??;
        loop {
            let running = c.state().running();
            let tx2 = tx.clone();
            let (r, progress) = blocking(move || {
                let p = reader.read(&mut |e| tx2.blocking_send(LogLine::of(e)).is_ok());
                (reader, p)
            })
            .await?;
            reader = r;
            match progress? {
                Progress::ClientGone | Progress::Ended => return Ok(()),
                Progress::CaughtUp => {}
            }
            if !o.follow || !running || c.is_removed() {
                return Ok(());
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tx.closed() => return Ok(()),
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DaemonError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))
}
