//! The push pipeline: for each layer (top first, `max-concurrent-uploads` at a time) the
//! registry is asked (HEAD) for the compressed forms the store remembers; a layer it lacks
//! is gzip-compressed once into the work folder and uploaded (POST, then one streamed PUT
//! with its digest); then the config, then the manifest (Docker schema 2) last, so a tag
//! never names blobs that are not there.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_images::{ImageId, ImageStore, Reference, sha256_hex};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::auth::Credentials;
use crate::client::{Endpoint, Session, full, read_limited, registry_errors};
use crate::manifest::DOCKER_MANIFEST;
use crate::pull::{WorkDir, registry_host, send, short};
use crate::{Progress, ProgressSink, RegistryError, RegistrySettings};

const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What to push: one tag of a stored image.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The tagged reference (`127.0.0.1:5000/acc/busybox:1`), normalised.
    pub reference: Reference,
    pub image: ImageId,
    pub credentials: Option<Credentials>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The manifest's digest and size in bytes.
    pub digest: String,
    pub size: usize,
}

/// A layer as the manifest names it.
#[derive(Debug, Clone)]
struct Blob {
    digest: String,
    size: u64,
}

fn status_error(method: &str, url: &str, status: StatusCode, body: &[u8]) -> RegistryError {
    let detail = registry_errors(body);
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return RegistryError::Denied(if detail.is_empty() {
            "unauthorized: authentication required".into()
        } else {
            detail
        });
    }
    RegistryError::status(method, url, status.as_u16(), detail)
}

/// Whether the repository holds the blob (HEAD).
async fn has_blob(session: &Session, repo: &str, digest: &str) -> Result<bool, RegistryError> {
    let url = format!("{}/v2/{repo}/blobs/{digest}", session.endpoint.base);
    let resp = session.send(Method::HEAD, &url, &[]).await?;
    match resp.status() {
        s if s.is_success() => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        s => Err(status_error("HEAD", &url, s, &[])),
    }
}

/// Starts an upload; the URL to PUT the blob to (the registry's `Location`).
async fn start_upload(session: &Session, repo: &str) -> Result<String, RegistryError> {
    let url = format!("{}/v2/{repo}/blobs/uploads/", session.endpoint.base);
    let resp = session
        .send_body(Method::POST, &url, &[], full(Bytes::new()))
        .await?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let body = read_limited(resp, 1 << 16, "an upload answer", &url).await?;
    if status != StatusCode::ACCEPTED {
        return Err(status_error("POST", &url, status, &body));
    }
    let location = location.ok_or_else(|| RegistryError::Status {
        method: "POST".into(),
        url: url.clone(),
        status: status.as_u16(),
        detail: ": no Location".into(),
    })?;
    Ok(if location.starts_with('/') {
        format!("{}{location}", session.endpoint.base)
    } else {
        location
    })
}

/// PUTs a whole blob (`body`, `size` bytes) as the upload's one and last chunk.
async fn finish_upload(
    session: &Session,
    location: &str,
    digest: &str,
    size: u64,
    body: crate::client::Body,
) -> Result<(), RegistryError> {
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{sep}digest={digest}");
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_LENGTH, size.to_string()),
    ];
    let resp = session.send_body(Method::PUT, &url, &headers, body).await?;
    let status = resp.status();
    let body = read_limited(resp, 1 << 16, "an upload answer", &url).await?;
    if status != StatusCode::CREATED {
        return Err(status_error("PUT", &url, status, &body));
    }
    Ok(())
}

/// Compresses a stored layer's tar into `dest` (gzip, fast, no name or time in the header,
/// so the same layer gives the same blob); its digest and size.
fn compress(tar: &Path, dest: &Path) -> Result<Blob, RegistryError> {
    struct Hashing<W> {
        inner: W,
        hasher: Sha256,
        size: u64,
    }
    impl<W: Write> Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hasher.update(&buf[..n]);
            self.size += n as u64;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }
    let io_at = |p: &Path| {
        let p = p.to_path_buf();
        move |source| RegistryError::Io { path: p, source }
    };
    let mut src = std::fs::File::open(tar).map_err(io_at(tar))?;
    let out = std::fs::File::create(dest).map_err(io_at(dest))?;
    let hashing = Hashing {
        inner: std::io::BufWriter::with_capacity(1 << 20, out),
        hasher: Sha256::new(),
        size: 0,
    };
    let mut gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf).map_err(io_at(tar))?;
        if n == 0 {
            break;
        }
        gz.write_all(&buf[..n]).map_err(io_at(dest))?;
    }
    let mut hashing = gz.finish().map_err(io_at(dest))?;
    hashing.flush().map_err(io_at(dest))?;
    Ok(Blob {
        digest: format!("sha256:{}", hex::encode(hashing.hasher.finalize())),
        size: hashing.size,
    })
}

/// A file as a request body, with `Pushing` progress as it is read.
async fn file_body(
    path: &Path,
    id: String,
    total: u64,
    progress: ProgressSink,
) -> Result<crate::client::Body, RegistryError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| RegistryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut sent = 0u64;
    let mut last: Option<Instant> = None;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 16).map(move |chunk| {
        let chunk = chunk?;
        sent += chunk.len() as u64;
        if last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || sent == total {
            last = Some(Instant::now());
            let _ = progress.send(Progress::bytes(&id, "Pushing", sent, total));
        }
        Ok(hyper::body::Frame::data(chunk))
    });
    Ok(BodyExt::boxed(StreamBody::new(stream)))
}

/// Pushes one layer unless the registry has it; its blob.
async fn push_layer(
    store: &ImageStore,
    session: &Session,
    repo: &str,
    diff_id: &str,
    work: &Path,
    progress: &ProgressSink,
) -> Result<Blob, RegistryError> {
    let id = short(diff_id);
    let here = format!("{}/{repo}", session.endpoint.host);
    let known = store.layer_blobs(diff_id);
    for b in known.iter().rev() {
        if has_blob(session, repo, &b.digest).await? {
            send(progress, Progress::layer(&id, "Layer already exists"))?;
            return Ok(Blob {
                digest: b.digest.clone(),
                size: b.size,
            });
        }
    }
    // In another repository of this registry: mounted there, nothing uploaded.
    let host_prefix = format!("{}/", session.endpoint.host);
    for b in known.iter().rev() {
        let Some(from) = b
            .repository
            .as_deref()
            .filter(|r| *r != here)
            .and_then(|r| r.strip_prefix(&host_prefix))
        else {
            continue;
        };
        if mount(session, repo, &b.digest, from).await? {
            send(
                progress,
                Progress::layer(&id, &format!("Mounted from {from}")),
            )?;
            remember(store, diff_id, &b.digest, b.size, &here)?;
            return Ok(Blob {
                digest: b.digest.clone(),
                size: b.size,
            });
        }
    }
    let tar = store.layer_tar(diff_id);
    let dest: PathBuf = work.join(diff_id.trim_start_matches("sha256:"));
    let dest2 = dest.clone();
    let blob = tokio::task::spawn_blocking(move || compress(&tar, &dest2))
        .await
        .map_err(|e| RegistryError::Task(e.to_string()))??;
    if !has_blob(session, repo, &blob.digest).await? {
        let location = start_upload(session, repo).await?;
        let body = file_body(&dest, id.clone(), blob.size, progress.clone()).await?;
        finish_upload(session, &location, &blob.digest, blob.size, body).await?;
        send(progress, Progress::layer(&id, "Pushed"))?;
    } else {
        send(progress, Progress::layer(&id, "Layer already exists"))?;
    }
    let _ = tokio::fs::remove_file(&dest).await;
    remember(store, diff_id, &blob.digest, blob.size, &here)?;
    Ok(blob)
}

fn remember(
    store: &ImageStore,
    diff_id: &str,
    digest: &str,
    size: u64,
    repository: &str,
) -> Result<(), RegistryError> {
    Ok(store.remember_layer_blob(
        diff_id,
        berth_images::LayerBlob {
            digest: digest.to_string(),
            size,
            repository: Some(repository.to_string()),
        },
    )?)
}

/// A cross-repository mount (`POST uploads/?mount=&from=`): whether the registry mounted
/// the blob (201). Any other answer (a registry that does not mount, no access to `from`)
/// is a no: the blob is uploaded instead.
async fn mount(
    session: &Session,
    repo: &str,
    digest: &str,
    from: &str,
) -> Result<bool, RegistryError> {
    let url = format!(
        "{}/v2/{repo}/blobs/uploads/?mount={digest}&from={from}",
        session.endpoint.base
    );
    let resp = session
        .send_body(Method::POST, &url, &[], full(Bytes::new()))
        .await?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let _ = read_limited(resp, 1 << 16, "a mount answer", &url).await;
    if status == StatusCode::ACCEPTED
        && let Some(location) = location
    {
        // An upload was started instead: cancel it.
        let location = if location.starts_with('/') {
            format!("{}{location}", session.endpoint.base)
        } else {
            location
        };
        let _ = session
            .send_body(Method::DELETE, &location, &[], full(Bytes::new()))
            .await;
    }
    Ok(status == StatusCode::CREATED)
}

/// Pushes a tagged image, sending dockerd's progress messages; records `repo@digest`.
pub async fn push(
    store: Arc<ImageStore>,
    settings: &RegistrySettings,
    req: PushRequest,
    progress: &ProgressSink,
) -> Result<PushOutcome, RegistryError> {
    let r = &req.reference;
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let endpoint = Endpoint::for_host(settings, registry_host(r))?;
    let scope = format!("repository:{}:pull,push", r.path);
    let session =
        Arc::new(Session::open(endpoint, settings, Some(scope), req.credentials.as_ref()).await?);
    let raw_config = store.raw_config(&req.image)?;
    let record = store.get(&req.image)?;
    let diff_ids = record.config.rootfs.diff_ids.clone();
    send(
        progress,
        Progress::status(format!(
            "The push refers to repository [{}]",
            r.familiar_name()
        )),
    )?;
    for d in diff_ids.iter().rev() {
        send(progress, Progress::layer(&short(d), "Preparing"))?;
    }
    let work = WorkDir(store.tmp_dir()?);
    let semaphore = Arc::new(Semaphore::new(settings.max_concurrent_uploads.max(1)));
    let mut tasks = Vec::new();
    for d in diff_ids.iter().rev() {
        let (store, session, semaphore, progress) = (
            store.clone(),
            session.clone(),
            semaphore.clone(),
            progress.clone(),
        );
        let (d, repo, work) = (d.clone(), r.path.clone(), work.0.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore
                .acquire_owned()
                .await
                .map_err(|e| RegistryError::Task(e.to_string()))?;
            push_layer(&store, &session, &repo, &d, &work, &progress).await
        }));
    }
    let mut blobs = Vec::new();
    let mut failed = None;
    for t in tasks {
        match t.await {
            Ok(Ok(b)) => blobs.push(b),
            Ok(Err(e)) => {
                failed.get_or_insert(e);
            }
            Err(e) => {
                failed.get_or_insert(RegistryError::Task(e.to_string()));
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    blobs.reverse();

    let config_digest = format!("sha256:{}", sha256_hex(&raw_config));
    if !has_blob(&session, &r.path, &config_digest).await? {
        let location = start_upload(&session, &r.path).await?;
        let size = raw_config.len() as u64;
        finish_upload(
            &session,
            &location,
            &config_digest,
            size,
            full(raw_config.clone()),
        )
        .await?;
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": { "mediaType": CONFIG_TYPE, "size": raw_config.len(), "digest": config_digest },
        "layers": blobs.iter().map(|b| serde_json::json!({
            "mediaType": LAYER_TYPE, "size": b.size, "digest": b.digest,
        })).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| RegistryError::BadManifest(e.to_string()))?;
    let digest = format!("sha256:{}", sha256_hex(&bytes));
    let url = format!("{}/v2/{}/manifests/{tag}", session.endpoint.base, r.path);
    let size = bytes.len();
    let resp = session
        .send_body(
            Method::PUT,
            &url,
            &[(header::CONTENT_TYPE, DOCKER_MANIFEST.to_string())],
            full(bytes),
        )
        .await?;
    let status = resp.status();
    let body = read_limited(resp, 1 << 16, "a manifest answer", &url).await?;
    if !status.is_success() {
        return Err(status_error("PUT", &url, status, &body));
    }
    let by_digest = Reference {
        tag: None,
        digest: Some(digest.clone()),
        ..r.clone()
    };
    store.add_repo_digest(&req.image, by_digest)?;
    send(
        progress,
        Progress::status(format!("{tag}: digest: {digest} size: {size}")),
    )?;
    send(
        progress,
        Progress {
            detail: Some(crate::Detail::default()),
            aux: Some(serde_json::json!({ "Tag": tag, "Digest": digest, "Size": size })),
            ..Default::default()
        },
    )?;
    drop(work);
    Ok(PushOutcome { digest, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_layer_compresses_to_the_same_blob() {
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("layer.tar");
        std::fs::write(&tar, vec![7u8; 300_000]).unwrap();
        let a = compress(&tar, &dir.path().join("a")).unwrap();
        let b = compress(&tar, &dir.path().join("b")).unwrap();
        assert_eq!(a.digest, b.digest, "a second push finds the first's blob");
        let bytes = std::fs::read(dir.path().join("a")).unwrap();
        assert_eq!(a.size, bytes.len() as u64);
        assert_eq!(a.digest, format!("sha256:{}", sha256_hex(&bytes)));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain.len(), 300_000);
    }
}
