//! `repute watch` as a command, without a firewall (dry runs): flags and settings checked
//! with one-line errors, the metrics endpoint over real TCP, and SIGHUP reloading the
//! settings while what was counted stays.

mod watch_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use watch_support::{Running, WAIT, append, failure};

const V4: &str = "45.155.205.233";

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(config: &str) -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("repute.toml"), config).expect("config");
        std::fs::write(dir.path().join("auth.log"), "").expect("log");
        Scratch { dir }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("auth.log")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("repute.toml")
    }

    fn watch(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
        cmd.arg("--config")
            .arg(self.config())
            .args([
                "watch",
                "--dry-run",
                "--from-start",
                "--format",
                "jsonl",
                "--file",
            ])
            .arg(self.log())
            .args(args)
            .env("REPUTE_STATE_DIR", self.dir.path().join("state"))
            .env("REPUTE_CACHE", "none")
            .env_remove("ABUSEIPDB_API_KEY")
            .env_remove("ABUSEIPDB_API_KEY_FILE")
            .env_remove("REPUTE_CONFIG")
            .stdin(Stdio::null());
        cmd
    }
}

fn refused(scratch: &Scratch, args: &[&str], why: &str) {
    let out = scratch.watch(args).output().expect("run watch");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(why), "{args:?}: {err}");
}

#[test]
fn bad_flags_and_settings_are_named_in_one_line() {
    let scratch = Scratch::new("");
    refused(
        &scratch,
        &["--max-retry", "0"],
        "--max-retry 0 is not within 1..=1000",
    );
    refused(&scratch, &["--find-time", "soon"], "--find-time");
    refused(&scratch, &["--ban-time", "0s"], "--ban-time");
    refused(
        &scratch,
        &["--metrics-listen", "everywhere"],
        "--metrics-listen",
    );
    let scratch = Scratch::new("[watch]\nmax_retries = 3\n");
    refused(&scratch, &[], "max_retries");
    let scratch = Scratch::new("[watch]\nipv6_prefix = 8\n");
    refused(&scratch, &[], "ipv6_prefix: 8");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn scrape(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
}

#[test]
fn metrics_are_served_with_counts_and_without_addresses() {
    let scratch = Scratch::new("[watch]\npoll_interval = \"20ms\"\n");
    let port = free_port();
    let child = scratch
        .watch(&[
            "--max-retry",
            "3",
            "--metrics-listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut watch = Running::new(child);
    append(
        &scratch.log(),
        &(0..3)
            .map(|i| failure(V4, "root", 10 + i))
            .collect::<Vec<_>>(),
    );
    watch.wait_json("the ban", |v| v["decision"] == "ban");
    let log = scratch.log();
    let lines = format!(
        "repute_lines_read_total{{source=\"file:{}\"}} 3",
        log.display()
    );
    let start = Instant::now();
    let body = loop {
        if let Some(body) = scrape(port).filter(|b| b.contains(&lines)) {
            break body;
        }
        assert!(start.elapsed() < WAIT, "no metrics with {lines}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(
        body.contains("repute_events_total{kind=\"failed_password\",outcome=\"failure\"} 3"),
        "{body}"
    );
    assert!(body.contains("repute_bans_total 1"), "{body}");
    assert!(
        body.contains("repute_decision_latency_seconds_count 1"),
        "{body}"
    );
    assert!(!body.contains(V4), "an address in the metrics: {body}");
    let (status, _) = watch.terminate();
    assert!(status.success());
}

fn write_config(path: &Path, max_retry: u32) {
    std::fs::write(
        path,
        format!("[watch]\npoll_interval = \"20ms\"\nmax_retry = {max_retry}\n"),
    )
    .expect("config");
}

#[test]
fn sighup_reloads_the_settings_and_keeps_the_counts() {
    let scratch = Scratch::new("");
    write_config(&scratch.config(), 10);
    let child = scratch
        .watch(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut watch = Running::new(child);
    append(
        &scratch.log(),
        &(0..3)
            .map(|i| failure(V4, "root", 10 + i))
            .collect::<Vec<_>>(),
    );
    watch.wait_json("the third event", |v| v["line"] == 3);
    write_config(&scratch.config(), 4);
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(watch.child.id() as libc::pid_t, libc::SIGHUP);
    }
    // One try at a time until the ban: with the reloaded max_retry = 4 it comes at the fourth
    // (the three before counted), long before the old ten.
    let mut total = 3;
    let ban = loop {
        total += 1;
        append(&scratch.log(), &[failure(V4, "root", 20 + total)]);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut found = None;
        while Instant::now() < deadline && found.is_none() {
            found = watch
                .drain()
                .into_iter()
                .find(|l| l.contains("\"decision\":\"ban\""));
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(ban) = found {
            break ban;
        }
        assert!(
            total < 8,
            "no ban after {total} tries: the reload did not take"
        );
    };
    let ban: serde_json::Value = serde_json::from_str(&ban).expect("JSON");
    // Four with the new setting; five when a round that began before the reload read the
    // fourth; never the old ten.
    let failures = ban["evidence"]["failures"].as_u64().unwrap_or(0);
    assert!((4..=5).contains(&failures), "{ban}");
    let (status, _) = watch.terminate();
    assert!(status.success(), "{status:?}");
}
