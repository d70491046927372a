//! Per-lookup cost through the engine: a cache hit (SQLite read), a cache miss (SQLite lease,
//! one HTTP exchange with the mock AbuseIPDB on loopback, SQLite write), the same miss with no
//! cache, and one whole `repute check` process answering from the cache (the per-alert floor).
//!
//! Run with `cargo bench --bench lookup`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use repute::config::{ApiKey, Config, StoreSetting};
use repute::engine::{Engine, Source};

#[allow(dead_code)]
#[path = "../tests/support/mock_abuseipdb.rs"]
mod mock_abuseipdb;

use mock_abuseipdb::MockAbuseIpdb;

const KEY: &str = "benchkey00000000000000000000000000000000000000000000000000000000000000000000000";

fn main() {
    divan::main();
}

fn config(mock: &MockAbuseIpdb, cache: StoreSetting) -> Config {
    Config {
        api_key: Some(ApiKey::new(KEY)),
        api_url: mock.base_url(),
        cache,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

/// An engine asking `mock`, caching in a SQLite file in `dir`.
fn sqlite_engine(mock: &MockAbuseIpdb, dir: &tempfile::TempDir) -> Engine {
    Engine::new(&config(
        mock,
        StoreSetting::Sqlite(dir.path().join("c.sqlite")),
    ))
    .expect("engine")
}

/// A fresh public address per call: 45.0.0.0/8 walked by a counter.
fn next_address(counter: &AtomicU32) -> IpAddr {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let [_, b, c, d] = n.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(45, b, c, d.max(1)))
}

#[divan::bench]
fn cache_hit(bencher: divan::Bencher) {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let engine = sqlite_engine(&mock, &dir);
    let ip: IpAddr = "118.25.6.39".parse().expect("ip");
    assert_eq!(engine.lookup(ip).source, Source::Api);
    bencher.bench_local(|| {
        let l = engine.lookup(divan::black_box(ip));
        assert_eq!(l.source, Source::Cache);
        l
    });
}

#[divan::bench]
fn cache_miss(bencher: divan::Bencher) {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let engine = sqlite_engine(&mock, &dir);
    let counter = AtomicU32::new(1);
    bencher.bench_local(|| {
        let l = engine.lookup(next_address(&counter));
        assert_eq!(l.source, Source::Api);
        l
    });
}

#[divan::bench]
fn no_cache_http_only(bencher: divan::Bencher) {
    let mock = MockAbuseIpdb::start();
    let engine = Engine::new(&config(&mock, StoreSetting::Disabled)).expect("engine");
    let ip: IpAddr = "118.25.6.39".parse().expect("ip");
    bencher.bench_local(|| {
        let l = engine.lookup(ip);
        assert_eq!(l.source, Source::Api);
        l
    });
}

/// Process start, configuration, SQLite open, one cached lookup, JSON out, exit.
#[divan::bench(sample_count = 30)]
fn process_check_cache_hit(bencher: divan::Bencher) {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("key"), KEY).expect("key");
    let command = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_repute"));
        c.args(["check", "--format", "json", "118.25.6.39"])
            .env_remove("RUST_LOG")
            .env("ABUSEIPDB_API_KEY_FILE", dir.path().join("key"))
            .env("ABUSEIPDB_API_URL", mock.base_url())
            .env("REPUTE_CACHE", dir.path().join("c.sqlite"));
        c
    };
    let warm = command().output().expect("run");
    assert!(warm.status.success());
    bencher.bench_local(|| {
        let out = command().output().expect("run");
        assert!(out.status.success());
        out
    });
}
