//! `docker logs`: the json-file log, read with tail, since and until, and followed.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::StreamKind;
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

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

fn parse(line: &str) -> Option<LogLine> {
    let e: Entry = serde_json::from_str(line).ok()?;
    Some(LogLine {
        stream: if e.stream == "stderr" {
            StreamKind::Stderr
        } else {
            StreamKind::Stdout
        },
        time: e.time,
        text: e.log,
    })
}

fn time_of(l: &LogLine) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(l.time.trim_end_matches('Z')).ok()
}

fn wanted(l: &LogLine, o: &LogOptions) -> bool {
    let stream_ok = match l.stream {
        StreamKind::Stdout => o.stdout,
        StreamKind::Stderr => o.stderr,
    };
    let t = time_of(l);
    stream_ok
        && o.since.is_none_or(|s| t.is_some_and(|t| t >= s))
        && o.until.is_none_or(|u| t.is_some_and(|t| t <= u))
}

/// The lines of a json-file log that `o` selects (before following).
pub fn read_log(text: &str, o: &LogOptions) -> Vec<LogLine> {
    let lines: Vec<LogLine> = text
        .lines()
        .filter_map(parse)
        .filter(|l| wanted(l, o))
        .collect();
    match o.tail {
        Some(n) if n < lines.len() => lines[lines.len() - n..].to_vec(),
        _ => lines,
    }
}

impl Daemon {
    /// Streams a container's log lines into `tx`: the existing ones, then (with `follow`)
    /// new ones until the container stops.
    pub async fn container_logs(
        &self,
        name: &str,
        o: LogOptions,
        tx: tokio::sync::mpsc::Sender<LogLine>,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let path = c.record().log_path;
        let io = |source| DaemonError::Io {
            path: path.clone().into(),
            source,
        };
        let mut f = std::fs::File::open(&path).map_err(io)?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut f, &mut text).map_err(io)?;
        let mut pos = text.len() as u64;
        // A partial last line is read again when following.
        if !text.ends_with('\n') {
            if let Some(i) = text.rfind('\n') {
                pos = i as u64 + 1;
                text.truncate(i + 1);
            } else {
                pos = 0;
                text.clear();
            }
        }
        for l in read_log(&text, &o) {
            if tx.send(l).await.is_err() {
                return Ok(());
            }
        }
        if !o.follow {
            return Ok(());
        }
        let mut rx = c.subscribe();
        loop {
            let running = c.state().running;
            f.seek(SeekFrom::Start(pos)).map_err(io)?;
            let mut reader = BufReader::new(&f);
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.read_line(&mut line).map_err(io)?;
                if n == 0 || !line.ends_with('\n') {
                    break;
                }
                pos += n as u64;
                if let Some(l) = parse(&line).filter(|l| wanted(l, &o))
                    && tx.send(l).await.is_err()
                {
                    return Ok(());
                }
            }
            if !running || c.is_removed() {
                return Ok(());
            }
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tx.closed() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = concat!(
        r#"{"log":"one\n","stream":"stdout","time":"2026-01-01T00:00:01.000000000Z"}"#,
        "\n",
        r#"{"log":"two\n","stream":"stderr","time":"2026-01-01T00:00:02.000000000Z"}"#,
        "\n",
        r#"{"log":"three\n","stream":"stdout","time":"2026-01-01T00:00:03.000000000Z"}"#,
        "\n",
    );

    fn texts(o: LogOptions) -> Vec<String> {
        read_log(LOG, &o)
            .into_iter()
            .map(|l| l.text.trim().to_string())
            .collect()
    }

    #[test]
    fn streams_tail_since_until() {
        let both = LogOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        assert_eq!(texts(both.clone()), ["one", "two", "three"]);
        assert_eq!(
            texts(LogOptions {
                stderr: false,
                ..both.clone()
            }),
            ["one", "three"]
        );
        assert_eq!(
            texts(LogOptions {
                tail: Some(1),
                ..both.clone()
            }),
            ["three"]
        );
        let t = |s: &str| humantime::parse_rfc3339(s).unwrap();
        assert_eq!(
            texts(LogOptions {
                since: Some(t("2026-01-01T00:00:02Z")),
                ..both.clone()
            }),
            ["two", "three"]
        );
        assert_eq!(
            texts(LogOptions {
                until: Some(t("2026-01-01T00:00:02Z")),
                ..both
            }),
            ["one", "two"]
        );
    }
}
