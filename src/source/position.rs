//! Where each source stands, in the shared SQLite store (per host), so that `repute watch`
//! resumes after a restart without skipping or re-reading a line: a file's device, inode,
//! offset, line count and head hash, or the journal's cursor.
//!
//! Rows are keyed by the source's name (`file:/var/log/auth.log`, `journal`). Every write is
//! one upsert; `repute status` reads the table while watch runs.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::file::Position;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS watch_position (
    source    TEXT PRIMARY KEY,
    dev       INTEGER,
    inode     INTEGER,
    offset    INTEGER,
    line      INTEGER,
    head_len  INTEGER,
    head_hash INTEGER,
    cursor    TEXT,
    updated   INTEGER NOT NULL
)";

/// Why positions could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("watch positions in {path}: {source}")]
pub struct PositionError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

/// One row, as `repute status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SavedSource {
    pub source: String,
    pub inode: Option<u64>,
    pub offset: Option<u64>,
    pub line: Option<u64>,
    pub cursor: Option<String>,
    /// Unix seconds of the last save.
    pub updated: i64,
}

/// The positions table of one store file.
pub struct PositionStore {
    conn: Connection,
    path: PathBuf,
}

/// SQLite integers are signed; inode numbers and hashes are stored bit for bit.
fn to_sql(n: u64) -> i64 {
    n as i64
}

fn from_sql(n: i64) -> u64 {
    n as u64
}

impl PositionStore {
    /// Opens the store at `path` (creating file, directory and table as needed).
    pub fn open(path: &Path) -> Result<Self, PositionError> {
        let err = |source| PositionError {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::store::open(path).map_err(err)?;
        conn.execute(SCHEMA, []).map_err(err)?;
        Ok(PositionStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> PositionError {
        PositionError {
            path: self.path.clone(),
            source,
        }
    }

    /// The saved position of a file source.
    pub fn file(&self, source: &str) -> Result<Option<Position>, PositionError> {
        self.conn
            .query_row(
                "SELECT dev, inode, offset, line, head_len, head_hash FROM watch_position
                 WHERE source = ?1 AND inode IS NOT NULL",
                [source],
                |r| {
                    Ok(Position {
                        dev: from_sql(r.get(0)?),
                        inode: from_sql(r.get(1)?),
                        offset: from_sql(r.get(2)?),
                        line: from_sql(r.get(3)?),
                        head_len: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                        head_hash: from_sql(r.get(5)?),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Saves a file source's position.
    pub fn save_file(&self, source: &str, p: &Position, now: i64) -> Result<(), PositionError> {
        self.conn
            .execute(
                "INSERT INTO watch_position
                   (source, dev, inode, offset, line, head_len, head_hash, cursor, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)
                 ON CONFLICT(source) DO UPDATE SET dev = ?2, inode = ?3, offset = ?4,
                   line = ?5, head_len = ?6, head_hash = ?7, updated = ?8",
                params![
                    source,
                    to_sql(p.dev),
                    to_sql(p.inode),
                    to_sql(p.offset),
                    to_sql(p.line),
                    i64::from(p.head_len),
                    to_sql(p.head_hash),
                    now
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The saved journal cursor.
    pub fn cursor(&self, source: &str) -> Result<Option<String>, PositionError> {
        self.conn
            .query_row(
                "SELECT cursor FROM watch_position WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Saves the journal cursor.
    pub fn save_cursor(&self, source: &str, cursor: &str, now: i64) -> Result<(), PositionError> {
        self.conn
            .execute(
                "INSERT INTO watch_position (source, cursor, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT(source) DO UPDATE SET cursor = ?2, updated = ?3",
                params![source, cursor, now],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Every saved source, by name.
    pub fn all(&self) -> Result<Vec<SavedSource>, PositionError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT source, inode, offset, line, cursor, updated FROM watch_position
                 ORDER BY source",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SavedSource {
                    source: r.get(0)?,
                    inode: r.get::<_, Option<i64>>(1)?.map(from_sql),
                    offset: r.get::<_, Option<i64>>(2)?.map(from_sql),
                    line: r.get::<_, Option<i64>>(3)?.map(from_sql),
                    cursor: r.get(4)?,
                    updated: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_positions_and_cursors_round_trip_bit_for_bit() -> Result<(), PositionError> {
        let dir = tempfile::tempdir().map_err(|e| PositionError {
            path: PathBuf::new(),
            source: rusqlite::Error::InvalidPath(e.to_string().into()),
        })?;
        let store = PositionStore::open(&dir.path().join("s.sqlite"))?;
        let p = Position {
            dev: 2049,
            inode: u64::MAX - 3,
            offset: 123_456,
            line: 789,
            head_len: 256,
            head_hash: 0xdead_beef_cafe_f00d,
        };
        store.save_file("file:/var/log/auth.log", &p, 10)?;
        assert_eq!(store.file("file:/var/log/auth.log")?, Some(p));
        assert_eq!(store.file("file:/other")?, None);
        store.save_cursor("journal", "s=abc;i=1", 11)?;
        store.save_cursor("journal", "s=abc;i=2", 12)?;
        assert_eq!(store.cursor("journal")?.as_deref(), Some("s=abc;i=2"));
        assert_eq!(store.file("journal")?, None);
        assert_eq!(store.all()?.len(), 2);
        Ok(())
    }
}
