//! Shim processes seen from /proc. A client that dies in the middle of `Tasks.Create` or
//! `Tasks.Delete` can leave containerd 1.6 with a shim it no longer tracks: no task, perhaps
//! a `runc init` waiting for ever, the shim alive for ever. These are found here so the
//! daemon can end them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// A shim containerd has no task for, and the processes it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrackedShim {
    pub id: String,
    pub pid: i32,
    pub children: Vec<i32>,
}

/// Shims serving `namespace` for containerd at `socket` whose `-id` is not in `with_task`,
/// found in procfs at `proc` (`/proc`).
pub fn untracked_shims(
    proc: &Path,
    socket: &Path,
    namespace: &str,
    with_task: &HashSet<String>,
) -> Vec<UntrackedShim> {
    let Ok(dir) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut shims: HashMap<i32, String> = HashMap::new();
    let address = socket.display().to_string();
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some(ppid) = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| parent_of(&s))
        {
            children.entry(ppid).or_default().push(pid);
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if let Some(id) = shim_id(&cmdline, namespace, &address)
            && !with_task.contains(&id)
        {
            shims.insert(pid, id);
        }
    }
    shims
        .into_iter()
        .map(|(pid, id)| UntrackedShim {
            id,
            pid,
            children: children.remove(&pid).unwrap_or_default(),
        })
        .collect()
}

/// The parent pid from a `/proc/<pid>/stat` line.
fn parent_of(stat: &str) -> Option<i32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The container id of a `containerd-shim-*` command line for this namespace and address.
fn shim_id(cmdline: &[u8], namespace: &str, address: &str) -> Option<String> {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let binary = String::from_utf8_lossy(args.first()?);
    if !binary.contains("containerd-shim") {
        return None;
    }
    let flag = |name: &str| {
        args.windows(2)
            .find(|w| w[0] == name.as_bytes())
            .map(|w| String::from_utf8_lossy(w[1]).into_owned())
    };
    (flag("-namespace")? == namespace && flag("-address")? == address).then_some(())?;
    flag("-id")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_shim_command_lines() {
        let cmd = b"/usr/bin/containerd-shim-runc-v2\0-namespace\0berth\0-id\0abc\0-address\0/run/x/containerd.sock\0";
        assert_eq!(
            shim_id(cmd, "berth", "/run/x/containerd.sock"),
            Some("abc".to_string())
        );
        assert_eq!(shim_id(cmd, "moby", "/run/x/containerd.sock"), None);
        assert_eq!(
            shim_id(cmd, "berth", "/run/containerd/containerd.sock"),
            None
        );
        assert_eq!(shim_id(b"/bin/sleep\0-id\0abc\0", "berth", "x"), None);
    }

    #[test]
    fn finds_untracked_shims_and_their_children_in_a_prepared_proc() {
        let d = tempfile::tempdir().unwrap();
        let proc = d.path();
        let put = |pid: &str, ppid: u32, cmdline: &[u8]| {
            let dir = proc.join(pid);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("stat"), format!("{pid} (x) S {ppid} 1 1 0")).unwrap();
            std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        };
        let shim = |id: &str| {
            format!("containerd-shim-runc-v2\0-namespace\0ns\0-id\0{id}\0-address\0/s.sock\0")
        };
        put("10", 1, shim("lost").as_bytes());
        put("11", 10, b"runc\0init\0");
        put("20", 1, shim("tracked").as_bytes());
        put("21", 20, b"sleep\0");
        std::fs::create_dir_all(proc.join("self")).unwrap();
        let with_task = HashSet::from(["tracked".to_string()]);
        let found = untracked_shims(proc, Path::new("/s.sock"), "ns", &with_task);
        assert_eq!(
            found,
            vec![UntrackedShim {
                id: "lost".into(),
                pid: 10,
                children: vec![11],
            }]
        );
        assert!(
            untracked_shims(&proc.join("none"), Path::new("/s.sock"), "ns", &with_task).is_empty()
        );
    }

    #[test]
    fn parent_from_stat() {
        assert_eq!(parent_of("12 (a (b) c) S 7 12 12 0"), Some(7));
        assert_eq!(parent_of("garbage"), None);
    }
}
