//! `repute block teardown`: takes out of the kernel everything repute put there (our nftables
//! table, our two ipsets and the iptables rules that use them) and forgets the block records,
//! so that nothing is restored afterwards. Nothing else is touched: another table, another
//! set or another rule is not ours, whatever it holds.
//!
//! Both backends are torn down whatever `block.backend` says, since a host may have used
//! either (ipset before nftables was installed, say); a backend whose tool is missing has
//! nothing of ours in the kernel.

use super::command::in_path;
use super::ipset::Ipset;
use super::nft::Nftables;
use super::state::State;
use super::{BlockError, check_name};
use crate::config::Config;

/// What a teardown removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// `table inet <name>`, when it existed.
    pub nft_table: Option<String>,
    /// The ipsets destroyed (their rules went first).
    pub ipsets: Vec<String>,
    /// Block records forgotten from the state store.
    pub records: usize,
}

impl Removed {
    pub fn is_empty(&self) -> bool {
        self.nft_table.is_none() && self.ipsets.is_empty() && self.records == 0
    }
}

/// Tears down what `config` names (the table and set names, the state store).
pub fn teardown(config: &Config) -> Result<Removed, BlockError> {
    check_name(&config.block.table)?;
    let mut removed = Removed::default();
    // The state first, under its change lock: a concurrent `list` must not restore what is
    // about to go. A store that does not exist holds no record (and is not created).
    let store = config.store_path();
    let state = if store.exists() {
        Some(State::open(&store)?)
    } else {
        None
    };
    let _lock = state.as_ref().map(State::lock).transpose()?;
    if let Some(state) = &state {
        removed.records = state.all()?.len();
        state.clear()?;
    }
    if in_path("nft") && Nftables::new(&config.block).teardown()? {
        removed.nft_table = Some(format!("table inet {}", config.block.table));
    }
    if in_path("ipset") {
        removed.ipsets = Ipset::new(&config.block).teardown()?;
    }
    Ok(removed)
}
