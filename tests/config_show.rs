//! `repute config show` and `repute config reference` end to end: the real binary, a settings
//! file, the environment and a Wazuh home, each setting said with the layer that set it, and
//! no secret shown.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

const KEY: &str =
    "showkey0000000000000000000000000000000000000000000000000000000000000000000000000";
const REDIS_PASSWORD: &str = "redisSecretPw42";

fn repute(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::cargo_bin("repute").expect("binary");
    for name in [
        "ABUSEIPDB_API_KEY",
        "ABUSEIPDB_API_KEY_FILE",
        "ABUSEIPDB_API_URL",
        "REPUTE_CACHE",
        "REPUTE_STORE",
        "REPUTE_STATE_DIR",
        "REPUTE_CONFIG",
        "WAZUH_HOME",
    ] {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied()).args(args);
    cmd.output().expect("run")
}

/// A Wazuh home with a repute store directory and an installed key file.
fn wazuh_home(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("ossec");
    std::fs::create_dir_all(home.join("var/repute")).expect("store dir");
    std::fs::create_dir_all(home.join("etc/repute")).expect("etc");
    std::fs::write(home.join("etc/repute/abuseipdb.key"), KEY).expect("key");
    home
}

fn by_setting(out: &Output) -> std::collections::HashMap<String, Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("one JSON object per line"))
        .map(|v| (v["setting"].as_str().expect("setting").to_string(), v))
        .collect()
}

#[test]
fn every_setting_with_its_value_and_the_layer_that_set_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = wazuh_home(dir.path());
    std::fs::write(dir.path().join("redis.pw"), REDIS_PASSWORD).expect("password");
    let toml = dir.path().join("repute.toml");
    std::fs::write(
        &toml,
        "max_age_days = 30\nstore = \"redis://repute@127.0.0.1:6379/2\"\n\
         store_password_file = \"redis.pw\"\n[block]\nmin_score = 40\n[watch]\nmax_retry = 3\n",
    )
    .expect("write");
    let out = repute(
        &["config", "show", "--format", "json"],
        &[
            ("WAZUH_HOME", home.to_str().expect("utf-8")),
            ("REPUTE_CONFIG", toml.to_str().expect("utf-8")),
            ("REPUTE_TIMEOUT", "3s"),
            ("REPUTE_STORE_PREFIX", "site-b:"),
            (
                "ABUSEIPDB_API_URL",
                "http://bob:urlSecret@127.0.0.1:9/api/v2",
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [KEY, REDIS_PASSWORD, "urlSecret"] {
        assert!(!all.contains(secret), "a secret shows: {all}");
    }
    let s = by_setting(&out);
    let check = |name: &str, value: &str, layer: &str, source: Option<&str>| {
        let v = s
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {all}"));
        assert_eq!(v["value"], value, "{name}: {v}");
        assert_eq!(v["layer"], layer, "{name}: {v}");
        if let Some(source) = source {
            assert_eq!(v["source"], source, "{name}: {v}");
        }
    };
    let home_text = home.to_str().expect("utf-8");
    let state = format!("{home_text}/var/repute");
    let key_file = format!("{home_text}/etc/repute/abuseipdb.key");
    let toml_text = toml.to_str().expect("utf-8");
    check("api_key", "set", "wazuh-home", Some(home_text));
    check("api_key_file", &key_file, "wazuh-home", Some(home_text));
    check("state_dir", &state, "wazuh-home", Some(home_text));
    check("max_age_days", "30", "file", Some(toml_text));
    check(
        "store",
        "redis://repute@127.0.0.1:6379/2",
        "file",
        Some(toml_text),
    );
    check("store_password_file", "set", "file", Some(toml_text));
    check(
        "store_prefix",
        "site-b:",
        "environment",
        Some("REPUTE_STORE_PREFIX"),
    );
    check("timeout", "3s", "environment", Some("REPUTE_TIMEOUT"));
    check(
        "api_url",
        "http://***@127.0.0.1:9/api/v2",
        "environment",
        Some("ABUSEIPDB_API_URL"),
    );
    check("block.min_score", "40", "file", Some(toml_text));
    check("watch.max_retry", "3", "file", Some(toml_text));
    check("retries", "1", "default", None);
    check("watch.find_time", "10m", "default", None);
    assert!(s.len() > 40, "one line per setting of the file: {all}");
    // The text form says the same, one line per setting.
    let out = repute(
        &["config", "show"],
        &[("REPUTE_CONFIG", toml.to_str().expect("utf-8"))],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("# settings file: {toml_text}\n")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("max_age_days ") && l.ends_with(&format!("[file {toml_text}]"))),
        "{text}"
    );
}

#[test]
fn settings_that_do_not_load_are_one_line_and_exit_2() {
    let out = repute(
        &["config", "show"],
        &[
            ("REPUTE_CONFIG", "/dev/null"),
            ("REPUTE_MAX_AGE_DAYS", "400"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("REPUTE_MAX_AGE_DAYS") && err.contains("400"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn the_reference_lists_every_variable() {
    let out = repute(&["config", "reference"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "REPUTE_STORE",
        "ABUSEIPDB_API_KEY_FILE",
        "`[watch]`",
        "`threshold`",
    ] {
        assert!(text.contains(name), "{name}: {text}");
    }
}

#[test]
fn with_the_integration_options_their_values_win_and_are_said_so() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = wazuh_home(dir.path());
    let toml = dir.path().join("repute.toml");
    std::fs::write(&toml, "allowlist = [\"192.0.2.0/24\"]\nmax_age_days = 30\n").expect("toml");
    let options = dir.path().join("custom-abuseipdb.options");
    std::fs::write(
        &options,
        r#"{"store":"none","ttl_seconds":60,"threshold":25,"allowlist":["198.51.100.7"]}"#,
    )
    .expect("options");
    let out = repute(
        &[
            "config",
            "show",
            "--format",
            "json",
            "--wazuh-options",
            options.to_str().expect("utf-8"),
            "--wazuh-dir",
            home.to_str().expect("utf-8"),
        ],
        &[("REPUTE_CONFIG", toml.to_str().expect("utf-8"))],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = by_setting(&out);
    let options_text = options.to_str().expect("utf-8");
    let row = |name: &str| s.get(name).unwrap_or_else(|| panic!("{name}")).clone();
    for (name, value) in [
        ("store", "none"),
        ("positive_ttl", "1m"),
        ("min_score", "25"),
        ("allowlist", "192.0.2.0/24, 198.51.100.7/32"),
    ] {
        let v = row(name);
        assert_eq!(v["value"], value, "{v}");
        assert_eq!(v["layer"], "options", "{v}");
        assert_eq!(v["source"], options_text, "{v}");
    }
    assert_eq!(row("max_age_days")["layer"], "file");
    assert_eq!(row("state_dir")["layer"], "wazuh-home");
    // A store the loader refuses is named as the integration would name it.
    std::fs::write(&options, r#"{"store":"memcached://u:hunter2@x"}"#).expect("options");
    let out = repute(
        &[
            "config",
            "show",
            "--wazuh-options",
            options_text,
            "--wazuh-dir",
            home.to_str().expect("utf-8"),
        ],
        &[("REPUTE_CONFIG", "/dev/null")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("memcached://***@x") && !err.contains("hunter2"),
        "{err}"
    );
}
