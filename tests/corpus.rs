//! Conformance of the sshd parser against the peers' own test data in `../shared/corpus`
//! (fail2ban, CrowdSec, sshguard, the Wazuh ruleset tests, and our injection probes).
//!
//! The corpus is read in place, never copied into the project. When it is absent (a checkout
//! without the shared folder) each test prints why and passes; CI has it. Each test prints
//! its figures (`cargo test --test corpus -- --nocapture` shows them) and asserts the
//! threshold the project promises. Deliberate disagreements with a peer are listed where
//! they are decided, with the reason.

mod need;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use repute::Outcome;
use repute::sshd::{AttemptRef, Parser, envelope};

/// `../shared/corpus` beside the package (or one level further up, for a git worktree
/// nested in a folder of worktrees); `REPUTE_CORPUS` overrides.
fn corpus() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REPUTE_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        root.join("../shared/corpus"),
        root.join("../../shared/corpus"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

macro_rules! corpus_or_skip {
    ($sub:expr) => {
        match corpus().map(|c| c.join($sub)).filter(|p| p.exists()) {
            Some(p) => p,
            None => {
                let line = format!("SKIP: needs {} under ../shared/corpus (not found)", $sub);
                assert!(!need::strict(), "{line} (REPUTE_TEST_STRICT=1)");
                let _ = writeln!(std::io::stderr(), "{line}");
                return;
            }
        }
    };
}

fn read(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A fixed "now" after every corpus stamp, so year-less stamps get a stable year.
fn parser() -> Parser {
    Parser::new("2026-11-28T12:00:00Z".parse().unwrap())
}

/// A line with an envelope goes through `parse_line`; a bare message (sshguard's tests mix
/// both) through `parse_parts`, as a journald or Wazuh caller would pass it.
fn parse<'a>(p: &mut Parser, line: &'a str) -> Option<AttemptRef<'a>> {
    let probe = envelope::Clock::new("2026-11-28T12:00:00Z".parse().unwrap());
    if envelope::split(line, &probe).is_some() {
        p.parse_line_ref(line)
    } else {
        p.parse_parts(None, None, None, line)
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    let bare = s.split('%').next()?;
    bare.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

fn attack(ev: &Option<AttemptRef<'_>>) -> Option<Option<IpAddr>> {
    ev.as_ref()
        .filter(|e| e.outcome.is_attack())
        .map(|e| e.srcip)
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        100.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

// ---------------------------------------------------------------------------------------
// fail2ban

/// How one fail2ban expectation applies in aggressive mode.
#[derive(Debug, PartialEq)]
enum F2bMode {
    /// Tested in aggressive mode (the block lists it, constraints hold).
    Aggressive,
    /// Only tested in a narrower mode: a `match: true` still holds in aggressive mode (which
    /// is a superset), a `match: false` may not.
    Narrower,
    /// Excluded by a constraint in aggressive mode.
    Excluded,
}

#[derive(Default)]
struct F2bFigures {
    true_addr: usize,
    true_addr_ok: usize,
    multi_line: usize,
    multi_line_ok: usize,
    true_other_host: usize,
    true_other_host_found: usize,
    false_lines: usize,
    false_as_attack: BTreeMap<&'static str, usize>,
    false_wrong_addr: usize,
    skipped: usize,
    times: usize,
    times_ok: usize,
    misses: Vec<String>,
}

fn f2b_mode(filter_options: &str, constraint: Option<&str>) -> F2bMode {
    let aggressive_block = filter_options.contains("\"aggressive\"");
    match constraint {
        Some(c) if c.contains("opts.get('mode') != 'aggressive'") => F2bMode::Excluded,
        Some(c) if c.contains("opts.get('mode') == 'aggressive'") => F2bMode::Aggressive,
        _ if aggressive_block => F2bMode::Aggressive,
        _ => F2bMode::Narrower,
    }
}

/// The wall-clock time fail2ban's runner prints for a parsed stamp: stamps with a zone
/// (ISO, RFC 5424) in its test zone CEST, zone-less BSD stamps as written (repute reads
/// those as UTC).
fn f2b_wall_clock(line: &str, t: jiff::Timestamp) -> String {
    let zoned_stamp = line.starts_with('<') || line.starts_with(|c: char| c.is_ascii_digit());
    let offset = if zoned_stamp { 2 * 3600 } else { 0 };
    let shifted = jiff::Timestamp::from_second(t.as_second() + offset).expect("in range");
    shifted.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The `"key": "value"` string of a failJSON object (flat, as the files write them).
fn json_str(json: &serde_json::Value, key: &str) -> Option<String> {
    json.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

/// The address of the last literal address token of `line` (what sshd appended, for the
/// families that put it last), used to tell a wrong attribution from a right one.
fn last_address_token(line: &str) -> Option<IpAddr> {
    line.split([' ', '(', ')', '[', ']', ',', '\''])
        .filter_map(|t| ip(t.trim_end_matches(':')))
        .next_back()
}

fn run_fail2ban(path: &Path, figures: &mut F2bFigures) {
    let text = read(path);
    // fail2ban's runner fixes "now" at 2005-08-14 12:00 CEST and writes expected times as
    // CEST wall-clock time.
    let mut p = Parser::new("2005-08-14T10:00:00Z".parse().unwrap());
    let mut filter_options = String::from("[{}]");
    let mut pending: Option<serde_json::Value> = None;
    for line in text.lines() {
        if let Some(opts) = line.strip_prefix("# filterOptions:") {
            filter_options = opts.trim().to_owned();
            continue;
        }
        if let Some(json) = line.strip_prefix("# failJSON:") {
            pending = Some(serde_json::from_str(json.trim()).expect("failJSON"));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        // Every log line goes through the parser in order (pid state), tested or not.
        let ev = p.parse_line_ref(line);
        let Some(expect) = pending.take() else {
            continue;
        };
        if let (Some(want), Some(got)) = (json_str(&expect, "time"), ev.and_then(|e| e.time)) {
            figures.times += 1;
            if f2b_wall_clock(line, got) == want {
                figures.times_ok += 1;
            } else {
                figures
                    .misses
                    .push(format!("TIME {line}: want {want}, got {got}"));
            }
        }
        let constraint = json_str(&expect, "constraint");
        let mode = f2b_mode(&filter_options, constraint.as_deref());
        let matched = expect
            .get("match")
            .and_then(|m| m.as_bool())
            .unwrap_or(false);
        if mode == F2bMode::Excluded || (!matched && mode == F2bMode::Narrower) {
            figures.skipped += 1;
            continue;
        }
        let host = json_str(&expect, "host")
            .or_else(|| json_str(&expect, "ip4"))
            .or_else(|| json_str(&expect, "ip6"));
        if matched {
            // `attempts` marks fail2ban's per-connection counting (a later `Accepted` turned
            // into a failure by earlier ones, held PAM lines released by a second user name):
            // repute's connection logic must count the line, with fail2ban's number.
            let counted = counted(&ev);
            match host.as_deref().and_then(ip) {
                Some(want) => {
                    let wanted_attempts = expect.get("attempts").and_then(|a| a.as_u64());
                    let (total, ok) = match wanted_attempts {
                        Some(_) => (&mut figures.multi_line, &mut figures.multi_line_ok),
                        None => (&mut figures.true_addr, &mut figures.true_addr_ok),
                    };
                    *total += 1;
                    // A line fail2ban matches alone must be an attack on the right
                    // address (its own `outcome`, or attempts its connection gives it); one
                    // with fail2ban's per-connection count must add that many attempts.
                    let right = match wanted_attempts {
                        Some(n) => {
                            counted == Some(Some(want))
                                && ev.is_some_and(|e| u64::from(e.attempts) == n)
                        }
                        None => counted == Some(Some(want)) || attack(&ev) == Some(Some(want)),
                    };
                    if right {
                        *ok += 1;
                    } else {
                        figures.misses.push(format!(
                            "{line}\n      want {want} ({wanted_attempts:?} attempts), got {:?}",
                            ev.map(|e| (e.kind, e.outcome, e.srcip, e.attempts))
                        ));
                    }
                }
                None => {
                    figures.true_other_host += 1;
                    if counted.is_some() || attack(&ev).is_some() {
                        figures.true_other_host_found += 1;
                    }
                }
            }
        } else {
            figures.false_lines += 1;
            // fail2ban matches a line when it yields an address to count; repute's line
            // "matches" when it adds attempts to an address.
            if let Some(e) = ev.filter(|e| e.attempts > 0 && e.srcip.is_some()) {
                *figures.false_as_attack.entry(e.kind.as_str()).or_default() += 1;
                figures
                    .misses
                    .push(format!("COUNTED on match:false: {line} -> {e:?}"));
                let line_addr = last_address_token(line);
                if line_addr.is_some() && e.srcip != line_addr {
                    figures.false_wrong_addr += 1;
                    figures
                        .misses
                        .push(format!("WRONG ADDRESS on match:false: {line}"));
                }
            }
        }
    }
}

/// The address a line adds attempts to (fail2ban's "match"), if it adds any.
fn counted(ev: &Option<AttemptRef<'_>>) -> Option<Option<IpAddr>> {
    ev.as_ref().filter(|e| e.attempts > 0).map(|e| e.srcip)
}

#[test]
fn fail2ban_sshd_and_journal_aggressive() {
    let dir = corpus_or_skip!("fail2ban");
    let mut figures = F2bFigures::default();
    for name in ["sshd", "sshd-journal"] {
        run_fail2ban(&dir.join(name), &mut figures);
    }
    let f = &figures;
    println!("fail2ban sshd + sshd-journal, aggressive mode:");
    println!(
        "  match:true with an address: {}/{} right address ({:.1} %)",
        f.true_addr_ok,
        f.true_addr,
        pct(f.true_addr_ok, f.true_addr)
    );
    println!(
        "  multi-line expectations (`attempts`): {}/{} right address and number of attempts",
        f.multi_line_ok, f.multi_line
    );
    println!(
        "  match:true with a host name or odd address: {}/{} counted (an address only through the pid)",
        f.true_other_host_found, f.true_other_host
    );
    println!(
        "  match:false lines: {}, counted for an address: {:?}, with a wrong address: {}",
        f.false_lines, f.false_as_attack, f.false_wrong_addr
    );
    println!(
        "  time stamps as fail2ban reads them: {}/{}",
        f.times_ok, f.times
    );
    println!(
        "  skipped (constraint excludes aggressive mode, or match:false in a narrower mode): {}",
        f.skipped
    );
    for m in &f.misses {
        println!("  miss: {m}");
    }
    assert!(f.true_addr > 150, "corpus too small: {}", f.true_addr);
    assert_eq!(f.true_addr_ok, f.true_addr);
    assert_eq!(f.multi_line_ok, f.multi_line);
    assert!(f.false_as_attack.is_empty());
    assert_eq!(f.false_wrong_addr, 0);
    assert_eq!(f.times_ok, f.times);
}

// ---------------------------------------------------------------------------------------
// CrowdSec

#[test]
fn crowdsec_parser_cases() {
    let dir = corpus_or_skip!("crowdsec/tests");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("expected-s01.tsv")))
        .filter(|p| p.exists())
        .collect();
    cases.sort();
    let (mut total, mut ok) = (0, 0);
    let mut misses = Vec::new();
    for case in &cases {
        let mut p = parser();
        for row in read(case)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let cols: Vec<&str> = row.splitn(7, '\t').collect();
            let [
                _idx,
                parser_name,
                success,
                source_ip,
                _log_type,
                _user,
                line,
            ] = cols[..]
            else {
                panic!("bad row in {}: {row}", case.display());
            };
            let ev = p.parse_line_ref(line);
            total += 1;
            let good = match (success, parser_name) {
                ("true", "crowdsecurity/sshd-success-logs") => {
                    ev.is_some_and(|e| e.outcome == Outcome::Success && e.srcip == ip(source_ip))
                }
                ("true", _) => attack(&ev) == Some(ip(source_ip)),
                // Must not parse: no attack (an `info` attempt, e.g. `Close session`, is fine).
                _ => attack(&ev).is_none(),
            };
            if good {
                ok += 1;
            } else {
                misses.push(format!(
                    "{}: {line} -> {:?}",
                    case.parent().unwrap().display(),
                    ev
                ));
            }
        }
    }
    println!(
        "CrowdSec parser cases ({} files): {ok}/{total} as expected",
        cases.len()
    );
    for m in &misses {
        println!("  miss: {m}");
    }
    assert!(total >= 50);
    assert_eq!(ok, total);
}

/// The scenario cases (no parser asserts) feed CrowdSec's buckets with attack lines: every
/// one of them must be an attack here too, with the address the line ends in when it has one
/// (`kex_exchange_identification` lines have none).
#[test]
fn crowdsec_scenario_inputs_are_attacks() {
    let dir = corpus_or_skip!("crowdsec/tests");
    let (mut total, mut ok) = (0, 0);
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.path().join("expected-s01.tsv").exists())
        .flat_map(|e| {
            std::fs::read_dir(e.path())
                .into_iter()
                .flatten()
                .filter_map(|f| f.ok())
        })
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    for log in &logs {
        let mut p = parser();
        for line in read(log).lines().filter(|l| !l.trim().is_empty()) {
            total += 1;
            let ev = p.parse_line_ref(line);
            let want = last_address_token(line);
            // ssh-time-based-bf mixes in one accepted login: a success, not an attack.
            let good = if line.contains(": Accepted ") {
                ev.is_some_and(|e| e.outcome == Outcome::Success && e.srcip == want)
            } else {
                attack(&ev).is_some_and(|got| want.is_none() || got == want)
            };
            if good {
                ok += 1;
            } else {
                println!("  miss: {line} -> {ev:?}");
            }
        }
    }
    println!(
        "CrowdSec scenario inputs ({} files): {ok}/{total} lines are attacks",
        logs.len()
    );
    assert!(total >= 50);
    assert_eq!(ok, total);
}

// ---------------------------------------------------------------------------------------
// sshguard

/// sshguard cases where repute deliberately answers otherwise, with the reason.
const SSHGUARD_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "Received disconnect from",
        "a client disconnect before authentication is a probe (fail2ban counts it; \
         `3: …Auth fail` is an authentication failure); sshguard ignores these lines",
    ),
    (
        "2015-05-27T04:31:27.46667 auth.info: Invalid user admin from",
        "no program tag: any local program could have written the line, so it is not sshd's",
    ),
    (
        "2018-06-26 13:22:02.108781500 Failed password for woold",
        "no program tag: any local program could have written the line, so it is not sshd's",
    ),
];

#[test]
fn sshguard_openssh_cases() {
    let file = corpus_or_skip!("sshguard/tests.txt");
    let text = read(&file);
    let lines: Vec<&str> = text.lines().collect();
    let mut section_ssh = true;
    let mut i = 0;
    let (mut total, mut ok, mut excepted) = (0, 0, 0);
    let mut misses = Vec::new();
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("# Dropbear") {
            section_ssh = false;
        }
        if line.is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let (input, expected, mark) = (
            line,
            lines.get(i + 1).copied().unwrap_or(""),
            lines.get(i + 2).copied().unwrap_or(""),
        );
        i += 3;
        let openssh = expected.starts_with("100 ");
        if !(openssh || (expected == "*" && section_ssh)) {
            continue;
        }
        total += 1;
        let mut p = parser();
        let ev = parse(&mut p, input);
        let good = match expected.split(' ').collect::<Vec<_>>()[..] {
            ["100", addr, _, _] => attack(&ev) == Some(ip(addr)),
            _ => attack(&ev).is_none(),
        };
        if good {
            ok += 1;
        } else if let Some((_, why)) = SSHGUARD_EXCEPTIONS
            .iter()
            .find(|(pre, _)| input.contains(pre))
        {
            excepted += 1;
            println!(
                "  deliberate: {input}\n      sshguard: {expected} ({mark}); repute: {:?}\n      because {why}",
                ev.map(|e| (e.kind, e.outcome, e.srcip))
            );
        } else {
            misses.push(format!(
                "{input}\n      sshguard: {expected}; repute: {:?}",
                ev.map(|e| (e.kind, e.outcome, e.srcip))
            ));
        }
    }
    println!(
        "sshguard OpenSSH cases: {ok}/{total} as sshguard expects, {excepted} deliberate exceptions, {} misses",
        misses.len()
    );
    for m in &misses {
        println!("  miss: {m}");
    }
    assert!(total >= 60);
    assert!(misses.is_empty());
}

// ---------------------------------------------------------------------------------------
// Wazuh

/// Rules that need several events (frequency) or a CDB list: one line cannot end in them.
const WAZUH_MULTI_EVENT: &[u32] = &[5712, 5720, 5763, 5703, 5705, 5714, 5719, 99903, 99904];

#[test]
fn wazuh_sshd_rule_ids() {
    let file = corpus_or_skip!("wazuh-sshd-tests.ini");
    let text = read(&file);
    struct Section {
        name: String,
        logs: Vec<(bool, String)>,
        rule: Option<u32>,
        decoder: Option<String>,
    }
    let mut sections: Vec<Section> = Vec::new();
    for line in text.lines() {
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push(Section {
                name: name.to_owned(),
                logs: vec![],
                rule: None,
                decoder: None,
            });
            continue;
        }
        let Some(s) = sections.last_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once(" = ") else {
            continue;
        };
        match key.split(' ').collect::<Vec<_>>()[..] {
            ["log", _, pass] => s.logs.push((pass == "pass", value.to_owned())),
            ["rule"] => s.rule = value.trim().parse().ok(),
            ["decoder"] => s.decoder = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let (mut compared, mut ok) = (0, 0);
    let mut misses = Vec::new();
    for s in &sections {
        let rule = s.rule.expect("rule");
        if WAZUH_MULTI_EVENT.contains(&rule) {
            println!(
                "  skipped [{}]: rule {rule} needs several events or a CDB list",
                s.name
            );
            continue;
        }
        if s.decoder.as_deref() != Some("sshd") {
            let ours: Vec<_> = s
                .logs
                .iter()
                .map(|(_, l)| parser().parse_line_ref(l).and_then(|e| e.wazuh_rule))
                .collect();
            println!(
                "  skipped [{}]: decoder {:?}, not sshd (expected rule {rule}; repute says {ours:?})",
                s.name, s.decoder
            );
            continue;
        }
        for (pass, log) in &s.logs {
            let mut p = parser();
            let Some(ev) = p.parse_line_ref(log) else {
                println!("  skipped [{}]: not an authentication event: {log}", s.name);
                continue;
            };
            compared += 1;
            let good = (ev.wazuh_rule == Some(rule)) == *pass;
            if good {
                ok += 1;
            } else {
                misses.push(format!(
                    "[{}] {} {rule}, got {:?}: {log}",
                    s.name,
                    if *pass { "want" } else { "must not be" },
                    ev.wazuh_rule
                ));
            }
        }
    }
    println!(
        "Wazuh sshd tests: {ok}/{compared} single-line authentication events end in the expected rule"
    );
    for m in &misses {
        println!("  miss: {m}");
    }
    assert!(compared >= 20);
    assert_eq!(ok, compared);
}

// ---------------------------------------------------------------------------------------
// Injection probes

#[test]
fn injection_probes_never_give_the_decoy() {
    let file = corpus_or_skip!("injection/sshd-injection.tsv");
    let (mut total, mut real, mut nothing, mut decoys) = (0, 0, 0, 0);
    for row in read(&file)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = row.splitn(4, '\t').collect();
        let [id, true_ip, decoy_ip, line] = cols[..] else {
            panic!("bad row: {row}")
        };
        let mut p = parser();
        let got = p.parse_line_ref(line).and_then(|e| e.srcip);
        total += 1;
        match got {
            Some(a) if Some(a) == ip(true_ip) => real += 1,
            Some(a) if Some(a) == ip(decoy_ip) => {
                decoys += 1;
                println!("  DECOY {id}: {line}");
            }
            Some(a) => panic!("{id}: unexpected address {a}"),
            None => {
                nothing += 1;
                println!("  nothing {id}: {line}");
            }
        }
    }
    println!("injection probes: {total}: {real} true address, {nothing} nothing, {decoys} decoys");
    assert!(total >= 14);
    assert_eq!(decoys, 0);
}
