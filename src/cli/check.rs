//! `repute check IP…`: look addresses up through the cache, as JSON lines or a table.
//!
//! Every argument is parsed before anything is looked up, so a typo costs no quota: an
//! invalid address is a one-line error naming it (exit 2). Exit 0 when every address got an
//! answer or was deliberately skipped (not public, allowlisted), 1 when some lookup failed
//! (no key, quota spent, provider down).

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use repute::config::{Config, Overrides};
use repute::engine::{Engine, Lookup, NoReputation};

use super::Global;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// One JSON object per address, one per line (`jsonl` is an alias).
    #[value(alias = "jsonl")]
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Only public addresses are looked up: private, loopback and documentation addresses \
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) are classified and skipped.

Exit status: 0 every address got an answer or was deliberately skipped (not public, \
allowlisted), 1 some lookup failed (no key, quota spent, provider down), 2 error (an argument \
that is not an address: nothing is looked up).

Environment: ABUSEIPDB_API_KEY_FILE (a file holding the key) or ABUSEIPDB_API_KEY; \
ABUSEIPDB_API_URL (default https://api.abuseipdb.com/api/v2); REPUTE_CONFIG (default \
/etc/repute/repute.toml); REPUTE_STATE_DIR (default /var/lib/repute, or $XDG_CACHE_HOME/repute \
for a user who cannot write it; -v says which); REPUTE_CACHE (a SQLite file or `none`).")]
pub struct Args {
    /// Addresses to look up (IPv4 or IPv6).
    #[arg(required = true, value_name = "IP")]
    pub ips: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// AbuseIPDB's window in days (1..=365; default 90).
    #[arg(long, value_name = "DAYS")]
    pub max_age_days: Option<u16>,
    /// The store: a SQLite file, a redis:// URL, or `none` (as REPUTE_STORE).
    #[arg(long, value_name = "PATH|URL|none")]
    pub cache: Option<String>,
    /// AbuseIPDB API base URL (as ABUSEIPDB_API_URL).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// File holding the API key (as ABUSEIPDB_API_KEY_FILE), so it never appears in argv.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    super::init_logging();
    let ips = parse_ips(&args.ips)?;
    let flags = Overrides {
        api_key_file: args.api_key_file.clone(),
        api_url: args.api_url.clone(),
        cache: args.cache.clone(),
        max_age_days: args.max_age_days,
        ..Overrides::default()
    };
    let config = Config::load_with(global.config.as_deref(), &flags)?;
    tracing::debug!(config = %config.summary(), "check");
    global.say_settings(&config);
    let engine = Engine::new(&config)?;
    let lookups: Vec<Lookup> = ips.iter().map(|ip| engine.lookup(*ip)).collect();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => write_json(&mut out, &lookups)?,
        Format::Table => write_table(&mut out, &lookups)?,
    }
    out.flush()?;
    if lookups
        .iter()
        .any(|l| l.missing() == Some(&NoReputation::NoApiKey))
    {
        eprintln!("repute: {NO_KEY_HINT}");
    }
    let failed = lookups
        .iter()
        .any(|l| l.missing().is_some_and(|m| !m.is_deliberate()));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What to do when no key is configured, said once whatever the number of addresses.
pub const NO_KEY_HINT: &str = "no AbuseIPDB API key: set ABUSEIPDB_API_KEY_FILE (a file holding \
the key) or ABUSEIPDB_API_KEY, or `api_key_file` in /etc/repute/repute.toml";

/// Parses every argument with the crate's one address parser ([`repute::addr::parse`], as
/// `repute block` does), or names the first that is not an address and why.
pub fn parse_ips(texts: &[String]) -> anyhow::Result<Vec<IpAddr>> {
    Ok(texts
        .iter()
        .map(|t| repute::addr::parse(t))
        .collect::<Result<_, _>>()?)
}

/// Longest provider text (usage type, ISP) shown in a table cell, in characters.
const PROVIDER_SHOWN_CHARS: usize = 60;
/// Longest reason shown (it may quote the provider's error text).
const REASON_SHOWN_CHARS: usize = 200;

fn write_json(out: &mut impl Write, lookups: &[Lookup]) -> anyhow::Result<()> {
    for lookup in lookups {
        serde_json::to_writer(&mut *out, &lookup.record())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn write_table(out: &mut impl Write, lookups: &[Lookup]) -> anyhow::Result<()> {
    let rows: Vec<[String; 7]> = lookups.iter().map(table_row).collect();
    let header = [
        "ADDRESS",
        "CLASS",
        "SOURCE",
        "SCORE",
        "COUNTRY",
        "REPORTS",
        "USAGE / ISP / REASON",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&header.map(String::from)))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

/// One row. Provider text is printed through [`repute::printable::shown`], as `repute scan`
/// prints it: an ISP named with a newline or an ANSI escape cannot forge rows or repaint the
/// terminal.
fn table_row(l: &Lookup) -> [String; 7] {
    use repute::printable::shown;
    let source = l.source.as_str().to_string();
    let dash = || "-".to_string();
    match &l.answer {
        Ok(r) => [
            l.ip.to_string(),
            l.class.to_string(),
            source,
            r.abuse_confidence_score.to_string(),
            r.country_code.as_deref().map_or_else(dash, |c| shown(c, 8)),
            r.total_reports.map(|n| n.to_string()).unwrap_or_else(dash),
            [r.usage_type.as_deref(), r.isp.as_deref()]
                .into_iter()
                .flatten()
                .map(|text| shown(text, PROVIDER_SHOWN_CHARS))
                .collect::<Vec<_>>()
                .join(" / "),
        ],
        Err(why) => [
            l.ip.to_string(),
            l.class.to_string(),
            source,
            dash(),
            dash(),
            dash(),
            shown(&why.to_string(), REASON_SHOWN_CHARS),
        ],
    }
}
