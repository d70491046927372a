//! Settings from the TOML file, the environment and flags, and the API key kept secret.
//!
//! (Skeleton: the types every door uses. Loading is filled in by the "Reputation" issue.)

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The AbuseIPDB API key. Its `Debug` and `Display` never show it; only
/// [`ApiKey::expose`] does, for the one header that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where reputation answers are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSetting {
    /// A SQLite file shared by every process on this host.
    Sqlite(PathBuf),
    /// No cache: every lookup goes to the provider.
    Disabled,
}

/// Blocking settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSettings {
    /// `auto` (nftables when `nft` exists, else ipset), `nftables` or `ipset`.
    pub backend: String,
    /// nftables table name (family `inet`).
    pub table: String,
    /// Also drop forwarded traffic from blocked addresses.
    pub forward: bool,
    /// How long a block lasts when no duration is given.
    pub default_duration: Duration,
    /// At most this many addresses blocked at once.
    pub max_entries: usize,
    /// Decline to block an address whose score is below this (active response gate).
    pub min_score: Option<u8>,
}

impl Default for BlockSettings {
    fn default() -> Self {
        BlockSettings {
            backend: "auto".into(),
            table: "repute".into(),
            forward: false,
            default_duration: Duration::from_secs(3600),
            max_entries: 65_536,
            min_score: None,
        }
    }
}

/// Everything a door needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub api_key: Option<ApiKey>,
    /// API base, e.g. `https://api.abuseipdb.com/api/v2` (a URL ending in `/check` is accepted
    /// and trimmed).
    pub api_url: String,
    pub cache: CacheSetting,
    /// Directory for the state store (default `/var/lib/repute`, `REPUTE_STATE_DIR`).
    pub state_dir: PathBuf,
    /// `maxAgeInDays` for checks, 1..=365.
    pub max_age_days: u16,
    /// How long a known address stays cached.
    pub positive_ttl: Duration,
    /// How long an address unknown to AbuseIPDB stays cached.
    pub negative_ttl: Duration,
    /// Addresses and networks never looked up, reported or blocked.
    pub allowlist: Vec<ipnet::IpNet>,
    pub connect_timeout: Duration,
    /// Bound on one whole HTTP exchange.
    pub timeout: Duration,
    pub retries: u32,
    /// Score from which a verdict is an alert.
    pub alert_min_score: u8,
    pub block: BlockSettings,
}

impl Default for Config {
    fn default() -> Self {
        let state_dir = PathBuf::from("/var/lib/repute");
        Config {
            api_key: None,
            api_url: "https://api.abuseipdb.com/api/v2".into(),
            cache: CacheSetting::Sqlite(state_dir.join("repute.sqlite")),
            state_dir,
            max_age_days: 90,
            positive_ttl: Duration::from_secs(24 * 3600),
            negative_ttl: Duration::from_secs(6 * 3600),
            allowlist: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            retries: 1,
            alert_min_score: 1,
            block: BlockSettings::default(),
        }
    }
}

impl Config {
    /// The SQLite file that holds the cache, quota state and block state: the cache file when
    /// the cache is SQLite, else `repute.sqlite` in the state directory.
    pub fn store_path(&self) -> PathBuf {
        match &self.cache {
            CacheSetting::Sqlite(p) => p.clone(),
            CacheSetting::Disabled => self.state_dir.join("repute.sqlite"),
        }
    }
}
