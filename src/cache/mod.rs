//! The reputation cache and the quota state, behind one trait.
//!
//! A storm of alerts from one address must cost one AbuseIPDB lookup, and the daily quota must
//! be known to every process, so both live in a store shared by all processes on the host:
//! [`SqliteCache`] on the file [`crate::store::open`] opens (the embedded default),
//! [`crate::fleet::RedisCache`] for several hosts on one Redis, or
//! [`DisabledCache`] when caching is off (`REPUTE_CACHE=none`: nothing on disk, quota state
//! kept for the life of the process only). Entries are keyed by the address's canonical text
//! and `maxAgeInDays`, because `totalReports` depends on the window. A short lease row lets two
//! processes that miss on the same address at the same moment share one lookup.

mod disabled;
mod sqlite;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use disabled::DisabledCache;
pub use sqlite::SqliteCache;

use crate::reputation::abuseipdb::{DEFAULT_QUOTA_BACKOFF, MAX_QUOTA_BLOCK, clamp_quota_block};
use crate::reputation::{RateLimit, Reputation};

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

/// Why a store (the cache, the quota state, the decisions) could not answer, whatever its
/// backend. Callers of the cache treat it as a miss (and say so in the log): a broken store
/// must never stop an alert. No variant ever carries a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cache {}: {}", path.display(), sqlite_reason(source, path))]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// Redis answered with an error (a wrong type, a script error).
    #[error("store {store}: {detail}")]
    Redis { store: String, detail: String },
    /// The store cannot be reached (refused, timed out, cut off), or was unreachable a moment
    /// ago and is not tried again yet.
    #[error("store {store} unreachable: {detail}")]
    Down { store: String, detail: String },
}

/// SQLite's reason without the path rusqlite appends to it (the error names the path first).
fn sqlite_reason(error: &rusqlite::Error, path: &std::path::Path) -> String {
    let text = error.to_string();
    let suffix = format!(": {}", path.display());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

impl StoreError {
    /// True when the store could not be reached at all (as opposed to an answer it gave).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Down { .. })
    }
}

/// The cache's error: the backend-neutral [`StoreError`].
pub type CacheError = StoreError;

/// A store of reputations, leases and quota state.
pub trait Cache: Send + Sync {
    /// The live entry for `key`, if any.
    fn get(&self, key: &CacheKey) -> Result<Option<Cached>, CacheError>;
    /// Stores `reputation` for `ttl` (replacing any entry).
    fn put(&self, key: &CacheKey, reputation: &Reputation, ttl: Duration)
    -> Result<(), CacheError>;
    /// Claims the right to look `key` up for `ttl`; false when another live holder has it.
    fn try_lease(&self, key: &CacheKey, holder: &str, ttl: Duration) -> Result<bool, CacheError>;
    /// Gives a lease back (only `holder`'s own).
    fn release_lease(&self, key: &CacheKey, holder: &str) -> Result<(), CacheError>;
    /// Turns `holder`'s lease into the note `failed:{note}` that lives for `hold`, so that
    /// processes waiting on the key learn the lookup failed instead of trying in turn.
    fn fail_lease(
        &self,
        key: &CacheKey,
        holder: &str,
        note: &str,
        hold: Duration,
    ) -> Result<(), CacheError>;
    /// The holder of the live lease on `key`, if any.
    fn lease_holder(&self, key: &CacheKey) -> Result<Option<String>, CacheError>;
    /// The quota state of `endpoint` (e.g. `abuseipdb/check`).
    fn quota(&self, endpoint: &str) -> Result<Option<QuotaState>, CacheError>;
    /// Replaces the quota state of `endpoint`.
    fn record_quota(&self, endpoint: &str, state: &QuotaState) -> Result<(), CacheError>;
    /// Deletes expired entries and leases; returns how many rows went.
    fn purge_expired(&self) -> Result<u64, CacheError>;
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `now + ttl` in Unix milliseconds, saturating.
pub(crate) fn after_ms(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
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
