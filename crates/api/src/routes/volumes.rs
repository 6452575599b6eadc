//! `/volumes/...`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use berth_daemon::{Daemon, Volume, VolumeListFilter};
use berth_model::nullable;
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use super::common::no_content;
use crate::query::Query;
use crate::version::ApiVersion;
use crate::{ApiError, body, wire};

/// The label dockerd puts on anonymous volumes (API 1.42+ prune looks for it).
const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    #[serde(deserialize_with = "nullable")]
    name: String,
    #[serde(deserialize_with = "nullable")]
    driver: String,
    #[serde(deserialize_with = "nullable")]
    driver_opts: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

pub(crate) async fn list(State(d): State<Arc<Daemon>>, q: Query) -> Result<Response, ApiError> {
    let f = q.filters()?;
    f.only(&["name", "driver", "label", "dangling"])?;
    let filter = VolumeListFilter {
        names: f.values("name").to_vec(),
        drivers: f.values("driver").to_vec(),
        labels: f.values("label").to_vec(),
        dangling: f.bool("dangling")?,
    };
    let vs = d.volume_list(&filter);
    Ok(Json(wire::volumes::list(&vs)).into_response())
}

pub(crate) async fn create(
    State(d): State<Arc<Daemon>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: CreateBody = body::parse(&body)?;
    let v = d.volume_create(&b.name, &b.driver, b.labels, b.driver_opts)?;
    Ok((StatusCode::CREATED, Json(wire::volumes::volume(&v))).into_response())
}

pub(crate) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let v = d.volume_get(&name)?;
    Ok(Json(wire::volumes::volume(&v)).into_response())
}

pub(crate) async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    d.volume_remove(&name, q.bool("force"))?;
    Ok(no_content())
}

/// Whether `v` has every `label` filter and none of the `label!` ones.
fn labelled(v: &Volume, labels: &[String], not_labels: &[String]) -> bool {
    let has = |l: &String| match l.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(l),
    };
    labels.iter().all(has) && !not_labels.iter().any(has)
}

/// `POST /volumes/prune`: unused volumes. From API 1.42 only anonymous ones unless
/// `all=true`; before, every unused one (dockerd 20.10's behaviour).
pub(crate) async fn prune(
    State(d): State<Arc<Daemon>>,
    version: Option<Extension<ApiVersion>>,
    q: Query,
) -> Result<Response, ApiError> {
    let f = q.filters()?;
    f.only(&["label", "label!", "all"])?;
    let all = f.bool("all")?.unwrap_or(false);
    let anonymous_only = !all
        && version.is_none_or(|Extension(v)| {
            v >= ApiVersion {
                major: 1,
                minor: 42,
            }
        });
    let labels = f.values("label").to_vec();
    let not_labels = f.values("label!").to_vec();
    let keep = move |v: &Volume| {
        !labelled(v, &labels, &not_labels)
            || (anonymous_only && !(v.anonymous || v.labels.contains_key(ANONYMOUS_LABEL)))
    };
    let d2 = d.clone();
    let pruned = tokio::task::spawn_blocking(move || d2.volume_prune(&keep))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(wire::volumes::pruned(&pruned)).into_response())
}
