//! One test per message family (fixtures written for repute, documentation addresses), a
//! check that the per-family Wazuh rule agrees with the full rule walk, and the property
//! tests: no input panics, and no user name or identification string moves the address.

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::sshd::rules::cascade;

/// kind, outcome, address, port, user, Wazuh rule of one message.
type Seen = (
    Kind,
    Outcome,
    Option<IpAddr>,
    Option<u16>,
    Option<String>,
    Option<u32>,
);

fn seen(message: &str) -> Option<Seen> {
    match parse(message)? {
        Message::Attempt(e) => Some((
            e.kind,
            e.outcome,
            e.srcip(),
            e.peer.and_then(|p| p.port),
            e.user.map(str::to_owned),
            e.wazuh_rule,
        )),
        Message::Peer(_) => None,
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn check(message: &str, kind: Kind, outcome: Outcome, addr: Option<&str>, rule: u32) -> Seen {
    let s = seen(message).unwrap_or_else(|| panic!("not recognised: {message}"));
    assert_eq!((s.0, s.1), (kind, outcome), "{message}");
    assert_eq!(s.2, addr.and_then(ip), "{message}");
    assert_eq!(s.5, Some(rule), "{message}");
    s
}

use Kind as K;
use Outcome::{Failure as F, Info as I, Probe as P, Success as S};

/// Every family with a fixture line: (message, kind, outcome, address, Wazuh rule).
#[rustfmt::skip]
const FAMILIES: &[(&str, Kind, Outcome, Option<&str>, u32)] = &[
    ("Failed password for root from 203.0.113.1 port 50022 ssh2", K::FailedPassword, F, Some("203.0.113.1"), 5760),
    ("Failed password for invalid user admin from 203.0.113.2 port 50022 ssh2", K::FailedPassword, F, Some("203.0.113.2"), 5710),
    ("Failed publickey for git from 203.0.113.3 port 50022 ssh2: RSA SHA256:AAAAB3Nza", K::FailedPublickey, I, Some("203.0.113.3"), 5716),
    ("Failed publickey for invalid user git from 203.0.113.4 port 50022 ssh2: RSA SHA256:AAAA", K::FailedPublickey, F, Some("203.0.113.4"), 5710),
    ("Failed keyboard-interactive/pam for invalid user oracle from 203.0.113.5 port 50022 ssh2", K::FailedKeyboardInteractive, F, Some("203.0.113.5"), 5710),
    ("Failed keyboard-interactive/pam for alice from 203.0.113.5 port 50022 ssh2", K::FailedKeyboardInteractive, F, Some("203.0.113.5"), 5760),
    ("Failed none for invalid user test from 203.0.113.6 port 50022 ssh2", K::FailedNone, F, Some("203.0.113.6"), 5710),
    ("Failed none for root from 203.0.113.6 port 50022 ssh2", K::FailedNone, F, Some("203.0.113.6"), 5716),
    ("Failed hostbased for dan from 192.0.2.7 port 45785 ssh2: RSA SHA256:x, client user \"dan\", client host \"h\"", K::FailedOther, F, Some("192.0.2.7"), 5716),
    ("Invalid user admin from 203.0.113.7 port 50022", K::InvalidUser, F, Some("203.0.113.7"), 5710),
    ("Invalid user  from 203.0.113.8 port 50022", K::InvalidUser, F, Some("203.0.113.8"), 5710),
    ("Invalid user admin from 203.0.113.7", K::InvalidUser, F, Some("203.0.113.7"), 5710),
    ("Illegal user admin from 203.0.113.7", K::InvalidUser, F, Some("203.0.113.7"), 5710),
    ("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root", K::PamAuthFailure, F, Some("203.0.113.9"), 5503),
    ("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.10", K::PamAuthFailure, F, Some("203.0.113.10"), 5503),
    ("PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.11  user=root", K::PamMoreFailures, F, Some("203.0.113.11"), 2502),
    ("pam_unix(sshd:auth): check pass; user unknown", K::PamUserUnknown, F, None, 5523),
    ("error: PAM: Authentication failure for root from 203.0.113.12", K::PamError, F, Some("203.0.113.12"), 5716),
    ("error: PAM: authentication error for james from 203.0.113.12 via 192.0.2.1", K::PamError, F, Some("203.0.113.12"), 5760),
    ("error: PAM: unknown user for illegal user x from 203.0.113.12", K::PamError, F, Some("203.0.113.12"), 5710),
    ("error: PAM: User not known to the underlying authentication module for illegal user x from 203.0.113.12", K::PamError, F, Some("203.0.113.12"), 5711),
    ("error: maximum authentication attempts exceeded for root from 203.0.113.13 port 50022 ssh2 [preauth]", K::MaxAuthTries, F, Some("203.0.113.13"), 5758),
    ("error: maximum authentication attempts exceeded for invalid user admin from 203.0.113.14 port 50022 ssh2 [preauth]", K::MaxAuthTries, F, Some("203.0.113.14"), 5758),
    ("Disconnecting authenticating user root 203.0.113.15 port 50022: Too many authentication failures [preauth]", K::TooManyAuthFailures, F, Some("203.0.113.15"), 5700),
    ("Disconnecting invalid user xxx 203.0.113.15 port 50022: Too many authentication failures [preauth]", K::TooManyAuthFailures, F, Some("203.0.113.15"), 5710),
    ("Disconnecting: Too many authentication failures for root [preauth]", K::TooManyAuthFailures, F, None, 5700),
    ("Disconnecting: Too many authentication failures [preauth]", K::TooManyAuthFailures, F, None, 5700),
    ("Disconnecting invalid user admin 192.0.2.117 port 44004: Change of username or service not allowed: (admin,ssh-connection) -> (user,ssh-connection) [preauth]", K::ChangeOfUsername, F, Some("192.0.2.117"), 5710),
    ("Connection closed by authenticating user root 203.0.113.16 port 50022 [preauth]", K::ConnClosedPreauth, P, Some("203.0.113.16"), 5722),
    ("Connection closed by invalid user admin 203.0.113.17 port 50022 [preauth]", K::ConnClosedPreauth, F, Some("203.0.113.17"), 5722),
    ("Connection reset by authenticating user root 203.0.113.18 port 50022 [preauth]", K::ConnResetPreauth, P, Some("203.0.113.18"), 5762),
    ("Disconnected from invalid user admin 203.0.113.19 port 50022 [preauth]", K::DisconnectedPreauth, F, Some("203.0.113.19"), 5710),
    ("Disconnected from authenticating user root 203.0.113.20 port 50022 [preauth]", K::DisconnectedPreauth, F, Some("203.0.113.20"), 5700),
    ("Connection closed by 203.0.113.21 port 50022 [preauth]", K::ConnClosedPreauth, P, Some("203.0.113.21"), 5722),
    ("Connection reset by 203.0.113.22 port 50022 [preauth]", K::ConnResetPreauth, P, Some("203.0.113.22"), 5762),
    ("Connection reset by invalid user a 203.0.113.22 port 50022 [preauth]", K::ConnResetPreauth, F, Some("203.0.113.22"), 5710),
    ("Received disconnect from 203.0.113.23 port 50022:11: Bye Bye [preauth]", K::ReceivedDisconnectPreauth, P, Some("203.0.113.23"), 5721),
    ("Received disconnect from 203.0.113.24 port 50022:14: No supported authentication methods available [preauth]", K::NoAuthMethods, P, Some("203.0.113.24"), 5721),
    ("Received disconnect from 198.51.100.34: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]", K::AuthFailDisconnect, F, Some("198.51.100.34"), 5721),
    ("error: Received disconnect from 2001:db8::23: 11: Bye Bye [preauth]", K::ReceivedDisconnectPreauth, P, Some("2001:db8::23"), 5721),
    ("User root from 203.0.113.25 not allowed because not listed in AllowUsers", K::NotAllowed, F, Some("203.0.113.25"), 5718),
    ("User root from 203.0.113.25 port 50022 not allowed because listed in DenyUsers", K::NotAllowed, F, Some("203.0.113.25"), 5718),
    ("User root not allowed because account is locked", K::AccountLocked, F, None, 5718),
    ("ROOT LOGIN REFUSED FROM 203.0.113.26 port 50022", K::RootLoginRefused, F, Some("203.0.113.26"), 5700),
    ("ROOT LOGIN REFUSED FROM ::ffff:203.0.113.26", K::RootLoginRefused, F, Some("203.0.113.26"), 5700),
    ("Did not receive identification string from 203.0.113.27 port 50022", K::NoIdentification, P, Some("203.0.113.27"), 5706),
    ("Bad protocol version identification 'GET / HTTP/1.1' from 203.0.113.28 port 50022", K::BadProtocolVersion, P, Some("203.0.113.28"), 5701),
    ("error: kex_exchange_identification: Connection closed by remote host", K::KexIdentification, P, None, 5722),
    ("error: kex_exchange_identification: client sent invalid protocol identifier \"GET / HTTP/1.1\"", K::KexIdentification, P, None, 5700),
    ("error: kex_exchange_identification: read: Connection reset by peer", K::KexIdentification, P, None, 5740),
    ("error: kex_exchange_identification: banner line contains invalid characters", K::KexIdentification, P, None, 5700),
    ("banner exchange: Connection from 203.0.113.31 port 50022: invalid format", K::BannerExchange, P, Some("203.0.113.31"), 5700),
    ("Unable to negotiate with 203.0.113.32 port 50022: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]", K::NegotiationFailed, P, Some("203.0.113.32"), 5752),
    ("fatal: Unable to negotiate with 203.0.113.32 port 1: no matching cipher found. Their offer: 3des-cbc [preauth]", K::NegotiationFailed, P, Some("203.0.113.32"), 5753),
    ("Unable to negotiate with 203.0.113.32 port 1: no matching MAC found. Their offer: hmac-sha1 [preauth]", K::NegotiationFailed, P, Some("203.0.113.32"), 5759),
    ("Unable to negotiate with 203.0.113.32 port 1: no matching host key type found. Their offer: ssh-dss [preauth]", K::NegotiationFailed, P, Some("203.0.113.32"), 5750),
    ("fatal: Unable to negotiate a key exchange method [preauth]", K::NegotiationFailed, P, None, 5752),
    ("fatal: no matching mac found: client hmac-x server hmac-y [preauth]", K::NegotiationFailed, P, None, 5759),
    ("fatal: Timeout before authentication for 203.0.113.33 port 50022", K::LoginGraceTimeout, P, Some("203.0.113.33"), 5704),
    ("Timeout before authentication for connection from 203.0.113.34 to 192.0.2.1, pid = 12345", K::LoginGraceTimeout, P, Some("203.0.113.34"), 5700),
    ("ssh_dispatch_run_fatal: Connection from 203.0.113.35 port 50022: message authentication code incorrect [preauth]", K::CorruptMac, P, Some("203.0.113.35"), 5700),
    ("Corrupted MAC on input. [preauth]", K::CorruptMac, P, None, 5748),
    ("refused connect from host-203-0-113-36.example.net (203.0.113.36)", K::RefusedConnect, P, Some("203.0.113.36"), 5700),
    ("drop connection #0 from [203.0.113.37]:50022 on [192.0.2.1]:22 penalty: exceeded LoginGraceTime", K::PenaltyDrop, P, Some("203.0.113.37"), 5700),
    ("Magic value check failed (4289475479) on obfuscated handshake from 203.0.113.38 port 62730", K::MagicValueFailed, P, Some("203.0.113.38"), 5700),
    ("fatal: Read from socket failed: Connection reset by peer [preauth]", K::ReadSocketReset, P, None, 5709),
    ("Accepted password for alice from 203.0.113.38 port 50022 ssh2", K::Accepted, S, Some("203.0.113.38"), 5715),
    ("Accepted publickey for alice from 203.0.113.39 port 50022 ssh2: ED25519 SHA256:abc", K::Accepted, S, Some("203.0.113.39"), 5715),
    ("Connection closed by 203.0.113.40 port 50022", K::ConnClosed, I, Some("203.0.113.40"), 5722),
    ("Connection reset by 203.0.113.40 port 50022", K::ConnReset, I, Some("203.0.113.40"), 5762),
    ("Failed password for root from 2001:db8:1::41 port 50022 ssh2", K::FailedPassword, F, Some("2001:db8:1::41"), 5760),
    ("Close session: user ansible from 203.0.113.43 port 50022 id 0", K::CloseSession, I, Some("203.0.113.43"), 5700),
    ("Postponed publickey for alice from 203.0.113.44 port 50022 ssh2 [preauth]", K::Postponed, I, Some("203.0.113.44"), 5700),
    ("Postponed keyboard-interactive for invalid user w from 203.0.113.44 port 1 ssh2 [preauth]", K::Postponed, I, Some("203.0.113.44"), 5710),
    ("Received disconnect from 203.0.113.45 port 50022:11: disconnected by user", K::ReceivedDisconnect, I, Some("203.0.113.45"), 5721),
    ("Disconnected from user alice 203.0.113.46 port 50022", K::Disconnected, I, Some("203.0.113.46"), 5761),
    ("Disconnected from invalid user root 203.0.113.46 port 43042", K::DisconnectedPreauth, F, Some("203.0.113.46"), 5710),
    ("Connection closed by authenticating user root 203.0.113.46 port 43042", K::ConnClosedPreauth, P, Some("203.0.113.46"), 5722),
];

#[test]
fn every_family() {
    for &(message, kind, outcome, addr, rule) in FAMILIES {
        check(message, kind, outcome, addr, rule);
    }
}

#[test]
fn per_family_rule_agrees_with_the_full_wazuh_walk() {
    for &(message, kind, _, _, rule) in FAMILIES {
        if matches!(
            kind,
            K::PamAuthFailure | K::PamMoreFailures | K::PamUserUnknown
        ) {
            continue; // Wazuh's `pam` decoder and the syslog rule 2502: not the sshd walk.
        }
        assert_eq!(cascade(body(message).full), rule, "{message}");
    }
}

#[test]
fn users_and_ports_are_read() {
    let s = check(
        "Invalid user a b c from 192.0.2.1 port 7",
        K::InvalidUser,
        F,
        Some("192.0.2.1"),
        5710,
    );
    assert_eq!((s.3, s.4.as_deref()), (Some(7), Some("a b c")));
    let s = check(
        "Connection closed by invalid user  192.0.2.68 port 34916 [preauth]",
        K::ConnClosedPreauth,
        F,
        Some("192.0.2.68"),
        5722,
    );
    assert_eq!(s.4.as_deref(), Some(""));
    // Wazuh's 5710 matches `invalid user` anywhere, `<invalid username>` included.
    let s = check(
        "Failed keyboard-interactive for <invalid username> from 192.0.2.5 port 42742 ssh2",
        K::FailedKeyboardInteractive,
        F,
        Some("192.0.2.5"),
        5710,
    );
    assert_eq!(s.4.as_deref(), Some("<invalid username>"));
    let s = check(
        "error: maximum authentication attempts exceeded for invalid user xxx from 192.0.2.7 port 49941 ssh2 [preauth]",
        K::MaxAuthTries,
        F,
        Some("192.0.2.7"),
        5758,
    );
    assert_eq!(s.4.as_deref(), Some("xxx"));
    let s = check(
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.9  user=root",
        K::PamAuthFailure,
        F,
        Some("192.0.2.9"),
        5503,
    );
    assert_eq!(s.4.as_deref(), Some("root"));
}

#[test]
fn host_names_give_no_address_but_still_an_event() {
    check(
        "error: PAM: Authentication failure for stefanor from example.com",
        K::PamError,
        F,
        None,
        5716,
    );
    check(
        "User root from example.com not allowed because not listed in AllowUsers",
        K::NotAllowed,
        F,
        None,
        5718,
    );
    check(
        "Invalid user x from 192.030.0.6",
        K::InvalidUser,
        F,
        None,
        5710,
    );
}

#[test]
fn zone_ids_are_stripped() {
    check(
        "Failed password for x from 2001:db8::a11:beef:7ac0%enp3s0 port 14423 ssh2",
        K::FailedPassword,
        F,
        Some("2001:db8::a11:beef:7ac0"),
        5760,
    );
}

#[test]
fn decorations_solaris_and_journal_kernel() {
    check(
        "[ID 800047 auth.notice] Failed none for root from 192.0.2.1 port 36942 ssh2",
        K::FailedNone,
        F,
        Some("192.0.2.1"),
        5716,
    );
    check(
        "kernel:[  970.699396]: Failed keyboard-interactive for <invalid username> from 192.0.2.55 port 42742 ssh2",
        K::FailedKeyboardInteractive,
        F,
        Some("192.0.2.55"),
        5710,
    );
    check(
        "kernel: [  970.699397] Failed password for user admin from 192.0.2.10 port 42745 ssh2",
        K::FailedPassword,
        F,
        Some("192.0.2.10"),
        5760,
    );
}

#[test]
fn not_authentication_events() {
    for m in [
        "Server listening on 0.0.0.0 port 22.",
        "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        "input_userauth_request: invalid user root [preauth]",
        "Address 192.0.2.1 maps to x.example, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!",
        "Disconnected from totobad user ftp 192.0.2.1 port 26138 [preauth]",
        "Disconnecting: bad client public DH value [preauth]",
        "Received signal 15; terminating.",
        "",
        " ",
    ] {
        assert_eq!(seen(m), None, "{m}");
    }
}

#[test]
fn overlong_messages_are_not_sshd() {
    let mut m = String::from("Invalid user x");
    while m.len() <= MAX_MESSAGE {
        m.push_str(" from 198.51.100.7");
    }
    m.push_str(" from 203.0.113.50 port 1");
    assert_eq!(seen(&m), None);
    // A 10 MB line of candidates is refused at once (no quadratic search).
    let huge = format!(
        "Invalid user {} from 203.0.113.50",
        " from".repeat(2_000_000)
    );
    assert_eq!(seen(&huge), None);
}

#[test]
fn connection_from_names_the_client_without_an_event() {
    let Some(Message::Peer(p)) =
        parse("Connection from 192.0.2.16 port 51280 on 192.0.2.1 port 22 rdomain \"\"")
    else {
        panic!("no peer");
    };
    assert_eq!((p.ip, p.port), (ip("192.0.2.16"), Some(51280)));
    let Some(Message::Peer(p)) = parse(
        "SSH: Server;Ltype: Version;Remote: 127.0.0.1-1780;Protocol: 2.0;Client: libssh2_1.4.3",
    ) else {
        panic!("no peer");
    };
    assert_eq!(p.ip, ip("127.0.0.1"));
}

// --- injection -------------------------------------------------------------------------

const REAL: &str = "203.0.113.50";

#[test]
fn known_injections_give_the_real_address() {
    for m in [
        "Invalid user x from 198.51.100.7 from 203.0.113.50 port 4242",
        "Invalid user x from 198.51.100.7 port 22 from 203.0.113.50 port 4242",
        "Failed password for invalid user x from 198.51.100.7 port 22 ssh2 from 203.0.113.50 port 4242 ssh2",
        "Failed password for invalid user x from 198.51.100.7 from 203.0.113.50 port 4242 ssh2",
        "Failed password for invalid user x from 198.51.100.7 port 1 ssh2 x from 203.0.113.50 port 4242 ssh2",
        // The auth info (a certificate's key id) names the decoy: fail2ban's own case.
        "Failed password for invalid user x from 203.0.113.50 port 4242 ssh2: from 198.51.100.7 port 55555 ssh2",
        "Failed publickey for invalid user x from 203.0.113.50 port 4242 ssh2: RSA-CERT SHA256:abc ID k from 198.51.100.7 port 22 ssh2",
        "Accepted publickey for alice from 203.0.113.50 port 4242 ssh2: ED25519-CERT SHA256:abc ID x from 198.51.100.7 port 22 ssh2 (serial 1) CA ED25519 SHA256:def",
        // PAM: the requested name follows `rhost=` (pam_unix with `audit`, pam_sss always).
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50  user=x rhost=198.51.100.7",
        "pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50 user=x rhost=198.51.100.7",
        "PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50  user=x rhost=198.51.100.7",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=x rhost=198.51.100.7 rhost=203.0.113.50  user=x rhost=198.51.100.7",
        "Connection closed by invalid user x 198.51.100.7 203.0.113.50 port 4242 [preauth]",
        "Connection closed by invalid user x 198.51.100.7 port 22 [preauth] 203.0.113.50 port 4242 [preauth]",
        "Disconnected from invalid user x 198.51.100.7 port 22 [preauth] 203.0.113.50 port 4242 [preauth]",
        "error: maximum authentication attempts exceeded for invalid user x from 198.51.100.7 port 22 ssh2 from 203.0.113.50 port 4242 ssh2 [preauth]",
        "Bad protocol version identification 'x' from 198.51.100.7 port 22' from 203.0.113.50 port 4242",
        "Connection reset by invalid user x 198.51.100.7 port 22 [preauth] 203.0.113.50 port 4242 [preauth]",
        "Failed none for invalid user x from 198.51.100.7 port 22 ssh2 from 203.0.113.50 port 4242 ssh2",
        "Failed password for root from 203.0.113.50 port 1 ssh1: ruser from 198.51.100.7",
        "Failed hostbased for dan from 203.0.113.50 port 1 ssh2: RSA x, client user \"a from 198.51.100.7 port 1 ssh2\", client host \"h\"",
        // User `a 198.51.100.7 port 5: Change of username or service not allowed: (a`.
        "Disconnecting invalid user a 198.51.100.7 port 5: Change of username or service not allowed: (a 203.0.113.50 port 4242: Change of username or service not allowed: (a 198.51.100.7 port 5: Change of username or service not allowed: (a,ssh-connection) -> (b,ssh-connection)",
        "ssh_dispatch_run_fatal: Connection from invalid user x 198.51.100.7 port 1: y 203.0.113.50 port 4242: Connection corrupted [preauth]",
    ] {
        let s = seen(m).unwrap_or_else(|| panic!("not recognised: {m}"));
        assert_ne!(s.2, ip("198.51.100.7"), "decoy taken: {m}");
        assert!(s.2 == ip(REAL) || s.2.is_none(), "{m}: {:?}", s.2);
    }
}

/// The line sshd writes when user `user` asks to become `user2`: `packet.c` logs
/// `"Disconnecting %s: %.100s"`, so the reason is cut to 100 bytes.
fn change_of_username(user: &str, user2: &str) -> String {
    let reason = format!(
        "Change of username or service not allowed: ({user},ssh-connection) -> ({user2},ssh-connection)"
    );
    let cut = (0..=reason.len().min(100))
        .rev()
        .find(|&i| reason.is_char_boundary(i))
        .unwrap_or(0);
    format!(
        "Disconnecting invalid user {user} 203.0.113.50 port 4242: {}",
        &reason[..cut]
    )
}

#[test]
fn a_change_of_username_cut_at_100_bytes_gives_the_real_address() {
    // A decoy ` port N` that the cut leaves at the end of the reason.
    let tail_decoy = format!("{} 198.51.100.7 port 1z", "a".repeat(36));
    // A decoy split inside the user name whose reason starts with `(x,`, while the real
    // reason is cut before the name ends.
    let head_decoy = "x 198.51.100.7 port 5: Change of username or service not allowed: (x,";
    for user in [tail_decoy.as_str(), head_decoy] {
        let m = change_of_username(user, "b");
        let s = seen(&m).unwrap_or_else(|| panic!("not recognised: {m}"));
        assert_eq!(
            (s.0, s.1, s.2, s.3, s.4.as_deref()),
            (K::ChangeOfUsername, F, ip(REAL), Some(4242), Some(user)),
            "{m}"
        );
    }
}

#[test]
fn a_change_of_username_with_no_split_sshd_could_write_gives_no_address() {
    // A whole separator inside the cut reason, with the shortest address: the cut reason
    // ends in a blank, which is trimmed, so the real split is not known for sure.
    let m = change_of_username(
        "x :: port 5: Change of username or service not allowed: x",
        "b",
    );
    let s = seen(&m).unwrap_or_else(|| panic!("not recognised: {m}"));
    assert_eq!(
        (s.0, s.1, s.2, s.4),
        (K::ChangeOfUsername, F, None, None),
        "{m}"
    );
}

#[test]
fn a_disconnecting_reason_that_is_not_known_gives_no_address() {
    // sshd always writes `: REASON` here; the reason-less form (Wazuh's test) has no `: `.
    for m in [
        "Disconnecting invalid user x 203.0.113.50 port 4242: y 198.51.100.7 port 1",
        "Disconnecting invalid user x: y 198.51.100.7 port 1",
    ] {
        assert_eq!(seen(m).and_then(|s| s.2), None, "{m}");
    }
    let s = seen("Disconnecting invalid user root 172.18.1.100 port 43042").unwrap();
    assert_eq!((s.0, s.2), (K::Disconnected, ip("172.18.1.100")));
}

/// A client-controlled text: any printable ASCII (sshd escapes the rest), biased towards the
/// words and addresses an attacker would use.
fn client_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("from ".to_owned()),
        Just(" from ".to_owned()),
        Just("198.51.100.7".to_owned()),
        Just("2001:db8::7".to_owned()),
        Just(" port 22".to_owned()),
        Just(" ssh2".to_owned()),
        Just(": ".to_owned()),
        Just(" [preauth]".to_owned()),
        Just("invalid user ".to_owned()),
        Just("authenticating user ".to_owned()),
        Just("'".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(" via ".to_owned()),
        Just(" not allowed because ".to_owned()),
        Just(" rhost=".to_owned()),
        "[ -~]{0,6}",
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// What sshd makes of client text `u` in `template`: a requested user name is cut at its
/// first `:` (`auth2.c`, the `user:style` split) before anything logs it; an
/// identification string, a disconnect text or an algorithm offer is kept whole.
fn as_sshd_logs<'a>(template: &str, u: &'a str) -> &'a str {
    let not_a_name = [
        "identification",
        "Received disconnect",
        "Unable to negotiate",
    ];
    if not_a_name.iter().any(|w| template.contains(w)) {
        u
    } else {
        u.split(':').next().unwrap_or("")
    }
}

/// Family templates with `{U}` where sshd writes client text and the real client at the end.
const TEMPLATES: &[&str] = &[
    "Invalid user {U} from 203.0.113.50 port 4242",
    "Invalid user {U} from 203.0.113.50",
    "Failed password for invalid user {U} from 203.0.113.50 port 4242 ssh2",
    "Failed none for invalid user {U} from 203.0.113.50 port 4242 ssh2",
    "Failed keyboard-interactive/pam for invalid user {U} from 203.0.113.50 port 4242 ssh2",
    "Failed publickey for invalid user {U} from 203.0.113.50 port 4242 ssh2: RSA SHA256:abc",
    "Postponed keyboard-interactive for invalid user {U} from 203.0.113.50 port 4242 ssh2 [preauth]",
    "Connection closed by invalid user {U} 203.0.113.50 port 4242 [preauth]",
    "Connection reset by invalid user {U} 203.0.113.50 port 4242 [preauth]",
    "Disconnected from invalid user {U} 203.0.113.50 port 4242 [preauth]",
    "Disconnected from invalid user {U} 203.0.113.50 port 4242",
    "Disconnecting invalid user {U} 203.0.113.50 port 4242: Too many authentication failures [preauth]",
    "Disconnecting invalid user {U} 203.0.113.50 port 4242: Change of username or service not allowed: ({U},ssh-connection) -> (b,ssh-connection) [preauth]",
    "error: maximum authentication attempts exceeded for invalid user {U} from 203.0.113.50 port 4242 ssh2 [preauth]",
    "Bad protocol version identification '{U}' from 203.0.113.50 port 4242",
    "error: PAM: Authentication failure for illegal user {U} from 203.0.113.50",
    "error: PAM: authentication error for illegal user {U} from 203.0.113.50 via 192.0.2.1",
    "User {U} from 203.0.113.50 not allowed because not listed in AllowUsers",
    "Received disconnect from 203.0.113.50 port 4242:11: {U} [preauth]",
    "Unable to negotiate with 203.0.113.50 port 4242: no matching cipher found. Their offer: {U} [preauth]",
    "ssh_dispatch_run_fatal: Connection from invalid user {U} 203.0.113.50 port 4242: message authentication code incorrect [preauth]",
    "Close session: user {U} from 203.0.113.50 port 4242 id 0",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn client_text_never_changes_the_address(u in client_text(), t in 0..TEMPLATES.len()) {
        let message = TEMPLATES[t].replace("{U}", as_sshd_logs(TEMPLATES[t], &u));
        if let Some(s) = seen(&message) {
            prop_assert!(s.2 == ip(REAL) || s.2.is_none(), "{} -> {:?}", message, s.2);
        }
    }

    #[test]
    fn plain_user_names_always_give_the_address(u in "[a-z_][a-z0-9_.-]{0,20}", t in 0..TEMPLATES.len()) {
        let message = TEMPLATES[t].replace("{U}", &u);
        let s = seen(&message);
        prop_assert!(s.as_ref().is_some_and(|s| s.2 == ip(REAL)), "{} -> {:?}", message, s);
    }

    /// The per-family rule (the fast path) is the rule Wazuh's walk gives.
    #[test]
    fn per_family_rule_is_the_walk(u in "[a-z_][a-z0-9_.-]{0,20}", t in 0..TEMPLATES.len()) {
        let message = TEMPLATES[t].replace("{U}", &u);
        if let Some(Message::Attempt(e)) = parse(&message) {
            prop_assert_eq!(e.wazuh_rule, Some(cascade(body(&message).full)), "{}", message);
        }
    }

    /// The same with the reason cut to 100 bytes as sshd does, padded so that the cut falls
    /// inside the user name, before it, or after it.
    #[test]
    fn client_text_never_changes_the_address_of_a_cut_change_of_username(
        pad in 0usize..80,
        u in client_text(),
        u2 in client_text(),
        marker in 0usize..3,
    ) {
        let marker = ["", ": Change of username or service not allowed: (", " 198.51.100.7 port 1"][marker];
        let user = format!("{}{marker}{u}", "a".repeat(pad));
        let message = change_of_username(&user, &u2);
        if let Some(s) = seen(&message) {
            prop_assert!(s.2 == ip(REAL) || s.2.is_none(), "{} -> {:?}", message, s.2);
        }
    }

    #[test]
    fn plain_user_names_give_the_address_of_a_cut_change_of_username(
        pad in 0usize..80,
        u in "[a-z_][a-z0-9_.-]{0,20}",
    ) {
        let user = format!("{u}{}", "a".repeat(pad));
        let message = change_of_username(&user, "b");
        let s = seen(&message);
        prop_assert!(s.as_ref().is_some_and(|s| s.2 == ip(REAL)), "{} -> {:?}", message, s);
    }

    #[test]
    fn no_message_panics(m in "\\PC{0,200}") {
        let _ = parse(&m);
        let _ = cascade(&m);
    }

    #[test]
    fn no_family_prefix_with_garbage_panics(t in 0..TEMPLATES.len(), cut in 0usize..200, tail in "\\PC{0,40}") {
        let template = TEMPLATES[t];
        let cut = (0..=cut.min(template.len())).rev().find(|&i| template.is_char_boundary(i)).unwrap_or(0);
        let _ = parse(&format!("{}{}", &template[..cut], tail));
    }
}

// --- the 500-byte cut, with client text on both sides of the address -------------------

/// OpenSSH's `strnvis` with `VIS_CSTYLE|VIS_NL|VIS_TAB|VIS_OCTAL` (`log.c` `LOG_SYSLOG_VIS`).
fn vis(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for &b in raw {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b' '..=b'~' => out.push(b),
            _ => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
        }
    }
    out
}

/// How sshd logs one family: `{U}` the requested name, `{I}` client text after the address
/// (a certificate's key id, hostbased client names), how many bytes of the name the format
/// keeps, whether the pre-auth child logs it (escaped twice before OpenSSH 10.3) and
/// whether it goes through `do_log` at all (PAM's own lines are neither escaped nor cut).
struct CutTemplate {
    line: &'static str,
    name_limit: usize,
    twice: bool,
    sshd_log: bool,
}

#[rustfmt::skip]
const CUT_TEMPLATES: &[CutTemplate] = &[
    CutTemplate { line: "Failed publickey for invalid user {U} from 203.0.113.50 port 4242 ssh2: RSA-CERT SHA256:abc ID {I} (serial 1) CA RSA SHA256:def", name_limit: 100, twice: false, sshd_log: true },
    CutTemplate { line: "Accepted publickey for alice from 203.0.113.50 port 4242 ssh2: RSA-CERT SHA256:abc ID {I} (serial 1) CA RSA SHA256:def", name_limit: 100, twice: false, sshd_log: true },
    CutTemplate { line: "Failed password for invalid user {U} from 203.0.113.50 port 4242 ssh2", name_limit: 100, twice: false, sshd_log: true },
    CutTemplate { line: "Failed keyboard-interactive/pam for invalid user {U} from 203.0.113.50 port 4242 ssh2", name_limit: 100, twice: false, sshd_log: true },
    CutTemplate { line: "Failed hostbased for invalid user {U} from 203.0.113.50 port 4242 ssh2: RSA SHA256:x, client user \"{I}\", client host \"{I}\"", name_limit: 100, twice: false, sshd_log: true },
    CutTemplate { line: "Postponed publickey for invalid user {U} from 203.0.113.50 port 4242 ssh2: RSA-CERT SHA256:abc ID {I} (serial 1) CA RSA SHA256:def [preauth]", name_limit: 100, twice: true, sshd_log: true },
    CutTemplate { line: "Invalid user {U} from 203.0.113.50 port 4242", name_limit: 100, twice: false, sshd_log: true },
    CutTemplate { line: "error: maximum authentication attempts exceeded for invalid user {U} from 203.0.113.50 port 4242 ssh2 [preauth]", name_limit: 100, twice: true, sshd_log: true },
    CutTemplate { line: "Connection closed by invalid user {U} 203.0.113.50 port 4242 [preauth]", name_limit: 187, twice: true, sshd_log: true },
    CutTemplate { line: "Connection reset by invalid user {U} 203.0.113.50 port 4242 [preauth]", name_limit: 187, twice: true, sshd_log: true },
    CutTemplate { line: "Disconnected from invalid user {U} 203.0.113.50 port 4242 [preauth]", name_limit: 187, twice: true, sshd_log: true },
    CutTemplate { line: "Disconnecting invalid user {U} 203.0.113.50 port 4242: Too many authentication failures [preauth]", name_limit: 187, twice: true, sshd_log: true },
    CutTemplate { line: "ssh_dispatch_run_fatal: Connection from invalid user {U} 203.0.113.50 port 4242: message authentication code incorrect [preauth]", name_limit: 187, twice: true, sshd_log: true },
    CutTemplate { line: "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50  user={U}", name_limit: 100_000, twice: false, sshd_log: false },
    CutTemplate { line: "pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50 user={U} seq=7", name_limit: 100_000, twice: false, sshd_log: false },
    CutTemplate { line: "PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50  user={U}", name_limit: 100_000, twice: false, sshd_log: false },
    CutTemplate { line: "PAM 3 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50  user={U}", name_limit: 100_000, twice: false, sshd_log: false },
];

/// The line a client sending name `user` and client text `info` leaves in the log: the name
/// cut at `:` and to the format's limit, every client field escaped (once or twice), the
/// message cut at 500 bytes, and the blanks the cut left trimmed, as journald does.
fn logged(t: &CutTemplate, user: &[u8], info: &[u8]) -> String {
    let user = user.split(|&b| b == b':').next().unwrap_or(b"");
    let user = &user[..user.len().min(t.name_limit)];
    let escape = |raw: &[u8]| -> String {
        let once = if t.sshd_log { vis(raw) } else { raw.to_vec() };
        let field = if t.twice { vis(&once) } else { once };
        String::from_utf8_lossy(&field).into_owned()
    };
    let line = t
        .line
        .replace("{U}", &escape(user))
        .replace("{I}", &escape(info));
    let line = if t.sshd_log && line.len() > SYSLOG_CUT {
        &line[..SYSLOG_CUT]
    } else {
        &line
    };
    line.trim_end_matches([' ', '\t']).to_owned()
}

/// Client bytes biased towards what fills the cut: runs of escapable bytes, spaces, and
/// the words and addresses of a forged tail.
fn client_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b" from 198.51.100.12 port 22 ssh2".to_vec()),
        Just(b" 198.51.100.12 port 22 [preauth]".to_vec()),
        Just(b" 198.51.100.12 port 22".to_vec()),
        Just(b" rhost=198.51.100.12".to_vec()),
        Just(b" user=".to_vec()),
        Just(b": ".to_vec()),
        Just(b"\\".to_vec()),
        (1usize..120).prop_map(|n| vec![1u8; n]),
        (1usize..200).prop_map(|n| vec![b' '; n]),
        (1usize..200).prop_map(|n| vec![b'a'; n]),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    /// Whatever a client puts in its user name and its auth info (key id, hostbased names),
    /// after sshd's escaping and 500-byte cut, the address is the real one or none.
    #[test]
    fn client_text_and_the_cut_never_move_the_address(
        t in 0..CUT_TEMPLATES.len(),
        user in client_bytes(),
        info in client_bytes(),
    ) {
        let message = logged(&CUT_TEMPLATES[t], &user, &info);
        if let Some(s) = seen(&message) {
            prop_assert!(s.2 == ip(REAL) || s.2.is_none(), "{} -> {:?}", message, s.2);
        }
    }

    /// Ordinary names and key ids still give the address.
    #[test]
    fn plain_names_and_key_ids_give_the_address(
        t in 0..CUT_TEMPLATES.len(),
        user in "[a-z_][a-z0-9_.-]{0,20}",
        info in "[a-zA-Z0-9@._-]{0,30}",
    ) {
        let message = logged(&CUT_TEMPLATES[t], user.as_bytes(), info.as_bytes());
        let s = seen(&message);
        prop_assert!(s.as_ref().is_some_and(|s| s.2 == ip(REAL)), "{} -> {:?}", message, s);
    }
}

#[test]
fn a_key_id_sized_to_the_cut_gives_the_real_address() {
    let t = &CUT_TEMPLATES[0];
    let mut ends_in_the_decoy = 0;
    for pad in 300..450 {
        let info = format!("{} from 198.51.100.12 port 22 ssh2", "k".repeat(pad));
        let m = logged(t, b"test", info.as_bytes());
        ends_in_the_decoy += usize::from(m.ends_with("from 198.51.100.12 port 22 ssh2"));
        let s = seen(&m).unwrap_or_else(|| panic!("not recognised: {m}"));
        assert_eq!(s.2, ip(REAL), "{m}");
    }
    assert!(ends_in_the_decoy >= 1);
}

#[test]
fn a_name_that_pushes_the_address_past_the_cut_gives_none() {
    // 187 bytes of preamble name: escapes, then a forged tail that ends at byte 500.
    let t = &CUT_TEMPLATES[8];
    let forged = b" 198.51.100.12 port 22 [preauth]";
    for escapes in 60..140 {
        let mut user = vec![1u8; escapes];
        user.extend_from_slice(forged);
        let m = logged(t, &user, b"");
        if let Some(s) = seen(&m) {
            assert_ne!(s.2, ip("198.51.100.12"), "{m}");
        }
    }
}

#[test]
fn pam_singular_more_failure_and_audit_name() {
    check(
        "PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50  user=root",
        K::PamMoreFailures,
        F,
        Some(REAL),
        2502,
    );
    let s = seen("pam_unix(sshd:auth): check pass; user (bob) unknown").unwrap();
    assert_eq!((s.0, s.4.as_deref()), (K::PamUserUnknown, Some("bob")));
    let s = seen("pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50 user=a b seq=3").unwrap();
    assert_eq!((s.2, s.4.as_deref()), (ip(REAL), Some("a b")));
}
