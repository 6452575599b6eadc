//! Request bodies: create, exec create and start, update and commit. Bodies are lenient
//! (unknown fields are ignored, as newer clients send more); a malformed one is a 400 that
//! names where it went wrong (`invalid JSON at HostConfig.Memory: ...`).

use berth_daemon::{ExecConfig, UpdateRequest};
use berth_model::{ContainerConfig, HostConfig, NetworkingConfig};
use serde::Deserialize;
use serde_json::Value;

use crate::ApiError;

fn blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Parses a JSON body; a malformed one is a 400 naming where it went wrong.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if blank(body) {
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

/// The body of `POST /containers/create`: Config fields at the top, plus `HostConfig` (and
/// `NetworkingConfig`: the networks to join). Each part is read on its own so a
/// wrong type is reported with its full path (`HostConfig.Memory`, `Image`).
pub(crate) fn create(
    body: &[u8],
) -> Result<(ContainerConfig, HostConfig, NetworkingConfig), ApiError> {
    let v: Value = parse(body)?;
    let Value::Object(mut top) = v else {
        return Err(ApiError::bad_request(
            "invalid JSON: the body must be a JSON object",
        ));
    };
    let host = top.remove("HostConfig");
    let networking = top.remove("NetworkingConfig");
    let config: ContainerConfig = from_value_at(Value::Object(top), "")?;
    let host: HostConfig = match host {
        None | Some(Value::Null) => HostConfig::default(),
        Some(h) => {
            let empty_lists: Vec<String> = h
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| {
                    v.as_array().is_some_and(Vec::is_empty)
                        || v.as_object().is_some_and(|o| o.is_empty())
                })
                .map(|(k, _)| k.clone())
                .collect();
            let mut host: HostConfig = from_value_at(h, "HostConfig.")?;
            host.empty_lists = empty_lists;
            host.extra.remove("BerthEmptyLists");
            host
        }
    };
    let networking: NetworkingConfig = match networking {
        None | Some(Value::Null) => NetworkingConfig::default(),
        Some(n) => from_value_at(n, "NetworkingConfig.")?,
    };
    Ok((config, host, networking))
}

/// The body of `POST /containers/{id}/exec`.
pub(crate) fn exec(body: &[u8]) -> Result<ExecConfig, ApiError> {
    parse(body)
}

/// The body of `POST /exec/{id}/start`; an empty one is all defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ExecStart {
    pub detach: bool,
    pub tty: bool,
}

pub(crate) fn exec_start(body: &[u8]) -> Result<ExecStart, ApiError> {
    if blank(body) {
        return Ok(ExecStart::default());
    }
    parse(body)
}

/// The body of `POST /containers/{id}/update`.
pub(crate) fn update(body: &[u8]) -> Result<UpdateRequest, ApiError> {
    parse(body)
}

/// The body of `POST /commit`: Config fields over the container's, or nothing (empty or
/// `null`).
pub(crate) fn commit(body: &[u8]) -> Result<Option<ContainerConfig>, ApiError> {
    if blank(body) || body == b"null" {
        return Ok(None);
    }
    parse(body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_type_is_a_400_naming_the_field() {
        let parse = |b: &[u8]| create(b).unwrap_err();
        let e = parse(br#"{"Image": "x", "HostConfig": {"Memory": "lots"}}"#);
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
        assert!(e.message.contains("at HostConfig.Memory:"), "{}", e.message);
        assert!(parse(br#"{"Image": 5}"#).message.contains("at Image:"));
        assert!(
            parse(br#"{"Image": "x", "Env": [1]}"#)
                .message
                .contains("at Env[0]:")
        );
        assert!(parse(br#"[1]"#).message.contains("must be a JSON object"));
    }

    #[test]
    fn empty_bodies() {
        assert!(exec(b"  ").unwrap_err().message.contains("body is empty"));
        assert!(!exec_start(b"").unwrap().detach);
        assert!(exec_start(br#"{"Detach": true}"#).unwrap().detach);
        assert!(commit(b"null").unwrap().is_none());
        assert!(commit(br#"{"Cmd": ["sh"]}"#).unwrap().is_some());
    }
}
