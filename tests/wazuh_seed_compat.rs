//! Drop-in compatibility with the seed script (`seed/wazuh-abuseipdb-blog.txt`): given the same
//! alert and the same AbuseIPDB answer, the event carries every field the script sent, with the
//! same value and JSON type, at the same location.
//!
//! The expected messages below were written by hand by following the script line by line:
//! `request_abuseipdb_info` builds `{"abuseipdb":{"found":0,"source":{…}},"integration":…}`,
//! sets `found` to 1 when `totalReports != 0` and then copies the seven answer fields;
//! `send_event` prefixes `1:[id] (name) ip->abuseipdb:` for an agent other than 000 and
//! serialises with Python's `json.dumps` defaults (`", "` and `": "` separators, ASCII only).
//! On a non-200 answer it sends `{"abuseipdb":{"error":status,"description":detail}}` with no
//! agent.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::mock_abuseipdb::{Fault, MockAbuseIpdb};
use support::wazuh_tree::{WazuhTree, split_message};

const KEY: &str = "seedcompat0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";

const ALERT: &str = r#"{"timestamp":"2026-11-28T10:32:55.123+0000","rule":{"level":10,"description":"sshd: Authentication failed from a public IP address 49.88.112.73.","id":"100001","firedtimes":3,"mail":false,"groups":["local","syslog","sshd","authentication_failed"],"pci_dss":["10.2.4","10.2.5"]},"agent":{"id":"001","name":"web-01","ip":"10.0.1.50"},"manager":{"name":"wazuh-manager"},"id":"1764325975.123456","full_log":"Nov 28 10:32:54 web-01 sshd[4242]: Failed password for root from 49.88.112.73 port 51234 ssh2","predecoder":{"program_name":"sshd","timestamp":"Nov 28 10:32:54","hostname":"web-01"},"decoder":{"parent":"sshd","name":"sshd"},"data":{"srcip":"49.88.112.73","srcport":"51234","dstuser":"root"},"location":"/var/log/auth.log"}"#;

/// AbuseIPDB's `data` for the reported address (a null `domain`, as the API may send).
const ANSWER_FOUND: &str = r#"{"ipAddress":"49.88.112.73","isPublic":true,"ipVersion":4,"isWhitelisted":false,"abuseConfidenceScore":100,"countryCode":"CN","usageType":"Data Center\/Web Hosting\/Transit","isp":"ChinaNet Jiangsu Province Network","domain":null,"hostnames":[],"isTor":false,"totalReports":4123,"numDistinctUsers":911,"lastReportedAt":"2026-11-28T09:59:01+00:00"}"#;

/// What the seed script sent for that alert and answer.
const SEED_FOUND: &str = r#"1:[001] (web-01) 10.0.1.50->abuseipdb:{"abuseipdb": {"found": 1, "source": {"alert_id": "1764325975.123456", "rule": "100001", "description": "sshd: Authentication failed from a public IP address 49.88.112.73.", "full_log": "Nov 28 10:32:54 web-01 sshd[4242]: Failed password for root from 49.88.112.73 port 51234 ssh2", "srcip": "49.88.112.73"}, "abuse_confidence_score": 100, "country_code": "CN", "usage_type": "Data Center/Web Hosting/Transit", "isp": "ChinaNet Jiangsu Province Network", "domain": null, "total_reports": 4123, "last_reported_at": "2026-11-28T09:59:01+00:00"}, "integration": "custom-abuseipdb"}"#;

/// An address AbuseIPDB has no reports for.
const ANSWER_UNKNOWN: &str = r#"{"ipAddress":"49.88.112.73","isPublic":true,"ipVersion":4,"isWhitelisted":false,"abuseConfidenceScore":0,"countryCode":"DE","usageType":"Fixed Line ISP","isp":"Deutsche Telekom AG","domain":"telekom.de","hostnames":[],"isTor":false,"totalReports":0,"numDistinctUsers":0,"lastReportedAt":null}"#;

/// The seed sends only `found` and `source` then.
const SEED_UNKNOWN: &str = r#"1:[001] (web-01) 10.0.1.50->abuseipdb:{"abuseipdb": {"found": 0, "source": {"alert_id": "1764325975.123456", "rule": "100001", "description": "sshd: Authentication failed from a public IP address 49.88.112.73.", "full_log": "Nov 28 10:32:54 web-01 sshd[4242]: Failed password for root from 49.88.112.73 port 51234 ssh2", "srcip": "49.88.112.73"}}, "integration": "custom-abuseipdb"}"#;

/// The seed on a 401: status and `errors[0].detail`, sent without the agent.
const SEED_UNAUTHORIZED: &str = r#"1:abuseipdb:{"abuseipdb": {"error": 401, "description": "Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key."}, "integration": "custom-abuseipdb"}"#;

/// Every leaf of a JSON value with its path (`abuseipdb.source.srcip`).
fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Runs the installed binary on ALERT with the mock configured by `setup`; returns the message.
fn our_message(setup: impl FnOnce(&MockAbuseIpdb)) -> String {
    let tree = WazuhTree::new();
    tree.install_binary("custom-abuseipdb");
    let mock = MockAbuseIpdb::start();
    setup(&mock);
    let alert = tree.write_alert("custom-abuseipdb-1-2.alert", ALERT);
    let url = mock.check_url();
    let args = [
        alert.to_str().unwrap(),
        KEY,
        &url,
        "",
        "",
        "10",
        "0",
        "> /dev/null 2>&1",
    ];
    let status = tree
        .integratord_command("custom-abuseipdb", &args)
        .stdin(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(0));
    let got = tree.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    got[0].clone()
}

/// Every field of the seed's event is in ours with the same value and type.
fn assert_seed_fields_kept(seed_message: &str, ours: &str, same_location: bool) -> Value {
    let (seed_location, seed) = split_message(seed_message);
    let (location, event) = split_message(ours);
    if same_location {
        assert_eq!(location, seed_location);
    }
    let mut fields = Vec::new();
    leaves("", &seed, &mut fields);
    assert!(fields.len() >= 3);
    for (path, seed_value) in fields {
        let value = at(&event, &path).unwrap_or_else(|| panic!("{path} is missing: {event}"));
        assert_eq!(type_name(value), type_name(&seed_value), "type of {path}");
        assert_eq!(value, &seed_value, "value of {path}");
    }
    event
}

#[test]
fn a_reported_address_gives_the_seeds_event_field_for_field() {
    let ours = our_message(|m| m.set_answer("49.88.112.73", ANSWER_FOUND));
    let event = assert_seed_fields_kept(SEED_FOUND, &ours, true);
    // Additions, documented in src/wazuh/event.rs.
    assert_eq!(event["srcip"], "49.88.112.73");
    assert_eq!(event["abuseipdb"]["num_distinct_users"], 911);
    assert_eq!(event["abuseipdb"]["is_tor"], false);
    assert_eq!(event["abuseipdb"]["answer_source"], "api");
}

#[test]
fn an_unreported_address_keeps_found_0_and_adds_a_zero_score() {
    let ours = our_message(|m| m.set_answer("49.88.112.73", ANSWER_UNKNOWN));
    let event = assert_seed_fields_kept(SEED_UNKNOWN, &ours, true);
    // The one deliberate difference: the answer fields are always present. A score of 0 is
    // what the seed's rule 100002 (score not ^0$) already treats as nothing to report.
    assert_eq!(event["abuseipdb"]["abuse_confidence_score"], 0);
    assert_eq!(event["abuseipdb"]["total_reports"], 0);
    assert_eq!(event["abuseipdb"]["last_reported_at"], Value::Null);
}

#[test]
fn an_api_error_keeps_the_seeds_error_code_and_adds_the_source() {
    let ours = our_message(|m| m.push_faults([Fault::unauthorized()]));
    let (_, seed) = split_message(SEED_UNAUTHORIZED);
    let (location, event) = split_message(&ours);
    assert_eq!(event["abuseipdb"]["error"], seed["abuseipdb"]["error"]);
    assert_eq!(event["integration"], seed["integration"]);
    assert!(event["abuseipdb"]["description"].is_string());
    // Ours is attributed to the agent, and says which alert it answers.
    assert_eq!(location, "[001] (web-01) 10.0.1.50->abuseipdb");
    assert_eq!(
        event["abuseipdb"]["source"]["alert_id"],
        "1764325975.123456"
    );
}
