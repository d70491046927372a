//! Opening scan inputs: plain files, gzip files and stdin, told apart by content.
//!
//! Gzip is recognised by its magic bytes (1f 8b), not by the file name, so a rotated
//! `auth.log.2.gz`, a compressed file without the suffix and `zcat`-less stdin all work.
//! Concatenated gzip members (what `cat a.gz b.gz` makes) are read as one stream, and zero
//! bytes after the last member (tape and block-device padding) are ignored, as `gzip -t` and
//! `gzip -d` ignore them; any other trailing bytes are an error.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::bufread::GzDecoder;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One thing to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    Path(PathBuf),
}

impl Input {
    /// `-` is stdin, anything else a path.
    pub fn from_arg(arg: impl Into<PathBuf>) -> Input {
        let path = arg.into();
        if path.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::Path(path)
        }
    }

    /// The name used in output (`file` field) and error messages: `-` for stdin.
    pub fn name(&self) -> Arc<str> {
        match self {
            Input::Stdin => Arc::from("-"),
            Input::Path(path) => Arc::from(path.to_string_lossy().as_ref()),
        }
    }
}

/// An opened input, ready to be read.
pub enum Opened {
    /// A regular, uncompressed file: can be split into ranges and read in parallel.
    PlainFile { file: File, len: u64 },
    /// Anything read front to back: gzip, stdin, pipes, devices.
    Stream(Box<dyn Read + Send>),
}

/// Opens an input, looking at its first bytes to choose how to read it.
pub fn open(input: &Input) -> io::Result<Opened> {
    match input {
        Input::Stdin => open_stream(Box::new(io::stdin())),
        Input::Path(path) => open_path(path),
    }
}

fn open_path(path: &Path) -> io::Result<Opened> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory",
        ));
    }
    if !meta.is_file() {
        // A FIFO or a device: no seeking, no length.
        return open_stream(Box::new(file));
    }
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    if got == 2 && magic == GZIP_MAGIC {
        let reader = BufReader::with_capacity(256 * 1024, file);
        return Ok(Opened::Stream(Box::new(GzipMembers::new(reader))));
    }
    Ok(Opened::PlainFile {
        len: meta.len(),
        file,
    })
}

fn open_stream(src: Box<dyn Read + Send>) -> io::Result<Opened> {
    let mut reader = BufReader::with_capacity(256 * 1024, src);
    if peek(&mut reader)?.starts_with(&GZIP_MAGIC) {
        return Ok(Opened::Stream(Box::new(GzipMembers::new(reader))));
    }
    Ok(Opened::Stream(Box::new(reader)))
}

/// Gzip members one after another, then the end, or zero padding and the end.
pub struct GzipMembers<R: BufRead> {
    state: Members<R>,
}

enum Members<R: BufRead> {
    Member(GzDecoder<R>),
    /// Between members (or after the last one); `padded` once zero bytes were seen.
    Between {
        reader: R,
        padded: bool,
    },
    Done,
}

impl<R: BufRead> GzipMembers<R> {
    pub fn new(reader: R) -> Self {
        GzipMembers {
            state: Members::Member(GzDecoder::new(reader)),
        }
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.state {
                Members::Member(decoder) => {
                    let n = decoder.read(buf)?;
                    if n > 0 || buf.is_empty() {
                        return Ok(n);
                    }
                    let Members::Member(done) = std::mem::replace(&mut self.state, Members::Done)
                    else {
                        return Ok(0);
                    };
                    self.state = Members::Between {
                        reader: done.into_inner(),
                        padded: false,
                    };
                }
                Members::Between { reader, padded } => {
                    let next = loop {
                        match reader.fill_buf() {
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            other => break other?,
                        }
                    };
                    if next.is_empty() {
                        self.state = Members::Done;
                        return Ok(0);
                    }
                    let zeros = next.iter().take_while(|b| **b == 0).count();
                    if zeros > 0 {
                        reader.consume(zeros);
                        *padded = true;
                        continue;
                    }
                    if *padded || next[0] != GZIP_MAGIC[0] {
                        self.state = Members::Done;
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "trailing bytes after the gzip data that are neither another gzip member nor zero padding",
                        ));
                    }
                    let Members::Between { reader, .. } =
                        std::mem::replace(&mut self.state, Members::Done)
                    else {
                        return Ok(0);
                    };
                    self.state = Members::Member(GzDecoder::new(reader));
                }
                Members::Done => return Ok(0),
            }
        }
    }
}

/// Peeks at the first bytes without consuming them. A pipe could in theory deliver the two
/// magic bytes in separate writes; every gzip writer emits its 10-byte header at once.
fn peek<R: Read>(reader: &mut BufReader<R>) -> io::Result<&[u8]> {
    loop {
        match reader.fill_buf() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    Ok(reader.buffer())
}

fn read_up_to(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(opened: Opened) -> Vec<u8> {
        let mut out = Vec::new();
        match opened {
            Opened::PlainFile { mut file, .. } => file.read_to_end(&mut out).unwrap(),
            Opened::Stream(mut s) => s.read_to_end(&mut out).unwrap(),
        };
        out
    }

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.log"); // no .gz suffix
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"one\ntwo\n").unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let opened = open(&Input::Path(path)).unwrap();
        assert!(matches!(opened, Opened::Stream(_)));
        assert_eq!(read_all(opened), b"one\ntwo\n");
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn zero_padding_after_gzip_is_ignored_as_gzip_t_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("padded.gz");
        let mut bytes = gzip(b"one\n");
        bytes.extend(gzip(b"two\n"));
        bytes.extend([0u8; 4096]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read_all(open(&Input::Path(path.clone())).unwrap()),
            b"one\ntwo\n"
        );
        // Through a pipe too.
        let opened = open_stream(Box::new(std::io::Cursor::new(bytes))).unwrap();
        assert_eq!(read_all(opened), b"one\ntwo\n");
        // Anything else after the data is still an error, named.
        let mut garbage = gzip(b"one\n");
        garbage.extend(b"\0\0junk");
        std::fs::write(&path, &garbage).unwrap();
        let Opened::Stream(mut s) = open(&Input::Path(path)).unwrap() else {
            panic!("gzip is a stream");
        };
        let err = s.read_to_end(&mut Vec::new()).unwrap_err().to_string();
        assert!(
            err.contains("neither another gzip member nor zero padding"),
            "{err}"
        );
    }

    #[test]
    fn plain_files_are_seekable_even_when_named_gz() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.log.gz");
        std::fs::write(&path, b"plain\n").unwrap();
        let opened = open(&Input::Path(path)).unwrap();
        assert!(matches!(opened, Opened::PlainFile { len: 6, .. }));
        assert_eq!(read_all(opened), b"plain\n");
    }

    #[test]
    fn directories_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open(&Input::Path(dir.path().to_path_buf())).is_err());
        assert!(open(&Input::Path(dir.path().join("missing"))).is_err());
    }

    #[test]
    fn dash_is_stdin() {
        assert_eq!(Input::from_arg("-"), Input::Stdin);
        assert_eq!(Input::from_arg("-").name().as_ref(), "-");
        assert_eq!(Input::from_arg("a.log").name().as_ref(), "a.log");
    }
}
