//! The Wazuh 4.2+ active-response protocol, as execd speaks it to a program in
//! `active-response/bin/` (see `docs/wazuh.md` §5).
//!
//! execd writes one JSON line on the program's stdin: `version`, `origin`, `command` (`add` or
//! `delete`) and `parameters` (`extra_args`, the whole `alert`, `program`). For `add`, the
//! program answers with a `check_keys` line naming the key (the address) and reads execd's
//! verdict: `continue` (go ahead) or `abort` (this key is already in execd's timeout list). For
//! `delete`, run when execd's timeout expires, there is no handshake. Programs log to
//! `logs/active-responses.log` as `YYYY/MM/DD HH:MM:SS active-response/bin/<name>: <message>`.
//!
//! This module is the protocol only: reading and validating messages, finding the address and
//! the attempt the alert reports, the handshake lines, the log line, and the `ossec.conf`
//! blocks that wire the program to the enrichment rules. The command (`src/cli/wazuh_active_response.rs`) does the
//! blocking with [`crate::block`]; the Wazuh home comes from [`super::home`].

use std::fs::OpenOptions;
use std::io::{BufRead, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The longest line accepted from execd. Wazuh's own programs read up to `OS_MAXSTR` (64 KiB);
/// an alert with a long `previous_output` can come close, so we allow more, but not without bound.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// How long any one read from execd may wait: for the message after the start, and for the
/// reply to `check_keys`. execd writes both at once (the message right after the spawn, the
/// reply right after reading our line), so a few seconds of silence mean it is gone or stuck,
/// and waiting longer would only hold execd, which runs its programs one at a time.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Standard input read straight from descriptor 0, each line within the timeout: the clock
/// starts at the first read after a newline (or at the first read), so neither silence nor a
/// slow drip of bytes holds the program longer. A read past it fails with `TimedOut`.
/// Unbuffered: wrap it in a `BufReader`.
pub struct TimedStdin {
    timeout: std::time::Duration,
    deadline: Option<std::time::Instant>,
}

impl TimedStdin {
    pub fn new(timeout: std::time::Duration) -> Self {
        TimedStdin {
            timeout,
            deadline: None,
        }
    }
}

impl Read for TimedStdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let timeout = self.timeout;
        let deadline = *self
            .deadline
            .get_or_insert_with(|| std::time::Instant::now() + timeout);
        let n = read_before(libc::STDIN_FILENO, buf, deadline).map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no complete line on stdin within {}s", timeout.as_secs()),
                )
            } else {
                e
            }
        })?;
        if buf[..n].contains(&b'\n') {
            self.deadline = None;
        }
        Ok(n)
    }
}

/// One `read(2)` on `fd` once `poll(2)` says it is readable, before `deadline`.
pub fn read_before(
    fd: std::os::fd::RawFd,
    buf: &mut [u8],
    deadline: std::time::Instant,
) -> std::io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // Rounded up, so that a sub-millisecond rest is not a busy loop of zero timeouts.
        let millis =
            libc::c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, its count, a timeout.
        let ready = unsafe { libc::poll(&mut pfd, 1, millis) };
        if ready < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if ready == 0 {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        // SAFETY: `buf` is valid for `buf.len()` bytes of writing.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        return Ok(n.unsigned_abs());
    }
}

/// What went wrong with a message; each is logged as one line and ends the program.
#[derive(Debug, thiserror::Error)]
pub enum ArError {
    #[error("cannot read stdin: {0}")]
    Read(#[from] std::io::Error),
    #[error("no message on stdin")]
    Empty,
    #[error("message longer than {MAX_MESSAGE_BYTES} bytes")]
    TooLong,
    #[error("message is not UTF-8")]
    NotUtf8,
    #[error("invalid input format: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid input format: {0}")]
    Invalid(&'static str),
    #[error("invalid command {0:?} (expected add or delete)")]
    UnknownCommand(String),
    #[error("no source address in the alert (parameters.alert.data.srcip)")]
    NoAddress,
    #[error("source address {0:?} is not an IPv4 or IPv6 address")]
    BadAddress(String),
    #[error("invalid extra argument {0:?}: {1}")]
    BadExtraArg(String, &'static str),
}

/// What execd asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Delete,
}

/// One validated message from execd.
#[derive(Debug, Clone)]
pub struct Message {
    pub command: Command,
    /// The whole message, kept for the fields read on demand.
    pub raw: Value,
}

/// Reads one line of at most `max` bytes (newline excluded); `None` at end of input.
pub fn read_line_bounded(reader: &mut impl BufRead, max: usize) -> Result<Option<String>, ArError> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader.by_ref().take(limit).read_until(b'\n', &mut buf)?;
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > max {
        return Err(ArError::TooLong);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| ArError::NotUtf8)
}

impl Message {
    /// Parses and validates a line as Wazuh's `setup_and_check_message` does: `version` a
    /// number, `origin` an object, `command` a string (`add` or `delete`), `parameters` an
    /// object.
    pub fn parse(line: &str) -> Result<Message, ArError> {
        let raw: Value = serde_json::from_str(line)?;
        if !raw.is_object() {
            return Err(ArError::Invalid("not a JSON object"));
        }
        if !raw["version"].is_number() {
            return Err(ArError::Invalid("`version` is missing or not a number"));
        }
        if !raw["origin"].is_object() {
            return Err(ArError::Invalid("`origin` is missing or not an object"));
        }
        if !raw["parameters"].is_object() {
            return Err(ArError::Invalid("`parameters` is missing or not an object"));
        }
        let command = match raw["command"].as_str() {
            Some("add") => Command::Add,
            Some("delete") => Command::Delete,
            Some(other) => return Err(ArError::UnknownCommand(other.chars().take(64).collect())),
            None => return Err(ArError::Invalid("`command` is missing or not a string")),
        };
        Ok(Message { command, raw })
    }

    fn alert(&self) -> &Value {
        &self.raw["parameters"]["alert"]
    }

    /// The address text, looked for where firewall-drop looks (the Windows fields first,
    /// then `data.srcip`), then where the AbuseIPDB enrichment events keep it
    /// (`data.abuseipdb.source.srcip`, or `.ip` in Wazuh's own custom-abuseipdb), so the
    /// program can be tied to the enrichment rules directly.
    pub fn srcip_text(&self) -> Option<&str> {
        let data = &self.alert()["data"];
        [
            &data["win"]["eventdata"]["ipAddress"],
            &data["win"]["eventdata"]["destinationIp"],
            &data["srcip"],
            &data["abuseipdb"]["source"]["srcip"],
            &data["abuseipdb"]["source"]["ip"],
        ]
        .into_iter()
        .find_map(|v| v.as_str().filter(|s| !s.trim().is_empty()))
    }

    /// The source address, parsed strictly (numeric forms only: never a name lookup).
    pub fn srcip(&self) -> Result<IpAddr, ArError> {
        let text = self.srcip_text().ok_or(ArError::NoAddress)?;
        crate::addr::parse_addr(text)
            .ok_or_else(|| ArError::BadAddress(text.chars().take(64).collect()))
    }

    /// `parameters.extra_args` (execd splits the `<extra_args>` text on spaces).
    pub fn extra_args(&self) -> Vec<String> {
        self.raw["parameters"]["extra_args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The attempt the alert reports ([`super::alert::Alert::attempt_with`]), with the
    /// message's address when the alert's log names none.
    pub fn attempt(&self) -> Option<crate::attempt::Attempt> {
        let ip = self.srcip().ok()?;
        Some(super::alert::Alert::from_json(self.alert())?.attempt_with(ip))
    }

    /// The AbuseIPDB score the alert already carries, when it is an enrichment alert.
    pub fn alert_score(&self) -> Option<u8> {
        let score = &self.alert()["data"]["abuseipdb"]["abuse_confidence_score"];
        let value = score
            .as_u64()
            .or_else(|| score.as_str()?.trim().parse().ok())?;
        u8::try_from(value).ok().filter(|s| *s <= 100)
    }

    /// `wazuh rule <id>: <description>`, for the block's reason.
    pub fn rule_summary(&self) -> String {
        let rule = &self.alert()["rule"];
        let id = rule["id"].as_str().unwrap_or("?");
        match rule["description"].as_str() {
            Some(d) => format!("wazuh rule {id}: {d}"),
            None => format!("wazuh rule {id}"),
        }
    }
}

/// The handshake line for `add`: all four members, so execd keys its timeout list by
/// `<program>-<address>` rather than by the program alone.
pub fn check_keys_message(program: &str, keys: &[String]) -> String {
    // Written in firewall-drop's member order (serde_json's maps would sort the keys).
    format!(
        r#"{{"version":1,"origin":{{"name":{},"module":"active-response"}},"command":"check_keys","parameters":{{"keys":{}}}}}"#,
        json!(program),
        json!(keys)
    )
}

/// execd's answer to `check_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Continue,
    Abort,
    /// Anything else (including a line that is not JSON), kept short for the log.
    Other(String),
}

pub fn parse_reply(line: &str) -> Reply {
    let command = serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["command"].as_str().map(str::to_string));
    match command.as_deref() {
        Some("continue") => Reply::Continue,
        Some("abort") => Reply::Abort,
        _ => Reply::Other(line.chars().take(80).collect()),
    }
}

/// Settings a message may carry in `extra_args`, on top of the command's own flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraArgs {
    pub min_score: Option<u8>,
    /// `--for DURATION`: how long the kernel keeps the block.
    pub duration: Option<String>,
    /// `--on-lookup-failure block|skip`.
    pub on_lookup_failure: Option<String>,
}

/// Reads `--min-score N`, `--min-score=N`, `min_score=N`, `--for D`, `--for=D` and
/// `--on-lookup-failure X` from `extra_args`; other words are ignored (they may be meant for
/// another program sharing the command), malformed values are errors.
pub fn parse_extra_args(args: &[String]) -> Result<ExtraArgs, ArError> {
    let mut out = ExtraArgs::default();
    let mut words = args.iter().map(String::as_str).filter(|w| !w.is_empty());
    while let Some(word) = words.next() {
        let (key, inline) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let key = key.trim_start_matches('-').replace('_', "-");
        if !matches!(key.as_str(), "min-score" | "for" | "on-lookup-failure") {
            continue;
        }
        let value = inline
            .or_else(|| words.next())
            .ok_or_else(|| ArError::BadExtraArg(word.to_string(), "missing value"))?;
        match key.as_str() {
            "min-score" => {
                let score = value.parse::<u8>().ok().filter(|s| *s <= 100);
                let score = score
                    .ok_or_else(|| ArError::BadExtraArg(value.to_string(), "not a score 0-100"))?;
                out.min_score = Some(score);
            }
            "for" => out.duration = Some(value.to_string()),
            _ => out.on_lookup_failure = Some(value.to_string()),
        }
    }
    Ok(out)
}

/// One `active-responses.log` line (without the newline): local time, as Wazuh writes it.
pub fn log_line(time: &jiff::ZonedDateTime, program: &str, message: &str) -> String {
    let message: String = message
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!(
        "{} active-response/bin/{program}: {message}",
        time.strftime("%Y/%m/%d %H:%M:%S")
    )
}

/// Appends lines to `<home>/logs/active-responses.log`, or to stderr when there is no home
/// (execd sends stderr to /dev/null; a person running the command by hand sees it).
#[derive(Debug, Clone)]
pub struct ArLog {
    path: Option<PathBuf>,
    program: String,
}

impl ArLog {
    pub fn new(home: Option<&Path>, program: &str) -> Self {
        ArLog {
            path: home.map(|h| h.join("logs/active-responses.log")),
            program: program.to_string(),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Logs one line; a log that cannot be written falls back to stderr, never fails the run.
    pub fn log(&self, message: &str) {
        let line = log_line(&super::log::local_now(), &self.program, message);
        let written = self
            .path
            .as_ref()
            .is_some_and(|path| append(path, &line).is_ok());
        if !written {
            eprintln!("{line}");
        }
    }
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o660)
        .open(path)?;
    file.write_all(format!("{line}\n").as_bytes())
}

/// The name of the `<command>` (and of the program in `active-response/bin/`).
pub const COMMAND_NAME: &str = "repute-block";

/// The timeout `repute wazuh install --active-response` gives the block by default.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// The enrichment rules of the shipped ruleset worth a block: the final rules of the events
/// for an abuse confidence of 50 or more, 110113 (50-89, "likely abusive") and 110114
/// (90-100, "known attacker").
///
/// Selected by id rather than by the group `abuseipdb_positive` they share with 110112 on
/// purpose: 110112 is where the events for a confidence of 1-49 end, and a handful of reports
/// against a shared address (a cloud NAT, a VPN exit) is too little to drop its traffic. The
/// grading stays in one place, the ruleset; `--min-score N` in `<extra_args>` can raise the
/// bar further (the command reads the score from the alert, without a lookup). Checked against
/// `repute_abuseipdb_rules.xml` by a test.
pub const DEFAULT_BLOCK_RULES: &[u32] = &[110113, 110114];

/// The `<command>` block (two-space indentation, for a child of `<ossec_config>`): the program
/// with `timeout_allowed yes`, so that analysisd honours the `<active-response>` timeout. The
/// kernel timeout (`--for` in `extra_args`) equals the Wazuh timeout, so the block ends even
/// if execd dies before running its `delete`; with `<repeated_offenders>`, raise `--for` to
/// the longest step. `extra` is appended to `extra_args` (e.g. `--min-score 75`).
pub fn command_block(timeout_secs: u64, extra: &str) -> String {
    let extra = extra.trim();
    let sep = if extra.is_empty() { "" } else { " " };
    format!(
        "  <command>
    <name>{COMMAND_NAME}</name>
    <executable>{COMMAND_NAME}</executable>
    <extra_args>--for {timeout_secs}s{sep}{extra}</extra_args>
    <timeout_allowed>yes</timeout_allowed>
  </command>
"
    )
}

/// The `<active-response>` block (two-space indentation) that runs the command on `rules_id`
/// for `timeout_secs`.
///
/// `location` is `local`: the program runs where the alert's agent is. Enrichment events for
/// an agent's log are sent in the agent form (`1:[id] (name) ip->abuseipdb:`), so analysisd
/// gives them that agent, and the block lands on the attacked agent (which then needs
/// `repute-block` in its own `active-response/bin`, or execd there logs that it is missing);
/// events of the manager's own logs (agent 000) block on the manager.
pub fn active_response_block(timeout_secs: u64, rules_id: &[u32]) -> String {
    let rules: Vec<String> = rules_id.iter().map(u32::to_string).collect();
    format!(
        "  <active-response>
    <disabled>no</disabled>
    <command>{COMMAND_NAME}</command>
    <location>local</location>
    <rules_id>{}</rules_id>
    <timeout>{timeout_secs}</timeout>
  </active-response>
",
        rules.join(",")
    )
}

/// Both blocks in an `<ossec_config>` of their own, as a user would paste them.
pub fn ossec_conf_blocks(timeout_secs: u64, rules_id: &[u32]) -> String {
    format!(
        "<ossec_config>\n{}\n{}</ossec_config>\n",
        command_block(timeout_secs, ""),
        active_response_block(timeout_secs, rules_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD: &str = r#"{"version":1,"origin":{"name":"node01","module":"wazuh-execd"},"command":"add","parameters":{"extra_args":["--min-score","50"],"alert":{"rule":{"id":"5760","description":"sshd: authentication failed."},"data":{"srcip":"45.155.205.233","srcport":"36679"}},"program":"active-response/bin/repute-block"}}"#;

    fn parse(line: &str) -> Result<Message, ArError> {
        Message::parse(line)
    }

    #[test]
    fn a_full_add_message_is_understood() -> Result<(), ArError> {
        let m = parse(ADD)?;
        assert_eq!(m.command, Command::Add);
        assert_eq!(m.srcip()?.to_string(), "45.155.205.233");
        assert_eq!(m.extra_args(), vec!["--min-score", "50"]);
        assert_eq!(
            m.rule_summary(),
            "wazuh rule 5760: sshd: authentication failed."
        );
        assert_eq!(m.alert_score(), None);
        Ok(())
    }

    #[test]
    fn each_missing_member_is_named() {
        let cases = [
            (
                r#"{"origin":{},"command":"add","parameters":{}}"#,
                "`version` is missing",
            ),
            (
                r#"{"version":"1","origin":{},"command":"add","parameters":{}}"#,
                "`version` is missing",
            ),
            (
                r#"{"version":1,"command":"add","parameters":{}}"#,
                "`origin` is missing",
            ),
            (
                r#"{"version":1,"origin":{},"parameters":{}}"#,
                "`command` is missing",
            ),
            (
                r#"{"version":1,"origin":{},"command":"add"}"#,
                "`parameters` is missing",
            ),
            (
                r#"{"version":1,"origin":{},"command":"add","parameters":[]}"#,
                "`parameters` is missing",
            ),
            (r#"[1,2]"#, "not a JSON object"),
        ];
        for (line, expected) in cases {
            let text = parse(line).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains(expected), "{line}: {text}");
        }
        let text = parse(r#"{"version":1,"origin":{},"command":"restart","parameters":{}}"#)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            text.as_deref(),
            Some("invalid command \"restart\" (expected add or delete)")
        );
        assert!(matches!(parse("{not json"), Err(ArError::Json(_))));
    }

    #[test]
    fn address_sources_in_firewall_drop_order_then_enrichment() -> Result<(), ArError> {
        let with_data = |data: &str| {
            format!(
                r#"{{"version":1,"origin":{{}},"command":"delete","parameters":{{"alert":{{"data":{data}}}}}}}"#
            )
        };
        let win = with_data(r#"{"srcip":"1.1.1.1","win":{"eventdata":{"ipAddress":"8.8.8.8"}}}"#);
        assert_eq!(parse(&win)?.srcip()?.to_string(), "8.8.8.8");
        let sysmon = with_data(r#"{"win":{"eventdata":{"destinationIp":"9.9.9.9"}}}"#);
        assert_eq!(parse(&sysmon)?.srcip()?.to_string(), "9.9.9.9");
        let enrich = with_data(
            r#"{"abuseipdb":{"source":{"srcip":"2a06:4880::5"},"abuse_confidence_score":"87"}}"#,
        );
        let m = parse(&enrich)?;
        assert_eq!(m.srcip()?.to_string(), "2a06:4880::5");
        assert_eq!(m.alert_score(), Some(87));
        let wazuh_own =
            with_data(r#"{"abuseipdb":{"source":{"ip":"4.4.4.4"},"abuse_confidence_score":300}}"#);
        let m = parse(&wazuh_own)?;
        assert_eq!(m.srcip()?.to_string(), "4.4.4.4");
        assert_eq!(m.alert_score(), None);
        assert!(matches!(
            parse(&with_data("{}"))?.srcip(),
            Err(ArError::NoAddress)
        ));
        for bad in [
            "host.example.com",
            "1.2.3.4; rm -rf /",
            "$(reboot)",
            "1.2.3.4.5",
        ] {
            let line = with_data(&format!(r#"{{"srcip":{}}}"#, serde_json::json!(bad)));
            assert!(
                matches!(parse(&line)?.srcip(), Err(ArError::BadAddress(_))),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn check_keys_has_all_four_members() -> Result<(), serde_json::Error> {
        let line = check_keys_message("repute-block", &["45.155.205.233".to_string()]);
        assert_eq!(
            line,
            r#"{"version":1,"origin":{"name":"repute-block","module":"active-response"},"command":"check_keys","parameters":{"keys":["45.155.205.233"]}}"#
        );
        let v: Value = serde_json::from_str(&line)?;
        assert!(v["version"].is_number() && v["origin"].is_object());
        Ok(())
    }

    #[test]
    fn replies() {
        let reply = |c: &str| {
            parse_reply(&format!(
                r#"{{"version":1,"origin":{{"name":"","module":"wazuh-execd"}},"command":"{c}","parameters":{{}}}}"#
            ))
        };
        assert_eq!(reply("continue"), Reply::Continue);
        assert_eq!(reply("abort"), Reply::Abort);
        assert!(matches!(reply("maybe"), Reply::Other(_)));
        assert_eq!(parse_reply("garbage"), Reply::Other("garbage".into()));
    }

    #[test]
    fn bounded_lines() -> Result<(), ArError> {
        let mut input = std::io::Cursor::new(b"first\r\nsecond".to_vec());
        assert_eq!(
            read_line_bounded(&mut input, 100)?.as_deref(),
            Some("first")
        );
        assert_eq!(
            read_line_bounded(&mut input, 100)?.as_deref(),
            Some("second")
        );
        assert_eq!(read_line_bounded(&mut input, 100)?, None);
        let mut long = std::io::Cursor::new(vec![b'x'; 101]);
        assert!(matches!(
            read_line_bounded(&mut long, 100),
            Err(ArError::TooLong)
        ));
        let mut exact = std::io::Cursor::new([vec![b'x'; 100], b"\n".to_vec()].concat());
        assert_eq!(
            read_line_bounded(&mut exact, 100)?.map(|l| l.len()),
            Some(100)
        );
        let mut binary = std::io::Cursor::new(vec![0xff, 0xfe, b'\n']);
        assert!(matches!(
            read_line_bounded(&mut binary, 100),
            Err(ArError::NotUtf8)
        ));
        Ok(())
    }

    #[test]
    fn extra_args_forms() -> Result<(), ArError> {
        let args = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let parsed = parse_extra_args(&args(&[
            "--min-score",
            "40",
            "--for=2h",
            "other",
            "on_lookup_failure=skip",
        ]))?;
        assert_eq!(
            parsed,
            ExtraArgs {
                min_score: Some(40),
                duration: Some("2h".into()),
                on_lookup_failure: Some("skip".into()),
            }
        );
        assert_eq!(
            parse_extra_args(&args(&["min_score=75"]))?.min_score,
            Some(75)
        );
        assert!(parse_extra_args(&args(&["--min-score"])).is_err());
        assert!(parse_extra_args(&args(&["--min-score", "101"])).is_err());
        assert!(parse_extra_args(&args(&["min_score=abc"])).is_err());
        assert_eq!(parse_extra_args(&[])?, ExtraArgs::default());
        Ok(())
    }

    #[test]
    fn log_lines_in_wazuh_format() -> Result<(), jiff::Error> {
        let time: jiff::ZonedDateTime = "2026-11-28T09:05:03[UTC]".parse()?;
        assert_eq!(
            log_line(&time, "repute-block", "Starting\nagain"),
            "2026/11/28 09:05:03 active-response/bin/repute-block: Starting again"
        );
        Ok(())
    }

    #[test]
    fn ossec_conf_blocks_tie_rules_and_timeout() -> Result<(), String> {
        let xml = ossec_conf_blocks(600, &[100004, 100005]);
        let roots = crate::wazuh::xml::parse(&xml)?;
        let [root] = roots.as_slice() else {
            return Err(format!("one root expected: {xml}"));
        };
        let text = |parent: &str, child: &str| {
            root.child(parent)
                .and_then(|p| p.child(child))
                .map(|c| c.text.clone())
        };
        assert_eq!(text("command", "name").as_deref(), Some("repute-block"));
        assert_eq!(
            text("command", "executable").as_deref(),
            Some("repute-block")
        );
        assert_eq!(text("command", "timeout_allowed").as_deref(), Some("yes"));
        assert_eq!(text("command", "extra_args").as_deref(), Some("--for 600s"));
        assert_eq!(
            text("active-response", "command").as_deref(),
            Some("repute-block")
        );
        assert_eq!(
            text("active-response", "location").as_deref(),
            Some("local")
        );
        assert_eq!(
            text("active-response", "rules_id").as_deref(),
            Some("100004,100005")
        );
        assert_eq!(text("active-response", "timeout").as_deref(), Some("600"));
        assert!(
            command_block(60, " --min-score 75 ")
                .contains("<extra_args>--for 60s --min-score 75</extra_args>")
        );
        Ok(())
    }

    /// The rules of [`DEFAULT_BLOCK_RULES`] exist in the shipped ruleset, are positive
    /// enrichment answers (children of 110112, group `abuseipdb_positive`), and together are
    /// every final rule for a confidence of 50 or more: the other positive rule, 110112, is
    /// their parent, where only 1-49 ends.
    #[test]
    fn default_block_rules_are_the_ruleset_high_confidence_answers() -> Result<(), String> {
        let text = crate::wazuh::ruleset::RULE_FILES[0].text;
        let roots = crate::wazuh::xml::parse(text)?;
        let rules: Vec<&crate::wazuh::xml::Element> = roots
            .iter()
            .flat_map(|r| r.walk())
            .filter(|e| e.name == "rule")
            .collect();
        let id_of =
            |r: &crate::wazuh::xml::Element| r.attr("id").and_then(|i| i.parse::<u32>().ok());
        let groups_of = |r: &crate::wazuh::xml::Element| {
            r.child("group").map(|g| g.text.clone()).unwrap_or_default()
        };
        let positive: Vec<u32> = rules
            .iter()
            .filter(|r| groups_of(r).split(',').any(|g| g == "abuseipdb_positive"))
            .filter_map(|r| id_of(r))
            .collect();
        assert_eq!(positive, [110112, 110113, 110114]);
        for id in DEFAULT_BLOCK_RULES {
            let rule = rules
                .iter()
                .find(|r| id_of(r) == Some(*id))
                .ok_or(format!("rule {id} is not in the ruleset"))?;
            assert!(positive.contains(id));
            assert_eq!(
                rule.child("if_sid").map(|s| s.text.as_str()),
                Some("110112")
            );
            let score = rule
                .children
                .iter()
                .find(|c| c.attr("name") == Some("abuseipdb.abuse_confidence_score"))
                .map(|c| c.text.as_str());
            // The ranges the module documentation promises, as the ruleset writes them.
            let expected = if *id == 110113 {
                "^[5-8][0-9]$"
            } else {
                "^(9[0-9]|100)$"
            };
            assert_eq!(score, Some(expected), "rule {id}");
        }
        Ok(())
    }
}
