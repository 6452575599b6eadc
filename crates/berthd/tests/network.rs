//! Tier 2: bridged networking through a real berthd, containerd and runc, each test in a
//! network namespace of its own (see `common::private_network`): nothing is left after many
//! runs, live-restore keeps a running container's network, a shutdown without it removes what
//! berth made, and the embedded DNS forwards only where it may (to a fake upstream here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestDaemon, import_busybox, wait_until};

const TOOLS: &[&str] = &[
    "containerd",
    "runc",
    "docker",
    "busybox",
    "curl",
    "nft",
    "ip",
];

/// Interface names in this (the test's) namespace.
fn links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// berth's nftables table, as `nft` lists it ("" when there is none).
fn berth_table() -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn netns_files(d: &TestDaemon) -> Vec<String> {
    std::fs::read_dir(d.exec_root.join("netns"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn http_get(url: &str) -> Option<String> {
    for _ in 0..40 {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "2", url])
            .output()
            .unwrap();
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

/// `docker network create --subnet SUBNET NAME`; it must succeed.
fn subnet(d: &TestDaemon, name: &str, subnet: &str) {
    let (code, _, err) = d.docker(&["network", "create", "--subnet", subnet, name]);
    assert_eq!(code, 0, "{err}");
}

/// `docker run -d --name NAME ARGS... busybox httpd` serving the page NAME on port 80.
fn serve(d: &TestDaemon, name: &str, args: &[&str]) {
    let mut all = vec!["run", "-d", "--name", name];
    all.extend_from_slice(args);
    let script =
        format!("mkdir -p /www && echo {name} >/www/index.html && exec httpd -f -p 80 -h /www");
    all.extend_from_slice(&["test/busybox:1", "sh", "-c", &script]);
    let (code, _, err) = d.docker(&all);
    assert_eq!(code, 0, "{err}");
}

/// A page fetched by a fresh container on `network` (busybox wget, retried while a server
/// comes up).
fn fetch_from(d: &TestDaemon, network: &str, url: &str) -> String {
    let script = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do timeout 3 wget -qO- {url} 2>/dev/null && exit 0; sleep 1; done; exit 1"
    );
    let (code, out, err) = d.docker(&[
        "run",
        "--rm",
        "--network",
        network,
        "test/busybox:1",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(code, 0, "{url} from {network}: {err}");
    out
}

#[test]
#[ignore = "needs root: a berthd with containerd, runc and nftables in a private network namespace"]
fn five_hundred_bridged_runs_leave_no_veth_rule_port_or_namespace() {
    common::require_root_tier("bridged_leaks", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    subnet(&d, "leaknet", "10.77.0.0/24");
    let before_links = links();
    let before_table = berth_table();
    for i in 0..500 {
        let args: Vec<&str> = match i % 10 {
            // Published ports: a DNAT rule and a held host socket each time.
            0 => vec![
                "run",
                "--rm",
                "-p",
                "127.0.0.1:24080:80",
                "test/busybox:1",
                "true",
            ],
            // A user network: an embedded DNS server each time.
            1 => vec![
                "run",
                "--rm",
                "--network",
                "leaknet",
                "test/busybox:1",
                "true",
            ],
            _ => vec!["run", "--rm", "test/busybox:1", "true"],
        };
        let (code, _, err) = d.docker(&args);
        assert_eq!(code, 0, "run {i}: {err}");
    }
    assert_eq!(links(), before_links, "no veth is left");
    assert!(
        links().iter().all(|l| !l.starts_with("veth")),
        "{:?}",
        links()
    );
    assert_eq!(berth_table(), before_table, "the rules are as before");
    assert!(!berth_table().contains("dnat to"), "{}", berth_table());
    assert!(netns_files(&d).is_empty(), "{:?}", netns_files(&d));
    assert!(
        TcpListener::bind("127.0.0.1:24080").is_ok(),
        "the published host port is free again"
    );
    let (_, ps, _) = d.docker(&["ps", "-aq"]);
    assert!(ps.is_empty(), "{ps}");
    // Addresses were given back: the next container takes the first one again.
    let (code, ip, err) = d.docker(&[
        "run",
        "--rm",
        "--network",
        "leaknet",
        "test/busybox:1",
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | awk '{print $4}'",
    ]);
    assert_eq!((code, ip.as_str()), (0, "10.77.0.2/24"), "{err}");
}

/// Checks a running `web` (on `accnet`, alias `webalias`, published on 127.0.0.1:PORT):
/// its address, the page through the published port and by name from another container.
fn web_works(d: &TestDaemon, port: u16, ip: &str) {
    assert_eq!(
        d.inspect("web", "{{.NetworkSettings.Networks.accnet.IPAddress}}"),
        ip
    );
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("web"),
        "published port"
    );
    assert_eq!(fetch_from(d, "accnet", "http://webalias/"), "web", "DNS");
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_err(),
        "berthd holds the published host port"
    );
}

#[test]
#[ignore = "needs root: a berthd with containerd, runc and nftables in a private network namespace"]
fn live_restore_keeps_addresses_dns_and_published_ports_across_restart_and_crash() {
    common::require_root_tier("network_live_restore", TOOLS);
    let d = TestDaemon::new();
    d.write_config(r#"{"live-restore": true}"#);
    let mut d = d.start(&[]);
    import_busybox(&d);
    subnet(&d, "accnet", "10.78.0.0/24");
    let port = 24180;
    serve(
        &d,
        "web",
        &[
            "--network",
            "accnet",
            "--network-alias",
            "webalias",
            "-p",
            &format!("127.0.0.1:{port}:80"),
        ],
    );
    let ip = d.inspect("web", "{{.NetworkSettings.Networks.accnet.IPAddress}}");
    assert!(ip.starts_with("10.78.0."), "{ip}");
    let pid = d.pid_of("web");
    web_works(&d, port, &ip);

    d.stop();
    assert!(common::alive(pid), "the container outlives berthd");
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("web"),
        "the kernel forwards while berthd is away"
    );
    let mut d = d.start(&[]);
    web_works(&d, port, &ip);

    d.crash();
    let d = d.start(&[]);
    web_works(&d, port, &ip);
    assert_eq!(d.pid_of("web"), pid);
    // A new container does not take web's address.
    let (code, other, err) = d.docker(&[
        "run",
        "--rm",
        "--network",
        "accnet",
        "test/busybox:1",
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | awk '{print $4}'",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(other, format!("{ip}/24"));
}

#[test]
#[ignore = "needs root: a berthd with containerd, runc and nftables in a private network namespace"]
fn a_shutdown_without_live_restore_removes_what_berth_made() {
    common::require_root_tier("network_shutdown", TOOLS);
    let before = links();
    let mut d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    subnet(&d, "gone", "10.79.0.0/24");
    serve(&d, "pub", &["-p", "127.0.0.1:24280:80"]);
    serve(&d, "user", &["--network", "gone"]);
    assert_eq!(http_get("http://127.0.0.1:24280/").as_deref(), Some("pub"));
    assert!(links().iter().any(|l| l == "berth0"));
    assert!(berth_table().contains("dnat to"));
    assert_eq!(d.stop(), Some(0));
    assert_eq!(links(), before, "bridges and veths are gone");
    assert_eq!(berth_table(), "", "the nftables table is gone");
    assert!(netns_files(&d).is_empty(), "{:?}", netns_files(&d));
    assert!(TcpListener::bind("127.0.0.1:24280").is_ok());
    // The next start makes them again, and the network is still there.
    let d = d.start(&[]);
    assert_eq!(
        d.docker(&["network", "inspect", "-f", "{{.Name}}", "gone"])
            .1,
        "gone"
    );
    wait_until("berth0 again", Duration::from_secs(5), || {
        links().iter().any(|l| l == "berth0")
    });
}

/// A DNS server on 127.0.0.1:53 of the test's namespace that answers every A question with
/// 192.0.2.77, counting the queries.
fn fake_upstream() -> Arc<AtomicUsize> {
    let sock = UdpSocket::bind("127.0.0.1:53").expect("bind 127.0.0.1:53");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                return;
            };
            seen.fetch_add(1, Ordering::SeqCst);
            if n < 12 {
                continue;
            }
            // The question ends after its name (labels up to a zero byte) and 4 bytes.
            let mut at = 12;
            while at < n && buf[at] != 0 {
                at += usize::from(buf[at]) + 1;
            }
            let end = at + 5;
            if end > n {
                continue;
            }
            let mut reply = buf[..end].to_vec();
            reply[2] = 0x81; // response, recursion desired
            reply[3] = 0x80; // recursion available, NOERROR
            reply[6..8].copy_from_slice(&[0, u8::from(buf[at + 2] == 1)]); // one answer for A
            reply[8..12].copy_from_slice(&[0, 0, 0, 0]);
            if buf[at + 2] == 1 {
                reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 77]);
            }
            let _ = sock.send_to(&reply, from);
        }
    });
    count
}

#[test]
#[ignore = "needs root: a berthd with containerd, runc and nftables in a private network namespace"]
fn the_embedded_dns_forwards_outside_names_but_never_from_an_internal_network() {
    common::require_root_tier("dns_forwarding", TOOLS);
    let upstream = fake_upstream();
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    for args in [
        vec!["network", "create", "--subnet", "10.80.0.0/24", "fwd"],
        vec![
            "network",
            "create",
            "--internal",
            "--subnet",
            "10.81.0.0/24",
            "int",
        ],
    ] {
        let (code, _, err) = d.docker(&args);
        assert_eq!(code, 0, "{err}");
    }
    let lookup = |network: &str| {
        d.docker(&[
            "run",
            "--rm",
            "--network",
            network,
            "--dns",
            "127.0.0.1",
            "test/busybox:1",
            "sh",
            "-c",
            "nslookup -type=a somewhere.example 2>&1; true",
        ])
        .1
    };
    let out = lookup("fwd");
    assert!(out.contains("192.0.2.77"), "forwarded and answered: {out}");
    assert!(upstream.load(Ordering::SeqCst) >= 1);
    let before = upstream.load(Ordering::SeqCst);
    let out = lookup("int");
    assert!(!out.contains("192.0.2.77"), "{out}");
    assert_eq!(
        upstream.load(Ordering::SeqCst),
        before,
        "an internal network's DNS never forwards"
    );
    // Names of the network are answered by berthd itself, not forwarded.
    serve(&d, "named", &["--network", "fwd"]);
    let before = upstream.load(Ordering::SeqCst);
    assert_eq!(fetch_from(&d, "fwd", "http://named/"), "named");
    assert_eq!(upstream.load(Ordering::SeqCst), before);
}

#[test]
#[ignore = "needs root: a berthd with containerd, runc and nftables in a private network namespace"]
fn a_default_bridge_container_connected_to_a_user_network_resolves_its_names() {
    common::require_root_tier("connect_dns", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    subnet(&d, "later", "10.82.0.0/24");
    serve(&d, "target", &["--network", "later"]);
    let (code, _, err) = d.docker(&[
        "run",
        "-d",
        "--name",
        "client",
        "test/busybox:1",
        "sleep",
        "600",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, before, _) = d.docker(&["exec", "client", "grep", "^nameserver", "/etc/resolv.conf"]);
    assert!(!before.contains("127.0.0.11"), "{before}");
    let (code, _, err) = d.docker(&["network", "connect", "later", "client"]);
    assert_eq!(code, 0, "{err}");
    let (_, after, _) = d.docker(&["exec", "client", "grep", "^nameserver", "/etc/resolv.conf"]);
    assert_eq!(after, "nameserver 127.0.0.11");
    let script = "for i in 1 2 3 4 5; do timeout 3 wget -qO- http://target/ 2>/dev/null && exit 0; sleep 1; done; exit 1";
    let (code, page, err) = d.docker(&["exec", "client", "sh", "-c", script]);
    assert_eq!((code, page.as_str()), (0, "target"), "{err}");
    // Its interfaces: eth0 on the default bridge, eth1 on the new network.
    let (_, ifs, _) = d.docker(&[
        "exec",
        "client",
        "sh",
        "-c",
        "ls /sys/class/net | sort | tr '\\n' ' '",
    ]);
    assert_eq!(ifs.trim(), "eth0 eth1 lo");
}

#[test]
#[ignore = "needs root: a berthd with containerd, runc and nftables in a private network namespace"]
fn without_nftables_a_published_port_is_copied_in_userland() {
    common::require_root_tier("userland_proxy", TOOLS);
    let d = TestDaemon::new().start(&["--iptables=false"]);
    import_busybox(&d);
    serve(&d, "copied", &["-p", "127.0.0.1:24380:80"]);
    assert_eq!(
        http_get("http://127.0.0.1:24380/").as_deref(),
        Some("copied")
    );
    assert_eq!(berth_table(), "", "no nftables table with --iptables=false");
}

#[test]
#[ignore = "needs root: a berthd with containerd, runc and nftables in a private network namespace"]
fn bip_address_pools_mtu_and_bridge_none_are_dockerds_flags() {
    common::require_root_tier("network_flags", TOOLS);
    let mut d = TestDaemon::new().start(&[
        "--bip",
        "10.90.0.1/24",
        "--default-address-pool",
        "base=10.91.0.0/16,size=24",
        "--mtu",
        "1400",
    ]);
    import_busybox(&d);
    assert_eq!(
        d.docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
            "bridge"
        ])
        .1,
        "10.90.0.0/24 10.90.0.1"
    );
    let (code, _, err) = d.docker(&["network", "create", "pooled"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        d.docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "pooled"
        ])
        .1,
        "10.91.0.0/24"
    );
    let (code, out, err) = d.docker(&[
        "run",
        "--rm",
        "test/busybox:1",
        "sh",
        "-c",
        "echo $(ip -4 -o addr show eth0 | awk '{print $4}') $(cat /sys/class/net/eth0/mtu)",
    ]);
    assert_eq!((code, out.as_str()), (0, "10.90.0.2/24 1400"), "{err}");
    d.stop();

    // --bridge none: no default bridge; a container without --network gets none.
    let d = d.start(&["--bridge", "none"]);
    let (_, names, _) = d.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!names.lines().any(|n| n == "bridge"), "{names}");
    let (code, out, err) = d.docker(&[
        "run",
        "--rm",
        "test/busybox:1",
        "sh",
        "-c",
        "ls /sys/class/net",
    ]);
    assert_eq!((code, out.as_str()), (0, "lo"), "{err}");
}

#[test]
#[ignore = "needs root: a berthd with containerd, runc and nftables in a private network namespace"]
fn an_endpoint_link_is_a_name_only_its_container_resolves() {
    common::require_root_tier("endpoint_links", TOOLS);
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    subnet(&d, "linked", "10.83.0.0/24");
    serve(&d, "db", &["--network", "linked"]);
    let fetch = "for i in 1 2 3 4 5; do timeout 3 wget -qO- http://database/ 2>/dev/null && exit 0; sleep 1; done; exit 1";
    let (code, _, err) = d.docker(&[
        "create",
        "--name",
        "app",
        "test/busybox:1",
        "sh",
        "-c",
        fetch,
    ]);
    assert_eq!(code, 0, "{err}");
    // Compose's `links:` on a user network: EndpointConfig.Links, here through connect.
    let (code, _, err) = d.docker(&[
        "network",
        "connect",
        "--link",
        "db:database",
        "linked",
        "app",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, page, err) = d.docker(&["start", "-a", "app"]);
    assert_eq!((code, page.as_str()), (0, "db"), "{err}");
    // Another container on the network does not know the alias.
    let (code, _, _) = d.docker(&[
        "run",
        "--rm",
        "--network",
        "linked",
        "test/busybox:1",
        "sh",
        "-c",
        "nslookup database 127.0.0.11 >/dev/null 2>&1",
    ]);
    assert_ne!(code, 0);
}
