//! What every command has in common: `--help` documents exit status and environment,
//! `--format json` is one object per line (`jsonl` accepted too), completions and manual
//! pages are generated from the same definitions.

use std::process::Output;

use assert_cmd::Command;

fn repute(args: &[&str]) -> Output {
    // A store of its own: never the host's /var/lib/repute.
    let state = tempfile::tempdir().expect("tmp");
    let mut cmd = Command::cargo_bin("repute").expect("binary");
    cmd.env("REPUTE_STATE_DIR", state.path())
        .env_remove("REPUTE_CACHE")
        .env_remove("REPUTE_STORE")
        .env_remove("ABUSEIPDB_API_KEY")
        .env_remove("ABUSEIPDB_API_KEY_FILE")
        .env("REPUTE_CONFIG", "/dev/null")
        .args(args);
    cmd.output().expect("run")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every visible command and subcommand that does something (not the groups).
const COMMANDS: &[&[&str]] = &[
    &["scan"],
    &["check"],
    &["block"],
    &["wazuh", "integration"],
    &["wazuh", "active-response"],
    &["wazuh", "install"],
    &["wazuh", "uninstall"],
    &["wazuh", "rules"],
    &["completions"],
    &["config", "show"],
    &["config", "reference"],
];

#[test]
fn every_help_documents_exit_status_and_environment() {
    let top = repute(&["--help"]);
    assert!(stdout(&top).contains("Exit status"), "{}", stdout(&top));
    assert!(stdout(&top).contains("Environment"), "{}", stdout(&top));
    for command in COMMANDS {
        let mut args = command.to_vec();
        args.push("--help");
        let out = repute(&args);
        assert!(out.status.success(), "{args:?}");
        let help = stdout(&out);
        assert!(help.contains("Exit status"), "{args:?}: {help}");
        assert!(help.contains("Environment"), "{args:?}: {help}");
    }
}

#[test]
fn json_and_its_jsonl_alias_give_the_same_lines() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "Nov 30 06:00:00 web sshd[10]: Failed password for root from 45.155.205.233 port 4242 ssh2\n",
    )
    .expect("write");
    let log = log.to_str().expect("utf-8");
    for args in [
        ["scan", "--format", "FORMAT", log],
        ["check", "--format", "FORMAT", "10.1.2.3"],
    ] {
        let run = |format: &str| {
            let args: Vec<&str> = args
                .iter()
                .map(|a| if *a == "FORMAT" { format } else { a })
                .collect();
            let out = repute(&args);
            assert!(out.status.code().is_some_and(|c| c < 2), "{args:?}");
            stdout(&out)
        };
        let json = run("json");
        assert_eq!(json, run("jsonl"), "{args:?}");
        assert!(!json.is_empty());
        for line in json.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("one object per line");
        }
    }
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = repute(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = stdout(&out);
        for word in ["repute", "scan", "check", "block", "wazuh"] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
    let out = repute(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn manual_pages_one_per_command() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = repute(&["man", dir.path().to_str().expect("utf-8")]);
    assert!(out.status.success());
    for page in [
        "repute.1",
        "repute-scan.1",
        "repute-check.1",
        "repute-block-add.1",
        "repute-wazuh-install.1",
        "repute-completions.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).expect(page);
        assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{page} is roff");
    }
    let check = std::fs::read_to_string(dir.path().join("repute-check.1")).expect("page");
    assert!(check.contains("Exit status"));
    assert!(
        !dir.path().join("repute-man.1").exists(),
        "the hidden packaging command has no page"
    );
}
