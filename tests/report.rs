//! Reporting end to end: `repute report` and `repute scan --format abuseipdb-csv` as real
//! processes, the library's `Reporter::report_ban` in-process, a real SQLite store shared by
//! those processes, the mock AbuseIPDB on 127.0.0.1 (its report endpoint answers the
//! 15-minute 429 as the real one does).

mod need;
mod support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use repute::config::{ApiKey, Config, StoreSetting};
use repute::report::{Evidence, NotReported, ReportOutcome, Reporter};
use serde_json::Value;
use support::mock_abuseipdb::MockAbuseIpdb;

const KEY: &str = "reportdoorkey00000000000000000000000000000000000000000000000000000000000000000";

/// A host name and user names that appear in the evidence and must never leave.
const OUR_HOST: &str = "web-prod-7";
const ACCEPTED_USER: &str = "alice9x";

/// A scratch directory with a key file and a settings file, and the command wired to them and
/// to the mock.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(settings: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("key"), KEY).expect("key file");
        std::fs::write(dir.path().join("repute.toml"), settings).expect("settings");
        Setup { dir }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("state/repute.sqlite")
    }

    fn audit(&self) -> PathBuf {
        self.dir.path().join("state/report-audit.jsonl")
    }

    fn cmd(&self, mock: &MockAbuseIpdb) -> Command {
        Command::from_std(self.std_cmd(mock))
    }

    fn std_cmd(&self, mock: &MockAbuseIpdb) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("repute"));
        for var in [
            "ABUSEIPDB_API_KEY",
            "RUST_LOG",
            "SSH_CONNECTION",
            "SSH_CLIENT",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("ABUSEIPDB_API_KEY_FILE", self.dir.path().join("key"))
            .env("ABUSEIPDB_API_URL", mock.base_url())
            .env("REPUTE_CONFIG", self.dir.path().join("repute.toml"))
            .env("REPUTE_STATE_DIR", self.dir.path().join("state"))
            .env("REPUTE_CACHE", self.store())
            .env("REPUTE_CONNECT_TIMEOUT", "1s");
        cmd
    }

    fn report(&self, mock: &MockAbuseIpdb, args: &[&str]) -> Output {
        self.cmd(mock)
            .arg("report")
            .args(args)
            .output()
            .expect("run repute report")
    }

    fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(self.audit())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per audit line"))
            .collect()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_report_sends_its_categories_and_comment_and_is_audited() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new("");
    let out = s.report(
        &mock,
        &[
            "45.155.205.9",
            "--categories",
            "brute-force,ssh",
            "--comment",
            "sshd: 3 failed logins",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("reported 45.155.205.9"));
    let sent = mock.accepted_reports();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ip, "45.155.205.9");
    assert_eq!(sent[0].categories, "18,22");
    assert_eq!(sent[0].comment.as_deref(), Some("sshd: 3 failed logins"));
    let audit = s.audit_lines();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["action"], "reported");
    assert_eq!(audit[0]["ip"], "45.155.205.9");
    assert_eq!(audit[0]["categories"], serde_json::json!([18, 22]));
    assert_eq!(audit[0]["comment"], "sshd: 3 failed logins");
    assert_eq!(audit[0]["by"], "report");
    let text = std::fs::read_to_string(s.audit()).unwrap_or_default();
    assert!(!text.contains(KEY), "the key is never audited");
}

#[test]
fn a_second_report_within_15_minutes_sends_nothing_from_a_new_process() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new("");
    let args = ["45.155.205.20", "--categories", "18,22"];
    let first = s.report(&mock, &args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    // A second process on the same store: a restart, or another door.
    let second = s.report(&mock, &args);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("45.155.205.20 not reported: reported at "),
        "{}",
        stderr(&second)
    );
    assert_eq!(
        mock.count("report"),
        1,
        "the second one never reached AbuseIPDB"
    );
    let audit = s.audit_lines();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1]["action"], "not_reported");
    assert_eq!(audit[1]["reason_code"], "reported-recently");
}

#[test]
fn processes_reporting_one_address_at_once_send_one_report() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new("");
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = s.std_cmd(&mock);
            cmd.args(["report", "45.155.205.30", "--categories", "18,22"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let codes: Vec<Option<i32>> = children
        .into_iter()
        .map(|mut c| c.wait().expect("wait").code())
        .collect();
    assert_eq!(mock.count("report"), 1, "codes {codes:?}");
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(1)).count(),
        3,
        "{codes:?}"
    );
}

#[test]
fn a_duplicate_429_is_already_reported_never_retried_and_remembered() {
    let mock = MockAbuseIpdb::start();
    // Another host (its own store) reported the address a moment ago.
    let other_host = Setup::new("");
    let out = other_host.report(&mock, &["45.155.205.40", "--categories", "22"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = Setup::new("");
    let out = s.report(&mock, &["45.155.205.40", "--categories", "22"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already reported"),
        "{}",
        stderr(&out)
    );
    assert_eq!(mock.count("report"), 2, "the 429 is not retried");
    assert_eq!(mock.duplicate_reports(), 1);
    assert_eq!(s.audit_lines()[0]["action"], "already_reported");
    // The answer is remembered: the next try does not even ask.
    let out = s.report(&mock, &["45.155.205.40", "--categories", "22"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(mock.count("report"), 2);
}

#[test]
fn non_public_and_allowlisted_addresses_are_never_reported() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new("allowlist = [\"81.2.69.0/24\"]\n");
    for (ip, why) in [
        ("10.0.0.1", "not a public address (private)"),
        ("127.0.0.1", "not a public address (loopback)"),
        ("::ffff:192.168.1.4", "not a public address (private)"),
        ("81.2.69.77", "on the allowlist (81.2.69.0/24)"),
    ] {
        let out = s.report(&mock, &[ip, "--categories", "18"]);
        assert_eq!(out.status.code(), Some(1), "{ip}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{ip}: {}", stderr(&out));
    }
    assert_eq!(mock.count("report"), 0);
    assert_eq!(s.audit_lines().len(), 4);
}

#[test]
fn a_spent_report_quota_stops_reports_apart_from_checks() {
    let mock = MockAbuseIpdb::start();
    mock.set_report_quota(1);
    let s = Setup::new("");
    assert_eq!(
        s.report(&mock, &["45.155.205.50", "--categories", "18"])
            .status
            .code(),
        Some(0)
    );
    // The answer said no report is left today: the next one is not even sent.
    let out = s.report(&mock, &["45.155.205.51", "--categories", "18"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("report quota is spent until"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        mock.count("report"),
        1,
        "no call once the headers said 0 left"
    );
    // A store that knew nothing learns it from the quota 429, and stops there.
    let fresh = Setup::new("");
    let out = fresh.report(&mock, &["45.155.205.52", "--categories", "18"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("report quota is spent until"),
        "{}",
        stderr(&out)
    );
    let out = fresh.report(&mock, &["45.155.205.53", "--categories", "18"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(mock.count("report"), 2, "no call while the quota is spent");
    // Checks have their own quota: a lookup still goes out.
    let out = s
        .cmd(&mock)
        .args(["check", "--format", "json", "45.155.205.52"])
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mock.count("check"), 1);
}

#[test]
fn a_given_comment_is_capped_at_1024_characters() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new("");
    let long = "x".repeat(3000);
    let out = s.report(
        &mock,
        &["45.155.205.60", "--categories", "18", "--comment", &long],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sent = mock.accepted_reports();
    assert_eq!(sent[0].comment.as_ref().map(String::len), Some(1024));
}

#[test]
fn bad_arguments_are_errors_before_anything_is_sent() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new("");
    let out = s.report(&mock, &["45.155.205.70", "--categories", "18,99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown category `99`"),
        "{}",
        stderr(&out)
    );
    let out = s.report(
        &mock,
        &["45.155.205.70", "host.example", "--categories", "18"],
    );
    assert_eq!(out.status.code(), Some(2));
    // The one address error every command gives (`check`, `block`, `report` alike).
    assert!(
        stderr(&out).contains("\"host.example\" is not an IPv4 or IPv6 address"),
        "{}",
        stderr(&out)
    );
    assert_eq!(mock.count("report"), 0);
    assert_eq!(stderr(&out).lines().count(), 1);
}

// ---- The library API `watch` calls ----

/// A log where `185.220.101.50` tries user names (one is this host's name, two exist here)
/// and one succeeds, and `185.220.101.23` only probes.
fn auth_log() -> String {
    let h = OUR_HOST;
    let mut lines = Vec::new();
    let mut pid = 4000;
    for (i, user) in ["zq_admin7", "root", "daemon", h, "oracle_x1", ACCEPTED_USER]
        .iter()
        .enumerate()
    {
        pid += 1;
        let sec = 10 + i;
        lines.push(format!(
            "Nov 30 05:01:{sec:02} {h} sshd[{pid}]: Invalid user {user} from 185.220.101.50 port {}",
            40000 + i
        ));
        lines.push(format!(
            "Nov 30 05:01:{sec:02} {h} sshd[{pid}]: Failed password for invalid user {user} from 185.220.101.50 port {} ssh2",
            40000 + i
        ));
    }
    lines.push(format!(
        "Nov 30 05:04:12 {h} sshd[4100]: Accepted password for {ACCEPTED_USER} from 185.220.101.50 port 50000 ssh2"
    ));
    for i in 0..3 {
        lines.push(format!(
            "Nov 30 05:0{i}:30 {h} sshd[{}]: Connection closed by 185.220.101.23 port {} [preauth]",
            4200 + i,
            33000 + i
        ));
    }
    // Private and allowlisted attackers: never in a report or a CSV row.
    lines.push(format!(
        "Nov 30 05:05:00 {h} sshd[4300]: Failed password for root from 192.168.7.7 port 1 ssh2"
    ));
    lines.push(format!(
        "Nov 30 05:05:01 {h} sshd[4301]: Failed password for root from 81.2.69.200 port 2 ssh2"
    ));
    lines.join("\n") + "\n"
}

fn evidence_for(ip: &str) -> Evidence {
    let now: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().expect("time");
    let mut parser = repute::sshd::Parser::new(now);
    let mut evidence = Evidence::new();
    let want: IpAddr = ip.parse().expect("ip");
    // As `watch` and `scan` gather it: lines with their connection's attempt counts.
    for line in auth_log().lines() {
        if let Some(event) = parser.parse_line_ref(line)
            && event.srcip == Some(want)
        {
            evidence.add_event(&event);
        }
    }
    evidence
}

fn config(dir: &Path, mock: &MockAbuseIpdb, user_names: bool) -> Config {
    let mut config = Config {
        api_key: Some(ApiKey::new(KEY)),
        api_url: mock.base_url(),
        state_dir: dir.join("state"),
        cache: StoreSetting::Sqlite(dir.join("state/repute.sqlite")),
        ..Config::default()
    };
    config.report.user_names = user_names;
    config
}

/// Words of ours that must never be in a comment.
fn ours() -> Vec<String> {
    let mut words = vec![
        OUR_HOST.to_string(),
        ACCEPTED_USER.to_string(),
        "root".to_string(),
        "daemon".to_string(),
        "185.220.101.50".to_string(),
        "185.220.101.23".to_string(),
    ];
    if let Some(host) = repute::report::comment::this_host_name() {
        words.push(host);
    }
    words
}

#[test]
fn a_ban_report_has_the_evidence_categories_and_a_redacted_comment() {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let reporter =
        Reporter::for_config(&config(dir.path(), &mock, false), "watch").expect("reporter");
    let brute = evidence_for("185.220.101.50");
    let outcome = reporter.report_ban("185.220.101.50".parse().expect("ip"), &brute);
    assert!(outcome.is_reported(), "{outcome:?}");
    let probes = evidence_for("185.220.101.23");
    let outcome = reporter.report_ban("185.220.101.23".parse().expect("ip"), &probes);
    assert!(outcome.is_reported(), "{outcome:?}");
    let sent = mock.accepted_reports();
    assert_eq!(sent[0].categories, "18,22");
    assert_eq!(sent[1].categories, "14,22");
    let comment = sent[0].comment.clone().unwrap_or_default();
    assert!(
        comment.starts_with(
            "sshd: 6 failed login attempts (6 invalid user); 6 user names tried; over 5 s, "
        ),
        "{comment}"
    );
    assert!(comment.ends_with(" 05:01:10 to 05:01:15 UTC"), "{comment}");
    assert!(
        sent[1]
            .comment
            .as_deref()
            .unwrap_or("")
            .starts_with("sshd: 3 pre-auth probes (3 conn closed preauth); over 2 min, ")
    );
    // The attack's first moment goes as AbuseIPDB's timestamp.
    assert!(
        sent[0]
            .timestamp
            .as_deref()
            .is_some_and(|t| t.ends_with("05:01:10+00:00")),
        "{:?}",
        sent[0].timestamp
    );
    for report in &sent {
        let text = report.comment.as_deref().unwrap_or("");
        for word in ours()
            .iter()
            .chain(["zq_admin7".to_string(), "oracle_x1".to_string()].iter())
        {
            assert!(!text.contains(word.as_str()), "{word} in {text}");
        }
    }
    // The same address again: the ledger says no, nothing is sent.
    let again = reporter.report_ban("185.220.101.50".parse().expect("ip"), &brute);
    assert!(
        matches!(
            again,
            ReportOutcome::NotReported(NotReported::RecentlyReported { .. })
        ),
        "{again:?}"
    );
    assert_eq!(mock.count("report"), 2);
}

#[test]
fn opted_in_user_names_never_include_names_of_this_host() {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let reporter =
        Reporter::for_config(&config(dir.path(), &mock, true), "watch").expect("reporter");
    let outcome = reporter.report_ban(
        "185.220.101.50".parse().expect("ip"),
        &evidence_for("185.220.101.50"),
    );
    assert!(outcome.is_reported(), "{outcome:?}");
    let comment = mock.accepted_reports()[0]
        .comment
        .clone()
        .unwrap_or_default();
    assert!(
        comment.contains("(including oracle_x1, zq_admin7)"),
        "{comment}"
    );
    for word in ours() {
        assert!(!comment.contains(&word), "{word} in {comment}");
    }
}

#[test]
fn a_dry_run_and_an_empty_evidence_send_nothing_but_are_audited() {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let mut reporter =
        Reporter::for_config(&config(dir.path(), &mock, false), "watch").expect("reporter");
    let ip: IpAddr = "185.220.101.50".parse().expect("ip");
    let empty = reporter.report_ban(ip, &Evidence::new());
    assert!(
        matches!(empty, ReportOutcome::NotReported(NotReported::NoEvidence)),
        "{empty:?}"
    );
    reporter.dry_run = true;
    let dry = reporter.report_ban(ip, &evidence_for("185.220.101.50"));
    assert!(
        matches!(dry, ReportOutcome::NotReported(NotReported::DryRun)),
        "{dry:?}"
    );
    assert_eq!(mock.count("report"), 0);
    let audit =
        std::fs::read_to_string(dir.path().join("state/report-audit.jsonl")).unwrap_or_default();
    let lines: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["dry_run"], true);
    assert!(
        lines[1]["comment"]
            .as_str()
            .is_some_and(|c| c.starts_with("sshd: 6 failed login attempts"))
    );
}

// ---- The mock answers as AbuseIPDB does ----

#[test]
fn the_mock_takes_json_bodies_and_answers_the_duplicate_as_documented() {
    if !need::all(&[need::Need::Corpus]) {
        return;
    }
    let mock = MockAbuseIpdb::start();
    let url = format!("{}/report", mock.base_url());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let send = || {
        agent
            .post(&url)
            .header("Key", KEY)
            .header("Accept", "application/json")
            .send_json(serde_json::json!({"ip": "45.155.205.80", "categories": [18, 22], "comment": "json body"}))
            .expect("post")
    };
    let mut first = send();
    assert_eq!(first.status().as_u16(), 200);
    let body: Value = first.body_mut().read_json().expect("json");
    assert_eq!(body["data"]["ipAddress"], "45.155.205.80");
    assert_eq!(mock.accepted_reports()[0].categories, "18,22");
    let mut second = send();
    assert_eq!(second.status().as_u16(), 429);
    let body: Value = second.body_mut().read_json().expect("json");
    let documented_path =
        need::shared("corpus/abuseipdb/error-429-duplicate-report.json").expect("corpus");
    let documented: Value =
        serde_json::from_str(&std::fs::read_to_string(documented_path).expect("read"))
            .expect("json");
    // Same shape and text as the documented answer, with this address.
    let expected = serde_json::to_string(&documented)
        .expect("text")
        .replace("127.0.0.2", "45.155.205.80");
    assert_eq!(body.to_string(), expected);
    // 15 minutes later the address may be reported again.
    mock.advance_report_clock(std::time::Duration::from_secs(15 * 60));
    assert_eq!(send().status().as_u16(), 200);
}

// ---- scan --format abuseipdb-csv ----

#[test]
fn the_backlog_csv_parses_as_abuseipdbs_format_and_leaks_nothing() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new("allowlist = [\"81.2.69.0/24\"]\n");
    let log = s.dir.path().join("auth.log");
    std::fs::write(&log, auth_log()).expect("log");
    let out = s
        .cmd(&mock)
        .args(["scan", "--format", "abuseipdb-csv"])
        .arg(&log)
        .output()
        .expect("scan");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mock.requests().len(), 0, "a CSV asks nothing of AbuseIPDB");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header = reader.headers().expect("header").clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        ["IP", "Categories", "ReportDate", "Comment"]
    );
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.expect("a well-formed row");
        let ip: IpAddr = record[0].parse().expect("IP column is an address");
        for id in record[1].split(',') {
            let id: u8 = id.parse().expect("category id");
            assert!((1..=23).contains(&id), "{id}");
        }
        let date: jiff::Timestamp = record[2]
            .parse()
            .expect("ReportDate is ISO 8601 with offset");
        assert!(record[3].chars().count() <= 1024);
        for word in ours() {
            if word != ip.to_string() {
                assert!(!record[3].contains(&word), "{word} in {:?}", &record[3]);
            }
        }
        assert!(!record[3].contains("zq_admin7"));
        rows.push((
            ip.to_string(),
            record[1].to_string(),
            date,
            record[3].to_string(),
        ));
    }
    let ips: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        ips,
        ["185.220.101.50", "185.220.101.23"],
        "no private, allowlisted or login-only row"
    );
    assert_eq!(rows[0].1, "18,22");
    assert_eq!(rows[1].1, "14,22");
    assert!(
        rows[0].3.starts_with("sshd: 6 failed login attempts"),
        "{}",
        rows[0].3
    );
    assert_eq!(rows[0].2.strftime("%H:%M:%S").to_string(), "05:01:10");

    // Opted in, the CSV lists the names tried that are nobody's here, and only those.
    std::fs::write(
        s.dir.path().join("repute.toml"),
        "allowlist = [\"81.2.69.0/24\"]\n[report]\nuser_names = true\n",
    )
    .expect("settings");
    let out = s
        .cmd(&mock)
        .args(["scan", "--format", "abuseipdb-csv"])
        .arg(&log)
        .output()
        .expect("scan");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let first = reader
        .records()
        .next()
        .expect("a row")
        .expect("well formed");
    assert!(
        first[3].contains("(including oracle_x1, zq_admin7)"),
        "{:?}",
        &first[3]
    );
    for word in ours() {
        if word != first[0] {
            assert!(!first[3].contains(&word), "{word} in {:?}", &first[3]);
        }
    }
}
