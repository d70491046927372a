//! Address or attempt to verdict: class gate, allowlist, cache, provider, policy.
//!
//! (Skeleton: the result types are the contract the doors use; the engine is filled in by the
//! "Reputation" issue.)

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::addr::AddrClass;
use crate::reputation::Reputation;

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Cache,
    Api,
    Skipped,
}

/// Why there is no reputation for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoReputation {
    /// Not a public address: never sent to a provider.
    NotPublic(AddrClass),
    /// On the configured allowlist.
    Allowlisted,
    /// No API key configured.
    NoApiKey,
    /// The daily quota is spent; no call until this time (RFC 3339), when known.
    QuotaExhausted { until: Option<String> },
    /// The provider refused the key (401/403).
    Unauthorized,
    /// The provider failed (5xx, timeout, connection reset, bad body): what happened.
    ProviderFailed { status: Option<u16>, detail: String },
}

impl fmt::Display for NoReputation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoReputation::NotPublic(c) => write!(f, "not a public address ({c:?})"),
            NoReputation::Allowlisted => f.write_str("allowlisted"),
            NoReputation::NoApiKey => f.write_str("no API key configured"),
            NoReputation::QuotaExhausted { until: Some(t) } => {
                write!(f, "daily quota exhausted until {t}")
            }
            NoReputation::QuotaExhausted { until: None } => f.write_str("daily quota exhausted"),
            NoReputation::Unauthorized => f.write_str("API key refused"),
            NoReputation::ProviderFailed {
                status: Some(s),
                detail,
            } => {
                write!(f, "provider failed (HTTP {s}): {detail}")
            }
            NoReputation::ProviderFailed {
                status: None,
                detail,
            } => {
                write!(f, "provider failed: {detail}")
            }
        }
    }
}

/// The answer for one address.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub ip: IpAddr,
    pub class: AddrClass,
    pub source: Source,
    pub reputation: Option<Reputation>,
    /// Set exactly when `reputation` is `None`.
    pub missing: Option<NoReputation>,
}
