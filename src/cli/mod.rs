//! The command line: the top-level parser and one file per door.
//!
//! Exit codes, for every door but the Wazuh ones (which document their own):
//! 0 success, 1 the command ran but found or did nothing it was asked for, 2 error.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod active_response_report;
mod block;
mod check;
mod report;
mod scan;
mod wazuh_active_response;
mod wazuh_install;
mod wazuh_integration;
mod wazuh_rules;

/// Flags every door accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Configuration file (default: /etc/repute/repute.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Parser)]
#[command(
    name = "repute",
    version,
    about = "Which login attempts come from known-bad addresses, and what to do about it"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read sshd logs (files, .gz, stdin) and report who attacked.
    Scan(scan::Args),
    /// Look addresses up, through the cache.
    Check(check::Args),
    /// Wazuh doors: integration, active response, install, rules.
    #[command(subcommand)]
    Wazuh(WazuhCommand),
    /// Block and unblock addresses in the kernel firewall.
    Block(block::Args),
    /// Report addresses to AbuseIPDB (one report per address per 15 minutes).
    Report(report::Args),
}

#[derive(Debug, Subcommand)]
enum WazuhCommand {
    /// The custom-abuseipdb integration, as integratord runs it.
    Integration(wazuh_integration::Args),
    /// The active-response program, as execd runs it (JSON on stdin).
    ActiveResponse(wazuh_active_response::Args),
    /// Install the integration, rules and configuration into a Wazuh tree.
    Install(wazuh_install::Args),
    /// Print the shipped Wazuh rules.
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
    let result = match cli.command {
        Command::Scan(a) => scan::run(a, &cli.global),
        Command::Check(a) => check::run(a, &cli.global),
        Command::Wazuh(WazuhCommand::Integration(a)) => wazuh_integration::run(a, &cli.global),
        Command::Wazuh(WazuhCommand::ActiveResponse(a)) => {
            wazuh_active_response::run(a, &cli.global)
        }
        Command::Wazuh(WazuhCommand::Install(a)) => wazuh_install::run(a, &cli.global),
        Command::Wazuh(WazuhCommand::Rules(a)) => wazuh_rules::run(a, &cli.global),
        Command::Block(a) => block::run(a, &cli.global),
        Command::Report(a) => report::run(a, &cli.global),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("repute: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line. Library errors often carry their cause in their own
/// text (`config file X: {source}`) and as their `source()` as well; a cause whose text is
/// already in the line is not repeated (no "Is a directory: Is a directory").
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
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
