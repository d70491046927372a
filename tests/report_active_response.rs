//! `repute wazuh active-response --report`, driven as execd drives it inside a private network
//! namespace (real `nft`), with the mock AbuseIPDB started inside that namespace: a block is
//! followed by one report on the alert's evidence, and a second alert for the same address
//! within 15 minutes blocks again but reports nothing.

mod block_support;
mod need;
mod support;

use std::path::PathBuf;

use block_support::{Netns, execd};
use serde_json::{Value, json};
use support::mock_abuseipdb::MockInNetns;

const IP: &str = "45.155.205.233";
const KEY: &str = "test-key-report-ar";

fn alert() -> Value {
    json!({
        "timestamp": "2026-11-28T10:00:00.000+0000",
        "rule": { "level": 10, "description": "sshd: authentication failed.", "id": "5760" },
        "agent": { "id": "000", "name": "manager" },
        "id": "1764324000.1234",
        "full_log": format!("Nov 28 10:00:00 bastion-host-9 sshd[4242]: Failed password for root from {IP} port 4242 ssh2"),
        "data": { "srcip": IP, "srcuser": "root" },
        "location": "/var/log/auth.log"
    })
}

#[test]
fn a_blocked_address_is_reported_once_on_the_alerts_evidence() {
    let Some(netns) = Netns::new() else {
        return;
    };
    let home = netns.dir.path().join("ossec");
    std::fs::create_dir_all(home.join("active-response/bin")).expect("bin");
    std::fs::create_dir_all(home.join("logs")).expect("logs");
    let program: PathBuf = home.join(execd::PROGRAM);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_repute"), &program).expect("symlink");
    let ns = netns.ns_path();
    let mock = MockInNetns::start(&ns);
    let base_url = mock.base_url();
    let run = || {
        let input = format!("{}\n", execd::message("add", &[] as &[&str], alert()));
        execd::execute(
            &netns,
            &home,
            &program,
            input.as_bytes(),
            Some(&execd::reply("continue")),
            |cmd| {
                cmd.arg("--report")
                    .env("ABUSEIPDB_API_KEY", KEY)
                    .env("ABUSEIPDB_API_URL", &base_url);
            },
        )
    };
    let log =
        || std::fs::read_to_string(home.join("logs/active-responses.log")).unwrap_or_default();
    assert_eq!(run().code, Some(0), "{}", log());
    assert_eq!(netns.nft_elements("repute"), vec![IP]);
    let sent = mock.accepted_reports();
    assert_eq!(sent.len(), 1, "{}", log());
    assert_eq!(sent[0].categories, "18,22");
    let comment = sent[0].comment.clone().unwrap_or_default();
    assert!(
        comment.starts_with(
            "sshd: 1 failed login attempt (1 failed password); 1 user name tried; at "
        ),
        "{comment}"
    );
    for ours in ["bastion", "root", IP] {
        assert!(!comment.contains(ours), "{ours} in {comment}");
    }
    assert!(
        log().contains(&format!("Reported {IP} to AbuseIPDB (score now 52)")),
        "{}",
        log()
    );

    // A second alert a moment later: blocked (renewed) again, reported not again.
    assert_eq!(run().code, Some(0));
    assert_eq!(mock.count("report"), 1, "{}", log());
    assert!(
        log().contains(&format!("Not reported {IP}: reported at ")),
        "{}",
        log()
    );
    let audit =
        std::fs::read_to_string(netns.state_dir().join("report-audit.jsonl")).unwrap_or_default();
    let actions: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            format!(
                "{} by {}",
                v["action"].as_str().unwrap_or("?"),
                v["by"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "reported by active-response",
            "not_reported by active-response"
        ]
    );
    assert!(!log().contains(KEY) && !audit.contains(KEY));
    drop(mock);
}
