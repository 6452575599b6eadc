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
                    if let Some(tx) = &s.stdin
                        && tx
                            .send(StdinMsg::Data(Bytes::copy_from_slice(&buf[..n])))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    while let Some((kind, data)) = s.output.recv().await {
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
        let (in_tx, mut in_rx) = mpsc::channel(16);
        let task = tokio::spawn(run(
            server,
            Session {
                output: out_rx,
                stdin: Some(in_tx),
                tty: false,
                error: None,
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
}
