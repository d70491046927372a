//! `repute scan --enrich` end to end: the real binary on a log written here, the mock
//! AbuseIPDB on 127.0.0.1, a real SQLite cache in a temporary directory.
//!
//! What must hold: one call per distinct public address shown (none for private ones, none
//! for rows `--top` hides), the scores the mock served in the table and in JSON events, a
//! second run served from the cache, failures shown per row without failing the scan, the
//! reason said once on stderr, and the key never printed.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use support::mock_abuseipdb::{Fault, MockAbuseIpdb, derived_score};

const KEY: &str = "scanenrichkey000000000000000000000000000000000000000000000000000000000000000077";

/// AS112 addresses (globally reachable, framing no one) and the mock's documented example.
const PUBLIC_A: &str = "192.31.196.23";
const PUBLIC_B: &str = "192.175.48.9";
const DOCUMENTED: &str = "118.25.6.39";
const PRIVATE_A: &str = "10.20.30.40";
const PRIVATE_B: &str = "192.168.1.5";

fn failed_password(second: u32, user: &str, ip: &str) -> String {
    format!(
        "Mar  1 10:00:{second:02} srv01 sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2",
        pid = 1000 + second,
        port = 40000 + second
    )
}

/// Several lines per address: PUBLIC_A 4 attempts (one written IPv4-mapped), PRIVATE_A 3,
/// DOCUMENTED 2, PRIVATE_B 1, PUBLIC_B 1, and a line that is no sshd event.
fn sample_log() -> String {
    let mut lines =
        vec!["Mar  1 09:59:00 srv01 CRON[99]: session opened for user root".to_string()];
    let plan = [
        (PUBLIC_A, "root"),
        (PRIVATE_A, "root"),
        (DOCUMENTED, "admin"),
        (PUBLIC_A, "oracle"),
        (PRIVATE_A, "git"),
        ("::ffff:192.31.196.23", "test"),
        (PUBLIC_B, "ubuntu"),
        (DOCUMENTED, "root"),
        (PRIVATE_A, "pi"),
        (PRIVATE_B, "root"),
        (PUBLIC_A, "admin"),
    ];
    for (i, (ip, user)) in plan.iter().enumerate() {
        lines.push(failed_password(i as u32, user, ip));
    }
    lines.join("\n") + "\n"
}

/// A scratch directory with the log, a key file and the cache.
struct Setup {
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("key"), KEY).expect("key file");
        let log = dir.path().join("auth.log");
        std::fs::write(&log, sample_log()).expect("log");
        Setup { dir, log }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("state/cache.sqlite")
    }

    /// `repute scan` wired to the mock by the environment, without a key.
    fn keyless(&self, mock: &MockAbuseIpdb) -> Command {
        let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("repute");
        for var in [
            "ABUSEIPDB_API_KEY",
            "ABUSEIPDB_API_KEY_FILE",
            "REPUTE_CONFIG",
            "REPUTE_TIMEOUT",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("ABUSEIPDB_API_URL", mock.base_url())
            .env("REPUTE_STATE_DIR", self.dir.path().join("state"))
            .env("REPUTE_CACHE", self.cache())
            .env("REPUTE_CONNECT_TIMEOUT", "1s")
            .env("REPUTE_RETRIES", "0")
            .arg("scan");
        cmd
    }

    /// As [`Setup::keyless`], with the key file in the environment.
    fn cmd(&self, mock: &MockAbuseIpdb) -> Command {
        let mut cmd = self.keyless(mock);
        cmd.env("ABUSEIPDB_API_KEY_FILE", self.dir.path().join("key"));
        cmd
    }
}

fn run(mut cmd: Command, args: &[&str], log: &Path) -> Output {
    let out = cmd.args(args).arg(log).output().expect("run");
    assert_no_key(&out);
    out
}

fn assert_no_key(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(KEY),
            "the key was printed"
        );
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The table as maps from header name to cell. Columns are two or more spaces apart, and
/// no cell holds two spaces in a row (cells like `- no key` or `root, admin` hold one).
fn table(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let split = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let mut lines = text.lines();
    let header = split(lines.next().expect("a header"));
    lines
        .take_while(|l| !l.starts_with("total:"))
        .map(|line| {
            let cells = split(line);
            assert_eq!(cells.len(), header.len(), "{line}");
            header.iter().cloned().zip(cells).collect()
        })
        .collect()
}

fn row<'a>(
    rows: &'a [std::collections::HashMap<String, String>],
    ip: &str,
) -> &'a std::collections::HashMap<String, String> {
    rows.iter()
        .find(|r| r["ADDRESS"] == ip)
        .unwrap_or_else(|| panic!("no row for {ip}"))
}

fn reputation_line(text: &str) -> &str {
    text.lines()
        .find(|l| l.starts_with("reputation:"))
        .unwrap_or_else(|| panic!("no reputation line in {text}"))
}

#[test]
fn the_table_gets_scores_with_one_call_per_public_address_then_the_cache() {
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let s = Setup::new();
    let out = run(s.cmd(&mock), &["--enrich"], &s.log);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "nothing failed, nothing to say");
    let text = stdout(&out);

    let calls = mock.checks_per_ip();
    assert_eq!(calls.len(), 3, "{calls:?}");
    for ip in [PUBLIC_A, PUBLIC_B, DOCUMENTED] {
        assert_eq!(calls.get(ip), Some(&1), "{ip}: {calls:?}");
    }
    assert_eq!(mock.checks_for(PRIVATE_A) + mock.checks_for(PRIVATE_B), 0);

    let rows = table(&text);
    let order: Vec<&str> = rows.iter().map(|r| r["ADDRESS"].as_str()).collect();
    assert_eq!(
        order,
        [PUBLIC_A, PRIVATE_A, DOCUMENTED, PRIVATE_B, PUBLIC_B],
        "still sorted by attempts, then by address: {text}"
    );
    assert_eq!(row(&rows, PUBLIC_A)["ATTEMPTS"], "4");
    let documented = row(&rows, DOCUMENTED);
    assert_eq!(documented["SCORE"], "100", "{text}");
    assert_eq!(documented["COUNTRY"], "CN");
    assert_eq!(documented["REPORTS"], "1");
    assert_eq!(documented["USAGE"], "Data Center/Web Hosting/Transit");
    for ip in [PUBLIC_A, PUBLIC_B] {
        let r = row(&rows, ip);
        assert_eq!(r["SCORE"], derived_score(ip).to_string(), "{ip}: {text}");
        assert_eq!(r["REPORTS"], (u64::from(derived_score(ip)) / 3).to_string());
        assert_eq!(r["COUNTRY"], "NL");
    }
    assert_eq!(row(&rows, PRIVATE_A)["SCORE"], "- private");
    assert_eq!(row(&rows, PRIVATE_B)["COUNTRY"], "-");
    assert_eq!(
        reputation_line(&text),
        "reputation: 3 from the API, 0 from the cache, 2 skipped (2 private)"
    );
    assert!(
        text.contains("total: 11 attempts (11 failures) from 5 addresses"),
        "{text}"
    );

    // The second run is served from the cache file: no new call, the same scores.
    let again = run(s.cmd(&mock), &["--enrich"], &s.log);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let again_text = stdout(&again);
    assert_eq!(mock.count("check"), 3, "no new call");
    assert_eq!(
        reputation_line(&again_text),
        "reputation: 0 from the API, 3 from the cache, 2 skipped (2 private)"
    );
    assert_eq!(row(&table(&again_text), DOCUMENTED)["SCORE"], "100");
}

#[test]
fn only_the_rows_shown_are_looked_up() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let out = run(
        s.cmd(&mock),
        &["--enrich", "--only-public", "--top", "2"],
        &s.log,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let rows = table(&text);
    let order: Vec<&str> = rows.iter().map(|r| r["ADDRESS"].as_str()).collect();
    assert_eq!(order, [PUBLIC_A, DOCUMENTED], "{text}");
    assert_eq!(mock.count("check"), 2);
    assert_eq!(mock.checks_for(PUBLIC_B), 0, "a hidden row costs no quota");
    assert_eq!(
        reputation_line(&text),
        "reputation: 2 from the API, 0 from the cache, 0 skipped"
    );
    assert!(text.contains("(2 shown)"), "{text}");
}

#[test]
fn without_a_key_the_table_is_printed_and_the_reason_said_once() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let plain = run(s.keyless(&mock), &[], &s.log);
    let out = run(s.keyless(&mock), &["--enrich"], &s.log);
    assert_eq!(
        out.status.code(),
        plain.status.code(),
        "exit code unchanged"
    );
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let rows = table(&text);
    assert_eq!(rows.len(), 5, "{text}");
    for ip in [PUBLIC_A, PUBLIC_B, DOCUMENTED] {
        assert_eq!(row(&rows, ip)["SCORE"], "- no key", "{text}");
    }
    assert_eq!(row(&rows, PRIVATE_A)["SCORE"], "- private");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("repute: no reputation for 3 public addresses: no API key configured"),
        "{err}"
    );
    assert_eq!(mock.count("check"), 0);
}

#[test]
fn a_failing_provider_is_shown_per_row_and_never_fails_the_scan() {
    let mock = MockAbuseIpdb::start();
    // A 401 whose body echoes the key (as a careless proxy might): it must not be printed.
    mock.always(Fault::status(
        401,
        &format!(r#"{{"errors":[{{"detail":"key {KEY} revoked","status":401}}]}}"#),
    ));
    let s = Setup::new();
    let out = run(s.cmd(&mock), &["--enrich", "--only-public"], &s.log);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for ip in [PUBLIC_A, PUBLIC_B, DOCUMENTED] {
        assert_eq!(row(&table(&text), ip)["SCORE"], "- key refused", "{text}");
    }
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("API key refused"), "{err}");

    // The daily quota runs out after one call: that row has a score, the others say why,
    // and no call is made once the quota is known to be spent.
    mock.clear_faults();
    mock.set_daily_quota(1);
    let quota_dir = Setup::new();
    let out = run(quota_dir.cmd(&mock), &["--enrich", "--only-public"], &s.log);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let rows = table(&text);
    assert_eq!(
        row(&rows, PUBLIC_A)["SCORE"],
        derived_score(PUBLIC_A).to_string()
    );
    for ip in [PUBLIC_B, DOCUMENTED] {
        assert_eq!(row(&rows, ip)["SCORE"], "- quota", "{text}");
    }
    // Three 401s before, then one answer saying no call remains: nothing after it.
    assert_eq!(
        mock.count("check"),
        3 + 1,
        "no call once the quota is spent"
    );
    assert!(
        stderr(&out).contains("daily quota exhausted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_events_of_public_addresses_carry_their_reputation() {
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let s = Setup::new();
    let plain = run(s.cmd(&mock), &["--format", "jsonl"], &s.log);
    assert_eq!(mock.count("check"), 0, "no lookup without --enrich");
    let out = run(s.cmd(&mock), &["--format", "jsonl", "--enrich"], &s.log);
    assert_eq!(out.status.code(), plain.status.code());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let plain_events: Vec<Value> = stdout(&plain)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 11);
    assert_eq!(events.len(), plain_events.len());
    for (event, plain) in events.iter().zip(&plain_events) {
        let mut without = event.clone();
        let reputation = without
            .as_object_mut()
            .expect("an object")
            .remove("reputation");
        assert_eq!(&without, plain, "the contract's fields are unchanged");
        let srcip = event["srcip"].as_str().expect("an address");
        if event["public"] == true {
            let r = reputation.expect("public events carry a reputation");
            assert_eq!(r["ip"], srcip);
            assert_eq!(r["class"], "public");
            let score = if srcip == DOCUMENTED {
                100
            } else {
                derived_score(srcip)
            };
            assert_eq!(r["reputation"]["abuse_confidence_score"], score, "{event}");
        } else {
            assert!(reputation.is_none(), "{event}");
        }
    }
    let first_a = events.iter().find(|e| e["srcip"] == PUBLIC_A).expect("A");
    assert_eq!(first_a["reputation"]["source"], "api");
    assert_eq!(
        mock.count("check"),
        3,
        "one call per distinct public address"
    );
    assert_eq!(
        mock.checks_for(PUBLIC_A),
        1,
        "the IPv4-mapped line is the same address"
    );

    let again = run(s.cmd(&mock), &["--format", "jsonl", "--enrich"], &s.log);
    let first: Value =
        serde_json::from_str(stdout(&again).lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["reputation"]["source"], "cache");
    assert_eq!(
        mock.count("check"),
        3,
        "the second run is served from the cache"
    );
}

#[test]
fn api_flags_need_enrich_and_a_bad_config_is_one_line() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let out = run(s.cmd(&mock), &["--cache", "none"], &s.log);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--enrich"), "{}", stderr(&out));

    let out = run(s.cmd(&mock), &["--enrich", "--max-age-days", "400"], &s.log);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("365"), "{err}");
    assert_eq!(stdout(&out), "", "nothing scanned with a bad configuration");
    assert_eq!(mock.count("check"), 0);
}

#[test]
fn a_provider_that_keeps_failing_is_left_alone_and_the_cache_still_answers() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let addresses: Vec<String> = (1..=6).map(|i| format!("192.31.196.{i}")).collect();
    let cached = &addresses[5];
    // The last row's address is in the cache from an earlier scan.
    let earlier = s.dir.path().join("earlier.log");
    std::fs::write(&earlier, failed_password(0, "root", cached) + "\n").expect("log");
    run(s.cmd(&mock), &["--enrich"], &earlier);
    assert_eq!(mock.count("check"), 1);

    // Two attempts from each address but the cached one, so it comes last.
    let mut log = String::new();
    for (i, ip) in addresses.iter().enumerate() {
        let times = if ip == cached { 1 } else { 2 };
        for t in 0..times {
            log += &(failed_password((i * 2 + t) as u32, "root", ip) + "\n");
        }
    }
    let path = s.dir.path().join("many.log");
    std::fs::write(&path, log).expect("log");
    mock.always(Fault::server_error(503));
    let out = run(s.cmd(&mock), &["--enrich"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        mock.count("check"),
        1 + 3,
        "three failures in a row, then no call: {text}"
    );
    let rows = table(&text);
    for ip in &addresses[..5] {
        assert_eq!(row(&rows, ip)["SCORE"], "- provider failed", "{text}");
    }
    assert_eq!(
        row(&rows, cached)["SCORE"],
        derived_score(cached).to_string()
    );
    assert_eq!(
        reputation_line(&text),
        "reputation: 0 from the API, 1 from the cache, 5 skipped (5 provider failed)"
    );
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("repute: no reputation for 5 public addresses: provider failed (HTTP 503)"),
        "{err}"
    );
}
