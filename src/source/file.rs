//! Following one log file as a logger writes and rotates it.
//!
//! A [`FileFollower`] holds the file open and reads what was appended since its last
//! [`FileFollower::poll`], cut into complete lines. It tells files apart by device and inode,
//! and recognises the same content by its *head* (its first [`HEAD_BYTES`] bytes, persisted as
//! a length and an FNV-1a hash), so that:
//!
//! - **rename rotation** (`auth.log` → `auth.log.1`, a new `auth.log`): the path now names
//!   another inode; the old file is read to its end through the descriptor still open, and
//!   kept open (and drained at every poll) for [`RETIRED_GRACE`], because a logger writes to
//!   its old descriptor until it is told to reopen; the new file is read from its start;
//! - **copytruncate** and truncation (same inode, shorter than what was read, or a head that
//!   no longer matches because the file was truncated and written past our offset before we
//!   looked): the lines appended between our last read and the copy are in the copy, so the
//!   sibling files (`auth.log.1`, `auth.log-20261130`, …, not compressed ones) are searched
//!   for one with our head and at least our offset, and read from our offset to its end; then
//!   the file is read from its start;
//! - **a file that appears later** is read from its start; a missing file is waited for;
//! - **a restart** resumes from a saved [`Position`]: the same inode with the same head at
//!   least as long as the offset resumes at the offset; a file rotated away while we were
//!   down is found among its siblings by inode and head, read from the offset, then the new
//!   file from its start; a file with no saved position is started at its end (its history
//!   is not news).
//!
//! Lines are at most `max_line` bytes; a longer line is counted and skipped without being
//! held in memory. The position handed out is always at the end of a complete line, so a
//! restart never splits a line. What cannot be done: lines written to a file that was
//! rotated away twice between two polls (or compressed) before we read them are lost; the
//! follower says so by counting `missed_rotations` when a saved file cannot be found.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How many leading bytes identify a file's content.
pub const HEAD_BYTES: usize = 256;
/// How long a renamed-away file is still read after its rotation: the logger may write a few
/// more lines to its old descriptor before it reopens the path.
pub const RETIRED_GRACE: Duration = Duration::from_secs(5);
/// At most this many bytes are read from one file per poll, so that one busy file cannot
/// starve the others or the decisions.
const POLL_BUDGET: usize = 4 << 20;
/// At most this many siblings are examined when looking for a copy or a rotated file.
const MAX_SIBLINGS: usize = 64;
const READ_BLOCK: usize = 64 * 1024;

/// Where a follower stands in a file: enough to resume after a restart without skipping or
/// re-reading a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub dev: u64,
    pub inode: u64,
    /// Bytes consumed, always at the end of a complete line.
    pub offset: u64,
    /// Complete lines consumed (the last line's 1-based number).
    pub line: u64,
    /// How many head bytes `head_hash` covers (at most [`HEAD_BYTES`]).
    pub head_len: u32,
    pub head_hash: u64,
}

/// What a follower has done, for metrics and `repute status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowStats {
    pub lines: u64,
    pub bytes: u64,
    /// Lines longer than the limit, skipped.
    pub overlong: u64,
    /// Lines that are not UTF-8, skipped.
    pub not_utf8: u64,
    pub renames: u64,
    pub truncations: u64,
    /// Truncations where the copy was found and its missing lines read.
    pub copies_read: u64,
    /// Saved or rotated files that could not be found again (their unread lines are lost).
    pub missed_rotations: u64,
}

/// One complete line.
#[derive(Debug, Clone, Copy)]
pub struct FileLine<'a> {
    /// 1-based line number in the file it was read from.
    pub number: u64,
    pub text: &'a str,
}

/// An open file and how far it has been read.
struct Open {
    file: File,
    dev: u64,
    inode: u64,
    /// End of the last complete line consumed.
    offset: u64,
    /// Where the descriptor stands: `offset` plus the bytes of an unfinished line.
    read_to: u64,
    partial: Vec<u8>,
    /// Inside a line longer than the limit: drop bytes until its newline.
    skipping: bool,
    head: Vec<u8>,
    line: u64,
}

impl Open {
    fn at(file: File, offset: u64, line: u64) -> io::Result<Open> {
        let meta = file.metadata()?;
        let mut open = Open {
            file,
            dev: meta.dev(),
            inode: meta.ino(),
            offset,
            read_to: offset,
            partial: Vec::new(),
            skipping: false,
            head: Vec::new(),
            line,
        };
        open.file.seek(SeekFrom::Start(offset))?;
        open.load_head()?;
        Ok(open)
    }

    /// Reads the head of a file opened at an offset (a resume, checked against the saved
    /// hash just before): the first bytes up to the offset, at most [`HEAD_BYTES`].
    fn load_head(&mut self) -> io::Result<()> {
        let want = usize::try_from(self.offset)
            .unwrap_or(HEAD_BYTES)
            .min(HEAD_BYTES);
        self.head = read_head(&self.file, want)?;
        Ok(())
    }

    /// Extends the head with bytes just read at `at`. The head is built from what was read,
    /// never read again from the file: by then the file may have been truncated and rewritten,
    /// and a head taken from the new content would hide the truncation and the copy.
    fn extend_head(&mut self, at: u64, bytes: &[u8]) {
        if at == self.head.len() as u64 && self.head.len() < HEAD_BYTES {
            let take = bytes.len().min(HEAD_BYTES - self.head.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
    }

    /// Whether the file still starts with our head (false once truncated and rewritten).
    fn head_matches(&self) -> io::Result<bool> {
        if self.head.is_empty() {
            return Ok(true);
        }
        Ok(read_head(&self.file, self.head.len())? == self.head)
    }

    fn position(&self) -> Position {
        Position {
            dev: self.dev,
            inode: self.inode,
            offset: self.offset,
            line: self.line,
            head_len: u32::try_from(self.head.len()).unwrap_or(0),
            head_hash: fnv1a(&self.head),
        }
    }

    /// Reads what is there (up to the poll budget), handing over complete lines; returns the
    /// bytes read. With `finish`, an unfinished last line is handed over too (the file is
    /// done: a copy, or a retired file past its grace).
    fn read_lines(
        &mut self,
        max_line: usize,
        stats: &mut FollowStats,
        emit: &mut dyn FnMut(FileLine<'_>),
    ) -> io::Result<usize> {
        let mut buf = vec![0u8; READ_BLOCK];
        let mut total = 0;
        while total < POLL_BUDGET {
            let n = match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            self.extend_head(self.read_to, &buf[..n]);
            self.read_to += n as u64;
            stats.bytes += n as u64;
            self.split(&buf[..n], max_line, stats, emit);
        }
        Ok(total)
    }

    fn split(
        &mut self,
        mut data: &[u8],
        max_line: usize,
        stats: &mut FollowStats,
        emit: &mut dyn FnMut(FileLine<'_>),
    ) {
        // `consumed` is the file offset of `data[0]`.
        let mut consumed = self.read_to - data.len() as u64;
        while let Some(nl) = memchr::memchr(b'\n', data) {
            let piece = &data[..nl];
            self.line += 1;
            if self.skipping {
                self.skipping = false;
            } else if self.partial.len() + piece.len() > max_line {
                stats.overlong += 1;
                self.partial.clear();
            } else if self.partial.is_empty() {
                deliver(piece, self.line, stats, emit);
            } else {
                self.partial.extend_from_slice(piece);
                let whole = std::mem::take(&mut self.partial);
                deliver(&whole, self.line, stats, emit);
                self.partial = whole;
                self.partial.clear();
            }
            consumed += nl as u64 + 1;
            self.offset = consumed;
            data = &data[nl + 1..];
        }
        if self.skipping {
            return;
        }
        if self.partial.len() + data.len() > max_line {
            // The rest of this line is dropped as it arrives; it is counted once, here.
            stats.overlong += 1;
            self.partial.clear();
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(data);
        }
    }

    /// Hands over an unfinished last line as complete: the file will not grow any more.
    fn finish(&mut self, stats: &mut FollowStats, emit: &mut dyn FnMut(FileLine<'_>)) {
        if self.skipping {
            self.skipping = false;
            self.line += 1;
        } else if !self.partial.is_empty() {
            self.line += 1;
            let whole = std::mem::take(&mut self.partial);
            deliver(&whole, self.line, stats, emit);
        }
        self.offset = self.read_to;
    }
}

fn deliver(bytes: &[u8], number: u64, stats: &mut FollowStats, emit: &mut dyn FnMut(FileLine<'_>)) {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            stats.lines += 1;
            emit(FileLine { number, text });
        }
        Err(_) => stats.not_utf8 += 1,
    }
}

/// The first `len` bytes of `file` (fewer when it is shorter).
fn read_head(file: &File, len: usize) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut head[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    Ok(head)
}

/// FNV-1a, 64 bits: enough to tell two log heads apart, and stable across versions (it is
/// persisted).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Where to start a file that has no saved position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// At its end: what was written before watch started is history, not news.
    End,
    /// At its start.
    Beginning,
}

/// Follows one path; see the module documentation.
pub struct FileFollower {
    path: PathBuf,
    current: Option<Open>,
    /// A renamed-away file still drained until its grace ends.
    retired: Option<(Open, Instant)>,
    /// A saved position not yet applied (the file was missing at start).
    pending: Option<Position>,
    start_at: StartAt,
    started: bool,
    max_line: usize,
    pub stats: FollowStats,
}

impl FileFollower {
    /// A follower of `path`, resuming at `saved` when given. Opens nothing yet: the first
    /// [`FileFollower::poll`] does.
    pub fn new(
        path: impl Into<PathBuf>,
        saved: Option<Position>,
        start_at: StartAt,
        max_line: usize,
    ) -> Self {
        FileFollower {
            path: path.into(),
            current: None,
            retired: None,
            pending: saved,
            start_at,
            started: false,
            max_line,
            stats: FollowStats::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The position to save: the end of the last complete line handed over from the file
    /// the path names now (`None` before it was ever opened).
    pub fn position(&self) -> Option<Position> {
        self.current.as_ref().map(Open::position).or(self.pending)
    }

    /// Reads every complete line appended since the last poll (following rotations and
    /// truncations), handing each to `emit`. Returns how many bytes were read, so a caller
    /// can poll again at once when a file was busy.
    pub fn poll(&mut self, emit: &mut dyn FnMut(FileLine<'_>)) -> io::Result<usize> {
        let mut read = self.drain_retired(emit)?;
        if !self.started {
            self.start(emit)?;
        }
        if self.current.is_none() {
            self.open_appeared()?;
        }
        if let Some(open) = self.current.as_mut() {
            let size = open.file.metadata()?.len();
            if size < open.read_to || !open.head_matches()? {
                self.truncated(emit)?;
            }
        }
        if let Some(open) = self.current.as_mut() {
            read += open.read_lines(self.max_line, &mut self.stats, emit)?;
        }
        read += self.check_rename(emit)?;
        Ok(read)
    }

    /// Applies the saved position (or the start rule) the first time the path exists.
    fn start(&mut self, emit: &mut dyn FnMut(FileLine<'_>)) -> io::Result<()> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Nothing to resume yet; a file rotated away while we were down may still
                // be among the siblings.
                if let Some(saved) = self.pending {
                    self.resume_rotated(saved, emit)?;
                }
                self.started = true;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.started = true;
        let meta = file.metadata()?;
        let Some(saved) = self.pending.take() else {
            self.current = Some(match self.start_at {
                StartAt::Beginning => Open::at(file, 0, 0)?,
                StartAt::End => open_at_end(file)?,
            });
            return Ok(());
        };
        if (meta.dev(), meta.ino()) == (saved.dev, saved.inode) {
            if meta.len() >= saved.offset && head_hash_matches(&file, &saved)? {
                self.current = Some(Open::at(file, saved.offset, saved.line)?);
            } else {
                // Truncated (copytruncate) while we were down: the copy holds the rest.
                self.stats.truncations += 1;
                self.read_copy_of(&saved, emit)?;
                self.current = Some(Open::at(file, 0, 0)?);
            }
        } else {
            self.stats.renames += 1;
            self.resume_rotated(saved, emit)?;
            self.current = Some(Open::at(file, 0, 0)?);
        }
        Ok(())
    }

    /// Finds the file the saved position was in among the siblings (renamed away while we
    /// were down) and reads it from the saved offset to its end.
    fn resume_rotated(
        &mut self,
        saved: Position,
        emit: &mut dyn FnMut(FileLine<'_>),
    ) -> io::Result<()> {
        self.pending = None;
        for sibling in self.siblings() {
            let Ok(file) = File::open(&sibling) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            if (meta.dev(), meta.ino()) == (saved.dev, saved.inode)
                && meta.len() >= saved.offset
                && head_hash_matches(&file, &saved)?
            {
                let mut old = Open::at(file, saved.offset, saved.line)?;
                old.read_lines(self.max_line, &mut self.stats, emit)?;
                self.retired = Some((old, Instant::now()));
                return Ok(());
            }
        }
        self.stats.missed_rotations += 1;
        tracing::warn!(path = %self.path.display(), "the file read before the restart was rotated away and is gone; its unread lines are lost");
        Ok(())
    }

    /// The path exists now and was missing before: a new file, read from its start.
    fn open_appeared(&mut self) -> io::Result<()> {
        match File::open(&self.path) {
            Ok(file) => {
                self.current = Some(Open::at(file, 0, 0)?);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The open file shrank or its head changed: read the copy's missing lines, then start
    /// the file again from its beginning.
    fn truncated(&mut self, emit: &mut dyn FnMut(FileLine<'_>)) -> io::Result<()> {
        let Some(mut open) = self.current.take() else {
            return Ok(());
        };
        self.stats.truncations += 1;
        let saved = open.position();
        // The unfinished line is re-read from the copy.
        open.partial.clear();
        self.read_copy_of(&saved, emit)?;
        open.file.seek(SeekFrom::Start(0))?;
        self.current = Some(Open::at(open.file, 0, 0)?);
        Ok(())
    }

    /// Reads, from `saved.offset` to its end, the sibling that is a copy of the content
    /// `saved` describes (same head, at least as long); the most recently modified wins.
    fn read_copy_of(
        &mut self,
        saved: &Position,
        emit: &mut dyn FnMut(FileLine<'_>),
    ) -> io::Result<()> {
        let mut best: Option<(std::time::SystemTime, File)> = None;
        for sibling in self.siblings() {
            let Ok(file) = File::open(&sibling) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            if (meta.dev(), meta.ino()) == (saved.dev, saved.inode) || meta.len() < saved.offset {
                continue;
            }
            if !head_hash_matches(&file, saved)? {
                continue;
            }
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            if best.as_ref().is_none_or(|(m, _)| modified > *m) {
                best = Some((modified, file));
            }
        }
        let Some((_, file)) = best else {
            if saved.offset > 0 {
                tracing::debug!(path = %self.path.display(), "truncated; no copy found");
            }
            return Ok(());
        };
        self.stats.copies_read += 1;
        let mut copy = Open::at(file, saved.offset, saved.line)?;
        // A copy is complete: read it all, whatever the budget.
        while copy.read_lines(self.max_line, &mut self.stats, emit)? > 0 {}
        copy.finish(&mut self.stats, emit);
        Ok(())
    }

    /// The path names another file now: read the old one to its end (it stays open for
    /// [`RETIRED_GRACE`]), then the new one from its start.
    fn check_rename(&mut self, emit: &mut dyn FnMut(FileLine<'_>)) -> io::Result<usize> {
        let Some(open) = self.current.as_ref() else {
            return Ok(0);
        };
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            // Renamed away, the new file not created yet: keep reading the old one.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        if (meta.dev(), meta.ino()) == (open.dev, open.inode) {
            return Ok(0);
        }
        self.stats.renames += 1;
        let mut read = 0;
        if let Some(mut old) = self.current.take() {
            read += old.read_lines(self.max_line, &mut self.stats, emit)?;
            if let Some((mut older, _)) = self.retired.take() {
                // Two renames within a grace: the older file is done.
                while older.read_lines(self.max_line, &mut self.stats, emit)? > 0 {}
                older.finish(&mut self.stats, emit);
            }
            self.retired = Some((old, Instant::now()));
        }
        self.open_appeared()?;
        if let Some(open) = self.current.as_mut() {
            read += open.read_lines(self.max_line, &mut self.stats, emit)?;
        }
        Ok(read)
    }

    fn drain_retired(&mut self, emit: &mut dyn FnMut(FileLine<'_>)) -> io::Result<usize> {
        let Some((old, since)) = self.retired.as_mut() else {
            return Ok(0);
        };
        let read = old.read_lines(self.max_line, &mut self.stats, emit)?;
        if read == 0 && since.elapsed() >= RETIRED_GRACE {
            old.finish(&mut self.stats, emit);
            self.retired = None;
        }
        Ok(read)
    }

    /// Files next to ours whose names start with ours (`auth.log.1`, `auth.log-20261130`),
    /// not compressed ones, at most [`MAX_SIBLINGS`].
    fn siblings(&self) -> Vec<PathBuf> {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return Vec::new();
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let name = name.to_string_lossy().into_owned();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let compressed = [".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z"];
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let other = e.file_name().to_string_lossy().into_owned();
                other.len() > name.len()
                    && other.starts_with(&name)
                    && !compressed.iter().any(|c| other.ends_with(c))
            })
            .map(|e| e.path())
            .take(MAX_SIBLINGS * 4)
            .collect();
        // `.1` before `.2`: the most recent rotation is the likeliest.
        found.sort();
        found.truncate(MAX_SIBLINGS);
        found
    }
}

/// Opens at the end of the last complete line, counting the lines before it.
fn open_at_end(file: File) -> io::Result<Open> {
    let mut reader = &file;
    let mut buf = vec![0u8; READ_BLOCK];
    let (mut lines, mut offset, mut pos) = (0u64, 0u64, 0u64);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for nl in memchr::memchr_iter(b'\n', &buf[..n]) {
            lines += 1;
            offset = pos + nl as u64 + 1;
        }
        pos += n as u64;
    }
    Open::at(file, offset, lines)
}

fn head_hash_matches(file: &File, saved: &Position) -> io::Result<bool> {
    let len = usize::try_from(saved.head_len).unwrap_or(0);
    let head = read_head(file, len)?;
    Ok(head.len() == len && fnv1a(&head) == saved.head_hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open for append");
        f.write_all(text.as_bytes()).expect("append");
    }

    fn poll(f: &mut FileFollower) -> Vec<(u64, String)> {
        let mut got = Vec::new();
        f.poll(&mut |l| got.push((l.number, l.text.to_string())))
            .expect("poll");
        got
    }

    fn texts(lines: &[(u64, String)]) -> Vec<&str> {
        lines.iter().map(|(_, t)| t.as_str()).collect()
    }

    #[test]
    fn starts_at_the_end_then_reads_complete_lines_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        append(&path, "old 1\nold 2\n");
        let mut f = FileFollower::new(&path, None, StartAt::End, 1024);
        assert!(poll(&mut f).is_empty());
        append(&path, "new 3\nhal");
        assert_eq!(poll(&mut f), vec![(3, "new 3".to_string())]);
        append(&path, "f 4\n");
        assert_eq!(poll(&mut f), vec![(4, "half 4".to_string())]);
        assert_eq!(f.position().map(|p| (p.offset, p.line)), Some((25, 4)));
    }

    #[test]
    fn a_file_that_appears_later_is_read_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        let mut f = FileFollower::new(&path, None, StartAt::End, 1024);
        assert!(poll(&mut f).is_empty());
        append(&path, "a\nb\n");
        assert_eq!(texts(&poll(&mut f)), ["a", "b"]);
    }

    #[test]
    fn rename_rotation_drains_the_old_file_then_reads_the_new() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        append(&path, "");
        let mut f = FileFollower::new(&path, None, StartAt::Beginning, 1024);
        append(&path, "1\n");
        assert_eq!(texts(&poll(&mut f)), ["1"]);
        // The logger writes, the file is renamed, the logger writes once more to its old
        // descriptor, then reopens.
        let mut old = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("old");
        old.write_all(b"2\n").expect("write");
        std::fs::rename(&path, dir.path().join("auth.log.1")).expect("rename");
        old.write_all(b"3\n").expect("write");
        append(&path, "4\n");
        assert_eq!(texts(&poll(&mut f)), ["2", "3", "4"]);
        old.write_all(b"5\n").expect("write after the switch");
        assert_eq!(poll(&mut f), vec![(4, "5".to_string())]);
        assert_eq!(f.stats.renames, 1);
    }

    #[test]
    fn copytruncate_reads_the_missing_lines_from_the_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        append(&path, "first line of the day\n");
        let mut f = FileFollower::new(&path, None, StartAt::Beginning, 1024);
        assert_eq!(texts(&poll(&mut f)), ["first line of the day"]);
        append(&path, "unread before the copy\n");
        std::fs::copy(&path, dir.path().join("auth.log.1")).expect("copy");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        // Written past our old offset before we look: only the head tells.
        append(
            &path,
            "after the truncation, long enough to pass the old offset\n",
        );
        assert_eq!(
            texts(&poll(&mut f)),
            [
                "unread before the copy",
                "after the truncation, long enough to pass the old offset"
            ]
        );
        assert_eq!(f.stats.copies_read, 1);
    }

    /// Found by the rotation torture test: the copy and truncation land while a poll is
    /// reading. The head must be what was read, not the file's first bytes read again
    /// afterwards (the new content), or the copy is not recognised and its lines are lost.
    #[test]
    fn copytruncate_during_a_read_still_finds_the_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        append(&path, "");
        let mut f = FileFollower::new(&path, None, StartAt::Beginning, 1024);
        append(&path, "line one\nline two\n");
        let mut got = Vec::new();
        f.poll(&mut |l| {
            got.push(l.text.to_string());
            if l.text == "line two" {
                append(&path, "line three, unread\n");
                std::fs::copy(&path, dir.path().join("auth.log.1")).expect("copy");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(0))
                    .expect("truncate");
                append(&path, "new\n");
            }
        })
        .expect("poll");
        got.extend(poll(&mut f).into_iter().map(|(_, t)| t));
        assert_eq!(got, ["line one", "line two", "line three, unread", "new"]);
    }

    #[test]
    fn overlong_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        append(&path, "");
        let mut f = FileFollower::new(&path, None, StartAt::Beginning, 8);
        append(&path, "short\n");
        append(&path, &"x".repeat(20));
        assert_eq!(texts(&poll(&mut f)), ["short"]);
        append(&path, &"y".repeat(20));
        append(&path, "\nok\n");
        assert_eq!(poll(&mut f), vec![(3, "ok".to_string())]);
        assert_eq!(f.stats.overlong, 1);
    }

    #[test]
    fn resume_neither_skips_nor_rereads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        append(&path, "1\n2\n");
        let mut f = FileFollower::new(&path, None, StartAt::Beginning, 1024);
        assert_eq!(texts(&poll(&mut f)), ["1", "2"]);
        append(&path, "3\npart");
        assert_eq!(texts(&poll(&mut f)), ["3"]);
        let saved = f.position();
        drop(f);
        append(&path, "ial\n");
        let mut f = FileFollower::new(&path, saved, StartAt::End, 1024);
        assert_eq!(poll(&mut f), vec![(4, "partial".to_string())]);
    }

    #[test]
    fn resume_after_a_rotation_while_down_reads_the_rest_of_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        append(&path, "1\n");
        let mut f = FileFollower::new(&path, None, StartAt::Beginning, 1024);
        assert_eq!(texts(&poll(&mut f)), ["1"]);
        let saved = f.position();
        drop(f);
        append(&path, "2\n");
        std::fs::rename(&path, dir.path().join("auth.log.1")).expect("rename");
        append(&path, "3\n");
        let mut f = FileFollower::new(&path, saved, StartAt::End, 1024);
        assert_eq!(texts(&poll(&mut f)), ["2", "3"]);
    }

    #[test]
    fn resume_after_a_copytruncate_while_down_reads_the_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth.log");
        append(&path, "1\n");
        let mut f = FileFollower::new(&path, None, StartAt::Beginning, 1024);
        assert_eq!(texts(&poll(&mut f)), ["1"]);
        let saved = f.position();
        drop(f);
        append(&path, "2\n");
        std::fs::copy(&path, dir.path().join("auth.log.1")).expect("copy");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(0))
            .expect("truncate");
        append(&path, "3\n");
        let mut f = FileFollower::new(&path, saved, StartAt::End, 1024);
        assert_eq!(texts(&poll(&mut f)), ["2", "3"]);
    }
}
