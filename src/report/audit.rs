//! The audit log: one JSON line per report or refusal, with the comment that was (or would
//! have been) sent, so an administrator can see exactly what left the host.
//!
//! The default is a file in the state directory (`report-audit.jsonl`), appended with
//! `O_APPEND` in one write per line so that processes sharing it never interleave lines;
//! `audit_log = "-"` sends the lines to stderr instead. A line that cannot be written to
//! the file goes to stderr, so none is lost silently. The API key is never part of a line.

use std::io::Write;
use std::net::IpAddr;

use serde::Serialize;

use super::settings::AuditTarget;

/// One audited decision.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry<'a> {
    /// RFC 3339, UTC.
    pub time: String,
    pub ip: IpAddr,
    /// `reported`, `already_reported`, `not_reported`, `failed`.
    pub action: &'a str,
    /// Why it was not reported (or why it failed); absent when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The same, as a stable code (`not-public`, `reported-recently`, `quota-spent`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<&'a str>,
    pub categories: Vec<u8>,
    /// The comment sent, or that would have been sent.
    pub comment: Option<&'a str>,
    /// The score AbuseIPDB answered, when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<u64>,
    /// The command that reported (`report`, `watch`, `active-response`).
    pub by: &'a str,
    pub dry_run: bool,
}

/// Where audit lines are written.
#[derive(Debug, Clone)]
pub struct AuditLog {
    target: AuditTarget,
}

impl AuditLog {
    pub fn new(target: AuditTarget) -> Self {
        AuditLog { target }
    }

    /// Writes one line; a file that cannot be written is said on stderr with the line.
    pub fn write(&self, entry: &AuditEntry<'_>) {
        let mut line = serde_json::to_string(entry).unwrap_or_default();
        line.push('\n');
        match &self.target {
            AuditTarget::Stderr => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            AuditTarget::File(path) => {
                if let Err(e) = append(path, line.as_bytes()) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot write the report audit log");
                    let _ = std::io::stderr().write_all(line.as_bytes());
                }
            }
        }
    }
}

fn append(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(crate::store::FILE_MODE)
        .open(path)?;
    file.write_all(bytes)
}
