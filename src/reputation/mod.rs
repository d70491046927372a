//! What a provider knows of an address, the provider trait, and the AbuseIPDB client.
//!
//! The engine only sees the [`Provider`] trait: one `check` per address, answering a
//! [`Reputation`] plus what the provider said about the remaining quota ([`RateLimit`]), or a
//! typed [`ApiError`]. [`abuseipdb::AbuseIpdb`] is the real provider; tests substitute a fake.

pub mod abuseipdb;
mod error;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use abuseipdb::AbuseIpdb;
pub use error::ApiError;
pub(crate) use error::rfc3339;

/// What AbuseIPDB knows of an address. Every field but the address and the score may be
/// missing. Serialized with the names of the `repute check --format json` contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reputation {
    pub ip: IpAddr,
    pub abuse_confidence_score: u8,
    pub country_code: Option<String>,
    pub usage_type: Option<String>,
    pub isp: Option<String>,
    pub domain: Option<String>,
    pub total_reports: Option<u64>,
    pub num_distinct_users: Option<u64>,
    /// ISO-8601 as AbuseIPDB gave it.
    pub last_reported_at: Option<String>,
    pub is_tor: Option<bool>,
    pub is_whitelisted: Option<bool>,
}

impl Reputation {
    /// A reputation with only the address and score known.
    pub fn bare(ip: IpAddr, abuse_confidence_score: u8) -> Self {
        Reputation {
            ip,
            abuse_confidence_score,
            country_code: None,
            usage_type: None,
            isp: None,
            domain: None,
            total_reports: None,
            num_distinct_users: None,
            last_reported_at: None,
            is_tor: None,
            is_whitelisted: None,
        }
    }

    /// True when the provider knows nothing against the address (no report in the window):
    /// such answers are cached for the shorter negative TTL.
    pub fn is_unknown(&self) -> bool {
        match self.total_reports {
            Some(n) => n == 0,
            None => self.abuse_confidence_score == 0 && self.last_reported_at.is_none(),
        }
    }
}

/// What the rate-limit headers of one response said. Every part may be missing: AbuseIPDB
/// sends `Retry-After` and `X-RateLimit-Reset` only when it throttles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// `X-RateLimit-Limit`: the daily limit of this endpoint.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`: calls left today on this endpoint.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`: when the daily count resets (Unix seconds).
    pub reset_at: Option<i64>,
    /// `Retry-After`: seconds to wait before the next call.
    pub retry_after: Option<u64>,
}

/// One successful `check`: the reputation and the quota the provider reported with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub reputation: Reputation,
    pub rate: RateLimit,
}

/// A source of reputation. `check` is the only call the engine makes; it must honour its own
/// timeouts (the engine does not add any).
pub trait Provider: Send + Sync {
    /// The provider's name for logs and quota state (`abuseipdb`).
    fn name(&self) -> &str;
    /// Looks one public address up; `max_age_days` is 1..=365.
    fn check(&self, ip: IpAddr, max_age_days: u16) -> Result<Checked, ApiError>;
    /// A short tag for where and as whom this provider calls (endpoint and key), so that a
    /// failure noted for one endpoint is not taken for another's. Never the key itself.
    fn target_tag(&self) -> String {
        self.name().to_string()
    }
}
