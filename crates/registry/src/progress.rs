//! dockerd's progress messages (`pkg/jsonmessage`): one JSON object per line with `status`,
//! `progressDetail` {current, total}, the rendered `progress` bar and `id`.

use serde::Serialize;

/// Where a pull's messages go; a send that fails means the client went away.
pub type ProgressSink = tokio::sync::mpsc::UnboundedSender<Progress>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Detail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// One message. Layer messages carry an (empty) `progressDetail`; the repository-wide
/// ones (`Pulling from`, `Digest:`, `Status:`) do not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
    /// Text for the client's terminal (`docker build`'s step lines and RUN output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

impl Progress {
    /// Text shown as it comes (`{"stream": ...}`).
    pub fn text(text: impl Into<String>) -> Progress {
        Progress {
            stream: Some(text.into()),
            ..Default::default()
        }
    }

    /// A message about the whole operation: `Digest: ...`, `Status: ...`.
    pub fn status(status: impl Into<String>) -> Progress {
        Progress {
            status: Some(status.into()),
            ..Default::default()
        }
    }

    /// A repository-wide message with an id (`Pulling from t/busybox`, id = the tag).
    pub fn with_id(status: impl Into<String>, id: impl Into<String>) -> Progress {
        Progress {
            id: Some(id.into()),
            ..Progress::status(status)
        }
    }

    /// A layer's step: `Pulling fs layer`, `Waiting`, `Pull complete`, ...
    pub fn layer(id: &str, status: &str) -> Progress {
        Progress {
            detail: Some(Detail::default()),
            ..Progress::with_id(status, id)
        }
    }

    /// A layer's byte count (`Downloading`, `Extracting`), with dockerd's bar.
    pub fn bytes(id: &str, status: &str, current: u64, total: u64) -> Progress {
        Progress {
            detail: Some(Detail {
                current: Some(current),
                total: Some(total),
            }),
            progress: Some(bar(current, total)),
            ..Progress::with_id(status, id)
        }
    }
}

/// Go's `units.HumanSize`: decimal units, four significant digits (`%.4g`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size < 1.0 {
        1
    } else {
        size.log10().floor() as i32 + 1
    };
    let decimals = (4 - digits).max(0) as usize;
    let mut s = format!("{size:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[unit])
}

/// `JSONProgress.String()` as dockerd renders it (width 200, no time left).
pub fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let pct = ((current as f64 / total as f64 * 100.0) as u64 / 2).min(50) as usize;
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_gos_human_sizes() {
        assert_eq!(human_size(123), "123B");
        assert_eq!(human_size(32768), "32.77kB");
        assert_eq!(human_size(1_068_867), "1.069MB");
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(0), "0B");
    }

    #[test]
    fn messages_are_dockerds_json() {
        // From pull.txt, dockerd 20.10.
        let m = Progress::bytes("a97bd1675e4a", "Downloading", 32768, 1_068_867);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"status":"Downloading","progressDetail":{"current":32768,"total":1068867},"progress":"[=>                                                 ]  32.77kB/1.069MB","id":"a97bd1675e4a"}"#
        );
        let m = Progress::bytes("8fb19bf1160c", "Extracting", 123, 123);
        assert_eq!(
            m.progress.as_deref(),
            Some("[==================================================>]     123B/123B")
        );
        assert_eq!(
            serde_json::to_string(&Progress::layer("8fb19bf1160c", "Waiting")).unwrap(),
            r#"{"status":"Waiting","progressDetail":{},"id":"8fb19bf1160c"}"#
        );
        assert_eq!(
            serde_json::to_string(&Progress::with_id("Pulling from t/busybox", "1")).unwrap(),
            r#"{"status":"Pulling from t/busybox","id":"1"}"#
        );
        assert_eq!(
            serde_json::to_string(&Progress::status("Status: Image is up to date for x:1"))
                .unwrap(),
            r#"{"status":"Status: Image is up to date for x:1"}"#
        );
    }
}
