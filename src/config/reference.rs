//! The table of every setting: its key in the settings file, its environment variable, its
//! key in the integration's options JSON, the flags that set it, its default and what it
//! means. It is the one source of truth about names: the loader refuses a file key that is
//! not here ([`check_file_keys`]), the settings reference in the README is generated from it
//! ([`markdown`], `repute config reference`), `repute config show` lists what it lists, and
//! tests prove that the loader's own structs, variables and options agree with it both ways.
//!
//! The environment layer is read through this table too: each variable set becomes its
//! row's file key and is parsed as the file is. Adding a setting: a row here (the tests then
//! say which loader parts still lack it), its field in `Config` with its default, its field
//! in the file struct and its parsing in `Builder::apply_settings` (which serves the file and
//! the environment), its arm in [`super::show::value`], and `wazuh::options` when the
//! integration's options JSON carries it.

/// One setting, as every layer names it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Its key in the settings file (`section.key` inside a section), aliases after the first;
    /// empty for a setting of the integration's options only.
    pub file: &'static [&'static str],
    /// Its environment variables, aliases after the first.
    pub env: &'static [&'static str],
    /// Its keys in the integration's `<options>` JSON, aliases after the first.
    pub options: &'static [&'static str],
    /// The commands and flags that set it: `("check", "--cache")`.
    pub flags: &'static [(&'static str, &'static str)],
    /// The built-in default, as a person reads it.
    pub default: &'static str,
    /// What it does, one sentence or two.
    pub meaning: &'static str,
    /// A value the loader accepts, written as TOML (tests load every example). Its type is
    /// also how the environment's text is read ([`Setting::env_value`]): a number, a list
    /// (comma-separated), a boolean, else text (durations are text: `"10m"`).
    pub example: &'static str,
}

impl Setting {
    /// The name the setting goes by: its file key, else its options key.
    pub fn name(&self) -> &'static str {
        self.file
            .first()
            .or(self.options.first())
            .copied()
            .unwrap_or_default()
    }

    /// The environment's `text` as the value the settings file would hold.
    pub fn env_value(&self, text: &str) -> Result<toml::Value, String> {
        let typed = toml::from_str::<toml::Table>(&format!("v = {}", self.example))
            .ok()
            .and_then(|mut t| t.remove("v"));
        Ok(match typed {
            Some(toml::Value::Integer(_)) => toml::Value::Integer(
                text.trim()
                    .parse()
                    .map_err(|_| format!("`{text}` is not a whole number"))?,
            ),
            Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
                text.trim()
                    .parse()
                    .map_err(|_| format!("`{text}` is not true or false"))?,
            ),
            Some(toml::Value::Array(_)) => toml::Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
            _ => toml::Value::String(text.to_string()),
        })
    }

    /// The section of the settings file (`block`, `report`, `watch`), or `""` for the top.
    pub fn section(&self) -> &'static str {
        self.file
            .first()
            .and_then(|k| k.split_once('.'))
            .map_or("", |(section, _)| section)
    }
}

/// The sections of the settings file, in the order the reference lists them.
pub const SECTIONS: [&str; 4] = ["", "block", "report", "watch"];

/// Environment variables the loader reads that are not settings: where the settings file
/// is, the Wazuh home whose defaults apply, and where a per-user store goes.
pub const OTHER_ENV: [&str; 4] = ["REPUTE_CONFIG", "WAZUH_HOME", "XDG_CACHE_HOME", "HOME"];

const API_FLAGS: &[(&str, &str)] = &[
    ("check", "--api-url"),
    ("scan", "--api-url"),
    ("report", "--api-url"),
];
const KEY_FLAGS: &[(&str, &str)] = &[
    ("check", "--api-key-file"),
    ("scan", "--api-key-file"),
    ("report", "--api-key-file"),
];
const STORE_FLAGS: &[(&str, &str)] = &[
    ("check", "--cache"),
    ("scan", "--cache"),
    ("report", "--cache"),
];

/// Every setting. The order is the reference's.
pub const SETTINGS: &[Setting] = &[
    Setting {
        file: &["api_key_file"],
        env: &["ABUSEIPDB_API_KEY_FILE"],
        options: &["api_key_file"],
        flags: KEY_FLAGS,
        default: "none; on a Wazuh host `<wazuh>/etc/repute/abuseipdb.key` when it exists",
        meaning: "A file holding only the AbuseIPDB key (the whole file, whitespace around it \
                  trimmed), so the key never sits in a command line. A relative path in the \
                  file is relative to the file's directory; in the options, to the Wazuh home.",
        example: r#""abuseipdb.key""#,
    },
    Setting {
        file: &["api_key"],
        env: &["ABUSEIPDB_API_KEY"],
        options: &[],
        flags: &[],
        default: "none",
        meaning: "The AbuseIPDB key itself; prefer `api_key_file`. The integration's \
                  `<api_key>` argument wins over every layer.",
        example: r#""k3y0123456789""#,
    },
    Setting {
        file: &["api_url"],
        env: &["ABUSEIPDB_API_URL"],
        options: &["api_url"],
        flags: API_FLAGS,
        default: "`https://api.abuseipdb.com/api/v2`",
        meaning: "The API base; a URL ending in `/check` (Wazuh's `<hook_url>`, which wins \
                  for the integration) is accepted. Plain `http://` only to a loopback host.",
        example: r#""http://127.0.0.1:9/api/v2""#,
    },
    Setting {
        file: &["store", "cache"],
        env: &["REPUTE_STORE", "REPUTE_CACHE"],
        options: &["store", "cache"],
        flags: STORE_FLAGS,
        default: "`<state_dir>/repute.sqlite`",
        meaning: "Where answers, quota and decisions are kept: a SQLite path, `none`, or a \
                  Redis URL (`redis://`, `rediss://`, `redis+unix://`, `redis-cluster://`) \
                  with no password in it.",
        example: r#""rediss://repute@127.0.0.1:6379/1""#,
    },
    Setting {
        file: &["store_password_file"],
        env: &["REPUTE_STORE_PASSWORD_FILE"],
        options: &["store_password_file"],
        flags: &[],
        default: "none",
        meaning: "A file whose first line is the Redis password.",
        example: r#""redis.password""#,
    },
    Setting {
        file: &["store_prefix"],
        env: &["REPUTE_STORE_PREFIX"],
        options: &["store_prefix"],
        flags: &[],
        default: "`repute:`",
        meaning: "The prefix of every Redis key (several sites on one Redis).",
        example: r#""site-a:""#,
    },
    Setting {
        file: &["store_ca_file"],
        env: &["REPUTE_STORE_CA_FILE"],
        options: &["store_ca_file"],
        flags: &[],
        default: "the compiled-in roots",
        meaning: "A PEM bundle trusted for a `rediss://` store.",
        example: r#""redis-ca.pem""#,
    },
    Setting {
        file: &["store_timeout"],
        env: &["REPUTE_STORE_TIMEOUT"],
        options: &["store_timeout_ms"],
        flags: &[],
        default: "`1s`",
        meaning: "How long one Redis exchange may take (the options give milliseconds; the \
                  integration uses at most a tenth of its run's budget).",
        example: r#""250ms""#,
    },
    Setting {
        file: &["store_failure"],
        env: &["REPUTE_STORE_FAILURE"],
        options: &["store_failure"],
        flags: &[],
        default: "`lookup`",
        meaning: "While the Redis store is down: `lookup` (ask AbuseIPDB anyway) or `error`.",
        example: r#""error""#,
    },
    Setting {
        file: &["state_dir"],
        env: &["REPUTE_STATE_DIR"],
        options: &[],
        flags: &[],
        default: "`/var/lib/repute`; on a Wazuh host `<wazuh>/var/repute`; \
                  `$XDG_CACHE_HOME/repute` for a user who cannot write the system one",
        meaning: "The directory of the store and of what stays per host (positions, the \
                  report audit log). Naming it in any layer turns the per-user fallback off.",
        example: r#""/srv/repute""#,
    },
    Setting {
        file: &["max_age_days"],
        env: &["REPUTE_MAX_AGE_DAYS"],
        options: &["max_age_days", "maxAgeInDays"],
        flags: &[("check", "--max-age-days"), ("scan", "--max-age-days")],
        default: "90",
        meaning: "AbuseIPDB's window for reports, 1 to 365 days.",
        example: "30",
    },
    Setting {
        file: &["positive_ttl"],
        env: &["REPUTE_POSITIVE_TTL"],
        options: &["ttl_seconds"],
        flags: &[],
        default: "`24h`",
        meaning: "How long an answer about a known address is reused.",
        example: r#""12h""#,
    },
    Setting {
        file: &["negative_ttl"],
        env: &["REPUTE_NEGATIVE_TTL"],
        options: &["negative_ttl_seconds"],
        flags: &[],
        default: "`6h`",
        meaning: "How long an answer about an address AbuseIPDB knows nothing against is \
                  reused.",
        example: r#""10m""#,
    },
    Setting {
        file: &["allowlist"],
        env: &["REPUTE_ALLOWLIST"],
        options: &["allowlist"],
        flags: &[],
        default: "empty",
        meaning: "Addresses and networks never looked up, reported or blocked (a comma-separated \
                  list in the environment; the options' list is added to the others).",
        example: r#"["192.0.2.0/24", "2001:db8::7"]"#,
    },
    Setting {
        file: &["connect_timeout"],
        env: &["REPUTE_CONNECT_TIMEOUT"],
        options: &[],
        flags: &[],
        default: "`5s`",
        meaning: "Bound on connecting to AbuseIPDB (at most 10 minutes).",
        example: r#""3s""#,
    },
    Setting {
        file: &["timeout"],
        env: &["REPUTE_TIMEOUT"],
        options: &[],
        flags: &[],
        default: "`10s`",
        meaning: "Bound on one whole AbuseIPDB call with its retries (at most 10 minutes). The \
                  integration uses its `<timeout>` argument instead.",
        example: r#""1s500ms""#,
    },
    Setting {
        file: &["retries"],
        env: &["REPUTE_RETRIES"],
        options: &[],
        flags: &[],
        default: "1",
        meaning: "Extra tries after a transient failure, within `timeout` (the integration's \
                  `<retries>` argument wins).",
        example: "2",
    },
    Setting {
        file: &["alert_min_score"],
        env: &["REPUTE_ALERT_MIN_SCORE"],
        options: &[],
        flags: &[],
        default: "1",
        meaning: "A verdict is an alert from this score (0-100) up.",
        example: "40",
    },
    Setting {
        file: &["proxy"],
        env: &["REPUTE_PROXY"],
        options: &["proxy"],
        flags: &[],
        default: "`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY` as curl reads them",
        meaning: "The HTTP(S) proxy to AbuseIPDB, or `none`.",
        example: r#""http://proxy.example:3128""#,
    },
    Setting {
        file: &["ca_file"],
        env: &["REPUTE_CA_FILE"],
        options: &["ca_file"],
        flags: &[],
        default: "the compiled-in roots",
        meaning: "A PEM bundle trusted instead of the compiled-in roots (a TLS-inspecting \
                  proxy's CA).",
        example: r#""proxy-ca.pem""#,
    },
    Setting {
        file: &[],
        env: &[],
        options: &["min_score", "threshold"],
        flags: &[],
        default: "0",
        meaning: "The integration sends no event for an address scoring below this.",
        example: "25",
    },
    Setting {
        file: &["block.backend"],
        env: &[],
        options: &[],
        flags: &[],
        default: "`auto`",
        meaning: "`auto` (nftables when `nft` exists, else ipset), `nftables` or `ipset`.",
        example: r#""nftables""#,
    },
    Setting {
        file: &["block.table"],
        env: &[],
        options: &[],
        flags: &[],
        default: "`repute`",
        meaning: "The nftables table (family `inet`) and ipset name prefix repute owns.",
        example: r#""repute2""#,
    },
    Setting {
        file: &["block.forward"],
        env: &[],
        options: &[],
        flags: &[],
        default: "false",
        meaning: "Also drop forwarded traffic (a router, containers).",
        example: "true",
    },
    Setting {
        file: &["block.default_duration"],
        env: &[],
        options: &[],
        flags: &[("block add", "--for"), ("wazuh active-response", "--for")],
        default: "`1h`",
        meaning: "How long a block lasts when the command gives no duration (whole seconds).",
        example: r#""1h30m""#,
    },
    Setting {
        file: &["block.max_entries"],
        env: &[],
        options: &[],
        flags: &[],
        default: "65536",
        meaning: "At most this many addresses blocked at once.",
        example: "1000",
    },
    Setting {
        file: &["block.min_score"],
        env: &[],
        options: &[],
        flags: &[("wazuh active-response", "--min-score")],
        default: "none",
        meaning: "The active response declines to block an address scoring below this (0-100). \
                  `repute wazuh install --active-response` already triggers from 50: a value \
                  above 50 raises that bar for every block.",
        example: "50",
    },
    Setting {
        file: &["report.enabled"],
        env: &[],
        options: &[],
        flags: &[],
        default: "false",
        meaning: "`repute watch` reports the addresses it bans to AbuseIPDB (the active \
                  response reports with its own `--report` flag).",
        example: "true",
    },
    Setting {
        file: &["report.user_names"],
        env: &[],
        options: &[],
        flags: &[],
        default: "false",
        meaning: "List vetted user names tried in report comments.",
        example: "true",
    },
    Setting {
        file: &["report.host_names"],
        env: &[],
        options: &[],
        flags: &[],
        default: "empty",
        meaning: "Names of this host, besides its host name, never to share in comments.",
        example: r#"["bastion.example.org"]"#,
    },
    Setting {
        file: &["report.audit_log"],
        env: &[],
        options: &[],
        flags: &[],
        default: "`<state_dir>/report-audit.jsonl`",
        meaning: "Where each report or refusal is logged as one JSON line; `-` is stderr.",
        example: r#""report-audit.jsonl""#,
    },
    Setting {
        file: &["watch.files"],
        env: &[],
        options: &[],
        flags: &[("watch", "--file")],
        default: "the journal, else `/var/log/auth.log` or `/var/log/secure`",
        meaning: "Log files `repute watch` follows.",
        example: r#"["/var/log/auth.log"]"#,
    },
    Setting {
        file: &["watch.journal"],
        env: &[],
        options: &[],
        flags: &[("watch", "--journal")],
        default: "false",
        meaning: "Follow the systemd journal.",
        example: "true",
    },
    Setting {
        file: &["watch.journal_directory"],
        env: &[],
        options: &[],
        flags: &[("watch", "--journal-directory")],
        default: "the system journal",
        meaning: "Journal files in this directory instead.",
        example: r#""/var/log/journal/remote""#,
    },
    Setting {
        file: &["watch.max_retry"],
        env: &[],
        options: &[],
        flags: &[("watch", "--max-retry")],
        default: "5",
        meaning: "Tries within `find_time` that earn a ban (probes count half), 1 to 1000.",
        example: "3",
    },
    Setting {
        file: &["watch.find_time"],
        env: &[],
        options: &[],
        flags: &[("watch", "--find-time")],
        default: "`10m`",
        meaning: "The window tries are counted in.",
        example: r#""15m""#,
    },
    Setting {
        file: &["watch.ban_time"],
        env: &[],
        options: &[],
        flags: &[("watch", "--ban-time")],
        default: "`10m`",
        meaning: "How long a first ban lasts.",
        example: r#""1h""#,
    },
    Setting {
        file: &["watch.ban_time_factor"],
        env: &[],
        options: &[],
        flags: &[],
        default: "2",
        meaning: "Each further ban of the same address lasts this many times longer.",
        example: "3",
    },
    Setting {
        file: &["watch.ban_time_max"],
        env: &[],
        options: &[],
        flags: &[],
        default: "`1w`",
        meaning: "The longest ban.",
        example: r#""2d""#,
    },
    Setting {
        file: &["watch.ban_score"],
        env: &[],
        options: &[],
        flags: &[],
        default: "90",
        meaning: "Ban at the first attack from an address scoring this high; `false`: never.",
        example: "false",
    },
    Setting {
        file: &["watch.ipv6_prefix"],
        env: &[],
        options: &[],
        flags: &[],
        default: "64",
        meaning: "IPv6 sources are counted and banned per prefix of this length (32-128).",
        example: "56",
    },
    Setting {
        file: &["watch.max_tracked"],
        env: &[],
        options: &[],
        flags: &[],
        default: "100000",
        meaning: "Sources remembered at most (the least active dropped past that).",
        example: "1000",
    },
    Setting {
        file: &["watch.metrics_listen"],
        env: &[],
        options: &[],
        flags: &[("watch", "--metrics-listen")],
        default: "none",
        meaning: "Serve Prometheus metrics on this address and port.",
        example: r#""127.0.0.1:9477""#,
    },
    Setting {
        file: &["watch.poll_interval"],
        env: &[],
        options: &[],
        flags: &[],
        default: "`250ms`",
        meaning: "The pause between rounds that read nothing (10ms to 10s).",
        example: r#""500ms""#,
    },
];

/// The setting a file key (`section.key` in a section; an alias too) belongs to.
pub fn by_file_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.file.contains(&key))
}

/// Refuses a key of the settings file that is in no row of [`SETTINGS`], naming it and its
/// line. Text that is not TOML passes: the parser that follows says what is wrong with it.
pub fn check_file_keys(text: &str) -> Result<(), (Option<usize>, String)> {
    let Ok(doc) = toml::de::DeTable::parse(text) else {
        return Ok(());
    };
    let line_of = |span: std::ops::Range<usize>| {
        Some(text.get(..span.start).unwrap_or(text).matches('\n').count() + 1)
    };
    for (key, value) in doc.get_ref() {
        let key_text: &str = key.get_ref();
        let section = SECTIONS[1..].contains(&key_text);
        match value.get_ref() {
            toml::de::DeValue::Table(table) if section => {
                for (inner, _) in table {
                    let full = format!("{key_text}.{}", inner.get_ref());
                    if by_file_key(&full).is_none() {
                        let msg = format!(
                            "unknown key `{}` in [{key_text}]{}",
                            inner.get_ref(),
                            hint(&full)
                        );
                        return Err((line_of(inner.span()), msg));
                    }
                }
            }
            _ if section => {}
            _ if by_file_key(key_text).is_none() => {
                let msg = format!("unknown key `{key_text}`{}", hint(key_text));
                return Err((line_of(key.span()), msg));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `; did you mean `x`?` for the known key of the same section closest to `key` (a typo, a
/// plural), else a pointer to the list.
fn hint(key: &str) -> String {
    let split = |k: &'static str| k.split_once('.').unwrap_or(("", k));
    let (section, name) = key.split_once('.').unwrap_or(("", key));
    let closest = SETTINGS
        .iter()
        .flat_map(|s| s.file.iter().map(|k| split(k)))
        .filter(|(s, _)| *s == section)
        .map(|(_, known)| (edit_distance(known, name), known))
        .min();
    match closest {
        Some((distance, known)) if distance <= (name.chars().count() / 3).max(1) => {
            format!("; did you mean `{known}`?")
        }
        _ => " (`repute config reference` lists every key)".into(),
    }
}

/// Levenshtein distance, for keys of a few dozen bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The settings reference in Markdown: one table per section of the file, then the
/// integration's options that no file key has. The README carries this text between
/// `<!-- settings-reference:start -->` and `<!-- settings-reference:end -->`.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "Later layers win: built-in defaults, then a Wazuh home's defaults, then the settings \
         file, then the environment, then the integration's `<options>` JSON, then flags (and \
         the integration's arguments). Durations are a number of seconds or text such as \
         `500ms`, `90s`, `15m`, `1h30m`, `1d`. An unknown key in the file or the options is an \
         error that names it. `repute config show` prints every effective value and the layer \
         that set it.\n",
    );
    for section in SECTIONS {
        let title = if section.is_empty() {
            "Top level of the file".to_string()
        } else {
            format!("`[{section}]`")
        };
        out.push_str(&format!("\n### {title}\n\n"));
        let rows: Vec<&Setting> = SETTINGS
            .iter()
            .filter(|s| !s.file.is_empty() && s.section() == section)
            .collect();
        table(&mut out, &rows, section.is_empty());
    }
    out.push_str("\n### Integration options only\n\n");
    let rows: Vec<&Setting> = SETTINGS.iter().filter(|s| s.file.is_empty()).collect();
    table(&mut out, &rows, true);
    out
}

fn table(out: &mut String, rows: &[&Setting], with_env: bool) {
    if with_env {
        out.push_str("| key | environment | options JSON | flags | default | meaning |\n");
        out.push_str("|---|---|---|---|---|---|\n");
    } else {
        out.push_str("| key | flags | default | meaning |\n|---|---|---|---|\n");
    }
    for s in rows {
        let key = names(
            &s.file
                .iter()
                .map(|k| k.split_once('.').map_or(*k, |(_, k)| k))
                .collect::<Vec<_>>(),
        );
        let meaning = s.meaning.split_whitespace().collect::<Vec<_>>().join(" ");
        if with_env {
            out.push_str(&format!(
                "| {key} | {} | {} | {} | {} | {meaning} |\n",
                names(s.env),
                names(s.options),
                flags(s.flags),
                s.default
            ));
        } else {
            out.push_str(&format!(
                "| {key} | {} | {} | {meaning} |\n",
                flags(s.flags),
                s.default
            ));
        }
    }
}

/// `` `a` (or `b`) ``, or `—` for none.
fn names(list: &[&str]) -> String {
    match list {
        [] => "—".into(),
        [one] => format!("`{one}`"),
        [first, rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|r| format!("`{r}`")).collect();
            format!("`{first}` (or {})", rest.join(", "))
        }
    }
}

/// `` `--cache` (check, scan, report) ``, one group per flag.
fn flags(list: &[(&str, &str)]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (command, flag) in list {
        match groups.iter_mut().find(|(f, _)| f == flag) {
            Some((_, commands)) => commands.push(command),
            None => groups.push((flag, vec![command])),
        }
    }
    if groups.is_empty() {
        return "—".into();
    }
    groups
        .iter()
        .map(|(flag, commands)| format!("`{flag}` ({})", commands.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The README's markers around the generated reference.
pub const README_START: &str = "<!-- settings-reference:start: generated by `repute config reference`; do not edit by hand -->";
pub const README_END: &str = "<!-- settings-reference:end -->";

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::config::show::{value, watch_value};
    use crate::config::{Config, Overrides, env_from_pairs};

    /// The field names (aliases included) a serde struct accepts: its `deserialize_struct`
    /// call is caught and its field list kept.
    fn fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
        #[derive(Debug)]
        struct Caught(&'static [&'static str]);
        impl std::fmt::Display for Caught {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::error::Error for Caught {}
        impl serde::de::Error for Caught {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Caught(&[])
            }
        }
        struct Catch;
        impl<'de> serde::Deserializer<'de> for Catch {
            type Error = Caught;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Caught> {
                Err(Caught(&[]))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Caught> {
                Err(Caught(fields))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        match T::deserialize(Catch) {
            Err(Caught(fields)) => fields,
            Ok(_) => &[],
        }
    }

    fn table_keys(column: impl Fn(&Setting) -> &'static [&'static str]) -> BTreeSet<String> {
        SETTINGS
            .iter()
            .flat_map(|s| column(s).iter().map(|k| k.to_string()))
            .collect()
    }

    fn assert_same(loader: &BTreeSet<String>, table: &BTreeSet<String>, what: &str) {
        let unlisted: Vec<&String> = loader.difference(table).collect();
        let refused: Vec<&String> = table.difference(loader).collect();
        assert!(
            unlisted.is_empty() && refused.is_empty(),
            "{what}: the loader accepts {unlisted:?} that the table lacks; \
             the table lists {refused:?} that the loader refuses"
        );
    }

    #[test]
    fn the_file_structs_accept_exactly_the_keys_of_the_table() {
        let mut loader: BTreeSet<String> = BTreeSet::new();
        for key in fields::<crate::config::FileConfig>() {
            if !SECTIONS.contains(key) {
                loader.insert(key.to_string());
            }
        }
        for (section, keys) in [
            ("block", fields::<crate::config::FileBlock>()),
            ("report", fields::<crate::report::ReportSettings>()),
            ("watch", fields::<crate::watch::settings::WatchSection>()),
        ] {
            assert!(!keys.is_empty(), "{section}");
            loader.extend(keys.iter().map(|k| format!("{section}.{k}")));
        }
        assert_same(&loader, &table_keys(|s| s.file), "settings file keys");
        // The sections the file struct reads are the table's.
        let sections: BTreeSet<&str> = fields::<crate::config::FileConfig>()
            .iter()
            .copied()
            .filter(|k| SECTIONS.contains(k))
            .collect();
        assert_eq!(sections, SECTIONS[1..].iter().copied().collect());
    }

    #[test]
    fn the_options_json_accepts_exactly_the_options_keys_of_the_table() {
        let loader: BTreeSet<String> = fields::<crate::wazuh::options::Options>()
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_same(&loader, &table_keys(|s| s.options), "options JSON keys");
    }

    /// A file with every key of the table at its example value, the files it names made to
    /// exist beside it.
    fn every_key(dir: &Path) -> std::path::PathBuf {
        std::fs::write(dir.join("abuseipdb.key"), "k".repeat(80)).expect("key");
        std::fs::write(dir.join("redis.password"), "pw\n").expect("password");
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("ca");
        std::fs::write(dir.join("proxy-ca.pem"), ca.cert.pem()).expect("ca file");
        std::fs::write(dir.join("redis-ca.pem"), ca.cert.pem()).expect("redis ca");
        let mut text = String::new();
        for section in SECTIONS {
            if !section.is_empty() {
                text.push_str(&format!("[{section}]\n"));
            }
            for s in SETTINGS
                .iter()
                .filter(|s| !s.file.is_empty() && s.section() == section)
            {
                let key = s.file[0].rsplit('.').next().unwrap_or_default();
                text.push_str(&format!("{key} = {}\n", s.example));
            }
        }
        let path = dir.join("repute.toml");
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn every_key_of_the_table_loads_and_changes_its_setting() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = every_key(dir.path());
        let none = env_from_pairs(&[]);
        let c = Config::load_from(Some(&path), &none, &Overrides::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let w = crate::watch::settings::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
        let defaults = Config::load_from(None, &none, &Overrides::default()).expect("defaults");
        let watch_defaults = crate::watch::settings::WatchFileSettings::default();
        for s in SETTINGS.iter().filter(|s| !s.file.is_empty()) {
            let (got, default) = if s.section() == "watch" {
                (watch_value(s, &w), watch_value(s, &watch_defaults))
            } else {
                (value(s, &c), value(s, &defaults))
            };
            assert!(!got.is_empty(), "{}: no value shown", s.name());
            assert_ne!(got, default, "{}: the example changed nothing", s.name());
        }
    }

    /// The example as the environment writes it: a list comma-separated, a file beside the
    /// test's settings file by its full path.
    fn env_value(example: &str, dir: &Path) -> String {
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {example}"))
            .expect("example")
            .remove("v")
            .expect("v");
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        match dir.join(&text) {
            p if !text.is_empty() && p.is_file() => p.display().to_string(),
            _ => text,
        }
    }

    #[test]
    fn every_variable_of_the_table_loads_and_the_loader_reads_no_other() {
        let dir = tempfile::tempdir().expect("tmp");
        every_key(dir.path());
        let pairs: Vec<(String, String)> = SETTINGS
            .iter()
            .flat_map(|s| {
                s.env
                    .first()
                    .map(|name| (name.to_string(), env_value(s.example, dir.path())))
            })
            .collect();
        let asked = std::sync::Mutex::new(BTreeSet::new());
        let env = |name: &str| {
            asked.lock().expect("lock").insert(name.to_string());
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let c =
            Config::load_from(None, env, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        let defaults =
            Config::load_from(None, env_from_pairs(&[]), &Overrides::default()).expect("defaults");
        for s in SETTINGS.iter().filter(|s| !s.env.is_empty()) {
            assert_ne!(
                value(s, &c),
                value(s, &defaults),
                "{}: the variable changed nothing",
                s.env[0]
            );
        }
        let mut known = table_keys(|s| s.env);
        known.extend(OTHER_ENV.iter().map(|n| n.to_string()));
        let asked = asked.into_inner().expect("lock");
        let unknown: Vec<&String> = asked.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "the loader reads variables the table lacks: {unknown:?}"
        );
        let never: Vec<&String> = known.difference(&asked).collect();
        assert!(
            never.is_empty(),
            "the table lists variables the loader never reads: {never:?}"
        );
    }

    #[test]
    fn a_key_of_no_row_is_refused_with_its_line_even_in_the_watch_section() {
        let err = check_file_keys("max_age_days = 3\n\n[watch]\nmax_retries = 3\n").unwrap_err();
        assert_eq!(
            err,
            (
                Some(4),
                "unknown key `max_retries` in [watch]; did you mean `max_retry`?".to_string()
            )
        );
        let err = check_file_keys("cache_ttl = 5\n").unwrap_err();
        assert_eq!(
            err,
            (
                Some(1),
                "unknown key `cache_ttl` (`repute config reference` lists every key)".to_string()
            )
        );
        let err = check_file_keys("[block]\nmin_scor = 5\n").unwrap_err();
        assert!(err.1.ends_with("did you mean `min_score`?"), "{err:?}");
        let err = check_file_keys("timout = 5\n").unwrap_err();
        assert!(err.1.ends_with("did you mean `timeout`?"), "{err:?}");
        assert_eq!(
            check_file_keys("cache = \"none\"\n[block]\nmin_score = 5\n"),
            Ok(())
        );
        assert_eq!(
            check_file_keys("not toml ["),
            Ok(()),
            "the parser says what is wrong"
        );
    }

    #[test]
    fn a_default_written_in_the_file_changes_nothing() {
        let none = env_from_pairs(&[]);
        let defaults = Config::load_from(None, &none, &Overrides::default()).expect("defaults");
        let watch_defaults = crate::watch::settings::WatchFileSettings::default();
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("repute.toml");
        let mut checked = 0;
        for s in SETTINGS.iter().filter(|s| !s.file.is_empty()) {
            // Only a default that is a value (not a sentence, not `none`).
            let text = s.default.trim_matches('`');
            if text.contains([' ', ';', '`', '<']) || ["none", "empty"].contains(&text) {
                continue;
            }
            let literal = match toml::from_str::<toml::Table>(&format!("v = {text}")) {
                Ok(_) => text.to_string(),
                Err(_) => format!("{text:?}"),
            };
            let (section, key) = s.file[0].split_once('.').unwrap_or(("", s.file[0]));
            let header = if section.is_empty() {
                String::new()
            } else {
                format!("[{section}]\n")
            };
            std::fs::write(&path, format!("{header}{key} = {literal}\n")).expect("write");
            let (got, want) = if section == "watch" {
                let w = crate::watch::settings::load(Some(&path))
                    .unwrap_or_else(|e| panic!("{}: {e}", s.name()));
                (watch_value(s, &w), watch_value(s, &watch_defaults))
            } else {
                let c = Config::load_from(Some(&path), &none, &Overrides::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", s.name()));
                (value(s, &c), value(s, &defaults))
            };
            assert_eq!(
                got,
                want,
                "{}: the default column says {}",
                s.name(),
                s.default
            );
            checked += 1;
        }
        assert!(checked >= 25, "only {checked} defaults checked");
    }

    /// `examples/repute.toml` shows every key of the file, in its section: commented out at
    /// its default, or as an `Example:` where the default is no value.
    #[test]
    fn the_sample_file_shows_every_key_of_the_table() {
        let sample =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/repute.toml"))
                .expect("examples/repute.toml");
        let mut section = "";
        let mut shown = BTreeSet::new();
        for line in sample.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = SECTIONS
                    .iter()
                    .find(|s| **s == name)
                    .copied()
                    .unwrap_or("?");
                continue;
            }
            let Some(text) = line.strip_prefix("# ") else {
                continue;
            };
            let assignment = text.rsplit_once("Example: ").map_or(text, |(_, a)| a);
            if let Some((key, _)) = assignment.split_once(" = ") {
                let key = key.trim();
                shown.insert(match section {
                    "" => key.to_string(),
                    s => format!("{s}.{key}"),
                });
            }
        }
        let missing: Vec<&str> = SETTINGS
            .iter()
            .filter_map(|s| s.file.first().copied())
            // Deliberately not shown: the key belongs in `api_key_file`, not in this file.
            .filter(|k| *k != "api_key" && !shown.contains(*k))
            .collect();
        assert!(missing.is_empty(), "examples/repute.toml lacks {missing:?}");
    }

    /// The README's reference between the markers is [`markdown`]'s text.
    #[test]
    fn the_readme_reference_is_generated_from_the_table() {
        let readme_path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(readme_path).expect("README.md");
        let (Some(start), Some(end)) = (readme.find(README_START), readme.find(README_END)) else {
            panic!("README.md lacks the markers {README_START} … {README_END}");
        };
        let body_start = start + README_START.len();
        let generated = format!("\n\n{}\n", markdown());
        let current = readme.get(body_start..end).unwrap_or_default();
        if current == generated {
            return;
        }
        if std::env::var_os("REPUTE_UPDATE_README").is_some() {
            let updated = format!("{}{generated}{}", &readme[..body_start], &readme[end..]);
            std::fs::write(readme_path, updated).expect("write README.md");
            return;
        }
        panic!(
            "README.md's settings reference differs from the settings table \
             (src/config/reference.rs); regenerate it with \
             `REPUTE_UPDATE_README=1 cargo test --lib config::reference` \
             (or paste `repute config reference` between the markers)"
        );
    }
}
