//! Every command judges and reads addresses the same way: one table of tricky addresses through
//! `repute check`, `repute block add`'s safety check and `repute scan`'s `public` flag, all
//! agreeing with `repute::addr::public`; and the same bad or odd inputs given to `check` and
//! `block` are read the same way, or refused with the same one-line error.
//!
//! `repute block` runs with `PATH` pointing at an empty directory and the nftables backend
//! named: a refusal comes before any firewall call, and an address that passes the checks
//! fails at "cannot run nft", so the host's firewall is never touched and no root is needed.

mod support;

use std::net::IpAddr;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use repute::addr::{self, AddrClass};
use serde_json::Value;
use support::mock_abuseipdb::MockAbuseIpdb;

/// (address as a person or a log writes it, its class).
const TRICKY: &[(&str, AddrClass)] = &[
    ("::ffff:10.0.0.1", AddrClass::Private),
    ("::ffff:192.168.1.1", AddrClass::Private),
    ("::ffff:127.0.0.1", AddrClass::Loopback),
    ("::ffff:45.155.205.233", AddrClass::Public),
    ("64:ff9b::a00:1", AddrClass::Private), // NAT64 of 10.0.0.1
    ("64:ff9b::c0a8:101", AddrClass::Private), // NAT64 of 192.168.1.1
    ("64:ff9b::2d9b:cde9", AddrClass::Public), // NAT64 of 45.155.205.233
    ("2002:c0a8:101::1", AddrClass::Private), // 6to4 of 192.168.1.1
    ("2002:2d9b:cde9::1", AddrClass::Public), // 6to4 of 45.155.205.233
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", AddrClass::Special), // Teredo
    ("192.0.2.1", AddrClass::Documentation),
    ("198.51.100.7", AddrClass::Documentation),
    ("203.0.113.9", AddrClass::Documentation),
    ("2001:db8::1", AddrClass::Documentation),
    ("3fff::1", AddrClass::Documentation),
    ("100.64.0.1", AddrClass::Shared), // CGNAT
    ("198.18.0.1", AddrClass::Benchmarking),
    ("2001:2::1", AddrClass::Benchmarking),
    ("0.0.0.0", AddrClass::Unspecified),
    ("::", AddrClass::Unspecified),
    ("255.255.255.255", AddrClass::Broadcast),
    ("169.254.1.1", AddrClass::LinkLocal),
    ("fe80::1%eth0", AddrClass::LinkLocal),
    ("192.0.0.9", AddrClass::Public), // PCP anycast, global inside 192.0.0.0/24
    ("2a06:4880::5", AddrClass::Public),
];

fn ip(text: &str) -> IpAddr {
    addr::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("empty-path")).expect("mkdir");
        std::fs::write(
            dir.path().join("repute.toml"),
            "[block]\nbackend = \"nftables\"\ntable = \"repute_agree\"\n",
        )
        .expect("config");
        Scratch { dir }
    }

    /// `repute args…` with its own config and store, no API key, no SSH session.
    fn repute(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("repute").expect("binary");
        for var in [
            "SSH_CLIENT",
            "SSH_CONNECTION",
            "ABUSEIPDB_API_KEY",
            "ABUSEIPDB_API_KEY_FILE",
            "ABUSEIPDB_API_URL",
            "REPUTE_CACHE",
            "REPUTE_STORE",
            "WAZUH_HOME",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("REPUTE_STATE_DIR", self.dir.path().join("state"))
            .env("REPUTE_CONFIG", self.dir.path().join("repute.toml"))
            .args(args);
        cmd
    }

    /// `repute block args…` where no firewall tool can be found.
    fn block(&self, args: &[&str]) -> Output {
        let mut full = vec!["block"];
        full.extend_from_slice(args);
        self.repute(&full)
            .env("PATH", self.dir.path().join("empty-path"))
            .output()
            .expect("run block")
    }

    fn check(&self, mock: &MockAbuseIpdb, args: &[&str]) -> Output {
        let mut full = vec!["check", "--format", "json", "--cache", "none"];
        full.extend_from_slice(args);
        self.repute(&full)
            .env("ABUSEIPDB_API_KEY", "agreement-test-key")
            .env("ABUSEIPDB_API_URL", mock.base_url())
            .output()
            .expect("run check")
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_table_agrees_with_addr() {
    for &(text, class) in TRICKY {
        assert_eq!(addr::classify(ip(text)), class, "{text}");
        assert_eq!(addr::public(ip(text)).is_ok(), class.is_public(), "{text}");
    }
}

#[test]
fn check_skips_exactly_the_non_public_addresses() {
    let mock = MockAbuseIpdb::start();
    let s = Scratch::new();
    let args: Vec<&str> = TRICKY.iter().map(|(t, _)| *t).collect();
    let out = s.check(&mock, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), TRICKY.len());
    for (line, &(text, class)) in lines.iter().zip(TRICKY) {
        assert_eq!(line["ip"], ip(text).to_string(), "{text}: {line}");
        assert_eq!(line["class"], class.as_str(), "{text}: {line}");
        let looked_up = line["source"] == "api";
        assert_eq!(looked_up, class.is_public(), "{text}: {line}");
        assert_eq!(
            mock.checks_for(&ip(text).to_string()) > 0,
            class.is_public(),
            "{text}: asked the provider?"
        );
    }
}

#[test]
fn block_refuses_exactly_the_non_public_addresses() {
    let s = Scratch::new();
    for &(text, class) in TRICKY {
        let out = s.block(&["add", text, "--for", "1m"]);
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{text}: {err}");
        if class.is_public() {
            // Past every check, stopped only by the missing tool.
            assert_eq!(out.status.code(), Some(2), "{text}: {err}");
            assert!(err.contains("cannot run nft"), "{text}: {err}");
        } else {
            let shown = ip(text);
            let why = format!("refused to block {shown}: not a public address ({class})");
            assert_eq!(out.status.code(), Some(1), "{text}: {err}");
            assert!(err.contains(&why), "{text}: {err}");
        }
    }
}

/// The sshd line a log would hold for `ip` (sshd writes a link-local peer with its zone).
fn sshd_line(n: usize, text: &str) -> String {
    format!(
        "Nov 30 09:00:{:02} web1 sshd[{}]: Failed password for root from {text} port 4{n:04} ssh2",
        n % 60,
        1000 + n
    )
}

#[test]
fn scan_marks_exactly_the_public_addresses_public() {
    let s = Scratch::new();
    let log = s.dir.path().join("auth.log");
    let lines: Vec<String> = TRICKY
        .iter()
        .enumerate()
        .map(|(n, (text, _))| sshd_line(n, text))
        .collect();
    std::fs::write(&log, lines.join("\n") + "\n").expect("log");
    let out = scan_jsonl(&s, &log);
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(events.len(), TRICKY.len(), "one event per line");
    for (event, &(text, class)) in events.iter().zip(TRICKY) {
        assert_eq!(event["srcip"], ip(text).to_string(), "{text}: {event}");
        assert_eq!(event["public"], class.is_public(), "{text}: {event}");
    }
}

fn scan_jsonl(s: &Scratch, log: &Path) -> Output {
    s.repute(&["scan", "--format", "jsonl"])
        .arg(log)
        .output()
        .expect("run scan")
}

/// Inputs `check` and `block` must read alike: (input, Some(address) or None for refused).
const ODD_INPUTS: &[(&str, Option<&str>)] = &[
    (" 45.155.205.233 ", Some("45.155.205.233")),
    ("[2a06:4880::5]", Some("2a06:4880::5")),
    ("::ffff:45.155.205.233", Some("45.155.205.233")),
    ("fe80::1%eth0", Some("fe80::1")),
    ("010.0.0.1", None),
    ("45.155.205.256", None),
    ("45.155.205", None),
    ("host.example.com", None),
    ("45.155.205.233:22", None),
    ("[2a06:4880::5", None),
    ("45.155.205.233%eth0", None),
    ("fe80::1%", None),
    ("", None),
    ("1.2.3.4; rm -rf /", None),
    ("45.155.205.233\u{1b}[31m", None),
];

#[test]
fn check_and_block_read_the_same_inputs_the_same_way() {
    let mock = MockAbuseIpdb::start();
    let s = Scratch::new();
    for &(input, wanted) in ODD_INPUTS {
        let check = s.check(&mock, &[input]);
        let block_add = s.block(&["add", input, "--for", "1m"]);
        let block_del = s.block(&["del", input]);
        match wanted {
            Some(address) => {
                assert!(
                    check.status.success(),
                    "check {input:?}: {}",
                    stderr(&check)
                );
                let line: Value = serde_json::from_slice(&check.stdout).expect("one JSON line");
                assert_eq!(line["ip"], address, "check {input:?}");
                // block read it too: what stops it is a check or the missing tool, never
                // the parser.
                for out in [&block_add, &block_del] {
                    let err = stderr(out);
                    assert!(!err.contains("is not an IPv4 or IPv6"), "{input:?}: {err}");
                }
            }
            None => {
                let expected = addr::parse(input).expect_err("refused").to_string();
                for (what, out) in [
                    ("check", &check),
                    ("block add", &block_add),
                    ("block del", &block_del),
                ] {
                    let err = stderr(out);
                    assert_eq!(out.status.code(), Some(2), "{what} {input:?}: {err}");
                    assert_eq!(err, format!("repute: {expected}\n"), "{what} {input:?}");
                    assert!(out.stdout.is_empty(), "{what} {input:?}");
                }
            }
        }
    }
    let public_inputs = ODD_INPUTS
        .iter()
        .filter(|(_, wanted)| wanted.is_some_and(|a| addr::is_public(ip(a))))
        .count();
    assert_eq!(
        mock.requests().len(),
        public_inputs,
        "only the public inputs were looked up"
    );
}

#[test]
fn refusals_say_why() {
    let why = |input: &str| addr::parse(input).expect_err("refused").to_string();
    assert!(
        why("010.0.0.1").contains("leading zero"),
        "{}",
        why("010.0.0.1")
    );
    assert!(why("host.example.com").contains("host name"));
    assert!(why("45.155.205.233:22").contains("port"));
    assert!(why("[2a06:4880::5").contains("`[`"));
    assert!(why("45.155.205.233%eth0").contains("IPv6"));
    assert!(why("").contains("empty"));
    // The input is shown escaped: a terminal escape in it is printed, not obeyed.
    let shown = why("45.155.205.233\u{1b}[31m");
    assert!(!shown.contains('\u{1b}'), "{shown}");
    assert!(shown.contains("\\u{1b}[31m"), "{shown}");
}
