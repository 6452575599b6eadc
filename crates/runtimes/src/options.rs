use serde::Serialize;

use crate::RuntimeError;

/// Options of the runc shim (`containerd.runc.v1.Options`), as typed values. The containerd
/// layer encodes them into the protobuf message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuncOptions {
    #[serde(skip_serializing_if = "is_false")]
    pub no_pivot_root: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub no_new_keyring: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub shim_cgroup: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub io_uid: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub io_gid: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub binary_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub root: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub criu_path: String,
    #[serde(skip_serializing_if = "is_false")]
    pub systemd_cgroup: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub criu_image_path: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub criu_work_path: String,
}

/// `runtimeoptions.v1.Options`, the generic options cri-containerd also uses for shims other
/// than runc's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenericOptions {
    pub type_url: String,
    pub config_path: String,
}

/// Typed shim options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ShimOptions {
    Runc(RuncOptions),
    Generic(GenericOptions),
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A daemon.json `options` key matches a field when it is the field's name in PascalCase,
/// all lower-case, all upper-case or with a lower-case first letter (dockerd's tolerance);
/// snake_case does not match. Unknown keys are ignored, as in dockerd.
fn key_is(key: &str, field: &str) -> bool {
    let mut camel = field.to_string();
    if let Some(first) = camel.get_mut(0..1) {
        first.make_ascii_lowercase();
    }
    key == field
        || key == camel
        || key == field.to_ascii_lowercase()
        || key == field.to_ascii_uppercase()
}

fn as_bool(name: &str, key: &str, v: &serde_json::Value) -> Result<bool, RuntimeError> {
    v.as_bool().ok_or_else(|| RuntimeError::BadOption {
        name: name.to_string(),
        key: key.to_string(),
        reason: format!("expected a boolean, got {v}"),
    })
}
fn as_string(name: &str, key: &str, v: &serde_json::Value) -> Result<String, RuntimeError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| RuntimeError::BadOption {
            name: name.to_string(),
            key: key.to_string(),
            reason: format!("expected a string, got {v}"),
        })
}
fn as_u32(name: &str, key: &str, v: &serde_json::Value) -> Result<u32, RuntimeError> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| RuntimeError::BadOption {
            name: name.to_string(),
            key: key.to_string(),
            reason: format!("expected a number from 0 to {}, got {v}", u32::MAX),
        })
}

impl ShimOptions {
    /// Converts a runtime's `options` object for the shim `runtime_type`: runc options for the
    /// runc shims, generic options for every other shim.
    pub fn from_json(
        name: &str,
        runtime_type: &str,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<ShimOptions, RuntimeError> {
        if matches!(
            runtime_type,
            "io.containerd.runc.v1" | "io.containerd.runc.v2"
        ) {
            let mut o = RuncOptions::default();
            for (key, v) in options {
                if key_is(key, "NoPivotRoot") {
                    o.no_pivot_root = as_bool(name, key, v)?;
                } else if key_is(key, "NoNewKeyring") {
                    o.no_new_keyring = as_bool(name, key, v)?;
                } else if key_is(key, "ShimCgroup") {
                    o.shim_cgroup = as_string(name, key, v)?;
                } else if key_is(key, "IoUid") {
                    o.io_uid = as_u32(name, key, v)?;
                } else if key_is(key, "IoGid") {
                    o.io_gid = as_u32(name, key, v)?;
                } else if key_is(key, "BinaryName") {
                    o.binary_name = as_string(name, key, v)?;
                } else if key_is(key, "Root") {
                    o.root = as_string(name, key, v)?;
                } else if key_is(key, "CriuPath") {
                    o.criu_path = as_string(name, key, v)?;
                } else if key_is(key, "SystemdCgroup") {
                    o.systemd_cgroup = as_bool(name, key, v)?;
                } else if key_is(key, "CriuImagePath") {
                    o.criu_image_path = as_string(name, key, v)?;
                } else if key_is(key, "CriuWorkPath") {
                    o.criu_work_path = as_string(name, key, v)?;
                }
            }
            Ok(ShimOptions::Runc(o))
        } else {
            let mut o = GenericOptions::default();
            for (key, v) in options {
                if key_is(key, "TypeUrl") {
                    o.type_url = as_string(name, key, v)?;
                } else if key_is(key, "ConfigPath") {
                    o.config_path = as_string(name, key, v)?;
                }
            }
            Ok(ShimOptions::Generic(o))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn runc_options_accept_dockerds_key_spellings() {
        let o = ShimOptions::from_json(
            "r",
            "io.containerd.runc.v2",
            &map(
                json!({"IoUid": 42, "ioGid": 7, "binaryname": "crun", "SYSTEMDCGROUP": true,
                        "io_uid": 99, "Unknown": 1}),
            ),
        )
        .unwrap();
        assert_eq!(
            o,
            ShimOptions::Runc(RuncOptions {
                io_uid: 42,
                io_gid: 7,
                binary_name: "crun".into(),
                systemd_cgroup: true,
                ..RuncOptions::default()
            })
        );
    }

    #[test]
    fn other_shims_get_generic_options() {
        let o = ShimOptions::from_json(
            "gvisor",
            "io.containerd.runsc.v1",
            &map(json!({"TypeUrl": "io.containerd.runsc.v1.options", "ConfigPath": "/x.toml"})),
        )
        .unwrap();
        assert_eq!(
            o,
            ShimOptions::Generic(GenericOptions {
                type_url: "io.containerd.runsc.v1.options".into(),
                config_path: "/x.toml".into()
            })
        );
    }

    #[test]
    fn wrong_option_types_are_refused() {
        let err = ShimOptions::from_json("r", "io.containerd.runc.v2", &map(json!({"IoUid": "x"})))
            .unwrap_err();
        assert!(
            err.to_string().contains("runtime r: invalid option IoUid"),
            "{err}"
        );
    }
}
