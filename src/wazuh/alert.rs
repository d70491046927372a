//! The Wazuh alert as integratord hands it to an integration: one `alerts.json` object in a
//! temporary file (`<alert_format>json`), or the legacy shell-style lines without it.
//!
//! Alerts come in every shape (no `data`, no `full_log`, no `agent`, numbers where strings are
//! expected), so nothing here assumes a field exists: every accessor returns an `Option`, and
//! the only hard error is a file that is not an alert at all.
//!
//! An alert becomes an [`Attempt`] ([`Alert::attempt`]) as a log line does: its `full_log` (or,
//! for an AbuseIPDB enrichment alert, the source alert's) goes through the sshd parser, which
//! takes the address where sshd puts it, so a user name crafted to look like an address is
//! never blamed; an alert whose log is no sshd line is an attempt of its `data.srcip`, judged
//! by the rule that fired. The integration and the active response hand that attempt to the
//! policy's decision step ([`crate::policy::decision`]).

use std::net::IpAddr;
use std::path::Path;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::attempt::{Attempt, Kind, Origin, Outcome};

/// The `integration` value and the queue location this integration writes; the loop guard
/// recognises our own enrichment alerts by them.
pub const INTEGRATION_NAME: &str = "custom-abuseipdb";
pub const LOCATION: &str = "abuseipdb";

/// The longest alert file read. analysisd cuts an event at `OS_MAXSTR` (64 KiB) and an
/// `alerts.json` line adds the decoded fields and `previous_output` to it, so a real alert
/// stays well under this; the cap only stops a wrong path (`/dev/zero`, a huge log) from
/// taking the manager's memory.
pub const MAX_ALERT_BYTES: u64 = 1024 * 1024;

/// Why an alert file could not be read.
#[derive(Debug, Error)]
pub enum AlertError {
    #[error("alert file {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("alert file {path}: not a JSON alert: {detail}")]
    Invalid { path: String, detail: String },
}

/// The agent an alert came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub ip: Option<String>,
}

impl Agent {
    /// Agent `000` is the manager itself: its events go back without an agent prefix.
    pub fn is_manager(&self) -> bool {
        self.id == "000"
    }
}

/// One alert, kept as parsed JSON with lenient accessors.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    root: Map<String, Value>,
}

impl Alert {
    /// Reads and parses the alert file integratord wrote: a regular file (a FIFO or a device
    /// is refused without waiting on it; the open does not block) of at most
    /// [`MAX_ALERT_BYTES`].
    pub fn read(path: &Path) -> Result<Alert, AlertError> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let unreadable = |source| AlertError::Unreadable {
            path: path.display().to_string(),
            source,
        };
        let refuse = |what: &str| {
            unreadable(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                what.to_string(),
            ))
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(unreadable)?;
        let kind = file.metadata().map_err(unreadable)?.file_type();
        if !kind.is_file() {
            use std::os::unix::fs::FileTypeExt;
            let what = if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_dir() {
                "a directory"
            } else if kind.is_char_device() || kind.is_block_device() {
                "a device"
            } else {
                "not a regular file"
            };
            return Err(refuse(&format!(
                "is {what}; integratord writes alerts to regular files"
            )));
        }
        let mut bytes = Vec::new();
        file.take(MAX_ALERT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_ALERT_BYTES {
            return Err(refuse(&format!(
                "is larger than {MAX_ALERT_BYTES} bytes; no Wazuh alert is that long"
            )));
        }
        Alert::parse(&bytes).map_err(|detail| AlertError::Invalid {
            path: path.display().to_string(),
            detail,
        })
    }

    /// An alert from its JSON object (the active response receives it inside execd's message).
    pub fn from_json(value: &Value) -> Option<Alert> {
        value.as_object().map(|root| Alert { root: root.clone() })
    }

    /// Parses a JSON alert, or the legacy text format when the content is not JSON.
    pub fn parse(bytes: &[u8]) -> Result<Alert, String> {
        let text = String::from_utf8_lossy(bytes);
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            return match serde_json::from_str::<Value>(trimmed) {
                Ok(Value::Object(root)) => Ok(Alert { root }),
                Ok(_) => Err("not a JSON object".into()),
                Err(e) => Err(e.to_string()),
            };
        }
        Alert::parse_legacy(&text).ok_or_else(|| {
            "neither a JSON object nor integratord's legacy format (srcip='…' lines)".into()
        })
    }

    /// The format integratord writes without `<alert_format>json`: `key='value'` lines.
    fn parse_legacy(text: &str) -> Option<Alert> {
        let mut fields = Map::new();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('\'');
            fields.insert(key.trim().to_string(), Value::String(value.to_string()));
        }
        let get = |k: &str| fields.get(k).cloned().unwrap_or(Value::Null);
        if fields.get("srcip").is_none() && fields.get("ruleid").is_none() {
            return None;
        }
        let mut root = Map::new();
        root.insert(
            "rule".into(),
            serde_json::json!({"id": get("ruleid"), "level": get("alertlevel"),
                               "description": get("ruledescription")}),
        );
        root.insert("full_log".into(), get("alertlog"));
        root.insert("location".into(), get("alertlocation"));
        root.insert("data".into(), serde_json::json!({"srcip": get("srcip")}));
        root.retain(|_, v| !v.is_null());
        Some(Alert { root })
    }

    fn path(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        rest.iter()
            .try_fold(self.root.get(*first)?, |v, key| v.get(*key))
    }

    /// A field as text: strings as they are, numbers and booleans written out.
    fn text(&self, path: &[&str]) -> Option<String> {
        match self.path(path)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The alert id, `"<epoch>.<counter>"`.
    pub fn id(&self) -> Option<String> {
        self.text(&["id"])
    }

    pub fn rule_id(&self) -> Option<String> {
        self.text(&["rule", "id"])
    }

    pub fn rule_description(&self) -> Option<String> {
        self.text(&["rule", "description"])
    }

    pub fn full_log(&self) -> Option<String> {
        self.text(&["full_log"])
    }

    pub fn location(&self) -> Option<String> {
        self.text(&["location"])
    }

    /// `data.srcip` exactly as the decoder wrote it (it may be a host name with `UseDNS`).
    pub fn srcip_text(&self) -> Option<String> {
        self.text(&["data", "srcip"]).filter(|s| !s.is_empty())
    }

    /// `data.srcip` as an address, read as active response reads it
    /// ([`crate::addr::parse_addr`]): `[v6]` brackets and a `%zone` dropped, IPv4-mapped IPv6
    /// unwrapped.
    pub fn srcip(&self) -> Option<IpAddr> {
        crate::addr::parse_addr(&self.srcip_text()?)
    }

    /// The agent, when the alert names one with an id.
    pub fn agent(&self) -> Option<Agent> {
        let id = self.text(&["agent", "id"])?;
        Some(Agent {
            id,
            name: self.text(&["agent", "name"]).unwrap_or_default(),
            ip: self.text(&["agent", "ip"]).filter(|s| !s.is_empty()),
        })
    }

    /// The attempt this alert reports, of its `data.srcip` when its log names no address;
    /// `None` when it has no address at all. See [`Alert::attempt_with`].
    pub fn attempt(&self) -> Option<Attempt> {
        let mut attempt = self.read_attempt();
        attempt.srcip = Some(attempt.srcip.or(self.srcip())?);
        Some(attempt)
    }

    /// The attempt this alert reports: its `full_log`, else the enrichment alert's
    /// `data.abuseipdb.source.full_log`, read by the sshd parser (a whole syslog line or a bare
    /// message) with the address the parser finds, which resists text an attacker typed;
    /// else, when the log is no sshd line, a [`Kind::WazuhAlert`] failure of its rule. `srcip`
    /// is the address when the log names none (the active response finds it in more fields).
    pub fn attempt_with(&self, srcip: IpAddr) -> Attempt {
        let mut attempt = self.read_attempt();
        attempt.srcip = attempt.srcip.or(Some(srcip));
        attempt
    }

    /// The attempt, with the address only when the log gives one.
    fn read_attempt(&self) -> Attempt {
        let logs = [
            self.full_log(),
            self.text(&["data", "abuseipdb", "source", "full_log"]),
        ];
        let parsed = logs.into_iter().flatten().find_map(|log| {
            crate::sshd::Parser::for_one_line(jiff::Timestamp::now())
                .parse_line(&log)
                .or_else(|| crate::sshd::parse_message(&log))
        });
        let mut attempt = parsed.unwrap_or_else(|| Attempt {
            time: None,
            host: None,
            pid: None,
            kind: Kind::WazuhAlert,
            outcome: Outcome::Failure,
            srcip: None,
            srcport: self
                .text(&["data", "srcport"])
                .and_then(|p| p.trim().parse().ok()),
            user: self
                .text(&["data", "dstuser"])
                .or_else(|| self.text(&["data", "srcuser"])),
            wazuh_rule: self.rule_id().and_then(|r| r.trim().parse().ok()),
            origin: Origin::Unknown,
        });
        attempt.time = attempt.time.or_else(|| self.time());
        attempt.host = attempt.host.or_else(|| self.host());
        if let Some(id) = self.id() {
            attempt.origin = Origin::Alert { id };
        }
        attempt
    }

    /// `timestamp` (`2026-11-28T10:32:55.123+0000`, Wazuh's form).
    fn time(&self) -> Option<jiff::Timestamp> {
        let text = self.text(&["timestamp"])?;
        jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", text.trim())
            .and_then(|t| t.to_timestamp())
            .ok()
    }

    /// The host that wrote the log: the predecoder's host name, else the agent's name.
    fn host(&self) -> Option<String> {
        self.text(&["predecoder", "hostname"])
            .or_else(|| self.text(&["agent", "name"]))
            .filter(|h| !h.is_empty())
    }

    /// True for alerts raised on this integration's own events, which must never be looked up
    /// again (an `<integration>` filtered by group would otherwise feed on itself).
    pub fn is_own_enrichment(&self) -> bool {
        self.text(&["data", "integration"]).as_deref() == Some(INTEGRATION_NAME)
            || self.location().as_deref() == Some(LOCATION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"timestamp":"2020-04-17T00:17:53.159+0000","rule":{"level":5,"description":"sshd: authentication failed.","id":"5716","groups":["syslog","sshd","authentication_failed"]},"agent":{"id":"001","name":"Debian","ip":"10.0.1.50"},"manager":{"name":"m"},"id":"1587082673.77856","full_log":"Apr 17 00:17:52 ip-10-0-1-50 sshd[5330]: Failed password for root from 49.88.112.73 port 36679 ssh2","decoder":{"parent":"sshd","name":"sshd"},"data":{"srcip":"49.88.112.73","srcport":"36679","dstuser":"root"},"location":"/var/log/auth.log"}"#;

    #[test]
    fn reads_the_fields_an_integration_needs() {
        let alert = Alert::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(alert.id().as_deref(), Some("1587082673.77856"));
        assert_eq!(alert.rule_id().as_deref(), Some("5716"));
        assert_eq!(
            alert.rule_description().as_deref(),
            Some("sshd: authentication failed.")
        );
        assert_eq!(alert.srcip(), Some("49.88.112.73".parse().unwrap()));
        let agent = alert.agent().unwrap();
        assert_eq!(agent.id, "001");
        assert_eq!(agent.ip.as_deref(), Some("10.0.1.50"));
        assert!(!alert.is_own_enrichment());
    }

    #[test]
    fn missing_parts_are_none_not_errors() {
        let alert = Alert::parse(br#"{"rule":{"id":5716}}"#).unwrap();
        assert_eq!(alert.rule_id().as_deref(), Some("5716"));
        assert_eq!(alert.srcip(), None);
        assert_eq!(alert.full_log(), None);
        assert_eq!(alert.agent(), None);
        assert_eq!(alert.id(), None);
    }

    #[test]
    fn mapped_ipv6_is_unwrapped_and_hostnames_are_not_addresses() {
        let a = Alert::parse(br#"{"data":{"srcip":"::ffff:49.88.112.73"}}"#).unwrap();
        assert_eq!(a.srcip(), Some("49.88.112.73".parse().unwrap()));
        for (text, want) in [
            ("[2001:db8::1]", "2001:db8::1"),
            ("fe80::1%eth0", "fe80::1"),
            (" 49.88.112.73 ", "49.88.112.73"),
        ] {
            let json = format!(r#"{{"data":{{"srcip":"{text}"}}}}"#);
            let a = Alert::parse(json.as_bytes()).unwrap();
            assert_eq!(a.srcip(), Some(want.parse().unwrap()), "{text}");
        }
        let b = Alert::parse(br#"{"data":{"srcip":"scanner.example.net"}}"#).unwrap();
        assert_eq!(b.srcip(), None);
        assert_eq!(b.srcip_text().as_deref(), Some("scanner.example.net"));
    }

    #[test]
    fn own_enrichment_alerts_are_recognised() {
        let by_field = Alert::parse(
            br#"{"data":{"integration":"custom-abuseipdb","srcip":"49.88.112.73"},"location":"x"}"#,
        )
        .unwrap();
        assert!(by_field.is_own_enrichment());
        let by_location = Alert::parse(br#"{"location":"abuseipdb"}"#).unwrap();
        assert!(by_location.is_own_enrichment());
    }

    #[test]
    fn invalid_json_and_non_objects_are_errors() {
        assert!(Alert::parse(b"{\"rule\": ").is_err());
        assert!(Alert::parse(b"[1,2]").is_err());
        assert!(Alert::parse(b"").is_err());
        assert!(Alert::parse(b"\xff\xfe garbage").is_err());
    }

    #[test]
    fn an_sshd_full_log_becomes_its_attempt() {
        let a = Alert::parse(SAMPLE.as_bytes()).unwrap().attempt().unwrap();
        assert_eq!(
            (a.kind, a.outcome, a.srcip, a.srcport, a.user.as_deref()),
            (
                Kind::FailedPassword,
                Outcome::Failure,
                Some("49.88.112.73".parse().unwrap()),
                Some(36679),
                Some("root")
            )
        );
        assert_eq!(a.wazuh_rule, Some(5760), "the rule the line fires");
        assert_eq!(a.host.as_deref(), Some("ip-10-0-1-50"));
        assert_eq!(
            a.origin,
            Origin::Alert {
                id: "1587082673.77856".into()
            }
        );
        // A bare message (Wazuh's predecoded log) reads the same.
        let bare = Alert::parse(
            br#"{"full_log":"Invalid user admin from 2001:db8:1::5 port 4242","data":{"srcip":"2001:db8:1::5"}}"#,
        )
        .unwrap();
        let a = bare.attempt().unwrap();
        assert_eq!(
            (a.kind, a.srcip),
            (Kind::InvalidUser, Some("2001:db8:1::5".parse().unwrap()))
        );
    }

    #[test]
    fn without_an_sshd_log_the_attempt_is_the_rules() {
        let alert = Alert::parse(
            br#"{"timestamp":"2026-11-28T10:32:55.123+0000","rule":{"id":"31151"},"id":"9.9","data":{"srcip":"45.155.205.233","srcport":"443","dstuser":"admin"},"agent":{"id":"001","name":"web"}}"#,
        )
        .unwrap();
        let a = alert.attempt().unwrap();
        assert_eq!(
            (
                a.kind,
                a.outcome,
                a.wazuh_rule,
                a.srcport,
                a.user.as_deref()
            ),
            (
                Kind::WazuhAlert,
                Outcome::Failure,
                Some(31151),
                Some(443),
                Some("admin")
            )
        );
        assert_eq!(a.srcip, Some("45.155.205.233".parse().unwrap()));
        assert_eq!(a.host.as_deref(), Some("web"));
        assert_eq!(a.time.map(|t| t.as_second()), Some(1_795_861_975));
        // A log that is no sshd line changes nothing.
        let web = Alert::parse(
            br#"{"rule":{"id":"31151"},"full_log":"GET /wp-login.php 404","data":{"srcip":"45.155.205.233"}}"#,
        )
        .unwrap();
        assert_eq!(web.attempt().map(|a| a.kind), Some(Kind::WazuhAlert));
        // No address anywhere: no attempt.
        assert_eq!(
            Alert::parse(br#"{"rule":{"id":"5716"}}"#)
                .unwrap()
                .attempt(),
            None
        );
        let by_name = Alert::parse(br#"{"data":{"srcip":"scanner.example.net"}}"#).unwrap();
        assert_eq!(by_name.attempt(), None);
    }

    /// A user name crafted to look like an address (`x 198.51.100.7`) is not blamed, even
    /// when a decoder took it for the source: the parser reads the address where sshd put it.
    #[test]
    fn an_injected_full_log_blames_the_real_address() {
        let injected = "Mar  1 10:00:05 srv01 sshd[4005]: Connection closed by invalid user x 198.51.100.7 203.0.113.50 port 4242 [preauth]";
        for data in [
            r#"{"srcip":"198.51.100.7"}"#,
            r#"{"srcip":"203.0.113.50"}"#,
            "{}",
        ] {
            let json = serde_json::json!({"rule": {"id": "5710"}, "full_log": injected, "data": serde_json::from_str::<Value>(data).unwrap()});
            let alert = Alert::parse(json.to_string().as_bytes()).unwrap();
            let a = alert.attempt().unwrap();
            assert_eq!(a.srcip, Some("203.0.113.50".parse().unwrap()), "{data}");
            assert_eq!(a.user.as_deref(), Some("x 198.51.100.7"));
        }
    }

    /// An AbuseIPDB enrichment alert: its own `full_log` is our JSON event; the source
    /// alert's log inside it is the attempt.
    #[test]
    fn an_enrichment_alert_carries_its_source_attempt() {
        let alert = Alert::parse(
            serde_json::json!({
                "rule": {"id": "110114"},
                "full_log": r#"{"abuseipdb":{"source":{"srcip":"49.88.112.73"}}}"#,
                "data": {"abuseipdb": {
                    "source": {"srcip": "49.88.112.73", "full_log": "Nov 28 10:32:54 web-01 sshd[4242]: Failed password for root from 49.88.112.73 port 51234 ssh2"},
                    "abuse_confidence_score": "100"
                }}
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let a = alert.attempt_with("49.88.112.73".parse().unwrap());
        assert_eq!(
            (a.kind, a.srcip),
            (Kind::FailedPassword, Some("49.88.112.73".parse().unwrap()))
        );
    }

    #[test]
    fn legacy_format_is_understood() {
        let text = "alertdate='2024 Jan 01 00:00:00'\nalertlocation='/var/log/auth.log'\nruleid='5760'\nalertlevel='5'\nruledescription='sshd: authentication failed.'\nalertlog='Failed password for root from 49.88.112.73 port 1 ssh2'\nsrcip='49.88.112.73'\n";
        let alert = Alert::parse(text.as_bytes()).unwrap();
        assert_eq!(alert.rule_id().as_deref(), Some("5760"));
        assert_eq!(alert.srcip(), Some("49.88.112.73".parse().unwrap()));
        assert_eq!(alert.location().as_deref(), Some("/var/log/auth.log"));
    }
}
