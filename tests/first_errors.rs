//! A newcomer's first commands: what `repute` says when the machine is not set up yet. Each
//! message names what to do (the variable to set, the flag to use), in one line, without
//! repeating its cause; a normal user's first `check` works on a per-user store.

mod need;

use std::path::Path;
use std::process::{Command, Output};

use need::Need;

/// A public address (documentation addresses are refused as not public); with no key, nothing
/// is ever sent to it.
const PUBLIC: &str = "45.155.205.233";

/// The binary with an empty environment but `extra`: no key, no settings file from the host.
fn repute(dir: &Path, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let settings = dir.join("empty.toml");
    std::fs::write(&settings, "").expect("settings");
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("repute"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("REPUTE_CONFIG", &settings)
        .envs(extra.iter().copied())
        .args(args);
    cmd.output().expect("run repute")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn no_key_says_which_variable_to_set_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = repute(
        dir.path(),
        &[("REPUTE_CACHE", "none")],
        &["check", PUBLIC, "185.220.101.4"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err,
        "repute: no AbuseIPDB API key: set ABUSEIPDB_API_KEY_FILE (a file holding the key) or \
         ABUSEIPDB_API_KEY, or `api_key_file` in /etc/repute/repute.toml\n",
        "one line for both addresses"
    );
}

#[test]
fn a_missing_wazuh_home_says_use_wazuh_dir() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = dir.path().join("ossec");
    let home = home.to_str().expect("utf-8");
    let out = repute(dir.path(), &[], &["wazuh", "install", "--wazuh-dir", home]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.ends_with("is missing; use --wazuh-dir to name the Wazuh home\n"),
        "{err}"
    );
}

#[test]
fn a_store_that_cannot_be_opened_is_named_once() {
    let dir = tempfile::tempdir().expect("tmp");
    // Under a plain file: no user, not even root, can create it.
    std::fs::write(dir.path().join("file"), "").expect("file");
    let state = dir.path().join("file/state");
    let out = repute(
        dir.path(),
        &[("REPUTE_STATE_DIR", state.to_str().expect("utf-8"))],
        &["check", PUBLIC],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let store = state.join("repute.sqlite");
    assert_eq!(
        err,
        format!(
            "repute: cache {}: {} is not a directory\n",
            store.display(),
            dir.path().join("file").display()
        )
    );
}

/// A normal user cannot write `/var/lib/repute`: the first `check` uses
/// `$XDG_CACHE_HOME/repute`, and `-v` says so. As root, the test runs the binary as `nobody`.
#[test]
fn a_normal_user_gets_a_per_user_store_and_v_says_which() {
    let root = unsafe { libc::geteuid() } == 0;
    if root && !need::all(&[Need::Tool("setpriv")]) {
        return;
    }
    if !root && repute_dir_writable() {
        // This user may write the system directory: there is nothing to fall back from.
        need::all(&[Need::Root]);
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    // Missing, as ~/.cache is on a fresh account: repute makes it (0700, as XDG says).
    let cache = dir.path().join("cache");
    let settings = dir.path().join("empty.toml");
    std::fs::write(&settings, "").expect("settings");
    let binary = assert_cmd::cargo::cargo_bin("repute");
    let mut cmd = if root {
        use std::os::unix::fs::PermissionsExt;
        // nobody must reach the scratch directory and write its cache.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&binary);
        cmd
    } else {
        Command::new(&binary)
    };
    let out = cmd
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("XDG_CACHE_HOME", &cache)
        .env("REPUTE_CONFIG", &settings)
        .args(["check", "-v", PUBLIC])
        .output()
        .expect("run repute");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "no key, not an error: {err}");
    let store = cache.join("repute/repute.sqlite");
    assert!(
        err.contains(&format!(
            "repute: store {} (per-user: /var/lib/repute is not writable)\n",
            store.display()
        )),
        "{err}"
    );
    assert!(store.exists(), "the per-user store was created");
    assert!(!err.contains("unable to open"), "{err}");
}

fn repute_dir_writable() -> bool {
    let dir = Path::new("/var/lib/repute");
    let target = if dir.exists() {
        dir
    } else {
        Path::new("/var/lib")
    };
    let Ok(c) = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}
