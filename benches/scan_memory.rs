//! Peak memory of `repute scan` when an attacker chooses how many addresses we see.
//!
//! Generates (once, into `target/bench-data/`) sshd logs of 2,000,000 lines, one failed
//! password per line, each from a distinct IPv6 source, then runs the `repute` binary on
//! each as a child process and reads its peak resident set size from the child's rusage
//! (`wait4`, `ru_maxrss`: what `/usr/bin/time -v` calls "Maximum resident set size"):
//!
//! - `one-64`: 2 M addresses inside one /64 (what one host can send);
//! - `many-64`: 2 M addresses in 2 M distinct /64s of one /32 (what one provider can send),
//!   which the row cap (`--max-sources`) has to hold;
//! - both again with `--ipv6-prefix 128` (one row per address, so the cap does the work);
//! - the 1 M-line benchmark file of `benches/scan.rs`, when it is there, for scale.
//!
//! Run: `cargo bench --bench scan_memory` (figures in docs/benchmarks.md). `REPUTE_BIN`
//! measures another build of the binary (an older one, say) on the same files;
//! `REPUTE_MEMORY_THREADS` sets `--threads` (default: 1 and 4).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const SOURCES: u64 = 2_000_000;

fn main() {
    // `cargo bench` passes `--bench`; anything else (a filter) is ignored.
    let bin = std::env::var_os("REPUTE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_repute")));
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    if let Err(e) = std::fs::create_dir_all(&data) {
        eprintln!("cannot create {}: {e}", data.display());
        return;
    }
    let one_64 = generated(&data, "ipv6-2m-one-64.log", |i| {
        0x2001_0db8_0001_0002_u128 << 64 | u128::from(i)
    });
    let many_64 = generated(&data, "ipv6-2m-many-64.log", |i| {
        0x2001_0db8_u128 << 96 | u128::from(i) << 64 | 1
    });
    let threads: Vec<String> = match std::env::var("REPUTE_MEMORY_THREADS") {
        Ok(list) => list.split(',').map(String::from).collect(),
        Err(_) => vec!["1".into(), "4".into()],
    };
    println!("binary: {}", bin.display());
    println!(
        "{:<28} {:>7} {:>14} {:>9}  rows",
        "input", "threads", "peak RSS MiB", "wall s"
    );
    let mut cases: Vec<(String, PathBuf, Vec<&str>)> = Vec::new();
    for (name, file) in [("one-64", &one_64), ("many-64", &many_64)] {
        let Some(file) = file else { continue };
        cases.push((name.to_string(), file.clone(), vec![]));
        cases.push((
            format!("{name} --ipv6-prefix 128"),
            file.clone(),
            vec!["--ipv6-prefix", "128"],
        ));
    }
    let one_m = data.join("auth-1m-seed1.log");
    if one_m.exists() {
        cases.push(("auth-1m-seed1 (benches/scan)".into(), one_m, vec![]));
    }
    for (name, file, extra) in &cases {
        for t in &threads {
            let mut cmd = Command::new(&bin);
            cmd.arg("scan")
                .arg("--threads")
                .arg(t)
                .args(extra)
                .arg(file);
            match run(cmd) {
                Some((rss_kib, secs, rows)) => println!(
                    "{name:<28} {t:>7} {:>14.1} {secs:>9.2}  {rows}",
                    rss_kib as f64 / 1024.0
                ),
                None => println!("{name:<28} {t:>7} failed"),
            }
        }
    }
}

/// Writes `SOURCES` lines, line `i` from the address `addr(i)`, unless the file exists.
fn generated(dir: &Path, name: &str, addr: impl Fn(u64) -> u128) -> Option<PathBuf> {
    let path = dir.join(name);
    if path.exists() {
        return Some(path);
    }
    let partial = dir.join(format!("{name}.partial"));
    let write = || -> std::io::Result<()> {
        let mut out = BufWriter::new(std::fs::File::create(&partial)?);
        for i in 0..SOURCES {
            let ip = std::net::Ipv6Addr::from(addr(i));
            let (min, sec) = ((i / 60) % 60, i % 60);
            writeln!(
                out,
                "Mar  1 10:{min:02}:{sec:02} srv01 sshd[{pid}]: Failed password for invalid user u{user} from {ip} port {port} ssh2",
                pid = 1000 + i % 30_000,
                user = i % 5_000,
                port = 1024 + i % 60_000,
            )?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&partial, &path)
    };
    eprintln!("generating {} …", path.display());
    match write() {
        Ok(()) => Some(path),
        Err(e) => {
            eprintln!("cannot generate {}: {e}", path.display());
            let _ = std::fs::remove_file(&partial);
            None
        }
    }
}

/// Runs `cmd` (its output counted, not kept) and returns its peak RSS in KiB, its wall time
/// and how many table rows it printed.
fn run(mut cmd: Command) -> Option<(i64, f64, usize)> {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and `wait4` only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child, not yet waited for; both pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    let exit = std::process::ExitStatus::from_raw(status);
    // `repute scan` exits 0 (attacks found) or 1 (none); anything else is a failure.
    if pid <= 0 || !matches!(exit.code(), Some(0 | 1)) {
        return None;
    }
    // Header and totals lines are not rows.
    let rows = out.lines().count().saturating_sub(2);
    Some((usage.ru_maxrss, secs, rows))
}
