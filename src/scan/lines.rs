//! Splitting a byte stream into lines with bounded memory.
//!
//! Logs are read in big blocks into one fixed buffer and cut at newlines with `memchr`, so
//! memory stays at one buffer whatever the file size, and a line never costs an allocation.
//! A line longer than [`MAX_LINE`] (no sshd line comes near it: sshd caps user names at 100
//! bytes and identification strings at 256) is counted and skipped, however long it is: once
//! the buffer is full without a newline, the rest of that line is read and thrown away.

use std::io::{self, Read};
use std::ops::ControlFlow;

/// Longest line handed to the parser, in bytes (without the newline).
pub const MAX_LINE: usize = 64 * 1024;

/// Size of the read buffer: big reads keep system-call overhead negligible.
pub const BLOCK: usize = 1 << 20;

/// One line as the reader hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// 1-based, counted from where this reader started (overlong lines count too).
    pub number: u64,
    /// Byte offset of the line's first byte, counted from where this reader started plus the
    /// reader's `base_offset`.
    pub offset: u64,
    /// The line without its `\n` (and without a `\r` before it).
    pub bytes: &'a [u8],
    /// The same line as text, or `None` when it is not UTF-8.
    pub text: Option<&'a str>,
}

/// What the reader skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Lines seen, including skipped ones.
    pub lines: u64,
    /// Lines longer than [`MAX_LINE`], skipped.
    pub overlong: u64,
}

/// Reads `src` to its end (or until `on_line` breaks: the line it breaks on is left unread
/// and uncounted, as belonging to someone else), calling `on_line` for every line of at
/// most [`MAX_LINE`] bytes and `on_read` with the number of bytes of each read (for progress).
///
/// `base_offset` is the offset of the first byte `src` yields. With `skip_first`, the bytes
/// up to and including the first newline are dropped without being counted: a reader that
/// starts in the middle of a file uses it to leave the partial line to its neighbour.
pub fn read_lines<R: Read>(
    src: R,
    base_offset: u64,
    skip_first: bool,
    counts: &mut LineCounts,
    on_read: impl FnMut(usize),
    on_line: impl FnMut(Line<'_>) -> ControlFlow<()>,
) -> io::Result<()> {
    let limits = Limits {
        block: BLOCK,
        max_line: MAX_LINE,
    };
    read_lines_limited(
        src,
        base_offset,
        skip_first,
        limits,
        counts,
        on_read,
        on_line,
    )
}

/// Buffer size and longest line; `block` must exceed `max_line + 1` so that a line that
/// fills the buffer is always overlong. (Tests use tiny limits to reach every branch.)
#[derive(Debug, Clone, Copy)]
struct Limits {
    block: usize,
    max_line: usize,
}

fn read_lines_limited<R: Read>(
    mut src: R,
    base_offset: u64,
    skip_first: bool,
    limits: Limits,
    counts: &mut LineCounts,
    mut on_read: impl FnMut(usize),
    mut on_line: impl FnMut(Line<'_>) -> ControlFlow<()>,
) -> io::Result<()> {
    debug_assert!(limits.block > limits.max_line + 1);
    let max_line = limits.max_line;
    let mut buf = vec![0u8; limits.block];
    let mut len = 0; // bytes in buf that belong to an unfinished line
    let mut buf_offset = base_offset; // file offset of buf[0]
    let mut skipping = skip_first; // inside a line that is not ours or is overlong
    let mut number = 0u64;
    loop {
        if len == buf.len() {
            // A full buffer without a newline: the line is overlong. Count it once and
            // throw bytes away until its end.
            if !skipping {
                number += 1;
                counts.overlong += 1;
                skipping = true;
            }
            buf_offset += len as u64;
            len = 0;
        }
        let read = match read_some(&mut src, &mut buf[len..]) {
            Ok(read) => read,
            Err(e) => {
                // The unfinished line is a fragment, not a line: dropped.
                counts.lines += number;
                return Err(e);
            }
        };
        if read == 0 {
            if len > 0 && !skipping {
                number += 1;
                let bytes = trim_cr(&buf[..len]);
                let text = std::str::from_utf8(bytes).ok();
                let line = Line {
                    number,
                    offset: buf_offset,
                    bytes,
                    text,
                };
                if emit(line, max_line, counts, &mut on_line).is_break() {
                    number -= 1;
                }
            }
            counts.lines += number;
            return Ok(());
        }
        on_read(read);
        let scan_from = len;
        len += read;
        // Validating all complete lines at once is several times cheaper than line by line;
        // a block with invalid bytes falls back to line by line.
        let complete = memchr::memrchr(b'\n', &buf[scan_from..len]).map_or(0, |n| scan_from + n);
        let block_text = std::str::from_utf8(&buf[..complete]).ok();
        let mut line_start = 0;
        for newline in memchr::memchr_iter(b'\n', &buf[scan_from..len]) {
            let end = scan_from + newline;
            if skipping {
                skipping = false;
            } else {
                number += 1;
                let offset = buf_offset + line_start as u64;
                let bytes = trim_cr(&buf[line_start..end]);
                let text = match block_text {
                    // A line of a valid block starts and ends at ASCII bytes, so at
                    // character boundaries: `get` cannot fail, and would fall back if it did.
                    Some(block) => block.get(line_start..line_start + bytes.len()),
                    None => std::str::from_utf8(bytes).ok(),
                };
                let line = Line {
                    number,
                    offset,
                    bytes,
                    text,
                };
                if emit(line, max_line, counts, &mut on_line).is_break() {
                    counts.lines += number - 1;
                    return Ok(());
                }
            }
            line_start = end + 1;
        }
        buf.copy_within(line_start..len, 0);
        buf_offset += line_start as u64;
        len -= line_start;
    }
}

fn emit(
    line: Line<'_>,
    max_line: usize,
    counts: &mut LineCounts,
    on_line: &mut impl FnMut(Line<'_>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    if line.bytes.len() > max_line {
        counts.overlong += 1;
        return ControlFlow::Continue(());
    }
    on_line(line)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One `read`, retried on `Interrupted`.
fn read_some(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match src.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], skip_first: bool) -> (Vec<(u64, u64, String)>, LineCounts) {
        let mut counts = LineCounts::default();
        let mut lines = Vec::new();
        read_lines(
            input,
            0,
            skip_first,
            &mut counts,
            |_| {},
            |line| {
                let text = String::from_utf8_lossy(line.bytes).into_owned();
                lines.push((line.number, line.offset, text));
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        (lines, counts)
    }

    #[test]
    fn splits_lines_with_numbers_and_offsets() {
        let (lines, counts) = collect(b"a\nbc\r\n\nlast", false);
        let expected = [(1, 0, "a"), (2, 2, "bc"), (3, 6, ""), (4, 7, "last")];
        let expected: Vec<_> = expected
            .iter()
            .map(|&(n, o, t)| (n, o, t.to_string()))
            .collect();
        assert_eq!(lines, expected);
        assert_eq!(
            counts,
            LineCounts {
                lines: 4,
                overlong: 0
            }
        );
    }

    #[test]
    fn skip_first_drops_the_partial_line() {
        let (lines, counts) = collect(b"tail of previous\nmine\n", true);
        assert_eq!(lines, vec![(1, 17, "mine".to_string())]);
        assert_eq!(counts.lines, 1);
    }

    #[test]
    fn overlong_lines_are_counted_and_skipped() {
        let mut input = b"before\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
        input.extend(b"\nmiddle\n");
        input.extend(std::iter::repeat_n(b'y', 3 * BLOCK + 17));
        input.extend(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'z', 2 * BLOCK));
        let (lines, counts) = collect(&input, false);
        let texts: Vec<_> = lines.iter().map(|(n, _, t)| (*n, t.as_str())).collect();
        assert_eq!(texts, vec![(1, "before"), (3, "middle"), (5, "after")]);
        assert_eq!(
            counts,
            LineCounts {
                lines: 6,
                overlong: 3
            }
        );
        let after = lines.iter().find(|l| l.2 == "after").unwrap();
        assert_eq!(&input[after.1 as usize..after.1 as usize + 5], b"after");
    }

    #[test]
    fn text_is_given_for_utf8_lines_only() {
        let bad = b"bad \xff byte";
        let mut data = b"ascii\n".to_vec();
        data.extend("ünïcödé €\r\n".as_bytes());
        data.extend(bad);
        data.extend(b"\nlast ok\n");
        data.extend("no newline ✓".as_bytes());
        let mut counts = LineCounts::default();
        let mut texts = Vec::new();
        read_lines(
            &data[..],
            0,
            false,
            &mut counts,
            |_| {},
            |line| {
                texts.push(line.text.map(String::from));
                assert_eq!(
                    line.text.map(str::as_bytes).unwrap_or(line.bytes),
                    line.bytes
                );
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        let expected = [
            Some("ascii"),
            Some("ünïcödé €"),
            None,
            Some("last ok"),
            Some("no newline ✓"),
        ];
        let expected: Vec<Option<String>> = expected.iter().map(|t| t.map(String::from)).collect();
        assert_eq!(texts, expected);
    }

    /// A reader that hands out at most `step` bytes per read, as pipes and decoders do.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    type Seen = (Vec<(u64, u64, Vec<u8>, Option<String>)>, LineCounts);

    /// The obvious model: split at every newline, drop one `\r`, filter by length.
    fn reference(data: &[u8], max_line: usize) -> Seen {
        let mut lines = Vec::new();
        let mut counts = LineCounts::default();
        let mut offset = 0u64;
        let mut pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if pieces.last().is_some_and(|p| p.is_empty()) {
            pieces.pop();
        }
        for (i, piece) in pieces.iter().enumerate() {
            let bytes = trim_cr(piece);
            counts.lines += 1;
            if bytes.len() > max_line {
                counts.overlong += 1;
            } else {
                let text = std::str::from_utf8(bytes).ok().map(String::from);
                lines.push((i as u64 + 1, offset, bytes.to_vec(), text));
            }
            offset += piece.len() as u64 + 1;
        }
        (lines, counts)
    }

    fn actual(data: &[u8], step: usize, limits: Limits) -> Seen {
        let mut lines = Vec::new();
        let mut counts = LineCounts::default();
        let src = Trickle { data, step };
        read_lines_limited(
            src,
            0,
            false,
            limits,
            &mut counts,
            |_| {},
            |line| {
                let text = line.text.map(String::from);
                lines.push((line.number, line.offset, line.bytes.to_vec(), text));
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        (lines, counts)
    }

    proptest::proptest! {
        #[test]
        fn matches_the_obvious_model(
            data in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'\n', b'\r', 0xc3, 0xa9, 0xff, b' ']),
                0..400,
            ),
            step in 1usize..40,
            max_line in 1usize..20,
            slack in 2usize..12,
        ) {
            let limits = Limits { block: max_line + slack, max_line };
            proptest::prop_assert_eq!(actual(&data, step, limits), reference(&data, max_line));
        }
    }

    #[test]
    fn a_line_of_exactly_max_line_is_kept() {
        let mut input = vec![b'a'; MAX_LINE];
        input.push(b'\n');
        let (lines, counts) = collect(&input, false);
        assert_eq!(lines.len(), 1);
        assert_eq!(counts.overlong, 0);
    }

    #[test]
    fn break_stops_reading() {
        let mut counts = LineCounts::default();
        let mut seen = 0;
        read_lines(
            &b"1\n2\n3\n"[..],
            0,
            false,
            &mut counts,
            |_| {},
            |line| {
                seen += 1;
                if line.number == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .unwrap();
        assert_eq!(seen, 2);
        assert_eq!(counts.lines, 1);
    }
}
