//! Throughput of the `repute scan` core (reading, pre-filtering, parsing, per-address
//! summary) on two inputs:
//!
//! - a small in-memory sample (`examples/auth.log` repeated to about 1 MB), one thread;
//! - the benchmark file of issue 2: `gen_authlog.py -n 1000000 --seed 1` (107 MB), with 1 and
//!   2 threads. It is generated once into `target/bench-data/` when missing, from
//!   `$REPUTE_GEN_AUTHLOG` or `../shared/tools/gen_authlog.py` (or `../../shared/…` from a
//!   worktree); without python3 or the generator those benches say so and are skipped.
//!
//! Run: `cargo bench --bench scan`. The whole-process figures (start-up, peak RSS) are
//! measured from outside with `/usr/bin/time -v target/release/repute scan …`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use divan::Bencher;
use divan::counter::{BytesCount, ItemsCount};
use repute::scan::{self, Input, Options, Summary};

fn main() {
    divan::main();
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/auth.log` repeated to about 1 MB, kept for the life of the process.
fn sample() -> &'static [u8] {
    static SAMPLE: OnceLock<Vec<u8>> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let one = std::fs::read(manifest_dir().join("examples/auth.log")).unwrap_or_default();
        let copies = (1 << 20) / one.len().max(1);
        one.repeat(copies.max(1))
    })
}

fn options(threads: usize) -> Options {
    Options {
        now: jiff::Timestamp::now(),
        threads,
        ..Options::default()
    }
}

#[divan::bench]
fn sample_in_memory(bencher: Bencher) {
    let data = sample();
    let lines = memchr::memchr_iter(b'\n', data).count();
    bencher
        .counter(BytesCount::new(data.len()))
        .counter(ItemsCount::new(lines))
        .bench(|| {
            let mut summary = Summary::default();
            let result = scan::summarize_stream(data, &options(1), &(), &mut summary);
            assert!(result.is_ok() && summary.totals.attacks > 0);
            summary
        });
}

/// The generated 1,000,000-line file, or `None` (said once) when it cannot be made.
fn generated_file() -> Option<&'static Path> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| {
        let target = manifest_dir().join("target/bench-data/auth-1m-seed1.log");
        if target.exists() {
            return Some(target);
        }
        let generator = generator()?;
        std::fs::create_dir_all(target.parent()?).ok()?;
        eprintln!(
            "generating {} with {} …",
            target.display(),
            generator.display()
        );
        let status = std::process::Command::new("python3")
            .arg(&generator)
            .args(["-n", "1000000", "--seed", "1", "-o"])
            .arg(&target)
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Some(target),
            other => {
                eprintln!("skipping the 1M-line benches: generator failed ({other:?})");
                let _ = std::fs::remove_file(&target);
                None
            }
        }
    })
    .as_deref()
}

fn generator() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("REPUTE_GEN_AUTHLOG").map(PathBuf::from),
        Some(manifest_dir().join("../shared/tools/gen_authlog.py")),
        Some(manifest_dir().join("../../shared/tools/gen_authlog.py")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.exists());
    if found.is_none() {
        eprintln!(
            "skipping the 1M-line benches: gen_authlog.py not found (set REPUTE_GEN_AUTHLOG)"
        );
    }
    found
}

#[divan::bench(args = [1, 2], sample_count = 5, sample_size = 1)]
fn generated_1m_lines(bencher: Bencher, threads: usize) {
    let Some(path) = generated_file() else {
        return;
    };
    let len = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
    let inputs = [Input::Path(path.to_path_buf())];
    bencher
        .counter(BytesCount::new(len))
        .counter(ItemsCount::new(1_000_000usize))
        .bench(|| {
            let (summary, errors) = scan::summarize(&inputs, &options(threads), &());
            assert!(errors.is_empty() && summary.totals.lines == 1_000_000);
            summary
        });
}
