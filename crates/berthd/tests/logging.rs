//! Tier 2 (root): log drivers through the docker CLI: a follower reads across rotations
//! (plain and gzipped), and a container writing hundreds of MB to a rotating log keeps
//! berthd's memory flat.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::{TestDaemon, import_busybox};

const TOOLS: &[&str] = &["containerd", "runc", "docker", "busybox"];

/// A figure of berthd's from /proc/PID/status, in KiB.
fn status_kib(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn a_follower_reads_across_rotations() {
    common::require_root_tier("a_follower_reads_across_rotations", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    for (name, opts) in [
        (
            "fjson",
            &["--log-opt", "max-size=1k", "--log-opt", "max-file=100"][..],
        ),
        (
            "fjsongz",
            &[
                "--log-opt",
                "max-size=1k",
                "--log-opt",
                "max-file=100",
                "--log-opt",
                "compress=true",
            ],
        ),
        (
            "flocal",
            &[
                "--log-driver",
                "local",
                "--log-opt",
                "max-size=1k",
                "--log-opt",
                "max-file=100",
            ],
        ),
    ] {
        // The container waits for its follower, then writes in bursts: many rotations
        // happen between two of the follower's reads.
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[
            "test/busybox:1",
            "sh",
            "-c",
            "sleep 2; i=1; while [ $i -le 600 ]; do echo line-$i; \
             [ $((i % 100)) = 0 ] && sleep 0.2; i=$((i+1)); done",
        ]);
        let (code, _, err) = d.docker(&args);
        assert_eq!(code, 0, "{err}");
        let mut follower = Command::new("docker")
            .args(["logs", "-f", name])
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = String::new();
        follower
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        follower.wait().unwrap();
        let want: Vec<String> = (1..=600).map(|i| format!("line-{i}")).collect();
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got, want, "{name}: every line once, in order");
        let (_, tail, _) = d.docker(&["logs", "--tail", "2", name]);
        assert_eq!(tail, "line-599\nline-600", "{name}");
    }
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn hundreds_of_mb_of_output_keep_berthds_memory_flat() {
    common::require_root_tier("hundreds_of_mb_of_output_keep_berthds_memory_flat", TOOLS);
    const LIMIT_KIB: u64 = 64 * 1024;
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    let pid = d.pid();
    for (name, driver) in [("bigjson", "json-file"), ("biglocal", "local")] {
        // 300 MB of 201-byte lines; rotated at 20 MB into 3 files, uncompressed (the
        // debug build's gzip would be the test's whole run time).
        let (code, _, err) = d.docker(&[
            "run",
            "--name",
            name,
            "--network",
            "none",
            "--log-driver",
            driver,
            "--log-opt",
            "max-size=20m",
            "--log-opt",
            "max-file=3",
            "--log-opt",
            "compress=false",
            "-d",
            "test/busybox:1",
            "sh",
            "-c",
            "yes $(printf %0200d 0) | head -c 300000000",
        ]);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = d.docker(&["wait", name]);
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = d.docker(&["logs", "--tail", "3", name]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 3, "{name}");
        let peak = status_kib(pid, "VmHWM:");
        eprintln!("{name}: berthd peak RSS {peak} KiB after 300 MB of output");
        assert!(peak < LIMIT_KIB, "{name}: peak RSS {peak} KiB");
    }
}
