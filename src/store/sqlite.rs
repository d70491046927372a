//! The embedded store: answers, leases and quota in three tables of the shared SQLite file.
//!
//! A lookup costs two commits: taking the lease (one upsert, before the HTTP call, so no
//! transaction is ever held across it), and settling it (the answer or failure note, the
//! lease given back and the quota state, in one `BEGIN IMMEDIATE` transaction). WAL and the
//! busy timeout from [`crate::store::open`] do the rest. Expired rows are deleted now and then
//! by a settling writer (one in [`PURGE_ONE_IN`]), in the same transaction, through an index
//! on the expiry time, so the purge costs little and nobody has to schedule it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{StoreError, after_ms, now_ms};
use crate::cache::{CacheKey, Cached, LeaseState, QuotaUpdate, ReputationCache, Settlement};
use crate::quota::{QuotaState, QuotaStore};
use crate::reputation::Reputation;

/// One settlement in this many also purges expired rows.
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

/// The answers, leases and quota in a SQLite file shared by every process on the host.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating when missing) the store at `path` and its tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = crate::store::open_with_schema(path, SCHEMA)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of cached entries, live or not (for status and tests).
    pub fn entries(&self) -> Result<u64, StoreError> {
        let n: i64 =
            self.with(|c| c.query_row("SELECT count(*) FROM reputation_cache", [], |r| r.get(0)))?;
        Ok(n.max(0) as u64)
    }

    /// Deletes expired entries and leases; returns how many rows went.
    pub fn purge_expired(&self) -> Result<u64, StoreError> {
        self.with(|c| purge(c, now_ms()))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|source| StoreError::Sqlite {
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

/// Deletes expired entries and leases as of `now` (Unix ms); returns how many rows went.
fn purge(c: &Connection, now: i64) -> rusqlite::Result<u64> {
    let rows = c
        .prepare_cached("DELETE FROM reputation_cache WHERE expires_at_ms <= ?1")?
        .execute([now])?;
    let leases = c
        .prepare_cached("DELETE FROM reputation_lease WHERE expires_at_ms <= ?1")?
        .execute([now])?;
    Ok((rows + leases) as u64)
}

/// The live lease text on `key`, if any.
fn live_lease(c: &Connection, key: &CacheKey, now: i64) -> rusqlite::Result<Option<String>> {
    c.prepare_cached(
        "SELECT holder FROM reputation_lease
         WHERE ip = ?1 AND max_age_days = ?2 AND expires_at_ms > ?3",
    )?
    .query_row(params![ip_text(key), key.max_age_days, now], |r| r.get(0))
    .optional()
}

fn put_answer(
    c: &Connection,
    key: &CacheKey,
    reputation: &Reputation,
    ttl: Duration,
    now: i64,
) -> rusqlite::Result<usize> {
    let text = serde_json::to_string(reputation).unwrap_or_default();
    c.prepare_cached(
        "INSERT INTO reputation_cache (ip, max_age_days, reputation, fetched_at_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (ip, max_age_days) DO UPDATE SET reputation = excluded.reputation,
           fetched_at_ms = excluded.fetched_at_ms, expires_at_ms = excluded.expires_at_ms",
    )?
    .execute(params![
        ip_text(key),
        key.max_age_days,
        text,
        now,
        after_ms(now, ttl)
    ])
}

fn release(c: &Connection, key: &CacheKey, holder: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "DELETE FROM reputation_lease WHERE ip = ?1 AND max_age_days = ?2 AND holder = ?3",
    )?
    .execute(params![ip_text(key), key.max_age_days, holder])
}

fn record_quota(c: &Connection, endpoint: &str, state: &QuotaState) -> rusqlite::Result<usize> {
    let to_i64 = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
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
}

impl ReputationCache for SqliteStore {
    fn get(&self, key: &CacheKey) -> Result<Option<Cached>, StoreError> {
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
        // A row this version cannot read is a miss; the next answer replaces it.
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

    fn take_lease(
        &self,
        key: &CacheKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseState, StoreError> {
        self.with(|c| {
            // A lease can expire between the upsert and the read; then the upsert is simply
            // tried again (twice at most: a lease lives longer than that).
            for _ in 0..3 {
                let now = now_ms();
                // One statement, one commit: insert, or take over a lease whose holder's
                // time is up (it died or hung). `changes` says whether we now hold it.
                let changed = c
                    .prepare_cached(
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
                    ])?;
                if changed == 1 {
                    return Ok(LeaseState::Taken);
                }
                if let Some(text) = live_lease(c, key, now_ms())? {
                    return Ok(LeaseState::from_stored(text));
                }
            }
            Ok(LeaseState::HeldBy(String::new()))
        })
    }

    fn settle(
        &self,
        key: &CacheKey,
        holder: &str,
        settlement: Settlement<'_>,
        quota: Option<QuotaUpdate<'_>>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let purge_now = purge_due(now);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            match settlement {
                Settlement::Answer { reputation, ttl } => {
                    put_answer(&tx, key, reputation, ttl, now)?;
                    release(&tx, key, holder)?;
                }
                Settlement::Failed { note, hold } => {
                    tx.prepare_cached(
                        "UPDATE reputation_lease SET holder = ?4, expires_at_ms = ?5
                         WHERE ip = ?1 AND max_age_days = ?2 AND holder = ?3",
                    )?
                    .execute(params![
                        ip_text(key),
                        key.max_age_days,
                        holder,
                        note.to_stored(),
                        after_ms(now, hold)
                    ])?;
                }
                Settlement::Release => {
                    release(&tx, key, holder)?;
                }
            }
            if let Some(q) = quota {
                record_quota(&tx, q.endpoint, q.state)?;
            }
            if purge_now {
                let gone = purge(&tx, now)?;
                tracing::debug!(gone, "purged expired cache rows");
            }
            tx.commit()
        })
    }
}

impl QuotaStore for SqliteStore {
    fn quota(&self, endpoint: &str) -> Result<Option<QuotaState>, StoreError> {
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

    fn record_quota(&self, endpoint: &str, state: &QuotaState) -> Result<(), StoreError> {
        self.with(|c| record_quota(c, endpoint, state))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{FailureNote, LookupFailure};
    use std::net::IpAddr;

    fn rep(ip: &str, score: u8) -> Reputation {
        Reputation::bare(ip.parse::<IpAddr>().expect("ip"), score)
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = SqliteStore::open(&dir.path().join("sub/cache.sqlite")).expect("open");
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

    fn release(cache: &SqliteStore, key: &CacheKey, holder: &str) {
        cache
            .settle(key, holder, Settlement::Release, None)
            .expect("release");
    }

    #[test]
    fn a_lease_has_one_holder_until_released_or_expired() {
        let (_d, cache) = open();
        let key = CacheKey::new("192.0.2.2".parse().expect("ip"), 90);
        let take = |holder: &str, ttl: u64| {
            cache
                .take_lease(&key, holder, Duration::from_secs(ttl))
                .expect("lease")
        };
        assert_eq!(take("a", 30), LeaseState::Taken);
        assert_eq!(take("b", 30), LeaseState::HeldBy("a".into()));
        release(&cache, &key, "b"); // not b's to release
        assert_eq!(take("b", 30), LeaseState::HeldBy("a".into()));
        release(&cache, &key, "a");
        assert_eq!(take("b", 0), LeaseState::Taken);
        // b's lease expired at once: a dead holder does not block others.
        assert_eq!(take("c", 30), LeaseState::Taken);
    }

    #[test]
    fn settling_stores_the_answer_gives_the_lease_back_and_records_the_quota() {
        let (_d, cache) = open();
        let key = CacheKey::new("192.0.2.4".parse().expect("ip"), 90);
        assert_eq!(
            cache
                .take_lease(&key, "a", Duration::from_secs(30))
                .expect("lease"),
            LeaseState::Taken
        );
        let state = QuotaState {
            limit: Some(1000),
            remaining: Some(999),
            updated_at: 1,
            ..QuotaState::default()
        };
        let answer = rep("192.0.2.4", 42);
        cache
            .settle(
                &key,
                "a",
                Settlement::Answer {
                    reputation: &answer,
                    ttl: Duration::from_secs(60),
                },
                Some(QuotaUpdate {
                    endpoint: "abuseipdb/check",
                    state: &state,
                }),
            )
            .expect("settle");
        let hit = cache.get(&key).expect("get").expect("hit");
        assert_eq!(hit.reputation, answer);
        assert_eq!(cache.quota("abuseipdb/check").expect("quota"), Some(state));
        assert_eq!(
            cache
                .take_lease(&key, "b", Duration::from_secs(30))
                .expect("lease"),
            LeaseState::Taken,
            "a's lease was given back"
        );
    }

    #[test]
    fn a_failed_lease_carries_its_note_until_it_expires() {
        let (_d, cache) = open();
        let key = CacheKey::new("192.0.2.3".parse().expect("ip"), 90);
        let take = |holder: &str| {
            cache
                .take_lease(&key, holder, Duration::from_secs(30))
                .expect("lease")
        };
        assert_eq!(take("a"), LeaseState::Taken);
        let note = FailureNote {
            target: Some("tag".into()),
            failure: LookupFailure::Provider {
                status: Some(503),
                detail: "down".into(),
            },
        };
        let fail = |holder: &str, hold: u64| {
            cache
                .settle(
                    &key,
                    holder,
                    Settlement::Failed {
                        note: &note,
                        hold: Duration::from_secs(hold),
                    },
                    None,
                )
                .expect("settle");
        };
        fail("b", 30); // not b's lease: nothing changes
        assert_eq!(take("x"), LeaseState::HeldBy("a".into()));
        fail("a", 30);
        assert_eq!(take("x"), LeaseState::Failed(note.clone()));
        // An older version's untagged note is read too.
        cache
            .with(|c| {
                c.execute(
                    "UPDATE reputation_lease SET holder = 'failed:429:slow down'",
                    [],
                )
            })
            .expect("old note");
        assert_eq!(
            take("x"),
            LeaseState::Failed(FailureNote {
                target: None,
                failure: LookupFailure::Provider {
                    status: Some(429),
                    detail: "slow down".into()
                }
            })
        );
        cache
            .with(|c| c.execute("UPDATE reputation_lease SET expires_at_ms = 0", []))
            .expect("expire");
        assert_eq!(
            take("c"),
            LeaseState::Taken,
            "an expired note frees the key"
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
