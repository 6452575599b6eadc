use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_config::Paths;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Client, ContainerdError, RpcCounter};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A containerd that ran this long before dying restarts without waiting.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How to run the managed containerd.
#[derive(Debug, Clone)]
pub struct ManagedOptions {
    /// The containerd binary (looked up on PATH when bare).
    pub binary: PathBuf,
    pub paths: Paths,
    /// containerd's own log level follows the daemon's debug flag.
    pub debug: bool,
    /// How long to wait for the first answer after a start.
    pub start_timeout: Duration,
}

impl ManagedOptions {
    pub fn new(paths: Paths) -> ManagedOptions {
        ManagedOptions {
            binary: PathBuf::from("containerd"),
            paths,
            debug: false,
            start_timeout: Duration::from_secs(30),
        }
    }
}

/// containerd's configuration file for a berthd: every path under berthd's own exec-root and
/// data-root, so several berthd can run side by side; the CRI plugin off.
pub fn render_config(paths: &Paths, debug: bool) -> String {
    let q = |p: PathBuf| toml_string(&p.display().to_string());
    format!(
        "# Written by berthd at every start; edits are lost.\n\
         version = 2\n\
         root = {root}\n\
         state = {state}\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.aufs\", \
         \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \
         \"io.containerd.snapshotter.v1.devmapper\"]\n\
         \n\
         [grpc]\n  address = {sock}\n\
         \n\
         [debug]\n  address = {debug_sock}\n  level = \"{level}\"\n\
         \n\
         [metrics]\n  address = \"\"\n\
         \n\
         [plugins]\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = {opt}\n",
        root = q(paths.containerd_root().join("root")),
        state = q(paths.containerd_state()),
        sock = q(paths.containerd_socket()),
        debug_sock = q(paths.containerd_debug_socket()),
        level = if debug { "debug" } else { "info" },
        opt = q(paths.containerd_root().join("opt")),
    )
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A containerd that berthd started as its child and keeps alive: restarted with backoff when
/// it dies, stopped (SIGTERM, then SIGKILL) by `stop`.
#[derive(Debug)]
pub struct ManagedContainerd {
    socket: PathBuf,
    pid: Arc<AtomicI32>,
    restarts: Arc<AtomicU64>,
    stop_tx: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

impl ManagedContainerd {
    /// Writes the configuration, stops a containerd left behind by a crashed berthd on the
    /// same paths, starts containerd and waits until it answers.
    pub async fn start(
        opts: ManagedOptions,
        counter: RpcCounter,
    ) -> Result<ManagedContainerd, ContainerdError> {
        let paths = &opts.paths;
        for (dir, mode) in [
            (paths.containerd_exec_dir(), 0o711),
            (paths.containerd_root(), 0o711),
        ] {
            fs::create_dir_all(&dir)
                .and_then(|()| fs::set_permissions(&dir, fs::Permissions::from_mode(mode)))
                .map_err(|source| ContainerdError::Write {
                    path: dir.clone(),
                    source,
                })?;
        }
        let rendered = render_config(paths, opts.debug);
        let proc = match adoptable(paths, &rendered, &counter).await {
            Some(pid) => {
                // Its shims and their tasks stay as they are: replacing it under load can
                // lose tasks that were being created.
                tracing::info!(
                    pid,
                    "adopting the containerd an earlier berthd left running"
                );
                Proc::Adopted(pid)
            }
            None => {
                stop_stale(paths).await?;
                let config = paths.containerd_config();
                fs::write(&config, &rendered).map_err(|source| ContainerdError::Write {
                    path: config.clone(),
                    source,
                })?;
                let _ = fs::remove_file(paths.containerd_socket());
                let mut child = spawn(&opts)?;
                if let Err(e) = wait_ready(&mut child, &opts, &counter).await {
                    terminate(&mut child).await;
                    let _ = fs::remove_file(paths.containerd_pidfile());
                    return Err(e);
                }
                Proc::Child(child)
            }
        };
        let pid = Arc::new(AtomicI32::new(proc.pid()));
        let restarts = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop_rx) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(
            proc,
            opts.clone(),
            counter,
            stop_rx,
            pid.clone(),
            restarts.clone(),
        ));
        Ok(ManagedContainerd {
            socket: opts.paths.containerd_socket(),
            pid,
            restarts,
            stop_tx,
            supervisor,
        })
    }

    /// The socket containerd serves on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The running containerd's pid (0 while it is being restarted).
    pub fn pid(&self) -> i32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// How many times containerd was restarted after dying.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// Stops containerd (SIGTERM, SIGKILL after a grace period) and the supervision.
    pub async fn stop(self) {
        let _ = self.stop_tx.send(true);
        if let Err(e) = self.supervisor.await {
            tracing::error!(error = %e, "containerd supervisor failed");
        }
    }
}

/// The containerd being supervised: our child, or one adopted from a berthd that crashed.
#[derive(Debug)]
enum Proc {
    Child(Child),
    Adopted(i32),
}

impl Proc {
    fn pid(&self) -> i32 {
        match self {
            Proc::Child(c) => child_pid(c),
            Proc::Adopted(p) => *p,
        }
    }

    /// Until it exits; says how.
    async fn wait(&mut self, config: &Path) -> String {
        match self {
            Proc::Child(c) => c
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string()),
            // Not our child: watch it.
            Proc::Adopted(pid) => {
                while is_our_containerd(*pid, config) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                "gone".to_string()
            }
        }
    }

    async fn terminate(&mut self, config: &Path) {
        match self {
            Proc::Child(c) => terminate(c).await,
            Proc::Adopted(raw) => {
                let pid = Pid::from_raw(*raw);
                let _ = kill(pid, Signal::SIGTERM);
                let deadline = Instant::now() + STOP_GRACE;
                while Instant::now() < deadline && is_our_containerd(*raw, config) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if is_our_containerd(*raw, config) {
                    tracing::warn!(pid = *raw, "containerd ignored SIGTERM; killing it");
                    let _ = kill(pid, Signal::SIGKILL);
                }
            }
        }
    }
}

/// The containerd in our pid file, if it runs with exactly the configuration we would write
/// and answers on our socket.
async fn adoptable(paths: &Paths, rendered: &str, counter: &RpcCounter) -> Option<i32> {
    let pid: i32 = fs::read_to_string(paths.containerd_pidfile())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if pid <= 0
        || !is_our_containerd(pid, &paths.containerd_config())
        || fs::read_to_string(paths.containerd_config()).ok()? != rendered
    {
        return None;
    }
    let socket = paths.containerd_socket().display().to_string();
    let client = Client::new(&socket, "berth", counter.clone()).ok()?;
    match tokio::time::timeout(Duration::from_secs(2), client.version()).await {
        Ok(Ok(_)) => Some(pid),
        _ => None,
    }
}

fn child_pid(child: &Child) -> i32 {
    child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0)
}

fn spawn(opts: &ManagedOptions) -> Result<Child, ContainerdError> {
    let paths = &opts.paths;
    let log_path = paths.containerd_log();
    let open_log = || {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| ContainerdError::Write {
                path: log_path.clone(),
                source,
            })
    };
    let mut cmd = Command::new(&opts.binary);
    cmd.arg("--config")
        .arg(paths.containerd_config())
        .stdin(Stdio::null())
        .stdout(open_log()?)
        .stderr(open_log()?)
        .env("PATH", path_with_sbin())
        // Its own process group: a Ctrl-C on berthd's terminal is berthd's to handle, and
        // berthd then stops containerd in order.
        .process_group(0)
        .kill_on_drop(false);
    let child = cmd.spawn().map_err(|source| ContainerdError::Spawn {
        binary: opts.binary.clone(),
        source,
    })?;
    let pidfile = paths.containerd_pidfile();
    fs::write(&pidfile, child_pid(&child).to_string()).map_err(|source| {
        ContainerdError::Write {
            path: pidfile,
            source,
        }
    })?;
    tracing::info!(pid = child_pid(&child), socket = %paths.containerd_socket().display(), "started containerd");
    Ok(child)
}

/// containerd finds its shims and runc on PATH: make sure the sbin folders are on it.
fn path_with_sbin() -> String {
    let current = std::env::var("PATH").unwrap_or_default();
    let mut parts: Vec<String> = current
        .split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !parts.iter().any(|p| p == dir) {
            parts.push(dir.to_string());
        }
    }
    parts.join(":")
}

async fn wait_ready(
    child: &mut Child,
    opts: &ManagedOptions,
    counter: &RpcCounter,
) -> Result<(), ContainerdError> {
    let socket = opts.paths.containerd_socket();
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ContainerdError::ExitedEarly {
                status: status.to_string(),
                log_tail: log_tail(&opts.paths.containerd_log()),
            });
        }
        if socket.exists() {
            let socket_str = socket.display().to_string();
            if let Ok(client) = Client::new(&socket_str, "berth", counter.clone()) {
                let probe = tokio::time::timeout(Duration::from_secs(2), client.version()).await;
                if let Ok(Ok(_)) = probe {
                    return Ok(());
                }
            }
        }
        if started.elapsed() > opts.start_timeout {
            return Err(ContainerdError::NotReady {
                address: socket,
                waited: opts.start_timeout,
                log_tail: log_tail(&opts.paths.containerd_log()),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn supervise(
    mut child: Proc,
    opts: ManagedOptions,
    counter: RpcCounter,
    mut stop_rx: watch::Receiver<bool>,
    pid: Arc<AtomicI32>,
    restarts: Arc<AtomicU64>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut started = Instant::now();
    let config = opts.paths.containerd_config();
    loop {
        tokio::select! {
            status = child.wait(&config) => {
                pid.store(0, Ordering::SeqCst);
                if started.elapsed() > HEALTHY_RUN {
                    backoff = FIRST_BACKOFF;
                }
                tracing::error!(%status, ?backoff, "containerd exited unexpectedly; restarting it");
                // Wait out the backoff, unless berthd is stopping.
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop_rx.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                match spawn(&opts) {
                    Ok(mut next) => {
                        match wait_ready(&mut next, &opts, &counter).await {
                            Ok(()) => {
                                tracing::info!(pid = child_pid(&next), "containerd restarted");
                            }
                            Err(e) => tracing::error!(error = %e, "restarted containerd is not answering"),
                        }
                        pid.store(child_pid(&next), Ordering::SeqCst);
                        restarts.fetch_add(1, Ordering::SeqCst);
                        started = Instant::now();
                        child = Proc::Child(next);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot restart containerd; trying again");
                        // Leave `child` as the exited process: wait() returns at once and the
                        // loop tries again after a longer backoff.
                    }
                }
            }
            _ = stop_rx.changed() => {
                child.terminate(&config).await;
                pid.store(0, Ordering::SeqCst);
                let _ = fs::remove_file(opts.paths.containerd_pidfile());
                tracing::info!("stopped containerd");
                return;
            }
        }
    }
}

/// SIGTERM, then SIGKILL after the grace period; reaps the child.
async fn terminate(child: &mut Child) {
    let pid = child_pid(child);
    if pid > 0 && matches!(child.try_wait(), Ok(None)) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            return;
        }
        tracing::warn!(pid, "containerd ignored SIGTERM; killing it");
    }
    let _ = child.kill().await;
}

/// A containerd recorded in our pid file that still runs with our configuration was left by
/// a berthd that did not stop cleanly: stop it before starting a fresh one, so two never
/// share one root.
async fn stop_stale(paths: &Paths) -> Result<(), ContainerdError> {
    let Ok(text) = fs::read_to_string(paths.containerd_pidfile()) else {
        return Ok(());
    };
    let Ok(raw) = text.trim().parse::<i32>() else {
        return Ok(());
    };
    if raw <= 0 || !is_our_containerd(raw, &paths.containerd_config()) {
        return Ok(());
    }
    tracing::warn!(
        pid = raw,
        "stopping a containerd left behind by an earlier berthd"
    );
    let pid = Pid::from_raw(raw);
    kill(pid, Signal::SIGTERM).map_err(|source| ContainerdError::Stale { pid: raw, source })?;
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if !is_our_containerd(raw, &paths.containerd_config()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(pid, Signal::SIGKILL).map_err(|source| ContainerdError::Stale { pid: raw, source })?;
    while is_our_containerd(raw, &paths.containerd_config()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Whether `pid` is alive (not a zombie) and was started with `config` on its command line.
fn is_our_containerd(pid: i32, config: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let zombie = fs::read_to_string(proc_dir.join("stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false);
    let want = config.display().to_string();
    !zombie && cmdline.split(|b| *b == 0).any(|arg| arg == want.as_bytes())
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_everything_under_our_roots() {
        let paths = Paths::new("/var/lib/b", "/run/b");
        let c = render_config(&paths, false);
        assert!(c.contains("version = 2"));
        assert!(c.contains("root = \"/var/lib/b/containerd/root\""));
        assert!(c.contains("state = \"/run/b/containerd/state\""));
        assert!(c.contains("address = \"/run/b/containerd/containerd.sock\""));
        assert!(c.contains("io.containerd.grpc.v1.cri"));
        assert!(c.contains("level = \"info\""));
        assert!(render_config(&paths, true).contains("level = \"debug\""));
        // Nothing points at the machine's default containerd.
        assert!(!c.contains("/run/containerd") && !c.contains("/var/lib/containerd"));
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn sbin_is_always_on_the_path() {
        assert!(path_with_sbin().split(':').any(|p| p == "/usr/sbin"));
    }

    #[test]
    fn only_our_own_containerd_counts_as_stale() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(!is_our_containerd(
            me,
            Path::new("/no/such/containerd.toml")
        ));
        assert!(!is_our_containerd(i32::MAX, Path::new("/x")));
    }
}
