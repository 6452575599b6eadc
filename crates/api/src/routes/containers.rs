//! `/containers/...`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use berth_daemon::{
    Container, Daemon, ListOptions, LogLine, LogOptions, Record, Status, WaitCondition,
};
use berth_model::{ContainerConfig, HostConfig, MountPoint};
use bytes::Bytes;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tokio_util::io::ReaderStream;

use crate::ApiError;
use crate::hijack::{Session, frame_header, upgrade};
use crate::query::Query;

/// The body of `POST /containers/create`: Config fields at the top, plus `HostConfig` (and
/// `NetworkingConfig`, which berth has no use for yet). Each part is read on its own so a
/// wrong type is reported with its full path (`HostConfig.Memory`, `Image`).
pub(crate) fn parse_create(body: &[u8]) -> Result<(ContainerConfig, HostConfig), ApiError> {
    let v: Value = parse_body(body)?;
    let Value::Object(mut top) = v else {
        return Err(ApiError::bad_request(
            "invalid JSON: the body must be a JSON object",
        ));
    };
    let host = top.remove("HostConfig");
    top.remove("NetworkingConfig");
    let config: ContainerConfig = from_value_at(Value::Object(top), "")?;
    let host: HostConfig = match host {
        None | Some(Value::Null) => HostConfig::default(),
        Some(h) => from_value_at(h, "HostConfig.")?,
    };
    Ok((config, host))
}

fn from_value_at<T: serde::de::DeserializeOwned>(v: Value, prefix: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let at = match (prefix, path.as_str()) {
            ("", ".") => String::new(),
            (p, ".") => format!(" at {}", p.trim_end_matches('.')),
            (p, path) => format!(" at {p}{path}"),
        };
        ApiError::bad_request(format!("invalid JSON{at}: {}", e.inner()))
    })
}

/// Parses a JSON body; a malformed one is a 400 naming where it went wrong.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty; a JSON object is required",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::bad_request(format!("invalid JSON: {}", e.inner()))
        } else {
            ApiError::bad_request(format!("invalid JSON at {path}: {}", e.inner()))
        }
    })
}

pub(crate) async fn create(
    State(d): State<Arc<Daemon>>,
    q: Query,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (config, host) = parse_create(&body)?;
    let id = d.container_create(q.get("name"), config, host).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warnings": []}))).into_response())
}

fn timeout_param(q: &Query) -> Result<Option<i64>, ApiError> {
    match q.get("t").or(q.get("timeout")) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t:?}"))),
    }
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
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
    d.container_stop(&id, q.get("signal"), timeout_param(&q)?)
        .await?;
    Ok(no_content())
}

pub(crate) async fn restart(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    d.container_restart(&id, q.get("signal"), timeout_param(&q)?)
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
    d.container_remove(&id, q.bool("force")).await?;
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
        let body = match d.container_wait(&id, condition).await {
            Ok(code) => json!({"StatusCode": code, "Error": null}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
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
    upgrade(req, tty, async move {
        Session {
            output,
            stdin,
            tty,
            error: None,
        }
    })
}

fn parse_time(s: Option<&str>) -> Result<Option<SystemTime>, ApiError> {
    let Some(s) = s.filter(|s| !s.is_empty() && *s != "0") else {
        return Ok(None);
    };
    // Unix seconds with an optional fraction: `1700000000.123`.
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 9
        && frac.bytes().all(|b| b.is_ascii_digit())
        && let (Ok(secs), Ok(nanos)) = (secs.parse::<u64>(), format!("{frac:0<9}").parse::<u32>())
    {
        return Ok(Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)));
    }
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("invalid time: {s:?}")))
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
        since: parse_time(q.get("since"))?,
        until: parse_time(q.get("until"))?,
    };
    if !o.stdout && !o.stderr {
        return Err(ApiError::bad_request("You must choose at least one stream"));
    }
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
        let mut text = String::new();
        if timestamps {
            text.push_str(&line.time);
            text.push(' ');
        }
        text.push_str(&line.text);
        let bytes = if tty {
            Bytes::from(text)
        } else {
            let mut b = frame_header(line.stream as u8, text.len()).to_vec();
            b.extend_from_slice(text.as_bytes());
            Bytes::from(b)
        };
        Some((Ok::<_, std::convert::Infallible>(bytes), rx))
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(([(CONTENT_TYPE, ct)], Body::from_stream(stream)).into_response())
}

/// Go's `units.HumanDuration`.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => format!("{s} seconds"),
        60..120 => "About a minute".into(),
        120..3600 => format!("{} minutes", s / 60),
        3600..7200 => "About an hour".into(),
        7200..172_800 => format!("{} hours", s / 3600),
        172_800..1_209_600 => format!("{} days", s / 86_400),
        1_209_600..5_259_600 => format!("{} weeks", s / 604_800),
        5_259_600..63_115_200 => format!("{} months", s / 2_629_800),
        _ => format!("{} years", s / 31_557_600),
    }
}

fn since(t: &str) -> Duration {
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

fn status_text(r: &Record) -> String {
    let s = &r.state;
    match s.status() {
        Status::Running => format!("Up {}", human_duration(since(s.started_at()))),
        Status::Paused => format!("Up {} (Paused)", human_duration(since(s.started_at()))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code(),
            human_duration(since(s.finished_at()))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited if !r.has_been_started => "Created".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            s.exit_code(),
            human_duration(since(s.finished_at()))
        ),
    }
}

fn unix_secs(t: &str) -> i64 {
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn mounts(r: &Record) -> Vec<MountPoint> {
    r.host_config
        .binds
        .iter()
        .filter_map(|b| berth_oci::parse_bind(b).ok())
        .map(|b| MountPoint {
            typ: "bind".into(),
            source: b.source,
            destination: b.destination,
            mode: if b.read_only {
                "ro".into()
            } else {
                String::new()
            },
            rw: !b.read_only,
            propagation: b.propagation,
        })
        .collect()
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
        .into_iter()
        .map(|s| {
            let mut v = summary_json(&s);
            if size {
                let (rw, root) = d.container_size(&s.record);
                v["SizeRw"] = rw.into();
                v["SizeRootFs"] = root.into();
            }
            v
        })
        .collect();
    Ok(Json(out))
}

/// A container as `docker ps` lists it.
pub(crate) fn summary_json(s: &berth_daemon::Summary) -> Value {
    let r = &s.record;
    let mut command = r.path.clone();
    for a in &r.args {
        command.push(' ');
        command.push_str(a);
    }
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": s.image_name,
        "ImageID": r.image,
        "Command": command,
        "Created": unix_secs(&r.created),
        "Ports": [],
        "Labels": r.config.labels,
        "State": r.state.status().as_str(),
        "Status": status_text(r),
        "HostConfig": {"NetworkMode": r.host_config.network_mode},
        "NetworkSettings": {"Networks": {}},
        "Mounts": mounts(r),
    })
}

fn inspect_json(
    c: &Container,
    r: &Record,
    default_ulimits: &std::collections::BTreeMap<String, berth_config::Ulimit>,
) -> Value {
    let mut host_config = serde_json::to_value(&r.host_config).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut host_config {
        // Inspect shows the ulimits the container gets: its own over the daemon's defaults.
        m.insert(
            "Ulimits".into(),
            json!(berth_oci::merge_ulimits(
                &r.host_config.ulimits,
                default_ulimits
            )),
        );
        m.insert(
            "LogConfig".into(),
            json!({"Type": "json-file", "Config": {}}),
        );
    }
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": r.state,
        "Image": r.image,
        "ResolvConfPath": r.resolv_conf_path,
        "HostnamePath": r.hostname_path,
        "HostsPath": r.hosts_path,
        "LogPath": r.log_path,
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if c.exec_ids().is_empty() { Value::Null } else { json!(c.exec_ids()) },
        "HostConfig": host_config,
        "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": c.dir().join("fs/upper"), "WorkDir": c.dir().join("fs/work")}},
        "Mounts": mounts(r),
        "Config": r.config,
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "HairpinMode": false, "Ports": {},
            "SandboxKey": "", "Networks": {},
        },
    })
}

/// `GET /containers/{id}/json`.
pub(crate) async fn inspect(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Json<Value>, ApiError> {
    let c = d.container_get(&id)?;
    let r = c.record();
    let snapshot = d.config();
    let mut v = inspect_json(&c, &r, &snapshot.config.default_ulimits);
    if q.bool("size") {
        let (rw, root) = d.container_size(&r);
        v["SizeRw"] = rw.into();
        v["SizeRootFs"] = root.into();
    }
    Ok(Json(v))
}

/// `GET /containers/{id}/top`.
pub(crate) async fn top(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (titles, processes) = d.container_top(&id).await?;
    Ok(Json(json!({"Titles": titles, "Processes": processes})))
}

fn stats_json(
    c: &Container,
    s: &berth_daemon::CgroupStats,
    pre: &berth_daemon::CgroupStats,
    ncpu: usize,
) -> Value {
    let now = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    json!({
        "read": now,
        "preread": now,
        "id": c.id,
        "name": format!("/{}", c.name()),
        "num_procs": 0,
        "pids_stats": {"current": s.pids},
        "memory_stats": {"usage": s.memory_usage, "limit": s.memory_limit, "stats": s.memory_stats},
        "cpu_stats": {"cpu_usage": {"total_usage": s.cpu_total_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                      "system_cpu_usage": system_cpu_ns(), "online_cpus": ncpu, "throttling_data": {}},
        "precpu_stats": {"cpu_usage": {"total_usage": pre.cpu_total_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                         "system_cpu_usage": 0, "online_cpus": ncpu, "throttling_data": {}},
        "blkio_stats": {},
        "storage_stats": {},
        "networks": {},
    })
}

/// Total CPU time of the machine in nanoseconds (from /proc/stat), as Docker reports it.
fn system_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(7)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>()
                    * 10_000_000
            })
        })
        .unwrap_or(0)
}

/// `GET /containers/{id}/stats` (one sample with `stream=0`, else one a second).
pub(crate) async fn stats(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, ApiError> {
    let (c, first) = d.container_stats(&id)?;
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let one_shot =
        q.get("stream").is_some_and(|s| matches!(s, "0" | "false")) || q.bool("one-shot");
    if one_shot {
        return Ok(Json(stats_json(
            &c,
            &first,
            &berth_daemon::CgroupStats::default(),
            ncpu,
        ))
        .into_response());
    }
    let stream =
        futures_util::stream::unfold((d, c.id.clone(), first), move |(d, id, pre)| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (c, now) = d.container_stats(&id).ok()?;
            if !c.state().running() {
                return None;
            }
            let line = format!("{}\n", stats_json(&c, &now, &pre, ncpu));
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(line)),
                (d, id, now),
            ))
        });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

fn path_stat_header(stat: &berth_daemon::PathStat) -> (http::HeaderName, String) {
    use base64::Engine;
    let json = serde_json::to_vec(stat).unwrap_or_default();
    (
        http::HeaderName::from_static("x-docker-container-path-stat"),
        base64::engine::general_purpose::STANDARD.encode(json),
    )
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
    d.container_extract(&id, &path, no_overwrite, super::images::body_reader(body))
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
    let (name, value) = path_stat_header(&stat);
    let mut resp = match reader {
        Some(r) => (
            [(CONTENT_TYPE, "application/x-tar")],
            Body::from_stream(ReaderStream::new(r)),
        )
            .into_response(),
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
    let r = d.container_export(&id)?;
    Ok((
        [(CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(ReaderStream::new(r)),
    )
        .into_response())
}

/// `GET /containers/{id}/changes` (`docker diff`).
pub(crate) async fn changes(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let out: Vec<Value> = d
        .container_changes(&id)?
        .into_iter()
        .map(|c| json!({"Path": c.path, "Kind": c.kind}))
        .collect();
    Ok(Json(json!(out)))
}

/// `POST /containers/{id}/update`.
pub(crate) async fn update(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: berth_daemon::UpdateRequest = parse_body(&body)?;
    d.container_update(&id, req).await?;
    Ok(Json(json!({"Warnings": []})))
}

/// `POST /containers/prune`.
pub(crate) async fn prune(State(d): State<Arc<Daemon>>) -> Result<Json<Value>, ApiError> {
    let stopped = d.container_list(&ListOptions {
        all: true,
        ..Default::default()
    })?;
    let mut deleted = Vec::new();
    for s in stopped.into_iter().filter(|s| !s.record.state.running()) {
        if d.container_remove(&s.record.id, false).await.is_ok() {
            deleted.push(s.record.id);
        }
    }
    Ok(Json(
        json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            parse_time(Some("10.5")).unwrap(),
            Some(SystemTime::UNIX_EPOCH + Duration::new(10, 500_000_000))
        );
        assert_eq!(parse_time(Some("0")).unwrap(), None);
        assert!(parse_time(Some("2026-01-01T00:00:00Z")).unwrap().is_some());
        assert!(parse_time(Some("1.é")).is_err());
        assert!(parse_time(Some("soon")).is_err());
    }

    #[test]
    fn human_durations() {
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
    }
}
