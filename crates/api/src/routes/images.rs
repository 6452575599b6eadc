//! `/images/...`: import, load, save, list, inspect, history, tag, remove, prune.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use berth_daemon::Daemon;
use berth_images::{DeleteResult, ImageRecord, ImportOptions, Reference};
use futures_util::TryStreamExt;
use http::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::ApiError;
use crate::query::{Query, glob};

pub(crate) fn body_reader(body: Body) -> impl tokio::io::AsyncRead + Send + Unpin + 'static {
    StreamReader::new(body.into_data_stream().map_err(std::io::Error::other))
}

fn json_lines(lines: Vec<Value>) -> Response {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l.to_string());
        text.push_str("\r\n");
    }
    ([(CONTENT_TYPE, "application/json")], text).into_response()
}

/// `POST /images/create`: `fromSrc=-` imports the request body. Pulling needs a registry,
/// which berth cannot reach yet.
pub(crate) async fn create(
    State(d): State<Arc<Daemon>>,
    q: Query,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(image) = q.get("fromImage") {
        return Err(ApiError::not_found(format!(
            "pull access denied for {image}: berth cannot pull images yet; use docker load or docker import"
        )));
    }
    match q.get("fromSrc") {
        Some("-") => {}
        Some(url) => {
            return Err(ApiError::bad_request(format!(
                "importing from {url} is not supported; stream the archive (docker import FILE)"
            )));
        }
        None => return Err(ApiError::bad_request("fromImage or fromSrc is required")),
    }
    let reference = match q.get("repo").filter(|r| !r.is_empty()) {
        None => None,
        Some(repo) => {
            let r = Reference::parse(repo)
                .map_err(|e| ApiError::from(berth_daemon::DaemonError::from(e)))?;
            Some(match q.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => Reference::parse(&format!("{}:{t}", r.familiar_name()))
                    .map_err(|e| ApiError::from(berth_daemon::DaemonError::from(e)))?,
                None => r,
            })
        }
    };
    let opts = ImportOptions {
        reference,
        message: q.get("message").unwrap_or_default().to_string(),
        changes: q.all("changes"),
    };
    let id = d.image_import(body_reader(body), opts).await?;
    Ok(json_lines(vec![json!({ "status": id })]))
}

/// `POST /images/load`.
pub(crate) async fn load(State(d): State<Arc<Daemon>>, body: Body) -> Result<Response, ApiError> {
    let loaded = d.image_load(body_reader(body)).await?;
    let mut lines = Vec::new();
    for image in loaded {
        if image.tags.is_empty() {
            lines.push(json!({ "stream": format!("Loaded image ID: {}\n", image.id) }));
        }
        for t in image.tags {
            lines.push(json!({ "stream": format!("Loaded image: {t}\n") }));
        }
    }
    Ok(json_lines(lines))
}

fn tar_response(reader: tokio::io::DuplexStream) -> Response {
    (
        [(CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(ReaderStream::new(reader)),
    )
        .into_response()
}

/// `GET /images/get?names=a&names=b`.
pub(crate) async fn save_many(
    State(d): State<Arc<Daemon>>,
    q: Query,
) -> Result<Response, ApiError> {
    let names = q.all("names");
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    Ok(tar_response(d.image_save(&names)?))
}

fn unix(secs: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_nanos(t).to_string()
}

pub(crate) fn summary(r: &ImageRecord) -> Value {
    json!({
        "Containers": -1,
        "Created": r.created,
        "Id": r.id,
        "Labels": r.config.config.labels,
        "ParentId": "",
        "RepoDigests": [],
        "RepoTags": r.repo_tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "SharedSize": -1,
        "Size": r.size,
    })
}

/// Docker's image reference filter: the pattern against `name` and `name:tag`.
fn matches_reference(r: &ImageRecord, pattern: &str) -> bool {
    r.repo_tags.iter().any(|t| {
        glob(pattern, &t.familiar_name())
            || glob(pattern, &t.to_string())
            || glob(
                pattern,
                &format!("{}:{}", t.full_name(), t.tag.clone().unwrap_or_default()),
            )
    })
}

/// `GET /images/json`.
pub(crate) async fn list(
    State(d): State<Arc<Daemon>>,
    q: Query,
) -> Result<Json<Vec<Value>>, ApiError> {
    let filters = q.filters()?;
    filters.only(&["reference", "dangling", "label", "before", "since"])?;
    let dangling = filters.bool("dangling")?;
    // Several `before`s (`since`s) hold together: the oldest (newest) one decides.
    let created = |key: &str| {
        filters
            .values(key)
            .iter()
            .map(|name| d.image_get(name).map(|i| i.created))
            .collect::<Result<Vec<i64>, _>>()
    };
    let before = created("before")?.into_iter().min();
    let since = created("since")?.into_iter().max();
    let mut images = d.image_list();
    images.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let out = images
        .iter()
        .filter(|r| {
            let refs = filters.values("reference");
            refs.is_empty() || refs.iter().any(|p| matches_reference(r, p))
        })
        // Without parent chains every image is top-level, so `all` changes nothing.
        .filter(|r| dangling.is_none_or(|d| d == r.repo_tags.is_empty()))
        .filter(|r| before.is_none_or(|t| r.created < t) && since.is_none_or(|t| r.created > t))
        .filter(|r| {
            filters.values("label").iter().all(|l| {
                let labels = r.config.config.labels.clone().unwrap_or_default();
                match l.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(l),
                }
            })
        })
        .map(summary)
        .collect();
    Ok(Json(out))
}

fn inspect(r: &ImageRecord) -> Value {
    let c = &r.config;
    let mut config = serde_json::to_value(&c.config).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut config {
        for (k, v) in [
            ("Hostname", json!("")),
            ("Domainname", json!("")),
            ("AttachStdin", json!(false)),
            ("AttachStdout", json!(false)),
            ("AttachStderr", json!(false)),
            ("Tty", json!(false)),
            ("OpenStdin", json!(false)),
            ("StdinOnce", json!(false)),
            ("Image", json!("")),
            ("OnBuild", Value::Null),
        ] {
            m.entry(k).or_insert(v);
        }
        m.entry("User").or_insert(json!(""));
        m.entry("WorkingDir").or_insert(json!(""));
        m.entry("Env").or_insert(Value::Null);
        m.entry("Cmd").or_insert(Value::Null);
        m.entry("Entrypoint").or_insert(Value::Null);
        m.entry("Labels").or_insert(Value::Null);
    }
    json!({
        "Id": r.id,
        "RepoTags": r.repo_tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "RepoDigests": [],
        "Parent": "",
        "Comment": c.comment,
        "Created": c.created.clone().unwrap_or_else(|| unix(r.created)),
        "DockerVersion": "",
        "Author": c.author,
        "Config": config,
        "Architecture": c.architecture,
        "Os": c.os,
        "Size": r.size,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": r.layer_dirs.iter().rev().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
            }
        },
        "RootFS": {"Type": "layers", "Layers": c.rootfs.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

fn history(d: &Daemon, r: &ImageRecord) -> Vec<Value> {
    let mut layers = r.config.rootfs.diff_ids.iter();
    let mut out: Vec<Value> = Vec::new();
    let entries = if r.config.history.is_empty() {
        r.config
            .rootfs
            .diff_ids
            .iter()
            .map(|_| berth_images::HistoryEntry::default())
            .collect()
    } else {
        r.config.history.clone()
    };
    for h in &entries {
        let size = if h.empty_layer {
            0
        } else {
            layers.next().map(|l| d.image_layer_size(l)).unwrap_or(0)
        };
        let created = h
            .created
            .as_deref()
            .and_then(|c| humantime::parse_rfc3339_weak(c.trim_end_matches('Z')).ok())
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        out.push(json!({
            "Id": "<missing>",
            "Created": created,
            "CreatedBy": h.created_by,
            "Tags": Value::Null,
            "Size": size,
            "Comment": h.comment,
        }));
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top["Id"] = json!(r.id);
        top["Tags"] = json!(
            r.repo_tags
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
        );
    }
    out
}

/// Splits `acc/busybox:1/json` into (`acc/busybox:1`, `json`).
fn split_action(rest: &str) -> (&str, &str) {
    for action in ["json", "history", "get", "tag", "push"] {
        if let Some(name) = rest.strip_suffix(&format!("/{action}")) {
            return (name, action);
        }
    }
    (rest, "")
}

/// `GET /images/{name}/json|history|get`.
pub(crate) async fn get_by_name(
    State(d): State<Arc<Daemon>>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    match split_action(&rest) {
        (name, "json") => Ok(Json(inspect(&d.image_get(name)?)).into_response()),
        (name, "history") => {
            let r = d.image_get(name)?;
            Ok(Json(history(&d, &r)).into_response())
        }
        (name, "get") => Ok(tar_response(d.image_save(&[name.to_string()])?)),
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub(crate) async fn post_by_name(
    State(d): State<Arc<Daemon>>,
    Path(rest): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    match split_action(&rest) {
        (name, "tag") => {
            let repo = q
                .get("repo")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| ApiError::bad_request("repository name is required"))?;
            let target = match q.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            };
            d.image_tag(name, &target)?;
            Ok((http::StatusCode::CREATED, "").into_response())
        }
        (name, "push") => Err(ApiError::bad_request(format!(
            "cannot push {name}: berth cannot reach a registry yet"
        ))),
        _ => Err(ApiError::not_found("page not found")),
    }
}

fn delete_results(results: Vec<DeleteResult>) -> Vec<Value> {
    results
        .into_iter()
        .map(|r| match r {
            DeleteResult::Untagged(t) => json!({ "Untagged": t }),
            DeleteResult::Deleted(id) => json!({ "Deleted": id }),
        })
        .collect()
}

/// `DELETE /images/{name}?force=`.
pub(crate) async fn delete(
    State(d): State<Arc<Daemon>>,
    Path(rest): Path<String>,
    q: Query,
) -> Result<Json<Vec<Value>>, ApiError> {
    let results = d.image_delete(&rest, q.bool("force")).await?;
    Ok(Json(delete_results(results)))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`.
pub(crate) async fn commit(
    State(d): State<Arc<Daemon>>,
    q: Query,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("container is required"))?;
    let reference = match q.get("repo").filter(|r| !r.is_empty()) {
        None => None,
        Some(repo) => {
            let full = match q.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            };
            Some(
                Reference::parse(&full)
                    .map_err(|e| ApiError::from(berth_daemon::DaemonError::from(e)))?,
            )
        }
    };
    let config = if body.iter().all(u8::is_ascii_whitespace) || &body[..] == b"null" {
        None
    } else {
        Some(super::containers::parse_body::<berth_model::ContainerConfig>(&body)?)
    };
    let id = d
        .container_commit(berth_daemon::CommitRequest {
            container: container.to_string(),
            reference,
            comment: q.get("comment").unwrap_or_default().to_string(),
            author: q.get("author").unwrap_or_default().to_string(),
            changes: q.all("changes"),
            pause: q.get("pause").is_none_or(|p| !matches!(p, "0" | "false")),
            config,
        })
        .await?;
    Ok((http::StatusCode::CREATED, Json(json!({ "Id": id }))).into_response())
}

/// `POST /images/prune`.
pub(crate) async fn prune(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Value>, ApiError> {
    let filters = q.filters()?;
    filters.only(&["dangling", "until", "label"])?;
    filters.bool("dangling")?;
    let (deleted, reclaimed) = d.image_prune()?;
    Ok(Json(json!({
        "ImagesDeleted": delete_results(deleted),
        "SpaceReclaimed": reclaimed,
    })))
}
