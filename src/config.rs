//! Settings from the TOML file, the environment and flags, and the API key kept secret.
//!
//! Every command builds its [`Config`] the same way, later layers winning: built-in defaults,
//! a Wazuh home's defaults, the TOML file (`--config FILE`, which must exist, else
//! `REPUTE_CONFIG`, else `/etc/repute/repute.toml` when it exists), the environment, then the
//! command's own flags ([`Overrides`]). Which keys and variables exist is said once, in
//! [`reference::SETTINGS`]; the environment is read through it and parsed as the file is.
//! [`show`] tells which layer set each value (`repute config show`). The key is best
//! given as a file (`api_key_file`, `ABUSEIPDB_API_KEY_FILE`) so it never sits in argv, and
//! [`ApiKey`] keeps it out of every `Debug`, `Display`, log line and error.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod reference;
pub mod show;

/// The AbuseIPDB API key. Its `Debug` and `Display` never show it; only
/// [`ApiKey::expose`] does, for the one header that needs it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
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

/// A checked proxy setting: `none`, or an `http://`/`https://` proxy URL, which may carry a
/// `user:pass@`: its `Debug` shows `***@` instead.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProxyUrl(String);

impl ProxyUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProxyUrl")
            .field(&redact_userinfo(&self.0))
            .finish()
    }
}

/// Where reputation answers are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSetting {
    /// A SQLite file shared by every process on this host.
    Sqlite(PathBuf),
    /// No cache: every lookup goes to the provider.
    Disabled,
    /// A Redis (or Redis Cluster) shared by several hosts.
    Redis(crate::fleet::RedisTarget),
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

/// Everything a command needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub api_key: Option<ApiKey>,
    /// The file the key was read from, when it came from one (`repute config show` says so).
    pub api_key_file: Option<PathBuf>,
    /// API base, e.g. `https://api.abuseipdb.com/api/v2` (a URL ending in `/check` is accepted
    /// and trimmed).
    pub api_url: String,
    pub cache: StoreSetting,
    /// Directory for the state store (default `/var/lib/repute`, `REPUTE_STATE_DIR`; when no
    /// layer names one and the system directory is not writable, the per-user
    /// `$XDG_CACHE_HOME/repute` or `~/.cache/repute`, see [`Config::per_user_state`]).
    pub state_dir: PathBuf,
    /// True when `state_dir` is the per-user fallback because `/var/lib/repute` is not
    /// writable by this user (`-v` says so).
    pub per_user_state: bool,
    /// The settings file that was read, if any (`-v` says which).
    pub settings_file: Option<PathBuf>,
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
    /// The `[report]` section (AbuseIPDB reporting).
    pub report: crate::report::ReportSettings,
    /// The HTTP(S) proxy for AbuseIPDB: `None` follows the environment (`HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), `Some("none")` uses no proxy, else this URL.
    pub proxy: Option<ProxyUrl>,
    /// A PEM bundle trusted instead of the compiled-in roots (a TLS-inspecting proxy's CA).
    pub ca_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        let state_dir = PathBuf::from(DEFAULT_STATE_DIR);
        Config {
            api_key: None,
            api_key_file: None,
            api_url: "https://api.abuseipdb.com/api/v2".into(),
            cache: StoreSetting::Sqlite(state_dir.join("repute.sqlite")),
            state_dir,
            per_user_state: false,
            settings_file: None,
            max_age_days: 90,
            positive_ttl: Duration::from_secs(24 * 3600),
            negative_ttl: Duration::from_secs(6 * 3600),
            allowlist: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            retries: 1,
            alert_min_score: 1,
            block: BlockSettings::default(),
            report: crate::report::ReportSettings::default(),
            proxy: None,
            ca_file: None,
        }
    }
}

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/repute/repute.toml";
/// The store directory on a host without Wazuh (a user who cannot write it gets a per-user one).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/repute";
/// The store directory inside a Wazuh home: `repute wazuh install` makes it 2770 root:wazuh,
/// so the integration (user `wazuh`) writes it and root (the active response, an
/// administrator's `repute check`) reads and writes it. On a Wazuh host it is the store of
/// every process, so that nothing is looked up twice.
pub const WAZUH_STATE_DIR: &str = "var/repute";
/// The key file `repute wazuh install` writes inside a Wazuh home.
pub const WAZUH_KEY_FILE: &str = "etc/repute/abuseipdb.key";
/// Where a command looks for Wazuh when `WAZUH_HOME` is unset.
pub const DEFAULT_WAZUH_HOME: &str = "/var/ossec";

/// The Wazuh home whose defaults a command (not run by Wazuh) takes: `WAZUH_HOME`, else
/// [`DEFAULT_WAZUH_HOME`], and only when it holds a repute store directory
/// ([`WAZUH_STATE_DIR`], made by `repute wazuh install` or by the integration's first run).
/// A host without one keeps [`DEFAULT_STATE_DIR`].
pub fn host_wazuh_home(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let home = env("WAZUH_HOME")
        .filter(|h| !h.trim().is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_WAZUH_HOME), PathBuf::from);
    home.join(WAZUH_STATE_DIR).is_dir().then_some(home)
}

/// Why a configuration could not be built. Every message names the input at fault; none
/// carries the API key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("API key file {path} is empty")]
    KeyFileEmpty { path: PathBuf },
    #[error("API key file {path}: {message}")]
    KeyFileInvalid { path: PathBuf, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl ConfigError {
    fn invalid(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            origin: origin.into(),
            message: message.into(),
        }
    }
}

/// Settings a command takes from its own flags; they win over the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub api_key: Option<ApiKey>,
    pub api_key_file: Option<PathBuf>,
    pub api_url: Option<String>,
    /// A SQLite path, `none`, or (later) a `redis://` URL, as `REPUTE_CACHE`.
    pub cache: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub max_age_days: Option<u16>,
    pub connect_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub positive_ttl: Option<Duration>,
    pub negative_ttl: Option<Duration>,
    pub alert_min_score: Option<u8>,
    /// Replaces the allowlist.
    pub allowlist: Option<Vec<ipnet::IpNet>>,
    pub block_min_score: Option<u8>,
    pub proxy: Option<String>,
    pub ca_file: Option<PathBuf>,
}

/// The TOML file, as written by a person: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// An [`ApiKey`], so that the derived `Debug` never shows it.
    api_key: Option<ApiKey>,
    api_key_file: Option<PathBuf>,
    api_url: Option<String>,
    /// `cache` is the older name.
    #[serde(alias = "cache")]
    store: Option<String>,
    store_password_file: Option<PathBuf>,
    store_prefix: Option<String>,
    store_ca_file: Option<PathBuf>,
    store_timeout: Option<DurationText>,
    store_failure: Option<String>,
    state_dir: Option<PathBuf>,
    max_age_days: Option<i64>,
    positive_ttl: Option<DurationText>,
    negative_ttl: Option<DurationText>,
    allowlist: Option<Vec<String>>,
    connect_timeout: Option<DurationText>,
    timeout: Option<DurationText>,
    retries: Option<u32>,
    alert_min_score: Option<i64>,
    block: Option<FileBlock>,
    report: Option<crate::report::ReportSettings>,
    proxy: Option<String>,
    ca_file: Option<PathBuf>,
    /// `repute watch`'s section, read by `watch::settings` (kept here so the file's other
    /// keys stay checked).
    #[allow(dead_code)]
    watch: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBlock {
    backend: Option<String>,
    table: Option<String>,
    forward: Option<bool>,
    default_duration: Option<DurationText>,
    max_entries: Option<usize>,
    min_score: Option<i64>,
}

/// A duration in the file: a number of seconds, or text such as `90s`, `15m`, `6h`, `1d`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DurationText {
    Seconds(u64),
    Text(String),
}

impl DurationText {
    /// Through the crate's one parser, so a number of seconds obeys the same rules as text
    /// (`0` is refused).
    fn resolve(&self, origin: &str) -> Result<Duration, ConfigError> {
        let parsed = match self {
            DurationText::Seconds(s) => crate::duration::parse_duration(&s.to_string()),
            DurationText::Text(t) => crate::duration::parse_duration(t),
        };
        parsed.map_err(|e| ConfigError::invalid(origin, e.to_string()))
    }
}

impl Config {
    /// The SQLite file that holds the cache, quota state and block state: the cache file when
    /// the cache is SQLite, else `repute.sqlite` in the state directory.
    pub fn store_path(&self) -> PathBuf {
        match &self.cache {
            StoreSetting::Sqlite(p) => p.clone(),
            StoreSetting::Disabled | StoreSetting::Redis(_) => self.state_dir.join("repute.sqlite"),
        }
    }

    /// Defaults, then the Wazuh home's defaults when this host has one with a repute store,
    /// then the file (`path`, which must exist, else `REPUTE_CONFIG`, else
    /// [`DEFAULT_CONFIG_PATH`] when it exists), then the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with(path, &Overrides::default())
    }

    /// As [`Config::load`], then the command's flags.
    pub fn load_with(path: Option<&Path>, flags: &Overrides) -> Result<Config, ConfigError> {
        Config::load_from(path, |name| std::env::var(name).ok(), flags)
    }

    /// As [`Config::load_with`], with the environment read through `env` (tests pass a map).
    /// The Wazuh home is the one this host has ([`host_wazuh_home`]), if any.
    pub fn load_from(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let home = host_wazuh_home(&env);
        Config::load_layered(path, home.as_deref(), env, flags)
    }

    /// The one loader, every layer named: defaults, then the defaults of the Wazuh home
    /// `wazuh_home` (its store `var/repute`, its installed key file), then the settings file,
    /// then the environment, then `flags` (the integration passes its options file and
    /// arguments here and on top; a command its flags). The integration and the active
    /// response pass the home they run from; commands pass [`host_wazuh_home`].
    pub fn load_layered(
        path: Option<&Path>,
        wazuh_home: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let file = settings_file(path, &env);
        Config::load_layers(file.as_deref(), wazuh_home, env, flags)
    }

    /// [`Config::load_layered`] once the settings file is known (`repute config show` runs it
    /// with layers left out, to tell which layer set what).
    fn load_layers(
        file: Option<&Path>,
        wazuh_home: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut builder = Builder::default();
        if let Some(home) = wazuh_home {
            builder.apply_wazuh_home(home);
        }
        if let Some(file) = file {
            builder.apply_file(file)?;
            builder.config.settings_file = Some(file.to_path_buf());
        }
        builder.apply_env(&env)?;
        builder.apply_flags(flags)?;
        builder.finish()
    }

    /// Reads the key from `path` and remembers which file it was.
    fn set_key_file(&mut self, path: PathBuf) -> Result<(), ConfigError> {
        self.api_key = Some(read_key_file(&path)?);
        self.api_key_file = Some(path);
        Ok(())
    }

    /// A one-line description of the settings, for `--debug` logs: every top-level setting of
    /// the table as `repute config show` prints it (never the key itself, only set/unset).
    pub fn summary(&self) -> String {
        reference::SETTINGS
            .iter()
            .filter(|s| !s.file.is_empty() && s.section().is_empty())
            .map(|s| format!("{}={}", s.name(), show::value(s, self)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Accumulates the layers; the cache path is only defaulted at the end, so that a
/// `state_dir` given in any layer moves it.
#[derive(Default)]
struct Builder {
    config: Config,
    cache: Option<(String, String)>,
    /// Some layer named the state directory: no per-user fallback then.
    state_dir_given: bool,
    /// `$XDG_CACHE_HOME/repute`, else `$HOME/.cache/repute` (absolute paths only).
    user_state_dir: Option<PathBuf>,
    redis: crate::fleet::RedisOptions,
    /// The Wazuh home's installed key file: read at the end, and only when no layer gave a
    /// key, so that a key given later is never blocked by a broken default.
    fallback_key_file: Option<PathBuf>,
}

impl Builder {
    fn apply_wazuh_home(&mut self, home: &Path) {
        self.config.state_dir = home.join(WAZUH_STATE_DIR);
        let key = home.join(WAZUH_KEY_FILE);
        // `symlink_metadata`, not `exists`: a dangling symlink there is a broken key file to
        // name, not "no key configured".
        if std::fs::symlink_metadata(&key).is_ok() {
            self.fallback_key_file = Some(key);
        }
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // Every key must be in the settings table, the one list of names (the `[watch]`
        // section's too, though `watch::settings` reads its values).
        reference::check_file_keys(&text).map_err(|(line, message)| ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            line: e
                .span()
                .map(|s| text.get(..s.start).unwrap_or(&text).matches('\n').count() + 1),
            message: e.message().trim().replace('\n', " "),
        })?;
        let origin = |key: &str| format!("config file {} key `{key}`", path.display());
        self.apply_settings(file, Some(path), &origin)
    }

    /// The settings of one layer, as the file writes them (the environment's are turned into
    /// the same form, so both layers parse and check every value the same way). `base` is the
    /// settings file, beside which relative paths are resolved; `origin` names a key's source
    /// in errors.
    fn apply_settings(
        &mut self,
        file: FileConfig,
        base: Option<&Path>,
        origin: &dyn Fn(&str) -> String,
    ) -> Result<(), ConfigError> {
        let resolve = |p: PathBuf| match base {
            Some(base) => resolve_beside(base, &p),
            None => p,
        };
        let c = &mut self.config;
        if let Some(k) = file.api_key {
            c.api_key = Some(non_empty_key(k.0, &origin("api_key"))?);
            c.api_key_file = None;
        }
        if let Some(p) = file.api_key_file {
            c.set_key_file(resolve(p))?;
        }
        if let Some(u) = file.api_url {
            c.api_url = normalize_api_url(&u, &origin("api_url"))?;
        }
        if let Some(v) = file.store {
            self.cache = Some((v, origin("store")));
        }
        let failure = file
            .store_failure
            .map(|f| crate::fleet::OnStoreFailure::parse(&f))
            .transpose()
            .map_err(|m| ConfigError::invalid(origin("store_failure"), m))?;
        let timeout = file
            .store_timeout
            .map(|t| t.resolve(&origin("store_timeout")))
            .transpose()?;
        self.redis.overlay(crate::fleet::RedisOptions {
            password_file: file.store_password_file.map(resolve),
            prefix: file.store_prefix,
            ca_file: file.store_ca_file.map(resolve),
            timeout,
            on_failure: failure,
        });
        if let Some(d) = file.state_dir {
            c.state_dir = d;
            self.state_dir_given = true;
        }
        if let Some(n) = file.max_age_days {
            c.max_age_days = max_age(n, &origin("max_age_days"))?;
        }
        set_duration(
            &mut c.positive_ttl,
            file.positive_ttl,
            &origin("positive_ttl"),
        )?;
        set_duration(
            &mut c.negative_ttl,
            file.negative_ttl,
            &origin("negative_ttl"),
        )?;
        set_duration(
            &mut c.connect_timeout,
            file.connect_timeout,
            &origin("connect_timeout"),
        )?;
        set_duration(&mut c.timeout, file.timeout, &origin("timeout"))?;
        if let Some(list) = file.allowlist {
            c.allowlist = parse_allowlist(list.iter().map(String::as_str), &origin("allowlist"))?;
        }
        if let Some(r) = file.retries {
            c.retries = r;
        }
        if let Some(s) = file.alert_min_score {
            c.alert_min_score = score(s, &origin("alert_min_score"))?;
        }
        if let Some(b) = file.block {
            apply_block(&mut c.block, b, &|k| origin(&format!("block.{k}")))?;
        }
        if let Some(r) = file.report {
            c.report = r;
        }
        if let Some(p) = file.proxy {
            c.proxy = Some(check_proxy(&p, &origin("proxy"))?);
        }
        if let Some(p) = file.ca_file {
            let p = resolve(p);
            check_ca_file(&p, &origin("ca_file"))?;
            c.ca_file = Some(p);
        }
        Ok(())
    }

    /// The environment: each variable of the settings table that is set becomes its file key,
    /// its text read as the row's example is typed (a number, a comma-separated list, text),
    /// and the whole goes through [`Builder::apply_settings`] as a file would. The first of a
    /// setting's variables wins over its aliases (`REPUTE_STORE` over `REPUTE_CACHE`).
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let mut table = toml::Table::new();
        let mut names: HashMap<&'static str, &'static str> = HashMap::new();
        for setting in reference::SETTINGS.iter() {
            let (Some(key), Some((name, text))) = (
                setting.file.first(),
                // Every name is read (not only up to the first set), so that a test can hold
                // the names read to the table's.
                setting
                    .env
                    .iter()
                    .map(|name| (*name, env(name)))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .find_map(|(name, value)| Some((name, value?))),
            ) else {
                continue;
            };
            let origin = format!("environment {name}");
            let value = setting
                .env_value(&text)
                .map_err(|m| ConfigError::invalid(&origin, m))?;
            let mut one = toml::Table::new();
            insert_key(&mut one, key, value.clone());
            // Alone first, so that a value of the wrong type is named by its variable (the
            // text itself is not repeated: the message shows a number, and a key is text).
            if let Err(e) = one.try_into::<FileConfig>() {
                let message = e.message().trim().replace('\n', " ");
                return Err(ConfigError::invalid(&origin, message));
            }
            insert_key(&mut table, key, value);
            names.insert(key, name);
        }
        let file: FileConfig = table.try_into().map_err(|e| {
            ConfigError::invalid("environment", e.message().trim().replace('\n', " "))
        })?;
        let origin = |key: &str| match names.get(key) {
            Some(name) => format!("environment {name}"),
            None => format!("environment ({key})"),
        };
        self.apply_settings(file, None, &origin)?;
        self.user_state_dir = user_state_dir(env);
        Ok(())
    }

    fn apply_flags(&mut self, flags: &Overrides) -> Result<(), ConfigError> {
        let c = &mut self.config;
        if let Some(k) = &flags.api_key {
            c.api_key = Some(non_empty_key(
                k.expose().to_string(),
                "the API key argument",
            )?);
            c.api_key_file = None;
        }
        if let Some(p) = &flags.api_key_file {
            c.set_key_file(p.clone())?;
        }
        if let Some(u) = &flags.api_url {
            c.api_url = normalize_api_url(u, "the API URL argument")?;
        }
        if let Some(v) = &flags.cache {
            self.cache = Some((v.clone(), "the cache argument".into()));
        }
        if let Some(d) = &flags.state_dir {
            c.state_dir = d.clone();
            self.state_dir_given = true;
        }
        if let Some(n) = flags.max_age_days {
            c.max_age_days = max_age(i64::from(n), "the max age argument")?;
        }
        let pairs = [
            (&mut c.connect_timeout, flags.connect_timeout),
            (&mut c.timeout, flags.timeout),
            (&mut c.positive_ttl, flags.positive_ttl),
            (&mut c.negative_ttl, flags.negative_ttl),
        ];
        for (slot, value) in pairs {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(r) = flags.retries {
            c.retries = r;
        }
        if let Some(s) = flags.alert_min_score {
            c.alert_min_score = score(i64::from(s), "the alert score argument")?;
        }
        if let Some(list) = &flags.allowlist {
            c.allowlist = list.iter().map(ipnet::IpNet::trunc).collect();
        }
        if let Some(s) = flags.block_min_score {
            c.block.min_score = Some(score(i64::from(s), "the block score argument")?);
        }
        if let Some(p) = &flags.proxy {
            c.proxy = Some(check_proxy(p, "the proxy argument")?);
        }
        if let Some(p) = &flags.ca_file {
            check_ca_file(p, "the CA file argument")?;
            c.ca_file = Some(p.clone());
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Config, ConfigError> {
        let c = &mut self.config;
        // A normal user's first `repute check` must not fail on the system directory.
        if !self.state_dir_given
            && !may_create_in(&c.state_dir)
            && let Some(dir) = self.user_state_dir.take()
        {
            // The XDG base (`~/.cache`) may not exist on a fresh account: XDG says to make it,
            // 0700. The store then makes `repute` in it (only the last directory, as always).
            if let Some(base) = dir.parent() {
                use std::os::unix::fs::DirBuilderExt;
                let _ = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(base);
            }
            c.state_dir = dir;
            c.per_user_state = true;
        }
        if let (None, Some(path)) = (&c.api_key, self.fallback_key_file.take()) {
            c.set_key_file(path)?;
        }
        c.cache = match self.cache {
            Some((value, origin)) => parse_cache(&value, &origin, &self.redis)?,
            None => StoreSetting::Sqlite(c.state_dir.join("repute.sqlite")),
        };
        for (name, d) in [
            ("connect_timeout", c.connect_timeout),
            ("timeout", c.timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::invalid(name, "must be more than zero"));
            }
            // A bound keeps `Instant + timeout` (and every sum of them) far from overflowing.
            if d > MAX_TIMEOUT {
                let msg = format!("must be at most {} seconds", MAX_TIMEOUT.as_secs());
                return Err(ConfigError::invalid(name, msg));
            }
        }
        if c.negative_ttl > c.positive_ttl {
            tracing::debug!("negative_ttl is longer than positive_ttl; keeping both as given");
        }
        Ok(self.config)
    }
}

/// The settings file the loader reads: `path` (a `--config`), else `REPUTE_CONFIG`, else
/// [`DEFAULT_CONFIG_PATH`] when it exists.
pub fn settings_file(
    path: Option<&Path>,
    env: &impl Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    match path {
        Some(p) => Some(p.to_path_buf()),
        None => env("REPUTE_CONFIG")
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists())),
    }
}

/// Puts `value` at `key` (`section.key` inside its section's table).
fn insert_key(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        Some((section, inner)) => {
            let entry = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                t.insert(inner.to_string(), value);
            }
        }
        None => {
            table.insert(key.to_string(), value);
        }
    }
}

/// The per-user state directory: `$XDG_CACHE_HOME/repute`, else `$HOME/.cache/repute`
/// (relative values are ignored, as the XDG specification says).
fn user_state_dir(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let absolute = |v: String| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    env("XDG_CACHE_HOME")
        .and_then(absolute)
        .or_else(|| env("HOME").and_then(absolute).map(|h| h.join(".cache")))
        .map(|d| d.join("repute"))
}

/// This process may write in `dir`, or create it: the nearest existing ancestor is a directory
/// it may write and enter.
fn may_create_in(dir: &Path) -> bool {
    let Some(existing) = dir.ancestors().find(|d| d.exists()) else {
        return false;
    };
    let Ok(c_path) = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // access(2) answers for the real user, who is the one running the command.
    existing.is_dir() && unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) } == 0
}

fn apply_block(
    block: &mut BlockSettings,
    file: FileBlock,
    origin: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(b) = file.backend {
        if !matches!(b.as_str(), "auto" | "nftables" | "ipset") {
            let msg = format!("`{b}` is not a backend (auto, nftables or ipset)");
            return Err(ConfigError::invalid(origin("backend"), msg));
        }
        block.backend = b;
    }
    if let Some(t) = file.table {
        block.table = t;
    }
    if let Some(f) = file.forward {
        block.forward = f;
    }
    if let Some(d) = file.default_duration {
        // A block duration, so whole seconds as `--for` (same parser, same rule).
        let o = origin("default_duration");
        block.default_duration = match d {
            DurationText::Seconds(s) => crate::block::parse_duration(&s.to_string()),
            DurationText::Text(t) => crate::block::parse_duration(&t),
        }
        .map_err(|e| ConfigError::invalid(&o, e.to_string()))?;
    }
    if let Some(m) = file.max_entries {
        block.max_entries = m;
    }
    if let Some(s) = file.min_score {
        block.min_score = Some(score(s, &origin("min_score"))?);
    }
    Ok(())
}

fn set_duration(
    slot: &mut Duration,
    value: Option<DurationText>,
    origin: &str,
) -> Result<(), ConfigError> {
    if let Some(v) = value {
        *slot = v.resolve(origin)?;
    }
    Ok(())
}

fn max_age(n: i64, origin: &str) -> Result<u16, ConfigError> {
    u16::try_from(n)
        .ok()
        .filter(|d| (1..=365).contains(d))
        .ok_or_else(|| ConfigError::invalid(origin, format!("{n} is not between 1 and 365 days")))
}

fn score(n: i64, origin: &str) -> Result<u8, ConfigError> {
    u8::try_from(n)
        .ok()
        .filter(|s| *s <= 100)
        .ok_or_else(|| ConfigError::invalid(origin, format!("{n} is not a score from 0 to 100")))
}

fn non_empty_key(key: String, origin: &str) -> Result<ApiKey, ConfigError> {
    let key = key.trim();
    if key.is_empty() {
        return Err(ConfigError::invalid(origin, "the API key is empty"));
    }
    if key.len() as u64 > MAX_KEY_FILE_BYTES {
        let msg = format!(
            "the API key is {} bytes long; an AbuseIPDB key is 80 characters",
            key.len()
        );
        return Err(ConfigError::invalid(origin, msg));
    }
    Ok(ApiKey::new(key))
}

/// Reads the key from a file, the same way for every command and the integration: the whole
/// file, surrounding whitespace (the final newline) trimmed. A key with whitespace inside is
/// refused: an AbuseIPDB key has none, so that is the wrong file (or two keys), and taking its
/// first line would silently send half of it.
pub fn read_key_file(path: &Path) -> Result<ApiKey, ConfigError> {
    let invalid = |message: &str| ConfigError::KeyFileInvalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let text = read_key_text(path).map_err(|m| invalid(&m))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(ConfigError::KeyFileEmpty {
            path: path.to_path_buf(),
        });
    }
    if key.contains(char::is_whitespace) {
        return Err(invalid(
            "holds more than one word; an AbuseIPDB key is one line of 80 characters",
        ));
    }
    Ok(ApiKey::new(key))
}

/// The longest key file read. An AbuseIPDB key is 80 characters; anything much longer is
/// the wrong file, and would only fail later as an oversized header.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// The text of a key file, read with a bound, with a message that says what is wrong: a
/// symlink whose target is missing, a directory, a file far too long for a key.
pub fn read_key_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| {
        let dangling = e.kind() == std::io::ErrorKind::NotFound
            && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        match std::fs::read_link(path) {
            Ok(target) if dangling => {
                format!("a symlink to {}, which does not exist", target.display())
            }
            _ => e.to_string(),
        }
    })?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err("a directory, not a key file".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "longer than {MAX_KEY_FILE_BYTES} bytes; an AbuseIPDB key is 80 characters (is this the right file?)"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    // An editor's byte-order mark is not part of the key (sent in `Key:`, it gets a 401).
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// A relative path in the file is relative to the file's own directory.
fn resolve_beside(config_file: &Path, p: &Path) -> PathBuf {
    match config_file.parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

/// The longest `timeout` or `connect_timeout` accepted (10 minutes).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// Accepts the API base or the check endpoint itself (Wazuh's hook URL), trimmed to the base.
/// Plain `http://` is accepted for a loopback host only (a local mock or proxy): anywhere
/// else the key would cross the network in clear.
pub fn normalize_api_url(url: &str, origin: &str) -> Result<String, ConfigError> {
    let trimmed = lowercase_scheme(url.trim().trim_end_matches('/'));
    // The URL may carry `user:pass@`: never repeat that part.
    let shown = redact_userinfo(&trimmed);
    if let Some(rest) = trimmed.strip_prefix("http://") {
        if !is_loopback_host(rest) {
            let msg = format!(
                "`{shown}` is plain http:// to a host that is not loopback; the key would travel in clear (use https://)"
            );
            return Err(ConfigError::invalid(origin, msg));
        }
    } else if !trimmed.starts_with("https://") {
        let msg = format!("`{shown}` is not an http:// or https:// URL");
        return Err(ConfigError::invalid(origin, msg));
    }
    let base = trimmed.strip_suffix("/check").unwrap_or(&trimmed);
    Ok(base.to_string())
}

/// The URL with its scheme in lower case (`HTTPS://` is the same URL as `https://`).
pub fn lowercase_scheme(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest))
            if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            format!("{}://{rest}", scheme.to_ascii_lowercase())
        }
        _ => url.to_string(),
    }
}

/// The URL with any `user:pass@` replaced by `***@`, for logs and messages.
pub fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let Some((_, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match scheme {
        Some(scheme) => format!("{scheme}://***@{host}{path}"),
        None => format!("***@{host}{path}"),
    }
}

/// A proxy setting: `none`, or an `http://` or `https://` proxy URL (a bare `host:port` is
/// taken as `http://`).
pub fn check_proxy(value: &str, origin: &str) -> Result<ProxyUrl, ConfigError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("none") {
        return Ok(ProxyUrl("none".into()));
    }
    let url = if v.contains("://") {
        lowercase_scheme(v)
    } else {
        format!("http://{v}")
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        let msg = format!(
            "`{}` is not an http:// or https:// proxy (or `none`)",
            redact_userinfo(&url)
        );
        return Err(ConfigError::invalid(origin, msg));
    }
    if let Err(e) = ureq::Proxy::new(&url) {
        let msg = format!("`{}` is not a proxy URL: {e}", redact_userinfo(&url));
        return Err(ConfigError::invalid(origin, msg));
    }
    Ok(ProxyUrl(url))
}

/// A CA bundle must be readable and hold at least one PEM certificate.
pub fn check_ca_file(path: &Path, origin: &str) -> Result<(), ConfigError> {
    crate::reputation::abuseipdb::read_ca_file(path)
        .map(drop)
        .map_err(|e| ConfigError::invalid(origin, e))
}

/// True when the URL text after `http://` names 127.0.0.0/8, `[::1]` or `localhost`.
fn is_loopback_host(after_scheme: &str) -> bool {
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    // Userinfo (`user@host`) is not the host; the last `@` ends it.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, _)) => host,
            None => return false,
        },
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A SQLite path, `none`, or a Redis URL (see [`crate::fleet::target`]) with its options.
pub fn parse_cache(
    value: &str,
    origin: &str,
    redis: &crate::fleet::RedisOptions,
) -> Result<StoreSetting, ConfigError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("none") {
        return Ok(StoreSetting::Disabled);
    }
    if crate::fleet::target::is_redis_url(v) {
        return crate::fleet::RedisTarget::parse(v, redis)
            .map(StoreSetting::Redis)
            .map_err(|m| ConfigError::invalid(origin, m));
    }
    // Named as given, but for a `user:pass@`, which is never repeated.
    let not_a_store = |why: &str| {
        let msg = format!(
            "`{}` {why}; give a SQLite path, a redis:// URL or `none`",
            redact_userinfo(v)
        );
        ConfigError::invalid(origin, msg)
    };
    if v.is_empty() {
        return Err(not_a_store("is empty"));
    }
    if v.contains("://") {
        return Err(not_a_store("is not a store"));
    }
    Ok(StoreSetting::Sqlite(PathBuf::from(v)))
}

/// Addresses (`203.0.113.7`) and networks (`192.0.2.0/24`), IPv4 or IPv6.
pub fn parse_allowlist<'a>(
    items: impl IntoIterator<Item = &'a str>,
    origin: &str,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    items
        .into_iter()
        .map(|item| {
            let t = item.trim();
            t.parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    ConfigError::invalid(origin, format!("`{t}` is not an address or CIDR network"))
                })
        })
        .collect()
}

/// A map-backed environment for tests of [`Config::load_from`].
pub fn env_from_pairs(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("repute.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).expect("write");
        }
        let path = file.map(|_| path.as_path());
        Config::load_from(path, env_from_pairs(env), flags)
    }

    #[test]
    fn defaults_without_file_or_environment() {
        let c = load(None, &[], &Overrides::default()).expect("load");
        assert_eq!(c.max_age_days, 90);
        assert_eq!(c.api_url, "https://api.abuseipdb.com/api/v2");
        assert_eq!(
            c.cache,
            StoreSetting::Sqlite(PathBuf::from("/var/lib/repute/repute.sqlite"))
        );
        assert!(c.api_key.is_none());
    }

    #[test]
    fn the_per_user_state_dir_follows_xdg_then_home() {
        let env = env_from_pairs;
        let xdg = [("XDG_CACHE_HOME", "/x/cache"), ("HOME", "/home/a")];
        assert_eq!(
            user_state_dir(&env(&xdg)),
            Some(PathBuf::from("/x/cache/repute"))
        );
        let relative = [("XDG_CACHE_HOME", "cache"), ("HOME", "/home/a")];
        assert_eq!(
            user_state_dir(&env(&relative)),
            Some(PathBuf::from("/home/a/.cache/repute")),
            "a relative XDG_CACHE_HOME is ignored"
        );
        assert_eq!(user_state_dir(&env(&[("HOME", "home")])), None);
    }

    #[test]
    fn a_state_dir_under_a_file_cannot_be_created() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(may_create_in(&dir.path().join("a/b")));
        let file = dir.path().join("f");
        std::fs::write(&file, "").expect("write");
        assert!(!may_create_in(&file.join("repute")));
    }

    #[test]
    fn a_state_dir_given_anywhere_is_kept_even_when_not_writable() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("f");
        std::fs::write(&file, "").expect("write");
        let blocked = file.join("repute");
        let env = [
            ("REPUTE_STATE_DIR", blocked.to_str().expect("utf-8")),
            ("HOME", "/home/a"),
        ];
        let c = load(None, &env, &Overrides::default()).expect("load");
        assert_eq!(c.state_dir, blocked);
        assert!(!c.per_user_state);
    }

    #[test]
    fn file_then_environment_then_flags() {
        let file = r#"
            api_url = "http://127.0.0.1:9/api/v2/check"
            max_age_days = 30
            positive_ttl = "12h"
            negative_ttl = 600
            timeout = "3s"
            allowlist = ["192.0.2.0/24", "2001:db8::7"]
            alert_min_score = 40
            state_dir = "/srv/repute"
            [block]
            min_score = 90
            default_duration = "2h"
        "#;
        let c = load(
            Some(file),
            &[("REPUTE_MAX_AGE_DAYS", "60"), ("REPUTE_TIMEOUT", "")],
            &Overrides::default(),
        )
        .expect("load");
        assert_eq!(c.api_url, "http://127.0.0.1:9/api/v2");
        assert_eq!(c.max_age_days, 60, "environment wins over the file");
        assert_eq!(c.positive_ttl, Duration::from_secs(12 * 3600));
        assert_eq!(c.negative_ttl, Duration::from_secs(600));
        assert_eq!(
            c.timeout,
            Duration::from_secs(3),
            "an empty variable is unset"
        );
        assert_eq!(c.allowlist.len(), 2);
        assert_eq!(c.alert_min_score, 40);
        assert_eq!(c.block.min_score, Some(90));
        assert_eq!(c.block.default_duration, Duration::from_secs(7200));
        assert_eq!(
            c.cache,
            StoreSetting::Sqlite(PathBuf::from("/srv/repute/repute.sqlite"))
        );
        let flags = Overrides {
            max_age_days: Some(7),
            cache: Some("none".into()),
            ..Overrides::default()
        };
        let c = load(Some(file), &[("REPUTE_MAX_AGE_DAYS", "60")], &flags).expect("load");
        assert_eq!(c.max_age_days, 7, "flags win over the environment");
        assert_eq!(c.cache, StoreSetting::Disabled);
    }

    #[test]
    fn unknown_keys_are_refused_with_key_file_and_line() {
        let err = load(
            Some("max_age_days = 30\ncache_ttl = 5\n"),
            &[],
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cache_ttl") && err.contains("repute.toml") && err.contains("line 2"),
            "{err}"
        );
        let err = load(Some("[block]\ncolour = 1\n"), &[], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let err = Config::load_from(
            Some(Path::new("/nonexistent/repute.toml")),
            env_from_pairs(&[]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/repute.toml"), "{err}");
    }

    #[test]
    fn the_key_comes_from_a_file_and_never_shows() {
        let dir = tempfile::tempdir().expect("tmp");
        let key_path = dir.path().join("key");
        let secret = "s3cr3t".repeat(10);
        std::fs::write(&key_path, format!("{secret}\n")).expect("write");
        let env = [("ABUSEIPDB_API_KEY_FILE", key_path.to_str().expect("utf8"))];
        let c = Config::load_from(None, env_from_pairs(&env), &Overrides::default()).expect("load");
        assert_eq!(
            c.api_key.as_ref().map(ApiKey::expose),
            Some(secret.as_str())
        );
        assert!(!format!("{c:?} {}", c.summary()).contains(&secret));
        std::fs::write(&key_path, "  \n").expect("write");
        let err = Config::load_from(None, env_from_pairs(&env), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        let env = [("ABUSEIPDB_API_KEY_FILE", "/nonexistent/key")];
        let err = Config::load_from(None, env_from_pairs(&env), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/key"), "{err}");
    }

    #[test]
    fn a_redis_store_from_the_file_with_the_environment_on_top() {
        let file = r#"
store = "redis://repute@10.0.0.5:6379/1"
store_prefix = "site-a:"
store_timeout = "250ms"
store_failure = "error"
"#;
        let c = load(Some(file), &[], &Overrides::default()).expect("load");
        let StoreSetting::Redis(t) = &c.cache else {
            panic!("{:?}", c.cache)
        };
        assert_eq!(t.to_string(), "redis://repute@10.0.0.5:6379/1");
        assert_eq!(t.prefix, "site-a:");
        assert_eq!(t.timeout, Duration::from_millis(250));
        assert_eq!(t.on_failure, crate::fleet::OnStoreFailure::Error);
        assert_eq!(c.store_path(), c.state_dir.join("repute.sqlite"));
        // REPUTE_STORE wins over its alias REPUTE_CACHE and over the file.
        let env = [
            ("REPUTE_CACHE", "/tmp/x.sqlite"),
            ("REPUTE_STORE", "redis-cluster://a:7000,b:7001"),
            ("REPUTE_STORE_PREFIX", "b:"),
        ];
        let c = load(Some(file), &env, &Overrides::default()).expect("load");
        let StoreSetting::Redis(t) = &c.cache else {
            panic!("{:?}", c.cache)
        };
        assert!(t.cluster);
        assert_eq!(t.prefix, "b:");
        let c = load(
            None,
            &[("REPUTE_CACHE", "/tmp/x.sqlite")],
            &Overrides::default(),
        );
        assert_eq!(
            c.expect("load").cache,
            StoreSetting::Sqlite(PathBuf::from("/tmp/x.sqlite"))
        );
    }

    #[test]
    fn bad_values_name_their_origin() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("REPUTE_STORE", "redis://u:pw@cache:6379")],
                "REPUTE_STORE",
            ),
            (
                &[
                    ("REPUTE_STORE", "redis://cache"),
                    ("REPUTE_STORE_PASSWORD_FILE", "/nonexistent/pw"),
                ],
                "/nonexistent/pw",
            ),
            (
                &[("REPUTE_STORE", "redis://c"), ("REPUTE_STORE_FAILURE", "x")],
                "REPUTE_STORE_FAILURE",
            ),
            (&[("REPUTE_CACHE", "memcached://x")], "REPUTE_CACHE"),
            (&[("REPUTE_MAX_AGE_DAYS", "366")], "REPUTE_MAX_AGE_DAYS"),
            (&[("REPUTE_MAX_AGE_DAYS", "0")], "between 1 and 365"),
            (&[("REPUTE_MAX_AGE_DAYS", "ninety")], "REPUTE_MAX_AGE_DAYS"),
            (&[("REPUTE_RETRIES", "-1")], "REPUTE_RETRIES"),
            (&[("REPUTE_TIMEOUT", "5 parsecs")], "REPUTE_TIMEOUT"),
            (&[("REPUTE_TIMEOUT", "0")], "REPUTE_TIMEOUT"),
            (&[("ABUSEIPDB_API_URL", "ftp://x")], "ABUSEIPDB_API_URL"),
            (
                &[("REPUTE_ALLOWLIST", "10.0.0.0/8, not-an-ip")],
                "not-an-ip",
            ),
            (
                &[("REPUTE_ALERT_MIN_SCORE", "101")],
                "REPUTE_ALERT_MIN_SCORE",
            ),
        ];
        for (env, expected) in cases {
            let err = load(None, env, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{env:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let err = load(Some("max_age_days = 400"), &[], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_age_days") && err.contains("400"), "{err}");
    }

    #[test]
    fn the_shipped_sample_changes_nothing_and_every_commented_line_is_valid() {
        let sample =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/repute.toml"))
                .expect("examples/repute.toml");
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("repute.toml");
        std::fs::write(&path, &sample).expect("write");
        let shipped = Config::load_from(Some(&path), env_from_pairs(&[]), &Overrides::default())
            .expect("sample");
        let defaults =
            Config::load_from(None, env_from_pairs(&[]), &Overrides::default()).expect("defaults");
        assert_eq!(
            Config {
                settings_file: None,
                ..shipped.clone()
            },
            defaults,
            "as shipped, the sample is all defaults"
        );
        // Installed as /etc/repute/repute.toml, it must keep `repute wazuh install
        // --active-response`'s promise (a score of 50 blocks) and need no file a newcomer lacks.
        assert!(
            shipped.block.min_score.is_none_or(|s| s <= 50),
            "[block] min_score above 50 overrides the install promise"
        );
        assert_eq!(shipped.api_key_file, None, "a key file a newcomer lacks");
        assert_eq!(shipped.ca_file, None, "a CA file a newcomer lacks");
        // Uncommented, each `# key = value` line is a valid setting (the key file made to exist).
        std::fs::write(dir.path().join("abuseipdb.key"), "k".repeat(80)).expect("key");
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("ca");
        std::fs::write(dir.path().join("proxy-ca.pem"), ca.cert.pem()).expect("ca file");
        let uncommented: String = sample
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") && !rest.contains("Example") => rest,
                _ => l,
            })
            .map(|l| {
                l.replace("/etc/repute/abuseipdb.key", "abuseipdb.key")
                    .replace("/etc/repute/proxy-ca.pem", "proxy-ca.pem")
                    + "\n"
            })
            .collect();
        std::fs::write(&path, uncommented).expect("write");
        let c = Config::load_from(Some(&path), env_from_pairs(&[]), &Overrides::default())
            .expect("every commented line");
        assert!(
            c.api_key.is_some(),
            "relative key file resolved beside the config"
        );
        assert_eq!(c.cache, StoreSetting::Disabled);
        assert_eq!(c.block.min_score, Some(50));
        crate::watch::settings::load(Some(&path)).expect("every commented [watch] line");
    }

    #[test]
    fn durations_in_the_file_read_as_flags_do() {
        let c = load(
            Some("timeout = \"1s500ms\"\n[block]\ndefault_duration = \"1h30m\"\n"),
            &[("REPUTE_POSITIVE_TTL", "1d12h")],
            &Overrides::default(),
        )
        .expect("load");
        assert_eq!(c.block.default_duration, Duration::from_secs(5400));
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.positive_ttl, Duration::from_secs(36 * 3600));
        for (file, key) in [
            (
                "[block]\ndefault_duration = \"0\"\n",
                "block.default_duration",
            ),
            ("[block]\ndefault_duration = 0\n", "block.default_duration"),
            (
                "[block]\ndefault_duration = \"500ms\"\n",
                "block.default_duration",
            ),
            ("negative_ttl = 0\n", "negative_ttl"),
            ("positive_ttl = \"-5s\"\n", "positive_ttl"),
        ] {
            let err = load(Some(file), &[], &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{file}: {err}");
        }
    }

    #[test]
    fn plain_http_is_for_loopback_hosts_only() {
        for ok in [
            "http://127.0.0.1:8080/api/v2",
            "http://127.9.9.9/api/v2/check",
            "http://[::1]:9000/api/v2",
            "http://localhost/api/v2",
            "http://LOCALHOST:1",
            "https://api.abuseipdb.com/api/v2",
        ] {
            assert!(normalize_api_url(ok, "api_url").is_ok(), "{ok}");
        }
        for bad in [
            "http://api.abuseipdb.com/api/v2",
            "http://10.0.0.1/api/v2",
            "http://[2001:db8::1]/api/v2",
            "http://127.0.0.1@evil.example/api/v2",
            "http://127.0.0.1.evil.example/api/v2",
            "http://localhost.evil.example/",
            "http://[::1/api",
        ] {
            let err = normalize_api_url(bad, "api_url").unwrap_err().to_string();
            // Named as given, but for a `user@`, which is never repeated.
            let shown = redact_userinfo(bad.trim_end_matches('/'));
            assert!(err.contains(&shown), "{err}");
            assert!(err.contains("api_url"), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }

    #[test]
    fn schemes_are_case_insensitive_and_userinfo_is_never_repeated() {
        assert_eq!(
            normalize_api_url("HTTPS://api.abuseipdb.com/api/v2/check", "x").ok(),
            Some("https://api.abuseipdb.com/api/v2".to_string())
        );
        assert_eq!(
            normalize_api_url("Http://127.0.0.1:9/api/v2", "x").ok(),
            Some("http://127.0.0.1:9/api/v2".to_string())
        );
        let err = normalize_api_url("http://bob:hunter2@api.example/v2", "x")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("hunter2") && err.contains("http://***@api.example/v2"),
            "{err}"
        );
        assert_eq!(
            redact_userinfo("https://u:p@h:1/p?q=a@b"),
            "https://***@h:1/p?q=a@b"
        );
        assert_eq!(redact_userinfo("https://h/p@x"), "https://h/p@x");
        assert_eq!(redact_userinfo("u:p@h:3128"), "***@h:3128");
        let proxy = check_proxy("http://alice:s3cret@proxy:3128", "proxy").expect("proxy");
        assert!(!format!("{proxy:?}").contains("s3cret"));
        assert_eq!(proxy.as_str(), "http://alice:s3cret@proxy:3128");
    }

    #[test]
    fn a_key_that_cannot_be_a_key_is_refused_by_size() {
        let err = non_empty_key("k".repeat(100_000), "environment ABUSEIPDB_API_KEY")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("100000 bytes long") && err.contains("ABUSEIPDB_API_KEY"),
            "{err}"
        );
    }

    #[test]
    fn timeouts_longer_than_ten_minutes_are_refused_by_name() {
        let err = load(Some("timeout = \"11m\""), &[], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeout") && err.contains("600"), "{err}");
        let err = load(
            None,
            &[("REPUTE_CONNECT_TIMEOUT", "100000000s")],
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("REPUTE_CONNECT_TIMEOUT"), "{err}");
        let c = load(Some("timeout = \"10m\""), &[], &Overrides::default()).unwrap();
        assert_eq!(c.timeout, MAX_TIMEOUT);
    }

    #[test]
    fn the_file_key_never_shows_in_debug_output() {
        let file: FileConfig = toml::from_str("api_key = \"fileSecretKey0123456789\"").unwrap();
        let shown = format!("{file:?}");
        assert!(!shown.contains("fileSecretKey0123456789"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
