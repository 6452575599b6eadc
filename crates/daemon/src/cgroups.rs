//! Where containers' cgroups are on this host, as runc (cgroupfs driver) makes them from a
//! spec's `cgroupsPath`: an absolute path from the root of each hierarchy, a relative one
//! from the cgroup of runc itself, which is berthd's (runc runs under the shim, the shim
//! under containerd, containerd under berthd).

use std::path::{Component, Path, PathBuf};

use berth_config::HostPaths;

/// The cgroup file system as berthd's containers use it; read once at start and reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroups {
    /// The cgroup mount (`/sys/fs/cgroup`).
    pub mount: PathBuf,
    /// One unified hierarchy at the mount (else v1: one folder per hierarchy).
    pub v2: bool,
    /// berthd's own cgroups from `/proc/self/cgroup`: (controllers field, path) per line.
    own: Vec<(String, String)>,
}

impl Cgroups {
    /// The cgroups of `host`, berthd's own from its procfs.
    pub fn read(host: &HostPaths, v2: bool) -> Cgroups {
        let own = std::fs::read_to_string(host.proc_root.join("self/cgroup"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
                Some((controllers.to_string(), path.to_string()))
            })
            .collect();
        Cgroups {
            mount: host.cgroup_root.clone(),
            v2,
            own,
        }
    }

    /// The folder of `cgroups_path` in one hierarchy: `hierarchy` is a v1 hierarchy's folder
    /// under the mount (`memory`, `cpu,cpuacct`), unused on v2. Never outside the hierarchy.
    pub fn dir(&self, hierarchy: &str, cgroups_path: &str) -> PathBuf {
        let (base, key) = if self.v2 {
            (self.mount.clone(), "")
        } else {
            (self.mount.join(hierarchy), hierarchy)
        };
        let full = if cgroups_path.starts_with('/') {
            PathBuf::from(cgroups_path)
        } else {
            Path::new("/").join(self.own(key)).join(cgroups_path)
        };
        base.join(inside(&full))
    }

    /// Every folder of `cgroups_path`: one on v2, one per hierarchy on v1.
    pub fn dirs(&self, cgroups_path: &str) -> Vec<PathBuf> {
        if self.v2 {
            return vec![self.dir("", cgroups_path)];
        }
        let Ok(entries) = std::fs::read_dir(&self.mount) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| self.dir(&e.file_name().to_string_lossy(), cgroups_path))
            .collect();
        dirs.sort();
        dirs
    }

    /// berthd's own cgroup in a hierarchy ("" is the unified one), `/` when unknown.
    fn own(&self, hierarchy: &str) -> &str {
        self.own
            .iter()
            .find(|(controllers, _)| {
                if hierarchy.is_empty() || hierarchy == "unified" {
                    return controllers.is_empty();
                }
                controllers == hierarchy
                    || controllers.split(',').any(|c| c == hierarchy)
                    || controllers.strip_prefix("name=") == Some(hierarchy)
            })
            .map_or("/", |(_, path)| path.as_str())
    }
}

/// A rooted path as a relative one, `..` resolved by text and never above the root.
fn inside(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(own: &str) -> (tempfile::TempDir, HostPaths) {
        let d = tempfile::tempdir().unwrap();
        let h = HostPaths::under(d.path());
        std::fs::create_dir_all(h.proc_root.join("self")).unwrap();
        std::fs::write(h.proc_root.join("self/cgroup"), own).unwrap();
        (d, h)
    }

    #[test]
    fn v2_absolute_and_relative_paths() {
        let (_d, h) = host("0::/system.slice/berthd.service\n");
        let c = Cgroups::read(&h, true);
        assert_eq!(c.dir("", "/berth/abc"), h.cgroup_root.join("berth/abc"));
        assert_eq!(
            c.dir("memory", "mine/abc"),
            h.cgroup_root.join("system.slice/berthd.service/mine/abc"),
            "relative: under berthd's own cgroup"
        );
        assert_eq!(c.dir("", "/../../etc/abc"), h.cgroup_root.join("etc/abc"));
        assert_eq!(c.dirs("/p/abc"), vec![h.cgroup_root.join("p/abc")]);
    }

    #[test]
    fn v1_paths_per_hierarchy() {
        let (_d, h) = host("9:name=systemd:/init.scope\n4:memory:/jobs/7\n2:cpu,cpuacct:/\n0::/\n");
        for dir in ["memory", "cpu,cpuacct", "systemd", "unified"] {
            std::fs::create_dir_all(h.cgroup_root.join(dir)).unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", h.cgroup_root.join("cpuacct")).unwrap();
        let c = Cgroups::read(&h, false);
        let m = &h.cgroup_root;
        assert_eq!(c.dir("memory", "/berth/x"), m.join("memory/berth/x"));
        assert_eq!(c.dir("memory", "rel/x"), m.join("memory/jobs/7/rel/x"));
        assert_eq!(c.dir("cpuacct", "rel/x"), m.join("cpuacct/rel/x"));
        assert_eq!(
            c.dir("systemd", "rel/x"),
            m.join("systemd/init.scope/rel/x")
        );
        assert_eq!(c.dir("memory", "../../../x"), m.join("memory/x"));
        assert_eq!(
            c.dirs("/berth/x"),
            vec![
                m.join("cpu,cpuacct/berth/x"),
                m.join("memory/berth/x"),
                m.join("systemd/berth/x"),
                m.join("unified/berth/x"),
            ],
            "folders only, not their links"
        );
    }

    #[test]
    fn unknown_own_cgroup_is_the_root() {
        let (_d, h) = host("");
        let c = Cgroups::read(&h, true);
        assert_eq!(c.dir("", "rel/x"), h.cgroup_root.join("rel/x"));
    }
}
