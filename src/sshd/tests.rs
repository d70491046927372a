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

#[test]
fn every_envelope_gives_the_same_attempt() {
    let msg = "Invalid user admin from 198.51.100.9 port 4242";
    for line in [
        format!("Mar  1 10:00:00 srv01 sshd[77]: {msg}"),
        format!("Mar  1 10:00:00 sshd[77]: {msg}"),
        format!("2026-03-01T10:00:00.000000+00:00 srv01 sshd[77]: {msg}"),
        format!("2026-03-01T11:00:00+0100 srv01 sshd-session[77]: {msg}"),
        format!("<38>1 2026-03-01T10:00:00Z srv01 sshd 77 - - {msg}"),
        format!("<38>1 2026-03-01T10:00:00Z srv01 sshd-session 77 - [meta sequenceId=\"1\"] {msg}"),
        format!("2026-03-01 03:00:00.000000-0700  srv01 sshd[77]: {msg}"),
        format!("Mar  1 10:00:00 srv01 auth.info sshd[77]: {msg}"),
        format!("srv01 sshd[77]: {msg}"),
    ] {
        let a = one(&line);
        assert_eq!(a.kind, Kind::InvalidUser, "{line}");
        assert_eq!(a.srcip, ip("198.51.100.9"), "{line}");
        assert_eq!(a.pid, Some(77), "{line}");
        assert_eq!(a.wazuh_rule, Some(5710), "{line}");
        if !line.starts_with("srv01") {
            assert_eq!(
                a.time,
                Some("2026-03-01T10:00:00Z".parse().unwrap()),
                "{line}"
            );
        }
    }
}

#[test]
fn too_many_failures_takes_the_address_of_earlier_lines_of_its_pid() {
    let mut p = parser();
    let a = p.parse_line("Nov 28 09:16:05 srv sshd[32310]: Failed publickey for git from 192.0.2.111 port 57910 ssh2: RSA SHA256:x").unwrap();
    assert_eq!(a.outcome, Outcome::Info);
    let b = p.parse_line("Nov 28 09:16:05 srv sshd[32310]: Disconnecting: Too many authentication failures for git [preauth]").unwrap();
    assert_eq!(
        (b.kind, b.outcome),
        (Kind::TooManyAuthFailures, Outcome::Failure)
    );
    assert_eq!(
        (b.srcip, b.srcport, b.user.as_deref()),
        (ip("192.0.2.111"), Some(57910), Some("git"))
    );
    // The connection ends; its pid is forgotten.
    let c = p.parse_line("Nov 28 09:16:05 srv sshd[32310]: Connection closed by 192.0.2.111 port 57910 [preauth]").unwrap();
    assert_eq!(c.kind, Kind::ConnClosedPreauth);
    let d = p.parse_line("Nov 28 09:16:06 srv sshd[32310]: error: kex_exchange_identification: Connection closed by remote host").unwrap();
    assert_eq!(d.srcip, None);
}

#[test]
fn an_address_less_probe_makes_the_following_close_a_probe() {
    let mut p = parser();
    let a = p.parse_line("Jun  7 04:10:35 host sshd[424228]: error: kex_exchange_identification: Connection closed by remote host").unwrap();
    assert_eq!((a.outcome, a.srcip), (Outcome::Probe, None));
    let b = p
        .parse_line("Jun  7 04:10:35 host sshd[424228]: Connection closed by 192.0.2.15 port 35352")
        .unwrap();
    assert_eq!(
        (b.kind, b.outcome, b.srcip),
        (Kind::ConnClosed, Outcome::Probe, ip("192.0.2.15"))
    );
    // Without the probe before it, the same close is a normal logout.
    let c = p
        .parse_line("Jun  7 04:10:36 host sshd[5]: Connection closed by 192.0.2.15 port 35353")
        .unwrap();
    assert_eq!(c.outcome, Outcome::Info);
}

#[test]
fn stale_pid_entries_are_not_trusted_and_reset_forgets() {
    let mut p = parser();
    p.parse_line("Mar  1 10:00:00 h sshd[9]: Invalid user a from 192.0.2.9 port 1");
    let late = p
        .parse_line("Mar  1 12:00:00 h sshd[9]: Disconnecting: Too many authentication failures")
        .unwrap();
    assert_eq!(late.srcip, None);
    p.parse_line("Mar  1 10:00:00 h sshd[10]: Invalid user a from 192.0.2.9 port 1");
    p.reset();
    let after = p
        .parse_line("Mar  1 10:00:01 h sshd[10]: Disconnecting: Too many authentication failures")
        .unwrap();
    assert_eq!(after.srcip, None);
}

#[test]
fn journald_parts_and_bare_messages() {
    let mut p = parser();
    p.parse_parts(
        None,
        Some("h"),
        Some(3),
        "Connection from 192.0.2.3 port 39678 on 192.0.2.1 port 22",
    );
    let e = p
        .parse_parts(
            None,
            Some("h"),
            Some(3),
            "fatal: Unable to negotiate a key exchange method [preauth]",
        )
        .unwrap();
    assert_eq!(
        (e.kind, e.srcip, e.wazuh_rule),
        (Kind::NegotiationFailed, ip("192.0.2.3"), Some(5752))
    );
    let a =
        parse_message("Failed password for invalid user x from 2001:db8::5 port 2 ssh2").unwrap();
    assert_eq!((a.srcip, a.pid, a.time), (ip("2001:db8::5"), None, None));
    assert_eq!(parse_message("Connection from 192.0.2.3 port 39678"), None);
}

#[test]
fn old_red_hat_pam_program() {
    let a = one(
        "Nov 11 22:46:29 localhost sshd(pam_unix)[15794]: 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.3.1  user=root",
    );
    assert_eq!(
        (a.kind, a.srcip, a.wazuh_rule),
        (Kind::PamMoreFailures, ip("10.0.3.1"), Some(2502))
    );
    let b = one(
        "Nov 11 22:46:29 localhost sshd(pam_unix)[15794]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=192.0.2.7  user=nobody",
    );
    assert_eq!(
        (b.kind, b.srcip, b.wazuh_rule),
        (Kind::PamAuthFailure, ip("192.0.2.7"), Some(5503))
    );
}

#[test]
fn injection_through_a_whole_line_gives_the_real_address() {
    let a = one(
        "Mar  1 10:00:05 srv01 sshd[4005]: Connection closed by invalid user x 198.51.100.7 203.0.113.50 port 4242 [preauth]",
    );
    assert_eq!(a.srcip, ip("203.0.113.50"));
    assert_eq!(a.user.as_deref(), Some("x 198.51.100.7"));
}

/// `Disconnecting invalid user U 203.0.113.50 port 4242: REASON [preauth]` with the reason
/// cut to 100 bytes as `packet.c` does (`%.100s`).
fn cut_change_of_username_line(pid: u32, user: &str) -> String {
    let reason = format!(
        "Change of username or service not allowed: ({user},ssh-connection) -> (b,ssh-connection)"
    );
    let reason = reason.get(..100).unwrap_or(&reason);
    format!(
        "Mar  1 10:00:06 srv01 sshd[{pid}]: Disconnecting invalid user {user} 203.0.113.50 port 4242: {reason} [preauth]"
    )
}

#[test]
fn a_cut_change_of_username_reason_never_gives_the_decoy() {
    let user = format!("{} 198.51.100.7 port 1z", "a".repeat(36));
    let a = one(&cut_change_of_username_line(4006, &user));
    assert_eq!(
        (a.kind, a.srcip, a.srcport, a.user.as_deref()),
        (
            Kind::ChangeOfUsername,
            ip("203.0.113.50"),
            Some(4242),
            Some(user.as_str())
        )
    );
    // No split sshd could have written: the pid's client gives the address.
    let mut p = parser();
    p.parse_line(
        "Mar  1 10:00:05 srv01 sshd[4007]: Connection from 203.0.113.50 port 4242 on 192.0.2.1 port 22",
    );
    let line = cut_change_of_username_line(
        4007,
        "x :: port 5: Change of username or service not allowed: x",
    );
    let a = p.parse_line(&line).unwrap();
    assert_eq!(
        (a.kind, a.srcip),
        (Kind::ChangeOfUsername, ip("203.0.113.50"))
    );
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Arbitrary bytes (as a lossy string) never panic, alone or after an sshd head.
        #[test]
        fn no_line_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let mut p = parser();
            let _ = p.parse_line(&text);
            let _ = p.parse_line(&format!("Mar  1 10:00:00 h sshd[1]: {text}"));
            let _ = p.parse_line(&format!("<38>1 2026-01-01T00:00:00Z h sshd 1 - {text}"));
            let _ = parse_message(&text);
        }

        /// Any printable line, with or without an envelope, never panics.
        #[test]
        fn no_printable_line_panics(line in "\\PC{0,200}") {
            let mut p = parser();
            let _ = p.parse_line(&line);
            let _ = p.parse_line(&format!("srv sshd[2]: {line}"));
        }
    }
}

#[test]
fn a_host_name_line_takes_the_address_of_its_connection() {
    let mut p = parser();
    p.parse_line(
        "Mar  1 10:00:00 h sshd[42]: Connection from 192.0.2.42 port 5555 on 192.0.2.1 port 22",
    );
    let a = p.parse_line("Mar  1 10:00:01 h sshd[42]: error: PAM: Authentication failure for bob from client.example.net").unwrap();
    assert_eq!(
        (a.kind, a.srcip, a.srcport),
        (Kind::PamError, ip("192.0.2.42"), Some(5555))
    );
    // The host name did not erase the address for later lines.
    let b = p
        .parse_line("Mar  1 10:00:02 h sshd[42]: Disconnecting: Too many authentication failures")
        .unwrap();
    assert_eq!(b.srcip, ip("192.0.2.42"));
    // Without an earlier line, a host name gives no address.
    let c = p.parse_line("Mar  1 10:00:03 h sshd[43]: error: PAM: Authentication failure for bob from client.example.net").unwrap();
    assert_eq!(c.srcip, None);
}

/// Attempts per line, and their sum, for the lines of `log` (one per line).
fn attempts(log: &str) -> (Vec<u32>, u32) {
    let mut p = parser();
    let per_line: Vec<u32> = log
        .lines()
        .map(|l| p.parse_line_ref(l.trim_start()).map_or(0, |e| e.attempts))
        .collect();
    let sum = per_line.iter().sum();
    (per_line, sum)
}

#[test]
fn one_password_try_of_an_unknown_user_is_one_attempt() {
    // Debian 12's OpenSSH 9.2 with PAM: PAM logs from a pid of its own.
    let (per_line, sum) = attempts(
        "Nov 28 10:00:00 srv sshd[900]: Invalid user bob from 203.0.113.5 port 40000
         Nov 28 10:00:00 srv sshd[901]: pam_unix(sshd:auth): check pass; user unknown
         Nov 28 10:00:00 srv sshd[901]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5
         Nov 28 10:00:02 srv sshd[900]: Failed password for invalid user bob from 203.0.113.5 port 40000 ssh2
         Nov 28 10:00:02 srv sshd[900]: Connection closed by invalid user bob 203.0.113.5 port 40000 [preauth]",
    );
    assert_eq!((per_line, sum), (vec![1, 0, 0, 0, 0], 1));
}

#[test]
fn each_password_try_counts_once() {
    let (per_line, sum) = attempts(
        "Nov 28 10:00:00 srv sshd[900]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root
         Nov 28 10:00:02 srv sshd[900]: Failed password for root from 203.0.113.5 port 40000 ssh2
         Nov 28 10:00:04 srv sshd[900]: Failed password for root from 203.0.113.5 port 40000 ssh2
         Nov 28 10:00:06 srv sshd[900]: Failed password for root from 203.0.113.5 port 40000 ssh2
         Nov 28 10:00:06 srv sshd[900]: Received disconnect from 203.0.113.5 port 40000:11: Bye Bye [preauth]
         Nov 28 10:00:06 srv sshd[900]: Disconnected from authenticating user root 203.0.113.5 port 40000 [preauth]",
    );
    assert_eq!(sum, 3, "{per_line:?}");
    // A probe that tried nothing is one attempt.
    let (_, sum) = attempts(
        "Nov 28 10:00:00 srv sshd[902]: error: kex_exchange_identification: Connection closed by remote host
         Nov 28 10:00:00 srv sshd[902]: Connection closed by 203.0.113.6 port 40001",
    );
    assert_eq!(sum, 1);
}

#[test]
fn several_user_names_then_a_login_is_an_attack() {
    let (per_line, sum) = attempts(
        "Nov 28 10:00:00 srv sshd[900]: Failed password for root from 203.0.113.5 port 40000 ssh2
         Nov 28 10:00:02 srv sshd[900]: Failed password for admin from 203.0.113.5 port 40000 ssh2
         Nov 28 10:00:04 srv sshd[900]: Accepted password for alice from 203.0.113.5 port 40000 ssh2",
    );
    assert_eq!((per_line, sum), (vec![1, 1, 1], 3));
    let mut p = parser();
    let e = p
        .parse_line_ref("Nov 28 10:00:04 srv sshd[900]: Accepted password for alice from 203.0.113.5 port 40000 ssh2")
        .unwrap();
    // The line itself stays what it is.
    assert_eq!(
        (e.kind, e.outcome, e.attempts),
        (Kind::Accepted, Outcome::Success, 0)
    );
    // A mistyped password, then the login: no attack.
    let (_, sum) = attempts(
        "Nov 28 10:00:00 srv sshd[903]: Failed password for alice from 203.0.113.7 port 40000 ssh2
         Nov 28 10:00:04 srv sshd[903]: Accepted password for alice from 203.0.113.7 port 40000 ssh2",
    );
    assert_eq!(sum, 1);
}

#[test]
fn a_backslash_escaped_twice_is_still_one_user() {
    // The monitor escapes `\` once, the pre-auth child twice (OpenSSH before 10.3).
    let (per_line, _) = attempts(
        r"Nov 28 10:00:00 srv sshd[900]: Failed password for invalid user a\\b from 203.0.113.5 port 40000 ssh2
         Nov 28 10:00:02 srv sshd[900]: Postponed keyboard-interactive for invalid user a\\\\b from 203.0.113.5 port 40000 ssh2 [preauth]
         Nov 28 10:00:04 srv sshd[900]: Accepted keyboard-interactive/pam for a\\b from 203.0.113.5 port 40000 ssh2",
    );
    assert_eq!(per_line, vec![1, 0, 0]);
}

#[test]
fn max_startups_drop_with_brackets() {
    let a = one(
        "Nov 28 10:00:00 srv sshd[1]: drop connection #4 from [45.142.120.24]:41971 on [127.0.0.1]:2223 past MaxStartups",
    );
    assert_eq!(
        (a.kind, a.outcome, a.srcip, a.srcport),
        (
            Kind::PenaltyDrop,
            Outcome::Probe,
            ip("45.142.120.24"),
            Some(41971)
        )
    );
}

#[test]
fn a_one_line_parser_reads_every_line_as_a_log_reader_does() {
    let now = "2026-11-28T12:00:00Z".parse().unwrap();
    let lines = [
        "Mar  1 10:00:00 srv01 sshd[123]: Failed password for root from 203.0.113.1 port 50022 ssh2",
        "Mar  1 10:00:00 srv01 sshd[124]: Failed password for invalid user admin from 2001:db8::7 port 4 ssh2",
        "Mar  1 10:00:00 srv01 sshd[125]: Invalid user x 198.51.100.7 from 203.0.113.9 port 22",
        "Mar  1 10:00:00 srv01 sshd[126]: Accepted publickey for deploy from 203.0.113.2 port 1 ssh2: ED25519 SHA256:abc",
        "Mar  1 10:00:00 srv01 sshd[127]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.3  user=root",
        "Mar  1 10:00:00 srv01 sshd[128]: Connection closed by authenticating user root 203.0.113.4 port 5 [preauth]",
        "Mar  1 10:00:00 srv01 sshd[129]: Did not receive identification string from 203.0.113.5 port 6",
        "2026-11-28T11:59:00.123456+00:00 srv01 sshd-session[130]: Disconnected from invalid user a 203.0.113.6 port 7 [preauth]",
        "Mar  1 10:00:00 srv01 sshd[131]: Server listening on 0.0.0.0 port 22.",
        "not a log line at all",
    ];
    for line in lines {
        assert_eq!(
            Parser::for_one_line(now).parse_line(line),
            Parser::new(now).parse_line(line),
            "{line}"
        );
    }
}
