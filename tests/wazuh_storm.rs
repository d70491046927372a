//! A brute-force storm as integratord would run it (one process per alert), but harder:
//! several processes at once on one cache file. Every alert must be answered by an event, and
//! AbuseIPDB must be asked exactly once per address.

mod support;

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::mock_abuseipdb::MockAbuseIpdb;
use support::wazuh_tree::{WazuhTree, split_message};

const KEY: &str = "storm0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0";
const ALERTS: usize = 300;
const ADDRESSES: usize = 30;
const AT_ONCE: usize = 8;

fn address(i: usize) -> String {
    format!("45.33.{}.{}", 10 + i % ADDRESSES, 7 + i % ADDRESSES)
}

fn alert(n: usize) -> String {
    let ip = address(n);
    format!(
        r#"{{"rule":{{"level":10,"description":"sshd: Authentication failed from a public IP address {ip}.","id":"100001"}},"agent":{{"id":"00{a}","name":"node-{a}","ip":"10.0.0.{a}"}},"id":"1764325975.{n}","full_log":"Nov 28 10:32:54 node sshd[1]: Failed password for root from {ip} port {port} ssh2","data":{{"srcip":"{ip}"}},"location":"/var/log/auth.log"}}"#,
        a = 1 + n % 3,
        port = 40_000 + n
    )
}

#[test]
fn hundreds_of_alerts_cost_one_call_per_address_and_each_gets_an_event() {
    let tree = WazuhTree::new();
    tree.install_binary("custom-abuseipdb");
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let url = mock.check_url();
    let files: Vec<String> = (0..ALERTS)
        .map(|n| {
            let path = tree.write_alert(&format!("custom-abuseipdb-{n}.alert"), &alert(n));
            path.to_string_lossy().into_owned()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut running: Vec<Child> = Vec::new();
    let mut failures = Vec::new();
    let mut next = 0;
    while next < ALERTS || !running.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the storm did not finish in time"
        );
        while next < ALERTS && running.len() < AT_ONCE {
            let args = [
                files[next].as_str(),
                KEY,
                &url,
                "",
                "",
                "20",
                "3",
                "> /dev/null 2>&1",
            ];
            let child = tree
                .integratord_command("custom-abuseipdb", &args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            running.push(child);
            next += 1;
        }
        running.retain_mut(|c| match c.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    failures.push(status);
                }
                false
            }
            _ => true,
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(failures.is_empty(), "failed runs: {failures:?}");

    let events = tree.wait_for(ALERTS, Duration::from_secs(10));
    assert_eq!(events.len(), ALERTS, "every alert answered");
    let mut answered: HashMap<String, usize> = HashMap::new();
    let mut from_api = 0;
    for message in &events {
        let (_, event) = split_message(message);
        assert!(event["abuseipdb"].get("error").is_none(), "{event}");
        let id = event["abuseipdb"]["source"]["alert_id"]
            .as_str()
            .unwrap()
            .to_string();
        *answered.entry(id).or_default() += 1;
        if event["abuseipdb"]["answer_source"] == "api" {
            from_api += 1;
        }
    }
    assert_eq!(answered.len(), ALERTS, "each alert exactly once");
    assert!(answered.values().all(|&n| n == 1));
    let per_ip = mock.checks_per_ip();
    assert_eq!(per_ip.len(), ADDRESSES, "{per_ip:?}");
    assert!(
        per_ip.values().all(|&n| n == 1),
        "one call per address: {per_ip:?}"
    );
    assert_eq!(from_api, ADDRESSES);
}
