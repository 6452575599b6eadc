//! Writers and readers together: rotation, compression, tail across files, since/until,
//! and following across rotations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::*;

fn t(i: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i)
}

struct Log {
    _dir: tempfile::TempDir,
    files: LogFiles,
    rotation: Arc<Rotation>,
    settings: LogSettings,
}

fn log(driver: &str, opts: &[(&str, &str)]) -> Log {
    let dir = tempfile::tempdir().unwrap();
    let opts: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = LogSettings::parse(driver, &opts).unwrap();
    Log {
        files: LogFiles::new(dir.path().join("sub").join("c.log")),
        _dir: dir,
        rotation: Arc::new(Rotation::new()),
        settings,
    }
}

impl Log {
    fn writer(&self) -> LogWriter {
        LogWriter::open(&self.settings, self.files.clone(), self.rotation.clone())
            .unwrap()
            .unwrap()
    }

    /// Writes lines `line-a` ..= `line-b`, line i at time t(i), odd ones on stderr.
    fn write(&self, w: &mut LogWriter, a: u64, b: u64) {
        for i in a..=b {
            let stream = if i % 2 == 1 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            w.write(stream, t(i), &[format!("line-{i}\n").as_bytes()])
                .unwrap();
        }
    }

    fn reader(&self, filter: Filter, tail: Option<usize>) -> LogReader {
        LogReader::open(
            self.settings.driver.format().unwrap(),
            self.files.clone(),
            self.rotation.clone(),
            filter,
            tail,
        )
        .unwrap()
    }

    fn read(&self, filter: Filter, tail: Option<usize>) -> Vec<u64> {
        drain(&mut self.reader(filter, tail))
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.files.dir().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn drain(r: &mut LogReader) -> Vec<u64> {
    let mut out = Vec::new();
    let p = r
        .read(&mut |e| {
            let s = String::from_utf8(e.line).unwrap();
            out.push(s.trim().trim_start_matches("line-").parse().unwrap());
            true
        })
        .unwrap();
    assert_ne!(p, Progress::ClientGone);
    out
}

fn both() -> Filter {
    Filter {
        stdout: true,
        stderr: true,
        ..Default::default()
    }
}

fn range(a: u64, b: u64) -> Vec<u64> {
    (a..=b).collect()
}

#[test]
fn json_file_rotates_and_reads_across_its_files() {
    // Each json line is about 75 bytes: 1k holds 14 of them.
    let l = log("json-file", &[("max-size", "1k"), ("max-file", "3")]);
    let mut w = l.writer();
    l.write(&mut w, 1, 300);
    assert_eq!(l.names(), ["c.log", "c.log.1", "c.log.2"]);
    for n in l.names() {
        let size = std::fs::metadata(l.files.dir().unwrap().join(&n))
            .unwrap()
            .len();
        assert!(size < 1100, "{n}: {size}");
    }
    let all = l.read(both(), None);
    let first = all[0];
    assert!(
        first > 1 && first < 290,
        "rotation dropped the oldest: {first}"
    );
    assert_eq!(all, range(first, 300), "consecutive, oldest file first");
    assert_eq!(l.read(both(), Some(3)), [298, 299, 300]);
    assert_eq!(l.read(both(), Some(0)), Vec::<u64>::new());
    // A tail longer than the newest file reaches into the older ones.
    assert_eq!(l.read(both(), Some(25)), range(276, 300));
    assert_eq!(l.read(both(), Some(10_000)), all);
}

#[test]
fn filters_and_tail_count_what_is_kept() {
    for driver in ["json-file", "local"] {
        let l = log(
            driver,
            &[("max-size", "1k"), ("max-file", "4"), ("compress", "false")],
        );
        let mut w = l.writer();
        l.write(&mut w, 1, 100);
        let stdout = Filter {
            stdout: true,
            ..Default::default()
        };
        assert_eq!(l.read(stdout.clone(), Some(3)), [96, 98, 100], "{driver}");
        let window = Filter {
            since: Some(t(90)),
            until: Some(t(95)),
            ..both()
        };
        assert_eq!(l.read(window.clone(), None), range(90, 95), "{driver}");
        assert_eq!(l.read(window, Some(2)), [94, 95], "{driver}");
        let stderr_since = Filter {
            stderr: true,
            since: Some(t(97)),
            ..Default::default()
        };
        assert_eq!(l.read(stderr_since, None), [97, 99], "{driver}");
    }
}

#[test]
fn compressed_rotated_files_read_like_plain_ones() {
    for driver in ["json-file", "local"] {
        let l = log(
            driver,
            &[("max-size", "1k"), ("max-file", "3"), ("compress", "true")],
        );
        let mut w = l.writer();
        l.write(&mut w, 1, 200);
        assert_eq!(l.names(), ["c.log", "c.log.1.gz", "c.log.2.gz"], "{driver}");
        let all = l.read(both(), None);
        assert_eq!(all, range(all[0], 200), "{driver}");
        assert!(all[0] > 1);
        // The tail reaches into both gzipped files.
        let n = all.len() - 2;
        assert_eq!(
            l.read(both(), Some(n)),
            range(201 - n as u64, 200),
            "{driver}"
        );
        let odd = Filter {
            stderr: true,
            ..Default::default()
        };
        assert_eq!(l.read(odd, Some(2)), [197, 199], "{driver}");
    }
}

#[test]
fn local_has_dockerds_defaults_and_rotates_too() {
    let l = log("local", &[]);
    assert_eq!(
        (
            l.settings.max_size,
            l.settings.max_file,
            l.settings.compress
        ),
        (Some(20 * 1024 * 1024), 5, true)
    );
    let l = log("local", &[("max-size", "1k"), ("max-file", "2")]);
    let mut w = l.writer();
    l.write(&mut w, 1, 300);
    assert_eq!(l.names(), ["c.log", "c.log.1.gz"]);
    let all = l.read(both(), None);
    assert_eq!(all, range(all[0], 300));
    assert!(all[0] > 1);
    assert_eq!(l.read(both(), Some(3)), [298, 299, 300]);
}

#[test]
fn one_file_starts_again_empty() {
    let l = log("json-file", &[("max-size", "1k")]);
    let mut w = l.writer();
    l.write(&mut w, 1, 100);
    assert_eq!(l.names(), ["c.log"]);
    let all = l.read(both(), None);
    assert_eq!(all, range(all[0], 100));
    assert!(all.len() <= 15);
}

#[test]
fn a_follower_reads_across_rotations() {
    for (driver, compress) in [
        ("json-file", "false"),
        ("json-file", "true"),
        ("local", "true"),
    ] {
        let l = log(
            driver,
            &[
                ("max-size", "1k"),
                ("max-file", "10"),
                ("compress", compress),
            ],
        );
        let mut w = l.writer();
        l.write(&mut w, 1, 5);
        let mut r = l.reader(both(), Some(2));
        assert_eq!(drain(&mut r), [4, 5]);
        assert_eq!(drain(&mut r), Vec::<u64>::new());
        // Several rotations between two reads: nothing is skipped while the files remain.
        l.write(&mut w, 6, 100);
        assert!(*l.rotation.lock() >= 2, "{driver}");
        assert_eq!(drain(&mut r), range(6, 100), "{driver} compress={compress}");
        l.write(&mut w, 101, 101);
        assert_eq!(drain(&mut r), [101]);
    }
}

#[test]
fn a_follower_waits_for_the_current_file_and_stops_after_until() {
    let l = log("local", &[]);
    let mut r = l.reader(
        Filter {
            until: Some(t(3)),
            ..both()
        },
        None,
    );
    assert_eq!(drain(&mut r), Vec::<u64>::new(), "no file yet");
    let mut w = l.writer();
    l.write(&mut w, 1, 5);
    let mut got = Vec::new();
    let p = r
        .read(&mut |e| {
            got.push(e.line);
            true
        })
        .unwrap();
    assert_eq!(p, Progress::Ended);
    assert_eq!(got.len(), 3);
}

#[test]
fn a_partial_entry_waits_for_its_end() {
    for driver in ["json-file", "local"] {
        let l = log(driver, &[]);
        let mut w = l.writer();
        l.write(&mut w, 1, 2);
        let format = l.settings.driver.format().unwrap();
        let mut entry = Vec::new();
        format.encode(Stream::Stdout, t(3), b"line-3\n", &mut entry);
        let cut = entry.len() / 2;
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&l.files.current)
            .unwrap();
        f.write_all(&entry[..cut]).unwrap();
        assert_eq!(l.read(both(), Some(1)), [2], "{driver}");
        let mut r = l.reader(both(), None);
        assert_eq!(drain(&mut r), [1, 2], "{driver}");
        f.write_all(&entry[cut..]).unwrap();
        assert_eq!(drain(&mut r), [3], "{driver}");
    }
}

#[test]
fn a_stopped_client_stops_the_read() {
    let l = log("json-file", &[]);
    let mut w = l.writer();
    l.write(&mut w, 1, 10);
    let mut r = l.reader(both(), None);
    let mut n = 0;
    let p = r
        .read(&mut |_| {
            n += 1;
            n < 3
        })
        .unwrap();
    assert_eq!((p, n), (Progress::ClientGone, 3));
}

#[test]
fn the_tail_of_a_log_of_many_blocks_is_found_from_its_end() {
    for driver in ["json-file", "local"] {
        let l = log(
            driver,
            &[("compress", "false"), ("max-file", "1"), ("max-size", "1g")],
        );
        let mut w = l.writer();
        let pad = "x".repeat(200);
        for i in 0..20_000u64 {
            w.write(
                Stream::Stdout,
                t(i),
                &[format!("line-{i} {pad}\n").as_bytes()],
            )
            .unwrap();
        }
        assert!(std::fs::metadata(&l.files.current).unwrap().len() > 4_000_000);
        let mut r = l.reader(both(), Some(2));
        let mut got = Vec::new();
        r.read(&mut |e| {
            got.push(String::from_utf8(e.line).unwrap());
            true
        })
        .unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with("line-19998 "), "{driver}");
        assert!(got[1].starts_with("line-19999 "), "{driver}");
    }
}
