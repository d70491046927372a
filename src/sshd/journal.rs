//! journald entries as `journalctl -o json` and `journalctl -o export` print them.
//!
//! Whether an entry is sshd's is decided by the fields journald itself records about the
//! sending process (`_COMM`, `_EXE`, and, when both are missing, `_SYSTEMD_UNIT`; see
//! `systemd.journal-fields(7)`), never by `SYSLOG_IDENTIFIER`, which the sender chooses:
//! `logger -t sshd 'Failed password for root from 198.51.100.7 port 22 ssh2'` by any local
//! user writes an entry with `SYSLOG_IDENTIFIER=sshd` and `_COMM=logger`, and that is not an
//! sshd event. The time is `__REALTIME_TIMESTAMP` (microseconds since the epoch, journald's
//! receive time), the pid `_PID`, the host `_HOSTNAME`.
//!
//! JSON entries are one line each ([`Entry::from_json`]); export entries are `FIELD=value`
//! lines ended by an empty line, gathered by [`ExportEntry`]. A field journald had to write
//! as binary (a JSON array of bytes, or export's length-prefixed form) is read as bytes when
//! it is `MESSAGE` in JSON and makes the entry unreadable in export (sshd escapes what it
//! logs, so its messages are text).

use std::borrow::Cow;

use jiff::Timestamp;
use serde::Deserialize;

/// The programs whose entries are sshd's: the daemon, its per-connection session binary
/// (OpenSSH 9.8+) and its pre-auth binary (OpenSSH 10.0+).
const SSHD_PROGRAMS: [&str; 3] = ["sshd", "sshd-session", "sshd-auth"];

/// The fields of one entry that repute reads.
#[derive(Debug, Default, Deserialize)]
pub struct Entry<'a> {
    #[serde(rename = "MESSAGE", borrow, default)]
    pub message: Option<Field<'a>>,
    #[serde(rename = "_COMM", borrow, default)]
    pub comm: Option<Field<'a>>,
    #[serde(rename = "_EXE", borrow, default)]
    pub exe: Option<Field<'a>>,
    #[serde(rename = "_SYSTEMD_UNIT", borrow, default)]
    pub unit: Option<Field<'a>>,
    #[serde(rename = "_PID", borrow, default)]
    pub pid: Option<Field<'a>>,
    #[serde(rename = "_HOSTNAME", borrow, default)]
    pub hostname: Option<Field<'a>>,
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow, default)]
    pub realtime: Option<Field<'a>>,
}

/// One field's value: text (borrowed from the line when it needed no unescaping), or what
/// journald could not print as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<'a> {
    Text(Cow<'a, str>),
    /// A JSON array of bytes (not UTF-8, or with control characters).
    Bytes(Vec<u8>),
    /// `null` (a field over journalctl's size limit) or several values of one field.
    Other,
}

impl<'a> Field<'a> {
    pub fn text(&self) -> Option<&str> {
        match self {
            Field::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a journal field")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Field::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Field::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Field::Text(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Field::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                // Bytes, or several values of a repeated field (then: no one value).
                let mut bytes = Vec::new();
                let mut all_bytes = true;
                while let Some(v) = seq.next_element::<serde_json::Value>()? {
                    match v.as_u64().and_then(|b| u8::try_from(b).ok()) {
                        Some(b) if all_bytes => bytes.push(b),
                        _ => all_bytes = false,
                    }
                }
                Ok(if all_bytes {
                    Field::Bytes(bytes)
                } else {
                    Field::Other
                })
            }
        }
        d.deserialize_any(Visit)
    }
}

impl<'a> Entry<'a> {
    /// One line of `journalctl -o json`; `None` when it is not a JSON object.
    pub fn from_json(line: &'a str) -> Option<Entry<'a>> {
        serde_json::from_str(line).ok()
    }

    /// Whether journald's own fields name sshd as the sender (see the module documentation).
    pub fn is_sshd(&self) -> bool {
        is_sshd(
            self.comm.as_ref().and_then(Field::text),
            self.exe.as_ref().and_then(Field::text),
            self.unit.as_ref().and_then(Field::text),
        )
    }

    /// `__REALTIME_TIMESTAMP` as an instant.
    pub fn time(&self) -> Option<Timestamp> {
        realtime(self.realtime.as_ref()?.text()?)
    }

    /// `_PID`.
    pub fn pid(&self) -> Option<u32> {
        self.pid.as_ref()?.text()?.parse().ok()
    }
}

/// sshd by `_COMM` (the kernel's name of the process) or `_EXE`; when journald recorded
/// neither, by `_SYSTEMD_UNIT` (`ssh.service`, `sshd.service`, or a per-connection
/// `sshd@….service`).
pub fn is_sshd(comm: Option<&str>, exe: Option<&str>, unit: Option<&str>) -> bool {
    let named = |name: &str| SSHD_PROGRAMS.contains(&name);
    match (comm, exe) {
        (None, None) => unit.is_some_and(|u| {
            let base = u.strip_suffix(".service").unwrap_or("");
            let base = base.split_once('@').map_or(base, |(b, _)| b);
            base == "ssh" || base == "sshd"
        }),
        _ => {
            comm.is_some_and(named) || exe.is_some_and(|e| named(e.rsplit('/').next().unwrap_or(e)))
        }
    }
}

/// Microseconds since the epoch (journald's `__REALTIME_TIMESTAMP`).
fn realtime(micros: &str) -> Option<Timestamp> {
    let micros: i64 = micros.parse().ok()?;
    Timestamp::from_microsecond(micros).ok()
}

/// The fields of one `journalctl -o export` entry, gathered line by line.
#[derive(Debug, Default)]
pub struct ExportEntry {
    /// Inside an entry (a `__CURSOR=` line was seen and no empty line yet).
    pub active: bool,
    message: Option<String>,
    comm: Option<String>,
    exe: Option<String>,
    unit: Option<String>,
    pid: Option<String>,
    hostname: Option<String>,
    realtime: Option<String>,
    /// A field in binary form was met: its bytes follow on lines of their own, so the rest
    /// of the entry cannot be read line by line.
    binary: bool,
}

/// An export entry that ended, ready to be judged.
#[derive(Debug)]
pub struct Export<'a> {
    pub time: Option<Timestamp>,
    pub host: Option<&'a str>,
    pub pid: Option<u32>,
    pub message: &'a str,
}

/// Fields longer than this are not sshd's (whose messages stop at 500 bytes) and not kept.
const MAX_FIELD: usize = 4096;

impl ExportEntry {
    /// Whether `line` starts an export entry (journalctl writes `__CURSOR` first).
    pub fn starts(line: &str) -> bool {
        line.starts_with("__CURSOR=")
    }

    /// Takes one line of an entry. Returns `true` when it was the empty line that ends it:
    /// then [`ExportEntry::sshd_message`] tells what it held, until the next `feed`.
    pub fn feed(&mut self, line: &str) -> bool {
        if line.is_empty() {
            self.active = false;
            return true;
        }
        if Self::starts(line) {
            *self = ExportEntry {
                active: true,
                ..ExportEntry::default()
            };
            return false;
        }
        let Some((name, value)) = line.split_once('=') else {
            // `NAME` alone: a binary field whose length and bytes follow.
            self.binary = true;
            return false;
        };
        if value.len() > MAX_FIELD {
            return false;
        }
        let slot = match name {
            "MESSAGE" => &mut self.message,
            "_COMM" => &mut self.comm,
            "_EXE" => &mut self.exe,
            "_SYSTEMD_UNIT" => &mut self.unit,
            "_PID" => &mut self.pid,
            "_HOSTNAME" => &mut self.hostname,
            "__REALTIME_TIMESTAMP" => &mut self.realtime,
            _ => return false,
        };
        *slot = Some(value.to_owned());
        false
    }

    /// The sshd message of the entry that just ended, if it was sshd's.
    pub fn sshd_message(&self) -> Option<Export<'_>> {
        if self.binary
            || !is_sshd(
                self.comm.as_deref(),
                self.exe.as_deref(),
                self.unit.as_deref(),
            )
        {
            return None;
        }
        Some(Export {
            time: self.realtime.as_deref().and_then(realtime),
            host: self.hostname.as_deref(),
            pid: self.pid.as_deref().and_then(|p| p.parse().ok()),
            message: self.message.as_deref()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSHD: &str = r#"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1764324000123456","_HOSTNAME":"srv","_COMM":"sshd","_EXE":"/usr/sbin/sshd","_PID":"812","_SYSTEMD_UNIT":"ssh.service","SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Failed password for root from 203.0.113.9 port 4242 ssh2"}"#;

    #[test]
    fn json_entry_fields() {
        let e = Entry::from_json(SSHD).unwrap();
        assert!(e.is_sshd());
        assert_eq!(e.pid(), Some(812));
        assert_eq!(
            e.time(),
            Some("2025-11-28T10:00:00.123456Z".parse().unwrap())
        );
        assert!(matches!(e.message, Some(Field::Text(Cow::Borrowed(_)))));
    }

    #[test]
    fn a_forged_identifier_is_not_sshd() {
        let forged = SSHD
            .replace(r#""_COMM":"sshd""#, r#""_COMM":"logger""#)
            .replace("/usr/sbin/sshd", "/usr/bin/logger");
        assert!(!Entry::from_json(&forged).unwrap().is_sshd());
        // Inside ssh.service but not sshd (a hook script): still not sshd.
        assert!(!is_sshd(Some("bash"), None, Some("ssh.service")));
        assert!(is_sshd(
            None,
            None,
            Some("sshd@3-10.0.0.1:22-10.0.0.2:5555.service")
        ));
        assert!(is_sshd(Some("sshd-session"), None, None));
        assert!(!is_sshd(None, None, None));
    }

    #[test]
    fn escaped_and_binary_messages() {
        let e =
            Entry::from_json(r#"{"_COMM":"sshd","MESSAGE":"Invalid user \"x\" from 203.0.113.9"}"#)
                .unwrap();
        assert_eq!(
            e.message.unwrap().text(),
            Some(r#"Invalid user "x" from 203.0.113.9"#)
        );
        let e = Entry::from_json(r#"{"_COMM":"sshd","MESSAGE":[73,110,255]}"#).unwrap();
        assert_eq!(e.message, Some(Field::Bytes(vec![73, 110, 255])));
        assert!(Entry::from_json("not json").is_none());
    }

    #[test]
    fn export_entries() {
        let mut x = ExportEntry::default();
        let lines = [
            "__CURSOR=s=1",
            "__REALTIME_TIMESTAMP=1764324000000000",
            "_COMM=sshd",
            "_PID=9",
            "MESSAGE=Invalid user x from 203.0.113.9 port 1",
        ];
        for l in lines {
            assert!(!x.feed(l));
        }
        assert!(x.feed(""));
        let m = x.sshd_message().unwrap();
        assert_eq!(
            (m.pid, m.message),
            (Some(9), "Invalid user x from 203.0.113.9 port 1")
        );
        for l in [
            "__CURSOR=s=2",
            "_COMM=logger",
            "SYSLOG_IDENTIFIER=sshd",
            "MESSAGE=Invalid user x from 198.51.100.7",
        ] {
            x.feed(l);
        }
        assert!(x.feed(""));
        assert!(x.sshd_message().is_none());
    }
}
