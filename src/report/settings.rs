//! The `[report]` section of the settings file.
//!
//! ```toml
//! [report]
//! enabled = true          # `repute watch` reports the addresses it bans (off by default)
//! user_names = false      # list vetted user names tried in comments (off by default)
//! host_names = ["bastion.example.org"]  # more names of this host never to share
//! audit_log = "/var/lib/repute/report-audit.jsonl"  # or "-" for stderr
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The audit log's file name in the state directory, when `audit_log` is not set.
pub const AUDIT_FILE_NAME: &str = "report-audit.jsonl";

/// Reporting settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// `repute watch` (and `active-response --report`) report bans. `repute report` by hand
    /// does not need it.
    #[serde(default)]
    pub enabled: bool,
    /// List user names tried (never ones that exist here) in built comments.
    #[serde(default)]
    pub user_names: bool,
    /// Names of this host besides `gethostname`'s, kept out of comments.
    #[serde(default)]
    pub host_names: Vec<String>,
    /// Where each report or refusal is logged as one JSON line; `-` is stderr.
    pub audit_log: Option<PathBuf>,
}

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    File(PathBuf),
    Stderr,
}

impl ReportSettings {
    /// The audit target: `audit_log`, else [`AUDIT_FILE_NAME`] in `state_dir`.
    pub fn audit_target(&self, state_dir: &Path) -> AuditTarget {
        match &self.audit_log {
            Some(p) if p.as_os_str() == "-" => AuditTarget::Stderr,
            Some(p) => AuditTarget::File(p.clone()),
            None => AuditTarget::File(state_dir.join(AUDIT_FILE_NAME)),
        }
    }
}
