//! Ban decisions: who is banned until when, why, and by which host — the thing a fleet shares.
//!
//! A decision is not its enforcement: each host's enforcer (`block`, driven by `watch`)
//! reconciles its own kernel set with the decisions. The store keeps two things, in SQLite
//! ([`SqliteDecisions`], one host) or Redis ([`RedisDecisions`], a fleet):
//!
//! - the current set (address → [`Ban`]), authoritative, with the end time decided once, so
//!   a ban ends at the same moment on every host;
//! - a bounded change log ([`Change`], with a [`Cursor`]), so a host that follows it learns of
//!   new bans within its poll interval, and a host that was cut off, or whose place in the log
//!   was trimmed away or lost with a restarted Redis, is told to reload the set ([`Update::Snapshot`])
//!   instead of silently missing changes. (Pub/sub alone would lose whatever was published
//!   while a host was away.)
//!
//! A ban is only ever extended by a new decision: recording a shorter ban for an address
//! already banned longer changes nothing (revoke first to shorten). [`Follower`] is what a
//! long-running command calls: [`Follower::poll`] answers a snapshot first, then changes.

mod redis;
mod sqlite;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use self::redis::RedisDecisions;
pub use sqlite::SqliteDecisions;

use crate::config::{Config, StoreSetting};
use crate::store::StoreError;

/// How many changes the log keeps (roughly, for Redis's `MAXLEN ~`). A host that falls
/// further behind reloads the whole set.
pub const LOG_LENGTH: u64 = 10_000;

/// One ban decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub ip: IpAddr,
    /// When it ends (Unix milliseconds), the same for every host.
    pub until_ms: i64,
    /// Why, for people (one line).
    pub reason: String,
    /// The host that decided it.
    pub origin: String,
    /// When it was decided (Unix milliseconds).
    pub decided_at_ms: i64,
}

impl Ban {
    /// A ban of `ip` for `duration` from now, decided by this host.
    pub fn new(ip: IpAddr, duration: Duration, reason: impl Into<String>) -> Ban {
        let now = crate::store::now_ms();
        Ban {
            ip: crate::addr::canonical(ip),
            until_ms: crate::store::after_ms(now, duration),
            reason: reason.into(),
            origin: this_host(),
            decided_at_ms: now,
        }
    }

    /// Time left from `now_ms`, none when it has ended.
    pub fn remaining(&self, now_ms: i64) -> Option<Duration> {
        let left = self.until_ms.checked_sub(now_ms)?;
        (left > 0).then(|| Duration::from_millis(left as u64))
    }
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Ban(Ban),
    Unban {
        ip: IpAddr,
        origin: String,
        at_ms: i64,
    },
}

/// A place in the change log (opaque: a stream id for Redis, a row id for SQLite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

/// What [`Decisions::changes_after`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// The changes after the cursor (possibly none), each with its own cursor.
    After(Vec<(Cursor, Change)>),
    /// The log no longer holds the cursor (trimmed, or the store restarted empty): reload.
    Gap,
}

/// What a follower must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// The whole current set: enforce these (the set is authoritative; a ban of another
    /// origin enforced locally but absent here was revoked or lost).
    Snapshot(Vec<Ban>),
    /// Changes since the last update, in order.
    Changes(Vec<Change>),
}

/// A store of ban decisions.
pub trait Decisions: Send + Sync {
    /// Records `ban`; true when it is new or extends the current one.
    fn record(&self, ban: &Ban) -> Result<bool, StoreError>;
    /// Ends the ban on `ip` now, everywhere; true when there was one.
    fn revoke(&self, ip: IpAddr, origin: &str) -> Result<bool, StoreError>;
    /// The live bans.
    fn current(&self) -> Result<Vec<Ban>, StoreError>;
    /// The end of the change log now (read before [`Decisions::current`] for a snapshot).
    fn head(&self) -> Result<Cursor, StoreError>;
    /// The changes after `cursor`, waiting up to `wait` for the first one.
    fn changes_after(&self, cursor: &Cursor, wait: Duration) -> Result<Changes, StoreError>;
}

/// This host's name for [`Ban::origin`]: the kernel's node name (`uname -n`).
pub fn this_host() -> String {
    let mut buf: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct it is given; the name is NUL-terminated within it.
    let name = if unsafe { libc::uname(&mut buf) } == 0 {
        let bytes: Vec<u8> = buf
            .nodename
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "unknown-host".into()
    } else {
        name
    }
}

/// The decisions store of `config`: Redis when the store is Redis, else the local SQLite file.
pub fn open(config: &Config) -> Result<Box<dyn Decisions>, StoreError> {
    Ok(match &config.cache {
        StoreSetting::Redis(target) => Box::new(RedisDecisions::new(target.clone())),
        _ => Box::new(SqliteDecisions::open(&config.store_path())?),
    })
}

/// Runs `f` on the shared decisions when the configuration names a shared store (Redis);
/// `None` when the store is this host's own (its block state is the record then). For the
/// commands that ban by hand or for Wazuh (`repute block add/del`, the active response).
pub fn when_shared<T>(
    config: &Config,
    f: impl FnOnce(&dyn Decisions) -> Result<T, StoreError>,
) -> Option<Result<T, StoreError>> {
    match &config.cache {
        StoreSetting::Redis(target) => Some(f(&RedisDecisions::new(target.clone()))),
        _ => None,
    }
}

/// The shared decisions when the configuration names a shared store (Redis), for `watch`
/// to record its bans in and follow the others' from; `None` for this host's own store.
pub fn shared(config: &Config) -> Option<std::sync::Arc<dyn Decisions>> {
    match &config.cache {
        StoreSetting::Redis(target) => {
            Some(std::sync::Arc::new(RedisDecisions::new(target.clone())))
        }
        _ => None,
    }
}

/// The current set and the cursor to follow from (the head is read first, so a change made
/// between the two reads is seen twice, never missed; applying a change is idempotent).
pub fn sync(decisions: &dyn Decisions) -> Result<(Cursor, Vec<Ban>), StoreError> {
    let head = decisions.head()?;
    let bans = decisions.current()?;
    Ok((head, bans))
}

/// How often a follower reloads the whole set even when the log said nothing was lost.
pub const FULL_RESYNC_EVERY: Duration = Duration::from_secs(300);

/// Follows the decisions of a store: a snapshot first, then changes; a snapshot again after
/// an error, a gap, or [`FULL_RESYNC_EVERY`].
pub struct Follower<'a> {
    decisions: &'a dyn Decisions,
    cursor: Option<Cursor>,
    last_snapshot: Instant,
}

impl<'a> Follower<'a> {
    pub fn new(decisions: &'a dyn Decisions) -> Self {
        Follower {
            decisions,
            cursor: None,
            last_snapshot: Instant::now(),
        }
    }

    /// The next update, waiting up to `wait` for changes. After an error the next call
    /// starts with a snapshot.
    pub fn poll(&mut self, wait: Duration) -> Result<Update, StoreError> {
        let cursor = match &self.cursor {
            Some(c) if self.last_snapshot.elapsed() < FULL_RESYNC_EVERY => c.clone(),
            _ => return self.snapshot(),
        };
        match self.decisions.changes_after(&cursor, wait) {
            Ok(Changes::After(list)) => {
                if let Some((last, _)) = list.last() {
                    self.cursor = Some(last.clone());
                }
                Ok(Update::Changes(list.into_iter().map(|(_, c)| c).collect()))
            }
            Ok(Changes::Gap) => {
                tracing::info!("decision log gap (trimmed or store restarted); reloading");
                self.snapshot()
            }
            Err(e) => {
                self.cursor = None;
                Err(e)
            }
        }
    }

    fn snapshot(&mut self) -> Result<Update, StoreError> {
        let (head, bans) = sync(self.decisions)?;
        self.cursor = Some(head);
        self.last_snapshot = Instant::now();
        Ok(Update::Snapshot(bans))
    }
}

/// Follows `decisions` until `stop` is set, calling `apply` with every update; store errors
/// are passed to `on_error` and retried with backoff (0.5 s doubling to 30 s). `wait` bounds
/// each poll, so a ban decided elsewhere reaches `apply` within about `wait` (1 s suits the
/// fleet's 2 s promise) and `stop` is seen within `wait`.
pub fn follow(
    decisions: &dyn Decisions,
    stop: &AtomicBool,
    wait: Duration,
    mut apply: impl FnMut(Update),
    mut on_error: impl FnMut(&StoreError),
) {
    let mut follower = Follower::new(decisions);
    let mut pause = Duration::from_millis(500);
    while !stop.load(Ordering::Relaxed) {
        match follower.poll(wait) {
            Ok(update) => {
                pause = Duration::from_millis(500);
                apply(update);
            }
            Err(e) => {
                on_error(&e);
                let until = Instant::now() + pause;
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50).min(pause));
                }
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_starts_with_a_snapshot_then_sees_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteDecisions::open(&dir.path().join("s.sqlite")).expect("open");
        let a: IpAddr = "203.0.113.1".parse().expect("ip");
        let b: IpAddr = "203.0.113.2".parse().expect("ip");
        store
            .record(&Ban::new(a, Duration::from_secs(60), "first"))
            .expect("record");
        let mut follower = Follower::new(&store);
        let Update::Snapshot(bans) = follower.poll(Duration::ZERO).expect("poll") else {
            panic!("a snapshot first");
        };
        assert_eq!(bans.iter().map(|b| b.ip).collect::<Vec<_>>(), vec![a]);
        store
            .record(&Ban::new(b, Duration::from_secs(60), "second"))
            .expect("record");
        store.revoke(a, "here").expect("revoke");
        let update = follower.poll(Duration::from_millis(10)).expect("poll");
        let Update::Changes(changes) = update else {
            panic!("changes: {update:?}")
        };
        assert!(matches!(&changes[0], Change::Ban(ban) if ban.ip == b));
        assert!(matches!(&changes[1], Change::Unban { ip, .. } if *ip == a));
        assert_eq!(
            follower.poll(Duration::from_millis(10)).expect("poll"),
            Update::Changes(vec![])
        );
    }

    /// `follow` hands over a snapshot, then the changes, and returns once `stop` is set.
    #[test]
    fn follow_applies_updates_until_stopped() {
        use std::sync::Arc;
        use std::sync::mpsc;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteDecisions::open(&dir.path().join("s.sqlite")).expect("open"));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let follower = {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            std::thread::spawn(move || {
                follow(
                    store.as_ref(),
                    &stop,
                    Duration::from_millis(100),
                    |u| {
                        let _ = tx.send(u);
                    },
                    |_| {},
                )
            })
        };
        let first = rx.recv_timeout(Duration::from_secs(10)).expect("snapshot");
        assert_eq!(first, Update::Snapshot(vec![]));
        let ban = Ban::new(
            "203.0.113.44".parse().expect("ip"),
            Duration::from_secs(60),
            "x",
        );
        store.record(&ban).expect("record");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let update = rx.recv_timeout(Duration::from_secs(10)).expect("update");
            if update == Update::Changes(vec![Change::Ban(ban.clone())]) {
                break;
            }
            assert!(Instant::now() < deadline, "the ban never came");
        }
        stop.store(true, Ordering::Relaxed);
        follower.join().expect("the follower returns once stopped");
    }

    #[test]
    fn a_shorter_ban_never_shortens_a_longer_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteDecisions::open(&dir.path().join("s.sqlite")).expect("open");
        let ip: IpAddr = "198.51.100.9".parse().expect("ip");
        assert!(
            store
                .record(&Ban::new(ip, Duration::from_secs(3600), "long"))
                .expect("record")
        );
        assert!(
            !store
                .record(&Ban::new(ip, Duration::from_secs(60), "short"))
                .expect("record")
        );
        let bans = store.current().expect("current");
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].reason, "long");
        assert!(store.revoke(ip, "here").expect("revoke"));
        assert!(!store.revoke(ip, "here").expect("revoke"));
        assert!(store.current().expect("current").is_empty());
    }
}
