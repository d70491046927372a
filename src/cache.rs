//! The reputation cache: answers, and the lookup lease that lets a storm cost one call.
//!
//! A storm of alerts from one address must cost one AbuseIPDB lookup, so answers live in the
//! store every process shares ([`crate::store`]: SQLite on the host by default, Redis for a
//! fleet, or nothing when caching is off), keyed by the address's canonical text and
//! `maxAgeInDays` (because `totalReports` depends on the window). Before it calls, a process
//! takes a short lease on the key; the others wait for its answer instead of calling too.
//!
//! [`ReputationCache`] is what a backend implements for that, with typed leases: taking one
//! says [`LeaseState::Taken`], [`LeaseState::HeldBy`] another caller, or
//! [`LeaseState::Failed`] with the [`FailureNote`] a holder left when its lookup failed in a
//! way every process would meet (so waiters give up at once instead of calling in turn).
//! [`ReputationCache::settle`] ends a lookup in one durable commit: the answer (or the
//! failure note), the lease given back, and the quota the provider announced. How a note is
//! written down (`failed:TAG;STATUS:DETAIL`, readable by older versions, which also wrote it
//! untagged) is this module's business only; callers see types. The quota itself has its own
//! trait ([`crate::quota::QuotaStore`]).

use std::net::IpAddr;
use std::time::Duration;

use crate::quota::QuotaState;
use crate::reputation::Reputation;
use crate::store::StoreError;

/// What an entry is cached under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Canonical (IPv4-mapped IPv6 unwrapped) address.
    pub ip: IpAddr,
    pub max_age_days: u16,
}

impl CacheKey {
    pub fn new(ip: IpAddr, max_age_days: u16) -> Self {
        CacheKey {
            ip: ip.to_canonical(),
            max_age_days,
        }
    }
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    pub reputation: Reputation,
    /// When it was fetched from the provider (Unix milliseconds).
    pub fetched_at_ms: i64,
    /// When it stops being served (Unix milliseconds).
    pub expires_at_ms: i64,
}

/// The cache's error: the backend-neutral [`StoreError`].
pub type CacheError = StoreError;

/// Where the lookup lease of a key stands, as seen by a caller that tried to take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// The caller holds it now, and must [`ReputationCache::settle`] it.
    Taken,
    /// Another caller (this holder) is looking the key up.
    HeldBy(String),
    /// A lookup of the key failed moments ago; the note says how.
    Failed(FailureNote),
}

/// How a lookup failed, left on its lease for the callers waiting on the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureNote {
    /// The provider target (endpoint and key, [`crate::reputation::Provider::target_tag`])
    /// the lookup went to; `None` when an older version left the note untagged.
    pub target: Option<String>,
    pub failure: LookupFailure,
}

/// The failures worth telling other callers about: every caller would meet them too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupFailure {
    /// The provider refused the key.
    Unauthorized,
    /// The provider failed (timed out, answered 5xx, …), with its HTTP status when it had one.
    Provider { status: Option<u16>, detail: String },
}

/// Marks a lease row (SQLite) or value (Redis) that holds a failure note rather than the
/// name of a holder. Older versions read and write the same text.
const FAILED_PREFIX: &str = "failed:";

impl FailureNote {
    /// The text a backend stores in place of the holder's name.
    pub fn to_stored(&self) -> String {
        let failure = match &self.failure {
            LookupFailure::Unauthorized => "unauthorized".to_string(),
            LookupFailure::Provider { status, detail } => format!(
                "{}:{detail}",
                status.map(|s| s.to_string()).unwrap_or_default()
            ),
        };
        match &self.target {
            Some(tag) => format!("{FAILED_PREFIX}{tag};{failure}"),
            None => format!("{FAILED_PREFIX}{failure}"),
        }
    }
}

impl LeaseState {
    /// The state a live lease's stored text says, for a caller that did not get it: a
    /// holder's name, or a failure note (`failed:TAG;unauthorized`, `failed:TAG;STATUS:DETAIL`,
    /// or untagged `failed:STATUS:DETAIL` from an older version).
    pub fn from_stored(text: String) -> LeaseState {
        let Some(note) = text.strip_prefix(FAILED_PREFIX) else {
            return LeaseState::HeldBy(text);
        };
        let (target, failure) = match note.split_once(';') {
            Some((tag, rest)) => (Some(tag.to_string()), rest),
            None => (None, note),
        };
        let failure = if failure == "unauthorized" {
            LookupFailure::Unauthorized
        } else {
            let (status, detail) = failure.split_once(':').unwrap_or(("", failure));
            LookupFailure::Provider {
                status: status.parse().ok(),
                detail: detail.to_string(),
            }
        };
        LeaseState::Failed(FailureNote { target, failure })
    }
}

/// How a lookup ended, for [`ReputationCache::settle`].
#[derive(Debug, Clone, Copy)]
pub enum Settlement<'a> {
    /// The provider answered: keep the answer for `ttl` and give the lease back.
    Answer {
        reputation: &'a Reputation,
        ttl: Duration,
    },
    /// The lookup failed for every caller: the lease becomes this note for `hold`.
    Failed {
        note: &'a FailureNote,
        hold: Duration,
    },
    /// Nothing to keep (the answer was in the cache after all, the quota is spent): give the
    /// lease back.
    Release,
}

/// The quota state to record along with a settlement, for one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct QuotaUpdate<'a> {
    pub endpoint: &'a str,
    pub state: &'a QuotaState,
}

/// A store of reputation answers with their lookup leases.
pub trait ReputationCache: Send + Sync {
    /// The live entry for `key`, if any.
    fn get(&self, key: &CacheKey) -> Result<Option<Cached>, CacheError>;

    /// Takes the right to look `key` up for `ttl` as `holder` ([`LeaseState::Taken`]), unless
    /// another live lease or failure note is there (a lease whose time is up is taken over:
    /// its holder died or hung).
    fn take_lease(
        &self,
        key: &CacheKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseState, CacheError>;

    /// Ends a lookup in one durable commit (one transaction in SQLite, one script in Redis):
    /// what `settlement` says (the answer stored, or the lease turned into a failure note),
    /// `holder`'s lease given back, and `quota` recorded. Lease changes apply only to a lease
    /// `holder` still has, so a caller that looked up without one (the store was busy, the
    /// wait ran out) settles the same way and only stores.
    fn settle(
        &self,
        key: &CacheKey,
        holder: &str,
        settlement: Settlement<'_>,
        quota: Option<QuotaUpdate<'_>>,
    ) -> Result<(), CacheError>;

    /// Stores `reputation` for `ttl` (replacing any entry), outside any lookup.
    fn put(
        &self,
        key: &CacheKey,
        reputation: &Reputation,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.settle(key, "", Settlement::Answer { reputation, ttl }, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_notes_round_trip_and_old_untagged_notes_are_read() {
        let notes = [
            FailureNote {
                target: Some("0123abcd".into()),
                failure: LookupFailure::Unauthorized,
            },
            FailureNote {
                target: Some("0123abcd".into()),
                failure: LookupFailure::Provider {
                    status: Some(503),
                    detail: "down: for now".into(),
                },
            },
            FailureNote {
                target: Some("0123abcd".into()),
                failure: LookupFailure::Provider {
                    status: None,
                    detail: "timed out".into(),
                },
            },
        ];
        for note in notes {
            assert_eq!(
                LeaseState::from_stored(note.to_stored()),
                LeaseState::Failed(note.clone())
            );
        }
        // As an older version wrote them: no target tag.
        assert_eq!(
            LeaseState::from_stored("failed:503:down".into()),
            LeaseState::Failed(FailureNote {
                target: None,
                failure: LookupFailure::Provider {
                    status: Some(503),
                    detail: "down".into()
                }
            })
        );
        assert_eq!(
            LeaseState::from_stored("failed:unauthorized".into()),
            LeaseState::Failed(FailureNote {
                target: None,
                failure: LookupFailure::Unauthorized
            })
        );
        assert_eq!(
            LeaseState::from_stored("4242-17".into()),
            LeaseState::HeldBy("4242-17".into())
        );
    }
}
