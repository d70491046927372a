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
        // A fragment too: a hex dump of the request (ureq's trace log) cuts the key into
        // 16-byte rows.
        if contains(&r.output, KEY) || contains(&r.output, MARKER) || contains(&r.output, &KEY[..6])
        {
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

/// A key that is not shaped like an AbuseIPDB key (a dash, shorter than 64): only replacing
/// the key itself can take it out of echoed text, not the "long alphanumeric run" guard.
const ODD_KEY: &str = "kx9leakcanary-odd-shaped-key-0042";

/// Everything a run left where a person or another program could read it.
fn leaks_in(name: &str, haystack: &[u8], needles: &[&str], leaks: &mut Vec<String>) {
    for needle in needles {
        if contains(haystack, needle) {
            leaks.push(format!(
                "{name} contains {needle:?}: {}",
                String::from_utf8_lossy(haystack)
            ));
        }
    }
}

fn state_files_leaks(dir: &Path, needles: &[&str], leaks: &mut Vec<String>) {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    for f in files {
        let bytes = std::fs::read(&f).expect("read");
        leaks_in(&format!("file {}", f.display()), &bytes, needles, leaks);
    }
}

#[test]
fn a_server_that_echoes_the_key_gets_it_into_no_output_cache_or_event() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let mock = MockAbuseIpdb::start();
    let mut leaks = Vec::new();
    for (i, key) in [KEY, ODD_KEY].into_iter().enumerate() {
        let key_file = d.join(format!("key-{i}"));
        std::fs::write(&key_file, format!("{key}\n")).expect("key file");
        let state = d.join(format!("state-{i}"));
        for (fault, ip) in [
            (Fault::EchoKeyInAnswer, "45.33.32.20"),
            (Fault::EchoKeyIn422, "45.33.32.21"),
        ] {
            mock.always(fault.clone());
            let mut cmd = base(d, &mock);
            cmd.env("ABUSEIPDB_API_KEY_FILE", &key_file)
                .env("REPUTE_STATE_DIR", &state)
                .env("REPUTE_CACHE", state.join("cache.sqlite"));
            let out = cmd
                .args(["check", "--format", "json", ip])
                .timeout(std::time::Duration::from_secs(30))
                .output()
                .expect("run repute");
            let mut all = out.stdout.clone();
            all.extend_from_slice(&out.stderr);
            leaks_in(
                &format!("check {fault:?} key {i}"),
                &all,
                &[key, MARKER],
                &mut leaks,
            );
            if matches!(fault, Fault::EchoKeyInAnswer) {
                // The answer was taken (score and all), only the echoed text was scrubbed.
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("\"abuse_confidence_score\":100"), "{text}");
                assert!(text.contains("[redacted]"), "{text}");
            }
        }
        // The cached answer, read back without the network.
        mock.clear_faults();
        let mut cmd = base(d, &mock);
        cmd.env("ABUSEIPDB_API_KEY_FILE", &key_file)
            .env("REPUTE_STATE_DIR", &state)
            .env("REPUTE_CACHE", state.join("cache.sqlite"));
        let out = cmd
            .args(["check", "--format", "json", "45.33.32.20"])
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .expect("run repute");
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"source\":\"cache\""));
        leaks_in("cache hit", &out.stdout, &[key, MARKER], &mut leaks);
        state_files_leaks(&state, &[key, MARKER], &mut leaks);
    }
    assert!(leaks.is_empty(), "the key leaked:\n{}", leaks.join("\n"));
}

mod integration {
    //! The same leaks through the Wazuh integration: the event sent to analysisd, the
    //! integration's log, and the last line integratord copies into ossec.log.

    use super::*;
    use support::wazuh_tree::{WazuhTree, split_message};

    const NAME: &str = "custom-abuseipdb";

    fn alert(srcip: &str) -> String {
        format!(
            r#"{{"rule":{{"level":10,"id":"100001"}},"agent":{{"id":"000","name":"m"}},"id":"1.2","data":{{"srcip":"{srcip}"}},"location":"/var/log/auth.log"}}"#
        )
    }

    /// Runs the integration as integratord does, returning stdout+stderr.
    fn run(tree: &WazuhTree, args: &[&str]) -> Vec<u8> {
        let out = tree
            .integratord_command(NAME, args)
            .env("RUST_LOG", "trace")
            .output()
            .expect("run the integration");
        let mut all = out.stdout;
        all.extend_from_slice(&out.stderr);
        all
    }

    fn everything(tree: &WazuhTree, output: &[u8]) -> Vec<u8> {
        let mut all = output.to_vec();
        all.extend_from_slice(tree.log().as_bytes());
        for message in tree.received() {
            all.extend_from_slice(message.as_bytes());
        }
        all
    }

    #[test]
    fn an_echoing_server_gets_the_key_into_no_event_or_log() {
        for fault in [Fault::EchoKeyInAnswer, Fault::EchoKeyIn422] {
            let tree = WazuhTree::new();
            tree.install_binary(NAME);
            let mock = MockAbuseIpdb::start();
            mock.always(fault.clone());
            let alert_file = tree.write_alert("a.alert", &alert("45.33.32.30"));
            let alert_file = alert_file.to_str().expect("utf8");
            let hook = mock.check_url();
            let output = run(&tree, &[alert_file, ODD_KEY, &hook, "debug", "", "5", "0"]);
            let got = tree.wait_for(1, std::time::Duration::from_secs(5));
            assert_eq!(got.len(), 1, "one event: {}", tree.log());
            let (_, event) = split_message(&got[0]);
            if matches!(fault, Fault::EchoKeyInAnswer) {
                assert_eq!(event["abuseipdb"]["abuse_confidence_score"], 100, "{event}");
            }
            let mut leaks = Vec::new();
            leaks_in(
                &format!("{fault:?}"),
                &everything(&tree, &output),
                &[ODD_KEY, MARKER],
                &mut leaks,
            );
            state_files_leaks(&tree.path().join("var"), &[ODD_KEY, MARKER], &mut leaks);
            assert!(leaks.is_empty(), "the key leaked:\n{}", leaks.join("\n"));
        }
    }

    /// integratord splits `<api_key>` on spaces: with a key that holds one and no hook URL,
    /// the second half lands in the hook slot. It must not be echoed as "not a URL".
    #[test]
    fn a_key_split_by_integratord_is_not_echoed_from_the_hook_slot() {
        let tree = WazuhTree::new();
        tree.install_binary(NAME);
        let alert_file = tree.write_alert("a.alert", &alert("45.33.32.31"));
        let alert_file = alert_file.to_str().expect("utf8");
        let (first, second) = ("kx9leakcanaryFIRSTHALF", "kx9leakcanarySECONDHALF");
        // 4.7 layout: alert, key (two slots now), hook (empty), debug, options, redirect.
        let output = run(
            &tree,
            &[alert_file, first, second, "", "", "", "> /dev/null 2>&1"],
        );
        let got = tree.wait_for(1, std::time::Duration::from_secs(5));
        assert_eq!(got.len(), 1, "the error event: {}", tree.log());
        let (_, event) = split_message(&got[0]);
        let text = event.to_string();
        assert!(text.contains("hook_url"), "the slot is named: {text}");
        let mut leaks = Vec::new();
        leaks_in(
            "split key",
            &everything(&tree, &output),
            &[first, second, MARKER],
            &mut leaks,
        );
        assert!(leaks.is_empty(), "the key leaked:\n{}", leaks.join("\n"));
    }

    /// `user:pass@` in the hook URL is a credential: not in the debug log, nor anywhere else.
    #[test]
    fn userinfo_in_the_hook_url_is_never_logged() {
        let tree = WazuhTree::new();
        tree.install_binary(NAME);
        let mock = MockAbuseIpdb::start();
        let alert_file = tree.write_alert("a.alert", &alert("45.33.32.32"));
        let alert_file = alert_file.to_str().expect("utf8");
        let password = "hookPassw0rdCanary";
        let hook = format!("http://proxyuser:{password}@{}/api/v2/check", mock.addr());
        let output = run(&tree, &[alert_file, KEY, &hook, "debug", "", "5", "0"]);
        let got = tree.wait_for(1, std::time::Duration::from_secs(5));
        assert_eq!(got.len(), 1, "{}", tree.log());
        assert!(tree.log().contains("***@127.0.0.1"), "{}", tree.log());
        let mut leaks = Vec::new();
        leaks_in(
            "hook userinfo",
            &everything(&tree, &output),
            &[password],
            &mut leaks,
        );
        // And through `repute check` with trace logging and a bad URL of the same kind.
        let dir = tempfile::tempdir().expect("tmp");
        for url in [
            format!("http://proxyuser:{password}@{}/api/v2", mock.addr()),
            format!("http://proxyuser:{password}@api.example/api/v2"),
        ] {
            let mut cmd = base(dir.path(), &mock);
            cmd.env("ABUSEIPDB_API_KEY", KEY)
                .env("ABUSEIPDB_API_URL", &url);
            let out = cmd
                .args(["check", "45.33.32.33"])
                .timeout(std::time::Duration::from_secs(30))
                .output()
                .expect("run repute");
            let mut all = out.stdout;
            all.extend_from_slice(&out.stderr);
            leaks_in(&format!("check with {url}"), &all, &[password], &mut leaks);
        }
        assert!(
            leaks.is_empty(),
            "the password leaked:\n{}",
            leaks.join("\n")
        );
    }
}

/// A key with two spaces in a row puts a piece of it in the options-file slot: a file that
/// does not exist, which must be named by position only.
#[test]
fn a_key_piece_in_the_options_slot_is_not_echoed() {
    use support::wazuh_tree::WazuhTree;
    let tree = WazuhTree::new();
    tree.install_binary("custom-abuseipdb");
    let alert_file = tree.write_alert(
        "a.alert",
        r#"{"rule":{"level":10,"id":"100001"},"agent":{"id":"000","name":"m"},"id":"1.2","data":{"srcip":"45.33.32.34"}}"#,
    );
    let piece = "kx9leakcanaryTHIRDPIECE";
    let out = tree
        .integratord_command(
            "custom-abuseipdb",
            &[
                alert_file.to_str().expect("utf8"),
                "kx9leakcanaryFIRST",
                "kx9leakcanarySECOND",
                "",
                piece,
                "> /dev/null 2>&1",
            ],
        )
        .output()
        .expect("run the integration");
    let mut all = out.stdout;
    all.extend_from_slice(&out.stderr);
    all.extend_from_slice(tree.log().as_bytes());
    for m in tree.wait_for(1, std::time::Duration::from_secs(5)) {
        all.extend_from_slice(m.as_bytes());
    }
    assert!(
        contains(&all, "argument 5 (options file)"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    assert!(
        !contains(&all, "THIRDPIECE"),
        "{}",
        String::from_utf8_lossy(&all)
    );
}
