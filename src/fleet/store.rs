//! The reputation answers, the lookup leases and the quota state in Redis.
//!
//! Keys (under the target's prefix, `repute:` by default):
//! `rep:{ip}:{days}` an answer with Redis's own expiry (`PX`, the answer's TTL);
//! `lease:{ip}:{days}` the one-caller-per-address lease, or the failure note its holder left
//! (taken by a script that answers who has it otherwise, released or turned into a note only by
//! its holder); `quota:{endpoint}` the quota state. On a single server a lookup is settled by
//! one script (answer, lease, quota: one round trip, atomic). A Redis Cluster keeps those keys
//! in different slots, which one script may not touch, so there the same steps are sent one
//! key at a time, in order (the answer before the lease is given back). Expiry is Redis's job:
//! nothing to purge.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Link, RedisTarget};
use crate::cache::{CacheKey, Cached, LeaseState, QuotaUpdate, ReputationCache, Settlement};
use crate::quota::{QuotaState, QuotaStore};
use crate::reputation::Reputation;
use crate::store::{StoreError, after_ms, now_ms};

/// Takes the lease `KEYS[1]` as `ARGV[1]` for `ARGV[2]` ms, or answers what holds it (a holder's
/// name or a failure note); nil when taken.
const TAKE: &str = "local held = redis.call('GET', KEYS[1]) if held then return held end \
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return false";

/// Ends a lookup (KEYS: answer, lease[, quota]; ARGV: holder, what, text, ms, quota text):
/// `answer` stores `ARGV[3]` for `ARGV[4]` ms then gives the lease back; `failed` turns the lease
/// into the note `ARGV[3]` for `ARGV[4]` ms; `release` gives it back. The lease is touched only
/// when `ARGV[1]` still holds it. A non-empty `ARGV[5]` is stored as the quota state.
const SETTLE: &str = "if ARGV[2] == 'answer' then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) end \
if redis.call('GET', KEYS[2]) == ARGV[1] then \
if ARGV[2] == 'failed' then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) \
else redis.call('DEL', KEYS[2]) end end \
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5]) end return 1";

/// The lease step alone (`KEYS[1]` the lease; ARGV as [`SETTLE`]'s), for a cluster.
const SETTLE_LEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
if ARGV[2] == 'failed' then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) \
else redis.call('DEL', KEYS[1]) end end return 1";

/// One cached answer as stored.
#[derive(Serialize, Deserialize)]
struct Entry {
    reputation: Reputation,
    fetched_at_ms: i64,
    expires_at_ms: i64,
}

/// The quota state as stored.
#[derive(Serialize, Deserialize)]
struct StoredQuota {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset_at: Option<i64>,
    blocked_until: Option<i64>,
    updated_at: i64,
}

/// The answers, leases and quota on a Redis store shared by several hosts.
#[derive(Debug)]
pub struct RedisStore {
    link: Link,
}

impl RedisStore {
    /// The store on `target`; it connects on first use.
    pub fn new(target: RedisTarget) -> Self {
        RedisStore {
            link: Link::new(target),
        }
    }

    /// As [`RedisStore::new`], and connects now (bounded by the target's timeout).
    pub fn open(target: RedisTarget) -> Result<Self, StoreError> {
        let store = RedisStore::new(target);
        store.link.connect()?;
        Ok(store)
    }

    fn key(&self, kind: &str, key: &CacheKey) -> String {
        self.link
            .target()
            .key(&format!("{kind}:{}:{}", ip_text(key.ip), key.max_age_days))
    }

    fn quota_key(&self, endpoint: &str) -> String {
        self.link.target().key(&format!("quota:{endpoint}"))
    }
}

fn ip_text(ip: IpAddr) -> String {
    ip.to_string()
}

/// Milliseconds for `PX`, at least 1 (Redis refuses 0).
fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn quota_text(state: &QuotaState) -> String {
    let stored = StoredQuota {
        limit: state.limit,
        remaining: state.remaining,
        reset_at: state.reset_at,
        blocked_until: state.blocked_until,
        updated_at: state.updated_at,
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

impl ReputationCache for RedisStore {
    fn get(&self, key: &CacheKey) -> Result<Option<Cached>, StoreError> {
        let k = self.key("rep", key);
        let text: Option<String> = self.link.run(|c| redis::cmd("GET").arg(&k).query(c))?;
        let Some(text) = text else {
            return Ok(None);
        };
        match serde_json::from_str::<Entry>(&text) {
            // Redis expires the key; the stored time guards against a clock-skewed writer's
            // entry outliving its answer by much.
            Ok(e) if e.expires_at_ms > now_ms() => Ok(Some(Cached {
                reputation: e.reputation,
                fetched_at_ms: e.fetched_at_ms,
                expires_at_ms: e.expires_at_ms,
            })),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(ip = %key.ip, error = %e, "unreadable cache entry; treated as a miss");
                Ok(None)
            }
        }
    }

    fn take_lease(
        &self,
        key: &CacheKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseState, StoreError> {
        let k = self.key("lease", key);
        let held: Option<String> = self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(TAKE)
                .arg(1)
                .arg(&k)
                .arg(holder)
                .arg(px(ttl))
                .query(c)
        })?;
        Ok(held.map_or(LeaseState::Taken, LeaseState::from_stored))
    }

    fn settle(
        &self,
        key: &CacheKey,
        holder: &str,
        settlement: Settlement<'_>,
        quota: Option<QuotaUpdate<'_>>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let (what, text, ms) = match settlement {
            Settlement::Answer { reputation, ttl } => {
                let entry = Entry {
                    reputation: reputation.clone(),
                    fetched_at_ms: now,
                    expires_at_ms: after_ms(now, ttl),
                };
                let text = serde_json::to_string(&entry).unwrap_or_default();
                ("answer", text, px(ttl))
            }
            Settlement::Failed { note, hold } => ("failed", note.to_stored(), px(hold)),
            Settlement::Release => ("release", String::new(), 1),
        };
        let (answer_key, lease_key) = (self.key("rep", key), self.key("lease", key));
        let quota = quota.map(|q| (self.quota_key(q.endpoint), quota_text(q.state)));
        if !self.link.target().cluster {
            let mut eval = redis::cmd("EVAL");
            eval.arg(SETTLE)
                .arg(if quota.is_some() { 3 } else { 2 })
                .arg(&answer_key)
                .arg(&lease_key);
            if let Some((k, _)) = &quota {
                eval.arg(k);
            }
            eval.arg(holder)
                .arg(what)
                .arg(&text)
                .arg(ms)
                .arg(quota.as_ref().map(|(_, t)| t.as_str()).unwrap_or_default());
            return self.link.run(|c| eval.query::<i64>(c).map(drop));
        }
        if what == "answer" {
            self.link.run(|c| {
                redis::cmd("SET")
                    .arg(&answer_key)
                    .arg(&text)
                    .arg("PX")
                    .arg(ms)
                    .query::<()>(c)
            })?;
        }
        self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(SETTLE_LEASE)
                .arg(1)
                .arg(&lease_key)
                .arg(holder)
                .arg(what)
                // The answer went in its own key above; only a note goes on the lease.
                .arg(if what == "failed" { text.as_str() } else { "" })
                .arg(ms)
                .query::<i64>(c)
                .map(drop)
        })?;
        if let Some((k, t)) = &quota {
            self.link
                .run(|c| redis::cmd("SET").arg(k).arg(t).query::<()>(c))?;
        }
        Ok(())
    }
}

impl QuotaStore for RedisStore {
    fn quota(&self, endpoint: &str) -> Result<Option<QuotaState>, StoreError> {
        let k = self.quota_key(endpoint);
        let text: Option<String> = self.link.run(|c| redis::cmd("GET").arg(&k).query(c))?;
        Ok(text
            .and_then(|t| serde_json::from_str::<StoredQuota>(&t).ok())
            .map(|q| QuotaState {
                limit: q.limit,
                remaining: q.remaining,
                reset_at: q.reset_at,
                blocked_until: q.blocked_until,
                updated_at: q.updated_at,
            }))
    }

    fn record_quota(&self, endpoint: &str, state: &QuotaState) -> Result<(), StoreError> {
        let k = self.quota_key(endpoint);
        let text = quota_text(state);
        self.link
            .run(|c| redis::cmd("SET").arg(&k).arg(&text).query::<()>(c))
    }
}
