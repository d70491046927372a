//! Ban decisions in the host's SQLite store: a table of current bans and a change log whose
//! row ids (AUTOINCREMENT, never reused) are the cursors. Writers take `BEGIN IMMEDIATE` so
//! the check-then-write of an extension and its log row are one step for every process.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Ban, Change, Changes, Cursor, Decisions, LOG_LENGTH};
use crate::store::{StoreError, now_ms};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ban_decision (
    ip TEXT PRIMARY KEY NOT NULL,
    until_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    origin TEXT NOT NULL,
    decided_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ban_change (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ip TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    origin TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
";

/// How often [`SqliteDecisions::changes_after`] looks again while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Ban decisions in a SQLite file shared by the processes of one host.
#[derive(Debug)]
pub struct SqliteDecisions {
    path: PathBuf,
    conn: Mutex<Connection>,
    log_length: u64,
}

impl SqliteDecisions {
    /// Opens (creating when missing) the store at `path` and its decision tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        SqliteDecisions::open_with_log(path, LOG_LENGTH)
    }

    /// As [`SqliteDecisions::open`], keeping about `log_length` changes (tests use a few).
    pub fn open_with_log(path: &Path, log_length: u64) -> Result<Self, StoreError> {
        let conn = crate::store::open_with_schema(path, SCHEMA)?;
        Ok(SqliteDecisions {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            log_length: log_length.max(1),
        })
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

    /// Appends a change and trims the log to about its length.
    fn log(
        tx: &rusqlite::Transaction<'_>,
        kind: &str,
        ban: &Ban,
        keep: u64,
    ) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "INSERT INTO ban_change (kind, ip, until_ms, reason, origin, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            kind,
            ban.ip.to_string(),
            ban.until_ms,
            ban.reason,
            ban.origin,
            ban.decided_at_ms
        ])?;
        let id = tx.last_insert_rowid();
        tx.prepare_cached("DELETE FROM ban_change WHERE id <= ?1")?
            .execute([id.saturating_sub(i64::try_from(keep).unwrap_or(i64::MAX))])?;
        Ok(())
    }
}

fn parse_ip(text: &str) -> rusqlite::Result<IpAddr> {
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Decisions for SqliteDecisions {
    fn record(&self, ban: &Ban) -> Result<bool, StoreError> {
        let keep = self.log_length;
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<i64> = tx
                .prepare_cached("SELECT until_ms FROM ban_decision WHERE ip = ?1")?
                .query_row([ban.ip.to_string()], |r| r.get(0))
                .optional()?;
            if current.is_some_and(|until| until >= ban.until_ms) {
                return Ok(false);
            }
            tx.prepare_cached(
                "INSERT INTO ban_decision (ip, until_ms, reason, origin, decided_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (ip) DO UPDATE SET until_ms = excluded.until_ms,
                   reason = excluded.reason, origin = excluded.origin,
                   decided_at_ms = excluded.decided_at_ms",
            )?
            .execute(params![
                ban.ip.to_string(),
                ban.until_ms,
                ban.reason,
                ban.origin,
                ban.decided_at_ms
            ])?;
            Self::log(&tx, "ban", ban, keep)?;
            tx.execute("DELETE FROM ban_decision WHERE until_ms <= ?1", [now_ms()])?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn revoke(&self, ip: IpAddr, origin: &str) -> Result<bool, StoreError> {
        let keep = self.log_length;
        let ip = crate::addr::canonical(ip);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let gone = tx.execute("DELETE FROM ban_decision WHERE ip = ?1", [ip.to_string()])?;
            if gone > 0 {
                let unban = Ban {
                    ip,
                    until_ms: 0,
                    reason: String::new(),
                    origin: origin.to_string(),
                    decided_at_ms: now_ms(),
                };
                Self::log(&tx, "unban", &unban, keep)?;
            }
            tx.commit()?;
            Ok(gone > 0)
        })
    }

    fn current(&self) -> Result<Vec<Ban>, StoreError> {
        let now = now_ms();
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT ip, until_ms, reason, origin, decided_at_ms FROM ban_decision
                 WHERE until_ms > ?1 ORDER BY until_ms",
            )?;
            let rows = stmt.query_map([now], |r| {
                Ok(Ban {
                    ip: parse_ip(&r.get::<_, String>(0)?)?,
                    until_ms: r.get(1)?,
                    reason: r.get(2)?,
                    origin: r.get(3)?,
                    decided_at_ms: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    fn head(&self) -> Result<Cursor, StoreError> {
        let seq: i64 = self.with(|c| {
            c.query_row(
                "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'ban_change'), 0)",
                [],
                |r| r.get(0),
            )
        })?;
        Ok(Cursor(seq.to_string()))
    }

    fn changes_after(&self, cursor: &Cursor, wait: Duration) -> Result<Changes, StoreError> {
        let after: i64 = cursor.0.parse().unwrap_or(0);
        let deadline = Instant::now() + wait;
        loop {
            let (first, rows) = self.with(|c| {
                let first: Option<i64> =
                    c.query_row("SELECT min(id) FROM ban_change", [], |r| r.get(0))?;
                let mut stmt = c.prepare_cached(
                    "SELECT id, kind, ip, until_ms, reason, origin, at_ms FROM ban_change
                     WHERE id > ?1 ORDER BY id LIMIT 512",
                )?;
                let rows = stmt
                    .query_map([after], |r| {
                        let ip = parse_ip(&r.get::<_, String>(2)?)?;
                        let kind: String = r.get(1)?;
                        let origin: String = r.get(5)?;
                        let at_ms: i64 = r.get(6)?;
                        let change = if kind == "unban" {
                            Change::Unban { ip, origin, at_ms }
                        } else {
                            Change::Ban(Ban {
                                ip,
                                until_ms: r.get(3)?,
                                reason: r.get(4)?,
                                origin,
                                decided_at_ms: at_ms,
                            })
                        };
                        Ok((Cursor(r.get::<_, i64>(0)?.to_string()), change))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((first, rows))
            })?;
            // Ids are contiguous (AUTOINCREMENT, rolled back with their transaction), so a
            // first id beyond the next one means the rows in between were trimmed away.
            if first.is_some_and(|f| f > after + 1) {
                return Ok(Changes::Gap);
            }
            if !rows.is_empty() || Instant::now() >= deadline {
                return Ok(Changes::After(rows));
            }
            std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_trimmed_out_of_the_log_is_a_gap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteDecisions::open_with_log(&dir.path().join("s.sqlite"), 3).expect("open");
        let start = store.head().expect("head");
        assert_eq!(
            store.changes_after(&start, Duration::ZERO).expect("read"),
            Changes::After(vec![])
        );
        for n in 1..=5u8 {
            let ip = IpAddr::from([203, 0, 113, n]);
            store
                .record(&Ban::new(ip, Duration::from_secs(60), "storm"))
                .expect("record");
        }
        assert_eq!(
            store.changes_after(&start, Duration::ZERO).expect("read"),
            Changes::Gap
        );
        let Changes::After(recent) = store
            .changes_after(&Cursor("3".into()), Duration::ZERO)
            .expect("read")
        else {
            panic!("cursor 3 is still in the log");
        };
        assert_eq!(recent.len(), 2);
        assert_eq!(store.head().expect("head"), Cursor("5".into()));
    }

    #[test]
    fn expired_bans_are_not_current() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteDecisions::open(&dir.path().join("s.sqlite")).expect("open");
        let ip: IpAddr = "192.0.2.77".parse().expect("ip");
        store
            .record(&Ban::new(ip, Duration::ZERO, "gone at once"))
            .expect("record");
        assert!(store.current().expect("current").is_empty());
    }
}
