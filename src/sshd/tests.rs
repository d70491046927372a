//! Whole-line tests: envelope + family + pid attribution.

use super::*;

fn parser() -> Parser {
    Parser::new("2026-11-28T12:00:00Z".parse().unwrap())
}

fn one(line: &str) -> Attempt {
    parser()
        .parse_line(line)
        .unwrap_or_else(|| panic!("not parsed: {line}"))
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn failed_password_whole_line() {
    let a = one(
        "Mar  1 10:00:00 srv01 sshd[123]: Failed password for root from 203.0.113.1 port 50022 ssh2",
    );
    assert_eq!(a.kind, Kind::FailedPassword);
    assert_eq!(a.outcome, Outcome::Failure);
    assert_eq!(a.srcip, ip("203.0.113.1"));
    assert_eq!(a.srcport, Some(50022));
    assert_eq!(a.user.as_deref(), Some("root"));
    assert_eq!(a.host.as_deref(), Some("srv01"));
    assert_eq!(a.pid, Some(123));
    assert_eq!(a.wazuh_rule, Some(5760));
    assert_eq!(a.time, Some("2026-03-01T10:00:00Z".parse().unwrap()));
    assert_eq!(a.origin, Origin::Unknown);
}

#[test]
fn non_sshd_and_non_events_give_nothing() {
    let mut p = parser();
    for line in [
        "Mar  1 10:00:00 srv sudo: Failed password for root from 203.0.113.1 port 1 ssh2",
        "Mar  1 10:00:00 srv sshd[1]: Server listening on 0.0.0.0 port 22.",
        "Mar  1 10:00:00 srv sshd[1]: pam_unix(sshd:session): session opened for user a by (uid=0)",
        "Mar  1 10:00:00 srv sshd[1]: Connection from 203.0.113.1 port 5 on 192.0.2.1 port 22",
    ] {
        assert_eq!(p.parse_line(line), None, "{line}");
    }
}

#[test]
fn kex_line_is_attributed_through_the_pid() {
    let mut p = parser();
    assert!(p.parse_line("Jun  7 04:29:10 h sshd[649921]: Connection from 192.0.2.16 port 51280 on 192.0.2.1 port 22 rdomain \"\"").is_none());
    let a = p.parse_line("Jun  7 04:29:10 h sshd[649921]: error: kex_exchange_identification: read: Connection reset by peer").unwrap();
    assert_eq!(a.kind, Kind::KexIdentification);
    assert_eq!(a.outcome, Outcome::Probe);
    assert_eq!(a.srcip, ip("192.0.2.16"));
    // Another host's pid of the same number is another connection.
    let b = p.parse_line("Jun  7 04:29:10 other sshd[649921]: error: kex_exchange_identification: read: Connection reset by peer").unwrap();
    assert_eq!(b.srcip, None);
}
