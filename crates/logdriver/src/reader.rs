//! `docker logs` over a log's files: oldest rotated file first, the current one last, with
//! tail, since and until, and follow across rotations.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use flate2::read::GzDecoder;

use crate::files::{LogFiles, Rotated};
use crate::format::{BLOCK, Next};
use crate::{Entry, Format, LogError, Rotation, Stream};

/// Which entries a reader hands out.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

impl Filter {
    pub fn wants(&self, e: &Entry) -> bool {
        let stream = match e.stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        stream && self.since.is_none_or(|s| e.time >= s) && !self.past_until(e)
    }

    fn past_until(&self, e: &Entry) -> bool {
        self.until.is_some_and(|u| e.time > u)
    }
}

/// Where a read stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Everything written so far was read; a follower reads again later.
    CaughtUp,
    /// The sink refused an entry: the client is gone.
    ClientGone,
    /// An entry after `until` was reached: nothing more will be wanted.
    Ended,
}

/// One file to read.
enum Source {
    /// A plain file, from `offset` (always the start of an entry).
    Plain {
        file: File,
        path: PathBuf,
        offset: u64,
    },
    /// A gzipped rotated file, read forwards once, its first `skip` wanted entries dropped.
    Gz {
        file: File,
        /// Made at the first read (a decoder reads ahead as soon as it exists).
        reader: Option<Box<BufReader<GzDecoder<File>>>>,
        path: PathBuf,
        skip: usize,
    },
    /// The current file, not created yet.
    Missing,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Plain { path, offset, .. } => write!(f, "Plain({}@{offset})", path.display()),
            Source::Gz { path, skip, .. } => write!(f, "Gz({}, skip {skip})", path.display()),
            Source::Missing => f.write_str("Missing"),
        }
    }
}

/// A reader of one log's entries. Memory: a block, an entry and the open files, whatever
/// the log's size; the sink is called for each entry, so it sets the pace.
#[derive(Debug)]
pub struct LogReader {
    format: Format,
    files: LogFiles,
    rotation: Arc<Rotation>,
    filter: Filter,
    /// Oldest first; the last one is the current file, followed.
    queue: VecDeque<Source>,
    /// The rotation generation when the last source was opened.
    generation: u64,
    buf: Vec<u8>,
}

fn read_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> LogError + '_ {
    move |source| LogError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn source(rotated: Rotated, path: PathBuf) -> Source {
    match rotated {
        Rotated::Plain(file) => Source::Plain {
            file,
            path,
            offset: 0,
        },
        Rotated::Gz(file) => Source::Gz {
            file,
            reader: None,
            path,
            skip: 0,
        },
    }
}

impl LogReader {
    /// Opens every file of the log at once (under the rotation lock, so a rotation is seen
    /// whole or not at all) and, with `tail`, finds where its last `tail` wanted entries
    /// begin: plain files backwards from their end, gzipped ones by counting forwards.
    pub fn open(
        format: Format,
        files: LogFiles,
        rotation: Arc<Rotation>,
        filter: Filter,
        tail: Option<usize>,
    ) -> Result<LogReader, LogError> {
        let mut queue = VecDeque::new();
        let generation = {
            let generation = rotation.lock();
            for k in (1..=files.rotated_count()).rev() {
                let opened = files
                    .open_rotated(k)
                    .map_err(read_err(&files.rotated(k, false)))?;
                if let Some((r, path)) = opened {
                    queue.push_back(source(r, path));
                }
            }
            let current = files.open_current().map_err(read_err(&files.current))?;
            queue.push_back(match current {
                Some(file) => Source::Plain {
                    file,
                    path: files.current.clone(),
                    offset: 0,
                },
                None => Source::Missing,
            });
            *generation
        };
        let mut reader = LogReader {
            format,
            files,
            rotation,
            filter,
            queue,
            generation,
            buf: Vec::new(),
        };
        if let Some(n) = tail {
            reader.seek_tail(n)?;
        }
        Ok(reader)
    }

    fn seek_tail(&mut self, n: usize) -> Result<(), LogError> {
        let (format, filter) = (self.format, self.filter.clone());
        let wants = move |e: &Entry| filter.wants(e);
        let mut remaining = n;
        let mut first = 0;
        for i in (0..self.queue.len()).rev() {
            let found = match &mut self.queue[i] {
                Source::Plain { file, path, offset } => {
                    let (start, found) = format
                        .tail_start(file, remaining, &wants)
                        .map_err(read_err(path))?;
                    *offset = start;
                    found
                }
                Source::Gz {
                    file, path, skip, ..
                } => {
                    let count = count_gz(format, file, &wants).map_err(read_err(path))?;
                    *skip = count.saturating_sub(remaining);
                    count.min(remaining)
                }
                Source::Missing => 0,
            };
            if found >= remaining {
                first = i;
                break;
            }
            remaining -= found;
        }
        self.queue.drain(..first);
        Ok(())
    }

    /// Hands every entry written so far that the filter wants to `sink` (false: stop), in
    /// order, across the files rotated since the last read.
    pub fn read(&mut self, sink: &mut dyn FnMut(Entry) -> bool) -> Result<Progress, LogError> {
        loop {
            while !self.queue.is_empty() {
                let p = self.read_front(sink)?;
                if p != Progress::CaughtUp {
                    return Ok(p);
                }
                if self.queue.len() == 1 {
                    break;
                }
                self.queue.pop_front();
            }
            if !self.follow_rotation()? {
                return Ok(Progress::CaughtUp);
            }
        }
    }

    /// Reads the oldest source to its (current) end.
    fn read_front(&mut self, sink: &mut dyn FnMut(Entry) -> bool) -> Result<Progress, LogError> {
        let (format, filter, buf) = (self.format, &self.filter, &mut self.buf);
        let Some(front) = self.queue.front_mut() else {
            return Ok(Progress::CaughtUp);
        };
        let mut hand = |e: Entry, skip: &mut usize| {
            if filter.past_until(&e) {
                return Some(Progress::Ended);
            }
            if !filter.wants(&e) {
                return None;
            }
            if *skip > 0 {
                *skip -= 1;
                return None;
            }
            (!sink(e)).then_some(Progress::ClientGone)
        };
        match front {
            Source::Plain { file, path, offset } => {
                let err = read_err(path);
                let mut f: &File = file;
                f.seek(SeekFrom::Start(*offset)).map_err(&err)?;
                let mut r = BufReader::with_capacity(BLOCK, f);
                let mut no_skip = 0;
                loop {
                    match format.next(&mut r, buf).map_err(&err)? {
                        Next::Entry(e, n) => {
                            *offset += n;
                            if let Some(p) = hand(e, &mut no_skip) {
                                return Ok(p);
                            }
                        }
                        Next::Skip(n) => *offset += n,
                        Next::End => return Ok(Progress::CaughtUp),
                    }
                }
            }
            Source::Gz {
                file,
                reader,
                path,
                skip,
            } => {
                let err = read_err(path);
                let reader = match reader {
                    Some(r) => r,
                    None => {
                        let mut f = file.try_clone().map_err(&err)?;
                        f.seek(SeekFrom::Start(0)).map_err(&err)?;
                        reader.insert(Box::new(BufReader::with_capacity(BLOCK, GzDecoder::new(f))))
                    }
                };
                loop {
                    match format.next(reader.as_mut(), buf).map_err(&err)? {
                        Next::Entry(e, _) => {
                            if let Some(p) = hand(e, skip) {
                                return Ok(p);
                            }
                        }
                        Next::Skip(_) => {}
                        Next::End => return Ok(Progress::CaughtUp),
                    }
                }
            }
            Source::Missing => Ok(Progress::CaughtUp),
        }
    }

    /// After the current file was read to its end: queues the files a rotation put after
    /// it (or the current file, once it exists). False when there is nothing new.
    fn follow_rotation(&mut self) -> Result<bool, LogError> {
        let generation = self.rotation.lock();
        let rotations = *generation - self.generation;
        if rotations == 0 {
            if matches!(self.queue.back(), Some(Source::Missing)) {
                let current = self
                    .files
                    .open_current()
                    .map_err(read_err(&self.files.current))?;
                if let Some(file) = current {
                    self.queue.pop_back();
                    self.queue.push_back(Source::Plain {
                        file,
                        path: self.files.current.clone(),
                        offset: 0,
                    });
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        // The file read so far is now `<log>.rotations` (or gone); the newer ones follow.
        let newer = rotations
            .saturating_sub(1)
            .min(u64::from(self.files.rotated_count())) as u32;
        for k in (1..=newer).rev() {
            let opened = self
                .files
                .open_rotated(k)
                .map_err(read_err(&self.files.rotated(k, false)))?;
            if let Some((r, path)) = opened {
                self.queue.push_back(source(r, path));
            }
        }
        let current = self
            .files
            .open_current()
            .map_err(read_err(&self.files.current))?;
        self.queue.push_back(match current {
            Some(file) => Source::Plain {
                file,
                path: self.files.current.clone(),
                offset: 0,
            },
            None => Source::Missing,
        });
        self.generation = *generation;
        Ok(true)
    }
}

/// How many entries of a gzipped file `wants` keeps (read through a duplicate of the
/// file, from its start).
fn count_gz(format: Format, file: &File, wants: &dyn Fn(&Entry) -> bool) -> std::io::Result<usize> {
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(BLOCK, GzDecoder::new(f));
    let mut count = 0;
    let mut buf = Vec::new();
    loop {
        match format.next(&mut reader, &mut buf)? {
            Next::Entry(e, _) => count += usize::from(wants(&e)),
            Next::Skip(_) => {}
            Next::End => return Ok(count),
        }
    }
}
