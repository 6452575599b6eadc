//! Tier 2 (root): berthd's memory stays bounded whatever a container logged and however
//! slowly its clients read: `docker logs --tail` of a 200 MB log seeks from the end, a whole
//! read streams, and clients that never read hold a few blocks, not the log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::io::{BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{TestDaemon, import_busybox, wait_until};

/// A figure of berthd's from /proc/PID/status, in KiB.
fn status_kib(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

const LIMIT_KIB: u64 = 64 * 1024;
const LOG_BYTES: u64 = 200 * 1024 * 1024;

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn logs_of_a_200_mb_log_keep_berthds_memory_flat() {
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    let (code, _, err) = d.docker(&[
        "run",
        "--name",
        "big",
        "--network",
        "none",
        "test/busybox:1",
        "true",
    ]);
    assert_eq!(code, 0, "{err}");
    let log = d.inspect("big", "{{.LogPath}}");
    {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&log).unwrap());
        let mut written = 0u64;
        let mut i = 0u64;
        while written < LOG_BYTES {
            let line = format!(
                "{{\"log\":\"line {i} {}\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:01.000000000Z\"}}\n",
                "x".repeat(64)
            );
            w.write_all(line.as_bytes()).unwrap();
            written += line.len() as u64;
            i += 1;
        }
        w.flush().unwrap();
    }
    let pid = d.pid();

    let (code, out, err) = d.docker(&["logs", "--tail", "5", "big"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[4].starts_with("line "), "{out}");

    // Two clients that ask for the whole log and never read it.
    let stuck: Vec<UnixStream> = (0..2)
        .map(|_| {
            let mut s = UnixStream::connect(&d.socket).unwrap();
            write!(
                s,
                "GET /containers/big/logs?stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\n\r\n"
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.request("GET", "/_ping").map(|r| r.0), Some(200));
    let rss = status_kib(pid, "VmRSS:");
    assert!(rss < LIMIT_KIB, "RSS {rss} KiB with two stuck log readers");

    // One client that reads all of it.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    write!(
        s,
        "GET /containers/big/logs?stdout=1&stderr=1 HTTP/1.0\r\nHost: berth\r\n\r\n"
    )
    .unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    // Each line's text, framed, is well over a third of its JSON.
    assert!(total > LOG_BYTES / 3, "read {total} bytes");
    drop(stuck);
    let peak = status_kib(pid, "VmHWM:");
    eprintln!("berthd peak RSS {peak} KiB serving a {LOG_BYTES}-byte log");
    assert!(peak < LIMIT_KIB, "peak RSS {peak} KiB");
    wait_until(
        "the stuck readers are let go",
        Duration::from_secs(10),
        || d.request("GET", "/_ping").is_some_and(|r| r.0 == 200),
    );
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn stdin_a_container_never_reads_keeps_berthds_memory_flat() {
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    d.run_d(&["-i", "--name", "deaf", "test/busybox:1", "sleep", "1000"]);
    let pid = d.pid();
    // Attached with stdin, 200 MB sent as fast as berthd takes them (for 10 s at most) to a
    // process that never reads: berthd held all of it in an unbounded queue (343 MB RSS for
    // 300 MB sent).
    let mut s = UnixStream::connect(&d.socket).unwrap();
    write!(
        s,
        "POST /containers/deaf/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n\
         Host: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101", "{}", String::from_utf8_lossy(&head));
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    while sent < LOG_BYTES && started.elapsed() < Duration::from_secs(10) {
        match s.write(&chunk) {
            Ok(n) => sent += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(d.request("GET", "/_ping").map(|r| r.0), Some(200));
    let rss = status_kib(pid, "VmRSS:");
    eprintln!("berthd RSS {rss} KiB after {sent} bytes of stdin nobody reads");
    assert!(rss < LIMIT_KIB, "RSS {rss} KiB after {sent} bytes of stdin");
    drop(s);
    let (code, _, err) = d.docker(&["rm", "-f", "deaf"]);
    assert_eq!(code, 0, "{err}");
}
