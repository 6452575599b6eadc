//! A container's mount points, from what its create request says: `Binds` (`-v`), `Mounts`
//! (`--mount`), the image's `VOLUME`s and the mount points of `--volumes-from` containers,
//! checked as dockerd checks them. Pure: nothing here touches the disk.

use std::collections::BTreeMap;

use berth_model::Mount;
use serde::{Deserialize, Serialize};

use crate::VolumeError;

/// What is mounted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A folder or file of the host.
    Bind,
    /// A volume of the store.
    #[default]
    Volume,
    /// A new tmpfs.
    Tmpfs,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount of a container, as its record keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: MountKind,
    /// The volume's name; empty for a volume until one is made for it (anonymous).
    pub name: String,
    /// The host path of a bind.
    pub source: String,
    pub destination: String,
    pub driver: String,
    /// As inspect shows it: the `-v` mode (`ro`, `z`...).
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// As inspect shows it (binds: `rprivate` unless given).
    pub propagation: String,
    /// Fill an empty volume from the image at its destination (not `nocopy`).
    pub copy_data: bool,
    /// A path inside the volume to mount instead of its root.
    pub subpath: String,
    /// Labels and driver options for a volume `--mount` creates.
    pub volume_labels: BTreeMap<String, String>,
    pub driver_options: BTreeMap<String, String>,
    /// tmpfs size in bytes (0: the kernel's default) and mode (0: 1777).
    pub tmpfs_size: i64,
    pub tmpfs_mode: u32,
    /// A `-v` bind whose missing host folder is made at start (not for `--mount`).
    pub create_source: bool,
    /// Not recursive (`bind-nonrecursive`).
    pub non_recursive: bool,
}

impl MountPoint {
    /// A volume with no name yet: one is made for it.
    pub fn is_anonymous(&self) -> bool {
        self.kind == MountKind::Volume && self.name.is_empty()
    }

    /// The mount options runc gets for it, after the type's own (`rbind`/`bind`).
    pub fn propagation_for_spec(&self) -> &str {
        if self.propagation.is_empty() {
            "rprivate"
        } else {
            &self.propagation
        }
    }
}

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// `/data/` → `/data`, `/a//b/./c` → `/a/b/c`; `None` unless absolute.
fn clean_destination(d: &str) -> Option<String> {
    if !d.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for p in d.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// One `Binds` entry: `/host:/dst[:mode]` (bind), `name:/dst[:mode]` (named volume) or `/dst`
/// (anonymous volume). `driver` is `HostConfig.VolumeDriver` (empty: local).
pub fn parse_bind(spec: &str, driver: &str) -> Result<MountPoint, VolumeError> {
    let invalid = |reason: &str| VolumeError::InvalidSpec {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid("")),
    };
    if dest.is_empty() || (parts.len() > 1 && source.is_empty()) {
        return Err(invalid(""));
    }
    let destination = clean_destination(dest).ok_or_else(|| {
        invalid(&format!(
            "invalid mount config for type \"volume\": invalid mount path: '{dest}' mount path must be absolute"
        ))
    })?;
    if destination == "/" {
        return Err(VolumeError::InvalidSpec {
            spec: spec.to_string(),
            reason: "destination can't be '/'".into(),
        });
    }
    let kind = if source.starts_with('/') {
        MountKind::Bind
    } else {
        MountKind::Volume
    };
    let mut mp = MountPoint {
        kind,
        name: if kind == MountKind::Volume {
            source.to_string()
        } else {
            String::new()
        },
        source: if kind == MountKind::Bind {
            clean_destination(source).unwrap_or_default()
        } else {
            String::new()
        },
        destination,
        driver: if kind == MountKind::Volume {
            if driver.is_empty() {
                crate::DRIVER
            } else {
                driver
            }
            .to_string()
        } else {
            String::new()
        },
        mode: mode.to_string(),
        rw: true,
        propagation: if kind == MountKind::Bind {
            "rprivate".into()
        } else {
            String::new()
        },
        copy_data: kind == MountKind::Volume,
        create_source: kind == MountKind::Bind,
        ..Default::default()
    };
    let (mut seen_rw, mut seen_label, mut seen_prop) = (false, false, false);
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        let dup = |seen: &mut bool| {
            let d = *seen;
            *seen = true;
            d
        };
        let bad = match o {
            "ro" | "rw" => {
                mp.rw = o == "rw";
                dup(&mut seen_rw)
            }
            "z" | "Z" => dup(&mut seen_label),
            "nocopy" => {
                mp.copy_data = false;
                kind != MountKind::Volume
            }
            "consistent" | "cached" | "delegated" => false,
            p if PROPAGATIONS.contains(&p) => {
                mp.propagation = p.to_string();
                kind != MountKind::Bind || dup(&mut seen_prop)
            }
            _ => true,
        };
        if bad {
            return Err(invalid(&format!("invalid mode: {mode}")));
        }
    }
    if mode.is_empty() && kind == MountKind::Volume && !mp.name.is_empty() {
        mp.mode = "z".into();
    }
    Ok(mp)
}

/// One `Mounts` entry (`--mount`), checked as dockerd's `validateMountConfig`.
pub fn parse_mount(m: &Mount) -> Result<MountPoint, VolumeError> {
    let typ = m.typ.as_str();
    let invalid = |reason: &str| VolumeError::InvalidMount {
        typ: typ.to_string(),
        reason: reason.to_string(),
    };
    let kind = match typ {
        "bind" => MountKind::Bind,
        "volume" => MountKind::Volume,
        "tmpfs" => MountKind::Tmpfs,
        _ => return Err(invalid("mount type unknown")),
    };
    if m.target.is_empty() {
        return Err(invalid("field Target must not be empty"));
    }
    let destination = clean_destination(&m.target).ok_or_else(|| {
        invalid(&format!(
            "invalid mount path: '{}' mount path must be absolute",
            m.target
        ))
    })?;
    if destination == "/" {
        return Err(invalid("invalid specification: destination can't be '/'"));
    }
    let mut mp = MountPoint {
        kind,
        destination,
        rw: !m.read_only,
        ..Default::default()
    };
    match kind {
        MountKind::Bind => {
            if m.volume_options.is_some() {
                return Err(invalid("field VolumeOptions must not be specified"));
            }
            if m.tmpfs_options.is_some() {
                return Err(invalid("field TmpfsOptions must not be specified"));
            }
            if m.source.is_empty() {
                return Err(invalid("field Source must not be empty"));
            }
            mp.source = clean_destination(&m.source).ok_or_else(|| {
                invalid(&format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                ))
            })?;
            mp.propagation = "rprivate".into();
            if let Some(b) = &m.bind_options {
                if !b.propagation.is_empty() {
                    if !PROPAGATIONS.contains(&b.propagation.as_str()) {
                        return Err(invalid(&format!(
                            "invalid propagation mode: {}",
                            b.propagation
                        )));
                    }
                    mp.propagation = b.propagation.clone();
                }
                mp.non_recursive = b.non_recursive;
                mp.create_source = b.create_mountpoint;
            }
        }
        MountKind::Volume => {
            if m.bind_options.is_some() {
                return Err(invalid("field BindOptions must not be specified"));
            }
            if m.tmpfs_options.is_some() {
                return Err(invalid("field TmpfsOptions must not be specified"));
            }
            if !m.source.is_empty() && !crate::store::valid_name(&m.source) {
                return Err(invalid(&format!(
                    "invalid volume name: \"{}\" includes invalid characters",
                    m.source
                )));
            }
            mp.name = m.source.clone();
            mp.driver = crate::DRIVER.into();
            mp.copy_data = true;
            mp.mode = "z".into();
            if let Some(v) = &m.volume_options {
                mp.copy_data = !v.no_copy;
                mp.volume_labels = v.labels.clone();
                mp.subpath = v.subpath.clone();
                if let Some(dc) = &v.driver_config {
                    if !dc.name.is_empty() {
                        mp.driver = dc.name.clone();
                    }
                    mp.driver_options = dc.options.clone();
                }
            }
            if mp.subpath.starts_with('/') || mp.subpath.split('/').any(|c| c == "..") {
                return Err(invalid("subpath must be a relative path within the volume"));
            }
        }
        MountKind::Tmpfs => {
            if m.bind_options.is_some() {
                return Err(invalid("field BindOptions must not be specified"));
            }
            if m.volume_options.is_some() {
                return Err(invalid("field VolumeOptions must not be specified"));
            }
            if !m.source.is_empty() {
                return Err(invalid("field Source must not be specified"));
            }
            if let Some(t) = &m.tmpfs_options {
                let size = t.size_bytes.unwrap_or(0);
                if size < 0 {
                    return Err(invalid(&format!("invalid tmpfs size: {size}")));
                }
                mp.tmpfs_size = size;
                mp.tmpfs_mode = t.mode.unwrap_or(0) & 0o7777;
            }
        }
    }
    Ok(mp)
}

/// The tmpfs options runc mounts a tmpfs mount point with.
pub fn tmpfs_options(mp: &MountPoint) -> Vec<String> {
    let mut o = vec![
        "nosuid".to_string(),
        "nodev".to_string(),
        "noexec".to_string(),
    ];
    if mp.tmpfs_size > 0 {
        o.push(format!("size={}k", (mp.tmpfs_size + 1023) / 1024));
    }
    if mp.tmpfs_mode != 0 {
        o.push(format!("mode={:o}", mp.tmpfs_mode));
    }
    if !mp.rw {
        o.push("ro".into());
    }
    o
}

/// `--volumes-from NAME[:ro|:rw]`: the container named and the mode it asks for (`None`:
/// each mount keeps its own).
pub fn parse_volumes_from(spec: &str) -> Result<(&str, Option<bool>), VolumeError> {
    let bad = || VolumeError::InvalidSpec {
        spec: spec.to_string(),
        reason: String::new(),
    };
    match spec.split_once(':') {
        None if !spec.is_empty() => Ok((spec, None)),
        Some((name, "rw")) if !name.is_empty() => Ok((name, Some(true))),
        Some((name, "ro")) if !name.is_empty() => Ok((name, Some(false))),
        Some((_, mode)) => Err(VolumeError::InvalidSpec {
            spec: spec.to_string(),
            reason: format!("invalid mode: {mode}"),
        }),
        None => Err(bad()),
    }
}

/// A container's mount points, in dockerd's order of precedence: the image's volumes, then
/// `--volumes-from`'s (`inherited`), then `Binds`, then `Mounts`; a later one at the same
/// destination replaces an earlier one, but `Binds` and `Mounts` may not both name one.
pub fn plan(
    image_volumes: &[String],
    inherited: Vec<MountPoint>,
    binds: &[String],
    mounts: &[Mount],
    volume_driver: &str,
) -> Result<Vec<MountPoint>, VolumeError> {
    let mut out: BTreeMap<String, MountPoint> = BTreeMap::new();
    for v in image_volumes {
        let Some(destination) = clean_destination(v) else {
            continue;
        };
        if destination == "/" {
            continue;
        }
        out.insert(
            destination.clone(),
            MountPoint {
                kind: MountKind::Volume,
                destination,
                driver: crate::DRIVER.into(),
                rw: true,
                copy_data: true,
                ..Default::default()
            },
        );
    }
    for mp in inherited {
        out.insert(mp.destination.clone(), mp);
    }
    let mut given = std::collections::BTreeSet::new();
    let parsed = binds
        .iter()
        .map(|b| parse_bind(b, volume_driver))
        .chain(mounts.iter().map(parse_mount));
    for mp in parsed {
        let mp = mp?;
        if !given.insert(mp.destination.clone()) {
            return Err(VolumeError::DuplicateMountPoint {
                destination: mp.destination,
            });
        }
        out.insert(mp.destination.clone(), mp);
    }
    Ok(out.into_values().collect())
}

/// `mounts` in the order runc must mount them: a parent before what is under it.
pub fn sorted_for_mounting(mounts: &mut [MountPoint]) {
    mounts.sort_by_key(|m| m.destination.split('/').filter(|c| !c.is_empty()).count());
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::{BindOptions, TmpfsOptions, VolumeOptions};

    #[test]
    fn binds_named_anonymous_and_host() {
        let v = parse_bind("data:/srv/", "").unwrap();
        assert_eq!(
            (
                v.kind,
                v.name.as_str(),
                v.destination.as_str(),
                v.mode.as_str()
            ),
            (MountKind::Volume, "data", "/srv", "z")
        );
        assert!(v.rw && v.copy_data && v.driver == "local");
        let a = parse_bind("/cache", "").unwrap();
        assert!(a.is_anonymous() && a.destination == "/cache");
        let b = parse_bind("/host/x:/x:ro,rshared", "").unwrap();
        assert_eq!(
            (b.kind, b.source.as_str(), b.rw, b.propagation.as_str()),
            (MountKind::Bind, "/host/x", false, "rshared")
        );
        assert!(!b.copy_data && b.create_source);
        assert!(!parse_bind("v:/d:nocopy", "").unwrap().copy_data);
        assert_eq!(parse_bind("v:/d:ro", "").unwrap().mode, "ro");
    }

    #[test]
    fn bad_binds() {
        for bad in [
            "a:b:c:d",
            "v:relative",
            "/a:/",
            "/a:/b:bogus",
            "/a:/b:ro,rw",
            "/a:/b:nocopy",
            "v:/d:shared",
            ":/d",
            "",
        ] {
            assert!(parse_bind(bad, "").is_err(), "{bad}");
        }
        let e = parse_bind("v:/d:bogus", "").unwrap_err().to_string();
        assert!(
            e.starts_with("invalid volume specification: 'v:/d:bogus'"),
            "{e}"
        );
    }

    fn m(typ: &str, src: &str, dst: &str) -> Mount {
        Mount {
            typ: typ.into(),
            source: src.into(),
            target: dst.into(),
            ..Default::default()
        }
    }

    #[test]
    fn mounts_of_each_type() {
        let mut v = m("volume", "vv", "/data");
        v.read_only = true;
        v.volume_options = Some(VolumeOptions {
            no_copy: true,
            labels: [("a".to_string(), "b".to_string())].into(),
            subpath: "sub/dir".into(),
            ..Default::default()
        });
        let p = parse_mount(&v).unwrap();
        assert!(!p.rw && !p.copy_data && p.subpath == "sub/dir" && p.volume_labels.len() == 1);
        let mut t = m("tmpfs", "", "/t");
        t.tmpfs_options = Some(TmpfsOptions {
            size_bytes: Some(1 << 20),
            mode: Some(0o700),
        });
        let p = parse_mount(&t).unwrap();
        assert_eq!(
            tmpfs_options(&p),
            ["nosuid", "nodev", "noexec", "size=1024k", "mode=700"]
        );
        let mut b = m("bind", "/h", "/c");
        b.bind_options = Some(BindOptions {
            propagation: "rslave".into(),
            ..Default::default()
        });
        assert_eq!(parse_mount(&b).unwrap().propagation, "rslave");
        assert!(
            parse_mount(&m("volume", "", "/anon"))
                .unwrap()
                .is_anonymous()
        );
    }

    #[test]
    fn bad_mounts() {
        let mut bind_with_volume_opts = m("bind", "/h", "/c");
        bind_with_volume_opts.volume_options = Some(Default::default());
        let mut escaping = m("volume", "vv", "/c");
        escaping.volume_options = Some(VolumeOptions {
            subpath: "../x".into(),
            ..Default::default()
        });
        for (bad, want) in [
            (m("bind", "", "/c"), "field Source must not be empty"),
            (m("tmpfs", "x", "/c"), "field Source must not be specified"),
            (m("volume", "v", ""), "field Target must not be empty"),
            (m("volume", "v", "rel"), "must be absolute"),
            (m("npipe", "v", "/c"), "mount type unknown"),
            (m("volume", "a b", "/c"), "invalid volume name"),
            (bind_with_volume_opts, "VolumeOptions must not be specified"),
            (escaping, "relative path within the volume"),
        ] {
            let e = parse_mount(&bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }

    #[test]
    fn volumes_from_modes() {
        assert_eq!(parse_volumes_from("a").unwrap(), ("a", None));
        assert_eq!(parse_volumes_from("a:ro").unwrap(), ("a", Some(false)));
        assert_eq!(parse_volumes_from("a:rw").unwrap(), ("a", Some(true)));
        assert!(parse_volumes_from("a:x").is_err() && parse_volumes_from(":ro").is_err());
    }

    #[test]
    fn plan_precedence_and_duplicates() {
        let inherited = vec![parse_bind("shared:/shared", "").unwrap()];
        let p = plan(
            &["/data".into(), "/shared".into(), "/logs/".into()],
            inherited,
            &["named:/data".into()],
            &[m("tmpfs", "", "/logs")],
            "",
        )
        .unwrap();
        let by: BTreeMap<_, _> = p.iter().map(|m| (m.destination.as_str(), m)).collect();
        assert_eq!(by["/data"].name, "named", "a bind over the image's volume");
        assert_eq!(by["/shared"].name, "shared", "inherited over the image's");
        assert_eq!(by["/logs"].kind, MountKind::Tmpfs);
        assert_eq!(p.len(), 3);
        let e = plan(
            &[],
            vec![],
            &["aa:/x".into()],
            &[m("volume", "bb", "/x")],
            "",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "Duplicate mount point: /x");
    }

    #[test]
    fn parents_mount_first() {
        let mut v = vec![
            parse_bind("a:/a/b/c", "").unwrap(),
            parse_bind("b:/a", "").unwrap(),
            parse_bind("c:/a/b", "").unwrap(),
        ];
        sorted_for_mounting(&mut v);
        let d: Vec<_> = v.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(d, ["/a", "/a/b", "/a/b/c"]);
    }
}
