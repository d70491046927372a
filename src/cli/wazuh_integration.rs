//! `repute wazuh integration` and the `custom-*` executable names. (Skeleton.)

use std::ffi::OsString;
use std::process::ExitCode;

use super::Global;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// True when the process was started by integratord (argv[0] `integrations`, or an
/// executable named `custom-*`).
pub fn called_by_integratord(_args: &[OsString]) -> bool {
    false
}

pub fn run_as_integratord_child(_args: &[OsString]) -> ExitCode {
    ExitCode::from(2)
}

pub fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
