//! COPY and ADD (and WORKDIR's folder): sources read inside their tree (the context, or a
//! stage's or an image's layers) into a tar of their own, hashed for the cache (names,
//! types, modes, owners, sizes, link targets and contents: not times, as dockerd's tarsum);
//! then, on a cache miss, written through an overlay of the parent's layers mounted for the
//! step (every path resolved inside it, so the image's own links stay inside), whose upper
//! folder becomes the step's layer.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufReader, Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_dockerfile::IgnoreMatcher;
use berth_images::{ImageStore, RootfsLayout};
use berth_inroot::tar_out::{TarOptions, TarWriter, children};
use berth_inroot::{Found, Layers, Root, Tree};
use nix::fcntl::OFlag;
use sha2::{Digest, Sha256};

use super::BuildError;
use super::steps::clean_abs;
use crate::DaemonError;
use crate::containers::fs::MergedView;

/// Where COPY reads.
#[derive(Debug, Clone)]
pub(super) enum SourceTree {
    /// The build context (`.dockerignore` applies).
    Context,
    /// A stage's or an image's layers, bottom first.
    Layers(Vec<PathBuf>),
}

/// A COPY or ADD with its words expanded.
#[derive(Debug, Clone)]
pub(super) struct CopyRequest {
    pub name: &'static str,
    pub is_add: bool,
    pub sources: Vec<String>,
    /// ADD's URLs, fetched before: source index → (folder, file name in it).
    pub fetched: BTreeMap<usize, (PathBuf, String)>,
    /// Absolute; ends in `/` when the instruction's destination did.
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub tree: SourceTree,
}

#[derive(Debug, Clone)]
struct Item {
    is_dir: bool,
    /// The source's last name (a file copied into a folder keeps it).
    base: String,
    /// The source's path in the context, for `.dockerignore` (None for other trees).
    ctx_path: Option<String>,
    /// ADD of a local tar archive: unpacked at the destination.
    archive: Option<Compression>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
}

/// Sources gathered: their tar (`<dir>/sources.tar`, entries `<n>` or `<n>/<path>`), their
/// checksum as dockerd names it (`file:`, `dir:`, `multi:`).
#[derive(Debug)]
pub(super) struct Gathered {
    pub req: CopyRequest,
    pub hash: String,
    items: Vec<Item>,
    ignore: Arc<IgnoreMatcher>,
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn failed(name: &str, why: impl std::fmt::Display) -> DaemonError {
    BuildError::Step(format!("{name} failed: {why}")).into()
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `path.Match` of one name (`*`, `?`, `[...]`, `\` escapes).
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star_p, mut star_n) = (usize::MAX, 0);
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star_p = p;
                    star_n = n;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, len)) = class(&pattern[p..], name[n])
                        && matched
                    {
                        p += len;
                        n += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == name[n] => {
                    p += 2;
                    n += 1;
                    continue;
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        if star_p != usize::MAX {
            p = star_p + 1;
            star_n += 1;
            n = star_n;
            continue;
        }
        return false;
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A `[...]` class at the start of `p`: whether `c` is in it, and the class's length.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'^' | b'!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != b']') {
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            if (lo..=p[i + 2]).contains(&c) {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
    (i < p.len()).then_some((matched != negate, i + 1))
}

/// The paths (relative to the root) a source pattern matches, sorted.
fn glob(root: &dyn Tree, pattern: &str) -> Result<Vec<String>, DaemonError> {
    let mut found = vec![String::new()];
    for comp in pattern.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let mut next = Vec::new();
        for base in &found {
            if !has_glob(comp) {
                next.push(join_rel(base, comp));
                continue;
            }
            let Some(Found::Dir(fds)) = root.lookup(Path::new(&format!("/{base}")), true)? else {
                continue;
            };
            let Some(fd) = fds.first() else { continue };
            let names = children(fd).map_err(|e| io_err(Path::new(base))(e.into()))?;
            for n in names {
                let n = n.to_string_lossy().to_string();
                if fnmatch(comp.as_bytes(), n.as_bytes()) {
                    next.push(join_rel(base, &n));
                }
            }
        }
        found = next;
    }
    found.retain(|p| !p.is_empty());
    found.sort();
    found.dedup();
    Ok(found)
}

fn join_rel(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// A read-only view of image layers: the folder itself for one layer, an overlay for more.
enum View {
    Dir(PathBuf),
    Mounted(MergedView),
}

impl View {
    fn open(layers: &[PathBuf], at: &Path) -> Result<View, DaemonError> {
        match layers {
            [] => {
                let empty = at.with_extension("empty");
                fs::create_dir_all(&empty).map_err(io_err(&empty))?;
                Ok(View::Dir(empty))
            }
            [one] => Ok(View::Dir(one.clone())),
            [rest @ .., top] => {
                let layout = RootfsLayout {
                    lowers: rest.to_vec(),
                    upper: top.clone(),
                    work: PathBuf::new(),
                };
                Ok(View::Mounted(
                    MergedView::mount(&layout, at.to_path_buf(), None).map_err(io_err(at))?,
                ))
            }
        }
    }
    fn path(&self) -> &Path {
        match self {
            View::Dir(p) => p,
            View::Mounted(m) => &m.root,
        }
    }
}

/// Reads the sources into `<dir>/sources.tar` and hashes them.
pub(super) fn gather(
    req: CopyRequest,
    context: &Path,
    ignore: &Arc<IgnoreMatcher>,
    dir: &Path,
) -> Result<Gathered, DaemonError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let view = match &req.tree {
        SourceTree::Context => View::Dir(context.to_path_buf()),
        SourceTree::Layers(l) => View::open(l, &dir.join("source"))?,
    };
    let in_context = matches!(req.tree, SourceTree::Context);
    let root = Root::open(view.path())?;
    let tar_path = dir.join("sources.tar");
    let file = fs::File::create(&tar_path).map_err(io_err(&tar_path))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    let mut items = Vec::new();
    let name = req.name;
    for (i, src) in req.sources.iter().enumerate() {
        if let Some((dir, file)) = req.fetched.get(&i) {
            // A download: a file (never unpacked, as dockerd's ADD of a URL).
            let fetched = Root::open(dir)?;
            let found = fetched
                .lookup(Path::new(file), false)?
                .ok_or_else(|| failed(name, format!("{src}: the download is gone")))?;
            let n = items.len();
            TarWriter::new(&mut builder, TarOptions::default())
                .append(found, Path::new(&n.to_string()))?;
            items.push(Item {
                is_dir: false,
                base: file.clone(),
                ctx_path: None,
                archive: None,
            });
            continue;
        }
        if src.starts_with("http://") || src.starts_with("https://") {
            return Err(failed(name, "source can't be a URL for COPY"));
        }
        let trimmed = src.trim_start_matches("./");
        if trimmed == ".." || trimmed.starts_with("../") {
            return Err(failed(
                name,
                format!("forbidden path outside the build context: {src} ()"),
            ));
        }
        let rel = clean_abs(&format!("/{src}"))
            .trim_start_matches('/')
            .to_string();
        let matches = if has_glob(&rel) {
            let m = glob(&root, &rel)?;
            if m.is_empty() {
                return Err(failed(
                    name,
                    format!("no source files were specified (nothing matches {src})"),
                ));
            }
            m
        } else {
            vec![rel]
        };
        for rel in matches {
            let not_found = || {
                failed(
                    name,
                    if in_context {
                        format!(
                            "file not found in build context or excluded by .dockerignore: stat {rel}: file does not exist"
                        )
                    } else {
                        format!("stat {rel}: file does not exist")
                    },
                )
            };
            if in_context && !rel.is_empty() && ignore.excluded(&rel) {
                return Err(not_found());
            }
            let Some(found) = root.lookup(Path::new(&format!("/{rel}")), true)? else {
                return Err(not_found());
            };
            let n = items.len();
            let base = rel.rsplit('/').next().unwrap_or_default().to_string();
            let mut w = TarWriter::new(&mut builder, TarOptions::default());
            let item = match found {
                Found::Dir(fds) => {
                    let fd = fds.into_iter().next().ok_or_else(not_found)?;
                    w.append_contents(&fd, Path::new(&n.to_string()))?;
                    Item {
                        is_dir: true,
                        base,
                        ctx_path: in_context.then(|| rel.clone()),
                        archive: None,
                    }
                }
                found @ Found::Entry { .. } => {
                    let archive = match &found {
                        Found::Entry { fd, meta } if req.is_add && meta.is_file() => {
                            archive_kind(fd)
                        }
                        _ => None,
                    };
                    w.append(found, Path::new(&n.to_string()))?;
                    Item {
                        is_dir: false,
                        base,
                        ctx_path: in_context.then(|| rel.clone()),
                        archive,
                    }
                }
            };
            items.push(item);
        }
    }
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(io_err(&tar_path))?;
    drop(view);

    let mut g = Gathered {
        req,
        hash: String::new(),
        items,
        ignore: ignore.clone(),
        dir: dir.to_path_buf(),
    };
    let digest = g.checksum()?;
    g.hash = match g.items.as_slice() {
        [one] if one.is_dir => format!("dir:{digest}"),
        [_] => format!("file:{digest}"),
        _ => format!("multi:{digest}"),
    };
    Ok(g)
}

/// Whether a file is a tar (plain or gzip) ADD unpacks.
fn archive_kind(fd: &OwnedFd) -> Option<Compression> {
    let f = fs::File::from(berth_inroot::reopen(fd, OFlag::O_RDONLY | OFlag::O_NONBLOCK).ok()?);
    let mut head = Vec::with_capacity(512);
    f.take(512).read_to_end(&mut head).ok()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let f = fs::File::from(berth_inroot::reopen(fd, OFlag::O_RDONLY).ok()?);
        let mut plain = Vec::with_capacity(512);
        flate2::read::GzDecoder::new(f)
            .take(512)
            .read_to_end(&mut plain)
            .ok()?;
        return is_tar(&plain).then_some(Compression::Gzip);
    }
    is_tar(&head).then_some(Compression::None)
}

fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

impl Gathered {
    fn sources_tar(&self) -> PathBuf {
        self.dir.join("sources.tar")
    }

    /// Whether an entry of the sources' tar is copied (`.dockerignore` for context sources).
    fn kept(&self, name: &str) -> Option<(usize, String)> {
        let (n, rest) = match name.split_once('/') {
            Some((n, rest)) => (n, rest.trim_end_matches('/').to_string()),
            None => (name, String::new()),
        };
        let n: usize = n.parse().ok()?;
        let item = self.items.get(n)?;
        if let Some(ctx) = &item.ctx_path
            && !rest.is_empty()
            && self.ignore.excluded(&join_rel(ctx, &rest))
        {
            return None;
        }
        Some((n, rest))
    }

    /// Each entry of the sources' tar that is copied: the entry, its item, its path under
    /// the item, its name in the tar.
    fn each_kept(
        &self,
        mut f: impl FnMut(
            &mut tar::Entry<'_, BufReader<fs::File>>,
            usize,
            &str,
            &str,
        ) -> Result<(), DaemonError>,
    ) -> Result<(), DaemonError> {
        let path = self.sources_tar();
        let file = fs::File::open(&path).map_err(io_err(&path))?;
        let mut ar = tar::Archive::new(BufReader::new(file));
        for e in ar.entries().map_err(io_err(&path))? {
            let mut e = e.map_err(io_err(&path))?;
            let name = e
                .path()
                .map_err(io_err(&path))?
                .to_string_lossy()
                .to_string();
            if let Some((n, rest)) = self.kept(&name) {
                f(&mut e, n, &rest, &name)?;
            }
        }
        Ok(())
    }

    fn checksum(&self) -> Result<String, DaemonError> {
        let path = self.sources_tar();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        self.each_kept(|e, _, _, name| {
            let hd = e.header();
            let link = link_of(e);
            let line = format!(
                "{name}\0{:?}\0{:o}\0{}\0{}\0{}\0{link}\n",
                hd.entry_type(),
                hd.mode().unwrap_or(0),
                hd.uid().unwrap_or(0),
                hd.gid().unwrap_or(0),
                hd.size().unwrap_or(0),
            );
            h.update(line.as_bytes());
            loop {
                let k = e.read(&mut buf).map_err(io_err(&path))?;
                if k == 0 {
                    return Ok(());
                }
                h.update(&buf[..k]);
            }
        })?;
        Ok(hex::encode(h.finalize()))
    }
}

/// A writable overlay of `layers` for one step: `<dir>/{upper,work,merged}`.
fn writable_view(layers: &[PathBuf], dir: &Path) -> Result<(MergedView, PathBuf), DaemonError> {
    let upper = dir.join("upper");
    let work = dir.join("work");
    let empty = dir.join("empty");
    for d in [&upper, &work, &empty] {
        fs::create_dir_all(d).map_err(io_err(d))?;
    }
    let layout = RootfsLayout {
        lowers: layers.to_vec(),
        upper: upper.clone(),
        work,
    };
    let view = MergedView::mount(&layout, dir.join("merged"), Some(&empty))
        .map_err(io_err(&dir.join("merged")))?;
    Ok((view, upper))
}

/// uid and gid of `--chown` (names looked up in the image's own passwd and group files).
fn owner(root: &Root, spec: &str) -> Result<(u64, u64), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let read = |p: &str| {
        root.read_capped(Path::new(p), 4 << 20)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let find = |file: &str, name: &str| -> Option<u64> {
        read(file).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[0] == name)
                .then(|| f[2].parse().ok())
                .flatten()
        })
    };
    let uid = match user.parse::<u64>() {
        Ok(n) => n,
        Err(_) => find("/etc/passwd", user).ok_or_else(|| {
            format!(
                "unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
            )
        })?,
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => find("/etc/group", g).ok_or_else(|| {
                format!(
                    "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                )
            })?,
        },
    };
    Ok((uid, gid))
}

/// Writes the gathered sources over `layers` and stores the changes as a layer.
pub(super) fn apply(
    g: Gathered,
    layers: &[PathBuf],
    dir: &Path,
    store: &ImageStore,
) -> Result<String, DaemonError> {
    let name = g.req.name;
    let step = dir.to_path_buf();
    fs::create_dir_all(&step).map_err(io_err(&step))?;
    let (view, upper) = writable_view(layers, &step)?;
    let root = Root::open(&view.root)?;
    let chown = g
        .req
        .chown
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| owner(&root, c))
        .transpose()
        .map_err(|e| failed(name, e))?;
    let chmod = g
        .req
        .chmod
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            u32::from_str_radix(c, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| failed(name, format!("invalid chmod parameter: {c}")))
        })
        .transpose()?;
    let dest = g.req.dest.clone();
    let dest_dir_hint = dest.ends_with('/');
    if g.items.len() > 1 && !dest_dir_hint {
        return Err(failed(
            name,
            "When using COPY with more than one source file, the destination must be a directory and end with a /",
        ));
    }
    let dest_clean = clean_abs(&dest);
    let dest_is_dir = |p: &str| matches!(root.lookup(Path::new(p), true), Ok(Some(Found::Dir(_))));
    let dest_exists = !matches!(root.lookup(Path::new(&dest_clean), true), Ok(None));
    let rel = |p: &str| p.trim_start_matches('/').to_string();
    // Where each item goes: a folder's contents and archives into `dest`; a file to `dest`,
    // or into it when it is (or is to be) a folder.
    let targets: Vec<String> = g
        .items
        .iter()
        .map(|it| {
            if it.is_dir || it.archive.is_some() {
                dest_clean.clone()
            } else if dest_dir_hint || dest_is_dir(&dest_clean) {
                clean_abs(&format!("{dest_clean}/{}", it.base))
            } else {
                dest_clean.clone()
            }
        })
        .collect();

    let out_path = step.join("out.tar");
    {
        let out = fs::File::create(&out_path).map_err(io_err(&out_path))?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(out));
        let fix = |h: &mut tar::Header, is_dir: bool| {
            if let Some((u, gid)) = chown {
                h.set_uid(u);
                h.set_gid(gid);
                h.set_username("").ok();
                h.set_groupname("").ok();
            }
            if let Some(m) = chmod
                && (is_dir || h.entry_type().is_file())
            {
                h.set_mode(m);
            }
        };
        let needs_dest_dir = g.items.iter().any(|i| i.is_dir || i.archive.is_some())
            || (dest_dir_hint && !dest_exists);
        if needs_dest_dir && !dest_exists && dest_clean != "/" {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(now_secs());
            fix(&mut h, true);
            b.append_data(&mut h, rel(&dest_clean), std::io::empty())
                .map_err(io_err(&out_path))?;
        }
        // Where an entry of item `n` at `rest` under it lands.
        let place = |n: usize, rest: &str| {
            if rest.is_empty() {
                targets[n].clone()
            } else {
                clean_abs(&format!("{}/{rest}", targets[n]))
            }
        };
        g.each_kept(|e, n, rest, _| {
            let item = &g.items[n];
            if let Some(c) = item.archive {
                return unpack_archive(e, c, &targets[n], &mut b, &fix)
                    .map_err(|e| failed(name, e));
            }
            let target = place(n, rest);
            let mut h = e.header().clone();
            let is_dir = h.entry_type().is_dir();
            fix(&mut h, is_dir);
            let kind = h.entry_type();
            if kind.is_hard_link() {
                let link = link_of(e);
                let Some((ln, lrest)) = g.kept(&link) else {
                    return Ok(());
                };
                let ltarget = place(ln, &lrest);
                b.append_link(&mut h, rel(&target), rel(&ltarget))
                    .map_err(io_err(&out_path))
            } else if kind.is_symlink() {
                let link = e.link_name().ok().flatten().map(|l| l.into_owned());
                b.append_link(&mut h, rel(&target), link.unwrap_or_default())
                    .map_err(io_err(&out_path))
            } else {
                b.append_data(&mut h, rel(&target), e)
                    .map_err(io_err(&out_path))
            }
        })?;
        b.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(io_err(&out_path))?;
    }
    let mut f = fs::File::open(&out_path).map_err(io_err(&out_path))?;
    f.rewind().map_err(io_err(&out_path))?;
    berth_inroot::unpack::unpack(BufReader::new(f), &view.root).map_err(|e| failed(name, e))?;
    drop(root);
    drop(view);
    let diff = store.layer_from_upper(&upper)?;
    let _ = fs::remove_dir_all(&step);
    Ok(diff)
}

/// An archive's entries (ADD of a local tar) under `dest`.
fn unpack_archive(
    src: &mut dyn Read,
    c: Compression,
    dest: &str,
    b: &mut tar::Builder<impl Write>,
    fix: &dyn Fn(&mut tar::Header, bool),
) -> Result<(), String> {
    let reader: Box<dyn Read + '_> = match c {
        Compression::None => Box::new(src),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(src)),
    };
    let mut inner = tar::Archive::new(BufReader::new(reader));
    for e in inner.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        let p = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .to_string();
        let target = clean_abs(&format!("{dest}/{p}"));
        let target = target.trim_start_matches('/').to_string();
        if target.is_empty() {
            continue;
        }
        let mut h = e.header().clone();
        // ADD keeps the archive's owners unless --chown says otherwise.
        let is_dir = h.entry_type().is_dir();
        fix(&mut h, is_dir);
        let kind = h.entry_type();
        if kind.is_hard_link() || kind.is_symlink() {
            let link = link_of(&e);
            let link = if kind.is_hard_link() {
                clean_abs(&format!("{dest}/{link}"))
                    .trim_start_matches('/')
                    .to_string()
            } else {
                link
            };
            b.append_link(&mut h, &target, link)
                .map_err(|e| e.to_string())?;
        } else {
            b.append_data(&mut h, &target, &mut e)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// A tar entry's link target (hard or symbolic), "" when it has none.
fn link_of<R: Read>(e: &tar::Entry<'_, R>) -> String {
    e.link_name()
        .ok()
        .flatten()
        .map(|l| l.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// WORKDIR: the folder made (in a layer of its own) when the image lacks it.
pub(super) fn workdir(
    path: &str,
    layers: &[PathBuf],
    dir: &Path,
    store: &ImageStore,
) -> Result<Option<String>, DaemonError> {
    if !layers.is_empty() {
        let top_first: Vec<PathBuf> = layers.iter().rev().cloned().collect();
        let tree = Layers::open(&top_first)?;
        if let Some(Found::Dir(_)) = tree.lookup(Path::new(path), true)? {
            return Ok(None);
        }
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (view, upper) = writable_view(layers, dir)?;
    Root::open(&view.root)?.mkdir_all(Path::new(path))?;
    drop(view);
    let diff = store.layer_from_upper(&upper)?;
    let _ = fs::remove_dir_all(dir);
    Ok(Some(diff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_go_path_match() {
        for (p, n, want) in [
            ("*.txt", "a.txt", true),
            ("*.txt", "a.log", false),
            ("h?llo", "hello", true),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("*", "anything", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ] {
            assert_eq!(fnmatch(p.as_bytes(), n.as_bytes()), want, "{p} {n}");
        }
    }

    #[test]
    fn tar_headers_are_recognised() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "x", &b"y"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        assert!(is_tar(&tar[..512]));
        assert!(!is_tar(b"plain text"));
    }

    #[test]
    fn sources_are_gathered_hashed_and_filtered_by_dockerignore() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path().join("ctx");
        fs::create_dir_all(ctx.join("dir")).unwrap();
        fs::write(ctx.join("hello.txt"), "hi").unwrap();
        fs::write(ctx.join("dir/a.txt"), "a").unwrap();
        fs::write(ctx.join("dir/b.log"), "b").unwrap();
        let ignore = Arc::new(IgnoreMatcher::new(&["**/*.log".to_string()]).unwrap());
        let req = |sources: &[&str]| CopyRequest {
            name: "COPY",
            is_add: false,
            sources: sources.iter().map(|s| s.to_string()).collect(),
            fetched: BTreeMap::new(),
            dest: "/app/".into(),
            chown: None,
            chmod: None,
            tree: SourceTree::Context,
        };
        let g = gather(req(&["hello.txt"]), &ctx, &ignore, &d.path().join("s1")).unwrap();
        assert!(g.hash.starts_with("file:"));
        let again = gather(req(&["hello.txt"]), &ctx, &ignore, &d.path().join("s2")).unwrap();
        assert_eq!(g.hash, again.hash, "the same file hashes the same");
        let dir1 = gather(req(&["dir"]), &ctx, &ignore, &d.path().join("s3")).unwrap();
        assert!(dir1.hash.starts_with("dir:"));
        // An ignored file changing leaves the hash alone; a kept one changes it.
        fs::write(ctx.join("dir/b.log"), "changed").unwrap();
        let dir2 = gather(req(&["dir"]), &ctx, &ignore, &d.path().join("s4")).unwrap();
        assert_eq!(dir1.hash, dir2.hash);
        fs::write(ctx.join("dir/a.txt"), "changed").unwrap();
        let dir3 = gather(req(&["dir"]), &ctx, &ignore, &d.path().join("s5")).unwrap();
        assert_ne!(dir1.hash, dir3.hash);
        let multi = gather(req(&["*.txt", "dir"]), &ctx, &ignore, &d.path().join("s6")).unwrap();
        assert!(multi.hash.starts_with("multi:"));
        let err = gather(req(&["nosuch"]), &ctx, &ignore, &d.path().join("s7")).unwrap_err();
        assert!(
            err.to_string().contains("nosuch: file does not exist"),
            "{err}"
        );
        let err = gather(req(&["dir/b.log"]), &ctx, &ignore, &d.path().join("s8")).unwrap_err();
        assert!(
            err.to_string().contains("excluded by .dockerignore"),
            "{err}"
        );
        let err = gather(req(&["../x"]), &ctx, &ignore, &d.path().join("s9")).unwrap_err();
        assert!(
            err.to_string().contains("outside the build context"),
            "{err}"
        );
    }
}
