//! The integration's settings: Wazuh home defaults, environment, `<options>` JSON, arguments.
//!
//! Later sources win: defaults (cache inside the Wazuh home), then the environment
//! (`ABUSEIPDB_API_KEY[_FILE]`, `ABUSEIPDB_API_URL`, `REPUTE_STORE` or `REPUTE_CACHE`,
//! `REPUTE_STORE_PASSWORD_FILE`, `REPUTE_STORE_PREFIX`), then the options file
//! integratord writes from `<options>` (Wazuh 4.7+), then the command line (`<api_key>`,
//! `<hook_url>`, `<timeout>`, `<retries>`). The options file is JSON:
//!
//! ```json
//! {"store": "var/repute/repute.sqlite",   // or "none", or a Redis URL shared by every
//!                                        // manager ("redis://repute@10.0.0.5:6379/0");
//!                                        // "cache" is the older name; relative paths are
//!                                        // under the home
//!  "store_password_file": "etc/repute/redis.password", "store_prefix": "repute:",
//!  "store_ca_file": "etc/repute/redis-ca.pem", "store_timeout_ms": 1000,
//!  "store_failure": "lookup",             // or "error": no lookup while the store is down
//!  "ttl_seconds": 86400, "negative_ttl_seconds": 21600,
//!  "max_age_days": 90,                    // also "maxAgeInDays"
//!  "allowlist": ["203.0.113.0/24"],
//!  "min_score": 0,                        // also "threshold": no event below this score
//!  "api_url": "https://api.abuseipdb.com/api/v2",
//!  "api_key_file": "etc/repute/abuseipdb.key",
//!  "proxy": "http://proxy.example:3128",  // default: HTTPS_PROXY/NO_PROXY; "none" for none
//!  "ca_file": "etc/repute/proxy-ca.pem"}  // trusted instead of the compiled-in roots
//! ```
//!
//! Unknown keys are refused, so that a typo does not silently leave a setting at its default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use super::args::IntegrationArgs;
use crate::config::{ApiKey, CacheSetting, Config};
use crate::fleet::{OnStoreFailure, RedisOptions, RedisTarget};

/// The cache file inside the Wazuh home, unless configured otherwise.
pub const DEFAULT_CACHE: &str = "var/repute/repute.sqlite";
/// Where `repute wazuh install` puts the API key, read when ossec.conf carries none.
pub const DEFAULT_KEY_FILE: &str = "etc/repute/abuseipdb.key";

/// A settings problem, named by its source.
#[derive(Debug, Error)]
pub enum OptionsError {
    #[error("options file {path}: {detail}")]
    Options { path: String, detail: String },
    #[error("API key file {path}: {detail}")]
    KeyFile { path: String, detail: String },
    /// A `<hook_url>`, options `api_url` or `ABUSEIPDB_API_URL` that would send the key in
    /// clear, or is no URL at all.
    #[error("{0}")]
    ApiUrl(String),
    /// A `store` (or its settings) that names no usable store.
    #[error("store: {detail}")]
    Store { detail: String },
    #[error("environment ABUSEIPDB_API_KEY: {0}")]
    EnvKey(String),
    /// A `proxy` or `ca_file` option that cannot be used.
    #[error("{0}")]
    Network(String),
}

/// The `<options>` JSON.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[serde(alias = "store")]
    pub cache: Option<String>,
    pub store_password_file: Option<PathBuf>,
    pub store_prefix: Option<String>,
    pub store_ca_file: Option<PathBuf>,
    pub store_timeout_ms: Option<u64>,
    pub store_failure: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub negative_ttl_seconds: Option<u64>,
    #[serde(alias = "maxAgeInDays")]
    pub max_age_days: Option<u16>,
    /// Addresses or networks (`203.0.113.7`, `203.0.113.0/24`).
    #[serde(default)]
    pub allowlist: Vec<String>,
    #[serde(alias = "threshold")]
    pub min_score: Option<u8>,
    pub api_url: Option<String>,
    pub api_key_file: Option<PathBuf>,
    /// The HTTP(S) proxy (`none` for none); by default the environment's.
    pub proxy: Option<String>,
    /// A PEM CA bundle trusted instead of the compiled-in roots (relative: under the home).
    pub ca_file: Option<PathBuf>,
}

impl Options {
    pub fn read(path: &Path) -> Result<Options, OptionsError> {
        let err = |detail: String| OptionsError::Options {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        if text.trim().is_empty() {
            return Ok(Options::default());
        }
        let options: Options = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        if let Some(days) = options.max_age_days.filter(|d| !(1..=365).contains(d)) {
            return Err(err(format!("max_age_days {days} is outside 1..=365")));
        }
        options.allowlist_nets().map_err(err)?;
        Ok(options)
    }

    /// The allowlist as networks (a bare address is a /32 or /128).
    pub fn allowlist_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.allowlist
            .iter()
            .map(|entry| {
                let text = entry.trim();
                text.parse::<ipnet::IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("allowlist entry {entry:?} is not an address or network"))
            })
            .collect()
    }
}

/// The environment variables every door honours, read once.
#[derive(Debug, Default, Clone)]
pub struct Env {
    /// `ABUSEIPDB_API_KEY`, kept as an [`ApiKey`] so that `{:?}` never shows it.
    pub api_key: Option<ApiKey>,
    pub api_key_file: Option<PathBuf>,
    pub api_url: Option<String>,
    pub cache: Option<String>,
    /// `REPUTE_STORE_PASSWORD_FILE`, `REPUTE_STORE_PREFIX`.
    pub store_password_file: Option<PathBuf>,
    pub store_prefix: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Env {
            api_key: var("ABUSEIPDB_API_KEY").map(ApiKey::new),
            api_key_file: var("ABUSEIPDB_API_KEY_FILE").map(PathBuf::from),
            api_url: var("ABUSEIPDB_API_URL"),
            cache: var("REPUTE_STORE").or_else(|| var("REPUTE_CACHE")),
            store_password_file: var("REPUTE_STORE_PASSWORD_FILE").map(PathBuf::from),
            store_prefix: var("REPUTE_STORE_PREFIX"),
        }
    }
}

/// The integration's settings, and the score below which no event is sent.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub min_score: u8,
    /// The budget for the whole run.
    pub budget: Duration,
}

/// Builds the settings for one integration run.
pub fn settings(
    home: &Path,
    args: &IntegrationArgs,
    options: &Options,
    env: &Env,
) -> Result<Settings, OptionsError> {
    let mut config = Config {
        state_dir: home.join("var/repute"),
        cache: CacheSetting::Sqlite(home.join(DEFAULT_CACHE)),
        ..Config::default()
    };
    if let Some(url) = &env.api_url {
        config.api_url = url.clone();
    }
    let redis = redis_options(home, options, env)?;
    if let Some(cache) = options.cache.as_ref().or(env.cache.as_ref()) {
        config.cache = cache_setting(home, cache, &redis)?;
    }
    apply_options(&mut config, home, options)?;
    if let Some(url) = &args.hook_url {
        // Never echoed: integratord splits `<api_key>` on spaces, so with a key that holds
        // one, the hook slot holds the rest of the key.
        crate::config::normalize_api_url(url, "hook_url").map_err(|_| {
            OptionsError::ApiUrl(
                "argument 3 (hook_url) is not an https:// URL, or http:// to a loopback host \
                 (the value is not shown: with an <api_key> that contains a space, this slot \
                 holds part of the key)"
                    .into(),
            )
        })?;
        config.api_url = url.clone();
    }
    // Checked as every other door checks it (plain http:// only to loopback; the message
    // never repeats a `user:pass@`); the scheme is lower-cased, the client trims `/check`.
    crate::config::normalize_api_url(&config.api_url, "the API URL (api_url)")
        .map_err(|e| OptionsError::ApiUrl(e.to_string()))?;
    config.api_url = crate::config::lowercase_scheme(config.api_url.trim());
    config.api_key = api_key(home, args, options, env)?;
    let budget = budget(args);
    let retries = args.retries.unwrap_or(config.retries);
    fit_http_to_budget(&mut config, budget, retries);
    fit_store_to_budget(&mut config, budget);
    Ok(Settings {
        config,
        min_score: options.min_score.unwrap_or(0),
        budget,
    })
}

fn apply_options(config: &mut Config, home: &Path, options: &Options) -> Result<(), OptionsError> {
    if let Some(s) = options.ttl_seconds {
        config.positive_ttl = Duration::from_secs(s);
    }
    if let Some(s) = options.negative_ttl_seconds {
        config.negative_ttl = Duration::from_secs(s);
    }
    if let Some(d) = options.max_age_days {
        config.max_age_days = d;
    }
    config
        .allowlist
        .extend(options.allowlist_nets().unwrap_or_default());
    if let Some(url) = &options.api_url {
        config.api_url = url.clone();
    }
    // The same checks (and messages) as the settings file's `proxy` and `ca_file`.
    let invalid = |e: crate::config::ConfigError| OptionsError::Network(e.to_string());
    if let Some(proxy) = &options.proxy {
        config.proxy = Some(crate::config::check_proxy(proxy, "options `proxy`").map_err(invalid)?);
    }
    if let Some(ca) = &options.ca_file {
        let ca = home.join(ca);
        crate::config::check_ca_file(&ca, "options `ca_file`").map_err(invalid)?;
        config.ca_file = Some(ca);
    }
    Ok(())
}

fn cache_setting(
    home: &Path,
    value: &str,
    redis: &RedisOptions,
) -> Result<CacheSetting, OptionsError> {
    if value.eq_ignore_ascii_case("none") {
        Ok(CacheSetting::Disabled)
    } else if crate::fleet::target::is_redis_url(value) {
        RedisTarget::parse(value, redis)
            .map(CacheSetting::Redis)
            .map_err(|detail| OptionsError::Store { detail })
    } else {
        Ok(CacheSetting::Sqlite(home.join(value)))
    }
}

/// The Redis settings of the options file, else of the environment; relative files are under
/// the home.
fn redis_options(home: &Path, options: &Options, env: &Env) -> Result<RedisOptions, OptionsError> {
    let on_failure = options
        .store_failure
        .as_deref()
        .map(OnStoreFailure::parse)
        .transpose()
        .map_err(|m| OptionsError::Store {
            detail: format!("store_failure: {m}"),
        })?;
    let mut redis = RedisOptions {
        password_file: env.store_password_file.as_ref().map(|p| home.join(p)),
        prefix: env.store_prefix.clone(),
        ..RedisOptions::default()
    };
    redis.overlay(RedisOptions {
        password_file: options.store_password_file.as_ref().map(|p| home.join(p)),
        prefix: options.store_prefix.clone(),
        ca_file: options.store_ca_file.as_ref().map(|p| home.join(p)),
        timeout: options.store_timeout_ms.map(Duration::from_millis),
        on_failure,
    });
    Ok(redis)
}

/// A store that does not answer may cost at most a tenth of the run's budget (once: a link
/// that failed is not tried again in the same run), so the event still goes out in time.
fn fit_store_to_budget(config: &mut Config, budget: Duration) {
    if let CacheSetting::Redis(target) = &mut config.cache {
        let share = (budget / 10).max(Duration::from_millis(50));
        target.timeout = target.timeout.min(share);
    }
}

/// The key: `<api_key>`, else the environment, else a key file (options, environment, or the
/// one `repute wazuh install` writes), else none.
fn api_key(
    home: &Path,
    args: &IntegrationArgs,
    options: &Options,
    env: &Env,
) -> Result<Option<ApiKey>, OptionsError> {
    if let Some(key) = &args.api_key {
        return Ok(Some(key.clone()));
    }
    if let Some(key) = &env.api_key {
        let key = key.expose().trim();
        if key.len() as u64 > crate::config::MAX_KEY_FILE_BYTES {
            return Err(OptionsError::EnvKey(format!(
                "the key is {} bytes long; an AbuseIPDB key is 80 characters",
                key.len()
            )));
        }
        return Ok(Some(ApiKey::new(key)));
    }
    let explicit = options.api_key_file.as_ref().or(env.api_key_file.as_ref());
    match explicit {
        Some(path) => read_key_file(&home.join(path)).map(Some),
        None => {
            let default = home.join(DEFAULT_KEY_FILE);
            // `symlink_metadata`, not `exists`: a dangling symlink there is a broken key
            // file to name, not "no key configured".
            if std::fs::symlink_metadata(&default).is_ok() {
                read_key_file(&default).map(Some)
            } else {
                Ok(None)
            }
        }
    }
}

/// Reads a key file: the key on its first non-empty line.
pub fn read_key_file(path: &Path) -> Result<ApiKey, OptionsError> {
    let err = |detail: String| OptionsError::KeyFile {
        path: path.display().to_string(),
        detail,
    };
    let text = crate::config::read_key_text(path).map_err(err)?;
    let key = text.lines().map(str::trim).find(|l| !l.is_empty());
    match key {
        Some(k) if !k.contains(char::is_whitespace) => Ok(ApiKey::new(k)),
        Some(_) => Err(err("the key contains whitespace".into())),
        None => Err(err("the file is empty".into())),
    }
}

/// The budget for the whole run: integratord's `<timeout>`, else 10 s (its default).
pub fn budget(args: &IntegrationArgs) -> Duration {
    args.timeout.unwrap_or(Duration::from_secs(10))
}

/// Gives the HTTP client the run's budget (its timeout covers every retry), keeping a slice
/// for opening the cache and sending the event.
fn fit_http_to_budget(config: &mut Config, budget: Duration, retries: u32) {
    config.retries = retries;
    let usable = budget.mul_f64(0.8).max(Duration::from_millis(200));
    config.timeout = usable;
    config.connect_timeout = config.connect_timeout.min(usable);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> IntegrationArgs {
        IntegrationArgs {
            alert_file: "/tmp/a.alert".into(),
            api_key: None,
            hook_url: None,
            debug: false,
            options_file: None,
            timeout: None,
            retries: None,
        }
    }

    #[test]
    fn defaults_put_the_cache_in_the_wazuh_home() {
        let s = settings(
            Path::new("/var/ossec"),
            &args(),
            &Options::default(),
            &Env::default(),
        )
        .unwrap();
        assert_eq!(
            s.config.cache,
            CacheSetting::Sqlite("/var/ossec/var/repute/repute.sqlite".into())
        );
        assert_eq!(s.budget, Duration::from_secs(10));
        assert_eq!(s.config.api_key, None);
        assert_eq!(s.min_score, 0);
    }

    #[test]
    fn options_override_env_and_arguments_override_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.options");
        std::fs::write(
            &path,
            r#"{"cache":"none","ttl_seconds":60,"maxAgeInDays":30,"allowlist":["203.0.113.0/24","198.51.100.7"],
               "threshold":25,"api_url":"http://127.0.0.1:1/api/v2"}"#,
        )
        .unwrap();
        let options = Options::read(&path).unwrap();
        let env = Env {
            cache: Some("/tmp/env.sqlite".into()),
            api_key: Some(ApiKey::new(" envkey\n")),
            ..Env::default()
        };
        let mut a = args();
        a.hook_url = Some("http://127.0.0.1:2/api/v2/check".into());
        a.timeout = Some(Duration::from_secs(4));
        a.retries = Some(1);
        let s = settings(dir.path(), &a, &options, &env).unwrap();
        assert_eq!(s.config.cache, CacheSetting::Disabled);
        assert_eq!(s.config.positive_ttl, Duration::from_secs(60));
        assert_eq!(s.config.max_age_days, 30);
        assert_eq!(s.config.allowlist.len(), 2);
        assert_eq!(s.min_score, 25);
        assert_eq!(s.config.api_url, "http://127.0.0.1:2/api/v2/check");
        assert_eq!(s.config.api_key, Some(ApiKey::new("envkey")));
        assert_eq!(s.config.retries, 1);
        assert!(s.config.timeout < Duration::from_secs(4));
    }

    #[test]
    fn a_redis_store_in_the_options_fits_the_budget_and_reads_its_password_under_the_home() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("etc/repute")).unwrap();
        std::fs::write(home.path().join("etc/repute/redis.pw"), "pw-in-file\n").unwrap();
        let path = home.path().join("x.options");
        std::fs::write(
            &path,
            r#"{"store":"redis://repute@127.0.0.1:6379/0","store_password_file":"etc/repute/redis.pw",
               "store_prefix":"mgr:","store_failure":"error"}"#,
        )
        .unwrap();
        let options = Options::read(&path).unwrap();
        let mut a = args();
        a.timeout = Some(Duration::from_secs(2));
        let s = settings(home.path(), &a, &options, &Env::default()).unwrap();
        let CacheSetting::Redis(t) = &s.config.cache else {
            panic!("{:?}", s.config.cache)
        };
        assert_eq!(t.password.as_ref().map(|p| p.expose()), Some("pw-in-file"));
        assert_eq!(t.prefix, "mgr:");
        assert_eq!(t.on_failure, OnStoreFailure::Error);
        assert_eq!(
            t.timeout,
            Duration::from_millis(200),
            "a tenth of the budget"
        );
        std::fs::write(&path, r#"{"store":"redis://u:pw@h"}"#).unwrap();
        let options = Options::read(&path).unwrap();
        let e = settings(home.path(), &a, &options, &Env::default()).unwrap_err();
        assert!(e.to_string().contains("store_password_file"), "{e}");
    }

    #[test]
    fn bad_options_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.options");
        std::fs::write(&path, r#"{"ttl": 5}"#).unwrap();
        let e = Options::read(&path).unwrap_err().to_string();
        assert!(e.contains("x.options") && e.contains("ttl"), "{e}");
        std::fs::write(&path, r#"{"max_age_days": 400}"#).unwrap();
        assert!(
            Options::read(&path)
                .unwrap_err()
                .to_string()
                .contains("400")
        );
        std::fs::write(&path, r#"{"allowlist": ["nope"]}"#).unwrap();
        assert!(
            Options::read(&path)
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(Options::read(&path).unwrap(), Options::default());
    }

    #[test]
    fn the_installed_key_file_is_used_when_ossec_conf_has_no_key() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("etc/repute")).unwrap();
        std::fs::write(home.path().join(DEFAULT_KEY_FILE), "\n  filekey123  \n").unwrap();
        let s = settings(home.path(), &args(), &Options::default(), &Env::default()).unwrap();
        assert_eq!(s.config.api_key, Some(ApiKey::new("filekey123")));
        let mut a = args();
        a.api_key = Some(ApiKey::new("argkey"));
        let s = settings(home.path(), &a, &Options::default(), &Env::default()).unwrap();
        assert_eq!(s.config.api_key, Some(ApiKey::new("argkey")));
        std::fs::write(home.path().join(DEFAULT_KEY_FILE), "").unwrap();
        let e = settings(home.path(), &args(), &Options::default(), &Env::default()).unwrap_err();
        assert!(e.to_string().contains("abuseipdb.key"));
    }

    #[test]
    fn the_environment_key_never_shows_in_debug_output() {
        let env = Env {
            api_key: Some(ApiKey::new("envSecretKey0123456789")),
            ..Env::default()
        };
        let shown = format!("{env:?}");
        assert!(!shown.contains("envSecretKey0123456789"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn a_hook_url_that_would_send_the_key_in_clear_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args();
        a.hook_url = Some("http://api.abuseipdb.example/api/v2/check".into());
        let err = settings(dir.path(), &a, &Options::default(), &Env::default())
            .unwrap_err()
            .to_string();
        // Named by its slot, never by its value (which may be half of a split key).
        assert!(!err.contains("api.abuseipdb.example"), "{err}");
        assert!(err.contains("argument 3 (hook_url)"), "{err}");
        a.hook_url = Some("kx9secondHalfOfAKey".into());
        let err = settings(dir.path(), &a, &Options::default(), &Env::default())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("kx9secondHalfOfAKey"), "{err}");
        // The options file's api_url is named as given.
        let options = Options {
            api_url: Some("http://u:pw@api.abuseipdb.example/api/v2".into()),
            ..Options::default()
        };
        let err = settings(dir.path(), &args(), &options, &Env::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http://***@api.abuseipdb.example/api/v2"),
            "{err}"
        );
        a.hook_url = Some("https://api.abuseipdb.com/api/v2/check".into());
        assert!(settings(dir.path(), &a, &Options::default(), &Env::default()).is_ok());
    }
}
