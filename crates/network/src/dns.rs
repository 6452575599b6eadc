//! The embedded DNS server of user-defined networks (dockerd's 127.0.0.11).
//!
//! Each container on a user-defined network gets its own server. berthd binds its sockets
//! (UDP and TCP on 127.0.0.11:53) inside the container's network namespace and hands them to
//! [`DnsServer::spawn`], which serves them from tokio in berthd's own namespace. Names of ours
//! (containers on the asker's networks, by name, alias, short ID) are answered from [`Names`];
//! anything else is forwarded to the upstreams `Names` gives, over ordinary sockets of
//! berthd's namespace, and relayed with the client's query ID.
//!
//! As dockerd's resolver: A for a name of ours gets one record per address (shuffled, TTL
//! 600); other types for a name of ours get NOERROR with no answer; PTR for an address of ours
//! gets the container's name; only the first question of a query is looked at; no upstream,
//! or none answering, gives SERVFAIL. Malformed datagrams are ignored, a malformed TCP frame
//! closes its connection.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::NetworkError;

/// The TTL of the answers for names of ours (dockerd's `respTTL`).
const TTL: u32 = 600;
/// The largest datagram read from a client, and the largest answer sent to one.
const UDP_MAX: usize = 4096;
/// The answer size a client that sends no EDNS accepts over UDP.
const UDP_CLASSIC: usize = 512;
/// Forwards in flight at once per server; queries beyond are dropped (UDP) or get SERVFAIL
/// (TCP).
const MAX_FORWARDS: usize = 100;
/// TCP connections served at once per server; more are closed on accept.
const MAX_TCP_CONNECTIONS: usize = 64;
/// How long one upstream has to answer over UDP.
const UDP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one upstream has to connect and answer over TCP.
const TCP_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a client's TCP connection may stay silent, or take to send a frame.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The pause after a failed receive or accept, so a broken socket cannot spin a core.
const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// What the server knows: the names of the containers the asker can reach, and where to
/// forward the rest. Called for each query, from tokio tasks: implementations must not block
/// for long (a lock read is fine).
pub trait Names: Send + Sync + 'static {
    /// The addresses of `name` (lower case, without the trailing dot) as seen by container
    /// `asker`: `Some` when it is a name of ours (a container on one of the asker's networks,
    /// by name, alias or short ID), even with no IPv4 address; `None` when it is not.
    fn lookup(&self, asker: &str, name: &str) -> Option<Vec<Ipv4Addr>>;
    /// The name to answer a PTR query for `ip` with, when it is the address of a container on
    /// one of the asker's networks.
    fn reverse(&self, asker: &str, ip: Ipv4Addr) -> Option<String>;
    /// Where to forward the asker's other queries, in order; empty means never forward (an
    /// internal network): such queries get SERVFAIL.
    fn upstreams(&self, asker: &str) -> Vec<SocketAddr>;
}

/// A running embedded DNS server: one UDP and one TCP socket served by tokio tasks. Stopping
/// or dropping it aborts the tasks, which closes the sockets.
#[derive(Debug)]
pub struct DnsServer {
    asker: String,
    udp: JoinHandle<()>,
    tcp: JoinHandle<()>,
}

/// What the serving tasks share.
struct Shared {
    asker: String,
    names: Arc<dyn Names>,
    forwards: Arc<Semaphore>,
}

impl DnsServer {
    /// Serves `udp` and `tcp` (bound in the container's namespace) for container `asker`.
    /// Must be called within a tokio runtime; makes the sockets non-blocking.
    pub fn spawn(
        asker: String,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        names: Arc<dyn Names>,
    ) -> Result<DnsServer, NetworkError> {
        tokio::runtime::Handle::try_current()
            .map_err(|source| NetworkError::DnsRuntime { source })?;
        let io = |what: &str| {
            let context = format!("{what} of the DNS server of container {asker}");
            move |source| NetworkError::Io { context, source }
        };
        udp.set_nonblocking(true)
            .map_err(io("making non-blocking the UDP socket"))?;
        let udp = UdpSocket::from_std(udp).map_err(io("registering the UDP socket"))?;
        tcp.set_nonblocking(true)
            .map_err(io("making non-blocking the TCP listener"))?;
        let tcp = TcpListener::from_std(tcp).map_err(io("registering the TCP listener"))?;
        let shared = Arc::new(Shared {
            asker: asker.clone(),
            names,
            forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
        });
        tracing::debug!(container = %asker, "embedded DNS server started");
        Ok(DnsServer {
            asker,
            udp: tokio::spawn(serve_udp(Arc::new(udp), shared.clone())),
            tcp: tokio::spawn(serve_tcp(tcp, shared)),
        })
    }

    /// Stops the server: its tasks are aborted and its sockets close.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.udp.abort();
        self.tcp.abort();
        tracing::debug!(container = %self.asker, "embedded DNS server stopped");
    }
}

/// What to do with a query.
enum Action {
    /// Nothing: it is malformed, or not a query.
    Ignore,
    /// Send this answer.
    Reply(Message),
    /// Forward it to these upstreams.
    Forward(Vec<SocketAddr>),
}

/// The answer to `query` with no records yet: its ID, opcode, first question and RD bit,
/// recursion available (dockerd's flags).
fn reply_to(query: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::error_msg(query.metadata.id, query.metadata.op_code, code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    if let Some(q) = query.queries.first() {
        reply.add_query(q.clone());
    }
    reply
}

/// The IPv4 address of a name under in-addr.arpa (`d.c.b.a.in-addr.arpa` is a.b.c.d).
fn arpa_ipv4(name: &str) -> Option<Ipv4Addr> {
    let labels = name.strip_suffix(".in-addr.arpa")?;
    let mut octets = [0u8; 4];
    let mut parts = labels.split('.');
    for octet in octets.iter_mut().rev() {
        *octet = parts.next()?.parse().ok()?;
    }
    match parts.next() {
        None => Some(Ipv4Addr::from(octets)),
        Some(_) => None,
    }
}

impl Shared {
    /// What to do with `query`: answer it from our names, refuse it, or forward it.
    fn decide(&self, query: &Message) -> Action {
        if query.metadata.message_type != MessageType::Query {
            return Action::Ignore;
        }
        let Some(question) = query.queries.first() else {
            return Action::Ignore;
        };
        if query.metadata.op_code != OpCode::Query {
            return Action::Reply(reply_to(query, ResponseCode::NotImp));
        }
        if question.query_class() == DNSClass::IN
            && let Some(reply) = self.local(query, question)
        {
            return Action::Reply(reply);
        }
        let upstreams = self.names.upstreams(&self.asker);
        if upstreams.is_empty() {
            tracing::trace!(container = %self.asker, name = %question.name(), "no upstream: SERVFAIL");
            return Action::Reply(reply_to(query, ResponseCode::ServFail));
        }
        Action::Forward(upstreams)
    }

    /// The answer from our names, when the question is about one of them.
    fn local(&self, query: &Message, question: &Query) -> Option<Message> {
        let lower = question.name().to_lowercase().to_ascii();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        if question.query_type() == RecordType::PTR
            && let Some(ip) = arpa_ipv4(name)
        {
            let target = self.names.reverse(&self.asker, ip)?;
            let target = match Name::from_ascii(format!("{}.", target.trim_end_matches('.'))) {
                Ok(target) => target,
                Err(e) => {
                    tracing::debug!(container = %self.asker, %ip, %target, error = %e, "a PTR target that is no DNS name");
                    return None;
                }
            };
            let mut reply = reply_to(query, ResponseCode::NoError);
            reply.add_answer(Record::from_rdata(
                question.name().clone(),
                TTL,
                RData::PTR(PTR(target)),
            ));
            return Some(reply);
        }
        let mut addresses = self.names.lookup(&self.asker, name)?;
        let mut reply = reply_to(query, ResponseCode::NoError);
        if question.query_type() == RecordType::A {
            addresses.shuffle(&mut rand::rng());
            reply.add_answers(
                addresses
                    .into_iter()
                    .map(|ip| Record::from_rdata(question.name().clone(), TTL, RData::A(A(ip)))),
            );
        }
        Some(reply)
    }
}

/// The largest answer a client accepts over UDP: 512 bytes, or what its EDNS says (at most
/// [`UDP_MAX`]).
fn udp_limit(query: &Message) -> usize {
    query.edns.as_ref().map_or(UDP_CLASSIC, |edns| {
        usize::from(edns.max_payload()).clamp(UDP_CLASSIC, UDP_MAX)
    })
}

/// `reply` encoded, cut to its header and question with TC set when it exceeds `limit`.
fn encode(reply: &Message, limit: usize) -> Option<Vec<u8>> {
    let encoded = reply
        .to_vec()
        .map_err(|e| tracing::debug!(error = %e, "encoding a DNS answer"))
        .ok()?;
    if encoded.len() <= limit {
        return Some(encoded);
    }
    reply
        .truncate()
        .to_vec()
        .map_err(|e| tracing::debug!(error = %e, "encoding a truncated DNS answer"))
        .ok()
}

/// Forwards `raw` (the client's `query`, as received) to each upstream in turn until one
/// answers with other than SERVFAIL; over TCP when `tcp`, else over UDP and then TCP when the
/// UDP answer is truncated. Each forward carries an ID of its own; the answer is relayed as
/// received but for the client's ID. `None` when no upstream answered.
async fn forward(
    asker: &str,
    raw: &[u8],
    query: &Message,
    upstreams: &[SocketAddr],
    tcp: bool,
) -> Option<(Vec<u8>, Message)> {
    let client_id = query.metadata.id;
    let question = query.queries.first();
    for upstream in upstreams {
        let id: u16 = rand::random();
        let mut sent = raw.to_vec();
        sent[..2].copy_from_slice(&id.to_be_bytes());
        let expected = Expected { id, question };
        let answer = if tcp {
            exchange_tcp(*upstream, &sent, expected).await
        } else {
            match exchange_udp(*upstream, &sent, expected).await {
                Ok((bytes, message)) if message.metadata.truncation => {
                    match exchange_tcp(*upstream, &sent, expected).await {
                        Ok(answer) => Ok(answer),
                        Err(e) => {
                            tracing::debug!(container = %asker, %upstream, error = %e, "no TCP answer after a truncated one: relaying it");
                            Ok((bytes, message))
                        }
                    }
                }
                other => other,
            }
        };
        match answer {
            Ok((_, message)) if message.metadata.response_code == ResponseCode::ServFail => {
                tracing::debug!(container = %asker, %upstream, "upstream answered SERVFAIL");
            }
            Ok((mut bytes, mut message)) => {
                bytes[..2].copy_from_slice(&client_id.to_be_bytes());
                message.metadata.id = client_id;
                return Some((bytes, message));
            }
            Err(e) => {
                tracing::debug!(container = %asker, %upstream, error = %e, "forwarding a DNS query");
            }
        }
    }
    None
}

/// What the answer to a forward must carry: the forward's ID and, when it echoes one, the
/// question asked.
#[derive(Debug, Clone, Copy)]
struct Expected<'a> {
    id: u16,
    question: Option<&'a Query>,
}

impl Expected<'_> {
    /// `bytes` decoded, when they answer the forward.
    fn check(self, bytes: Vec<u8>) -> std::io::Result<(Vec<u8>, Message)> {
        let message = Message::from_vec(&bytes)
            .map_err(|e| std::io::Error::other(format!("malformed answer: {e}")))?;
        if message.metadata.id != self.id || message.metadata.message_type != MessageType::Response
        {
            return Err(std::io::Error::other("an answer to another query"));
        }
        // Names compare case-insensitively.
        if let (Some(echoed), Some(asked)) = (message.queries.first(), self.question)
            && echoed != asked
        {
            return Err(std::io::Error::other("an answer to another question"));
        }
        Ok((bytes, message))
    }
}

/// One exchange with `upstream` over UDP, from a fresh socket of berthd's namespace.
async fn exchange_udp(
    upstream: SocketAddr,
    query: &[u8],
    expected: Expected<'_>,
) -> std::io::Result<(Vec<u8>, Message)> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (IpAddr::from(Ipv4Addr::UNSPECIFIED), 0).into(),
        SocketAddr::V6(_) => (IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED), 0).into(),
    };
    let exchange = async {
        let socket = UdpSocket::bind(local).await?;
        socket.connect(upstream).await?;
        socket.send(query).await?;
        let mut buf = vec![0u8; 65535];
        loop {
            let n = socket.recv(&mut buf).await?;
            // Stray datagrams (a late answer to nothing of ours) are skipped.
            match expected.check(buf[..n].to_vec()) {
                Ok(answer) => return Ok(answer),
                Err(e) => tracing::trace!(%upstream, error = %e, "skipping a datagram"),
            }
        }
    };
    tokio::time::timeout(UDP_TIMEOUT, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer over UDP"))?
}

/// One exchange with `upstream` over TCP.
async fn exchange_tcp(
    upstream: SocketAddr,
    query: &[u8],
    expected: Expected<'_>,
) -> std::io::Result<(Vec<u8>, Message)> {
    let exchange = async {
        let mut stream = TcpStream::connect(upstream).await?;
        write_frame(&mut stream, query).await?;
        let n = stream.read_u16().await?;
        let mut buf = vec![0u8; usize::from(n)];
        stream.read_exact(&mut buf).await?;
        expected.check(buf)
    };
    tokio::time::timeout(TCP_TIMEOUT, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer over TCP"))?
}

/// Writes one length-prefixed DNS message.
async fn write_frame(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| std::io::Error::other("a DNS message over 65535 bytes"))?;
    let mut frame = Vec::with_capacity(message.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    stream.write_all(&frame).await
}

/// Serves the UDP socket: answers ours inline, forwards the rest from tasks that end with the
/// server (the [`JoinSet`] aborts them when this task is aborted).
async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; UDP_MAX];
    let mut forwards = JoinSet::new();
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, client)) => {
                    handle_datagram(&socket, &shared, &buf[..n], client, &mut forwards).await;
                }
                Err(e) => {
                    tracing::debug!(container = %shared.asker, error = %e, "receiving a DNS query");
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            },
            Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
        }
    }
}

/// Sends `bytes` to `client`; a failure is only logged (the client will retry).
async fn send_datagram(socket: &UdpSocket, bytes: &[u8], client: SocketAddr) {
    if let Err(e) = socket.send_to(bytes, client).await {
        tracing::debug!(%client, error = %e, "sending a DNS answer");
    }
}

async fn handle_datagram(
    socket: &Arc<UdpSocket>,
    shared: &Arc<Shared>,
    raw: &[u8],
    client: SocketAddr,
    forwards: &mut JoinSet<()>,
) {
    let Ok(query) = Message::from_vec(raw) else {
        tracing::trace!(%client, "ignoring a malformed DNS datagram");
        return;
    };
    let limit = udp_limit(&query);
    match shared.decide(&query) {
        Action::Ignore => {}
        Action::Reply(reply) => {
            if let Some(bytes) = encode(&reply, limit) {
                send_datagram(socket, &bytes, client).await;
            }
        }
        Action::Forward(upstreams) => {
            let Some(permit) = forward_permit(shared) else {
                return;
            };
            let (socket, shared, raw) = (socket.clone(), shared.clone(), raw.to_vec());
            forwards.spawn(async move {
                let _permit = permit;
                let bytes = match forward(&shared.asker, &raw, &query, &upstreams, false).await {
                    Some((bytes, _)) if bytes.len() <= limit => Some(bytes),
                    Some((_, message)) => encode(&message, limit),
                    None => encode(&reply_to(&query, ResponseCode::ServFail), limit),
                };
                if let Some(bytes) = bytes {
                    send_datagram(&socket, &bytes, client).await;
                }
            });
        }
    }
}

/// A place among the server's forwards in flight, if one is free.
fn forward_permit(shared: &Shared) -> Option<OwnedSemaphorePermit> {
    let permit = shared.forwards.clone().try_acquire_owned().ok();
    if permit.is_none() {
        tracing::debug!(container = %shared.asker, "{MAX_FORWARDS} DNS forwards in flight: dropping a query");
    }
    permit
}

/// Serves the TCP listener: one task per connection, at most [`MAX_TCP_CONNECTIONS`].
async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) if connections.len() < MAX_TCP_CONNECTIONS => {
                    connections.spawn(serve_connection(stream, client, shared.clone()));
                }
                Ok((_, client)) => {
                    tracing::debug!(container = %shared.asker, %client, "too many DNS connections: closing one");
                }
                Err(e) => {
                    tracing::debug!(container = %shared.asker, error = %e, "accepting a DNS connection");
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Answers the queries of one TCP connection in turn, until it closes, idles, or sends
/// something malformed.
async fn serve_connection(mut stream: TcpStream, client: SocketAddr, shared: Arc<Shared>) {
    loop {
        let read = async {
            let n = stream.read_u16().await?;
            let mut buf = vec![0u8; usize::from(n)];
            stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let raw = match tokio::time::timeout(TCP_IDLE, read).await {
            Ok(Ok(raw)) => raw,
            Ok(Err(_)) | Err(_) => return,
        };
        let Ok(query) = Message::from_vec(&raw) else {
            tracing::trace!(%client, "closing a DNS connection on a malformed query");
            return;
        };
        let bytes = match shared.decide(&query) {
            Action::Ignore => return,
            Action::Reply(reply) => encode(&reply, usize::from(u16::MAX)),
            Action::Forward(upstreams) => {
                let answer = match forward_permit(&shared) {
                    Some(_permit) => forward(&shared.asker, &raw, &query, &upstreams, true).await,
                    None => None,
                };
                match answer {
                    Some((bytes, _)) => Some(bytes),
                    None => encode(
                        &reply_to(&query, ResponseCode::ServFail),
                        usize::from(u16::MAX),
                    ),
                }
            }
        };
        let Some(bytes) = bytes else { return };
        if let Err(e) = write_frame(&mut stream, &bytes).await {
            tracing::debug!(%client, error = %e, "sending a DNS answer over TCP");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arpa_names() {
        assert_eq!(
            arpa_ipv4("2.0.18.172.in-addr.arpa"),
            Some(Ipv4Addr::new(172, 18, 0, 2))
        );
        assert_eq!(arpa_ipv4("0.18.172.in-addr.arpa"), None);
        assert_eq!(arpa_ipv4("1.2.0.18.172.in-addr.arpa"), None);
        assert_eq!(arpa_ipv4("x.0.18.172.in-addr.arpa"), None);
        assert_eq!(arpa_ipv4("256.0.18.172.in-addr.arpa"), None);
        assert_eq!(arpa_ipv4("2.0.18.172.ip6.arpa"), None);
    }
}
