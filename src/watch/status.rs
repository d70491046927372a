//! What `repute watch` is doing, saved in the shared store every few seconds so that
//! `repute status` (another process) can show it: when it started, its process id, its
//! counters. One row per host, rewritten whole.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS watch_status (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    json    TEXT NOT NULL,
    updated INTEGER NOT NULL
)";

/// Counters since watch started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub pid: u32,
    /// Unix seconds.
    pub started: i64,
    pub dry_run: bool,
    pub lines: u64,
    pub events: u64,
    pub attacks: u64,
    pub lookups: u64,
    pub bans: u64,
    pub unbans: u64,
    pub refused: u64,
    pub tracked: u64,
    pub evicted: u64,
    /// AbuseIPDB check quota left, as last announced.
    pub quota_remaining: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("watch status in {path}: {source}")]
pub struct StatusError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

/// The status row of one store file.
pub struct StatusStore {
    conn: Connection,
    path: PathBuf,
}

impl StatusStore {
    pub fn open(path: &Path) -> Result<Self, StatusError> {
        let err = |source| StatusError {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::store::open(path).map_err(err)?;
        conn.execute(SCHEMA, []).map_err(err)?;
        Ok(StatusStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn save(&self, counters: &Counters, now: i64) -> Result<(), StatusError> {
        let json = serde_json::to_string(counters).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO watch_status (id, json, updated) VALUES (1, ?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET json = ?1, updated = ?2",
                params![json, now],
            )
            .map(drop)
            .map_err(|source| StatusError {
                path: self.path.clone(),
                source,
            })
    }

    /// The counters and when they were saved (Unix seconds).
    pub fn load(&self) -> Result<Option<(Counters, i64)>, StatusError> {
        let row: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT json, updated FROM watch_status WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|source| StatusError {
                path: self.path.clone(),
                source,
            })?;
        Ok(row.and_then(|(json, at)| serde_json::from_str(&json).ok().map(|c| (c, at))))
    }
}
