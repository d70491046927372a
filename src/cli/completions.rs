//! `repute completions SHELL`: the shell completion script, on stdout, for bash, zsh, fish
//! (and elvish, PowerShell). The Debian package installs them; by hand:
//! `repute completions bash > /etc/bash_completion.d/repute`.
//!
//! Exit codes: 0 written, 2 error (a closed output pipe is a normal end).

use std::process::ExitCode;

use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "repute", &mut out);
    std::io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}
