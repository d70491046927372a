//! `repute scan` on journald output: `journalctl -o json` and `-o export` lines recognised
//! without a flag and judged by journald's trusted fields, a real journal file written by
//! `systemd-journal-remote` and read back by `journalctl`, bare messages only with
//! `--untagged-sshd`, and zone-less stamps read in `--timezone`.

mod need;

use std::io::Write;
use std::process::{Command as StdCommand, Stdio};

use need::Need;
use serde_json::Value;

fn repute() -> assert_cmd::Command {
    assert_cmd::cargo::cargo_bin_cmd!("repute")
}

/// Public addresses nobody could be framed with (AS112).
const ATTACKER: &str = "192.31.196.23";
const FRAMED: &str = "192.175.48.9";

/// One journal entry as `journalctl -o json` prints it.
fn json_entry(comm: &str, exe: &str, identifier: &str, pid: u32, micros: u64, msg: &str) -> String {
    serde_json::json!({
        "__CURSOR": format!("s=1;i={pid}"),
        "__REALTIME_TIMESTAMP": micros.to_string(),
        "_HOSTNAME": "srv01",
        "_COMM": comm,
        "_EXE": exe,
        "_PID": pid.to_string(),
        "_SYSTEMD_UNIT": "ssh.service",
        "SYSLOG_IDENTIFIER": identifier,
        "MESSAGE": msg,
    })
    .to_string()
}

fn scan_jsonl(args: &[&str], stdin: &str) -> Vec<Value> {
    let out = repute()
        .args(["scan", "--format", "jsonl"])
        .args(args)
        .write_stdin(stdin.to_owned())
        .output()
        .expect("run repute");
    assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// 2025-11-28T10:00:00Z in microseconds.
const T0: u64 = 1_764_324_000_000_000;

#[test]
fn journal_json_lines_are_judged_by_trusted_fields() {
    let input = [
        json_entry(
            "sshd",
            "/usr/sbin/sshd",
            "sshd",
            812,
            T0,
            &format!("Failed password for root from {ATTACKER} port 4242 ssh2"),
        ),
        // A local user's `logger -t sshd …`: journald records the real sender.
        json_entry(
            "logger",
            "/usr/bin/logger",
            "sshd",
            813,
            T0 + 1,
            &format!("Failed password for root from {FRAMED} port 22 ssh2"),
        ),
        // OpenSSH 9.8+ logs pre-auth lines from sshd-session.
        json_entry(
            "sshd-session",
            "/usr/lib/openssh/sshd-session",
            "sshd-session",
            814,
            T0 + 2_000_000,
            &format!("Invalid user \"admin\" from {ATTACKER} port 4243"),
        ),
    ]
    .join("\n");
    let events = scan_jsonl(&["-"], &input);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e["srcip"] == ATTACKER), "{events:?}");
    assert_eq!(events[0]["time"], "2025-11-28T10:00:00Z");
    assert_eq!(events[0]["pid"], 812);
    assert_eq!(events[0]["host"], "srv01");
    assert_eq!(events[1]["user"], "\"admin\"");
    assert_eq!(events[1]["time"], "2025-11-28T10:00:02Z");
}

#[test]
fn journal_export_entries_are_judged_by_trusted_fields() {
    let entry = |comm: &str, pid: u32, msg: &str| {
        format!(
            "__CURSOR=s=1;i={pid}\n__REALTIME_TIMESTAMP={T0}\n_HOSTNAME=srv01\n_COMM={comm}\n\
             _PID={pid}\nSYSLOG_IDENTIFIER=sshd\nMESSAGE={msg}\n\n"
        )
    };
    let input = entry(
        "sshd",
        9,
        &format!("Failed password for root from {ATTACKER} port 1 ssh2"),
    ) + &entry(
        "logger",
        10,
        &format!("Failed password for root from {FRAMED} port 1 ssh2"),
    );
    let events = scan_jsonl(&["-"], &input);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["srcip"], ATTACKER);
    assert_eq!(events[0]["time"], "2025-11-28T10:00:00Z");
}

#[test]
fn bare_messages_only_with_the_flag() {
    let input = format!(
        "Failed password for root from {ATTACKER} port 4242 ssh2\n\
         2018-06-26 13:22:02.108781500 Invalid user x from {ATTACKER} port 1\n"
    );
    assert!(scan_jsonl(&["-"], &input).is_empty());
    let events = scan_jsonl(&["--untagged-sshd", "--timezone", "UTC", "-"], &input);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["time"], "2018-06-26T13:22:02.1087815Z");
}

#[test]
fn zone_less_stamps_are_read_in_the_given_zone() {
    let input = format!(
        "Jul  1 10:00:00 srv01 sshd[5]: Failed password for root from {ATTACKER} port 1 ssh2\n"
    );
    let paris = scan_jsonl(&["--timezone", "Europe/Paris", "-"], &input);
    let utc = scan_jsonl(&["--timezone", "UTC", "-"], &input);
    let plus3 = scan_jsonl(&["--timezone", "+03:00", "-"], &input);
    let time = |e: &[Value]| e[0]["time"].as_str().unwrap().to_owned();
    assert!(time(&paris).ends_with("-07-01T08:00:00Z"), "{paris:?}");
    assert!(time(&utc).ends_with("-07-01T10:00:00Z"), "{utc:?}");
    assert!(time(&plus3).ends_with("-07-01T07:00:00Z"), "{plus3:?}");
    // TZ is this host's zone when no flag says otherwise.
    let out = repute()
        .env("TZ", "Asia/Tokyo")
        .args(["scan", "--format", "jsonl", "-"])
        .write_stdin(input.clone())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("-07-01T01:00:00Z"), "{text}");
    // A zone that does not exist is a one-line error naming it.
    let out = repute()
        .args(["scan", "--timezone", "Mars/Olympus", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Mars/Olympus"), "{err}");
}

/// The real thing: export-format entries written into a journal file by
/// systemd-journal-remote, read back with `journalctl --file … -o json`, piped into scan.
#[test]
fn a_real_journal_read_back_by_journalctl() {
    const REMOTE: &str = "/lib/systemd/systemd-journal-remote";
    if !need::all(&[Need::Tool(REMOTE), Need::Tool("journalctl")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("remote.journal");
    let entry = |comm: &str, exe: &str, pid: u32, micros: u64, msg: &str| {
        format!(
            "__REALTIME_TIMESTAMP={micros}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _HOSTNAME=srv01\n_COMM={comm}\n_EXE={exe}\n_PID={pid}\n_SYSTEMD_UNIT=ssh.service\n\
             SYSLOG_IDENTIFIER=sshd\nPRIORITY=6\nMESSAGE={msg}\n\n",
            micros / 1000
        )
    };
    let export = entry(
        "sshd",
        "/usr/sbin/sshd",
        700,
        T0,
        &format!("Invalid user oracle from {ATTACKER} port 50000"),
    ) + &entry(
        "sshd",
        "/usr/sbin/sshd",
        700,
        T0 + 2_000_000,
        &format!("Failed password for invalid user oracle from {ATTACKER} port 50000 ssh2"),
    ) + &entry(
        "logger",
        "/usr/bin/logger",
        701,
        T0 + 3_000_000,
        &format!("Failed password for root from {FRAMED} port 22 ssh2"),
    );
    let mut remote = StdCommand::new(REMOTE)
        .arg("-o")
        .arg(&file)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start systemd-journal-remote");
    remote
        .stdin
        .take()
        .unwrap()
        .write_all(export.as_bytes())
        .unwrap();
    let done = remote.wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");
    let json = StdCommand::new("journalctl")
        .arg("--file")
        .arg(&file)
        .args(["-o", "json", "--no-pager"])
        .output()
        .expect("run journalctl");
    assert!(json.status.success(), "{json:?}");
    let text = String::from_utf8(json.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    let events = scan_jsonl(&["-"], &text);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e["srcip"] == ATTACKER), "{events:?}");
    assert_eq!(events[0]["time"], "2025-11-28T10:00:00Z");
    assert_eq!(events[1]["pid"], 700);
    // One try of an unknown user: one attempt.
    let attempts: u64 = events.iter().map(|e| e["attempts"].as_u64().unwrap()).sum();
    assert_eq!(attempts, 1);
}
