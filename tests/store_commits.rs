//! What one lookup costs the store, counted where it is paid: durable commits.
//!
//! A cache miss in the per-alert integration must cost two SQLite commits: one to take the
//! lookup lease (before the HTTP call, so concurrent processes share it), and one that
//! settles it (the answer, the lease given back, the quota the provider announced, all in one
//! transaction). A hit costs none. Commits are counted from outside the engine's connection,
//! in the WAL file itself: SQLite marks the last frame of every commit with the database size,
//! so the commit frames of the live WAL are the commits made since it was (re)started.

mod support;

use std::net::IpAddr;
use std::path::Path;

use repute::config::{ApiKey, Config, StoreSetting};
use repute::engine::{Engine, Source};
use support::mock_abuseipdb::MockAbuseIpdb;

const KEY: &str = "commits0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The commits in the live part of the WAL at `wal`: frames whose salts match the header's
/// (older frames after a restart carry old salts) and whose "database size after commit"
/// field is set.
fn wal_commits(wal: &Path) -> usize {
    let bytes = std::fs::read(wal).unwrap_or_default();
    if bytes.len() < 32 {
        return 0;
    }
    let be32 =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let page_size = be32(8) as usize;
    assert!(page_size >= 512, "WAL header page size {page_size}");
    let salts = (be32(16), be32(20));
    let mut commits = 0;
    let mut at = 32;
    while at + 24 + page_size <= bytes.len() {
        if (be32(at + 8), be32(at + 12)) != salts {
            break;
        }
        if be32(at + 4) != 0 {
            commits += 1;
        }
        at += 24 + page_size;
    }
    commits
}

fn config(dir: &Path, mock: &MockAbuseIpdb) -> Config {
    Config {
        api_key: Some(ApiKey::new(KEY)),
        api_url: mock.base_url(),
        cache: StoreSetting::Sqlite(dir.join("store.sqlite")),
        state_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

#[test]
fn a_miss_costs_one_commit_for_the_lease_and_one_for_the_answer() {
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    let dir = tempfile::tempdir().expect("tmp");
    let config = config(dir.path(), &mock);
    let engine = Engine::new(&config).expect("engine");
    let wal = dir.path().join("store.sqlite-wal");
    let ip: IpAddr = "45.33.32.156".parse().expect("ip");

    let before = wal_commits(&wal);
    let miss = engine.lookup(ip);
    assert_eq!(miss.source, Source::Api, "{miss:?}");
    assert!(miss.reputation().is_some(), "{miss:?}");
    let after_miss = wal_commits(&wal);
    assert_eq!(
        after_miss - before,
        2,
        "a miss: one commit takes the lease, one stores the answer, gives the lease back and \
         records the quota"
    );
    // The settling commit did record the quota headers the mock sent.
    let quota = engine.quota_state().expect("quota state recorded");
    assert!(
        quota.limit.is_some() && quota.remaining.is_some(),
        "{quota:?}"
    );

    let hit = engine.lookup(ip);
    assert_eq!(hit.source, Source::Cache, "{hit:?}");
    assert_eq!(wal_commits(&wal), after_miss, "a hit commits nothing");
    assert_eq!(mock.count("check"), 1);

    // Another engine on the same file (another process, as integratord runs them) is served
    // from the answer the settling commit stored.
    // Opening an existing store (schema, WAL mode) commits nothing either.
    let other = Engine::new(&config).expect("second engine");
    assert_eq!(other.lookup(ip).source, Source::Cache);
    assert_eq!(mock.count("check"), 1);
    assert_eq!(
        wal_commits(&wal),
        after_miss,
        "opening and a hit commit nothing"
    );
}

#[test]
fn a_failed_miss_costs_one_commit_for_the_lease_and_one_for_the_note() {
    let mock = MockAbuseIpdb::start();
    mock.always(support::mock_abuseipdb::Fault::status(503, "down"));
    let dir = tempfile::tempdir().expect("tmp");
    let config = config(dir.path(), &mock);
    let engine = Engine::new(&config).expect("engine");
    let wal = dir.path().join("store.sqlite-wal");

    let before = wal_commits(&wal);
    let miss = engine.lookup("45.33.32.157".parse().expect("ip"));
    assert!(miss.reputation().is_none(), "{miss:?}");
    assert_eq!(wal_commits(&wal) - before, 2);
}
