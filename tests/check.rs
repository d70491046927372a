//! `repute check` end to end: the real binary, a real SQLite file, the mock AbuseIPDB on
//! 127.0.0.1.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use support::mock_abuseipdb::{Fault, MockAbuseIpdb, derived_score};

const KEY: &str = "checkdoorkey0000000000000000000000000000000000000000000000000000000000000000000";

/// A scratch directory with a key file, and the command wired to it and to the mock.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("key"), KEY).expect("key file");
        Setup { dir }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("state/cache.sqlite")
    }

    fn cmd(&self, mock: &MockAbuseIpdb) -> Command {
        let mut cmd = Command::cargo_bin("repute").expect("binary");
        for var in [
            "ABUSEIPDB_API_KEY",
            "REPUTE_CONFIG",
            "REPUTE_TIMEOUT",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("ABUSEIPDB_API_KEY_FILE", self.dir.path().join("key"))
            .env("ABUSEIPDB_API_URL", mock.base_url())
            .env("REPUTE_STATE_DIR", self.dir.path().join("state"))
            .env("REPUTE_CACHE", self.cache())
            .env("REPUTE_CONNECT_TIMEOUT", "1s")
            .arg("check");
        cmd
    }
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn json_output_follows_the_contract_and_the_second_run_hits_the_cache() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let args = [
        "--format",
        "json",
        "118.25.6.39",
        "10.0.0.1",
        "2a00:1450:4001::200e",
    ];
    let out = s.cmd(&mock).args(args).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);

    let known = &lines[0];
    assert_eq!(known["ip"], "118.25.6.39");
    assert_eq!(known["class"], "public");
    assert_eq!(known["source"], "api");
    let rep = &known["reputation"];
    assert_eq!(rep["abuse_confidence_score"], 100);
    assert_eq!(rep["country_code"], "CN");
    assert_eq!(rep["usage_type"], "Data Center/Web Hosting/Transit");
    assert_eq!(rep["isp"], "Tencent Cloud Computing (Beijing) Co. Ltd");
    assert_eq!(rep["domain"], "tencent.com");
    assert_eq!(rep["total_reports"], 1);
    assert_eq!(rep["num_distinct_users"], 1);
    assert_eq!(rep["last_reported_at"], "2018-12-20T20:55:14+00:00");
    assert_eq!(rep["is_tor"], false);
    assert_eq!(rep["is_whitelisted"], false);
    assert!(known.get("reason").is_none());

    let private = &lines[1];
    assert_eq!(
        (&private["class"], &private["source"]),
        (&Value::from("private"), &Value::from("skipped"))
    );
    assert_eq!(private["reputation"], Value::Null);
    assert_eq!(private["reason"], "not-public");

    assert_eq!(lines[2]["class"], "public");
    assert_eq!(
        lines[2]["reputation"]["abuse_confidence_score"],
        derived_score("2a00:1450:4001::200e")
    );

    let again = s.cmd(&mock).args(args).output().expect("run");
    let lines = json_lines(&again);
    assert_eq!(lines[0]["source"], "cache");
    assert_eq!(lines[2]["source"], "cache");
    assert_eq!(
        lines[0]["reputation"]["usage_type"],
        "Data Center/Web Hosting/Transit"
    );
    assert_eq!(
        mock.count("check"),
        2,
        "two public addresses, one call each"
    );
    assert_eq!(mock.checks_for("10.0.0.1"), 0);
}

#[test]
fn the_table_names_each_address() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let out = s
        .cmd(&mock)
        .args(["118.25.6.39", "192.168.1.1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ADDRESS"), "{text}");
    assert!(
        lines[1].starts_with("118.25.6.39") && lines[1].contains("100") && lines[1].contains("CN"),
        "{text}"
    );
    assert!(
        lines[2].contains("not a public address (private)"),
        "{text}"
    );
}

#[test]
fn provider_text_in_the_table_is_escaped_as_scan_escapes_it() {
    let mock = MockAbuseIpdb::start();
    // The provider's text is not ours: an ISP (or usage type, or country) carrying an ANSI
    // colour, a carriage return and a newline must neither recolour the terminal nor forge
    // a row of its own.
    mock.set_answer(
        "45.155.205.233",
        r#"{"ipAddress":"45.155.205.233","isPublic":true,"ipVersion":4,"isWhitelisted":false,
"abuseConfidenceScore":97,"countryCode":"N\u001bL","usageType":"Data Center\r",
"isp":"Evil \u001b[31mNet\n45.155.205.234  public  api  0  NL","domain":"evil.example",
"hostnames":["a\u001b]0;pwned\u0007"],"isTor":false,"totalReports":3,"numDistinctUsers":2,
"lastReportedAt":"2026-11-27T08:15:00+00:00"}"#,
    );
    let s = Setup::new();
    let out = s.cmd(&mock).args(["45.155.205.233"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2, "a header and one row: {text:?}");
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "no control character reaches the terminal: {text:?}"
    );
    let row = text.lines().nth(1).unwrap_or_default();
    assert!(row.contains(r"Evil \u{1b}[31mNet\n45.155.205.234"), "{row}");
    assert!(row.contains(r"Data Center\r"), "{row}");
    assert!(row.contains(r"N\u{1b}L"), "{row}");
    // JSON keeps the provider's text exactly (the serializer escapes it).
    let out = s
        .cmd(&mock)
        .args(["--format", "json", "45.155.205.233"])
        .output()
        .expect("run");
    let lines = json_lines(&out);
    assert_eq!(
        lines[0]["reputation"]["isp"],
        "Evil \u{1b}[31mNet\n45.155.205.234  public  api  0  NL"
    );
}

#[test]
fn an_invalid_address_is_one_line_exit_2_and_no_lookup() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let out = s
        .cmd(&mock)
        .args(["8.8.8.8", "8.8.8.256"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("8.8.8.256"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        mock.requests().len(),
        0,
        "nothing looked up before every argument parsed"
    );
}

/// Arguments, environment, and the texts the error must contain.
type Case = (Vec<String>, Vec<(&'static str, String)>, Vec<&'static str>);

#[test]
fn bad_settings_are_one_line_errors_naming_the_input() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let config = s.dir.path().join("repute.toml");
    std::fs::write(&config, "max_age_days = 30\nthreshold = 50\n").expect("config");
    let cases: Vec<Case> = vec![
        (
            vec!["--max-age-days".into(), "0".into(), "8.8.8.8".into()],
            vec![],
            vec!["max age", "0"],
        ),
        (
            vec!["8.8.8.8".into()],
            vec![("REPUTE_CACHE", "redis://app:hunter2@127.0.0.1:6379".into())],
            vec!["REPUTE_CACHE", "store_password_file"],
        ),
        (
            vec!["8.8.8.8".into()],
            vec![("ABUSEIPDB_API_KEY_FILE", "/nonexistent/key".into())],
            vec!["/nonexistent/key"],
        ),
        (
            vec![
                "--config".into(),
                config.display().to_string(),
                "8.8.8.8".into(),
            ],
            vec![],
            vec!["threshold", "repute.toml"],
        ),
        (
            vec![
                "--config".into(),
                "/nonexistent/repute.toml".into(),
                "8.8.8.8".into(),
            ],
            vec![],
            vec!["/nonexistent/repute.toml"],
        ),
    ];
    for (args, env, expected) in cases {
        let mut cmd = s.cmd(&mock);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.args(&args).output().expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        for e in expected {
            assert!(err.contains(e), "{args:?}: `{e}` not in {err}");
        }
        assert!(
            !err.contains("hunter2"),
            "a store password in the error: {err}"
        );
    }
    assert_eq!(mock.requests().len(), 0);
}

#[test]
fn cache_none_writes_no_file_and_calls_every_time() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    for _ in 0..2 {
        let out = s
            .cmd(&mock)
            .env("REPUTE_CACHE", "none")
            .args(["--format", "json", "9.9.9.9"])
            .output()
            .expect("run");
        assert_eq!(json_lines(&out)[0]["source"], "api", "{}", stderr(&out));
    }
    assert_eq!(mock.checks_for("9.9.9.9"), 2);
    assert!(
        !s.dir.path().join("state").exists(),
        "no state directory made"
    );
}

#[test]
fn the_wazuh_hook_url_form_is_accepted() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let out = s
        .cmd(&mock)
        .env("ABUSEIPDB_API_URL", mock.check_url())
        .args(["--format", "json", "9.9.9.9"])
        .output()
        .expect("run");
    assert_eq!(json_lines(&out)[0]["source"], "api", "{}", stderr(&out));
}

#[test]
fn a_remaining_count_of_zero_stops_every_later_call() {
    let mock = MockAbuseIpdb::start();
    mock.set_daily_quota(1);
    let s = Setup::new();
    let first = s
        .cmd(&mock)
        .args(["--format", "json", "9.9.9.9", "45.33.32.156"])
        .output()
        .expect("run");
    assert_eq!(first.status.code(), Some(1), "a failed lookup exits 1");
    let lines = json_lines(&first);
    assert_eq!(lines[0]["source"], "api");
    assert_eq!(lines[1]["reason"], "quota-exhausted");
    assert_eq!(
        mock.count("check"),
        1,
        "X-RateLimit-Remaining: 0 was enough to stop"
    );
}

#[test]
fn a_quota_429_stops_later_processes_from_calling() {
    let mock = MockAbuseIpdb::start();
    mock.push_faults([Fault::quota(3600)]);
    let s = Setup::new();
    let first = s
        .cmd(&mock)
        .args(["--format", "json", "45.33.32.156"])
        .output()
        .expect("run");
    assert_eq!(first.status.code(), Some(1));
    assert_eq!(json_lines(&first)[0]["reason"], "quota-exhausted");

    let second = s
        .cmd(&mock)
        .args(["--format", "json", "45.33.32.157", "9.9.9.9"])
        .output()
        .expect("run");
    let lines = json_lines(&second);
    for line in &lines {
        assert_eq!(line["reason"], "quota-exhausted", "{line}");
        assert!(
            line["detail"].as_str().is_some_and(|d| d.contains("until")),
            "{line}"
        );
    }
    assert_eq!(
        mock.count("check"),
        1,
        "no call while the shared quota state says spent"
    );
}

#[test]
fn a_provider_that_hangs_gives_a_reason_not_a_hang() {
    let mock = MockAbuseIpdb::start();
    mock.always(Fault::Hang);
    let s = Setup::new();
    let out = s
        .cmd(&mock)
        .env("REPUTE_TIMEOUT", "500ms")
        .args(["--format", "json", "9.9.9.9"])
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["reason"], "provider-failed");
    assert!(
        line["detail"]
            .as_str()
            .is_some_and(|d| d.contains("timed out")),
        "{line}"
    );
    assert!(!cache_has_rows(&s.cache()), "failures are not cached");
}

#[test]
fn without_a_key_the_reason_says_so() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new();
    let out = s
        .cmd(&mock)
        .env_remove("ABUSEIPDB_API_KEY_FILE")
        .args(["--format", "json", "9.9.9.9"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out)[0]["reason"], "no-api-key");
    assert_eq!(mock.requests().len(), 0);
}

fn cache_has_rows(path: &Path) -> bool {
    let conn = rusqlite::Connection::open(path).expect("open cache");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM reputation_cache", [], |r| r.get(0))
        .expect("count");
    n > 0
}
