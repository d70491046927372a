//! Regression tests for what an adversarial run found (issue 10): a hostile rate-limit header,
//! errors a person could not act on, a FIFO or a huge file where an alert belongs, an active
//! response that execd never talks to. Each test fails without its fix. The key leaks are in
//! `tests/secrets.rs`, the proxy and CA bundle in `tests/proxy.rs`, the manual-block rule in
//! `tests/active_response.rs` and `src/block/blocker.rs`.

mod need;
mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use need::Need;
use repute::quota::QuotaStore;
use repute::store::SqliteStore;
use support::mock_abuseipdb::{Fault, MockAbuseIpdb};
use support::wazuh_tree::{WazuhTree, args_4_8, split_message};

const KEY: &str = "hardeningkey000000000000000000000000000000000000000000000000000000000000000000";
const NAME: &str = "custom-abuseipdb";
/// No run here takes long; this only turns a hang into a failure instead of a stuck suite.
const LIMIT: Duration = Duration::from_secs(40);

/// `repute ARGS…` against `mock`, its state in `dir`, with nothing from the test's own
/// environment.
fn repute(dir: &Path, mock: &MockAbuseIpdb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
    for var in [
        "ABUSEIPDB_API_KEY",
        "ABUSEIPDB_API_KEY_FILE",
        "REPUTE_CONFIG",
        "REPUTE_TIMEOUT",
        "RUST_LOG",
        "WAZUH_HOME",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("ABUSEIPDB_API_KEY", KEY)
        .env("ABUSEIPDB_API_URL", mock.base_url())
        .env("REPUTE_STATE_DIR", dir.join("state"))
        .env("REPUTE_CACHE", dir.join("state/cache.sqlite"))
        .env("REPUTE_CONNECT_TIMEOUT", "1s")
        .current_dir(dir);
    cmd
}

/// Waits for `child` at most [`LIMIT`], killing it (and failing) past that.
fn finish(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {LIMIT:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child.stdout.take().map(|mut s| s.read_to_end(&mut stdout));
    child.stderr.take().map(|mut s| s.read_to_end(&mut stderr));
    Output {
        status: child.wait().expect("status"),
        stdout,
        stderr,
    }
}

fn run(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    finish(child)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

// ---- item 8: a 429 (or a spent count) with a reset far in the future -------------------

#[test]
fn a_quota_block_from_absurd_headers_ends_within_a_day_and_is_logged() {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let body = r#"{"errors":[{"detail":"Daily rate limit of 1000 requests exceeded for this endpoint.","status":429}]}"#;
    mock.push_faults([Fault::Status {
        status: 429,
        body: body.into(),
        headers: vec![
            ("Retry-After".into(), "99999999999999".into()),
            ("X-RateLimit-Limit".into(), "1000".into()),
            ("X-RateLimit-Remaining".into(), "0".into()),
            ("X-RateLimit-Reset".into(), "99999999999999".into()),
        ],
    }]);
    let mut cmd = repute(dir.path(), &mock);
    cmd.args(["check", "--format", "json", "45.33.32.156"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("quota-exhausted"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("more than a day away"),
        "the clamp is logged: {}",
        stderr(&out)
    );
    let cache = SqliteStore::open(&dir.path().join("state/cache.sqlite")).expect("cache");
    let state = cache
        .quota("abuseipdb/check")
        .expect("read")
        .expect("a quota state was recorded");
    let until = state.blocked_until.expect("blocked");
    assert!(until <= now() + 86_400, "blocked until {until}");
    assert!(
        until > now() + 86_000,
        "still blocked for about a day: {until}"
    );
}

#[test]
fn a_spent_count_with_an_absurd_reset_ends_within_a_day() {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let body =
        r#"{"data":{"ipAddress":"45.33.32.157","abuseConfidenceScore":10,"totalReports":1}}"#;
    mock.push_faults([Fault::Status {
        status: 200,
        body: body.into(),
        headers: vec![
            ("X-RateLimit-Limit".into(), "1000".into()),
            ("X-RateLimit-Remaining".into(), "0".into()),
            ("X-RateLimit-Reset".into(), "99999999999999".into()),
        ],
    }]);
    let mut cmd = repute(dir.path(), &mock);
    cmd.args(["check", "--format", "json", "45.33.32.157"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let cache = SqliteStore::open(&dir.path().join("state/cache.sqlite")).expect("cache");
    let state = cache
        .quota("abuseipdb/check")
        .expect("read")
        .expect("state");
    let until = state.blocked_until.expect("blocked");
    assert!(until <= now() + 86_400, "blocked until {until}");
}

// ---- item 13: errors a person can act on ---------------------------------------------

#[test]
fn a_cache_path_under_missing_directories_is_named_not_created() {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let cache = dir.path().join("nonexistent/dir/x.sqlite");
    let mut cmd = repute(dir.path(), &mock);
    cmd.env("REPUTE_CACHE", &cache).args(["check", "9.9.9.9"]);
    let out = run(cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("nonexistent/dir does not exist"), "{err}");
    assert!(!dir.path().join("nonexistent").exists(), "no tree was made");
    assert_eq!(mock.requests().len(), 0);
}

#[test]
fn an_error_never_repeats_its_cause() {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    // A directory where the settings file should be: read_to_string says EISDIR.
    let mut cmd = repute(dir.path(), &mock);
    cmd.args(["check", "--config"])
        .arg(dir.path())
        .arg("9.9.9.9");
    let out = run(cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("os error 21").count(), 1, "{err}");
}

#[test]
fn key_files_that_are_not_keys_are_named_for_what_they_are() {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let dangling = dir.path().join("dangling.key");
    std::os::unix::fs::symlink(dir.path().join("gone/abuseipdb.key"), &dangling).expect("link");
    let huge = dir.path().join("huge.key");
    std::fs::write(&huge, "k".repeat(30 << 20)).expect("huge key file");
    let cases: [(&Path, &str); 3] = [
        (&dangling, "a symlink to"),
        (&huge, "longer than 4096 bytes"),
        (dir.path(), "a directory, not a key file"),
    ];
    for (path, expected) in cases {
        let mut cmd = repute(dir.path(), &mock);
        cmd.env_remove("ABUSEIPDB_API_KEY")
            .env("ABUSEIPDB_API_KEY_FILE", path)
            .args(["check", "9.9.9.9"]);
        let out = run(cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(expected) && err.contains("API key file"),
            "{err}"
        );
        if expected == "a symlink to" {
            assert!(
                err.contains("gone/abuseipdb.key"),
                "the target is named: {err}"
            );
        }
    }
    assert_eq!(mock.requests().len(), 0);
}

#[test]
fn an_api_url_in_capitals_is_accepted() {
    let mock = MockAbuseIpdb::start();
    let dir = tempfile::tempdir().expect("tmp");
    let upper = mock.base_url().replacen("http://", "HTTP://", 1);
    let mut cmd = repute(dir.path(), &mock);
    cmd.env("ABUSEIPDB_API_URL", &upper)
        .args(["check", "--format", "json", "118.25.6.39"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mock.count("check"), 1);
}

#[test]
fn gzip_with_trailing_zero_padding_is_read_as_gzip_t_accepts_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let line =
        "Mar  1 10:00:00 srv sshd[7]: Failed password for root from 45.33.32.200 port 4242 ssh2\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(line.as_bytes()).expect("gzip");
    let mut bytes = gz.finish().expect("gzip");
    bytes.extend([0u8; 512]);
    let path = dir.path().join("auth.log.1.gz");
    std::fs::write(&path, &bytes).expect("write");
    if let Some(gzip) = which("gzip") {
        let ok = Command::new(gzip)
            .arg("-t")
            .arg(&path)
            .status()
            .expect("gzip -t");
        assert!(ok.code() != Some(1), "gzip -t accepts the padded file");
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
    cmd.args(["scan", "--format", "jsonl"]).arg(&path);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("45.33.32.200"), "{}", stdout(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

// ---- the integration ---------------------------------------------------------------

fn alert(srcip: &str) -> String {
    format!(
        r#"{{"rule":{{"level":10,"id":"100001"}},"agent":{{"id":"000","name":"m"}},"id":"1.2","data":{{"srcip":"{srcip}"}},"location":"/var/log/auth.log"}}"#
    )
}

fn integration(tree: &WazuhTree, args: &[String]) -> Output {
    let mut cmd =
        tree.integratord_command(NAME, &args.iter().map(String::as_str).collect::<Vec<_>>());
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    run(cmd)
}

#[test]
fn a_file_or_directory_at_the_queue_socket_path_is_named_as_such() {
    for make in ["file", "dir"] {
        let tree = WazuhTree::without_socket();
        tree.install_binary(NAME);
        match make {
            "file" => std::fs::write(tree.socket_path(), "").expect("file"),
            _ => std::fs::create_dir(tree.socket_path()).expect("dir"),
        }
        let mock = MockAbuseIpdb::start();
        let alert_file = tree.write_alert("a.alert", &alert("45.33.32.40"));
        let args = args_4_8(alert_file.to_str().expect("utf8"), KEY, &mock.check_url());
        let out = integration(&tree, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(5), "{err}");
        let what = if make == "file" {
            "a regular file"
        } else {
            "a directory"
        };
        assert!(err.contains(&format!("is {what}, not a socket")), "{err}");
        assert!(!err.contains("not running"), "{err}");
        assert_eq!(
            mock.count("check"),
            0,
            "no lookup for an event that cannot go anywhere"
        );
    }
}

#[test]
fn a_dangling_or_huge_installed_key_file_is_named_by_the_integration() {
    for kind in ["dangling", "huge"] {
        let tree = WazuhTree::new();
        tree.install_binary(NAME);
        let mock = MockAbuseIpdb::start();
        let key_path = tree.path().join("etc/repute/abuseipdb.key");
        std::fs::create_dir_all(tree.path().join("etc/repute")).expect("dir");
        if kind == "dangling" {
            std::os::unix::fs::symlink("/nonexistent/abuseipdb.key", &key_path).expect("link");
        } else {
            std::fs::write(&key_path, "k".repeat(30 << 20)).expect("huge");
        }
        let alert_file = tree.write_alert("a.alert", &alert("45.33.32.41"));
        let args = args_4_8(alert_file.to_str().expect("utf8"), "", &mock.check_url());
        let out = integration(&tree, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{kind}: {err}");
        let expected = if kind == "dangling" {
            "a symlink to /nonexistent/abuseipdb.key, which does not exist"
        } else {
            "longer than 4096 bytes"
        };
        assert!(err.contains(expected), "{kind}: {err}");
        assert!(!err.contains("no API key"), "{kind}: {err}");
        let got = tree.wait_for(1, Duration::from_secs(5));
        assert_eq!(got.len(), 1, "an error event: {}", tree.log());
        assert!(got[0].contains(expected), "{}", got[0]);
    }
}

#[test]
fn a_failure_noted_for_one_hook_url_does_not_hold_another() {
    let tree = WazuhTree::new();
    tree.install_binary(NAME);
    let down = MockAbuseIpdb::start();
    down.always(Fault::server_error(503));
    let up = MockAbuseIpdb::start();
    let alert_file = tree.write_alert("a.alert", &alert("45.33.32.42"));
    let alert_file = alert_file.to_str().expect("utf8");
    let mut first = args_4_8(alert_file, KEY, &down.check_url());
    first[6] = "0".into(); // no retries: one failed call
    let out = integration(&tree, &first);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The administrator fixes the hook URL; the next alert for the same address, at once.
    let out = integration(&tree, &args_4_8(alert_file, KEY, &up.check_url()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        up.count("check"),
        1,
        "the new endpoint was asked: {}",
        tree.log()
    );
    let got = tree.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2, "{}", tree.log());
    let (_, event) = split_message(&got[1]);
    assert!(
        event["abuseipdb"]["abuse_confidence_score"].is_number(),
        "an answer, not the old failure: {event}"
    );
}

#[test]
fn a_hook_url_in_capitals_is_accepted() {
    let tree = WazuhTree::new();
    tree.install_binary(NAME);
    let mock = MockAbuseIpdb::start();
    let alert_file = tree.write_alert("a.alert", &alert("45.33.32.43"));
    let hook = mock.check_url().replacen("http://", "HTTP://", 1);
    let out = integration(
        &tree,
        &args_4_8(alert_file.to_str().expect("utf8"), KEY, &hook),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mock.count("check"), 1, "{}", tree.log());
}

// ---- item 11: the alert file --------------------------------------------------------

#[test]
fn a_fifo_as_the_alert_file_is_refused_without_hanging() {
    let tree = WazuhTree::new();
    tree.install_binary(NAME);
    let mock = MockAbuseIpdb::start();
    let fifo = tree.path().join("tmp/fifo.alert");
    let c_path = std::ffi::CString::new(fifo.to_str().expect("utf8")).expect("path");
    // SAFETY: mkfifo(3) on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let args = args_4_8(fifo.to_str().expect("utf8"), KEY, &mock.check_url());
    let out = integration(&tree, &args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("is a FIFO"), "{err}");
}

#[test]
fn an_alert_file_over_the_cap_is_refused_without_reading_it_all() {
    let tree = WazuhTree::new();
    tree.install_binary(NAME);
    let mock = MockAbuseIpdb::start();
    let big = tree.path().join("tmp/big.alert");
    // Sparse, 2 MiB: over the cap, and small enough that a build without the cap only
    // fails to parse it instead of taking the machine's memory.
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(2 << 20).expect("sparse");
    let args = args_4_8(big.to_str().expect("utf8"), KEY, &mock.check_url());
    let out = integration(&tree, &args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("larger than 1048576 bytes"), "{err}");
    // A device is no alert file either.
    let args = args_4_8("/dev/zero", KEY, &mock.check_url());
    let out = integration(&tree, &args);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a device"), "{}", stderr(&out));
}

// ---- item 10: an active response nobody talks to -----------------------------------

fn active_response(dir: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
    for var in [
        "WAZUH_HOME",
        "REPUTE_CONFIG",
        "ABUSEIPDB_API_KEY",
        "SSH_CLIENT",
        "SSH_CONNECTION",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["wazuh", "active-response"])
        .env("REPUTE_STATE_DIR", dir.join("state"))
        .env("REPUTE_CACHE", dir.join("state/store.sqlite"))
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the active response")
}

#[test]
fn a_silent_stdin_ends_the_active_response() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = active_response(dir.path());
    // The pipe stays open and silent: execd gone quiet.
    let stdin = child.stdin.take();
    let out = finish(child);
    drop(stdin);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no complete line on stdin within 5s"), "{err}");
}

#[test]
fn no_reply_to_check_keys_ends_the_active_response_and_blocks_nothing() {
    // A firewall backend must exist to get as far as the handshake (nothing is blocked).
    if !need::all(&[Need::Tool("nft")]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = active_response(dir.path());
    let mut stdin = child.stdin.take().expect("stdin");
    let message = r#"{"version":1,"origin":{"name":"node01","module":"wazuh-execd"},"command":"add","parameters":{"extra_args":[],"alert":{"rule":{"id":"5763","description":"sshd brute force"},"data":{"srcip":"45.155.205.233"}},"program":"active-response/bin/repute-block"}}"#;
    writeln!(stdin, "{message}").expect("write the message");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).expect("check_keys");
    assert!(line.contains("check_keys"), "{line}");
    // No reply, stdin left open.
    let out = finish(child);
    drop(stdin);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no reply to check_keys within 5s"), "{err}");
    assert!(!err.contains("Blocked"), "{err}");
}
