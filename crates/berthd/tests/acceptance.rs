//! Tier 3: `../shared/acceptance/docker-cli.sh`, the real docker CLI against a fresh berthd,
//! for the sections berth passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::path::PathBuf;
use std::process::Command;

/// The sections berth passes.
const SECTIONS: &str = "daemon images run exec logs lifecycle limits security runtimes reload errors \
     restore registry network ports health logging volumes build";

/// `logs: --tail 1` expects the last of `echo one; echo two >&2; echo three` to be "three",
/// but stdout and stderr travel through two pipes inside containerd's shim, whose copies
/// can reorder them: measured here, dockerd 20.10 logs "two" last in 5 of 12 runs, berth
/// about as often. That one check may fail in the full run; the `logs` section is then run
/// on its own, up to six times, and must pass completely once (a correct daemon then fails
/// this test about once in 250 runs).
const FLAKY_CHECK: &str = "logs: --tail 1";
const FLAKY_SECTION: &str = "logs";

#[test]
#[ignore = "needs root: the docker CLI against a berthd with containerd and runc"]
fn acceptance_sections_pass() {
    common::require_root_tier(
        "acceptance",
        &[
            "containerd",
            "runc",
            "docker",
            "busybox",
            "curl",
            "docker-registry",
            "skopeo",
            "htpasswd",
            "nft",
            "ip",
        ],
    );
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/acceptance/docker-cli.sh");
    assert!(
        script.is_file(),
        "acceptance: tier 3 needs {}",
        script.display()
    );
    let run = |sections: &str| {
        let out = Command::new("bash")
            .arg(&script)
            .env("SECTIONS", sections)
            .env("DAEMON", common::BERTHD)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let ok = out.status.success()
            && stdout.contains(" 0 failed")
            && !stdout.contains("acceptance: 0 passed");
        (ok, stdout, stderr)
    };
    let (ok, stdout, stderr) = run(SECTIONS);
    if ok {
        return;
    }
    let failed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL  "))
        .map(|l| l.split(": want").next().unwrap_or(l))
        .collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|f| *f == FLAKY_CHECK),
        "acceptance failed:\n{stdout}\n{stderr}"
    );
    let mut last = String::new();
    for attempt in 1..=6 {
        let (ok, stdout, _) = run(FLAKY_SECTION);
        if ok {
            if attempt > 1 {
                eprintln!("acceptance section {FLAKY_SECTION} passed on attempt {attempt}");
            }
            return;
        }
        last = stdout;
    }
    panic!("acceptance section {FLAKY_SECTION} failed six times:\n{last}");
}
