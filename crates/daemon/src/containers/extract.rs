//! `docker cp` into a container (`PUT /containers/{id}/archive`): a tar stream unpacked into
//! a folder of the container's file system.
//!
//! The unpacking runs in a helper process (berthd re-executed with [`UNTAR_HELPER`]) that
//! chroots into the container's root first, so the container's own symlinks resolve inside it
//! and never reach the host, as dockerd's `docker-untar`. A running container is reached
//! through `/proc/<pid>/root`; a stopped one through a writable overlay of its upper folder
//! over its image, mounted for the copy while its operation lock is held.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncRead;

use crate::{Daemon, DaemonError};

/// berthd's first argument that makes it the extraction helper.
pub const UNTAR_HELPER: &str = "__berth-untar";

/// The helper's exit codes the daemon turns into API errors.
const EXIT_NOT_FOUND: i32 = 3;
const EXIT_NOT_DIR: i32 = 4;
const EXIT_OVERWRITE: i32 = 5;

/// The helper's `main`: `ROOT DEST NO_OVERWRITE_DIR_NON_DIR`, the tar on stdin. Returns the
/// exit code; says why on stderr.
#[allow(clippy::print_stderr)]
pub fn untar_helper_main(args: &[String]) -> i32 {
    let [root, dest, no_overwrite] = args else {
        eprintln!("usage: berthd {UNTAR_HELPER} ROOT DEST NO_OVERWRITE_DIR_NON_DIR");
        return 2;
    };
    if let Err(e) = nix::unistd::chroot(root.as_str()).and_then(|()| nix::unistd::chdir("/")) {
        eprintln!("cannot enter the container's root {root}: {e}");
        return 1;
    }
    match std::fs::metadata(dest) {
        Err(_) => {
            eprintln!("Could not find the file {dest} in container");
            return EXIT_NOT_FOUND;
        }
        Ok(m) if !m.is_dir() => {
            eprintln!("extraction point is not a directory");
            return EXIT_NOT_DIR;
        }
        Ok(_) => {}
    }
    match unpack(
        std::io::stdin().lock(),
        Path::new(dest),
        no_overwrite == "true",
    ) {
        Ok(()) => 0,
        Err(Unpack::Overwrite(m)) => {
            eprintln!("{m}");
            EXIT_OVERWRITE
        }
        Err(Unpack::Io(e)) => {
            eprintln!("{e}");
            1
        }
    }
}

enum Unpack {
    Overwrite(String),
    Io(std::io::Error),
}

/// Unpacks `tar` under `dest`, keeping modes, owners and times; entries that would leave
/// `dest` are skipped. With `no_overwrite_dir_non_dir`, replacing a folder with a file or a
/// file with a folder is refused, as dockerd's `noOverwriteDirNonDir`.
fn unpack(tar: impl Read, dest: &Path, no_overwrite_dir_non_dir: bool) -> Result<(), Unpack> {
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(Unpack::Io)? {
        let mut entry = entry.map_err(Unpack::Io)?;
        if no_overwrite_dir_non_dir {
            let rel = entry.path().map_err(Unpack::Io)?.into_owned();
            let target = dest.join(&rel);
            let is_dir = entry.header().entry_type().is_dir();
            if let Ok(existing) = std::fs::symlink_metadata(&target) {
                if existing.is_dir() && !is_dir {
                    return Err(Unpack::Overwrite(format!(
                        "cannot overwrite directory \"{}\" with non-directory \"{}\"",
                        target.display(),
                        rel.display()
                    )));
                }
                if !existing.is_dir() && is_dir {
                    return Err(Unpack::Overwrite(format!(
                        "cannot overwrite non-directory \"{}\" with directory \"{}\"",
                        target.display(),
                        rel.display()
                    )));
                }
            }
        }
        entry.unpack_in(dest).map_err(Unpack::Io)?;
    }
    Ok(())
}

impl Daemon {
    /// `PUT /containers/{id}/archive?path=`: unpacks `body` (a tar) into the folder `path`.
    pub async fn container_extract(
        &self,
        name: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        body: impl AsyncRead + Send + Unpin + 'static,
    ) -> Result<(), DaemonError> {
        let c = self.containers.get(name)?;
        let _op = c.op.lock().await;
        let record = c.record();
        if record.host_config.readonly_rootfs {
            return Err(DaemonError::Forbidden(
                "container rootfs is marked read-only".into(),
            ));
        }
        let mut view = None;
        let root = if record.state.running() && record.state.pid() > 0 {
            self.paths().host.proc_pid(record.state.pid()).join("root")
        } else {
            let v = self.view_of(&c, true, true)?;
            let root = v.root.clone();
            view = Some(v);
            root
        };
        let helper = std::env::current_exe().map_err(|source| DaemonError::Io {
            path: "/proc/self/exe".into(),
            source,
        })?;
        let mut child = tokio::process::Command::new(&helper)
            .arg(UNTAR_HELPER)
            .arg(&root)
            .arg(path)
            .arg(no_overwrite_dir_non_dir.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| DaemonError::Io {
                path: helper.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take();
        let mut body = body;
        let copy = async {
            if let Some(s) = stdin.as_mut() {
                // The helper may stop reading early (an error); its exit says why.
                let _ = tokio::io::copy(&mut body, s).await;
            }
            drop(stdin.take());
            // What the helper left unread is read and dropped, up to 1 MiB (Go's server
            // drains 256 KiB), so a client still sending a small archive gets the error
            // instead of a broken pipe.
            use tokio::io::AsyncReadExt;
            let _ = tokio::io::copy(&mut (&mut body).take(1 << 20), &mut tokio::io::sink()).await;
        };
        let (_, out) = tokio::join!(copy, async {
            // Read stderr while the body streams, so a chatty helper never blocks.
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut err).await;
            }
            err
        });
        let status = child.wait().await.map_err(|source| DaemonError::Io {
            path: helper.clone(),
            source,
        })?;
        drop(view);
        let message = out.trim().to_string();
        match status.code() {
            Some(0) => {
                self.container_event(&c, "extract-to-dir", &[]);
                Ok(())
            }
            Some(EXIT_NOT_FOUND) => Err(DaemonError::NotFoundPath(format!(
                "Could not find the file {path} in container {name}"
            ))),
            Some(EXIT_NOT_DIR) | Some(EXIT_OVERWRITE) => {
                Err(DaemonError::InvalidParameter(message))
            }
            _ => Err(DaemonError::Task(format!(
                "cannot copy into the container: {message}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn owner(p: &Path) -> Option<(u32, u32)> {
        std::fs::symlink_metadata(p)
            .ok()
            .map(|m| (m.uid(), m.gid()))
    }

    fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_mode(0o640);
                    h.set_uid(1000);
                    h.set_gid(1000);
                    h.set_mtime(0);
                    h.set_cksum();
                    b.append_data(&mut h, name, *d).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    h.set_uid(0);
                    h.set_gid(0);
                    h.set_mtime(0);
                    h.set_cksum();
                    b.append_data(&mut h, name, &[][..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_with_modes() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_of(&[("d", None), ("d/f", Some(b"hi"))]);
        match unpack(&t[..], dir.path(), false) {
            Ok(()) => {}
            Err(Unpack::Io(e)) => panic!("{e:?}"),
            Err(Unpack::Overwrite(e)) => panic!("{e}"),
        }
        assert_eq!(std::fs::read(dir.path().join("d/f")).unwrap(), b"hi");
        let m = std::fs::metadata(dir.path().join("d/f")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o640);
    }

    #[test]
    #[ignore = "needs root: chown"]
    fn unpacks_with_owners() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_of(&[("d", None), ("d/f", Some(b"hi"))]);
        assert!(unpack(&t[..], dir.path(), false).is_ok());
        assert_eq!(owner(&dir.path().join("d/f")), Some((1000, 1000)));
    }

    #[test]
    fn refuses_dir_non_dir_swaps_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("x")).unwrap();
        let t = tar_of(&[("x", Some(b"file"))]);
        assert!(matches!(
            unpack(&t[..], dir.path(), true),
            Err(Unpack::Overwrite(m)) if m.contains("cannot overwrite directory")
        ));
        std::fs::write(dir.path().join("y"), b"").unwrap();
        let t = tar_of(&[("y", None)]);
        assert!(matches!(
            unpack(&t[..], dir.path(), true),
            Err(Unpack::Overwrite(_))
        ));
    }

    #[test]
    fn entries_leaving_the_destination_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        // `append_data` refuses `..`; write the name into the header directly.
        h.as_old_mut().name[..6].copy_from_slice(b"../esc");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let _ = unpack(&t[..], &dest, false);
        assert!(!dir.path().join("esc").exists());
    }
}
