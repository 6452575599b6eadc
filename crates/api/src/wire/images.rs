//! Images on the wire: list rows, inspect, history, import and load progress lines, removal
//! and prune results.

use std::time::{Duration, SystemTime};

use berth_daemon::{DeleteResult, HistoryItem, ImageRecord, LoadedImage};
use serde_json::{Value, json};

fn unix(secs: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_nanos(t).to_string()
}

fn repo_tags(r: &ImageRecord) -> Vec<String> {
    r.repo_tags.iter().map(|t| t.to_string()).collect()
}

/// `repo@sha256:...` of each repository the image was pulled from (familiar names).
fn repo_digests(r: &ImageRecord) -> Vec<String> {
    r.repo_digests.iter().map(|t| t.to_string()).collect()
}

/// An image as `docker images` lists it.
pub(crate) fn summary(r: &ImageRecord) -> Value {
    json!({
        "Containers": -1,
        "Created": r.created,
        "Id": r.id,
        "Labels": r.config.config.labels,
        "ParentId": r.parent.clone().unwrap_or_default(),
        "RepoDigests": repo_digests(r),
        "RepoTags": repo_tags(r),
        "SharedSize": -1,
        "Size": r.size,
    })
}

/// `GET /images/{name}/json`.
pub(crate) fn inspect(r: &ImageRecord) -> Value {
    let c = &r.config;
    let config = docker_config(serde_json::to_value(&c.config).unwrap_or_else(|_| json!({})));
    // dockerd 20.10 still shows the image's `container_config` (the build step's container;
    // all empty for an imported image). Compose v1 reads its Volumes when it recreates.
    let mut container_config = docker_config(
        c.extra
            .get("container_config")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({})),
    );
    if let Value::Object(m) = &mut container_config {
        m.entry("Volumes").or_insert(Value::Null);
    }
    json!({
        "Id": r.id,
        "RepoTags": repo_tags(r),
        "RepoDigests": repo_digests(r),
        "Parent": r.parent.clone().unwrap_or_default(),
        "Comment": c.comment,
        "Container": c.extra.get("container").and_then(Value::as_str).unwrap_or_default(),
        "ContainerConfig": container_config,
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

/// An image's config with the fields dockerd always shows, empty when the image has none.
fn docker_config(mut config: Value) -> Value {
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
    config
}

/// `GET /images/{name}/history`.
pub(crate) fn history(items: &[HistoryItem]) -> Value {
    items
        .iter()
        .map(|h| {
            json!({
                "Id": h.id.as_deref().unwrap_or("<missing>"),
                "Created": h.created,
                "CreatedBy": h.created_by,
                "Tags": h.tags,
                "Size": h.size,
                "Comment": h.comment,
            })
        })
        .collect()
}

/// The progress line of `POST /images/create?fromSrc=-`.
pub(crate) fn imported(id: &str) -> Vec<Value> {
    vec![json!({ "status": id })]
}

/// The progress lines of `POST /images/load`.
pub(crate) fn loaded(images: Vec<LoadedImage>) -> Vec<Value> {
    let mut lines = Vec::new();
    for image in images {
        if image.tags.is_empty() {
            lines.push(json!({ "stream": format!("Loaded image ID: {}\n", image.id) }));
        }
        for t in image.tags {
            lines.push(json!({ "stream": format!("Loaded image: {t}\n") }));
        }
    }
    lines
}

/// `DELETE /images/{name}`.
pub(crate) fn deleted(results: Vec<DeleteResult>) -> Vec<Value> {
    results
        .into_iter()
        .map(|r| match r {
            DeleteResult::Untagged(t) => json!({ "Untagged": t }),
            DeleteResult::Deleted(id) => json!({ "Deleted": id }),
        })
        .collect()
}

/// `POST /images/prune`.
pub(crate) fn pruned(results: Vec<DeleteResult>, reclaimed: u64) -> Value {
    json!({
        "ImagesDeleted": deleted(results),
        "SpaceReclaimed": reclaimed,
    })
}
