//! The pull pipeline against a registry of the test's own (hyper on 127.0.0.1), for what a
//! real one will not do on demand: a bearer-token challenge, 500 and 429 answers, a blob cut
//! off mid-way (resumed with a Range request), a config naming other layers, a client that
//! goes away. Each failure leaves no layer, no image and no work folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};

use berth_images::{ImageStore, Reference, sha256_hex};
use berth_registry::{Credentials, Progress, PullRequest, RegistryError, RegistrySettings, pull};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};

type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Default)]
struct Faults {
    /// Answers for the next layer GETs, in order: a status, or 0 to cut the body half-way.
    layer: Vec<u16>,
}

struct Fake {
    blobs: HashMap<String, Vec<u8>>,
    manifest: Vec<u8>,
    layer: String,
    faults: Mutex<Faults>,
    /// Requests seen: "METHOD path [range]".
    log: Mutex<Vec<String>>,
    bearer: bool,
    port: u16,
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|n| match n {}).boxed()
}

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder().status(status).body(full(body)).unwrap()
}

impl Fake {
    fn handle(&self, req: &Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let range = req
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.log.lock().unwrap().push(format!(
            "{} {path} {}",
            req.method(),
            range.clone().unwrap_or_default()
        ));
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if path == "/token" {
            // Basic u:p, and the scope the pull needs.
            let q = req.uri().query().unwrap_or_default();
            if auth != "Basic dTpw" || !q.contains("scope=repository:acc/x:pull") {
                return answer(StatusCode::UNAUTHORIZED, "{}");
            }
            return answer(StatusCode::OK, r#"{"token":"t0k"}"#);
        }
        if self.bearer && auth != "Bearer t0k" {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(
                    "www-authenticate",
                    format!(
                        r#"Bearer realm="http://127.0.0.1:{}/token",service="fake",scope="repository:acc/x:pull""#,
                        self.port
                    ),
                )
                .body(full("{}"))
                .unwrap();
        }
        if path == "/v2/" {
            return answer(StatusCode::OK, "{}");
        }
        if path.starts_with("/v2/acc/x/manifests/") {
            return Response::builder()
                .header(
                    "content-type",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )
                .body(full(self.manifest.clone()))
                .unwrap();
        }
        let Some(digest) = path.strip_prefix("/v2/acc/x/blobs/") else {
            return answer(StatusCode::NOT_FOUND, "{}");
        };
        let Some(data) = self.blobs.get(digest).cloned() else {
            return answer(StatusCode::NOT_FOUND, "{}");
        };
        if digest == self.layer {
            let fault = {
                let mut f = self.faults.lock().unwrap();
                (!f.layer.is_empty()).then(|| f.layer.remove(0))
            };
            match fault {
                Some(0) => {
                    // The whole length promised, half sent, then the connection fails.
                    let half = Bytes::from(data[..data.len() / 2].to_vec());
                    // The half goes out before the connection fails.
                    let stream = futures_util::stream::unfold(Some(half), |half| async move {
                        match half {
                            Some(h) => Some((Ok(Frame::data(h)), None)),
                            None => {
                                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                                Some((Err(std::io::Error::other("cut")), None))
                            }
                        }
                    });
                    return Response::builder()
                        .header("content-length", data.len())
                        .body(BodyExt::boxed(StreamBody::new(stream)))
                        .unwrap();
                }
                Some(status) => {
                    return answer(StatusCode::from_u16(status).unwrap(), "{}");
                }
                None => {}
            }
            if let Some(from) = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok())
            {
                return Response::builder()
                    .status(StatusCode::PARTIAL_CONTENT)
                    .body(full(data[from..].to_vec()))
                    .unwrap();
            }
        }
        answer(StatusCode::OK, data)
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A one-layer image; the config's diff ID is `diff_id` when given (a lie), else the real one.
async fn start(bearer: bool, faults: Vec<u16>, diff_id: Option<&str>) -> Arc<Fake> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    // Not compressible: the blob is as big as the file.
    let mut seed = 7u32;
    let content: Vec<u8> = (0..200_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as u8
        })
        .collect();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "data.bin", &content[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let layer = gzip(&tar);
    let real = format!("sha256:{}", sha256_hex(&tar));
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        diff_id.unwrap_or(&real)
    );
    let (cd, ld) = (
        format!("sha256:{}", sha256_hex(config.as_bytes())),
        format!("sha256:{}", sha256_hex(&layer)),
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
        "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{cd}","size":{}}},
        "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = Arc::new(Fake {
        blobs: HashMap::from([(cd, config.into_bytes()), (ld.clone(), layer)]),
        manifest: manifest.into_bytes(),
        layer: ld,
        faults: Mutex::new(Faults { layer: faults }),
        log: Mutex::new(Vec::new()),
        bearer,
        port,
    });
    let served = fake.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let fake = served.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let resp = fake.handle(&req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    fake
}

fn request(fake: &Fake, creds: bool) -> PullRequest {
    PullRequest {
        reference: Reference::parse(&format!("127.0.0.1:{}/acc/x:1", fake.port)).unwrap(),
        platform: None,
        credentials: creds.then(|| Credentials {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        }),
    }
}

fn settings(attempts: u32) -> RegistrySettings {
    RegistrySettings {
        max_download_attempts: attempts,
        ..Default::default()
    }
}

/// (layers stored, work folders and downloads left, images).
fn leftovers(root: &std::path::Path, store: &ImageStore) -> (usize, usize, usize) {
    let count = |p: std::path::PathBuf| std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0);
    (
        count(root.join("layers")),
        count(root.join("tmp")) + count(root.join("downloads")),
        store.list().len(),
    )
}

fn statuses(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Progress>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        out.push(m.status.unwrap_or_default());
    }
    out
}

#[tokio::test]
async fn bearer_token_then_500_429_and_a_cut_blob_resumed_with_a_range() {
    let fake = start(true, vec![500, 429, 0], None).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(dir.path()).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let out = pull(store.clone(), &settings(5), request(&fake, true), &tx)
        .await
        .unwrap();
    assert!(!out.up_to_date);
    let log = fake.log.lock().unwrap().clone();
    let layer_gets: Vec<&String> = log.iter().filter(|l| l.contains(&fake.layer)).collect();
    assert_eq!(layer_gets.len(), 4, "{log:#?}");
    assert!(
        layer_gets[3].contains(" bytes=") && !layer_gets[3].ends_with(" bytes=0-"),
        "the last one resumes: {log:#?}"
    );
    assert!(log.iter().any(|l| l.starts_with("GET /token")), "{log:#?}");
    let s = statuses(&mut rx);
    for want in [
        "Pulling from acc/x",
        "Pulling fs layer",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
        "Retrying in 1 second",
        "Retrying in 2 seconds",
    ] {
        assert!(s.iter().any(|m| m == want), "{want} in {s:#?}");
    }
    assert!(s.iter().any(|m| m.starts_with("Digest: sha256:")), "{s:#?}");
    assert_eq!(
        s.last().unwrap(),
        &format!(
            "Status: Downloaded newer image for 127.0.0.1:{}/acc/x:1",
            fake.port
        )
    );
    assert_eq!(leftovers(dir.path(), &store), (1, 0, 1));

    // Again: nothing but the manifest and the config.
    let before = fake.log.lock().unwrap().len();
    let out = pull(store.clone(), &settings(5), request(&fake, true), &tx)
        .await
        .unwrap();
    assert!(out.up_to_date);
    let log = fake.log.lock().unwrap()[before..].to_vec();
    assert!(!log.iter().any(|l| l.contains(&fake.layer)), "{log:#?}");
}

#[tokio::test]
async fn without_credentials_the_token_server_refuses() {
    let fake = start(true, vec![], None).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(dir.path()).unwrap());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let err = pull(store.clone(), &settings(5), request(&fake, false), &tx)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Denied(_)), "{err:?}");
    assert_eq!(leftovers(dir.path(), &store), (0, 0, 0));
}

#[tokio::test]
async fn attempts_run_out_and_nothing_is_left() {
    let fake = start(false, vec![500, 503, 500], None).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(dir.path()).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let err = pull(store.clone(), &settings(2), request(&fake, false), &tx)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 503, .. }),
        "{err:?}"
    );
    let layer_gets = fake
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&fake.layer))
        .count();
    assert_eq!(layer_gets, 2, "max-download-attempts");
    assert!(!statuses(&mut rx).iter().any(|s| s == "Pull complete"));
    assert_eq!(leftovers(dir.path(), &store), (0, 0, 0));
}

#[tokio::test]
async fn a_config_naming_other_layers_is_refused() {
    let lie = format!("sha256:{}", "4".repeat(64));
    let fake = start(false, vec![], Some(&lie)).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(dir.path()).unwrap());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let err = pull(store.clone(), &settings(5), request(&fake, false), &tx)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Image(berth_images::ImageError::DiffMismatch { .. })
        ),
        "{err:?}"
    );
    assert_eq!(leftovers(dir.path(), &store), (0, 0, 0));
}

#[tokio::test]
async fn a_client_that_goes_away_stops_the_pull() {
    let fake = start(false, vec![], None).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(dir.path()).unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    drop(rx);
    let err = pull(store.clone(), &settings(5), request(&fake, false), &tx)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Cancelled), "{err:?}");
    assert_eq!(leftovers(dir.path(), &store), (0, 0, 0));
}

#[tokio::test]
async fn a_pull_cut_short_is_resumed_by_the_next_one() {
    // One attempt: the cut ends the first pull, its bytes stay in downloads/.
    let fake = start(false, vec![0], None).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(dir.path()).unwrap());
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let err = pull(store.clone(), &settings(1), request(&fake, false), &tx)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Body { .. }), "{err:?}");
    let partial = dir.path().join("downloads").join(format!(
        "{}.partial",
        fake.layer.trim_start_matches("sha256:")
    ));
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0, "the bytes that came are kept");
    assert_eq!(store.list().len(), 0);
    assert_eq!(
        std::fs::read_dir(dir.path().join("layers"))
            .unwrap()
            .count(),
        0
    );

    // The next pull (a daemon restarted in between changes nothing) asks for the rest.
    drop(store);
    let store = Arc::new(ImageStore::open(dir.path()).unwrap());
    pull(store.clone(), &settings(1), request(&fake, false), &tx)
        .await
        .unwrap();
    let log = fake.log.lock().unwrap().clone();
    let last = log.iter().rev().find(|l| l.contains(&fake.layer)).unwrap();
    assert!(last.ends_with(&format!(" bytes={kept}-")), "{log:#?}");
    assert_eq!(leftovers(dir.path(), &store), (1, 0, 1));
}
