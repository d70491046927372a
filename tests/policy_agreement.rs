//! One policy for every command: the integration and the active response, each driven through
//! its public entry point as Wazuh drives it, take the decision `repute::policy::decide` takes
//! for the same alert, the same answer from AbuseIPDB and the same settings (a minimum score
//! of 50 for the event and for the block).
//!
//! The integration runs as integratord runs it, against the mock AbuseIPDB on 127.0.0.1 with a
//! real datagram socket; the active response as execd runs it, in a network namespace the test
//! made, with the mock inside it and the real `nft`.

mod block_support;
mod need;
mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use block_support::execd;
use block_support::{Netns, listed};
use repute::engine::{NoReputation, Source};
use repute::policy::decision::{
    self, Alert, Answer, Block, Decision, OnLookupFailure, ScoreFrom, Thresholds,
};
use serde_json::json;
use support::mock_abuseipdb::{Fault, MockAbuseIpdb, MockInNetns};
use support::wazuh_tree::WazuhTree;

const KEY: &str = "policy-agreement-key-0123456789";
const NAME: &str = "custom-abuseipdb";
const SCORES: [u8; 7] = [0, 1, 49, 50, 89, 90, 100];
const MIN: u8 = 50;

/// The address the mock scores `score`, one per score so that no cache answers for another.
fn address(score: u8) -> String {
    format!("45.155.205.{}", u16::from(score) + 100)
}

/// An sshd alert from `ip`, as analysisd writes it.
fn alert(ip: &str) -> serde_json::Value {
    alert_of(
        ip,
        &format!(
            "Nov 28 10:32:54 web-01 sshd[4242]: Failed password for root from {ip} port 51234 ssh2"
        ),
    )
}

/// An alert from `ip` on the log line `full_log`.
fn alert_of(ip: &str, full_log: &str) -> serde_json::Value {
    json!({
        "timestamp": "2026-11-28T10:32:55.123+0000",
        "rule": { "level": 10, "description": "sshd: authentication failed.", "id": "5760" },
        "agent": { "id": "000", "name": "manager" },
        "id": "1764325975.123456",
        "full_log": full_log,
        "data": { "srcip": ip, "srcport": "51234", "dstuser": "root" },
        "location": "/var/log/auth.log"
    })
}

fn answer(ip: &str, score: u8) -> String {
    json!({
        "ipAddress": ip, "isPublic": true, "ipVersion": 4, "isWhitelisted": false,
        "abuseConfidenceScore": score, "countryCode": "NL", "usageType": "Data Center/Web Hosting/Transit",
        "isp": "Example Hosting", "domain": "example.net", "hostnames": [], "isTor": false,
        "totalReports": 12, "numDistinctUsers": 4, "lastReportedAt": "2026-11-27T08:15:00+00:00"
    })
    .to_string()
}

/// What the policy decides for `ip`'s alert with `answer`: the same thresholds both commands
/// are given below.
fn policy(ip: &str, answer: Answer, on_lookup_failure: OnLookupFailure) -> Decision {
    policy_on(alert(ip), answer, on_lookup_failure)
}

fn policy_on(
    alert: serde_json::Value,
    answer: Answer,
    on_lookup_failure: OnLookupFailure,
) -> Decision {
    let alert =
        repute::wazuh::alert::Alert::parse(alert.to_string().as_bytes()).expect("the alert parses");
    let attempt = alert.attempt().expect("the alert has an attempt");
    let thresholds = Thresholds {
        alert_min_score: MIN,
        block_min_score: Some(MIN),
        on_lookup_failure,
        block_duration: Duration::from_secs(600),
        report: false,
    };
    decision::decide(&attempt, None, &answer, &thresholds)
}

fn from_api(score: u8) -> Answer {
    Answer::Score {
        score,
        from: ScoreFrom::Lookup(Source::Api),
    }
}

/// Runs a command with a hard bound, so a hang fails the test instead of stalling it.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the integration");
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the integration ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut stderr = Vec::new();
    child.stderr.take().map(|mut s| s.read_to_end(&mut stderr));
    Output {
        status: child.wait().expect("status"),
        stdout: Vec::new(),
        stderr,
    }
}

/// The integration's choice for one alert: `Alert::Reputation` for an enrichment event,
/// `Alert::Failure` for an error event, `Alert::Nothing(line)` when it sent nothing (the line
/// is the log's, after the alert's description).
fn integration(tree: &WazuhTree, url: &str, key: &str, ip: &str) -> Alert {
    let before = tree.received().len();
    let file = tree.write_alert(&format!("{ip}.alert"), &alert(ip).to_string());
    let options = tree.path().join("tmp/policy.options");
    std::fs::write(&options, r#"{"min_score":50,"cache":"none"}"#).expect("options");
    let args = [
        file.to_str().expect("path"),
        key,
        url,
        "",
        options.to_str().expect("path"),
        "10",
        "0",
    ];
    let out = run_bounded(
        tree.integratord_command(NAME, &args),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", tree.log());
    let got = tree.wait_for(before + 1, Duration::from_millis(500));
    match got.get(before) {
        Some(event) if event.contains("\"error\"") => Alert::Failure,
        Some(_) => Alert::Reputation,
        None => {
            let log = tree.log();
            let line = log
                .lines()
                .rev()
                .find(|l| l.contains(ip))
                .unwrap_or_default()
                .to_string();
            let (_, why) = line
                .split_once(&format!("srcip {ip}: "))
                .unwrap_or(("", ""));
            Alert::Nothing(why.to_string())
        }
    }
}

/// An alert whose `data.srcip` a decoder took from a crafted user name (`x DECOY`), while
/// sshd wrote the real client's address after it.
fn decoy_alert(decoy: &str, real: &str) -> serde_json::Value {
    let mut alert = alert_of(
        decoy,
        &format!(
            "Nov 28 10:32:54 web-01 sshd[4242]: Connection closed by invalid user x {decoy} {real} port 4242 [preauth]"
        ),
    );
    alert["rule"]["id"] = json!("5710");
    alert
}

fn policy_alert(alert: serde_json::Value) -> repute::wazuh::alert::Alert {
    repute::wazuh::alert::Alert::parse(alert.to_string().as_bytes()).expect("the alert parses")
}

#[test]
fn the_integration_decides_as_the_policy() {
    let tree = WazuhTree::new();
    tree.install_binary(NAME);
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let url = mock.check_url();
    for score in SCORES {
        let ip = address(score);
        mock.set_answer(&ip, &answer(&ip, score));
        let want = policy(&ip, from_api(score), OnLookupFailure::Block).alert;
        assert_eq!(integration(&tree, &url, KEY, &ip), want, "score {score}");
    }
    // No score to be had: the provider fails, or there is no key.
    mock.always(Fault::server_error(503));
    let ip = address(7);
    let failed = NoReputation::ProviderFailed {
        status: Some(503),
        detail: String::new(),
    };
    let want = policy(&ip, Answer::Missing(failed), OnLookupFailure::Block).alert;
    assert_eq!(want, Alert::Failure);
    assert_eq!(integration(&tree, &url, KEY, &ip), want);
    let want = policy(
        &ip,
        Answer::Missing(NoReputation::NoApiKey),
        OnLookupFailure::Block,
    )
    .alert;
    assert_eq!(integration(&tree, &url, "", &ip), want);
    // A decoy in `data.srcip`: nothing looked up, nothing sent, the policy's reason logged.
    let (decoy, real) = ("45.155.205.77", "185.220.101.4");
    let alert = policy_alert(decoy_alert(decoy, real));
    let why = decision::names_another(
        &alert.attempt().expect("attempt"),
        decoy.parse().expect("ip"),
    )
    .expect("the policy sees the decoy");
    let before = tree.received().len();
    let file = tree.write_alert("decoy.alert", &decoy_alert(decoy, real).to_string());
    let out = run_bounded(
        tree.integratord_command(
            NAME,
            &[file.to_str().expect("path"), KEY, &url, "", "", "10", "0"],
        ),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        tree.log()
            .contains(&format!("srcip {decoy}: skipped, {why}")),
        "{}",
        tree.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(tree.received().len(), before, "no event");
    assert_eq!(mock.checks_for(decoy) + mock.checks_for(real), 0);
    // A deliberate skip: the policy's reason is the log's.
    let ip = "192.168.7.7";
    let want = policy(
        ip,
        Answer::Missing(NoReputation::NotPublic(repute::addr::AddrClass::Private)),
        OnLookupFailure::Block,
    )
    .alert;
    assert_eq!(integration(&tree, &url, KEY, ip), want);
}

/// The active response's choice for one alert, as its log and the firewall show it.
fn active_response(
    netns: &Netns,
    home: &Path,
    url: Option<&str>,
    ip: &str,
    extra: &[&str],
) -> Block {
    active_response_on(netns, home, url, ip, alert(ip), extra)
}

/// As [`active_response`], for `alert`.
fn active_response_on(
    netns: &Netns,
    home: &Path,
    url: Option<&str>,
    ip: &str,
    alert: serde_json::Value,
    extra: &[&str],
) -> Block {
    let input = format!("{}\n", execd::message("add", extra, alert));
    let run = execd::execute(
        netns,
        home,
        &home.join(execd::PROGRAM),
        input.as_bytes(),
        Some(&execd::reply("continue")),
        |cmd| {
            if let Some(url) = url {
                cmd.env("ABUSEIPDB_API_KEY", KEY)
                    .env("ABUSEIPDB_API_URL", url);
            }
        },
    );
    assert_eq!(run.code, Some(0));
    let log = std::fs::read_to_string(home.join("logs/active-responses.log")).unwrap_or_default();
    let declined = format!("Declined to block {ip}: ");
    if let Some(line) = log.lines().rev().find(|l| l.contains(&declined)) {
        assert!(run.check_keys.is_none(), "declined before the handshake");
        let (_, why) = line.split_once(&declined).unwrap_or_default();
        return Block::Not(why.to_string());
    }
    assert!(run.check_keys.is_some(), "{log}");
    assert!(
        netns.nft_elements("repute").contains(&ip.to_string()),
        "{log}"
    );
    let entry = listed(netns)
        .into_iter()
        .find(|e| e["ip"] == ip)
        .expect("listed");
    let reason = entry["reason"].as_str().unwrap_or_default();
    // `wazuh rule 5760: … (GATE)`: the gate is what the policy said.
    let gate = reason
        .split_once(" (")
        .map(|(_, g)| g.trim_end_matches(')').to_string());
    Block::For {
        duration: Duration::from_secs(600),
        gate,
    }
}

#[test]
fn the_active_response_decides_as_the_policy() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let home = netns.dir.path().join("ossec");
    std::fs::create_dir_all(home.join("active-response/bin")).expect("bin");
    std::fs::create_dir_all(home.join("logs")).expect("logs");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_repute"), home.join(execd::PROGRAM))
        .expect("symlink");
    let ns = netns.ns_path();
    let mock = MockInNetns::start(&ns);
    let api = mock.api();
    api.expect_key(KEY);
    let url = api.base_url();
    let min = ["--min-score", "50", "--for", "600"];
    for score in SCORES {
        let ip = address(score);
        api.set_answer(&ip, &answer(&ip, score));
        let want = policy(&ip, from_api(score), OnLookupFailure::Block).block;
        let got = active_response(&netns, &home, Some(&url), &ip, &min);
        assert_eq!(got, want, "score {score}");
    }
    // A log line that is no attack (a login that succeeded) is never blocked, whatever the
    // score; the integration still tells the dashboard.
    let ip = address(95);
    api.set_answer(&ip, &answer(&ip, 95));
    let accepted = alert_of(
        &ip,
        &format!(
            "Nov 28 10:32:54 web-01 sshd[4242]: Accepted password for root from {ip} port 51234 ssh2"
        ),
    );
    let want = policy_on(accepted.clone(), from_api(95), OnLookupFailure::Block);
    assert_eq!(
        want.block,
        Block::Not("not an attack: accepted (success)".into())
    );
    assert_eq!(want.alert, Alert::Reputation);
    let got = active_response_on(&netns, &home, Some(&url), &ip, accepted, &min);
    assert_eq!(got, want.block);
    // A decoder fooled by a crafted user name put a decoy in `data.srcip`: the log names the
    // real client, so the decoy is not blocked (and nobody is looked up).
    let (decoy, real) = ("45.155.205.77", "185.220.101.4");
    let want = decision::names_another(
        &policy_alert(decoy_alert(decoy, real))
            .attempt()
            .expect("attempt"),
        decoy.parse().expect("ip"),
    )
    .expect("the policy sees the decoy");
    assert_eq!(want, format!("the alert's log names {real}, not {decoy}"));
    let got = active_response_on(
        &netns,
        &home,
        Some(&url),
        decoy,
        decoy_alert(decoy, real),
        &min,
    );
    assert_eq!(got, Block::Not(want));
    assert_eq!(api.checks_for(decoy) + api.checks_for(real), 0);
    // No key: blocked anyway by default, declined with `skip`, as the policy says.
    for (ip, on_failure, extra) in [
        ("45.155.205.7", OnLookupFailure::Block, "block"),
        ("45.155.205.8", OnLookupFailure::Skip, "skip"),
    ] {
        let want = policy(ip, Answer::Missing(NoReputation::NoApiKey), on_failure).block;
        let args = [&min[..], &["--on-lookup-failure", extra]].concat();
        assert_eq!(
            active_response(&netns, &home, None, ip, &args),
            want,
            "{extra}"
        );
    }
}
