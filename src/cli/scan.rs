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
use repute::scan::enrich::{self, EventReputation};
use repute::scan::{self, Input, Options, Progress, Totals, system};

use super::Global;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Attempts per address, most active first, and a totals line.
    Table,
    /// One JSON object per sshd authentication event, in input order (`jsonl` is an alias).
    #[value(name = "json", alias = "jsonl")]
    Jsonl,
    /// AbuseIPDB's bulk-report CSV, one row per attacking address (see docs/reporting.md).
    AbuseipdbCsv,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Table rows: one per source. A source is an IPv4 address, or an IPv6 prefix, a /64 by default \
(one host usually owns a whole /64, and counting each of its addresses apart would let it hide \
and cost memory); --ipv6-prefix 128 gives one row per IPv6 address. At most --max-sources rows \
are kept: past that the least active (fewest attempts, then longest quiet) are dropped, and the \
totals say how many. Columns: ADDRESS = the address or prefix; ATTEMPTS = what the source \
tried: each password, key or user name tried and refused counts once however many lines sshd \
and PAM wrote about it (one try of an unknown user can write five), a connection that tried \
nothing (a scan, an aborted handshake, a timeout) counts once, and a login after tries of \
several user names on one connection counts as an attempt too; FAILURES = the attempts that \
tried credentials; OK = accepted logins from the same source; USERS = distinct user names tried \
(\"64+\" past the cap; the first four tried are listed); times are UTC (stamps without a zone \
are read in --timezone, by default this host's zone). \
With --enrich: SCORE = AbuseIPDB abuse confidence (or - and why there is none), \
COUNTRY, REPORTS, USAGE; only the rows shown are looked up.

Input: syslog files (a line counts only when its program tag is sshd, sshd-session or \
sshd-auth) and `journalctl -o json` or `-o export` output (an entry counts only when \
journald's own _COMM/_EXE, or _SYSTEMD_UNIT, say sshd; never by SYSLOG_IDENTIFIER, which the \
sender chooses), mixed freely, no flag needed.
Without FILE, scan reads this machine's sshd logs: the systemd journal where there is one \
(journalctl, sshd's own messages only), else /var/log/auth.log* or /var/log/secure*, oldest \
first; on a terminal it says which. Piped input without FILE is read as `-`.

Exit status: 0 at least one attack found, 1 none found, 2 an input could not be read (the \
others are still scanned).

Environment (for --enrich, as `repute check`): ABUSEIPDB_API_KEY_FILE or ABUSEIPDB_API_KEY, \
ABUSEIPDB_API_URL, REPUTE_CONFIG, REPUTE_STATE_DIR, REPUTE_CACHE.")]
pub struct Args {
    /// Log files to read (plain or gzip, told apart by content); `-` reads stdin; nothing
    /// reads this machine's sshd logs (or piped input).
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
    /// The zone of time stamps that carry none (`Nov 28 10:00:00`): the local time of the
    /// host that wrote the log. An IANA name (`Europe/Paris`), `UTC`, or an offset
    /// (`+02:00`). Default: this host's zone (TZ, else /etc/localtime). Output times are
    /// RFC 3339 in UTC either way.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    pub timezone: Option<jiff::tz::TimeZone>,
    /// Read lines without a program tag as sshd's own messages (`journalctl -u ssh -o
    /// cat`, runit/s6 log files). Not the default: without a tag, nothing shows which
    /// program wrote a line, and any local user can log a line that reads like sshd's
    /// (`logger 'Failed password for root from 198.51.100.7 port 22 ssh2'`). Use it only
    /// on input that holds sshd's lines alone. (`journalctl -o json` and `-o export` need
    /// no flag: their entries are judged by the fields journald records about the sender.)
    #[arg(long)]
    pub untagged_sshd: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Where `--enrich` looks addresses up (as `repute check`; the environment works too).
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// AbuseIPDB's window in days (1..=365; default 90).
    #[arg(long, value_name = "DAYS", requires = "enrich")]
    pub max_age_days: Option<u16>,
    /// The store: a SQLite file, a redis:// URL, or `none` (as REPUTE_STORE).
    #[arg(long, value_name = "PATH|URL|none", requires = "enrich")]
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

/// `--timezone`: an IANA name, `UTC`, or a fixed offset `±HH:MM` / `±HH`.
fn parse_zone(text: &str) -> Result<jiff::tz::TimeZone, String> {
    if let Some(sign) = text.strip_prefix(['+', '-']).map(|_| &text[..1]) {
        let digits = &text[1..];
        let (h, m) = digits.split_once(':').unwrap_or((digits, "0"));
        let (h, m) = (h.parse::<i32>(), m.parse::<i32>());
        if let (Ok(h), Ok(m)) = (h, m)
            && (0..=25).contains(&h)
            && (0..60).contains(&m)
        {
            let secs = (h * 3600 + m * 60) * if sign == "-" { -1 } else { 1 };
            if let Ok(offset) = jiff::tz::Offset::from_seconds(secs) {
                return Ok(jiff::tz::TimeZone::fixed(offset));
            }
        }
        return Err(format!("{text:?} is not an offset like +02:00"));
    }
    jiff::tz::TimeZone::get(text)
        .map_err(|_| format!("{text:?} is not a time zone name (like Europe/Paris or UTC)"))
}

/// Inputs at least this big (in total) get a progress bar when stderr is a terminal.
const PROGRESS_MIN_BYTES: u64 = 32 << 20;

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    // The configuration is read before the scan, so a mistake in it costs no scan time.
    let engine = if args.enrich {
        super::init_logging();
        let config = Config::load_with(global.config.as_deref(), &args.api.overrides())?;
        tracing::debug!(config = %config.summary(), "scan --enrich");
        global.say_settings(&config);
        // A cache this user cannot open (the system one, say) is no reason to refuse:
        // lookups go to the provider directly, with a warning.
        Some(Engine::new_or_uncached(&config))
    } else {
        None
    };
    let inputs: Vec<Input> = if args.files.is_empty() {
        default_inputs()?
    } else {
        args.files.iter().cloned().map(Input::from_arg).collect()
    };
    let opts = Options {
        now: jiff::Timestamp::now(),
        threads: args.threads.map_or_else(default_threads, usize::from),
        only_public: args.only_public,
        zone: args
            .timezone
            .clone()
            .unwrap_or_else(jiff::tz::TimeZone::system),
        bare_messages: args.untagged_sshd,
        grouping: Grouping {
            ipv6_prefix: args.ipv6_prefix,
        },
        max_sources: usize::try_from(args.max_sources).unwrap_or(usize::MAX),
    };
    // JSON lines printed on the terminal would be torn by a bar drawn on the same screen.
    let printing_events = args.format != Format::Table && std::io::stdout().is_terminal();
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
        Format::AbuseipdbCsv => {
            let config = Config::load_with(global.config.as_deref(), &args.api.overrides())?;
            super::report::write_backlog_csv(&config, &inputs, &opts, progress, &mut out)?
        }
        Format::Table => {
            let (summary, errors) = scan::summarize(&inputs, &opts, progress);
            if let Some(bar) = &bar {
                bar.0.finish_and_clear();
            }
            match &engine {
                Some(engine) => {
                    let shown = enrich::shown_addresses(&summary, opts.only_public, args.top);
                    let lookups = engine.lookup_distinct(shown);
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

/// Without FILE: piped or redirected input when there is some (as ripgrep decides), else
/// this machine's sshd logs, said on a terminal (or with `-v`).
fn default_inputs() -> anyhow::Result<Vec<Input>> {
    if stdin_has_input() {
        return Ok(vec![Input::Stdin]);
    }
    let journalctl = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("journalctl").is_file())
    });
    let inputs = system::find(std::path::Path::new("/"), journalctl);
    if inputs.is_empty() {
        anyhow::bail!(
            "no sshd logs found (no systemd journal, no /var/log/auth.log* or \
             /var/log/secure*): name the files to scan, or `-` for stdin"
        );
    }
    if std::io::stderr().is_terminal() || super::verbose() {
        eprintln!("repute: reading {}", system::describe(&inputs));
    }
    Ok(inputs)
}

/// Stdin is a file, a pipe or a socket: someone gave us input. A terminal or `/dev/null`
/// (cron, systemd) is not.
fn stdin_has_input() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd).metadata().is_ok_and(|m| {
        let t = m.file_type();
        t.is_file() || t.is_fifo() || t.is_socket()
    })
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

/// Says once, on one line of stderr, what was decoded lossily and what was skipped.
fn report_skipped(totals: &Totals) {
    let mut parts = Vec::new();
    if totals.invalid_utf8 > 0 {
        parts.push(format!(
            "read {} lines that are not UTF-8 with U+FFFD for the bad bytes",
            totals.invalid_utf8
        ));
    }
    if totals.overlong > 0 {
        parts.push(format!(
            "skipped {} lines longer than {} bytes",
            totals.overlong,
            scan::MAX_LINE
        ));
    }
    if !parts.is_empty() {
        eprintln!("repute: {}", parts.join("; "));
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
    // A bar over output piped elsewhere would only be noise on the screen of whoever waits.
    if !std::io::stderr().is_terminal() || !std::io::stdout().is_terminal() {
        return None;
    }
    let sizes: Vec<Option<u64>> = inputs
        .iter()
        .map(|input| match input {
            Input::Stdin | Input::Journal => None,
            Input::Path(path) => std::fs::metadata(path).ok().map(|m| m.len()),
        })
        .collect();
    let known: u64 = sizes.iter().flatten().sum();
    let has_stream = inputs.contains(&Input::Stdin) || inputs.contains(&Input::Journal);
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
