//! `docker logs`: the json-file log, read with tail, since and until, and followed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use tokio::sync::mpsc;

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

/// How much of the log is read at a time, forwards and backwards.
const BLOCK: usize = 64 * 1024;

/// Where the last `n` lines that `o` selects begin: the file is read backwards from its end
/// a block at a time, so the memory used is a block and one line, whatever the log's size.
/// Only whole lines count (a line being written has no newline yet).
fn tail_offset(f: &mut File, n: usize, o: &LogOptions) -> std::io::Result<u64> {
    let len = f.metadata()?.len();
    // The end of the last whole line.
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = len;
    let mut found_end = false;
    let mut count = 0;
    loop {
        // Make sure `buf` ([buf_start, pos)) holds the start of the line that ends at `pos`.
        let search_end = if found_end {
            pos.saturating_sub(1)
        } else {
            pos
        };
        let rel_end = (search_end - buf_start) as usize;
        match buf[..rel_end].iter().rposition(|b| *b == b'\n') {
            Some(i) if !found_end => {
                // Skip a partial last line: whole lines end at this newline.
                pos = buf_start + i as u64 + 1;
                buf.truncate((pos - buf_start) as usize);
                found_end = true;
            }
            Some(i) => {
                let start = buf_start + i as u64 + 1;
                let line = &buf[i + 1..(pos - buf_start) as usize];
                if std::str::from_utf8(line)
                    .ok()
                    .and_then(parse)
                    .is_some_and(|l| wanted(&l, o))
                {
                    if count == n {
                        return Ok(pos);
                    }
                    count += 1;
                }
                pos = start;
                buf.truncate((pos - buf_start) as usize);
            }
            None if buf_start == 0 => {
                if !found_end {
                    // No newline at all: no whole line.
                    return Ok(0);
                }
                let line = &buf[..(pos - buf_start) as usize];
                if count == n
                    && std::str::from_utf8(line)
                        .ok()
                        .and_then(parse)
                        .is_some_and(|l| wanted(&l, o))
                {
                    return Ok(pos);
                }
                return Ok(0);
            }
            None => {
                let new_start = buf_start.saturating_sub(BLOCK as u64);
                let mut block = vec![0u8; (buf_start - new_start) as usize];
                f.seek(SeekFrom::Start(new_start))?;
                f.read_exact(&mut block)?;
                block.extend_from_slice(&buf);
                buf = block;
                buf_start = new_start;
            }
        }
    }
}

/// Sends the whole lines from the reader's position that `o` selects; returns the bytes
/// consumed (a partial last line is left for later), or `None` when the client is gone.
fn send_lines(
    reader: &mut BufReader<File>,
    line: &mut Vec<u8>,
    o: &LogOptions,
    tx: &mpsc::Sender<LogLine>,
) -> std::io::Result<Option<u64>> {
    let mut consumed = 0;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(Some(consumed));
        }
        consumed += n as u64;
        if let Some(l) = std::str::from_utf8(line)
            .ok()
            .and_then(parse)
            .filter(|l| wanted(l, o))
            && tx.blocking_send(l).is_err()
        {
            return Ok(None);
        }
    }
}

/// Sends the whole lines of the log from `pos` (or, first time, from the tail's offset)
/// that `o` selects; on a blocking thread. Returns where the next read starts, or `None`
/// when the client is gone. Memory: one block and one line.
fn read_from(
    path: &Path,
    pos: Option<u64>,
    o: &LogOptions,
    tx: &mpsc::Sender<LogLine>,
) -> std::io::Result<Option<u64>> {
    let mut f = File::open(path)?;
    let start = match (pos, o.tail) {
        (Some(p), _) => p,
        (None, Some(n)) => tail_offset(&mut f, n, o)?,
        (None, None) => 0,
    };
    f.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::with_capacity(BLOCK, f);
    Ok(send_lines(&mut reader, &mut Vec::new(), o, tx)?.map(|n| start + n))
}

impl Daemon {
    /// Streams a container's log lines into `tx`: the existing ones, then (with `follow`)
    /// new ones until the container stops. Each read runs on a blocking thread and each
    /// line waits for the client to take the one before (the channel is bounded), so a slow
    /// or stuck client holds a block and a few lines, not the log; a follower between reads
    /// holds no thread.
    pub async fn container_logs(
        &self,
        name: &str,
        o: LogOptions,
        tx: mpsc::Sender<LogLine>,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let path = PathBuf::from(c.record().log_path);
        let mut changes = c.subscribe();
        let o = std::sync::Arc::new(o);
        let mut pos = None;
        loop {
            let running = c.state().running();
            let (p, o2, tx2) = (path.clone(), o.clone(), tx.clone());
            let read = tokio::task::spawn_blocking(move || read_from(&p, pos, &o2, &tx2))
                .await
                .map_err(|e| DaemonError::Task(e.to_string()))?
                .map_err(|source| DaemonError::Io {
                    path: path.clone(),
                    source,
                })?;
            let Some(next) = read else {
                return Ok(());
            };
            pos = Some(next);
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

    /// The lines `o` selects from a log file holding `text`, read as `docker logs` reads.
    fn read(text: &str, o: &LogOptions) -> Vec<String> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        std::fs::write(&p, text).unwrap();
        let mut f = File::open(&p).unwrap();
        let start = match o.tail {
            Some(n) => tail_offset(&mut f, n, o).unwrap(),
            None => 0,
        };
        f.seek(SeekFrom::Start(start)).unwrap();
        let (tx, mut rx) = mpsc::channel(1 << 16);
        send_lines(&mut BufReader::new(f), &mut Vec::new(), o, &tx)
            .unwrap()
            .unwrap();
        drop(tx);
        let mut out = Vec::new();
        while let Ok(l) = rx.try_recv() {
            out.push(l.text.trim().to_string());
        }
        out
    }

    fn texts(o: LogOptions) -> Vec<String> {
        read(LOG, &o)
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
                ..both.clone()
            }),
            ["one", "two"]
        );
        // The tail counts the lines the filters keep.
        assert_eq!(
            texts(LogOptions {
                tail: Some(1),
                stdout: false,
                ..both.clone()
            }),
            ["two"]
        );
        for n in [0, 2, 3, 10] {
            let all = ["one", "two", "three"];
            assert_eq!(
                texts(LogOptions {
                    tail: Some(n),
                    ..both.clone()
                }),
                all[all.len() - n.min(3)..]
            );
        }
        // A partial last line is not a line yet.
        let partial = format!("{LOG}{{\"log\":\"fou");
        assert_eq!(
            read(
                &partial,
                &LogOptions {
                    tail: Some(1),
                    ..both.clone()
                }
            ),
            ["three"]
        );
        assert_eq!(read(&partial, &both), ["one", "two", "three"]);
    }

    #[test]
    fn the_tail_of_a_log_larger_than_many_blocks_is_found_from_the_end() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!(
                r#"{{"log":"line {i} {}\n","stream":"stdout","time":"2026-01-01T00:00:01Z"}}"#,
                "x".repeat(i % 300)
            ));
            text.push('\n');
        }
        assert!(text.len() > 40 * BLOCK);
        let o = LogOptions {
            stdout: true,
            stderr: true,
            tail: Some(3),
            ..Default::default()
        };
        let got = read(&text, &o);
        assert_eq!(got.len(), 3);
        assert!(got[0].starts_with("line 19997 "), "{got:?}");
        assert!(got[2].starts_with("line 19999 "), "{got:?}");
    }
}
