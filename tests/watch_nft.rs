//! `repute watch` end to end with the real `nft`, inside a network namespace each test
//! creates: a followed file, failures appended, the address in the kernel set, the ban's end,
//! a dry run, the allowlist, and a restart (positions and bans survive, no line read twice).

mod block_support;
mod need;
mod watch_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use block_support::Netns;
use watch_support::{Running, append, failure};

/// Public addresses (never contacted: the namespace has no route anywhere).
const V4: &str = "45.155.205.233";
const V4_B: &str = "185.220.101.4";

fn setup(extra_config: &str) -> Option<(Netns, PathBuf)> {
    let netns = Netns::new()?;
    netns.write_config(&format!(
        "{extra_config}\n[watch]\npoll_interval = \"20ms\"\n"
    ));
    let log = netns.dir.path().join("auth.log");
    std::fs::write(&log, "").expect("create log");
    Some((netns, log))
}

fn start(netns: &Netns, log: &Path, args: &[&str]) -> Running {
    let child = netns
        .repute()
        .arg("watch")
        .arg("--file")
        .arg(log)
        .args(["--format", "jsonl", "--max-retry", "3"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch");
    Running::new(child)
}

fn failures(ip: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| failure(ip, &format!("user{i}"), 4000 + i as u32))
        .collect()
}

fn is_decision(v: &serde_json::Value, decision: &str, ip: &str) -> bool {
    v["decision"] == decision && v["address"] == ip
}

#[test]
fn failures_ban_in_the_kernel_set_and_the_ban_ends_on_time() {
    let Some((netns, log)) = setup("") else {
        return;
    };
    let mut watch = start(&netns, &log, &["--from-start", "--ban-time", "3s"]);
    append(&log, &failures(V4, 3));
    let ban = watch.wait_json("the ban decision", |v| is_decision(v, "ban", V4));
    assert_eq!(ban["dry_run"], false, "{ban}");
    assert_eq!(ban["applied"], true, "{ban}");
    assert_eq!(ban["duration"], 3, "{ban}");
    assert_eq!(ban["evidence"]["failures"], 3, "{ban}");
    assert_eq!(ban["source"], format!("file:{}", log.display()));
    netns.wait_for("the address in the nft set", || {
        netns.nft_elements("repute").contains(&V4.to_string())
    });
    // The events came before the decision, with scan's fields and the source.
    let event: serde_json::Value = serde_json::from_str(&watch.seen[0]).expect("event JSON");
    assert_eq!(event["srcip"], V4);
    assert_eq!(event["line"], 1);
    assert_eq!(event["outcome"], "failure");
    assert_eq!(event["public"], true);
    assert_eq!(event["attempts"], 1, "scan's `attempts` too: {event}");
    assert_eq!(event["source"], format!("file:{}", log.display()));

    watch.wait_json("the unban decision", |v| is_decision(v, "unban", V4));
    netns.wait_for("the kernel to drop the entry", || {
        !netns.nft_elements("repute").contains(&V4.to_string())
    });
    let (status, _) = watch.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");
}

#[test]
fn dry_run_decides_and_changes_nothing() {
    let Some((netns, log)) = setup("") else {
        return;
    };
    let mut watch = start(&netns, &log, &["--from-start", "--dry-run"]);
    append(&log, &failures(V4, 3));
    let ban = watch.wait_json("the ban decision", |v| is_decision(v, "ban", V4));
    assert_eq!(ban["dry_run"], true, "{ban}");
    assert_eq!(ban["applied"], false, "{ban}");
    let (status, _) = watch.terminate();
    assert!(status.success());
    let ruleset = netns.ok(&["nft", "list", "ruleset"]);
    assert!(
        !ruleset.contains("repute"),
        "a dry run made a table: {ruleset}"
    );
    // Nothing saved either: a real run later reads these lines.
    let out = netns.run(&["status", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["sources"], serde_json::json!([]), "{status}");
    assert_eq!(status["bans"], serde_json::json!([]), "{status}");
}

#[test]
fn an_allowlisted_address_is_refused_not_banned() {
    let Some((netns, log)) = setup(&format!("allowlist = [\"{V4}/32\"]")) else {
        return;
    };
    let mut watch = start(&netns, &log, &["--from-start"]);
    append(&log, &failures(V4, 3));
    let ban = watch.wait_json("the refused decision", |v| is_decision(v, "ban", V4));
    assert_eq!(ban["applied"], false, "{ban}");
    let refused = ban["refused"].as_str().unwrap_or_default();
    assert!(refused.contains("allowlist"), "{ban}");
    assert!(netns.nft_elements("repute").is_empty());
    let (status, _) = watch.terminate();
    assert!(status.success());
}

#[test]
fn after_a_restart_the_ban_is_back_and_no_line_is_read_twice() {
    let Some((netns, log)) = setup("") else {
        return;
    };
    let mut watch = start(&netns, &log, &["--from-start", "--ban-time", "1h"]);
    let mut lines = failures(V4, 3);
    lines.push(failure(V4_B, "admin", 5000));
    append(&log, &lines);
    watch.wait_json("the ban decision", |v| is_decision(v, "ban", V4));
    watch.wait_json("the fourth line", |v| v["line"] == 4);
    let (status, _) = watch.terminate();
    assert!(status.success());

    // A reboot empties the kernel's sets.
    netns.ok(&["nft", "delete", "table", "inet", "repute"]);
    let mut watch = start(&netns, &log, &["--ban-time", "1h"]);
    netns.wait_for("the ban restored in the kernel", || {
        netns.nft_elements("repute").contains(&V4.to_string())
    });
    append(&log, &[failure(V4_B, "oracle", 5001)]);
    watch.wait_json("the fifth line", |v| v["line"] == 5);
    let (status, output) = watch.terminate();
    assert!(status.success());
    let events: Vec<serde_json::Value> = output
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect();
    let lines_read: Vec<&serde_json::Value> = events
        .iter()
        .filter(|v| v.get("decision").is_none())
        .map(|v| &v["line"])
        .collect();
    assert_eq!(lines_read, [5], "only the new line is read: {output:?}");
    assert!(
        !events.iter().any(|v| is_decision(v, "ban", V4)),
        "the running ban is not decided again: {output:?}"
    );

    let out = netns.run(&["status", "--format", "json"]);
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let source = &status["sources"][0];
    assert_eq!(
        source["source"],
        format!("file:{}", log.display()),
        "{status}"
    );
    assert_eq!(source["line"], 5, "{status}");
    let ban = &status["bans"][0];
    assert_eq!(ban["ip"], V4, "{status}");
    assert!(
        ban["remaining_secs"].as_u64().unwrap_or(0) > 3000,
        "{status}"
    );
    assert_eq!(status["watch"]["bans"], 0, "{status}");
    assert_eq!(status["running"], false, "{status}");
}

/// Ban times grow per earlier ban (`ban_time × 2^(bans before)`); the count was only in
/// memory, and the block state keeps running bans only, so after a restart a third ban was a
/// first one again (1 s here instead of 4 s). The count is now in the store.
#[test]
fn ban_times_keep_growing_across_a_restart() {
    let Some((netns, log)) = setup("") else {
        return;
    };
    let args = ["--from-start", "--ban-time", "1s"];
    let mut watch = start(&netns, &log, &args);
    let mut durations = Vec::new();
    for round in 0..2u32 {
        let lines: Vec<String> = (0..3)
            .map(|i| failure(V4, &format!("r{round}u{i}"), 6000 + round * 10 + i))
            .collect();
        append(&log, &lines);
        let ban = watch.wait_json("a ban", |v| is_decision(v, "ban", V4));
        durations.push(ban["duration"].as_u64().unwrap_or(0));
        watch.wait_json("its end", |v| is_decision(v, "unban", V4));
    }
    let (status, _) = watch.terminate();
    assert!(status.success());

    let mut watch = start(&netns, &log, &args);
    let lines: Vec<String> = (0..3)
        .map(|i| failure(V4, &format!("r2u{i}"), 6100 + i))
        .collect();
    append(&log, &lines);
    let ban = watch.wait_json("the third ban", |v| is_decision(v, "ban", V4));
    durations.push(ban["duration"].as_u64().unwrap_or(0));
    assert_eq!(durations, [1, 2, 4], "{:?}", watch.seen);
    assert_eq!(ban["evidence"]["bans_before"], 2, "{ban}");
    let (status, _) = watch.terminate();
    assert!(status.success());
}

#[test]
fn ipv6_attackers_of_one_64_are_counted_and_banned_together() {
    let Some((netns, log)) = setup("") else {
        return;
    };
    let mut watch = start(&netns, &log, &["--from-start", "--ban-time", "1h"]);
    let spread: Vec<String> = (1..=3)
        .map(|i| failure(&format!("2a06:4880:0:7::{i}"), "root", 6000 + i))
        .collect();
    append(&log, &spread);
    for i in 1..=3 {
        let ip = format!("2a06:4880:0:7::{i}");
        let ban = watch.wait_json("a ban of the /64", |v| is_decision(v, "ban", &ip));
        assert_eq!(ban["network"], "2a06:4880:0:7::/64", "{ban}");
        assert_eq!(ban["applied"], true, "{ban}");
    }
    // A newcomer of the banned /64 is banned at its first try.
    append(&log, &[failure("2a06:4880:0:7::99", "root", 6100)]);
    watch.wait_json("the newcomer's ban", |v| {
        is_decision(v, "ban", "2a06:4880:0:7::99")
    });
    netns.wait_for("four addresses in the nft set", || {
        netns.nft_elements("repute").len() == 4
    });
    let (status, _) = watch.terminate();
    assert!(status.success());
}
