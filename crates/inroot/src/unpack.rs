//! Unpacking an image layer: every entry is placed inside the destination as `tar -x` run
//! in a chroot of it would place it (its folder resolved with `RESOLVE_IN_ROOT`, so a link in
//! the layer to `/tmp` means the layer's own `tmp`), then made with `*at` calls relative to
//! that folder's descriptor. Docker's whiteout files become overlay's (`.wh.NAME` → a 0/0
//! character device, `.wh..wh..opq` → the opaque xattr); device nodes and FIFOs are kept as
//! nodes; owners, modes, times and `SCHILY.xattr.*` records are applied.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, fchmod, fchmodat, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, symlinkat};

use crate::resolve::{Meta, reopen, split_last};
use crate::walk::remove_all_at;
use crate::{Found, Root, RootError, Tree};

/// Unpacks the layer tar `src` into the folder `dest` (made if missing). Returns the bytes of
/// regular-file content. Entries whose names hold `..` are refused, as are link targets that
/// name nothing in the layer; nothing is ever written outside `dest`.
pub fn unpack(src: impl Read, dest: &Path) -> Result<u64, RootError> {
    std::fs::create_dir_all(dest).map_err(RootError::std_io(dest))?;
    let root = Root::open(dest)?;
    let mut ar = tar::Archive::new(src);
    let mut size = 0u64;
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    let as_root = Uid::effective().is_root();
    for entry in ar.entries().map_err(RootError::Stream)? {
        let mut e = entry.map_err(RootError::Stream)?;
        let path = e.path().map_err(RootError::Stream)?.into_owned();
        let bad = |reason: &str| RootError::BadEntry {
            path: path.clone(),
            reason: reason.into(),
        };
        if !path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(bad("it leaves the layer"));
        }
        let (parent, Some(name)) = split_last(&path) else {
            // The layer's root itself ("./"): nothing to make.
            continue;
        };
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let pfd = root.mkdir_all(&parent)?;
        let name_bytes = name.as_encoded_bytes();
        if name_bytes == b".wh..wh..opq" {
            let dir =
                reopen(&pfd, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(RootError::io(&path))?;
            xattr::FileExt::set_xattr(&std::fs::File::from(dir), "trusted.overlay.opaque", b"y")
                .map_err(RootError::std_io(&path))?;
            continue;
        }
        if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
            if matches!(hidden, b"" | b"." | b"..") {
                // `.wh..` and `.wh...` would white out the folder itself or its parent
                // (for the layer's top folder, a folder outside the layer).
                return Err(bad("a whiteout of no name, `.` or `..`"));
            }
            let hidden = OsStr::from_bytes(hidden);
            remove_all_at(&pfd, hidden).map_err(RootError::io(&path))?;
            mknodat(
                &pfd,
                hidden,
                SFlag::S_IFCHR,
                Mode::empty(),
                nix::sys::stat::makedev(0, 0),
            )
            .map_err(RootError::io(&path))?;
            continue;
        }
        let xattrs = pax_xattrs(&mut e)?;
        let h = e.header().clone();
        let mode = Mode::from_bits_truncate(h.mode().map_err(RootError::Stream)? & 0o7777);
        // Empty numeric fields read as 0, as Go's archive/tar (and so dockerd) reads them.
        let uid = h.uid().unwrap_or(0) as u32;
        let gid = h.gid().unwrap_or(0) as u32;
        let mtime = h.mtime().unwrap_or(0) as i64;
        let name = name.as_os_str();
        let existing = openat(
            &pfd,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .and_then(|fd| Meta::of(&fd).ok());
        // A folder over a folder merges; anything else replaces what was there.
        if let Some(m) = existing
            && !(kind.is_dir() && m.is_dir())
        {
            remove_all_at(&pfd, name).map_err(RootError::io(&path))?;
        }
        let io = RootError::io(&path);
        match kind {
            tar::EntryType::Directory => {
                if existing.is_none_or(|m| !m.is_dir()) {
                    mkdirat(&pfd, name, Mode::from_bits_truncate(0o700)).map_err(io)?;
                }
                let fd = openat(
                    &pfd,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(RootError::io(&path))?;
                finish(&fd, as_root, uid, gid, mode, &xattrs, &path)?;
                dir_times.push((path.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = openat(
                    &pfd,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(io)?;
                let mut f = std::fs::File::from(fd);
                size += io::copy(&mut e, &mut f).map_err(RootError::Stream)?;
                let fd = OwnedFd::from(f);
                finish(&fd, as_root, uid, gid, mode, &xattrs, &path)?;
                set_times(&fd, mtime).map_err(RootError::io(&path))?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(RootError::Stream)?
                    .ok_or_else(|| bad("a link without a target"))?;
                symlinkat(target.as_ref(), &pfd, name).map_err(io)?;
                own_at(&pfd, name, as_root, uid, gid).map_err(RootError::io(&path))?;
                let t = TimeSpec::new(mtime, 0);
                nix::sys::stat::utimensat(&pfd, name, &t, &t, UtimensatFlags::NoFollowSymlink)
                    .map_err(RootError::io(&path))?;
            }
            tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(RootError::Stream)?
                    .ok_or_else(|| bad("a link without a target"))?
                    .into_owned();
                if !target
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
                {
                    return Err(bad("its link target leaves the layer"));
                }
                let src = match root.lookup(&target, false)? {
                    Some(Found::Entry { fd, .. }) => fd,
                    Some(Found::Dir(_)) => return Err(bad("a hard link to a folder")),
                    None => return Err(bad("its link target is not in the layer")),
                };
                linkat(&src, "", &pfd, name, AtFlags::AT_EMPTY_PATH).map_err(io)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (sflag, dev) = match kind {
                    tar::EntryType::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let major = h.device_major().map_err(RootError::Stream)?.unwrap_or(0);
                        let minor = h.device_minor().map_err(RootError::Stream)?.unwrap_or(0);
                        let sflag = if kind == tar::EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (sflag, nix::sys::stat::makedev(major.into(), minor.into()))
                    }
                };
                mknodat(&pfd, name, sflag, mode, dev).map_err(io)?;
                own_at(&pfd, name, as_root, uid, gid).map_err(RootError::io(&path))?;
                fchmodat(
                    &pfd,
                    name,
                    mode,
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(RootError::io(&path))?;
            }
            other => {
                return Err(bad(&format!("unsupported entry type {other:?}")));
            }
        }
    }
    // Folder times last: making what is inside a folder changes its time.
    for (path, mtime) in dir_times.into_iter().rev() {
        if let Some(Found::Dir(mut d)) = root.lookup(&path, false)? {
            let fd = reopen(&d.swap_remove(0), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(RootError::io(&path))?;
            set_times(&fd, mtime).map_err(RootError::io(&path))?;
        }
    }
    Ok(size)
}

/// Owner, then mode (a chown clears set-id bits), then extended attributes.
fn finish(
    fd: &OwnedFd,
    as_root: bool,
    uid: u32,
    gid: u32,
    mode: Mode,
    xattrs: &[(String, Vec<u8>)],
    path: &Path,
) -> Result<(), RootError> {
    if as_root {
        fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(RootError::io(path))?;
    }
    fchmod(fd, mode).map_err(RootError::io(path))?;
    if !xattrs.is_empty() {
        let f = std::fs::File::from(reopen(fd, OFlag::O_RDONLY).map_err(RootError::io(path))?);
        for (k, v) in xattrs {
            match xattr::FileExt::set_xattr(&f, k, v) {
                Ok(()) => {}
                // A file system without that namespace, or trusted.* without the right.
                Err(e)
                    if [Errno::EPERM, Errno::EOPNOTSUPP]
                        .iter()
                        .any(|n| e.raw_os_error() == Some(*n as i32)) => {}
                Err(e) => return Err(RootError::std_io(path)(e)),
            }
        }
    }
    Ok(())
}

/// The owner of `name` in `dir` (the entry itself, never what a link names); as root only.
fn own_at(dir: &OwnedFd, name: &OsStr, as_root: bool, uid: u32, gid: u32) -> nix::Result<()> {
    if !as_root {
        return Ok(());
    }
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

fn set_times(fd: &OwnedFd, mtime: i64) -> nix::Result<()> {
    let t = TimeSpec::new(mtime, 0);
    nix::sys::stat::futimens(fd, &t, &t)
}

/// The `SCHILY.xattr.*` records of an entry, as (name, value).
fn pax_xattrs<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<Vec<(String, Vec<u8>)>, RootError> {
    let mut out = Vec::new();
    if let Some(exts) = e.pax_extensions().map_err(RootError::Stream)? {
        for ext in exts {
            let ext = ext.map_err(RootError::Stream)?;
            if let Ok(k) = ext.key()
                && let Some(name) = k.strip_prefix("SCHILY.xattr.")
            {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// One tar entry to craft: name, kind, link target or data.
    #[derive(Debug, Clone)]
    enum E {
        File(String, Vec<u8>),
        Dir(String),
        Sym(String, String),
        Hard(String, String),
    }

    /// A tar with names written raw (the builder itself refuses some of what an attacker
    /// would send).
    fn craft(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_mtime(1);
            let (name, data, link): (&str, &[u8], Option<&str>) = match e {
                E::File(n, d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    (n, d, None)
                }
                E::Dir(n) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    (n, &[], None)
                }
                E::Sym(n, t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    (n, &[], Some(t))
                }
                E::Hard(n, t) => {
                    h.set_entry_type(tar::EntryType::Link);
                    (n, &[], Some(t))
                }
            };
            h.set_size(data.len() as u64);
            let g = h.as_gnu_mut().unwrap();
            g.name = [0; 100];
            g.name[..name.len().min(100)].copy_from_slice(&name.as_bytes()[..name.len().min(100)]);
            if let Some(t) = link {
                g.linkname = [0; 100];
                g.linkname[..t.len().min(100)].copy_from_slice(&t.as_bytes()[..t.len().min(100)]);
            }
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// Every path under `dir` (links not followed) with its kind, size and content hash.
    fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p == skip {
                    continue;
                }
                let m = std::fs::symlink_metadata(&p).unwrap();
                let what = if m.is_dir() {
                    todo.push(p.clone());
                    format!("dir {:o}", m.mode())
                } else if m.file_type().is_symlink() {
                    format!("link {}", std::fs::read_link(&p).unwrap().display())
                } else {
                    format!("{:o} {:?}", m.mode(), std::fs::read(&p).ok())
                };
                out.insert(p, what);
            }
        }
        out
    }

    struct Sandbox {
        _d: tempfile::TempDir,
        top: PathBuf,
        outside: PathBuf,
        dest: PathBuf,
    }

    fn sandbox() -> Sandbox {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().to_path_buf();
        let outside = top.join("outside");
        std::fs::create_dir_all(outside.join("victim_dir")).unwrap();
        std::fs::write(outside.join("victim_dir/victim.txt"), "keep me").unwrap();
        std::fs::write(outside.join("secret"), "host secret").unwrap();
        Sandbox {
            dest: top.join("dest"),
            outside,
            top,
            _d: d,
        }
    }

    #[test]
    fn whiteouts_through_a_link_never_touch_the_links_target_on_the_host() {
        let s = sandbox();
        let victim = s.outside.join("victim_dir");
        let before = snapshot(&s.top, &s.dest);
        for tar in [
            craft(&[
                E::Sym("a".into(), victim.display().to_string()),
                E::File("a/.wh.victim.txt".into(), vec![]),
            ]),
            craft(&[
                E::Sym("b".into(), s.outside.display().to_string()),
                E::File("b/NEW/.wh.x".into(), vec![]),
            ]),
            craft(&[
                E::Sym("c".into(), "../../outside".into()),
                E::File("c/.wh..wh..opq".into(), vec![]),
            ]),
        ] {
            // The link's target is not in the layer: refused, as dockerd's MkdirAll in its
            // chroot refuses it.
            let err = unpack(&tar[..], &s.dest).unwrap_err();
            assert_eq!(snapshot(&s.top, &s.dest), before, "{err}");
        }
    }

    #[test]
    fn deep_entries_and_deep_replaced_folders_unpack_on_a_blocking_threads_stack() {
        let s = sandbox();
        // 2047 levels: the deepest name the kernel resolves (PATH_MAX); a folder entry there,
        // then a file replacing the top folder (the whole tree removed).
        let deep = vec!["a"; 2047].join("/");
        let tar = craft_long(&[
            E::Dir(deep.clone()),
            E::File(format!("{deep}/f"), b"x".to_vec()),
            E::File("a".into(), b"replaced".to_vec()),
        ]);
        let dest = s.dest.clone();
        crate::walk::tests::on_blocking_threads_stack(move || unpack(&tar[..], &dest).unwrap());
        assert_eq!(std::fs::read(s.dest.join("a")).unwrap(), b"replaced");
    }

    /// As `craft`, names of any length (GNU long-name records).
    fn craft_long(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            let (name, data, kind): (&str, &[u8], _) = match e {
                E::File(n, d) => (n, d, tar::EntryType::Regular),
                E::Dir(n) => (n, &[], tar::EntryType::Directory),
                _ => unreachable!(),
            };
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_of_dot_and_dot_dot_are_refused_and_remove_nothing() {
        let s = sandbox();
        // A sibling of the destination (another layer in the store) and something in it.
        std::fs::create_dir_all(s.top.join("sibling")).unwrap();
        std::fs::write(s.top.join("sibling/f"), "other layer").unwrap();
        for name in [".wh...", ".wh..", "d/.wh...", "d/.wh.."] {
            std::fs::create_dir_all(s.dest.join("d")).unwrap();
            std::fs::write(s.dest.join("d/kept"), "kept").unwrap();
            let before = snapshot(&s.top, &s.top.join("none"));
            let tar = craft(&[E::Dir("d".into()), E::File(name.into(), vec![])]);
            let err = unpack(&tar[..], &s.dest).unwrap_err();
            assert!(matches!(err, RootError::BadEntry { .. }), "{name}: {err}");
            assert_eq!(
                snapshot(&s.top, &s.top.join("none")),
                before,
                "{name} removed something"
            );
        }
    }

    #[test]
    #[ignore = "needs root: mknod of a whiteout"]
    fn whiteouts_through_a_link_land_where_the_link_leads_inside_the_layer() {
        let s = sandbox();
        let before = snapshot(&s.top, &s.dest);
        let tar = craft(&[
            E::Dir("v".into()),
            E::File("v/victim.txt".into(), b"layer's own".to_vec()),
            E::Sym("a".into(), "/v".into()),
            E::File("a/.wh.victim.txt".into(), vec![]),
            E::Sym("up".into(), "../../../..".into()),
            E::File("up/v/.wh..wh..opq".into(), vec![]),
        ]);
        unpack(&tar[..], &s.dest).unwrap();
        assert_eq!(snapshot(&s.top, &s.dest), before);
        let wh = std::fs::symlink_metadata(s.dest.join("v/victim.txt")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        let opq = xattr::get(s.dest.join("v"), "trusted.overlay.opaque").unwrap();
        assert_eq!(opq.as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn files_through_links_and_hard_links_stay_in_the_layer() {
        let s = sandbox();
        let before = snapshot(&s.top, &s.dest);
        let secret = s.outside.join("secret").display().to_string();
        let tar = craft(&[
            E::Dir("outside".into()),
            E::Sym("x".into(), "/outside".into()),
            E::File("x/secret".into(), b"mine".to_vec()),
            E::Sym("y".into(), "../../..".into()),
            E::File("y/outside/other".into(), b"also mine".to_vec()),
            E::Sym("s".into(), secret.clone()),
            // A hard link to the link itself, not to what it names.
            E::Hard("h".into(), "s".into()),
        ]);
        unpack(&tar[..], &s.dest).unwrap();
        assert_eq!(snapshot(&s.top, &s.dest), before);
        assert_eq!(
            std::fs::read(s.dest.join("outside/secret")).unwrap(),
            b"mine"
        );
        assert_eq!(
            std::fs::read(s.dest.join("outside/other")).unwrap(),
            b"also mine"
        );
        let h = std::fs::symlink_metadata(s.dest.join("h")).unwrap();
        assert!(h.file_type().is_symlink());
        for bad in [
            E::Hard("h2".into(), "../outside/secret".into()),
            E::Hard("h3".into(), secret.clone()),
            E::File("../escape".into(), b"x".to_vec()),
        ] {
            let err = unpack(&craft(std::slice::from_ref(&bad))[..], &s.dest).unwrap_err();
            assert!(matches!(err, RootError::BadEntry { .. }), "{bad:?}: {err}");
        }
        // A link whose target is not in the layer: refused, nothing made on the host.
        let tar = craft(&[
            E::Sym("z".into(), s.outside.display().to_string()),
            E::File("z/secret".into(), b"x".to_vec()),
        ]);
        unpack(&tar[..], &s.dest).unwrap_err();
        assert_eq!(snapshot(&s.top, &s.dest), before);
    }

    #[test]
    #[ignore = "needs root: mknod of device nodes"]
    fn device_nodes_and_fifos_are_kept_as_nodes() {
        let s = sandbox();
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, major, minor) in [
            ("dev/null", tar::EntryType::Char, 1, 3),
            ("dev/loop9", tar::EntryType::Block, 7, 9),
            ("run/fifo", tar::EntryType::Fifo, 0, 0),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o666);
            h.set_size(0);
            h.set_device_major(major).unwrap();
            h.set_device_minor(minor).unwrap();
            b.append_data(&mut h, name, std::io::empty()).unwrap();
        }
        unpack(&b.into_inner().unwrap()[..], &s.dest).unwrap();
        let null = std::fs::symlink_metadata(s.dest.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
        assert_eq!(null.mode() & 0o777, 0o666);
        let lp = std::fs::symlink_metadata(s.dest.join("dev/loop9")).unwrap();
        assert!(lp.file_type().is_block_device());
        assert!(
            std::fs::symlink_metadata(s.dest.join("run/fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            let part = prop::sample::select(vec![
                "a",
                "b",
                "c",
                ".wh.a",
                ".wh..wh..opq",
                ".wh..",
                ".wh...",
                "..",
                ".",
            ]);
            prop::collection::vec(part, 1..4).prop_map(|v| v.join("/"))
        }

        fn target(outside: String) -> impl Strategy<Value = String> {
            prop_oneof![
                name(),
                Just("/".to_string()),
                Just("..".to_string()),
                Just("../outside".to_string()),
                Just("../../../../".to_string()),
                Just(outside.clone()),
                Just(format!("{outside}/victim_dir")),
                Just(format!("{outside}/secret")),
            ]
        }

        fn entry(outside: String) -> impl Strategy<Value = E> {
            prop_oneof![
                (name(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(n, d)| E::File(n, d)),
                name().prop_map(E::Dir),
                (name(), target(outside.clone())).prop_map(|(n, t)| E::Sym(n, t)),
                (name(), target(outside)).prop_map(|(n, t)| E::Hard(n, t)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            /// Whatever a layer holds, nothing outside the destination changes.
            #[test]
            fn nothing_is_written_outside_the_destination(
                seed in prop::collection::vec(entry("/OUTSIDE".into()), 1..12)
            ) {
                let s = sandbox();
                let outside = s.outside.display().to_string();
                let fix = |t: &String| t.replace("/OUTSIDE", &outside);
                let entries: Vec<E> = seed.iter().map(|e| match e {
                    E::Sym(n, t) => E::Sym(n.clone(), fix(t)),
                    E::Hard(n, t) => E::Hard(n.clone(), fix(t)),
                    other => other.clone(),
                }).collect();
                let before = snapshot(&s.top, &s.dest);
                let _ = unpack(&craft(&entries)[..], &s.dest);
                prop_assert_eq!(snapshot(&s.top, &s.dest), before);
            }
        }
    }
}
