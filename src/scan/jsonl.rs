//! One JSON object per event: the `repute scan --format jsonl` contract (DESIGN.md, "Scan
//! output"). The field names, their types and their order are public: keep them stable.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::addr;
use crate::{Attempt, Kind, Outcome};

#[derive(Serialize)]
struct Event<'a> {
    file: &'a str,
    line: u64,
    #[serde(serialize_with = "rfc3339")]
    time: Option<jiff::Timestamp>,
    host: Option<&'a str>,
    pid: Option<u32>,
    kind: Kind,
    outcome: Outcome,
    srcip: Option<IpAddr>,
    srcport: Option<u16>,
    user: Option<&'a str>,
    public: bool,
    wazuh_rule: Option<u32>,
}

fn rfc3339<S: serde::Serializer>(time: &Option<jiff::Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match time {
        // jiff's Display of a Timestamp is RFC 3339 in UTC ("2026-03-01T10:00:00Z").
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// Events serialised into memory and handed to the output in big writes: serde_json's many
/// small writes are cheap into a `Vec` and costly through a `dyn Write`.
#[derive(Default)]
pub struct EventBuffer {
    buf: Vec<u8>,
}

impl EventBuffer {
    const FLUSH_AT: usize = 32 * 1024;

    pub fn push(&mut self, file: &str, line: u64, attempt: &Attempt) {
        // Writing into a Vec cannot fail, and these types always serialise.
        let _ = write_event(&mut self.buf, file, line, attempt);
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

/// Writes one event as a JSON line. `srcip` is written unwrapped (`::ffff:a.b.c.d` as
/// `a.b.c.d`), the form it is classified and summarised in.
pub fn write_event(
    out: &mut (impl Write + ?Sized),
    file: &str,
    line: u64,
    a: &Attempt,
) -> io::Result<()> {
    let srcip = a.srcip.map(addr::canonical);
    let event = Event {
        file,
        line,
        time: a.time,
        host: a.host.as_deref(),
        pid: a.pid,
        kind: a.kind,
        outcome: a.outcome,
        srcip,
        srcport: a.srcport,
        user: a.user.as_deref(),
        public: srcip.is_some_and(|ip| addr::classify(ip).is_public()),
        wazuh_rule: a.wazuh_rule,
    };
    serde_json::to_writer(&mut *out, &event)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Origin;

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
                r#""srcport":2222,"user":"x \"from\" 1.2.3.4","public":true,"wazuh_rule":5710}"#,
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
}
