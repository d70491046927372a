//! What `repute scan` reads when it is given nothing: this machine's own sshd logs.
//!
//! The systemd journal when there is one, read through `journalctl` and filtered on the
//! trusted `_COMM` field, so only messages that sshd's own processes wrote count (any local
//! program may call itself `sshd` in a syslog line); else the syslog files
//! `/var/log/auth.log*` (Debian, Ubuntu) and `/var/log/secure*` (RHEL, Fedora), rotated ones
//! included, oldest first so that events keep their order.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use super::Input;

/// `journalctl`'s arguments: sshd's messages (sshd-session since OpenSSH 9.8, sshd-auth since
/// 10), as JSON entries, which the scan judges by their trusted fields and dates by
/// `__REALTIME_TIMESTAMP` (no zone to guess).
pub const JOURNALCTL_ARGS: &[&str] = &[
    "--no-pager",
    "--output=json",
    "_COMM=sshd",
    "_COMM=sshd-session",
    "_COMM=sshd-auth",
];

/// The syslog files that hold sshd's messages, by distribution.
const LOG_FILES: &[&str] = &["auth.log", "secure"];

/// This machine's sshd logs under `root` (`/` but in tests): the journal when `journalctl` is
/// installed and a journal exists, else the syslog files found, else nothing.
pub fn find(root: &Path, journalctl_installed: bool) -> Vec<Input> {
    if journalctl_installed && has_journal(root) {
        return vec![Input::Journal];
    }
    let dir = root.join("var/log");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(RotationKey, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let key = LOG_FILES
                .iter()
                .find_map(|base| rotation_key(base, &name))?;
            e.file_type().ok()?.is_file().then(|| (key, e.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| Input::Path(p)).collect()
}

/// Where the running system keeps its journal: journald's runtime directory, or a persistent
/// journal with something in it.
fn has_journal(root: &Path) -> bool {
    root.join("run/systemd/journal").is_dir()
        || std::fs::read_dir(root.join("var/log/journal")).is_ok_and(|mut d| d.next().is_some())
}

/// How a file sorts among its rotations: the base name's group, then (for `auth.log.3.gz`)
/// the highest number first, or (for `secure-20261101`) the oldest date first, then the live
/// file last.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum RotationKey {
    Numbered(&'static str, std::cmp::Reverse<u32>),
    Dated(&'static str, String),
    Live(&'static str),
}

fn rotation_key(base: &'static str, name: &str) -> Option<RotationKey> {
    let rest = name.strip_prefix(base)?;
    if rest.is_empty() {
        return Some(RotationKey::Live(base));
    }
    if let Some(n) = rest.strip_prefix('.') {
        let n = n.strip_suffix(".gz").unwrap_or(n);
        return n
            .parse()
            .ok()
            .map(|n| RotationKey::Numbered(base, std::cmp::Reverse(n)));
    }
    let date = rest.strip_prefix('-')?;
    let date = date.strip_suffix(".gz").unwrap_or(date);
    (!date.is_empty() && date.bytes().all(|b| b.is_ascii_digit()))
        .then(|| RotationKey::Dated(base, date.to_string()))
}

/// What the inputs are, for the line `scan` prints on a terminal.
pub fn describe(inputs: &[Input]) -> String {
    match inputs {
        [Input::Journal] => format!(
            "the systemd journal (journalctl {})",
            JOURNALCTL_ARGS.join(" ")
        ),
        _ => {
            let names: Vec<String> = inputs.iter().map(|i| i.name().to_string()).collect();
            names.join(", ")
        }
    }
}

/// `journalctl`'s output, as a stream. Its warnings (a user outside the `adm` and
/// `systemd-journal` groups sees only their own messages) go to our stderr as they are; a
/// failed `journalctl` ends the stream in an error.
pub fn journal() -> io::Result<JournalReader> {
    let mut child = Command::new("journalctl")
        .args(JOURNALCTL_ARGS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run journalctl: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("journalctl has no output pipe"))?;
    Ok(JournalReader {
        child,
        stdout,
        ended: false,
    })
}

/// The output of a `journalctl` child; the child is reaped when the stream ends or is
/// dropped.
pub struct JournalReader {
    child: Child,
    stdout: ChildStdout,
    ended: bool,
}

impl Read for JournalReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ended {
            return Ok(0);
        }
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended = true;
            let status = self.child.wait()?;
            if !status.success() {
                return Err(io::Error::other(format!("journalctl failed ({status})")));
            }
        }
        Ok(n)
    }
}

impl Drop for JournalReader {
    fn drop(&mut self) {
        if !self.ended {
            // Stopped early (an error, a closed output pipe): journalctl need not go on.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(inputs: &[Input]) -> Vec<String> {
        inputs
            .iter()
            .map(|i| {
                let name = i.name().to_string();
                name.rsplit('/').next().unwrap_or(&name).to_string()
            })
            .collect()
    }

    #[test]
    fn syslog_files_oldest_first_live_last() {
        let root = tempfile::tempdir().expect("tmp");
        let log = root.path().join("var/log");
        std::fs::create_dir_all(&log).expect("dirs");
        for name in [
            "auth.log",
            "auth.log.1",
            "auth.log.2.gz",
            "auth.log.10.gz",
            "secure",
            "secure-20261101",
            "secure-20261025.gz",
            "auth.log.bak",
            "syslog",
            "authx.log",
        ] {
            std::fs::write(log.join(name), "").expect("write");
        }
        std::fs::create_dir(log.join("secure.d")).expect("dir");
        let found = find(root.path(), true);
        assert_eq!(
            names(&found),
            [
                "auth.log.10.gz",
                "auth.log.2.gz",
                "auth.log.1",
                "secure-20261025.gz",
                "secure-20261101",
                "auth.log",
                "secure"
            ],
            "no journal here, so the files; unknown names and directories left out"
        );
    }

    #[test]
    fn the_journal_wins_when_there_is_one_and_journalctl() {
        let root = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(root.path().join("var/log/journal/abc")).expect("dirs");
        std::fs::write(root.path().join("var/log/auth.log"), "").expect("write");
        assert_eq!(find(root.path(), true), vec![Input::Journal]);
        assert_eq!(names(&find(root.path(), false)), ["auth.log"]);
        assert!(describe(&[Input::Journal]).contains("_COMM=sshd"));
    }

    #[test]
    fn an_empty_persistent_journal_directory_is_no_journal() {
        let root = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(root.path().join("var/log/journal")).expect("dirs");
        assert!(find(root.path(), true).is_empty());
    }
}
