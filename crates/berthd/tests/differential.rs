//! Tier 2, optional peer: the differential harness. The same sequence of Engine API calls goes
//! to dockerd (`apt-get install docker.io`, private paths) and to berth, and their answers are
//! compared: status codes, error texts, and the keys and values of the JSON answers, with IDs,
//! times and the daemons' own paths replaced by tokens first. A difference is either fixed in
//! berth or listed in `INTENDED` below with its reason (and in ARCHITECTURE.md); the test fails
//! on any other.
//!
//! Calls use API 1.41, the newest both speak (dockerd 20.10 here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::path::PathBuf;

use common::{Dockerd, TestDaemon, api, import_busybox};
use serde_json::Value;

/// Differences kept on purpose: (a part of the difference's text, why).
const INTENDED: &[(&str, &str)] = &[
    (
        "GET /info ",
        "system facts differ by nature (versions, storage driver, plugins, security options); \
         the keys clients read are compared on their own below",
    ),
    ("GET /version ", "berth's own versions and components"),
    (
        "/json .GraphDriver",
        "berth's layer store is not dockerd's overlay2 folders",
    ),
    (
        "GET /images/",
        "image fields berth does not keep (GraphDriver, Metadata)",
    ),
    (
        ".Mountpoint: ",
        "the volume's folder under each daemon's own data root",
    ),
    (
        "volumes/create .Options: dockerd {}, berth null",
        "a volume created with `DriverOpts: {}` shows `Options: null` (berth does not record \
         whether empty options were sent; the CLI sends none, and then dockerd shows null too)",
    ),
    (
        "dv .Options: dockerd {}, berth null",
        "the same volume, inspected",
    ),
    (
        "].Options: dockerd {}, berth null",
        "the same volume, listed",
    ),
    (
        ".HostConfig.MaskedPaths: ",
        "berth also masks /sys/devices/virtual/powercap, as dockerd does since 20.10.10 \
         (CVE-2020-8694); this dockerd is older",
    ),
    (
        ".NetworkSettings.Networks.none.",
        "berth makes no endpoint for `none` (nor `host`): there is nothing to connect",
    ),
    (
        ".NetworkSettings.Sandbox",
        "a `none` container's namespace is runc's own, not a sandbox berth pins",
    ),
    (
        "DELETE /containers/d3 .message: ",
        "newer dockerd's words (23 and later) for removing a running container",
    ),
    (
        "GET /containers/d3/stats?stream=0 .blkio_stats.",
        "berth does not report block I/O counters yet",
    ),
    (
        "GET /containers/d3/stats?stream=0 .memory_stats.stats.",
        "berth passes every key of the kernel's memory.stat; dockerd a fixed list",
    ),
    (
        "POST /images/load .error",
        "the words of berth's archive reader, not Go's tar; the shape (200 and an error in \
         the stream) is dockerd's",
    ),
];

/// One side of the comparison.
struct Peer {
    name: &'static str,
    socket: PathBuf,
    /// Its IDs (containers, execs, networks) and paths → tokens shared by both peers.
    tokens: Vec<(String, String)>,
}

impl Peer {
    fn call(&mut self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let path = self.untoken(path);
        let (code, text) = api(&self.socket, method, &format!("/v1.41{path}"), body);
        (code, self.tokenise(&text))
    }

    fn learn(&mut self, real: &str, token: &str) {
        if real.is_empty() {
            return;
        }
        self.tokens.push((real.to_string(), token.to_string()));
        if real.len() == 64 {
            self.tokens
                .push((real[..12].to_string(), format!("{token}:short")));
        }
        // Longest first: a full ID before its prefix.
        self.tokens.sort_by_key(|(r, _)| std::cmp::Reverse(r.len()));
    }

    fn tokenise(&self, text: &str) -> String {
        let mut t = text.to_string();
        for (real, token) in &self.tokens {
            t = t.replace(real.as_str(), token);
        }
        t
    }

    fn untoken(&self, path: &str) -> String {
        let mut p = path.to_string();
        for (real, token) in &self.tokens {
            if !token.ends_with(":short") {
                p = p.replace(token.as_str(), real);
            }
        }
        p
    }
}

/// How much of an answer is compared.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Keys and values.
    Full,
    /// Keys only (values differ by nature).
    Keys,
    /// The status only.
    Status,
}

/// RFC 3339 times, and Unix times under `Created`, become a token.
fn is_time(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T'
}

fn diff(at: &str, a: &Value, b: &Value, mode: Mode, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => out.push(format!(
                        "{at}.{k}: missing in berth (dockerd: {})",
                        short(v)
                    )),
                    Some(w) => diff(&format!("{at}.{k}"), v, w, mode, out),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    out.push(format!("{at}.{k}: only in berth ({})", short(w)));
                }
            }
        }
        (Value::Array(x), Value::Array(y))
            if mode == Mode::Full || !x.is_empty() && !y.is_empty() =>
        {
            if mode == Mode::Full && x.len() != y.len() {
                out.push(format!("{at}: dockerd {}, berth {}", short(a), short(b)));
                return;
            }
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(&format!("{at}[{i}]"), v, w, mode, out);
            }
        }
        _ if mode == Mode::Keys => {}
        (Value::String(x), Value::String(y)) if is_time(x) && is_time(y) => {}
        (Value::Number(_), Value::Number(_))
            if at.ends_with(".Created") || at.ends_with(".Pid") => {}
        _ => {
            if a != b {
                out.push(format!("{at}: dockerd {}, berth {}", short(a), short(b)));
            }
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!("{}…", &s[..120])
    } else {
        s
    }
}

/// Both answers to one call, compared; the differences go to `out`.
fn compare(
    d: &mut Peer,
    b: &mut Peer,
    method: &str,
    path: &str,
    body: Option<&str>,
    mode: Mode,
    out: &mut Vec<String>,
) -> (Value, Value) {
    let (dc, dt) = d.call(method, path, body);
    let (bc, bt) = b.call(method, path, body);
    let label = format!("{method} {path}");
    if dc != bc {
        out.push(format!(
            "{label} status: dockerd {dc}, berth {bc} (berth said: {})",
            bt.trim()
        ));
    }
    let dv: Value = serde_json::from_str(dt.trim()).unwrap_or(Value::Null);
    let bv: Value = serde_json::from_str(bt.trim()).unwrap_or(Value::Null);
    if mode != Mode::Status {
        let mut found = Vec::new();
        diff(
            "",
            &dv,
            &bv,
            if dc >= 400 { Mode::Full } else { mode },
            &mut found,
        );
        out.extend(found.into_iter().map(|f| format!("{label} {f}")));
    }
    (dv, bv)
}

/// One call: method, path (with the tokens of IDs learnt before), body, what is compared,
/// and the token the answer's `Id` becomes in both daemons' answers from then on.
struct Step(
    &'static str,
    &'static str,
    Option<&'static str>,
    Mode,
    Option<&'static str>,
);

const CREATE: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],"Cmd":["sleep","600"],"Image":"test/busybox:1","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"l":"v"},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"none","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#;
const EXEC: &str = r#"{"AttachStdout":true,"AttachStderr":true,"Cmd":["true"]}"#;
const NET: &str = r#"{"Name":"dn","CheckDuplicate":true,"Driver":"bridge","IPAM":{"Driver":"default","Config":[{"Subnet":"10.123.0.0/24"}]},"Labels":{"x":"y"}}"#;
const VOL: &str = r#"{"Name":"dv","Driver":"local","DriverOpts":{},"Labels":{"k":"v"}}"#;
const CREATE2: &str = r#"{"Image":"test/busybox:1","Cmd":["sh","-c","echo out; echo err >&2; exec sleep 600"],"Tty":false,"Labels":{"a":"b"},"HostConfig":{"NetworkMode":"none","RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2}}}"#;
const EXEC_2: &str = r#"{"AttachStdout":true,"Cmd":["sleep","1"],"Tty":true}"#;
const CREATE4: &str = r#"{"Image":"test/busybox:1","Cmd":["dd","if=/dev/zero","of=/blob","bs=1024","count=100"],"HostConfig":{"NetworkMode":"none"}}"#;

/// The calls, in order: each container, exec, network and volume through its life.
const STEPS: &[Step] = &[
    Step("GET", "/_ping", None, Mode::Status, None),
    Step("GET", "/version", None, Mode::Keys, None),
    Step("GET", "/info", None, Mode::Keys, None),
    // A container with the HostConfig fields clients send (the docker CLI's create body).
    Step(
        "POST",
        "/containers/create?name=d1",
        Some(CREATE),
        Mode::Keys,
        Some("<ctr:d1>"),
    ),
    Step("GET", "/containers/d1/json", None, Mode::Full, None),
    Step("POST", "/containers/d1/start", None, Mode::Full, None),
    Step("POST", "/containers/d1/start", None, Mode::Full, None),
    Step(
        "GET",
        "/containers/json?filters=%7B%22name%22%3A%5B%22d1%22%5D%7D",
        None,
        Mode::Full,
        None,
    ),
    Step(
        "POST",
        "/containers/d1/exec",
        Some(EXEC),
        Mode::Keys,
        Some("<exec:1>"),
    ),
    Step("GET", "/exec/<exec:1>/json", None, Mode::Full, None),
    Step("POST", "/containers/d1/pause", None, Mode::Full, None),
    Step("POST", "/containers/d1/pause", None, Mode::Full, None),
    Step("POST", "/containers/d1/unpause", None, Mode::Full, None),
    Step("GET", "/containers/d1/top", None, Mode::Keys, None),
    Step("POST", "/containers/d1/stop?t=1", None, Mode::Full, None),
    Step("POST", "/containers/d1/stop?t=1", None, Mode::Full, None),
    Step("GET", "/containers/d1/top", None, Mode::Full, None),
    Step(
        "POST",
        "/commit?container=d1&repo=diff/commit&tag=1&pause=true",
        None,
        Mode::Status,
        None,
    ),
    Step("GET", "/containers/nosuch/json", None, Mode::Full, None),
    Step("DELETE", "/containers/nosuch", None, Mode::Full, None),
    Step(
        "POST",
        "/containers/create?name=bad",
        Some(r#"{"Image":"test/busybox:1","HostConfig":{"Memory":1}}"#),
        Mode::Full,
        None,
    ),
    Step(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"nosuch/image:1"}"#),
        Mode::Full,
        None,
    ),
    Step("GET", "/images/test/busybox:1/json", None, Mode::Full, None),
    Step(
        "GET",
        "/images/test/busybox:1/history",
        None,
        Mode::Keys,
        None,
    ),
    Step(
        "GET",
        "/images/json?filters=%7B%22reference%22%3A%5B%22test%2Fbusybox%22%5D%7D",
        None,
        Mode::Full,
        None,
    ),
    Step("GET", "/images/nosuch:1/json", None, Mode::Full, None),
    Step("POST", "/images/load", Some("not a tar"), Mode::Full, None),
    Step(
        "POST",
        "/networks/create",
        Some(NET),
        Mode::Keys,
        Some("<net:dn>"),
    ),
    Step("GET", "/networks/dn", None, Mode::Full, None),
    Step("POST", "/networks/create", Some(NET), Mode::Full, None),
    Step("DELETE", "/networks/dn", None, Mode::Full, None),
    Step("GET", "/networks/dn", None, Mode::Full, None),
    Step("DELETE", "/containers/d1?v=1", None, Mode::Full, None),
    Step("DELETE", "/containers/d1?link=1", None, Mode::Full, None),
    // Volumes.
    Step("POST", "/volumes/create", Some(VOL), Mode::Full, None),
    Step("GET", "/volumes/dv", None, Mode::Full, None),
    Step(
        "GET",
        "/volumes?filters=%7B%22name%22%3A%5B%22dv%22%5D%7D",
        None,
        Mode::Full,
        None,
    ),
    Step("GET", "/volumes/nosuchvol", None, Mode::Full, None),
    Step("DELETE", "/volumes/nosuchvol", None, Mode::Full, None),
    Step("DELETE", "/volumes/dv", None, Mode::Full, None),
    Step("POST", "/volumes/prune", None, Mode::Full, None),
    // A second container through the rest of its life.
    Step(
        "POST",
        "/containers/create?name=d2",
        Some(CREATE2),
        Mode::Keys,
        Some("<ctr:d2>"),
    ),
    Step(
        "POST",
        "/containers/create?name=d2",
        Some(CREATE2),
        Mode::Full,
        None,
    ),
    Step("GET", "/containers/d2/json", None, Mode::Full, None),
    Step("POST", "/containers/d2/kill", None, Mode::Full, None),
    Step("POST", "/containers/d2/start", None, Mode::Full, None),
    Step(
        "GET",
        "/containers/d2/logs?stdout=1&stderr=1",
        None,
        Mode::Status,
        None,
    ),
    Step("GET", "/containers/d2/logs", None, Mode::Full, None),
    Step(
        "POST",
        "/containers/d2/rename?name=nosuch/x",
        None,
        Mode::Full,
        None,
    ),
    Step(
        "POST",
        "/containers/d2/rename?name=d3",
        None,
        Mode::Full,
        None,
    ),
    Step(
        "POST",
        "/containers/d3/update",
        Some(r#"{"Memory":67108864,"MemorySwap":-1}"#),
        Mode::Full,
        None,
    ),
    Step("GET", "/containers/d3/json", None, Mode::Full, None),
    Step(
        "GET",
        "/containers/d3/stats?stream=0",
        None,
        Mode::Keys,
        None,
    ),
    Step("GET", "/containers/d3/changes", None, Mode::Keys, None),
    Step(
        "HEAD",
        "/containers/d3/archive?path=/etc/passwd",
        None,
        Mode::Status,
        None,
    ),
    Step(
        "HEAD",
        "/containers/d3/archive?path=/nosuch",
        None,
        Mode::Status,
        None,
    ),
    Step(
        "POST",
        "/containers/d3/exec",
        Some(EXEC_2),
        Mode::Keys,
        Some("<exec:2>"),
    ),
    Step(
        "POST",
        "/exec/<exec:2>/start",
        Some(r#"{"Detach":true,"Tty":true}"#),
        Mode::Status,
        None,
    ),
    Step("GET", "/exec/<exec:2>/json", None, Mode::Keys, None),
    Step("POST", "/containers/d3/restart?t=0", None, Mode::Full, None),
    Step("DELETE", "/containers/d3", None, Mode::Full, None),
    Step("POST", "/containers/d3/stop?t=0", None, Mode::Full, None),
    Step(
        "POST",
        "/containers/d3/wait?condition=not-running",
        None,
        Mode::Full,
        None,
    ),
    Step("POST", "/containers/d3/kill", None, Mode::Full, None),
    Step(
        "GET",
        "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D",
        None,
        Mode::Full,
        None,
    ),
    Step(
        "POST",
        "/images/test/busybox:1/tag?repo=diff/tag&tag=2",
        None,
        Mode::Full,
        None,
    ),
    Step("DELETE", "/images/diff/tag:2", None, Mode::Full, None),
    Step("DELETE", "/images/diff/tag:2", None, Mode::Full, None),
    // A stopped container that wrote 100 KiB: what prune reclaims.
    Step(
        "POST",
        "/containers/create?name=d4",
        Some(CREATE4),
        Mode::Keys,
        Some("<ctr:d4>"),
    ),
    Step("POST", "/containers/d4/start", None, Mode::Full, None),
    Step("POST", "/containers/d4/wait", None, Mode::Full, None),
    Step("POST", "/containers/prune", None, Mode::Full, None),
    Step("GET", "/system/df", None, Mode::Keys, None),
];

#[test]
#[ignore = "needs root: berthd and dockerd (apt-get install docker.io) side by side"]
fn the_same_calls_answer_as_dockerd_does() {
    common::require_root_tier(
        "differential",
        &["containerd", "runc", "docker", "busybox", "tar", "dockerd"],
    );
    let berth = TestDaemon::new().start(&["--bridge", "none"]);
    let dockerd = Dockerd::start(&["--iptables=false", "--bridge=none"]);
    // The same image in both, with the same ID: saved by berth, loaded by dockerd.
    import_busybox(&berth);
    let saved = berth.dir.path().join("img.tar");
    assert_eq!(
        berth
            .docker(&["save", "-o", saved.to_str().unwrap(), "test/busybox:1"])
            .0,
        0
    );
    let (code, out, err) = dockerd.docker(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{out} {err}");

    let mut d = Peer {
        name: "dockerd",
        socket: dockerd.socket.clone(),
        tokens: Vec::new(),
    };
    let mut b = Peer {
        name: "berth",
        socket: berth.socket.clone(),
        tokens: Vec::new(),
    };
    d.learn(&dockerd.data_root().display().to_string(), "<root>");
    b.learn(&berth.data_root().display().to_string(), "<root>");
    for p in [&mut d, &mut b] {
        let (_, nets) = api(&p.socket.clone(), "GET", "/v1.41/networks", None);
        let nets: Value = serde_json::from_str(&nets).unwrap_or(Value::Null);
        for n in nets.as_array().into_iter().flatten() {
            let (id, name) = (
                n["Id"].as_str().unwrap_or(""),
                n["Name"].as_str().unwrap_or(""),
            );
            p.learn(id, &format!("<net:{name}>"));
        }
    }
    let _ = (d.name, b.name);

    let mut found = Vec::new();
    for Step(method, path, body, mode, token) in STEPS {
        let (dv, bv) = compare(&mut d, &mut b, method, path, *body, *mode, &mut found);
        if let Some(token) = token {
            d.learn(dv["Id"].as_str().unwrap_or(""), token);
            b.learn(bv["Id"].as_str().unwrap_or(""), token);
        }
    }

    let unexplained: Vec<&String> = found
        .iter()
        .filter(|x| !INTENDED.iter().any(|(p, _)| x.contains(p)))
        .collect();
    for x in &found {
        eprintln!("{x}");
    }
    assert!(
        unexplained.is_empty(),
        "{} differences from dockerd, not listed as intended:\n{}",
        unexplained.len(),
        unexplained
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
