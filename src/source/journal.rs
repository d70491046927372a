//! Following the systemd journal: `journalctl -f -o json` as a child process, read by a
//! thread into a bounded channel, resumed after the last cursor handed over.
//!
//! Only entries whose *trusted* fields (set by journald, not by the logging process) say
//! sshd are kept: `_COMM` or the file name of `_EXE` is `sshd`, `sshd-session` or
//! `sshd-auth`. A line sent with `logger -t sshd` has `SYSLOG_IDENTIFIER=sshd` but
//! `_COMM=logger`, and is dropped: an attacker who can write to the journal cannot get an
//! address banned. `MESSAGE` may be a string or, for non-UTF-8 text, an array of bytes
//! (dropped unless the bytes are UTF-8). Lines longer than the limit are skipped.
//!
//! When journalctl exits (journal vacuumed, binary replaced), it is started again after a
//! pause, from the last cursor the caller saved.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Entries waiting for the decision loop; when full, the reader waits (journalctl then
/// buffers, and the journal itself keeps everything).
const CHANNEL_DEPTH: usize = 4096;
/// Pause before starting journalctl again after it exited.
const RESTART_PAUSE: Duration = Duration::from_secs(2);

/// Process names journald records for sshd's processes.
const SSHD_NAMES: [&str; 3] = ["sshd", "sshd-session", "sshd-auth"];

/// One sshd journal entry, as the parser wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub cursor: String,
    pub time: Option<jiff::Timestamp>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub message: String,
}

/// The fields we read; everything else in the entry is ignored.
#[derive(Debug, Deserialize)]
struct RawEntry {
    #[serde(rename = "__CURSOR")]
    cursor: Option<String>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<String>,
    #[serde(rename = "_HOSTNAME")]
    hostname: Option<String>,
    #[serde(rename = "_PID")]
    pid: Option<String>,
    #[serde(rename = "_COMM")]
    comm: Option<String>,
    #[serde(rename = "_EXE")]
    exe: Option<String>,
    #[serde(rename = "MESSAGE")]
    message: Option<serde_json::Value>,
}

/// What a line of `journalctl -o json` is.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// An entry of sshd, by its trusted fields.
    Sshd(JournalEntry),
    /// Another program's entry (or one claiming to be sshd without being it): only its
    /// cursor counts, so a restart does not read it again.
    Other { cursor: Option<String> },
    /// Not a journal entry.
    Invalid,
}

/// Reads one `journalctl -o json` line.
pub fn parse_entry(line: &[u8]) -> Parsed {
    let Ok(raw) = serde_json::from_slice::<RawEntry>(line) else {
        return Parsed::Invalid;
    };
    let is_sshd = raw.comm.as_deref().is_some_and(|c| SSHD_NAMES.contains(&c))
        || raw
            .exe
            .as_deref()
            .and_then(|e| e.rsplit('/').next())
            .is_some_and(|e| SSHD_NAMES.contains(&e));
    let message = match raw.message {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Array(bytes)) => {
            let bytes: Option<Vec<u8>> = bytes
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            bytes.and_then(|b| String::from_utf8(b).ok())
        }
        _ => None,
    };
    match (is_sshd, message, raw.cursor) {
        (true, Some(message), Some(cursor)) => Parsed::Sshd(JournalEntry {
            cursor,
            time: raw
                .realtime
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(|us| jiff::Timestamp::from_microsecond(us).ok()),
            host: raw.hostname,
            pid: raw.pid.and_then(|p| p.parse().ok()),
            message,
        }),
        (_, _, cursor) => Parsed::Other { cursor },
    }
}

/// Where journalctl reads.
#[derive(Debug, Clone, Default)]
pub struct JournalOptions {
    /// `journalctl --directory` (journal files elsewhere than the system journal).
    pub directory: Option<PathBuf>,
    /// The program (default `journalctl` in `PATH`).
    pub program: Option<PathBuf>,
    pub max_line: usize,
}

/// A running journal source. Dropping it stops journalctl.
pub struct JournalSource {
    rx: Receiver<Parsed>,
    shared: std::sync::Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    stop: std::sync::atomic::AtomicBool,
    /// The cursor to resume after when journalctl is started again.
    cursor: std::sync::Mutex<Option<String>>,
    child: std::sync::Mutex<Option<Child>>,
    started: std::sync::atomic::AtomicU64,
    /// Lines read from journalctl, all runs together.
    forwarded: std::sync::atomic::AtomicU64,
}

impl JournalSource {
    /// Starts journalctl after `cursor` (or at the end of the journal, without one).
    pub fn start(options: JournalOptions, cursor: Option<String>) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(CHANNEL_DEPTH);
        let shared = std::sync::Arc::new(Shared {
            stop: std::sync::atomic::AtomicBool::new(false),
            cursor: std::sync::Mutex::new(cursor),
            child: std::sync::Mutex::new(None),
            started: std::sync::atomic::AtomicU64::new(0),
            forwarded: std::sync::atomic::AtomicU64::new(0),
        });
        // The first start happens here, so that a missing journalctl is an error at once.
        let cursor = shared.cursor.lock().ok().and_then(|c| c.clone());
        let with_cursor = cursor.is_some();
        let mut child = spawn(&options, cursor)?;
        shared
            .started
            .store(1, std::sync::atomic::Ordering::Relaxed);
        let stdout = child.stdout.take();
        if let Ok(mut slot) = shared.child.lock() {
            *slot = Some(child);
        }
        let thread_shared = std::sync::Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || run(options, stdout, with_cursor, thread_shared, tx))?;
        Ok(JournalSource {
            rx,
            shared,
            thread: Some(thread),
        })
    }

    /// Entries read so far (at most `max` of them), without waiting.
    pub fn drain(&self, max: usize) -> Vec<Parsed> {
        self.rx.try_iter().take(max).collect()
    }

    /// The cursor handed over last: journalctl resumes after it if it has to be restarted.
    pub fn set_cursor(&self, cursor: &str) {
        if let Ok(mut c) = self.shared.cursor.lock() {
            *c = Some(cursor.to_string());
        }
    }

    /// How many times journalctl was started.
    pub fn starts(&self) -> u64 {
        self.shared
            .started
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for JournalSource {
    fn drop(&mut self) {
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut child) = self.shared.child.lock()
            && let Some(child) = child.as_mut()
        {
            let _ = child.kill();
        }
        // The reader sees the stop flag at its next send, or the end of journalctl's output.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spawn(options: &JournalOptions, cursor: Option<String>) -> std::io::Result<Child> {
    let program = options
        .program
        .clone()
        .unwrap_or_else(|| PathBuf::from("journalctl"));
    let mut cmd = Command::new(&program);
    cmd.args(["--follow", "--output=json", "--no-pager", "--all"]);
    if let Some(dir) = &options.directory {
        cmd.arg("--directory").arg(dir);
    }
    match cursor {
        Some(c) => cmd.arg(format!("--after-cursor={c}")),
        None => cmd.arg("--lines=0"),
    };
    // Narrowed by journald's own field; the trusted fields are checked again on each entry.
    for name in SSHD_NAMES {
        cmd.arg(format!("_COMM={name}"));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", program.display())))
}

fn run(
    options: JournalOptions,
    first: Option<std::process::ChildStdout>,
    first_with_cursor: bool,
    shared: std::sync::Arc<Shared>,
    tx: SyncSender<Parsed>,
) {
    use std::sync::atomic::Ordering;
    let mut stdout = first;
    let mut with_cursor = first_with_cursor;
    loop {
        let before = shared.forwarded.load(Ordering::Relaxed);
        if let Some(out) = stdout.take()
            && !forward(out, options.max_line.max(1024), &shared, &tx)
        {
            break;
        }
        reap(&shared);
        // `journalctl -f` only ends on an error; ending at once with a cursor, before a
        // single line, means the cursor is refused (a journal replaced, a cursor edited):
        // waiting for it again would follow nothing, forever.
        if with_cursor
            && shared.forwarded.load(Ordering::Relaxed) == before
            && !shared.stop.load(Ordering::Relaxed)
            && let Ok(mut cursor) = shared.cursor.lock()
        {
            tracing::warn!(
                "journalctl refused the saved cursor; following from the end of the journal"
            );
            *cursor = None;
        }
        // Bounded pause, watching for the stop flag.
        let until = Instant::now() + RESTART_PAUSE;
        while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let cursor = shared.cursor.lock().ok().and_then(|c| c.clone());
        with_cursor = cursor.is_some();
        match spawn(&options, cursor) {
            Ok(mut child) => {
                shared.started.fetch_add(1, Ordering::Relaxed);
                stdout = child.stdout.take();
                if let Ok(mut slot) = shared.child.lock() {
                    *slot = Some(child);
                }
                // Stopped while starting: the child is in the slot, so Drop or reap kills it.
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot start journalctl again; retrying"),
        }
    }
    reap(&shared);
}

fn reap(shared: &Shared) {
    if let Ok(mut slot) = shared.child.lock()
        && let Some(mut done) = slot.take()
    {
        let _ = done.kill();
        let _ = done.wait();
    }
}

/// Forwards entries until journalctl's output ends; false when the receiver is gone.
fn forward(stdout: impl Read, max_line: usize, shared: &Shared, tx: &SyncSender<Parsed>) -> bool {
    let mut reader = BufReader::with_capacity(256 * 1024, stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = u64::try_from(max_line).unwrap_or(u64::MAX) + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut line) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return true,
        }
        if line.last() != Some(&b'\n') && line.len() as u64 >= limit {
            // Overlong: drop the rest of it.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match (&mut reader).take(64 * 1024).read_until(b'\n', &mut rest) {
                    Ok(0) | Err(_) => return true,
                    Ok(_) if rest.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                }
            }
            continue;
        }
        shared
            .forwarded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut parsed = parse_entry(&line);
        loop {
            if shared.stop.load(std::sync::atomic::Ordering::Relaxed) {
                return false;
            }
            match tx.try_send(parsed) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    parsed = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trusted_sshd_fields_count() {
        let real = br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1764489600000000","_HOSTNAME":"web1","_PID":"812","_COMM":"sshd-session","SYSLOG_IDENTIFIER":"sshd-session","MESSAGE":"Failed password for root from 45.155.205.233 port 50000 ssh2"}"#;
        let Parsed::Sshd(entry) = parse_entry(real) else {
            panic!("sshd entry expected");
        };
        assert_eq!(entry.pid, Some(812));
        assert_eq!(entry.host.as_deref(), Some("web1"));
        assert_eq!(entry.time.map(|t| t.as_second()), Some(1_764_489_600));
        let forged = br#"{"__CURSOR":"s=1;i=3","_COMM":"logger","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Failed password for root from 45.155.205.233 port 50000 ssh2"}"#;
        assert_eq!(
            parse_entry(forged),
            Parsed::Other {
                cursor: Some("s=1;i=3".into())
            }
        );
        let by_exe = br#"{"__CURSOR":"c","_EXE":"/usr/sbin/sshd","MESSAGE":[73,110,118]}"#;
        assert!(matches!(parse_entry(by_exe), Parsed::Sshd(e) if e.message == "Inv"));
        assert_eq!(parse_entry(b"not json"), Parsed::Invalid);
    }

    /// A journalctl that refuses the cursor (as journalctl does an unparsable one): the
    /// source starts again without it instead of retrying the same refusal forever.
    #[test]
    fn a_refused_cursor_is_dropped_and_following_goes_on() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("journalctl");
        let entry = r#"{"__CURSOR":"s=1;i=9","_COMM":"sshd","MESSAGE":"Failed password for root from 45.155.205.233 port 1 ssh2"}"#;
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --after-cursor=*) echo 'Failed to seek to cursor' >&2; exit 1;; esac; done\necho '{entry}'\nexec sleep 30\n"
            ),
        )
        .expect("script");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let source = JournalSource::start(
            JournalOptions {
                program: Some(program),
                max_line: 4096,
                ..JournalOptions::default()
            },
            Some("not-a-cursor".into()),
        )
        .expect("start");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = Vec::new();
        while got.is_empty() && Instant::now() < deadline {
            got = source.drain(10);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            matches!(got.first(), Some(Parsed::Sshd(e)) if e.cursor == "s=1;i=9"),
            "{got:?}"
        );
        assert_eq!(source.starts(), 2);
    }
}
