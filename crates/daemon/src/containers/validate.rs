//! The checks dockerd makes before it creates or updates a container, with its messages, so
//! a client's mistake is a 400 at create instead of a failed start.

use std::collections::BTreeSet;
use std::path::Path;

use berth_model::{ContainerConfig, HostConfig};

use crate::CpuFacts;

/// dockerd's `linuxMinMemory`.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// A container configuration dockerd would refuse, with dockerd's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidConfig {
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeWorkingDir(String),
    #[error("invalid environment variable: {0}")]
    EnvName(String),
    #[error("{0} in Healthcheck cannot be less than 1ms")]
    HealthcheckDuration(&'static str),
    #[error("Retries in Healthcheck cannot be negative")]
    HealthcheckRetries,
    /// berth's own label (not dockerd's).
    #[error(
        "invalid value {0:?} for label berth.health-on-failure: use none, kill, restart or stop"
    )]
    HealthOnFailure(String),
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooSmall,
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    #[error("You should always set the Memory limit when using Memoryswap limit, see usage")]
    SwapWithoutMemory,
    #[error("Invalid value: {0}, valid memory swappiness range is 0-100")]
    Swappiness(i64),
    #[error("Minimum memory reservation allowed is 6MB")]
    ReservationTooSmall,
    #[error("Minimum memory limit can not be less than memory reservation limit, see usage")]
    MemoryBelowReservation,
    #[error("Conflicting options: Nano CPUs and CPU Period cannot both be set")]
    NanoCpusAndPeriod,
    #[error("Conflicting options: Nano CPUs and CPU Quota cannot both be set")]
    NanoCpusAndQuota,
    #[error("Range of CPUs is from 0.01 to {0}.00, as there are only {0} CPUs available")]
    NanoCpusRange(usize),
    /// dockerd lets this through to its spec, which fails the start with this text.
    #[error("shares: invalid argument")]
    NegativeCpuShares,
    #[error("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")]
    CpuPeriod,
    #[error("CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    CpuQuota,
    #[error("Invalid value {value} for cpuset {what}")]
    Cpuset {
        what: &'static str,
        value: String,
        #[source]
        source: ListError,
    },
    #[error("Requested CPUs are not available - requested {requested}, available: {available}")]
    CpusUnavailable {
        requested: String,
        available: String,
    },
    #[error(
        "Requested memory nodes are not available - requested {requested}, available: {available}"
    )]
    MemsUnavailable {
        requested: String,
        available: String,
    },
    #[error("Range of blkio weight is from 10 to 1000")]
    BlkioWeight,
    #[error("SHM size can not be less than 0")]
    ShmSize,
    #[error("Invalid value {0}, range for oom score adj is [-1000, 1000]")]
    OomScoreAdj(i64),
    #[error("invalid IPC mode: {0}")]
    IpcMode(String),
    #[error("invalid PID mode: {0}")]
    PidMode(String),
    /// `container:<name>` naming no container (dockerd: a 400 at create).
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("error gathering device information while adding custom device \"{path}\": {reason}")]
    Device { path: String, reason: String },
    /// The log driver or its options (dockerd's texts, from the log driver crate).
    #[error(transparent)]
    Log(#[from] berth_logdriver::OptError),
}

/// Why a cpuset list (`0-3,7`) does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error("invalid format: {0}")]
    Format(String),
    // dockerd's text, typo included.
    #[error("value of out range, maximum is {0}")]
    OutOfRange(u64),
}

/// Go's `strconv.Atoi`: an optional sign, then decimal digits only.
fn atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A cgroup list (`7`, `1-6`, `0,3-4,7`) as dockerd's `parsers.ParseUintListMaximum`
/// reads it; `maximum` 0 means no maximum.
pub(crate) fn parse_uint_list(list: &str, maximum: u64) -> Result<BTreeSet<u64>, ListError> {
    let mut out = BTreeSet::new();
    if list.is_empty() {
        return Ok(out);
    }
    let bad = || ListError::Format(list.to_string());
    let over = |v: i64| maximum != 0 && v > maximum as i64;
    for part in list.split(',') {
        match part.split_once('-') {
            None => {
                let v = atoi(part).ok_or_else(bad)?;
                if over(v) {
                    return Err(ListError::OutOfRange(maximum));
                }
                out.insert(u64::try_from(v).map_err(|_| bad())?);
            }
            Some((lo, hi)) => {
                let (lo, hi) = (atoi(lo).ok_or_else(bad)?, atoi(hi).ok_or_else(bad)?);
                if hi < lo {
                    return Err(bad());
                }
                if over(hi) {
                    return Err(ListError::OutOfRange(maximum));
                }
                let lo = u64::try_from(lo).map_err(|_| bad())?;
                let hi = u64::try_from(hi).map_err(|_| bad())?;
                out.extend(lo..=hi);
            }
        }
    }
    Ok(out)
}

/// Whether every member of `requested` is in `available` (dockerd's
/// `isCpusetListAvailable`: up to 8192, or the highest available one if more).
fn cpuset_available(requested: &str, available: &str) -> Result<bool, ListError> {
    let available = parse_uint_list(available, 0)?;
    let maximum = available.last().copied().unwrap_or(0).max(8192);
    let requested = parse_uint_list(requested, maximum)?;
    Ok(requested.is_subset(&available))
}

/// The container's own settings (`Config`): dockerd's `validateContainerConfig`.
pub(crate) fn container_config(c: &ContainerConfig) -> Result<(), InvalidConfig> {
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        return Err(InvalidConfig::RelativeWorkingDir(c.working_dir.clone()));
    }
    if let Some(e) = c.env.iter().find(|e| e.split('=').next() == Some("")) {
        return Err(InvalidConfig::EnvName(e.clone()));
    }
    if let Some(h) = &c.healthcheck {
        // dockerd's validateHealthCheck: 0 is the default, anything else at least 1ms.
        for (field, ns) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
            ("StartInterval", h.start_interval),
        ] {
            if ns != 0 && ns < 1_000_000 {
                return Err(InvalidConfig::HealthcheckDuration(field));
            }
        }
        if h.retries < 0 {
            return Err(InvalidConfig::HealthcheckRetries);
        }
    }
    super::health::OnFailure::of(&c.labels).map_err(InvalidConfig::HealthOnFailure)?;
    Ok(())
}

/// The resource limits, at create and at `docker update` (`update` leaves out the checks
/// that need the whole configuration): dockerd's `verifyPlatformContainerResources`.
pub(crate) fn resources(h: &HostConfig, cpu: &CpuFacts, update: bool) -> Result<(), InvalidConfig> {
    use InvalidConfig as E;
    if h.memory != 0 && h.memory < MIN_MEMORY {
        return Err(E::MemoryTooSmall);
    }
    if h.memory > 0 && h.memory_swap > 0 && h.memory_swap < h.memory {
        return Err(E::SwapBelowMemory);
    }
    if h.memory == 0 && h.memory_swap > 0 && !update {
        return Err(E::SwapWithoutMemory);
    }
    // -1 is "unset" (dockerd's fixMemorySwappiness).
    if let Some(s) = h.memory_swappiness.filter(|s| *s != -1)
        && !(0..=100).contains(&s)
    {
        return Err(E::Swappiness(s));
    }
    if h.memory_reservation > 0 && h.memory_reservation < MIN_MEMORY {
        return Err(E::ReservationTooSmall);
    }
    if h.memory > 0 && h.memory_reservation > 0 && h.memory < h.memory_reservation {
        return Err(E::MemoryBelowReservation);
    }
    if h.nano_cpus > 0 && h.cpu_period > 0 {
        return Err(E::NanoCpusAndPeriod);
    }
    if h.nano_cpus > 0 && h.cpu_quota > 0 {
        return Err(E::NanoCpusAndQuota);
    }
    if h.nano_cpus != 0
        && (h.nano_cpus < 0 || h.nano_cpus as i128 > cpu.ncpu as i128 * 1_000_000_000)
    {
        return Err(E::NanoCpusRange(cpu.ncpu));
    }
    if h.cpu_shares < 0 {
        return Err(E::NegativeCpuShares);
    }
    if h.cpu_period != 0 && !(1000..=1_000_000).contains(&h.cpu_period) {
        return Err(E::CpuPeriod);
    }
    if h.cpu_quota > 0 && h.cpu_quota < 1000 {
        return Err(E::CpuQuota);
    }
    cpuset(&h.cpuset_cpus, &cpu.cpus, "cpus")?;
    cpuset(&h.cpuset_mems, &cpu.mems, "mems")?;
    if h.blkio_weight > 0 && !(10..=1000).contains(&h.blkio_weight) {
        return Err(E::BlkioWeight);
    }
    Ok(())
}

/// A cpuset list: well formed, and (when the host's list is known) available.
fn cpuset(requested: &str, available: &str, what: &'static str) -> Result<(), InvalidConfig> {
    let syntax = |source| InvalidConfig::Cpuset {
        what,
        value: requested.to_string(),
        source,
    };
    if available.is_empty() {
        // The host did not say what it has: check the form only.
        return parse_uint_list(requested, 8192).map(drop).map_err(syntax);
    }
    if cpuset_available(requested, available).map_err(syntax)? {
        return Ok(());
    }
    let (requested, available) = (requested.to_string(), available.to_string());
    Err(match what {
        "cpus" => InvalidConfig::CpusUnavailable {
            requested,
            available,
        },
        _ => InvalidConfig::MemsUnavailable {
            requested,
            available,
        },
    })
}

/// The name in a `container:<name>` mode, if the mode is one.
pub(crate) fn mode_container(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// Everything in `HostConfig` that needs no other container and no file: dockerd's
/// `verifyPlatformContainerSettings` (the log configuration is [`log_config`]'s).
pub(crate) fn host_config(h: &HostConfig, cpu: &CpuFacts) -> Result<(), InvalidConfig> {
    resources(h, cpu, false)?;
    // IpcMode accepts `container:` with no name (dockerd's TODO); PidMode does not.
    let ipc = &h.ipc_mode;
    if !matches!(ipc.as_str(), "" | "none" | "private" | "host" | "shareable")
        && mode_container(ipc).is_none()
    {
        return Err(InvalidConfig::IpcMode(ipc.clone()));
    }
    let pid = &h.pid_mode;
    if !matches!(pid.as_str(), "" | "host") && mode_container(pid).is_none_or(str::is_empty) {
        return Err(InvalidConfig::PidMode(pid.clone()));
    }
    if h.shm_size < 0 {
        return Err(InvalidConfig::ShmSize);
    }
    if !(-1000..=1000).contains(&h.oom_score_adj) {
        return Err(InvalidConfig::OomScoreAdj(h.oom_score_adj));
    }
    Ok(())
}

/// dockerd's `mergeAndVerifyLogConfig`: a container naming no driver gets the daemon's; a
/// container of the daemon's driver gets the daemon's options it does not set itself (a
/// container of another driver gets none); then the driver and its options are checked.
pub(crate) fn log_config(
    cfg: &mut berth_model::LogConfig,
    default_driver: &str,
    default_opts: &std::collections::BTreeMap<String, String>,
) -> Result<berth_logdriver::LogSettings, InvalidConfig> {
    if cfg.typ.is_empty() {
        cfg.typ = default_driver.to_string();
    }
    if cfg.typ == default_driver {
        for (k, v) in default_opts {
            cfg.config.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    Ok(berth_logdriver::LogSettings::parse(&cfg.typ, &cfg.config)?)
}

/// Go's text for an errno (`no such file or directory`).
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// A device given with `--device`: a device node, or a folder holding some, as dockerd's
/// `DevicesFromPath` finds them (a symlink is followed first).
pub(crate) fn device(path_on_host: &str) -> Result<(), InvalidConfig> {
    use std::os::unix::fs::FileTypeExt;
    let is_device = |t: std::fs::FileType| t.is_char_device() || t.is_block_device();
    let fail = |reason: String| InvalidConfig::Device {
        path: path_on_host.to_string(),
        reason,
    };
    let mut path = Path::new(path_on_host).to_path_buf();
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
        && let Ok(target) = std::fs::canonicalize(&path)
    {
        path = target;
    }
    let meta = std::fs::symlink_metadata(&path).map_err(|e| fail(errno_text(&e)))?;
    if is_device(meta.file_type()) {
        return Ok(());
    }
    if meta.is_dir() {
        let mut folders = vec![path];
        while let Some(dir) = folders.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                match entry.file_type() {
                    Ok(t) if is_device(t) => return Ok(()),
                    Ok(t) if t.is_dir() => folders.push(entry.path()),
                    _ => {}
                }
            }
        }
    }
    Err(fail("not a device node".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu() -> CpuFacts {
        CpuFacts {
            ncpu: 2,
            cpus: "0-1".into(),
            mems: "0".into(),
        }
    }

    /// The message as the API gives it: the error and its sources.
    fn check(h: HostConfig) -> Result<(), String> {
        host_config(&h, &cpu()).map_err(|e| {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            msg
        })
    }

    const MB: i64 = 1024 * 1024;

    #[test]
    fn working_dir_must_be_absolute() {
        let c = ContainerConfig {
            working_dir: "srv".into(),
            ..Default::default()
        };
        assert_eq!(
            container_config(&c).unwrap_err().to_string(),
            "the working directory 'srv' is invalid, it needs to be an absolute path"
        );
        let c = ContainerConfig {
            working_dir: "/srv".into(),
            ..Default::default()
        };
        assert_eq!(container_config(&c), Ok(()));
    }

    #[test]
    fn env_needs_a_name() {
        for bad in ["=foo", "", "="] {
            let c = ContainerConfig {
                env: vec!["A=1".into(), bad.into()],
                ..Default::default()
            };
            assert_eq!(
                container_config(&c).unwrap_err().to_string(),
                format!("invalid environment variable: {bad}")
            );
        }
        // A name without a value, and values holding `=`, are dockerd's valid forms.
        let c = ContainerConfig {
            env: vec!["A".into(), "B=".into(), "C=x=y".into(), "1X=2".into()],
            ..Default::default()
        };
        assert_eq!(container_config(&c), Ok(()));
    }

    #[test]
    fn healthchecks_are_checked_as_dockerd_checks_them() {
        let with = |h: berth_model::HealthConfig| ContainerConfig {
            healthcheck: Some(h),
            ..Default::default()
        };
        let said = |c: &ContainerConfig| container_config(c).map_err(|e| e.to_string());
        let ok = berth_model::HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: 1_000_000,
            start_period: 0,
            ..Default::default()
        };
        assert_eq!(said(&with(ok.clone())), Ok(()));
        assert_eq!(
            said(&with(berth_model::HealthConfig {
                interval: 999_999,
                ..ok.clone()
            })),
            Err("Interval in Healthcheck cannot be less than 1ms".into())
        );
        assert_eq!(
            said(&with(berth_model::HealthConfig {
                timeout: -1,
                ..ok.clone()
            })),
            Err("Timeout in Healthcheck cannot be less than 1ms".into())
        );
        assert_eq!(
            said(&with(berth_model::HealthConfig {
                start_interval: 5,
                ..ok.clone()
            })),
            Err("StartInterval in Healthcheck cannot be less than 1ms".into())
        );
        assert_eq!(
            said(&with(berth_model::HealthConfig {
                retries: -1,
                ..ok.clone()
            })),
            Err("Retries in Healthcheck cannot be negative".into())
        );
        let labelled = |v: &str| ContainerConfig {
            labels: [("berth.health-on-failure".to_string(), v.to_string())].into(),
            ..Default::default()
        };
        assert_eq!(said(&labelled("restart")), Ok(()));
        assert!(said(&labelled("reboot")).is_err_and(|e| e.contains("\"reboot\"")));
    }

    #[test]
    fn memory_limits() {
        let mem = |memory, memory_swap| HostConfig {
            memory,
            memory_swap,
            ..Default::default()
        };
        let too_small = Err("Minimum memory limit allowed is 6MB".to_string());
        assert_eq!(check(mem(6 * MB - 1, 0)), too_small);
        assert_eq!(check(mem(-1, 0)), too_small, "negative");
        assert_eq!(check(mem(i64::MIN, 0)), too_small);
        assert_eq!(check(mem(6 * MB, 0)), Ok(()));
        assert_eq!(
            check(mem(i64::MAX, -1)),
            Ok(()),
            "huge is the kernel's business"
        );
        assert_eq!(
            check(mem(64 * MB, 32 * MB)),
            Err(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
                    .to_string()
            )
        );
        assert_eq!(check(mem(64 * MB, 64 * MB)), Ok(()));
        assert_eq!(check(mem(64 * MB, -1)), Ok(()), "-1 is unlimited swap");
        assert_eq!(
            check(mem(0, 64 * MB)),
            Err(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
                    .to_string()
            )
        );
        assert_eq!(
            resources(&mem(0, 64 * MB), &cpu(), true),
            Ok(()),
            "an update may change the swap alone"
        );
    }

    #[test]
    fn reservation_and_swappiness() {
        let h = |memory, memory_reservation, memory_swappiness| HostConfig {
            memory,
            memory_reservation,
            memory_swappiness,
            ..Default::default()
        };
        assert_eq!(
            check(h(0, MB, None)),
            Err("Minimum memory reservation allowed is 6MB".into())
        );
        assert_eq!(
            check(h(64 * MB, 128 * MB, None)),
            Err(
                "Minimum memory limit can not be less than memory reservation limit, see usage"
                    .into()
            )
        );
        assert_eq!(check(h(128 * MB, 64 * MB, Some(-1))), Ok(()));
        assert_eq!(check(h(0, 0, Some(100))), Ok(()));
        assert_eq!(
            check(h(0, 0, Some(101))),
            Err("Invalid value: 101, valid memory swappiness range is 0-100".into())
        );
        assert_eq!(
            check(h(0, 0, Some(-2))),
            Err("Invalid value: -2, valid memory swappiness range is 0-100".into())
        );
    }

    #[test]
    fn cpu_limits() {
        let range = Err(
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available".to_string(),
        );
        let nano = |nano_cpus| HostConfig {
            nano_cpus,
            ..Default::default()
        };
        assert_eq!(check(nano(2_000_000_000)), Ok(()));
        assert_eq!(check(nano(2_000_000_001)), range);
        assert_eq!(check(nano(-1)), range);
        assert_eq!(check(nano(i64::MAX)), range, "no overflow");
        assert_eq!(
            check(HostConfig {
                nano_cpus: 1,
                cpu_period: 100_000,
                ..Default::default()
            }),
            Err("Conflicting options: Nano CPUs and CPU Period cannot both be set".into())
        );
        assert_eq!(
            check(HostConfig {
                nano_cpus: 1,
                cpu_quota: 50_000,
                ..Default::default()
            }),
            Err("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into())
        );
        let period = |cpu_period| HostConfig {
            cpu_period,
            ..Default::default()
        };
        let period_err = Err(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .to_string(),
        );
        assert_eq!(check(period(999)), period_err);
        assert_eq!(check(period(-1)), period_err);
        assert_eq!(check(period(1_000_001)), period_err);
        assert_eq!(check(period(1_000_000)), Ok(()));
        let quota = |cpu_quota| HostConfig {
            cpu_quota,
            ..Default::default()
        };
        assert_eq!(
            check(quota(999)),
            Err("CPU cfs quota can not be less than 1ms (i.e. 1000)".into())
        );
        assert_eq!(check(quota(-1)), Ok(()), "-1 is no quota");
        assert_eq!(
            check(HostConfig {
                cpu_shares: -1,
                ..Default::default()
            }),
            Err("shares: invalid argument".into())
        );
        assert_eq!(
            check(HostConfig {
                blkio_weight: 5,
                ..Default::default()
            }),
            Err("Range of blkio weight is from 10 to 1000".into())
        );
    }

    #[test]
    fn cpuset_lists() {
        let cpus = |s: &str| HostConfig {
            cpuset_cpus: s.into(),
            ..Default::default()
        };
        for ok in ["", "0", "1", "0-1", "0,1", "1,0-1", "+1"] {
            assert_eq!(check(cpus(ok)), Ok(()), "{ok}");
        }
        for bad in ["abc", "0-", "-1", "1-0", "0,,1", " 0", "0-1-2", "1.5"] {
            assert_eq!(
                check(cpus(bad)),
                Err(format!(
                    "Invalid value {bad} for cpuset cpus: invalid format: {bad}"
                )),
            );
        }
        assert_eq!(
            check(cpus("0-3")),
            Err("Requested CPUs are not available - requested 0-3, available: 0-1".into())
        );
        assert_eq!(
            check(cpus("0-100000000")),
            Err(
                "Invalid value 0-100000000 for cpuset cpus: value of out range, maximum is 8192"
                    .into()
            )
        );
        assert_eq!(
            check(HostConfig {
                cpuset_mems: "1".into(),
                ..Default::default()
            }),
            Err("Requested memory nodes are not available - requested 1, available: 0".into())
        );
        // A host that did not say what it has: only the form is checked.
        let unknown = CpuFacts::default();
        assert_eq!(resources(&cpus("0-7"), &unknown, false), Ok(()));
        assert!(resources(&cpus("x"), &unknown, false).is_err());
    }

    #[test]
    fn uint_lists() {
        assert_eq!(
            parse_uint_list("0-2,5,03", 0).unwrap(),
            [0, 2, 1, 3, 5].into()
        );
        assert_eq!(parse_uint_list("9", 8), Err(ListError::OutOfRange(8)));
        assert_eq!(
            parse_uint_list("99999999999999999999", 0),
            Err(ListError::Format("99999999999999999999".into()))
        );
    }

    #[test]
    fn oom_shm_and_modes() {
        for (adj, ok) in [(-1000, true), (1000, true), (1001, false), (-1001, false)] {
            let r = check(HostConfig {
                oom_score_adj: adj,
                ..Default::default()
            });
            if ok {
                assert_eq!(r, Ok(()));
            } else {
                assert_eq!(
                    r,
                    Err(format!(
                        "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
                    ))
                );
            }
        }
        assert_eq!(
            check(HostConfig {
                shm_size: -1,
                ..Default::default()
            }),
            Err("SHM size can not be less than 0".into())
        );
        let ipc = |m: &str| HostConfig {
            ipc_mode: m.into(),
            ..Default::default()
        };
        for ok in [
            "",
            "none",
            "private",
            "host",
            "shareable",
            "container:x",
            "container:",
        ] {
            assert_eq!(check(ipc(ok)), Ok(()), "{ok}");
        }
        assert_eq!(check(ipc("bogus")), Err("invalid IPC mode: bogus".into()));
        let pid = |m: &str| HostConfig {
            pid_mode: m.into(),
            ..Default::default()
        };
        for ok in ["", "host", "container:x"] {
            assert_eq!(check(pid(ok)), Ok(()), "{ok}");
        }
        for bad in ["private", "container:", "bogus"] {
            assert_eq!(check(pid(bad)), Err(format!("invalid PID mode: {bad}")));
        }
        assert_eq!(mode_container("container:abc"), Some("abc"));
        assert_eq!(mode_container("host"), None);
    }

    #[test]
    fn log_drivers_and_the_daemons_defaults() {
        use std::collections::BTreeMap;
        let map = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let merged = |typ: &str, opts: &[(&str, &str)], default: &str, dopts: &[(&str, &str)]| {
            let mut cfg = berth_model::LogConfig {
                typ: typ.into(),
                config: map(opts),
            };
            log_config(&mut cfg, default, &map(dopts))
                .map(|_| cfg)
                .map_err(|e| e.to_string())
        };
        let daemon = [("max-size", "2m"), ("max-file", "3")];
        let c = merged("", &[], "local", &daemon).unwrap();
        assert_eq!((c.typ.as_str(), c.config), ("local", map(&daemon)));
        let c = merged("", &[("max-file", "5")], "local", &daemon).unwrap();
        assert_eq!(c.config, map(&[("max-size", "2m"), ("max-file", "5")]));
        let c = merged("json-file", &[], "local", &daemon).unwrap();
        assert_eq!((c.typ.as_str(), c.config.len()), ("json-file", 0));
        let c = merged("", &[], "json-file", &[]).unwrap();
        assert_eq!((c.typ.as_str(), c.config.len()), ("json-file", 0));
        assert_eq!(
            merged("nosuch", &[], "json-file", &[]).unwrap_err(),
            "error looking up logging plugin nosuch: plugin \"nosuch\" not found"
        );
        assert_eq!(
            merged("", &[("nosuchopt", "1")], "json-file", &[]).unwrap_err(),
            "unknown log opt 'nosuchopt' for json-file log driver"
        );
    }

    #[test]
    fn devices() {
        assert_eq!(device("/dev/null"), Ok(()));
        assert_eq!(
            device("/dev/berth-nonexistent").unwrap_err().to_string(),
            "error gathering device information while adding custom device \"/dev/berth-nonexistent\": no such file or directory"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "").unwrap();
        let file = file.to_str().unwrap();
        assert_eq!(
            device(file).unwrap_err().to_string(),
            format!(
                "error gathering device information while adding custom device \"{file}\": not a device node"
            )
        );
        let empty = dir.path().to_str().unwrap();
        assert!(device(empty).is_err(), "a folder without devices");
        let link = dir.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        assert_eq!(
            device(link.to_str().unwrap()),
            Ok(()),
            "a symlink is followed"
        );
    }
}
