//! The two on-disk formats, entry by entry: encoding, decoding forwards, and finding where
//! the last entries of a plain file begin, backwards from its end.

use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Which output stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn of(name: &str) -> Stream {
        if name == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        }
    }
}

/// One logged line: its bytes as `docker logs` prints them (with the newline, unless the
/// line was cut because it was too long or the stream ended without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub stream: Stream,
    pub time: SystemTime,
    pub line: Vec<u8>,
}

/// A driver's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// json-file: `{"log":"...","stream":"stdout","time":"<RFC 3339>"}\n`.
    Json,
    /// local: `[u32 BE len][protobuf LogEntry][u32 BE len]`.
    Local,
}

/// The largest local entry believed: a length above it is a damaged file.
const MAX_LOCAL_ENTRY: usize = 1 << 20;

#[derive(Serialize)]
struct JsonOut<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

#[derive(Deserialize)]
struct JsonIn {
    log: String,
    stream: String,
    time: String,
}

/// What one forward step found.
#[derive(Debug)]
pub(crate) enum Next {
    /// An entry and the bytes it took.
    Entry(Entry, u64),
    /// Bytes that hold no entry (a damaged line), skipped.
    Skip(u64),
    /// The end, or an entry still being written.
    End,
}

impl Format {
    /// Appends `line` as one entry to `out`.
    pub fn encode(self, stream: Stream, time: SystemTime, line: &[u8], out: &mut Vec<u8>) {
        match self {
            Format::Json => {
                let log = String::from_utf8_lossy(line);
                let time = humantime::format_rfc3339_nanos(time).to_string();
                let o = JsonOut {
                    log: &log,
                    stream: stream.name(),
                    time: &time,
                };
                // Serialising strings into a Vec cannot fail.
                if serde_json::to_writer(&mut *out, &o).is_ok() {
                    out.push(b'\n');
                }
            }
            Format::Local => {
                let (line, partial) = match line.strip_suffix(b"\n") {
                    Some(l) => (l, false),
                    None => (line, true),
                };
                let nanos = time
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                let mut msg = Vec::with_capacity(line.len() + 32);
                bytes_field(&mut msg, 1, stream.name().as_bytes());
                if nanos != 0 {
                    msg.push(2 << 3);
                    varint(&mut msg, nanos);
                }
                bytes_field(&mut msg, 3, line);
                if partial {
                    msg.push(4 << 3);
                    msg.push(1);
                }
                let len = (msg.len() as u32).to_be_bytes();
                out.extend_from_slice(&len);
                out.extend_from_slice(&msg);
                out.extend_from_slice(&len);
            }
        }
    }

    /// Reads the next entry. `buf` is scratch space, reused.
    pub(crate) fn next(self, r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Next> {
        buf.clear();
        match self {
            Format::Json => {
                let n = r.read_until(b'\n', buf)?;
                if n == 0 || buf.last() != Some(&b'\n') {
                    return Ok(Next::End);
                }
                Ok(match decode_json(buf) {
                    Some(e) => Next::Entry(e, n as u64),
                    None => Next::Skip(n as u64),
                })
            }
            Format::Local => {
                let mut len = [0u8; 4];
                if !read_all(r, &mut len)? {
                    return Ok(Next::End);
                }
                let n = u32::from_be_bytes(len) as usize;
                if n > MAX_LOCAL_ENTRY {
                    return Err(damaged());
                }
                buf.resize(n + 4, 0);
                if !read_all(r, buf)? {
                    return Ok(Next::End);
                }
                let total = (n + 8) as u64;
                Ok(match decode_local(&buf[..n]) {
                    Some(e) if buf[n..] == len => Next::Entry(e, total),
                    _ => Next::Skip(total),
                })
            }
        }
    }

    /// Where the last `n` whole entries that `wanted` keeps begin in a plain file, and how
    /// many there are (fewer than `n` when the file holds fewer). Read backwards from the end,
    /// so the memory used is a block and an entry whatever the file's size.
    pub(crate) fn tail_start(
        self,
        f: &mut File,
        n: usize,
        wanted: &dyn Fn(&Entry) -> bool,
    ) -> std::io::Result<(u64, usize)> {
        match self {
            Format::Json => json_tail(f, n, wanted),
            Format::Local => local_tail(f, n, wanted),
        }
    }
}

/// Like `read_exact`, but false at a clean or partial end.
fn read_all(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn damaged() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "damaged local log entry")
}

fn decode_json(line: &[u8]) -> Option<Entry> {
    let e: JsonIn = serde_json::from_slice(line).ok()?;
    Some(Entry {
        stream: Stream::of(&e.stream),
        time: humantime::parse_rfc3339_weak(e.time.trim_end_matches('Z')).ok()?,
        line: e.log.into_bytes(),
    })
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u8, b: &[u8]) {
    out.push((field << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn read_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// A protobuf `LogEntry`: source (1), time_nano (2), line (3), partial (4); other fields
/// (partial metadata, attributes) are skipped.
fn decode_local(b: &[u8]) -> Option<Entry> {
    let mut pos = 0;
    let (mut stream, mut nanos, mut line, mut partial) = (Stream::Stdout, 0u64, Vec::new(), false);
    while pos < b.len() {
        let key = read_varint(b, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = read_varint(b, &mut pos)?;
                match field {
                    2 => nanos = v,
                    4 => partial = v != 0,
                    _ => {}
                }
            }
            2 => {
                let len = read_varint(b, &mut pos)? as usize;
                let data = b.get(pos..pos.checked_add(len)?)?;
                pos += len;
                match field {
                    1 => stream = Stream::of(std::str::from_utf8(data).ok()?),
                    3 => line = data.to_vec(),
                    _ => {}
                }
            }
            1 => pos += 8,
            5 => pos += 4,
            _ => return None,
        }
    }
    if !partial {
        line.push(b'\n');
    }
    Some(Entry {
        stream,
        time: UNIX_EPOCH + Duration::from_nanos(nanos),
        line,
    })
}

/// How much of a plain file is read at a time backwards.
pub(crate) const BLOCK: usize = 64 * 1024;

fn json_tail(
    f: &mut File,
    n: usize,
    wanted: &dyn Fn(&Entry) -> bool,
) -> std::io::Result<(u64, usize)> {
    let len = f.metadata()?.len();
    let keeps = |line: &[u8]| decode_json(line).is_some_and(|e| wanted(&e));
    // `buf` holds [buf_start, pos): the file before the line being looked at.
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = len;
    let mut found_end = false;
    let mut count = 0;
    loop {
        let search_end = if found_end {
            pos.saturating_sub(1)
        } else {
            pos
        };
        let rel_end = (search_end - buf_start) as usize;
        match buf[..rel_end].iter().rposition(|b| *b == b'\n') {
            Some(i) if !found_end => {
                // A partial last line is not a line yet: whole lines end at this newline.
                pos = buf_start + i as u64 + 1;
                buf.truncate((pos - buf_start) as usize);
                found_end = true;
            }
            Some(i) => {
                if keeps(&buf[i + 1..(pos - buf_start) as usize]) {
                    if count == n {
                        return Ok((pos, count));
                    }
                    count += 1;
                }
                pos = buf_start + i as u64 + 1;
                buf.truncate((pos - buf_start) as usize);
            }
            None if buf_start == 0 => {
                if !found_end {
                    return Ok((0, 0));
                }
                if keeps(&buf[..pos as usize]) {
                    if count == n {
                        return Ok((pos, count));
                    }
                    count += 1;
                }
                return Ok((0, count));
            }
            None => {
                let new_start = buf_start.saturating_sub(BLOCK as u64);
                let mut block = vec![0u8; (buf_start - new_start) as usize];
                f.seek(SeekFrom::Start(new_start))?;
                f.read_exact(&mut block)?;
                block.extend_from_slice(&buf);
                buf = block;
                buf_start = new_start;
            }
        }
    }
}

fn local_tail(
    f: &mut File,
    n: usize,
    wanted: &dyn Fn(&Entry) -> bool,
) -> std::io::Result<(u64, usize)> {
    let len = f.metadata()?.len();
    let mut word = [0u8; 4];
    // The last entry is whole when its two lengths agree (the common case); otherwise a
    // writer is in the middle of one, and a forward walk of the lengths finds where the
    // whole entries end (4 bytes read an entry).
    let whole_at_end = len >= 8 && {
        f.read_exact_at(&mut word, len - 4)?;
        let size = u64::from(u32::from_be_bytes(word));
        let mut head = [0u8; 4];
        size + 8 <= len && {
            f.read_exact_at(&mut head, len - 8 - size)?;
            head == word
        }
    };
    let mut end = if whole_at_end { len } else { 0 };
    while !whole_at_end && end + 8 <= len {
        f.read_exact_at(&mut word, end)?;
        let next = end + 8 + u64::from(u32::from_be_bytes(word));
        if next > len {
            break;
        }
        end = next;
    }
    // Backwards from there, by the trailing lengths.
    let mut pos = end;
    let mut count = 0;
    let mut msg = Vec::new();
    while pos >= 8 {
        f.read_exact_at(&mut word, pos - 4)?;
        let size = u64::from(u32::from_be_bytes(word));
        if size as usize > MAX_LOCAL_ENTRY || size + 8 > pos {
            return Err(damaged());
        }
        let start = pos - 8 - size;
        msg.resize(size as usize, 0);
        f.read_exact_at(&mut msg, start + 4)?;
        if decode_local(&msg).is_some_and(|e| wanted(&e)) {
            if count == n {
                return Ok((pos, count));
            }
            count += 1;
        }
        pos = start;
    }
    Ok((0, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn both_formats_round_trip() {
        for format in [Format::Json, Format::Local] {
            let mut out = Vec::new();
            format.encode(Stream::Stdout, t(1), b"one\n", &mut out);
            format.encode(Stream::Stderr, t(2), b"cut", &mut out);
            let mut r = std::io::Cursor::new(out);
            let mut buf = Vec::new();
            let mut got = Vec::new();
            while let Next::Entry(e, _) = format.next(&mut r, &mut buf).unwrap() {
                got.push(e);
            }
            assert_eq!(got.len(), 2, "{format:?}");
            assert_eq!(got[0].line, b"one\n");
            assert_eq!(got[0].stream, Stream::Stdout);
            assert_eq!(got[0].time, t(1));
            assert_eq!(got[1].line, b"cut");
            assert_eq!(got[1].stream, Stream::Stderr);
        }
    }

    #[test]
    fn json_is_dockerds_shape() {
        let mut out = Vec::new();
        Format::Json.encode(Stream::Stdout, t(0), b"one\n", &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with(r#"{"log":"one\n","stream":"stdout","time":"2023-11-14T22:13:20"#),
            "{s}"
        );
        assert!(s.ends_with("Z\"}\n"));
    }

    #[test]
    fn local_is_dockerds_protobuf_between_lengths() {
        let mut out = Vec::new();
        Format::Local.encode(
            Stream::Stdout,
            UNIX_EPOCH + Duration::from_nanos(300),
            b"hi\n",
            &mut out,
        );
        // source "stdout", time_nano 300, line "hi".
        let msg = [
            0x0a, 6, b's', b't', b'd', b'o', b'u', b't', 0x10, 0xac, 0x02, 0x1a, 2, b'h', b'i',
        ];
        let mut want = (msg.len() as u32).to_be_bytes().to_vec();
        want.extend_from_slice(&msg);
        want.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        assert_eq!(out, want);
    }
}
