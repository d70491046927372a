//! The API key never appears in any output, log or file: `repute check` and `repute scan
//! --enrich` run with a distinctive key through success and every error path, with
//! `RUST_LOG=trace`, and everything they printed or wrote is searched for the key (and for a
//! fragment of it).

mod support;

use std::path::Path;

use assert_cmd::Command;
use support::mock_abuseipdb::{Fault, MockAbuseIpdb};

/// 80 lowercase letters and digits, like a real key, with a marker to search for.
const KEY: &str = "kx9leakcanary7q0000000000000000000000000000000000000000000000000000000000000042";
const MARKER: &str = "kx9leakcanary";

struct Run {
    name: String,
    output: Vec<u8>,
}

fn base(dir: &Path, mock: &MockAbuseIpdb) -> Command {
    let mut cmd = Command::cargo_bin("repute").expect("binary");
    cmd.env_remove("ABUSEIPDB_API_KEY")
        .env_remove("ABUSEIPDB_API_KEY_FILE")
        .env_remove("REPUTE_CONFIG")
        .env("RUST_LOG", "trace")
        .env("ABUSEIPDB_API_URL", mock.base_url())
        .env("REPUTE_STATE_DIR", dir.join("state"))
        .env("REPUTE_CACHE", dir.join("state/cache.sqlite"))
        .env("REPUTE_TIMEOUT", "700ms")
        .env("REPUTE_CONNECT_TIMEOUT", "300ms")
        .env("REPUTE_RETRIES", "1");
    cmd
}

fn run(name: &str, mut cmd: Command, args: &[&str], runs: &mut Vec<Run>) {
    let out = cmd
        .args(args)
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("run repute");
    let mut output = out.stdout;
    output.extend_from_slice(&out.stderr);
    runs.push(Run {
        name: name.to_string(),
        output,
    });
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn files_under(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[test]
fn the_key_never_appears_in_output_logs_or_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let key_file = d.join("secrets/key");
    std::fs::create_dir_all(d.join("secrets")).expect("dir");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("key file");
    let mock = MockAbuseIpdb::start();
    let mut runs = Vec::new();
    let json = ["check", "--format", "json"];
    let with_file = || {
        let mut c = base(d, &mock);
        c.env("ABUSEIPDB_API_KEY_FILE", &key_file);
        c
    };

    run(
        "success, key file",
        with_file(),
        &[&json[..], &["118.25.6.39", "10.0.0.1"]].concat(),
        &mut runs,
    );
    run(
        "success, cache hit, table",
        with_file(),
        &["check", "118.25.6.39"],
        &mut runs,
    );
    let mut env_key = base(d, &mock);
    env_key.env("ABUSEIPDB_API_KEY", KEY);
    run(
        "success, key in environment",
        env_key,
        &[&json[..], &["9.9.9.9"]].concat(),
        &mut runs,
    );
    let flag = key_file.to_str().expect("utf8");
    run(
        "success, --api-key-file",
        base(d, &mock),
        &[&json[..], &["--api-key-file", flag, "9.9.9.10"]].concat(),
        &mut runs,
    );

    // `repute scan --enrich` looks the log's attackers up through the same engine.
    let log = d.join("auth.log");
    std::fs::write(
        &log,
        "Mar  1 10:00:00 srv sshd[7]: Failed password for root from 118.25.6.39 port 4242 ssh2\n\
         Mar  1 10:00:01 srv sshd[8]: Invalid user admin from 45.33.32.200 port 4243\n",
    )
    .expect("log");
    let log = log.to_str().expect("utf8");
    run(
        "scan --enrich, table",
        with_file(),
        &["scan", "--enrich", log],
        &mut runs,
    );
    run(
        "scan --enrich, JSON lines",
        with_file(),
        &["scan", "--enrich", "--format", "jsonl", log],
        &mut runs,
    );
    let enriched = String::from_utf8_lossy(&runs[runs.len() - 1].output).into_owned();
    assert!(
        enriched.contains("\"abuse_confidence_score\""),
        "scan --enrich got no answer: {enriched}"
    );

    let echo = format!(r#"{{"errors":[{{"detail":"The key {KEY} is revoked","status":401}}]}}"#);
    let faults: Vec<(&str, Fault)> = vec![
        ("401 echoing the key", Fault::status(401, &echo)),
        ("403", Fault::status(403, &echo)),
        ("402", Fault::payment_required()),
        (
            "422 echoing the key",
            Fault::status(422, &echo.replace("401", "422")),
        ),
        ("429 quota", Fault::quota(1)),
        (
            "500 JSON echoing the key",
            Fault::status(500, &echo.replace("401", "500")),
        ),
        (
            "502 HTML echoing the key",
            Fault::status(502, &format!("<html><body>{KEY}</body></html>")),
        ),
        (
            "200 HTML echoing the key",
            Fault::status(200, &format!("<html>key={KEY}</html>")),
        ),
        ("hang", Fault::Hang),
        ("reset", Fault::Reset),
        ("close", Fault::Close),
    ];
    for (i, (name, fault)) in faults.into_iter().enumerate() {
        mock.always(fault);
        let ip = format!("45.33.32.{}", 10 + i);
        // The quota fault blocks later calls through the shared state: a fresh cache each time.
        let mut cmd = with_file();
        cmd.env("REPUTE_CACHE", d.join(format!("state/cache-{i}.sqlite")));
        run(name, cmd, &[&json[..], &[ip.as_str()]].concat(), &mut runs);
    }
    mock.clear_faults();
    mock.expect_key("somebody-elses-key");
    run(
        "401 from the mock's own key check",
        with_file(),
        &[&json[..], &["45.33.32.99"]].concat(),
        &mut runs,
    );

    // Configuration errors while a key is loaded.
    let bad_config = d.join("bad.toml");
    std::fs::write(
        &bad_config,
        format!("api_key = \"{KEY}\"\nmax_age_days = 999\n"),
    )
    .expect("config");
    let cfg = bad_config.to_str().expect("utf8");
    run(
        "bad config value with key in file",
        base(d, &mock),
        &["check", "--config", cfg, "9.9.9.9"],
        &mut runs,
    );
    std::fs::write(&bad_config, format!("api_key = \"{KEY}\"\nkey_typo = 1\n")).expect("config");
    run(
        "unknown config key with key in file",
        base(d, &mock),
        &["check", "--config", cfg, "9.9.9.9"],
        &mut runs,
    );
    std::fs::write(&bad_config, format!("api_key = {KEY}\n")).expect("config");
    run(
        "TOML syntax error on the key line",
        base(d, &mock),
        &["check", "--config", cfg, "9.9.9.9"],
        &mut runs,
    );
    let mut bad_url = with_file();
    bad_url.env("ABUSEIPDB_API_URL", "ftp://example.invalid");
    run("bad URL", bad_url, &["check", "9.9.9.9"], &mut runs);
    run(
        "invalid address",
        with_file(),
        &["check", "not-an-ip"],
        &mut runs,
    );

    // The key really was sent, so the success runs are meaningful.
    assert!(
        mock.requests()
            .iter()
            .any(|r| r.headers.get("key").map(String::as_str) == Some(KEY)),
        "the mock never saw the key"
    );
    assert!(runs.len() >= 20);
    let mut leaks = Vec::new();
    for r in &runs {
        if contains(&r.output, KEY) || contains(&r.output, MARKER) {
            leaks.push(format!(
                "{}: {}",
                r.name,
                String::from_utf8_lossy(&r.output)
            ));
        }
    }
    // Trace logging really was on (so logs were searched, not just silence).
    assert!(
        runs.iter()
            .any(|r| contains(&r.output, "TRACE") || contains(&r.output, "DEBUG"))
    );

    let mut files = Vec::new();
    files_under(&d.join("state"), &mut files);
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).expect("read");
        if contains(&bytes, KEY) || contains(&bytes, MARKER) {
            leaks.push(format!("file {}", f.display()));
        }
    }
    assert!(leaks.is_empty(), "the key leaked:\n{}", leaks.join("\n"));
}
