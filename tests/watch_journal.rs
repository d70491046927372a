//! `repute watch --journal` on real journal files written by `systemd-journal-remote`, in a
//! network namespace with the real `nft`: sshd entries (by journald's trusted `_COMM`) are
//! decided and banned, a forged entry (`logger -t sshd`: `SYSLOG_IDENTIFIER=sshd`,
//! `_COMM=logger`) is never even an event, and after a restart the saved cursor means no
//! entry is read twice.

mod block_support;
mod need;
mod watch_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use block_support::Netns;
use need::Need;
use watch_support::{Running, WAIT};

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const V4: &str = "45.155.205.233";
const V4_B: &str = "185.220.101.4";

/// Appends entries (`_COMM`, `_PID`, `MESSAGE`) to `dir/remote.journal` in the journal export
/// format, through systemd-journal-remote.
fn write_entries(dir: &Path, entries: &[(&str, u32, String)]) {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut export = String::new();
    for (comm, pid, message) in entries {
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_micros();
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={now}\n__MONOTONIC_TIMESTAMP={seq}\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=web1\n_PID={pid}\n\
             _COMM={comm}\nSYSLOG_IDENTIFIER=sshd\nMESSAGE={message}\n\n"
        ));
    }
    let file = dir.join(format!(
        "batch-{}.export",
        SEQ.load(std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&file, export).expect("export file");
    let out = Command::new(JOURNAL_REMOTE)
        .arg(format!(
            "--output={}",
            dir.join("journal/remote.journal").display()
        ))
        .arg(&file)
        .output()
        .expect("systemd-journal-remote");
    assert!(
        out.status.success(),
        "journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn failure(ip: &str, user: &str) -> String {
    format!("Failed password for invalid user {user} from {ip} port 50022 ssh2")
}

fn start(netns: &Netns, journal: &Path) -> Running {
    let child = netns
        .repute()
        .args(["watch", "--journal", "--journal-directory"])
        .arg(journal)
        .args(["--format", "jsonl", "--max-retry", "3", "--ban-time", "1h"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch");
    Running::new(child)
}

/// journalctl starts at the end of the journal: write marker entries until one is seen.
fn until_following(watch: &mut Running, dir: &Path) {
    let start = Instant::now();
    for n in 0.. {
        let user = format!("marker{n}");
        write_entries(dir, &[("sshd", 90, failure("10.0.0.1", &user))]);
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if watch.drain().iter().any(|l| l.contains(&user)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(start.elapsed() < WAIT, "watch never followed the journal");
    }
}

fn events(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("decision").is_none())
        .collect()
}

#[test]
fn journal_entries_are_judged_by_trusted_fields_and_the_cursor_survives_a_restart() {
    if !need::all(&[Need::Tool(JOURNAL_REMOTE), Need::Tool("journalctl")]) {
        return;
    }
    let Some(netns) = Netns::new() else {
        return;
    };
    netns.write_config("[watch]\npoll_interval = \"20ms\"\n");
    let dir: PathBuf = netns.dir.path().to_path_buf();
    std::fs::create_dir_all(dir.join("journal")).expect("journal dir");
    write_entries(&dir, &[("sshd", 80, failure("10.0.0.2", "before"))]);
    let journal = dir.join("journal");

    let mut watch = start(&netns, &journal);
    until_following(&mut watch, &dir);
    let forged: Vec<(&str, u32, String)> = (0..5)
        .map(|i| ("logger", 200 + i, failure(V4_B, "forged")))
        .collect();
    write_entries(&dir, &forged);
    let real: Vec<(&str, u32, String)> = (0..3)
        .map(|i| ("sshd-session", 300 + i, failure(V4, &format!("u{i}"))))
        .collect();
    write_entries(&dir, &real);
    let ban = watch.wait_json("the ban", |v| v["decision"] == "ban" && v["address"] == V4);
    assert_eq!(ban["applied"], true, "{ban}");
    assert_eq!(ban["source"], "journal", "{ban}");
    netns.wait_for("the address in the nft set", || {
        netns.nft_elements("repute").contains(&V4.to_string())
    });
    let (status, first_run) = watch.terminate();
    assert!(status.success());
    let first = events(&first_run);
    assert!(
        !first.iter().any(|e| e["srcip"] == V4_B),
        "a forged entry became an event: {first_run:?}"
    );
    assert!(
        first
            .iter()
            .all(|e| e["source"] == "journal" && e["cursor"].is_string())
    );
    assert!(
        !first.iter().any(|e| e["user"] == "before"),
        "history was read"
    );

    // Entries written while watch is down are read after the restart, and only those.
    write_entries(&dir, &[("sshd", 400, failure("10.0.0.3", "while-down"))]);
    let mut watch = start(&netns, &journal);
    write_entries(&dir, &[("sshd", 401, failure("10.0.0.3", "after"))]);
    watch.wait_json("the entry after the restart", |v| v["user"] == "after");
    let (status, second_run) = watch.terminate();
    assert!(status.success());
    let users: Vec<String> = events(&second_run)
        .iter()
        .map(|e| e["user"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(users, ["while-down", "after"], "{second_run:?}");
}
