//! A container's files: reading from its layers, the read-only merged view (for cp and
//! export of any container), processes from /proc, and cgroup statistics.

use std::path::{Path, PathBuf};

use berth_images::RootfsLayout;
use berth_inroot::{Layers, Tree};

use crate::DaemonError;

/// The most of `/etc/passwd` or `/etc/group` berthd reads from an image or a container.
const USER_FILE_LIMIT: u64 = 4 << 20;

/// The container's `/etc/passwd` and `/etc/group` as it sees them, resolved inside its root
/// (`tree`: its layers before it runs, `/proc/<pid>/root` while it runs), read on a
/// blocking thread: regular files only, at most 4 MiB each. A missing file reads as empty.
pub(crate) async fn user_files<T: Tree + Send + 'static>(
    tree: T,
) -> Result<(String, String), DaemonError> {
    tokio::task::spawn_blocking(move || {
        let read = |p: &str| -> Result<String, DaemonError> {
            Ok(tree
                .read_capped(Path::new(p), USER_FILE_LIMIT)?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default())
        };
        Ok((read("/etc/passwd")?, read("/etc/group")?))
    })
    .await
    .map_err(|e| DaemonError::Task(e.to_string()))?
}

/// A container's layers, top first, as one tree: what it will see once started.
pub(crate) fn layers_of(layout: &RootfsLayout) -> Result<Layers, DaemonError> {
    let mut top_first = vec![layout.upper.clone()];
    top_first.extend(layout.lowers.iter().rev().cloned());
    Ok(Layers::open(&top_first)?)
}

/// A container's file system mounted at `root` for the life of this value (unmounted on
/// drop): read-only (its upper folder as one more lower layer; safe while it runs) or
/// writable (its upper and work folders; only while it does not run).
#[derive(Debug)]
pub(crate) struct MergedView {
    pub root: PathBuf,
}

impl MergedView {
    /// `empty_lower` stands in for the image layers when there are none (writable only).
    pub fn mount(
        layout: &RootfsLayout,
        at: PathBuf,
        writable: Option<&Path>,
    ) -> std::io::Result<MergedView> {
        std::fs::create_dir_all(&at)?;
        let (opts, flags) = match writable {
            Some(empty_lower) => (
                berth_images::overlay_options(layout, empty_lower).join(","),
                nix::mount::MsFlags::empty(),
            ),
            None => {
                let mut lowers: Vec<String> = vec![layout.upper.display().to_string()];
                lowers.extend(layout.lowers.iter().rev().map(|p| p.display().to_string()));
                (
                    format!("lowerdir={}", lowers.join(":")),
                    nix::mount::MsFlags::MS_RDONLY,
                )
            }
        };
        nix::mount::mount(
            Some("overlay"),
            &at,
            Some("overlay"),
            flags,
            Some(opts.as_str()),
        )
        .map_err(std::io::Error::from)?;
        Ok(MergedView { root: at })
    }
}

impl Drop for MergedView {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.root, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.root);
    }
}

/// `docker top`: one row per process (UID PID PPID C STIME TTY TIME CMD) as dockerd's `ps -ef`
/// shows them, read from procfs at `proc`: the user's name from the host's `passwd` (the
/// number when it has none), the start time (`HH:MM` today, `MonDD` this year, else the year),
/// CPU use in percent of the process's life, its terminal.
pub(crate) fn top(
    proc: &Path,
    host_passwd: &Path,
    pids: &[u32],
) -> (Vec<String>, Vec<Vec<String>>) {
    let titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ticks = 100u64;
    let passwd = std::fs::read_to_string(host_passwd).unwrap_or_default();
    let user_name = |uid: &str| {
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[2] == uid)
            .map_or_else(|| uid.to_string(), |f| f[0].to_string())
    };
    let boot = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|b| b.trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut rows = Vec::new();
    for pid in pids {
        let dir = proc.join(pid.to_string());
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let ppid = f.get(1).copied().unwrap_or("0").to_string();
        let cpu_ticks = field(11) + field(12);
        let secs = cpu_ticks / ticks;
        let started = boot + field(19) / ticks;
        let alive = now.saturating_sub(started).max(1);
        let c = (cpu_ticks * 100 / ticks / alive).min(99);
        let tty = match field(4) {
            0 => "?".to_string(),
            n => {
                let (major, minor) = ((n >> 8) & 0xfff, (n & 0xff) | ((n >> 12) & 0xfff00));
                match major {
                    136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
                    4 => format!("tty{minor}"),
                    _ => "?".to_string(),
                }
            }
        };
        let uid = std::fs::read_to_string(dir.join("status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|u| u.split_whitespace().next().map(str::to_string))
            })
            .unwrap_or_default();
        let cmd = std::fs::read(dir.join("cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        rows.push(vec![
            user_name(&uid),
            pid.to_string(),
            ppid,
            c.to_string(),
            start_time(started, now),
            tty,
            format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            cmd,
        ]);
    }
    (titles, rows)
}

/// `ps`'s STIME of a process started at `t` (Unix seconds, UTC): `HH:MM` within the last
/// day, `MonDD` within the year, else the year.
fn start_time(t: u64, now: u64) -> String {
    let text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
    )
    .to_string();
    // 2026-12-02T03:48:12Z
    let (date, time) = text.split_once('T').unwrap_or((&text, ""));
    if now.saturating_sub(t) < 24 * 3600 {
        return time.get(..5).unwrap_or(time).to_string();
    }
    let mut d = date.split('-');
    let (year, month, day) = (
        d.next().unwrap_or(""),
        d.next().unwrap_or(""),
        d.next().unwrap_or(""),
    );
    if now.saturating_sub(t) < 365 * 24 * 3600 {
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let m = month.parse::<usize>().unwrap_or(1).clamp(1, 12);
        return format!("{}{day}", months[m - 1]);
    }
    year.to_string()
}

/// Memory and pids of a container's cgroup, read from the cgroup file system.
#[derive(Debug, Clone, Default)]
pub struct CgroupStats {
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub memory_stats: std::collections::BTreeMap<String, u64>,
    pub pids: u64,
    pub cpu_total_ns: u64,
    /// CPU time in user and kernel mode, nanoseconds.
    pub cpu_user_ns: u64,
    pub cpu_kernel_ns: u64,
    /// Per CPU (cgroup v1 only, as dockerd reports it).
    pub cpu_percpu_ns: Option<Vec<u64>>,
    /// CFS periods, throttled periods, throttled nanoseconds.
    pub throttling: (u64, u64, u64),
    /// The peak usage (cgroup v1 only).
    pub memory_max_usage: Option<u64>,
}

/// One sample of the cgroup at `cgroups_path` (the container's spec's); a limit the cgroup
/// does not set, or one above the host's memory, reads as the host's memory.
pub(crate) fn cgroup_stats(
    cgroups: &crate::Cgroups,
    cgroups_path: &str,
    host_mem: u64,
) -> CgroupStats {
    let read = |p: PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let num = |p: PathBuf| read(p).and_then(|s| s.parse::<u64>().ok());
    let mut s = CgroupStats::default();
    if cgroups.v2 {
        let base = cgroups.dir("", cgroups_path);
        s.memory_usage = num(base.join("memory.current")).unwrap_or(0);
        s.memory_limit = num(base.join("memory.max")).unwrap_or(host_mem);
        s.pids = num(base.join("pids.current")).unwrap_or(0);
        s.cpu_total_ns = read(base.join("cpu.stat"))
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1000;
        if let Some(t) = read(base.join("cpu.stat")) {
            let kv = parse_kv(&t);
            let get = |k: &str| kv.get(k).copied().unwrap_or(0);
            s.cpu_user_ns = get("user_usec") * 1000;
            s.cpu_kernel_ns = get("system_usec") * 1000;
            s.throttling = (
                get("nr_periods"),
                get("nr_throttled"),
                get("throttled_usec") * 1000,
            );
        }
        if let Some(t) = read(base.join("memory.stat")) {
            s.memory_stats = parse_kv(&t);
        }
    } else {
        let mem = cgroups.dir("memory", cgroups_path);
        s.memory_usage = num(mem.join("memory.usage_in_bytes")).unwrap_or(0);
        s.memory_limit = num(mem.join("memory.limit_in_bytes")).unwrap_or(host_mem);
        if let Some(t) = read(mem.join("memory.stat")) {
            s.memory_stats = parse_kv(&t);
        }
        s.pids = num(cgroups.dir("pids", cgroups_path).join("pids.current")).unwrap_or(0);
        let cpuacct = cgroups.dir("cpuacct", cgroups_path);
        s.cpu_total_ns = num(cpuacct.join("cpuacct.usage")).unwrap_or(0);
        s.cpu_percpu_ns = read(cpuacct.join("cpuacct.usage_percpu")).map(|t| {
            t.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        });
        if let Some(t) = read(cpuacct.join("cpuacct.stat")) {
            // In USER_HZ ticks: 100 a second on Linux.
            let kv = parse_kv(&t);
            s.cpu_user_ns = kv.get("user").copied().unwrap_or(0) * 10_000_000;
            s.cpu_kernel_ns = kv.get("system").copied().unwrap_or(0) * 10_000_000;
        }
        if let Some(t) = read(cgroups.dir("cpu", cgroups_path).join("cpu.stat")) {
            let kv = parse_kv(&t);
            let get = |k: &str| kv.get(k).copied().unwrap_or(0);
            s.throttling = (
                get("nr_periods"),
                get("nr_throttled"),
                get("throttled_time"),
            );
        }
        s.memory_max_usage = num(mem.join("memory.max_usage_in_bytes"));
    }
    if host_mem > 0 {
        s.memory_limit = s.memory_limit.min(host_mem);
    }
    s
}

fn parse_kv(text: &str) -> std::collections::BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn start_times_read_as_ps_writes_them() {
        let t = 1_796_183_292; // 2026-12-02T03:48:12Z
        assert_eq!(super::start_time(t, t + 60), "03:48");
        assert_eq!(super::start_time(t, t + 3 * 24 * 3600), "Dec02");
        assert_eq!(super::start_time(t, t + 400 * 24 * 3600), "2026");
    }
    use super::*;

    #[tokio::test]
    async fn user_files_are_read_from_the_top_layer_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let (l1, up) = (d.path().join("l1"), d.path().join("up"));
        std::fs::create_dir_all(l1.join("etc")).unwrap();
        std::fs::create_dir_all(&up).unwrap();
        std::fs::write(l1.join("etc/passwd"), "image").unwrap();
        std::fs::write(l1.join("etc/group"), "g").unwrap();
        let layout = RootfsLayout {
            lowers: vec![l1.clone()],
            upper: up.clone(),
            work: d.path().join("w"),
        };
        let files = user_files(layers_of(&layout).unwrap()).await.unwrap();
        assert_eq!(files, ("image".to_string(), "g".to_string()));
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::write(up.join("etc/passwd"), "changed").unwrap();
        let files = user_files(layers_of(&layout).unwrap()).await.unwrap();
        assert_eq!(files.0, "changed");
        // An image whose passwd is a FIFO or a link to a host file cannot block or fool us.
        std::fs::remove_file(up.join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(
            &up.join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let err = user_files(layers_of(&layout).unwrap()).await.unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::remove_file(up.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", up.join("etc/passwd")).unwrap();
        std::fs::remove_file(l1.join("etc/group")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/hostname", l1.join("etc/group")).unwrap();
        let files = user_files(layers_of(&layout).unwrap()).await.unwrap();
        assert_eq!(files, (String::new(), String::new()));
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn top_reads_our_own_process() {
        let (titles, rows) = top(
            Path::new("/proc"),
            Path::new("/etc/passwd"),
            &[std::process::id()],
        );
        assert_eq!(titles.len(), 8);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], std::process::id().to_string());
    }

    #[test]
    fn top_from_a_prepared_proc() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        // utime 250 + stime 120 ticks: 3 s of CPU.
        write(
            p,
            "41/stat",
            "41 (sh (x) y) S 7 41 41 0 -1 4194560 1 0 0 0 250 120 0 0 20 0 1 0 9 0 0\n",
        );
        write(p, "41/status", "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\n");
        write(p, "41/cmdline", "sh\0-c\0sleep 9\0");
        write(p, "42/stat", "42 (z) Z 41 0 0 0");
        write(
            p,
            "passwd",
            "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        );
        let (_, rows) = top(p, &p.join("passwd"), &[41, 42, 43]);
        assert_eq!(
            rows[0],
            [
                "app",
                "41",
                "7",
                "0",
                "1970",
                "?",
                "00:00:03",
                "sh -c sleep 9"
            ]
        );
        assert_eq!(
            rows[1][..3],
            ["", "42", "41"],
            "what it cannot read is empty"
        );
        assert_eq!(rows.len(), 2, "a process gone is left out");
    }

    fn cgroups(v2: bool) -> (tempfile::TempDir, crate::Cgroups) {
        let d = tempfile::tempdir().unwrap();
        let host = berth_config::HostPaths::under(d.path());
        write(
            d.path(),
            "proc/self/cgroup",
            "0::/daemons/berthd\n4:memory:/m\n",
        );
        let c = crate::Cgroups::read(&host, v2);
        (d, c)
    }

    #[test]
    fn stats_from_a_v2_tree() {
        let (d, c) = cgroups(true);
        let cg = "sys/fs/cgroup/it/abc";
        write(d.path(), &format!("{cg}/memory.current"), "4096\n");
        write(d.path(), &format!("{cg}/memory.max"), "max\n");
        write(d.path(), &format!("{cg}/pids.current"), "3\n");
        write(
            d.path(),
            &format!("{cg}/cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\n",
        );
        write(
            d.path(),
            &format!("{cg}/memory.stat"),
            "anon 1024\nfile 2048\n",
        );
        let s = cgroup_stats(&c, "/it/abc", 1 << 30);
        assert_eq!(
            (s.memory_usage, s.memory_limit),
            (4096, 1 << 30),
            "max: the host's"
        );
        assert_eq!((s.pids, s.cpu_total_ns), (3, 1_500_000));
        assert_eq!(s.memory_stats["file"], 2048);
        let rel = "sys/fs/cgroup/daemons/berthd/mine/abc";
        write(d.path(), &format!("{rel}/memory.max"), "65536\n");
        let s = cgroup_stats(&c, "mine/abc", 1 << 30);
        assert_eq!(s.memory_limit, 65536, "relative: under berthd's cgroup");
        let gone = cgroup_stats(&c, "/it/gone", 0);
        assert_eq!((gone.memory_usage, gone.memory_limit, gone.pids), (0, 0, 0));
    }

    #[test]
    fn stats_from_a_v1_tree() {
        let (d, c) = cgroups(false);
        let at = |h: &str, f: &str| format!("sys/fs/cgroup/{h}/it/abc/{f}");
        write(d.path(), &at("memory", "memory.usage_in_bytes"), "8192\n");
        write(
            d.path(),
            &at("memory", "memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(
            d.path(),
            &at("memory", "memory.stat"),
            "cache 4096\nrss 4096\n",
        );
        write(d.path(), &at("pids", "pids.current"), "2\n");
        write(d.path(), &at("cpuacct", "cpuacct.usage"), "123456\n");
        let s = cgroup_stats(&c, "/it/abc", 1 << 30);
        assert_eq!(
            (s.memory_usage, s.memory_limit),
            (8192, 1 << 30),
            "bounded by the host"
        );
        assert_eq!((s.pids, s.cpu_total_ns), (2, 123456));
        assert_eq!(s.memory_stats["rss"], 4096);
        write(
            d.path(),
            "sys/fs/cgroup/memory/m/r/abc/memory.usage_in_bytes",
            "5\n",
        );
        assert_eq!(
            cgroup_stats(&c, "r/abc", 0).memory_usage,
            5,
            "relative: per hierarchy"
        );
    }
}
