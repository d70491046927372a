//! `repute watch` looks addresses up through the engine's circuit breaker, the one every
//! command shares (watch no longer keeps a pause of its own): against the mock AbuseIPDB on
//! 127.0.0.1, a failing provider trips it after three failed lookups, an address met while
//! it is open costs no call, and once the provider is back and the breaker's pause is over,
//! a new address's first failure is looked up again and banned on its score.
//!
//! The watch runs in this process (the library's `Watch`, a real file, real HTTP to the
//! mock) so that the breaker's pause can be seconds instead of the command's minute.

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use repute::block::SafetyPolicy;
use repute::config::{ApiKey, Config, StoreSetting};
use repute::engine::Engine;
use repute::policy::PolicySettings;
use repute::source::StartAt;
use repute::watch::metrics::Metrics;
use repute::watch::{OutputFormat, Parts, Watch, WatchOptions};
use support::mock_abuseipdb::{Fault, MockAbuseIpdb};

const KEY: &str = "watch-breaker-key-0123456789";
/// The mock answers this one as AbuseIPDB's documented example: score 100.
const KNOWN_BAD: &str = "118.25.6.39";
/// The breaker's pause in this test (the command's is a minute): long enough that the fourth
/// address is surely read while the breaker is open, on a loaded machine too.
const PAUSE: Duration = Duration::from_secs(5);
/// The longest any wait for watch's output lasts.
const WAIT: Duration = Duration::from_secs(20);

/// Watch's stdout, kept for the test to read.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("output").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    fn records(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8_lossy(&self.0.lock().expect("output")).into_owned();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn failure(ip: &str, pid: u32) -> String {
    format!(
        "Nov 30 06:00:00 web1 sshd[{pid}]: Failed password for invalid user oracle from {ip} port 50022 ssh2"
    )
}

fn append(path: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open log");
    writeln!(f, "{line}").expect("append");
}

/// Runs watch's rounds until a record satisfies `what` (bounded by [`WAIT`]).
fn step_until(
    watch: &mut Watch,
    out: &Output,
    name: &str,
    what: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        watch.step().expect("a round");
        if let Some(found) = out.records().into_iter().find(|r| what(r)) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {name} in {:?}",
            out.records()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lookups_resume_once_the_provider_recovers() {
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").expect("log");
    let config = Config {
        api_key: Some(ApiKey::new(KEY)),
        api_url: mock.base_url(),
        cache: StoreSetting::Sqlite(tmp.path().join("cache.sqlite")),
        state_dir: tmp.path().to_path_buf(),
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        retries: 0,
        ..Config::default()
    };
    let engine = Engine::new(&config)
        .expect("engine")
        .with_retry_after(PAUSE);
    let out = Output::default();
    let options = WatchOptions {
        files: vec![log.clone()],
        journal: None,
        dry_run: true,
        format: OutputFormat::Jsonl,
        policy: PolicySettings {
            ban_score: Some(90),
            ..PolicySettings::default()
        },
        poll_interval: Duration::from_millis(20),
        start_at: StartAt::Beginning,
        max_line: 64 * 1024,
    };
    let parts = Parts {
        engine: Some(engine),
        blocker: None,
        safety: SafetyPolicy {
            allowlist: Vec::new(),
            host_addresses: Vec::new(),
            session_peers: Vec::new(),
        },
        store: None,
        metrics: Arc::new(Metrics::new()),
        out: Box::new(out.clone()),
        decisions: None,
        reporter: None,
    };
    let mut watch = Watch::new(options, parts).expect("watch");

    // The provider is down: three addresses' first failures, three failed lookups.
    mock.always(Fault::server_error(503));
    for (i, ip) in ["45.155.205.61", "45.155.205.62", "45.155.205.63"]
        .iter()
        .enumerate()
    {
        append(&log, &failure(ip, 10 + i as u32));
        step_until(&mut watch, &out, "failure event", |r| {
            r["srcip"] == *ip && r["outcome"] == "failure"
        });
    }
    assert_eq!(mock.count("check"), 3, "each first failure looked up");

    // The breaker is open: the next address is not asked about.
    append(&log, &failure("45.155.205.64", 20));
    step_until(&mut watch, &out, "the fourth address", |r| {
        r["srcip"] == "45.155.205.64"
    });
    assert_eq!(mock.count("check"), 3, "asked while the breaker was open");

    // The provider is back; after the pause one lookup goes through, and its answer bans.
    mock.clear_faults();
    std::thread::sleep(PAUSE + Duration::from_millis(100));
    append(&log, &failure(KNOWN_BAD, 30));
    let ban = step_until(&mut watch, &out, "the ban on reputation", |r| {
        r["decision"] == "ban" && r["address"] == KNOWN_BAD
    });
    assert_eq!(mock.checks_for(KNOWN_BAD), 1, "{ban}");
    assert_eq!(ban["evidence"]["score"], 100, "{ban}");
    assert!(
        ban["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("reputation"),
        "{ban}"
    );
    assert!(
        !out.records().iter().any(|r| r.to_string().contains(KEY)),
        "the key in the output"
    );
}
