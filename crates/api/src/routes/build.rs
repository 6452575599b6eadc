//! `POST /build` (the classic builder: a tar context in the body, dockerd's JSON stream
//! back) and `POST /build/prune`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use berth_daemon::{BuildOptions, Credentials, Daemon, DaemonError, Reference};
use serde_json::Value;

use super::common::{body_reader, progress_stream};
use crate::ApiError;
use crate::query::Query;

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// A JSON object parameter (`buildargs`, `labels`), empty when absent.
fn json_map<T: serde::de::DeserializeOwned>(
    q: &Query,
    key: &str,
) -> Result<BTreeMap<String, T>, ApiError> {
    match q.get(key).filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(v) => serde_json::from_str(v).map_err(bad),
    }
}

fn int(q: &Query, key: &str) -> Result<i64, ApiError> {
    match q.get(key).filter(|v| !v.is_empty()) {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| bad(format!("invalid value for {key}: {v}"))),
    }
}

/// `X-Registry-Config`: base64url JSON of credentials by registry (none when unreadable).
fn registry_config(headers: &http::HeaderMap) -> BTreeMap<String, Credentials> {
    let Some(v) = headers
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok())
    else {
        return BTreeMap::new();
    };
    let v = v.trim().trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(v))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The request's options, checked before anything is built.
pub(crate) fn options(q: &Query, headers: &http::HeaderMap) -> Result<BuildOptions, ApiError> {
    if q.get("version") == Some("2") {
        return Err(bad(
            "BuildKit is not supported by this daemon: build with DOCKER_BUILDKIT=0",
        ));
    }
    if let Some(remote) = q.get("remote").filter(|r| !r.is_empty()) {
        return Err(bad(format!(
            "remote build contexts are not supported ({remote}): send the context as a tar"
        )));
    }
    let tags = q
        .all("t")
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| {
            Reference::parse(t)
                .map_err(|e| ApiError::from(DaemonError::from(e)))
                .and_then(|r| match r.digest {
                    Some(_) => Err(bad(format!(
                        "invalid reference format: {t} (a tag, not a digest)"
                    ))),
                    None => Ok(r),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let platform = q
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    if let Some(p) = &platform
        && p != "linux"
        && berth_daemon::Platform::parse(p).is_err()
    {
        return Err(bad(format!(
            "\"{p}\": unknown operating system or architecture: invalid argument"
        )));
    }
    let cache_from = match q.get("cachefrom").filter(|v| !v.is_empty()) {
        None => Vec::new(),
        Some(v) => serde_json::from_str(v).map_err(bad)?,
    };
    let extra_hosts = q
        .all("extrahosts")
        .iter()
        .flat_map(|h| h.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|h| !h.is_empty())
        .collect();
    Ok(BuildOptions {
        dockerfile: q.get("dockerfile").unwrap_or_default().to_string(),
        tags,
        build_args: json_map(q, "buildargs")?,
        target: q.get("target").map(str::to_string),
        labels: json_map(q, "labels")?,
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        rm: q.get("rm").is_none_or(|_| q.bool("rm")),
        force_rm: q.bool("forcerm"),
        quiet: q.bool("q"),
        network_mode: q.get("networkmode").unwrap_or_default().to_string(),
        extra_hosts,
        shm_size: int(q, "shmsize")?,
        memory: int(q, "memory")?,
        memory_swap: int(q, "memswap")?,
        cpu_shares: int(q, "cpushares")?,
        cpu_period: int(q, "cpuperiod")?,
        cpu_quota: int(q, "cpuquota")?,
        cpuset_cpus: q.get("cpusetcpus").unwrap_or_default().to_string(),
        cpuset_mems: q.get("cpusetmems").unwrap_or_default().to_string(),
        platform: q
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        cache_from,
        registry_auth: registry_config(headers),
    })
}

/// `POST /build`.
pub(crate) async fn build(
    State(d): State<Arc<Daemon>>,
    q: Query,
    headers: http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let opts = options(&q, &headers)?;
    let reader = body_reader(body);
    progress_stream(move |tx| async move { d.image_build(opts, reader, tx).await }).await
}

/// `POST /build/prune`: `all` forgets every step, else only those no tagged image is built
/// on.
pub(crate) async fn prune(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Value>, ApiError> {
    let pruned = d.build_cache_prune(q.bool("all")).await?;
    Ok(Json(serde_json::json!({
        "CachesDeleted": pruned.deleted,
        "SpaceReclaimed": pruned.reclaimed,
    })))
}
