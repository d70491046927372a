//! `repute watch` with reputation, against the mock AbuseIPDB on 127.0.0.1: an address with
//! a score at or above the threshold is banned at its first failure; each address is looked
//! up once, at its first failure (never for a probe), however many follow; when the provider fails, counting
//! goes on and the address is banned by its tries.

mod support;
mod watch_support;

use std::process::{Command, Stdio};

use support::mock_abuseipdb::{Fault, MockAbuseIpdb, derived_score};
use watch_support::{Running, append, failure};

const KEY: &str = "watch-test-key-0123456789";
/// The mock answers this one as AbuseIPDB's documented example: score 100.
const KNOWN_BAD: &str = "118.25.6.39";

#[test]
fn a_bad_score_bans_at_once_and_a_failing_provider_leaves_counting() {
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let config = tmp.path().join("repute.toml");
    std::fs::write(
        &config,
        "[watch]\npoll_interval = \"20ms\"\nban_score = 90\n",
    )
    .expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_repute"))
        .arg("--config")
        .arg(&config)
        .args([
            "watch",
            "--dry-run",
            "--from-start",
            "--format",
            "jsonl",
            "--file",
        ])
        .arg(&log)
        .env("ABUSEIPDB_API_KEY", KEY)
        .env("ABUSEIPDB_API_URL", mock.base_url())
        .env("REPUTE_STATE_DIR", tmp.path().join("state"))
        .env("REPUTE_CACHE", tmp.path().join("cache.sqlite"))
        .env_remove("REPUTE_CONFIG")
        .env_remove("ABUSEIPDB_API_KEY_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut watch = Running::new(child);

    // A probe costs no lookup; the first failure does.
    append(
        &log,
        &[format!(
            "Nov 30 06:00:00 web1 sshd[9]: Connection closed by {KNOWN_BAD} port 50022 [preauth]"
        )],
    );
    watch.wait_json("the probe", |v| v["pid"] == 9 && v["outcome"] == "probe");
    assert_eq!(mock.checks_for(KNOWN_BAD), 0, "a probe was looked up");
    append(&log, &[failure(KNOWN_BAD, "root", 10)]);
    let ban = watch.wait_json("the ban on reputation", |v| {
        v["decision"] == "ban" && v["address"] == KNOWN_BAD
    });
    assert_eq!(ban["evidence"]["score"], 100, "{ban}");
    assert_eq!(ban["evidence"]["failures"], 1, "{ban}");
    assert!(
        ban["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("reputation"),
        "{ban}"
    );

    // A public address the mock scores low: three tries, one lookup, no ban.
    let low = (1..=250)
        .map(|n| format!("185.220.101.{n}"))
        .find(|ip| (1..50).contains(&derived_score(ip)))
        .expect("a low-scored address");
    append(
        &log,
        &(0..3)
            .map(|i| failure(&low, "admin", 20 + i))
            .collect::<Vec<_>>(),
    );
    watch.wait_json("the third try of the low address", |v| {
        v["srcip"] == low.as_str() && v["pid"] == 22
    });
    assert_eq!(mock.checks_for(&low), 1, "one lookup per address");

    // The provider fails: the address is counted and banned by its tries.
    mock.always(Fault::server_error(503));
    let down = "45.155.205.233";
    append(
        &log,
        &(0..5)
            .map(|i| failure(down, "oracle", 30 + i))
            .collect::<Vec<_>>(),
    );
    let ban = watch.wait_json("the ban by tries", |v| {
        v["decision"] == "ban" && v["address"] == down
    });
    assert_eq!(ban["evidence"]["failures"], 5, "{ban}");
    assert!(ban["evidence"]["score"].is_null(), "{ban}");
    let (status, output) = watch.terminate();
    assert!(status.success());
    assert!(
        !output
            .iter()
            .any(|l| l.contains("\"decision\":\"ban\"") && l.contains(&low)),
        "the low-scored address was banned: {output:?}"
    );
    assert!(
        !output.iter().any(|l| l.contains(KEY)),
        "the key in the output"
    );
}
