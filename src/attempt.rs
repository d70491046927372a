//! The `Attempt`: one authentication event worth judging, whatever it was read from.
//!
//! The sshd parser produces attempts, the Wazuh alert reader produces attempts
//! ([`crate::wazuh::alert::Alert::attempt`]), and everything downstream (scan summaries, the
//! policy's decision step, sinks) consumes them; nothing downstream re-parses text.

use std::net::IpAddr;

use serde::Serialize;

/// What an attempt means for the defender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// An authentication failure: a password, key or user name was tried and refused.
    Failure,
    /// A pre-authentication probe: scan, aborted handshake, negotiation failure, timeout.
    Probe,
    /// An accepted login.
    Success,
    /// Recognised but not hostile by itself (a failed public key of an existing user trying
    /// its keys in turn, a normal disconnect).
    Info,
}

impl Outcome {
    /// Only failures and probes count as attacks.
    pub fn is_attack(self) -> bool {
        matches!(self, Outcome::Failure | Outcome::Probe)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failure => "failure",
            Outcome::Probe => "probe",
            Outcome::Success => "success",
            Outcome::Info => "info",
        }
    }
}

/// Which sshd message family the event came from. The names (snake_case) are the `kind`
/// values of the `repute scan --format jsonl` contract: keep them stable.
///
/// Each variant's comment gives its usual outcome and the Wazuh 4.x rule the same line ends
/// in (the exact id is computed per line by `sshd::rules`, because Wazuh matches words
/// anywhere in the message, user names included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `Failed password for [invalid user ]U from A port N ssh2`: failure; 5760 (5710 for an
    /// invalid user).
    FailedPassword,
    /// `Failed publickey for U …`: info for an existing user (a client trying its keys),
    /// failure for an invalid one; 5716 (5710).
    FailedPublickey,
    /// `Failed keyboard-interactive[/pam] for …`: failure; 5760 (5710).
    FailedKeyboardInteractive,
    /// `Failed none for …`: failure; 5716 (5710).
    FailedNone,
    /// `Failed hostbased|gssapi…|unknown for …`: failure; 5716 (5710).
    FailedOther,
    /// `Invalid user U from A[ port N]`: failure; 5710.
    InvalidUser,
    /// `pam_unix(sshd:auth): authentication failure; … rhost=A`: failure; 5503 (Wazuh's
    /// `pam` decoder takes these lines).
    PamAuthFailure,
    /// `PAM N more authentication failures; … rhost=A`: failure; 2502.
    PamMoreFailures,
    /// `pam_unix(sshd:auth): check pass; user unknown` (by pid): failure; 5523.
    PamUserUnknown,
    /// `error: PAM: Authentication failure for U from A`: failure; 5716, 5760 for
    /// `authentication error`, 5710 for an illegal user.
    PamError,
    /// `error: maximum authentication attempts exceeded for U from A port N ssh2`: failure;
    /// 5758.
    MaxAuthTries,
    /// `Disconnecting: Too many authentication failures` (by pid) and `Disconnecting
    /// authenticating user U A port N: Too many authentication failures`: failure; 5700
    /// (5710 for an invalid user).
    TooManyAuthFailures,
    /// `Disconnecting invalid user U A port N: Change of username or service not allowed`:
    /// failure; 5710.
    ChangeOfUsername,
    /// `User U from A not allowed because …` (AllowUsers, DenyUsers, groups): failure; 5718.
    NotAllowed,
    /// `User U not allowed because account is locked` (by pid): failure; 5718.
    AccountLocked,
    /// `ROOT LOGIN REFUSED FROM A`: failure; 5700.
    RootLoginRefused,
    /// `Connection closed by [invalid|authenticating user U ]A port N [preauth]`: probe
    /// (failure for an invalid user); 5722.
    ConnClosedPreauth,
    /// `Connection reset by … [preauth]`: probe (failure for an invalid user); 5762 (5710
    /// for an invalid user).
    ConnResetPreauth,
    /// `Disconnected from [invalid|authenticating user U ]A port N [preauth]`: probe, failure
    /// with a user; 5700 (5710 for an invalid user). An `invalid`/`authenticating user`
    /// preamble counts as pre-authentication even without the ` [preauth]` tag (also for the
    /// `Connection closed|reset` kinds).
    DisconnectedPreauth,
    /// `Received disconnect from A port N:11: … [preauth]`: probe; 5721.
    ReceivedDisconnectPreauth,
    /// `Received disconnect from A: 3: …: Auth fail`: failure; 5721.
    AuthFailDisconnect,
    /// `Received disconnect from A port N:14: No supported authentication methods
    /// available`: probe; 5721.
    NoAuthMethods,
    /// `Did not receive identification string from A` (OpenSSH < 8): probe; 5706.
    NoIdentification,
    /// `Bad protocol version identification '…' from A` (OpenSSH < 8): probe; 5701.
    BadProtocolVersion,
    /// `kex_exchange_identification: client sent invalid protocol identifier|Connection
    /// closed by remote host|read: Connection reset by peer` (by pid): probe; 5700, 5722 or
    /// 5740.
    KexIdentification,
    /// `banner exchange: Connection from A port N: invalid format`: probe; 5700.
    BannerExchange,
    /// `Unable to negotiate with A port N: no matching ALG found`, `fatal: no matching mac
    /// found` and `Unable to negotiate a key exchange method` (by pid): probe; 5752 (kex),
    /// 5753 (cipher), 5759 (MAC), 5750 (other).
    NegotiationFailed,
    /// `fatal: Timeout before authentication for A` (5704) or, 9.8+, `Timeout before
    /// authentication for connection from A to B, pid = N` (5700): probe.
    LoginGraceTimeout,
    /// `drop connection #0 from [A]:N on [B]:22 penalty: …` (9.8+ PerSourcePenalties):
    /// probe; 5700.
    PenaltyDrop,
    /// `ssh_dispatch_run_fatal: Connection from A port N: message authentication code
    /// incorrect` (5700) and `Corrupted MAC on input.` (by pid, 5748): probe.
    CorruptMac,
    /// `Magic value check failed (N) on obfuscated handshake from A port N`: probe; 5700.
    MagicValueFailed,
    /// `fatal: Read from socket failed: Connection reset by peer [preauth]` (by pid): probe;
    /// 5709.
    ReadSocketReset,
    /// `refused connect from NAME (A)` (tcp_wrappers): probe; 5700.
    RefusedConnect,
    /// `Accepted METHOD for U from A port N ssh2`: success; 5715.
    Accepted,
    /// `Postponed METHOD for U from A port N ssh2 [preauth]`: info; 5700 (5710 for an
    /// invalid user).
    Postponed,
    /// `Connection closed by [user U ]A port N`, after authentication: info; 5722.
    ConnClosed,
    /// `Connection reset by A port N`, after authentication: info; 5762.
    ConnReset,
    /// `Disconnected from user U A port N`: info; 5761.
    Disconnected,
    /// `Received disconnect from A port N:11: disconnected by user`: info; 5721.
    ReceivedDisconnect,
    /// `Close session: user U from A port N id 0`: info; 5700.
    CloseSession,
    /// A Wazuh alert whose log is no sshd line repute reads (or names no address): the
    /// rule that fired judged it, so it is a failure; its `wazuh_rule` is that rule. Only
    /// [`crate::wazuh::alert::Alert::attempt`] makes these; `repute scan` never does.
    WazuhAlert,
}

impl Kind {
    /// Every kind, in the order of the declaration.
    pub const ALL: [Kind; 41] = [
        Kind::FailedPassword,
        Kind::FailedPublickey,
        Kind::FailedKeyboardInteractive,
        Kind::FailedNone,
        Kind::FailedOther,
        Kind::InvalidUser,
        Kind::PamAuthFailure,
        Kind::PamMoreFailures,
        Kind::PamUserUnknown,
        Kind::PamError,
        Kind::MaxAuthTries,
        Kind::TooManyAuthFailures,
        Kind::ChangeOfUsername,
        Kind::NotAllowed,
        Kind::AccountLocked,
        Kind::RootLoginRefused,
        Kind::ConnClosedPreauth,
        Kind::ConnResetPreauth,
        Kind::DisconnectedPreauth,
        Kind::ReceivedDisconnectPreauth,
        Kind::AuthFailDisconnect,
        Kind::NoAuthMethods,
        Kind::NoIdentification,
        Kind::BadProtocolVersion,
        Kind::KexIdentification,
        Kind::BannerExchange,
        Kind::NegotiationFailed,
        Kind::LoginGraceTimeout,
        Kind::PenaltyDrop,
        Kind::CorruptMac,
        Kind::MagicValueFailed,
        Kind::ReadSocketReset,
        Kind::RefusedConnect,
        Kind::Accepted,
        Kind::Postponed,
        Kind::ConnClosed,
        Kind::ConnReset,
        Kind::Disconnected,
        Kind::ReceivedDisconnect,
        Kind::CloseSession,
        Kind::WazuhAlert,
    ];

    /// The snake_case name used in the scan output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::FailedPassword => "failed_password",
            Kind::FailedPublickey => "failed_publickey",
            Kind::FailedKeyboardInteractive => "failed_keyboard_interactive",
            Kind::FailedNone => "failed_none",
            Kind::FailedOther => "failed_other",
            Kind::InvalidUser => "invalid_user",
            Kind::PamAuthFailure => "pam_auth_failure",
            Kind::PamMoreFailures => "pam_more_failures",
            Kind::PamUserUnknown => "pam_user_unknown",
            Kind::PamError => "pam_error",
            Kind::MaxAuthTries => "max_auth_tries",
            Kind::TooManyAuthFailures => "too_many_auth_failures",
            Kind::ChangeOfUsername => "change_of_username",
            Kind::NotAllowed => "not_allowed",
            Kind::AccountLocked => "account_locked",
            Kind::RootLoginRefused => "root_login_refused",
            Kind::ConnClosedPreauth => "conn_closed_preauth",
            Kind::ConnResetPreauth => "conn_reset_preauth",
            Kind::DisconnectedPreauth => "disconnected_preauth",
            Kind::ReceivedDisconnectPreauth => "received_disconnect_preauth",
            Kind::AuthFailDisconnect => "auth_fail_disconnect",
            Kind::NoAuthMethods => "no_auth_methods",
            Kind::NoIdentification => "no_identification",
            Kind::BadProtocolVersion => "bad_protocol_version",
            Kind::KexIdentification => "kex_identification",
            Kind::BannerExchange => "banner_exchange",
            Kind::NegotiationFailed => "negotiation_failed",
            Kind::LoginGraceTimeout => "login_grace_timeout",
            Kind::PenaltyDrop => "penalty_drop",
            Kind::CorruptMac => "corrupt_mac",
            Kind::MagicValueFailed => "magic_value_failed",
            Kind::ReadSocketReset => "read_socket_reset",
            Kind::RefusedConnect => "refused_connect",
            Kind::Accepted => "accepted",
            Kind::Postponed => "postponed",
            Kind::ConnClosed => "conn_closed",
            Kind::ConnReset => "conn_reset",
            Kind::Disconnected => "disconnected",
            Kind::ReceivedDisconnect => "received_disconnect",
            Kind::CloseSession => "close_session",
            Kind::WazuhAlert => "wazuh_alert",
        }
    }
}

/// Where an attempt was read from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Origin {
    /// Line `line` (1-based) of a file (`-` for stdin).
    Line {
        file: std::sync::Arc<str>,
        line: u64,
    },
    /// A Wazuh alert, by its `id`.
    Alert { id: String },
    #[default]
    Unknown,
}

/// One authentication event worth judging.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub time: Option<jiff::Timestamp>,
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub kind: Kind,
    pub outcome: Outcome,
    /// The client address sshd appended; `None` when the line carries none and no earlier
    /// line of the same connection gave one.
    pub srcip: Option<IpAddr>,
    pub srcport: Option<u16>,
    pub user: Option<String>,
    /// The Wazuh 4.x sshd rule id the same line ends in, if any.
    pub wazuh_rule: Option<u32>,
    pub origin: Origin,
}

impl Attempt {
    /// An attempt known only by its address, kind and outcome (`repute watch` decides on its
    /// counts, not on the line).
    pub fn bare(srcip: IpAddr, kind: Kind, outcome: Outcome) -> Attempt {
        Attempt {
            time: None,
            host: None,
            pid: None,
            kind,
            outcome,
            srcip: Some(srcip),
            srcport: None,
            user: None,
            wazuh_rule: None,
            origin: Origin::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_serde_names_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for kind in Kind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert!(seen.insert(kind.as_str()));
        }
    }

    #[test]
    fn only_failures_and_probes_are_attacks() {
        assert!(Outcome::Failure.is_attack() && Outcome::Probe.is_attack());
        assert!(!Outcome::Success.is_attack() && !Outcome::Info.is_attack());
    }
}
