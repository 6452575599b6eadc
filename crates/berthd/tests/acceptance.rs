//! Tier 3: `../shared/acceptance/docker-cli.sh`, the real docker CLI against a fresh berthd,
//! for the sections berth claims. A section joins `SECTIONS` when its issue is resolved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

const SECTIONS: &str = "daemon";

#[test]
fn acceptance_sections_pass() {
    if !common::root_tier(
        "acceptance",
        &["containerd", "runc", "docker", "busybox", "curl"],
    ) {
        return;
    }
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/acceptance/docker-cli.sh");
    if !script.is_file() {
        let why = format!("acceptance: tier 3 needs {}", script.display());
        if std::env::var("BERTH_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
            panic!("{why}");
        }
        #[allow(clippy::print_stderr)]
        {
            eprintln!("SKIPPED {why}");
        }
        return;
    }
    let out = Command::new("bash")
        .arg(&script)
        .env("SECTIONS", SECTIONS)
        .env("DAEMON", common::BERTHD)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(" 0 failed"),
        "acceptance failed:\n{stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains("acceptance: 0 passed"),
        "ran no check:\n{stdout}"
    );
}
