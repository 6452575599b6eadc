//! A berthd started by a test on private paths, and the root tier's check of what it needs.

#![allow(
    dead_code,
    clippy::print_stderr,
    clippy::expect_used,
    clippy::unwrap_used
)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file())
}

/// The root tier's prerequisites. Root tests are `#[ignore = "needs root: ..."]`, so the
/// runner lists them as ignored, with that reason, unless asked to run them (as root,
/// `scripts/test` does); once running, a missing prerequisite fails the test and says which.
pub fn require_root_tier(test: &str, tools: &[&str]) {
    let mut missing = Vec::new();
    if !nix::unistd::Uid::effective().is_root() {
        missing.push("root".to_string());
    }
    for t in tools {
        if !on_path(t) {
            missing.push((*t).to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "{test}: the root tier needs {}",
        missing.join(", ")
    );
    private_network();
}

/// Moves the test into a network namespace of its own, with only `lo` (up): the berthd,
/// containerd, registries and dockerd it starts inherit it, so bridges, veths and nftables
/// rules never touch the machine's network, nothing can route out, and all of it goes when
/// the test ends. Called once, on the test's thread, before it starts anything.
pub fn private_network() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("a private network namespace for the test");
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("ip link set lo up");
    assert!(up.success(), "ip link set lo up");
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A berthd with its own data-root, exec-root, socket, pid file and managed containerd.
#[derive(Debug)]
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    /// This daemon's `--cgroup-parent`: its containers' cgroups are its own.
    pub cgroup_parent: String,
    pub child: Option<Child>,
}

impl TestDaemon {
    /// Paths only; `start` runs it.
    pub fn new() -> TestDaemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-it.")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        // Short: unix socket paths under it must stay below 108 bytes.
        let exec_root = PathBuf::from(format!("/run/bt-{}-{n}", std::process::id()));
        TestDaemon {
            socket: dir.path().join("d.sock"),
            pidfile: dir.path().join("d.pid"),
            config: dir.path().join("daemon.json"),
            log: dir.path().join("daemon.log"),
            cgroup_parent: format!("/berth-it-{}-{n}", std::process::id()),
            exec_root,
            dir,
            child: None,
        }
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn write_config(&self, json: &str) {
        std::fs::write(&self.config, json).expect("write config");
    }

    /// The flags every start uses, pointing at this daemon's paths.
    pub fn base_args(&self) -> Vec<String> {
        if !self.config.exists() {
            self.write_config("{}");
        }
        vec![
            "--config-file".into(),
            self.config.display().to_string(),
            "--data-root".into(),
            self.data_root().display().to_string(),
            "--exec-root".into(),
            self.exec_root.display().to_string(),
            "-H".into(),
            format!("unix://{}", self.socket.display()),
            "--pidfile".into(),
            self.pidfile.display().to_string(),
            "--containerd-namespace".into(),
            format!("berth-it-{}", std::process::id()),
            "--cgroup-parent".into(),
            self.cgroup_parent.clone(),
        ]
    }

    pub fn spawn(&self, extra: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        Command::new(BERTHD)
            .args(self.base_args())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn berthd")
    }

    /// Starts berthd and waits until `/_ping` answers.
    pub fn start(mut self, extra: &[&str]) -> TestDaemon {
        self.child = Some(self.spawn(extra));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("berthd exited ({status}):\n{}", self.log_text());
            }
            if self
                .request("GET", "/_ping")
                .is_some_and(|(code, _)| code == 200)
            {
                return self;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("berthd did not answer in 30s:\n{}", self.log_text());
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).expect("started")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One HTTP/1.0 request on the socket: (status, body).
    pub fn request(&self, method: &str, path: &str) -> Option<(u16, String)> {
        let mut s = UnixStream::connect(&self.socket).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(s, "{method} {path} HTTP/1.0\r\nHost: berth\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let code = out.split_whitespace().nth(1)?.parse().ok()?;
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((code, body))
    }

    /// The docker CLI pointed at this daemon: (exit code, stdout, stderr).
    pub fn docker(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .output()
            .expect("docker CLI");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }

    /// `docker run -d --network none ARGS...`; the run must succeed.
    pub fn run_d(&self, args: &[&str]) {
        let mut all = vec!["run", "-d", "--network", "none"];
        all.extend_from_slice(args);
        let (code, _, err) = self.docker(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
    }

    /// `docker inspect -f FORMAT NAME`'s output.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.docker(&["inspect", "-f", format, name]).1
    }

    /// A container's host pid.
    pub fn pid_of(&self, name: &str) -> i32 {
        self.inspect(name, "{{.State.Pid}}").parse().expect("a pid")
    }

    /// SIGKILL of berthd, reaped.
    pub fn crash(&mut self) {
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    pub fn containerd_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.exec_root.join("containerd/containerd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// This daemon's cgroup parent in every hierarchy: one folder on cgroup v2, one per
    /// hierarchy on v1 (whether it exists yet or not).
    pub fn cgroup_parents(&self) -> Vec<PathBuf> {
        let mount = Path::new("/sys/fs/cgroup");
        let rel = self.cgroup_parent.trim_start_matches('/');
        if mount.join("cgroup.controllers").exists() {
            return vec![mount.join(rel)];
        }
        std::fs::read_dir(mount)
            .map(|r| {
                r.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path().join(rel))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The cgroups under this daemon's parent, in every hierarchy.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        self.cgroup_parents()
            .iter()
            .filter_map(|p| std::fs::read_dir(p).ok())
            .flat_map(|r| r.flatten())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()
    }

    /// Pids of live processes whose command line names this daemon's exec-root (its
    /// containerd, and later its shims).
    pub fn own_processes(&self) -> Vec<i32> {
        processes_mentioning(&self.exec_root.display().to_string())
    }
}

pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false);
        if !zombie && String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Pids whose parent is `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<i32>().ok())
                })
                == Some(pid)
        })
        .collect()
}

/// Unmounts (lazily, deepest first) every mount under the given roots.
pub fn unmount_under(roots: &[&std::path::Path]) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut ours: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| roots.iter().any(|r| Path::new(m).starts_with(r)))
        .collect();
    ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in ours {
        eprintln!("cleanup: unmounting {m}");
        let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Seconds since the epoch, a second ago (for `docker events --since`).
pub fn a_second_ago() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(1)
}

pub fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.stop();
        // Whatever this daemon started and left behind, by pid.
        let leftovers = self.own_processes();
        for pid in &leftovers {
            // A shim's container first: it would outlive its shim.
            for child in children_of(*pid) {
                let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
            }
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if !leftovers.is_empty() {
            eprintln!(
                "cleanup: killed {} leftover process(es) of this daemon",
                leftovers.len()
            );
        }
        unmount_under(&[&self.exec_root, self.dir.path()]);
        let _ = std::fs::remove_dir_all(&self.exec_root);
        // Its cgroup parent, once what was killed has left it (cgroups go by rmdir alone).
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            for cg in self.cgroups() {
                let _ = std::fs::remove_dir(cg);
            }
            for p in self.cgroup_parents() {
                let _ = std::fs::remove_dir(p);
            }
            let left: Vec<PathBuf> = self
                .cgroup_parents()
                .into_iter()
                .filter(|p| p.exists())
                .collect();
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("cleanup: cgroups left: {left:?}");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A busybox root file system as a tarball, imported as `test/busybox:1`.
pub fn import_busybox(d: &TestDaemon) {
    import_busybox_as(d, "test/busybox:1", |_| {});
}

/// The busybox root file system, changed by `extra` (given its folder), imported as `name`.
pub fn import_busybox_as(d: &TestDaemon, name: &str, extra: impl FnOnce(&Path)) {
    let root = d
        .dir
        .path()
        .join(format!("rootfs-{}", name.replace([':', '/'], "-")));
    let tar = busybox_tar(
        &root,
        &["sh", "echo", "sleep", "cat", "true", "id", "wc", "grep"],
        extra,
    );
    let (code, _, err) = d.docker(&["import", tar.to_str().unwrap(), name]);
    assert_eq!(code, 0, "{err}");
}

/// A busybox root file system at `root` (the static busybox, `applets` linked to it, a
/// passwd with root), changed by `extra`, packed as `<root>.tar`; returns the tar's path.
pub fn busybox_tar(root: &Path, applets: &[&str], extra: impl FnOnce(&Path)) -> PathBuf {
    for dir in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox");
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in applets {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    extra(root);
    let tar = root.with_extension("tar");
    let ok = std::process::Command::new("tar")
        .args([
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    tar
}

/// A dockerd on private paths (its own containerd), for side-by-side tests.
#[derive(Debug)]
pub struct Dockerd {
    pub socket: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
    exec_root: String,
}

impl Dockerd {
    /// Starts dockerd with `extra` flags and waits until it answers.
    pub fn start(extra: &[&str]) -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("dk-it.")
            .tempdir_in("/tmp")
            .unwrap();
        // One per dockerd: two tests of one binary may run side by side (cargo test threads).
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let exec_root = format!("/run/dk-{}-{n}", std::process::id());
        let sock = dir.path().join("d.sock");
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--data-root", dir.path().join("data").to_str().unwrap()])
            .args(["--exec-root", &exec_root])
            .args(["-H", &format!("unix://{}", sock.display())])
            .args(["--pidfile", dir.path().join("p.pid").to_str().unwrap()])
            .args(extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let d = Dockerd {
            socket: sock.clone(),
            child,
            dir,
            exec_root,
        };
        wait_until("dockerd answering", Duration::from_secs(60), || {
            d.docker(&["version"]).0 == 0
        });
        d
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The docker CLI pointed at this dockerd: (exit code, stdout, stderr).
    pub fn docker(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("docker")
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.dir.path().join("d.sock").display()),
            )
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in processes_mentioning(&format!("{}/", self.exec_root)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        unmount_under(&[std::path::Path::new(&self.exec_root), self.dir.path()]);
        let _ = std::fs::remove_dir_all(&self.exec_root);
    }
}

/// One HTTP/1.0 request on a daemon's socket, with an optional JSON body: (status, body).
/// HTTP/1.0 keeps both daemons from chunking the answer.
pub fn api(socket: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    api_with(
        socket,
        method,
        path,
        "application/json",
        body.unwrap_or("").as_bytes(),
    )
}

/// `api` with a body of any type (a tar for `POST /build`).
pub fn api_with(
    socket: &Path,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let mut s = UnixStream::connect(socket).expect("connect to the daemon");
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: api\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("write the request");
    s.write_all(body).expect("write the body");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).to_string();
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Debian's docker-registry (distribution 2.8) of the test's own on 127.0.0.1, its storage in
/// a temporary folder; stopped (by its PID) when dropped.
pub struct Registry {
    child: std::process::Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Registry {
    /// With `auth`, htpasswd basic auth for user `acc`, password `s3cret`.
    pub fn start(auth: bool) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("reg-it.")
            .tempdir_in("/tmp")
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  \
             filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        if auth {
            let out = std::process::Command::new("htpasswd")
                .args(["-Bbn", "acc", "s3cret"])
                .output()
                .unwrap();
            assert!(out.status.success());
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, out.stdout).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: acc\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, dir, port }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The blob file the registry serves for `digest`.
    pub fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
