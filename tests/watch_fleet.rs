//! Bans propagate through the fleet: two `repute watch` processes, each in a network namespace
//! the test creates (two hosts), on one real `redis-server` reached by its Unix socket (one file
//! system, two networks). A ban decided by one host (failures in its log, or `repute block add`
//! there) is in the other's nft set soon after, ends on both, and a host that was stopped while
//! the ban was decided gets it when it starts again.

mod block_support;
mod need;
mod support;
mod watch_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use block_support::Netns;
use need::Need;
use support::redis_server::RedisServer;
use watch_support::{Running, append, failure};

/// Public addresses (never contacted: the namespaces have no route anywhere).
const V4: &str = "45.155.205.233";
const V4_B: &str = "185.220.101.4";

struct Host {
    netns: Netns,
    log: PathBuf,
}

fn host(redis: &RedisServer) -> Option<Host> {
    let netns = Netns::new()?;
    netns.write_config(&format!(
        "store = \"redis+unix://{}\"\n[watch]\npoll_interval = \"20ms\"\n",
        redis.socket().display()
    ));
    let log = netns.dir.path().join("auth.log");
    std::fs::write(&log, "").expect("create log");
    Some(Host { netns, log })
}

fn start(host: &Host, args: &[&str]) -> Running {
    let child = host
        .netns
        .repute()
        .arg("watch")
        .arg("--file")
        .arg(&host.log)
        .args(["--format", "jsonl", "--max-retry", "3", "--from-start"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr_file(host))
        .spawn()
        .expect("spawn watch");
    Running::new(child)
}

/// Watch's log (stderr), appended to a file beside the host's log.
fn stderr_file(host: &Host) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(host.netns.dir.path().join("watch.stderr"))
        .expect("stderr file")
}

fn log_of(host: &Host) -> String {
    std::fs::read_to_string(host.netns.dir.path().join("watch.stderr")).unwrap_or_default()
}

fn has(host: &Host, ip: &str) -> bool {
    host.netns.nft_elements("repute").contains(&ip.to_string())
}

fn is_decision(v: &serde_json::Value, decision: &str, ip: &str) -> bool {
    v["decision"] == decision && v["address"] == ip
}

fn failures(log: &Path, ip: &str) {
    let lines: Vec<String> = (0..3)
        .map(|i| failure(ip, &format!("user{i}"), 4000 + i))
        .collect();
    append(log, &lines);
}

#[test]
fn a_ban_decided_on_one_host_is_enforced_on_the_other_and_ends_on_both() {
    if !need::all(&[Need::Tool("redis-server"), Need::Tool("redis-cli")]) {
        return;
    }
    let redis = RedisServer::start();
    let (Some(a), Some(b)) = (host(&redis), host(&redis)) else {
        return;
    };
    let mut watch_a = start(&a, &["--ban-time", "6s"]);
    let mut watch_b = start(&b, &["--ban-time", "6s"]);

    // Decided on A from its own log.
    failures(&a.log, V4);
    let ban = watch_a.wait_json("A's ban", |v| is_decision(v, "ban", V4));
    assert_eq!(ban["applied"], true, "{ban}");
    a.netns.wait_for("the ban in A's set", || has(&a, V4));
    // Enforced on B, which never saw a line of it.
    let enforced = watch_b.wait_json("B enforcing A's ban", |v| is_decision(v, "ban", V4));
    assert_eq!(enforced["source"], "fleet", "{enforced}");
    assert_eq!(enforced["applied"], true, "{enforced}");
    assert!(enforced["origin"].is_string(), "{enforced}");
    assert_eq!(enforced["until"], ban["until"], "one end time everywhere");
    b.netns.wait_for("the ban in B's set", || has(&b, V4));
    // The shared decision, as Redis holds it.
    let until: i64 = redis
        .cli(&["ZSCORE", "repute:{bans}:until", V4])
        .parse()
        .expect("a shared decision");
    assert!(until > 0);

    // It ends on both.
    watch_a.wait_json("A's unban", |v| is_decision(v, "unban", V4));
    watch_b.wait_json("B's unban", |v| is_decision(v, "unban", V4));
    a.netns.wait_for("A's kernel to drop it", || !has(&a, V4));
    b.netns.wait_for("B's kernel to drop it", || !has(&b, V4));

    // B is stopped while A decides another ban (by hand this time); B gets it at its start.
    let (status, _) = watch_b.terminate();
    assert!(status.success(), "{status:?}");
    let out = a
        .netns
        .run(&["block", "add", V4_B, "--for", "1h", "--reason", "by hand"]);
    assert!(out.status.success(), "{}", block_support::stderr(&out));
    // A follows it too (a ban by hand is a fleet decision like any other).
    watch_a.wait_json("A following the ban by hand", |v| {
        is_decision(v, "ban", V4_B)
    });
    assert!(!has(&b, V4_B));
    let mut watch_b = start(&b, &["--ban-time", "6s"]);
    let resynced = watch_b.wait_json("B's resync", |v| is_decision(v, "ban", V4_B));
    assert_eq!(resynced["source"], "fleet", "{resynced}");
    let left = resynced["duration"].as_u64().unwrap_or(0);
    // Whole seconds: the end rounded up, now rounded down, so at most one second over.
    assert!(
        left > 3000 && left <= 3601,
        "the time left, not a new hour: {resynced}"
    );
    b.netns
        .wait_for("the ban in B's set after its restart", || has(&b, V4_B));

    // Ended by hand on B: gone from A's set too.
    let out = b.netns.run(&["block", "del", V4_B]);
    assert!(out.status.success(), "{}", block_support::stderr(&out));
    watch_a.wait_json("A lifting the revoked ban", |v| {
        is_decision(v, "unban", V4_B)
    });
    a.netns.wait_for("A's set without it", || !has(&a, V4_B));

    for watch in [watch_a, watch_b] {
        let (status, _) = watch.terminate();
        assert!(status.success(), "{status:?}");
    }
}

/// Redis gone mid-run: watch keeps banning from its own log, says so on stderr, and records
/// the ban once Redis is back (another host started then gets it).
#[test]
fn with_redis_down_watch_keeps_enforcing_and_shares_once_it_returns() {
    if !need::all(&[Need::Tool("redis-server"), Need::Tool("redis-cli")]) {
        return;
    }
    let mut redis = RedisServer::start();
    let Some(a) = host(&redis) else {
        return;
    };
    let mut watch_a = start(
        &a,
        &["--ban-time", "1h", "--metrics-listen", "127.0.0.1:9477"],
    );
    redis.kill();
    failures(&a.log, V4);
    let ban = watch_a.wait_json("A's ban with Redis down", |v| is_decision(v, "ban", V4));
    assert_eq!(ban["applied"], true, "{ban}");
    a.netns.wait_for("the ban in A's set", || has(&a, V4));
    let metrics = || a.netns.ok(&["curl", "-s", "http://127.0.0.1:9477/metrics"]);
    a.netns.wait_for("the store down in the metrics", || {
        let m = metrics();
        m.contains("repute_fleet_store_up 0") && m.contains("repute_fleet_unshared_bans 1")
    });
    a.netns.wait_for("the outage in watch's log", || {
        log_of(&a).contains("retrying with backoff")
    });
    redis.restart();
    a.netns.wait_for("the ban shared once Redis is back", || {
        !redis.cli(&["ZSCORE", "repute:{bans}:until", V4]).is_empty()
    });
    a.netns.wait_for("the store up in the metrics", || {
        let m = metrics();
        m.contains("repute_fleet_store_up 1") && m.contains("repute_fleet_unshared_bans 0")
    });
    let (status, _) = watch_a.terminate();
    assert!(status.success(), "{status:?}");
}
