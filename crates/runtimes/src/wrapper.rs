use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::RuntimeError;

/// The exact bytes of a wrapper script: the binary, its fixed arguments, then the shim's
/// arguments. Arguments are single-quoted so none is split or expanded by the shell.
pub fn wrapper_script_contents(path: &str, args: &[String]) -> String {
    let mut line = shell_quote(path);
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    format!("#!/bin/sh\nexec {line} \"$@\"\n")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Writes (once) the wrapper script for runtime `name` under `dir` and returns its path,
/// `<dir>/<name>-<sha256 hex of the contents>`. An existing file of that name already holds
/// exactly these bytes, so it is left alone; otherwise the script goes to a temporary name,
/// is synced, and is renamed into place, so no reader ever sees a partial script.
pub fn write_wrapper_script(
    dir: &Path,
    name: &str,
    contents: &str,
) -> Result<PathBuf, RuntimeError> {
    let digest = hex::encode(Sha256::digest(contents.as_bytes()));
    let target = dir.join(format!("{name}-{digest}"));
    if target.is_file() {
        return Ok(target);
    }
    let err = |source| RuntimeError::Wrapper {
        path: target.clone(),
        source,
    };
    // A temporary name of this write's own: two writers of one script (runs racing a
    // reload) never write into the same file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{name}-{digest}-{}-{n}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    f.set_permissions(fs::Permissions::from_mode(0o755))
        .map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    fs::rename(&tmp, &target).map_err(err)?;
    if let Ok(d) = fs::File::open(dir) {
        // Persist the rename; a failure here only weakens crash durability.
        let _ = d.sync_all();
    }
    Ok(target)
}

/// Empties and recreates the wrapper-script folder (mode 0700). Only daemon start-up calls
/// this: while a daemon lives its scripts never vanish.
pub fn reset_runtimes_dir(dir: &Path) -> Result<(), RuntimeError> {
    let err = |source| RuntimeError::Wrapper {
        path: dir.to_path_buf(),
        source,
    };
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    fs::create_dir_all(dir).map_err(err)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_quote_what_needs_it() {
        assert_eq!(
            wrapper_script_contents("/usr/bin/runc", &["--log-format".into(), "json".into()]),
            "#!/bin/sh\nexec /usr/bin/runc --log-format json \"$@\"\n"
        );
        assert_eq!(
            wrapper_script_contents("/bin/x", &["a b".into(), "it's".into(), "$HOME".into()]),
            "#!/bin/sh\nexec /bin/x 'a b' 'it'\\''s' '$HOME' \"$@\"\n"
        );
    }

    #[test]
    fn name_is_sha256_of_contents_and_rewrite_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let c = wrapper_script_contents("/bin/true", &["--x".into()]);
        let p = write_wrapper_script(dir.path(), "rt", &c).unwrap();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let digest = hex::encode(Sha256::digest(fs::read(&p).unwrap()));
        assert_eq!(name, format!("rt-{digest}"));
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        assert_eq!(write_wrapper_script(dir.path(), "rt", &c).unwrap(), p);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn script_runs_with_the_fixed_and_given_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let c = wrapper_script_contents("/bin/echo", &["fixed arg".into()]);
        let p = write_wrapper_script(dir.path(), "echo", &c).unwrap();
        let out = std::process::Command::new(&p)
            .arg("given")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "fixed arg given\n");
    }

    #[test]
    fn reset_empties_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let rt = dir.path().join("runtimes");
        reset_runtimes_dir(&rt).unwrap();
        write_wrapper_script(&rt, "a", "#!/bin/sh\n").unwrap();
        reset_runtimes_dir(&rt).unwrap();
        assert_eq!(fs::read_dir(&rt).unwrap().count(), 0);
        assert_eq!(
            fs::metadata(&rt).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
