//! The hijacked streams of attach and exec: HTTP 101 `Upgrade: tcp`, then stdin from the
//! client and output to it, in Docker's 8-byte frames unless a terminal is attached.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use berth_daemon::{OutputChunk, StdinMsg};
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::ApiError;

/// Docker's multiplexed frame: stream, three zero bytes, big-endian length.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// What flows over an upgraded connection.
pub(crate) struct Session {
    pub output: mpsc::Receiver<OutputChunk>,
    pub stdin: Option<mpsc::Sender<StdinMsg>>,
    pub tty: bool,
    /// Written (on stderr, or raw with a terminal) when output ends: a start failure.
    pub error: Option<String>,
    /// With a terminal and stdin: the keys that end the session and leave the process
    /// running (dockerd's detach keys, ctrl-p,ctrl-q by default).
    pub detach_keys: Option<Vec<u8>>,
}

/// The default detach keys, ctrl-p then ctrl-q.
pub(crate) const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// A `detachKeys` spec (`ctrl-p,ctrl-q`, `ctrl-a,x`) as bytes: `ctrl-` with a letter or one
/// of `@[\\]^_`, or a single character; dockerd's rules and message.
pub(crate) fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, ApiError> {
    let bad = || ApiError::bad_request(format!("Invalid detach keys ({spec}) provided"));
    let mut out = Vec::new();
    for key in spec.split(',') {
        let key = key.trim();
        match key.strip_prefix("ctrl-") {
            Some(k) if k.len() == 1 => {
                let c = k.as_bytes()[0].to_ascii_lowercase();
                out.push(match c {
                    b'a'..=b'z' => c - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(bad()),
                });
            }
            Some(_) => return Err(bad()),
            None if key.len() == 1 => out.push(key.as_bytes()[0]),
            None => return Err(bad()),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// The detach keys of a session: none without a terminal or stdin (dockerd only watches a
/// terminal's input), else the given ones or the default.
pub(crate) fn detach_keys(
    tty: bool,
    stdin: bool,
    spec: Option<&str>,
) -> Result<Option<Vec<u8>>, ApiError> {
    let keys = match spec.filter(|s| !s.is_empty()) {
        Some(s) => parse_detach_keys(s)?,
        None => DEFAULT_DETACH_KEYS.to_vec(),
    };
    Ok((tty && stdin).then_some(keys))
}

/// Watches a stream of input for the detach keys: what it passes on, and whether they came.
/// Bytes that may begin the sequence are held until it is clear they do not.
#[derive(Debug)]
struct Escape {
    keys: Vec<u8>,
    held: usize,
}

impl Escape {
    /// The bytes of `input` to forward; `true` when the sequence is complete (what follows
    /// it is dropped, as dockerd does).
    fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            // Not the sequence after all: what was held goes through.
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Answers 101 and runs `session` on the upgraded connection once the client has it.
pub(crate) fn upgrade<F>(mut req: Request, tty: bool, session: F) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Session> + Send + 'static,
{
    if !req.headers().contains_key(UPGRADE) {
        return Err(ApiError::bad_request(
            "this endpoint needs a hijacked connection: send Connection: Upgrade and Upgrade: tcp",
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let session = session.await;
        match on_upgrade.await {
            Ok(upgraded) => run(TokioIo::new(upgraded), session).await,
            Err(e) => tracing::debug!(error = %e, "client went away before the upgrade"),
        }
    });
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

async fn run<T>(io: T, mut s: Session)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (detached_tx, mut detached) = tokio::sync::oneshot::channel::<()>();
    let mut escape = s.detach_keys.take().map(|keys| Escape { keys, held: 0 });
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if let Some(tx) = &s.stdin {
                        let _ = tx.send(StdinMsg::Eof).await;
                    }
                    return;
                }
                Ok(n) => {
                    let (data, detach) = match &mut escape {
                        Some(e) => e.feed(&buf[..n]),
                        None => (buf[..n].to_vec(), false),
                    };
                    if !data.is_empty()
                        && let Some(tx) = &s.stdin
                        && tx.send(StdinMsg::Data(Bytes::from(data))).await.is_err()
                    {
                        return;
                    }
                    if detach {
                        // The process keeps its stdin open and runs on; the session ends.
                        let _ = detached_tx.send(());
                        return;
                    }
                }
            }
        }
    });
    // Set once the reader is done without detaching (its end of the channel dropped).
    let mut reader_done = false;
    loop {
        let next = tokio::select! {
            next = s.output.recv() => next,
            r = &mut detached, if !reader_done => {
                if r.is_ok() {
                    None
                } else {
                    reader_done = true;
                    continue;
                }
            }
        };
        let Some((kind, data)) = next else { break };
        let r = if s.tty {
            wr.write_all(&data).await
        } else {
            let h = frame_header(kind as u8, data.len());
            match wr.write_all(&h).await {
                Ok(()) => wr.write_all(&data).await,
                Err(e) => Err(e),
            }
        };
        if r.is_err() {
            break;
        }
    }
    if let Some(msg) = s.error {
        let text = format!("{msg}\r\n");
        if s.tty {
            let _ = wr.write_all(text.as_bytes()).await;
        } else {
            let _ = wr.write_all(&frame_header(2, text.len())).await;
            let _ = wr.write_all(text.as_bytes()).await;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(frame_header(1, 5), [1, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(frame_header(2, 0x0102_0304), [2, 0, 0, 0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn session_frames_output_and_forwards_stdin() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (out_tx, out_rx) = mpsc::channel(4);
        let (in_tx, mut in_rx) = mpsc::channel(berth_daemon::STDIN_QUEUE);
        let task = tokio::spawn(run(
            server,
            Session {
                output: out_rx,
                stdin: Some(in_tx),
                tty: false,
                error: None,
                detach_keys: None,
            },
        ));
        let (mut crd, mut cwr) = tokio::io::split(client);
        cwr.write_all(b"abc").await.unwrap();
        cwr.shutdown().await.unwrap();
        match in_rx.recv().await.unwrap() {
            StdinMsg::Data(d) => assert_eq!(&d[..], b"abc"),
            StdinMsg::Eof => panic!("data first"),
        }
        assert!(matches!(in_rx.recv().await.unwrap(), StdinMsg::Eof));
        out_tx
            .send((berth_daemon::StreamKind::Stderr, Bytes::from_static(b"err")))
            .await
            .unwrap();
        drop(out_tx);
        let mut got = Vec::new();
        crd.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, [&frame_header(2, 3)[..], b"err"].concat());
        task.await.unwrap();
    }

    #[test]
    fn detach_keys_parse_as_dockerd() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            vec![0x10, 0x11]
        );
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-_").unwrap(),
            vec![0, 27, 31]
        );
        for bad in ["", "ctrl-", "ctrl-1", "abc", "ctrl-p,"] {
            let e = parse_detach_keys(bad).unwrap_err();
            assert!(
                e.message.contains("Invalid detach keys"),
                "{bad}: {}",
                e.message
            );
        }
        assert_eq!(detach_keys(false, true, None).unwrap(), None, "no terminal");
        assert_eq!(detach_keys(true, false, None).unwrap(), None, "no stdin");
        assert_eq!(
            detach_keys(true, true, None).unwrap().as_deref(),
            Some(DEFAULT_DETACH_KEYS)
        );
    }

    #[test]
    fn escape_holds_a_possible_sequence_and_releases_a_broken_one() {
        let mut e = Escape {
            keys: vec![0x10, 0x11],
            held: 0,
        };
        assert_eq!(e.feed(b"ab\x10"), (b"ab".to_vec(), false), "held");
        assert_eq!(e.feed(b"c"), (b"\x10c".to_vec(), false), "released");
        assert_eq!(e.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(
            e.feed(b"\x11after"),
            (Vec::new(), true),
            "detached across reads"
        );
    }

    #[tokio::test]
    async fn the_detach_keys_end_the_session_and_leave_stdin_open() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (out_tx, out_rx) = mpsc::channel(4);
        let (in_tx, mut in_rx) = mpsc::channel(berth_daemon::STDIN_QUEUE);
        let task = tokio::spawn(run(
            server,
            Session {
                output: out_rx,
                stdin: Some(in_tx),
                tty: true,
                error: None,
                detach_keys: Some(DEFAULT_DETACH_KEYS.to_vec()),
            },
        ));
        let (mut crd, mut cwr) = tokio::io::split(client);
        cwr.write_all(b"ls\x10\x11").await.unwrap();
        match in_rx.recv().await.unwrap() {
            StdinMsg::Data(d) => assert_eq!(&d[..], b"ls"),
            StdinMsg::Eof => panic!("data first"),
        }
        // The session ends by itself while the process still has output to give.
        let mut got = Vec::new();
        crd.read_to_end(&mut got).await.unwrap();
        task.await.unwrap();
        assert!(
            in_rx.recv().await.is_none(),
            "no EOF was sent: stdin stays open"
        );
        drop(out_tx);
    }
}
