//! End-to-end tests of `repute scan`: the binary on real files, gzip files and stdin.
//!
//! The fixtures are written here, line by line, so each test says what it feeds in. Speed
//! and memory bounds are measured by `benches/scan.rs`, not asserted here.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use serde_json::Value;

fn repute() -> Command {
    assert_cmd::cargo::cargo_bin_cmd!("repute")
}

/// A public address that belongs to no one who could be framed: AS112 (192.31.196.0/24)
/// is globally reachable in the IANA registry.
const PUBLIC_A: &str = "192.31.196.23";
const PUBLIC_B: &str = "192.175.48.9";
const PRIVATE: &str = "10.20.30.40";

fn failed_password(pid: u32, user: &str, ip: &str, port: u16) -> String {
    format!(
        "Mar  1 10:00:{:02} srv01 sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2",
        pid % 60
    )
}

fn invalid_user(pid: u32, user: &str, ip: &str, port: u16) -> String {
    format!(
        "Mar  1 10:01:{:02} srv01 sshd[{pid}]: Invalid user {user} from {ip} port {port}",
        pid % 60
    )
}

/// A small log: noise, failures from two public and one private address, an untimed line.
fn sample_log() -> String {
    [
        "Mar  1 09:59:00 srv01 CRON[100]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)".to_string(),
        failed_password(201, "root", PUBLIC_A, 50001),
        invalid_user(202, "admin", PUBLIC_A, 50002),
        "Mar  1 10:02:00 srv01 sudo[300]: pam_unix(sudo:session): session closed for user root".to_string(),
        failed_password(203, "root", PRIVATE, 50003),
        invalid_user(204, "oracle", PUBLIC_A, 50004),
        failed_password(205, "git", PUBLIC_B, 50005),
        // No timestamp at all (as journal exports and fail2ban's journal tests have).
        format!("srv01 sshd[206]: Failed password for invalid user test from {PUBLIC_B} port 50006 ssh2"),
        "Mar  1 10:03:00 srv01 backup-agent[400]: Failed password for root from 192.31.196.99 port 22 ssh2".to_string(),
    ]
    .join("\n")
        + "\n"
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write fixture");
    path
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn jsonl(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8(stdout.to_vec())
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn scan_jsonl(args: &[&str]) -> (Vec<Value>, i32, String) {
    let out = repute()
        .arg("scan")
        .arg("--format")
        .arg("jsonl")
        .args(args)
        .output()
        .unwrap();
    (
        jsonl(&out.stdout),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn jsonl_follows_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), "auth.log", sample_log());
    let (events, code, stderr) = scan_jsonl(&[log.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let fields = [
        "file",
        "line",
        "time",
        "host",
        "pid",
        "kind",
        "outcome",
        "srcip",
        "srcport",
        "user",
        "public",
        "wazuh_rule",
        "attempts",
    ];
    for event in &events {
        let object = event.as_object().expect("an object per line");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = fields.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{event}");
        assert_eq!(event["file"], log.to_str().unwrap());
        assert!(event["line"].as_u64().is_some_and(|n| n >= 1));
        assert!(event["time"].is_null() || event["time"].is_string());
        assert!(event["host"].is_null() || event["host"].is_string());
        assert!(event["pid"].is_null() || event["pid"].is_u64());
        assert!(event["kind"].is_string());
        let outcome = event["outcome"].as_str().unwrap();
        assert!(
            ["failure", "probe", "success", "info"].contains(&outcome),
            "{outcome}"
        );
        assert!(event["srcip"].is_null() || event["srcip"].is_string());
        assert!(event["srcport"].is_null() || event["srcport"].is_u64());
        assert!(event["user"].is_null() || event["user"].is_string());
        assert!(event["public"].is_boolean());
        assert!(event["wazuh_rule"].is_null() || event["wazuh_rule"].is_u64());
        assert!(event["attempts"].is_u64());
    }
    // Only the sshd lines, in input order, with their 1-based line numbers.
    let lines: Vec<u64> = events.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 3, 5, 6, 7, 8]);
    let first = &events[0];
    assert_eq!(first["srcip"], PUBLIC_A);
    assert_eq!(first["srcport"], 50001);
    assert_eq!(first["user"], "root");
    assert_eq!(first["pid"], 201);
    assert_eq!(first["host"], "srv01");
    assert_eq!(first["outcome"], "failure");
    assert_eq!(first["kind"], "failed_password");
    assert_eq!(first["public"], true);
    assert!(
        first["time"].as_str().unwrap().contains("-03-01T10:00:21"),
        "{first}"
    );
    let private = &events[2];
    assert_eq!(
        (private["srcip"].as_str(), private["public"].as_bool()),
        (Some(PRIVATE), Some(false))
    );
    let untimed = &events[5];
    assert_eq!(untimed["line"], 8);
    assert!(untimed["time"].is_null(), "{untimed}");
    assert_eq!(untimed["srcip"], PUBLIC_B);
}

#[test]
fn gzip_input_is_read_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write(dir.path(), "auth.log", sample_log());
    let gz = write(dir.path(), "auth.log.1.gz", gzip(sample_log().as_bytes()));
    let unsuffixed = write(dir.path(), "auth.log.2", gzip(sample_log().as_bytes()));
    let strip = |events: Vec<Value>| -> Vec<Value> {
        events
            .into_iter()
            .map(|mut e| {
                e["file"] = Value::Null;
                e
            })
            .collect()
    };
    let (expected, _, _) = scan_jsonl(&[plain.to_str().unwrap()]);
    assert!(!expected.is_empty());
    for path in [&gz, &unsuffixed] {
        let (events, code, stderr) = scan_jsonl(&[path.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(events[0]["file"], path.to_str().unwrap());
        assert_eq!(strip(events), strip(expected.clone()));
    }
}

#[test]
fn stdin_is_read_with_dash_or_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write(dir.path(), "auth.log", sample_log());
    let (from_file, _, _) = scan_jsonl(&[plain.to_str().unwrap()]);
    for args in [&["--format", "jsonl", "-"][..], &["--format", "jsonl"][..]] {
        let out = repute()
            .arg("scan")
            .args(args)
            .write_stdin(sample_log())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let events = jsonl(&out.stdout);
        assert_eq!(events.len(), from_file.len());
        assert!(events.iter().all(|e| e["file"] == "-"));
        let lines = |v: &[Value]| v.iter().map(|e| e["line"].clone()).collect::<Vec<_>>();
        assert_eq!(lines(&events), lines(&from_file));
    }
    // Gzip on stdin too.
    let out = repute()
        .args(["scan", "--format", "jsonl", "-"])
        .write_stdin(gzip(sample_log().as_bytes()))
        .output()
        .unwrap();
    assert_eq!(jsonl(&out.stdout).len(), from_file.len());
}

#[test]
fn multiple_files_keep_their_names_and_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.log",
        format!("noise\n{}\n", failed_password(1, "root", PUBLIC_A, 1)),
    );
    let b = write(
        dir.path(),
        "b.log",
        format!("{}\n", invalid_user(2, "x", PUBLIC_B, 2)),
    );
    let (events, code, _) = scan_jsonl(&[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0);
    let got: Vec<(String, u64)> = events
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap().to_string(),
                e["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (a.to_str().unwrap().to_string(), 2),
            (b.to_str().unwrap().to_string(), 1)
        ]
    );
}

#[test]
fn users_are_shown_in_the_order_tried_across_files() {
    let dir = tempfile::tempdir().unwrap();
    // The first file's names sit at larger byte offsets than the second file's: order must
    // come from the file order first.
    let mut first = "noise line that only pads the offsets\n".repeat(50);
    for (i, user) in ["zed", "yak"].iter().enumerate() {
        first += &(invalid_user(i as u32, user, PUBLIC_A, 1) + "\n");
    }
    let mut second = String::new();
    for (i, user) in ["alf", "bob", "yak"].iter().enumerate() {
        second += &(invalid_user(10 + i as u32, user, PUBLIC_A, 1) + "\n");
    }
    let a = write(dir.path(), "a.log", first);
    let b = write(dir.path(), "b.log", second);
    let out = repute().arg("scan").arg(&a).arg(&b).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text.lines().find(|l| l.starts_with(PUBLIC_A)).unwrap();
    assert!(row.ends_with("zed, yak, alf, bob"), "{row}");
}

#[test]
fn only_public_filters_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), "auth.log", sample_log());
    let (events, _, _) = scan_jsonl(&["--only-public", log.to_str().unwrap()]);
    assert_eq!(events.len(), 5);
    assert!(
        events
            .iter()
            .all(|e| e["public"] == true && e["srcip"] != PRIVATE)
    );

    let table = repute()
        .args(["scan", "--format", "table"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains(PRIVATE));
    let table = repute()
        .args(["scan", "--only-public"])
        .arg(&log)
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(!text.contains(PRIVATE), "{text}");
    assert!(text.contains(PUBLIC_A) && text.contains(PUBLIC_B), "{text}");

    // Only private attackers: nothing public found, exit 1.
    let private_only = write(
        dir.path(),
        "p.log",
        failed_password(9, "root", PRIVATE, 9) + "\n",
    );
    repute()
        .args(["scan", "--only-public"])
        .arg(&private_only)
        .assert()
        .code(1);
}

/// The table's data rows as (address, attempts, failures).
fn table_rows(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .skip(1)
        .filter(|l| !l.starts_with("total:"))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (
                cols[0].to_string(),
                cols[2].parse().unwrap(),
                cols[3].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn table_is_sorted_by_attempts_with_totals() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for i in 0..3 {
        log += &(failed_password(10 + i, "root", PUBLIC_B, 1000) + "\n");
    }
    for i in 0..5 {
        log += &(invalid_user(20 + i, &format!("user{i}"), PUBLIC_A, 2000) + "\n");
    }
    log += &(failed_password(30, "root", PRIVATE, 3000) + "\n");
    let path = write(dir.path(), "auth.log", log);
    let out = repute().arg("scan").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ADDRESS"), "{text}");
    let rows = table_rows(&text);
    let addrs: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(addrs, [PUBLIC_A, PUBLIC_B, PRIVATE], "{text}");
    assert_eq!((rows[0].1, rows[1].1, rows[2].1), (5, 3, 1));
    let a_row = text.lines().find(|l| l.starts_with(PUBLIC_A)).unwrap();
    assert!(
        a_row.contains("public") && a_row.contains("user0"),
        "{a_row}"
    );
    let totals = text.lines().last().unwrap();
    assert!(totals.starts_with("total: 9 attempts"), "{totals}");
    assert!(totals.contains("from 3 addresses, 2 public"), "{totals}");

    let top = repute()
        .args(["scan", "--top", "1"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(top.stdout).unwrap();
    assert_eq!(table_rows(&text).len(), 1, "{text}");
    assert!(text.contains("(1 shown)"), "{text}");
}

#[test]
fn unreadable_input_is_named_and_the_others_still_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.log", sample_log());
    let missing = dir.path().join("missing.log");
    let out = repute()
        .args(["scan", "--format", "jsonl"])
        .arg(&missing)
        .arg(&good)
        .arg(dir.path()) // a directory
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].contains("missing.log") && lines[0].contains("No such file"),
        "{stderr}"
    );
    assert!(lines[1].contains(dir.path().to_str().unwrap()), "{stderr}");
    assert_eq!(jsonl(&out.stdout).len(), 6);
}

#[test]
fn truncated_gzip_keeps_what_was_read_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for i in 0..40_000u32 {
        let ip = format!("192.31.196.{}", 100 + i % 100);
        log += &(invalid_user(i, &format!("u{i}"), &ip, 2000 + (i % 1000) as u16) + "\n");
    }
    let gz = gzip(log.as_bytes());
    let path = write(dir.path(), "auth.log.3.gz", &gz[..gz.len() / 2]);
    for threads in ["1", "2"] {
        let out = repute()
            .args(["scan", "--format", "jsonl", "--threads", threads])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("auth.log.3.gz"), "{stderr}");
        let events = jsonl(&out.stdout);
        assert!(events.len() > 1000, "{}", events.len());
        // Nothing from a cut-off fragment: every event is a whole line of the input.
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["line"], i as u64 + 1);
            assert_eq!(e["user"], format!("u{i}"));
            assert_eq!(e["srcport"], 2000 + (i as u64 % 1000));
        }
        let table = repute()
            .args(["scan", "--threads", threads])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(table.status.code(), Some(2));
        let text = String::from_utf8(table.stdout).unwrap();
        let total = text.lines().last().unwrap();
        assert!(
            total.contains(&format!("{} sshd events", thousands(events.len()))),
            "{total}"
        );
    }
}

#[test]
fn invalid_utf8_is_decoded_lossily_huge_lines_skipped_and_both_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = Vec::new();
    data.extend(b"Mar  1 10:00:00 srv01 sshd[1]: Failed password for \xff\xfe from 192.31.196.1 port 1 ssh2\n");
    data.extend(b"Mar  1 10:00:00 srv01 sshd[2]: Failed password for root from ");
    data.extend(std::iter::repeat_n(b'9', 10 << 20)); // a 10 MB line
    data.push(b'\n');
    data.extend(b"\x00\x01\x02 binary \xc3\x28 garbage\n");
    data.extend(failed_password(3, "root", PUBLIC_A, 3).as_bytes());
    data.push(b'\n');
    let path = write(dir.path(), "mixed.log", data);
    for format in ["jsonl", "table"] {
        let out = repute()
            .args(["scan", "--format", format])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("read 2 lines that are not UTF-8 with U+FFFD"),
            "{stderr}"
        );
        assert!(stderr.contains("skipped 1 lines longer than"), "{stderr}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains(PUBLIC_A), "{stdout}");
        // An invalid byte in the user name does not hide the attempt.
        assert!(stdout.contains("192.31.196.1"), "{stdout}");
        if format == "jsonl" {
            let events = jsonl(stdout.as_bytes());
            assert_eq!(events.len(), 2);
            assert_eq!(events[0]["line"], 1);
            assert_eq!(events[0]["user"], "\u{fffd}\u{fffd}");
            assert_eq!(events[1]["line"], 4);
        }
    }
}

#[test]
fn binary_garbage_is_no_attack() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x1234_5678_9abc_def0u64;
    let garbage: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let path = write(dir.path(), "garbage.bin", garbage);
    let out = repute().arg("scan").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("total: 0 attempts"));
}

#[test]
fn no_attack_exits_1() {
    let out = repute()
        .args(["scan", "-"])
        .write_stdin("Mar  1 10:00:00 srv01 CRON[1]: (root) CMD (true)\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty());
}

#[test]
fn a_closed_pipe_is_a_normal_end() {
    let dir = tempfile::tempdir().unwrap();
    let line = failed_password(7, "root", PUBLIC_A, 7) + "\n";
    let path = write(dir.path(), "big.log", line.repeat(100_000));
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin!("repute"))
        .args(["scan", "--format", "jsonl"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout); // as `| head -c 64` does
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(first.starts_with(b"{\"file\""));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn threads_do_not_change_the_table() {
    let dir = tempfile::tempdir().unwrap();
    // Big enough (> 4 MiB) to be split between threads.
    let mut log = String::new();
    let mut i = 0u32;
    while log.len() < 6 << 20 {
        let ip = format!("192.31.196.{}", i % 200);
        log += &(failed_password(
            i % 30_000,
            &format!("u{}", i % 13),
            &ip,
            1024 + (i % 60_000) as u16,
        ) + "\n");
        i += 1;
    }
    let path = write(dir.path(), "auth.log", log);
    let one = repute()
        .args(["scan", "--threads", "1"])
        .arg(&path)
        .output()
        .unwrap();
    let two = repute()
        .args(["scan", "--threads", "2"])
        .arg(&path)
        .output()
        .unwrap();
    let three = repute()
        .args(["scan", "--threads", "3"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(one.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&one.stdout)
            .contains(&format!("{} lines read", thousands(i as usize)))
    );
    assert_eq!(one.stdout, two.stdout);
    assert_eq!(one.stdout, three.stdout);
}

/// A connection whose address is on one line and whose next line has none.
fn connection_pair(pid: u32) -> (String, String) {
    let from = format!(
        "Mar  1 10:00:00 srv01 sshd[{pid}]: Connection from {PUBLIC_B} port 5555 on 10.0.0.5 port 22 rdomain \"\"\n"
    );
    let kex = format!(
        "Mar  1 10:00:01 srv01 sshd[{pid}]: error: kex_exchange_identification: Connection closed by remote host\n"
    );
    (from, kex)
}

const PAD: &str = "Mar  1 10:00:00 srv01 CRON[1]: (root) CMD (true)\n";

/// The address of the kex line, as the jsonl output of one thread gives it, must also be
/// found by several threads when the two lines fall on either side of a thread boundary.
fn assert_same_with_threads(path: &Path) {
    let one = repute()
        .args(["scan", "--threads", "1"])
        .arg(path)
        .output()
        .unwrap();
    let two = repute()
        .args(["scan", "--threads", "2"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8(one.stdout.clone()).unwrap();
    assert!(text.contains("0 attacks without an address"), "{text}");
    assert!(text.lines().any(|l| l.starts_with(PUBLIC_B)), "{text}");
    assert_eq!(String::from_utf8(two.stdout).unwrap(), text);
}

#[test]
fn a_connection_across_a_range_boundary_keeps_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let (from, kex) = connection_pair(4242);
    assert!(from.len() >= kex.len());
    // Equal padding on both sides: the file's middle (where the second thread starts) falls
    // inside `from`, so `kex` belongs to the second range.
    let pad = PAD.repeat(50_000); // 2.4 MB each side, more than the 4 MiB split threshold
    let log = format!("{pad}{from}{kex}{pad}");
    assert!(log.len() as u64 >= 4 << 20);
    assert_same_with_threads(&write(dir.path(), "auth.log", log));
}

#[test]
fn a_connection_across_a_chunk_boundary_keeps_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let (from, kex) = connection_pair(4343);
    // Stream chunks are 2 MiB: `from` ends just before the first boundary, `kex` crosses it.
    let chunk = 2 << 20;
    let mut log = PAD.repeat((chunk - from.len() - 10) / PAD.len());
    log += &"x".repeat(chunk - from.len() - 10 - log.len());
    log += "\n";
    log += &from;
    assert!(
        log.len() < chunk && log.len() + kex.len() > chunk,
        "{}",
        log.len()
    );
    log += &kex;
    log += &PAD.repeat(1000);
    assert_same_with_threads(&write(dir.path(), "auth.log.gz", gzip(log.as_bytes())));
}

#[test]
fn the_example_log_scans_without_framing_decoys() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/auth.log");
    let (events, code, stderr) = scan_jsonl(&[example.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    // The injection lines put 198.51.100.7 (and others) in user names: never a source.
    for decoy in [
        "198.51.100.7",
        "203.0.113.99",
        "2001:db8::7",
        "192.31.196.99",
        "192.31.196.98",
    ] {
        assert!(
            events.iter().all(|e| e["srcip"] != decoy),
            "decoy {decoy} attributed"
        );
    }
    let kinds: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.len() >= 20, "{kinds:?}");
    let injected = events
        .iter()
        .filter(|e| e["srcip"] == "192.31.196.50")
        .count();
    assert!(injected >= 8, "{injected}");
    let table = repute().arg("scan").arg(&example).output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with(PUBLIC_A), "{text}");
}

/// The two routes of issue 9, end to end: PAM's `rhost=<addr> user=<name>` with a name that
/// says `rhost=<decoy>`, and a certificate key id sized so that sshd's 500-byte cut makes the
/// line end in `from <decoy> port 22 ssh2`.
#[test]
fn pam_names_and_key_ids_cut_at_500_bytes_frame_no_one() {
    let decoy = "192.175.48.77";
    let head = format!(
        "Failed publickey for invalid user test from {PUBLIC_A} port 4242 ssh2: \
         RSA-CERT SHA256:abcdef ID "
    );
    let tail = format!(" from {decoy} port 22 ssh2");
    let message = format!("{head}{}{tail}", "k".repeat(500 - head.len() - tail.len()));
    assert_eq!(message.len(), 500);
    let log = [
        format!("Mar  1 10:00:00 srv01 sshd[7]: {message}"),
        format!(
            "Mar  1 10:00:01 srv01 sshd[8]: pam_unix(sshd:auth): authentication failure; \
             logname= uid=0 euid=0 tty=ssh ruser= rhost={PUBLIC_A}  user=x rhost={decoy}"
        ),
        format!(
            "Mar  1 10:00:02 srv01 sshd[9]: pam_sss(sshd:auth): authentication failure; \
             logname= uid=0 euid=0 tty=ssh ruser= rhost={PUBLIC_A} user=x rhost={decoy}"
        ),
    ]
    .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let (events, code, stderr) =
        scan_jsonl(&[write(dir.path(), "auth.log", log).to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.iter().all(|e| e["srcip"] == PUBLIC_A), "{events:?}");
}

#[test]
fn ipv6_sources_are_one_row_per_64_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for (i, ip) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
        .iter()
        .enumerate()
    {
        log += &(failed_password(10 + i as u32, &format!("u{i}"), ip, 1000) + "\n");
    }
    log += &(failed_password(20, "root", "2001:db8:1:3::1", 1000) + "\n");
    log += &(failed_password(21, "root", PUBLIC_A, 1000) + "\n");
    let path = write(dir.path(), "auth.log", log);

    let out = repute().arg("scan").arg(&path).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let rows = table_rows(&text);
    let sources: Vec<(&str, u64)> = rows.iter().map(|r| (r.0.as_str(), r.1)).collect();
    assert_eq!(
        sources,
        [
            ("2001:db8:1:2::/64", 3),
            ("192.31.196.23", 1),
            ("2001:db8:1:3::/64", 1)
        ],
        "{text}"
    );
    let totals = text.lines().last().unwrap();
    assert!(totals.contains("from 3 sources"), "{totals}");
    assert!(totals.contains("an IPv6 row is a /64 prefix"), "{totals}");

    let out = repute()
        .args(["scan", "--ipv6-prefix", "128"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let rows = table_rows(&text);
    assert_eq!(rows.len(), 5, "{text}");
    assert!(rows.iter().any(|r| r.0 == "2001:db8:1:2:ffff::3"), "{text}");
    assert!(!text.contains("prefix"), "{text}");

    let out = repute()
        .args(["scan", "--ipv6-prefix", "48"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        table_rows(&text)[0],
        ("2001:db8:1::/48".into(), 4, 4),
        "{text}"
    );
}

#[test]
fn max_sources_bounds_the_rows_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for i in 0..5 {
        log += &(failed_password(10 + i, "root", PUBLIC_A, 1000) + "\n");
    }
    for i in 0..100u32 {
        let ip = format!("192.175.48.{i}");
        log += &(invalid_user(100 + i, "admin", &ip, 2000) + "\n");
    }
    let path = write(dir.path(), "auth.log", log);
    let out = repute()
        .args(["scan", "--threads", "1", "--max-sources", "16"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows = table_rows(&text);
    assert!(rows.len() <= 16, "{text}");
    assert_eq!(rows[0], (PUBLIC_A.to_string(), 5, 5), "{text}");
    let totals = text.lines().last().unwrap();
    assert!(
        totals.contains(&format!(
            "; {} quieter sources dropped past --max-sources 16",
            101 - rows.len()
        )),
        "{totals}"
    );
    assert!(totals.contains("105 sshd events"), "{totals}");
}

#[test]
fn a_prefix_length_out_of_range_is_refused() {
    for bad in ["0", "129", "x"] {
        let out = repute()
            .args(["scan", "--ipv6-prefix", bad, "/dev/null"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("invalid value") && err.contains("--ipv6-prefix"),
            "{err}"
        );
    }
}

/// `19926` as the totals line writes it: `19,926`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
