//! Routing against a fake engine: status codes, headers, bodies, version prefixes.

use axum::body::Body;
use berth_daemon::testing::TestEngine;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::router;

/// The shared test engine (no containerd behind it unless built with the fake), reached
/// through the router.
pub(crate) struct Engine(TestEngine);

/// The engine's own helpers (images, containers) stay at hand.
impl std::ops::Deref for Engine {
    type Target = TestEngine;

    fn deref(&self) -> &TestEngine {
        &self.0
    }
}

impl Engine {
    /// An engine with an extra runtime and live-restore, and no containerd.
    pub(crate) fn new() -> Engine {
        Engine(
            TestEngine::builder()
                .daemon_json(
                    r#"{"runtimes": {"alt": {"path": "/usr/bin/runc"}}, "live-restore": true}"#,
                )
                .build(),
        )
    }

    /// An engine over the fake containerd: containers start, stop and exec.
    pub(crate) fn with_fake_containerd() -> Engine {
        Engine(TestEngine::builder().fake_containerd().build())
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        uri: &str,
        body: Vec<u8>,
    ) -> (StatusCode, http::HeaderMap, Vec<u8>) {
        let resp = router(self.0.daemon.clone())
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }
}

async fn call(method: &str, uri: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    Engine::new().call(method, uri, Vec::new()).await
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test]
async fn ping_answers_ok_with_dockers_headers() {
    for method in ["GET", "HEAD"] {
        for uri in ["/_ping", "/v1.41/_ping", "/v1.47/_ping"] {
            let (status, h, body) = call(method, uri).await;
            assert_eq!(status, StatusCode::OK, "{method} {uri}");
            assert_eq!(h["api-version"], "1.47");
            assert_eq!(h["ostype"], "linux");
            assert_eq!(h["docker-experimental"], "false");
            assert!(h["server"].to_str().unwrap().starts_with("berth/"));
            assert_eq!(h["cache-control"], "no-cache, no-store, must-revalidate");
            assert_eq!(
                body,
                if method == "GET" {
                    b"OK".to_vec()
                } else {
                    vec![]
                }
            );
        }
    }
}

#[tokio::test]
async fn version_has_the_engine_details_the_cli_prints() {
    let (status, _, body) = call("GET", "/v1.47/version").await;
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v["ApiVersion"], "1.47");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Os"], "linux");
    let engine = &v["Components"][0];
    assert_eq!(engine["Name"], "Engine");
    assert_eq!(engine["Details"]["KernelVersion"], "6.1.0-test");
    for key in [
        "ApiVersion",
        "MinAPIVersion",
        "GitCommit",
        "GoVersion",
        "Os",
        "Arch",
        "KernelVersion",
    ] {
        assert!(engine["Details"][key].is_string(), "Engine.Details.{key}");
    }
    let names: Vec<&str> = v["Components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"containerd"),
        "no containerd answers here: {names:?}"
    );
}

#[tokio::test]
async fn info_reports_config_and_counts() {
    let e = Engine::new();
    let (status, _, body) = e.call("GET", "/info", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let i = json(&body);
    assert_eq!(i["Containers"], 0);
    assert_eq!(i["Images"], 0);
    assert_eq!(i["LiveRestoreEnabled"], true);
    assert_eq!(i["DefaultRuntime"], "runc");
    assert_eq!(i["Runtimes"]["runc"]["path"], "runc");
    assert_eq!(i["Runtimes"]["alt"]["path"], "/usr/bin/runc");
    assert_eq!(
        i["DockerRootDir"],
        e.0.dir().join("data").display().to_string()
    );
    assert_eq!(i["KernelVersion"], "6.1.0-test");
    assert_eq!(i["Name"], "box");
    assert_eq!(i["MemTotal"], 1u64 << 30);
    assert!(i["SystemTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(i["Swarm"]["LocalNodeState"], "inactive");
    assert!(i["ID"].as_str().unwrap().len() == 36);
}

#[tokio::test]
async fn unknown_routes_are_404_page_not_found() {
    for uri in [
        "/no/such/endpoint",
        "/v1.41/no/such",
        "/v1/info",
        "/v1.4.1/info",
    ] {
        let (status, h, body) = call("GET", uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(
            json(&body),
            serde_json::json!({"message": "page not found"})
        );
        assert_eq!(h["api-version"], "1.47");
    }
}

#[tokio::test]
async fn versions_outside_the_range_are_400() {
    let (status, _, body) = call("GET", "/v1.99/version").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json(&body)["message"],
        "client version 1.99 is too new. Maximum supported API version is 1.47"
    );
    let (status, _, body) = call("GET", "/v1.12/info").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json(&body)["message"].as_str().unwrap().contains("too old"));
}

#[tokio::test]
async fn wrong_method_is_not_a_200() {
    let (status, _, body) = call("POST", "/version").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(json(&body)["message"], "method not allowed");
}

fn layer_tar() -> Vec<u8> {
    berth_daemon::testing::layer_tar("bin/sh", b"#!/bin/sh\n")
}

#[tokio::test]
async fn image_import_list_inspect_tag_save_remove_load() {
    let e = Engine::new();
    let (status, _, body) = e
        .call("POST", "/v1.47/images/create?fromSrc=-&repo=acc%2Fx%3A1&changes=ENV%20A%3D1&changes=CMD%20%5B%22sh%22%5D", layer_tar())
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let id = json(body.split(|b| *b == b'\r').next().unwrap())["status"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let (_, _, body) = e
        .call(
            "GET",
            "/images/json?filters=%7B%22reference%22%3A%7B%22acc%2Fx%3A1%22%3Atrue%7D%7D",
            vec![],
        )
        .await;
    let list = json(&body);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["RepoTags"][0], "acc/x:1");
    assert_eq!(list[0]["Id"], id);

    let (status, _, body) = e.call("GET", "/images/acc/x:1/json", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let i = json(&body);
    assert_eq!(i["Id"], id);
    assert_eq!(i["Config"]["Env"][0], "A=1");
    assert_eq!(i["Config"]["Cmd"][0], "sh");
    assert_eq!(i["RootFS"]["Layers"].as_array().unwrap().len(), 1);

    let (status, _, _) = e
        .call("POST", "/images/acc/x:1/tag?repo=acc%2Fy&tag=2", vec![])
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, body) = e.call("GET", "/images/acc/y:2/history", vec![]).await;
    assert_eq!(json(&body)[0]["Id"], id);

    let (status, _, saved) = e.call("GET", "/images/acc/x:1/get", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, body) = e.call("DELETE", "/images/acc/y:2", vec![]).await;
    assert_eq!(json(&body), serde_json::json!([{"Untagged": "acc/y:2"}]));
    let (_, _, body) = e.call("DELETE", "/images/acc/x:1", vec![]).await;
    assert_eq!(
        json(&body),
        serde_json::json!([{"Untagged": "acc/x:1"}, {"Deleted": id}])
    );
    let (status, _, body) = e.call("GET", "/images/acc/x:1/json", vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["message"], "No such image: acc/x:1");

    let (status, _, body) = e.call("POST", "/images/load", saved).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("Loaded image: acc/x:1"));
    let (_, _, body) = e.call("GET", "/images/acc/x:1/json", vec![]).await;
    assert_eq!(json(&body)["Id"], id, "the round trip keeps the ID");
}

#[tokio::test]
async fn intermediate_images_show_with_all_keep_their_parents_and_refuse_rmi_by_id() {
    let e = Engine::new();
    let base = e.import_image("acc/base:1").await;
    let mid = e.child_image(&base, "RUN a", None);
    let top = e.child_image(&mid, "RUN b", Some("acc/top:1"));
    let leaf = e.child_image(&base, "RUN c", None);
    let ids = |body: &[u8]| -> Vec<String> {
        let mut ids: Vec<String> = json(body)
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["Id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    let (_, _, body) = e.call("GET", "/images/json", vec![]).await;
    assert_eq!(ids(&body), sorted(vec![&base, &top, &leaf]));
    let row = json(&body)
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["Id"] == top.as_str())
        .cloned()
        .unwrap();
    assert_eq!(row["ParentId"], mid.as_str());
    let (_, _, body) = e.call("GET", "/images/json?all=1", vec![]).await;
    assert_eq!(ids(&body), sorted(vec![&base, &mid, &top, &leaf]));
    let dangling = filters(serde_json::json!({"dangling": ["true"]}));
    let (_, _, body) = e
        .call("GET", &format!("/images/json?all=1&{dangling}"), vec![])
        .await;
    assert_eq!(ids(&body), vec![leaf.clone()]);
    let (_, _, body) = e.call("GET", &format!("/images/{mid}/json"), vec![]).await;
    assert_eq!(json(&body)["Parent"], base.as_str());
    let (_, _, body) = e.call("GET", "/images/acc/base:1/json", vec![]).await;
    assert_eq!(json(&body)["Parent"], "");

    let (status, _, body) = e
        .call("DELETE", &format!("/images/{mid}?force=1"), vec![])
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        json(&body)["message"],
        format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            &mid[7..19]
        )
    );
    let (status, _, body) = e
        .call("DELETE", "/images/acc/top:1?noprune=1", vec![])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json(&body),
        serde_json::json!([{"Untagged": "acc/top:1"}, {"Deleted": top}])
    );
    // Left without its child, the intermediate image is dangling: prune takes it.
    let (status, _, body) = e
        .call("POST", &format!("/images/prune?{dangling}"), vec![])
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut gone: Vec<String> = json(&body)["ImagesDeleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["Deleted"].as_str().unwrap().to_string())
        .collect();
    gone.sort();
    assert_eq!(gone, sorted(vec![&mid, &leaf]));
    let (_, _, body) = e.call("GET", "/images/json?all=1", vec![]).await;
    assert_eq!(ids(&body), vec![base]);
}

#[tokio::test]
async fn image_errors_have_dockers_statuses() {
    let e = Engine::new();
    let (status, _, body) = e.call("GET", "/images/UPPER/json", vec![]).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, _) = e.call("DELETE", "/images/nope:1", vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = e
        .call(
            "POST",
            "/images/create?fromSrc=-",
            b"not a tar at all".to_vec(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    // dockerd has answered 200 when it finds the archive bad: the error is in the stream.
    let (status, _, body) = e.call("POST", "/images/load", b"garbage".to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    let line: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(line["errorDetail"]["message"].is_string(), "{line}");
    assert_eq!(line["error"], line["errorDetail"]["message"]);
    let (status, _, _) = e
        .call(
            "GET",
            "/images/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_requests_are_4xx_messages() {
    let e = Engine::new();
    let cases: [(&str, &str, Vec<u8>, StatusCode, &str); 6] = [
        (
            "POST",
            "/containers/create",
            b"{bad".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "POST",
            "/containers/create",
            br#"{"Image": "x", "HostConfig": {"PidsLimit": "many"}}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "HostConfig.PidsLimit",
        ),
        (
            "POST",
            "/containers/create",
            // Oversized: over the 2 MiB a JSON body may take.
            format!(r#"{{"Image": "x", "Env": ["A={}"]}}"#, "x".repeat(3 << 20)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "length limit",
        ),
        (
            "GET",
            "/containers/nope/json",
            vec![],
            StatusCode::NOT_FOUND,
            "No such container",
        ),
        (
            "POST",
            "/exec/nope/start",
            b"{}".to_vec(),
            StatusCode::NOT_FOUND,
            "No such exec",
        ),
        (
            "GET",
            "/events?since=yesterday",
            vec![],
            StatusCode::BAD_REQUEST,
            "since",
        ),
    ];
    for (method, uri, body, want, says) in cases {
        let (status, _, body) = e.call(method, uri, body).await;
        let v = json(&body);
        let message = v["message"].as_str().unwrap_or_default();
        assert_eq!(status, want, "{method} {uri}: {message}");
        assert!(message.contains(says), "{method} {uri}: {message}");
    }
}

/// A `filters=` query for `GET .../json`.
fn filters(f: serde_json::Value) -> String {
    serde_urlencoded::to_string([("filters", f.to_string())]).unwrap()
}

/// An engine with one image, `acc/x:1`, whose command is `sh`.
async fn engine_with_image() -> Engine {
    let e = Engine::new();
    let (status, _, _) = e
        .call(
            "POST",
            "/images/create?fromSrc=-&repo=acc%2Fx%3A1&changes=CMD%20%5B%22sh%22%5D",
            layer_tar(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    e
}

impl Engine {
    /// `POST /containers/create` of `acc/x:1` with `extra` merged into the body.
    async fn create(&self, name: &str, extra: serde_json::Value) -> (StatusCode, String) {
        let mut body = serde_json::json!({"Image": "acc/x:1"});
        if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(x.clone());
        }
        let (status, _, out) = self
            .call(
                "POST",
                &format!("/containers/create?name={name}"),
                body.to_string().into_bytes(),
            )
            .await;
        let v = json(&out);
        let text = v["message"]
            .as_str()
            .or(v["Id"].as_str())
            .unwrap_or_default();
        (status, text.to_string())
    }

    /// The names `GET /containers/json?all=1&<query>` lists, or the error.
    async fn ps(&self, query: &str) -> Result<Vec<String>, (StatusCode, String)> {
        let (status, _, body) = self
            .call("GET", &format!("/containers/json?all=1&{query}"), vec![])
            .await;
        let v = json(&body);
        if status != StatusCode::OK {
            return Err((status, v["message"].as_str().unwrap_or_default().into()));
        }
        let mut names: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                c["Names"][0]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('/')
                    .to_string()
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

#[tokio::test]
async fn create_refuses_what_dockerd_refuses_with_its_messages() {
    use serde_json::json as j;
    let e = engine_with_image().await;
    let bad = StatusCode::BAD_REQUEST;
    let cases = [
        (
            j!({"HostConfig": {"Memory": 1}}),
            "Minimum memory limit allowed is 6MB",
        ),
        (
            j!({"HostConfig": {"Memory": -1}}),
            "Minimum memory limit allowed is 6MB",
        ),
        (
            j!({"HostConfig": {"Memory": 67108864, "MemorySwap": 33554432}}),
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            j!({"HostConfig": {"OomScoreAdj": 1001}}),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]",
        ),
        (
            j!({"WorkingDir": "rel/dir"}),
            "the working directory 'rel/dir' is invalid, it needs to be an absolute path",
        ),
        (
            j!({"Env": ["A=1", "=foo"]}),
            "invalid environment variable: =foo",
        ),
        (
            j!({"HostConfig": {"CpusetCpus": "abc"}}),
            "Invalid value abc for cpuset cpus: invalid format: abc",
        ),
        (
            j!({"HostConfig": {"CpusetCpus": "0-7"}}),
            "Requested CPUs are not available - requested 0-7, available: 0-1",
        ),
        (
            j!({"HostConfig": {"NanoCpus": 3_000_000_000u64}}),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            j!({"HostConfig": {"NanoCpus": -1}}),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            j!({"HostConfig": {"CpuShares": -2}}),
            "shares: invalid argument",
        ),
        (
            j!({"HostConfig": {"IpcMode": "container:nosuch"}}),
            "No such container: nosuch",
        ),
        (
            j!({"HostConfig": {"PidMode": "container:nosuch"}}),
            "No such container: nosuch",
        ),
        (
            j!({"HostConfig": {"IpcMode": "bogus"}}),
            "invalid IPC mode: bogus",
        ),
        (
            j!({"HostConfig": {"PidMode": "bogus"}}),
            "invalid PID mode: bogus",
        ),
        (
            j!({"HostConfig": {"Devices": [{"PathOnHost": "/dev/berth-nonexistent", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]}}),
            "error gathering device information while adding custom device \"/dev/berth-nonexistent\": no such file or directory",
        ),
        (
            j!({"HostConfig": {"LogConfig": {"Type": "nosuch", "Config": {}}}}),
            "error looking up logging plugin nosuch: plugin \"nosuch\" not found",
        ),
        (
            j!({"HostConfig": {"LogConfig": {"Type": "", "Config": {"nosuchopt": "1"}}}}),
            "unknown log opt 'nosuchopt' for json-file log driver",
        ),
        (
            j!({"HostConfig": {"LogConfig": {"Config": {"max-size": "abc"}}}}),
            "invalid size: 'abc'",
        ),
        (j!({"StopSignal": "SIGBOGUS"}), "Invalid signal: SIGBOGUS"),
        (
            // The request is checked before the image is looked for, as in dockerd.
            j!({"Image": "nosuch:1", "HostConfig": {"Memory": 1}}),
            "Minimum memory limit allowed is 6MB",
        ),
    ];
    for (extra, want) in cases {
        let (status, message) = e.create("refused", extra.clone()).await;
        assert_eq!((status, message.as_str()), (bad, want), "{extra}");
    }
    assert_eq!(
        e.ps("").await.unwrap(),
        Vec::<String>::new(),
        "nothing was left"
    );

    // What dockerd accepts goes through; a namespace donor is then named by its ID.
    let (status, donor) = e.create("donor", j!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{donor}");
    let (status, id) = e
        .create(
            "sharer",
            j!({"WorkingDir": "/srv", "Env": ["A", "B="], "HostConfig": {
                "IpcMode": "container:donor", "PidMode": "container:donor",
                "Memory": 6291456, "MemorySwap": -1, "CpusetCpus": "0,1", "NanoCpus": 1_500_000_000,
                "OomScoreAdj": -1000, "LogConfig": {"Type": "json-file"},
                "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rwm"}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{id}");
    let (_, _, body) = e.call("GET", "/containers/sharer/json", vec![]).await;
    let hc = &json(&body)["HostConfig"];
    assert_eq!(hc["IpcMode"], format!("container:{donor}"));
    assert_eq!(hc["PidMode"], format!("container:{donor}"));
    assert_eq!(hc["LogConfig"], j!({"Type": "json-file", "Config": {}}));

    // The none driver keeps nothing: docker logs is dockerd's 501, and there is no LogPath.
    let (status, _) = e
        .create("quiet", j!({"HostConfig": {"LogConfig": {"Type": "none"}}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, _, body) = e.call("GET", "/containers/quiet/json", vec![]).await;
    assert_eq!(json(&body)["LogPath"], "");
    assert_eq!(
        json(&body)["HostConfig"]["LogConfig"],
        j!({"Type": "none", "Config": {}})
    );
    let (status, _, body) = e
        .call("GET", "/containers/quiet/logs?stdout=1", vec![])
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        json(&body)["message"],
        "configured logging driver does not support reading"
    );
}

#[tokio::test]
async fn update_refuses_bad_limits_and_conflicts() {
    use serde_json::json as j;
    let e = engine_with_image().await;
    let (status, id) = e
        .create("u1", j!({"HostConfig": {"NanoCpus": 1_000_000_000}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{id}");
    let cases = [
        (
            j!({"Memory": 1}),
            StatusCode::BAD_REQUEST,
            "Minimum memory limit allowed is 6MB".to_string(),
        ),
        (
            j!({"CpusetCpus": "9"}),
            StatusCode::BAD_REQUEST,
            "Requested CPUs are not available - requested 9, available: 0-1".to_string(),
        ),
        (
            j!({"CpuPeriod": 100000}),
            StatusCode::CONFLICT,
            format!(
                "Cannot update container {id}: Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
            ),
        ),
    ];
    for (body, want_status, want) in cases {
        let (status, _, out) = e
            .call(
                "POST",
                "/containers/u1/update",
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(
            (status, json(&out)["message"].as_str().unwrap_or_default()),
            (want_status, want.as_str()),
            "{body}"
        );
    }
    // The docker CLI sends every field, zero when not asked for: zeros change nothing.
    let (status, _, out) = e
        .call(
            "POST",
            "/containers/u1/update",
            j!({"Memory": 67108864, "NanoCpus": 0, "CpuShares": 0, "CpusetCpus": "", "RestartPolicy": {"Name": ""}})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
    let (_, _, body) = e.call("GET", "/containers/u1/json", vec![]).await;
    let hc = &json(&body)["HostConfig"];
    assert_eq!(
        (hc["Memory"].as_i64(), hc["NanoCpus"].as_i64()),
        (Some(64 << 20), Some(1_000_000_000))
    );
    assert_eq!(hc["RestartPolicy"]["Name"], "no");
}

#[tokio::test]
async fn list_filters_or_their_values_and_refuse_bad_ones() {
    use serde_json::json as j;
    let e = engine_with_image().await;
    for (name, labels) in [
        ("c1", j!({"a": "1", "b": "2"})),
        ("c2", j!({"a": "1"})),
        ("c3", j!({})),
    ] {
        let (status, text) = e.create(name, j!({"Labels": labels})).await;
        assert_eq!(status, StatusCode::CREATED, "{text}");
    }
    let ps = |f: serde_json::Value| {
        let e = &e;
        async move { e.ps(&filters(f)).await }
    };
    let names = |v: &[&str]| Ok(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        ps(j!({"status": ["created", "running"]})).await,
        names(&["c1", "c2", "c3"])
    );
    assert_eq!(ps(j!({"status": ["running"]})).await, names(&[]));
    assert_eq!(
        ps(j!({"name": ["c1", "c2"]})).await,
        names(&["c1", "c2"]),
        "names are ORed"
    );
    assert_eq!(
        ps(j!({"label": ["a=1", "b=2"]})).await,
        names(&["c1"]),
        "labels are ANDed"
    );
    assert_eq!(ps(j!({"label": ["a"]})).await, names(&["c1", "c2"]));
    assert_eq!(ps(j!({"before": ["c3"]})).await, names(&["c1", "c2"]));
    assert_eq!(ps(j!({"since": ["c1"]})).await, names(&["c2", "c3"]));
    assert_eq!(
        ps(j!({"since": ["c1"], "before": ["c3"]})).await,
        names(&["c2"])
    );
    assert_eq!(
        ps(j!({"exited": ["0", "1"]})).await,
        names(&[]),
        "never started"
    );
    let bad = StatusCode::BAD_REQUEST;
    assert_eq!(
        ps(j!({"status": ["running", "bogus"]})).await,
        Err((bad, "invalid filter 'status=bogus'".into()))
    );
    assert_eq!(
        ps(j!({"exited": ["abc"]})).await,
        Err((
            bad,
            r#"invalid filter 'exited=abc': strconv.Atoi: parsing "abc": invalid syntax"#.into()
        ))
    );
    assert_eq!(
        ps(j!({"before": ["nosuch"]})).await,
        Err((StatusCode::NOT_FOUND, "No such container: nosuch".into()))
    );
    assert_eq!(
        ps(j!({"since": ["nosuch"]})).await,
        Err((StatusCode::NOT_FOUND, "No such container: nosuch".into()))
    );
    assert_eq!(
        ps(j!({"bogus": ["x"]})).await,
        Err((bad, "invalid filter 'bogus'".into()))
    );

    // Images: dangling takes a boolean; before/since name an image.
    for (f, want_status, want) in [
        (
            j!({"dangling": ["maybe"]}),
            bad,
            "invalid filter 'dangling=[maybe]'",
        ),
        (
            j!({"dangling": ["true", "false"]}),
            bad,
            "invalid filter 'dangling=[false true]'",
        ),
        (
            j!({"before": ["nosuch:1"]}),
            StatusCode::NOT_FOUND,
            "No such image: nosuch:1",
        ),
    ] {
        let (status, _, body) = e
            .call(
                "GET",
                &format!("/images/json?{}", filters(f.clone())),
                vec![],
            )
            .await;
        assert_eq!(
            (status, json(&body)["message"].as_str().unwrap_or_default()),
            (want_status, want),
            "{f}"
        );
    }
    let (status, _, body) = e
        .call(
            "GET",
            &format!("/images/json?{}", filters(j!({"dangling": ["false"]}))),
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body).as_array().unwrap().len(), 1);
    let (status, _, body) = e
        .call(
            "GET",
            &format!("/images/json?{}", filters(j!({"before": ["acc/x:1"]}))),
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json(&body).as_array().unwrap().len(),
        0,
        "nothing is older than the only image"
    );
    let (status, _, _) = e
        .call(
            "POST",
            &format!("/images/prune?{}", filters(j!({"dangling": ["maybe"]}))),
            vec![],
        )
        .await;
    assert_eq!(status, bad);
}

#[tokio::test]
async fn resize_refuses_bad_sizes_before_looking_up_the_target() {
    let e = Engine::new();
    for (uri, want) in [
        (
            "/containers/nope/resize?h=abc&w=80",
            r#"invalid resize height "abc": invalid syntax"#,
        ),
        (
            "/containers/nope/resize?h=24",
            r#"invalid resize width "": invalid syntax"#,
        ),
        (
            "/exec/nope/resize?h=24&w=-1",
            r#"invalid resize width "-1": value out of range"#,
        ),
    ] {
        let (status, _, body) = e.call("POST", uri, vec![]).await;
        assert_eq!(
            (status, json(&body)["message"].as_str().unwrap_or_default()),
            (StatusCode::BAD_REQUEST, want),
            "{uri}"
        );
    }
    let (status, _, _) = e
        .call("POST", "/containers/nope/resize?h=24&w=80", vec![])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "good sizes reach the lookup");
}

/// An engine over the fake containerd with one image, `fake/img:1`.
async fn running_engine() -> Engine {
    let e = Engine::with_fake_containerd();
    e.0.import_image("fake/img:1").await;
    e
}

impl Engine {
    /// `POST /containers/create` of `fake/img:1` running `sleep`; the new ID.
    async fn create_sleeper(&self, name: &str) -> String {
        let (status, _, body) = self
            .call(
                "POST",
                &format!("/containers/create?name={name}"),
                br#"{"Image": "fake/img:1", "Cmd": ["sleep"]}"#.to_vec(),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        json(&body)["Id"].as_str().unwrap().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_already_so_is_304_without_a_body() {
    let e = running_engine().await;
    let id = e.create_sleeper("svc").await;

    // Stop of a container that never ran.
    let (status, _, body) = e.call("POST", "/v1.47/containers/svc/stop", vec![]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    let (status, _, _) = e.call("POST", "/v1.47/containers/svc/start", vec![]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Start of a started container.
    let (status, _, body) = e
        .call("POST", &format!("/containers/{id}/start"), vec![])
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    let (status, _, _) = e.call("POST", "/containers/svc/stop?t=5", vec![]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Stop of a stopped container.
    let (status, _, body) = e.call("POST", "/containers/svc/stop", vec![]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
}

#[tokio::test]
async fn unknown_containers_images_and_execs_are_404_with_dockers_messages() {
    let e = Engine::new();
    let cases: [(&str, &str, &[u8], &str); 9] = [
        (
            "GET",
            "/containers/nope/json",
            b"",
            "No such container: nope",
        ),
        (
            "POST",
            "/containers/nope/start",
            b"",
            "No such container: nope",
        ),
        (
            "POST",
            "/containers/nope/stop",
            b"",
            "No such container: nope",
        ),
        ("DELETE", "/containers/nope", b"", "No such container: nope"),
        (
            "POST",
            "/containers/nope/exec",
            br#"{"Cmd": ["true"]}"#,
            "No such container: nope",
        ),
        ("GET", "/images/nope:1/json", b"", "No such image: nope:1"),
        (
            "POST",
            "/containers/create",
            br#"{"Image": "nope:1"}"#,
            "No such image: nope:1",
        ),
        ("GET", "/exec/nope/json", b"", "No such exec instance: nope"),
        (
            "POST",
            "/exec/nope/resize?h=1&w=1",
            b"",
            "No such exec instance: nope",
        ),
    ];
    for (method, uri, body, says) in cases {
        let (status, _, out) = e.call(method, uri, body.to_vec()).await;
        let message = json(&out)["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}: {message}");
        assert!(message.contains(says), "{method} {uri}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_running_container_and_exec_in_a_stopped_one_are_409() {
    let e = running_engine().await;
    let id = e.create_sleeper("svc").await;

    // Exec in a container that is not running.
    let (status, _, body) = e
        .call(
            "POST",
            "/containers/svc/exec",
            br#"{"Cmd": ["true"]}"#.to_vec(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("is not running")
    );

    let (status, _, _) = e.call("POST", "/containers/svc/start", vec![]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Removal of a running container without force.
    let (status, _, body) = e.call("DELETE", "/containers/svc", vec![]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let message = json(&body)["message"].as_str().unwrap().to_string();
    assert!(
        message
            .contains("container is running: stop the container before removing or force remove"),
        "{message}"
    );
    // With force it goes.
    let (status, _, _) = e.call("DELETE", "/containers/svc?force=1", vec![]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = e
        .call("GET", &format!("/containers/{id}/json"), vec![])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pull_errors_before_the_stream_are_statuses_with_dockerds_words() {
    let e = Engine::new();
    // Nothing listens on the discard port: the ping fails, and no stream is started.
    let (status, headers, body) = e
        .call(
            "POST",
            "/images/create?fromImage=127.0.0.1%3A9%2Facc%2Fx&tag=1",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(headers["content-type"], "application/json");
    let message = json(&body)["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("Get \"http://127.0.0.1:9/v2/\": ")
            && message.contains("connection refused"),
        "{message}"
    );
    // `localhost` is insecure by name: HTTPS first, then plain HTTP, both refused here.
    let (status, _, body) = e
        .call(
            "POST",
            "/images/create?fromImage=localhost%3A9%2Fbusybox&tag=latest",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let message = json(&body)["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("Get \"http://localhost:9/v2/\": ")
            && message.contains("connection refused"),
        "{message}"
    );
    let (status, _, body) = e
        .call(
            "POST",
            "/images/create?fromImage=127.0.0.1%3A9%2Facc%2Fx&tag=1&platform=linux",
            vec![],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, _) = e
        .call("POST", "/images/create?fromImage=Bad%2FName&tag=1", vec![])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
