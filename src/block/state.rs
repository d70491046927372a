//! Block state in the shared SQLite store: which address is blocked until when, why, and by
//! which backend.
//!
//! The kernel knows addresses and timeouts but not why; this table knows why, and outlives a
//! reboot or a flushed set. A [`Record`] keeps apart the two things it holds: the
//! [`BlockDecision`] (which address, until when, why, who asked: what the active response's
//! rules and `list`'s restoring judge by) and the [`Enforcement`] (which backend put it in the
//! kernel, and when it last did: facts about this host's firewall). Both still live in one
//! row of one table, written together; see `docs/security.md` for what that leaves. Times are whole Unix seconds. Every write is a single statement,
//! so concurrent processes (execd runs one per alert) need no explicit transaction.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, params};

use super::BlockError;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS block_state (
    ip      TEXT PRIMARY KEY,
    until   INTEGER NOT NULL,
    reason  TEXT,
    backend TEXT NOT NULL,
    added   INTEGER NOT NULL,
    origin  TEXT
)";

/// Stores made before `origin` existed get the column (NULL: treated as manual, the side
/// that active response must never undo).
const ADD_ORIGIN: &str = "ALTER TABLE block_state ADD COLUMN origin TEXT";

/// How long a process waits for another's change to the firewall before giving up.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// An exclusive hold on the block state and the firewall sets, across processes, released
/// when dropped (closing the file releases the `flock`).
#[derive(Debug)]
pub struct ChangeLock {
    _file: std::fs::File,
}

/// Who asked for a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An administrator (`repute block add`, install): never shortened, re-labelled or
    /// removed by active response.
    Manual,
    /// Wazuh's execd, through `repute wazuh active-response`.
    ActiveResponse,
}

impl Origin {
    fn as_column(self) -> &'static str {
        match self {
            Origin::Manual => "manual",
            Origin::ActiveResponse => "active-response",
        }
    }

    fn from_column(text: Option<&str>) -> Origin {
        match text {
            Some("active-response") => Origin::ActiveResponse,
            _ => Origin::Manual,
        }
    }
}

/// The decision to block: which address, until when, why, and who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDecision {
    pub ip: IpAddr,
    /// Unix seconds when the block ends.
    pub until: i64,
    pub reason: Option<String>,
    pub origin: Origin,
}

/// How this host enforces a decision: the backend that put the address in the kernel, and
/// when it (last) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforcement {
    pub backend: String,
    /// Unix seconds when it was (last) applied.
    pub applied_at: i64,
}

/// One recorded block: the decision and its enforcement on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub decision: BlockDecision,
    pub enforcement: Enforcement,
}

/// The block state table of one store file. The connection sits behind a mutex so one
/// `State` (and the [`super::Blocker`] holding it) can be shared by threads; every write is
/// one statement, so a thread that panicked mid-call left nothing half done.
pub struct State {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl State {
    /// Opens the store at `path` (creating file, directory and table as needed).
    pub fn open(path: &Path) -> Result<Self, BlockError> {
        let err = |source| BlockError::Store {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::store::open(path).map_err(err)?;
        conn.execute(SCHEMA, []).map_err(err)?;
        let has_origin = conn
            .prepare("SELECT 1 FROM pragma_table_info('block_state') WHERE name = 'origin'")
            .and_then(|mut q| q.exists([]))
            .map_err(err)?;
        if !has_origin {
            // Another process may add it at the same moment: its "duplicate column" is fine.
            if let Err(e) = conn.execute(ADD_ORIGIN, [])
                && !e.to_string().contains("duplicate column")
            {
                return Err(err(e));
            }
        }
        Ok(State {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(&self, source: rusqlite::Error) -> BlockError {
        BlockError::Store {
            path: self.path.clone(),
            source,
        }
    }

    /// Takes the change lock (`<store>.block-lock`): a change reads the sets, then writes
    /// them and the state, and two processes doing that at once could both pass the entry
    /// limit or both insert the same iptables rule. Bounded by [`LOCK_WAIT`]. Each call opens
    /// the lock file anew, and `flock` locks belong to the open file, so two threads of one
    /// process sharing a [`super::Blocker`] exclude each other as two processes do.
    pub fn lock(&self) -> Result<ChangeLock, BlockError> {
        use std::os::fd::AsRawFd;
        let mut name = self.path.clone().into_os_string();
        name.push(".block-lock");
        let path = PathBuf::from(name);
        let io_err = |source| BlockError::Lock {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        let start = std::time::Instant::now();
        loop {
            // SAFETY: flock(2) on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(ChangeLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::WouldBlock || start.elapsed() > LOCK_WAIT {
                return Err(io_err(err));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Records (or renews) a block.
    pub fn put(&self, record: &Record) -> Result<(), BlockError> {
        let Record {
            decision,
            enforcement,
        } = record;
        self.conn()
            .execute(
                "INSERT INTO block_state (ip, until, reason, backend, added, origin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(ip) DO UPDATE SET until = ?2,
                   reason = COALESCE(?3, block_state.reason), backend = ?4, added = ?5,
                   origin = ?6",
                params![
                    decision.ip.to_string(),
                    decision.until,
                    decision.reason,
                    enforcement.backend,
                    enforcement.applied_at,
                    decision.origin.as_column()
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The record of one address, if any (expired or not).
    pub fn get(&self, ip: IpAddr) -> Result<Option<Record>, BlockError> {
        Ok(self.all()?.into_iter().find(|r| r.decision.ip == ip))
    }

    /// Forgets one address; returns whether it was recorded.
    pub fn remove(&self, ip: IpAddr) -> Result<bool, BlockError> {
        self.conn()
            .execute("DELETE FROM block_state WHERE ip = ?1", [ip.to_string()])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Forgets every address.
    pub fn clear(&self) -> Result<(), BlockError> {
        self.conn()
            .execute("DELETE FROM block_state", [])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Every record, oldest first. A row whose address does not parse (written by hand) is
    /// skipped rather than failing the whole list.
    pub fn all(&self) -> Result<Vec<Record>, BlockError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT ip, until, reason, backend, added, origin FROM block_state ORDER BY added, ip",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut records = Vec::new();
        for row in rows {
            let (ip, until, reason, backend, added, origin) = row.map_err(|e| self.err(e))?;
            if let Ok(ip) = ip.parse() {
                records.push(Record {
                    decision: BlockDecision {
                        ip,
                        until,
                        reason,
                        origin: Origin::from_column(origin.as_deref()),
                    },
                    enforcement: Enforcement {
                        backend,
                        applied_at: added,
                    },
                });
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ip: &str, until: i64, reason: Option<&str>) -> Record {
        Record {
            decision: BlockDecision {
                ip: ip.parse().unwrap_or(IpAddr::from([0u8; 4])),
                until,
                reason: reason.map(str::to_string),
                origin: Origin::Manual,
            },
            enforcement: Enforcement {
                backend: "nftables".into(),
                applied_at: until - 10,
            },
        }
    }

    #[test]
    fn put_renew_remove_clear() -> Result<(), BlockError> {
        let dir = tempfile::tempdir().map_err(|source| BlockError::Spawn {
            program: "tempdir".into(),
            source,
        })?;
        let state = State::open(&dir.path().join("sub/store.sqlite"))?;
        state.put(&record("203.0.113.9", 100, Some("brute force")))?;
        state.put(&record("2001:db8::1", 200, None))?;
        // A renewal without a reason keeps the old one.
        state.put(&record("203.0.113.9", 300, None))?;
        let all = state.all()?;
        assert_eq!(all.len(), 2);
        let renewed = all
            .iter()
            .map(|r| &r.decision)
            .find(|d| d.ip.to_string() == "203.0.113.9");
        assert_eq!(
            renewed.map(|d| (d.until, d.reason.as_deref())),
            Some((300, Some("brute force")))
        );
        assert!(state.remove("2001:db8::1".parse().unwrap_or(IpAddr::from([0u8; 4])))?);
        assert!(!state.remove("2001:db8::1".parse().unwrap_or(IpAddr::from([0u8; 4])))?);
        state.clear()?;
        assert!(state.all()?.is_empty());
        Ok(())
    }

    #[test]
    fn enforcement_changes_leave_the_decision_as_it_was() -> Result<(), BlockError> {
        let dir = tempfile::tempdir().map_err(|source| BlockError::Spawn {
            program: "tempdir".into(),
            source,
        })?;
        let state = State::open(&dir.path().join("store.sqlite"))?;
        let first = record("45.155.205.233", 500, Some("brute force"));
        state.put(&first)?;
        // The same decision enforced again, by another backend, later (a change of backend,
        // a restore after a reboot): only the enforcement moves.
        let again = Record {
            enforcement: Enforcement {
                backend: "ipset".into(),
                applied_at: 495,
            },
            ..first.clone()
        };
        state.put(&again)?;
        let got = state.get(first.decision.ip)?.expect("recorded");
        assert_eq!(got.decision, first.decision);
        assert_eq!(got.enforcement, again.enforcement);
        Ok(())
    }

    #[test]
    fn a_store_from_before_origin_gets_the_column_and_reads_as_manual() -> Result<(), BlockError> {
        let dir = tempfile::tempdir().map_err(|source| BlockError::Spawn {
            program: "tempdir".into(),
            source,
        })?;
        let path = dir.path().join("old.sqlite");
        let conn = Connection::open(&path).map_err(|e| BlockError::Store {
            path: path.clone(),
            source: e,
        })?;
        conn.execute_batch(
            "CREATE TABLE block_state (ip TEXT PRIMARY KEY, until INTEGER NOT NULL, reason TEXT,
               backend TEXT NOT NULL, added INTEGER NOT NULL);
             INSERT INTO block_state VALUES ('203.0.113.9', 100, 'old', 'nftables', 90);",
        )
        .map_err(|e| BlockError::Store {
            path: path.clone(),
            source: e,
        })?;
        drop(conn);
        let state = State::open(&path)?;
        let all = state.all()?;
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].decision.origin, Origin::Manual);
        // A second opener finds the column already there.
        State::open(&path)?;
        Ok(())
    }
}
