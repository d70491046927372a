//! A fake Wazuh manager home in a temp dir: the directories an integration touches, a real
//! `queue/sockets/queue` datagram socket with a thread collecting what arrives (as analysisd
//! would), and a way to run the binary exactly as integratord does (installed under
//! `integrations/<name>`, argv[0] `integrations`, cwd the home, a clean environment).
//! [`WazuhTree::agent`] is an agent's home instead.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Environment variables that would change a run's settings; removed from every child.
pub const SETTINGS_ENV: &[&str] = &[
    "WAZUH_HOME",
    "ABUSEIPDB_API_KEY",
    "ABUSEIPDB_API_KEY_FILE",
    "ABUSEIPDB_API_URL",
    "REPUTE_CACHE",
    "REPUTE_STORE",
    "REPUTE_STORE_PASSWORD_FILE",
    "REPUTE_STORE_PREFIX",
    "REPUTE_CONFIG",
    "REPUTE_STATE_DIR",
];

/// The manager-side ossec.conf shape: a comment, two roots, an existing integration.
pub const OSSEC_CONF: &str = r#"<!--
  Wazuh - Manager - Default configuration for ubuntu 22.04
  More info at: https://documentation.wazuh.com
-->

<ossec_config>
  <global>
    <jsonout_output>yes</jsonout_output>
    <alerts_log>yes</alerts_log>
    <logall>no</logall>
    <email_notification>no</email_notification>
  </global>

  <alerts>
    <log_alert_level>3</log_alert_level>
    <email_alert_level>12</email_alert_level>
  </alerts>

  <!-- Slack, for the night shift -->
  <integration>
    <name>slack</name>
    <hook_url>https://hooks.slack.com/services/T000/B000/XXXX</hook_url>
    <level>10</level>
    <alert_format>json</alert_format>
  </integration>

  <ruleset>
    <decoder_dir>ruleset/decoders</decoder_dir>
    <rule_dir>ruleset/rules</rule_dir>
    <rule_exclude>0215-policy_rules.xml</rule_exclude>
    <list>etc/lists/audit-keys</list>
    <decoder_dir>etc/decoders</decoder_dir>
    <rule_dir>etc/rules</rule_dir>
  </ruleset>
</ossec_config>

<ossec_config>
  <localfile>
    <log_format>syslog</log_format>
    <location>/var/log/auth.log</location>
  </localfile>
</ossec_config>
"#;

/// An agent's ossec.conf: the `<client>` section that points it at its manager.
pub const AGENT_OSSEC_CONF: &str = r#"<!--
  Wazuh - Agent - Default configuration for ubuntu 22.04
-->

<ossec_config>
  <client>
    <server>
      <address>192.0.2.10</address>
      <port>1514</port>
      <protocol>tcp</protocol>
    </server>
    <config-profile>ubuntu, ubuntu22, ubuntu22.04</config-profile>
  </client>

  <active-response>
    <disabled>no</disabled>
    <ca_store>etc/wpk_root.pem</ca_store>
  </active-response>

  <localfile>
    <log_format>syslog</log_format>
    <location>/var/log/auth.log</location>
  </localfile>
</ossec_config>
"#;

/// A fake Wazuh home with a listening queue socket.
pub struct WazuhTree {
    dir: tempfile::TempDir,
    received: Arc<Mutex<Vec<String>>>,
    socket: Option<Arc<UnixDatagram>>,
}

impl WazuhTree {
    /// A home with `integrations/`, `logs/`, `etc/rules/`, `tmp/`, `var/`, `etc/ossec.conf` and a bound
    /// queue socket.
    pub fn new() -> WazuhTree {
        let mut tree = WazuhTree::without_socket();
        let socket = UnixDatagram::bind(tree.socket_path()).expect("bind the queue socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let socket = Arc::new(socket);
        let received = Arc::clone(&tree.received);
        let reader = Arc::clone(&socket);
        std::thread::spawn(move || collect(&reader, &received));
        tree.socket = Some(socket);
        tree
    }

    /// The same tree without anything bound at `queue/sockets/queue`.
    pub fn without_socket() -> WazuhTree {
        let dir = tempfile::tempdir().expect("temp dir");
        // `var` as in every Wazuh home: the cache directory `var/repute` is made under it.
        for sub in [
            "integrations",
            "logs",
            "etc/rules",
            "queue/sockets",
            "tmp",
            "var",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create tree");
        }
        std::fs::write(dir.path().join("etc/ossec.conf"), OSSEC_CONF).expect("ossec.conf");
        WazuhTree {
            dir,
            received: Arc::new(Mutex::new(Vec::new())),
            socket: None,
        }
    }

    /// An agent's home: `active-response/bin/` (0750, with one of Wazuh's own scripts),
    /// `bin/`, `etc/`, `logs/`, `var/`, and an `etc/ossec.conf` with a `<client>` section.
    /// No socket, no `integrations/`, no rules.
    pub fn agent() -> WazuhTree {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["active-response/bin", "bin", "etc", "logs", "var"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create tree");
        }
        for sub in ["active-response", "active-response/bin"] {
            std::fs::set_permissions(dir.path().join(sub), std::fs::Permissions::from_mode(0o750))
                .expect("chmod");
        }
        let script = dir.path().join("active-response/bin/restart.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("restart.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o750)).expect("chmod");
        std::fs::write(dir.path().join("etc/ossec.conf"), AGENT_OSSEC_CONF).expect("ossec.conf");
        WazuhTree {
            dir,
            received: Arc::new(Mutex::new(Vec::new())),
            socket: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket_path(&self) -> PathBuf {
        self.path().join("queue/sockets/queue")
    }

    /// The repute binary as `integrations/<name>` (a hard link, or a copy across file systems),
    /// mode 0750 as install leaves it.
    pub fn install_binary(&self, name: &str) -> PathBuf {
        let target = self.path().join("integrations").join(name);
        let source = Path::new(env!("CARGO_BIN_EXE_repute"));
        if std::fs::hard_link(source, &target).is_err() {
            copy_program(source, &target);
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o750))
                .expect("chmod");
        }
        target
    }

    /// Writes an alert file as integratord does (one line), returning its path.
    pub fn write_alert(&self, name: &str, json: &str) -> PathBuf {
        let path = self.path().join("tmp").join(name);
        std::fs::write(&path, format!("{}\n", json.trim())).expect("alert file");
        path
    }

    /// `integrations/<name>` with argv[0] `integrations`, cwd the home, the arguments given
    /// and no setting from the test's own environment.
    pub fn integratord_command(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.path().join("integrations").join(name));
        cmd.arg0("integrations").args(args).current_dir(self.path());
        for var in SETTINGS_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Messages received so far.
    pub fn received(&self) -> Vec<String> {
        self.received.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Waits (bounded) until `n` messages have arrived; returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `logs/integrations.log`.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("logs/integrations.log")).unwrap_or_default()
    }

    /// Leaves a socket file nobody reads: analysisd stopped (the tree must have no socket).
    pub fn leave_dead_socket(&self) {
        drop(UnixDatagram::bind(self.socket_path()).expect("bind then close"));
    }
}

fn collect(socket: &Arc<UnixDatagram>, received: &Mutex<Vec<String>>) {
    let mut buf = vec![0u8; 70_000];
    // The collector ends when the test drops its handle: then only this thread holds it.
    while Arc::strong_count(socket) > 1 {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Ok(mut all) = received.lock() {
                all.push(text);
            }
        }
    }
}

/// integratord's 4.8+ command line without debug: the alert file, `<api_key>` (empty: none
/// configured), `<hook_url>`, no debug, no options file, timeout 10 s, 3 retries, and the
/// redirect as one argument.
pub fn args_4_8(alert_file: &str, key: &str, hook_url: &str) -> Vec<String> {
    [
        alert_file,
        key,
        hook_url,
        "",
        "",
        "10",
        "3",
        "> /dev/null 2>&1",
    ]
    .map(String::from)
    .to_vec()
}

/// Splits a queue message into (location, payload), undoing the location escaping.
pub fn split_message(message: &str) -> (String, serde_json::Value) {
    let rest = message.strip_prefix("1:").expect("queue id 1");
    let bytes = rest.as_bytes();
    let mut end = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'|' => i += 2,
            b':' => {
                end = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    let end = end.expect("location ends with ':'");
    let location = rest[..end].replace("|:", ":").replace("||", "|");
    let payload = &rest[end + 1..];
    assert!(
        payload.starts_with("{\""),
        "payload starts with {{\": {payload}"
    );
    (
        location,
        serde_json::from_str(payload).expect("payload is JSON"),
    )
}

/// Copies a program with `cp`, in a child process. Written by this process, the copy could
/// not be run for a moment: another test thread that forks while the copy is open for writing
/// hands that descriptor to its child until the child execs, and executing the copy meanwhile
/// fails with ETXTBSY ("Text file busy"). `cp` holds the only writing descriptor, and it has
/// exited when this returns.
pub fn copy_program(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp {} {}", from.display(), to.display());
}
