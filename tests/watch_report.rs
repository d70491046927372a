//! `repute watch` reports the addresses it bans (`[report] enabled = true`), end to end: real
//! `nft` in a network namespace the test creates, the mock AbuseIPDB started inside that
//! namespace (it records every report), watch as a real process. One report per banned
//! address, with the categories of its evidence and a comment that names nothing of ours; a
//! restart (the bans restored) reports nothing again; a dry run reports nothing.

mod block_support;
mod need;
mod support;
mod watch_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use block_support::Netns;
use support::mock_abuseipdb::{MockAbuseIpdb, MockInNetns};
use watch_support::{Running, append};

const KEY: &str = "test-key-watch-report";
/// Public addresses (never contacted: the namespace has no route anywhere).
const V4: &str = "45.155.205.233";
const V4_B: &str = "185.220.101.4";
/// Our host name and the user names tried: none may leave in a comment.
const OUR_HOST: &str = "bastion-host-9";

fn setup() -> Option<(Netns, PathBuf, MockInNetns)> {
    let netns = Netns::new()?;
    // Counting alone decides (no ban at the first failure by score), so the evidence is the
    // three tries.
    netns.write_config(
        "[watch]\npoll_interval = \"20ms\"\nban_score = false\n[report]\nenabled = true\n",
    );
    let log = netns.dir.path().join("auth.log");
    std::fs::write(&log, "").expect("create log");
    let mock = MockInNetns::start(&netns.ns_path());
    Some((netns, log, mock))
}

fn start(netns: &Netns, log: &Path, mock: &MockAbuseIpdb, args: &[&str]) -> Running {
    let child = netns
        .repute()
        .env("ABUSEIPDB_API_KEY", KEY)
        .env("ABUSEIPDB_API_URL", mock.base_url())
        .arg("watch")
        .arg("--file")
        .arg(log)
        .args(["--format", "jsonl", "--max-retry", "3", "--ban-time", "1h"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch");
    Running::new(child)
}

fn tries(ip: &str, first_pid: u32) -> Vec<String> {
    (0..3)
        .map(|i| {
            format!(
                "Nov 30 06:00:0{i} {OUR_HOST} sshd[{pid}]: Failed password for invalid user \
                 deploy{i} from {ip} port {port} ssh2",
                pid = first_pid + i,
                port = 50_000 + i
            )
        })
        .collect()
}

fn is(v: &serde_json::Value, decision: &str, ip: &str) -> bool {
    v["decision"] == decision && v["address"] == ip
}

#[test]
fn each_new_ban_is_reported_once_and_a_restart_reports_nothing_again() {
    let Some((netns, log, mock)) = setup() else {
        return;
    };
    let mut watch = start(&netns, &log, &mock, &["--from-start"]);
    let mut lines = tries(V4, 4000);
    lines.extend(tries(V4_B, 5000));
    append(&log, &lines);
    for ip in [V4, V4_B] {
        let report = watch.wait_json("the report", |v| is(v, "report", ip));
        assert_eq!(report["reported"], true, "{report}");
        assert_eq!(
            report["categories"],
            serde_json::json!([18, 22]),
            "{report}"
        );
        assert_eq!(report["dry_run"], false, "{report}");
    }
    let (status, output) = watch.terminate();
    assert!(status.success(), "{status:?}");
    let applied = output
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["decision"] == "ban" && v["applied"] == true)
        .count();
    assert_eq!(applied, 2, "{output:?}");

    let sent = mock.accepted_reports();
    let mut addresses: Vec<&str> = sent.iter().map(|r| r.ip.as_str()).collect();
    addresses.sort_unstable();
    assert_eq!(addresses, [V4_B, V4], "one report per banned address");
    for report in &sent {
        assert_eq!(report.categories, "18,22");
        let comment = report.comment.clone().unwrap_or_default();
        assert!(comment.starts_with("sshd: 3 failed"), "{comment}");
        for ours in [OUR_HOST, "deploy", V4, V4_B] {
            assert!(!comment.contains(ours), "{ours} in {comment}");
        }
    }

    // Restarted: the bans are restored, not decided or reported again; a new line of a
    // banned address changes nothing.
    let mut watch = start(&netns, &log, &mock, &[]);
    append(&log, &tries(V4, 6000)[..1]);
    watch.wait_json("the new line", |v| v["line"] == 7);
    let (status, output) = watch.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        !output.iter().any(|l| l.contains("\"decision\":\"report\"")),
        "{output:?}"
    );
    assert_eq!(mock.count("report"), 2, "no report after the restart");
}

#[test]
fn a_dry_run_reports_nothing() {
    let Some((netns, log, mock)) = setup() else {
        return;
    };
    let mut watch = start(&netns, &log, &mock, &["--from-start", "--dry-run"]);
    append(&log, &tries(V4, 4000));
    let ban = watch.wait_json("the ban", |v| is(v, "ban", V4));
    assert_eq!(ban["dry_run"], true, "{ban}");
    let (status, output) = watch.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        !output.iter().any(|l| l.contains("\"decision\":\"report\"")),
        "{output:?}"
    );
    assert_eq!(mock.count("report"), 0);
}

/// Off by default: the same bans, no report.
#[test]
fn reporting_is_off_by_default() {
    let Some((netns, log, mock)) = setup() else {
        return;
    };
    netns.write_config("[watch]\npoll_interval = \"20ms\"\nban_score = false\n");
    let mut watch = start(&netns, &log, &mock, &["--from-start"]);
    append(&log, &tries(V4, 4000));
    let ban = watch.wait_json("the ban", |v| is(v, "ban", V4));
    assert_eq!(ban["applied"], true, "{ban}");
    let (status, output) = watch.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        !output.iter().any(|l| l.contains("\"decision\":\"report\"")),
        "{output:?}"
    );
    assert_eq!(mock.count("report"), 0);
}
