//! Manifests and indexes: Docker schema 2 and OCI, parsed by their media type; the platform
//! choice in an index.

use serde::Deserialize;

use crate::RegistryError;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// What a pull accepts, in dockerd's order of preference.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// An image's manifest: its config and its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    /// A manifest list or OCI index: one manifest per platform.
    Index(Vec<Descriptor>),
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// Whether a digest string is `sha256:` and 64 lower-case hex digits.
pub(crate) fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl Manifest {
    /// Parses a manifest by its `mediaType` (or, without one, the response's content type
    /// and its shape). Schema 1 and unknown types are refused.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, RegistryError> {
        let raw: Raw =
            serde_json::from_slice(body).map_err(|e| RegistryError::BadManifest(e.to_string()))?;
        if raw.schema_version == 1 {
            return Err(RegistryError::Unsupported(
                "Docker Image Format v1 (schema 1) manifests are not supported".into(),
            ));
        }
        let content_type = content_type.map(|c| c.split(';').next().unwrap_or(c).trim());
        let media = raw.media_type.as_deref().or(content_type).unwrap_or("");
        let is_index = match media {
            DOCKER_LIST | OCI_INDEX => true,
            DOCKER_MANIFEST | OCI_MANIFEST => false,
            _ if raw.manifests.is_some() => true,
            _ if raw.config.is_some() => false,
            other => {
                return Err(RegistryError::Unsupported(format!(
                    "unsupported manifest media type {other:?}"
                )));
            }
        };
        let check = |d: &Descriptor| {
            if valid_digest(&d.digest) {
                Ok(())
            } else {
                Err(RegistryError::BadManifest(format!(
                    "unsupported digest {:?}",
                    d.digest
                )))
            }
        };
        if is_index {
            let manifests = raw
                .manifests
                .ok_or_else(|| RegistryError::BadManifest("index without manifests".into()))?;
            manifests.iter().try_for_each(check)?;
            return Ok(Manifest::Index(manifests));
        }
        let config = raw
            .config
            .ok_or_else(|| RegistryError::BadManifest("manifest without config".into()))?;
        let layers = raw.layers.unwrap_or_default();
        check(&config)?;
        layers.iter().try_for_each(check)?;
        Ok(Manifest::Image(ImageManifest { config, layers }))
    }
}

/// Refuses layers berth cannot unpack, before anything is fetched.
pub(crate) fn check_layer_type(d: &Descriptor) -> Result<(), RegistryError> {
    let t = d.media_type.as_str();
    if t.contains("zstd") {
        return Err(RegistryError::Unsupported(format!(
            "layer {} is zstd-compressed ({t}), which berth cannot unpack yet",
            d.digest
        )));
    }
    if t.contains("foreign") || t.contains("nondistributable") {
        return Err(RegistryError::Unsupported(format!(
            "layer {} is a foreign layer ({t}), which berth does not fetch",
            d.digest
        )));
    }
    Ok(())
}

/// The Go name of an architecture.
fn normalise_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    }
}

impl Platform {
    /// This machine: linux and its architecture.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: normalise_arch(std::env::consts::ARCH).into(),
            variant: None,
        }
    }

    /// `os/arch[/variant]`, as `--platform` gives it.
    pub fn parse(s: &str) -> Result<Platform, RegistryError> {
        let parts: Vec<&str> = s.split('/').map(str::trim).collect();
        let bad = || RegistryError::BadPlatform(s.to_string());
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_ascii_lowercase(),
                architecture: normalise_arch(&arch.to_ascii_lowercase()).into(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: os.to_ascii_lowercase(),
                    architecture: normalise_arch(&arch.to_ascii_lowercase()).into(),
                    variant: Some(variant.to_ascii_lowercase()),
                })
            }
            _ => Err(bad()),
        }
    }

    fn matches(&self, p: &Platform) -> bool {
        let variant = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None | Some("")) => Some("v8".to_string()),
            (_, Some("")) => None,
            (_, v) => v.map(str::to_string),
        };
        self.os == p.os
            && self.architecture == normalise_arch(&p.architecture)
            && (self.variant.is_none() || variant(self) == variant(p))
    }

    /// The first entry of an index for this platform.
    pub fn choose<'a>(&self, entries: &'a [Descriptor]) -> Option<&'a Descriptor> {
        entries
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| self.matches(p)))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    #[test]
    fn docker_and_oci_manifests_parse() {
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":7}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":9}}]}}"#,
            d('a'),
            d('b')
        );
        let Manifest::Image(m) = Manifest::parse(None, docker.as_bytes()).unwrap() else {
            panic!("an image manifest")
        };
        assert_eq!(m.config.size, 7);
        assert_eq!(m.layers[0].digest, d('b'));
        // OCI without mediaType in the body: the content type says.
        let oci = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":1}},"layers":[]}}"#,
            d('c')
        );
        assert!(matches!(
            Manifest::parse(
                Some("application/vnd.oci.image.manifest.v1+json"),
                oci.as_bytes()
            ),
            Ok(Manifest::Image(_))
        ));
    }

    #[test]
    fn indexes_parse_and_schema1_and_bad_digests_are_refused() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"platform":{{"architecture":"arm64","os":"linux"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":4,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            d('1'),
            d('2')
        );
        let Manifest::Index(entries) = Manifest::parse(None, index.as_bytes()).unwrap() else {
            panic!("an index")
        };
        assert_eq!(entries.len(), 2);
        let err = Manifest::parse(None, br#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
        let bad = r#"{"schemaVersion":2,"config":{"digest":"md5:abc","size":1},"layers":[]}"#;
        assert!(matches!(
            Manifest::parse(None, bad.as_bytes()),
            Err(RegistryError::BadManifest(_))
        ));
    }

    #[test]
    fn the_platform_choice_follows_os_arch_and_variant() {
        let entry = |digest: char, arch: &str, variant: Option<&str>| Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: d(digest),
            size: 1,
            platform: Some(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(str::to_string),
            }),
        };
        let entries = vec![
            entry('1', "arm", Some("v6")),
            entry('2', "arm", Some("v7")),
            entry('3', "arm64", Some("v8")),
            entry('4', "amd64", None),
        ];
        let pick = |p: &str| {
            Platform::parse(p)
                .unwrap()
                .choose(&entries)
                .map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/amd64"), Some(d('4')));
        assert_eq!(pick("linux/x86_64"), Some(d('4')));
        assert_eq!(pick("linux/arm/v7"), Some(d('2')));
        assert_eq!(pick("linux/arm"), Some(d('1')), "no variant: the first arm");
        assert_eq!(pick("linux/arm64"), Some(d('3')));
        assert_eq!(pick("linux/arm64/v8"), Some(d('3')));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("windows/amd64"), None);
        assert!(Platform::parse("linux").is_err());
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        assert!(!host.architecture.contains('_'));
    }

    #[test]
    fn zstd_and_foreign_layers_are_refused_by_name() {
        let layer = |t: &str| Descriptor {
            media_type: t.into(),
            digest: d('e'),
            size: 1,
            platform: None,
        };
        let err =
            check_layer_type(&layer("application/vnd.oci.image.layer.v1.tar+zstd")).unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
        assert!(
            check_layer_type(&layer(
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            ))
            .is_err()
        );
        assert!(check_layer_type(&layer("application/vnd.oci.image.layer.v1.tar+gzip")).is_ok());
    }
}
