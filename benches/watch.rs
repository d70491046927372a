//! What `repute watch` costs, measured on this machine (figures go to `docs/watch.md`):
//!
//! 1. **Throughput**: lines/s through the whole watch round (follower, parser, policy,
//!    JSON events and decisions written to a sink, dry run) on `gen_authlog.py -n 300000
//!    --seed 1`, against `repute scan`'s core on the same file (one thread, events written as
//!    JSON lines to a sink), so the two do the same work but for following and deciding.
//! 2. **Latency**: from appending a line to the file to watch writing its decision (the
//!    loop idle, woken by inotify; reputation through a SQLite cache; dry run, so before any
//!    firewall call): p50, p99, max over 2 000 lines, each from a new public address with
//!    `max_retry = 1`.
//! 3. **Memory**: the policy's peak resident set growth with 1 000 000 distinct attacking
//!    addresses, with the default cap (100 000 remembered) and with a cap of 1 000 000.
//!
//! Run: `cargo bench --bench watch` (release build). Without python3 or the generator the
//! throughput part says so and is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use repute::block::SafetyPolicy;
use repute::config::{Config, StoreSetting};
use repute::engine::Engine;
use repute::policy::{Policy, PolicySettings};
use repute::source::StartAt;
use repute::watch::metrics::Metrics;
use repute::watch::{OutputFormat, Parts, Watch, WatchOptions};
use repute::{Kind, Outcome};

const THROUGHPUT_LINES: u64 = 300_000;
const LATENCY_SAMPLES: usize = 2_000;

fn main() {
    memory();
    let tmp = tempfile::tempdir().expect("tempdir");
    throughput(tmp.path());
    latency(tmp.path());
}

/// Resident set high-water mark of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn memory() {
    for cap in [100_000usize, 1_000_000] {
        let before = peak_rss_kib();
        let mut policy = Policy::new(PolicySettings {
            max_tracked: cap,
            ..PolicySettings::default()
        });
        let start = Instant::now();
        for n in 0..1_000_000u32 {
            // 45.0.0.0/8 onwards: public addresses, all distinct.
            let ip = std::net::IpAddr::from((0x2d00_0000u32 + n).to_be_bytes());
            policy.observe(ip, Kind::FailedPassword, Outcome::Failure, 1, None, true, 0);
        }
        let took = start.elapsed();
        let grown = peak_rss_kib().saturating_sub(before);
        println!(
            "memory: 1000000 distinct addresses, cap {cap}: {} remembered, {} evicted, peak RSS +{:.1} MiB, {:.0} ns/attempt",
            policy.tracked(),
            policy.evicted,
            grown as f64 / 1024.0,
            took.as_nanos() as f64 / 1e6
        );
        drop(policy);
    }
}

fn generator() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("REPUTE_GEN_AUTHLOG")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            manifest.join("../shared/tools/gen_authlog.py"),
            manifest.join("../../shared/tools/gen_authlog.py"),
        ])
        .find(|p| p.is_file())
}

fn options(files: Vec<PathBuf>, policy: PolicySettings) -> WatchOptions {
    WatchOptions {
        files,
        journal: None,
        dry_run: true,
        format: OutputFormat::Jsonl,
        policy,
        poll_interval: Duration::from_millis(250),
        start_at: StartAt::Beginning,
        max_line: repute::scan::MAX_LINE,
    }
}

fn parts(engine: Option<Engine>, out: Box<dyn Write + Send>) -> Parts {
    Parts {
        engine,
        blocker: None,
        safety: SafetyPolicy::default(),
        store: None,
        metrics: Arc::new(Metrics::new()),
        out,
        decisions: None,
        reporter: None,
    }
}

fn throughput(dir: &Path) {
    let Some(generator) = generator() else {
        println!("throughput: skipped (no gen_authlog.py)");
        return;
    };
    let log = dir.join("auth.log");
    let made = std::process::Command::new("python3")
        .arg(&generator)
        .args(["-n", &THROUGHPUT_LINES.to_string(), "--seed", "1", "-o"])
        .arg(&log)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        println!("throughput: skipped (gen_authlog.py failed)");
        return;
    }
    let bytes = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    for round in 0..2 {
        let start = Instant::now();
        let mut watch = Watch::new(
            options(vec![log.clone()], PolicySettings::default()),
            parts(None, Box::new(std::io::sink())),
        )
        .expect("watch");
        while watch.counters().lines < THROUGHPUT_LINES {
            watch.step().expect("step");
        }
        let took = start.elapsed();
        let c = watch.counters();
        let watch_rate = THROUGHPUT_LINES as f64 / took.as_secs_f64();

        let start = Instant::now();
        let opts = repute::scan::Options {
            now: jiff::Timestamp::now(),
            threads: 1,
            only_public: false,
            ..Default::default()
        };
        let report = repute::scan::write_events(
            &[repute::scan::Input::Path(log.clone())],
            &opts,
            &(),
            &mut std::io::sink(),
        )
        .expect("scan");
        let scan_took = start.elapsed();
        let scan_rate = THROUGHPUT_LINES as f64 / scan_took.as_secs_f64();
        println!(
            "throughput (round {round}): {THROUGHPUT_LINES} lines, {:.1} MB: watch {:.0} lines/s \
             ({} events, {} decisions), scan --format jsonl 1 thread {:.0} lines/s ({} events); \
             watch/scan time {:.2}",
            bytes as f64 / 1e6,
            watch_rate,
            c.events,
            c.bans + c.refused,
            scan_rate,
            report.totals.events,
            scan_rate / watch_rate
        );
    }
}

/// Records when each decision line is written (serde writes a line in many small pieces).
struct DecisionClock {
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
    line: Vec<u8>,
}

impl Write for DecisionClock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        while let Some(end) = self.line.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.line.drain(..=end).collect();
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            if v["decision"] == "ban"
                && let (Some(address), Ok(mut seen)) = (v["address"].as_str(), self.seen.lock())
            {
                seen.push((address.to_string(), Instant::now()));
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn latency(dir: &Path) {
    let log = dir.join("latency.log");
    std::fs::write(&log, "").expect("log");
    let decisions = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let cache = dir.join("cache.sqlite");
    let thread = {
        let (log, decisions, stop) = (log.clone(), Arc::clone(&decisions), Arc::clone(&stop));
        std::thread::spawn(move || {
            let config = Config {
                cache: StoreSetting::Sqlite(cache),
                ..Config::default()
            };
            let engine = Engine::new(&config).expect("engine");
            let policy = PolicySettings {
                max_retry: 1,
                ..PolicySettings::default()
            };
            let mut watch = Watch::new(
                options(vec![log], policy),
                parts(
                    Some(engine),
                    Box::new(DecisionClock {
                        seen: decisions,
                        line: Vec::new(),
                    }),
                ),
            )
            .expect("watch");
            watch
                .run(&stop, &AtomicBool::new(false), |_| {})
                .expect("run");
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open");
    let mut written = Vec::with_capacity(LATENCY_SAMPLES);
    for n in 0..LATENCY_SAMPLES as u32 {
        let ip = std::net::Ipv4Addr::from(0x2d00_0000u32 + n * 7);
        let line = format!(
            "Nov 30 06:00:00 web1 sshd[{}]: Failed password for root from {ip} port 50022 ssh2\n",
            1000 + n
        );
        let at = Instant::now();
        file.write_all(line.as_bytes()).expect("append");
        written.push((ip.to_string(), at));
        std::thread::sleep(Duration::from_millis(3));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while decisions.lock().map(|d| d.len()).unwrap_or(0) < LATENCY_SAMPLES
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = thread.join();
    let decided: std::collections::HashMap<String, Instant> = decisions
        .lock()
        .map(|d| d.iter().cloned().collect())
        .unwrap_or_default();
    let mut micros: Vec<u128> = written
        .iter()
        .filter_map(|(ip, at)| decided.get(ip).map(|d| d.duration_since(*at).as_micros()))
        .collect();
    micros.sort_unstable();
    if micros.is_empty() {
        println!("latency: no decision seen");
        return;
    }
    let pct = |p: f64| micros[((micros.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "latency line→decision ({} of {LATENCY_SAMPLES} decided): p50 {} µs, p99 {} µs, max {} µs",
        micros.len(),
        pct(0.50),
        pct(0.99),
        micros[micros.len() - 1]
    );
}
