//! What a provider knows of an address, and the AbuseIPDB client.
//!
//! (Skeleton: the `Reputation` type is the contract; the client is filled in by the
//! "Reputation" issue.)

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

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
