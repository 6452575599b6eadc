use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::ImageError;
use crate::error::io;

/// A layer's identity: `sha256:` of its uncompressed tar.
pub type DiffId = String;

/// Lower-case hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Passes bytes through while hashing them and copying them to `copy`.
struct Tee<R, W> {
    inner: R,
    hasher: Sha256,
    copy: W,
    total: u64,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.copy.write_all(&buf[..n])?;
        self.total += n as u64;
        Ok(n)
    }
}

/// Wraps `r` in the decompressor its first bytes call for (gzip, or none).
pub(crate) fn decompressed<'a, R: Read + 'a>(r: R) -> Result<Box<dyn Read + 'a>, ImageError> {
    let mut r = BufReader::with_capacity(1 << 20, r);
    let head = r.fill_buf().map_err(ImageError::Stream)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(r)));
    }
    for (magic, name) in [
        (&[0x28u8, 0xb5, 0x2f, 0xfd][..], "zstd"),
        (&[0x42, 0x5a, 0x68][..], "bzip2"),
        (&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00][..], "xz"),
    ] {
        if head.starts_with(magic) {
            return Err(ImageError::BadArchive(format!(
                "{name}-compressed layers are not supported; use plain or gzip tar"
            )));
        }
    }
    Ok(Box::new(r))
}

/// What `ingest` made of a layer stream.
#[derive(Debug)]
pub(crate) struct Ingested {
    pub diff_id: DiffId,
    /// Bytes of regular-file content in the layer.
    pub size: u64,
}

/// Reads a (possibly gzip-compressed) layer tar once: its uncompressed bytes are hashed,
/// copied to `tar_copy`, and unpacked into `diff_dir` with whiteouts turned into overlay's
/// form (`.wh.NAME` → a 0/0 character device, `.wh..wh..opq` → the opaque xattr).
pub(crate) fn ingest(
    src: impl Read,
    tar_copy: &Path,
    diff_dir: &Path,
) -> Result<Ingested, ImageError> {
    let copy = fs::File::create(tar_copy).map_err(io(tar_copy))?;
    fs::create_dir_all(diff_dir).map_err(io(diff_dir))?;
    let mut tee = Tee {
        inner: decompressed(src)?,
        hasher: Sha256::new(),
        copy: io::BufWriter::with_capacity(1 << 20, copy),
        total: 0,
    };
    let size = unpack(&mut tee, diff_dir)?;
    // The tar's trailing blocks belong to its digest too.
    io::copy(&mut tee, &mut io::sink()).map_err(ImageError::Stream)?;
    let Tee {
        hasher, mut copy, ..
    } = tee;
    // Not fsynced, as dockerd does not sync layer data: a layer is committed by its small
    // `size` file, written atomically after the data; syncing 100 MiB here cost ten times
    // the whole `tar -x` (measured).
    copy.flush().map_err(io(tar_copy))?;
    Ok(Ingested {
        diff_id: format!("sha256:{}", hex::encode(hasher.finalize())),
        size,
    })
}

/// Unpacks a layer with every entry kept inside `dest` (see `berth_inroot::unpack`). What the
/// layer gets wrong is the client's (400); a failing disk is ours.
fn unpack(src: impl Read, dest: &Path) -> Result<u64, ImageError> {
    use berth_inroot::RootError;
    berth_inroot::unpack::unpack(src, dest).map_err(|e| match e {
        RootError::Io { path, source }
            if !matches!(
                source.raw_os_error(),
                Some(
                    nix::libc::ENOTDIR
                        | nix::libc::EEXIST
                        | nix::libc::ELOOP
                        | nix::libc::ENOENT
                        | nix::libc::EISDIR
                )
            ) =>
        {
            ImageError::Io {
                path: dest.join(path),
                source,
            }
        }
        other => ImageError::BadArchive(format!("layer tar: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    fn tar_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, mode) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(*mode);
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_mtime(1);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn diff_id_is_sha256_of_the_uncompressed_tar_and_gzip_is_transparent() {
        let tar = tar_of(&[("a/b.txt", b"hello", 0o640)]);
        let dir = tempfile::tempdir().unwrap();
        let plain = ingest(&tar[..], &dir.path().join("1.tar"), &dir.path().join("d1")).unwrap();
        assert_eq!(plain.diff_id, format!("sha256:{}", sha256_hex(&tar)));
        assert_eq!(plain.size, 5);
        assert_eq!(fs::read(dir.path().join("1.tar")).unwrap(), tar);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let zipped = ingest(&gz[..], &dir.path().join("2.tar"), &dir.path().join("d2")).unwrap();
        assert_eq!(zipped.diff_id, plain.diff_id);

        let f = dir.path().join("d1/a/b.txt");
        assert_eq!(fs::read(&f).unwrap(), b"hello");
        let m = fs::metadata(&f).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o640);
    }

    #[test]
    #[ignore = "needs root: chown"]
    fn owners_are_kept() {
        let tar = tar_of(&[("a/b.txt", b"hello", 0o4755)]);
        let dir = tempfile::tempdir().unwrap();
        ingest(&tar[..], &dir.path().join("1.tar"), &dir.path().join("d1")).unwrap();
        let m = fs::metadata(dir.path().join("d1/a/b.txt")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
        // The mode is set after the owner, so set-id bits survive the chown.
        assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    }

    #[test]
    #[ignore = "needs root: mknod of a whiteout"]
    fn whiteouts_become_overlay_whiteouts() {
        let tar = tar_of(&[
            ("etc/.wh.gone", b"", 0o644),
            ("var/.wh..wh..opq", b"", 0o644),
        ]);
        let dir = tempfile::tempdir().unwrap();
        ingest(&tar[..], &dir.path().join("l.tar"), &dir.path().join("d")).unwrap();
        let wh = fs::metadata(dir.path().join("d/etc/gone")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        let opq = xattr::get(dir.path().join("d/var"), "trusted.overlay.opaque").unwrap();
        assert_eq!(opq.as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn escaping_entries_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        // Write the name directly: the builder itself refuses "..".
        h.as_gnu_mut().unwrap().name[..7].copy_from_slice(b"../evil");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = ingest(&tar[..], &dir.path().join("l.tar"), &dir.path().join("d")).unwrap_err();
        assert!(err.to_string().contains("leaves the layer"), "{err}");
        assert!(matches!(err, ImageError::BadArchive(_)), "{err:?}");
    }

    #[test]
    fn unsupported_compression_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = ingest(
            &[0x28u8, 0xb5, 0x2f, 0xfd, 0, 0][..],
            &dir.path().join("l"),
            &dir.path().join("d"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
    }
}
