//! The rotation torture test: a writer appends numbered sshd lines while the file is rotated
//! hundreds of times, by rename (the logger keeps writing to its old descriptor for a while,
//! as rsyslog does until it is told to reopen) and by copytruncate (the copy is made while
//! the writer pauses, as logrotate's copy is, so every line is in the copy or the file);
//! `repute watch --format jsonl` must report every line exactly once.
//!
//! After each rotation the writer waits until watch has reported the first line of the new
//! file, then writes the rest and rotates at once: those lines race the rotation. (Real logs
//! rotate daily; a file created, written and rotated again before the follower read any of
//! it is a documented loss.)

mod watch_support;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use watch_support::{Running, WAIT};

const ROTATIONS: usize = 300;
const LINES_BETWEEN: usize = 20;
/// Lines the logger writes to the renamed file before it reopens the path.
const LATE_LINES: usize = 3;

fn line(n: usize) -> String {
    // Private address: events are reported, nothing is banned.
    format!(
        "Nov 30 06:00:00 web1 sshd[{}]: Failed password for invalid user u{n} from 10.1.2.3 port 50022 ssh2\n",
        1000 + n % 5000
    )
}

fn numbers_seen(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v["user"]
                .as_str()
                .and_then(|u| u.strip_prefix('u'))
                .and_then(|n| n.parse().ok())
        })
        .collect()
}

fn shift(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("auth.log.2"));
    let _ = std::fs::rename(dir.join("auth.log.1"), dir.join("auth.log.2"));
}

/// Waits (bounded) until watch has reported `written` lines, naming the missing ones if not.
fn wait_for(watch: &mut Running, seen: &mut usize, written: usize) {
    let start = Instant::now();
    while *seen < written {
        *seen += numbers_seen(&watch.drain()).len();
        if start.elapsed() > WAIT {
            let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
            for n in numbers_seen(&watch.seen) {
                *counts.entry(n).or_default() += 1;
            }
            let missing: Vec<usize> = (0..written).filter(|n| !counts.contains_key(n)).collect();
            let doubled: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
            panic!(
                "watch reported {seen} of {written} lines; missing {missing:?}; doubled {doubled:?}"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[test]
fn every_line_exactly_once_across_hundreds_of_rotations() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let log = dir.join("auth.log");
    std::fs::write(&log, "").expect("create log");
    let config = dir.join("repute.toml");
    std::fs::write(&config, "[watch]\npoll_interval = \"10ms\"\n").expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_repute"))
        .args([
            "watch",
            "--dry-run",
            "--from-start",
            "--format",
            "jsonl",
            "--file",
        ])
        .arg(&log)
        .arg("--config")
        .arg(&config)
        .env("REPUTE_STATE_DIR", dir.join("state"))
        .env("REPUTE_CACHE", "none")
        .env_remove("ABUSEIPDB_API_KEY")
        .env_remove("ABUSEIPDB_API_KEY_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch");
    let mut watch = Running::new(child);
    // Watch is following once it reports a first line.
    let mut writer = OpenOptions::new().append(true).open(&log).expect("open");
    writer.write_all(line(0).as_bytes()).expect("write");
    watch.wait_json("the first line", |v| v["user"] == "u0");

    let mut written = 1;
    let mut seen = 1;
    for rotation in 0..ROTATIONS {
        // The follower has read into this file before it is rotated again (real logs rotate
        // daily): the first line after a rotation is waited for, the rest race the rotation.
        writer.write_all(line(written).as_bytes()).expect("write");
        written += 1;
        wait_for(&mut watch, &mut seen, written);
        for _ in 1..LINES_BETWEEN {
            writer.write_all(line(written).as_bytes()).expect("write");
            written += 1;
        }
        shift(dir);
        if rotation % 2 == 0 {
            std::fs::rename(&log, dir.join("auth.log.1")).expect("rename");
            for _ in 0..LATE_LINES {
                writer
                    .write_all(line(written).as_bytes())
                    .expect("late write");
                written += 1;
            }
            writer = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("reopen");
        } else {
            std::fs::copy(&log, dir.join("auth.log.1")).expect("copy");
            writer.set_len(0).expect("truncate");
        }
    }
    for _ in 0..LINES_BETWEEN {
        writer.write_all(line(written).as_bytes()).expect("write");
        written += 1;
    }
    wait_for(&mut watch, &mut seen, written);
    let (status, output) = watch.terminate();
    assert!(status.success(), "watch exit: {status:?}");
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for n in numbers_seen(&output) {
        *counts.entry(n).or_default() += 1;
    }
    let missing: Vec<usize> = (0..written).filter(|n| !counts.contains_key(n)).collect();
    let doubled: Vec<(usize, usize)> = counts.into_iter().filter(|(_, c)| *c > 1).collect();
    assert!(missing.is_empty(), "lines never reported: {missing:?}");
    assert!(
        doubled.is_empty(),
        "lines reported more than once: {doubled:?}"
    );
}
