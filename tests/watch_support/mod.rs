//! A running `repute watch` for the tests: its stdout read line by line on a thread, waits
//! that are always bounded, and a clean SIGTERM stop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long a test waits for something watch does by itself: generous, never a measurement.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
}

impl Running {
    /// Takes over a child spawned with `stdout(Stdio::piped())`.
    pub fn new(mut child: Child) -> Running {
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Lines that arrived since the last call, without waiting.
    pub fn drain(&mut self) -> Vec<String> {
        let fresh: Vec<String> = self.lines.try_iter().collect();
        self.seen.extend(fresh.iter().cloned());
        fresh
    }

    /// Waits (bounded by [`WAIT`]) for a JSON line matching `pred`; returns it.
    pub fn wait_json(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let left = WAIT.saturating_sub(start.elapsed());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                        && pred(&v)
                    {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("watch ended before {what}; output: {:?}", self.seen)
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "timed out waiting for {what}; output so far: {:?}",
                self.seen
            );
        }
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if start.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!("watch did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread ends at EOF; take what it read.
        let until = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .lines
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends lines to a file, as a logger would.
pub fn append(path: &std::path::Path, lines: &[String]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    for line in lines {
        writeln!(f, "{line}").expect("append");
    }
}

/// An sshd failure line (syslog stamp).
pub fn failure(ip: &str, user: &str, pid: u32) -> String {
    format!(
        "Nov 30 06:00:00 web1 sshd[{pid}]: Failed password for invalid user {user} from {ip} port 50022 ssh2"
    )
}
