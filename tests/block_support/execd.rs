//! Wazuh's execd as the active-response tests play it: the message it writes on the program's
//! stdin, its reply to the `check_keys` handshake, and one bounded execution inside the test's
//! network namespace (cwd = the Wazuh home, stdout read for the handshake).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::Netns;

/// The program as execd names it, relative to the Wazuh home.
pub const PROGRAM: &str = "active-response/bin/repute-block";

/// An execd message for `command` carrying `alert` and `extra_args` (one JSON line, no
/// newline).
pub fn message(command: &str, extra_args: &[impl AsRef<str>], alert: Value) -> String {
    let extra_args: Vec<&str> = extra_args.iter().map(AsRef::as_ref).collect();
    json!({
        "version": 1,
        "origin": { "name": "node01", "module": "wazuh-execd" },
        "command": command,
        "parameters": {
            "extra_args": extra_args,
            "alert": alert,
            "program": PROGRAM
        }
    })
    .to_string()
}

/// execd's reply to the handshake: `continue` or `abort`.
pub fn reply(command: &str) -> String {
    json!({
        "version": 1,
        "origin": { "name": "node01", "module": "wazuh-execd" },
        "command": command,
        "parameters": {}
    })
    .to_string()
}

/// The `check_keys` line the program must write for `ip`, to the byte.
pub fn expected_check_keys(ip: &str) -> String {
    format!(
        "{{\"version\":1,\"origin\":{{\"name\":\"repute-block\",\"module\":\"active-response\"}},\"command\":\"check_keys\",\"parameters\":{{\"keys\":[\"{ip}\"]}}}}\n"
    )
}

/// What one execution looked like from execd's side.
pub struct Execution {
    /// The line the program wrote (the `check_keys` message), if any.
    pub check_keys: Option<String>,
    pub code: Option<i32>,
}

/// Runs `program` as execd does: cwd = `home`, inside the namespace, `input` on stdin, then
/// (for a handshake) the `reply` line. `adjust` changes the command before it starts.
pub fn execute(
    netns: &Netns,
    home: &Path,
    program: &Path,
    input: &[u8],
    reply: Option<&str>,
    adjust: impl FnOnce(&mut Command),
) -> Execution {
    let mut cmd = netns.command(program);
    netns.clean_env(&mut cmd);
    cmd.current_dir(home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    adjust(&mut cmd);
    let mut child = cmd.spawn().expect("spawn the active response");
    let mut stdin = Some(child.stdin.take().expect("stdin"));
    // A program that refuses early may close its stdin first: that is not the test's failure.
    if let Some(pipe) = stdin.as_mut() {
        let _ = pipe.write_all(input).and_then(|()| pipe.flush());
    }
    if !input.ends_with(b"\n") {
        // Without a newline the program waits for more or for the end: give it the end.
        stdin = None;
    }
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let watchdog = Watchdog::start(child.id());
    stdout.read_line(&mut line).expect("read stdout");
    watchdog.stop();
    let check_keys = (!line.is_empty()).then(|| line.clone());
    if let (Some(_), Some(reply), Some(pipe)) = (&check_keys, reply, stdin.as_mut()) {
        pipe.write_all(format!("{reply}\n").as_bytes())
            .expect("reply");
    }
    drop(stdin);
    Execution {
        check_keys,
        code: wait_bounded(&mut child),
    }
}

/// How long one execution may take before the test kills it and fails.
const EXECUTION_LIMIT: Duration = Duration::from_secs(30);

/// Kills a program that neither writes nor exits, so a hang fails the test instead of
/// stalling it. The child is not reaped while the watchdog runs, so its pid cannot be reused.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    fn start(pid: u32) -> Watchdog {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if wait.recv_timeout(EXECUTION_LIMIT) == Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            {
                let pid = libc::pid_t::try_from(pid).unwrap_or(0);
                // SAFETY: plain kill(2) on our own unreaped child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        Watchdog { done, thread }
    }

    fn stop(self) {
        let _ = self.done.send(());
        let _ = self.thread.join();
    }
}

fn wait_bounded(child: &mut std::process::Child) -> Option<i32> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        if start.elapsed() > EXECUTION_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the active response did not exit within {EXECUTION_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
