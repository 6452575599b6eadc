//! `/containers/...`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use berth_daemon::{CgroupStats, Daemon, ListOptions, LogLine, LogOptions, WaitCondition};
use bytes::Bytes;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::Value;

use super::common::{body_reader, no_content, tar_response};
use crate::hijack::{Session, upgrade};
use crate::query::Query;
use crate::{ApiError, body, wire};

pub(crate) async fn create(
    State(d): State<Arc<Daemon>>,
    version: Option<axum::Extension<crate::version::ApiVersion>>,
    q: Query,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (config, host, networking) = body::create(&body)?;
    let subpath_known = version.is_none_or(|axum::Extension(v)| {
        v >= crate::version::ApiVersion {
            major: 1,
            minor: 45,
        }
    });
    if !subpath_known
        && host.mounts.iter().any(|m| {
            m.volume_options
                .as_ref()
                .is_some_and(|o| !o.subpath.is_empty())
        })
    {
        return Err(ApiError::bad_request(
            "VolumeOptions.Subpath needs API v1.45 or newer",
        ));
    }
    let id = d
        .container_create_on(q.get("name"), config, host, &networking)
        .await?;
    Ok((StatusCode::CREATED, Json(wire::containers::created(&id))).into_response())
}

pub(crate) async fn start(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    d.container_start(&id).await?;
    Ok(no_content())
}

pub(crate) async fn stop(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    d.container_stop(&id, q.get("signal"), q.timeout()?).await?;
    Ok(no_content())
}

pub(crate) async fn restart(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    d.container_restart(&id, q.get("signal"), q.timeout()?)
        .await?;
    Ok(no_content())
}

pub(crate) async fn kill(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    d.container_kill(&id, q.get("signal")).await?;
    Ok(no_content())
}

pub(crate) async fn pause(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    d.container_pause(&id).await?;
    Ok(no_content())
}

pub(crate) async fn unpause(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    d.container_unpause(&id).await?;
    Ok(no_content())
}

pub(crate) async fn rename(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    d.container_rename(&id, q.get("name").unwrap_or_default())?;
    Ok(no_content())
}

pub(crate) async fn remove(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    if q.bool("link") {
        d.container_remove_link(&id).await?;
    } else {
        d.container_remove_with(&id, q.bool("force"), q.bool("v"))
            .await?;
    }
    Ok(no_content())
}

pub(crate) async fn resize(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let (h, w) = q.resize_dims()?;
    d.container_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /containers/{id}/wait`: the status line goes out at once, the body at exit.
pub(crate) async fn wait(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let condition = match q.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: {other:?}"
            )));
        }
    };
    let c = d.container_get(&id)?;
    let id = c.id.clone();
    let stream = futures_util::stream::once(async move {
        let result = d.container_wait(&id, condition).await;
        // A failed start's error comes with its exit code, as dockerd reports it.
        let error = c.state().error().to_string();
        let body = wire::containers::wait_result(result.map(|code| (code, error)));
        Ok::<_, std::convert::Infallible>(Bytes::from(format!("{body}\n")))
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `POST /containers/{id}/attach` (hijacked).
pub(crate) async fn attach(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
    req: Request,
) -> Result<Response, ApiError> {
    if !q.bool("stream") && !q.bool("logs") {
        return Err(ApiError::bad_request("either logs or stream must be set"));
    }
    let (c, output, stdin) = d.container_attach(&id, q.bool("stdout"), q.bool("stderr"))?;
    let tty = c.tty();
    let stdin = (q.bool("stdin") && c.open_stdin()).then_some(stdin);
    let detach_keys = crate::hijack::detach_keys(tty, stdin.is_some(), q.get("detachKeys"))?;
    upgrade(req, tty, async move {
        Session {
            output,
            stdin,
            tty,
            error: None,
            detach_keys,
        }
    })
}

/// `GET /containers/{id}/logs`.
pub(crate) async fn logs(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let c = d.container_get(&id)?;
    let tty = c.tty();
    let o = LogOptions {
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        timestamps: q.bool("timestamps"),
        follow: q.bool("follow"),
        tail: match q.get("tail") {
            None | Some("") | Some("all") => None,
            Some(n) => Some(
                n.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid tail: {n:?}")))?,
            ),
        },
        since: q.time("since")?,
        until: q.time("until")?,
    };
    if !o.stdout && !o.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    d.container_logs_readable(&c.id)?;
    let timestamps = o.timestamps;
    let (tx, rx) = tokio::sync::mpsc::channel::<LogLine>(256);
    let cid = c.id.clone();
    tokio::spawn(async move {
        if let Err(e) = d.container_logs(&cid, o, tx).await {
            tracing::warn!(container = %cid, error = %e, "logs stopped");
        }
    });
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        let line = rx.recv().await?;
        let bytes = wire::containers::log_line(&line, timestamps, tty);
        Some((Ok::<_, std::convert::Infallible>(bytes), rx))
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(([(CONTENT_TYPE, ct)], Body::from_stream(stream)).into_response())
}

/// `GET /containers/json`.
pub(crate) async fn list(
    State(d): State<Arc<Daemon>>,
    q: Query,
) -> Result<Json<Vec<Value>>, ApiError> {
    let filters = q.filters()?;
    let o = ListOptions {
        all: q.bool("all"),
        limit: q.get("limit").and_then(|l| l.parse().ok()),
        filters: filters.0,
    };
    let size = q.bool("size");
    let out = d
        .container_list(&o)?
        .iter()
        .map(|s| wire::containers::summary(s, size.then(|| d.container_size(&s.record))))
        .collect();
    Ok(Json(out))
}

/// `GET /containers/{id}/json`.
pub(crate) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Json<Value>, ApiError> {
    let i = d.container_inspect(&id, q.bool("size"))?;
    Ok(Json(wire::containers::inspect(&i)))
}

/// `GET /containers/{id}/top`.
pub(crate) async fn top(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (titles, processes) = d.container_top(&id).await?;
    Ok(Json(wire::containers::top(&titles, &processes)))
}

/// `GET /containers/{id}/stats` (one sample with `stream=0`, else one a second).
pub(crate) async fn stats(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let first = d.container_stats(&id)?;
    let no_stream = q.get("stream").is_some_and(|s| matches!(s, "0" | "false"));
    if no_stream && q.bool("one-shot") {
        return Ok(
            Json(wire::containers::stats(&first, &CgroupStats::default(), 0)).into_response(),
        );
    }
    if no_stream {
        // As dockerd: a second sample a second later, the first as its "pre", so the CPU
        // share is of that second.
        if !first.running {
            return Ok(
                Json(wire::containers::stats(&first, &CgroupStats::default(), 0)).into_response(),
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = d.container_stats(&id)?;
        return Ok(Json(wire::containers::stats(
            &now,
            &first.cgroup,
            first.system_cpu_ns,
        ))
        .into_response());
    }
    let id = first.id.clone();
    let start = (d, id, first.cgroup, first.system_cpu_ns);
    let stream = futures_util::stream::unfold(start, |(d, id, pre, pre_system)| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = d.container_stats(&id).ok()?;
        if !now.running {
            return None;
        }
        let line = format!("{}\n", wire::containers::stats(&now, &pre, pre_system));
        let system = now.system_cpu_ns;
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(line)),
            (d, id, now.cgroup, system),
        ))
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `PUT /containers/{id}/archive?path=`: `docker cp` into the container.
pub(crate) async fn extract(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let path = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("path is required"))?
        .to_string();
    let no_overwrite = q.bool("noOverwriteDirNonDir");
    d.container_extract(&id, &path, no_overwrite, body_reader(body))
        .await?;
    Ok(StatusCode::OK)
}

/// `GET`/`HEAD /containers/{id}/archive?path=`.
pub(crate) async fn archive(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
    method: http::Method,
) -> Result<Response, ApiError> {
    let path = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("path is required"))?;
    let (stat, reader) = d.container_archive(&id, path, method == http::Method::HEAD)?;
    let (name, value) = wire::containers::path_stat_header(&stat);
    let mut resp = match reader {
        Some(r) => tar_response(r),
        None => StatusCode::OK.into_response(),
    };
    if let Ok(v) = http::HeaderValue::from_str(&value) {
        resp.headers_mut().insert(name, v);
    }
    Ok(resp)
}

/// `GET /containers/{id}/export`.
pub(crate) async fn export(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(tar_response(d.container_export(&id)?))
}

/// `GET /containers/{id}/changes` (`docker diff`).
pub(crate) async fn changes(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(wire::containers::changes(
        &d.container_changes(&id).await?,
    )))
}

/// `POST /containers/{id}/update`.
pub(crate) async fn update(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    d.container_update(&id, body::update(&body)?).await?;
    Ok(Json(wire::containers::updated()))
}

/// `POST /containers/prune`.
/// The stopped containers (within the `until` and `label` filters) go; `SpaceReclaimed` is
/// what their writable layers held.
pub(crate) async fn prune(State(d): State<Arc<Daemon>>, q: Query) -> Result<Json<Value>, ApiError> {
    let f = q.filters()?;
    f.only(&["until", "label", "label!"])?;
    let until = match f.values("until").first() {
        None => None,
        Some(u) => Some(
            Query::parse(&format!("t={u}"))
                .and_then(|q| q.time("t"))?
                .ok_or_else(|| ApiError::bad_request(format!("invalid filter 'until={u}'")))?,
        ),
    };
    let stopped = d.container_list(&ListOptions {
        all: true,
        ..Default::default()
    })?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for s in stopped.into_iter().filter(|s| !s.record.state.running()) {
        let r = &s.record;
        let has = |l: &String| match l.split_once('=') {
            Some((k, v)) => r.config.labels.get(k).is_some_and(|x| x == v),
            None => r.config.labels.contains_key(l),
        };
        let created = humantime::parse_rfc3339_weak(r.created.trim_end_matches('Z')).ok();
        if !f.values("label").iter().all(has)
            || f.values("label!").iter().any(has)
            || until.is_some_and(|u| created.is_some_and(|c| c > u))
        {
            continue;
        }
        let (rw, _) = d.container_size(r);
        if d.container_remove(&r.id, false).await.is_ok() {
            reclaimed += rw;
            deleted.push(r.id.clone());
        }
    }
    Ok(Json(wire::containers::pruned(&deleted, reclaimed)))
}
