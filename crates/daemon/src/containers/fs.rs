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

/// `docker top`: one row per process (UID PID PPID C STIME TTY TIME CMD), read from /proc.
pub(crate) fn top(pids: &[u32]) -> (Vec<String>, Vec<Vec<String>>) {
    let titles = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ticks = 100u64;
    let mut rows = Vec::new();
    for pid in pids {
        let dir = PathBuf::from(format!("/proc/{pid}"));
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid = f.get(1).copied().unwrap_or("0").to_string();
        let cpu_ticks: u64 = f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let secs = cpu_ticks / ticks;
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
            uid,
            pid.to_string(),
            ppid,
            "0".into(),
            "-".into(),
            "?".into(),
            format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            cmd,
        ]);
    }
    (titles, rows)
}

/// Memory and pids of a container's cgroup, read from the cgroup file system.
#[derive(Debug, Clone, Default)]
pub struct CgroupStats {
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub memory_stats: std::collections::BTreeMap<String, u64>,
    pub pids: u64,
    pub cpu_total_ns: u64,
}

pub(crate) fn cgroup_stats(id: &str, cgroup_v2: bool, host_mem: u64) -> CgroupStats {
    let read = |p: String| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let num = |p: String| read(p).and_then(|s| s.parse::<u64>().ok());
    let mut s = CgroupStats::default();
    if cgroup_v2 {
        let base = format!("/sys/fs/cgroup/berth/{id}");
        s.memory_usage = num(format!("{base}/memory.current")).unwrap_or(0);
        s.memory_limit = num(format!("{base}/memory.max")).unwrap_or(host_mem);
        s.pids = num(format!("{base}/pids.current")).unwrap_or(0);
        s.cpu_total_ns = read(format!("{base}/cpu.stat"))
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1000;
        if let Some(t) = read(format!("{base}/memory.stat")) {
            s.memory_stats = parse_kv(&t);
        }
    } else {
        let mem = format!("/sys/fs/cgroup/memory/berth/{id}");
        s.memory_usage = num(format!("{mem}/memory.usage_in_bytes")).unwrap_or(0);
        s.memory_limit = num(format!("{mem}/memory.limit_in_bytes")).unwrap_or(host_mem);
        if let Some(t) = read(format!("{mem}/memory.stat")) {
            s.memory_stats = parse_kv(&t);
        }
        s.pids = num(format!("/sys/fs/cgroup/pids/berth/{id}/pids.current")).unwrap_or(0);
        s.cpu_total_ns =
            num(format!("/sys/fs/cgroup/cpuacct/berth/{id}/cpuacct.usage")).unwrap_or(0);
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

    #[test]
    fn top_reads_our_own_process() {
        let (titles, rows) = top(&[std::process::id()]);
        assert_eq!(titles.len(), 8);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], std::process::id().to_string());
    }
}
