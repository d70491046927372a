//! `repute status`: what `repute watch` is doing on this host, read from the shared store:
//! whether it runs (its process and when it last saved), every source and where it stands,
//! the bans running with their time left, its counters and the quota left; then the fleet
//! (whether a shared Redis store is configured, whether it answers, how many shared ban
//! decisions are live in it) and reporting (whether it is on, reports sent today by every
//! process on the store, the report quota AbuseIPDB announced last), from the report ledger.
//!
//! Exit codes: 0 shown (an unreachable Redis is shown, not an error), 2 the local store
//! cannot be read.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use repute::block::duration::format_duration;
use repute::block::state::State;
use repute::config::{Config, StoreSetting};
use repute::decisions::{Decisions, RedisDecisions};
use repute::quota::QuotaState;
use repute::report::{ReportLedger, SqliteLedger};
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
    fleet: Fleet,
    reports: Reports,
}

/// The shared store of a fleet, if one is configured.
#[derive(Serialize)]
struct Fleet {
    /// The Redis store (its URL without any secret); `None`: this host decides alone.
    store: Option<String>,
    /// Whether it answered; `None` when there is none.
    reachable: Option<bool>,
    /// Live ban decisions in it (every host's).
    shared_bans: Option<usize>,
    /// Why it did not answer.
    error: Option<String>,
}

/// Reporting to AbuseIPDB, from the report ledger (SQLite, or the fleet's Redis).
#[derive(Serialize)]
struct Reports {
    /// `[report] enabled`: whether `watch` reports its new bans.
    enabled: bool,
    /// Reports sent today (UTC) by every process on the store (every host with Redis).
    sent_today: Option<u64>,
    /// The report quota as AbuseIPDB announced it with the last answer.
    quota: Option<ReportQuota>,
    /// Why the ledger could not be read.
    error: Option<String>,
}

#[derive(Serialize)]
struct ReportQuota {
    limit: Option<u64>,
    /// Reports left as of `updated` (before `reset_at`; after it the day starts over).
    remaining: Option<u64>,
    /// Unix seconds: when AbuseIPDB resets the count.
    reset_at: Option<i64>,
    /// Unix seconds: no report before this (the quota is spent).
    blocked_until: Option<i64>,
    /// Unix seconds: when this was learnt.
    updated: i64,
}

impl From<QuotaState> for ReportQuota {
    fn from(q: QuotaState) -> Self {
        ReportQuota {
            limit: q.limit,
            remaining: q.remaining,
            reset_at: q.reset_at,
            blocked_until: q.blocked_until,
            updated: q.updated_at,
        }
    }
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
        .map(|r| r.decision)
        .filter(|d| d.until > now)
        .map(|d| Ban {
            ip: d.ip,
            remaining_secs: u64::try_from(d.until - now).unwrap_or(0),
            reason: d.reason,
        })
        .collect();
    let running = saved
        .as_ref()
        .is_some_and(|(c, at)| now - at <= STALE_AFTER && process_alive(c.pid));
    let fleet = fleet_status(&config);
    let reports = report_status(&config, &path, &fleet, now);
    let status = Status {
        running,
        updated: saved.as_ref().map(|(_, at)| *at),
        watch: saved.map(|(c, _)| c),
        sources,
        bans,
        fleet,
        reports,
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

/// The fleet's store, asked once for its live decisions (bounded by the store's timeout).
fn fleet_status(config: &Config) -> Fleet {
    let StoreSetting::Redis(target) = &config.cache else {
        return Fleet {
            store: None,
            reachable: None,
            shared_bans: None,
            error: None,
        };
    };
    let store = Some(target.to_string());
    match RedisDecisions::new(target.clone()).current() {
        Ok(bans) => Fleet {
            store,
            reachable: Some(true),
            shared_bans: Some(bans.len()),
            error: None,
        },
        Err(e) => Fleet {
            store,
            reachable: Some(false),
            shared_bans: None,
            error: Some(e.to_string()),
        },
    }
}

/// The report ledger's tally of today and the report quota. An unreachable Redis is not
/// asked again (each ask would cost its timeout).
fn report_status(config: &Config, path: &std::path::Path, fleet: &Fleet, now: i64) -> Reports {
    let mut reports = Reports {
        enabled: config.report.enabled,
        sent_today: None,
        quota: None,
        error: None,
    };
    let ledger: Box<dyn ReportLedger> = match &config.cache {
        StoreSetting::Redis(_) if fleet.reachable != Some(true) => {
            reports.error = Some("the fleet's store did not answer".into());
            return reports;
        }
        StoreSetting::Redis(target) => Box::new(repute::fleet::RedisLedger::new(target.clone())),
        _ => match SqliteLedger::open(path) {
            Ok(ledger) => Box::new(ledger),
            Err(e) => {
                reports.error = Some(e.to_string());
                return reports;
            }
        },
    };
    let read = ledger
        .sent_on_day_of(now)
        .and_then(|sent| Ok((sent, ledger.quota()?)));
    match read {
        Ok((sent, quota)) => {
            reports.sent_today = Some(sent);
            reports.quota = quota.map(ReportQuota::from);
        }
        Err(e) => reports.error = Some(e.to_string()),
    }
    reports
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
    writeln!(out)?;
    write_fleet(out, &s.fleet)?;
    write_reports(out, &s.reports, now)
}

fn write_fleet(out: &mut impl Write, fleet: &Fleet) -> std::io::Result<()> {
    let Some(store) = &fleet.store else {
        return writeln!(
            out,
            "fleet: none (store is this host's own; bans are not shared)"
        );
    };
    match (fleet.shared_bans, &fleet.error) {
        (Some(n), _) => writeln!(
            out,
            "fleet: {store} reachable, {n} shared ban decision{} active",
            if n == 1 { "" } else { "s" }
        ),
        (None, error) => writeln!(
            out,
            "fleet: {store} NOT reachable: {}",
            error.as_deref().unwrap_or("no answer")
        ),
    }
}

fn write_reports(out: &mut impl Write, reports: &Reports, now: i64) -> std::io::Result<()> {
    let on = if reports.enabled {
        "on"
    } else {
        "off ([report] enabled = false)"
    };
    if let Some(error) = &reports.error {
        return writeln!(out, "reports: {on}; ledger not readable: {error}");
    }
    let sent = reports.sent_today.unwrap_or(0);
    write!(out, "reports: {on}; {sent} sent today (UTC)")?;
    let ago = |at: i64| format_duration(Duration::from_secs(u64::try_from(now - at).unwrap_or(0)));
    match &reports.quota {
        Some(q) if q.blocked_until.is_some_and(|b| b > now) => {
            let until = q.blocked_until.unwrap_or(now);
            write!(
                out,
                "; report quota spent, next report in {}",
                format_duration(Duration::from_secs(u64::try_from(until - now).unwrap_or(0)))
            )?;
        }
        Some(q) if q.reset_at.is_some_and(|r| r <= now) => {
            write!(out, "; report quota reset since it was last seen")?;
            if let Some(limit) = q.limit {
                write!(out, " ({limit} a day)")?;
            }
        }
        Some(q) => match (q.remaining, q.limit) {
            (Some(left), Some(limit)) => write!(
                out,
                "; report quota: {left} of {limit} left (as of {} ago)",
                ago(q.updated)
            )?,
            (Some(left), None) => write!(
                out,
                "; report quota: {left} left (as of {} ago)",
                ago(q.updated)
            )?,
            _ => write!(out, "; report quota not announced")?,
        },
        None => write!(out, "; report quota not known yet (no report answered)")?,
    }
    writeln!(out)
}
