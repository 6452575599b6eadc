//! Root tests of the kernel side: network namespaces, bridges and veths, berth's nftables
//! table, held ports. Every test first moves its own thread into a fresh network namespace
//! (and a private mount namespace), so nothing it makes touches the machine's network; the
//! threads and processes it starts afterwards inherit both.
//!
//! Run as root: `cargo test -p berth-network -- --include-ignored`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use berth_network::NetworkError;
use berth_network::link::{self, Endpoint, Links};
use berth_network::netns::Netns;
use berth_network::nft::{self, BridgeRules, PortRule, Proto, Ruleset};
use berth_network::ports;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

/// Panics unless the test can really run: root, and the tools it drives.
fn require_root_and_tools() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "kernel tests must run as root (they were asked for with --include-ignored)"
    );
    for (tool, version) in [("nft", "--version"), ("ip", "-V"), ("python3", "--version")] {
        let found = Command::new(tool)
            .arg(version)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(found, "kernel tests need `{tool}` on PATH");
    }
}

/// Moves the calling thread into a fresh network namespace (lo up) and a private mount
/// namespace, then builds the runtime whose threads inherit them.
fn private_namespace() -> tokio::runtime::Runtime {
    require_root_and_tools();
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).expect("unshare");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async { Links::new()?.set_up("lo").await })
        .expect("lo up");
    rt
}

fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo").expect("mountinfo");
    let path = path.to_str().expect("utf-8 path");
    info.lines().any(|l| l.split(' ').nth(4) == Some(path))
}

fn netns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("ns file").ino()
}

/// `ip args` run inside `ns` (the child inherits the namespace of the thread spawning it).
fn ip_in(ns: &Netns, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let out = ns
        .run(move || Command::new("ip").args(&args).output())
        .expect("run")
        .expect("ip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Accepts `n` connections, answering each with the peer's address, then ends.
fn serve_peer_addresses(listener: TcpListener, n: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for _ in 0..n {
            let (mut stream, peer) = listener.accept().expect("accept");
            stream
                .write_all(peer.ip().to_string().as_bytes())
                .expect("write");
        }
    })
}

/// Connects to `addr` and reads the answer to its end.
fn fetch(addr: SocketAddrV4) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::V4(addr), Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

fn fetch_in(ns: &Netns, addr: SocketAddrV4) -> std::io::Result<String> {
    ns.run(move || fetch(addr)).expect("run")
}

fn listen_in(ns: &Netns, addr: SocketAddrV4) -> TcpListener {
    ns.run(move || TcpListener::bind(addr))
        .expect("run")
        .expect("bind inside the namespace")
}

fn endpoint(n: u8, bridge: &str, subnet: [u8; 3], gateway: bool) -> Endpoint {
    let [a, b, c] = subnet;
    let address = Ipv4Addr::new(a, b, c, n);
    Endpoint {
        host_if: format!("vethtest{n}"),
        bridge: bridge.to_owned(),
        if_name: "eth0".to_owned(),
        mac: link::mac_for(address),
        address,
        prefix: 24,
        gateway: gateway.then(|| Ipv4Addr::new(a, b, c, 1)),
        mtu: 1400,
    }
}

#[test]
#[ignore = "needs root: netlink and nftables in a private network namespace"]
fn netns_is_created_pinned_entered_and_removed() {
    let rt = private_namespace();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("netns").join("0123456789ab");

    let ns = Netns::create(&path).expect("create");
    assert_eq!(ns.path(), path);
    assert!(mounted(&path), "the namespace is pinned by a mount");
    assert!(Netns::open(&path).is_ok());
    assert!(
        Netns::create(&path).is_err(),
        "a pinned namespace is not made over"
    );

    // Entering it: another namespace than ours, holding only lo, up.
    let ours = netns_inode("/proc/thread-self/ns/net");
    let theirs = ns
        .run(|| netns_inode("/proc/thread-self/ns/net"))
        .expect("run");
    assert_ne!(ours, theirs);
    assert_eq!(netns_inode(path.to_str().unwrap()), theirs);
    let links = rt.block_on(async {
        let inner = Links::in_netns(&ns)?;
        inner.links_with_prefix("").await
    });
    assert_eq!(links.expect("links"), ["lo"]);
    assert!(ip_in(&ns, &["-o", "link", "show", "lo"]).contains("UP"));

    Netns::remove(&path).expect("remove");
    assert!(!mounted(&path), "no mount left");
    assert!(!path.exists());
    Netns::remove(&path).expect("removing again is fine");
    assert!(Netns::open(&path).is_err());

    // A plain file is no namespace.
    std::fs::write(&path, b"").expect("plain file");
    assert!(matches!(
        Netns::open(&path),
        Err(NetworkError::NotNetns { .. })
    ));
}

#[test]
#[ignore = "needs root: netlink and nftables in a private network namespace"]
fn endpoints_on_a_bridge_talk_and_detach_cleanly() {
    let rt = private_namespace();
    let dir = tempfile::tempdir().expect("tempdir");
    let ns_a = Netns::create(&dir.path().join("a")).expect("create a");
    let ns_b = Netns::create(&dir.path().join("b")).expect("create b");
    let links = rt.block_on(async { Links::new() }).expect("links");
    let gateway = Ipv4Addr::new(10, 88, 0, 1);

    let made = rt.block_on(async {
        let first = links
            .ensure_bridge("brtest0", gateway, 24, Some(1400))
            .await?;
        // Idempotent: a restart re-adopts the bridge as it is.
        let again = links
            .ensure_bridge("brtest0", gateway, 24, Some(1400))
            .await?;
        Ok::<_, berth_network::NetworkError>((first, again))
    });
    assert_eq!(
        made.expect("bridge"),
        (true, false),
        "made once, then adopted"
    );
    // A device that is not a bridge is never taken over.
    let dummy = Command::new("ip")
        .args([
            "link", "add", "dumtest0", "type", "veth", "peer", "name", "dumtest1",
        ])
        .status()
        .unwrap();
    assert!(dummy.success());
    let refused = rt.block_on(links.ensure_bridge("dumtest0", gateway, 24, None));
    assert!(
        matches!(refused, Err(berth_network::NetworkError::NotABridge { .. })),
        "{refused:?}"
    );
    let shown = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "brtest0"])
        .output()
        .expect("ip");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.matches("10.88.0.1/24").count(), 1, "{shown}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/conf/brtest0/route_localnet")
            .expect("sysctl")
            .trim(),
        "1"
    );

    let ep_a = endpoint(2, "brtest0", [10, 88, 0], true);
    let ep_b = endpoint(3, "brtest0", [10, 88, 0], false);
    rt.block_on(async {
        links.attach(&ns_a, &ep_a).await?;
        links.attach(&ns_b, &ep_b).await
    })
    .expect("attach");

    // Inside: the name, MAC, MTU, address and default route asked for.
    let link_a = ip_in(&ns_a, &["-o", "link", "show", "eth0"]);
    assert!(link_a.contains("02:42:0a:58:00:02"), "{link_a}");
    assert!(link_a.contains("mtu 1400"), "{link_a}");
    assert!(link_a.contains("UP"), "{link_a}");
    assert!(ip_in(&ns_a, &["-o", "-4", "addr", "show", "eth0"]).contains("10.88.0.2/24"));
    assert!(ip_in(&ns_a, &["route"]).contains("default via 10.88.0.1 dev eth0"));
    assert!(!ip_in(&ns_b, &["route"]).contains("default"));
    // Outside: the host side on the bridge.
    let host_side = Command::new("ip")
        .args(["-o", "link", "show", "vethtest2"])
        .output()
        .expect("ip");
    assert!(String::from_utf8_lossy(&host_side.stdout).contains("master brtest0"));

    // b -> a across the bridge, a -> the host through its gateway.
    let listener = listen_in(&ns_a, SocketAddrV4::new(ep_a.address, 7000));
    let server = serve_peer_addresses(listener, 1);
    assert_eq!(
        fetch_in(&ns_b, SocketAddrV4::new(ep_a.address, 7000)).expect("b -> a"),
        "10.88.0.3"
    );
    server.join().expect("server");
    let on_host = TcpListener::bind((gateway, 7001)).expect("bind on the bridge");
    let server = serve_peer_addresses(on_host, 1);
    assert_eq!(
        fetch_in(&ns_a, SocketAddrV4::new(gateway, 7001)).expect("a -> host"),
        "10.88.0.2"
    );
    server.join().expect("server");

    // A failed attach leaves nothing: eth0 is taken in a already.
    let mut clash = endpoint(4, "brtest0", [10, 88, 0], false);
    clash.host_if = "vethtestclash".to_owned();
    let err = rt.block_on(links.attach(&ns_a, &clash));
    assert!(err.is_err());
    let missing_bridge = Endpoint {
        bridge: "brnothere".to_owned(),
        ..endpoint(5, "brnothere", [10, 88, 0], false)
    };
    assert!(matches!(
        rt.block_on(links.attach(&ns_b, &missing_bridge)),
        Err(NetworkError::LinkNotFound { .. })
    ));
    let names = rt
        .block_on(links.links_with_prefix("vethtest"))
        .expect("list");
    assert_eq!(names.len(), 2, "{names:?}");

    // Detach from the host side, and from inside the namespace.
    rt.block_on(async {
        links.detach("vethtest2").await?;
        links.detach("vethtest2").await?;
        Links::detach_in(&ns_b, "eth0").await?;
        Links::detach_in(&ns_b, "eth0").await
    })
    .expect("detach");
    assert!(!ip_in(&ns_a, &["-o", "link"]).contains("eth0"));
    assert!(
        rt.block_on(links.links_with_prefix("vethtest"))
            .expect("list")
            .is_empty()
    );
    assert!(!rt.block_on(links.link_exists("vethtest3")).expect("exists"));

    rt.block_on(links.delete_link("brtest0"))
        .expect("delete bridge");
    assert!(!rt.block_on(links.link_exists("brtest0")).expect("exists"));
    rt.block_on(links.delete_link("brtest0"))
        .expect("deleting again is fine");
    Netns::remove(ns_a.path()).expect("remove a");
    Netns::remove(ns_b.path()).expect("remove b");
}

#[test]
#[ignore = "needs root: netlink and nftables in a private network namespace"]
fn published_ports_reach_containers_and_networks_are_isolated() {
    let rt = private_namespace();
    link::enable_ip_forward().expect("ip_forward");
    let dir = tempfile::tempdir().expect("tempdir");
    let ns_a = Netns::create(&dir.path().join("a")).expect("create a");
    let ns_b = Netns::create(&dir.path().join("b")).expect("create b");
    let ns_c = Netns::create(&dir.path().join("c")).expect("create c");
    let links = rt.block_on(async { Links::new() }).expect("links");
    let (gw1, gw2) = (Ipv4Addr::new(10, 88, 0, 1), Ipv4Addr::new(10, 89, 0, 1));
    let ep_a = endpoint(2, "brtest1", [10, 88, 0], true);
    let ep_b = endpoint(3, "brtest1", [10, 88, 0], true);
    let ep_c = endpoint(4, "brtest2", [10, 89, 0], true);
    rt.block_on(async {
        links.ensure_bridge("brtest1", gw1, 24, None).await?;
        links.ensure_bridge("brtest2", gw2, 24, None).await?;
        links.attach(&ns_a, &ep_a).await?;
        links.attach(&ns_b, &ep_b).await?;
        links.attach(&ns_c, &ep_c).await
    })
    .expect("network");

    // Host ports held as berthd does, then the DNAT rules for them.
    let local = ports::hold(Proto::Tcp, Ipv4Addr::LOCALHOST, 0).expect("hold");
    let any = ports::hold(Proto::Tcp, Ipv4Addr::UNSPECIFIED, 0).expect("hold");
    let bridge = |name: &str, subnet: [u8; 4]| BridgeRules {
        name: name.to_owned(),
        subnet: Ipv4Addr::from(subnet),
        prefix: 24,
        masquerade: true,
        internal: false,
        icc: true,
    };
    let rules = Ruleset {
        bridges: vec![
            bridge("brtest1", [10, 88, 0, 0]),
            bridge("brtest2", [10, 89, 0, 0]),
        ],
        ports: vec![
            PortRule {
                proto: Proto::Tcp,
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: local.port,
                container_ip: ep_a.address,
                container_port: 80,
                bridge: "brtest1".to_owned(),
            },
            PortRule {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: any.port,
                container_ip: ep_a.address,
                container_port: 80,
                bridge: "brtest1".to_owned(),
            },
        ],
    };
    rt.block_on(async {
        nft::apply("berthtest", &rules).await?;
        // Replacing the table is one atomic run; doing it again is fine.
        nft::apply("berthtest", &rules).await
    })
    .expect("apply");
    assert!(rt.block_on(nft::table_exists("berthtest")).expect("exists"));

    let listener = listen_in(&ns_a, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80));
    let server = serve_peer_addresses(listener, 4);
    // The host's 127.0.0.1 -> a: DNAT in output, route_localnet, masquerade to the gateway.
    assert_eq!(
        fetch(SocketAddrV4::new(Ipv4Addr::LOCALHOST, local.port)).expect("127.0.0.1 -> a"),
        "10.88.0.1"
    );
    // Hairpin: b reaches a's published port through the host's address on their bridge.
    assert_eq!(
        fetch_in(&ns_b, SocketAddrV4::new(gw1, any.port)).expect("hairpin b -> a"),
        "10.88.0.1"
    );
    // ... and a its own.
    assert_eq!(
        fetch_in(&ns_a, SocketAddrV4::new(gw1, any.port)).expect("hairpin a -> a"),
        "10.88.0.1"
    );
    // Another network reaches a published port through the host: published is published.
    assert_eq!(
        fetch_in(&ns_c, SocketAddrV4::new(gw2, any.port)).expect("c -> published a"),
        // masqueraded as it leaves its own network, as dockerd does
        "10.88.0.1"
    );
    server.join().expect("server");

    // But not a's address directly: networks are isolated.
    let listener = listen_in(&ns_a, SocketAddrV4::new(ep_a.address, 81));
    let direct = fetch_in(&ns_c, SocketAddrV4::new(ep_a.address, 81));
    assert!(direct.is_err(), "c reached a directly: {direct:?}");
    drop(listener);

    // Without the table, none of it.
    rt.block_on(nft::remove("berthtest")).expect("remove");
    assert!(!rt.block_on(nft::table_exists("berthtest")).expect("exists"));
    rt.block_on(nft::remove("berthtest"))
        .expect("removing again is fine");
    let listing = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft");
    assert!(String::from_utf8_lossy(&listing.stdout).trim().is_empty());

    // nft's own words come back on a refused script.
    let mut bad = rules.clone();
    bad.bridges[0].name = "bad\"name".to_owned();
    assert!(matches!(
        rt.block_on(nft::apply("berthtest", &bad)),
        Err(NetworkError::InvalidName { .. })
    ));

    for ns in [&ns_a, &ns_b, &ns_c] {
        Netns::remove(ns.path()).expect("remove");
    }
}

#[test]
#[ignore = "needs root: netlink and nftables in a private network namespace"]
fn nft_errors_carry_nfts_words() {
    let rt = private_namespace();
    // A table name nft's grammar refuses (a keyword) passes our check; nft's words come back.
    let err = rt
        .block_on(nft::apply("chain", &Ruleset::default()))
        .expect_err("`chain` is a keyword");
    match err {
        NetworkError::Nft { stderr, .. } => assert!(stderr.contains("rror"), "{stderr}"),
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
#[ignore = "needs root: netlink and nftables in a private network namespace"]
fn held_port_refuses_other_holders_and_processes() {
    let _rt = private_namespace();
    for proto in [Proto::Tcp, Proto::Udp] {
        let held = ports::hold(proto, Ipv4Addr::LOCALHOST, 0).expect("hold");
        let again = ports::hold(proto, Ipv4Addr::LOCALHOST, held.port);
        assert!(
            matches!(again, Err(NetworkError::PortInUse { port, .. }) if port == held.port),
            "{again:?}"
        );
        let kind = match proto {
            Proto::Tcp => "SOCK_STREAM",
            Proto::Udp => "SOCK_DGRAM",
        };
        let script = format!(
            "import socket; s = socket.socket(socket.AF_INET, socket.{kind}); \
             s.bind(('127.0.0.1', {}))",
            held.port
        );
        let other = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3");
        assert!(
            !other.status.success(),
            "another process bound {proto} {}",
            held.port
        );
        assert!(String::from_utf8_lossy(&other.stderr).contains("in use"));
        drop(held);
        let rebound = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3");
        assert!(rebound.status.success(), "the port is free after drop");
    }
}
