//! `repute scan [FILE…|-]`: read sshd logs (plain, gzip, stdin) and report who attacked.
//!
//! `--format table` (the default, on a terminal or not: a pipe gets the same view a person
//! gets, and scripts ask for `--format jsonl` explicitly) prints attempts per address;
//! `--format jsonl` writes the event contract of DESIGN.md. `--enrich` adds reputation
//! (AbuseIPDB through the cache, configured as for `repute check`): table columns SCORE,
//! COUNTRY, REPORTS, USAGE and a line saying where the answers came from, or a `reputation`
//! object on each JSON event of a public address; one lookup per distinct address, and only
//! for the rows shown. A failed lookup never fails the scan (nor changes its exit code): the
//! row says why, and a reason shared by every failure is said once on stderr. The reading
//! and counting live in [`repute::scan`]; this file only wires arguments, progress and exit
//! codes.
//!
//! Exit codes, as ripgrep's: 0 at least one attack (failure or probe) was found, 1 none was,
//! 2 an input could not be read (the other inputs are still scanned and reported). A closed
//! output pipe (`| head`) is a normal end.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use repute::config::{Config, Overrides};
use repute::engine::Engine;
use repute::policy::history::{DEFAULT_IPV6_PREFIX, DEFAULT_MAX_SOURCES, Grouping};
use repute::scan::enrich::{self, EventReputation, ScanLookups};
use repute::scan::{self, Input, Options, Progress, Totals};

use super::Global;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Attempts per address, most active first, and a totals line.
    Table,
    /// One JSON object per sshd authentication event, in input order.
    Jsonl,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Table rows: one per source. A source is an IPv4 address, or an IPv6 prefix, a /64 by default \
(one host usually owns a whole /64, and counting each of its addresses apart would let it hide \
and cost memory); --ipv6-prefix 128 gives one row per IPv6 address. At most --max-sources rows \
are kept: past that the least active (fewest attempts, then longest quiet) are dropped, and the \
totals say how many. Columns: ADDRESS = the address or prefix; ATTEMPTS = failures + probes \
(pre-auth aborts, scans, timeouts); OK = accepted logins from the same source; USERS = distinct \
user names tried (\"64+\" past the cap; the first four tried are listed); times are UTC. With --enrich: SCORE = AbuseIPDB abuse confidence (or - and why there is none), \
COUNTRY, REPORTS, USAGE; only the rows shown are looked up.

Exit status: 0 at least one attack found, 1 none found, 2 an input could not be read (the \
others are still scanned).")]
pub struct Args {
    /// Log files to read (plain or gzip, told apart by content); `-` or nothing reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Only events from public addresses (what would be sent to a reputation provider).
    #[arg(long)]
    pub only_public: bool,
    /// Show only the N most active addresses in the table (the totals still count all).
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Threads to use [default: the number of CPUs, at most 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Group IPv6 addresses into one row per prefix of this length (1..=128; 128 = one row
    /// per address).
    #[arg(long, value_name = "BITS", default_value_t = DEFAULT_IPV6_PREFIX,
          value_parser = clap::value_parser!(u8).range(1..=128))]
    pub ipv6_prefix: u8,
    /// Keep at most N rows (each of T threads keeps N/T while reading); past that the least
    /// active are dropped, so memory stays bounded whatever the number of sources (about
    /// 500 bytes a row).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SOURCES as u64,
          value_parser = clap::value_parser!(u64).range(16..=100_000_000))]
    pub max_sources: u64,
    /// Add each public address's reputation (AbuseIPDB, through the cache): one lookup per
    /// distinct address shown (for an IPv6 prefix, its first address seen); JSON events get a
    /// `reputation` object.
    #[arg(long)]
    pub enrich: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Where `--enrich` looks addresses up (as `repute check`; the environment works too).
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// AbuseIPDB's window in days (1..=365; default 90).
    #[arg(long, value_name = "DAYS", requires = "enrich")]
    pub max_age_days: Option<u16>,
    /// SQLite cache file, or `none` (as REPUTE_CACHE).
    #[arg(long, value_name = "PATH|none", requires = "enrich")]
    pub cache: Option<String>,
    /// AbuseIPDB API base URL (as ABUSEIPDB_API_URL).
    #[arg(long, value_name = "URL", requires = "enrich")]
    pub api_url: Option<String>,
    /// File holding the API key (as ABUSEIPDB_API_KEY_FILE), so it never appears in argv.
    #[arg(long, value_name = "FILE", requires = "enrich")]
    pub api_key_file: Option<PathBuf>,
}

impl ApiArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            api_key_file: self.api_key_file.clone(),
            api_url: self.api_url.clone(),
            cache: self.cache.clone(),
            max_age_days: self.max_age_days,
            ..Overrides::default()
        }
    }
}

/// Inputs at least this big (in total) get a progress bar when stderr is a terminal.
const PROGRESS_MIN_BYTES: u64 = 32 << 20;

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    // The configuration is read before the scan, so a mistake in it costs no scan time.
    let engine = if args.enrich {
        super::init_logging();
        let config = Config::load_with(global.config.as_deref(), &args.api.overrides())?;
        tracing::debug!(config = %config.summary(), "scan --enrich");
        // A cache this user cannot open (the system one, say) is no reason to refuse:
        // lookups go to the provider directly, with a warning.
        Some(Engine::new_or_uncached(&config))
    } else {
        None
    };
    let inputs: Vec<Input> = if args.files.is_empty() {
        vec![Input::Stdin]
    } else {
        args.files.iter().cloned().map(Input::from_arg).collect()
    };
    let opts = Options {
        now: jiff::Timestamp::now(),
        threads: args.threads.map_or_else(default_threads, usize::from),
        only_public: args.only_public,
        grouping: Grouping {
            ipv6_prefix: args.ipv6_prefix,
        },
        max_sources: usize::try_from(args.max_sources).unwrap_or(usize::MAX),
    };
    // JSON lines printed on the terminal would be torn by a bar drawn on the same screen.
    let printing_events = args.format == Format::Jsonl && std::io::stdout().is_terminal();
    let bar = if printing_events {
        None
    } else {
        progress_bar(&inputs)
    };
    let progress: &dyn Progress = match &bar {
        Some(bar) => bar,
        None => &(),
    };
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    // Why no address got a score, when one reason explains every failed lookup.
    let mut failure = None;
    let (found, totals, errors) = match args.format {
        Format::Jsonl => {
            let mut enricher = engine.as_ref().map(EventReputation::new);
            let report = scan::write_events_enriched(
                &inputs,
                &opts,
                progress,
                &mut out,
                enricher.as_mut().map(|e| e as &mut dyn scan::Enricher),
            )
            .context("writing JSON lines")?;
            if let Some(enricher) = &enricher {
                failure = enricher.tally().common_failure();
            }
            (report.attacks_written > 0, report.totals, report.errors)
        }
        Format::Table => {
            let (summary, errors) = scan::summarize(&inputs, &opts, progress);
            if let Some(bar) = &bar {
                bar.0.finish_and_clear();
            }
            match &engine {
                Some(engine) => {
                    let shown = enrich::shown_addresses(&summary, opts.only_public, args.top);
                    let lookups = ScanLookups::new(engine).lookup_distinct(shown);
                    failure = enrich::Tally::of(lookups.values()).common_failure();
                    scan::write_table_enriched(
                        &mut out,
                        &summary,
                        opts.only_public,
                        args.top,
                        &lookups,
                    )
                }
                None => scan::write_table(&mut out, &summary, opts.only_public, args.top),
            }
            .context("writing the table")?;
            (
                summary.has_attackers(opts.only_public),
                summary.totals,
                errors,
            )
        }
    };
    out.flush().context("writing output")?;
    if let Some(bar) = &bar {
        bar.0.finish_and_clear();
    }
    for error in &errors {
        eprintln!("repute: cannot read {error}");
    }
    report_skipped(&totals);
    if let Some(failure) = failure {
        eprintln!("repute: {failure}");
    }
    Ok(exit_code(found, !errors.is_empty()))
}

fn exit_code(found: bool, had_errors: bool) -> ExitCode {
    match (had_errors, found) {
        (true, _) => ExitCode::from(2),
        (false, true) => ExitCode::SUCCESS,
        (false, false) => ExitCode::from(1),
    }
}

/// Each thread keeps its own per-source summary (bounded by `--max-sources`), so memory
/// grows with threads: four keep the 1M-line benchmark well under 50 MiB and already make
/// reading the bottleneck.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Says once, on stderr, what was skipped.
fn report_skipped(totals: &Totals) {
    let mut parts = Vec::new();
    if totals.invalid_utf8 > 0 {
        parts.push(format!("{} lines that are not UTF-8", totals.invalid_utf8));
    }
    if totals.overlong > 0 {
        parts.push(format!(
            "{} lines longer than {} bytes",
            totals.overlong,
            scan::MAX_LINE
        ));
    }
    if !parts.is_empty() {
        eprintln!("repute: skipped {}", parts.join(" and "));
    }
}

/// Progress on stderr, by bytes read, for big inputs and only when someone watches.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

fn progress_bar(inputs: &[Input]) -> Option<Bar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let sizes: Vec<Option<u64>> = inputs
        .iter()
        .map(|input| match input {
            Input::Stdin => None,
            Input::Path(path) => std::fs::metadata(path).ok().map(|m| m.len()),
        })
        .collect();
    let known: u64 = sizes.iter().flatten().sum();
    let has_stream = inputs.contains(&Input::Stdin);
    // Someone typing into stdin needs no spinner over their text.
    if has_stream && std::io::stdin().is_terminal() || !has_stream && known < PROGRESS_MIN_BYTES {
        return None;
    }
    // Decompressed gzip bytes outrun the compressed size, so a total would lie: a spinner
    // with bytes and rate is shown whenever compressed or unsized input is involved.
    let compressed = inputs
        .iter()
        .any(|i| matches!(i, Input::Path(p) if is_gzip_name(p)));
    let bar = if has_stream || compressed {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(style("{spinner} {bytes} read ({bytes_per_sec})"));
        bar
    } else {
        let bar = indicatif::ProgressBar::new(known);
        bar.set_style(style(
            "{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        ));
        bar
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    Some(Bar(bar))
}

fn style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}

fn is_gzip_name(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}
