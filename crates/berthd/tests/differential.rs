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
    let f = &mut found;
    compare(&mut d, &mut b, "GET", "/_ping", None, Mode::Status, f);
    compare(&mut d, &mut b, "GET", "/version", None, Mode::Keys, f);
    compare(&mut d, &mut b, "GET", "/info", None, Mode::Keys, f);

    // A container with the HostConfig fields clients send (the docker CLI's create body).
    let create = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],"Cmd":["sleep","600"],"Image":"test/busybox:1","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"l":"v"},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"none","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#;
    let (dv, bv) = compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/create?name=d1",
        Some(create),
        Mode::Keys,
        f,
    );
    d.learn(dv["Id"].as_str().unwrap_or(""), "<ctr:d1>");
    b.learn(bv["Id"].as_str().unwrap_or(""), "<ctr:d1>");
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/d1/json",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d1/start",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d1/start",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/json?filters=%7B%22name%22%3A%5B%22d1%22%5D%7D",
        None,
        Mode::Full,
        f,
    );
    let exec = r#"{"AttachStdout":true,"AttachStderr":true,"Cmd":["true"]}"#;
    let (dv, bv) = compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d1/exec",
        Some(exec),
        Mode::Keys,
        f,
    );
    d.learn(dv["Id"].as_str().unwrap_or(""), "<exec:1>");
    b.learn(bv["Id"].as_str().unwrap_or(""), "<exec:1>");
    compare(
        &mut d,
        &mut b,
        "GET",
        "/exec/<exec:1>/json",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d1/pause",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d1/pause",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d1/unpause",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/d1/top",
        None,
        Mode::Keys,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d1/stop?t=1",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d1/stop?t=1",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/d1/top",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/commit?container=d1&repo=diff/commit&tag=1&pause=true",
        None,
        Mode::Status,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/nosuch/json",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "DELETE",
        "/containers/nosuch",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/create?name=bad",
        Some(r#"{"Image":"test/busybox:1","HostConfig":{"Memory":1}}"#),
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/create",
        Some(r#"{"Image":"nosuch/image:1"}"#),
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/images/test/busybox:1/json",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/images/test/busybox:1/history",
        None,
        Mode::Keys,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/images/json?filters=%7B%22reference%22%3A%5B%22test%2Fbusybox%22%5D%7D",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/images/nosuch:1/json",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/images/load",
        Some("not a tar"),
        Mode::Full,
        f,
    );
    let net = r#"{"Name":"dn","CheckDuplicate":true,"Driver":"bridge","IPAM":{"Driver":"default","Config":[{"Subnet":"10.123.0.0/24"}]},"Labels":{"x":"y"}}"#;
    let (dv, bv) = compare(
        &mut d,
        &mut b,
        "POST",
        "/networks/create",
        Some(net),
        Mode::Keys,
        f,
    );
    d.learn(dv["Id"].as_str().unwrap_or(""), "<net:dn>");
    b.learn(bv["Id"].as_str().unwrap_or(""), "<net:dn>");
    compare(&mut d, &mut b, "GET", "/networks/dn", None, Mode::Full, f);
    compare(
        &mut d,
        &mut b,
        "POST",
        "/networks/create",
        Some(net),
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "DELETE",
        "/networks/dn",
        None,
        Mode::Full,
        f,
    );
    compare(&mut d, &mut b, "GET", "/networks/dn", None, Mode::Full, f);
    compare(
        &mut d,
        &mut b,
        "DELETE",
        "/containers/d1?v=1",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "DELETE",
        "/containers/d1?link=1",
        None,
        Mode::Full,
        f,
    );
    // Volumes.
    let vol = r#"{"Name":"dv","Driver":"local","DriverOpts":{},"Labels":{"k":"v"}}"#;
    compare(
        &mut d,
        &mut b,
        "POST",
        "/volumes/create",
        Some(vol),
        Mode::Full,
        f,
    );
    compare(&mut d, &mut b, "GET", "/volumes/dv", None, Mode::Full, f);
    compare(
        &mut d,
        &mut b,
        "GET",
        "/volumes?filters=%7B%22name%22%3A%5B%22dv%22%5D%7D",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/volumes/nosuchvol",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "DELETE",
        "/volumes/nosuchvol",
        None,
        Mode::Full,
        f,
    );
    compare(&mut d, &mut b, "DELETE", "/volumes/dv", None, Mode::Full, f);
    compare(
        &mut d,
        &mut b,
        "POST",
        "/volumes/prune",
        None,
        Mode::Full,
        f,
    );
    // A second container through the rest of its life.
    let create2 = r#"{"Image":"test/busybox:1","Cmd":["sh","-c","echo out; echo err >&2; exec sleep 600"],"Tty":false,"Labels":{"a":"b"},"HostConfig":{"NetworkMode":"none","RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2}}}"#;
    let (dv, bv) = compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/create?name=d2",
        Some(create2),
        Mode::Keys,
        f,
    );
    d.learn(dv["Id"].as_str().unwrap_or(""), "<ctr:d2>");
    b.learn(bv["Id"].as_str().unwrap_or(""), "<ctr:d2>");
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/create?name=d2",
        Some(create2),
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/d2/json",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d2/kill",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d2/start",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/d2/logs?stdout=1&stderr=1",
        None,
        Mode::Status,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/d2/logs",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d2/rename?name=nosuch/x",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d2/rename?name=d3",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d3/update",
        Some(r#"{"Memory":67108864,"MemorySwap":-1}"#),
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/d3/json",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/d3/stats?stream=0",
        None,
        Mode::Keys,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/d3/changes",
        None,
        Mode::Keys,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "HEAD",
        "/containers/d3/archive?path=/etc/passwd",
        None,
        Mode::Status,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "HEAD",
        "/containers/d3/archive?path=/nosuch",
        None,
        Mode::Status,
        f,
    );
    let exec = r#"{"AttachStdout":true,"Cmd":["sleep","1"],"Tty":true}"#;
    let (dv, bv) = compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d3/exec",
        Some(exec),
        Mode::Keys,
        f,
    );
    d.learn(dv["Id"].as_str().unwrap_or(""), "<exec:2>");
    b.learn(bv["Id"].as_str().unwrap_or(""), "<exec:2>");
    compare(
        &mut d,
        &mut b,
        "POST",
        "/exec/<exec:2>/start",
        Some(r#"{"Detach":true,"Tty":true}"#),
        Mode::Status,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/exec/<exec:2>/json",
        None,
        Mode::Keys,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d3/restart?t=0",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "DELETE",
        "/containers/d3",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d3/stop?t=0",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d3/wait?condition=not-running",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d3/kill",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "GET",
        "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/images/test/busybox:1/tag?repo=diff/tag&tag=2",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "DELETE",
        "/images/diff/tag:2",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "DELETE",
        "/images/diff/tag:2",
        None,
        Mode::Full,
        f,
    );
    // A stopped container that wrote 100 KiB: what prune reclaims.
    let create4 = r#"{"Image":"test/busybox:1","Cmd":["dd","if=/dev/zero","of=/blob","bs=1024","count=100"],"HostConfig":{"NetworkMode":"none"}}"#;
    let (dv, bv) = compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/create?name=d4",
        Some(create4),
        Mode::Keys,
        f,
    );
    d.learn(dv["Id"].as_str().unwrap_or(""), "<ctr:d4>");
    b.learn(bv["Id"].as_str().unwrap_or(""), "<ctr:d4>");
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d4/start",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/d4/wait",
        None,
        Mode::Full,
        f,
    );
    compare(
        &mut d,
        &mut b,
        "POST",
        "/containers/prune",
        None,
        Mode::Full,
        f,
    );
    compare(&mut d, &mut b, "GET", "/system/df", None, Mode::Keys, f);

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
