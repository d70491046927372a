//! `repute wazuh uninstall`: take repute back out of a Wazuh manager home (see
//! [`repute::wazuh::uninstall`]): its blocks in `ossec.conf` (after a backup), its programs,
//! rules and cache; the API key only with `--remove-key`.
//!
//! Exit codes: 0 removed or nothing to do (also for `--dry-run`), 2 error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use repute::wazuh::uninstall::{self, Request};

use super::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Wazuh manager home.
    #[arg(long, value_name = "DIR", default_value = "/var/ossec")]
    pub wazuh_dir: PathBuf,
    /// Also remove the API key (etc/repute/abuseipdb.key), which is kept by default.
    #[arg(long)]
    pub remove_key: bool,
    /// Print what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    let plan = uninstall::plan(&Request {
        wazuh_dir: args.wazuh_dir.clone(),
        remove_key: args.remove_key,
    })?;
    let mut out = std::io::stdout().lock();
    for note in &plan.notes {
        writeln!(out, "note: {note}")?;
    }
    if plan.is_empty() {
        writeln!(
            out,
            "nothing to do: repute is not installed in {}",
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
    writeln!(
        out,
        "Restart the manager to unload the changes: systemctl restart wazuh-manager (or {}/bin/wazuh-control restart)",
        args.wazuh_dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
