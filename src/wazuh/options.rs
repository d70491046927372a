//! The integration's settings: the one loader of [`crate::config`], then `<options>` JSON and
//! arguments.
//!
//! Later sources win: defaults, then the Wazuh home's (the store `var/repute` every process on
//! the host shares, the installed key file), then the settings file (`--config`, else
//! `REPUTE_CONFIG`, else `/etc/repute/repute.toml`, with its allowlist), then the environment
//! (`ABUSEIPDB_API_KEY[_FILE]`, `ABUSEIPDB_API_URL`, `REPUTE_STORE` or `REPUTE_CACHE`, `REPUTE_STORE_*`, other `REPUTE_*`): all of that is
//! [`Config::load_layered`], the loader every command uses. Then the options file integratord
//! writes from `<options>` (Wazuh 4.7+), then the command line (`<api_key>`, `<hook_url>`,
//! `<timeout>`, `<retries>`). The options file is JSON:
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
//!  "allowlist": ["203.0.113.0/24"],     // added to the settings file's allowlist
//!  "min_score": 0,                        // also "threshold": no event below this score
//!  "api_url": "https://api.abuseipdb.com/api/v2",
//!  "api_key_file": "etc/repute/abuseipdb.key",
//!  "proxy": "http://proxy.example:3128",  // default: HTTPS_PROXY/NO_PROXY; "none" for none
//!  "ca_file": "etc/repute/proxy-ca.pem"}  // trusted instead of the compiled-in roots
//! ```
//!
//! Unknown keys are refused, so that a typo does not silently leave a setting at its default.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use super::args::IntegrationArgs;
use crate::config::{Config, ConfigError, Overrides, StoreSetting};
use crate::fleet::{OnStoreFailure, RedisOptions};

/// Where `repute wazuh install` puts the API key, read when ossec.conf carries none.
pub const DEFAULT_KEY_FILE: &str = crate::config::WAZUH_KEY_FILE;

/// A settings problem, named by its source.
#[derive(Debug, Error)]
pub enum OptionsError {
    #[error("options file {path}: {detail}")]
    Options { path: String, detail: String },
    /// The settings file, the environment or a key file, as the loader names them.
    #[error("{0}")]
    Settings(#[from] ConfigError),
    /// A `<hook_url>`, options `api_url` or `ABUSEIPDB_API_URL` that would send the key in
    /// clear, or is no URL at all.
    #[error("{0}")]
    ApiUrl(String),
    /// A `store` (or its settings) that names no usable store.
    #[error("store: {detail}")]
    Store { detail: String },
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
        // The store's form is checked here, by the loader's own parser (as `REPUTE_STORE` and
        // the file's `store`), so that a typo is named before anything runs; its files (a
        // Redis password, a CA) are read once the home is known.
        if let Some(store) = &options.cache {
            crate::config::parse_cache(store, "key `store` (or `cache`)", &RedisOptions::default())
                .map_err(|e| err(e.to_string()))?;
        }
        Ok(options)
    }

    /// The allowlist as networks (a bare address is a /32 or /128), through the one
    /// allowlist parser ([`crate::config::parse_allowlist`]).
    pub fn allowlist_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        crate::config::parse_allowlist(self.allowlist.iter().map(String::as_str), "allowlist")
            .map_err(|e| e.to_string())
    }
}

/// The environment as the settings loader reads it, captured once (`ABUSEIPDB_*`, `REPUTE_*`,
/// `WAZUH_HOME`). Its `Debug` names the variables set, never their values (one may be the key).
#[derive(Default, Clone)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Env {
        Env(std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| Env::keeps(k))
            .collect())
    }

    /// The variables kept: every one of the settings table starts so (a test holds it).
    fn keeps(name: &str) -> bool {
        name.starts_with("ABUSEIPDB_") || name.starts_with("REPUTE_") || name == "WAZUH_HOME"
    }

    /// An environment made of these pairs (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("Env").field(&names).finish()
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

/// Builds the settings for one integration run: [`Config::load_layered`] with this Wazuh
/// home and the settings file `config_file` (else `REPUTE_CONFIG`, else the default file),
/// then the options file, then the arguments.
pub fn settings(
    home: &Path,
    config_file: Option<&Path>,
    args: &IntegrationArgs,
    options: &Options,
    env: &Env,
) -> Result<Settings, OptionsError> {
    // The key is the one setting the options file and the arguments give through the loader,
    // so that the installed key file is only read when neither gives one.
    let key_flags = Overrides {
        api_key: args.api_key.clone(),
        api_key_file: match &args.api_key {
            Some(_) => None,
            None => options.api_key_file.as_ref().map(|p| home.join(p)),
        },
        ..Overrides::default()
    };
    let mut config =
        Config::load_layered(config_file, Some(home), |name| env.get(name), &key_flags)?;
    if let Some(store) = &options.cache {
        let redis = redis_options(home, options, env)?;
        config.cache = cache_setting(home, store, &redis)?;
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
    // Checked as every other command checks it (plain http:// only to loopback; the message
    // never repeats a `user:pass@`); the scheme is lower-cased, the client trims `/check`.
    crate::config::normalize_api_url(&config.api_url, "the API URL (api_url)")
        .map_err(|e| OptionsError::ApiUrl(e.to_string()))?;
    config.api_url = crate::config::lowercase_scheme(config.api_url.trim());
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
    let invalid = |e: ConfigError| OptionsError::Network(e.to_string());
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

/// The options' store through the loader's parser ([`crate::config::parse_cache`]); a
/// relative SQLite path is under the home.
fn cache_setting(
    home: &Path,
    value: &str,
    redis: &RedisOptions,
) -> Result<StoreSetting, OptionsError> {
    match crate::config::parse_cache(value, "options `store`", redis) {
        Ok(StoreSetting::Sqlite(path)) => Ok(StoreSetting::Sqlite(home.join(path))),
        Ok(other) => Ok(other),
        Err(ConfigError::Invalid { message, .. }) => Err(OptionsError::Store { detail: message }),
        Err(other) => Err(other.into()),
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
        password_file: env.get("REPUTE_STORE_PASSWORD_FILE").map(|p| home.join(p)),
        prefix: env.get("REPUTE_STORE_PREFIX"),
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
    if let StoreSetting::Redis(target) = &mut config.cache {
        let share = (budget / 10).max(Duration::from_millis(50));
        target.timeout = target.timeout.min(share);
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
    use crate::config::ApiKey;

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
            None,
            &args(),
            &Options::default(),
            &Env::default(),
        )
        .unwrap();
        assert_eq!(
            s.config.cache,
            StoreSetting::Sqlite("/var/ossec/var/repute/repute.sqlite".into())
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
        let env = Env::from_pairs(&[
            ("REPUTE_CACHE", "/tmp/env.sqlite"),
            ("ABUSEIPDB_API_KEY", " envkey\n"),
        ]);
        let mut a = args();
        a.hook_url = Some("http://127.0.0.1:2/api/v2/check".into());
        a.timeout = Some(Duration::from_secs(4));
        a.retries = Some(1);
        let s = settings(dir.path(), None, &a, &options, &env).unwrap();
        assert_eq!(s.config.cache, StoreSetting::Disabled);
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
        let s = settings(home.path(), None, &a, &options, &Env::default()).unwrap();
        let StoreSetting::Redis(t) = &s.config.cache else {
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
        let e = Options::read(&path).unwrap_err();
        assert!(e.to_string().contains("store_password_file"), "{e}");
        let options = Options {
            cache: Some("redis://u:pw@h".into()),
            ..Options::default()
        };
        let e = settings(home.path(), None, &a, &options, &Env::default()).unwrap_err();
        assert!(e.to_string().contains("store_password_file"), "{e}");
    }

    #[test]
    fn the_settings_file_sits_between_the_home_defaults_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("repute.toml");
        std::fs::write(
            &toml,
            "allowlist = [\"192.0.2.0/24\"]\nmax_age_days = 10\nnegative_ttl = \"1h30m\"\n",
        )
        .unwrap();
        let options = Options {
            allowlist: vec!["198.51.100.7".into()],
            ..Options::default()
        };
        let env = Env::from_pairs(&[("REPUTE_MAX_AGE_DAYS", "20")]);
        let s = settings(dir.path(), Some(&toml), &args(), &options, &env).unwrap();
        assert_eq!(
            s.config.allowlist.len(),
            2,
            "the file's and the options' lists"
        );
        assert_eq!(
            s.config.max_age_days, 20,
            "the environment wins over the file"
        );
        assert_eq!(s.config.negative_ttl, Duration::from_secs(5400));
        assert_eq!(
            s.config.cache,
            StoreSetting::Sqlite(dir.path().join("var/repute/repute.sqlite"))
        );
        let env = Env::from_pairs(&[("REPUTE_CONFIG", toml.to_str().unwrap())]);
        let s = settings(dir.path(), None, &args(), &Options::default(), &env).unwrap();
        assert_eq!(s.config.max_age_days, 10, "REPUTE_CONFIG names the file");
        let env = Env::from_pairs(&[("REPUTE_STATE_DIR", "/srv/repute")]);
        let s = settings(dir.path(), Some(&toml), &args(), &Options::default(), &env).unwrap();
        assert_eq!(
            s.config.cache,
            StoreSetting::Sqlite("/srv/repute/repute.sqlite".into())
        );
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
    fn a_store_the_loader_would_refuse_is_named_with_its_value_and_no_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.options");
        for (json, shown) in [
            (
                r#"{"cache": "memcached://u:hunter2@cache:11211"}"#,
                "memcached://***@cache:11211",
            ),
            (r#"{"store": "ftp://x/y"}"#, "ftp://x/y"),
            (r#"{"cache": " "}"#, "is empty"),
            (
                r#"{"store": "redis://u:hunter2@cache:6379"}"#,
                "store_password_file",
            ),
            (r#"{"store": "redis://a:1,b:2"}"#, "redis-cluster://"),
        ] {
            std::fs::write(&path, json).unwrap();
            let e = Options::read(&path).unwrap_err().to_string();
            assert!(
                e.contains("x.options") && e.contains("`store`"),
                "{json}: {e}"
            );
            assert!(e.contains(shown), "{json}: {e}");
            assert!(!e.contains("hunter2") && !e.contains('\n'), "{json}: {e}");
        }
        for good in [
            "none",
            "var/repute/x.sqlite",
            "/srv/x.sqlite",
            "redis://repute@h:6379/1",
        ] {
            std::fs::write(&path, format!(r#"{{"store": "{good}"}}"#)).unwrap();
            assert!(Options::read(&path).is_ok(), "{good}");
        }
    }

    #[test]
    fn the_installed_key_file_is_used_when_ossec_conf_has_no_key() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("etc/repute")).unwrap();
        std::fs::write(home.path().join(DEFAULT_KEY_FILE), "\n  filekey123  \n").unwrap();
        let s = settings(
            home.path(),
            None,
            &args(),
            &Options::default(),
            &Env::default(),
        )
        .unwrap();
        assert_eq!(s.config.api_key, Some(ApiKey::new("filekey123")));
        let mut a = args();
        a.api_key = Some(ApiKey::new("argkey"));
        let s = settings(home.path(), None, &a, &Options::default(), &Env::default()).unwrap();
        assert_eq!(s.config.api_key, Some(ApiKey::new("argkey")));
        std::fs::write(home.path().join(DEFAULT_KEY_FILE), "").unwrap();
        let e = settings(
            home.path(),
            None,
            &args(),
            &Options::default(),
            &Env::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("abuseipdb.key"));
    }

    #[test]
    fn every_variable_of_the_settings_table_reaches_the_integration() {
        let lost: Vec<&str> = crate::config::reference::SETTINGS
            .iter()
            .flat_map(|s| s.env.iter().copied())
            .chain(["REPUTE_CONFIG", "WAZUH_HOME"])
            .filter(|name| !Env::keeps(name))
            .collect();
        assert!(lost.is_empty(), "the integration never sees {lost:?}");
    }

    #[test]
    fn the_environment_key_never_shows_in_debug_output() {
        let env = Env::from_pairs(&[("ABUSEIPDB_API_KEY", "envSecretKey0123456789")]);
        let shown = format!("{env:?}");
        assert!(!shown.contains("envSecretKey0123456789"), "{shown}");
        assert!(shown.contains("ABUSEIPDB_API_KEY"), "{shown}");
    }

    #[test]
    fn a_hook_url_that_would_send_the_key_in_clear_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args();
        a.hook_url = Some("http://api.abuseipdb.example/api/v2/check".into());
        let err = settings(dir.path(), None, &a, &Options::default(), &Env::default())
            .unwrap_err()
            .to_string();
        // Named by its slot, never by its value (which may be half of a split key).
        assert!(!err.contains("api.abuseipdb.example"), "{err}");
        assert!(err.contains("argument 3 (hook_url)"), "{err}");
        a.hook_url = Some("kx9secondHalfOfAKey".into());
        let err = settings(dir.path(), None, &a, &Options::default(), &Env::default())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("kx9secondHalfOfAKey"), "{err}");
        // The options file's api_url is named as given.
        let options = Options {
            api_url: Some("http://u:pw@api.abuseipdb.example/api/v2".into()),
            ..Options::default()
        };
        let err = settings(dir.path(), None, &args(), &options, &Env::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http://***@api.abuseipdb.example/api/v2"),
            "{err}"
        );
        a.hook_url = Some("https://api.abuseipdb.com/api/v2/check".into());
        assert!(settings(dir.path(), None, &a, &Options::default(), &Env::default()).is_ok());
    }
}
