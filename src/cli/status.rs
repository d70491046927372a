//! `repute status`: what `repute watch` is doing on this host, read from the shared store:
//! whether it runs (its process and when it last saved), every source and where it stands,
//! the bans running with their time left, its counters and the quota left.
//!
//! Exit codes: 0 shown, 2 the store cannot be read.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use repute::block::duration::format_duration;
use repute::block::state::State;
use repute::config::Config;
use repute::source::PositionStore;
use repute::watch::status::StatusStore;
use repute::watch::unix_now;
use serde::Serialize;

use super::Global;

/// A status saved longer ago than this means watch is not running (it saves every 5 s).
const STALE_AFTER: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `table` for people, `json` for one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Serialize)]
struct Ban {
    ip: std::net::IpAddr,
    remaining_secs: u64,
    reason: Option<String>,
}

#[derive(Serialize)]
struct Status {
    running: bool,
    /// Unix seconds of the last save by watch.
    updated: Option<i64>,
    watch: Option<repute::watch::status::Counters>,
    sources: Vec<repute::source::position::SavedSource>,
    bans: Vec<Ban>,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let config = Config::load(global.config.as_deref())?;
    let path = config.store_path();
    let now = unix_now();
    let sources = PositionStore::open(&path)?.all()?;
    let saved = StatusStore::open(&path)?.load()?;
    let bans = State::open(&path)?
        .all()?
        .into_iter()
        .filter(|r| r.until > now)
        .map(|r| Ban {
            ip: r.ip,
            remaining_secs: u64::try_from(r.until - now).unwrap_or(0),
            reason: r.reason,
        })
        .collect();
    let running = saved
        .as_ref()
        .is_some_and(|(c, at)| now - at <= STALE_AFTER && process_alive(c.pid));
    let status = Status {
        running,
        updated: saved.as_ref().map(|(_, at)| *at),
        watch: saved.map(|(c, _)| c),
        sources,
        bans,
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer(&mut out, &status)?;
            writeln!(out)?;
        }
        Format::Table => write_table(&mut out, &status, now).context("writing the status")?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn write_table(out: &mut impl Write, s: &Status, now: i64) -> std::io::Result<()> {
    match (&s.watch, s.updated) {
        (Some(c), Some(at)) => {
            writeln!(
                out,
                "watch: {} (pid {}, {}; last saved {} ago)",
                if s.running { "running" } else { "not running" },
                c.pid,
                if c.dry_run { "dry run" } else { "banning" },
                format_duration(Duration::from_secs(u64::try_from(now - at).unwrap_or(0)))
            )?;
            writeln!(
                out,
                "counters: {} lines, {} events, {} attacks, {} lookups, {} bans, {} unbans, {} refused, {} addresses tracked",
                c.lines, c.events, c.attacks, c.lookups, c.bans, c.unbans, c.refused, c.tracked
            )?;
            if let Some(q) = c.quota_remaining {
                writeln!(out, "quota: {q} lookups left today")?;
            }
        }
        _ => writeln!(out, "watch: never ran with this store")?,
    }
    writeln!(out)?;
    if s.sources.is_empty() {
        writeln!(out, "no source position saved")?;
    } else {
        writeln!(
            out,
            "{:40}  {:>12}  {:>10}  SAVED",
            "SOURCE", "OFFSET", "LINE"
        )?;
        for src in &s.sources {
            let offset = src.offset.map_or("-".into(), |o| o.to_string());
            let line = src.line.map_or("-".into(), |l| l.to_string());
            writeln!(
                out,
                "{:40}  {:>12}  {:>10}  {} ago",
                src.source,
                offset,
                line,
                format_duration(Duration::from_secs(
                    u64::try_from(now - src.updated).unwrap_or(0)
                ))
            )?;
        }
    }
    writeln!(out)?;
    if s.bans.is_empty() {
        writeln!(out, "no address is banned")?;
    } else {
        writeln!(out, "{:39}  {:>10}  REASON", "ADDRESS", "LEFT")?;
        for ban in &s.bans {
            writeln!(
                out,
                "{:39}  {:>10}  {}",
                ban.ip.to_string(),
                format_duration(Duration::from_secs(ban.remaining_secs)),
                ban.reason.as_deref().unwrap_or("-")
            )?;
        }
    }
    Ok(())
}
