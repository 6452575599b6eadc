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
    // A new commit changes HEAD or the branch it points at.
    let git_dir = output("git", &["rev-parse", "--absolute-git-dir"]);
    if !git_dir.is_empty() {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        let head = std::fs::read_to_string(format!("{git_dir}/HEAD")).unwrap_or_default();
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed={git_dir}/{r}");
        }
    }
}
