//! `repute watch`: follow sshd's logs (files, the journal), decide, ban, serve metrics.
//!
//! The daemon lives in [`repute::watch`]; this file reads flags and the configuration,
//! picks the sources when none is given (the journal where one runs, else the usual auth
//! log files that exist), installs the signal handlers (SIGTERM/SIGINT stop cleanly, SIGHUP
//! reloads the settings) and starts the metrics server.
//!
//! Exit codes: 0 stopped by a signal, 2 error (bad flag or setting, no firewall, an output
//! that cannot be written).

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use repute::block::{Blocker, SafetyPolicy, parse_duration};
use repute::config::Config;
use repute::engine::Engine;
use repute::policy::PolicySettings;
use repute::source::{JournalOptions, StartAt};
use repute::watch::metrics::{self, Metrics};
use repute::watch::settings::{self, WatchFileSettings};
use repute::watch::{OutputFormat, Parts, Watch, WatchOptions};

use super::Global;

/// Log files tried, in order, when no source is given and no journal runs.
const USUAL_AUTH_LOGS: [&str; 2] = ["/var/log/auth.log", "/var/log/secure"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per decision, for people.
    Text,
    /// One JSON object per event and per decision.
    #[value(alias = "json")]
    Jsonl,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without --file or --journal: the journal when systemd-journald runs, else /var/log/auth.log \
or /var/log/secure. Settings also come from the [watch] section of the configuration file; \
flags win. SIGTERM stops cleanly (positions saved), SIGHUP reloads the settings.")]
pub struct Args {
    /// A log file to follow (repeatable); rotations by rename and copytruncate are followed.
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Follow the systemd journal (sshd entries, judged by journald's trusted fields).
    #[arg(long)]
    pub journal: bool,
    /// Journal files in this directory instead of the system journal.
    #[arg(long, value_name = "DIR", requires = "journal")]
    pub journal_directory: Option<PathBuf>,
    /// Decide and say so, but change no firewall and save nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Tries within --find-time that earn a ban (probes count half) [default: 5].
    #[arg(long, value_name = "N")]
    pub max_retry: Option<u32>,
    /// The window tries are counted in, e.g. 10m [default: 10m].
    #[arg(long, value_name = "DUR")]
    pub find_time: Option<String>,
    /// How long a first ban lasts; repeat offenders get longer ones [default: 10m].
    #[arg(long, value_name = "DUR")]
    pub ban_time: Option<String>,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9477.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Read files with no saved position from their start rather than their end.
    #[arg(long)]
    pub from_start: bool,
}

/// Settings from the file, with the flags on top.
fn policy_and_file(
    args: &Args,
    global: &Global,
) -> anyhow::Result<(PolicySettings, WatchFileSettings)> {
    let file = settings::config_file(global.config.as_deref());
    let ws = settings::load(file.as_deref())?;
    let mut policy = ws.policy.clone();
    if let Some(n) = args.max_retry {
        policy.max_retry =
            settings::check_max_retry(n).map_err(|m| anyhow::anyhow!("--max-retry {m}"))?;
    }
    if let Some(t) = &args.find_time {
        policy.find_time = parse_duration(t).context("--find-time")?;
    }
    if let Some(t) = &args.ban_time {
        policy.ban_time = parse_duration(t).context("--ban-time")?;
    }
    Ok((policy, ws))
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    super::init_logging();
    let config = Config::load(global.config.as_deref())?;
    let (policy, ws) = policy_and_file(&args, global)?;
    let metrics_listen = match &args.metrics_listen {
        Some(text) => Some(
            settings::parse_listen(text).map_err(|m| anyhow::anyhow!("--metrics-listen {m}"))?,
        ),
        None => ws.metrics_listen,
    };
    let mut files = if args.files.is_empty() {
        ws.files.clone()
    } else {
        args.files.clone()
    };
    let mut journal = args.journal || ws.journal;
    if files.is_empty() && !journal {
        (files, journal) = default_sources();
    }
    if files.is_empty() && !journal {
        anyhow::bail!(
            "no source: no journal runs here and none of {} exists; give --file PATH or --journal",
            USUAL_AUTH_LOGS.join(", ")
        );
    }
    let journal = journal.then(|| JournalOptions {
        directory: args
            .journal_directory
            .clone()
            .or(ws.journal_directory.clone()),
        ..JournalOptions::default()
    });
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = metrics_listen {
        let bound = metrics::serve(addr, Arc::clone(&metrics))
            .with_context(|| format!("metrics on {addr}"))?;
        tracing::info!(%bound, "serving metrics");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("signal handler")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .context("signal handler")?;

    let options = WatchOptions {
        files: files.clone(),
        journal: journal.clone(),
        dry_run: args.dry_run,
        format: match args.format {
            Format::Text => OutputFormat::Text,
            Format::Jsonl => OutputFormat::Jsonl,
        },
        policy,
        poll_interval: ws.poll_interval.unwrap_or(Duration::from_millis(250)),
        start_at: if args.from_start {
            StartAt::Beginning
        } else {
            StartAt::End
        },
        max_line: repute::scan::MAX_LINE,
    };
    let parts = parts(&config, args.dry_run, Arc::clone(&metrics))?;
    let mut watch = Watch::new(options, parts)?;
    let mut names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    if journal.is_some() {
        names.push("the journal".into());
    }
    eprintln!(
        "repute watch: following {}{}",
        names.join(", "),
        if args.dry_run {
            " (dry run: no firewall change)"
        } else {
            ""
        }
    );
    for missing in files.iter().filter(|f| !f.exists()) {
        eprintln!(
            "repute watch: {} does not exist yet; it is read from its start once it appears",
            missing.display()
        );
    }
    let dry_run = args.dry_run;
    watch.run(&stop, &reload, |w| match reloaded(&args, global, dry_run) {
        Ok((policy, safety, blocker)) => {
            w.reload(policy, safety, blocker);
            eprintln!("repute watch: settings reloaded");
        }
        Err(e) => eprintln!(
            "repute watch: reload refused, settings unchanged: {}",
            super::one_line(&e)
        ),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The settings again (SIGHUP).
fn reloaded(
    args: &Args,
    global: &Global,
    dry_run: bool,
) -> anyhow::Result<(PolicySettings, SafetyPolicy, Option<Blocker>)> {
    let config = Config::load(global.config.as_deref())?;
    let (policy, _) = policy_and_file(args, global)?;
    let safety = SafetyPolicy::for_this_host(config.allowlist.clone())?;
    let blocker = if dry_run {
        None
    } else {
        Some(Blocker::for_config(&config)?)
    };
    Ok((policy, safety, blocker))
}

fn parts(config: &Config, dry_run: bool, metrics: Arc<Metrics>) -> anyhow::Result<Parts> {
    let blocker = if dry_run {
        None
    } else {
        Some(Blocker::for_config(config).context("the firewall")?)
    };
    Ok(Parts {
        engine: Some(Engine::new_or_uncached(config)),
        blocker,
        safety: SafetyPolicy::for_this_host(config.allowlist.clone())
            .context("listing this host's addresses")?,
        store: Some(config.store_path()),
        metrics,
        out: Box::new(BufWriter::new(std::io::stdout())),
        reporter: if dry_run || !config.report.enabled {
            None
        } else {
            Some(
                repute::report::Reporter::for_config(config, "watch")
                    .context("reporting ([report] enabled)")?,
            )
        },
        decisions: if dry_run {
            None
        } else {
            repute::decisions::shared(config)
        },
    })
}

/// The journal when journald runs and journalctl is there, else the usual files that exist.
fn default_sources() -> (Vec<PathBuf>, bool) {
    let journald = Path::new("/run/systemd/journal/socket").exists()
        && repute::block::command::in_path("journalctl");
    if journald {
        return (Vec::new(), true);
    }
    let files = USUAL_AUTH_LOGS
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .take(1)
        .collect();
    (files, false)
}
