//! One alert end to end, the way integratord pays for it: process start to exit of
//! `integrations/custom-abuseipdb` (argv[0] `integrations`, cwd the Wazuh home), reading the
//! alert file, looking the address up, sending the event to a real queue socket.
//!
//! - `cache_hit`: the address is in the SQLite cache (no HTTP).
//! - `cache_miss`: a new address each time: one HTTP call to the mock AbuseIPDB on 127.0.0.1,
//!   then a cache write.
//! - `seed_script`: the blog's Python script on the same alert against the same mock, when
//!   `REPUTE_SEED_SCRIPT` names a copy of it whose check URL reads `SEED_CHECK_URL` (the
//!   script hard-codes api.abuseipdb.com; the copy is not shipped, see the README). Skipped
//!   otherwise.
//!
//! Run: `cargo bench --bench integration` (with `REPUTE_SEED_SCRIPT=/path/to/seed.py` to
//! include the script).
//!
//! Current figures, before and after the per-alert trimming of issue 11 (no zoneinfo walk, a
//! WAL checkpointed at 100 pages, one commit per answer): `docs/benchmarks-integration.md`.
//! Older figures:
//!
//! Measured 2026-11-28 on the 2-core build machine while other builds ran (load ~5), release
//! build, mock on 127.0.0.1, medians of 200 runs (30 for the script):
//!
//! | case | median | mean |
//! |---|---|---|
//! | `cache_hit` | 6.99 ms | 6.98 ms |
//! | `cache_miss` | 10.66 ms | 10.82 ms |
//! | `seed_script` (python3 + requests 2.34, same alert, same mock) | 567.7 ms | 625.4 ms |
//!
//! That is 53x (miss) and 81x (hit) faster per alert than the script. hyperfine on the same
//! machine agreed (`hyperfine -N --prepare <new alert> …`): seed 682 ms mean (296 ms user CPU),
//! miss 16.9 ms, hit 7.0 ms. A miss cost twice as much before the store stopped
//! checkpointing on close (four fsyncs per process).

#[path = "../tests/support/mock_abuseipdb.rs"]
#[allow(dead_code)]
mod mock_abuseipdb;
#[path = "../tests/support/wazuh_tree.rs"]
#[allow(dead_code)]
mod wazuh_tree;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};

use mock_abuseipdb::MockAbuseIpdb;
use wazuh_tree::{WazuhTree, args_4_8};

const KEY: &str = "bench0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0";
const HIT_IP: &str = "45.33.32.156";

struct Fixture {
    tree: WazuhTree,
    mock: MockAbuseIpdb,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let tree = WazuhTree::new();
    tree.install_binary("custom-abuseipdb");
    let mock = MockAbuseIpdb::start();
    let fixture = Fixture { tree, mock };
    // Warm the cache for the hit case.
    let file = fixture.alert_file(HIT_IP);
    assert!(fixture.ours(&file).status().expect("warm-up").success());
    fixture
});

fn alert(ip: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-11-28T10:32:55.123+0000","rule":{{"level":10,"description":"sshd: Authentication failed from a public IP address {ip}.","id":"100001","groups":["local","syslog","sshd","authentication_failed"]}},"agent":{{"id":"001","name":"web-01","ip":"10.0.1.50"}},"manager":{{"name":"wazuh-manager"}},"id":"1764325975.123456","full_log":"Nov 28 10:32:54 web-01 sshd[4242]: Failed password for root from {ip} port 51234 ssh2","decoder":{{"parent":"sshd","name":"sshd"}},"data":{{"srcip":"{ip}","srcport":"51234","dstuser":"root"}},"location":"/var/log/auth.log"}}"#
    )
}

impl Fixture {
    fn alert_file(&self, ip: &str) -> PathBuf {
        self.tree
            .write_alert(&format!("custom-abuseipdb-{ip}.alert"), &alert(ip))
    }

    /// The 4.8+ command line for `file`, as integratord gives it to either program.
    fn args(&self, file: &std::path::Path) -> Vec<String> {
        args_4_8(&file.to_string_lossy(), KEY, &self.mock.check_url())
    }

    fn ours(&self, file: &std::path::Path) -> Command {
        let args = self.args(file);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = self.tree.integratord_command("custom-abuseipdb", &args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }
}

fn run(mut cmd: Command) {
    let status = cmd.status().expect("run");
    assert!(status.success(), "{status}");
}

#[divan::bench(sample_count = 200)]
fn cache_hit(bencher: divan::Bencher) {
    let f = &*FIXTURE;
    let file = f.alert_file(HIT_IP);
    bencher.bench_local(|| run(f.ours(&file)));
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A public address never seen before.
fn fresh_ip() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("45.{}.{}.{}", 40 + n / 65_536 % 100, n / 256 % 256, n % 256)
}

#[divan::bench(sample_count = 200)]
fn cache_miss(bencher: divan::Bencher) {
    let f = &*FIXTURE;
    bencher
        .with_inputs(|| f.ours(&f.alert_file(&fresh_ip())))
        .bench_local_values(run);
}

#[divan::bench(sample_count = 30)]
fn seed_script(bencher: divan::Bencher) {
    let Some(script) = std::env::var_os("REPUTE_SEED_SCRIPT") else {
        eprintln!("seed_script: set REPUTE_SEED_SCRIPT to the reconstructed script to compare");
        return;
    };
    let f = &*FIXTURE;
    // The script finds the Wazuh home from its own path, like the installed integration.
    let installed = f.tree.path().join("integrations/custom-abuseipdb.py");
    std::fs::copy(&script, &installed).expect("copy the seed script");
    bencher
        .with_inputs(|| {
            let file = f.alert_file(&fresh_ip());
            let mut cmd = Command::new("python3");
            cmd.arg(&installed)
                .args(f.args(&file))
                .current_dir(f.tree.path())
                .env("SEED_CHECK_URL", f.mock.check_url())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            cmd
        })
        .bench_local_values(run);
}

fn main() {
    divan::main();
}
