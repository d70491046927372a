//! Report marks: when this deployment last reported an address to AbuseIPDB, shared by every
//! process and, with a Redis store, every host, so that the fleet keeps AbuseIPDB's rule of
//! one report per address per 15 minutes without asking (a refused report still costs quota).
//!
//! [`ReportMarks::claim`] is the one operation a reporter needs: it atomically takes the right
//! to report an address for a window, or says another process or host has it. The SQLite
//! implementation lives in the host's store file, the Redis one is a `SET NX PX` key per
//! address (`report:{ip}` under the prefix).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::cache::{StoreError, after_ms, now_ms};
use crate::config::{CacheSetting, Config};
use crate::fleet::{Link, RedisTarget};

/// AbuseIPDB refuses a second report of one address within this window.
pub const REPORT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Who reported what, when.
pub trait ReportMarks: Send + Sync {
    /// Takes the right to report `ip` now; false when it was reported (or claimed) less than
    /// `window` ago. A claim that is not followed by a report can be given back with
    /// [`ReportMarks::release`].
    fn claim(&self, ip: IpAddr, window: Duration) -> Result<bool, StoreError>;
    /// Gives a claim back (the report was not sent), so the next attempt may report.
    fn release(&self, ip: IpAddr) -> Result<(), StoreError>;
}

/// The marks of `config`'s store.
pub fn open(config: &Config) -> Result<Box<dyn ReportMarks>, StoreError> {
    Ok(match &config.cache {
        CacheSetting::Redis(target) => Box::new(RedisMarks::new(target.clone())),
        _ => Box::new(SqliteMarks::open(&config.store_path())?),
    })
}

/// Marks in the host's SQLite store.
#[derive(Debug)]
pub struct SqliteMarks {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteMarks {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::store::open(path).map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS report_mark (
                ip TEXT PRIMARY KEY NOT NULL,
                until_ms INTEGER NOT NULL
            ) WITHOUT ROWID",
        )
        .map_err(err)?;
        Ok(SqliteMarks {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }
}

impl ReportMarks for SqliteMarks {
    fn claim(&self, ip: IpAddr, window: Duration) -> Result<bool, StoreError> {
        let now = now_ms();
        let ip = crate::addr::canonical(ip).to_string();
        // One statement: insert, or take over a mark whose window has passed.
        let changed = self.with(|c| {
            c.prepare_cached(
                "INSERT INTO report_mark (ip, until_ms) VALUES (?1, ?2)
                 ON CONFLICT (ip) DO UPDATE SET until_ms = excluded.until_ms
                 WHERE report_mark.until_ms <= ?3",
            )?
            .execute(params![ip, after_ms(now, window), now])
        })?;
        Ok(changed == 1)
    }

    fn release(&self, ip: IpAddr) -> Result<(), StoreError> {
        let ip = crate::addr::canonical(ip).to_string();
        self.with(|c| c.execute("DELETE FROM report_mark WHERE ip = ?1", [ip]))?;
        Ok(())
    }
}

/// Marks in the fleet's Redis.
#[derive(Debug)]
pub struct RedisMarks {
    link: Link,
}

impl RedisMarks {
    pub fn new(target: RedisTarget) -> Self {
        RedisMarks {
            link: Link::new(target),
        }
    }

    fn key(&self, ip: IpAddr) -> String {
        self.link
            .target()
            .key(&format!("report:{}", crate::addr::canonical(ip)))
    }
}

impl ReportMarks for RedisMarks {
    fn claim(&self, ip: IpAddr, window: Duration) -> Result<bool, StoreError> {
        let key = self.key(ip);
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = self.link.run(|c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(now_ms())
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query(c)
        })?;
        Ok(set.is_some())
    }

    fn release(&self, ip: IpAddr) -> Result<(), StoreError> {
        let key = self.key(ip);
        self.link
            .run(|c| redis::cmd("DEL").arg(&key).query::<i64>(c).map(drop))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_per_window_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marks = SqliteMarks::open(&dir.path().join("s.sqlite")).expect("open");
        let ip: IpAddr = "203.0.113.5".parse().expect("ip");
        let mapped: IpAddr = "::ffff:203.0.113.5".parse().expect("ip");
        assert!(marks.claim(ip, REPORT_WINDOW).expect("claim"));
        assert!(!marks.claim(mapped, REPORT_WINDOW).expect("claim"));
        marks.release(ip).expect("release");
        assert!(marks.claim(ip, Duration::ZERO).expect("claim"));
        // A window that has passed is no obstacle.
        assert!(marks.claim(ip, REPORT_WINDOW).expect("claim"));
    }
}
