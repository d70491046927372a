//! `repute block`: block, unblock, list and flush addresses in the kernel firewall, for people
//! and scripts.
//!
//! Exit codes: 0 done; 1 refused (a safety check or the entry limit, with the reason on
//! stderr) or nothing to do (`del` of an address that was not blocked); 2 error.

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use repute::block::duration::format_duration;
use repute::block::{BlockError, Blocker, Listed, Request, parse_duration};
use repute::config::Config;
use repute::decisions::{Ban, Decisions, this_host, when_shared};
use repute::store::StoreError;

use super::Global;

/// Reasons longer than this are cut: they are notes for people, not documents.
const MAX_REASON_CHARS: usize = 200;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Block an address (IPv4 or IPv6) for a while.
    Add {
        /// The address to block.
        ip: String,
        /// How long: 90s, 10m, 1h, 2d, 1w, 1h30m (default: block.default_duration).
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        /// Why, shown by `list`.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Block even a non-public, allowlisted, own or SSH-session address.
        #[arg(long)]
        force: bool,
    },
    /// Unblock an address.
    Del {
        /// The address to unblock.
        ip: String,
    },
    /// Show blocked addresses, time left and why.
    List {
        /// `table` for people, `json` for one JSON object per line.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Unblock every address.
    Flush,
    /// Remove everything repute put in the firewall (its nftables table, its ipsets and
    /// their iptables rules) and forget the block records; nothing else is touched. Exit 1
    /// when there was nothing to remove.
    Teardown,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    /// One JSON object per line (`jsonl` is an alias).
    #[value(alias = "jsonl")]
    Json,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    // Arguments are checked before the firewall is touched, so a typo is named as such.
    match args.action {
        Action::Add {
            ip,
            duration,
            reason,
            force,
        } => {
            let duration = match duration {
                Some(text) => parse_duration(&text)?,
                None => config.block.default_duration,
            };
            let request = Request {
                ip: parse_ip(&ip)?,
                duration,
                reason: reason.map(|r| one_line_reason(&r)),
                force,
            };
            let code = add(&Blocker::for_config(&config)?, &request)?;
            if code == ExitCode::SUCCESS {
                let reason = request.reason.clone().unwrap_or_default();
                let ban = Ban::new(request.ip, request.duration, reason);
                share(&config, |d| d.record(&ban).map(drop));
            }
            Ok(code)
        }
        Action::Del { ip } => {
            let ip = parse_ip(&ip)?;
            let mut shared = false;
            share(&config, |d| {
                d.revoke(ip, &this_host()).map(|had| shared = had)
            });
            let code = del(&Blocker::for_config(&config)?, ip)?;
            // An address banned by another host is not in this host's set, but the fleet's
            // decision is gone: that is done, not "nothing to do".
            Ok(if shared { ExitCode::SUCCESS } else { code })
        }
        Action::List { format } => list(&Blocker::for_config(&config)?, format),
        Action::Flush => {
            // No `list` first: it would put recorded blocks back into the kernel.
            let count = Blocker::for_config(&config)?.flush()?;
            println!(
                "unblocked {count} address{}",
                if count == 1 { "" } else { "es" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Teardown => teardown(&config),
    }
}

fn teardown(config: &Config) -> anyhow::Result<ExitCode> {
    let removed = repute::block::teardown::teardown(config)?;
    if removed.is_empty() {
        println!(
            "nothing to remove: no table inet {0}, no ipset {0}-v4 or {0}-v6, no block record",
            config.block.table
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(table) = &removed.nft_table {
        println!("removed nftables {table}");
    }
    for set in &removed.ipsets {
        println!("removed ipset {set} and its iptables rules");
    }
    if removed.records > 0 {
        let s = if removed.records == 1 { "" } else { "s" };
        println!("forgot {} block record{s}", removed.records);
    }
    Ok(ExitCode::SUCCESS)
}

/// Records a decision in the fleet's store when one is configured; a store that fails only
/// costs the sharing (the local block stands), and says so.
fn share(config: &Config, f: impl FnOnce(&dyn Decisions) -> Result<(), StoreError>) {
    if let Some(Err(e)) = when_shared(config, f) {
        eprintln!("repute: not shared with the other hosts: {e}");
    }
}

/// An address as typed, by the crate's one address parser ([`repute::addr::parse`], as
/// `repute check` reads its arguments); host names and anything else are refused with the
/// reason (no lookups, ever).
pub fn parse_ip(text: &str) -> anyhow::Result<IpAddr> {
    Ok(repute::addr::parse(text)?)
}

fn add(blocker: &Blocker, request: &Request) -> anyhow::Result<ExitCode> {
    match blocker.add(request) {
        Ok(added) => {
            let verb = if added.renewed { "renewed" } else { "blocked" };
            println!(
                "{verb} {} for {} ({})",
                added.ip,
                format_duration(added.duration),
                added.backend
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(BlockError::Refused { ip, reason }) => {
            let hint = if reason.is_forceable() {
                "; use --force to block it anyway"
            } else {
                ""
            };
            eprintln!("repute: refused to block {ip}: {reason}{hint}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

/// Reasons are shown one per table row: no control characters, bounded length.
fn one_line_reason(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect()
}

fn del(blocker: &Blocker, ip: IpAddr) -> anyhow::Result<ExitCode> {
    if blocker.del(ip)? {
        println!("unblocked {ip}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("repute: {ip} was not blocked");
        Ok(ExitCode::from(1))
    }
}

fn list(blocker: &Blocker, format: Format) -> anyhow::Result<ExitCode> {
    let entries = blocker.list()?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            for entry in &entries {
                serde_json::to_writer(&mut out, entry)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Table => write_table(&mut out, &entries)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn write_table(out: &mut impl Write, entries: &[Listed]) -> std::io::Result<()> {
    if entries.is_empty() {
        return writeln!(out, "no address is blocked");
    }
    let width = entries
        .iter()
        .map(|e| e.ip.to_string().len())
        .max()
        .unwrap_or(0)
        .max("ADDRESS".len());
    writeln!(
        out,
        "{:width$}  {:>13}  {:8}  REASON",
        "ADDRESS", "REMAINING", "BACKEND"
    )?;
    for entry in entries {
        let remaining = entry
            .remaining_secs
            .map_or("-".to_string(), |s| format_duration(Duration::from_secs(s)));
        let mut reason = entry.reason.clone().unwrap_or_else(|| "-".into());
        if entry.restored {
            reason.push_str(" (restored to the kernel set)");
        }
        if let Some(refusal) = &entry.not_restored {
            reason.push_str(&format!(" (not restored: {refusal}; record forgotten)"));
        }
        writeln!(
            out,
            "{:width$}  {:>13}  {:8}  {reason}",
            entry.ip.to_string(),
            remaining,
            entry.backend.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}

/// The configuration for the block commands: file, environment (`REPUTE_STATE_DIR`, …), defaults.
pub(super) fn load_config(global: &Global) -> anyhow::Result<Config> {
    Ok(Config::load(global.config.as_deref())?)
}
