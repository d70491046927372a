//! `repute config show`: every setting of [`super::reference::SETTINGS`] with its effective
//! value and the layer that set it, as a command (not the integration) would load them.
//!
//! Secrets never show: the API key and a Redis password are only `set` or `unset`, a
//! `user:pass@` in a URL is `***@`. Which layer set a value is found by loading the layers
//! one more at a time (defaults, the Wazuh home's, the file, the environment) and taking the
//! last one that changed it; a layer that does not load on its own (a broken default key file
//! that the environment's key replaces) is left out of that comparison.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::reference::{SETTINGS, Setting};
use super::{Config, ConfigError, Overrides, StoreSetting, redact_userinfo};
use crate::watch::settings::WatchFileSettings;

/// Where a value came from, in the loader's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Default,
    WazuhHome,
    File,
    Environment,
    /// The integration's `<options>` JSON (and the budget of its run).
    Options,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Default => "default",
            Layer::WazuhHome => "wazuh-home",
            Layer::File => "file",
            Layer::Environment => "environment",
            Layer::Options => "options",
        }
    }
}

/// One setting's effective value.
#[derive(Debug, Clone)]
pub struct Effective {
    pub setting: &'static Setting,
    /// The value as a person reads it; secrets as `set`/`unset`.
    pub value: String,
    pub layer: Layer,
    /// What in that layer: the file's path, the variable's name, the Wazuh home.
    pub source: Option<String>,
}

/// Why the settings could not be shown: the same errors every command would meet.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Watch(#[from] crate::watch::settings::SettingsError),
    #[error(transparent)]
    Options(#[from] crate::wazuh::options::OptionsError),
}

/// The effective settings for the file `path` (a `--config`; else `REPUTE_CONFIG`, else the
/// default file) and the environment `env`, in the table's order. Settings of the
/// integration's options alone are left out.
pub fn effective(
    path: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Effective>, ShowError> {
    let home = super::host_wazuh_home(&env);
    effective_in(path, home, env)
}

/// As the integration of the Wazuh home `home` would run with the options file `options`:
/// [`effective`] with that home, then what the options (and the budget of a run with no
/// `<timeout>` argument, 10 s) change, and the options' own `min_score`.
pub fn effective_for_integration(
    home: &Path,
    path: Option<&Path>,
    options_file: &Path,
    env: &crate::wazuh::options::Env,
) -> Result<Vec<Effective>, ShowError> {
    use crate::wazuh::options::{Options, settings};
    let mut rows = effective_in(path, Some(home.to_path_buf()), |name| env.get(name))?;
    let options = Options::read(options_file)?;
    let args = crate::wazuh::args::IntegrationArgs {
        alert_file: PathBuf::new(),
        api_key: None,
        hook_url: None,
        debug: false,
        options_file: Some(options_file.to_path_buf()),
        timeout: None,
        retries: None,
    };
    let run = settings(home, path, &args, &options, env)?;
    let budget = ["connect_timeout", "timeout", "retries"];
    for row in rows.iter_mut().filter(|r| r.setting.section() != "watch") {
        let now = value(row.setting, &run.config);
        if now != row.value {
            row.value = now;
            row.layer = Layer::Options;
            row.source = Some(if budget.contains(&row.setting.name()) {
                "the run's budget (integratord's <timeout> and <retries>, default 10 s)".into()
            } else {
                options_file.display().to_string()
            });
        }
    }
    if let Some(setting) = SETTINGS
        .iter()
        .find(|s| s.file.is_empty() && s.name() == "min_score")
    {
        let set = options.min_score.is_some();
        rows.push(Effective {
            setting,
            value: run.min_score.to_string(),
            layer: if set { Layer::Options } else { Layer::Default },
            source: set.then(|| options_file.display().to_string()),
        });
    }
    Ok(rows)
}

fn effective_in(
    path: Option<&Path>,
    home: Option<PathBuf>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Effective>, ShowError> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let file = super::settings_file(path, &env);
    // The per-user fallback depends on these, whatever the layer.
    let base_env = |name: &str| {
        ["HOME", "XDG_CACHE_HOME"]
            .contains(&name)
            .then(|| env(name))
            .flatten()
    };
    let none = Overrides::default();
    let full = Config::load_layers(file.as_deref(), home.as_deref(), env, &none)?;
    let layers: Vec<(Layer, Option<Config>)> = vec![
        (
            Layer::Default,
            Config::load_layers(None, None, base_env, &none).ok(),
        ),
        (
            Layer::WazuhHome,
            Config::load_layers(None, home.as_deref(), base_env, &none).ok(),
        ),
        (
            Layer::File,
            Config::load_layers(file.as_deref(), home.as_deref(), base_env, &none).ok(),
        ),
        (Layer::Environment, Some(full.clone())),
    ];
    let watch = crate::watch::settings::load(file.as_deref())?;
    let watch_default = WatchFileSettings::default();
    let mut out = Vec::new();
    for setting in SETTINGS.iter().filter(|s| !s.file.is_empty()) {
        let (value, layer) = if setting.section() == "watch" {
            let value = watch_value(setting, &watch);
            let layer = if value == watch_value(setting, &watch_default) {
                Layer::Default
            } else {
                Layer::File
            };
            (value, layer)
        } else {
            let values: Vec<(Layer, String)> = layers
                .iter()
                .filter_map(|(l, c)| Some((*l, value(setting, c.as_ref()?))))
                .collect();
            let layer = values
                .windows(2)
                .rev()
                .find(|w| w[0].1 != w[1].1)
                .map_or(Layer::Default, |w| w[1].0);
            (value(setting, &full), layer)
        };
        let source = match layer {
            Layer::Default | Layer::Options => None,
            Layer::WazuhHome => home.as_ref().map(|h| h.display().to_string()),
            Layer::File => file.as_ref().map(|f| f.display().to_string()),
            // None when no variable of its own is set: it follows one that is (`store`
            // follows `REPUTE_STATE_DIR`).
            Layer::Environment => setting
                .env
                .iter()
                .find(|name| env(name).is_some())
                .map(|name| name.to_string()),
        };
        out.push(Effective {
            setting,
            value,
            layer,
            source,
        });
    }
    Ok(out)
}

/// The value of a setting the loader keeps in [`Config`] (every row but `[watch]`'s and the
/// integration's own).
pub fn value(setting: &Setting, c: &Config) -> String {
    let redis = match &c.cache {
        StoreSetting::Redis(t) => Some(t),
        _ => None,
    };
    let no_redis = || "(not a Redis store)".to_string();
    let set = |b: bool| if b { "set" } else { "unset" }.to_string();
    match setting.name() {
        "api_key_file" => path_or(c.api_key_file.as_deref(), "none"),
        "api_key" => set(c.api_key.is_some()),
        "api_url" => redact_userinfo(&c.api_url),
        "store" => match &c.cache {
            StoreSetting::Sqlite(p) => p.display().to_string(),
            StoreSetting::Disabled => "none".into(),
            StoreSetting::Redis(t) => t.to_string(),
        },
        "store_password_file" => redis.map_or_else(no_redis, |t| set(t.password.is_some())),
        "store_prefix" => redis.map_or_else(no_redis, |t| t.prefix.clone()),
        "store_ca_file" => redis.map_or_else(no_redis, |t| set(t.ca_pem.is_some())),
        "store_timeout" => redis.map_or_else(no_redis, |t| duration(t.timeout)),
        "store_failure" => {
            redis.map_or_else(no_redis, |t| format!("{:?}", t.on_failure).to_lowercase())
        }
        "state_dir" if c.per_user_state => {
            format!(
                "{} (per-user: {} is not writable)",
                c.state_dir.display(),
                super::DEFAULT_STATE_DIR
            )
        }
        "state_dir" => c.state_dir.display().to_string(),
        "max_age_days" => c.max_age_days.to_string(),
        "positive_ttl" => duration(c.positive_ttl),
        "negative_ttl" => duration(c.negative_ttl),
        "allowlist" => list(c.allowlist.iter().map(ToString::to_string)),
        "connect_timeout" => duration(c.connect_timeout),
        "timeout" => duration(c.timeout),
        "retries" => c.retries.to_string(),
        "alert_min_score" => c.alert_min_score.to_string(),
        "proxy" => c.proxy.as_ref().map_or("from the environment".into(), |p| {
            redact_userinfo(p.as_str())
        }),
        "ca_file" => path_or(c.ca_file.as_deref(), "the compiled-in roots"),
        "block.backend" => c.block.backend.clone(),
        "block.table" => c.block.table.clone(),
        "block.forward" => c.block.forward.to_string(),
        "block.default_duration" => duration(c.block.default_duration),
        "block.max_entries" => c.block.max_entries.to_string(),
        "block.min_score" => c.block.min_score.map_or("none".into(), |s| s.to_string()),
        "report.enabled" => c.report.enabled.to_string(),
        "report.user_names" => c.report.user_names.to_string(),
        "report.host_names" => list(c.report.host_names.iter().cloned()),
        "report.audit_log" => match c.report.audit_target(&c.state_dir) {
            crate::report::settings::AuditTarget::File(p) => p.display().to_string(),
            crate::report::settings::AuditTarget::Stderr => "- (stderr)".into(),
        },
        _ => String::new(),
    }
}

/// The value of a `[watch]` setting.
pub fn watch_value(setting: &Setting, w: &WatchFileSettings) -> String {
    let p = &w.policy;
    match setting.name() {
        "watch.files" => list(w.files.iter().map(|f| f.display().to_string())),
        "watch.journal" => w.journal.to_string(),
        "watch.journal_directory" => path_or(w.journal_directory.as_deref(), "the system journal"),
        "watch.max_retry" => p.max_retry.to_string(),
        "watch.find_time" => duration(p.find_time),
        "watch.ban_time" => duration(p.ban_time),
        "watch.ban_time_factor" => p.ban_time_factor.to_string(),
        "watch.ban_time_max" => duration(p.ban_time_max),
        "watch.ban_score" => p.ban_score.map_or("false".into(), |s| s.to_string()),
        "watch.ipv6_prefix" => p.ipv6_prefix.to_string(),
        "watch.max_tracked" => p.max_tracked.to_string(),
        "watch.metrics_listen" => w.metrics_listen.map_or("none".into(), |a| a.to_string()),
        "watch.poll_interval" => w.poll_interval.map_or("250ms".into(), duration),
        _ => String::new(),
    }
}

fn duration(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        crate::duration::format_duration(d)
    }
}

fn path_or(p: Option<&Path>, none: &str) -> String {
    p.map_or(none.to_string(), |p| p.display().to_string())
}

fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "empty".into()
    } else {
        items.join(", ")
    }
}

/// The effective settings as the text `repute config show` prints.
pub fn text(settings: &[Effective], file: Option<&PathBuf>) -> String {
    let mut out = match file {
        Some(f) => format!("# settings file: {}\n", f.display()),
        None => "# no settings file (defaults and environment)\n".to_string(),
    };
    let width = settings
        .iter()
        .map(|e| e.setting.name().len())
        .max()
        .unwrap_or(0);
    // Long values (a path, a list) are not padded for: they would push every line out.
    let value_width = settings
        .iter()
        .map(|e| e.value.chars().count())
        .filter(|n| *n <= 40)
        .max()
        .unwrap_or(0);
    for e in settings {
        let from = match &e.source {
            Some(s) => format!("{} {s}", e.layer.as_str()),
            None => e.layer.as_str().to_string(),
        };
        out.push_str(&format!(
            "{:width$}  {:value_width$}  [{from}]\n",
            e.setting.name(),
            e.value
        ));
    }
    out
}

/// One JSON object per setting: `setting`, `value`, `layer`, `source` (null for defaults).
pub fn json_lines(settings: &[Effective]) -> String {
    settings
        .iter()
        .map(|e| {
            serde_json::json!({
                "setting": e.setting.name(),
                "value": e.value,
                "layer": e.layer.as_str(),
                "source": e.source,
            })
            .to_string()
                + "\n"
        })
        .collect()
}
