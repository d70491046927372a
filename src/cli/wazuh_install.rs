//! `repute wazuh install`: put this binary, the rules, the key and the `<integration>` block
//! into a Wazuh manager home, idempotently (see [`repute::wazuh::install`]). With
//! `--active-response`, also the binary as `active-response/bin/repute-block` and the
//! `<command>` and `<active-response>` blocks that run it on the enrichment rules. With
//! `--agent`, into an agent home: only `active-response/bin/repute-block`.
//!
//! Exit codes: 0 installed or nothing to do (also for `--dry-run`), 2 error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use repute::wazuh::active_response::DEFAULT_TIMEOUT_SECS;
use repute::wazuh::install::{self, ActiveResponse, Request};

use super::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Wazuh home (the manager's; an agent's with --agent).
    #[arg(long, value_name = "DIR", default_value = "/var/ossec")]
    pub wazuh_dir: PathBuf,
    /// A file holding the AbuseIPDB API key, installed as etc/repute/abuseipdb.key.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Also install the active response: active-response/bin/repute-block and the <command>
    /// and <active-response> blocks that block the addresses of enrichment alerts with an
    /// abuse confidence of 50 or more (rules 110113, 110114).
    #[arg(long)]
    pub active_response: bool,
    /// How long the active response blocks an address, in seconds (the <timeout>).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..), requires = "active_response")]
    pub ar_timeout: u64,
    /// Also decline to block below this AbuseIPDB score (0-100), as `--min-score N` in the
    /// command's <extra_args>; the rules already select 50 and more.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100),
          requires = "active_response")]
    pub ar_min_score: Option<u8>,
    /// The home is a Wazuh agent's (its etc/ossec.conf has a <client> section, or it has
    /// bin/wazuh-agentd): install only active-response/bin/repute-block, which execd runs
    /// when the manager's <active-response> reaches this agent. No API key, rules or
    /// ossec.conf change.
    #[arg(long, conflicts_with = "active_response")]
    pub agent: bool,
    /// Print what would change, as a unified diff, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    let binary = std::env::current_exe().context("cannot find the running program")?;
    let request = Request {
        wazuh_dir: args.wazuh_dir.clone(),
        api_key_file: args.api_key_file.clone(),
        binary,
        active_response: args.active_response.then(|| ActiveResponse {
            timeout_secs: args.ar_timeout,
            min_score: args.ar_min_score,
            ..ActiveResponse::default()
        }),
        agent: args.agent,
    };
    let plan = install::plan(&request)?;
    let mut out = std::io::stdout().lock();
    for note in &plan.notes {
        writeln!(out, "note: {note}")?;
    }
    if plan.is_empty() {
        writeln!(
            out,
            "nothing to do: {} is up to date",
            args.wazuh_dir.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        write!(out, "{}", plan.diff())?;
        writeln!(out, "dry run: nothing was changed")?;
        return Ok(ExitCode::SUCCESS);
    }
    for line in plan.apply()? {
        writeln!(out, "{line}")?;
    }
    if args.agent {
        // execd starts the program afresh for every alert: nothing on the agent to restart.
        writeln!(
            out,
            "The manager must run it: repute wazuh install --active-response on the manager (see --help for <location>)"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "Restart the manager to load the changes: systemctl restart wazuh-manager (or {}/bin/wazuh-control restart)",
        args.wazuh_dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
