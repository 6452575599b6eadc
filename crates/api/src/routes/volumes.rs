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

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use serde_json::{Value, json};

    use crate::routes::tests::Engine as TestEngine;

    /// A call through the test engine; the answer's body as JSON (`null` when it is none).
    async fn call(e: &TestEngine, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let (status, _, bytes) = e.call(method, uri, body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn names(v: &Value) -> Vec<String> {
        v["Volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["Name"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn create_inspect_list_remove_with_dockerds_shapes_and_statuses() {
        let e = TestEngine::new();
        let (s, v) = call(
            &e,
            "POST",
            "/v1.41/volumes/create",
            json!({"Name": "v1", "Driver": "local", "Labels": {"a": "b"}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(
            (v["Name"].clone(), v["Scope"].clone(), v["Options"].clone()),
            (json!("v1"), json!("local"), Value::Null)
        );
        assert!(
            v["Mountpoint"]
                .as_str()
                .unwrap()
                .ends_with("/volumes/v1/_data")
        );
        let (s, got) = call(&e, "GET", "/volumes/v1", Value::Null).await;
        assert_eq!((s, &got), (StatusCode::OK, &v));
        call(&e, "POST", "/volumes/create", json!({"Name": "other"})).await;
        let (s, l) = call(&e, "GET", "/volumes", Value::Null).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(names(&l), ["other", "v1"]);
        assert_eq!(
            l["Warnings"],
            Value::Null,
            "Go's nil list, as dockerd (volume.txt)"
        );
        let q = serde_urlencoded::to_string([("filters", r#"{"label":["a=b"]}"#)]).unwrap();
        let (_, l) = call(&e, "GET", &format!("/volumes?{q}"), Value::Null).await;
        assert_eq!(names(&l), ["v1"]);
        let q = serde_urlencoded::to_string([("filters", r#"{"bogus":["x"]}"#)]).unwrap();
        let (s, _) = call(&e, "GET", &format!("/volumes?{q}"), Value::Null).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        let (s, m) = call(&e, "GET", "/volumes/nope", Value::Null).await;
        assert_eq!(
            (s, m["message"].clone()),
            (StatusCode::NOT_FOUND, json!("get nope: no such volume"))
        );
        let (s, _) = call(&e, "DELETE", "/volumes/nope", Value::Null).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(&e, "DELETE", "/volumes/nope?force=1", Value::Null).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, m) = call(&e, "POST", "/volumes/create", json!({"Name": "a/b"})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{m}");
        let (s, m) = call(
            &e,
            "POST",
            "/volumes/create",
            json!({"Name": "xx", "DriverOpts": {"bogus": "1"}}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{m}");
        let (s, _) = call(
            &e,
            "POST",
            "/volumes/create",
            json!({"Name": "xx", "Driver": "nfs"}),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(&e, "DELETE", "/volumes/v1", Value::Null).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn in_use_is_409_naming_the_container_and_rm_v_removes_anonymous_ones() {
        let e = TestEngine::new();
        e.import_image("acc/x:1").await;
        let (s, c) = call(
            &e,
            "POST",
            "/containers/create?name=user",
            json!({"Image": "acc/x:1", "Cmd": ["true"], "Volumes": {"/anon": {}},
                   "HostConfig": {"Binds": ["named:/data"]}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let id = c["Id"].as_str().unwrap().to_string();
        let (_, l) = call(&e, "GET", "/volumes", Value::Null).await;
        let all = names(&l);
        assert_eq!(all.len(), 2, "{all:?}");
        let anon = all.iter().find(|n| n.len() == 64).unwrap().clone();
        let (s, m) = call(&e, "DELETE", "/volumes/named", Value::Null).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(
            m["message"],
            json!(format!("remove named: volume is in use - [{id}]"))
        );
        let (_, i) = call(&e, "GET", "/containers/user/json", Value::Null).await;
        let mounts = i["Mounts"].as_array().unwrap();
        let named = mounts.iter().find(|m| m["Name"] == "named").unwrap();
        assert_eq!(
            (
                named["Type"].clone(),
                named["Destination"].clone(),
                named["Driver"].clone(),
                named["RW"].clone()
            ),
            (json!("volume"), json!("/data"), json!("local"), json!(true))
        );
        let q = serde_urlencoded::to_string([("filters", r#"{"dangling":["false"]}"#)]).unwrap();
        let (_, l) = call(&e, "GET", &format!("/volumes?{q}"), Value::Null).await;
        assert_eq!(names(&l).len(), 2);
        let (s, _) = call(&e, "DELETE", "/containers/user?v=1", Value::Null).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, l) = call(&e, "GET", "/volumes", Value::Null).await;
        assert_eq!(
            names(&l),
            ["named"],
            "the anonymous one {anon} went, the named one stays"
        );
    }

    #[tokio::test]
    async fn bad_mounts_are_400_and_subpath_needs_1_45() {
        let e = TestEngine::new();
        e.import_image("acc/x:1").await;
        for (uri, host, want) in [
            (
                "/containers/create",
                json!({"Binds": ["v:/d:bogus"]}),
                "invalid volume specification",
            ),
            (
                "/containers/create",
                json!({"Binds": ["aa:/x", "bb:/x"]}),
                "Duplicate mount point: /x",
            ),
            (
                "/containers/create",
                json!({"Mounts": [{"Type": "bind", "Source": "/no/such/dir", "Target": "/x"}]}),
                "bind source path does not exist",
            ),
            (
                "/containers/create",
                json!({"VolumesFrom": ["nosuch"]}),
                "No such container: nosuch",
            ),
            (
                "/v1.44/containers/create",
                json!({"Mounts": [{"Type": "volume", "Source": "vv", "Target": "/x", "VolumeOptions": {"Subpath": "a"}}]}),
                "needs API v1.45",
            ),
        ] {
            let (s, m) = call(
                &e,
                "POST",
                uri,
                json!({"Image": "acc/x:1", "Cmd": ["true"], "HostConfig": host}),
            )
            .await;
            assert!(s.is_client_error(), "{host}: {s}");
            assert!(m["message"].as_str().unwrap().contains(want), "{host}: {m}");
        }
    }

    #[tokio::test]
    async fn prune_depends_on_the_api_version() {
        let e = TestEngine::new();
        e.import_image("acc/x:1").await;
        call(&e, "POST", "/volumes/create", json!({"Name": "named"})).await;
        let (s, c) = call(
            &e,
            "POST",
            "/containers/create?name=cc",
            json!({"Image": "acc/x:1", "Cmd": ["true"], "Volumes": {"/anon": {}}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        call(&e, "DELETE", "/containers/cc", Value::Null).await;
        let (s, p) = call(&e, "POST", "/v1.47/volumes/prune", Value::Null).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(p["VolumesDeleted"].as_array().unwrap().len(), 1, "{p}");
        let (_, l) = call(&e, "GET", "/volumes", Value::Null).await;
        assert_eq!(names(&l), ["named"]);
        call(
            &e,
            "POST",
            "/volumes/create",
            json!({"Name": "kept", "Labels": {"keep": "1"}}),
        )
        .await;
        let q = serde_urlencoded::to_string([("filters", r#"{"label!":["keep"]}"#)]).unwrap();
        let (_, p) = call(
            &e,
            "POST",
            &format!("/v1.41/volumes/prune?{q}"),
            Value::Null,
        )
        .await;
        assert_eq!(
            p["VolumesDeleted"],
            json!(["named"]),
            "1.41: named ones too"
        );
        let q = serde_urlencoded::to_string([("filters", r#"{"all":["true"]}"#)]).unwrap();
        let (_, p) = call(&e, "POST", &format!("/volumes/prune?{q}"), Value::Null).await;
        assert_eq!(p["VolumesDeleted"], json!(["kept"]));
    }
}
