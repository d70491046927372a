//! One JSON object per event: the `repute scan --format jsonl` contract (DESIGN.md, "Scan
//! output"). The field names, their types and their order are public: keep them stable.

use std::io::{self, Write};

use crate::addr;
use crate::sshd::AttemptRef;

/// Events serialised into memory by hand and handed to the output in big writes. (serde_json
/// through a `dyn Write` cost twice the parsing time; the tests check this writer against
/// serde_json's output of the same event.)
#[derive(Default)]
pub struct EventBuffer {
    buf: Vec<u8>,
    /// The file name as a JSON string, escaped once per file rather than once per event.
    file: String,
    file_json: Vec<u8>,
}

impl EventBuffer {
    const FLUSH_AT: usize = 32 * 1024;

    /// Appends one event as a JSON line. `srcip` is written unwrapped (`::ffff:a.b.c.d` as
    /// `a.b.c.d`), the form it is classified and summarised in.
    #[cfg(test)]
    pub fn push(&mut self, file: &str, line: u64, a: &AttemptRef<'_>) {
        self.push_with(file, line, a, "");
    }

    /// As [`EventBuffer::push`], with `extra` (JSON members, each starting with a comma)
    /// appended after the contract's fields, which stay first and unchanged.
    pub fn push_with(&mut self, file: &str, line: u64, a: &AttemptRef<'_>, extra: &str) {
        if self.file != file || self.file_json.is_empty() {
            self.file = file.to_string();
            self.file_json.clear();
            json_str(&mut self.file_json, file);
        }
        let out = &mut self.buf;
        out.extend_from_slice(b"{\"file\":");
        out.extend_from_slice(&self.file_json);
        write_fields(out, line, a);
        out.extend_from_slice(extra.as_bytes());
        out.extend_from_slice(b"}\n");
    }

    pub fn flush_when_full(&mut self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        if self.buf.len() >= Self::FLUSH_AT {
            self.flush(out)
        } else {
            Ok(())
        }
    }

    pub fn flush(&mut self, out: &mut (impl Write + ?Sized)) -> io::Result<()> {
        out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

/// One event line appended to `out`, as [`EventBuffer`] writes it, then `members` (name and
/// text, written as JSON strings) before the closing brace: `repute watch`'s events (its
/// `source`, the journal's `cursor`), so that both commands write the contract with one writer.
pub fn write_event(
    out: &mut Vec<u8>,
    file: &str,
    line: u64,
    a: &AttemptRef<'_>,
    members: &[(&str, &str)],
) {
    out.extend_from_slice(b"{\"file\":");
    json_str(out, file);
    write_fields(out, line, a);
    for (name, value) in members {
        out.push(b',');
        json_str(out, name);
        out.push(b':');
        json_str(out, value);
    }
    out.extend_from_slice(b"}\n");
}

/// The contract's fields after `file`, each with its leading comma.
fn write_fields(out: &mut Vec<u8>, line: u64, a: &AttemptRef<'_>) {
    let srcip = a.srcip.map(addr::canonical);
    out.extend_from_slice(b",\"line\":");
    json_u64(out, line);
    out.extend_from_slice(b",\"time\":");
    match a.time {
        // jiff's Display of a Timestamp is RFC 3339 in UTC ("2026-03-01T10:00:00Z").
        Some(t) => {
            let _ = write!(out, "\"{t}\"");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"host\":");
    json_opt_str(out, a.host);
    out.extend_from_slice(b",\"pid\":");
    json_opt_u64(out, a.pid.map(u64::from));
    out.extend_from_slice(b",\"kind\":\"");
    out.extend_from_slice(a.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"outcome\":\"");
    out.extend_from_slice(a.outcome.as_str().as_bytes());
    out.extend_from_slice(b"\",\"srcip\":");
    match srcip {
        Some(ip) => {
            let _ = write!(out, "\"{ip}\"");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"srcport\":");
    json_opt_u64(out, a.srcport.map(u64::from));
    out.extend_from_slice(b",\"user\":");
    json_opt_str(out, a.user);
    let public = srcip.is_some_and(addr::is_public);
    out.extend_from_slice(if public {
        b",\"public\":true"
    } else {
        b",\"public\":false"
    });
    out.extend_from_slice(b",\"wazuh_rule\":");
    json_opt_u64(out, a.wazuh_rule.map(u64::from));
    // Added after the contract's first fields: what the line adds to its address's
    // ATTEMPTS once its connection is accounted for (`sshd::connection`).
    out.extend_from_slice(b",\"attempts\":");
    json_u64(out, u64::from(a.attempts));
}

/// A JSON string. User names come from attackers: anything that needs escaping goes
/// through serde_json; the common case (printable ASCII without `"` or `\\`) is copied.
fn json_str(out: &mut Vec<u8>, s: &str) {
    let plain = s
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Serialising a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn json_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn json_opt_u64(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => json_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attempt, Kind, Origin, Outcome};
    use serde::Serialize;
    use std::net::IpAddr;

    /// The contract, written with serde: the oracle for the hand-written writer.
    #[derive(Serialize)]
    struct SerdeEvent<'a> {
        file: &'a str,
        line: u64,
        time: Option<String>,
        host: Option<&'a str>,
        pid: Option<u32>,
        kind: Kind,
        outcome: Outcome,
        srcip: Option<IpAddr>,
        srcport: Option<u16>,
        user: Option<&'a str>,
        public: bool,
        wazuh_rule: Option<u32>,
        attempts: u32,
    }

    fn by_hand(file: &str, line: u64, a: &Attempt) -> String {
        let event = AttemptRef {
            time: a.time,
            host: a.host.as_deref(),
            pid: a.pid,
            kind: a.kind,
            outcome: a.outcome,
            srcip: a.srcip,
            srcport: a.srcport,
            user: a.user.as_deref(),
            wazuh_rule: a.wazuh_rule,
            attempts: u32::from(a.outcome.is_attack()),
        };
        let mut events = EventBuffer::default();
        events.push(file, line, &event);
        String::from_utf8(events.buf).unwrap()
    }

    fn by_serde(file: &str, line: u64, a: &Attempt) -> String {
        let srcip = a.srcip.map(addr::canonical);
        let event = SerdeEvent {
            file,
            line,
            time: a.time.map(|t| t.to_string()),
            host: a.host.as_deref(),
            pid: a.pid,
            kind: a.kind,
            outcome: a.outcome,
            srcip,
            srcport: a.srcport,
            user: a.user.as_deref(),
            public: srcip.is_some_and(addr::is_public),
            wazuh_rule: a.wazuh_rule,
            attempts: u32::from(a.outcome.is_attack()),
        };
        serde_json::to_string(&event).unwrap() + "\n"
    }

    fn write_event(out: &mut Vec<u8>, file: &str, line: u64, a: &Attempt) -> io::Result<()> {
        out.extend(by_hand(file, line, a).bytes());
        Ok(())
    }

    #[test]
    fn hand_written_equals_serde_for_awkward_values() {
        let kinds = [
            Kind::FailedPassword,
            Kind::InvalidUser,
            Kind::KexIdentification,
            Kind::ReceivedDisconnectPreauth,
            Kind::LoginGraceTimeout,
            Kind::Accepted,
        ];
        let users = [
            None,
            Some(""),
            Some("root"),
            Some("a\"b\\c"),
            Some("tab\tnl\n\u{1}"),
            Some("ünï €"),
            Some("x from 1.2.3.4 port 22 [preauth]"),
        ];
        let ips = [
            None,
            Some("8.8.8.8"),
            Some("::ffff:10.0.0.1"),
            Some("2001:db8::1"),
        ];
        for (i, kind) in kinds.iter().enumerate() {
            for user in users {
                for ip in ips {
                    let a = Attempt {
                        time: (i % 2 == 0).then(|| "2026-03-01T10:00:00.5Z".parse().unwrap()),
                        host: (i % 3 != 0).then(|| "srv\"01".to_string()),
                        pid: (i % 2 == 1).then_some(u32::MAX),
                        kind: *kind,
                        outcome: [
                            Outcome::Failure,
                            Outcome::Probe,
                            Outcome::Success,
                            Outcome::Info,
                        ][i % 4],
                        srcip: ip.map(|t| t.parse().unwrap()),
                        srcport: Some(i as u16 * 1000),
                        user: user.map(String::from),
                        wazuh_rule: (i % 2 == 0).then_some(5710),
                        origin: Origin::Unknown,
                    };
                    for (file, line) in [("auth.log", 1), ("dir/\"odd\" näme", u64::MAX)] {
                        assert_eq!(by_hand(file, line, &a), by_serde(file, line, &a));
                    }
                }
            }
        }
    }

    #[test]
    fn writes_the_contract_fields_in_order() {
        let attempt = Attempt {
            time: Some("2026-03-01T10:00:00Z".parse().unwrap()),
            host: Some("srv01".into()),
            pid: Some(42),
            kind: Kind::InvalidUser,
            outcome: Outcome::Failure,
            srcip: Some("::ffff:8.8.8.8".parse().unwrap()),
            srcport: Some(2222),
            user: Some("x \"from\" 1.2.3.4".into()),
            wazuh_rule: Some(5710),
            origin: Origin::Unknown,
        };
        let mut out = Vec::new();
        write_event(&mut out, "auth.log", 7, &attempt).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"file":"auth.log","line":7,"time":"2026-03-01T10:00:00Z","host":"srv01","#,
                r#""pid":42,"kind":"invalid_user","outcome":"failure","srcip":"8.8.8.8","#,
                r#""srcport":2222,"user":"x \"from\" 1.2.3.4","public":true,"wazuh_rule":5710,"#,
                r#""attempts":1}"#,
                "\n"
            )
        );
    }

    #[test]
    fn missing_values_are_null_and_not_public() {
        let attempt = Attempt {
            time: None,
            host: None,
            pid: None,
            kind: Kind::KexIdentification,
            outcome: Outcome::Probe,
            srcip: None,
            srcport: None,
            user: None,
            wazuh_rule: None,
            origin: Origin::Unknown,
        };
        let mut out = Vec::new();
        write_event(&mut out, "-", 1, &attempt).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(value["time"].is_null() && value["srcip"].is_null() && value["user"].is_null());
        assert_eq!(value["public"], false);
    }

    /// `repute watch`'s events: the contract's fields, then `source` and the journal's
    /// `cursor`, as serde writes the same object.
    #[test]
    fn watch_events_are_the_contract_and_their_members() {
        #[derive(Serialize)]
        struct WatchEvent<'a> {
            #[serde(flatten)]
            event: SerdeEvent<'a>,
            source: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            cursor: Option<&'a str>,
        }
        let attempt = Attempt {
            time: Some("2026-03-01T10:00:00.5Z".parse().unwrap()),
            host: Some("srv\"01".to_string()),
            pid: Some(7),
            kind: Kind::InvalidUser,
            outcome: Outcome::Failure,
            srcip: Some("::ffff:45.155.205.233".parse().unwrap()),
            srcport: Some(22),
            user: Some("tab\tnl\n\u{1}".to_string()),
            wazuh_rule: Some(5710),
            origin: Origin::Unknown,
        };
        let event = AttemptRef {
            time: attempt.time,
            host: attempt.host.as_deref(),
            pid: attempt.pid,
            kind: attempt.kind,
            outcome: attempt.outcome,
            srcip: attempt.srcip,
            srcport: attempt.srcport,
            user: attempt.user.as_deref(),
            wazuh_rule: attempt.wazuh_rule,
            attempts: 1,
        };
        let srcip = attempt.srcip.map(addr::canonical);
        for (file, source, cursor) in [
            ("/var/log/auth.log", "file", None),
            ("journal", "journal", Some("s=ab\"c;i=1\u{7f}")),
        ] {
            let mut by_hand = Vec::new();
            let members: &[(&str, &str)] = match cursor {
                Some(c) => &[("source", source), ("cursor", c)],
                None => &[("source", source)],
            };
            super::write_event(&mut by_hand, file, 9, &event, members);
            let oracle = WatchEvent {
                event: SerdeEvent {
                    file,
                    line: 9,
                    time: attempt.time.map(|t| t.to_string()),
                    host: attempt.host.as_deref(),
                    pid: attempt.pid,
                    kind: attempt.kind,
                    outcome: attempt.outcome,
                    srcip,
                    srcport: attempt.srcport,
                    user: attempt.user.as_deref(),
                    public: srcip.is_some_and(addr::is_public),
                    wazuh_rule: attempt.wazuh_rule,
                    attempts: 1,
                },
                source,
                cursor,
            };
            assert_eq!(
                String::from_utf8(by_hand).unwrap(),
                serde_json::to_string(&oracle).unwrap() + "\n"
            );
        }
    }
}
