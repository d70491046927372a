//! The active-response door driven exactly as Wazuh's execd drives it: a fake Wazuh tree with
//! the binary at `active-response/bin/repute-block`, started with no arguments from the Wazuh
//! home, one JSON line on stdin, `check_keys` read from stdout, `continue`/`abort` written
//! back. Everything runs inside a private network namespace, so the real `nft` is used.

mod block_support;
mod need;
mod support;

use std::path::PathBuf;
use std::time::Duration;

use block_support::execd::{self, Execution, expected_check_keys};
use block_support::{Netns, listed};
use repute::cache::{CacheKey, ReputationCache};
use repute::reputation::Reputation;
use repute::store::SqliteStore;
use serde_json::{Value, json};

const V4: &str = "45.155.205.233";
const V6: &str = "2a06:4880::5";

/// A Wazuh home with `active-response/bin/repute-block` and `logs/`.
struct FakeWazuh {
    home: PathBuf,
}

impl FakeWazuh {
    /// Installed as a symlink to the test binary (so the home must come from argv[0]).
    fn symlinked(netns: &Netns) -> FakeWazuh {
        let wazuh = FakeWazuh::empty(netns);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_repute"), wazuh.program()).expect("symlink");
        wazuh
    }

    /// Installed as a copy (so the home comes from the executable's own path).
    fn copied(netns: &Netns) -> FakeWazuh {
        let wazuh = FakeWazuh::empty(netns);
        support::copy_program(env!("CARGO_BIN_EXE_repute").as_ref(), &wazuh.program());
        wazuh
    }

    fn empty(netns: &Netns) -> FakeWazuh {
        let home = netns.dir.path().join("ossec");
        std::fs::create_dir_all(home.join("active-response/bin")).expect("bin");
        std::fs::create_dir_all(home.join("logs")).expect("logs");
        FakeWazuh { home }
    }

    fn program(&self) -> PathBuf {
        self.home.join(execd::PROGRAM)
    }

    /// The log lines, each checked for Wazuh's format, with the prefix cut off.
    fn log(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.home.join("logs/active-responses.log"))
            .unwrap_or_default();
        text.lines()
            .map(|line| strip_log_prefix(line).to_string())
            .collect()
    }
}

/// `YYYY/MM/DD HH:MM:SS active-response/bin/repute-block: ` is checked and removed.
fn strip_log_prefix(line: &str) -> &str {
    let (stamp, rest) = line
        .split_at_checked(19)
        .unwrap_or_else(|| panic!("short line {line:?}"));
    let shape: String = stamp
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert_eq!(shape, "dddd/dd/dd dd:dd:dd", "timestamp of {line:?}");
    rest.strip_prefix(" active-response/bin/repute-block: ")
        .unwrap_or_else(|| panic!("program name in {line:?}"))
}

/// An execd message for `command` with an sshd alert carrying `data`, and `extra_args`, as
/// the line execd writes (with its newline). The alert's log names the address `data` gives
/// (where the program looks for it), as a real alert's does.
fn message(command: &str, data: Value, extra_args: &[&str]) -> String {
    let named = [
        &data["win"]["eventdata"]["ipAddress"],
        &data["win"]["eventdata"]["destinationIp"],
        &data["srcip"],
        &data["abuseipdb"]["source"]["srcip"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .unwrap_or(V4);
    let alert = json!({
        "timestamp": "2026-11-28T10:00:00.000+0000",
        "rule": { "level": 10, "description": "sshd: brute force trying to get access to the system. Authentication failed.", "id": "5763" },
        "agent": { "id": "000", "name": "manager" },
        "id": "1764324000.1234",
        "full_log": format!("Nov 28 10:00:00 host sshd[4242]: Failed password for root from {named} port 4242 ssh2"),
        "data": data,
        "location": "/var/log/auth.log"
    });
    format!("{}\n", execd::message(command, extra_args, alert))
}

/// Runs the program as execd does: cwd = the Wazuh home, argv = `[active-response/bin/…]`,
/// the message and a newline on stdin, then (for a handshake) one reply line.
fn execute(netns: &Netns, wazuh: &FakeWazuh, input: &[u8], reply: Option<&str>) -> Execution {
    execd::execute(
        netns,
        &wazuh.home,
        execd::PROGRAM.as_ref(),
        input,
        reply,
        |_| {},
    )
}

fn add(netns: &Netns, wazuh: &FakeWazuh, data: Value, extra: &[&str], reply: &str) -> Execution {
    let input = message("add", data, extra);
    execute(netns, wazuh, input.as_bytes(), Some(&execd::reply(reply)))
}

/// `add` for an sshd alert that names only `ip`.
fn add_ip(netns: &Netns, wazuh: &FakeWazuh, ip: &str, extra: &[&str], reply: &str) -> Execution {
    add(netns, wazuh, json!({ "srcip": ip }), extra, reply)
}

/// The reason recorded for the first blocked entry.
fn first_reason(netns: &Netns) -> String {
    listed(netns)[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn add_with_continue_blocks_and_delete_unblocks() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let run = add(
        &netns,
        &wazuh,
        json!({ "srcip": V4, "srcport": "4242" }),
        &[],
        "continue",
    );
    assert_eq!(run.code, Some(0));
    assert_eq!(
        run.check_keys.as_deref(),
        Some(expected_check_keys(V4).as_str())
    );
    assert_eq!(netns.nft_elements("repute"), vec![V4]);
    let entries = listed(&netns);
    assert_eq!(entries.len(), 1);
    let reason = entries[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("wazuh rule 5763: sshd: brute force"),
        "{reason}"
    );
    let log = wazuh.log();
    assert_eq!(log.first().map(String::as_str), Some("Starting"));
    assert!(
        log[1].contains("\"command\":\"add\""),
        "the input is logged: {log:?}"
    );
    assert!(
        log.contains(&format!("Blocked {V4} for 1h (nftables)")),
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("Ended"));

    // execd's timeout: the same message with "delete", no handshake, stdout ignored.
    let input = message("delete", json!({ "srcip": V4 }), &[]);
    let run = execute(&netns, &wazuh, input.as_bytes(), None);
    assert_eq!(run.code, Some(0));
    assert_eq!(run.check_keys, None, "delete does no handshake");
    assert!(netns.nft_elements("repute").is_empty());
    assert!(listed(&netns).is_empty());
    assert!(wazuh.log().contains(&format!("Unblocked {V4}")));
}

#[test]
fn abort_is_logged_and_blocks_nothing() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let run = add_ip(&netns, &wazuh, V4, &[], "abort");
    assert_eq!(run.code, Some(0));
    assert!(run.check_keys.is_some());
    assert!(netns.nft_elements("repute").is_empty());
    assert!(wazuh.log().contains(&"Aborted".to_string()));
}

#[test]
fn abort_for_an_address_already_blocked_renews_its_kernel_timeout() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let run = add_ip(&netns, &wazuh, V4, &["--for", "20s"], "continue");
    assert_eq!(run.code, Some(0));
    let run = add_ip(&netns, &wazuh, V4, &["--for", "1h"], "abort");
    assert_eq!(run.code, Some(0));
    let left = listed(&netns)[0]["remaining_secs"].as_u64().unwrap_or(0);
    assert!(left > 600, "renewed to 1h, {left}s left");
    assert!(
        wazuh
            .log()
            .contains(&format!("Renewed {V4} for 1h (nftables)"))
    );
}

#[test]
fn ipv6_and_the_windows_fields_as_firewall_drop_reads_them() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let run = add_ip(&netns, &wazuh, V6, &[], "continue");
    assert_eq!(
        run.check_keys.as_deref(),
        Some(expected_check_keys(V6).as_str())
    );
    let windows = json!({ "srcip": "10.9.9.9", "win": { "eventdata": { "ipAddress": V4 } } });
    let run = add(&netns, &wazuh, windows, &[], "continue");
    assert_eq!(
        run.check_keys.as_deref(),
        Some(expected_check_keys(V4).as_str())
    );
    assert_eq!(netns.nft_elements("repute"), vec![V6, V4]);
}

#[test]
fn a_copied_binary_finds_its_home_from_its_own_path() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::copied(&netns);
    let input = message("add", json!({ "srcip": V4 }), &[]);
    // Started by absolute path from another directory: only the executable's path tells.
    let program = wazuh.program();
    let reply = execd::reply("continue");
    let run = execd::execute(
        &netns,
        &wazuh.home,
        &program,
        input.as_bytes(),
        Some(&reply),
        |cmd| {
            cmd.current_dir("/");
        },
    );
    assert_eq!(run.code, Some(0));
    assert!(
        wazuh
            .log()
            .contains(&format!("Blocked {V4} for 1h (nftables)")),
        "{:?}",
        wazuh.log()
    );
}

#[test]
fn wazuh_home_can_be_overridden() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let other = netns.dir.path().join("elsewhere");
    std::fs::create_dir_all(other.join("logs")).expect("logs");
    let input = message("delete", json!({ "srcip": V4 }), &[]);
    let program = wazuh.program();
    let run = execd::execute(
        &netns,
        &wazuh.home,
        &program,
        input.as_bytes(),
        None,
        |cmd| {
            cmd.env("WAZUH_HOME", &other);
        },
    );
    assert_eq!(run.code, Some(0));
    let log = std::fs::read_to_string(other.join("logs/active-responses.log")).unwrap_or_default();
    assert!(log.contains(&format!("{V4} was not blocked")), "{log}");
    assert!(wazuh.log().is_empty());
}

/// Bad input of every kind: a logged error, no handshake, nothing blocked, no panic.
#[test]
fn bad_input_ends_in_a_logged_error_and_no_block() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let valid = |data: Value| message("add", data, &[]);
    let drop_member = |member: &str| {
        let mut v: Value =
            serde_json::from_str(&message("add", json!({ "srcip": V4 }), &[])).unwrap_or_default();
        v.as_object_mut().map(|o| o.remove(member));
        format!("{v}\n")
    };
    let huge = format!("{{\"version\":1,\"pad\":\"{}\"}}\n", "x".repeat(1 << 21));
    let cases: Vec<(String, String, &str)> = vec![
        (
            "malformed JSON".into(),
            "{\"version\":1,\"origin\":\n".into(),
            "invalid input format",
        ),
        ("empty stdin".into(), String::new(), "no message on stdin"),
        (
            "missing version".into(),
            drop_member("version"),
            "`version` is missing",
        ),
        (
            "missing origin".into(),
            drop_member("origin"),
            "`origin` is missing",
        ),
        (
            "missing command".into(),
            drop_member("command"),
            "`command` is missing",
        ),
        (
            "missing parameters".into(),
            drop_member("parameters"),
            "`parameters` is missing",
        ),
        (
            "unknown command".into(),
            message("restart", json!({ "srcip": V4 }), &[]),
            "invalid command \"restart\"",
        ),
        (
            "no address".into(),
            valid(json!({ "srcuser": "root" })),
            "no source address",
        ),
        (
            "host name".into(),
            valid(json!({ "srcip": "attacker.example.com" })),
            "is not an IPv4 or IPv6 address",
        ),
        (
            "shell injection".into(),
            valid(json!({ "srcip": "1.2.3.4; rm -rf /" })),
            "is not an IPv4 or IPv6 address",
        ),
        (
            "number".into(),
            valid(json!({ "srcip": 16843009 })),
            "no source address",
        ),
        (
            "bad min score".into(),
            message("add", json!({ "srcip": V4 }), &["--min-score", "200"]),
            "not a score 0-100",
        ),
        ("huge line".into(), huge, "longer than"),
    ];
    for (name, input, expected) in cases {
        let before = wazuh.log().len();
        let run = execute(
            &netns,
            &wazuh,
            input.as_bytes(),
            Some(&execd::reply("continue")),
        );
        assert_eq!(run.code, Some(1), "{name}");
        assert_eq!(run.check_keys, None, "{name}: no handshake");
        let log = wazuh.log();
        let new = &log[before..];
        assert!(new.iter().any(|l| l.contains(expected)), "{name}: {new:?}");
        assert_eq!(new.last().map(String::as_str), Some("Ended"), "{name}");
    }
    assert!(netns.nft_elements("repute").is_empty());
}

#[test]
fn an_unexpected_reply_from_execd_blocks_nothing() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let input = message("add", json!({ "srcip": V4 }), &[]);
    let run = execute(&netns, &wazuh, input.as_bytes(), Some("what?"));
    assert_eq!(run.code, Some(1));
    assert!(netns.nft_elements("repute").is_empty());
    assert!(
        wazuh
            .log()
            .iter()
            .any(|l| l.contains("Invalid value of 'command' in reply"))
    );
}

#[test]
fn unsafe_addresses_are_refused_before_the_handshake() {
    let Some(netns) = Netns::new() else {
        return;
    };
    netns.write_config("allowlist = [\"81.2.69.0/24\"]\n");
    netns.ok(&["ip", "addr", "add", "93.184.215.14/32", "dev", "lo"]);
    let wazuh = FakeWazuh::symlinked(&netns);
    for (ip, why) in [
        ("192.168.1.50", "not a public address (private)"),
        ("81.2.69.160", "on the allowlist"),
        ("93.184.215.14", "this host's own addresses"),
    ] {
        let run = add_ip(&netns, &wazuh, ip, &[], "continue");
        assert_eq!(run.code, Some(0), "{ip}");
        assert_eq!(
            run.check_keys, None,
            "{ip}: no handshake, so execd schedules no delete"
        );
        let refused = format!("Refused to block {ip}: ");
        assert!(
            wazuh
                .log()
                .iter()
                .any(|l| l.starts_with(&refused) && l.contains(why)),
            "{ip}: {:?}",
            wazuh.log()
        );
    }
    assert!(netns.nft_elements("repute").is_empty());
}

/// An enrichment alert carries its own score: the gate needs no lookup.
#[test]
fn min_score_gate_on_an_enrichment_alert() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let enrichment = |ip: &str, score: u8| json!({ "abuseipdb": { "source": { "srcip": ip, "rule": "100002" }, "abuse_confidence_score": score } });
    let run = add(
        &netns,
        &wazuh,
        enrichment(V4, 12),
        &["--min-score", "50"],
        "continue",
    );
    assert_eq!(run.code, Some(0));
    assert_eq!(run.check_keys, None);
    let declined =
        format!("Declined to block {V4}: AbuseIPDB score 12 (from alert) is below the minimum 50");
    assert!(wazuh.log().contains(&declined), "{:?}", wazuh.log());

    let run = add(
        &netns,
        &wazuh,
        enrichment(V6, 93),
        &["min_score=50"],
        "continue",
    );
    assert_eq!(
        run.check_keys.as_deref(),
        Some(expected_check_keys(V6).as_str())
    );
    assert_eq!(netns.nft_elements("repute"), vec![V6]);
    let reason = first_reason(&netns);
    assert!(
        reason.ends_with("(AbuseIPDB score 93 from alert, minimum 50)"),
        "{reason}"
    );
}

/// A plain sshd alert: the score comes from the engine, here from the shared SQLite cache
/// another process filled.
#[test]
fn min_score_gate_through_the_cache() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let cache = SqliteStore::open(&netns.state_dir().join("repute.sqlite")).expect("cache");
    for (ip, score) in [(V4, 8), (V6, 100)] {
        let ip = ip.parse().expect("ip");
        cache
            .put(
                &CacheKey::new(ip, 90),
                &reputation(ip, score),
                Duration::from_secs(3600),
            )
            .expect("put");
    }
    let run = add_ip(&netns, &wazuh, V4, &["--min-score", "25"], "continue");
    assert_eq!(run.check_keys, None);
    let declined =
        format!("Declined to block {V4}: AbuseIPDB score 8 (from cache) is below the minimum 25");
    assert!(wazuh.log().contains(&declined), "{:?}", wazuh.log());
    let run = add_ip(&netns, &wazuh, V6, &["--min-score", "25"], "continue");
    assert!(run.check_keys.is_some());
    assert_eq!(netns.nft_elements("repute"), vec![V6]);
}

/// No score to be had (no API key, nothing cached): `block` by default, `skip` on request.
#[test]
fn lookup_failure_blocks_by_default_and_skips_on_request() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let run = add_ip(&netns, &wazuh, V4, &["--min-score", "50"], "continue");
    assert!(run.check_keys.is_some());
    assert_eq!(netns.nft_elements("repute"), vec![V4]);
    let reason = first_reason(&netns);
    assert!(
        reason.contains("no AbuseIPDB score: no API key configured; blocking anyway"),
        "{reason}"
    );

    let extra = ["--min-score", "50", "--on-lookup-failure", "skip"];
    let run = add_ip(&netns, &wazuh, V6, &extra, "continue");
    assert_eq!(run.check_keys, None);
    assert!(wazuh.log().contains(&format!(
        "Declined to block {V6}: no AbuseIPDB score: no API key configured"
    )));
    assert_eq!(netns.nft_elements("repute"), vec![V4]);
}

fn answer(ip: &str, score: u8) -> String {
    json!({
        "ipAddress": ip, "isPublic": true, "ipVersion": if ip.contains(':') { 6 } else { 4 },
        "isWhitelisted": false, "abuseConfidenceScore": score, "countryCode": "NL",
        "usageType": "Data Center/Web Hosting/Transit", "isp": "Example Hosting", "domain": "example.net",
        "hostnames": [], "isTor": false, "totalReports": 12, "numDistinctUsers": 4,
        "lastReportedAt": "2026-11-27T08:15:00+00:00"
    })
    .to_string()
}

/// A plain sshd alert and no cache entry: the engine asks (the mock) AbuseIPDB over HTTP.
#[test]
fn min_score_gate_asks_abuseipdb() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let mock = support::mock_abuseipdb::MockInNetns::start(&netns.ns_path());
    let key = "test-key-7f3a9c";
    mock.expect_key(key);
    mock.set_answer(V4, &answer(V4, 15));
    mock.set_answer(V6, &answer(V6, 88));
    let program = wazuh.program();
    let run_for = |ip: &str| {
        let input = message("add", json!({ "srcip": ip }), &["--min-score", "50"]);
        execd::execute(
            &netns,
            &wazuh.home,
            &program,
            input.as_bytes(),
            Some(&execd::reply("continue")),
            |cmd| {
                cmd.env("ABUSEIPDB_API_KEY", key)
                    .env("ABUSEIPDB_API_URL", mock.base_url());
            },
        )
    };
    let low = run_for(V4);
    assert_eq!(low.code, Some(0));
    assert_eq!(low.check_keys, None, "declined before the handshake");
    let declined =
        format!("Declined to block {V4}: AbuseIPDB score 15 (from api) is below the minimum 50");
    assert!(wazuh.log().contains(&declined), "{:?}", wazuh.log());

    let high = run_for(V6);
    assert_eq!(
        high.check_keys.as_deref(),
        Some(expected_check_keys(V6).as_str())
    );
    assert_eq!(netns.nft_elements("repute"), vec![V6]);
    assert_eq!((mock.checks_for(V4), mock.checks_for(V6)), (1, 1));

    // A second alert for the low scorer is answered from the cache: no second call.
    let again = run_for(V4);
    assert_eq!(again.check_keys, None);
    assert_eq!(mock.checks_for(V4), 1);
    let log = wazuh.log().join("\n");
    assert!(
        log.contains("(from cache) is below the minimum 50"),
        "{log}"
    );
    assert!(!log.contains(key), "the API key never reaches the log");
}

fn reputation(ip: std::net::IpAddr, score: u8) -> Reputation {
    Reputation {
        ip,
        abuse_confidence_score: score,
        country_code: Some("NL".into()),
        usage_type: None,
        isp: None,
        domain: None,
        total_reports: Some(3),
        num_distinct_users: Some(2),
        last_reported_at: None,
        is_tor: Some(false),
        is_whitelisted: Some(false),
    }
}

/// Issue 10 item 9: an administrator's `repute block add --for 30d --reason manual` is not
/// shortened, re-labelled or removed by active response, and the log says what happened.
#[test]
fn active_response_leaves_a_manual_block_alone_and_says_so() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let wazuh = FakeWazuh::symlinked(&netns);
    let out = netns.run(&["block", "add", V4, "--for", "30d", "--reason", "manual"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = add_ip(&netns, &wazuh, V4, &["--for", "10m"], "continue");
    assert_eq!(run.code, Some(0));
    let entry = &listed(&netns)[0];
    assert_eq!(entry["reason"], "manual", "{entry}");
    let left = entry["remaining_secs"].as_u64().unwrap_or(0);
    assert!(left > 29 * 86_400, "not shortened to 10m: {left}s left");
    let log = wazuh.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("Kept {V4} blocked until"))
                && l.contains("not shortened")),
        "{log:?}"
    );
    let input = message("delete", json!({ "srcip": V4 }), &[]);
    let run = execute(&netns, &wazuh, input.as_bytes(), None);
    assert_eq!(run.code, Some(0));
    assert_eq!(listed(&netns).len(), 1, "the manual block stays");
    assert_eq!(netns.nft_elements("repute").len(), 1);
    assert!(
        wazuh
            .log()
            .iter()
            .any(|l| l.starts_with(&format!("Kept {V4} blocked: a manual block"))),
        "{:?}",
        wazuh.log()
    );
}
