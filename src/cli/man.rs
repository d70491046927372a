//! `repute man DIR` (hidden): writes the manual pages, `repute.1` and one
//! `repute-<command>.1` per command (`repute-wazuh-install.1`, …), from the same definitions
//! as `--help`, so they cannot drift apart. `packaging/build-deb` runs it at package time.
//!
//! Exit codes: 0 written, 2 error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write the pages into (created when missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut cmd = super::Cli::command();
    cmd.build();
    let mut written = 0;
    write_pages(&cmd, None, &args.dir, &mut written)?;
    println!("wrote {written} manual pages to {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The page of `cmd` (named `parent-name`), then those of its visible subcommands.
fn write_pages(
    cmd: &clap::Command,
    parent: Option<&str>,
    dir: &Path,
    written: &mut usize,
) -> anyhow::Result<()> {
    let name = match parent {
        Some(parent) => format!("{parent}-{}", cmd.get_name()),
        None => cmd.get_name().to_string(),
    };
    let page = cmd.clone().name(name.clone());
    let path = dir.join(format!("{name}.1"));
    let mut text = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut text)
        .with_context(|| format!("rendering {}", path.display()))?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, Some(&name), dir, written)?;
    }
    Ok(())
}
