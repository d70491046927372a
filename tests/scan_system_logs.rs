//! `repute scan` with no FILE reads this machine's sshd logs: the journal where there is one,
//! else `/var/log/auth.log*`. Each test runs the binary in a mount namespace it makes, with its
//! own `/var/log` and an empty `/run`, so the host's logs are neither read nor touched.

mod need;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use need::Need;
use serde_json::Value;

const LINE_OLD: &str =
    "Nov 29 06:00:00 web sshd[10]: Failed password for root from 45.155.205.233 port 4242 ssh2";
const LINE_NEW: &str =
    "Nov 30 06:00:00 web sshd[11]: Invalid user admin from 185.220.101.4 port 4343";

/// Runs `repute scan -v --format json` (no FILE, stdin closed) with `log_dir` as `/var/log`.
fn scan_in_namespace(log_dir: &Path, path: &str) -> Option<Output> {
    if !need::all(&[Need::Root, Need::Tool("unshare"), Need::Tool("mount")]) {
        return None;
    }
    let binary = assert_cmd::cargo::cargo_bin("repute");
    let script = r#"mount -t tmpfs tmpfs /run && mount --bind "$1" /var/log && exec "$2" scan -v --format json"#;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(log_dir)
        .arg(&binary)
        .env_clear()
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    Some(out)
}

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn without_a_journal_the_auth_log_files_oldest_first() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("log");
    std::fs::create_dir(&log).expect("log dir");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, format!("{LINE_OLD}\n").as_bytes()).expect("gzip");
    std::fs::write(log.join("auth.log.2.gz"), gz.finish().expect("gzip")).expect("write");
    std::fs::write(log.join("auth.log"), format!("{LINE_NEW}\n")).expect("write");
    std::fs::write(log.join("syslog"), format!("{LINE_NEW}\n")).expect("write");
    let Some(out) = scan_in_namespace(&log, "/usr/sbin:/usr/bin:/sbin:/bin") else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got: Vec<(String, String)> = events(&out)
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap_or("").to_string(),
                e["srcip"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/var/log/auth.log.2.gz".into(), "45.155.205.233".into()),
            ("/var/log/auth.log".into(), "185.220.101.4".into()),
        ]
    );
    assert_eq!(
        stderr(&out),
        "repute: reading /var/log/auth.log.2.gz, /var/log/auth.log\n"
    );
}

#[test]
fn the_journal_is_read_through_journalctl_when_there_is_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("log");
    std::fs::create_dir_all(log.join("journal/0123456789abcdef")).expect("journal dir");
    // The syslog file is there too: the journal wins.
    std::fs::write(log.join("auth.log"), format!("{LINE_OLD}\n")).expect("write");
    // A journalctl that records its arguments and prints an entry as `-o json` would.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let args_file = dir.path().join("args");
    let journalctl = bin.join("journalctl");
    std::fs::write(
        &journalctl,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" > {}\necho '{{\"__REALTIME_TIMESTAMP\":\"1796018400000000\",\"_HOSTNAME\":\"web\",\
             \"_COMM\":\"sshd-session\",\"_PID\":\"12\",\"MESSAGE\":\"Failed password for invalid \
             user oracle from 2a06:4880::5 port 5151 ssh2\"}}'\n",
            args_file.display()
        ),
    )
    .expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&journalctl, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let Some(out) = scan_in_namespace(&log, &path) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events = events(&out);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["file"], "journal");
    assert_eq!(events[0]["srcip"], "2a06:4880::5");
    assert_eq!(events[0]["user"], "oracle");
    let args = std::fs::read_to_string(&args_file).expect("journalctl ran");
    assert_eq!(
        args.trim(),
        "--no-pager --output=json _COMM=sshd _COMM=sshd-session _COMM=sshd-auth"
    );
    assert!(
        stderr(&out).starts_with("repute: reading the systemd journal (journalctl "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failing_journalctl_is_an_unreadable_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("log");
    std::fs::create_dir_all(log.join("journal/x")).expect("journal dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let journalctl = bin.join("journalctl");
    std::fs::write(&journalctl, "#!/bin/sh\nexit 1\n").expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&journalctl, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let Some(out) = scan_in_namespace(&log, &path) else {
        return;
    };
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("repute: cannot read journal: journalctl failed (exit status: 1)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_logs_at_all_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("log");
    std::fs::create_dir(&log).expect("log dir");
    let Some(out) = scan_in_namespace(&log, "/usr/sbin:/usr/bin:/sbin:/bin") else {
        return;
    };
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "repute: no sshd logs found (no systemd journal, no /var/log/auth.log* or \
         /var/log/secure*): name the files to scan, or `-` for stdin\n"
    );
}
