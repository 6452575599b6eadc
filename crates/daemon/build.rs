//! Records the compiler and commit berthd was built from, for `docker version`.
use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = output(&rustc, &["--version"]);
    println!("cargo:rustc-env=BERTH_RUSTC_VERSION={version}");
    let commit = output("git", &["rev-parse", "--short=7", "HEAD"]);
    println!("cargo:rustc-env=BERTH_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
}
