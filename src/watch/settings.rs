//! The `[watch]` section of the configuration file, for what flags do not say.
//!
//! ```toml
//! [watch]
//! files = ["/var/log/auth.log"]   # as --file
//! journal = false                 # as --journal
//! journal_directory = "/var/log/journal/remote"
//! max_retry = 5                   # tries within find_time that earn a ban
//! find_time = "10m"
//! ban_time = "10m"
//! ban_time_factor = 2             # each further ban of the same address lasts twice as long
//! ban_time_max = "1w"
//! ban_score = 90                  # ban at the first attack from a score this high; false: never
//! ipv6_prefix = 64                # IPv6 counted and banned per /64
//! max_tracked = 100000            # addresses remembered at most
//! metrics_listen = "127.0.0.1:9477"
//! poll_interval = "250ms"
//! ```
//!
//! Unknown keys are refused, as in the rest of the file. Layers: defaults, this section,
//! then the flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::policy::PolicySettings;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSection {
    pub files: Option<Vec<PathBuf>>,
    pub journal: Option<bool>,
    pub journal_directory: Option<PathBuf>,
    pub max_retry: Option<u32>,
    pub find_time: Option<String>,
    pub ban_time: Option<String>,
    pub ban_time_factor: Option<u32>,
    pub ban_time_max: Option<String>,
    pub ban_score: Option<BanScore>,
    pub ipv6_prefix: Option<u8>,
    pub max_tracked: Option<usize>,
    pub metrics_listen: Option<String>,
    pub poll_interval: Option<String>,
}

/// `ban_score = 90` or `ban_score = false`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum BanScore {
    Score(u8),
    Enabled(bool),
}

/// Why the section is wrong; names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("config file {path}: [watch] {message}")]
pub struct SettingsError {
    pub path: PathBuf,
    pub message: String,
}

/// What the section settles, after defaults.
#[derive(Debug, Clone, Default)]
pub struct WatchFileSettings {
    pub files: Vec<PathBuf>,
    pub journal: bool,
    pub journal_directory: Option<PathBuf>,
    pub policy: PolicySettings,
    pub metrics_listen: Option<SocketAddr>,
    pub poll_interval: Option<Duration>,
}

/// The file `--config`, `REPUTE_CONFIG` or the default path names (as [`crate::config`]).
pub fn config_file(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("REPUTE_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| Some(PathBuf::from(crate::config::DEFAULT_CONFIG_PATH)).filter(|p| p.exists()))
}

/// Reads the `[watch]` section of `path` (defaults when there is no file or no section).
pub fn load(path: Option<&Path>) -> Result<WatchFileSettings, SettingsError> {
    let mut settings = WatchFileSettings::default();
    let Some(path) = path else {
        return Ok(settings);
    };
    let err = |message: String| SettingsError {
        path: path.to_path_buf(),
        message,
    };
    // The rest of the file is checked by the configuration loader.
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| err(e.message().to_string()))?;
    let Some(section) = table.get("watch") else {
        return Ok(settings);
    };
    let section: WatchSection = section
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| err(e.message().trim().replace('\n', " ")))?;
    let duration = |key: &str, text: &str| {
        crate::block::parse_duration(text).map_err(|e| err(format!("{key}: {e}")))
    };
    let p = &mut settings.policy;
    if let Some(n) = section.max_retry {
        p.max_retry = check_max_retry(n).map_err(|m| err(format!("max_retry: {m}")))?;
    }
    if let Some(t) = &section.find_time {
        p.find_time = duration("find_time", t)?;
    }
    if let Some(t) = &section.ban_time {
        p.ban_time = duration("ban_time", t)?;
    }
    if let Some(t) = &section.ban_time_max {
        p.ban_time_max = duration("ban_time_max", t)?;
    }
    if let Some(f) = section.ban_time_factor {
        p.ban_time_factor = f.clamp(1, 100);
    }
    match section.ban_score {
        Some(BanScore::Score(s)) if s <= 100 => p.ban_score = Some(s),
        Some(BanScore::Score(s)) => return Err(err(format!("ban_score: {s} is above 100"))),
        Some(BanScore::Enabled(false)) => p.ban_score = None,
        Some(BanScore::Enabled(true)) | None => {}
    }
    if let Some(prefix) = section.ipv6_prefix {
        if !(32..=128).contains(&prefix) {
            return Err(err(format!("ipv6_prefix: {prefix} is not within 32..=128")));
        }
        p.ipv6_prefix = prefix;
    }
    if let Some(n) = section.max_tracked {
        if n == 0 {
            return Err(err("max_tracked: must be at least 1".into()));
        }
        p.max_tracked = n;
    }
    if let Some(addr) = &section.metrics_listen {
        settings.metrics_listen =
            Some(parse_listen(addr).map_err(|m| err(format!("metrics_listen: {m}")))?);
    }
    if let Some(t) = &section.poll_interval {
        let d =
            crate::duration::parse_duration(t).map_err(|m| err(format!("poll_interval: {m}")))?;
        settings.poll_interval = Some(d.clamp(Duration::from_millis(10), Duration::from_secs(10)));
    }
    settings.files = section.files.unwrap_or_default();
    settings.journal = section.journal.unwrap_or(false);
    settings.journal_directory = section.journal_directory;
    Ok(settings)
}

/// `--max-retry`: 1 to 1000.
pub fn check_max_retry(n: u32) -> Result<u32, String> {
    if (1..=1000).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is not within 1..=1000"))
    }
}

/// `127.0.0.1:9477`, `[::1]:9477`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an address and port such as 127.0.0.1:9477"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<WatchFileSettings, SettingsError> {
        let dir = tempfile::tempdir().map_err(|e| SettingsError {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let path = dir.path().join("repute.toml");
        std::fs::write(&path, text).map_err(|e| SettingsError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        load(Some(&path))
    }

    #[test]
    fn section_values_and_errors_name_the_key() {
        let s = load_text(
            "[watch]\nmax_retry = 3\nban_time = \"1h30m\"\nban_score = false\nipv6_prefix = 56\n",
        )
        .expect("valid");
        assert_eq!(s.policy.max_retry, 3);
        assert_eq!(s.policy.ban_time, Duration::from_secs(5400));
        assert_eq!(s.policy.ban_score, None);
        assert_eq!(s.policy.ipv6_prefix, 56);
        let e = load_text("[watch]\nfind_time = \"soon\"\n").expect_err("bad duration");
        assert!(e.to_string().contains("[watch] find_time"), "{e}");
        let e = load_text("[watch]\nmax_retries = 3\n").expect_err("unknown key");
        assert!(e.to_string().contains("max_retries"), "{e}");
        assert!(load_text("api_url = \"https://x\"\n").is_ok());
    }
}
