//! `/images/...`: pull, import, load, save, list, inspect, history, tag, remove, prune.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use berth_daemon::{
    CommitRequest, Credentials, Daemon, DaemonError, ImageRecord, ImportOptions, Reference,
};
use serde_json::Value;

use super::common::{body_reader, json_lines, progress_stream, tar_response};
use crate::query::{Query, glob};
use crate::{ApiError, body, wire};

/// An image reference from the query; a malformed one is the engine's 400.
fn reference(name: &str) -> Result<Reference, ApiError> {
    Reference::parse(name).map_err(|e| ApiError::from(DaemonError::from(e)))
}

/// The reference of a pull: `fromImage` with `tag` (a tag, or a digest as the CLI sends it
/// for `name@sha256:...`).
fn pull_reference(image: &str, tag: Option<&str>) -> Result<Reference, ApiError> {
    match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => reference(&format!("{image}@{t}")),
        Some(t) => reference(&format!("{image}:{t}")),
        None => reference(image),
    }
}

/// `X-Registry-Auth`: the client's credentials for the registry (none when absent or
/// unreadable, as dockerd takes it for a pull).
fn registry_auth(headers: &http::HeaderMap) -> Option<Credentials> {
    headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .and_then(Credentials::from_header)
}

/// `POST /images/create`: `fromImage` pulls from a registry (progress streamed),
/// `fromSrc=-` imports the request body.
pub(crate) async fn create(
    State(d): State<Arc<Daemon>>,
    q: Query,
    headers: http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if let Some(image) = q.get("fromImage") {
        let reference = pull_reference(image, q.get("tag"))?;
        let platform = q.get("platform").map(str::to_string);
        let auth = registry_auth(&headers);
        return progress_stream(move |tx| async move {
            d.image_pull(reference, platform.as_deref(), auth, tx).await
        })
        .await;
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
            let r = reference(repo)?;
            Some(match q.get("tag").filter(|t| !t.is_empty()) {
                Some(t) => reference(&format!("{}:{t}", r.familiar_name()))?,
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
    Ok(json_lines(wire::images::imported(&id)))
}

/// `POST /images/load`.
pub(crate) async fn load(State(d): State<Arc<Daemon>>, body: Body) -> Result<Response, ApiError> {
    match d.image_load(body_reader(body)).await {
        Ok(loaded) => Ok(json_lines(wire::images::loaded(loaded))),
        // dockerd has answered 200 by the time it reads the archive: what is wrong with it
        // comes in the stream, as an error message clients print.
        Err(e @ berth_daemon::DaemonError::Image(berth_daemon::ImageError::BadArchive(_))) => {
            let message = ApiError::from(e).message;
            Ok(json_lines(vec![
                serde_json::json!({"errorDetail": {"message": message}, "error": message}),
            ]))
        }
        Err(e) => Err(e.into()),
    }
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
    let all = q.bool("all");
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
        // As dockerd: dangling is untagged with no child; an unnamed image with children is
        // an intermediate one (a build step's), listed only with `all`.
        .filter(|r| match dangling {
            Some(true) => r.repo_tags.is_empty() && !r.has_children,
            Some(false) => !r.repo_tags.is_empty(),
            None => all || !r.has_children || !r.repo_tags.is_empty() || !r.repo_digests.is_empty(),
        })
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
        .map(wire::images::summary)
        .collect();
    Ok(Json(out))
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
        (name, "json") => Ok(Json(wire::images::inspect(&d.image_get(name)?)).into_response()),
        (name, "history") => {
            Ok(Json(wire::images::history(&d.image_history(name)?)).into_response())
        }
        (name, "get") => Ok(tar_response(d.image_save(&[name.to_string()])?)),
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `POST /images/{name}/tag?repo=&tag=`, `POST /images/{name}/push?tag=`.
pub(crate) async fn post_by_name(
    State(d): State<Arc<Daemon>>,
    Path(rest): Path<String>,
    q: Query,
    headers: http::HeaderMap,
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
        (name, "push") => {
            let (name, tag) = (name.to_string(), q.get("tag").map(str::to_string));
            let auth = registry_auth(&headers);
            progress_stream(
                move |tx| async move { d.image_push(&name, tag.as_deref(), auth, tx).await },
            )
            .await
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `DELETE /images/{name}?force=&noprune=`.
pub(crate) async fn delete(
    State(d): State<Arc<Daemon>>,
    Path(rest): Path<String>,
    q: Query,
) -> Result<Json<Vec<Value>>, ApiError> {
    let results = d
        .image_delete(&rest, q.bool("force"), !q.bool("noprune"))
        .await?;
    Ok(Json(wire::images::deleted(results)))
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
            Some(reference(&full)?)
        }
    };
    let config = body::commit(&body)?;
    let id = d
        .container_commit(CommitRequest {
            container: container.to_string(),
            reference,
            comment: q.get("comment").unwrap_or_default().to_string(),
            author: q.get("author").unwrap_or_default().to_string(),
            changes: q.all("changes"),
            pause: q.get("pause").is_none_or(|p| !matches!(p, "0" | "false")),
            config,
        })
        .await?;
    Ok((http::StatusCode::CREATED, Json(wire::id(&id))).into_response())
}

/// `POST /images/prune`.
pub(crate) async fn prune(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Value>, ApiError> {
    let filters = q.filters()?;
    filters.only(&["dangling", "until", "label"])?;
    // The CLI sends `dangling=true`, or `dangling=false` for `-a` (every unused image).
    let all = filters.bool("dangling")? == Some(false);
    let (deleted, reclaimed) = d.image_prune(all)?;
    Ok(Json(wire::images::pruned(deleted, reclaimed)))
}
