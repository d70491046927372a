//! The SQLite file shared by the reputation cache, the quota state and the block state.
//!
//! Many processes open it at once (integratord starts one per alert, a daemon may hold it
//! open, an administrator runs `repute block list`), so it is always opened the same way:
//! WAL journal, `synchronous=NORMAL`, a generous busy timeout. Writers that read then write use
//! `BEGIN IMMEDIATE` or single-statement upserts (see `docs/rust-crates.md` §3.2).

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// How long a writer waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens (creating it and its directory when missing) the store at `path`.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Best effort: a missing directory surfaces as SQLite's "unable to open" below.
        let _ = std::fs::create_dir_all(dir);
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}
