//! The embedded DNS server against a fake upstream resolver. Every socket is on 127.0.0.1 with
//! an ephemeral port: no query ever leaves for a real resolver. No root needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_network::dns::{DnsServer, Names};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// How long a test waits for an answer before failing (generous: not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(20);
const ASKER: &str = "0123456789ab";
/// The address the fake upstream answers every A query with.
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// A table of names, and the upstreams to give.
struct Table {
    names: HashMap<String, Vec<Ipv4Addr>>,
    upstreams: Vec<SocketAddr>,
}

impl Names for Table {
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        assert_eq!(asker, ASKER);
        self.names.get(name).cloned()
    }
    fn reverse(&self, asker: &str, ip: Ipv4Addr) -> Option<String> {
        assert_eq!(asker, ASKER);
        self.names
            .iter()
            .filter(|(_, ips)| ips.contains(&ip))
            .map(|(name, _)| name)
            .min()
            .map(|name| format!("{name}.testnet"))
    }
    fn upstreams(&self, asker: &str) -> Vec<SocketAddr> {
        assert_eq!(asker, ASKER);
        self.upstreams.clone()
    }
}

fn table(upstreams: Vec<SocketAddr>) -> Arc<Table> {
    let mut names = HashMap::new();
    names.insert("web".to_string(), vec![Ipv4Addr::new(172, 18, 0, 2)]);
    names.insert("web-alias".to_string(), vec![Ipv4Addr::new(172, 18, 0, 2)]);
    names.insert(
        "multi".to_string(),
        vec![Ipv4Addr::new(172, 18, 0, 3), Ipv4Addr::new(172, 19, 0, 3)],
    );
    names.insert(
        "many".to_string(),
        (1..=100).map(|i| Ipv4Addr::new(10, 1, 0, i)).collect(),
    );
    Arc::new(Table { names, upstreams })
}

/// A fake upstream on one 127.0.0.1 port, UDP and TCP: answers A queries with
/// [`UPSTREAM_ANSWER`], except `big.test.` over UDP (truncated, no answer) and
/// `nx.test.` (NXDOMAIN). Counts the queries it gets and records their IDs.
struct Upstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    ids: Arc<std::sync::Mutex<Vec<u16>>>,
}

fn upstream_answer(query: &Message, udp: bool) -> Vec<u8> {
    let mut reply = Message::response(query.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    let q = query.queries[0].clone();
    let name = q.name().to_ascii().to_lowercase();
    reply.add_query(q.clone());
    if name == "nx.test." {
        reply.metadata.response_code = ResponseCode::NXDomain;
    } else if name == "big.test." && udp {
        reply.metadata.truncation = true;
    } else if q.query_type() == RecordType::A {
        reply.add_answer(Record::from_rdata(
            q.name().clone(),
            30,
            RData::A(A(UPSTREAM_ANSWER)),
        ));
    }
    reply.to_vec().unwrap()
}

async fn fake_upstream() -> Upstream {
    // One port for both protocols: bind UDP, then TCP on the same port (retry on a clash).
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap();
    let queries = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (q, i) = (queries.clone(), ids.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
            let query = Message::from_vec(&buf[..n]).unwrap();
            q.fetch_add(1, Ordering::SeqCst);
            i.lock().unwrap().push(query.metadata.id);
            udp.send_to(&upstream_answer(&query, true), peer)
                .await
                .unwrap();
        }
    });
    let (q, i) = (queries.clone(), ids.clone());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = tcp.accept().await.unwrap();
            let (q, i) = (q.clone(), i.clone());
            tokio::spawn(async move {
                while let Ok(n) = stream.read_u16().await {
                    let mut buf = vec![0u8; usize::from(n)];
                    stream.read_exact(&mut buf).await.unwrap();
                    let query = Message::from_vec(&buf).unwrap();
                    q.fetch_add(1, Ordering::SeqCst);
                    i.lock().unwrap().push(query.metadata.id);
                    let answer = upstream_answer(&query, false);
                    stream
                        .write_all(&(answer.len() as u16).to_be_bytes())
                        .await
                        .unwrap();
                    stream.write_all(&answer).await.unwrap();
                }
            });
        }
    });
    Upstream { addr, queries, ids }
}

/// A 127.0.0.1 address where nothing listens (UDP or TCP).
fn dead_address() -> SocketAddr {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        drop(udp);
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr; // both free (the listener is dropped again)
        }
    }
}

/// The server under test, on its own 127.0.0.1 sockets (UDP and TCP ports may differ).
struct Server {
    _server: DnsServer,
    udp: SocketAddr,
    tcp: SocketAddr,
}

fn server(names: Arc<dyn Names>) -> Server {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (udp_addr, tcp_addr) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
    let server = DnsServer::spawn(ASKER.to_string(), udp, tcp, names).unwrap();
    Server {
        _server: server,
        udp: udp_addr,
        tcp: tcp_addr,
    }
}

fn query(id: u16, name: &str, kind: RecordType) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    message
}

async fn ask_udp(server: SocketAddr, message: &Message) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server).await.unwrap();
    socket.send(&message.to_vec().unwrap()).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(PATIENCE, socket.recv(&mut buf))
        .await
        .expect("an answer over UDP")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

async fn ask_tcp(server: SocketAddr, message: &Message) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let bytes = message.to_vec().unwrap();
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&bytes).await.unwrap();
    let read = async {
        let n = stream.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(n)];
        stream.read_exact(&mut buf).await.unwrap();
        buf
    };
    let buf = tokio::time::timeout(PATIENCE, read)
        .await
        .expect("an answer over TCP");
    Message::from_vec(&buf).unwrap()
}

fn a_records(message: &Message) -> Vec<(String, u32, Ipv4Addr)> {
    let mut records: Vec<_> = message
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::A(A(ip)) => (r.name.to_ascii(), r.ttl, *ip),
            other => panic!("not an A record: {other:?}"),
        })
        .collect();
    records.sort();
    records
}

#[tokio::test]
async fn our_names_are_answered_over_udp_and_tcp() {
    let upstream = fake_upstream().await;
    let s = server(table(vec![upstream.addr]));
    for tcp in [false, true] {
        let ask = |m: Message| async move {
            if tcp {
                ask_tcp(s.tcp, &m).await
            } else {
                ask_udp(s.udp, &m).await
            }
        };
        let answer = ask(query(0x1111, "web.", RecordType::A)).await;
        assert_eq!(answer.metadata.id, 0x1111);
        assert_eq!(answer.metadata.message_type, MessageType::Response);
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.metadata.recursion_available);
        assert!(answer.metadata.recursion_desired);
        assert_eq!(answer.queries.len(), 1);
        assert_eq!(
            a_records(&answer),
            [("web.".to_string(), 600, Ipv4Addr::new(172, 18, 0, 2))]
        );

        // An alias, asked in another case: the records carry the name as asked.
        let answer = ask(query(0x2222, "WEB-Alias.", RecordType::A)).await;
        assert_eq!(
            a_records(&answer),
            [("WEB-Alias.".to_string(), 600, Ipv4Addr::new(172, 18, 0, 2))]
        );

        // One record per address.
        let answer = ask(query(0x3333, "multi.", RecordType::A)).await;
        assert_eq!(
            a_records(&answer),
            [
                ("multi.".to_string(), 600, Ipv4Addr::new(172, 18, 0, 3)),
                ("multi.".to_string(), 600, Ipv4Addr::new(172, 19, 0, 3)),
            ]
        );

        // AAAA (and other types) of ours: NOERROR, no answer, not forwarded.
        for kind in [RecordType::AAAA, RecordType::MX] {
            let answer = ask(query(0x4444, "web.", kind)).await;
            assert_eq!(answer.metadata.id, 0x4444);
            assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
            assert!(answer.answers.is_empty());
        }

        // PTR of an address of ours: the container's name.
        let answer = ask(query(0x5555, "2.0.18.172.in-addr.arpa.", RecordType::PTR)).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answer.answers.len(), 1);
        assert_eq!(answer.answers[0].ttl, 600);
        match &answer.answers[0].data {
            RData::PTR(ptr) => assert_eq!(ptr.0.to_ascii(), "web.testnet."),
            other => panic!("not a PTR: {other:?}"),
        }
    }
    assert_eq!(upstream.queries.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn udp_answers_too_big_for_the_client_are_truncated() {
    let s = server(table(Vec::new()));
    // 100 addresses do not fit in 512 bytes: TC set, the client retries over TCP.
    let answer = ask_udp(s.udp, &query(1, "many.", RecordType::A)).await;
    assert!(answer.metadata.truncation);
    assert!(answer.answers.is_empty());
    let answer = ask_tcp(s.tcp, &query(2, "many.", RecordType::A)).await;
    assert!(!answer.metadata.truncation);
    assert_eq!(a_records(&answer).len(), 100);
    // A client announcing 4096 bytes through EDNS gets them all over UDP.
    let mut q = query(3, "many.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    q.set_edns(edns);
    let answer = ask_udp(s.udp, &q).await;
    assert!(!answer.metadata.truncation);
    assert_eq!(a_records(&answer).len(), 100);
}

#[tokio::test]
async fn other_names_are_forwarded_with_the_clients_id() {
    let upstream = fake_upstream().await;
    let s = server(table(vec![upstream.addr]));

    let answer = ask_udp(s.udp, &query(0xbeef, "example.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.id, 0xbeef);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        a_records(&answer),
        [("example.test.".to_string(), 30, UPSTREAM_ANSWER)]
    );
    assert_eq!(upstream.queries.load(Ordering::SeqCst), 1);

    let answer = ask_tcp(s.tcp, &query(0xcafe, "example.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.id, 0xcafe);
    assert_eq!(
        a_records(&answer),
        [("example.test.".to_string(), 30, UPSTREAM_ANSWER)]
    );
    assert_eq!(upstream.queries.load(Ordering::SeqCst), 2);

    // The upstream's NXDOMAIN is relayed (not retried as a failure).
    let answer = ask_udp(s.udp, &query(0x0102, "nx.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.id, 0x0102);
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);

    // A PTR outside our addresses is forwarded too.
    let answer = ask_udp(s.udp, &query(7, "9.9.9.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_eq!(answer.metadata.id, 7);
    assert_eq!(upstream.queries.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_truncated_udp_answer_is_retried_over_tcp() {
    let upstream = fake_upstream().await;
    let s = server(table(vec![upstream.addr]));
    let mut q = query(0x7777, "big.test.", RecordType::A);
    q.set_edns(Edns::new());
    let answer = ask_udp(s.udp, &q).await;
    assert_eq!(answer.metadata.id, 0x7777);
    assert!(!answer.metadata.truncation);
    assert_eq!(
        a_records(&answer),
        [("big.test.".to_string(), 30, UPSTREAM_ANSWER)]
    );
    // Once over UDP, then again over TCP with the same (forwarder's) ID.
    let ids = upstream.ids.lock().unwrap().clone();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn the_next_upstream_answers_when_the_first_is_down() {
    let upstream = fake_upstream().await;
    let s = server(table(vec![dead_address(), upstream.addr]));
    let answer = ask_udp(s.udp, &query(0x0a0a, "example.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.id, 0x0a0a);
    assert_eq!(
        a_records(&answer),
        [("example.test.".to_string(), 30, UPSTREAM_ANSWER)]
    );
    let answer = ask_tcp(s.tcp, &query(0x0b0b, "example.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.id, 0x0b0b);
    assert_eq!(a_records(&answer).len(), 1);
}

#[tokio::test]
async fn servfail_when_the_upstreams_are_down() {
    let s = server(table(vec![dead_address()]));
    let answer = ask_udp(s.udp, &query(0x1234, "example.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.id, 0x1234);
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(answer.answers.is_empty());
    let answer = ask_tcp(s.tcp, &query(0x1235, "example.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.id, 0x1235);
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn servfail_when_an_upstream_stays_silent() {
    // Bound, never answering: the forward times out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = server(table(vec![silent.local_addr().unwrap()]));
    let answer = ask_udp(s.udp, &query(0x4321, "example.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.id, 0x4321);
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn internal_networks_never_forward() {
    let upstream = fake_upstream().await;
    let s = server(table(Vec::new()));
    let answer = ask_udp(s.udp, &query(0x5678, "example.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.id, 0x5678);
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    let answer = ask_tcp(s.tcp, &query(0x5679, "example.test.", RecordType::A)).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    // Our names still resolve.
    let answer = ask_udp(s.udp, &query(0x567a, "web.", RecordType::A)).await;
    assert_eq!(a_records(&answer).len(), 1);
    assert_eq!(upstream.queries.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn malformed_queries_are_ignored_then_served_again() {
    let s = server(table(Vec::new()));
    // UDP: garbage, then an answer (not) mistaken for a query; the next query is answered.
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(s.udp).await.unwrap();
    socket.send(b"\x01\x02garbage").await.unwrap();
    let mut not_a_query = query(9, "web.", RecordType::A);
    not_a_query.metadata.message_type = MessageType::Response;
    socket.send(&not_a_query.to_vec().unwrap()).await.unwrap();
    socket
        .send(&query(10, "web.", RecordType::A).to_vec().unwrap())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, socket.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert_eq!(Message::from_vec(&buf[..n]).unwrap().metadata.id, 10);

    // TCP: a malformed frame closes the connection.
    let mut stream = TcpStream::connect(s.tcp).await.unwrap();
    stream.write_all(b"\x00\x04junk").await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest))
        .await
        .expect("the connection closes");
    assert!(read.is_err() || rest.is_empty());
}

#[tokio::test]
async fn several_queries_on_one_tcp_connection() {
    let s = server(table(Vec::new()));
    let mut stream = TcpStream::connect(s.tcp).await.unwrap();
    for id in [1u16, 2, 3] {
        let bytes = query(id, "web.", RecordType::A).to_vec().unwrap();
        stream
            .write_all(&(bytes.len() as u16).to_be_bytes())
            .await
            .unwrap();
        stream.write_all(&bytes).await.unwrap();
        let n = stream.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(n)];
        stream.read_exact(&mut buf).await.unwrap();
        let answer = Message::from_vec(&buf).unwrap();
        assert_eq!(answer.metadata.id, id);
        assert_eq!(a_records(&answer).len(), 1);
    }
}

#[tokio::test]
async fn stopping_closes_the_sockets() {
    let s = server(table(Vec::new()));
    let Server { _server, tcp, .. } = s;
    _server.stop();
    // The listener closes once the aborted task is dropped: connecting is refused then.
    let mut refused = false;
    for _ in 0..1000 {
        if TcpStream::connect(tcp).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the TCP listener still accepts after stop");
}

#[test]
fn spawning_outside_a_runtime_is_an_error() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = DnsServer::spawn(ASKER.to_string(), udp, tcp, table(Vec::new())).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}
