//! The pull pipeline: manifest (and index) → config → layers downloaded concurrently into
//! the store's work folder, each verified against its digest, then unpacked in order (the
//! first while later ones still download) and checked against the config's diff IDs →
//! the image, named and with its repository digest. Nothing is named until everything is
//! stored, and the work folder goes whatever happens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_images::{ImageId, ImageStore, Reference, sha256_hex};
use http::{Method, StatusCode, header};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::auth::Credentials;
use crate::client::{Endpoint, Session, backoff, read_limited, registry_errors};
use crate::manifest::{ACCEPT, Descriptor, Manifest, check_layer_type};
use crate::{Platform, Progress, ProgressSink, RegistryError, RegistrySettings};

/// Progress updates of one layer are sent at most this often, as dockerd's.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
const MANIFEST_LIMIT: usize = 4 << 20;
const CONFIG_LIMIT: usize = 16 << 20;

/// What to pull.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// A tag or a digest (normalised: `docker.io/library/busybox:latest`).
    pub reference: Reference,
    /// `--platform`; this machine's when absent.
    pub platform: Option<Platform>,
    pub credentials: Option<Credentials>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    pub id: ImageId,
    /// The digest of the manifest (or index) the reference named.
    pub digest: String,
    pub up_to_date: bool,
}

pub(crate) fn send(p: &ProgressSink, m: Progress) -> Result<(), RegistryError> {
    p.send(m).map_err(|_| RegistryError::Cancelled)
}

/// The host serving a reference's domain (Docker Hub's is not `docker.io`).
pub(crate) fn registry_host(r: &Reference) -> &str {
    if r.domain == "docker.io" {
        "registry-1.docker.io"
    } else {
        &r.domain
    }
}

/// Pulls an image into the store, sending dockerd's progress messages. Docker Hub
/// references try `registry-mirrors` first, in order, then the Hub.
pub async fn pull(
    store: Arc<ImageStore>,
    settings: &RegistrySettings,
    req: PullRequest,
    progress: &ProgressSink,
) -> Result<PullOutcome, RegistryError> {
    let mut endpoints = Vec::new();
    if req.reference.domain == "docker.io" {
        endpoints.extend(settings.mirrors.iter().map(|m| Endpoint::from_url(m)));
    }
    endpoints.push(Endpoint::for_host(settings, registry_host(&req.reference)));
    let mut last = None;
    let count = endpoints.len();
    for (i, endpoint) in endpoints.into_iter().enumerate() {
        let result = match endpoint {
            Ok(e) => pull_from(store.clone(), e, settings, &req, progress).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(o) => return Ok(o),
            Err(e) if i + 1 == count || matches!(e, RegistryError::Cancelled) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "pull from a mirror failed; trying the next");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| RegistryError::BadAddress(req.reference.domain.clone())))
}

/// GETs a manifest by tag or digest; a digest is checked against the bytes.
async fn fetch_manifest(
    session: &Session,
    r: &Reference,
    reference: &str,
) -> Result<(Vec<u8>, Option<String>, String), RegistryError> {
    let url = format!(
        "{}/v2/{}/manifests/{reference}",
        session.endpoint.base, r.path
    );
    let resp = session
        .send(Method::GET, &url, &[(header::ACCEPT, ACCEPT.to_string())])
        .await?;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_limited(resp, MANIFEST_LIMIT, "a manifest", &url).await?;
    let detail = registry_errors(&body);
    match status {
        s if s.is_success() => {}
        StatusCode::NOT_FOUND => {
            let shown = match &r.digest {
                Some(d) => format!("{}@{d}", r.familiar_name()),
                None => r.to_string(),
            };
            return Err(RegistryError::NotFound {
                reference: shown,
                detail: if detail.is_empty() {
                    "manifest unknown".into()
                } else {
                    detail
                },
            });
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(RegistryError::Denied(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {}",
                r.familiar_name(),
                if detail.is_empty() {
                    "denied".into()
                } else {
                    detail
                }
            )));
        }
        s => {
            return Err(RegistryError::status("GET", url, s.as_u16(), detail));
        }
    }
    let digest = format!("sha256:{}", sha256_hex(&body));
    if reference.starts_with("sha256:") && reference != digest {
        return Err(RegistryError::DigestMismatch {
            digest: reference.to_string(),
            actual: digest,
        });
    }
    Ok((body.to_vec(), content_type, digest))
}

/// A small blob (the config), whole, checked against its descriptor.
async fn fetch_small_blob(
    session: &Session,
    repo: &str,
    d: &Descriptor,
) -> Result<Vec<u8>, RegistryError> {
    let url = format!("{}/v2/{repo}/blobs/{}", session.endpoint.base, d.digest);
    let resp = session.send(Method::GET, &url, &[]).await?;
    let status = resp.status();
    let body = read_limited(resp, CONFIG_LIMIT, "an image config", &url).await?;
    if !status.is_success() {
        let detail = registry_errors(&body);
        return Err(RegistryError::status("GET", url, status.as_u16(), detail));
    }
    let actual = format!("sha256:{}", sha256_hex(&body));
    if actual != d.digest {
        return Err(RegistryError::DigestMismatch {
            digest: d.digest.clone(),
            actual,
        });
    }
    Ok(body.to_vec())
}

/// The store's work folder of one pull, removed when the pull ends either way.
pub(crate) struct WorkDir(pub(crate) PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Downloads still running when the pull ends are stopped.
struct Tasks(Vec<Option<JoinHandle<Result<PathBuf, RegistryError>>>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in self.0.iter().flatten() {
            t.abort();
        }
    }
}

/// The 12-digit id dockerd shows for a layer (of its compressed digest).
pub(crate) fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

async fn pull_from(
    store: Arc<ImageStore>,
    endpoint: Endpoint,
    settings: &RegistrySettings,
    req: &PullRequest,
    progress: &ProgressSink,
) -> Result<PullOutcome, RegistryError> {
    let r = &req.reference;
    let scope = format!("repository:{}:pull", r.path);
    let session =
        Arc::new(Session::open(endpoint, settings, Some(scope), req.credentials.as_ref()).await?);
    let named = r
        .digest
        .clone()
        .or_else(|| r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (bytes, content_type, top_digest) = fetch_manifest(&session, r, &named).await?;
    let mut manifest = Manifest::parse(content_type.as_deref(), &bytes)?;
    if let Manifest::Index(entries) = &manifest {
        let want = req.platform.clone().unwrap_or_else(Platform::host);
        let entry = want
            .choose(entries)
            .ok_or_else(|| RegistryError::NoMatchingPlatform(want.to_string()))?;
        let (bytes, content_type, _) = fetch_manifest(&session, r, &entry.digest).await?;
        manifest = Manifest::parse(content_type.as_deref(), &bytes)?;
    }
    let Manifest::Image(m) = manifest else {
        return Err(RegistryError::BadManifest(
            "an index names another index".into(),
        ));
    };
    m.layers.iter().try_for_each(check_layer_type)?;
    let config = fetch_small_blob(&session, &r.path, &m.config).await?;
    let diff_ids = diff_ids_of(&config)?;
    if diff_ids.len() != m.layers.len() {
        return Err(RegistryError::BadConfig(format!(
            "{} layers in the manifest, {} diff IDs in the config",
            m.layers.len(),
            diff_ids.len()
        )));
    }
    let id = format!("sha256:{}", sha256_hex(&config));
    send(
        progress,
        Progress::with_id(format!("Pulling from {}", r.path), named.clone()),
    )?;
    let tag_ref = r.digest.is_none().then(|| r.clone());
    let digest_ref = Reference {
        tag: None,
        digest: Some(top_digest.clone()),
        ..r.clone()
    };
    let up_to_date = store.get(&id).is_ok()
        && tag_ref
            .as_ref()
            .is_none_or(|t| store.resolve(&t.to_string()).ok().as_ref() == Some(&id))
        && store
            .get(&id)
            .is_ok_and(|rec| rec.repo_digests.contains(&digest_ref));
    if !store
        .get(&id)
        .is_ok_and(|_| diff_ids.iter().all(|d| store.has_layer(d)))
    {
        fetch_layers(
            &store, &session, settings, r, &m.layers, &diff_ids, progress,
        )
        .await?;
    }
    let tags: Vec<Reference> = tag_ref.into_iter().collect();
    let store2 = store.clone();
    let stored =
        tokio::task::spawn_blocking(move || store2.put_named_image(&config, &tags, &[digest_ref]))
            .await
            .map_err(|e| RegistryError::Task(e.to_string()))??;
    send(progress, Progress::status(format!("Digest: {top_digest}")))?;
    let status = if up_to_date {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    send(progress, Progress::status(format!("Status: {status} {r}")))?;
    Ok(PullOutcome {
        id: stored,
        digest: top_digest,
        up_to_date,
    })
}

fn diff_ids_of(config: &[u8]) -> Result<Vec<String>, RegistryError> {
    #[derive(serde::Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    let c: Config =
        serde_json::from_slice(config).map_err(|e| RegistryError::BadConfig(e.to_string()))?;
    Ok(c.rootfs.diff_ids)
}

async fn fetch_layers(
    store: &Arc<ImageStore>,
    session: &Arc<Session>,
    settings: &RegistrySettings,
    r: &Reference,
    layers: &[Descriptor],
    diff_ids: &[String],
    progress: &ProgressSink,
) -> Result<(), RegistryError> {
    let work = WorkDir(store.tmp_dir()?);
    let limit = settings.max_concurrent_downloads.max(1);
    let semaphore = Arc::new(Semaphore::new(limit));
    let mut queued = 0;
    let mut wanted = Vec::new();
    for (l, d) in layers.iter().zip(diff_ids) {
        let id = short(&l.digest);
        if store.has_layer(d) {
            send(progress, Progress::layer(&id, "Already exists"))?;
            wanted.push(false);
        } else {
            send(progress, Progress::layer(&id, "Pulling fs layer"))?;
            wanted.push(true);
        }
    }
    for (l, want) in layers.iter().zip(&wanted) {
        if *want {
            if queued >= limit {
                send(progress, Progress::layer(&short(&l.digest), "Waiting"))?;
            }
            queued += 1;
        }
    }
    let mut tasks = Tasks(Vec::new());
    for (i, (l, want)) in layers.iter().zip(&wanted).enumerate() {
        if !*want {
            tasks.0.push(None);
            continue;
        }
        let (session, semaphore, progress) = (session.clone(), semaphore.clone(), progress.clone());
        let (l, path, repo) = (l.clone(), work.0.join(format!("blob-{i}")), r.path.clone());
        let downloads = store.downloads_dir();
        tasks.0.push(Some(tokio::spawn(async move {
            let _permit = semaphore
                .acquire_owned()
                .await
                .map_err(|e| RegistryError::Task(e.to_string()))?;
            download(&session, &repo, &l, &path, &downloads, &progress).await?;
            Ok(path)
        })));
    }
    for (i, (l, d)) in layers.iter().zip(diff_ids).enumerate() {
        let Some(task) = tasks.0[i].take() else {
            continue;
        };
        let path = match task.await {
            Ok(r) => r?,
            Err(e) => return Err(RegistryError::Task(e.to_string())),
        };
        let id = short(&l.digest);
        let (store, sink, expected, size) = (store.clone(), progress.clone(), d.clone(), l.size);
        let (id2, blob) = (id.clone(), l.digest.clone());
        let repository = format!("{}/{}", session.endpoint.host, r.path);
        tokio::task::spawn_blocking(move || {
            extract(
                &store,
                &path,
                &repository,
                &blob,
                &expected,
                &id2,
                size,
                &sink,
            )
        })
        .await
        .map_err(|e| RegistryError::Task(e.to_string()))??;
        send(progress, Progress::layer(&id, "Pull complete"))?;
    }
    Ok(())
}

/// Unpacks a downloaded blob into the store (on a blocking thread), with `Extracting`.
#[allow(clippy::too_many_arguments)]
fn extract(
    store: &ImageStore,
    path: &Path,
    repository: &str,
    blob_digest: &str,
    diff_id: &str,
    id: &str,
    size: u64,
    progress: &ProgressSink,
) -> Result<(), RegistryError> {
    struct Counting<'a> {
        inner: std::fs::File,
        done: u64,
        size: u64,
        last: Option<Instant>,
        id: &'a str,
        progress: &'a ProgressSink,
    }
    impl std::io::Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.done += n as u64;
            if n > 0 && self.last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                self.last = Some(Instant::now());
                self.progress
                    .send(Progress::bytes(self.id, "Extracting", self.done, self.size))
                    .map_err(|_| std::io::Error::other("the client went away"))?;
            }
            Ok(n)
        }
    }
    let file = std::fs::File::open(path).map_err(|source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = Counting {
        inner: file,
        done: 0,
        size,
        last: None,
        id,
        progress,
    };
    store.put_layer_verified(reader, diff_id)?;
    // A later push to this registry finds the blob without compressing the layer again.
    store.remember_layer_blob(
        diff_id,
        berth_images::LayerBlob {
            digest: blob_digest.to_string(),
            size,
            repository: Some(repository.to_string()),
        },
    )?;
    send(progress, Progress::bytes(id, "Extracting", size, size))?;
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// The resumable download of a blob, `downloads/<hex>.partial`, claimed with `flock` so
/// that two pulls of one blob never write the same file (the second downloads privately).
fn claim_partial(
    downloads: &Path,
    digest: &str,
) -> Option<(PathBuf, nix::fcntl::Flock<std::fs::File>)> {
    let path = downloads.join(format!("{}.partial", digest.trim_start_matches("sha256:")));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .ok()?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()?;
    Some((path, lock))
}

/// The bytes a partial download already holds, hashed (on a blocking thread); none when it
/// is longer than the blob.
async fn resume_from(path: &Path, size: u64) -> Result<(Sha256, u64), RegistryError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let io = |source| RegistryError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::open(&path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut hasher = Sha256::new();
        if len == 0 || len > size {
            return Ok((hasher, 0));
        }
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok((hasher, len))
    })
    .await
    .map_err(|e| RegistryError::Task(e.to_string()))?
}

/// Streams a blob to `dest`, hashing as it goes; a failed attempt (network, 5xx, 429) is
/// resumed from the bytes already written (a Range request) up to `max-download-attempts`,
/// and a pull cut short (a client gone, attempts spent) leaves its bytes in `downloads` for
/// the next pull of the blob to resume from.
async fn download(
    session: &Session,
    repo: &str,
    d: &Descriptor,
    dest: &Path,
    downloads: &Path,
    progress: &ProgressSink,
) -> Result<(), RegistryError> {
    let claimed = claim_partial(downloads, &d.digest);
    let path = claimed
        .as_ref()
        .map_or_else(|| dest.to_path_buf(), |(p, _)| p.clone());
    let path = path.as_path();
    let io = |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let url = format!("{}/v2/{repo}/blobs/{}", session.endpoint.base, d.digest);
    let id = short(&d.digest);
    let (hasher, have) = match &claimed {
        Some(_) => resume_from(path, d.size).await?,
        None => (Sha256::new(), 0),
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .await
        .map_err(io)?;
    file.set_len(have).await.map_err(io)?;
    file.seek(std::io::SeekFrom::Start(have))
        .await
        .map_err(io)?;
    if have > 0 {
        tracing::info!(blob = %d.digest, bytes = have, "resuming an earlier download");
        send(progress, Progress::bytes(&id, "Downloading", have, d.size))?;
    }
    let mut state = Download {
        file: tokio::io::BufWriter::with_capacity(1 << 20, file),
        hasher,
        have,
        last: None,
    };
    let result = download_attempts(session, &url, d, &id, progress, path, &mut state).await;
    // Whatever arrived is kept for the next pull to resume from.
    let _ = state.file.flush().await;
    // What is wrong with the bytes themselves cannot be resumed; nothing is not worth it.
    if result.is_err()
        && (state.have == 0
            || matches!(
                result,
                Err(RegistryError::DigestMismatch { .. } | RegistryError::Truncated { .. })
            ))
    {
        let _ = tokio::fs::remove_file(path).await;
    }
    result?;
    if claimed.is_some() {
        tokio::fs::rename(path, dest).await.map_err(io)?;
    }
    drop(claimed);
    send(progress, Progress::layer(&id, "Download complete"))
}

async fn download_attempts(
    session: &Session,
    url: &str,
    d: &Descriptor,
    id: &str,
    progress: &ProgressSink,
    path: &Path,
    state: &mut Download,
) -> Result<(), RegistryError> {
    let io = |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (url, id) = (url.to_string(), id.to_string());
    let mut attempt = 1;
    // A download an earlier pull finished but did not use needs no request.
    while state.have < d.size {
        match state.attempt(session, &url, d, &id, progress, path).await {
            Ok(()) => break,
            Err(e) if e.retryable() && attempt < session.attempts => {
                tracing::info!(blob = %d.digest, attempt, error = %e, "blob download failed; resuming");
                let wait = backoff(attempt);
                let secs = wait.as_secs_f64().ceil() as u64;
                let plural = if secs == 1 { "" } else { "s" };
                send(
                    progress,
                    Progress::layer(&id, &format!("Retrying in {secs} second{plural}")),
                )?;
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
    state.file.flush().await.map_err(io)?;
    if state.have != d.size {
        return Err(RegistryError::Truncated {
            digest: d.digest.clone(),
            got: state.have,
            want: d.size,
        });
    }
    send(progress, Progress::layer(&id, "Verifying Checksum"))?;
    let actual = format!("sha256:{}", hex::encode(state.hasher.clone().finalize()));
    if actual != d.digest {
        return Err(RegistryError::DigestMismatch {
            digest: d.digest.clone(),
            actual,
        });
    }
    Ok(())
}

struct Download {
    file: tokio::io::BufWriter<tokio::fs::File>,
    hasher: Sha256,
    have: u64,
    last: Option<Instant>,
}

impl Download {
    /// GET the blob from where the bytes kept end.
    async fn request(
        &self,
        session: &Session,
        url: &str,
    ) -> Result<http::Response<hyper::body::Incoming>, RegistryError> {
        let headers = if self.have > 0 {
            vec![(header::RANGE, format!("bytes={}-", self.have))]
        } else {
            vec![]
        };
        session.send_once(Method::GET, url, &headers, true).await
    }

    /// Drops the bytes kept.
    async fn restart(&mut self, path: &Path) -> Result<(), RegistryError> {
        let io = |source| RegistryError::Io {
            path: path.to_path_buf(),
            source,
        };
        self.file.flush().await.map_err(io)?;
        self.file.get_mut().set_len(0).await.map_err(io)?;
        self.file
            .get_mut()
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(io)?;
        self.hasher = Sha256::new();
        self.have = 0;
        Ok(())
    }

    async fn attempt(
        &mut self,
        session: &Session,
        url: &str,
        d: &Descriptor,
        id: &str,
        progress: &ProgressSink,
        path: &Path,
    ) -> Result<(), RegistryError> {
        let io = |source| RegistryError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut resp = self.request(session, url).await?;
        if resp.status() == StatusCode::RANGE_NOT_SATISFIABLE && self.have > 0 {
            // The bytes kept are not a prefix the registry knows: start over.
            self.restart(path).await?;
            resp = self.request(session, url).await?;
        }
        match resp.status() {
            StatusCode::PARTIAL_CONTENT if self.have > 0 => {}
            StatusCode::OK => {
                if self.have > 0 {
                    // The registry ignored the range: start over.
                    self.restart(path).await?;
                }
            }
            s => {
                let body = read_limited(resp, 1 << 16, "an error", url)
                    .await
                    .unwrap_or_default();
                let detail = registry_errors(&body);
                return Err(RegistryError::status("GET", url, s.as_u16(), detail));
            }
        }
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| RegistryError::Body {
                url: url.to_string(),
                source,
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            self.have += data.len() as u64;
            if self.have > d.size {
                return Err(RegistryError::DigestMismatch {
                    digest: d.digest.clone(),
                    actual: format!("more than {} bytes", d.size),
                });
            }
            self.hasher.update(&data);
            self.file.write_all(&data).await.map_err(io)?;
            if self.last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || self.have == d.size {
                self.last = Some(Instant::now());
                send(
                    progress,
                    Progress::bytes(id, "Downloading", self.have, d.size),
                )?;
            }
        }
        Ok(())
    }
}
