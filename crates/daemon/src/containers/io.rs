//! A process's stdio: FIFOs to the shim, copiers into the container's log (its driver's
//! writer) and to attached clients, and stdin from clients.

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
    stdin: Mutex<(mpsc::Sender<StdinMsg>, Option<mpsc::Receiver<StdinMsg>>)>,
}

/// Stdin chunks (of at most 32 KiB each) queued for a process: the memory a client's stdin
/// can hold in berthd however fast it sends and however slowly (or never) the process reads.
pub const STDIN_QUEUE: usize = 16;

impl Io {
    pub fn new(tty: bool) -> Io {
        let (tx, rx) = mpsc::channel(STDIN_QUEUE);
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

    /// Where a client's stdin goes (queued until the process starts, [`STDIN_QUEUE`] chunks
    /// at most: a client sending faster than the process reads waits, it is not buffered).
    pub fn stdin_sender(&self) -> mpsc::Sender<StdinMsg> {
        self.stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// Takes the stdin queue for a starting process.
    fn take_stdin(&self) -> Option<mpsc::Receiver<StdinMsg>> {
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
        let (tx, rx) = mpsc::channel(STDIN_QUEUE);
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

/// A container's log being written: its driver's writer (json-file or local), used by the
/// one copier thread of the container's process.
#[derive(Debug)]
pub(crate) struct ContainerLog {
    writer: Mutex<berth_logdriver::LogWriter>,
    /// Whether a failed write was reported already (once per process, not once per line).
    warned: std::sync::atomic::AtomicBool,
}

impl ContainerLog {
    pub fn new(writer: berth_logdriver::LogWriter) -> ContainerLog {
        ContainerLog {
            writer: Mutex::new(writer),
            warned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn write_lines(&self, stream: StreamKind, lines: &[&[u8]]) {
        let stream = match stream {
            StreamKind::Stdout => berth_logdriver::Stream::Stdout,
            StreamKind::Stderr => berth_logdriver::Stream::Stderr,
        };
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = w.write(stream, std::time::SystemTime::now(), lines)
            && !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(error = %e, "cannot write a container's log");
        }
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
    log: Option<Arc<ContainerLog>>,
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
    // One blocking thread reads both streams through one epoll set, edge-triggered: the
    // kernel queues each FIFO as the shim writes to it, so chunks are logged in the order they
    // arrived. (Two threads would add their own wake-up race on top of the shim's.)
    let files: std::io::Result<Vec<(std::fs::File, StreamKind)>> =
        std::iter::once((readers.stdout, StreamKind::Stdout))
            .chain(readers.stderr.map(|r| (r, StreamKind::Stderr)))
            .map(|(r, kind)| {
                r.into_blocking_fd()
                    .map(|fd| (std::fs::File::from(fd), kind))
            })
            .collect();
    tokio::task::spawn_blocking(move || match files {
        Ok(files) => copy_all(&io, files, log.as_deref()),
        Err(e) => tracing::warn!(error = %e, "cannot read a process's output"),
    })
}

/// Copies every stream until each has ended, in arrival order.
fn copy_all(io: &Io, files: Vec<(std::fs::File, StreamKind)>, log: Option<&ContainerLog>) {
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
    let mut buf = vec![0u8; 64 * 1024];
    // Without epoll (it cannot fail short of running out of files), each stream is read to
    // its end in turn, with blocking reads.
    let mut blocking = |mut stream: Stream| {
        stream.drain(io, &mut buf, log);
        stream.flush(log);
    };
    let streams = files.into_iter().map(|(file, kind)| Stream {
        file,
        kind,
        partial: Vec::new(),
    });
    let epoll = match Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "no epoll; reading the streams one after the other");
            streams.for_each(blocking);
            return;
        }
    };
    let mut watched: Vec<Option<Stream>> = Vec::new();
    for (i, stream) in streams.enumerate() {
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        if epoll
            .add(&stream.file, EpollEvent::new(flags, i as u64))
            .is_err()
        {
            blocking(stream);
            watched.push(None);
            continue;
        }
        // Non-blocking: an edge-triggered reader drains each FIFO until EAGAIN.
        let _ = nix::fcntl::fcntl(
            &stream.file,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        watched.push(Some(stream));
    }
    let mut streams = watched;
    let mut events = [EpollEvent::empty(); 4];
    while streams.iter().any(Option::is_some) {
        let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        };
        for ev in &events[..n] {
            let i = ev.data() as usize;
            let Some(Some(stream)) = streams.get_mut(i) else {
                continue;
            };
            if !stream.drain(io, &mut buf, log) {
                let _ = epoll.delete(&stream.file);
                stream.flush(log);
                streams[i] = None;
            }
        }
    }
}

/// One output stream being copied, with its unfinished last line.
struct Stream {
    file: std::fs::File,
    kind: StreamKind,
    partial: Vec<u8>,
}

impl Stream {
    /// Reads until the FIFO is empty; false once it has ended.
    fn drain(&mut self, io: &Io, buf: &mut [u8], log: Option<&ContainerLog>) -> bool {
        use std::io::Read;
        loop {
            match self.file.read(buf) {
                Ok(0) => return false,
                Ok(n) => self.chunk(io, &buf[..n], log),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    fn chunk(&mut self, io: &Io, chunk: &[u8], log: Option<&ContainerLog>) {
        if let Some(log) = log {
            log_chunk(log, self.kind, &mut self.partial, chunk);
        }
        io.broadcast_blocking(self.kind, Bytes::copy_from_slice(chunk));
    }

    fn flush(&mut self, log: Option<&ContainerLog>) {
        if let Some(log) = log
            && !self.partial.is_empty()
        {
            log.write_lines(self.kind, &[&self.partial]);
            self.partial.clear();
        }
    }
}

/// Adds `chunk` to the stream's unfinished line and logs every line it completes (or the
/// unfinished line itself once it is 16 KiB long).
fn log_chunk(log: &ContainerLog, kind: StreamKind, partial: &mut Vec<u8>, chunk: &[u8]) {
    partial.extend_from_slice(chunk);
    if let Some(last_nl) = partial.iter().rposition(|b| *b == b'\n') {
        let complete: Vec<&[u8]> = partial[..=last_nl]
            .split_inclusive(|b| *b == b'\n')
            .collect();
        log.write_lines(kind, &complete);
        partial.drain(..=last_nl);
    } else if partial.len() >= 16 * 1024 {
        log.write_lines(kind, &[&partial[..]]);
        partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_waiting_for_a_process_is_bounded() {
        // Before the process starts (or while it does not read), a client's stdin queues
        // up to the bound; past it the client waits instead of berthd's memory growing.
        let io = Io::new(false);
        let tx = io.stdin_sender();
        for _ in 0..STDIN_QUEUE {
            tx.try_send(StdinMsg::Data(Bytes::from_static(b"x")))
                .unwrap();
        }
        assert!(tx.try_send(StdinMsg::Eof).is_err());
        // A restart's fresh queue is bounded the same way.
        io.close_outputs();
        let tx = io.stdin_sender();
        for _ in 0..STDIN_QUEUE {
            tx.try_send(StdinMsg::Eof).unwrap();
        }
        assert!(tx.try_send(StdinMsg::Eof).is_err());
    }
}
