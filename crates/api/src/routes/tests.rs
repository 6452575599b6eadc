//! Routing against a fake engine: status codes, headers, bodies, version prefixes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use berth_config::{DaemonConfig, FileConfig, Flags};
use berth_daemon::{ComponentVersion, ConfigStore, HostFacts, Snapshot, SystemInfo, SystemVersion};
use berth_runtimes::DeriveContext;
use clap::Parser;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{Backend, router};

struct Fake {
    snapshot: Arc<Snapshot>,
    _dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let flags = Flags::try_parse_from(["berthd"]).unwrap();
        let file = FileConfig::parse(
            br#"{"runtimes": {"alt": {"path": "/usr/bin/runc"}}, "live-restore": true}"#,
        )
        .unwrap();
        let config = DaemonConfig::build(&flags, &file).unwrap();
        let rt = dir.path().join("runtimes");
        berth_runtimes::reset_runtimes_dir(&rt).unwrap();
        let store = ConfigStore::new(
            config,
            flags,
            DeriveContext {
                runtimes_dir: rt,
                runc_root: dir.path().join("runc"),
                systemd_cgroup: false,
                no_pivot_root: false,
            },
        )
        .unwrap();
        Fake {
            snapshot: store.load(),
            _dir: dir,
        }
    }
}

impl Backend for Fake {
    async fn version(&self) -> SystemVersion {
        SystemVersion {
            version: "0.1.0".into(),
            git_commit: "abc1234".into(),
            compiler: "rustc 1.95.0".into(),
            kernel_version: "6.1.0".into(),
            arch: "amd64".into(),
            components: vec![
                ComponentVersion {
                    name: "Engine".into(),
                    version: "0.1.0".into(),
                    details: BTreeMap::new(),
                },
                ComponentVersion {
                    name: "containerd".into(),
                    version: "1.6.20".into(),
                    details: BTreeMap::from([("GitCommit".into(), "deadbeef".into())]),
                },
            ],
        }
    }
    async fn info(&self) -> SystemInfo {
        SystemInfo {
            id: "id-1".into(),
            name: "box".into(),
            containers_running: 1,
            containers_paused: 0,
            containers_stopped: 2,
            images: 4,
            host: HostFacts {
                kernel_version: "6.1.0".into(),
                mem_total: 1 << 30,
                ..HostFacts::default()
            },
            ncpu: 2,
            open_fds: 10,
            tasks: 5,
            system_time: SystemTime::UNIX_EPOCH,
            backing_filesystem: "extfs".into(),
            snapshot: self.snapshot.clone(),
            containerd: None,
            runc: Some(("1.1.5".into(), "c0ffee".into())),
            server_version: "0.1.0".into(),
        }
    }
    fn rpc_counts(&self) -> Vec<(String, u64)> {
        vec![]
    }
}

async fn call(method: &str, uri: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let app = router(Arc::new(Fake::new()));
    let resp = app
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
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
    assert_eq!(v["Components"][1]["Name"], "containerd");
    assert_eq!(v["Components"][1]["Details"]["GitCommit"], "deadbeef");
}

#[tokio::test]
async fn info_reports_config_and_counts() {
    let (status, _, body) = call("GET", "/info").await;
    assert_eq!(status, StatusCode::OK);
    let i = json(&body);
    assert_eq!(i["Containers"], 3);
    assert_eq!(i["ContainersStopped"], 2);
    assert_eq!(i["Images"], 4);
    assert_eq!(i["LiveRestoreEnabled"], true);
    assert_eq!(i["DefaultRuntime"], "runc");
    assert_eq!(i["Runtimes"]["runc"]["path"], "runc");
    assert_eq!(i["Runtimes"]["alt"]["path"], "/usr/bin/runc");
    assert_eq!(i["DockerRootDir"], "/var/lib/berth");
    assert_eq!(i["NCPU"], 2);
    assert_eq!(i["MemTotal"], 1u64 << 30);
    assert_eq!(i["SystemTime"], "1970-01-01T00:00:00.000000000Z");
    assert_eq!(i["RuncCommit"]["ID"], "c0ffee");
    assert_eq!(i["Swarm"]["LocalNodeState"], "inactive");
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
