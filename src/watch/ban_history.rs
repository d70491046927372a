//! How many times each address (or IPv6 network) has been banned, kept in the store so that
//! ban times keep growing across a restart of `repute watch`.
//!
//! The policy makes each ban of a repeat offender longer (`ban_time × factor^(bans before)`);
//! it counts in memory, and the block state only holds bans still running, so without this a
//! restart made the next ban of a known attacker a first one again. Each ban upserts one row
//! (network, bans, when); at start the most recent rows, at most as many as the policy
//! tracks, are given back to it. The table is cut to that many rows at start and every
//! `PRUNE_EVERY` bans, so it stays as bounded as the policy's memory.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use rusqlite::{Connection, params};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS watch_ban_count (
    network  TEXT PRIMARY KEY,
    bans     INTEGER NOT NULL,
    last_ban INTEGER NOT NULL
)";

/// The table is cut back to the policy's bound after this many bans.
const PRUNE_EVERY: u32 = 1000;

#[derive(Debug, thiserror::Error)]
#[error("watch ban history in {path}: {source}")]
pub struct BanHistoryError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

/// The ban counts of one store file.
pub struct BanHistory {
    conn: Connection,
    path: PathBuf,
    /// Rows kept: the policy's `max_tracked`.
    keep: usize,
    since_prune: u32,
}

impl BanHistory {
    /// Opens the table in the store at `path`, keeping at most `keep` rows.
    pub fn open(path: &Path, keep: usize) -> Result<Self, BanHistoryError> {
        let err = |source| BanHistoryError {
            path: path.to_path_buf(),
            source,
        };
        let conn = crate::store::open(path).map_err(err)?;
        conn.execute(SCHEMA, []).map_err(err)?;
        Ok(BanHistory {
            conn,
            path: path.to_path_buf(),
            keep: keep.max(1),
            since_prune: 0,
        })
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> BanHistoryError + '_ {
        |source| BanHistoryError {
            path: self.path.clone(),
            source,
        }
    }

    /// The most recently banned networks with their ban counts, newest first (at most the
    /// `keep` given to [`BanHistory::open`]; the rest are deleted). A row that does not
    /// parse (written by something else) is skipped.
    pub fn load(&mut self) -> Result<Vec<(IpNet, u32)>, BanHistoryError> {
        self.prune()?;
        let mut stmt = self
            .conn
            .prepare("SELECT network, bans FROM watch_ban_count ORDER BY last_ban DESC LIMIT ?1")
            .map_err(self.err())?;
        let limit = i64::try_from(self.keep).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (network, bans) = row.map_err(self.err())?;
            if let (Ok(network), Ok(bans)) = (network.parse::<IpNet>(), u32::try_from(bans)) {
                out.push((network, bans));
            }
        }
        Ok(out)
    }

    /// Records that `network` has now been banned `bans` times in all (a count never goes
    /// down: a ban of a newcomer to a banned network says the same count again).
    pub fn record(&mut self, network: IpNet, bans: u32, now: i64) -> Result<(), BanHistoryError> {
        self.conn
            .execute(
                "INSERT INTO watch_ban_count (network, bans, last_ban) VALUES (?1, ?2, ?3)
                 ON CONFLICT(network) DO UPDATE
                 SET bans = max(bans, excluded.bans), last_ban = excluded.last_ban",
                params![network.to_string(), i64::from(bans), now],
            )
            .map_err(self.err())?;
        self.since_prune += 1;
        if self.since_prune >= PRUNE_EVERY {
            self.prune()?;
        }
        Ok(())
    }

    /// Deletes all but the `keep` most recently banned rows.
    fn prune(&mut self) -> Result<(), BanHistoryError> {
        self.since_prune = 0;
        let keep = i64::try_from(self.keep).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "DELETE FROM watch_ban_count WHERE network NOT IN
                 (SELECT network FROM watch_ban_count ORDER BY last_ban DESC LIMIT ?1)",
                params![keep],
            )
            .map(drop)
            .map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().expect("network")
    }

    #[test]
    fn counts_survive_a_reopen_never_go_down_and_stay_bounded() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("repute.sqlite");
        let mut history = BanHistory::open(&path, 2).expect("open");
        history
            .record(net("45.155.205.233/32"), 1, 100)
            .expect("record");
        history
            .record(net("45.155.205.233/32"), 2, 200)
            .expect("record");
        // A newcomer to a banned network repeats the count it was banned under.
        history
            .record(net("2a01:4f8::/64"), 3, 300)
            .expect("record");
        history
            .record(net("2a01:4f8::/64"), 2, 310)
            .expect("record");
        history
            .record(net("185.220.101.4/32"), 1, 50)
            .expect("record");
        drop(history);

        let mut history = BanHistory::open(&path, 2).expect("reopen");
        assert_eq!(
            history.load().expect("load"),
            [(net("2a01:4f8::/64"), 3), (net("45.155.205.233/32"), 2)],
            "newest first, the oldest beyond the bound dropped"
        );
        let rows: i64 = history
            .conn
            .query_row("SELECT count(*) FROM watch_ban_count", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, 2, "the table is cut to the bound");
    }
}
