//! `docker save` and `docker load`: docker-archive tarballs (manifest.json) both ways, and OCI
//! image layouts (index.json) in.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path};

use berth_inroot::{Found, Root, Tree};
use serde::{Deserialize, Serialize};

use crate::error::io;
use crate::{ImageError, ImageId, ImageStore, Reference};

/// An image `docker load` stored, with the names it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub id: ImageId,
    pub tags: Vec<Reference>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Debug, Deserialize)]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct OciManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadArchive(msg.into())
}

/// The most a JSON file of an archive (manifest, index, config) may weigh: containerd's
/// limit for a manifest. Parsed, JSON of many short strings takes some 25 times its size (a
/// 28 MB `manifest.json` of one-letter layer names peaked berthd at 819 MB under the former
/// 32 MiB limit), so the limit is what bounds `docker load`'s memory.
const JSON_LIMIT: u64 = 4 << 20;

/// A JSON file of the unpacked archive, resolved inside it: a regular file of at most
/// [`JSON_LIMIT`] bytes (a link to `/dev/zero` or a FIFO cannot stall or flood the daemon).
fn read_json(root: &Root, rel: &str) -> Result<Vec<u8>, ImageError> {
    checked(rel)?;
    root.read_capped(Path::new(rel), JSON_LIMIT)
        .map_err(|e| bad(format!("{rel}: {e}")))?
        .ok_or_else(|| bad(format!("{rel} is missing")))
}

/// A layer file of the unpacked archive, resolved inside it and opened only if regular.
fn open_layer(root: &Root, rel: &str) -> Result<fs::File, ImageError> {
    checked(rel)?;
    match root.lookup(Path::new(rel), true) {
        Ok(Some(Found::Entry { fd, meta })) if meta.is_file() => {
            berth_inroot::reopen(&fd, nix::fcntl::OFlag::O_RDONLY)
                .map(fs::File::from)
                .map_err(|e| bad(format!("{rel}: {e}")))
        }
        Ok(Some(_)) => Err(bad(format!("{rel} is not a regular file"))),
        Ok(None) => Err(bad(format!("{rel} is missing"))),
        Err(e) => Err(bad(format!("{rel}: {e}"))),
    }
}

/// Names in a manifest are relative and stay in the archive.
fn checked(rel: &str) -> Result<(), ImageError> {
    if Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(())
    } else {
        Err(bad(format!("path {rel} leaves the archive")))
    }
}

impl ImageStore {
    /// `docker load`: a docker-archive or OCI-layout tarball (plain or gzip).
    pub fn load(&self, src: impl Read) -> Result<Vec<LoadedImage>, ImageError> {
        let work = self.tmp_dir()?;
        let result = self.load_in(src, &work);
        let _ = fs::remove_dir_all(&work);
        result
    }

    fn load_in(&self, src: impl Read, work: &Path) -> Result<Vec<LoadedImage>, ImageError> {
        let mut ar = tar::Archive::new(crate::layer::decompressed(src)?);
        ar.set_preserve_permissions(false);
        ar.set_preserve_ownerships(false);
        ar.unpack(work).map_err(|e| bad(format!("archive: {e}")))?;
        let root = Root::open(work).map_err(|e| bad(format!("archive: {e}")))?;
        let has = |rel: &str| matches!(root.lookup(Path::new(rel), true), Ok(Some(_)));
        if has("manifest.json") {
            self.load_docker_archive(&root)
        } else if has("index.json") {
            self.load_oci_layout(&root)
        } else {
            Err(bad("neither manifest.json nor index.json found"))
        }
    }

    fn load_docker_archive(&self, root: &Root) -> Result<Vec<LoadedImage>, ImageError> {
        let bytes = read_json(root, "manifest.json")?;
        let entries: Vec<ManifestEntry> =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for entry in entries {
            let config = read_json(root, &entry.config)?;
            let layers = entry
                .layers
                .iter()
                .map(|l| checked(l).map(|()| l.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let tags = parse_tags(
                entry
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .map(String::as_str),
            )?;
            out.push(self.store_loaded(root, &config, &layers, tags)?);
        }
        Ok(out)
    }

    fn load_oci_layout(&self, root: &Root) -> Result<Vec<LoadedImage>, ImageError> {
        let blob = |digest: &str| -> Result<String, ImageError> {
            let (alg, hex) = digest
                .split_once(':')
                .ok_or_else(|| bad(format!("bad digest {digest}")))?;
            Ok(format!("blobs/{alg}/{hex}"))
        };
        let read_json = |p: String| read_json(root, &p);
        let index: OciIndex = serde_json::from_slice(&read_json("index.json".into())?)
            .map_err(|e| bad(format!("index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in index.manifests {
            let name = desc
                .annotations
                .get("io.containerd.image.name")
                .cloned()
                .or_else(|| {
                    desc.annotations
                        .get("org.opencontainers.image.ref.name")
                        .cloned()
                });
            let manifest_desc =
                if desc.media_type.contains("index") || desc.media_type.contains("manifest.list") {
                    let nested: OciIndex = serde_json::from_slice(&read_json(blob(&desc.digest)?)?)
                        .map_err(|e| bad(format!("nested index: {e}")))?;
                    let arch = crate::store::go_arch();
                    nested
                        .manifests
                        .into_iter()
                        .find(|m| {
                            m.platform
                                .as_ref()
                                .is_none_or(|p| p.architecture == arch && p.os == "linux")
                        })
                        .ok_or_else(|| bad(format!("no linux/{arch} image in the archive")))?
                } else {
                    desc
                };
            let manifest: OciManifest =
                serde_json::from_slice(&read_json(blob(&manifest_desc.digest)?)?)
                    .map_err(|e| bad(format!("manifest: {e}")))?;
            let config = read_json(blob(&manifest.config.digest)?)?;
            let layers = manifest
                .layers
                .iter()
                .map(|l| blob(&l.digest))
                .collect::<Result<Vec<_>, _>>()?;
            // A bare tag annotation ("1") names nothing on its own; a full name does.
            let tags = match name {
                Some(n) if n.contains('/') || n.contains(':') => {
                    parse_tags(std::iter::once(n.as_str()))?
                }
                _ => Vec::new(),
            };
            out.push(self.store_loaded(root, &config, &layers, tags)?);
        }
        Ok(out)
    }

    /// Ingests the layers (skipping those already stored), checks them against the config's
    /// diff IDs, and stores the image.
    fn store_loaded(
        &self,
        root: &Root,
        config: &[u8],
        layers: &[String],
        tags: Vec<Reference>,
    ) -> Result<LoadedImage, ImageError> {
        let parsed: crate::ImageConfig =
            serde_json::from_slice(config).map_err(|e| bad(format!("image config: {e}")))?;
        let want = &parsed.rootfs.diff_ids;
        if want.len() != layers.len() {
            return Err(bad(format!(
                "the config names {} layers, the manifest {}",
                want.len(),
                layers.len()
            )));
        }
        for (expected, path) in want.iter().zip(layers) {
            if self.has_layer(expected) {
                continue;
            }
            let got = self.put_layer(open_layer(root, path)?)?;
            if &got != expected {
                return Err(ImageError::DiffMismatch {
                    expected: expected.clone(),
                    actual: got,
                });
            }
        }
        let id = self.put_image(config, &tags)?;
        Ok(LoadedImage { id, tags })
    }

    /// `docker save`: a docker-archive tarball of `ids`, named by `names` (the references the
    /// user asked for; an ID asked for by ID is saved without names).
    pub fn save(
        &self,
        images: &[(ImageId, Vec<Reference>)],
        out: impl Write,
    ) -> Result<(), ImageError> {
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Deterministic);
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut written_layers = std::collections::BTreeSet::new();
        let stream = ImageError::Stream;
        for (id, names) in images {
            let record = self.get(id)?;
            let raw = self.raw_config(id)?;
            let hex = id.strip_prefix("sha256:").unwrap_or(id);
            let config_name = format!("{hex}.json");
            append_bytes(&mut b, &config_name, &raw).map_err(stream)?;
            let mut layer_paths = Vec::new();
            for d in &record.config.rootfs.diff_ids {
                let lhex = d.strip_prefix("sha256:").unwrap_or(d);
                let path = format!("{lhex}/layer.tar");
                if written_layers.insert(lhex.to_string()) {
                    append_bytes(&mut b, &format!("{lhex}/VERSION"), b"1.0").map_err(stream)?;
                    let tar_path = self.layer_tar(d);
                    let mut f = fs::File::open(&tar_path).map_err(io(&tar_path))?;
                    let len = f.metadata().map_err(io(&tar_path))?.len();
                    let mut h = tar::Header::new_gnu();
                    h.set_size(len);
                    h.set_mode(0o644);
                    h.set_mtime(0);
                    h.set_uid(0);
                    h.set_gid(0);
                    h.set_entry_type(tar::EntryType::Regular);
                    b.append_data(&mut h, &path, &mut f).map_err(stream)?;
                }
                layer_paths.push(path);
            }
            let top = layer_paths
                .last()
                .map(|p| p.trim_end_matches("/layer.tar").to_string())
                .unwrap_or_default();
            for n in names {
                if let Some(t) = &n.tag {
                    repositories
                        .entry(n.familiar_name())
                        .or_default()
                        .insert(t.clone(), top.clone());
                }
            }
            manifest.push(ManifestEntry {
                config: config_name,
                repo_tags: Some(names.iter().map(|n| n.to_string()).collect()),
                layers: layer_paths,
            });
        }
        let m = serde_json::to_vec(&manifest).map_err(|e| stream(e.into()))?;
        append_bytes(&mut b, "manifest.json", &m).map_err(stream)?;
        if !repositories.is_empty() {
            let r = serde_json::to_vec(&repositories).map_err(|e| stream(e.into()))?;
            append_bytes(&mut b, "repositories", &r).map_err(stream)?;
        }
        b.into_inner().and_then(|mut w| w.flush()).map_err(stream)
    }
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)
}

fn parse_tags<'a>(names: impl Iterator<Item = &'a str>) -> Result<Vec<Reference>, ImageError> {
    names
        .filter(|n| !n.is_empty() && *n != "<none>:<none>")
        .map(|n| Reference::parse(n).map_err(|e| bad(format!("tag {n}: {e}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImportOptions;
    use crate::store::tests::tar_with;

    #[test]
    fn save_then_load_round_trips_the_id_and_name() {
        let a = tempfile::tempdir().unwrap();
        let s1 = ImageStore::open(a.path()).unwrap();
        let id = s1
            .import(
                &tar_with(&[("bin/x", "hello")])[..],
                &ImportOptions {
                    reference: Some(Reference::parse("acc/changes:1").unwrap()),
                    changes: vec!["ENV A=1".into()],
                    ..Default::default()
                },
            )
            .unwrap();
        let mut archive = Vec::new();
        s1.save(
            &[(id.clone(), vec![Reference::parse("acc/changes:1").unwrap()])],
            &mut archive,
        )
        .unwrap();

        let b = tempfile::tempdir().unwrap();
        let s2 = ImageStore::open(b.path()).unwrap();
        let loaded = s2.load(&archive[..]).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].id, id);
        assert_eq!(loaded[0].tags[0].to_string(), "acc/changes:1");
        let r = s2.get(&id).unwrap();
        assert_eq!(
            fs::read_to_string(r.layer_dirs[0].join("bin/x")).unwrap(),
            "hello"
        );
        // Loading again is harmless.
        assert_eq!(s2.load(&archive[..]).unwrap()[0].id, id);
    }

    #[test]
    fn loads_an_oci_layout() {
        let dir = tempfile::tempdir().unwrap();
        let layer = tar_with(&[("etc/os", "oci")]);
        let diff = format!("sha256:{}", crate::sha256_hex(&layer));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&layer).unwrap();
        let gz = gz.finish().unwrap();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":{}}}]}}"#,
            crate::sha256_hex(config.as_bytes()),
            config.len(),
            crate::sha256_hex(&gz),
            gz.len()
        );
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/acc/oci:2","org.opencontainers.image.ref.name":"2"}}}}]}}"#,
            crate::sha256_hex(manifest.as_bytes()),
            manifest.len()
        );
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            (
                "oci-layout".to_string(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".to_string(), index.into_bytes()),
            (
                format!("blobs/sha256/{}", crate::sha256_hex(manifest.as_bytes())),
                manifest.into_bytes(),
            ),
            (
                format!("blobs/sha256/{}", crate::sha256_hex(config.as_bytes())),
                config.clone().into_bytes(),
            ),
            (format!("blobs/sha256/{}", crate::sha256_hex(&gz)), gz),
        ] {
            append_bytes(&mut b, &name, &data).unwrap();
        }
        let archive = b.into_inner().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let loaded = s.load(&archive[..]).unwrap();
        assert_eq!(
            loaded[0].id,
            format!("sha256:{}", crate::sha256_hex(config.as_bytes()))
        );
        assert_eq!(loaded[0].tags[0].to_string(), "acc/oci:2");
    }

    #[test]
    fn a_layer_that_does_not_match_its_diff_id_is_refused_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let layer = tar_with(&[("f", "x")]);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
            "0".repeat(64)
        );
        let manifest = r#"[{"Config":"c.json","RepoTags":["bad:1"],"Layers":["l/layer.tar"]}]"#;
        let mut b = tar::Builder::new(Vec::new());
        append_bytes(&mut b, "manifest.json", manifest.as_bytes()).unwrap();
        append_bytes(&mut b, "c.json", config.as_bytes()).unwrap();
        append_bytes(&mut b, "l/layer.tar", &layer).unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let err = s.load(&b.into_inner().unwrap()[..]).unwrap_err();
        assert!(matches!(err, ImageError::DiffMismatch { .. }), "{err}");
        assert!(s.list().is_empty());
        assert!(s.resolve("bad:1").is_err());
    }

    /// A docker-archive whose files are links out of it: each one reads as the archive's
    /// own (missing) file, never the host's, and never blocks.
    #[test]
    fn links_in_an_archive_never_reach_the_host() {
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("secret.json"), "[]").unwrap();
        let secret = host.path().join("secret.json").display().to_string();
        let link = |name: &str, target: &str| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            let mut b = tar::Builder::new(Vec::new());
            b.append_link(&mut h, name, target).unwrap();
            b.into_inner().unwrap()
        };
        let store_dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(store_dir.path()).unwrap();
        for (name, target) in [
            ("manifest.json", "/dev/zero"),
            ("manifest.json", secret.as_str()),
            ("index.json", "/dev/zero"),
        ] {
            let err = store.load(&link(name, target)[..]).unwrap_err();
            assert!(
                matches!(err, ImageError::BadArchive(_)),
                "{name} -> {target}: {err}"
            );
        }
        // A manifest that names a layer which is a link to a host file.
        let mut b = tar::Builder::new(Vec::new());
        let manifest = br#"[{"Config":"c.json","RepoTags":null,"Layers":["l.tar"]}]"#;
        let config = br#"{"rootfs":{"type":"layers","diff_ids":["sha256:00"]}}"#;
        for (n, d) in [("manifest.json", &manifest[..]), ("c.json", &config[..])] {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, n, d).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "l.tar", &secret).unwrap();
        let err = store.load(&b.into_inner().unwrap()[..]).unwrap_err();
        assert!(err.to_string().contains("l.tar is missing"), "{err}");
    }

    #[test]
    fn json_over_the_limit_is_refused_before_it_is_parsed() {
        // Millions of one-letter layer names: small on disk, hundreds of MB once parsed.
        let n = (JSON_LIMIT as usize) / 4 + 1;
        let manifest = format!(
            r#"[{{"Config":"c.json","RepoTags":[],"Layers":[{}]}}]"#,
            vec![r#""a""#; n].join(",")
        );
        assert!(manifest.len() as u64 > JSON_LIMIT);
        let mut b = tar::Builder::new(Vec::new());
        append_bytes(&mut b, "manifest.json", manifest.as_bytes()).unwrap();
        append_bytes(&mut b, "c.json", b"{}").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let err = s.load(&b.into_inner().unwrap()[..]).unwrap_err();
        assert!(matches!(err, ImageError::BadArchive(_)), "{err}");
        assert!(err.to_string().contains("manifest.json"), "{err}");
        assert!(
            err.to_string().contains("larger than 4194304 bytes"),
            "{err}"
        );
    }
}
