//! HTTPS against Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with a TLS
//! configuration of the test's own: a CA, a server certificate for `localhost` and a client
//! certificate made with `openssl`, the registry asking for the client certificate. The
//! registry is named `localhost:PORT` (not in `insecure-registries`); its CA and the client
//! certificate sit in the test's `certs.d/localhost:PORT/`, as dockerd reads them. The image
//! is written straight into the registry's storage (distribution's file layout).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_images::{ImageStore, Reference, sha256_hex};
use berth_registry::{PullRequest, RegistrySettings, pull};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ca.crt/ca.key, server.crt/server.key (localhost, 127.0.0.1), client.cert/client.key.
fn make_certs(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        dir,
        &[
            &["req", "-x509", "-nodes", "-days", "2"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=berth test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    for (name, cn, ext) in [
        (
            "server",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "berth", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(
            dir.join(format!("{name}.ext")),
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n{ext}"),
        )
        .unwrap();
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        openssl(
            dir,
            &[
                &["req", "-new", "-nodes"][..],
                &ec,
                &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={cn}")],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A one-layer image as `repo:tag` in distribution's storage under `root`.
fn seed(root: &Path, repo: &str, tag: &str) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let content = b"over TLS\n";
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "hello.txt", &content[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let layer = gzip(&tar);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
        sha256_hex(&tar)
    );
    let (cd, ld) = (sha256_hex(config.as_bytes()), sha256_hex(&layer));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let md = sha256_hex(manifest.as_bytes());
    let v2 = root.join("docker/registry/v2");
    let repo_dir = v2.join("repositories").join(repo);
    for (hex, bytes) in [
        (&cd, config.as_bytes()),
        (&ld, &layer[..]),
        (&md, manifest.as_bytes()),
    ] {
        write(
            &v2.join("blobs/sha256")
                .join(&hex[..2])
                .join(hex)
                .join("data"),
            bytes,
        );
    }
    let link = |hex: &str| format!("sha256:{hex}").into_bytes();
    for hex in [&cd, &ld] {
        write(
            &repo_dir.join("_layers/sha256").join(hex).join("link"),
            &link(hex),
        );
    }
    write(
        &repo_dir
            .join("_manifests/revisions/sha256")
            .join(&md)
            .join("link"),
        &link(&md),
    );
    let tag_dir = repo_dir.join("_manifests/tags").join(tag);
    write(&tag_dir.join("current/link"), &link(&md));
    write(
        &tag_dir.join("index/sha256").join(&md).join("link"),
        &link(&md),
    );
}

/// `docker-registry` serving HTTPS with `certs`' server certificate, asking clients for a
/// certificate signed by the CA; stopped (by its PID) when dropped.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    fn start(dir: &Path, certs: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.join("storage");
        seed(&storage, "acc/tls", "1");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  \
             filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  tls:\n    \
             certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
            storage.display(),
            certs.join("server.crt").display(),
            certs.join("server.key").display(),
            certs.join("ca.crt").display(),
        );
        let config = dir.join("config.yml");
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, port }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        text.push_str(": ");
        text.push_str(&s.to_string());
        next = s.source();
    }
    text
}

#[tokio::test]
#[ignore = "needs docker-registry and openssl (scripts/test installs them as root)"]
async fn pull_over_https_with_the_ca_and_client_certificate_from_certs_d() {
    for tool in ["docker-registry", "openssl"] {
        assert!(
            have(tool),
            "{tool} is missing (apt-get install docker-registry openssl)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs);
    let reg = Registry::start(dir.path(), &certs);
    let host = format!("localhost:{}", reg.port);

    // certs.d/localhost:PORT/: the CA, and client.cert with client.key.
    let certs_d = dir.path().join("certs.d");
    let per_host = certs_d.join(&host);
    std::fs::create_dir_all(&per_host).unwrap();
    std::fs::copy(certs.join("ca.crt"), per_host.join("ca.crt")).unwrap();
    std::fs::copy(certs.join("client.crt"), per_host.join("client.cert")).unwrap();
    std::fs::copy(certs.join("client.key"), per_host.join("client.key")).unwrap();
    let settings = RegistrySettings {
        certs_dirs: vec![dir.path().join("no-such-dir"), certs_d],
        ..Default::default()
    };
    assert!(settings.insecure.is_empty());

    let request = || PullRequest {
        reference: Reference::parse(&format!("{host}/acc/tls:1")).unwrap(),
        platform: None,
        credentials: None,
    };
    let root = dir.path().join("store");
    let store = Arc::new(ImageStore::open(&root).unwrap());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let out = pull(store.clone(), &settings, request(), &tx).await;
    assert!(out.is_ok(), "{}", error_chain(out.as_ref().err().unwrap()));
    assert_eq!(store.list().len(), 1);

    // Without the CA: the server's certificate is refused, in Go's words, naming the host;
    // no fall back to plain HTTP.
    let bare = RegistrySettings {
        certs_dirs: vec![dir.path().join("empty")],
        ..Default::default()
    };
    let store2 = Arc::new(ImageStore::open(dir.path().join("store2")).unwrap());
    let err = pull(store2.clone(), &bare, request(), &tx)
        .await
        .expect_err("no CA, no pull");
    let text = error_chain(&err);
    assert!(
        text.contains("x509: certificate signed by unknown authority"),
        "{text}"
    );
    assert!(text.contains(&format!("https://{host}/v2/")), "{text}");
    assert!(store2.list().is_empty());
}
