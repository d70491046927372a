//! Blocking addresses in the kernel firewall, with expiry, safety checks and state.
//!
//! Two backends sit behind one [`Firewall`] trait: [`nft::Nftables`] (our own `inet` table with
//! an IPv4 and an IPv6 set, `flags timeout`, and a drop rule hooked into input, and forward when
//! configured) and [`ipset::Ipset`] (two `hash:ip` sets with per-entry timeouts, matched by
//! iptables/ip6tables rules) for hosts without `nft`. Both spawn the tools with argument
//! vectors (nft reads JSON we build with serde on stdin), so no input ever reaches a shell.
//!
//! Every entry carries a kernel timeout, so a block expires even if repute never runs again.
//! [`Blocker`] puts the pieces together for the commands (`repute block`, the Wazuh active
//! response): it refuses unsafe addresses ([`safety`]), enforces the entry limit, applies the
//! block, and records why in the SQLite store ([`state`]), which `list` reconciles with the
//! kernel. [`command`] runs the tools; [`parse_duration`] reads block durations (`1h30m`) with
//! the crate's one duration parser; [`teardown`] takes everything of ours back out.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod blocker;
pub mod command;
pub use crate::duration;
pub mod ipset;
pub mod nft;
pub mod safety;
pub mod state;
pub mod teardown;

pub use blocker::{Added, ArAdded, ArDeleted, Blocker, Listed, Request};
pub use safety::{Refusal, SafetyPolicy};

use crate::config::BlockSettings;
use crate::duration::DurationError;

/// A block duration: the crate's one duration parser ([`crate::duration::parse_duration`]),
/// in whole seconds, the unit of the kernel's set timeouts.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let duration = crate::duration::parse_duration(text)?;
    if duration.subsec_nanos() != 0 {
        return Err(DurationError {
            input: text.to_string(),
            why: "a block lasts whole seconds",
        });
    }
    Ok(duration)
}

/// Why a block operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed while {action}: {detail}")]
    Tool {
        program: String,
        action: String,
        detail: String,
    },
    #[error("unexpected output from {program}: {detail}")]
    Output { program: String, detail: String },
    #[error("block state in {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown firewall backend {0:?} (expected auto, nftables or ipset)")]
    UnknownBackend(String),
    #[error("cannot list this host's addresses: {0}")]
    Interfaces(#[source] std::io::Error),
    #[error("no firewall backend: neither nft nor ipset is in PATH")]
    NoBackend,
    #[error("invalid set name {0:?}: use 1 to 24 letters, digits, '_' or '-'")]
    BadName(String),
    #[error("refused to block {ip}: {reason}")]
    Refused { ip: IpAddr, reason: Refusal },
    #[error("block duration {requested}s is longer than the {backend} backend allows ({max}s)")]
    TooLong {
        requested: u64,
        max: u64,
        backend: &'static str,
    },
}

/// One address in the kernel set, with the time left before the kernel drops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelEntry {
    pub ip: IpAddr,
    /// `None` when the entry has no timeout (added by hand without one).
    pub remaining: Option<Duration>,
}

/// A kernel firewall that drops traffic from a set of addresses with timeouts. `Send + Sync`,
/// so one [`Blocker`] serves every thread of a long-running command.
pub trait Firewall: Send + Sync {
    /// `nftables` or `ipset`: recorded in the block state.
    fn name(&self) -> &'static str;
    /// Creates the table/sets/rules when missing; safe to call any number of times.
    fn ensure(&self) -> Result<(), BlockError>;
    /// Adds `ip` for `timeout` (replacing the timeout when it is already there).
    fn add(&self, ip: IpAddr, timeout: Duration) -> Result<(), BlockError>;
    /// Removes `ip`; returns whether it was there.
    fn del(&self, ip: IpAddr) -> Result<bool, BlockError>;
    /// Every address in the sets. Creates nothing: no table yet means an empty list.
    fn list(&self) -> Result<Vec<KernelEntry>, BlockError>;
    /// Empties the sets (rules and sets stay).
    fn flush(&self) -> Result<(), BlockError>;
}

/// Table and set names end up in nft JSON and ipset argument vectors; keep them plain.
fn check_name(name: &str) -> Result<(), BlockError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || name.len() > 24 || !name.chars().all(plain) {
        return Err(BlockError::BadName(name.to_string()));
    }
    Ok(())
}

/// The backend named by `settings.backend`: `auto` takes nftables when `nft` is in `PATH`,
/// else ipset when `ipset` is.
pub fn open_backend(settings: &BlockSettings) -> Result<Box<dyn Firewall>, BlockError> {
    check_name(&settings.table)?;
    match settings.backend.as_str() {
        "nftables" | "nft" => Ok(Box::new(nft::Nftables::new(settings))),
        "ipset" | "iptables" => Ok(Box::new(ipset::Ipset::new(settings))),
        "auto" => {
            if command::in_path("nft") {
                Ok(Box::new(nft::Nftables::new(settings)))
            } else if command::in_path("ipset") {
                Ok(Box::new(ipset::Ipset::new(settings)))
            } else {
                Err(BlockError::NoBackend)
            }
        }
        other => Err(BlockError::UnknownBackend(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names_are_plain() {
        assert!(check_name("repute").is_ok());
        assert!(check_name("re_pute-2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("x;y").is_err());
        assert!(check_name(&"a".repeat(25)).is_err());
    }

    #[test]
    fn unknown_backend_is_named() {
        let settings = BlockSettings {
            backend: "pf".into(),
            ..BlockSettings::default()
        };
        let err = open_backend(&settings).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown firewall backend \"pf\" (expected auto, nftables or ipset)")
        );
    }
}
