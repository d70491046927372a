//! The integratord door end to end: the binary installed as `integrations/custom-abuseipdb` in
//! a fake Wazuh home, run exactly as integratord runs it (argv[0] `integrations`, cwd the
//! home), a real datagram socket at `queue/sockets/queue`, the mock AbuseIPDB on 127.0.0.1.

mod support;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::mock_abuseipdb::{Fault, MockAbuseIpdb};
use support::wazuh_tree::{WazuhTree, args_4_8, split_message};

const KEY: &str = "k3y0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345";
const NAME: &str = "custom-abuseipdb";
const REDIRECT: &str = "> /dev/null 2>&1";
const WAIT: Duration = Duration::from_secs(5);

fn alert(srcip: &str, agent: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-11-28T10:32:55.123+0000","rule":{{"level":10,"description":"sshd: Authentication failed from a public IP address {srcip}.","id":"100001","firedtimes":3,"mail":false,"groups":["local","syslog","sshd","authentication_failed"]}},"agent":{agent},"manager":{{"name":"wazuh-manager"}},"id":"1764325975.123456","full_log":"Nov 28 10:32:54 web-01 sshd[4242]: Failed password for root from {srcip} port 51234 ssh2","predecoder":{{"program_name":"sshd","timestamp":"Nov 28 10:32:54","hostname":"web-01"}},"decoder":{{"parent":"sshd","name":"sshd"}},"data":{{"srcip":"{srcip}","srcport":"51234","dstuser":"root"}},"location":"/var/log/auth.log"}}"#
    )
}

const AGENT: &str = r#"{"id":"001","name":"web-01","ip":"10.0.1.50"}"#;
const MANAGER: &str = r#"{"id":"000","name":"wazuh-manager"}"#;

/// Runs a command with a hard bound (the test never hangs), returning its output and time.
fn run_bounded(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the integration");
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the integration ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child.stdout.take().map(|mut s| s.read_to_end(&mut stdout));
    child.stderr.take().map(|mut s| s.read_to_end(&mut stderr));
    let status = child.wait().expect("status");
    (
        Output {
            status,
            stdout,
            stderr,
        },
        elapsed,
    )
}

struct Setup {
    tree: WazuhTree,
    mock: MockAbuseIpdb,
}

impl Setup {
    fn new() -> Setup {
        let tree = WazuhTree::new();
        tree.install_binary(NAME);
        let mock = MockAbuseIpdb::start();
        mock.expect_key(KEY);
        mock.set_answer("49.88.112.73", ANSWER);
        Setup { tree, mock }
    }

    /// The 4.8+ command line without debug, against the mock.
    fn args_4_8(&self, alert_file: &str, key: &str) -> Vec<String> {
        args_4_8(alert_file, key, &self.mock.check_url())
    }

    /// Runs the integration installed as `NAME` with `args`, bounded.
    fn run(&self, args: &[String]) -> Output {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_bounded(
            self.tree.integratord_command(NAME, &args),
            Duration::from_secs(30),
        )
        .0
    }

    fn run_alert(&self, json: &str) -> Output {
        let file = self
            .tree
            .write_alert("custom-abuseipdb-1764325975--1274281529.alert", json);
        self.run(&self.args_4_8(file.to_str().unwrap(), KEY))
    }
}

const ANSWER: &str = r#"{"ipAddress":"49.88.112.73","isPublic":true,"ipVersion":4,"isWhitelisted":false,"abuseConfidenceScore":100,"countryCode":"CN","usageType":"Data Center\/Web Hosting\/Transit","isp":"ChinaNet Jiangsu Province Network","domain":"chinatelecom.com.cn","hostnames":[],"isTor":false,"totalReports":4123,"numDistinctUsers":911,"lastReportedAt":"2026-11-28T09:59:01+00:00"}"#;

fn assert_quiet(out: &Output) {
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_no_key(s: &Setup, out: &Output) {
    for text in [
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        s.tree.log(),
    ] {
        assert!(!text.contains(KEY), "the key leaked: {text}");
    }
    for m in s.tree.received() {
        assert!(!m.contains(KEY), "the key leaked into an event");
    }
}

fn only_event(s: &Setup) -> (String, Value) {
    let got = s.tree.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "exactly one event: {got:?}");
    assert!(got[0].len() <= 65_535);
    split_message(&got[0])
}

#[test]
fn an_agent_alert_is_enriched_with_the_seeds_fields_and_more() {
    let s = Setup::new();
    let out = s.run_alert(&alert("49.88.112.73", AGENT));
    assert_eq!(out.status.code(), Some(0));
    assert_quiet(&out);
    let (location, event) = only_event(&s);
    assert_eq!(location, "[001] (web-01) 10.0.1.50->abuseipdb");
    let a = &event["abuseipdb"];
    assert_eq!(event["integration"], json!("custom-abuseipdb"));
    assert_eq!(event["srcip"], json!("49.88.112.73"));
    assert_eq!(a["found"], json!(1));
    assert_eq!(a["abuse_confidence_score"], json!(100));
    assert_eq!(a["country_code"], json!("CN"));
    assert_eq!(a["usage_type"], json!("Data Center/Web Hosting/Transit"));
    assert_eq!(a["isp"], json!("ChinaNet Jiangsu Province Network"));
    assert_eq!(a["domain"], json!("chinatelecom.com.cn"));
    assert_eq!(a["total_reports"], json!(4123));
    assert_eq!(a["last_reported_at"], json!("2026-11-28T09:59:01+00:00"));
    assert_eq!(a["num_distinct_users"], json!(911));
    assert_eq!(a["is_tor"], json!(false));
    assert_eq!(a["is_whitelisted"], json!(false));
    assert_eq!(a["answer_source"], json!("api"));
    assert_eq!(a["source"]["alert_id"], json!("1764325975.123456"));
    assert_eq!(a["source"]["rule"], json!("100001"));
    assert_eq!(a["source"]["srcip"], json!("49.88.112.73"));
    assert!(
        a["source"]["full_log"]
            .as_str()
            .unwrap()
            .contains("Failed password")
    );
    // One line per call, without the key; the key went to AbuseIPDB in the header only.
    let log = s.tree.log();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.contains("49.88.112.73") && log.contains("event sent"),
        "{log}"
    );
    assert_no_key(&s, &out);
    let req = &s.mock.requests()[0];
    assert_eq!(req.headers.get("key").map(String::as_str), Some(KEY));
    assert!(!req.query.contains(KEY));
}

#[test]
fn the_manager_and_agentless_alerts_use_the_plain_location_and_the_cache_answers_again() {
    let s = Setup::new();
    assert_eq!(
        s.run_alert(&alert("49.88.112.73", MANAGER)).status.code(),
        Some(0)
    );
    let no_agent = alert("49.88.112.73", "null").replace(r#""agent":null,"#, "");
    assert_eq!(s.run_alert(&no_agent).status.code(), Some(0));
    let got = s.tree.wait_for(2, WAIT);
    assert_eq!(got.len(), 2);
    let (loc1, first) = split_message(&got[0]);
    let (loc2, second) = split_message(&got[1]);
    assert_eq!((loc1.as_str(), loc2.as_str()), ("abuseipdb", "abuseipdb"));
    assert_eq!(first["abuseipdb"]["answer_source"], json!("api"));
    assert_eq!(second["abuseipdb"]["answer_source"], json!("cache"));
    assert_eq!(s.mock.checks_for("49.88.112.73"), 1);
    let cache = s.tree.path().join("var/repute/repute.sqlite");
    assert!(cache.is_file(), "the cache lives inside the Wazuh home");
}

#[test]
fn an_ipv6_agent_address_is_escaped_in_the_location_only() {
    let s = Setup::new();
    let agent = r#"{"id":"007","name":"db|01","ip":"2001:db8::50"}"#;
    assert_eq!(
        s.run_alert(&alert("49.88.112.73", agent)).status.code(),
        Some(0)
    );
    let got = s.tree.wait_for(1, WAIT);
    assert!(
        got[0].starts_with("1:[007] (db||01) 2001|:db8|:|:50->abuseipdb:{\""),
        "{}",
        got[0]
    );
    let (location, event) = split_message(&got[0]);
    assert_eq!(location, "[007] (db|01) 2001:db8::50->abuseipdb");
    assert_eq!(
        event["abuseipdb"]["last_reported_at"],
        json!("2026-11-28T09:59:01+00:00")
    );
}

/// Every command-line layout integratord has used, and the explicit subcommand.
#[test]
fn every_argument_layout_is_understood() {
    let s = Setup::new();
    let file = s.tree.write_alert("a.alert", &alert("49.88.112.73", AGENT));
    let f = file.to_str().unwrap();
    let url = s.mock.check_url();
    let options = s
        .tree
        .path()
        .join("tmp/custom-abuseipdb-1764325975-99.options");
    std::fs::write(&options, "{\"cache\": \"none\", \"max_age_days\": 30}\n").unwrap();
    let o = options.to_str().unwrap();
    let layouts: Vec<Vec<&str>> = vec![
        // 4.8+: no debug (redirect as one argument), then debug (no redirect).
        vec![f, KEY, &url, "", "", "10", "3", REDIRECT],
        vec![f, KEY, &url, "debug", o, "10", "3"],
        // 4.7: options file, no timeout/retries.
        vec![f, KEY, &url, "", o, REDIRECT],
        // <= 4.6: the redirect lands in the debug slot, with a leading space.
        vec![f, KEY, &url, " > /dev/null 2>&1"],
        vec![f, KEY, &url, "debug"],
        // The seed's minimum.
        vec![f, KEY, &url],
    ];
    for (i, args) in layouts.iter().enumerate() {
        let (out, _) = run_bounded(
            s.tree.integratord_command(NAME, args),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(0), "layout {i}: {out:?}");
        assert_quiet(&out);
        let got = s.tree.wait_for(i + 1, WAIT);
        assert_eq!(got.len(), i + 1, "layout {i} sent no event");
    }
    // The options file was read: max_age 30 (and no cache, so every such run called).
    let ages: Vec<String> = s
        .mock
        .requests()
        .iter()
        .map(|r| r.params.get("maxAgeInDays").cloned().unwrap_or_default())
        .collect();
    assert!(
        ages.contains(&"30".to_string()) && ages.contains(&"90".to_string()),
        "{ages:?}"
    );
    // The debug runs logged their steps, still without the key.
    let log = s.tree.log();
    assert!(log.contains("debug: start:"), "{log}");
    assert!(!log.contains(KEY));
    // The explicit door takes the same arguments.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
    cmd.args([
        "wazuh",
        "integration",
        f,
        KEY,
        &url,
        "",
        "",
        "5",
        "1",
        REDIRECT,
    ])
    .current_dir(s.tree.path())
    .env("WAZUH_HOME", s.tree.path());
    let (out, _) = run_bounded(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        s.tree.wait_for(layouts.len() + 1, WAIT).len(),
        layouts.len() + 1
    );
}

#[test]
fn a_py_name_works_too() {
    let s = Setup::new();
    s.tree.install_binary("custom-abuseipdb.py");
    let file = s.tree.write_alert("b.alert", &alert("49.88.112.73", AGENT));
    let args = s.args_4_8(file.to_str().unwrap(), KEY);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, _) = run_bounded(
        s.tree.integratord_command("custom-abuseipdb.py", &args),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(s.tree.wait_for(1, WAIT).len(), 1);
    assert!(s.tree.log().contains("custom-abuseipdb.py:"));
}

/// Runs one alert against a faulty API and returns the error event.
fn error_event(fault: Fault, sticky: bool, timeout: &str) -> (Output, Duration, Value, Setup) {
    let s = Setup::new();
    if sticky {
        s.mock.always(fault);
    } else {
        s.mock.push_faults([fault]);
    }
    let file = s.tree.write_alert("c.alert", &alert("49.88.112.73", AGENT));
    let f = file.to_str().unwrap();
    let url = s.mock.check_url();
    let args = [f, KEY, &url, "", "", timeout, "1", REDIRECT];
    let (out, took) = run_bounded(
        s.tree.integratord_command(NAME, &args),
        Duration::from_secs(30),
    );
    let (_, event) = only_event(&s);
    (out, took, event, s)
}

fn assert_error_event(event: &Value, code: Value) {
    let a = &event["abuseipdb"];
    assert_eq!(a["error"], code, "{event}");
    assert!(a["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(a["source"]["alert_id"], json!("1764325975.123456"));
    assert_eq!(a["source"]["srcip"], json!("49.88.112.73"));
    assert_eq!(event["integration"], json!("custom-abuseipdb"));
    assert_eq!(event["srcip"], json!("49.88.112.73"));
    assert!(a.get("abuse_confidence_score").is_none());
}

#[test]
fn api_faults_become_error_events_without_crashing() {
    let cases: Vec<(&str, Fault, bool, Value)> = vec![
        ("401", Fault::unauthorized(), false, json!(401)),
        ("quota 429", Fault::quota(3600), false, json!(429)),
        ("500", Fault::server_error(500), true, json!(500)),
        ("HTML body", Fault::html(502), true, json!(502)),
        ("reset", Fault::Reset, true, json!("network")),
    ];
    for (name, fault, sticky, code) in cases {
        let (out, _, event, s) = error_event(fault, sticky, "10");
        assert_eq!(out.status.code(), Some(0), "{name}: {out:?}");
        assert_quiet(&out);
        assert_error_event(&event, code);
        assert_no_key(&s, &out);
        let log = s.tree.log();
        assert_eq!(log.lines().count(), 1, "{name}: {log}");
    }
}

#[test]
fn an_api_that_never_answers_ends_within_the_timeout_with_an_error_event() {
    let (out, took, event, s) = error_event(Fault::Hang, true, "2");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_quiet(&out);
    assert!(
        took < Duration::from_secs(4),
        "took {took:?} with a 2 s budget"
    );
    assert_error_event(&event, json!(408));
    assert!(s.tree.log().contains("408") || s.tree.log().contains("timed out"));
}

/// An alert raised on this integration's own enrichment event (what the loop guard drops).
fn own_enrichment_alert() -> String {
    alert("49.88.112.73", MANAGER).replace(
        r#""dstuser":"root"}"#,
        r#""dstuser":"root","integration":"custom-abuseipdb"}"#,
    )
}

#[test]
fn addresses_that_are_not_looked_up_send_nothing() {
    let s = Setup::new();
    let looped = own_enrichment_alert();
    let no_srcip = alert("49.88.112.73", AGENT).replace(r#""srcip":"49.88.112.73","#, "");
    let hostname = alert("scanner.example.net", AGENT);
    let bare = r#"{"rule":{"id":"5760"}}"#.to_string();
    for (name, json, why) in [
        (
            "private",
            alert("192.168.7.9", AGENT),
            "not a public address",
        ),
        ("loopback v6", alert("::1", AGENT), "not a public address"),
        // The same gate as `check`, `block` and `scan` (`addr::public`): mapped and embedded
        // private addresses, and a link-local one with its zone, are private everywhere.
        (
            "mapped private",
            alert("::ffff:10.0.0.1", AGENT),
            "not a public address (private)",
        ),
        (
            "NAT64 of a private address",
            alert("64:ff9b::a00:1", AGENT),
            "not a public address (private)",
        ),
        (
            "link-local with a zone",
            alert("fe80::1%eth0", AGENT),
            "not a public address (link-local)",
        ),
        ("loop guard", looped, "enrichment event"),
        ("no srcip", no_srcip, "no data.srcip"),
        ("host name", hostname, "not an IP address"),
        ("bare alert", bare, "no data.srcip"),
    ] {
        let before = s.tree.log().lines().count();
        let out = s.run_alert(&json);
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_quiet(&out);
        let log = s.tree.log();
        let last = log.lines().nth(before).unwrap_or_default();
        assert!(last.contains(why), "{name}: {last}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.tree.received().is_empty(), "{:?}", s.tree.received());
    assert_eq!(s.mock.count("check"), 0);
}

#[test]
fn our_own_enrichment_alert_with_a_bad_options_file_sends_nothing() {
    let s = Setup::new();
    let looped = own_enrichment_alert();
    let file = s.tree.write_alert("loop.alert", &looped);
    let options = s.tree.path().join("tmp/bad.options");
    std::fs::write(&options, "{\"ttl\": 5}").unwrap();
    let url = s.mock.check_url();
    let f = file.to_str().unwrap();
    let o = options.to_str().unwrap();
    let out = s.run(&[f, KEY, &url, "", o, "10", "3"].map(String::from));
    assert_eq!(out.status.code(), Some(0));
    assert_quiet(&out);
    let log = s.tree.log();
    assert!(log.contains("enrichment event"), "{log}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.tree.received().is_empty(), "{:?}", s.tree.received());
    assert_eq!(s.mock.count("check"), 0);
    assert_no_key(&s, &out);
}

#[test]
fn the_log_file_is_created_readable_by_owner_and_group_only() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new();
    let log = s.tree.path().join("logs/integrations.log");
    let _ = std::fs::remove_file(&log);
    let out = s.run_alert(&alert("192.168.7.9", AGENT));
    assert_eq!(out.status.code(), Some(0));
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "mode {mode:o}");
}

#[test]
fn an_allowlisted_address_and_a_low_score_send_nothing() {
    let s = Setup::new();
    let file = s.tree.write_alert("d.alert", &alert("49.88.112.73", AGENT));
    let options = s.tree.path().join("tmp/x.options");
    let url = s.mock.check_url();
    let f = file.to_str().unwrap();
    let o = options.to_str().unwrap();
    std::fs::write(&options, r#"{"allowlist":["49.88.112.0/24"]}"#).unwrap();
    let (out, _) = run_bounded(
        s.tree
            .integratord_command(NAME, &[f, KEY, &url, "", o, "10", "3"]),
        WAIT,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(s.tree.log().contains("allowlisted"));
    std::fs::write(&options, r#"{"threshold":100,"cache":"none"}"#).unwrap();
    s.mock.set_answer(
        "49.88.112.73",
        &ANSWER.replace(
            "\"abuseConfidenceScore\":100",
            "\"abuseConfidenceScore\":99",
        ),
    );
    let (out, _) = run_bounded(
        s.tree
            .integratord_command(NAME, &[f, KEY, &url, "", o, "10", "3"]),
        WAIT,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        s.tree.log().contains("below min_score 100"),
        "{}",
        s.tree.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.tree.received().is_empty());
}

#[test]
fn a_huge_full_log_is_trimmed_to_fit_one_datagram() {
    let s = Setup::new();
    // Longer than any alert integratord would pass on: the event must still fit.
    let big = "A".repeat(66_000);
    let json = alert("49.88.112.73", AGENT).replace("ssh2\"", &format!("ssh2 {big}\""));
    assert_eq!(s.run_alert(&json).status.code(), Some(0));
    let got = s.tree.wait_for(1, WAIT);
    assert!(got[0].len() <= 65_535, "{} bytes", got[0].len());
    let (_, event) = split_message(&got[0]);
    let log = event["abuseipdb"]["source"]["full_log"].as_str().unwrap();
    assert!(log.starts_with("Nov 28 10:32:54 web-01 sshd[4242]: Failed password"));
    assert!(log.len() < 65_535 && log.len() > 60_000, "{}", log.len());
    assert_eq!(event["abuseipdb"]["abuse_confidence_score"], json!(100));
}

/// Runs against a tree without a working socket, or with bad input: one line, a code.
fn failing_run(tree: &WazuhTree, args: &[&str]) -> Output {
    run_bounded(
        tree.integratord_command(NAME, args),
        Duration::from_secs(30),
    )
    .0
}

fn one_line_stderr(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains(KEY));
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    err
}

#[test]
fn delivery_and_input_failures_are_one_line_and_a_documented_code() {
    let mock = MockAbuseIpdb::start();
    let url = mock.check_url();
    // No socket at all: exit 5.
    let tree = WazuhTree::without_socket();
    tree.install_binary(NAME);
    let file = tree.write_alert("e.alert", &alert("49.88.112.73", AGENT));
    let f = file.to_str().unwrap();
    let out = failing_run(&tree, &[f, KEY, &url, "", "", "10", "3", REDIRECT]);
    assert_eq!(out.status.code(), Some(5));
    assert!(one_line_stderr(&out).contains("queue/sockets/queue"));
    // A socket file nobody reads (analysisd stopped): exit 8.
    tree.leave_dead_socket();
    let out = failing_run(&tree, &[f, KEY, &url, "", "", "10", "3", REDIRECT]);
    assert_eq!(out.status.code(), Some(8));
    assert!(one_line_stderr(&out).contains("not running"));
    // Missing alert file: 6. Invalid JSON: 7. Bad arguments: 2.
    let tree = WazuhTree::new();
    tree.install_binary(NAME);
    let out = failing_run(
        &tree,
        &["/nonexistent/x.alert", KEY, &url, "", "", "10", "3"],
    );
    assert_eq!(out.status.code(), Some(6));
    assert!(one_line_stderr(&out).contains("/nonexistent/x.alert"));
    let broken = tree.write_alert("f.alert", "{\"rule\": {\"id\": ");
    let out = failing_run(
        &tree,
        &[broken.to_str().unwrap(), KEY, &url, "", "", "10", "3"],
    );
    assert_eq!(out.status.code(), Some(7));
    assert!(one_line_stderr(&out).contains("f.alert"));
    let out = failing_run(&tree, &[]);
    assert_eq!(out.status.code(), Some(2));
    one_line_stderr(&out);
    let out = failing_run(&tree, &["a", KEY, &url, "", "", "soon", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line_stderr(&out).contains("timeout"));
    // A bad options file: exit 3, and the dashboard still hears about it.
    let good = tree.write_alert("g.alert", &alert("49.88.112.73", AGENT));
    let options = tree.path().join("tmp/bad.options");
    std::fs::write(&options, "{\"ttl\": 5}").unwrap();
    let out = failing_run(
        &tree,
        &[
            good.to_str().unwrap(),
            KEY,
            &url,
            "",
            options.to_str().unwrap(),
            "10",
            "3",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(one_line_stderr(&out).contains("bad.options"));
    let got = tree.wait_for(1, WAIT);
    let (_, event) = split_message(&got[0]);
    assert_eq!(event["abuseipdb"]["error"], json!("bad_options"));
    assert_eq!(mock.count("check"), 0);
    assert!(!tree.log().contains(KEY));
}

#[test]
fn without_a_key_in_ossec_conf_the_installed_key_file_is_used() {
    let s = Setup::new();
    std::fs::create_dir_all(s.tree.path().join("etc/repute")).unwrap();
    std::fs::write(
        s.tree.path().join("etc/repute/abuseipdb.key"),
        format!("{KEY}\n"),
    )
    .unwrap();
    let file = s.tree.write_alert("h.alert", &alert("49.88.112.73", AGENT));
    let out = s.run(&s.args_4_8(file.to_str().unwrap(), ""));
    assert_eq!(out.status.code(), Some(0));
    let (_, event) = only_event(&s);
    assert_eq!(event["abuseipdb"]["found"], json!(1));
    assert_eq!(
        s.mock.requests()[0].headers.get("key").map(String::as_str),
        Some(KEY)
    );
    assert_no_key(&s, &out);
}

#[test]
fn without_any_key_the_dashboard_hears_it_and_the_api_is_not_called() {
    let s = Setup::new();
    let file = s.tree.write_alert("i.alert", &alert("49.88.112.73", AGENT));
    let out = s.run(&s.args_4_8(file.to_str().unwrap(), ""));
    assert_eq!(out.status.code(), Some(0));
    assert_quiet(&out);
    let (_, event) = only_event(&s);
    assert_eq!(event["abuseipdb"]["error"], json!("no_api_key"));
    assert_eq!(s.mock.count("check"), 0);
}

#[test]
fn a_cache_that_cannot_be_opened_still_gives_an_answer_and_says_so_in_the_log() {
    let s = Setup::new();
    let file = s.tree.write_alert("j.alert", &alert("49.88.112.73", AGENT));
    let options = s.tree.path().join("tmp/j.options");
    // A cache path under a regular file can never be created.
    std::fs::write(&options, r#"{"cache":"etc/ossec.conf/repute.sqlite"}"#).unwrap();
    let url = s.mock.check_url();
    let args = [
        file.to_str().unwrap(),
        KEY,
        url.as_str(),
        "",
        options.to_str().unwrap(),
        "10",
        "3",
    ];
    let (out, _) = run_bounded(
        s.tree.integratord_command(NAME, &args),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_quiet(&out);
    let (_, event) = only_event(&s);
    assert_eq!(event["abuseipdb"]["abuse_confidence_score"], json!(100));
    assert_eq!(event["abuseipdb"]["answer_source"], json!("api"));
    // The administrator learns why every alert costs a call: the library's warning lands in
    // integrations.log (never on stdout/stderr, which integratord copies into ossec.log).
    let log = s.tree.log();
    assert!(log.contains("cache unavailable"), "{log}");
    assert!(!log.contains(KEY));
}

/// The settings file of every command (`REPUTE_CONFIG`, or `--config` on the explicit
/// subcommand) reaches the integration: its allowlist stops the lookup.
#[test]
fn the_settings_file_allowlist_is_honoured() {
    let s = Setup::new();
    let toml = s.tree.path().join("tmp/repute.toml");
    std::fs::write(&toml, "allowlist = [\"49.88.112.0/24\"]\n").unwrap();
    let file = s.tree.write_alert("f.alert", &alert("49.88.112.73", AGENT));
    let f = file.to_str().unwrap();
    let url = s.mock.check_url();
    let mut cmd = s
        .tree
        .integratord_command(NAME, &[f, KEY, &url, "", "", "10", "3"]);
    cmd.env("REPUTE_CONFIG", &toml);
    let (out, _) = run_bounded(cmd, WAIT);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(s.tree.log().contains("allowlisted"), "{}", s.tree.log());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
    cmd.arg("--config")
        .arg(&toml)
        .args(["wazuh", "integration", f, KEY, &url, "", "", "10", "3"])
        .current_dir(s.tree.path());
    for var in support::wazuh_tree::SETTINGS_ENV {
        cmd.env_remove(var);
    }
    cmd.env("WAZUH_HOME", s.tree.path());
    let (out, _) = run_bounded(cmd, WAIT);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        s.mock.count("check"),
        0,
        "no lookup for an allowlisted address"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.tree.received().is_empty());
}

/// On a Wazuh manager, `repute check` uses the store the integration fills
/// (`<wazuh>/var/repute`), so an address the integration looked up costs nothing again.
#[test]
fn check_on_a_manager_answers_from_the_cache_the_integration_filled() {
    let s = Setup::new();
    // An address no other test uses, so no other store could hold it.
    let ip = "185.224.128.17";
    s.mock.set_answer(ip, &ANSWER.replace("49.88.112.73", ip));
    assert_eq!(s.run_alert(&alert(ip, AGENT)).status.code(), Some(0));
    assert_eq!(s.tree.wait_for(1, WAIT).len(), 1);
    assert_eq!(s.mock.checks_for(ip), 1);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
    cmd.args(["check", "--format", "json", ip]);
    for var in support::wazuh_tree::SETTINGS_ENV {
        cmd.env_remove(var);
    }
    cmd.env("WAZUH_HOME", s.tree.path())
        .env("ABUSEIPDB_API_KEY", KEY)
        .env("ABUSEIPDB_API_URL", s.mock.base_url());
    let (out, _) = run_bounded(cmd, WAIT);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(answer["source"], "cache", "{answer}");
    assert_eq!(s.mock.checks_for(ip), 1, "no second lookup");
}
