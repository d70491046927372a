//! The progress bar of `repute scan` on big inputs: drawn when stderr and stdout are both
//! terminals, never when the output goes elsewhere (`repute scan big.log > out`), even with
//! stderr on a terminal. `script` (util-linux) gives the command a terminal.

mod need;

use std::process::Command;

use need::Need;

/// What a terminal showed while `shell_command` ran on it.
fn on_a_terminal(shell_command: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", shell_command, "/dev/null"])
        .env_remove("REPUTE_CONFIG")
        // A terminal that can draw: without TERM (as under `env -i`) no bar is ever drawn.
        .env("TERM", "xterm")
        .output()
        .expect("run script");
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_bar_is_drawn_only_when_stdout_is_a_terminal_too() {
    if !need::all(&[Need::Tool("script"), Need::Tool("sh")]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("big.log");
    // 40 MiB of lines that are not sshd's: above the 32 MiB at which the bar appears.
    let line = format!("Nov 30 06:00:00 web cron[1]: {}\n", "x".repeat(70));
    std::fs::write(&log, line.repeat((40 << 20) / line.len())).expect("write");
    let repute = assert_cmd::cargo::cargo_bin("repute");
    let command = format!("'{}' scan '{}'", repute.display(), log.display());

    let both = on_a_terminal(&command);
    assert!(both.contains("MiB"), "a bar on a terminal: {both:?}");

    let redirected = on_a_terminal(&format!("{command} > /dev/null"));
    assert!(
        !redirected.contains("MiB"),
        "no bar when stdout is not a terminal: {redirected:?}"
    );
}
