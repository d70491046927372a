//! The command line: the top-level parser and one file per command.
//!
//! Exit codes, for every command but the Wazuh ones (which document their own):
//! 0 success, 1 the command ran but found or did nothing it was asked for, 2 error.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod active_response_report;
mod block;
mod check;
mod completions;
mod config;
mod man;
mod report;
mod scan;
mod status;
mod watch;
mod wazuh_active_response;
mod wazuh_install;
mod wazuh_integration;
mod wazuh_rules;
mod wazuh_uninstall;

/// Flags every command accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Configuration file (default: /etc/repute/repute.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `-v` was given (kept out of [`Global`] so the commands that build one need not change).
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `-v` was given.
pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

impl Global {
    /// With `-v`, says where the settings come from and which store is in use.
    pub fn say_settings(&self, config: &repute::config::Config) {
        if !verbose() {
            return;
        }
        match &config.settings_file {
            Some(file) => eprintln!("repute: settings from {}", file.display()),
            None => eprintln!("repute: no settings file (defaults and environment)"),
        }
        let store = match &config.cache {
            repute::config::StoreSetting::Sqlite(path) => path.display().to_string(),
            repute::config::StoreSetting::Disabled => "none (no cache)".to_string(),
            repute::config::StoreSetting::Redis(target) => target.to_string(),
        };
        let why = if config.per_user_state {
            format!(
                " (per-user: {} is not writable)",
                repute::config::DEFAULT_STATE_DIR
            )
        } else {
            String::new()
        };
        eprintln!("repute: store {store}{why}");
        eprintln!("repute: API {}", config.api_url);
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "repute",
    version,
    about = "Which login attempts come from known-bad addresses, and what to do about it",
    after_help = "\
Exit status (every command but the Wazuh ones, see their --help): 0 success, 1 the command ran \
but found or did nothing it was asked for, 2 error (one line on stderr).

Environment: ABUSEIPDB_API_KEY_FILE (a file holding the key) or ABUSEIPDB_API_KEY, \
ABUSEIPDB_API_URL, REPUTE_CONFIG (default /etc/repute/repute.toml), REPUTE_STATE_DIR (default \
/var/lib/repute; $XDG_CACHE_HOME/repute for a user who cannot write it), REPUTE_CACHE (a \
SQLite file or `none`), RUST_LOG (log level, default warn). Every setting with its variable: \
`repute config reference`; the values in effect: `repute config show`."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    /// Say on stderr which settings file, store and API URL are in use.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read sshd logs (this machine's, files, .gz, stdin) and report who attacked.
    Scan(scan::Args),
    /// Look addresses up, through the cache.
    Check(check::Args),
    /// Wazuh: integration, active response, install, uninstall, rules.
    #[command(subcommand)]
    Wazuh(WazuhCommand),
    /// Block and unblock addresses in the kernel firewall.
    #[command(after_help = BLOCK_HELP)]
    Block(block::Args),
    /// Report addresses to AbuseIPDB (one report per address per 15 minutes).
    Report(report::Args),
    /// Print a shell completion script (bash, zsh, fish, …).
    #[command(after_help = "Exit status: 0 printed, 2 error.\n\nEnvironment: none read.")]
    Completions(completions::Args),
    /// Write the manual pages into a directory (for packaging).
    #[command(hide = true)]
    Man(man::Args),
    /// Follow sshd's logs (files, the journal), ban attackers, serve metrics.
    Watch(watch::Args),
    /// What `repute watch` is doing: sources, bans, counters.
    Status(status::Args),
    /// The effective settings and where each comes from; the reference of every setting.
    #[command(subcommand)]
    Config(config::Command),
}

const BLOCK_HELP: &str = "\
Exit status: 0 done, 1 refused (a safety check or the entry limit; the reason on stderr) or \
nothing to do (`del` of an address that was not blocked), 2 error. Needs root (CAP_NET_ADMIN).

Environment: REPUTE_CONFIG (the [block] section), REPUTE_STATE_DIR (where block state is kept, \
default /var/lib/repute).";

const INTEGRATION_HELP: &str = "\
Exit status: 0 done (an event sent, an error event included, or none needed), 1 internal \
error, 2 bad arguments, 3 bad options or key file (an error event was still sent), 5 no queue \
socket, 6 alert file missing or unreadable, 7 alert file not JSON, 8 analysisd not reading, \
9 event too long for the socket. Only a one-line error is printed, on a non-zero exit.

Environment: WAZUH_HOME (default: found from the program's own path), ABUSEIPDB_API_KEY_FILE \
or ABUSEIPDB_API_KEY, ABUSEIPDB_API_URL, REPUTE_CACHE; then the options file and the arguments \
integratord passes win.";

const ACTIVE_RESPONSE_HELP: &str = "\
Exit status: 0 the message was handled (blocked, unblocked, declined, refused, aborted), 1 it \
could not be (bad input, a failed firewall), as Wazuh's own programs do. Every step is logged \
to <home>/logs/active-responses.log.

Environment: WAZUH_HOME (default: found from the program's own path), REPUTE_CONFIG, \
REPUTE_STATE_DIR, and for --min-score the AbuseIPDB variables of `repute check`.";

const UNINSTALL_HELP: &str = "\
Exit status: 0 removed or nothing to do (also with --dry-run), 2 error. etc/ossec.conf is \
copied to etc/ossec.conf.repute-backup-<UTC time> before it is edited. Nothing is restarted: \
restart the manager afterwards.

Environment: none read.";

const INSTALL_HELP: &str = "\
Exit status: 0 installed or nothing to do (also with --dry-run), 2 error. Nothing is restarted: \
restart the manager afterwards.

Agents: on each agent, `repute wazuh install --agent` puts this program at \
active-response/bin/repute-block (root:wazuh 0750) and nothing else. The manager side is \
`repute wazuh install --active-response` on the manager: its <active-response> block has \
<location>local</location>, which runs repute-block on the agent whose log the attack came \
from. To block on every agent, edit that block in the manager's etc/ossec.conf to \
<location>all</location>; for one agent, <location>defined-agent</location> with \
<agent_id>ID</agent_id>; then restart the manager.

Environment: none read; the key comes from --api-key-file.";

#[derive(Debug, Subcommand)]
enum WazuhCommand {
    /// The custom-abuseipdb integration, as integratord runs it.
    #[command(after_help = INTEGRATION_HELP)]
    Integration(wazuh_integration::Args),
    /// The active-response program, as execd runs it (JSON on stdin).
    #[command(after_help = ACTIVE_RESPONSE_HELP)]
    ActiveResponse(wazuh_active_response::Args),
    /// Install the integration, rules and configuration into a Wazuh tree.
    #[command(after_help = INSTALL_HELP)]
    Install(wazuh_install::Args),
    /// Take repute back out of a Wazuh tree (the API key stays unless asked).
    #[command(after_help = UNINSTALL_HELP)]
    Uninstall(wazuh_uninstall::Args),
    /// Print the shipped Wazuh rules.
    #[command(after_help = "Exit status: 0 printed, 2 error.\n\nEnvironment: none read.")]
    Rules(wazuh_rules::Args),
}

/// The entry point of the binary.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let exe = std::env::current_exe().ok();
    // execd first: `active-response/bin/repute-block` may be a symlink to the integration
    // file, and then the executable's own name says `custom-abuseipdb`.
    if wazuh_active_response::called_by_execd(&args, exe.as_deref()) {
        return wazuh_active_response::run_as_execd_child(&args);
    }
    if wazuh_integration::called_by_integratord(&args, exe.as_deref()) {
        return wazuh_integration::run_as_integratord_child(&args);
    }
    let cli = Cli::parse_from(args);
    VERBOSE.store(cli.verbose, std::sync::atomic::Ordering::Relaxed);
    let result = match cli.command {
        Command::Scan(a) => scan::run(a, &cli.global),
        Command::Check(a) => check::run(a, &cli.global),
        Command::Wazuh(WazuhCommand::Integration(a)) => wazuh_integration::run(a, &cli.global),
        Command::Wazuh(WazuhCommand::ActiveResponse(a)) => {
            wazuh_active_response::run(a, &cli.global)
        }
        Command::Wazuh(WazuhCommand::Install(a)) => wazuh_install::run(a, &cli.global),
        Command::Wazuh(WazuhCommand::Rules(a)) => wazuh_rules::run(a, &cli.global),
        Command::Wazuh(WazuhCommand::Uninstall(a)) => wazuh_uninstall::run(a, &cli.global),
        Command::Block(a) => block::run(a, &cli.global),
        Command::Report(a) => report::run(a, &cli.global),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
        Command::Watch(a) => watch::run(a, &cli.global),
        Command::Status(a) => status::run(a, &cli.global),
        Command::Config(c) => config::run(c, &cli.global),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("repute: {}{}", one_line(&err), hint(&err));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, each said once: a cause that says nothing the line
/// does not already say (rusqlite's message after our own naming the file, SQLite's
/// "Error code 14: …") is left out.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut said_by_sqlite_caller = false;
    for cause in err.chain() {
        // rusqlite carries a message of its own (ours, from `store::open`) and, as its source,
        // SQLite's generic wording for the code: the message already says it better.
        let generic = said_by_sqlite_caller && cause.is::<rusqlite::ffi::Error>();
        said_by_sqlite_caller = matches!(
            cause.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::SqliteFailure(_, Some(_)))
        );
        let text = cause.to_string().replace('\n', " ");
        let says_nothing_new = without_error_code(&text)
            .split(": ")
            .all(|part| line.contains(part));
        if generic || says_nothing_new {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// SQLite's own wording without its `Error code N: ` prefix.
fn without_error_code(text: &str) -> &str {
    text.strip_prefix("Error code ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(code, _)| code.bytes().all(|b| b.is_ascii_digit()))
        .map_or(text, |(_, message)| message)
}

/// What to do about an error, when the error alone does not say.
fn hint(err: &anyhow::Error) -> &'static str {
    use repute::wazuh::install::InstallError;
    let not_wazuh = err.chain().any(|c| {
        matches!(
            c.downcast_ref(),
            Some(InstallError::NotWazuh(..) | InstallError::NotAgent(..))
        )
    });
    if not_wazuh {
        "; use --wazuh-dir to name the Wazuh home"
    } else {
        ""
    }
}

/// A closed pipe (`repute scan … | head`) is a normal end, not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings). Never fails: a second call or
/// a bad filter keeps the default.
/// The HTTP and TLS libraries log whole requests at `trace` (a hex dump with the `Key`
/// header in it) and request lines at `debug`: whatever `RUST_LOG` says, they log at `info`
/// at most, and repute's own debug lines say what was asked instead.
const QUIET_LIBRARIES: [&str; 3] = ["ureq=info", "ureq_proto=info", "rustls=info"];

pub fn init_logging() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    for directive in QUIET_LIBRARIES {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("config file /x: {source}")]
    struct Carrying {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(libc::EACCES);
        let err = anyhow::Error::new(Carrying { source: io }).context("loading settings");
        let line = one_line(&err);
        assert_eq!(line.matches("os error 13").count(), 1, "{line}");
        assert!(
            line.starts_with("loading settings: config file /x: "),
            "{line}"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&plain), "outer: inner");
    }
}
