use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_config::{DaemonConfig, RuntimeEntry};
use serde::Serialize;

use crate::{RuncOptions, RuntimeError, ShimOptions, wrapper};

/// The containerd shim every runc-compatible runtime runs under.
pub const STOCK_SHIM: &str = "io.containerd.runc.v2";
const STOCK_NAMES: [&str; 2] = ["runc", STOCK_SHIM];

/// Facts from outside the user config that resolution needs.
#[derive(Debug, Clone)]
pub struct DeriveContext {
    /// Where wrapper scripts go (`<data-root>/runtimes`), already created.
    pub runtimes_dir: PathBuf,
    /// `RuncOptions.root` for every runc-compatible runtime (`<exec-root>/runtime-runc`).
    pub runc_root: PathBuf,
    /// Whether runc should use the systemd cgroup driver.
    pub systemd_cgroup: bool,
    /// `DOCKER_RAMDISK`-style no-pivot-root.
    pub no_pivot_root: bool,
}

impl DeriveContext {
    /// berthd's context: wrapper scripts in `runtimes_dir`, runc's state in `runc_root`, the
    /// cgroupfs driver (berth has no systemd driver), and no-pivot-root exactly when
    /// dockerd's would be: `DOCKER_RAMDISK` is set and not empty (dockerd's
    /// `NoPivotRoot: os.Getenv("DOCKER_RAMDISK") != ""`; there is no flag or daemon.json key
    /// for it).
    pub fn new(runtimes_dir: impl Into<PathBuf>, runc_root: impl Into<PathBuf>) -> DeriveContext {
        DeriveContext {
            runtimes_dir: runtimes_dir.into(),
            runc_root: runc_root.into(),
            systemd_cgroup: false,
            no_pivot_root: ramdisk(std::env::var_os("DOCKER_RAMDISK").as_deref()),
        }
    }
}

/// Whether a `DOCKER_RAMDISK` value asks for no-pivot-root: any non-empty value does.
fn ramdisk(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// What a runtime name resolves to: the shim containerd runs, and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedRuntime {
    pub shim: String,
    pub options: Option<ShimOptions>,
}

#[derive(Debug, Clone)]
struct Configured {
    resolved: ResolvedRuntime,
    /// For `path` + `runtimeArgs` runtimes: the user's binary, looked up on every use.
    preflight: Option<String>,
}

/// How `docker info` shows one runtime.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(rename = "runtimeArgs", skip_serializing_if = "Option::is_none")]
    pub runtime_args: Option<Vec<String>>,
    #[serde(rename = "runtimeType", skip_serializing_if = "Option::is_none")]
    pub runtime_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The derived runtime set: the resolved default name plus every configured runtime (the two
/// stock ones and the user's). Built whole by `derive`, never changed afterwards.
#[derive(Debug, Clone)]
pub struct Runtimes {
    default: String,
    configured: BTreeMap<String, Configured>,
    info: BTreeMap<String, RuntimeInfo>,
}

impl Runtimes {
    /// Validates the user's runtimes in dockerd's order and derives the set. Wrapper scripts
    /// for `path` + `runtimeArgs` runtimes are written (content-addressed, never rewritten).
    pub fn derive(config: &DaemonConfig, ctx: &DeriveContext) -> Result<Runtimes, RuntimeError> {
        if config.runtimes.contains_key("runc") {
            return Err(RuntimeError::RuncReserved);
        }
        let stock_opts = |binary: &str| RuncOptions {
            binary_name: binary.to_string(),
            root: ctx.runc_root.display().to_string(),
            systemd_cgroup: ctx.systemd_cgroup,
            no_pivot_root: ctx.no_pivot_root,
            ..RuncOptions::default()
        };
        let mut configured = BTreeMap::new();
        let mut info = BTreeMap::new();
        for name in STOCK_NAMES {
            configured.insert(
                name.to_string(),
                Configured {
                    resolved: ResolvedRuntime {
                        shim: STOCK_SHIM.to_string(),
                        options: Some(ShimOptions::Runc(stock_opts("runc"))),
                    },
                    preflight: None,
                },
            );
            info.insert(
                name.to_string(),
                RuntimeInfo {
                    path: Some("runc".to_string()),
                    runtime_args: None,
                    runtime_type: None,
                    options: None,
                },
            );
        }

        for (name, entry) in &config.runtimes {
            let c = derive_one(name, entry, ctx, &stock_opts)?;
            configured.insert(name.clone(), c);
            info.insert(
                name.clone(),
                RuntimeInfo {
                    path: entry.path.clone(),
                    runtime_args: entry.args.clone().filter(|a| !a.is_empty()),
                    runtime_type: entry.runtime_type.clone(),
                    options: entry.options.clone().filter(|o| !o.is_empty()),
                },
            );
        }

        let default = match config.default_runtime.as_deref() {
            None | Some("") => "runc".to_string(),
            Some(d) if configured.contains_key(d) || is_permissible_shim_name(d) => d.to_string(),
            Some(d) => return Err(RuntimeError::NoSuchDefault(d.to_string())),
        };
        Ok(Runtimes {
            default,
            configured,
            info,
        })
    }

    /// The name used when a container names none.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// Resolves a runtime name (empty = the default) to its shim and options: a configured
    /// runtime, else a well-formed containerd shim name passed through with no options, else
    /// "unknown or invalid runtime name".
    pub fn get(&self, name: &str) -> Result<ResolvedRuntime, RuntimeError> {
        let name = if name.is_empty() { &self.default } else { name };
        if let Some(c) = self.configured.get(name) {
            if let Some(binary) = &c.preflight {
                look_path(binary).map_err(|source| RuntimeError::Preflight {
                    path: binary.clone(),
                    source,
                })?;
            }
            return Ok(c.resolved.clone());
        }
        if is_permissible_shim_name(name) {
            return Ok(ResolvedRuntime {
                shim: name.to_string(),
                options: None,
            });
        }
        Err(RuntimeError::Unknown(name.to_string()))
    }

    /// Whether `name` is a runtime this set knows or would pass through.
    pub fn resolves(&self, name: &str) -> bool {
        name.is_empty() || self.configured.contains_key(name) || is_permissible_shim_name(name)
    }

    /// Every configured runtime as `docker info` lists it.
    pub fn info(&self) -> &BTreeMap<String, RuntimeInfo> {
        &self.info
    }
}

fn derive_one(
    name: &str,
    entry: &RuntimeEntry,
    ctx: &DeriveContext,
    stock_opts: &dyn Fn(&str) -> RuncOptions,
) -> Result<Configured, RuntimeError> {
    let has_args = entry.args.is_some();
    let has_opts = entry.options.is_some();
    match (&entry.path, &entry.runtime_type) {
        (None, None) => Err(RuntimeError::NeitherPathNorType(name.to_string())),
        (Some(_), Some(_)) => Err(RuntimeError::BothPathAndType(name.to_string())),
        (Some(_), None) if has_opts => Err(RuntimeError::OptionsWithPath(name.to_string())),
        (None, Some(_)) if has_args => Err(RuntimeError::ArgsWithType(name.to_string())),
        (Some(path), None) => {
            let args = entry.args.clone().unwrap_or_default();
            if args.is_empty() {
                return Ok(Configured {
                    resolved: ResolvedRuntime {
                        shim: STOCK_SHIM.to_string(),
                        options: Some(ShimOptions::Runc(stock_opts(path))),
                    },
                    preflight: None,
                });
            }
            let contents = wrapper::wrapper_script_contents(path, &args);
            let script = wrapper::write_wrapper_script(&ctx.runtimes_dir, name, &contents)?;
            Ok(Configured {
                resolved: ResolvedRuntime {
                    shim: STOCK_SHIM.to_string(),
                    options: Some(ShimOptions::Runc(stock_opts(&script.display().to_string()))),
                },
                preflight: Some(path.clone()),
            })
        }
        (None, Some(runtime_type)) => {
            let options = match &entry.options {
                Some(o) if !o.is_empty() => Some(ShimOptions::from_json(name, runtime_type, o)?),
                _ => None,
            };
            Ok(Configured {
                resolved: ResolvedRuntime {
                    shim: runtime_type.clone(),
                    options,
                },
                preflight: None,
            })
        }
    }
}

/// A name containerd can turn into a shim binary by itself: not a path, and at least two
/// dot-separated parts (`io.containerd.kata.v2` → `containerd-shim-kata-v2`).
fn is_permissible_shim_name(name: &str) -> bool {
    if name.is_empty() || name.contains('/') {
        return false;
    }
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 2 && parts.iter().rev().take(2).all(|p| !p.is_empty())
}

/// `exec.LookPath`: an absolute or relative path must exist; a bare name is searched on PATH.
fn look_path(binary: &str) -> std::io::Result<PathBuf> {
    if binary.contains('/') {
        let p = Path::new(binary);
        std::fs::metadata(p)?;
        return Ok(p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{binary}: executable file not found in $PATH"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_config::FileConfig;
    use clap::Parser;

    #[derive(Debug)]
    struct Fixture {
        _dir: tempfile::TempDir,
        ctx: DeriveContext,
    }
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let rt = dir.path().join("runtimes");
        crate::reset_runtimes_dir(&rt).unwrap();
        Fixture {
            ctx: DeriveContext::new(rt, "/run/berth/runtime-runc"),
            _dir: dir,
        }
    }
    fn config(json: &str) -> DaemonConfig {
        let mut c = DaemonConfig::build(
            &berth_config::Flags::try_parse_from(["berthd"]).unwrap(),
            &FileConfig::default(),
        )
        .unwrap();
        let f = FileConfig::parse(json.as_bytes()).unwrap();
        c.runtimes = f.runtimes.unwrap_or_default();
        c.default_runtime = f.default_runtime;
        c
    }
    fn derive(json: &str) -> Result<(Runtimes, Fixture), RuntimeError> {
        let f = fixture();
        Runtimes::derive(&config(json), &f.ctx).map(|r| (r, f))
    }
    fn err(json: &str) -> String {
        derive(json).unwrap_err().to_string()
    }

    #[test]
    fn no_pivot_root_follows_a_non_empty_docker_ramdisk() {
        use std::ffi::OsStr;
        assert!(!ramdisk(None));
        assert!(!ramdisk(Some(OsStr::new(""))));
        assert!(ramdisk(Some(OsStr::new("1"))));
        let ctx = DeriveContext::new("/rt", "/run/berth/runtime-runc");
        assert!(!ctx.systemd_cgroup);
        assert_eq!(ctx.runc_root, PathBuf::from("/run/berth/runtime-runc"));
    }

    #[test]
    fn setup_validation_order_and_messages() {
        let cases = [
            (
                r#"{"runtimes": {"x": {}}}"#,
                "runtime x: either a runtimeType or a path must be configured",
            ),
            (
                r#"{"runtimes": {"x": {"runtimeArgs": ["a"]}}}"#,
                "either a runtimeType or a path",
            ),
            (
                r#"{"runtimes": {"x": {"options": {"a": 1}}}}"#,
                "either a runtimeType or a path",
            ),
            (
                r#"{"runtimes": {"x": {"path": "/p", "runtimeType": "t.v1"}}}"#,
                "runtime x: cannot configure both path and runtimeType for the same runtime",
            ),
            (
                r#"{"runtimes": {"x": {"path": "/p", "options": {"a": 1}}}}"#,
                "runtime x: options cannot be used with a path runtime",
            ),
            (
                r#"{"runtimes": {"x": {"runtimeType": "t.v1", "runtimeArgs": ["a"]}}}"#,
                "runtime x: args cannot be used with a runtimeType runtime",
            ),
            (
                r#"{"runtimes": {"x": {"path": "/p", "runtimeArgs": ["a"], "options": {"a": 1}}}}"#,
                "options cannot be used",
            ),
            (
                r#"{"runtimes": {"x": {"runtimeType": "t.v1", "options": {"a": 1}, "runtimeArgs": ["a"]}}}"#,
                "args cannot be used",
            ),
            (
                r#"{"runtimes": {"x": {"path": "/p", "runtimeArgs": ["a"], "runtimeType": "t.v1", "options": {"a": 1}}}}"#,
                "cannot configure both",
            ),
            (
                r#"{"default-runtime": "notdefined"}"#,
                "specified default runtime 'notdefined' does not exist",
            ),
        ];
        for (json, want) in cases {
            let got = err(json);
            assert!(got.contains(want), "{json}: {got}");
        }
    }

    #[test]
    fn runc_is_reserved() {
        let mut c = config("{}");
        c.runtimes
            .insert("runc".into(), RuntimeEntry::from_path("/x"));
        let f = fixture();
        assert_eq!(
            Runtimes::derive(&c, &f.ctx).unwrap_err().to_string(),
            "runtime name 'runc' is reserved"
        );
    }

    #[test]
    fn acceptable_defaults() {
        for d in ["runc", "io.containerd.runc.v2", "io.containerd.kata.v2"] {
            let (r, _f) = derive(&format!(r#"{{"default-runtime": "{d}"}}"#)).unwrap();
            assert_eq!(r.default_name(), d);
        }
        let (r, _f) = derive(
            r#"{"default-runtime": "missing", "runtimes": {"missing": {"path": "/no/such/bin"}}}"#,
        )
        .unwrap();
        assert_eq!(
            r.default_name(),
            "missing",
            "paths are not checked at setup"
        );
        assert_eq!(derive("{}").unwrap().0.default_name(), "runc");
    }

    #[test]
    fn stock_names_resolve_to_runc_shim() {
        let (r, _f) = derive("{}").unwrap();
        for name in ["", "runc", "io.containerd.runc.v2"] {
            let got = r.get(name).unwrap();
            assert_eq!(got.shim, STOCK_SHIM);
            assert_eq!(
                got.options,
                Some(ShimOptions::Runc(RuncOptions {
                    binary_name: "runc".into(),
                    root: "/run/berth/runtime-runc".into(),
                    ..RuncOptions::default()
                }))
            );
        }
    }

    #[test]
    fn get_runtime_table() {
        let (r, _f) = derive(
            r#"{"runtimes": {
                "my/custom.runtime.v1": {"path": "/bin/true"},
                "withargs": {"path": "/bin/false", "runtimeArgs": ["--version"]},
                "shimwithopts": {"runtimeType": "io.containerd.runc.v2", "options": {"IoUid": 42}},
                "wasmedge": {"runtimeType": "io.containerd.wasmedge.v1"},
                "shimwithpath": {"runtimeType": "/path/to/my/shim"},
                "gvisor": {"runtimeType": "io.containerd.runsc.v1",
                           "options": {"TypeUrl": "io.containerd.runsc.v1.options", "ConfigPath": "/runsc.toml"}}
            }}"#,
        )
        .unwrap();
        for name in ["io.containerd.my-shim.v42", "io.containerd.my-shim"] {
            assert_eq!(
                r.get(name).unwrap(),
                ResolvedRuntime {
                    shim: name.into(),
                    options: None
                }
            );
        }
        for name in [
            "myshim",
            "/path/to/runc",
            "/path/to/io.containerd.runc.v2",
            "my/io.containerd.runc.v2",
        ] {
            assert_eq!(
                r.get(name).unwrap_err().to_string(),
                format!("unknown or invalid runtime name: {name}")
            );
        }
        let custom = r.get("my/custom.runtime.v1").unwrap();
        assert_eq!(custom.shim, STOCK_SHIM);
        assert!(
            matches!(&custom.options, Some(ShimOptions::Runc(o)) if o.binary_name == "/bin/true")
        );
        assert_eq!(
            r.get("shimwithopts").unwrap().options,
            Some(ShimOptions::Runc(RuncOptions {
                io_uid: 42,
                ..RuncOptions::default()
            })),
            "no daemon defaults merged into runtimeType options"
        );
        assert_eq!(r.get("wasmedge").unwrap().options, None);
        assert_eq!(r.get("shimwithpath").unwrap().shim, "/path/to/my/shim");
        assert!(matches!(
            r.get("gvisor").unwrap().options,
            Some(ShimOptions::Generic(g)) if g.config_path == "/runsc.toml"
        ));
        let Some(ShimOptions::Runc(o)) = r.get("withargs").unwrap().options else {
            panic!()
        };
        let script = std::fs::read_to_string(&o.binary_name).unwrap();
        assert!(script.contains("/bin/false --version"), "{script}");
    }

    #[test]
    fn preflight_checks_the_real_binary_only_for_wrapped_runtimes() {
        let (r, _f) = derive(
            r#"{"runtimes": {
                "plain": {"path": "/no/such/runtime"},
                "wrapped": {"path": "/no/such/runtime", "runtimeArgs": ["--x"]}
            }}"#,
        )
        .unwrap();
        assert!(r.get("plain").is_ok());
        let e = r.get("wrapped").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("error while looking up the specified runtime path")
        );
        let RuntimeError::Preflight { source, .. } = e else {
            panic!()
        };
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn reloads_never_touch_earlier_scripts() {
        let f = fixture();
        let first = config(
            r#"{"runtimes": {
                "change-args": {"path": "/bin/true", "runtimeArgs": ["--a"]},
                "dupe": {"path": "/bin/true", "runtimeArgs": ["--a"]},
                "change-path": {"path": "/bin/true", "runtimeArgs": ["--b"]},
                "drop-args": {"path": "/bin/true", "runtimeArgs": ["--c"]},
                "goes-away": {"path": "/bin/true", "runtimeArgs": ["--d"]}
            }}"#,
        );
        let r1 = Runtimes::derive(&first, &f.ctx).unwrap();
        let mut recorded = Vec::new();
        for name in first.runtimes.keys() {
            let Some(ShimOptions::Runc(o)) = r1.get(name).unwrap().options else {
                panic!()
            };
            recorded.push((
                o.binary_name.clone(),
                std::fs::read(&o.binary_name).unwrap(),
            ));
        }
        let second = config(
            r#"{"runtimes": {
                "change-args": {"path": "/bin/true", "runtimeArgs": ["--z"]},
                "dupe": {"path": "/bin/true", "runtimeArgs": ["--a"]},
                "change-path": {"path": "/bin/false", "runtimeArgs": ["--b"]},
                "drop-args": {"path": "/bin/true"}
            }}"#,
        );
        Runtimes::derive(&second, &f.ctx).unwrap();
        for (path, bytes) in recorded {
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{path} changed");
        }
    }

    #[test]
    fn info_lists_stock_and_user_runtimes() {
        let (r, _f) = derive(
            r#"{"runtimes": {"alt": {"path": "/usr/bin/runc"},
                             "args": {"path": "/usr/bin/runc", "runtimeArgs": ["--debug"]},
                             "shim": {"runtimeType": "io.containerd.kata.v2"}}}"#,
        )
        .unwrap();
        let json = serde_json::to_value(r.info()).unwrap();
        assert_eq!(json["runc"]["path"], "runc");
        assert_eq!(json["io.containerd.runc.v2"]["path"], "runc");
        assert_eq!(json["alt"]["path"], "/usr/bin/runc");
        assert_eq!(json["args"]["runtimeArgs"][0], "--debug");
        assert_eq!(json["shim"]["runtimeType"], "io.containerd.kata.v2");
    }

    #[test]
    fn user_entry_replaces_stock_shim_name() {
        let (r, _f) =
            derive(r#"{"runtimes": {"io.containerd.runc.v2": {"path": "/opt/runc"}}}"#).unwrap();
        let Some(ShimOptions::Runc(o)) = r.get("io.containerd.runc.v2").unwrap().options else {
            panic!()
        };
        assert_eq!(o.binary_name, "/opt/runc");
    }
}
