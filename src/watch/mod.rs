//! The daemon behind `repute watch`: sources → sshd parser → policy → firewall, with
//! positions, status and metrics.
//!
//! One thread runs the loop ([`Watch::run`]): it polls every followed file, drains the
//! journal reader's bounded channel, parses each line into an attempt (one parser per
//! source, so that connections of different sources never mix), asks the [`policy`] about
//! each attack, looks an address up through the [`Engine`] at its first failure, and bans
//! through the [`Blocker`] (with the allowlist and the block safety checks). After each
//! round (at most once a second, and at a clean stop) it saves where every source stands, so
//! a restart neither skips nor re-reads a line (a crash may re-read up to the last second's
//! lines: positions are saved after the lines are decided).
//!
//! Lookups are synchronous, through the engine's circuit breaker (the one every command
//! shares): after [`crate::engine::GIVE_UP_AFTER`] provider failures in a row (down, key
//! refused) only the cache is asked until [`crate::engine::RETRY_AFTER`] has passed, then one
//! lookup tries again, so a flood during an outage is counted at full speed and lookups
//! resume when the provider is back. Whether an attack bans is the decision step's
//! ([`crate::policy::decide`], called by [`Policy::observe`] on the address's count and
//! remembered score); what a ban reports is too (see [`reports`]). `--dry-run` opens no
//! firewall, saves no position and says what it would do.
//!
//! With a shared store (Redis) [`fleet`] records this host's bans and follows the others',
//! which `Core::apply_fleet` enforces each round; with `[report] enabled` [`reports`] sends
//! each new ban to AbuseIPDB on its own thread. Neither runs in a dry run.
//!
//! [`policy`]: crate::policy

pub mod ban_history;
pub mod fleet;
pub mod metrics;
pub mod reports;
pub mod settings;
pub mod status;

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::addr;
use crate::block::{BlockError, Blocker, Request, SafetyPolicy};
use crate::decisions::{self, Change, Decisions, Update};
use crate::engine::Engine;
use crate::policy::{Ban, Policy, PolicySettings, Unban};
use crate::source::journal::Parsed;
use crate::source::{FileFollower, JournalOptions, JournalSource, PositionStore, StartAt};
use crate::sshd::{AttemptRef, Parser};
use crate::{Kind, Outcome};

use ban_history::BanHistory;
use fleet::Fleet;
use metrics::Metrics;
use reports::Reports;
use status::{Counters, StatusStore};

/// A parser dates year-less syslog stamps relative to its creation: renewed this often.
const PARSER_RENEWAL: Duration = Duration::from_secs(3600);
/// Positions are saved at most this often while lines flow (and always at a clean stop):
/// a steady trickle would otherwise cost a store write per line.
const POSITIONS_EVERY: Duration = Duration::from_secs(1);
/// How often the status row is saved.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Output is handed to stdout at the end of each round, or when this much is waiting.
const OUT_CHUNK: usize = 64 * 1024;
/// The longest idle wait when following the journal.
const JOURNAL_WAIT: Duration = Duration::from_millis(20);
/// Journal entries handled per round, so files get their turn.
const JOURNAL_BATCH: usize = 20_000;

/// How watch writes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Decisions, one line each, for people.
    Text,
    /// Every event and every decision as one JSON object per line.
    Jsonl,
}

/// Where and how to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub files: Vec<PathBuf>,
    /// Follow the journal (with these options).
    pub journal: Option<JournalOptions>,
    pub dry_run: bool,
    pub format: OutputFormat,
    pub policy: PolicySettings,
    /// Pause between rounds that read nothing.
    pub poll_interval: Duration,
    /// Where a file with no saved position starts.
    pub start_at: StartAt,
    pub max_line: usize,
}

/// Why watch stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
    #[error(transparent)]
    Positions(#[from] crate::source::position::PositionError),
    #[error(transparent)]
    Status(#[from] status::StatusError),
    #[error(transparent)]
    BanHistory(#[from] ban_history::BanHistoryError),
    #[error("journalctl: {0}")]
    Journal(#[source] io::Error),
}

/// What watch needs from the rest of repute; built by the command from the configuration.
pub struct Parts {
    /// `None`: no reputation lookups.
    pub engine: Option<Engine>,
    /// `None` in a dry run.
    pub blocker: Option<Blocker>,
    pub safety: SafetyPolicy,
    /// The shared store, for positions and status (`None`: nothing saved, as in a dry run).
    pub store: Option<PathBuf>,
    pub metrics: Arc<Metrics>,
    pub out: Box<dyn Write + Send>,
    /// The fleet's shared decisions (Redis): own bans recorded there, the others' enforced
    /// here. `None`: this host decides alone (and always in a dry run).
    pub decisions: Option<Arc<dyn Decisions>>,
    /// Reports new bans to AbuseIPDB (`[report] enabled`); `None`: no reports (and always
    /// in a dry run).
    pub reporter: Option<crate::report::Reporter>,
}

struct FileSource {
    /// `file:/var/log/auth.log`: the source's name in positions, metrics and events.
    name: String,
    path: String,
    follower: FileFollower,
    parser: Parser,
    parser_born: Instant,
    saved: Option<crate::source::Position>,
    failing: bool,
}

struct JournalState {
    source: JournalSource,
    parser: Parser,
    parser_born: Instant,
    entries: u64,
    cursor: Option<String>,
    saved: Option<String>,
}

/// Everything but the sources, so a source's callback can borrow it.
struct Core {
    dry_run: bool,
    format: OutputFormat,
    policy: Policy,
    engine: Option<Engine>,
    blocker: Option<Blocker>,
    safety: SafetyPolicy,
    metrics: Arc<Metrics>,
    out: Box<dyn Write + Send>,
    /// Output waiting for the end of the round (or [`OUT_CHUNK`]): serde_json through a
    /// `dyn Write` makes a call per token, which cost more than reading the line.
    pending: Vec<u8>,
    counters: Counters,
    /// The events counter of each (kind, outcome) met so far: the family's lookup allocates
    /// its labels, which cost more than the parsing at full speed.
    event_counters:
        std::collections::HashMap<(Kind, Outcome), prometheus_client::metrics::counter::Counter>,
    fleet: Option<Fleet>,
    reports: Option<Reports>,
    /// Every ban counted in the store, so ban times keep growing across a restart (`None` in
    /// a dry run).
    ban_history: Option<BanHistory>,
}

/// A running watch; see the module documentation.
pub struct Watch {
    files: Vec<FileSource>,
    journal: Option<JournalState>,
    core: Core,
    positions: Option<PositionStore>,
    status: Option<StatusStore>,
    status_saved: Option<Instant>,
    positions_saved: Option<Instant>,
    poll_interval: Duration,
    wakeup: crate::source::wake::Wakeup,
}

/// Whole Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map_or_else(|_| unix.to_string(), |t| t.to_string())
}

impl Watch {
    /// Opens the store, resumes every source from its saved position, and puts running bans
    /// back (into the kernel when missing, and into the policy so they are not decided again).
    pub fn new(options: WatchOptions, parts: Parts) -> Result<Watch, WatchError> {
        let save = !options.dry_run;
        let positions = match (&parts.store, save) {
            (Some(path), true) => Some(PositionStore::open(path)?),
            _ => None,
        };
        let status = match (&parts.store, save) {
            (Some(path), true) => Some(StatusStore::open(path)?),
            _ => None,
        };
        let ban_history = match (&parts.store, save) {
            (Some(path), true) => Some(BanHistory::open(path, options.policy.max_tracked)?),
            _ => None,
        };
        let mut files = Vec::new();
        for path in &options.files {
            let name = format!("file:{}", path.display());
            let saved = match &positions {
                Some(p) => p.file(&name)?,
                None => None,
            };
            files.push(FileSource {
                path: path.display().to_string(),
                follower: FileFollower::new(path, saved, options.start_at, options.max_line),
                name,
                parser: Parser::default(),
                parser_born: Instant::now(),
                saved,
                failing: false,
            });
        }
        let journal = match &options.journal {
            Some(journal_options) => {
                let cursor = match &positions {
                    Some(p) => p.cursor("journal")?,
                    None => None,
                };
                let mut journal_options = journal_options.clone();
                journal_options.max_line = options.max_line;
                Some(JournalState {
                    source: JournalSource::start(journal_options, cursor.clone())
                        .map_err(WatchError::Journal)?,
                    parser: Parser::default(),
                    parser_born: Instant::now(),
                    entries: 0,
                    saved: cursor.clone(),
                    cursor,
                })
            }
            None => None,
        };
        let counters = Counters {
            pid: std::process::id(),
            started: unix_now(),
            dry_run: options.dry_run,
            ..Counters::default()
        };
        let mut core = Core {
            dry_run: options.dry_run,
            format: options.format,
            policy: Policy::new(options.policy),
            engine: parts.engine,
            blocker: parts.blocker,
            safety: parts.safety,
            metrics: parts.metrics,
            out: parts.out,
            pending: Vec::new(),
            counters,
            event_counters: std::collections::HashMap::new(),
            fleet: None,
            reports: match parts.reporter {
                Some(reporter) if !options.dry_run => Some(Reports::start(reporter)),
                _ => None,
            },
            ban_history,
        };
        core.restore_ban_counts();
        core.restore_bans();
        if save && let Some(store) = parts.decisions {
            core.fleet = Some(Fleet::start(store, Arc::clone(&core.metrics)));
        }
        Ok(Watch {
            files,
            journal,
            core,
            positions,
            status,
            status_saved: None,
            positions_saved: None,
            poll_interval: options.poll_interval,
            wakeup: crate::source::wake::Wakeup::for_files(&options.files),
        })
    }

    /// New settings (SIGHUP): policy, safety checks and blocker; what is remembered stays.
    pub fn reload(
        &mut self,
        policy: PolicySettings,
        safety: SafetyPolicy,
        blocker: Option<Blocker>,
    ) {
        self.core.policy.set_settings(policy);
        self.core.safety = safety;
        if !self.core.dry_run {
            self.core.blocker = blocker;
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.core.counters
    }

    /// One round: every source read as far as it goes, every attempt decided, ended bans
    /// announced, positions saved. Returns how much was read (0: idle).
    pub fn step(&mut self) -> Result<usize, WatchError> {
        let now = unix_now();
        let read_at = Instant::now();
        let mut read = 0;
        for src in &mut self.files {
            if src.parser_born.elapsed() >= PARSER_RENEWAL {
                src.parser = Parser::default();
                src.parser_born = Instant::now();
            }
            let core = &mut self.core;
            let parser = &mut src.parser;
            let (name, path) = (src.name.as_str(), src.path.as_str());
            let mut lines = 0u64;
            let mut failed = None;
            let polled = src.follower.poll(&mut |line| {
                lines += 1;
                if let Some(ev) = parser.parse_line_ref(line.text)
                    && let Err(e) = core.attempt(name, path, line.number, None, &ev, read_at, now)
                {
                    failed.get_or_insert(e);
                }
            });
            if let Some(e) = failed {
                return Err(WatchError::Output(e));
            }
            match polled {
                Ok(n) => {
                    read += n;
                    src.failing = false;
                }
                // An unreadable file (permissions, a disk error) is said once, and retried.
                Err(e) if !src.failing => {
                    src.failing = true;
                    tracing::warn!(path = %src.path, error = %e, "cannot read; retrying");
                }
                Err(_) => {}
            }
            if lines > 0 {
                core.counters.lines += lines;
                core.metrics
                    .lines
                    .get_or_create(&vec![("source", src.name.clone())])
                    .inc_by(lines);
            }
        }
        if let Some(journal) = self.journal.as_mut() {
            read += journal_round(journal, &mut self.core, read_at, now)?;
        }
        self.core.apply_fleet(now).map_err(WatchError::Output)?;
        self.core.write_reports(false).map_err(WatchError::Output)?;
        self.core.expire(now).map_err(WatchError::Output)?;
        self.core.flush().map_err(WatchError::Output)?;
        if self
            .positions_saved
            .is_none_or(|t| t.elapsed() >= POSITIONS_EVERY)
        {
            self.save_positions(now)?;
        }
        if self
            .status_saved
            .is_none_or(|t| t.elapsed() >= STATUS_EVERY)
        {
            self.save_status(now)?;
        }
        Ok(read)
    }

    /// Rounds until `stop` is set; `reload` set means SIGHUP arrived, and `on_reload` is
    /// called. Tells systemd when ready and pings its watchdog.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        reload: &AtomicBool,
        mut on_reload: impl FnMut(&mut Watch),
    ) -> Result<(), WatchError> {
        use sd_notify::NotifyState;
        let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
        let mut pinged = Instant::now();
        let _ = sd_notify::notify(&[NotifyState::Ready]);
        let result = loop {
            if stop.load(Ordering::Relaxed) {
                break Ok(());
            }
            if reload.swap(false, Ordering::Relaxed) {
                let _ = sd_notify::notify(&[NotifyState::Reloading]);
                on_reload(self);
                let _ = sd_notify::notify(&[NotifyState::Ready]);
            }
            let read = match self.step() {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            if let Some(every) = watchdog
                && pinged.elapsed() >= every
            {
                let _ = sd_notify::notify(&[NotifyState::Watchdog]);
                pinged = Instant::now();
            }
            if read == 0 {
                self.idle(stop, reload);
            }
        };
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
        // Reports already handed over are finished and said.
        self.core
            .write_reports(true)
            .and_then(|()| self.core.flush())
            .map_err(WatchError::Output)?;
        let now = unix_now();
        // Whatever stopped the loop, what was decided is saved.
        self.save_positions(now)?;
        self.save_status(now)?;
        result
    }

    /// Waits for a followed file to change, a signal, or the poll interval; with the
    /// journal, no longer than [`JOURNAL_WAIT`] (its reader thread cannot wake this one).
    fn idle(&self, stop: &AtomicBool, reload: &AtomicBool) {
        let mut wait = self.poll_interval;
        if self.journal.is_some() {
            wait = wait.min(JOURNAL_WAIT);
        }
        // Signal handlers interrupt the wait; the flags are checked in slices as well, in case
        // a signal lands between the check and the wait.
        let until = Instant::now() + wait;
        while !stop.load(Ordering::Relaxed) && !reload.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            if self.files.is_empty() {
                std::thread::sleep(left.min(Duration::from_millis(50)));
            } else {
                self.wakeup.wait(left.min(Duration::from_millis(200)));
                return;
            }
        }
    }

    fn save_positions(&mut self, now: i64) -> Result<(), WatchError> {
        self.positions_saved = Some(Instant::now());
        let Some(store) = &self.positions else {
            return Ok(());
        };
        for src in &mut self.files {
            let position = src.follower.position();
            if position.is_some() && position != src.saved {
                if let Some(p) = &position {
                    store.save_file(&src.name, p, now)?;
                }
                src.saved = position;
            }
        }
        if let Some(journal) = self.journal.as_mut()
            && journal.cursor != journal.saved
            && let Some(cursor) = &journal.cursor
        {
            store.save_cursor("journal", cursor, now)?;
            journal.saved = journal.cursor.clone();
        }
        Ok(())
    }

    fn save_status(&mut self, now: i64) -> Result<(), WatchError> {
        self.status_saved = Some(Instant::now());
        let core = &mut self.core;
        core.counters.tracked = core.policy.tracked() as u64;
        core.counters.evicted = core.policy.evicted;
        if let Some(engine) = &core.engine {
            core.counters.quota_remaining = engine.quota_state().and_then(|q| q.remaining);
            if let Some(left) = core.counters.quota_remaining {
                core.metrics
                    .quota_remaining
                    .set(i64::try_from(left).unwrap_or(i64::MAX));
            }
        }
        if let Some(status) = &self.status {
            status.save(&core.counters, now)?;
        }
        Ok(())
    }
}

fn journal_round(
    journal: &mut JournalState,
    core: &mut Core,
    read_at: Instant,
    now: i64,
) -> Result<usize, WatchError> {
    if journal.parser_born.elapsed() >= PARSER_RENEWAL {
        journal.parser = Parser::default();
        journal.parser_born = Instant::now();
    }
    let batch = journal.source.drain(JOURNAL_BATCH);
    let count = batch.len();
    for parsed in batch {
        match parsed {
            Parsed::Sshd(entry) => {
                journal.entries += 1;
                core.counters.lines += 1;
                if let Some(ev) = journal.parser.parse_parts(
                    entry.time,
                    entry.host.as_deref(),
                    entry.pid,
                    &entry.message,
                ) {
                    core.attempt(
                        "journal",
                        "journal",
                        journal.entries,
                        Some(&entry.cursor),
                        &ev,
                        read_at,
                        now,
                    )
                    .map_err(WatchError::Output)?;
                }
                journal.cursor = Some(entry.cursor);
            }
            Parsed::Other { cursor: Some(c) } => journal.cursor = Some(c),
            Parsed::Other { cursor: None } | Parsed::Invalid => {}
        }
    }
    if count > 0 {
        core.metrics
            .lines
            .get_or_create(&vec![("source", "journal".to_string())])
            .inc_by(count as u64);
        if let Some(c) = &journal.cursor {
            journal.source.set_cursor(c);
        }
    }
    Ok(count)
}

/// A decision, as `--format jsonl` writes it.
#[derive(Serialize)]
struct DecisionRecord<'a> {
    decision: &'static str,
    address: IpAddr,
    /// What was counted: the address (`/32`, `/128`) or its IPv6 network.
    network: String,
    /// Seconds (bans only).
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<crate::policy::Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    /// The host that decided a ban enforced from the fleet's shared decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    dry_run: bool,
    /// The firewall holds it now (false in a dry run, or when refused or failed).
    applied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    fn attempt(
        &mut self,
        source: &str,
        file: &str,
        line: u64,
        cursor: Option<&str>,
        ev: &AttemptRef<'_>,
        read_at: Instant,
        now: i64,
    ) -> io::Result<()> {
        self.counters.events += 1;
        let metrics = &self.metrics;
        self.event_counters
            .entry((ev.kind, ev.outcome))
            .or_insert_with(|| {
                metrics
                    .events
                    .get_or_create(&vec![
                        ("kind", ev.kind.as_str().to_string()),
                        ("outcome", ev.outcome.as_str().to_string()),
                    ])
                    .clone()
            })
            .inc();
        let srcip = ev.srcip.map(addr::canonical);
        let public = srcip.is_some_and(addr::is_public);
        if self.format == OutputFormat::Jsonl {
            let with_cursor = [("source", source), ("cursor", cursor.unwrap_or_default())];
            let members = if cursor.is_some() {
                &with_cursor[..]
            } else {
                &with_cursor[..1]
            };
            crate::scan::jsonl::write_event(&mut self.pending, file, line, ev, members);
            self.write_when_full()?;
        }
        if let (Some(reports), Some(ip), true) = (self.reports.as_mut(), srcip, public) {
            reports.observe(ip, ev);
        }
        let Some(ip) = srcip.filter(|_| public && ev.outcome.is_attack()) else {
            return Ok(());
        };
        self.counters.attacks += 1;
        if self.policy.is_banned(ip, now) {
            return Ok(());
        }
        // Looked up at its first failure, not at a probe: scans are most of the traffic and
        // would spend the daily quota on addresses the count bans anyway.
        let first_failure = ev.outcome == Outcome::Failure && self.policy.wants_lookup(ip);
        let (score, looked_up) = if self.engine.is_some() && first_failure {
            (self.lookup(ip), true)
        } else {
            (None, false)
        };
        let ban = self
            .policy
            .observe(ip, ev.kind, ev.outcome, ev.attempts, score, looked_up, now);
        self.metrics.tracked.set(self.policy.tracked() as i64);
        if let Some(ban) = ban {
            self.metrics
                .decision_latency
                .observe(read_at.elapsed().as_secs_f64());
            self.ban(&ban, source, (ev.kind, ev.outcome))?;
        }
        Ok(())
    }

    /// The score of `ip`, through the engine (whose breaker rests a failing provider: then
    /// only the cache answers, until its retry).
    fn lookup(&mut self, ip: IpAddr) -> Option<u8> {
        let lookup = self.engine.as_ref()?.lookup(ip);
        self.counters.lookups += 1;
        self.metrics
            .lookups
            .get_or_create(&vec![("source", lookup.source.as_str().to_string())])
            .inc();
        lookup.score()
    }

    /// Applies `ban`, decided on an attack of `trigger`'s kind and outcome.
    fn ban(&mut self, ban: &Ban, source: &str, trigger: (Kind, Outcome)) -> io::Result<()> {
        if let Some(history) = self.ban_history.as_mut() {
            let bans = ban.evidence.bans_before.saturating_add(1);
            if let Err(e) = history.record(ban.network, bans, unix_now()) {
                // The ban itself goes on; only its successor may be shorter after a restart.
                tracing::warn!(error = %e, "cannot save the ban count");
            }
        }
        for &address in &ban.addresses {
            let mut record = DecisionRecord {
                decision: "ban",
                address,
                network: ban.network.to_string(),
                duration: Some(ban.duration.as_secs()),
                until: Some(rfc3339(ban.until)),
                reason: &ban.reason,
                evidence: Some(ban.evidence),
                source: Some(source),
                origin: None,
                dry_run: self.dry_run,
                applied: false,
                refused: None,
                error: None,
            };
            if let Err(refusal) = self.safety.check(address) {
                record.refused = Some(refusal.to_string());
            } else if let Some(blocker) = &self.blocker {
                let request = Request {
                    ip: address,
                    duration: ban.duration,
                    reason: Some(ban.reason.clone()),
                    force: false,
                };
                match blocker.add(&request) {
                    Ok(_) => {
                        record.applied = true;
                        if let Some(reports) = self.reports.as_mut() {
                            reports.report(address, trigger.0, trigger.1);
                        }
                        if let Some(fleet) = &self.fleet {
                            fleet.share(decisions::Ban {
                                ip: address,
                                until_ms: ban.until.saturating_mul(1000),
                                reason: ban.reason.clone(),
                                origin: fleet.origin.clone(),
                                decided_at_ms: now_ms(),
                            });
                        }
                    }
                    Err(BlockError::Refused { reason, .. }) => {
                        record.refused = Some(reason.to_string());
                    }
                    Err(e) => {
                        tracing::error!(%address, error = %e, "ban failed");
                        record.error = Some(e.to_string());
                    }
                }
            }
            if record.refused.is_some() {
                self.counters.refused += 1;
                self.metrics.refused.inc();
            } else {
                self.counters.bans += 1;
                self.metrics.bans.inc();
            }
            self.write_decision(&record)?;
        }
        self.metrics
            .bans_active
            .set(self.policy.active_bans(unix_now()).len() as i64);
        Ok(())
    }

    /// Enforces what the fleet's follower read since the last round: bans decided elsewhere
    /// (or this host's own, echoed back: already enforced, skipped), revocations, and after
    /// a snapshot (start, reconnect) the removal of fleet bans the store no longer holds.
    fn apply_fleet(&mut self, now: i64) -> io::Result<()> {
        let Some(updates) = self.fleet.as_ref().map(Fleet::updates) else {
            return Ok(());
        };
        for update in updates {
            match update {
                Update::Snapshot(bans) => {
                    let live: std::collections::HashSet<IpAddr> =
                        bans.iter().map(|b| addr::canonical(b.ip)).collect();
                    for ban in &bans {
                        self.enforce_fleet_ban(ban, now)?;
                    }
                    let gone: Vec<IpAddr> = self
                        .fleet
                        .as_ref()
                        .map(|f| f.remote.difference(&live).copied().collect())
                        .unwrap_or_default();
                    for ip in gone {
                        self.lift_fleet_ban(ip, "no longer in the fleet's decisions", None, now)?;
                    }
                }
                Update::Changes(changes) => {
                    for change in changes {
                        match change {
                            Change::Ban(ban) => self.enforce_fleet_ban(&ban, now)?,
                            Change::Unban { ip, origin, .. } => self.lift_fleet_ban(
                                addr::canonical(ip),
                                "revoked in the fleet",
                                Some(&origin),
                                now,
                            )?,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Puts one shared decision into the local firewall with its time left, so that it
    /// ends here when it ends everywhere; remembered by the policy as a restored ban (never
    /// decided or reported again here).
    fn enforce_fleet_ban(&mut self, ban: &decisions::Ban, now: i64) -> io::Result<()> {
        let ip = addr::canonical(ban.ip);
        // Whole seconds, rounded up: the kernel's timeout never ends before the decision.
        let until = ban.until_ms.saturating_add(999).div_euclid(1000);
        if until <= now
            || self
                .policy
                .banned_until(ip, now)
                .is_some_and(|u| u >= until)
        {
            return Ok(());
        }
        let duration = Duration::from_secs(u64::try_from(until - now).unwrap_or(1));
        let reason = format!("repute watch: fleet ban by {}: {}", ban.origin, ban.reason);
        let mut record = DecisionRecord {
            decision: "ban",
            address: ip,
            network: ipnet::IpNet::from(ip).to_string(),
            duration: Some(duration.as_secs()),
            until: Some(rfc3339(until)),
            reason: &reason,
            evidence: None,
            source: Some("fleet"),
            origin: Some(&ban.origin),
            dry_run: self.dry_run,
            applied: false,
            refused: None,
            error: None,
        };
        if let Err(refusal) = self.safety.check(ip) {
            record.refused = Some(refusal.to_string());
        } else if let Some(blocker) = &self.blocker {
            let request = Request {
                ip,
                duration,
                reason: Some(reason.clone()),
                force: false,
            };
            match blocker.add(&request) {
                Ok(_) => record.applied = true,
                Err(BlockError::Refused { reason, .. }) => {
                    record.refused = Some(reason.to_string());
                }
                Err(e) => {
                    tracing::error!(%ip, error = %e, "fleet ban failed");
                    record.error = Some(e.to_string());
                }
            }
        }
        if record.refused.is_some() {
            self.counters.refused += 1;
            self.metrics.refused.inc();
        } else {
            self.policy.restore_ban(ip, until);
            self.metrics.fleet_bans.inc();
            if let Some(fleet) = self.fleet.as_mut() {
                fleet.remote.insert(ip);
            }
        }
        self.write_decision(&record)?;
        self.metrics
            .bans_active
            .set(self.policy.active_bans(now).len() as i64);
        Ok(())
    }

    /// Ends a ban here because the fleet ended it (`repute block del` on any host).
    fn lift_fleet_ban(
        &mut self,
        ip: IpAddr,
        why: &str,
        origin: Option<&str>,
        now: i64,
    ) -> io::Result<()> {
        if let Some(fleet) = self.fleet.as_mut() {
            fleet.remote.remove(&ip);
        }
        if !self.policy.end_ban(ip, now) {
            return Ok(());
        }
        let mut record = DecisionRecord {
            decision: "unban",
            address: ip,
            network: ipnet::IpNet::from(ip).to_string(),
            duration: None,
            until: None,
            reason: why,
            evidence: None,
            source: Some("fleet"),
            origin,
            dry_run: self.dry_run,
            applied: false,
            refused: None,
            error: None,
        };
        if let Some(blocker) = &self.blocker {
            match blocker.del(ip) {
                Ok(_) => record.applied = true,
                Err(e) => {
                    tracing::error!(%ip, error = %e, "lifting a fleet ban failed");
                    record.error = Some(e.to_string());
                }
            }
        }
        self.counters.unbans += 1;
        self.metrics.unbans.inc();
        self.write_decision(&record)?;
        self.metrics
            .bans_active
            .set(self.policy.active_bans(now).len() as i64);
        Ok(())
    }

    /// Says what became of the reports finished since the last round (`all`: waits for
    /// those still under way, at a stop).
    fn write_reports(&mut self, all: bool) -> io::Result<()> {
        let Some(reports) = self.reports.as_mut() else {
            return Ok(());
        };
        let finished = if all {
            reports.finish()
        } else {
            reports.finished()
        };
        for done in finished {
            let result = if done.reported {
                "reported"
            } else if done.error.is_some() {
                "failed"
            } else {
                "not_reported"
            };
            self.metrics
                .reports
                .get_or_create(&vec![("result", result.to_string())])
                .inc();
            match self.format {
                OutputFormat::Jsonl => {
                    #[derive(Serialize)]
                    struct ReportRecord<'a> {
                        decision: &'static str,
                        #[serde(flatten)]
                        done: &'a reports::Done,
                        dry_run: bool,
                    }
                    let record = ReportRecord {
                        decision: "report",
                        done: &done,
                        dry_run: false,
                    };
                    serde_json::to_writer(&mut self.pending, &record)?;
                    self.pending.push(b'\n');
                }
                OutputFormat::Text => {
                    let categories: Vec<String> =
                        done.categories.iter().map(ToString::to_string).collect();
                    let why = done.not_reported.map(str::to_string).or(done.error.clone());
                    match why {
                        None => writeln!(
                            self.pending,
                            "report {} ({})",
                            done.address,
                            categories.join(",")
                        )?,
                        Some(why) => {
                            writeln!(self.pending, "report {}: not sent, {why}", done.address)?
                        }
                    }
                }
            }
        }
        self.write_when_full()
    }

    /// Announces the bans whose time is over (the kernel drops the entries by itself).
    fn expire(&mut self, now: i64) -> io::Result<()> {
        let ended: Vec<Unban> = self.policy.expired(now);
        if ended.is_empty() {
            return Ok(());
        }
        for unban in &ended {
            for &address in &unban.addresses {
                if let Some(fleet) = self.fleet.as_mut() {
                    fleet.remote.remove(&address);
                }
                self.counters.unbans += 1;
                self.metrics.unbans.inc();
                let record = DecisionRecord {
                    decision: "unban",
                    address,
                    network: unban.network.to_string(),
                    duration: None,
                    until: None,
                    reason: "ban time over",
                    evidence: None,
                    source: None,
                    origin: None,
                    dry_run: self.dry_run,
                    applied: false,
                    refused: None,
                    error: None,
                };
                self.write_decision(&record)?;
            }
        }
        self.metrics
            .bans_active
            .set(self.policy.active_bans(now).len() as i64);
        Ok(())
    }

    fn write_decision(&mut self, record: &DecisionRecord<'_>) -> io::Result<()> {
        match self.format {
            OutputFormat::Jsonl => {
                serde_json::to_writer(&mut self.pending, record)?;
                self.pending.push(b'\n');
            }
            OutputFormat::Text => {
                let mut line = match record.duration {
                    Some(secs) => format!(
                        "ban {} for {} ({})",
                        record.address,
                        crate::block::duration::format_duration(Duration::from_secs(secs)),
                        record.reason
                    ),
                    None => format!("unban {} ({})", record.address, record.reason),
                };
                if let Some(refused) = &record.refused {
                    line.push_str(&format!(": refused, {refused}"));
                }
                if let Some(error) = &record.error {
                    line.push_str(&format!(": failed, {error}"));
                }
                if record.dry_run {
                    line.push_str(" [dry run]");
                }
                writeln!(self.pending, "{line}")?;
            }
        }
        self.write_when_full()
    }

    fn write_when_full(&mut self) -> io::Result<()> {
        if self.pending.len() >= OUT_CHUNK {
            self.out.write_all(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Hands everything waiting to stdout, at the end of a round.
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.out.write_all(&self.pending)?;
            self.pending.clear();
            self.out.flush()?;
        }
        Ok(())
    }

    /// How many times each network was banned by an earlier watch, into the policy (oldest
    /// first, so the newest are the most recently active there).
    fn restore_ban_counts(&mut self) {
        let Some(history) = self.ban_history.as_mut() else {
            return;
        };
        match history.load() {
            Ok(counts) => {
                for (network, bans) in counts.into_iter().rev() {
                    self.policy.restore_ban_count(network, bans);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the ban counts"),
        }
    }

    /// Bans recorded by an earlier watch and still running: back into the kernel if a
    /// reboot emptied it (the blocker's listing does that, with the safety checks), and into
    /// the policy.
    fn restore_bans(&mut self) {
        let Some(blocker) = &self.blocker else {
            return;
        };
        let now = unix_now();
        match blocker.list() {
            Ok(listed) => {
                for entry in listed {
                    let ours = entry
                        .reason
                        .as_deref()
                        .is_some_and(|r| r.starts_with("repute watch"));
                    if let (true, Some(left), None) =
                        (ours, entry.remaining_secs, &entry.not_restored)
                    {
                        let left = i64::try_from(left).unwrap_or(i64::MAX);
                        self.policy.restore_ban(entry.ip, now.saturating_add(left));
                    }
                }
                self.metrics
                    .bans_active
                    .set(self.policy.active_bans(now).len() as i64);
            }
            Err(e) => tracing::warn!(error = %e, "cannot list running bans"),
        }
    }
}
