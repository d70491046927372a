//! Which Wazuh 4.x rule the same line ends in.
//!
//! Wazuh decodes an sshd line with its `sshd` decoder (or, for `pam_unix(sshd:auth)` lines,
//! its `pam` decoder) and walks the children of rule 5700 (`0095-sshd_rules.xml`): level-0
//! rules first, then the others in file order, each a case-insensitive `<match>` anywhere in
//! the message. [`cascade`] reproduces that walk for the rules an authentication event can
//! reach (the ids and patterns of `docs/wazuh.md` §3.3; the level-0-first order is what the
//! ruleset's own tests require, e.g. `input_userauth_request: invalid user` not ending in
//! 5710). Because the walk matches words anywhere, a user name such as `invalid user x` or
//! `Connection closed` changes the id; `wazuh_rule` therefore uses a per-family answer for
//! ordinary lines and runs the full walk only when the client-controlled text holds a
//! space (every pattern that could be smuggled in holds one). A unit test checks that both
//! agree on every fixture. Frequency rules (5712, 5720, 5763, …) need several lines and are
//! never returned.

use crate::Kind;

use super::lit;
use super::message::{Body, Level, MessageAttempt};

/// The rule id for an event read from `body`.
pub(crate) fn wazuh_rule(ev: &MessageAttempt<'_>, body: &Body<'_>) -> Option<u32> {
    if let Some(pam) = pam_rule(ev.kind, body) {
        return Some(pam);
    }
    // Identification strings and hostbased auth-info are client text too.
    let smuggled = ev.user.is_some_and(|u| u.contains(' '))
        || matches!(ev.kind, Kind::BadProtocolVersion | Kind::FailedOther);
    if smuggled {
        return Some(cascade(body.full));
    }
    Some(per_family(ev, body))
}

/// Lines Wazuh's `pam` decoder takes (`^pam_unix` after the program name) and the syslog
/// rule 2502 (`more authentication failures;`), which precedes the sshd rules.
fn pam_rule(kind: Kind, body: &Body<'_>) -> Option<u32> {
    match kind {
        Kind::PamAuthFailure => Some(5503),
        Kind::PamMoreFailures => Some(2502),
        Kind::PamUserUnknown if body.full.starts_with("pam_unix") => Some(5523),
        Kind::PamUserUnknown => Some(5504),
        _ => None,
    }
}

/// Whether sshd's own text names an invalid user. Only called when the client-controlled
/// text holds no space, so it cannot be the one spelling `invalid user`.
fn invalid(body: &Body<'_>) -> bool {
    let hay = body.full;
    lit::find(hay, "invalid user").is_some() || lit::find(hay, "illegal user").is_some()
}

/// The rule for a line whose client-controlled text holds no space.
fn per_family(ev: &MessageAttempt<'_>, body: &Body<'_>) -> u32 {
    let text = body.text;
    let inv = || invalid(body);
    match ev.kind {
        Kind::FailedPassword | Kind::FailedKeyboardInteractive if inv() => 5710,
        Kind::FailedPassword | Kind::FailedKeyboardInteractive => 5760,
        Kind::FailedPublickey | Kind::FailedNone | Kind::FailedOther if inv() => 5710,
        Kind::FailedPublickey | Kind::FailedNone | Kind::FailedOther => 5716,
        Kind::InvalidUser => 5710,
        Kind::PamError
            if contains_ci(
                text,
                "User not known to the underlying authentication module for illegal user",
            ) =>
        {
            5711
        }
        Kind::PamError if inv() => 5710,
        Kind::PamError if contains_ci(text, "authentication error") => 5760,
        Kind::PamError
            if starts_with_ci(text, "PAM: Authentication") && body.level == Level::Error =>
        {
            5716
        }
        Kind::PamError => 5700,
        Kind::MaxAuthTries if body.level == Level::Error => 5758,
        Kind::MaxAuthTries if inv() => 5710,
        Kind::MaxAuthTries => 5700,
        Kind::TooManyAuthFailures | Kind::ChangeOfUsername | Kind::Disconnected if inv() => 5710,
        Kind::Disconnected if text.starts_with("Disconnected from user") => 5761,
        Kind::TooManyAuthFailures | Kind::ChangeOfUsername | Kind::Disconnected => 5700,
        Kind::NotAllowed | Kind::AccountLocked => 5718,
        Kind::RootLoginRefused => 5700,
        Kind::ConnClosedPreauth | Kind::ConnClosed => 5722,
        Kind::ConnResetPreauth | Kind::ConnReset if inv() => 5710,
        Kind::ConnResetPreauth | Kind::ConnReset => 5762,
        Kind::DisconnectedPreauth if inv() => 5710,
        Kind::DisconnectedPreauth => 5700,
        Kind::ReceivedDisconnectPreauth
        | Kind::AuthFailDisconnect
        | Kind::NoAuthMethods
        | Kind::ReceivedDisconnect => 5721,
        Kind::NoIdentification => 5706,
        Kind::BadProtocolVersion => 5701,
        Kind::KexIdentification if text.ends_with("Connection closed by remote host") => 5722,
        Kind::KexIdentification if text.ends_with("Connection reset by peer") => 5740,
        Kind::KexIdentification => 5700,
        Kind::BannerExchange => 5700,
        Kind::NegotiationFailed => negotiation(body.full),
        Kind::LoginGraceTimeout if body.level == Level::Fatal => 5704,
        Kind::LoginGraceTimeout => 5700,
        Kind::PenaltyDrop | Kind::MagicValueFailed | Kind::RefusedConnect => 5700,
        Kind::CorruptMac if text.starts_with("Corrupted MAC on input.") => 5748,
        Kind::CorruptMac if inv() => 5710,
        Kind::CorruptMac => 5700,
        Kind::ReadSocketReset => 5709,
        Kind::Accepted if inv() => 5710,
        Kind::Accepted => 5715,
        Kind::Postponed if inv() => 5710,
        Kind::Postponed | Kind::CloseSession => 5700,
        Kind::PamAuthFailure | Kind::PamMoreFailures | Kind::PamUserUnknown => 5700,
        // Never parsed from a line (made from an alert); its rule comes with the alert.
        Kind::WazuhAlert => 5700,
    }
}

/// Rule 5750 and its children 5752 (kex), 5753 (cipher), 5759 (MAC).
fn negotiation(full: &str) -> u32 {
    if contains_ci(full, "no matching key exchange method found.")
        || contains_ci(full, "Unable to negotiate a key exchange method")
    {
        5752
    } else if contains_ci(full, "no matching cipher found") {
        5753
    } else if contains_ci(full, "no matching mac found") {
        5759
    } else {
        5750
    }
}

/// Wazuh's walk below rule 5700 for a message decoded as `sshd` (see the module comment).
pub fn cascade(full: &str) -> u32 {
    let m = full.to_ascii_lowercase();
    let has = |p: &str| m.contains(p);
    let starts = |p: &str| m.starts_with(p);
    // Level-0 children first.
    if has("error: could not get shadow information for nouser")
        || has("fatal: read from socket failed: ")
        || has("error: ssh_msg_send: write")
        || starts("syslogin_perform_logout: ")
        || starts("pam_succeed_if(sshd:auth): error retrieving information about user")
        || has("can't verify hostname: getaddrinfo")
    {
        return 5709;
    }
    if has("authentication failure; logname= uid=0 euid=0 tty=ssh")
        || has("input_userauth_request: invalid user")
        || has("pam: user not known to the underlying authentication module for illegal user")
        || has("error retrieving information about user")
    {
        return 5711;
    }
    if has("received disconnect from") {
        return 5721;
    }
    if has("connection closed") {
        return 5722;
    }
    if has("unable to negotiate with ")
        || has("unable to negotiate a key")
        || has("fatal: no matching")
    {
        return negotiation(full);
    }
    if m.ends_with(" failed, subsystem not found") {
        return 5756;
    }
    if m.ends_with("but this does not map back to the address - possible break-in attempt!") {
        return 5757;
    }
    if has("disconnected from user") {
        return 5761;
    }
    // Then the others, in file order.
    if has("bad protocol version identification") {
        return 5701;
    }
    if starts("reverse mapping") && has("failed - possible break") {
        return 5702;
    }
    if has("fatal: timeout before authentication for") {
        return 5704;
    }
    if has("did not receive identification string from") {
        return 5706;
    }
    if has("fatal: buffer_get_string: bad string") {
        return 5707;
    }
    if has("illegal user") || has("invalid user") {
        return if starts("error: maximum authentication attempts exceeded ") {
            5758
        } else {
            5710
        };
    }
    if has("corrupted check bytes on") {
        return 5713;
    }
    if starts("accepted") || m.ends_with("authenticated.") {
        return 5715;
    }
    if starts("failed") || starts("error: pam: authentication") {
        return if failed_5760(&m) { 5760 } else { 5716 };
    }
    if has("not allowed because") {
        return 5718;
    }
    if has("error: pam: module is unknown for") {
        return 5726;
    }
    if m.ends_with("connection reset by peer") {
        return 5740;
    }
    if has("bad client public dh value") {
        return 5747;
    }
    if has("corrupted mac on input.") {
        return 5748;
    }
    if starts("bad packet length") {
        return 5749;
    }
    if has("no hostkey alg [preauth]") {
        return 5751;
    }
    if starts("error: maximum authentication attempts exceeded ") {
        return 5758;
    }
    if failed_5760(&m) {
        return 5760;
    }
    if has("connection reset") {
        return 5762;
    }
    5700
}

fn failed_5760(lower: &str) -> bool {
    lower.contains("failed password")
        || lower.contains("failed keyboard")
        || lower.contains("authentication error")
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    lit::find_ci(hay, needle).is_some()
}

fn starts_with_ci(hay: &str, needle: &str) -> bool {
    hay.len() >= needle.len()
        && hay.as_bytes()[..needle.len()].eq_ignore_ascii_case(needle.as_bytes())
}
