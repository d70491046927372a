//! The AbuseIPDB client against the mock on 127.0.0.1: documented answers, every error
//! class, timeouts, resets, retries within the budget, and the key kept out of errors.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use repute::config::ApiKey;
use repute::reputation::abuseipdb::{AbuseIpdb, BlacklistQuery, ClientSettings, MAX_COMMENT_CHARS};
use repute::reputation::{ApiError, Provider};
use support::mock_abuseipdb::{Fault, MockAbuseIpdb};

const KEY: &str =
    "0123456789abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789abcdefghij";

fn client(mock: &MockAbuseIpdb, timeout: Duration, retries: u32) -> AbuseIpdb {
    AbuseIpdb::new(ClientSettings {
        base_url: mock.base_url(),
        api_key: Some(ApiKey::new(KEY)),
        connect_timeout: Duration::from_secs(1),
        timeout,
        retries,
        proxy: None,
        ca_file: None,
    })
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

#[test]
fn check_parses_the_documented_example_and_sends_the_right_request() {
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let c = client(&mock, Duration::from_secs(5), 0);
    let answer = c.check(ip("118.25.6.39"), 90, false).expect("check");
    let rep = answer.data.to_reputation(ip("118.25.6.39"));
    assert_eq!(rep.abuse_confidence_score, 100);
    assert_eq!(rep.country_code.as_deref(), Some("CN"));
    assert_eq!(
        rep.usage_type.as_deref(),
        Some("Data Center/Web Hosting/Transit")
    );
    assert_eq!(
        rep.isp.as_deref(),
        Some("Tencent Cloud Computing (Beijing) Co. Ltd")
    );
    assert_eq!(rep.domain.as_deref(), Some("tencent.com"));
    assert_eq!(rep.total_reports, Some(1));
    assert_eq!(rep.num_distinct_users, Some(1));
    assert_eq!(
        rep.last_reported_at.as_deref(),
        Some("2018-12-20T20:55:14+00:00")
    );
    assert_eq!(rep.is_tor, Some(false));
    assert_eq!(rep.is_whitelisted, Some(false));
    assert_eq!(
        answer.data.country_name, None,
        "countryName only comes with verbose"
    );
    assert_eq!(answer.rate.limit, Some(1000));

    let seen = &mock.requests()[0];
    assert_eq!(seen.method, "GET");
    assert!(seen.path.ends_with("/api/v2/check"));
    assert_eq!(seen.headers.get("key").map(String::as_str), Some(KEY));
    assert_eq!(
        seen.headers.get("accept").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(
        seen.params.get("maxAgeInDays").map(String::as_str),
        Some("90")
    );
    assert!(!seen.query.contains(KEY), "the key never goes into the URL");
    assert!(!seen.params.contains_key("verbose"));
}

#[test]
fn verbose_check_adds_country_name_and_reports() {
    let mock = MockAbuseIpdb::start();
    let answer = client(&mock, Duration::from_secs(5), 0)
        .check(ip("118.25.6.39"), 30, true)
        .expect("check");
    assert_eq!(answer.data.country_name.as_deref(), Some("China"));
    assert_eq!(answer.data.reports.len(), 1);
    assert_eq!(answer.data.reports[0].categories, vec![18, 22]);
    assert!(mock.requests()[0].params.contains_key("verbose"));
}

#[test]
fn documented_corpus_example_parses_when_present() {
    let path = std::path::Path::new("../shared/corpus/abuseipdb/check-verbose.json");
    let Ok(body) = std::fs::read_to_string(path) else {
        eprintln!("skipped: {} is absent", path.display());
        return;
    };
    let mock = MockAbuseIpdb::start();
    let value: serde_json::Value = serde_json::from_str(&body).expect("corpus JSON");
    mock.set_answer("118.25.6.39", &value["data"].to_string());
    let answer = client(&mock, Duration::from_secs(5), 0)
        .check(ip("118.25.6.39"), 90, true)
        .expect("check");
    assert_eq!(answer.data.abuse_confidence_score, 100);
    assert_eq!(
        answer.data.usage_type.as_deref(),
        Some("Data Center/Web Hosting/Transit")
    );
    assert_eq!(answer.data.reports.len(), 1);
}

#[test]
fn ipv6_is_url_encoded_and_a_check_hook_url_is_accepted() {
    let mock = MockAbuseIpdb::start();
    let c = AbuseIpdb::new(ClientSettings {
        base_url: mock.check_url(),
        api_key: Some(ApiKey::new(KEY)),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        retries: 0,
        proxy: None,
        ca_file: None,
    });
    let answer = c
        .check(ip("2a00:1450:4001::200e"), 90, false)
        .expect("check");
    assert_eq!(answer.data.ip_address, "2a00:1450:4001::200e");
    let seen = &mock.requests()[0];
    assert!(seen.path.ends_with("/api/v2/check"), "{}", seen.path);
    assert!(
        seen.query
            .contains("ipAddress=2a00%3A1450%3A4001%3A%3A200e"),
        "{}",
        seen.query
    );
}

#[test]
fn max_age_is_validated_before_any_request() {
    let mock = MockAbuseIpdb::start();
    let c = client(&mock, Duration::from_secs(5), 0);
    for bad in [0, 366] {
        assert_eq!(
            c.check(ip("8.8.8.8"), bad, false).unwrap_err(),
            ApiError::InvalidMaxAge(bad)
        );
    }
    assert!(c.check(ip("8.8.8.8"), 365, false).is_ok());
    assert!(c.check(ip("8.8.8.8"), 1, false).is_ok());
    assert_eq!(mock.count("check"), 2);
}

#[test]
fn lenient_parsing_accepts_nulls_and_missing_fields() {
    let mock = MockAbuseIpdb::start();
    mock.set_answer(
        "203.0.113.50",
        r#"{"ipAddress":"203.0.113.50","abuseConfidenceScore":0,"isWhitelisted":null,"countryCode":null,
            "usageType":null,"isp":null,"domain":null,"lastReportedAt":null,"isCrawler":false}"#,
    );
    let rep = client(&mock, Duration::from_secs(5), 0)
        .check(ip("203.0.113.50"), 90, false)
        .expect("check")
        .data
        .to_reputation(ip("203.0.113.50"));
    assert_eq!(rep.abuse_confidence_score, 0);
    assert_eq!(
        (&rep.country_code, rep.total_reports, rep.is_tor),
        (&None, None, None)
    );
    assert!(rep.is_unknown());
}

#[test]
fn missing_score_is_a_bad_body() {
    let mock = MockAbuseIpdb::start();
    mock.set_answer("203.0.113.51", r#"{"ipAddress":"203.0.113.51"}"#);
    let err = client(&mock, Duration::from_secs(5), 0)
        .check(ip("203.0.113.51"), 90, false)
        .unwrap_err();
    assert!(
        matches!(err, ApiError::BadBody { status: 200, .. }),
        "{err:?}"
    );
}

#[test]
fn errors_are_typed_by_status_then_body() {
    let mock = MockAbuseIpdb::start();
    let c = client(&mock, Duration::from_secs(5), 0);
    let check = || c.check(ip("8.8.4.4"), 90, false).unwrap_err();

    mock.push_faults([Fault::unauthorized()]);
    assert!(matches!(
        check(),
        ApiError::Unauthorized { status: 401, .. }
    ));
    mock.push_faults([Fault::payment_required()]);
    assert!(matches!(check(), ApiError::PaymentRequired { .. }));
    mock.push_faults([Fault::unprocessable_ip()]);
    match check() {
        ApiError::Unprocessable { parameter, detail } => {
            assert_eq!(parameter.as_deref(), Some("ipAddress"));
            assert!(detail.contains("valid IPv4 or IPv6"));
        }
        other => panic!("{other:?}"),
    }
    mock.push_faults([Fault::quota(3600)]);
    match check() {
        ApiError::QuotaExhausted { retry_at, .. } => {
            let now = jiff::Timestamp::now().as_second();
            let at = retry_at.expect("Retry-After honoured");
            assert!((now + 3590..=now + 3610).contains(&at), "{at} vs {now}");
        }
        other => panic!("{other:?}"),
    }
    mock.push_faults([Fault::server_error(503)]);
    assert!(matches!(check(), ApiError::Server { status: 503, .. }));
    mock.push_faults([Fault::html(502)]);
    match check() {
        ApiError::Server {
            status: 502,
            detail,
        } => assert!(detail.starts_with("HTML page"), "{detail}"),
        other => panic!("{other:?}"),
    }
    mock.push_faults([Fault::html(200)]);
    assert!(matches!(check(), ApiError::BadBody { status: 200, .. }));
    mock.push_faults([Fault::status(418, "")]);
    assert!(matches!(
        check(),
        ApiError::UnexpectedStatus { status: 418, .. }
    ));
    mock.push_faults([Fault::status(302, "")]);
    assert!(matches!(
        check(),
        ApiError::UnexpectedStatus { status: 302, .. }
    ));
}

#[test]
fn transient_failures_are_retried_within_bounds() {
    let mock = MockAbuseIpdb::start();
    mock.push_faults([Fault::server_error(500), Fault::Reset]);
    let answer = client(&mock, Duration::from_secs(5), 2).check(ip("9.9.9.9"), 90, false);
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(mock.count("check"), 3);

    let mock = MockAbuseIpdb::start();
    mock.always(Fault::server_error(500));
    let err = client(&mock, Duration::from_secs(5), 2)
        .check(ip("9.9.9.9"), 90, false)
        .unwrap_err();
    assert!(matches!(err, ApiError::Server { status: 500, .. }));
    assert_eq!(mock.count("check"), 3, "one try and two retries, no more");

    let mock = MockAbuseIpdb::start();
    mock.always(Fault::unauthorized());
    let _ = client(&mock, Duration::from_secs(5), 3).check(ip("9.9.9.9"), 90, false);
    assert_eq!(mock.count("check"), 1, "a refused key is not retried");
}

#[test]
fn a_server_that_never_answers_costs_at_most_the_budget() {
    let mock = MockAbuseIpdb::start();
    mock.always(Fault::Hang);
    let budget = Duration::from_millis(600);
    let started = Instant::now();
    let err = client(&mock, budget, 3)
        .check(ip("9.9.9.9"), 90, false)
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ApiError::Timeout(_)), "{err:?}");
    // Bounded by the budget (plus scheduling slack), not by retries × timeout.
    assert!(took < budget * 4, "gave up after {took:?}");
    assert_eq!(mock.count("check"), 1, "a timeout spends the whole budget");
}

#[test]
fn resets_and_silent_closes_are_connection_failures() {
    for fault in [Fault::Reset, Fault::Close] {
        let mock = MockAbuseIpdb::start();
        mock.always(fault.clone());
        let err = client(&mock, Duration::from_secs(5), 0)
            .check(ip("9.9.9.9"), 90, false)
            .unwrap_err();
        assert!(matches!(err, ApiError::Connection(_)), "{fault:?}: {err:?}");
        assert!(err.is_transient());
    }
}

/// A client whose API is a loopback port nobody listens on (bound, then closed): every
/// connection is refused.
fn client_to_a_closed_port(timeout: Duration, retries: u32) -> AbuseIpdb {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    AbuseIpdb::new(ClientSettings {
        base_url: format!("http://127.0.0.1:{port}/api/v2"),
        api_key: Some(ApiKey::new(KEY)),
        connect_timeout: Duration::from_secs(1),
        timeout,
        retries,
        proxy: None,
        ca_file: None,
    })
}

#[test]
fn a_refused_connection_is_a_connection_failure() {
    let c = client_to_a_closed_port(Duration::from_secs(2), 0);
    let err = c.check(ip("9.9.9.9"), 90, false).unwrap_err();
    assert!(matches!(err, ApiError::Connection(_)), "{err:?}");
}

#[test]
fn no_key_means_no_request() {
    let mock = MockAbuseIpdb::start();
    let c = AbuseIpdb::new(ClientSettings {
        base_url: mock.base_url(),
        api_key: None,
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        retries: 0,
        proxy: None,
        ca_file: None,
    });
    assert_eq!(
        c.check(ip("9.9.9.9"), 90, false).unwrap_err(),
        ApiError::NoApiKey
    );
    assert_eq!(mock.requests().len(), 0);
}

#[test]
fn the_key_echoed_in_an_error_body_is_scrubbed() {
    let mock = MockAbuseIpdb::start();
    let body = format!(r#"{{"errors":[{{"detail":"Key {KEY} is revoked","status":401}}]}}"#);
    mock.push_faults([
        Fault::status(401, &body),
        Fault::status(500, &format!("<html>{KEY}</html>")),
    ]);
    let c = client(&mock, Duration::from_secs(5), 0);
    for _ in 0..2 {
        let err = c.check(ip("9.9.9.9"), 90, false).unwrap_err();
        let shown = format!("{err} {err:?} {c:?}");
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

#[test]
fn report_sends_the_form_caps_the_comment_and_never_retries_a_duplicate() {
    let mock = MockAbuseIpdb::start();
    let c = client(&mock, Duration::from_secs(5), 3);
    let when = jiff::Timestamp::from_second(1_764_316_800).expect("time");
    let long = "x".repeat(1500);
    let done = c
        .report(ip("198.51.100.9"), &[18, 22], Some(&long), Some(when))
        .expect("report");
    assert_eq!(done.abuse_confidence_score, 52);
    let seen = &mock.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.params.get("categories").map(String::as_str),
        Some("18,22")
    );
    assert_eq!(
        seen.params.get("ip").map(String::as_str),
        Some("198.51.100.9")
    );
    assert_eq!(
        seen.params.get("comment").map(|c| c.chars().count()),
        Some(MAX_COMMENT_CHARS)
    );
    assert_eq!(
        seen.params.get("timestamp").map(String::as_str),
        Some("2025-11-28T08:00:00+00:00")
    );

    let err = c
        .report(ip("198.51.100.9"), &[18, 22], None, None)
        .unwrap_err();
    assert!(
        matches!(err, ApiError::DuplicateReport { status: 429, .. }),
        "{err:?}"
    );
    let err = c.report(ip("127.0.0.2"), &[18], None, None).unwrap_err();
    assert!(matches!(err, ApiError::DuplicateReport { .. }), "{err:?}");
    assert_eq!(mock.count("report"), 3, "duplicates are not retried");

    assert!(matches!(
        c.report(ip("198.51.100.10"), &[], None, None),
        Err(ApiError::InvalidRequest(_))
    ));
    assert_eq!(mock.count("report"), 3);
}

#[test]
fn blacklist_parses_entries_with_and_without_country() {
    let mock = MockAbuseIpdb::start();
    let c = client(&mock, Duration::from_secs(5), 0);
    let list = c
        .blacklist(&BlacklistQuery {
            confidence_minimum: Some(90),
            limit: Some(100),
            ..BlacklistQuery::default()
        })
        .expect("blacklist");
    assert_eq!(list.entries.len(), 3);
    assert_eq!(list.entries[0].country_code.as_deref(), Some("US"));
    assert_eq!(list.entries[1].country_code, None);
    assert_eq!(
        list.generated_at.as_deref(),
        Some("2026-11-28T06:00:00+00:00")
    );
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.params.get("confidenceMinimum").map(String::as_str),
        Some("90")
    );
    let bad = BlacklistQuery {
        confidence_minimum: Some(10),
        ..BlacklistQuery::default()
    };
    assert!(matches!(
        c.blacklist(&bad),
        Err(ApiError::InvalidRequest(_))
    ));
}

#[test]
fn the_provider_trait_returns_the_reputation_and_rate() {
    let mock = MockAbuseIpdb::start();
    mock.set_daily_quota(5);
    let c = client(&mock, Duration::from_secs(5), 0);
    let checked = Provider::check(&c, ip("118.25.6.39"), 90).expect("check");
    assert_eq!(checked.reputation.ip, ip("118.25.6.39"));
    assert_eq!(checked.rate.remaining, Some(4));
    assert_eq!(c.name(), "abuseipdb");
}

#[test]
fn a_report_the_server_may_have_recorded_is_not_retried() {
    for fault in [Fault::Reset, Fault::Close, Fault::server_error(503)] {
        let mock = MockAbuseIpdb::start();
        mock.push_faults([fault.clone()]);
        let err = client(&mock, Duration::from_secs(5), 3)
            .report(ip("198.51.100.9"), &[18, 22], None, None)
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Connection(_) | ApiError::Server { .. }),
            "{fault:?}: {err:?}"
        );
        assert_eq!(mock.count("report"), 1, "{fault:?}: sent once, not retried");
    }
}

#[test]
fn a_lookup_is_still_retried_after_a_reset() {
    let mock = MockAbuseIpdb::start();
    mock.push_faults([Fault::Reset]);
    let rep = client(&mock, Duration::from_secs(5), 3)
        .check(ip("9.9.9.9"), 90, false)
        .expect("second try answers");
    assert_eq!(rep.data.ip_address, "9.9.9.9");
    assert_eq!(mock.count("check"), 2);
}

#[test]
fn a_refused_report_is_retried_then_fails_as_a_connection_failure() {
    let c = client_to_a_closed_port(Duration::from_secs(3), 2);
    let err = c.report(ip("198.51.100.9"), &[18], None, None).unwrap_err();
    assert!(matches!(err, ApiError::Connection(_)), "{err:?}");
}
