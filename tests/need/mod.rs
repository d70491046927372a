//! What a test needs that a plain machine may lack, and the one way to skip without it.
//!
//! A test that needs root, a tool, the Wazuh sandbox or the shared corpus starts with
//! `if !need::all(&[Need::Root, Need::Tool("nft")]) { return; }`. When something is missing it
//! prints one line (`SKIP <test>: needs …`) straight to the terminal, past libtest's capture, and
//! returns false, so the test passes as skipped. Under `REPUTE_TEST_STRICT=1` (set by `.ci/run`,
//! which installs everything) a missing requirement fails the test instead: CI never skips.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

/// One thing a test may need.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Effective uid 0 (network namespaces, nftables, the Wazuh daemons).
    Root,
    /// A program on `PATH` (or, for a name with a `/`, that file).
    Tool(&'static str),
    /// `../shared/wazuh/wazuh-sandbox` and the run-time libraries its binaries link.
    WazuhSandbox,
    /// `../shared/corpus`.
    Corpus,
}

/// True when everything in `needs` is here; otherwise says what is missing in one line and
/// returns false (or panics under `REPUTE_TEST_STRICT=1`).
pub fn all(needs: &[Need]) -> bool {
    let missing: Vec<String> = needs.iter().filter_map(|n| missing(*n)).collect();
    if missing.is_empty() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let line = format!("SKIP {test}: needs {}", missing.join(", "));
    if strict() {
        panic!("{line} (REPUTE_TEST_STRICT=1: a skip is a failure)");
    }
    // Straight to fd 2: libtest captures `eprintln!` of passing tests, not the handle.
    let _ = writeln!(std::io::stderr(), "{line}");
    false
}

/// `REPUTE_TEST_STRICT` is set to something other than empty or `0`.
pub fn strict() -> bool {
    std::env::var("REPUTE_TEST_STRICT").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn missing(need: Need) -> Option<String> {
    match need {
        Need::Root => (unsafe { libc::geteuid() } != 0).then(|| "root".to_string()),
        Need::Tool(tool) => which(tool)
            .is_none()
            .then(|| format!("`{tool}` (not installed)")),
        Need::Corpus => shared("corpus")
            .is_none()
            .then(|| "../shared/corpus (not found)".to_string()),
        Need::WazuhSandbox => sandbox_missing(),
    }
}

/// `../shared/<sub>` beside the package, or one level further up (a git worktree nested in a
/// folder of worktrees). `REPUTE_SHARED` overrides.
pub fn shared(sub: &str) -> Option<PathBuf> {
    let mut roots = Vec::new();
    if let Some(dir) = std::env::var_os("REPUTE_SHARED") {
        roots.push(PathBuf::from(dir));
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    roots.push(here.join("../shared"));
    roots.push(here.join("../../shared"));
    roots.into_iter().map(|r| r.join(sub)).find(|p| p.exists())
}

/// The `wazuh-sandbox` script, when the shared folder has it.
pub fn sandbox() -> Option<PathBuf> {
    shared("wazuh/wazuh-sandbox")
}

fn sandbox_missing() -> Option<String> {
    let Some(script) = sandbox() else {
        return Some("../shared/wazuh/wazuh-sandbox (not found)".to_string());
    };
    if unsafe { libc::geteuid() } != 0 {
        return Some("root (for the Wazuh sandbox)".to_string());
    }
    if which("python3").is_none() {
        return Some("`python3` (for the Wazuh sandbox)".to_string());
    }
    let analysisd = script.with_file_name("4.9.2/bin/wazuh-analysisd");
    let out = std::process::Command::new("ldd").arg(&analysisd).output();
    let libs: Vec<String> = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("not found"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect(),
        Err(_) => return Some("`ldd` (to check the Wazuh sandbox's libraries)".to_string()),
    };
    (!libs.is_empty()).then(|| {
        format!(
            "the Wazuh sandbox's libraries ({} not found; see ../shared/wazuh/README.md)",
            libs.join(", ")
        )
    })
}

/// The first `tool` in this process's `PATH`; a name with a `/` is taken as a path.
pub fn which(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        return Path::new(tool).is_file().then(|| PathBuf::from(tool));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}
