//! The embedded cache: three tables in the shared SQLite store.
//!
//! Every write is a single statement (an upsert or a delete), so concurrent processes never
//! hold a transaction across an HTTP call and never need `BEGIN IMMEDIATE`; WAL and the busy
//! timeout from [`crate::store::open`] do the rest. Expired rows are deleted now and then by a
//! writer (one `put` in [`PURGE_ONE_IN`]), through an index on the expiry time, so the purge
//! costs little and nobody has to schedule it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Cache, CacheError, CacheKey, Cached, QuotaState, after_ms, now_ms};
use crate::reputation::Reputation;

/// One `put` in this many also purges expired rows.
pub const PURGE_ONE_IN: u32 = 32;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reputation_cache (
    ip TEXT NOT NULL,
    max_age_days INTEGER NOT NULL,
    reputation TEXT NOT NULL,
    fetched_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (ip, max_age_days)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reputation_cache_expiry ON reputation_cache (expires_at_ms);
CREATE TABLE IF NOT EXISTS reputation_lease (
    ip TEXT NOT NULL,
    max_age_days INTEGER NOT NULL,
    holder TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (ip, max_age_days)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quota_state (
    endpoint TEXT PRIMARY KEY NOT NULL,
    daily_limit INTEGER,
    remaining INTEGER,
    reset_at INTEGER,
    blocked_until INTEGER,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The cache in a SQLite file shared by every process on the host.
#[derive(Debug)]
pub struct SqliteCache {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteCache {
    /// Opens (creating when missing) the store at `path` and its cache tables.
    pub fn open(path: &Path) -> Result<Self, CacheError> {
        let err = |source| CacheError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::store::open(path).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(SqliteCache {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of cached entries, live or not (for status and tests).
    pub fn entries(&self) -> Result<u64, CacheError> {
        let n: i64 =
            self.with(|c| c.query_row("SELECT count(*) FROM reputation_cache", [], |r| r.get(0)))?;
        Ok(n.max(0) as u64)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, CacheError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| CacheError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }
}

fn ip_text(key: &CacheKey) -> String {
    key.ip.to_string()
}

/// True once in [`PURGE_ONE_IN`] calls, spread over processes by the clock.
fn purge_due(now_ms: i64) -> bool {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (now_ms as u32) ^ std::process::id()).is_multiple_of(PURGE_ONE_IN)
}

impl Cache for SqliteCache {
    fn get(&self, key: &CacheKey) -> Result<Option<Cached>, CacheError> {
        let now = now_ms();
        let row: Option<(String, i64, i64)> = self.with(|c| {
            c.prepare_cached(
                "SELECT reputation, fetched_at_ms, expires_at_ms FROM reputation_cache
                 WHERE ip = ?1 AND max_age_days = ?2 AND expires_at_ms > ?3",
            )?
            .query_row(params![ip_text(key), key.max_age_days, now], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })?;
        let Some((text, fetched_at_ms, expires_at_ms)) = row else {
            return Ok(None);
        };
        // A row this version cannot read is a miss; the next put replaces it.
        match serde_json::from_str::<Reputation>(&text) {
            Ok(reputation) => Ok(Some(Cached {
                reputation,
                fetched_at_ms,
                expires_at_ms,
            })),
            Err(e) => {
                tracing::warn!(ip = %key.ip, error = %e, "unreadable cache row; treated as a miss");
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
        let now = now_ms();
        let text = serde_json::to_string(reputation).unwrap_or_default();
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO reputation_cache (ip, max_age_days, reputation, fetched_at_ms, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (ip, max_age_days) DO UPDATE SET reputation = excluded.reputation,
                   fetched_at_ms = excluded.fetched_at_ms, expires_at_ms = excluded.expires_at_ms",
            )?
            .execute(params![ip_text(key), key.max_age_days, text, now, after_ms(now, ttl)])
        })?;
        if purge_due(now) {
            let gone = self.purge_expired()?;
            tracing::debug!(gone, "purged expired cache rows");
        }
        Ok(())
    }

    fn try_lease(&self, key: &CacheKey, holder: &str, ttl: Duration) -> Result<bool, CacheError> {
        let now = now_ms();
        // One statement: insert, or take over a lease whose holder's time is up (it died or
        // hung). `changes` says whether this process now holds it.
        let changed = self.with(|c| {
            c.prepare_cached(
                "INSERT INTO reputation_lease (ip, max_age_days, holder, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (ip, max_age_days) DO UPDATE SET holder = excluded.holder,
                   expires_at_ms = excluded.expires_at_ms
                 WHERE reputation_lease.expires_at_ms <= ?5",
            )?
            .execute(params![
                ip_text(key),
                key.max_age_days,
                holder,
                after_ms(now, ttl),
                now
            ])
        })?;
        Ok(changed == 1)
    }

    fn release_lease(&self, key: &CacheKey, holder: &str) -> Result<(), CacheError> {
        self.with(|c| {
            c.prepare_cached(
                "DELETE FROM reputation_lease WHERE ip = ?1 AND max_age_days = ?2 AND holder = ?3",
            )?
            .execute(params![ip_text(key), key.max_age_days, holder])
        })?;
        Ok(())
    }

    fn fail_lease(
        &self,
        key: &CacheKey,
        holder: &str,
        note: &str,
        hold: Duration,
    ) -> Result<(), CacheError> {
        let now = now_ms();
        self.with(|c| {
            c.prepare_cached(
                "UPDATE reputation_lease SET holder = ?4, expires_at_ms = ?5
                 WHERE ip = ?1 AND max_age_days = ?2 AND holder = ?3",
            )?
            .execute(params![
                ip_text(key),
                key.max_age_days,
                holder,
                format!("failed:{note}"),
                after_ms(now, hold)
            ])
        })?;
        Ok(())
    }

    fn lease_holder(&self, key: &CacheKey) -> Result<Option<String>, CacheError> {
        let now = now_ms();
        self.with(|c| {
            c.prepare_cached(
                "SELECT holder FROM reputation_lease
                 WHERE ip = ?1 AND max_age_days = ?2 AND expires_at_ms > ?3",
            )?
            .query_row(params![ip_text(key), key.max_age_days, now], |r| r.get(0))
            .optional()
        })
    }

    fn quota(&self, endpoint: &str) -> Result<Option<QuotaState>, CacheError> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT daily_limit, remaining, reset_at, blocked_until, updated_at
                 FROM quota_state WHERE endpoint = ?1",
            )?
            .query_row([endpoint], |r| {
                Ok(QuotaState {
                    limit: r.get::<_, Option<i64>>(0)?.map(|v| v.max(0) as u64),
                    remaining: r.get::<_, Option<i64>>(1)?.map(|v| v.max(0) as u64),
                    reset_at: r.get(2)?,
                    blocked_until: r.get(3)?,
                    updated_at: r.get(4)?,
                })
            })
            .optional()
        })
    }

    fn record_quota(&self, endpoint: &str, state: &QuotaState) -> Result<(), CacheError> {
        let to_i64 = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        self.with(|c| {
            c.prepare_cached(
                "INSERT INTO quota_state (endpoint, daily_limit, remaining, reset_at, blocked_until, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (endpoint) DO UPDATE SET daily_limit = excluded.daily_limit,
                   remaining = excluded.remaining, reset_at = excluded.reset_at,
                   blocked_until = excluded.blocked_until, updated_at = excluded.updated_at",
            )?
            .execute(params![
                endpoint,
                to_i64(state.limit),
                to_i64(state.remaining),
                state.reset_at,
                state.blocked_until,
                state.updated_at
            ])
        })?;
        Ok(())
    }

    fn purge_expired(&self) -> Result<u64, CacheError> {
        let now = now_ms();
        self.with(|c| {
            let rows = c.execute(
                "DELETE FROM reputation_cache WHERE expires_at_ms <= ?1",
                [now],
            )?;
            let leases = c.execute(
                "DELETE FROM reputation_lease WHERE expires_at_ms <= ?1",
                [now],
            )?;
            Ok((rows + leases) as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn rep(ip: &str, score: u8) -> Reputation {
        Reputation::bare(ip.parse::<IpAddr>().expect("ip"), score)
    }

    fn open() -> (tempfile::TempDir, SqliteCache) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = SqliteCache::open(&dir.path().join("sub/cache.sqlite")).expect("open");
        (dir, cache)
    }

    #[test]
    fn put_then_get_round_trips_per_max_age() {
        let (_d, cache) = open();
        let key90 = CacheKey::new("203.0.113.9".parse().expect("ip"), 90);
        let key30 = CacheKey::new("203.0.113.9".parse().expect("ip"), 30);
        cache
            .put(&key90, &rep("203.0.113.9", 77), Duration::from_secs(60))
            .expect("put");
        let hit = cache.get(&key90).expect("get").expect("hit");
        assert_eq!(hit.reputation.abuse_confidence_score, 77);
        assert!(hit.expires_at_ms > hit.fetched_at_ms);
        assert!(cache.get(&key30).expect("get").is_none());
    }

    #[test]
    fn ipv4_mapped_ipv6_shares_the_ipv4_entry() {
        let (_d, cache) = open();
        let v4 = CacheKey::new("198.51.100.4".parse().expect("ip"), 90);
        let mapped = CacheKey::new("::ffff:198.51.100.4".parse().expect("ip"), 90);
        cache
            .put(&v4, &rep("198.51.100.4", 5), Duration::from_secs(60))
            .expect("put");
        assert!(cache.get(&mapped).expect("get").is_some());
    }

    #[test]
    fn expired_entries_are_not_served_and_are_purged() {
        let (_d, cache) = open();
        let key = CacheKey::new("192.0.2.1".parse().expect("ip"), 90);
        cache
            .put(&key, &rep("192.0.2.1", 1), Duration::ZERO)
            .expect("put");
        assert!(cache.get(&key).expect("get").is_none());
        // `put` itself purges now and then (one in PURGE_ONE_IN), so the row may be gone
        // already: what matters is that none is left.
        cache.purge_expired().expect("purge");
        assert_eq!(cache.entries().expect("count"), 0);
    }

    #[test]
    fn a_lease_has_one_holder_until_released_or_expired() {
        let (_d, cache) = open();
        let key = CacheKey::new("192.0.2.2".parse().expect("ip"), 90);
        assert!(
            cache
                .try_lease(&key, "a", Duration::from_secs(30))
                .expect("lease")
        );
        assert!(
            !cache
                .try_lease(&key, "b", Duration::from_secs(30))
                .expect("lease")
        );
        cache.release_lease(&key, "b").expect("not b's to release");
        assert!(
            !cache
                .try_lease(&key, "b", Duration::from_secs(30))
                .expect("lease")
        );
        cache.release_lease(&key, "a").expect("release");
        assert!(cache.try_lease(&key, "b", Duration::ZERO).expect("lease"));
        // b's lease expired at once: a dead holder does not block others.
        assert!(
            cache
                .try_lease(&key, "c", Duration::from_secs(30))
                .expect("lease")
        );
    }

    #[test]
    fn a_failed_lease_carries_its_note_until_it_expires() {
        let (_d, cache) = open();
        let key = CacheKey::new("192.0.2.3".parse().expect("ip"), 90);
        assert!(
            cache
                .try_lease(&key, "a", Duration::from_secs(30))
                .expect("lease")
        );
        assert_eq!(
            cache.lease_holder(&key).expect("read").as_deref(),
            Some("a")
        );
        cache
            .fail_lease(&key, "b", "not b's", Duration::from_secs(30))
            .expect("noop");
        assert_eq!(
            cache.lease_holder(&key).expect("read").as_deref(),
            Some("a")
        );
        cache
            .fail_lease(&key, "a", "503:down", Duration::ZERO)
            .expect("fail");
        assert_eq!(
            cache.lease_holder(&key).expect("read"),
            None,
            "expired at once"
        );
        assert!(
            cache
                .try_lease(&key, "c", Duration::from_secs(30))
                .expect("lease")
        );
    }

    #[test]
    fn quota_state_round_trips() {
        let (_d, cache) = open();
        assert!(cache.quota("abuseipdb/check").expect("read").is_none());
        let state = QuotaState {
            limit: Some(1000),
            remaining: Some(0),
            reset_at: Some(1_545_973_200),
            blocked_until: Some(1_545_973_200),
            updated_at: 1_545_944_000,
        };
        cache
            .record_quota("abuseipdb/check", &state)
            .expect("write");
        assert_eq!(
            cache.quota("abuseipdb/check").expect("read"),
            Some(state.clone())
        );
        assert_eq!(state.blocked_at(1_545_944_000), Some(1_545_973_200));
        assert_eq!(state.blocked_at(1_545_973_200), None);
    }
}
