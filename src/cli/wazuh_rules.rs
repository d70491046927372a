//! `repute wazuh rules`: print the shipped Wazuh rules (or the `<integration>` block).

use std::io::Write;
use std::process::ExitCode;

use repute::wazuh::ruleset;

use super::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the <integration> block for ossec.conf instead of the rules.
    #[arg(long)]
    pub integration_block: bool,
}

pub fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    let text = if args.integration_block {
        ruleset::INTEGRATION_BLOCK.to_string()
    } else {
        ruleset::printable()
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
