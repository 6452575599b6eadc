//! Resolving a path inside a root: the kernel's `RESOLVE_IN_ROOT` for one folder, and a walk
//! in user space (one component at a time, by file descriptor, links read and re-walked from
//! the root by us) for a stack of overlay layers and for kernels without openat2.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{Mode, SFlag, fstat};

use crate::RootError;

/// Symbolic links followed in one resolution before giving up, as Linux's limit.
const MAX_LINKS: u32 = 40;

/// What a file is: the fields of its `stat` that berth uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub rdev: u64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
}

impl Meta {
    pub fn of(fd: impl AsFd) -> nix::Result<Meta> {
        let st = fstat(fd)?;
        Ok(Meta {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size.max(0) as u64,
            mtime: st.st_mtime,
            rdev: st.st_rdev,
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink,
        })
    }

    fn kind(&self) -> u32 {
        self.mode & SFlag::S_IFMT.bits()
    }
    pub fn is_dir(&self) -> bool {
        self.kind() == SFlag::S_IFDIR.bits()
    }
    pub fn is_file(&self) -> bool {
        self.kind() == SFlag::S_IFREG.bits()
    }
    pub fn is_symlink(&self) -> bool {
        self.kind() == SFlag::S_IFLNK.bits()
    }
    pub fn is_char_device(&self) -> bool {
        self.kind() == SFlag::S_IFCHR.bits()
    }
    pub fn is_block_device(&self) -> bool {
        self.kind() == SFlag::S_IFBLK.bits()
    }
    pub fn is_fifo(&self) -> bool {
        self.kind() == SFlag::S_IFIFO.bits()
    }
    /// Overlay's whiteout: a 0/0 character device.
    pub fn is_whiteout(&self) -> bool {
        self.is_char_device() && self.rdev == 0
    }
    /// Permission bits with setuid, setgid and sticky.
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// Where a path led.
#[derive(Debug)]
pub enum Found {
    /// A folder: an `O_PATH` descriptor of it in each layer that makes it up, top first (a
    /// plain root has one).
    Dir(Vec<OwnedFd>),
    /// Anything else (a symbolic link only when the last component was not followed): an
    /// `O_PATH` descriptor of it.
    Entry { fd: OwnedFd, meta: Meta },
}

impl Found {
    /// What it is (for a folder, its top layer).
    pub fn meta(&self) -> nix::Result<Meta> {
        match self {
            Found::Dir(d) => d.first().map_or(Err(Errno::EBADF), Meta::of),
            Found::Entry { meta, .. } => Ok(*meta),
        }
    }

    /// Where a symbolic link points (as written in it); `None` for anything else.
    pub fn link_target(&self) -> Option<PathBuf> {
        match self {
            Found::Entry { fd, meta } if meta.is_symlink() => {
                readlinkat(fd, "").ok().map(PathBuf::from)
            }
            _ => None,
        }
    }
}

/// A tree whose paths resolve inside it.
pub trait Tree {
    /// Resolves `path` (absolute or not, as the container names it) inside the tree. The last
    /// component is followed when `follow_last`, or when the path ends in `/` or `/.`.
    /// `None` when it does not exist (a component that is not a folder included).
    fn lookup(&self, path: &Path, follow_last: bool) -> Result<Option<Found>, RootError>;

    /// The contents of the regular file at `path` (links followed inside the tree), `None`
    /// when there is none. Opened without blocking and refused unless regular, so a FIFO or
    /// a device cannot block or flood the caller; longer than `limit` bytes is an error.
    fn read_capped(&self, path: &Path, limit: u64) -> Result<Option<Vec<u8>>, RootError> {
        let Some(found) = self.lookup(path, true)? else {
            return Ok(None);
        };
        let Found::Entry { fd, meta } = found else {
            return Err(RootError::NotRegular { path: path.into() });
        };
        if !meta.is_file() {
            return Err(RootError::NotRegular { path: path.into() });
        }
        if meta.size > limit {
            return Err(RootError::TooLarge {
                path: path.into(),
                limit,
            });
        }
        let f = reopen(&fd, OFlag::O_RDONLY).map_err(RootError::io(path))?;
        let mut out = Vec::with_capacity(meta.size as usize);
        std::fs::File::from(f)
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(RootError::std_io(path))?;
        if out.len() as u64 > limit {
            return Err(RootError::TooLarge {
                path: path.into(),
                limit,
            });
        }
        Ok(Some(out))
    }
}

/// Opens what an `O_PATH` descriptor names, for real, through `/proc/self/fd` (the file
/// itself, whatever its path has become since). Never blocks on a FIFO and never makes a
/// terminal ours.
pub fn reopen(fd: &OwnedFd, flags: OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
        flags | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        Mode::empty(),
    )
}

/// A folder that is `/` for every path resolved in it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    host: PathBuf,
}

impl Root {
    /// Opens the folder `host` (on the host) as a root.
    pub fn open(host: impl Into<PathBuf>) -> Result<Root, RootError> {
        let host = host.into();
        let fd = nix::fcntl::open(
            &host,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(RootError::io(&host))?;
        Ok(Root { fd, host })
    }

    /// Where the root is on the host (for messages and mounts only: never join paths to it).
    pub fn host_path(&self) -> &Path {
        &self.host
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn in_root(&self, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        // The kernel answers EAGAIN when a rename raced a `..`: try again.
        let mut tries = 0;
        loop {
            match openat2(&self.fd, rel, how) {
                Err(Errno::EAGAIN) if tries < 16 => tries += 1,
                r => return r,
            }
        }
    }

    /// Whether `path` names something in this folder with no link on the way (a link as the
    /// last component counts): overlay's view of "this layer has that path".
    pub fn has_plain(&self, path: &Path) -> bool {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let rel = relative(path);
        if rel.as_os_str().is_empty() {
            return true;
        }
        match openat2(&self.fd, &rel, how) {
            Ok(_) => true,
            Err(Errno::ENOSYS) => {
                // Without openat2: one component at a time, none of them followed.
                let mut at = match self.fd.try_clone() {
                    Ok(fd) => fd,
                    Err(_) => return false,
                };
                for name in names(&rel) {
                    match openat(
                        &at,
                        name.as_os_str(),
                        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => at = fd,
                        Err(_) => return false,
                    }
                }
                true
            }
            Err(_) => false,
        }
    }

    /// The folder at `path` in the root, made with its missing parents (mode 0755) as
    /// `mkdir -p` run inside the root would. Without recursion: a path of thousands of
    /// names costs no stack.
    pub fn mkdir_all(&self, path: &Path) -> Result<OwnedFd, RootError> {
        // Up from `path` to the first folder that exists, then down making the rest.
        let mut missing: Vec<OsString> = Vec::new();
        let mut at = path.to_path_buf();
        let mut fd = loop {
            match self.lookup(&at, true)? {
                Some(Found::Dir(mut d)) => break d.swap_remove(0),
                Some(Found::Entry { .. }) => {
                    return Err(RootError::Io {
                        path: at,
                        source: Errno::ENOTDIR.into(),
                    });
                }
                None => {}
            }
            let (parent, Some(name)) = split_last(&at) else {
                return Err(RootError::Io {
                    path: path.into(),
                    source: Errno::ENOENT.into(),
                });
            };
            missing.push(name);
            at = parent;
        };
        while let Some(name) = missing.pop() {
            at.push(&name);
            match nix::sys::stat::mkdirat(&fd, name.as_os_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(RootError::io(&at)(e)),
            }
            fd = openat(
                &fd,
                name.as_os_str(),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(RootError::io(&at))?;
        }
        Ok(fd)
    }
}

impl Tree for Root {
    fn lookup(&self, path: &Path, follow_last: bool) -> Result<Option<Found>, RootError> {
        let follow_last = follow_last || ends_in_separator(path);
        let (parent, last) = split_last(path);
        let r = match last {
            Some(name) if !follow_last => self
                .in_root(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .and_then(|p| {
                    openat(
                        &p,
                        name.as_os_str(),
                        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                }),
            _ => self.in_root(&relative(path), OFlag::O_PATH),
        };
        match r {
            Ok(fd) => found(fd, path).map(Some),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
            Err(Errno::ENOSYS) => {
                let roots = [self.fd.try_clone().map_err(RootError::std_io(path))?];
                Walker {
                    roots: &roots,
                    overlay: false,
                }
                .resolve(path, follow_last)
            }
            Err(e) => Err(RootError::io(path)(e)),
        }
    }
}

fn found(fd: OwnedFd, path: &Path) -> Result<Found, RootError> {
    let meta = Meta::of(&fd).map_err(RootError::io(path))?;
    Ok(if meta.is_dir() {
        Found::Dir(vec![fd])
    } else {
        Found::Entry { fd, meta }
    })
}

/// A stack of overlay layer folders seen as one tree, as overlay would merge them: the top
/// layer first; a whiteout (0/0 character device) hides what is below it, an opaque folder
/// (`trusted.overlay.opaque=y`) hides the folders below it.
#[derive(Debug)]
pub struct Layers {
    dirs: Vec<OwnedFd>,
}

impl Layers {
    /// `top_first`: the container's upper folder, then the image's layers from the top.
    pub fn open(top_first: &[PathBuf]) -> Result<Layers, RootError> {
        let dirs = top_first
            .iter()
            .map(|p| {
                nix::fcntl::open(
                    p,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(RootError::io(p))
            })
            .collect::<Result<_, _>>()?;
        Ok(Layers { dirs })
    }
}

impl Tree for Layers {
    fn lookup(&self, path: &Path, follow_last: bool) -> Result<Option<Found>, RootError> {
        Walker {
            roots: &self.dirs,
            overlay: true,
        }
        .resolve(path, follow_last || ends_in_separator(path))
    }
}

/// One step of a walk: what a name is in the current folder.
enum Step {
    Missing,
    Dir(Vec<OwnedFd>),
    Other { fd: OwnedFd, meta: Meta },
}

/// Resolution in user space. The kernel is never asked to follow a link: every component is
/// opened `O_NOFOLLOW` relative to the folder before it, and a link's target is read and
/// walked again from the root (absolute) or from the link's folder (relative) by us; `..`
/// never goes above the root.
struct Walker<'a> {
    roots: &'a [OwnedFd],
    overlay: bool,
}

impl Walker<'_> {
    fn root_dirs(&self) -> std::io::Result<Vec<OwnedFd>> {
        self.roots.iter().map(|f| f.try_clone()).collect()
    }

    fn step(&self, dirs: &[OwnedFd], name: &OsStr) -> nix::Result<Step> {
        let mut merged = Vec::new();
        for d in dirs {
            let fd = match openat(
                d,
                name,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Err(Errno::ENOENT) => continue,
                r => r?,
            };
            let meta = Meta::of(&fd)?;
            if self.overlay && meta.is_whiteout() {
                break;
            }
            if !meta.is_dir() {
                if merged.is_empty() {
                    return Ok(Step::Other { fd, meta });
                }
                break;
            }
            let opaque = self.overlay && is_opaque(&fd);
            merged.push(fd);
            if opaque {
                break;
            }
        }
        Ok(if merged.is_empty() {
            Step::Missing
        } else {
            Step::Dir(merged)
        })
    }

    /// The folders along `at` (names known to be folders), from the root.
    fn walk_dirs(&self, at: &[OsString]) -> nix::Result<Option<Vec<OwnedFd>>> {
        let mut dirs = self.root_dirs().map_err(io_errno)?;
        for name in at {
            match self.step(&dirs, name)? {
                Step::Dir(d) => dirs = d,
                _ => return Ok(None),
            }
        }
        Ok(Some(dirs))
    }

    fn resolve(&self, path: &Path, follow_last: bool) -> Result<Option<Found>, RootError> {
        let err = RootError::io(path);
        self.resolve_inner(path, follow_last).map_err(err)
    }

    fn resolve_inner(&self, path: &Path, follow_last: bool) -> nix::Result<Option<Found>> {
        let mut todo: VecDeque<OsString> = names(path).collect();
        let mut at: Vec<OsString> = Vec::new();
        let mut dirs = self.root_dirs().map_err(io_errno)?;
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                at.pop();
                match self.walk_dirs(&at)? {
                    Some(d) => dirs = d,
                    None => return Ok(None),
                }
                continue;
            }
            let last = todo.is_empty();
            match self.step(&dirs, &name)? {
                Step::Missing => return Ok(None),
                Step::Dir(d) => {
                    dirs = d;
                    at.push(name);
                }
                Step::Other { fd, meta } if meta.is_symlink() && (!last || follow_last) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = PathBuf::from(readlinkat(&fd, "")?);
                    if target.has_root() {
                        at.clear();
                        dirs = self.root_dirs().map_err(io_errno)?;
                    }
                    let mut rest: Vec<OsString> = names(&target).collect();
                    rest.extend(todo.drain(..));
                    todo = rest.into();
                }
                Step::Other { fd, meta } => {
                    if !last {
                        return Ok(None);
                    }
                    return Ok(Some(Found::Entry { fd, meta }));
                }
            }
        }
        Ok(Some(Found::Dir(dirs)))
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc_eio()))
}

fn libc_eio() -> i32 {
    Errno::EIO as i32
}

/// An opaque overlay folder: `trusted.overlay.opaque` is `y`.
pub(crate) fn is_opaque(dir: &OwnedFd) -> bool {
    reopen(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .ok()
        .and_then(|fd| {
            xattr::FileExt::get_xattr(&std::fs::File::from(fd), "trusted.overlay.opaque").ok()
        })
        .flatten()
        .is_some_and(|v| v == b"y")
}

/// The names of a path, `..` kept (the walk clamps it at the root), `/` and `.` dropped.
fn names(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// The path without its leading `/`.
pub(crate) fn relative(path: &Path) -> PathBuf {
    names(path).collect()
}

/// A path's folder and its last name; no name when it ends in `..` or names the root.
pub(crate) fn split_last(path: &Path) -> (PathBuf, Option<OsString>) {
    let mut all: Vec<OsString> = names(path).collect();
    match all.last() {
        Some(n) if n != ".." => {
            let last = all.pop();
            (all.into_iter().collect(), last)
        }
        _ => (all.into_iter().collect(), None),
    }
}

/// `docker cp`'s rule: a path ending in `/` or `/.` means the folder the last name leads to.
fn ends_in_separator(path: &Path) -> bool {
    let b = path.as_os_str().as_bytes();
    b.ends_with(b"/") || b.ends_with(b"/.") || b == b"."
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path().join("root");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "inside").unwrap();
        symlink("/", r.join("escape")).unwrap();
        symlink("/etc", r.join("etclink")).unwrap();
        symlink("../../..", r.join("etc/up")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        std::fs::write(d.path().join("secret"), "host").unwrap();
        d
    }

    fn read(t: &dyn Tree, p: &str) -> Option<String> {
        t.read_capped(Path::new(p), 1 << 20)
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    }

    fn both(d: &Path) -> Vec<Box<dyn Tree>> {
        let root = d.join("root");
        let fallback = Layers {
            dirs: vec![
                nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap(),
            ],
        };
        vec![Box::new(Root::open(&root).unwrap()), Box::new(fallback)]
    }

    #[test]
    fn links_resolve_inside_the_root_in_both_resolvers() {
        let d = tree();
        for t in both(d.path()) {
            assert_eq!(read(&*t, "/etc/passwd").as_deref(), Some("inside"));
            assert_eq!(read(&*t, "/escape/etc/passwd").as_deref(), Some("inside"));
            assert_eq!(read(&*t, "/etclink/passwd").as_deref(), Some("inside"));
            assert_eq!(read(&*t, "etc/up/etc/passwd").as_deref(), Some("inside"));
            assert_eq!(
                read(&*t, "../../../../etc/passwd").as_deref(),
                Some("inside")
            );
            assert_eq!(read(&*t, "/escape/secret"), None);
            assert_eq!(read(&*t, "/escape/../secret"), None);
            assert!(t.read_capped(Path::new("/loop1"), 10).is_err());
            // The last link itself, unless followed.
            match t.lookup(Path::new("/etclink"), false).unwrap() {
                Some(Found::Entry { meta, .. }) => assert!(meta.is_symlink()),
                other => panic!("{other:?}"),
            }
            assert!(matches!(
                t.lookup(Path::new("/etclink/"), false).unwrap(),
                Some(Found::Dir(_))
            ));
            assert!(
                t.lookup(Path::new("/etc/passwd/x"), false)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking_and_sizes_are_capped() {
        let d = tree();
        let r = d.path().join("root");
        nix::unistd::mkfifo(&r.join("etc/group"), Mode::from_bits_truncate(0o644)).unwrap();
        symlink("/dev/zero", r.join("etc/shadow")).unwrap();
        std::fs::create_dir_all(r.join("dev")).unwrap();
        symlink("/etc/passwd", r.join("dev/zero")).unwrap();
        std::fs::write(r.join("big"), vec![b'x'; 100]).unwrap();
        for t in both(d.path()) {
            let e = t.read_capped(Path::new("/etc/group"), 10).unwrap_err();
            assert!(matches!(e, RootError::NotRegular { .. }), "{e}");
            // /dev/zero is the root's own, which is a link back to its passwd.
            assert_eq!(read(&*t, "/etc/shadow").as_deref(), Some("inside"));
            let e = t.read_capped(Path::new("/big"), 99).unwrap_err();
            assert!(matches!(e, RootError::TooLarge { .. }), "{e}");
            assert_eq!(
                t.read_capped(Path::new("/big"), 100)
                    .unwrap()
                    .unwrap()
                    .len(),
                100
            );
        }
    }

    /// Three layers: the bottom has /etc/passwd, /etc/group and /real/file; the middle a
    /// link /alias -> /real.
    fn three_layers() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let [up, mid, low] = ["up", "mid", "low"].map(|n| d.path().join(n));
        for l in [&up, &mid, &low] {
            std::fs::create_dir_all(l.join("etc")).unwrap();
        }
        std::fs::write(low.join("etc/passwd"), "low").unwrap();
        std::fs::write(low.join("etc/group"), "low-group").unwrap();
        std::fs::create_dir_all(low.join("real")).unwrap();
        std::fs::write(low.join("real/file"), "low-real").unwrap();
        symlink("/real", mid.join("alias")).unwrap();
        (d, up, mid, low)
    }

    #[test]
    fn layers_show_the_top_file_and_follow_links_across_layers() {
        let (_d, up, mid, low) = three_layers();
        std::fs::write(up.join("etc/passwd"), "up").unwrap();
        let layers = Layers::open(&[up.clone(), mid.clone(), low.clone()]).unwrap();
        assert_eq!(read(&layers, "/etc/passwd").as_deref(), Some("up"));
        assert_eq!(read(&layers, "/etc/group").as_deref(), Some("low-group"));
        assert_eq!(read(&layers, "/alias/file").as_deref(), Some("low-real"));
        assert_eq!(read(&layers, "/missing"), None);
    }

    #[test]
    #[ignore = "needs root: mknod of a whiteout, trusted.* xattrs"]
    fn layers_honour_whiteouts_and_opaque_folders() {
        let (_d, up, mid, low) = three_layers();
        // A whiteout in the middle hides the bottom's group file; an opaque folder on top
        // hides the bottom's folder of the same name.
        nix::sys::stat::mknod(
            &mid.join("etc/group"),
            SFlag::S_IFCHR,
            Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .unwrap();
        std::fs::create_dir_all(up.join("real")).unwrap();
        xattr::set(up.join("real"), "trusted.overlay.opaque", b"y").unwrap();
        let layers = Layers::open(&[up, mid, low]).unwrap();
        assert_eq!(read(&layers, "/etc/group"), None);
        assert_eq!(read(&layers, "/alias/file"), None);
        assert_eq!(read(&layers, "/etc/passwd").as_deref(), Some("low"));
    }

    #[test]
    fn mkdir_all_stays_inside() {
        let d = tree();
        let root = Root::open(d.path().join("root")).unwrap();
        root.mkdir_all(Path::new("/escape/made/here")).unwrap();
        assert!(d.path().join("root/made/here").is_dir());
        assert!(!d.path().join("made").exists());
    }
}
