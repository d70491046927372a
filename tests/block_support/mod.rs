//! A private network namespace for the blocking tests, so the real `nft`, `ipset` and
//! `iptables` run against a kernel firewall that is not the host's.
//!
//! [`Netns::new`] starts `unshare -n -- sleep` as the namespace's holder and runs every
//! command inside it with `nsenter --net=/proc/<pid>/ns/net`; the namespace disappears when the
//! holder is killed (on drop, also after a failed assertion). Where a namespace cannot be made
//! (not root, no `unshare`, no `nft`), [`Netns::new`] says what is missing through
//! `need` and the test skips (fails under `REPUTE_TEST_STRICT=1`): it never falls back to the host.
//! A test file that uses this module declares `mod need;` too.

#![allow(dead_code)]

pub mod execd;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for something the kernel does by itself (a timeout expiring).
pub const KERNEL_WAIT: Duration = Duration::from_secs(15);

pub struct Netns {
    holder: Child,
    /// Scratch directory: state store, config file.
    pub dir: tempfile::TempDir,
}

impl Netns {
    /// A fresh namespace with `lo` up, and an empty scratch directory with an empty config;
    /// `None` (after one printed line) where root, `unshare`, `nsenter`, `ip` or `nft` is missing.
    pub fn new() -> Option<Netns> {
        Netns::needing(&[])
    }

    /// As [`Netns::new`], needing the tools in `extra` as well.
    pub fn needing(extra: &[&'static str]) -> Option<Netns> {
        use crate::need::Need;
        let mut needs = vec![
            Need::Root,
            Need::Tool("unshare"),
            Need::Tool("nsenter"),
            Need::Tool("ip"),
            Need::Tool("nft"),
        ];
        needs.extend(extra.iter().map(|t| Need::Tool(t)));
        if !crate::need::all(&needs) {
            return None;
        }
        Some(Netns::create())
    }

    fn create() -> Netns {
        let mut holder = Command::new("unshare");
        holder
            .args(["-n", "--", "sleep", "600"])
            .stdin(Stdio::null());
        // SAFETY: prctl(2) only, between fork and exec. The holder dies with the test's
        // thread even when the test process is killed, so no namespace outlives its test.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut holder, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let holder = holder.spawn().unwrap_or_else(|e| {
            panic!("cannot create a network namespace (unshare -n needs root and util-linux): {e}")
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let netns = Netns { holder, dir };
        netns.wait_until_separate();
        netns.ok(&["ip", "link", "set", "lo", "up"]);
        netns.write_config("");
        netns
    }

    /// Waits (bounded) until the holder has entered its own namespace.
    fn wait_until_separate(&self) {
        let mine = std::fs::read_link("/proc/self/ns/net").expect("own namespace");
        let theirs = self.ns_path();
        let start = Instant::now();
        loop {
            if std::fs::read_link(&theirs).is_ok_and(|ns| ns != mine) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "unshare -n did not create a network namespace (are we root?)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn ns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.holder.id()))
    }

    /// `program args…` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        // By absolute path: a test may give the command a PATH without nsenter in it.
        let mut cmd =
            Command::new(which("nsenter").expect("nsenter (util-linux) is not installed"));
        cmd.arg(format!("--net={}", self.ns_path().display()))
            .arg("--")
            .arg(program);
        cmd
    }

    /// The repute binary inside the namespace, with a clean environment: its own config and
    /// state, no API key, no SSH session.
    pub fn repute(&self) -> Command {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_repute"));
        self.clean_env(&mut cmd);
        cmd.arg("--config").arg(self.config_path());
        cmd
    }

    pub fn clean_env(&self, cmd: &mut Command) {
        for var in [
            "SSH_CLIENT",
            "SSH_CONNECTION",
            "ABUSEIPDB_API_KEY",
            "ABUSEIPDB_API_KEY_FILE",
            "ABUSEIPDB_API_URL",
            "REPUTE_CACHE",
            "REPUTE_STORE",
            "WAZUH_HOME",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("REPUTE_STATE_DIR", self.state_dir())
            .env("REPUTE_CONFIG", self.config_path());
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("repute.toml")
    }

    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.config_path(), toml).expect("write config");
    }

    /// Runs a tool inside the namespace and returns its stdout; fails the test if it fails.
    pub fn ok(&self, argv: &[&str]) -> String {
        let out = self
            .command(argv[0])
            .args(&argv[1..])
            .output()
            .expect("spawn");
        assert!(
            out.status.success(),
            "{argv:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `repute args…` inside the namespace.
    pub fn run(&self, args: &[&str]) -> Output {
        self.repute().args(args).output().expect("spawn repute")
    }

    /// `repute args…` started inside the namespace without waiting: stdout discarded, stderr
    /// kept for the test's message. For processes that race each other.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.repute()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn repute")
    }

    /// Addresses in our nft sets, straight from `nft -j` (not through repute).
    pub fn nft_elements(&self, table: &str) -> Vec<String> {
        let out = self
            .command("nft")
            .args(["-j", "list", "table", "inet", table])
            .output()
            .expect("spawn nft");
        if !out.status.success() {
            return Vec::new();
        }
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft json");
        let mut found = Vec::new();
        for set in doc["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("set"))
        {
            for elem in set["elem"].as_array().into_iter().flatten() {
                let val = elem["elem"]["val"].as_str().or(elem.as_str());
                found.extend(val.map(str::to_string));
            }
        }
        found.sort();
        found
    }

    /// Waits (bounded by [`KERNEL_WAIT`]) until `done` holds.
    pub fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < KERNEL_WAIT,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `repute block list --format json`, parsed.
pub fn listed(netns: &Netns) -> Vec<serde_json::Value> {
    let out = netns.run(&["block", "list", "--format", "json"]);
    assert!(out.status.success(), "list failed: {}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("list line is JSON"))
        .collect()
}

/// The first `tool` in this process's `PATH`.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}
