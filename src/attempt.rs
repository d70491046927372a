//! The `Attempt`: one authentication event worth judging, whatever it was read from.
//!
//! The sshd parser produces attempts, the Wazuh alert reader produces attempts, and everything
//! downstream (scan summaries, the engine, sinks) consumes them; nothing downstream re-parses
//! text.

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

/// Which sshd message family the event came from. The names are the `kind` values of the
/// `repute scan --format jsonl` contract: keep them stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    FailedPassword,
    FailedPublickey,
    FailedKeyboardInteractive,
    FailedNone,
    FailedOther,
    InvalidUser,
    PamAuthFailure,
    PamMoreFailures,
    PamError,
    MaxAuthTries,
    TooManyAuthFailures,
    NotAllowed,
    RootLoginRefused,
    ConnClosedPreauth,
    ConnResetPreauth,
    DisconnectedPreauth,
    ReceivedDisconnectPreauth,
    NoAuthMethods,
    NoIdentification,
    BadProtocolVersion,
    KexIdentification,
    BannerExchange,
    NegotiationFailed,
    LoginGraceTimeout,
    PenaltyDrop,
    CorruptMac,
    RefusedConnect,
    Accepted,
    ConnClosed,
    Disconnected,
    ReceivedDisconnect,
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
