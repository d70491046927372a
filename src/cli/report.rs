//! `repute report IP… --categories LIST [--comment TEXT]`: report addresses to AbuseIPDB by
//! hand, within its rules.
//!
//! Every argument is checked before anything is sent (addresses, categories by number or
//! name), so a typo costs no quota. Each address then goes through the library's
//! [`Reporter`]: refused when not public, allowlisted, one of this host's own or the SSH
//! session's peer; not sent again within 15 minutes of our last report of it (the mark is in
//! the store, shared by every process); not sent while the report quota is spent. One line
//! per address on stdout (reported) or stderr (not reported, and why); one JSON line per
//! address in the audit log.
//!
//! Exit codes: 0 every address reported; 1 some address not reported by the rules (and why);
//! 2 an error (bad argument, no key, AbuseIPDB or the store failed).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use repute::block::safety::SafetyPolicy;
use repute::config::{Config, Overrides};
use repute::report::{
    Redaction, ReportOutcome, ReportRequest, Reporter, categories, parse_categories,
};
use repute::scan::{self, Input, InputError, Options, Progress, Totals};

use super::Global;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Categories: AbuseIPDB's ids or names, e.g. 18,22 or brute-force,ssh (SSH brute force), \
14,22 or port-scan,ssh (SSH scans). One report per address per 15 minutes; the comment is \
published by AbuseIPDB: put no host name, address or user name of yours in it.

Exit status: 0 reported, 1 not reported (within 15 minutes of our last report, not public, \
allowlisted, own address, quota spent), 2 error.")]
pub struct Args {
    /// Addresses to report (IPv4 or IPv6).
    #[arg(required = true, value_name = "IP")]
    pub ips: Vec<String>,
    /// AbuseIPDB categories, by number or name, comma-separated.
    #[arg(long, required = true, value_name = "LIST")]
    pub categories: String,
    /// Comment sent as given (cut to 1,024 characters). AbuseIPDB publishes it.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Check everything and write the audit line, but send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// AbuseIPDB API base URL (as ABUSEIPDB_API_URL).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// File holding the API key (as ABUSEIPDB_API_KEY_FILE), so it never appears in argv.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// SQLite store file (as REPUTE_CACHE; `none` keeps it in the state directory).
    #[arg(long, value_name = "PATH")]
    pub cache: Option<String>,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    super::init_logging();
    let ips = super::check::parse_ips(&args.ips)?;
    let categories = parse_categories(&args.categories)
        .with_context(|| format!("--categories {:?}", args.categories))?;
    let flags = Overrides {
        api_key_file: args.api_key_file.clone(),
        api_url: args.api_url.clone(),
        cache: args.cache.clone(),
        ..Overrides::default()
    };
    let config = Config::load_with(global.config.as_deref(), &flags)?;
    tracing::debug!(config = %config.summary(), "report");
    if config.api_key.is_none() && !args.dry_run {
        anyhow::bail!(
            "no AbuseIPDB API key: set ABUSEIPDB_API_KEY_FILE, ABUSEIPDB_API_KEY or api_key_file"
        );
    }
    let mut reporter = Reporter::for_config(&config, "report").context("preparing to report")?;
    reporter.dry_run = args.dry_run;
    let request = ReportRequest {
        categories,
        comment: args.comment.clone(),
        timestamp: None,
    };
    let (mut not_reported, mut failed) = (false, false);
    for ip in ips {
        match reporter.report(ip, &request) {
            ReportOutcome::Reported { score, .. } => println!(
                "reported {ip} (categories {}); AbuseIPDB score now {score}",
                categories::join_ids(&request.categories)
            ),
            ReportOutcome::NotReported(why) => {
                not_reported = true;
                eprintln!("repute: {ip} not reported: {why}");
            }
            ReportOutcome::Failed(e) => {
                failed = true;
                eprintln!("repute: {ip} not reported: {e}");
            }
        }
    }
    Ok(exit_code(not_reported, failed))
}

fn exit_code(not_reported: bool, failed: bool) -> ExitCode {
    match (failed, not_reported) {
        (true, _) => ExitCode::from(2),
        (false, true) => ExitCode::from(1),
        (false, false) => ExitCode::SUCCESS,
    }
}

/// `repute scan --format abuseipdb-csv`: the attackers of `inputs` as AbuseIPDB's bulk-report
/// CSV on `out`, with the refusals and the redaction of a live report. Returns whether a row
/// was written, the totals and the inputs that could not be read (as the other formats do).
pub fn write_backlog_csv(
    config: &Config,
    inputs: &[Input],
    opts: &Options,
    progress: &dyn Progress,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<(bool, Totals, Vec<InputError>)> {
    let safety = SafetyPolicy::for_this_host(config.allowlist.clone())
        .context("listing this host's addresses")?;
    let redaction = Redaction::for_config(config);
    let backlog = scan::csv::gather(inputs, opts, progress);
    let keep = |ip| safety.check(ip).is_ok();
    let rows = scan::csv::write_csv(out, &backlog.addresses, &keep, &redaction, opts.now)
        .context("writing the CSV")?;
    Ok((rows > 0, backlog.totals, backlog.errors))
}
