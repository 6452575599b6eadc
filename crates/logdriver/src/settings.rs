//! `HostConfig.LogConfig` as dockerd checks it: which drivers exist, which options each
//! takes, and what their values may be.

use std::collections::BTreeMap;

use crate::Format;

/// The drivers berth writes (or, for `none`, does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    JsonFile,
    Local,
    None,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::JsonFile => "json-file",
            Driver::Local => "local",
            Driver::None => "none",
        }
    }

    /// The on-disk format, `None` for a driver that keeps nothing.
    pub fn format(self) -> Option<Format> {
        match self {
            Driver::JsonFile => Some(Format::Json),
            Driver::Local => Some(Format::Local),
            Driver::None => None,
        }
    }
}

/// dockerd's built-in drivers that ship logs elsewhere; berth refuses them by name.
const ELSEWHERE: &[&str] = &[
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// Options every driver but `none` takes besides its own (dockerd's `ValidateLogOpts`).
const COMMON: &[&str] = &["mode", "max-buffer-size"];

/// The options of `json-file` and `local` (the attribute ones are accepted and unused).
const FILE_OPTS: &[&str] = &[
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];

/// A log configuration dockerd would refuse, with dockerd's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptError {
    #[error("error looking up logging plugin {0}: plugin \"{0}\" not found")]
    UnknownDriver(String),
    #[error("logging driver {0} is not supported by berth")]
    Unsupported(String),
    #[error("unknown log opt '{0}' for json-file log driver")]
    UnknownJsonOpt(String),
    #[error("unknown log opt '{0}' for log driver local")]
    UnknownLocalOpt(String),
    #[error("logger: logging mode not supported: {0}")]
    Mode(String),
    #[error("logger: max-buffer-size option is only supported with 'mode=non-blocking'")]
    BufferSizeNeedsNonBlocking,
    #[error("error parsing option max-buffer-size: {0}")]
    BufferSize(String),
    /// A value Go's parsers refuse, in their words (`invalid size: 'abc'`,
    /// `strconv.Atoi: parsing "x": invalid syntax`).
    #[error("{0}")]
    Value(String),
    #[error("invalid value for {key}: {value}: {reason}")]
    LocalValue {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid boolean value for compress: {0}")]
    LocalCompress(String),
    #[error("max-size must be a positive number")]
    MaxSizeNotPositive,
    #[error("max-file cannot be less than 1")]
    MaxFileBelowOne,
    #[error("compress cannot be true when max-file is less than 2 or max-size is not set")]
    CompressWithoutRotation,
    #[error("max-size must not be negative")]
    LocalMaxSizeNegative,
    #[error("max-file must not be negative")]
    LocalMaxFileNegative,
    #[error("compression cannot be enabled when max file count is 1")]
    LocalCompressOneFile,
}

/// A checked log configuration: what the writer does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub driver: Driver,
    /// Rotate once the file holds this many bytes; `None`: never.
    pub max_size: Option<u64>,
    /// Files kept, the current one included (at least 1).
    pub max_file: u32,
    /// Whether rotated files are gzipped.
    pub compress: bool,
}

impl LogSettings {
    /// Checks a driver name and its options as dockerd does (its create-time option check
    /// and the driver's own checks at start, all at once here). An empty name is an error
    /// for the caller to avoid: the daemon's default fills it first.
    pub fn parse(driver: &str, opts: &BTreeMap<String, String>) -> Result<LogSettings, OptError> {
        let driver = match driver {
            "json-file" => Driver::JsonFile,
            "local" => Driver::Local,
            "none" => Driver::None,
            d if ELSEWHERE.contains(&d) => return Err(OptError::Unsupported(d.to_string())),
            d => return Err(OptError::UnknownDriver(d.to_string())),
        };
        if driver == Driver::None {
            return Ok(LogSettings {
                driver,
                max_size: None,
                max_file: 1,
                compress: false,
            });
        }
        let mode = opts.get("mode").map(String::as_str).unwrap_or("");
        if !matches!(mode, "" | "blocking" | "non-blocking") {
            return Err(OptError::Mode(mode.to_string()));
        }
        if let Some(s) = opts.get("max-buffer-size") {
            if mode != "non-blocking" {
                return Err(OptError::BufferSizeNeedsNonBlocking);
            }
            parse_ram_size(s).map_err(OptError::BufferSize)?;
        }
        for key in opts.keys() {
            if !COMMON.contains(&key.as_str()) && !FILE_OPTS.contains(&key.as_str()) {
                return Err(match driver {
                    Driver::Local => OptError::UnknownLocalOpt(key.clone()),
                    _ => OptError::UnknownJsonOpt(key.clone()),
                });
            }
        }
        match driver {
            Driver::Local => local(opts),
            _ => json_file(opts),
        }
    }

    /// Whether the writer rotates at all.
    pub fn rotates(&self) -> bool {
        self.max_size.is_some()
    }
}

/// jsonfilelog's `New`: no limit, one file, no compression unless told.
fn json_file(opts: &BTreeMap<String, String>) -> Result<LogSettings, OptError> {
    let max_size = match opts.get("max-size") {
        None => None,
        Some(v) => {
            let n = parse_human_size(v).map_err(OptError::Value)?;
            if n <= 0 {
                return Err(OptError::MaxSizeNotPositive);
            }
            Some(n as u64)
        }
    };
    let max_file = match opts.get("max-file") {
        None => 1,
        Some(v) => {
            let n = atoi(v).map_err(OptError::Value)?;
            if n < 1 {
                return Err(OptError::MaxFileBelowOne);
            }
            u32::try_from(n).unwrap_or(u32::MAX)
        }
    };
    let compress = match opts.get("compress") {
        None => false,
        Some(v) => parse_bool(v).map_err(OptError::Value)?,
    };
    if compress && (max_file == 1 || max_size.is_none()) {
        return Err(OptError::CompressWithoutRotation);
    }
    Ok(LogSettings {
        driver: Driver::JsonFile,
        max_size,
        max_file,
        compress,
    })
}

/// The local driver's `newConfig`: 20 MB (binary), 5 files, compressed, unless told.
fn local(opts: &BTreeMap<String, String>) -> Result<LogSettings, OptError> {
    let value = |key: &'static str, value: &str, reason: String| OptError::LocalValue {
        key,
        value: value.to_string(),
        reason,
    };
    let max_size = match opts.get("max-size") {
        None => 20 * 1024 * 1024,
        Some(v) => parse_human_size(v).map_err(|r| value("max-size", v, r))?,
    };
    let max_file = match opts.get("max-file") {
        None => 5,
        Some(v) => atoi(v).map_err(|r| value("max-file", v, r))?,
    };
    let compress = match opts.get("compress") {
        None => true,
        Some(v) => parse_bool(v).map_err(OptError::LocalCompress)?,
    };
    if max_size < 0 {
        return Err(OptError::LocalMaxSizeNegative);
    }
    if max_file < 0 {
        return Err(OptError::LocalMaxFileNegative);
    }
    if compress && max_file <= 1 {
        return Err(OptError::LocalCompressOneFile);
    }
    Ok(LogSettings {
        driver: Driver::Local,
        // 0 is no limit here (dockerd's writer would rotate before every entry).
        max_size: (max_size > 0).then_some(max_size as u64),
        max_file: u32::try_from(max_file.max(1)).unwrap_or(u32::MAX),
        compress,
    })
}

/// go-units' `FromHumanSize`: a decimal number, an optional space, an optional unit
/// (`k`, `m`, `g`, `t`, `p`: powers of 1000) with an optional `b` or `ib`, or just `b`.
pub fn parse_human_size(s: &str) -> Result<i64, String> {
    parse_size(s, 1000.0)
}

/// go-units' `RAMInBytes`: the same with powers of 1024.
fn parse_ram_size(s: &str) -> Result<i64, String> {
    parse_size(s, 1024.0)
}

fn parse_size(s: &str, base: f64) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(invalid());
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size = parse_float(num)?;
    if size < 0.0 {
        return Err(invalid());
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad_suffix = || format!("invalid suffix: '{}'", sfx.to_lowercase());
    if sfx.len() > 3 {
        return Err(bad_suffix());
    }
    let sfx = sfx.to_lowercase();
    let b = sfx.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 {
            Err(bad_suffix())
        } else {
            Ok(size as i64)
        };
    }
    let power = match b[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(bad_suffix()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &sfx[1..] != "ib") {
        return Err(bad_suffix());
    }
    Ok((size * base.powi(power)) as i64)
}

/// Go's `strconv.ParseFloat` for what a size may hold: decimal digits with a point.
fn parse_float(s: &str) -> Result<f64, String> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+'))
        && s.bytes().any(|c| c.is_ascii_digit());
    match s.parse::<f64>() {
        Ok(v) if plain => Ok(v),
        _ => Err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
    }
}

/// Go's `strconv.Atoi`, with its messages.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

/// Go's `strconv.ParseBool`, with its message.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(driver: &str, opts: &[(&str, &str)]) -> Result<LogSettings, String> {
        let opts = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LogSettings::parse(driver, &opts).map_err(|e| e.to_string())
    }

    #[test]
    fn drivers() {
        assert_eq!(check("json-file", &[]).unwrap().driver, Driver::JsonFile);
        assert_eq!(
            check("none", &[("anything", "x")]).unwrap().driver,
            Driver::None
        );
        assert_eq!(
            check("nosuch", &[]).unwrap_err(),
            "error looking up logging plugin nosuch: plugin \"nosuch\" not found"
        );
        assert_eq!(
            check("syslog", &[]).unwrap_err(),
            "logging driver syslog is not supported by berth"
        );
    }

    #[test]
    fn json_file_options() {
        let s = check("json-file", &[("max-size", "1k"), ("max-file", "2")]).unwrap();
        assert_eq!((s.max_size, s.max_file, s.compress), (Some(1000), 2, false));
        let s = check("json-file", &[]).unwrap();
        assert_eq!((s.max_size, s.max_file, s.compress), (None, 1, false));
        // dockerd keeps a max-file without a max-size: it just never rotates.
        assert_eq!(
            check("json-file", &[("max-file", "3")]).unwrap().max_file,
            3
        );
        for (opts, want) in [
            (
                vec![("nosuchopt", "1")],
                "unknown log opt 'nosuchopt' for json-file log driver",
            ),
            (vec![("max-size", "abc")], "invalid size: 'abc'"),
            (vec![("max-size", "-1")], "invalid size: '-1'"),
            (vec![("max-size", "10x")], "invalid suffix: 'x'"),
            (
                vec![("max-size", "0")],
                "max-size must be a positive number",
            ),
            (
                vec![("max-file", "x")],
                "strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (vec![("max-file", "0")], "max-file cannot be less than 1"),
            (
                vec![("compress", "yes")],
                "strconv.ParseBool: parsing \"yes\": invalid syntax",
            ),
            (
                vec![("compress", "true"), ("max-file", "3")],
                "compress cannot be true when max-file is less than 2 or max-size is not set",
            ),
            (
                vec![("compress", "true"), ("max-size", "1m")],
                "compress cannot be true when max-file is less than 2 or max-size is not set",
            ),
            (
                vec![("mode", "fast")],
                "logger: logging mode not supported: fast",
            ),
            (
                vec![("max-buffer-size", "1m")],
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
            ),
        ] {
            assert_eq!(check("json-file", &opts).unwrap_err(), want, "{opts:?}");
        }
        let s = check(
            "json-file",
            &[
                ("compress", "1"),
                ("max-size", "1m"),
                ("max-file", "2"),
                ("tag", "t"),
            ],
        )
        .unwrap();
        assert!(s.compress);
        assert!(
            check(
                "json-file",
                &[("mode", "non-blocking"), ("max-buffer-size", "4m")]
            )
            .is_ok()
        );
    }

    #[test]
    fn local_options_and_defaults() {
        let s = check("local", &[]).unwrap();
        assert_eq!(
            (s.max_size, s.max_file, s.compress),
            (Some(20 * 1024 * 1024), 5, true)
        );
        let s = check("local", &[("max-size", "1k"), ("max-file", "2")]).unwrap();
        assert_eq!((s.max_size, s.max_file), (Some(1000), 2));
        for (opts, want) in [
            (
                vec![("nosuchopt", "1")],
                "unknown log opt 'nosuchopt' for log driver local",
            ),
            (
                vec![("max-size", "abc")],
                "invalid value for max-size: abc: invalid size: 'abc'",
            ),
            (
                vec![("max-file", "x")],
                "invalid value for max-file: x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (vec![("max-file", "-1")], "max-file must not be negative"),
            (
                vec![("max-file", "1")],
                "compression cannot be enabled when max file count is 1",
            ),
            (
                vec![("compress", "maybe")],
                "invalid boolean value for compress: strconv.ParseBool: parsing \"maybe\": invalid syntax",
            ),
        ] {
            assert_eq!(check("local", &opts).unwrap_err(), want, "{opts:?}");
        }
        let s = check("local", &[("max-file", "1"), ("compress", "false")]).unwrap();
        assert_eq!((s.max_file, s.compress), (1, false));
    }

    #[test]
    fn sizes_as_go_units() {
        for (s, n) in [
            ("1", 1),
            ("1k", 1000),
            ("1K", 1000),
            ("1kb", 1000),
            ("1KiB", 1000),
            ("2m", 2_000_000),
            ("1.5g", 1_500_000_000),
            ("10 MB", 10_000_000),
            ("3b", 3),
        ] {
            assert_eq!(parse_human_size(s), Ok(n), "{s}");
        }
        assert_eq!(parse_ram_size("1k"), Ok(1024));
        for bad in ["", "abc", "k", "1kbb", "1bb", "1.2.3k"] {
            assert!(parse_human_size(bad).is_err(), "{bad}");
        }
    }
}
