//! Many real `repute check` processes on one SQLite cache file at once: no error, no lost row,
//! and exactly one AbuseIPDB call per distinct address (the lookup lease at work).

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::mock_abuseipdb::{Fault, MockAbuseIpdb, derived_score};

const PROCESSES: usize = 24;
const KEY: &str = "processkey000000000000000000000000000000000000000000000000000000000000000000000";

/// Public addresses (never contacted: the mock answers for them).
fn addresses() -> Vec<String> {
    (1..=12)
        .map(|i| format!("185.220.{}.{}", 100 + i % 3, 10 + i))
        .chain(["2a03:2880:f12f:83:face:b00c:0:25de".to_string()])
        .collect()
}

/// `repute check --format json addrs…` against the mock, with the key file in `dir` and the
/// cache at `cache`, output piped; the caller adds its own setting and spawns it.
fn check_command(
    dir: &std::path::Path,
    mock: &MockAbuseIpdb,
    cache: &std::path::Path,
    addrs: &[impl AsRef<std::ffi::OsStr>],
) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("repute"));
    cmd.args(["check", "--format", "json"])
        .args(addrs)
        .env_remove("ABUSEIPDB_API_KEY")
        .env_remove("RUST_LOG")
        .env("ABUSEIPDB_API_KEY_FILE", dir.join("key"))
        .env("ABUSEIPDB_API_URL", mock.base_url())
        .env("REPUTE_CACHE", cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn concurrent_processes_share_one_lookup_per_address() {
    let mock = MockAbuseIpdb::start();
    // A slow answer widens the window in which processes miss on the same address together.
    mock.always(Fault::Delay(Duration::from_millis(80)));
    let dir = tempfile::tempdir().expect("tmp");
    let cache = dir.path().join("shared/cache.sqlite");
    std::fs::write(dir.path().join("key"), KEY).expect("key");
    let addrs = addresses();

    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            // Each process asks in its own order, so they collide on different addresses.
            let mut order = addrs.clone();
            order.rotate_left(p % addrs.len());
            if p % 2 == 1 {
                order.reverse();
            }
            check_command(dir.path(), &mock, &cache, &order)
                .env("REPUTE_TIMEOUT", "10s")
                .spawn()
                .expect("spawn repute")
        })
        .collect();

    let mut answers = 0;
    for child in children {
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "stderr: {err}");
        assert!(err.trim().is_empty(), "no warning or error expected: {err}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), addrs.len());
        for line in lines {
            let ip = line["ip"].as_str().expect("ip").to_string();
            assert_eq!(
                line["reputation"]["abuse_confidence_score"],
                derived_score(&ip),
                "{line}"
            );
            answers += 1;
        }
    }
    assert_eq!(answers, PROCESSES * addrs.len());

    let counts = mock.checks_per_ip();
    assert_eq!(counts.len(), addrs.len(), "{counts:?}");
    for a in &addrs {
        assert_eq!(counts.get(a), Some(&1), "calls for {a}: {counts:?}");
    }
    assert_eq!(mock.count("check"), addrs.len());

    let conn = rusqlite::Connection::open(&cache).expect("open");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM reputation_cache", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows as usize, addrs.len(), "no lost row");
    let leases: i64 = conn
        .query_row("SELECT count(*) FROM reputation_lease", [], |r| r.get(0))
        .expect("count");
    assert_eq!(leases, 0, "every lease released");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(check, "ok");
}

#[test]
fn an_outage_costs_one_call_per_address_not_one_per_process() {
    let mock = MockAbuseIpdb::start();
    mock.always(Fault::server_error(503));
    let dir = tempfile::tempdir().expect("tmp");
    let cache = dir.path().join("cache.sqlite");
    std::fs::write(dir.path().join("key"), KEY).expect("key");
    let addrs = ["185.220.101.1", "185.220.101.2", "185.220.101.3"];
    let children: Vec<_> = (0..16)
        .map(|_| {
            check_command(dir.path(), &mock, &cache, &addrs)
                .env("REPUTE_RETRIES", "0")
                .spawn()
                .expect("spawn repute")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            assert_eq!(v["reason"], "provider-failed", "{v}");
            assert_eq!(v["reputation"], serde_json::Value::Null);
        }
    }
    for a in addrs {
        assert_eq!(mock.checks_for(a), 1, "{:?}", mock.checks_per_ip());
    }
}
