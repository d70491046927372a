//! `repute status` beyond watch's counters: the report state read from the report ledger (the
//! SQLite file shared by every process, or the fleet's Redis), and the fleet state (a Redis
//! store configured? answering? how many shared ban decisions live in it?), in the table and
//! in `--format json`. Reports go through `repute report` to the mock AbuseIPDB on 127.0.0.1;
//! the fleet is a real `redis-server` the test starts.

mod need;
mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use need::Need;
use repute::decisions::{Ban, Decisions, RedisDecisions};
use repute::fleet::{RedisOptions, RedisTarget};
use serde_json::Value;
use support::mock_abuseipdb::MockAbuseIpdb;
use support::redis_server::{RedisServer, free_port};

const KEY: &str = "statusdoorkey0000000000000000000000000000000000000000000000000000000000000000";

/// A scratch directory with a key file and a settings file; `store` is `REPUTE_STORE`
/// (`None`: the SQLite file in the state directory).
struct Setup {
    dir: tempfile::TempDir,
    store: Option<String>,
}

impl Setup {
    fn new(settings: &str, store: Option<String>) -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("key"), KEY).expect("key file");
        std::fs::write(dir.path().join("repute.toml"), settings).expect("settings");
        Setup { dir, store }
    }

    fn sqlite(&self) -> PathBuf {
        self.dir.path().join("state/repute.sqlite")
    }

    fn cmd(&self, mock: &MockAbuseIpdb) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
        for var in [
            "ABUSEIPDB_API_KEY",
            "RUST_LOG",
            "SSH_CONNECTION",
            "SSH_CLIENT",
        ] {
            cmd.env_remove(var);
        }
        let store = self
            .store
            .clone()
            .unwrap_or_else(|| self.sqlite().display().to_string());
        cmd.env("ABUSEIPDB_API_KEY_FILE", self.dir.path().join("key"))
            .env("ABUSEIPDB_API_URL", mock.base_url())
            .env("REPUTE_CONFIG", self.dir.path().join("repute.toml"))
            .env("REPUTE_STATE_DIR", self.dir.path().join("state"))
            .env("REPUTE_STORE", store)
            .env_remove("REPUTE_CACHE");
        cmd
    }

    fn report(&self, mock: &MockAbuseIpdb, ip: &str) -> Output {
        self.cmd(mock)
            .args(["report", ip, "--categories", "18,22"])
            .output()
            .expect("run repute report")
    }

    fn status(&self, mock: &MockAbuseIpdb, format: &str) -> Output {
        self.cmd(mock)
            .args(["status", "--format", format])
            .output()
            .expect("run repute status")
    }

    fn status_json(&self, mock: &MockAbuseIpdb) -> Value {
        let out = self.status(mock, "json");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("one JSON object")
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Two reports sent and one refused as a duplicate (AbuseIPDB's 15-minute rule): today's tally
/// in the SQLite ledger is 2, and the report quota is what the API's headers said.
#[test]
fn reports_sent_today_and_the_report_quota_come_from_the_sqlite_ledger() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new("[report]\nenabled = true\n", None);
    for ip in ["45.155.205.9", "185.220.101.4"] {
        let out = s.report(&mock, ip);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    // Reported by this store within 15 minutes: refused before any call, not counted.
    let again = s.report(&mock, "45.155.205.9");
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert_eq!(mock.accepted_reports().len(), 2);

    let status = s.status_json(&mock);
    let reports = &status["reports"];
    assert_eq!(reports["enabled"], true, "{status}");
    assert_eq!(reports["sent_today"], 2, "{status}");
    assert_eq!(reports["quota"]["limit"], 1000, "{status}");
    assert_eq!(reports["quota"]["remaining"], 999, "{status}");
    assert!(reports["error"].is_null(), "{status}");
    let fleet = &status["fleet"];
    assert!(fleet["store"].is_null(), "no shared store: {status}");
    assert!(fleet["reachable"].is_null(), "{status}");
    assert!(fleet["shared_bans"].is_null(), "{status}");

    let out = s.status(&mock, "table");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("fleet: none (store is this host's own; bans are not shared)\n"),
        "{table}"
    );
    assert!(
        table.contains("reports: on; 2 sent today (UTC); report quota: 999 of 1000 left (as of "),
        "{table}"
    );
}

/// Nothing reported yet, reporting off: zero today, the quota unknown, said as such.
#[test]
fn a_fresh_store_shows_no_report_and_no_quota() {
    let mock = MockAbuseIpdb::start();
    let s = Setup::new("", None);
    let status = s.status_json(&mock);
    assert_eq!(status["reports"]["enabled"], false, "{status}");
    assert_eq!(status["reports"]["sent_today"], 0, "{status}");
    assert!(status["reports"]["quota"].is_null(), "{status}");
    let table = String::from_utf8_lossy(&s.status(&mock, "table").stdout).into_owned();
    assert!(
        table.contains(
            "reports: off ([report] enabled = false); 0 sent today (UTC); report quota not known yet (no report answered)\n"
        ),
        "{table}"
    );
}

/// With the fleet's Redis as the store: its URL (no secret), reachable, the live shared ban
/// decisions of every host, and the reports tallied in Redis.
#[test]
fn the_fleets_store_its_shared_bans_and_its_report_tally_are_shown() {
    if !need::all(&[Need::Tool("redis-server"), Need::Tool("redis-cli")]) {
        return;
    }
    let redis = RedisServer::start();
    let target = RedisTarget::parse(&redis.url(), &RedisOptions::default()).expect("url");
    let decisions = RedisDecisions::new(target);
    for ip in ["45.155.205.233", "2a01:4f8::7"] {
        let ban = Ban::new(ip.parse().expect("ip"), Duration::from_secs(3600), "test");
        assert!(decisions.record(&ban).expect("record"));
    }
    // One that has ended already: not live, not counted.
    let mut ended = Ban::new(
        "185.220.101.9".parse().expect("ip"),
        Duration::from_secs(60),
        "test",
    );
    ended.until_ms = ended.decided_at_ms - 1000;
    let _ = decisions.record(&ended);

    let mock = MockAbuseIpdb::start();
    let s = Setup::new("", Some(redis.url()));
    let out = s.report(&mock, "45.155.205.9");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let status = s.status_json(&mock);
    let fleet = &status["fleet"];
    assert_eq!(
        fleet["store"],
        format!("redis://127.0.0.1:{}", redis.port()),
        "{status}"
    );
    assert_eq!(fleet["reachable"], true, "{status}");
    assert_eq!(fleet["shared_bans"], 2, "{status}");
    assert_eq!(status["reports"]["sent_today"], 1, "{status}");
    assert_eq!(status["reports"]["quota"]["remaining"], 999, "{status}");
    // The tally is Redis's, for every host: nothing of it in the local file.
    assert!(
        redis
            .cli(&["KEYS", "repute:report-sent:*"])
            .contains("repute:report-sent:"),
        "the day's tally is in Redis"
    );

    let table = String::from_utf8_lossy(&s.status(&mock, "table").stdout).into_owned();
    assert!(
        table.contains(&format!(
            "fleet: redis://127.0.0.1:{} reachable, 2 shared ban decisions active\n",
            redis.port()
        )),
        "{table}"
    );
    assert!(table.contains("reports: off ([report] enabled = false); 1 sent today (UTC)"));
}

/// A Redis store that does not answer is shown (exit 0), with why, and without its password;
/// the report ledger (in that Redis) is not asked again.
#[test]
fn an_unreachable_fleet_store_is_shown_not_fatal_and_its_password_stays_secret() {
    let mock = MockAbuseIpdb::start();
    let port = free_port();
    let s = Setup::new(
        "store_password_file = \"redis.password\"\n",
        Some(format!("redis://127.0.0.1:{port}")),
    );
    std::fs::write(
        s.dir.path().join("redis.password"),
        "hunter2-status-secret\n",
    )
    .expect("password file");
    let out = s.status(&mock, "json");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !text(&out).contains("hunter2-status-secret"),
        "{}",
        text(&out)
    );
    let status: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["fleet"]["reachable"], false, "{status}");
    assert_eq!(
        status["fleet"]["store"],
        format!("redis://127.0.0.1:{port}"),
        "{status}"
    );
    assert!(status["fleet"]["error"].is_string(), "{status}");
    assert!(status["reports"]["sent_today"].is_null(), "{status}");
    assert!(status["reports"]["error"].is_string(), "{status}");

    let out = s.status(&mock, "table");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&format!("fleet: redis://127.0.0.1:{port} NOT reachable: ")),
        "{table}"
    );
    assert!(!table.contains("hunter2-status-secret"));
}
