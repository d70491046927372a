//! The reputation cache, the lookup lease and the quota state in Redis.
//!
//! Keys (under the target's prefix, `repute:` by default):
//! `rep:{ip}:{days}` an answer with Redis's own expiry (`PX`, the answer's TTL);
//! `lease:{ip}:{days}` the one-caller-per-address lease (`SET NX PX`), released or turned into
//! a failure note only by its holder (compare-and-set scripts); `quota:{endpoint}` the quota
//! state. Each command touches one key, so a Redis Cluster serves them from any slot, and
//! expiry is Redis's job: nothing to purge.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Link, RedisTarget};
use crate::cache::{Cache, CacheError, CacheKey, Cached, QuotaState, after_ms, now_ms};
use crate::reputation::Reputation;

/// Deletes the lease only when `holder` (ARGV[1]) still has it.
const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
/// Replaces the lease by a failure note (ARGV[2]) for ARGV[3] ms, only when `holder` has it.
const FAIL: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";

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

/// The cache on a Redis store shared by several hosts.
#[derive(Debug)]
pub struct RedisCache {
    link: Link,
}

impl RedisCache {
    /// The cache on `target`; it connects on first use.
    pub fn new(target: RedisTarget) -> Self {
        RedisCache {
            link: Link::new(target),
        }
    }

    /// As [`RedisCache::new`], and connects now (bounded by the target's timeout).
    pub fn open(target: RedisTarget) -> Result<Self, CacheError> {
        let cache = RedisCache::new(target);
        cache.link.connect()?;
        Ok(cache)
    }

    fn key(&self, kind: &str, key: &CacheKey) -> String {
        self.link
            .target()
            .key(&format!("{kind}:{}:{}", ip_text(key.ip), key.max_age_days))
    }
}

fn ip_text(ip: IpAddr) -> String {
    ip.to_string()
}

/// Milliseconds for `PX`, at least 1 (Redis refuses 0).
fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Cache for RedisCache {
    fn get(&self, key: &CacheKey) -> Result<Option<Cached>, CacheError> {
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

    fn put(
        &self,
        key: &CacheKey,
        reputation: &Reputation,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let k = self.key("rep", key);
        let now = now_ms();
        let entry = Entry {
            reputation: reputation.clone(),
            fetched_at_ms: now,
            expires_at_ms: after_ms(now, ttl),
        };
        let text = serde_json::to_string(&entry).unwrap_or_default();
        self.link.run(|c| {
            redis::cmd("SET")
                .arg(&k)
                .arg(&text)
                .arg("PX")
                .arg(px(ttl))
                .query::<()>(c)
        })
    }

    fn try_lease(&self, key: &CacheKey, holder: &str, ttl: Duration) -> Result<bool, CacheError> {
        let k = self.key("lease", key);
        let set: Option<String> = self.link.run(|c| {
            redis::cmd("SET")
                .arg(&k)
                .arg(holder)
                .arg("NX")
                .arg("PX")
                .arg(px(ttl))
                .query(c)
        })?;
        Ok(set.is_some())
    }

    fn release_lease(&self, key: &CacheKey, holder: &str) -> Result<(), CacheError> {
        let k = self.key("lease", key);
        self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(&k)
                .arg(holder)
                .query::<i64>(c)
                .map(drop)
        })
    }

    fn fail_lease(
        &self,
        key: &CacheKey,
        holder: &str,
        note: &str,
        hold: Duration,
    ) -> Result<(), CacheError> {
        let k = self.key("lease", key);
        self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(FAIL)
                .arg(1)
                .arg(&k)
                .arg(holder)
                .arg(format!("failed:{note}"))
                .arg(px(hold))
                .query::<i64>(c)
                .map(drop)
        })
    }

    fn lease_holder(&self, key: &CacheKey) -> Result<Option<String>, CacheError> {
        let k = self.key("lease", key);
        self.link.run(|c| redis::cmd("GET").arg(&k).query(c))
    }

    fn quota(&self, endpoint: &str) -> Result<Option<QuotaState>, CacheError> {
        let k = self.link.target().key(&format!("quota:{endpoint}"));
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

    fn record_quota(&self, endpoint: &str, state: &QuotaState) -> Result<(), CacheError> {
        let k = self.link.target().key(&format!("quota:{endpoint}"));
        let stored = StoredQuota {
            limit: state.limit,
            remaining: state.remaining,
            reset_at: state.reset_at,
            blocked_until: state.blocked_until,
            updated_at: state.updated_at,
        };
        let text = serde_json::to_string(&stored).unwrap_or_default();
        self.link
            .run(|c| redis::cmd("SET").arg(&k).arg(&text).query::<()>(c))
    }

    fn purge_expired(&self) -> Result<u64, CacheError> {
        // Redis expires every key itself.
        Ok(0)
    }
}
