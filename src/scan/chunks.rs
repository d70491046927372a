//! Summarising a stream (gzip, stdin, a pipe) on several threads.
//!
//! A stream cannot be cut into byte ranges up front like a plain file, so the calling thread
//! reads (and decompresses) it into newline-aligned chunks of [`CHUNK`] bytes and hands them
//! out to parser threads, each with its own [`Parser`](crate::sshd::Parser) and
//! [`Summary`]; the summaries merge at the end. Memory stays bounded: a few chunks in flight
//! and recycled, whatever the stream's length.
//!
//! Each chunk starts with a clean pid table, since the previous chunk may have gone to
//! another thread, and is preceded by the last [`WARM_UP`] bytes of the previous chunk,
//! parsed without being counted, so that connections open across the boundary keep their
//! address. One silent for longer than that loses it (counted in `attacks_without_address`).

use std::io::{self, Read};
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::sync::mpsc;

use super::lines::{LineCounts, MAX_LINE, read_lines};
use super::{LineJudge, Options, Progress, Summary};

/// Bytes per chunk: big enough that few connections straddle a boundary, small enough that
/// the chunks in flight stay far below the memory budget.
pub const CHUNK: usize = 2 << 20;

struct Chunk {
    /// Stream offset of `data[0]`.
    offset: u64,
    data: Vec<u8>,
    /// The last whole lines before `data` (at most [`WARM_UP`] bytes), parsed first so that
    /// connections open across the boundary keep their address.
    warm_up: Vec<u8>,
}

/// Bytes of the previous chunk repeated before each chunk: small next to [`CHUNK`] (3 %
/// more parsing), and in the benchmark file enough that no line loses its address.
const WARM_UP: usize = 64 * 1024;

/// Summarises `src` on `opts.threads` parser threads (the calling thread reads).
pub fn summarize_chunked<R: Read>(
    src: R,
    opts: &Options,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> io::Result<()> {
    let workers = opts.threads.max(1);
    // Two chunks queued are enough to keep every parser fed; more would only cost memory.
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Chunk>(2);
    let chunk_rx = Mutex::new(chunk_rx);
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
    let mut skipped = LineCounts::default();
    let (parts, read_result) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (chunk_rx, spare_tx) = (&chunk_rx, spare_tx.clone());
                scope.spawn(move || parse_chunks(chunk_rx, spare_tx, opts))
            })
            .collect();
        let read_result = cut_chunks(src, &chunk_tx, &spare_rx, progress, &mut skipped);
        drop(chunk_tx); // ends the workers' loops
        let parts: Vec<Option<Summary>> = handles.into_iter().map(|h| h.join().ok()).collect();
        (parts, read_result)
    });
    summary.totals.lines += skipped.lines;
    summary.totals.overlong += skipped.overlong;
    let mut lost_worker = false;
    for part in parts {
        match part {
            Some(part) => summary.merge(part),
            None => lost_worker = true,
        }
    }
    match (read_result, lost_worker) {
        (Err(e), _) => Err(e),
        (Ok(()), true) => Err(io::Error::other("a scan thread failed")),
        (Ok(()), false) => Ok(()),
    }
}

/// A parser thread: summarises chunks until the channel closes.
fn parse_chunks(
    chunks: &Mutex<mpsc::Receiver<Chunk>>,
    spare: mpsc::Sender<Vec<u8>>,
    opts: &Options,
) -> Summary {
    let mut summary = opts.new_thread_summary();
    let mut judge = LineJudge::new(opts);
    let mut counts = LineCounts::default();
    loop {
        let next = match chunks.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok(chunk) = next else { break };
        judge.reset();
        for line in chunk.warm_up.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Ok(text) = std::str::from_utf8(line) {
                judge.warm(text);
            }
        }
        // Reading from a slice cannot fail.
        let _ = read_lines(
            &chunk.data[..],
            chunk.offset,
            false,
            &mut counts,
            |_| {},
            |line| {
                let mut scratch = String::new();
                if let Some(event) = judge.judge(&line, &mut scratch) {
                    summary.add_event(line.offset, &event);
                }
                ControlFlow::Continue(())
            },
        );
        let _ = spare.send(chunk.data);
    }
    judge.add_counts(counts, &mut summary.totals);
    summary
}

/// Reads `src` into newline-aligned chunks and sends them. A line that does not fit in a
/// chunk is longer than [`MAX_LINE`]: it is counted in `skipped` and dropped here.
fn cut_chunks<R: Read>(
    mut src: R,
    chunks: &mpsc::SyncSender<Chunk>,
    spare: &mpsc::Receiver<Vec<u8>>,
    progress: &dyn Progress,
    skipped: &mut LineCounts,
) -> io::Result<()> {
    const _: () = assert!(CHUNK > MAX_LINE);
    let mut offset = 0u64; // stream offset of the first byte of `carry`
    let mut carry: Vec<u8> = Vec::new(); // the unfinished last line of the previous read
    let mut skipping = false; // inside an overlong line
    let mut previous_tail = Vec::new(); // the last lines of the previous chunk
    loop {
        let mut buf = spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        buf.clear();
        buf.append(&mut carry);
        let (eof, error) = fill(&mut src, &mut buf, progress);
        if skipping {
            match memchr::memchr(b'\n', &buf) {
                Some(newline) => {
                    buf.drain(..=newline);
                    offset += newline as u64 + 1;
                    skipping = false;
                }
                None => {
                    offset += buf.len() as u64;
                    buf.clear();
                }
            }
        }
        // At the end the unterminated last line is a line; after a read error it is a
        // fragment (a truncated gzip member could turn `1.2.3.45` into `1.2.3.4`): dropped.
        let cut = if eof {
            Some(buf.len())
        } else {
            memchr::memrchr(b'\n', &buf).map(|n| n + 1)
        };
        match cut {
            Some(cut) => {
                carry.extend_from_slice(&buf[cut..]);
                buf.truncate(cut);
            }
            None if buf.len() >= CHUNK && error.is_none() => {
                // A full chunk without a newline: the line is overlong.
                skipped.lines += 1;
                skipped.overlong += 1;
                skipping = true;
                offset += buf.len() as u64;
                buf.clear();
            }
            None => {}
        }
        let sent_len = buf.len() as u64;
        let warm_up = std::mem::replace(&mut previous_tail, last_lines(&buf, WARM_UP));
        if sent_len > 0
            && chunks
                .send(Chunk {
                    offset,
                    data: buf,
                    warm_up,
                })
                .is_err()
        {
            return Err(io::Error::other("the scan threads stopped"));
        }
        offset += sent_len;
        if let Some(e) = error {
            return Err(e);
        }
        if eof {
            return Ok(());
        }
    }
}

/// The whole lines in the last `max` bytes of `data` (which ends at a line end).
fn last_lines(data: &[u8], max: usize) -> Vec<u8> {
    let window = &data[data.len().saturating_sub(max)..];
    let whole = if window.len() == data.len() {
        window
    } else {
        memchr::memchr(b'\n', window).map_or(&[][..], |n| &window[n + 1..])
    };
    whole.to_vec()
}

/// Reads into `buf` until it holds [`CHUNK`] bytes or the input ends; returns (end of
/// input, error). `read_to_end` fills the spare capacity without zeroing it first, which a
/// `resize` + `read` loop would do for every chunk.
fn fill(
    src: &mut impl Read,
    buf: &mut Vec<u8>,
    progress: &dyn Progress,
) -> (bool, Option<io::Error>) {
    let before = buf.len();
    let wanted = CHUNK.saturating_sub(before);
    // Bytes read before an error stay in `buf` (documented by `read_to_end`).
    let result = src.by_ref().take(wanted as u64).read_to_end(buf);
    progress.advance((buf.len() - before) as u64);
    match result {
        Ok(n) => (n < wanted, None),
        Err(e) => (false, Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(lines: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..lines {
            let ip = format!("192.31.196.{}", i % 100);
            let line = format!(
                "Mar  1 10:00:00 srv sshd[{}]: Failed password for u{} from {ip} port 22 ssh2\n",
                i % 5000,
                i % 17
            );
            out.extend_from_slice(line.as_bytes());
        }
        out
    }

    fn summarize(data: &[u8], threads: usize) -> Summary {
        let opts = Options {
            threads,
            ..Options::default()
        };
        let mut summary = Summary::default();
        if threads == 1 {
            let src = data.to_vec();
            super::super::summarize_stream(std::io::Cursor::new(src), &opts, &(), &mut summary)
                .unwrap();
        } else {
            summarize_chunked(data, &opts, &(), &mut summary).unwrap();
        }
        summary
    }

    #[test]
    fn chunked_equals_sequential() {
        let data = sample(120_000); // several chunks
        assert!(data.len() > 3 * CHUNK);
        let one = summarize(&data, 1);
        for threads in [2, 3] {
            let many = summarize(&data, threads);
            assert_eq!(many.totals, one.totals);
            let rows = |s: &Summary| -> Vec<(String, u64, usize, Vec<String>)> {
                s.attackers(false)
                    .iter()
                    .map(|a| {
                        let users = a.users.first_tried().map(String::from).collect();
                        (a.ip.to_string(), a.attempts, a.users.count(), users)
                    })
                    .collect()
            };
            assert_eq!(rows(&many), rows(&one));
        }
    }

    #[test]
    fn overlong_lines_across_chunks_are_counted_once() {
        let mut data = sample(10);
        data.extend(std::iter::repeat_n(b'x', 3 * CHUNK + 5));
        data.push(b'\n');
        data.extend(sample(10));
        data.extend(std::iter::repeat_n(b'y', MAX_LINE + 1)); // fits a chunk, still overlong
        data.push(b'\n');
        data.extend(sample(3));
        let s = summarize(&data, 2);
        assert_eq!(s.totals.overlong, 2);
        assert_eq!(s.totals.lines, 25);
        assert_eq!(s.totals.events, 23);
    }
}
