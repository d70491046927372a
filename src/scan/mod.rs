//! `repute scan`: reading logs (plain files, gzip, stdin) in a streaming way, turning sshd
//! lines into [`Attempt`](crate::Attempt)s (borrowed as [`AttemptRef`]s), and either writing them out one JSON object per event
//! ([`write_events`], the `--format jsonl` contract) or summarising them per address
//! ([`summarize`], the `--format table` view).
//!
//! Memory does not grow with the input: lines are cut out of one fixed block buffer
//! (`scan/lines.rs`), a line never costs an allocation unless it is an sshd event, and a summary
//! is bounded whatever the input: IPv6 addresses are grouped per /64 ([`Options::grouping`]),
//! at most [`Options::max_sources`] rows are kept (shared out among threads), and a row's user
//! names are capped (see `scan/summary.rs` and [`crate::policy::history`]). Lines that are not
//! UTF-8 are decoded lossily (U+FFFD for the bad bytes) and counted; lines longer than
//! [`MAX_LINE`] are counted in [`Totals`] and skipped; an input that cannot be read becomes
//! an [`InputError`] and the others are still read.
//!
//! Speed: a line that does not contain `sshd` is dropped after one `memmem` search (every
//! syslog envelope the parser accepts names the program, and only `sshd`/`sshd-session`
//! are sshd), so only sshd lines reach the parser. With more than one thread, a plain file
//! is cut into as many byte ranges as threads, each read with `pread` and parsed by its own
//! [`Parser`] into its own [`Summary`], merged at the end. Each thread first reads the
//! 256 KiB before its range without counting them, so that a line without an address
//! (attributed through its connection's pid) keeps the address an earlier line gave; only a
//! connection that stayed silent for longer than that across a boundary loses it (counted
//! in `attacks_without_address`). Compressed input and stdin are read (and decoded) on the
//! calling thread and parsed in newline-aligned chunks by the others (`scan/chunks.rs`), with
//! the same warm-up. On the 1M-line benchmark file every thread count gives the same table
//! as one thread. JSON lines keep input order, so `write_events` parses on one thread, with
//! decoding on a read-ahead thread.

mod chunks;
pub mod csv;
pub mod enrich;
pub(crate) mod jsonl;
mod lines;
mod open;
mod summary;
pub mod system;
mod table;

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::mpsc;

use memchr::memmem;

pub use lines::{BLOCK, MAX_LINE};
pub use open::Input;
pub use summary::{AddrSummary, MAX_USERS_TRACKED, Summary, Totals, USERS_SHOWN, Users};
pub use table::{write_table, write_table_enriched};

use std::borrow::Cow;

use crate::addr;
use crate::policy::history::{DEFAULT_MAX_SOURCES, Grouping};
use crate::sshd::journal::{Entry, ExportEntry, Field};
use crate::sshd::{AttemptRef, Parser};
use lines::{Line, LineCounts, read_lines};
use open::Opened;

/// Input positions (byte offsets) of input `i` are shifted by `i << INPUT_POSITION_SHIFT`:
/// room for 65,536 inputs of up to 256 TiB each.
const INPUT_POSITION_SHIFT: u32 = 48;

/// A plain file smaller than this is read on one thread: splitting costs more than it saves.
const PARALLEL_MIN_BYTES: u64 = 4 << 20;

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Year-less syslog stamps are dated relative to this instant.
    pub now: jiff::Timestamp,
    /// Threads to use (1 = everything on the calling thread).
    pub threads: usize,
    /// Only events from public addresses (see [`crate::addr`]).
    pub only_public: bool,
    /// The zone of stamps without one (the local time of the host that wrote the log).
    pub zone: jiff::tz::TimeZone,
    /// Every line is an sshd message, with no program tag to check (`journalctl -u ssh -o
    /// cat`, runit/s6 logs): only for input known to hold sshd's lines alone, since any
    /// local program could write a line that reads like sshd's.
    pub bare_messages: bool,
    /// How addresses are grouped into the summary's rows (IPv6 per /64 by default).
    pub grouping: Grouping,
    /// The most rows a summary keeps (shared out among the threads; the least active are
    /// dropped past it).
    pub max_sources: usize,
}

impl Options {
    /// An empty summary with these options' grouping and bound.
    pub fn new_summary(&self) -> Summary {
        Summary::new(self.grouping, self.max_sources)
    }

    /// An empty summary for one of `threads` parser threads: each gets its share of
    /// `max_sources`, so the bound on memory does not grow with the number of threads.
    fn new_thread_summary(&self) -> Summary {
        Summary::new(self.grouping, self.max_sources / self.threads.max(1))
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            now: jiff::Timestamp::now(),
            threads: 1,
            only_public: false,
            zone: jiff::tz::TimeZone::UTC,
            bare_messages: false,
            grouping: Grouping::default(),
            max_sources: DEFAULT_MAX_SOURCES,
        }
    }
}

/// Told how many input bytes were read, for a progress bar.
pub trait Progress: Sync {
    fn advance(&self, bytes: u64);
}

/// No progress reporting.
impl Progress for () {
    fn advance(&self, _bytes: u64) {}
}

/// An input that could not be read (or not to its end).
#[derive(Debug, thiserror::Error)]
#[error("{name}: {source}")]
pub struct InputError {
    pub name: Arc<str>,
    pub source: io::Error,
}

/// The outcome of a `write_events` run.
#[derive(Debug, Default)]
pub struct EventsReport {
    pub totals: Totals,
    /// Attack events written (after `only_public` filtering).
    pub attacks_written: u64,
    pub errors: Vec<InputError>,
}

/// Decides, line by line, whether a line is an sshd event, counting what it must skip.
///
/// A line is a syslog line (program tag `sshd`…), a `journalctl -o json` entry (judged by
/// journald's trusted fields, see [`crate::sshd::journal`]), a line of a `journalctl -o
/// export` entry (the entry is judged at the empty line that ends it), or, with
/// `bare_messages`, an sshd message without envelope.
struct LineJudge {
    parser: Parser,
    sshd: memmem::Finder<'static>,
    invalid_utf8: u64,
    bare_messages: bool,
    export: ExportEntry,
    /// Unescaped journal fields that the current event borrows.
    scratch_message: String,
    scratch_host: String,
}

impl LineJudge {
    fn new(opts: &Options) -> Self {
        LineJudge {
            parser: Parser::with_zone(opts.now, opts.zone.clone()),
            sshd: memmem::Finder::new(b"sshd"),
            invalid_utf8: 0,
            bare_messages: opts.bare_messages,
            export: ExportEntry::default(),
            scratch_message: String::new(),
            scratch_host: String::new(),
        }
    }

    /// A line that is not UTF-8 is decoded lossily into `scratch` (bad bytes become U+FFFD)
    /// and judged all the same: an attacker must not hide a line from the scan by putting
    /// an invalid byte in the user name. The address sshd appends is ASCII, so it survives.
    fn judge<'a>(&'a mut self, line: &Line<'a>, scratch: &'a mut String) -> Option<AttemptRef<'a>> {
        let text = match line.text {
            Some(text) => text,
            None => {
                self.invalid_utf8 += 1;
                let wanted = self.bare_messages
                    || self.export.active
                    || self.sshd.find(line.bytes).is_some();
                if !wanted {
                    return None;
                }
                *scratch = String::from_utf8_lossy(line.bytes).into_owned();
                scratch.as_str()
            }
        };
        self.read(text)
    }

    /// Reads a line only for what it tells of its connection (a thread's warm-up).
    fn warm(&mut self, text: &str) {
        let _ = self.read(text);
    }

    /// Forgets every connection and any half-read export entry.
    fn reset(&mut self) {
        self.parser.reset();
        self.export = ExportEntry::default();
    }

    fn read<'a>(&'a mut self, text: &'a str) -> Option<AttemptRef<'a>> {
        if self.export.active || ExportEntry::starts(text) {
            if !self.export.feed(text) {
                return None;
            }
            let entry = self.export.sshd_message()?;
            return self
                .parser
                .parse_parts(entry.time, entry.host, entry.pid, entry.message);
        }
        // Every envelope the parser accepts names the program, and a journal entry of sshd
        // names it in `_COMM`/`_EXE`: a line without `sshd` is no event.
        if !self.bare_messages && self.sshd.find(text.as_bytes()).is_none() {
            return None;
        }
        if text.starts_with('{') {
            return self.read_json(text);
        }
        if self.bare_messages {
            // A line that names its program is judged by it; any other is sshd's message.
            return match self.parser.parse_line_ref(text) {
                Some(event) => Some(event),
                None => self.parser.parse_bare(text),
            };
        }
        self.parser.parse_line_ref(text)
    }

    /// One `journalctl -o json` entry: sshd's by journald's own fields, or nothing.
    fn read_json<'a>(&'a mut self, text: &'a str) -> Option<AttemptRef<'a>> {
        let entry = Entry::from_json(text)?;
        if !entry.is_sshd() {
            return None;
        }
        let (time, pid) = (entry.time(), entry.pid());
        let LineJudge {
            parser,
            scratch_message,
            scratch_host,
            ..
        } = self;
        let message: &'a str = match entry.message? {
            Field::Text(Cow::Borrowed(m)) => m,
            Field::Text(Cow::Owned(m)) => {
                *scratch_message = m;
                scratch_message
            }
            Field::Bytes(bytes) => {
                *scratch_message = String::from_utf8(bytes).ok()?;
                scratch_message
            }
            Field::Other => return None,
        };
        let host: Option<&'a str> = match entry.hostname {
            Some(Field::Text(Cow::Borrowed(h))) => Some(h),
            Some(Field::Text(Cow::Owned(h))) => {
                *scratch_host = h;
                Some(scratch_host)
            }
            _ => None,
        };
        parser.parse_parts(time, host, pid, message)
    }

    fn add_counts(&self, counts: LineCounts, totals: &mut Totals) {
        totals.lines += counts.lines;
        totals.overlong += counts.overlong;
        totals.invalid_utf8 += self.invalid_utf8;
    }
}

/// Summarises every input; inputs that cannot be read are reported and skipped.
pub fn summarize(
    inputs: &[Input],
    opts: &Options,
    progress: &dyn Progress,
) -> (Summary, Vec<InputError>) {
    let mut summary = opts.new_summary();
    let mut errors = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let mut part = opts.new_summary();
        let result = match open::open(input) {
            Err(e) => Err(e),
            Ok(Opened::PlainFile { file, len })
                if opts.threads > 1 && len >= PARALLEL_MIN_BYTES =>
            {
                summarize_file_split(&file, len, opts, progress, &mut part)
            }
            Ok(Opened::PlainFile { file, .. }) => summarize_stream(file, opts, progress, &mut part),
            Ok(Opened::Stream(src)) => summarize_stream(src, opts, progress, &mut part),
        };
        // Positions are offsets within one input: later inputs come after earlier ones.
        part.shift_positions((index as u64) << INPUT_POSITION_SHIFT);
        summary.merge(part);
        if let Err(source) = result {
            errors.push(InputError {
                name: input.name(),
                source,
            });
        }
    }
    (summary, errors)
}

/// Summarises one stream front to back: on this thread, or with `opts.threads > 1` read here
/// and parsed in chunks by that many threads (see `scan/chunks.rs`). What was read before an error
/// stays in `summary`.
pub fn summarize_stream<R: Read>(
    src: R,
    opts: &Options,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> io::Result<()> {
    if opts.threads <= 1 {
        summarize_range(src, 0, false, None, opts, progress, summary)
    } else {
        chunks::summarize_chunked(src, opts, progress, summary)
    }
}

/// Summarises one plain file, cut into `opts.threads` byte ranges parsed in parallel.
pub fn summarize_file_split(
    file: &std::fs::File,
    len: u64,
    opts: &Options,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> io::Result<()> {
    let parts = opts.threads.max(1) as u64;
    let bounds: Vec<u64> = (0..=parts).map(|i| len * i / parts).collect();
    let results: Vec<(Summary, io::Result<()>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = bounds
            .windows(2)
            .map(|range| {
                let (start, end) = (range[0], range[1]);
                scope.spawn(move || {
                    let mut part = opts.new_thread_summary();
                    let mut judge = LineJudge::new(opts);
                    if start > 0 {
                        let from = start.saturating_sub(WARM_UP_BYTES);
                        let src = RangeReader { file, pos: from };
                        warm_up(&mut judge, src, from, from > 0, start);
                    }
                    // A range after the first starts one byte early and drops the partial
                    // line, so a line that begins exactly at `start` is still its own.
                    let from = start.saturating_sub(1);
                    let src = RangeReader { file, pos: from };
                    let result = summarize_range_with(
                        &mut judge,
                        src,
                        from,
                        start > 0,
                        Some(end),
                        progress,
                        &mut part,
                    );
                    (part, result)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| (opts.new_thread_summary(), Err(worker_panicked())))
            })
            .collect()
    });
    let mut first_error = None;
    for (part, result) in results {
        summary.merge(part);
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn worker_panicked() -> io::Error {
    io::Error::other("a scan thread failed")
}

/// Parses the lines of `src` that start before `end` into `summary`.
fn summarize_range(
    src: impl Read,
    base_offset: u64,
    skip_first: bool,
    end: Option<u64>,
    opts: &Options,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> io::Result<()> {
    let mut judge = LineJudge::new(opts);
    summarize_range_with(
        &mut judge,
        src,
        base_offset,
        skip_first,
        end,
        progress,
        summary,
    )
}

fn summarize_range_with(
    judge: &mut LineJudge,
    src: impl Read,
    base_offset: u64,
    skip_first: bool,
    end: Option<u64>,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> io::Result<()> {
    let mut counts = LineCounts::default();
    let on_read = |n: usize| progress.advance(n as u64);
    let result = read_lines(src, base_offset, skip_first, &mut counts, on_read, |line| {
        if end.is_some_and(|end| line.offset >= end) {
            return ControlFlow::Break(());
        }
        let mut scratch = String::new();
        if let Some(event) = judge.judge(&line, &mut scratch) {
            summary.add_event(line.offset, &event);
        }
        ControlFlow::Continue(())
    });
    judge.add_counts(counts, &mut summary.totals);
    result
}

/// How far before its range a thread starts reading to learn the connections (pids) that
/// are already open there: lines without an address (`kex_exchange_identification`, `Too
/// many authentication failures`) take theirs from an earlier line of the connection.
pub(crate) const WARM_UP_BYTES: u64 = 256 * 1024;

/// Feeds the judge the lines of `src` before `until`, counting and recording nothing.
fn warm_up(judge: &mut LineJudge, src: impl Read, base_offset: u64, skip_first: bool, until: u64) {
    let mut ignored = LineCounts::default();
    // A read error here only costs attribution; the range's own read will report it.
    let _ = read_lines(
        src,
        base_offset,
        skip_first,
        &mut ignored,
        |_| {},
        |line| {
            if line.offset >= until {
                return ControlFlow::Break(());
            }
            if let Some(text) = line.text {
                judge.warm(text);
            }
            ControlFlow::Continue(())
        },
    );
}

/// Adds members to the JSON events of public addresses (`repute scan --enrich` adds the
/// address's reputation). The scan core knows nothing of where the members come from.
pub trait Enricher {
    /// JSON members for the events of `ip` (canonical and public), each starting with a
    /// comma (`,"reputation":{…}`), or an empty string.
    fn event_members(&mut self, ip: IpAddr) -> &str;
}

/// Writes every event of every input as a JSON line, in input order.
pub fn write_events(
    inputs: &[Input],
    opts: &Options,
    progress: &dyn Progress,
    out: &mut dyn Write,
) -> io::Result<EventsReport> {
    write_events_enriched(inputs, opts, progress, out, None)
}

/// As [`write_events`], with the members `enricher` gives added to each event of a public
/// address.
pub fn write_events_enriched(
    inputs: &[Input],
    opts: &Options,
    progress: &dyn Progress,
    out: &mut dyn Write,
    mut enricher: Option<&mut dyn Enricher>,
) -> io::Result<EventsReport> {
    let mut report = EventsReport::default();
    for input in inputs {
        let name = input.name();
        let result = match open::open(input) {
            Err(e) => Err(e),
            Ok(Opened::PlainFile { file, .. }) => {
                // Reading a plain file costs little next to parsing: a read-ahead thread
                // would only add copies.
                let one_thread = Options {
                    threads: 1,
                    ..opts.clone()
                };
                let sink = EventSink {
                    out: &mut *out,
                    enricher: reborrow(&mut enricher),
                };
                write_stream_events(file, &name, &one_thread, progress, sink, &mut report)?
            }
            Ok(Opened::Stream(src)) => {
                let sink = EventSink {
                    out: &mut *out,
                    enricher: reborrow(&mut enricher),
                };
                write_stream_events(src, &name, opts, progress, sink, &mut report)?
            }
        };
        if let Err(source) = result {
            report.errors.push(InputError { name, source });
        }
    }
    Ok(report)
}

/// Writes the events of one stream. The outer `Result` is an output error (stop
/// everything), the inner one an input error (report it, go on with the next input).
fn write_stream_events<R: Read + Send + 'static>(
    src: R,
    name: &str,
    opts: &Options,
    progress: &dyn Progress,
    sink: EventSink<'_, '_>,
    report: &mut EventsReport,
) -> io::Result<io::Result<()>> {
    let EventSink { out, mut enricher } = sink;
    let mut out_error = None;
    let mut events = jsonl::EventBuffer::default();
    let input_result = with_read_ahead(src, opts.threads, |src| {
        let mut judge = LineJudge::new(opts);
        let mut counts = LineCounts::default();
        let on_read = |n: usize| progress.advance(n as u64);
        let totals = &mut report.totals;
        let attacks_written = &mut report.attacks_written;
        let result = read_lines(src, 0, false, &mut counts, on_read, |line: Line<'_>| {
            let mut scratch = String::new();
            let Some(attempt) = judge.judge(&line, &mut scratch) else {
                return ControlFlow::Continue(());
            };
            totals.events += 1;
            totals.attacks += u64::from(attempt.outcome.is_attack());
            if opts.only_public && !attempt.srcip.is_some_and(addr::is_public) {
                return ControlFlow::Continue(());
            }
            *attacks_written += u64::from(attempt.outcome.is_attack());
            let members = match enricher.as_deref_mut() {
                Some(enricher) => attempt
                    .srcip
                    .and_then(|ip| addr::public(ip).ok())
                    .map_or("", |ip| enricher.event_members(ip)),
                None => "",
            };
            events.push_with(name, line.number, &attempt, members);
            match events.flush_when_full(&mut *out) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    out_error = Some(e);
                    ControlFlow::Break(())
                }
            }
        });
        judge.add_counts(counts, totals);
        result
    });
    match out_error {
        Some(e) => Err(e),
        None => events.flush(out).map(|()| input_result),
    }
}

/// A shorter-lived `Option<&mut dyn Enricher>` (which `as_deref_mut` cannot give: the trait
/// object's own lifetime must shrink too).
fn reborrow<'a>(enricher: &'a mut Option<&mut dyn Enricher>) -> Option<&'a mut dyn Enricher> {
    match enricher {
        Some(e) => Some(&mut **e),
        None => None,
    }
}

/// Where the events of one stream go: the output, and what to add to them.
struct EventSink<'o, 'e> {
    out: &'o mut dyn Write,
    enricher: Option<&'e mut dyn Enricher>,
}

/// Runs `body` over `src` directly, or — with more than one thread — over a reader fed by a
/// thread that reads (and decompresses) `src` ahead, so decoding and parsing overlap.
///
/// The read-ahead thread is not joined: when `body` stops early (a closed output pipe) while
/// the thread waits on a silent stdin, the process must still be able to end.
fn with_read_ahead<R: Read + Send + 'static, T>(
    src: R,
    threads: usize,
    body: impl FnOnce(&mut dyn Read) -> io::Result<T>,
) -> io::Result<T> {
    if threads <= 1 {
        let mut src = src;
        return body(&mut src);
    }
    const DEPTH: usize = 4;
    let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(DEPTH);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(DEPTH + 2);
    std::thread::spawn(move || read_ahead(src, full_tx, empty_rx));
    let mut reader = ChannelReader {
        full: full_rx,
        empty: empty_tx,
        current: Vec::new(),
        pos: 0,
    };
    body(&mut reader)
    // Dropping `reader` closes both channels, which stops the read-ahead thread at its next
    // block.
}

/// The read-ahead thread: fills recycled blocks from `src` until the end, an error, or the
/// consumer goes away.
fn read_ahead<R: Read>(
    mut src: R,
    full: mpsc::SyncSender<io::Result<Vec<u8>>>,
    empty: mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut block = empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
        block.resize(BLOCK, 0);
        let filled = loop {
            match src.read(&mut block) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let message = match filled {
            Ok(0) => return,
            Ok(n) => {
                block.truncate(n);
                Ok(block)
            }
            Err(e) => Err(e),
        };
        let stop = message.is_err();
        if full.send(message).is_err() || stop {
            return;
        }
    }
}

/// The consuming side of the read-ahead channel, as a `Read`.
struct ChannelReader {
    full: mpsc::Receiver<io::Result<Vec<u8>>>,
    empty: mpsc::SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.full.recv() {
                Ok(Ok(block)) => {
                    let used = std::mem::replace(&mut self.current, block);
                    let _ = self.empty.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvError) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads a file from an offset with `pread`, so several threads share one open file.
struct RangeReader<'a> {
    file: &'a std::fs::File,
    pos: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
