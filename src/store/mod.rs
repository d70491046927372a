//! The stores every process shares, whatever the backend, and the SQLite file they live in.
//!
//! What is shared: reputation answers with their lookup leases ([`crate::cache::ReputationCache`]),
//! the quota AbuseIPDB announced ([`crate::quota::QuotaStore`]), ban decisions
//! ([`crate::decisions::Decisions`]) and report marks. A backend implements these traits and
//! nothing else. Answers and quota: [`SqliteStore`] on the host's SQLite file (the embedded
//! default), [`crate::fleet::RedisStore`] on a Redis shared by a fleet, [`NoStore`] when
//! caching is off; [`Store`] is the pair the engine needs. Decisions:
//! [`crate::decisions::SqliteDecisions`], [`crate::decisions::RedisDecisions`]. Every backend
//! fails with the same [`StoreError`].
//!
//! The SQLite file is opened by [`open`] for every table that lives in it (answers, quota,
//! block state, decisions, report marks). Many processes open it at once (integratord starts
//! one per alert, a daemon may hold it open, an administrator runs `repute block list`), so it
//! is always opened the same way: WAL journal (the switch retried while another process makes
//! it), `synchronous=NORMAL`, a generous busy timeout. Writers that read then write use
//! `BEGIN IMMEDIATE` or single-statement upserts (see `docs/rust-crates.md` §3.2).

mod none;
mod sqlite;

use std::path::PathBuf;

pub use none::NoStore;
pub use sqlite::SqliteStore;

use crate::cache::ReputationCache;
use crate::quota::QuotaStore;

/// A store of reputation answers and quota states: what the engine looks up through.
pub trait Store: ReputationCache + QuotaStore {}

impl<T: ReputationCache + QuotaStore + ?Sized> Store for T {}

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
fn sqlite_reason(error: &rusqlite::Error, path: &Path) -> String {
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

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `now + ttl` in Unix milliseconds, saturating.
pub(crate) fn after_ms(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// How long a writer waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Mode of a state directory this module creates: group-writable and setgid, so that Wazuh's
/// user and root (sharing the group) can both create the `-wal`/`-shm` files in it.
pub const DIR_MODE: u32 = 0o2770;
/// Mode of a store file this module creates; SQLite gives `-wal`/`-shm` the same mode.
pub const FILE_MODE: u32 = 0o660;
/// The WAL is checkpointed into the database once it holds this many pages (SQLite's default
/// is 1000). Every per-alert process is the store's first connection, so it rebuilds the WAL
/// index by reading and checksumming the whole WAL: at 1000 pages (4 MB) that was the largest
/// cost of a cache hit after process start (`docs/benchmarks-integration.md`). A checkpoint
/// costs two fsyncs, once every hundred pages (a dozen or so cache misses).
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 100;

/// [`open`], then the tables of `schema` (idempotent `CREATE … IF NOT EXISTS`), with errors
/// that name the file: how every SQLite-backed store starts.
pub fn open_with_schema(path: &Path, schema: &str) -> Result<Connection, StoreError> {
    let err = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = open(path).map_err(err)?;
    conn.execute_batch(schema).map_err(err)?;
    Ok(conn)
}

/// Opens (creating it and its directory when missing) the store at `path`. Only the last
/// directory is ever created (`/var/lib/repute`, `<wazuh>/var/repute`): when its parent is
/// missing too, the path is most likely a typo, and a whole tree made with mode 2770 would
/// hide it, so that is an error naming both.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_parent_exists(dir)?;
        // Best effort: a directory that cannot be made surfaces as SQLite's "unable to open".
        create_shared_dir(dir);
    }
    let existed = path.exists();
    let conn = Connection::open(path)?;
    if !existed {
        set_mode(path, FILE_MODE);
    }
    conn.busy_timeout(BUSY_TIMEOUT)?;
    switch_to_wal(&conn)?;
    // In WAL mode NORMAL syncs only at checkpoints: a commit is in the WAL (the OS's page
    // cache) when the statement returns, so it survives the process being killed; only a
    // power loss or kernel crash can take back the last commits, which for a cache costs a
    // lookup again, never a corrupt file.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    // A per-alert process is usually the only connection, so closing would checkpoint and
    // delete the WAL (two fsyncs), and the next writer would recreate it (two more): half the
    // cost of a cache miss. The WAL is checkpointed by size instead (wal_autocheckpoint).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(conn)
}

/// Puts the store in WAL mode, waiting (up to [`BUSY_TIMEOUT`]) for another process doing the
/// same. On a new file the switch rewrites the header in a read transaction upgraded to a
/// write one, and SQLite never calls the busy handler for such an upgrade (it could deadlock):
/// a process that loses the race to convert a fresh store gets `SQLITE_BUSY` at once, however
/// long the busy timeout. Once the winner has committed, a retry finds the file in WAL.
fn switch_to_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(e) if is_busy(&e) && Instant::now() + pause < deadline => {
                tracing::debug!(error = %e, "store busy while switching to WAL; trying again");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            done => return done,
        }
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
}

/// Refuses a store directory that is missing along with its parent.
fn check_parent_exists(dir: &Path) -> rusqlite::Result<()> {
    let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() || parent.is_dir() {
        return Ok(());
    }
    let message = if parent.exists() {
        format!("{} is not a directory", parent.display())
    } else {
        format!(
            "directory {} does not exist, nor its parent {}; repute creates only the last directory of a store path (a typo?)",
            dir.display(),
            parent.display()
        )
    };
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
        Some(message),
    ))
}

/// Creates `dir` when absent (its parent exists, see [`check_parent_exists`]); only a
/// directory made here gets [`DIR_MODE`], never an existing one.
fn create_shared_dir(dir: &Path) {
    if dir.exists() {
        return;
    }
    if std::fs::create_dir(dir).is_ok() {
        set_mode(dir, DIR_MODE);
    }
}

/// Sets the mode regardless of the umask; failure only costs sharing, so it is logged.
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::debug!(path = %path.display(), error = %e, "could not set the store's mode");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_directory_and_file_are_group_writable() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("state/repute.sqlite");
        let conn = open(&path).expect("open");
        conn.execute_batch("CREATE TABLE t (x)").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode(path.parent().expect("dir")), DIR_MODE);
        assert_eq!(mode(&path), FILE_MODE);
        // The temporary directory existed already and keeps its own mode.
        assert_ne!(mode(tmp.path()), DIR_MODE);
    }

    #[test]
    fn the_wal_is_kept_short_and_commits_do_not_sync() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let conn = open(&tmp.path().join("repute.sqlite")).expect("open");
        let pages: u32 = conn
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .expect("pragma");
        assert_eq!(pages, WAL_AUTOCHECKPOINT_PAGES);
        let sync: u32 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .expect("pragma");
        assert_eq!(sync, 1, "NORMAL");
    }

    #[test]
    fn a_missing_tree_is_named_not_created() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("nonexistent/dir/x.sqlite");
        let err = open(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("nonexistent/dir does not exist")
                && err.contains("nor its parent")
                && err.ends_with("(a typo?)"),
            "{err}"
        );
        assert!(!tmp.path().join("nonexistent").exists(), "nothing created");
    }

    /// A storm's first alerts open a store that does not exist yet, all at once. Threads hold
    /// separate connections, which SQLite locks against each other as it does processes;
    /// before the WAL switch was retried, one round in a few had an opener fail with
    /// "database is locked" (and the integration then ran without its cache).
    #[test]
    fn connections_opening_a_fresh_store_at_once_all_get_it_in_wal() {
        use std::sync::{Arc, Barrier};
        const OPENERS: usize = 8;
        const ROUNDS: usize = 60;
        let tmp = tempfile::tempdir().expect("tempdir");
        for round in 0..ROUNDS {
            let path = tmp.path().join(format!("{round}/repute.sqlite"));
            let start = Arc::new(Barrier::new(OPENERS));
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    let (path, start) = (path.clone(), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        let conn = open(&path)?;
                        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (x)")?;
                        conn.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))
                    })
                })
                .collect();
            for opener in openers {
                let mode = opener.join().expect("opener thread");
                assert_eq!(mode.as_deref().ok(), Some("wal"), "round {round}: {mode:?}");
            }
        }
    }
}
