//! A process's stdio: FIFOs to the shim, copiers into the json-file log and to attached
//! clients, and stdin from clients.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

/// Which output stream a chunk came from (Docker's stream numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdout = 1,
    Stderr = 2,
}

impl StreamKind {
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// A piece of output for attached clients.
pub type OutputChunk = (StreamKind, Bytes);

/// What an attached client sends towards the process's stdin.
#[derive(Debug)]
pub enum StdinMsg {
    Data(Bytes),
    /// The client closed its side.
    Eof,
}

/// An attached client: which streams it wants and where they go.
#[derive(Debug)]
pub struct Attachment {
    pub stdout: bool,
    pub stderr: bool,
    pub tx: mpsc::Sender<OutputChunk>,
}

/// The stdio hub of a container or exec.
#[derive(Debug)]
pub(crate) struct Io {
    pub tty: bool,
    attached: Mutex<Vec<Arc<Attachment>>>,
    stdin: Mutex<(
        mpsc::UnboundedSender<StdinMsg>,
        Option<mpsc::UnboundedReceiver<StdinMsg>>,
    )>,
}

impl Io {
    pub fn new(tty: bool) -> Io {
        let (tx, rx) = mpsc::unbounded_channel();
        Io {
            tty,
            attached: Mutex::new(Vec::new()),
            stdin: Mutex::new((tx, Some(rx))),
        }
    }

    /// Adds a client; it receives output until `close_outputs`.
    pub fn attach(&self, stdout: bool, stderr: bool) -> mpsc::Receiver<OutputChunk> {
        let (tx, rx) = mpsc::channel(64);
        self.attached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(Attachment { stdout, stderr, tx }));
        rx
    }

    /// Where a client's stdin goes (buffered until the process starts).
    pub fn stdin_sender(&self) -> mpsc::UnboundedSender<StdinMsg> {
        self.stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// Takes the stdin queue for a starting process.
    fn take_stdin(&self) -> Option<mpsc::UnboundedReceiver<StdinMsg>> {
        self.stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .take()
    }

    /// Ends every attached client's output (they see EOF) and readies a fresh stdin queue
    /// for the next start.
    pub fn close_outputs(&self) {
        self.attached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let (tx, rx) = mpsc::unbounded_channel();
        *self.stdin.lock().unwrap_or_else(PoisonError::into_inner) = (tx, Some(rx));
    }

    /// Hands a chunk to every attached client that wants its stream, waiting for slow ones
    /// (backpressure). Runs on the copier's blocking thread.
    fn broadcast_blocking(&self, kind: StreamKind, data: Bytes) {
        let targets: Vec<Arc<Attachment>> = self
            .attached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|a| match kind {
                StreamKind::Stdout => a.stdout,
                StreamKind::Stderr => a.stderr,
            })
            .cloned()
            .collect();
        let mut gone = Vec::new();
        for t in targets {
            if t.tx.blocking_send((kind, data.clone())).is_err() {
                gone.push(t);
            }
        }
        if !gone.is_empty() {
            self.attached
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|a| !gone.iter().any(|g| Arc::ptr_eq(a, g)));
        }
    }
}

/// The FIFO paths of one process under `dir`; created with mkfifo.
#[derive(Debug, Clone)]
pub(crate) struct Fifos {
    pub stdin: Option<PathBuf>,
    pub stdout: PathBuf,
    pub stderr: Option<PathBuf>,
}

impl Fifos {
    pub fn create(dir: &Path, prefix: &str, stdin: bool, tty: bool) -> std::io::Result<Fifos> {
        std::fs::create_dir_all(dir)?;
        let make = |name: &str| -> std::io::Result<PathBuf> {
            let p = dir.join(format!("{prefix}-{name}"));
            let _ = std::fs::remove_file(&p);
            nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
            Ok(p)
        };
        Ok(Fifos {
            stdin: if stdin { Some(make("stdin")?) } else { None },
            stdout: make("stdout")?,
            stderr: if tty { None } else { Some(make("stderr")?) },
        })
    }

    pub fn stdio(&self, terminal: bool) -> berth_containerd::Stdio {
        let s = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        berth_containerd::Stdio {
            stdin: s(&self.stdin),
            stdout: self.stdout.display().to_string(),
            stderr: s(&self.stderr),
            terminal,
        }
    }
}

/// The json-file log: one JSON object per line, `{"log","stream","time"}`.
#[derive(Debug)]
pub(crate) struct JsonLog {
    file: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl JsonLog {
    pub fn open(path: &Path) -> std::io::Result<JsonLog> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(JsonLog {
            file: Mutex::new(std::io::BufWriter::new(f)),
        })
    }

    fn write_lines(&self, stream: StreamKind, lines: &[&[u8]]) {
        let time = super::now_rfc3339();
        let mut f = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        for line in lines {
            let entry = serde_json::json!({
                "log": String::from_utf8_lossy(line),
                "stream": stream.name(),
                "time": time,
            });
            let _ = serde_json::to_writer(&mut *f, &entry);
            let _ = f.write_all(b"\n");
        }
        let _ = f.flush();
    }
}

/// Opened output FIFOs, read once the task exists.
#[derive(Debug)]
pub(crate) struct Readers {
    stdout: pipe::Receiver,
    stderr: Option<pipe::Receiver>,
    stdin: Option<PathBuf>,
}

impl Readers {
    /// Opens the read ends before the shim opens the write ends.
    pub fn open(f: &Fifos) -> std::io::Result<Readers> {
        Ok(Readers {
            stdout: pipe::OpenOptions::new().open_receiver(&f.stdout)?,
            stderr: match &f.stderr {
                Some(p) => Some(pipe::OpenOptions::new().open_receiver(p)?),
                None => None,
            },
            stdin: f.stdin.clone(),
        })
    }
}

/// Starts copying a started process's output to `log` (if any) and to attached clients, and
/// clients' stdin to the process. The returned task ends when stdout and stderr closed.
/// `on_stdin_eof` runs when the clients' stdin ends (to close the process's stdin).
pub(crate) fn spawn_copiers(
    io: Arc<Io>,
    readers: Readers,
    log: Option<Arc<JsonLog>>,
    on_stdin_eof: impl FnOnce() -> tokio::task::JoinHandle<()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    if let (Some(path), Some(mut rx)) = (readers.stdin.clone(), io.take_stdin()) {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // Read-write so the open never waits for the shim's reader.
            let Ok(mut w) = pipe::OpenOptions::new().read_write(true).open_sender(&path) else {
                return;
            };
            while let Some(msg) = rx.recv().await {
                match msg {
                    StdinMsg::Data(d) => {
                        if w.write_all(&d).await.is_err() {
                            break;
                        }
                    }
                    StdinMsg::Eof => break,
                }
            }
            drop(w);
            let _ = on_stdin_eof().await;
        });
    }
    // Each output stream is read on its own blocking thread: a chunk is logged the moment
    // the kernel hands it over, which keeps stdout and stderr lines in the order they were
    // written as closely as two pipes allow.
    let out = spawn_copy(io.clone(), readers.stdout, StreamKind::Stdout, log.clone());
    let err = readers
        .stderr
        .map(|r| spawn_copy(io, r, StreamKind::Stderr, log));
    tokio::spawn(async move {
        let _ = out.await;
        if let Some(e) = err {
            let _ = e.await;
        }
    })
}

fn spawn_copy(
    io: Arc<Io>,
    r: pipe::Receiver,
    kind: StreamKind,
    log: Option<Arc<JsonLog>>,
) -> tokio::task::JoinHandle<()> {
    // The shim holds the write end now (the task exists), so blocking reads see data as it
    // comes and EOF only when the process and the shim are done.
    let file = r.into_blocking_fd().map(std::fs::File::from);
    tokio::task::spawn_blocking(move || match file {
        Ok(f) => copy(&io, f, kind, log.as_deref()),
        Err(e) => tracing::warn!(error = %e, "cannot read a process's output"),
    })
}

fn copy(io: &Io, mut r: std::fs::File, kind: StreamKind, log: Option<&JsonLog>) {
    use std::io::Read;
    let mut buf = vec![0u8; 32 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        if let Some(log) = log {
            partial.extend_from_slice(chunk);
            if let Some(last_nl) = partial.iter().rposition(|b| *b == b'\n') {
                let complete: Vec<&[u8]> = partial[..=last_nl]
                    .split_inclusive(|b| *b == b'\n')
                    .collect();
                log.write_lines(kind, &complete);
                partial.drain(..=last_nl);
            } else if partial.len() >= 16 * 1024 {
                log.write_lines(kind, &[&partial]);
                partial.clear();
            }
        }
        io.broadcast_blocking(kind, Bytes::copy_from_slice(chunk));
    }
    if let Some(log) = log
        && !partial.is_empty()
    {
        log.write_lines(kind, &[&partial]);
    }
}
