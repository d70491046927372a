//! What a shared Redis store costs beside the embedded SQLite file.
//!
//! - `integration_hit`: one alert end to end as integratord pays for it (process start to
//!   exit of `integrations/custom-abuseipdb`, alert read, cache hit, event sent to a real queue
//!   socket), with the store in SQLite, in Redis over loopback TCP, and in Redis over its Unix
//!   socket.
//! - `lookups_8_processes`: 8 `repute check` processes at once, each answering 500 cached
//!   addresses from the same store (4,000 lookups per iteration): lookups per second is 4,000
//!   divided by the time.
//!
//! Each case starts its own `redis-server` (loopback, temporary directory, no persistence)
//! and skips itself when `redis-server` is missing. Run: `cargo bench --bench fleet`.
//! Figures: `docs/fleet.md`.

#[path = "../tests/support/mock_abuseipdb.rs"]
#[allow(dead_code)]
mod mock_abuseipdb;
#[path = "../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;
#[path = "../tests/support/wazuh_tree.rs"]
#[allow(dead_code)]
mod wazuh_tree;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::LazyLock;

use mock_abuseipdb::MockAbuseIpdb;
use redis_server::RedisServer;
use wazuh_tree::{WazuhTree, args_4_8};

const KEY: &str = "bench0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0";
const HIT_IP: &str = "45.33.32.156";
const PROCESSES: usize = 8;
const PER_PROCESS: usize = 500;

fn have_redis() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("fleet bench: redis-server not installed; skipped");
    }
    found
}

struct Fixture {
    mock: MockAbuseIpdb,
    redis: RedisServer,
    /// One Wazuh home per store: SQLite, Redis TCP, Redis Unix socket.
    homes: Vec<(WazuhTree, PathBuf)>,
    /// A SQLite file for the `repute check` processes.
    check_sqlite: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let mock = MockAbuseIpdb::start();
    let redis = RedisServer::start();
    let stores = [
        "var/repute/repute.sqlite".to_string(),
        redis.url(),
        format!("redis+unix://{}", redis.socket().display()),
    ];
    let homes = stores
        .iter()
        .enumerate()
        .map(|(n, store)| {
            let tree = WazuhTree::new();
            tree.install_binary("custom-abuseipdb");
            let options = tree.path().join("integrations/custom-abuseipdb.options");
            // Distinct prefixes, so that each home warms its own entry.
            let body = format!(r#"{{"store":"{store}","store_prefix":"bench{n}:"}}"#);
            std::fs::write(&options, body).expect("options");
            (tree, options)
        })
        .collect();
    let fixture = Fixture {
        mock,
        redis,
        homes,
        check_sqlite: tempfile::tempdir().expect("tempdir"),
    };
    for home in 0..fixture.homes.len() {
        run(fixture.alert(home));
    }
    for store in [fixture.sqlite_store(), fixture.redis.url()] {
        let mut warm = fixture.check(&store);
        warm.env("ABUSEIPDB_API_KEY", KEY)
            .env("ABUSEIPDB_API_URL", fixture.mock.base_url());
        run(warm);
    }
    fixture
});

fn run(mut cmd: Command) {
    let status = cmd.status().expect("run");
    assert!(status.success(), "{status}");
}

fn alert(ip: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-11-28T10:32:55.123+0000","rule":{{"level":10,"description":"sshd: Authentication failed from a public IP address {ip}.","id":"100001","groups":["local","syslog","sshd","authentication_failed"]}},"agent":{{"id":"001","name":"web-01","ip":"10.0.1.50"}},"manager":{{"name":"wazuh-manager"}},"id":"1764325975.123456","full_log":"Nov 28 10:32:54 web-01 sshd[4242]: Failed password for root from {ip} port 51234 ssh2","decoder":{{"parent":"sshd","name":"sshd"}},"data":{{"srcip":"{ip}","srcport":"51234","dstuser":"root"}},"location":"/var/log/auth.log"}}"#
    )
}

fn addresses() -> Vec<String> {
    (0..PER_PROCESS)
        .map(|n| format!("45.{}.{}.{}", 60 + n / 65_536, n / 256 % 256, n % 256))
        .collect()
}

impl Fixture {
    /// The integration on the hit alert in home `n`.
    fn alert(&self, n: usize) -> Command {
        let (tree, options) = &self.homes[n];
        let file = tree.write_alert("custom-abuseipdb-hit.alert", &alert(HIT_IP));
        let mut args = args_4_8(&file.to_string_lossy(), KEY, &self.mock.check_url());
        args[4] = options.to_string_lossy().into_owned();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = tree.integratord_command("custom-abuseipdb", &args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    fn sqlite_store(&self) -> String {
        self.check_sqlite
            .path()
            .join("repute.sqlite")
            .to_string_lossy()
            .into_owned()
    }

    /// `repute check --format json` of the 500 addresses through `store`, without a key.
    fn check(&self, store: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
        cmd.args(["check", "--format", "json", "--cache", store])
            .args(addresses())
            .env_remove("ABUSEIPDB_API_KEY")
            .env_remove("ABUSEIPDB_API_KEY_FILE")
            .env_remove("REPUTE_CONFIG")
            .env("REPUTE_STATE_DIR", self.check_sqlite.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }
}

#[divan::bench(args = ["sqlite", "redis-tcp", "redis-unix"], sample_count = 200)]
fn integration_hit(bencher: divan::Bencher, store: &str) {
    if !have_redis() {
        return;
    }
    let f = &*FIXTURE;
    let n = ["sqlite", "redis-tcp", "redis-unix"]
        .iter()
        .position(|s| *s == store)
        .unwrap_or(0);
    bencher.bench_local(|| run(f.alert(n)));
}

#[divan::bench(args = ["sqlite", "redis-tcp"], sample_count = 20)]
fn lookups_8_processes(bencher: divan::Bencher, store: &str) {
    if !have_redis() {
        return;
    }
    let f = &*FIXTURE;
    let store = if store == "sqlite" {
        f.sqlite_store()
    } else {
        f.redis.url()
    };
    bencher.bench_local(|| {
        let children: Vec<_> = (0..PROCESSES)
            .map(|_| f.check(&store).spawn().expect("spawn"))
            .collect();
        for mut child in children {
            let status = child.wait().expect("wait");
            assert!(status.success(), "{status}");
        }
    });
}

fn main() {
    divan::main();
}
