//! Volumes as dockerd shows them.

use berth_daemon::{Volume, VolumesPruned};
use serde_json::{Value, json};

/// One volume: `GET /volumes/{name}`, an entry of `GET /volumes`, the answer to a create.
pub(crate) fn volume(v: &Volume) -> Value {
    let map_or_null = |m: &std::collections::BTreeMap<String, String>| {
        if m.is_empty() { Value::Null } else { json!(m) }
    };
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": map_or_null(&v.labels),
        "Mountpoint": v.mountpoint.display().to_string(),
        "Name": v.name,
        "Options": map_or_null(&v.options),
        "Scope": "local",
    })
}

/// A `system df` entry: the volume with its size and users.
pub(crate) fn with_usage(v: &Volume, size: u64, ref_count: usize) -> Value {
    let mut out = volume(v);
    out["UsageData"] = json!({"Size": size, "RefCount": ref_count});
    out
}

/// `GET /volumes`.
pub(crate) fn list(vs: &[Volume]) -> Value {
    json!({
        "Volumes": vs.iter().map(volume).collect::<Vec<_>>(),
        // No warnings: Go's nil list, as dockerd answers.
        "Warnings": null,
    })
}

/// `POST /volumes/prune`.
pub(crate) fn pruned(p: &VolumesPruned) -> Value {
    json!({
        "VolumesDeleted": p.names,
        "SpaceReclaimed": p.space_reclaimed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_is_dockerds() {
        let v = Volume {
            name: "v1".into(),
            driver: "local".into(),
            labels: [("a".to_string(), "b".to_string())].into(),
            options: Default::default(),
            created_at: "2026-12-01T21:21:23Z".into(),
            anonymous: false,
            mountpoint: "/d/volumes/v1/_data".into(),
        };
        assert_eq!(
            volume(&v).to_string(),
            r#"{"CreatedAt":"2026-12-01T21:21:23Z","Driver":"local","Labels":{"a":"b"},"Mountpoint":"/d/volumes/v1/_data","Name":"v1","Options":null,"Scope":"local"}"#
        );
        assert_eq!(
            with_usage(&v, 3, 1)["UsageData"],
            json!({"Size": 3, "RefCount": 1})
        );
    }
}
