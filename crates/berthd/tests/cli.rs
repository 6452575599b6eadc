//! Tier 1: the binary's command line, without root or containerd.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

fn validate(json: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("daemon.json");
    std::fs::write(&file, json).unwrap();
    let out = Command::new(BERTHD)
        .args(["--validate", "--config-file"])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn validate_rejects_an_unknown_key_naming_it() {
    let (code, out, err) = validate(r#"{"no-such-key": 1}"#);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert!(err.contains("no-such-key"), "{err}");
}

#[test]
fn validate_accepts_debug() {
    let (code, out, _) = validate(r#"{"debug": true}"#);
    assert_eq!(code, Some(0));
    assert_eq!(out, "configuration OK\n");
}

#[test]
fn validate_checks_runtimes_like_start_up() {
    let (code, _, err) = validate(r#"{"runtimes": {"x": {}}}"#);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("runtime x: either a runtimeType or a path must be configured"),
        "{err}"
    );
    let (code, _, err) = validate(r#"{"default-runtime": "nope"}"#);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("specified default runtime 'nope' does not exist"),
        "{err}"
    );
}

#[test]
fn validate_reports_flag_and_file_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("daemon.json");
    std::fs::write(&file, r#"{"debug": false}"#).unwrap();
    let out = Command::new(BERTHD)
        .args(["--validate", "--debug", "--config-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("specified both as a flag and in the configuration file: debug"),
        "{err}"
    );
}

#[test]
fn missing_explicit_config_file_is_an_error() {
    let out = Command::new(BERTHD)
        .args(["--validate", "--config-file", "/no/such/daemon.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn help_is_complete() {
    let out = Command::new(BERTHD).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config-file",
        "--host",
        "--data-root",
        "--exec-root",
        "--pidfile",
        "--containerd",
        "--containerd-namespace",
        "--default-runtime",
        "--add-runtime",
        "--default-ulimit",
        "--live-restore",
        "--log-level",
        "--debug",
        "--validate",
        "--group",
        "--metrics-addr",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
