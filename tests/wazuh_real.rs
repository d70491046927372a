//! What `repute wazuh install` leaves in a Wazuh home, run by the REAL engine: the
//! `wazuh-analysisd`, `wazuh-integratord`, `wazuh-execd` and logtest of every Wazuh version in
//! `../shared/wazuh` (4.7.5, 4.9.2 and 4.14.7), through its `wazuh-sandbox` script.
//!
//! For each version: a fresh home (the stock `local_rules.xml`, and one holding the blog's
//! rules and `<integration>`), `install`, `check --strict` (analysisd loads it without a
//! warning), then one logtest session per home with a table of addresses of every class
//! (the public ones, and only those, end on the trigger 110100), the other sshd failure
//! shapes, the enrichment events of every score band and error kind, and the brute-force
//! count. Then, with `start`/`send`/`alerts`: integratord runs the installed program
//! against the mock API and the enrichment alert lands in `alerts.json`; and, inside a
//! network namespace made for the test, an attack travels trigger → integration →
//! enrichment rule → execd → `repute-block` → the nft set, and leaves it after the timeout.
//! Last, `uninstall` gives back a byte-order-marked, symlinked `ossec.conf` that every version
//! loads.

mod block_support;
mod need;
mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use need::Need;
use serde_json::{Value, json};
use support::mock_abuseipdb::{MockAbuseIpdb, MockInNetns, derived_score};

const KEY: &str = "real0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The blog's setup, as its readers have it (the rules after the stock example).
const BLOG_RULES: &str = include_str!("support/blog_local_rules.xml");
const BLOG_INTEGRATION: &str = "  <integration>\n    <name>custom-abuseipdb.py</name>\n    <hook_url>https://api.abuseipdb.com/api/v2/check</hook_url>\n    <api_key>oldkey</api_key>\n    <level>10</level>\n    <rule_id>100001</rule_id>\n    <alert_format>json</alert_format>\n  </integration>\n</ossec_config>";

/// Every address class of the IANA registries: (address, public?).
const ADDRESSES: &[(&str, bool)] = &[
    ("45.142.120.9", true),
    ("8.8.8.8", true),
    ("1.1.1.1", true), // also the stock example rule's address
    ("172.32.0.1", true),
    ("100.128.0.1", true),
    ("223.255.255.254", true),
    ("2606:4700::1111", true),
    ("2a01:4f8::1", true),
    ("2001:4860:4860::8888", true),
    ("::ffff:8.8.8.8", true),
    ("0.0.0.0", false),
    ("0.1.2.3", false),
    ("10.1.2.3", false),
    ("100.64.0.1", false),
    ("100.127.255.254", false),
    ("127.0.0.1", false),
    ("169.254.1.1", false),
    ("172.16.0.1", false),
    ("172.31.255.254", false),
    ("192.0.0.8", false),
    ("192.0.2.1", false),
    ("192.88.99.1", false),
    ("192.168.1.1", false),
    ("198.18.0.1", false),
    ("198.19.255.254", false),
    ("198.51.100.7", false),
    ("203.0.113.7", false),
    ("224.0.0.1", false),
    ("239.255.255.250", false),
    ("240.0.0.1", false),
    ("255.255.255.255", false),
    ("::", false),
    ("::1", false),
    ("::ffff:10.0.0.1", false),
    ("::ffff:127.0.0.1", false),
    ("::ffff:192.168.1.1", false),
    ("::ffff:100.64.0.1", false),
    ("::10.0.0.1", false),
    ("64:ff9b::a00:1", false),
    ("64:ff9b:1::1", false),
    ("100::1", false),
    ("2001::1", false),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
    ("2001:2::1", false),
    ("2001:db8::1", false),
    ("2002:c0a8:101::1", false),
    ("3fff::1", false),
    ("5f00::1", false),
    ("fc00::1", false),
    ("fd12:3456::1", false),
    ("fe80::1", false),
    ("fec0::1", false),
    ("ff02::1", false),
    ("4000::1", false),
];

/// An address in 4.14.7's `malicious-ioc/malicious-ip` list (99904 there, 5760 elsewhere).
const IOC_LISTED: &str = "196.251.85.62";

fn sandbox() -> PathBuf {
    need::sandbox().expect("checked by need::all")
}

/// The versions the sandbox has, oldest first.
fn versions() -> Vec<String> {
    let out = Command::new(sandbox())
        .arg("versions")
        .output()
        .expect("wazuh-sandbox versions");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn failed_password(ip: &str, second: u32) -> String {
    format!(
        "Nov 28 10:00:{:02} web-01 sshd[1234]: Failed password for root from {ip} port 53422 ssh2",
        second % 60
    )
}

/// A sandbox home of one version, stopped and removed at the end.
struct Home {
    _dir: tempfile::TempDir,
    path: PathBuf,
    version: String,
    /// Runs the sandbox's commands inside this namespace (`nsenter --net=`), when set.
    netns: Option<PathBuf>,
}

impl Home {
    fn new(version: &str) -> Home {
        Home::new_in(version, None)
    }

    fn new_in(version: &str, netns: Option<PathBuf>) -> Home {
        let dir = tempfile::Builder::new()
            .prefix("repute-wazuh-")
            .tempdir()
            .expect("temp dir");
        // integratord runs the integration as user wazuh, which must reach the home.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("home");
        let home = Home {
            _dir: dir,
            path,
            version: version.to_string(),
            netns,
        };
        let out = home.sandbox(&["new", "--version", version], &[]);
        assert!(out.status.success(), "new: {}", text(&out));
        home
    }

    /// `wazuh-sandbox <command> [--version X] HOME <rest>`.
    fn sandbox(&self, before_home: &[&str], after_home: &[&str]) -> Output {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new(need::which("nsenter").expect("nsenter"));
                c.arg(format!("--net={}", ns.display()))
                    .arg("--")
                    .arg(sandbox());
                c
            }
            None => Command::new(sandbox()),
        };
        cmd.args(before_home)
            .arg(&self.path)
            .args(after_home)
            .stdin(Stdio::null());
        cmd.output().expect("run wazuh-sandbox")
    }

    fn install(&self, extra: &[&str]) -> Output {
        let key = self.path.join("tmp/install.key");
        std::fs::write(&key, format!("{KEY}\n")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_repute"))
            .args(["wazuh", "install", "--wazuh-dir"])
            .arg(&self.path)
            .arg("--api-key-file")
            .arg(&key)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run install")
    }

    fn check_strict(&self) {
        let out = self.sandbox(&["check"], &["--strict"]);
        assert!(
            out.status.success(),
            "{}: analysisd -t: {}",
            self.version,
            text(&out)
        );
    }

    /// One logtest session over all `lines`: one answer per line.
    fn logtest(&self, lines: &[String]) -> Vec<Value> {
        let mut child = Command::new(sandbox())
            .arg("logtest")
            .arg(&self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("logtest");
        let mut stdin = child.stdin.take().unwrap();
        let input = lines.join("\n") + "\n";
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().expect("logtest output");
        writer.join().unwrap().unwrap();
        assert!(out.status.success(), "logtest: {}", text(&out));
        let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(answers.len(), lines.len());
        answers
    }

    fn conf(&self) -> String {
        std::fs::read_to_string(self.path.join("etc/ossec.conf")).unwrap()
    }

    fn set_conf(&self, text: &str) {
        std::fs::write(self.path.join("etc/ossec.conf"), text).unwrap();
    }

    /// Points the installed `<integration>` at the mock API.
    fn use_mock(&self, check_url: &str) {
        let conf = self.conf().replace(
            "<hook_url>https://api.abuseipdb.com/api/v2/check</hook_url>",
            &format!("<hook_url>{check_url}</hook_url>"),
        );
        assert!(conf.contains(check_url));
        self.set_conf(&conf);
    }

    fn start(&self) {
        let out = self.sandbox(&["start"], &[]);
        assert!(
            out.status.success(),
            "{}: start: {}",
            self.version,
            text(&out)
        );
    }

    fn send(&self, line: &str) {
        let out = self.sandbox(&["send"], &["/var/log/auth.log", line]);
        assert!(out.status.success(), "send: {}", text(&out));
    }

    /// The alerts of these rules, waiting (bounded) for at least `count`.
    fn alerts(&self, rules: &str, count: usize, wait_secs: u32) -> Vec<Value> {
        let out = self.sandbox(
            &["alerts"],
            &[
                "--rule",
                rules,
                "--wait",
                &wait_secs.to_string(),
                "--count",
                &count.to_string(),
            ],
        );
        assert!(
            out.status.success(),
            "{}: no {count} alert(s) of rule {rules} in {wait_secs}s\nalerts.json:\n{}\nintegrations.log:\n{}\nossec.log:\n{}",
            self.version,
            self.read("logs/alerts/alerts.json"),
            self.read("logs/integrations.log"),
            self.read("logs/ossec.log"),
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("an alert"))
            .collect()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path.join(rel)).unwrap_or_default()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = self.sandbox(&["stop"], &[]);
    }
}

/// The stock home and the blog's home of one version, installed.
fn installed_homes(version: &str) -> [Home; 2] {
    let stock = Home::new(version);
    let out = stock.install(&[]);
    assert!(out.status.success(), "{version}: {}", text(&out));
    assert!(
        text(&out).contains("the stock example rule 100001 is left as it is"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("blog"), "{}", text(&out));

    let blog = Home::new(version);
    let local = blog.path.join("etc/rules/local_rules.xml");
    let stock_rules = std::fs::read_to_string(&local).unwrap();
    std::fs::write(&local, format!("{stock_rules}\n{BLOG_RULES}")).unwrap();
    blog.set_conf(&blog.conf().replacen("</ossec_config>", BLOG_INTEGRATION, 1));
    let out = blog.install(&[]);
    let said = text(&out);
    assert!(out.status.success(), "{version}: {said}");
    assert!(
        said.contains("etc/rules/local_rules.xml: removed the blog's rules 100001 and 100002"),
        "{said}"
    );
    assert!(said.contains("it now runs on 110100"), "{said}");
    let conf = blog.conf();
    assert!(conf.contains("<rule_id>110100</rule_id>") && !conf.contains("100001"));
    [stock, blog]
}

/// An enrichment event as the integration sends it, for logtest.
fn enrichment(body: Value) -> String {
    json!({ "abuseipdb": body, "integration": "custom-abuseipdb", "srcip": "45.142.120.9" })
        .to_string()
}

fn found(score: u8) -> String {
    enrichment(json!({
        "found": u8::from(score > 0),
        "source": { "alert_id": "1.2", "rule": "110100", "srcip": "45.142.120.9",
                    "description": "sshd: Authentication failed from a public IP address 45.142.120.9." },
        "abuse_confidence_score": score, "country_code": "NL", "usage_type": "Data Center",
        "isp": "Example", "domain": "example.net", "total_reports": u64::from(score) * 3,
        "last_reported_at": null, "num_distinct_users": 2, "is_tor": false,
        "is_whitelisted": false, "answer_source": "api"
    }))
}

fn error(code: Value) -> String {
    enrichment(json!({
        "error": code, "description": "the lookup failed",
        "source": { "alert_id": "1.2", "rule": "110100", "srcip": "45.142.120.9" }
    }))
}

/// What a logtest line is about, and whether the rule it ended on is right.
type Expectation = (String, Box<dyn Fn(&str) -> bool>);

/// The whole table, on every version, in both homes: one logtest session per home.
#[test]
fn installed_rules_load_and_sort_addresses_scores_and_errors_on_every_version() {
    if !need::all(&[Need::WazuhSandbox]) {
        return;
    }
    for (ip, public) in ADDRESSES {
        let class = repute::addr::classify(ip.parse().unwrap());
        assert_eq!(class.is_public(), *public, "{ip} is {class} in addr.rs");
    }
    let mut lines: Vec<String> = Vec::new();
    let mut expected: Vec<Expectation> = Vec::new();
    let mut expect = |line: String, what: String, ok: Box<dyn Fn(&str) -> bool>| {
        lines.push(line);
        expected.push((what, ok));
    };
    for (n, (ip, public)) in ADDRESSES.iter().enumerate() {
        let what = format!("{ip} ({})", if *public { "public" } else { "special" });
        let ok: Box<dyn Fn(&str) -> bool> = if *public {
            Box::new(|r| r == "110100")
        } else {
            Box::new(|r| r != "110100" && r != "110102")
        };
        expect(failed_password(ip, n as u32), what, ok);
    }
    for (ip, public) in [
        ("45.142.120.11", true),
        ("192.168.7.7", false),
        ("::1", false),
    ] {
        for line in [
            format!("Nov 28 10:01:00 web-01 sshd[1235]: Invalid user admin from {ip} port 53422"),
            format!(
                "Nov 28 10:01:01 web-01 sshd[1236]: error: maximum authentication attempts exceeded for root from {ip} port 53422 ssh2 [preauth]"
            ),
        ] {
            let ok: Box<dyn Fn(&str) -> bool> = if public {
                Box::new(|r| r == "110100")
            } else {
                Box::new(|r| r != "110100")
            };
            expect(line, format!("{ip}, other failure shapes"), ok);
        }
    }
    expect(
        failed_password(IOC_LISTED, 1),
        format!("{IOC_LISTED} (in 4.14's malicious-IOC list)"),
        Box::new(|r| r == "110100"),
    );
    for (score, rule) in [
        (0, "110111"),
        (1, "110112"),
        (49, "110112"),
        (50, "110113"),
        (89, "110113"),
        (90, "110114"),
        (100, "110114"),
    ] {
        expect(
            found(score),
            format!("score {score}"),
            Box::new(move |r| r == rule),
        );
    }
    for (code, rule) in [
        (json!(401), "110116"),
        (json!(429), "110117"),
        (json!(408), "110118"),
        (json!(403), "110115"),
        (json!(422), "110115"),
        (json!(500), "110115"),
        (json!(503), "110115"),
        (json!("network"), "110115"),
        (json!("no_api_key"), "110115"),
        (json!("bad_options"), "110115"),
        (json!("internal"), "110115"),
    ] {
        expect(
            error(code.clone()),
            format!("error {code}"),
            Box::new(move |r| r == rule),
        );
    }
    // Brute force: the eighth failure from one public address within the timeframe.
    for i in 0..8 {
        let ok: Box<dyn Fn(&str) -> bool> = if i < 7 {
            Box::new(|r| r == "110100")
        } else {
            Box::new(|r| r == "110102")
        };
        expect(
            failed_password("45.142.120.10", 30 + i),
            format!("brute force, failure {}", i + 1),
            ok,
        );
    }

    for version in versions() {
        for home in installed_homes(&version) {
            home.check_strict();
            let answers = home.logtest(&lines);
            let mut wrong = Vec::new();
            for ((what, ok), answer) in expected.iter().zip(&answers) {
                let rule = answer["rule_id"].as_str().unwrap_or("none");
                if !ok(rule) {
                    wrong.push(format!("{what}: rule {rule}"));
                }
            }
            assert!(wrong.is_empty(), "Wazuh {version}:\n{}", wrong.join("\n"));
        }
    }
}

/// integratord runs the installed program (as user wazuh, with the arguments of its version:
/// 6 on 4.7, 8 later) against the mock API on 127.0.0.1, and the enrichment alert lands in
/// alerts.json on the rule of the mock's score.
#[test]
fn integratord_runs_the_installed_integration_end_to_end_on_every_version() {
    if !need::all(&[Need::WazuhSandbox]) {
        return;
    }
    let mock = MockAbuseIpdb::start();
    mock.expect_key(KEY);
    for version in versions() {
        let home = Home::new(&version);
        let out = home.install(&[]);
        assert!(out.status.success(), "{version}: {}", text(&out));
        home.use_mock(&mock.check_url());
        home.check_strict();
        home.start();
        let ip = "45.142.120.21";
        home.send(&failed_password(ip, 0));
        let trigger = home.alerts("110100", 1, 15);
        assert_eq!(trigger[0]["data"]["srcip"], json!(ip));
        let rule = match derived_score(ip) {
            0 => "110111",
            1..=49 => "110112",
            50..=89 => "110113",
            _ => "110114",
        };
        let enriched = home.alerts(rule, 1, 20);
        let alert = &enriched[0];
        assert_eq!(alert["data"]["integration"], json!("custom-abuseipdb"));
        assert_eq!(alert["data"]["abuseipdb"]["source"]["srcip"], json!(ip));
        assert_eq!(
            alert["data"]["abuseipdb"]["abuse_confidence_score"],
            json!(derived_score(ip).to_string())
        );
        assert!(!home.read("logs/ossec.log").contains(KEY));
        assert!(!home.read("logs/integrations.log").contains(KEY));
    }
    assert!(mock.checks_for("45.142.120.21") >= 1);
}

/// The whole chain on the real engine, inside a network namespace the test made (the
/// daemons, the mock API and the nft set all live there): an sshd failure from an address
/// the mock scores 97 ends on 110100, integratord runs the integration, its event ends on
/// 110114, execd runs `repute-block`, which puts the address in the nft set; execd's delete
/// after the timeout takes it out. An address scored 0 (110111) is never blocked. On every
/// version, one after the other, in the same namespace.
#[test]
fn an_attack_is_blocked_by_execd_and_released_after_the_timeout() {
    if !need::all(&[Need::WazuhSandbox]) {
        return;
    }
    let Some(netns) = block_support::Netns::new() else {
        return;
    };
    let ns = netns.ns_path();
    let mock = MockInNetns::start(&ns);
    let api = mock.api();
    api.expect_key(KEY);
    let (bad, clean) = ("45.142.120.31", "45.142.120.32");
    let answer = |ip: &str, score: u8| {
        json!({
            "ipAddress": ip, "isPublic": true, "ipVersion": 4, "isWhitelisted": false,
            "abuseConfidenceScore": score, "countryCode": "NL", "usageType": "Data Center",
            "isp": "Example", "domain": "example.net", "hostnames": [], "isTor": false,
            "totalReports": u64::from(score), "numDistinctUsers": 1, "lastReportedAt": null
        })
        .to_string()
    };
    api.set_answer(bad, &answer(bad, 97));
    api.set_answer(clean, &answer(clean, 0));

    for version in versions() {
        ar_chain(&netns, &ns, api, &version, bad, clean);
    }
}

/// One version's run of the chain above, in a fresh home.
fn ar_chain(
    netns: &block_support::Netns,
    ns: &Path,
    api: &MockAbuseIpdb,
    version: &str,
    bad: &str,
    clean: &str,
) {
    let home = Home::new_in(version, Some(ns.to_path_buf()));
    let timeout = 8;
    let out = home.install(&["--active-response", "--ar-timeout", &timeout.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    home.use_mock(&api.check_url());
    home.check_strict();
    home.start();

    home.send(&failed_password(clean, 0));
    home.alerts("110111", 1, 20);
    home.send(&failed_password(bad, 1));
    home.alerts("110114", 1, 20);
    let blocked_at = Instant::now();
    netns.wait_for("the attacker in the nft set", || {
        netns.nft_elements("repute") == vec![bad.to_string()]
    });
    let log = home.read("logs/active-responses.log");
    assert!(
        log.contains(&format!("Blocked {bad} for {timeout}s")),
        "{log}"
    );
    assert!(
        !log.contains(clean),
        "the clean address never reached the block: {log}"
    );

    // execd's delete comes timeout + 1 s after the add; the kernel's own timeout is the same.
    let deadline = Duration::from_secs(timeout + 20);
    while !netns.nft_elements("repute").is_empty() {
        assert!(
            blocked_at.elapsed() < deadline,
            "still blocked: {:?}\n{}",
            netns.nft_elements("repute"),
            home.read("logs/active-responses.log")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // execd's delete reaches the program (the kernel's timeout may have emptied the set a
    // moment before: then the program finds nothing left to remove).
    while !home
        .read("logs/active-responses.log")
        .contains(r#""command":"delete""#)
    {
        assert!(
            blocked_at.elapsed() < deadline,
            "no delete from execd:\n{}",
            home.read("logs/active-responses.log")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    netns.wait_for("the delete handled", || {
        let log = home.read("logs/active-responses.log");
        log.contains(&format!("Unblocked {bad}")) || log.contains(&format!("{bad} was not blocked"))
    });
    assert!(netns.nft_elements("repute").is_empty());
    assert!(!home.read("logs/active-responses.log").contains(clean));
}

/// `install --dry-run` prints what a real run then writes: the diff applied to the home
/// before gives the home after, file by file.
#[test]
fn the_dry_run_diff_is_what_the_install_writes() {
    if !need::all(&[Need::WazuhSandbox]) {
        return;
    }
    let home = Home::new("4.9.2");
    let local = home.path.join("etc/rules/local_rules.xml");
    let stock_rules = std::fs::read_to_string(&local).unwrap();
    std::fs::write(&local, format!("{stock_rules}\n{BLOG_RULES}")).unwrap();
    home.set_conf(&home.conf().replacen("</ossec_config>", BLOG_INTEGRATION, 1));
    let before_conf = home.conf();
    let before_local = std::fs::read_to_string(&local).unwrap();
    let dry = home.install(&["--active-response", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    let diff = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert_eq!(home.conf(), before_conf, "the dry run changed nothing");
    let real = home.install(&["--active-response"]);
    assert!(real.status.success(), "{}", text(&real));
    for (rel, before) in [
        ("etc/ossec.conf", before_conf),
        ("etc/rules/local_rules.xml", before_local),
        ("etc/rules/repute_abuseipdb_rules.xml", String::new()),
    ] {
        let after = std::fs::read_to_string(home.path.join(rel)).unwrap();
        let patched = apply_unified(&before, &diff, rel)
            .unwrap_or_else(|| panic!("no diff for {rel} in:\n{diff}"));
        assert_eq!(
            patched, after,
            "{rel}: the dry run's diff is not what was written"
        );
    }
    home.check_strict();
}

/// `uninstall` after `install --active-response`, on a home whose ossec.conf starts with a
/// byte-order mark and is a symlink (configuration management): on every version the real
/// analysisd loads the file before, after install and after uninstall, which gives the file
/// back byte for byte, through the link.
#[test]
fn uninstall_gives_back_a_bom_and_symlinked_ossec_conf_the_engine_loads() {
    if !need::all(&[Need::WazuhSandbox]) {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    for version in versions() {
        let home = Home::new(&version);
        let conf = home.path.join("etc/ossec.conf");
        let managed = home.path.join("etc/ossec-managed.conf");
        let original = format!("\u{feff}{}", home.conf());
        std::fs::write(&managed, &original).unwrap();
        let meta = std::fs::metadata(&conf).unwrap();
        std::os::unix::fs::chown(&managed, Some(meta.uid()), Some(meta.gid())).unwrap();
        std::fs::set_permissions(&managed, meta.permissions()).unwrap();
        std::fs::remove_file(&conf).unwrap();
        std::os::unix::fs::symlink("ossec-managed.conf", &conf).unwrap();
        home.check_strict();

        let out = home.install(&["--active-response"]);
        assert!(out.status.success(), "{version}: {}", text(&out));
        assert!(home.conf().contains("<name>custom-abuseipdb</name>"));
        home.check_strict();

        let out = Command::new(env!("CARGO_BIN_EXE_repute"))
            .args(["wazuh", "uninstall", "--wazuh-dir"])
            .arg(&home.path)
            .stdin(Stdio::null())
            .output()
            .expect("run uninstall");
        assert!(out.status.success(), "{version}: {}", text(&out));
        assert!(text(&out).contains("(a symlink: edited "), "{}", text(&out));
        assert!(
            std::fs::symlink_metadata(&conf)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(&managed).unwrap(),
            original,
            "{version}: ossec.conf is as before install"
        );
        let after = std::fs::metadata(&managed).unwrap();
        assert_eq!(
            (after.uid(), after.gid(), after.mode() & 0o7777),
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            "{version}: owner and mode kept"
        );
        home.check_strict();
    }
}

/// Applies the hunks of `diff` for `b/<rel>` to `before` (a small unified-diff reader: the
/// hunks are applied in order, context and removed lines checked).
fn apply_unified(before: &str, diff: &str, rel: &str) -> Option<String> {
    let header = format!("+++ b/{rel}\n");
    let start = diff.find(&header)? + header.len();
    let body = &diff[start..];
    let end = body
        .find("\n--- ")
        .map(|i| i + 1)
        .or_else(|| body.find("\n# ").map(|i| i + 1))
        .or_else(|| body.find("\ndry run:").map(|i| i + 1))
        .unwrap_or(body.len());
    let old: Vec<&str> = before.split_inclusive('\n').collect();
    let mut out = String::new();
    let mut at = 0usize;
    for line in body[..end].split_inclusive('\n') {
        if let Some(hunk) = line.strip_prefix("@@ -") {
            let first: usize = hunk
                .split([',', ' '])
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let first = first.saturating_sub(1).max(at);
            while at < first {
                out.push_str(old[at]);
                at += 1;
            }
            continue;
        }
        match line.as_bytes().first() {
            Some(b' ') => {
                assert_eq!(old.get(at).copied(), Some(&line[1..]), "context of {rel}");
                out.push_str(&line[1..]);
                at += 1;
            }
            Some(b'-') => {
                assert_eq!(
                    old.get(at).copied(),
                    Some(&line[1..]),
                    "removed line of {rel}"
                );
                at += 1;
            }
            Some(b'+') => out.push_str(&line[1..]),
            _ => {}
        }
    }
    for line in &old[at.min(old.len())..] {
        out.push_str(line);
    }
    Some(out)
}

/// A home under a directory user `wazuh` cannot enter (a `mktemp -d` is 0700): install says
/// so, and the integration integratord runs as `wazuh` names the path it could not reach.
#[test]
fn a_home_user_wazuh_cannot_reach_is_named() {
    if !need::all(&[Need::WazuhSandbox]) {
        return;
    }
    let home = Home::new("4.9.2");
    let parent = home.path.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = home.install(&[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "{} (mode 0700) cannot be entered by user wazuh",
            parent.display()
        )),
        "{said}"
    );
    home.use_mock("http://127.0.0.1:9/api/v2/check");
    home.start();
    home.send(&failed_password("45.142.120.41", 0));
    home.alerts("110100", 1, 15);
    let start = Instant::now();
    let wanted = format!(
        "{}: Permission denied",
        home.path.join("queue/sockets/queue").display()
    );
    while !home.read("logs/ossec.log").contains(&wanted) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no error naming the path in ossec.log:\n{}",
            home.read("logs/ossec.log")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // For the temp dir's own clean-up.
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
}
