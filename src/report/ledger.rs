//! The report ledger: which address we reported when, and the report endpoint's quota, shared
//! by every process on the store.
//!
//! AbuseIPDB takes one report per address per 15 minutes and answers a second one with a 429
//! that costs quota all the same; fail2ban's action re-reports on every restart. So the mark
//! lives in the store, not in memory: a restart, a second process or (with a shared backend)
//! another host sees it. A report first *claims* the address (one statement that only
//! succeeds when no live mark exists), then *settles* the claim as reported or *releases* it
//! on failure, so two processes banning the same address at once send one report.
//!
//! [`ReportLedger`] is the whole contract a backend implements: [`crate::fleet::RedisLedger`]
//! for a fleet on one Redis; [`SqliteLedger`] is the embedded one, a table
//! `report_mark` in the shared SQLite file, with the quota kept beside the check endpoint's in
//! the cache's `quota_state` table under [`QUOTA_ENDPOINT`]. Each backend also tallies the
//! reports sent per UTC day (`report_day`), which `repute status` shows.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::quota::{QuotaState, QuotaStore};
use crate::store::SqliteStore;

/// The quota key of the report endpoint (checks are `abuseipdb/check`).
pub const QUOTA_ENDPOINT: &str = "abuseipdb/report";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS report_mark (
    ip      TEXT PRIMARY KEY NOT NULL,
    state   TEXT NOT NULL,
    holder  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    until   INTEGER NOT NULL
) WITHOUT ROWID";

const DAY_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS report_day (
    day   INTEGER PRIMARY KEY NOT NULL,
    sent  INTEGER NOT NULL
) WITHOUT ROWID";

/// Days of tallies the SQLite ledger keeps.
const DAYS_KEPT: i64 = 31;

/// The UTC day (days since 1970-01-01) of `at`, Unix seconds.
pub fn utc_day(at: i64) -> i64 {
    at.div_euclid(86_400)
}

/// A live mark on an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Reported at `at` (Unix seconds); no new report before `until`.
    Reported { at: i64, until: i64 },
    /// Another process is reporting it right now (claimed at `at`).
    Pending { at: i64, until: i64 },
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller may report; it must settle or release.
    Granted,
    /// Not now: this mark is live.
    Held(Mark),
}

/// The store failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("report ledger {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Any other backend (a shared Redis).
    #[error("report ledger: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Report marks and the report quota, shared by every process on the store.
pub trait ReportLedger: Send + Sync {
    /// Claims `ip` for a report by `holder` at `now`, for `hold` seconds; granted only when
    /// no live mark (a report within its window, or another live claim) exists.
    fn claim(&self, ip: IpAddr, holder: &str, now: i64, hold: i64) -> Result<Claim, LedgerError>;
    /// Turns `holder`'s claim (or no mark at all) into "reported at `at`, nothing new before
    /// `until`".
    fn settle(&self, ip: IpAddr, holder: &str, at: i64, until: i64) -> Result<(), LedgerError>;
    /// Drops `holder`'s pending claim (the report failed; a later one may try).
    fn release(&self, ip: IpAddr, holder: &str) -> Result<(), LedgerError>;
    /// The live mark on `ip` at `now`, if any.
    fn mark(&self, ip: IpAddr, now: i64) -> Result<Option<Mark>, LedgerError>;
    /// The report endpoint's quota state.
    fn quota(&self) -> Result<Option<QuotaState>, LedgerError>;
    fn record_quota(&self, state: &QuotaState) -> Result<(), LedgerError>;
    /// Counts one report sent at `at` (Unix seconds) in the tally of its UTC day.
    fn count_sent(&self, at: i64) -> Result<(), LedgerError>;
    /// Reports sent on the UTC day of `at`, by every process (and host) on the store.
    fn sent_on_day_of(&self, at: i64) -> Result<u64, LedgerError>;
}

/// The ledger in the shared SQLite store.
#[derive(Debug)]
pub struct SqliteLedger {
    path: PathBuf,
    conn: Mutex<Connection>,
    quota: SqliteStore,
}

impl SqliteLedger {
    /// Opens (creating when missing) the store at `path` and its `report_mark` table.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let err = |source| LedgerError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::store::open(path).map_err(err)?;
        conn.execute(SCHEMA, []).map_err(err)?;
        conn.execute(DAY_SCHEMA, []).map_err(err)?;
        let quota = SqliteStore::open(path)?;
        Ok(SqliteLedger {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            quota,
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| LedgerError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }
}

fn key(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

impl ReportLedger for SqliteLedger {
    fn claim(&self, ip: IpAddr, holder: &str, now: i64, hold: i64) -> Result<Claim, LedgerError> {
        // One statement: the insert, or the takeover of a dead mark, happens or not, whatever
        // other processes do at the same moment.
        let changed = self.with(|c| {
            c.execute(
                "INSERT INTO report_mark (ip, state, holder, at, until)
                 VALUES (?1, 'pending', ?2, ?3, ?4)
                 ON CONFLICT (ip) DO UPDATE SET
                    state = 'pending', holder = excluded.holder, at = excluded.at,
                    until = excluded.until
                 WHERE report_mark.until <= excluded.at",
                params![key(ip), holder, now, now.saturating_add(hold)],
            )
        })?;
        if changed == 1 {
            return Ok(Claim::Granted);
        }
        Ok(match self.mark(ip, now)? {
            Some(mark) => Claim::Held(mark),
            // The mark expired between the two statements: report next time.
            None => Claim::Held(Mark::Pending {
                at: now,
                until: now,
            }),
        })
    }

    fn settle(&self, ip: IpAddr, holder: &str, at: i64, until: i64) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO report_mark (ip, state, holder, at, until)
                 VALUES (?1, 'reported', ?2, ?3, ?4)
                 ON CONFLICT (ip) DO UPDATE SET
                    state = 'reported', holder = excluded.holder, at = excluded.at,
                    until = max(report_mark.until, excluded.until)",
                params![key(ip), holder, at, until],
            )
        })?;
        Ok(())
    }

    fn release(&self, ip: IpAddr, holder: &str) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM report_mark WHERE ip = ?1 AND holder = ?2 AND state = 'pending'",
                params![key(ip), holder],
            )
        })?;
        Ok(())
    }

    fn mark(&self, ip: IpAddr, now: i64) -> Result<Option<Mark>, LedgerError> {
        let row: Option<(String, i64, i64)> = self.with(|c| {
            c.query_row(
                "SELECT state, at, until FROM report_mark WHERE ip = ?1 AND until > ?2",
                params![key(ip), now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })?;
        Ok(row.map(|(state, at, until)| match state.as_str() {
            "reported" => Mark::Reported { at, until },
            _ => Mark::Pending { at, until },
        }))
    }

    fn quota(&self) -> Result<Option<QuotaState>, LedgerError> {
        Ok(self.quota.quota(QUOTA_ENDPOINT)?)
    }

    fn record_quota(&self, state: &QuotaState) -> Result<(), LedgerError> {
        Ok(self.quota.record_quota(QUOTA_ENDPOINT, state)?)
    }

    fn count_sent(&self, at: i64) -> Result<(), LedgerError> {
        let day = utc_day(at);
        self.with(|c| {
            c.execute(
                "INSERT INTO report_day (day, sent) VALUES (?1, 1)
                 ON CONFLICT (day) DO UPDATE SET sent = sent + 1",
                params![day],
            )?;
            c.execute(
                "DELETE FROM report_day WHERE day < ?1",
                params![day - DAYS_KEPT],
            )
            .map(drop)
        })
    }

    fn sent_on_day_of(&self, at: i64) -> Result<u64, LedgerError> {
        let sent: Option<i64> = self.with(|c| {
            c.query_row(
                "SELECT sent FROM report_day WHERE day = ?1",
                params![utc_day(at)],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(sent.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0u8; 4]))
    }

    #[test]
    fn one_claim_wins_until_its_window_ends() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("store.sqlite");
        let a = SqliteLedger::open(&path).expect("open a");
        let b = SqliteLedger::open(&path).expect("open b");
        let addr = ip("203.0.113.9");
        assert_eq!(a.claim(addr, "a", 1000, 60).ok(), Some(Claim::Granted));
        assert!(matches!(
            b.claim(addr, "b", 1001, 60),
            Ok(Claim::Held(Mark::Pending { .. }))
        ));
        a.settle(addr, "a", 1002, 1002 + 900).expect("settle");
        assert_eq!(
            b.claim(addr, "b", 1500, 60).ok(),
            Some(Claim::Held(Mark::Reported {
                at: 1002,
                until: 1902
            }))
        );
        // The mapped form is the same address.
        assert!(matches!(
            b.claim(ip("::ffff:203.0.113.9"), "b", 1500, 60),
            Ok(Claim::Held(_))
        ));
        assert_eq!(b.claim(addr, "b", 1902, 60).ok(), Some(Claim::Granted));
    }

    /// Reports are tallied per UTC day, across connections (processes) on one file, and
    /// old days are dropped.
    #[test]
    fn reports_are_tallied_per_utc_day() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.sqlite");
        let a = SqliteLedger::open(&path).expect("open");
        let b = SqliteLedger::open(&path).expect("open");
        let day = 20_000 * 86_400;
        a.count_sent(day).expect("count");
        b.count_sent(day + 86_399).expect("count");
        a.count_sent(day + 86_400).expect("count");
        assert_eq!(b.sent_on_day_of(day + 5).ok(), Some(2));
        assert_eq!(a.sent_on_day_of(day + 86_400 + 5).ok(), Some(1));
        assert_eq!(a.sent_on_day_of(day - 1).ok(), Some(0));
        b.count_sent(day + 40 * 86_400).expect("count");
        assert_eq!(
            a.sent_on_day_of(day).ok(),
            Some(0),
            "older than a month: dropped"
        );
    }

    #[test]
    fn a_released_claim_frees_the_address_and_a_dead_one_expires() {
        let dir = tempfile::tempdir().expect("tmp");
        let ledger = SqliteLedger::open(&dir.path().join("s.sqlite")).expect("open");
        let addr = ip("198.51.100.4");
        assert_eq!(ledger.claim(addr, "a", 10, 60).ok(), Some(Claim::Granted));
        ledger.release(addr, "a").expect("release");
        assert_eq!(ledger.claim(addr, "b", 11, 60).ok(), Some(Claim::Granted));
        // b died without settling: its claim lapses after `hold`.
        assert_eq!(ledger.claim(addr, "c", 71, 60).ok(), Some(Claim::Granted));
        // Releasing someone else's claim does nothing.
        ledger.release(addr, "b").expect("release");
        assert!(matches!(
            ledger.claim(addr, "d", 72, 60),
            Ok(Claim::Held(_))
        ));
    }

    #[test]
    fn the_report_quota_is_kept_apart_from_the_check_quota() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.sqlite");
        let ledger = SqliteLedger::open(&path).expect("open");
        let spent = QuotaState::exhausted(None, Some(5000), 100);
        ledger.record_quota(&spent).expect("record");
        assert_eq!(ledger.quota().ok().flatten(), Some(spent));
        let cache = SqliteStore::open(&path).expect("cache");
        assert_eq!(cache.quota("abuseipdb/check").ok().flatten(), None);
    }
}
