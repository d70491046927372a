//! The daily quota of each AbuseIPDB endpoint, as every process sharing a store knows it.
//!
//! AbuseIPDB announces the quota in every answer (`X-RateLimit-*`) and refuses with a 429 once
//! it is spent. What it said is recorded per endpoint (`abuseipdb/check`, `abuseipdb/report`,
//! …) in the shared store, so that once the quota is spent no process on the host (or, with a
//! Redis store, in the fleet) calls again before the reset. [`QuotaStore`] is what a backend
//! implements for that ([`crate::store::SqliteStore`], [`crate::store::NoStore`], which keeps
//! it for the life of the process, [`crate::fleet::RedisStore`]); a lookup records it in the
//! same commit as its answer ([`crate::cache::ReputationCache::settle`]).

use crate::reputation::RateLimit;
use crate::reputation::abuseipdb::{DEFAULT_QUOTA_BACKOFF, MAX_QUOTA_BLOCK, clamp_quota_block};
use crate::store::StoreError;

/// What is known of one endpoint's daily quota, shared by every process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaState {
    /// The daily limit, from `X-RateLimit-Limit`.
    pub limit: Option<u64>,
    /// Calls left, from `X-RateLimit-Remaining` of the last answer.
    pub remaining: Option<u64>,
    /// When the daily count resets (Unix seconds).
    pub reset_at: Option<i64>,
    /// No call to this endpoint before this time (Unix seconds).
    pub blocked_until: Option<i64>,
    /// When this state was written (Unix seconds).
    pub updated_at: i64,
}

impl QuotaState {
    /// The state the rate-limit headers of a successful answer describe (`None` when they
    /// said nothing). A remaining count of zero blocks calls until the reset, or for
    /// [`DEFAULT_QUOTA_BACKOFF`] when the reset time is unknown.
    pub fn from_rate(rate: &RateLimit, now: i64) -> Option<QuotaState> {
        if rate.limit.is_none() && rate.remaining.is_none() {
            return None;
        }
        let blocked_until = (rate.remaining == Some(0)).then(|| {
            let until = rate
                .reset_at
                .filter(|r| *r > now)
                .unwrap_or(now + DEFAULT_QUOTA_BACKOFF.as_secs() as i64);
            clamp_quota_block(until, now)
        });
        Some(QuotaState {
            limit: rate.limit,
            remaining: rate.remaining,
            reset_at: rate.reset_at,
            blocked_until,
            updated_at: now,
        })
    }

    /// The state after a quota 429: nothing left, no call before `retry_at` (from
    /// `Retry-After` / `X-RateLimit-Reset`, else [`DEFAULT_QUOTA_BACKOFF`] from now).
    pub fn exhausted(previous: Option<QuotaState>, retry_at: Option<i64>, now: i64) -> Self {
        let until = clamp_quota_block(
            retry_at.unwrap_or(now + DEFAULT_QUOTA_BACKOFF.as_secs() as i64),
            now,
        );
        QuotaState {
            remaining: Some(0),
            blocked_until: Some(until),
            updated_at: now,
            ..previous.unwrap_or_default()
        }
    }

    /// The time before which no call may be made, if that time is still ahead. A state
    /// written before the clamp (or by hand) still never blocks for more than a day from
    /// when it was written.
    pub fn blocked_at(&self, now: i64) -> Option<i64> {
        let latest = self
            .updated_at
            .saturating_add(MAX_QUOTA_BLOCK.as_secs() as i64);
        self.blocked_until
            .map(|t| t.min(latest))
            .filter(|t| *t > now)
    }
}

/// A store of quota states, one per endpoint.
pub trait QuotaStore: Send + Sync {
    /// The quota state of `endpoint` (e.g. `abuseipdb/check`).
    fn quota(&self, endpoint: &str) -> Result<Option<QuotaState>, StoreError>;
    /// Replaces the quota state of `endpoint`.
    fn record_quota(&self, endpoint: &str, state: &QuotaState) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_headers_become_quota_state() {
        let now = 1_000_000;
        assert_eq!(QuotaState::from_rate(&RateLimit::default(), now), None);
        let some_left = RateLimit {
            limit: Some(1000),
            remaining: Some(12),
            ..RateLimit::default()
        };
        let state = QuotaState::from_rate(&some_left, now).expect("state");
        assert_eq!((state.remaining, state.blocked_until), (Some(12), None));
        let spent = RateLimit {
            remaining: Some(0),
            reset_at: Some(now + 60),
            ..some_left
        };
        let state = QuotaState::from_rate(&spent, now).expect("state");
        assert_eq!(state.blocked_at(now), Some(now + 60));
        let spent_no_reset = RateLimit {
            reset_at: None,
            ..spent
        };
        let state = QuotaState::from_rate(&spent_no_reset, now).expect("state");
        assert_eq!(state.blocked_until, Some(now + 900));
    }

    #[test]
    fn a_quota_429_keeps_the_known_limit() {
        let previous = QuotaState {
            limit: Some(3000),
            remaining: Some(5),
            ..QuotaState::default()
        };
        let state = QuotaState::exhausted(Some(previous), Some(77), 10);
        assert_eq!(state.limit, Some(3000));
        assert_eq!(
            (state.remaining, state.blocked_until, state.updated_at),
            (Some(0), Some(77), 10)
        );
        assert_eq!(
            QuotaState::exhausted(None, None, 10).blocked_until,
            Some(910)
        );
    }
}
