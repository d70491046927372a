//! Reporting attackers back to AbuseIPDB, within its rules and without leaking anything of
//! ours.
//!
//! A [`Reporter`] is the one way a report leaves the host, for every command: `repute report`
//! by hand, `repute watch` for the addresses it bans ([`Reporter::report_ban_as`], with the
//! decision step's categories), and the
//! Wazuh active response with `--report`. In order, it refuses an address that is not public,
//! allowlisted, one of this host's own or the SSH session's peer (the block safety checks,
//! [`crate::block::safety`]); refuses in dry-run; refuses while the report endpoint's quota
//! is known to be spent; claims the address in the [`ledger`] so that one report per address
//! per [`REPORT_INTERVAL`] leaves, whichever process, restart or host asks; sends; and
//! records the answer. AbuseIPDB's duplicate 429 counts as "already reported" and is never
//! retried. Every outcome, sent or not, is one JSON line in the [`audit`] log, with the
//! comment.
//!
//! The comment of a ban report is built by [`comment`] from [`evidence`] counts (never log
//! text); a comment given by hand is sent as given, cut to 1,024 characters. [`categories`]
//! holds AbuseIPDB's category list; [`settings`] the `[report]` section.
//!
//! `watch` must not call [`Reporter::report_ban_as`] for a ban it restores after a restart: the
//! ledger would refuse it within 15 minutes anyway, but later it would be a second report of
//! an old attack.

pub mod audit;
pub mod categories;
pub mod comment;
pub mod evidence;
pub mod ledger;
pub mod settings;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;

pub use categories::{Category, CategoryError, parse_categories};
pub use comment::{Redaction, build_comment, cap_comment};
pub use evidence::Evidence;
pub use ledger::{Claim, LedgerError, Mark, ReportLedger, SqliteLedger};
pub use settings::ReportSettings;

use crate::block::safety::{Refusal, SafetyPolicy};
use crate::config::Config;
use crate::quota::QuotaState;
use crate::reputation::{AbuseIpdb, ApiError};
use audit::{AuditEntry, AuditLog};

/// AbuseIPDB's rule: one report of an address per 15 minutes (per account).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// An attack older than this is reported without its time: AbuseIPDB is said to refuse
/// timestamps more than about two months old (third-party claim, not verified).
const MAX_TIMESTAMP_AGE: Duration = Duration::from_secs(30 * 86_400);

/// What to report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    pub categories: Vec<Category>,
    /// Sent as given, cut to 1,024 characters; `None` or empty sends none.
    pub comment: Option<String>,
    /// When the attack started (AbuseIPDB's `timestamp`); `None` means now.
    pub timestamp: Option<Timestamp>,
}

/// Why an address was not reported, though nothing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReported {
    /// Not public, allowlisted, ours, or the SSH session's peer.
    Refused(Refusal),
    /// We reported it at `at` (Unix seconds); no new report before `until`.
    RecentlyReported { at: i64, until: i64 },
    /// Another process is reporting it right now.
    InProgress,
    /// AbuseIPDB answered that it was reported within the last 15 minutes.
    AlreadyReported,
    /// The report endpoint's daily quota is spent, until then (Unix seconds) when known.
    QuotaSpent { until: Option<i64> },
    /// A dry run sends nothing.
    DryRun,
    /// The evidence holds no attack, so there is nothing to report.
    NoEvidence,
}

impl NotReported {
    /// A short stable code for logs and JSON.
    pub fn code(&self) -> &'static str {
        match self {
            NotReported::Refused(Refusal::NotPublic(_)) => "not-public",
            NotReported::Refused(Refusal::Allowlisted(_)) => "allowlisted",
            NotReported::Refused(_) => "own-address",
            NotReported::RecentlyReported { .. } => "reported-recently",
            NotReported::InProgress => "in-progress",
            NotReported::AlreadyReported => "already-reported",
            NotReported::QuotaSpent { .. } => "quota-spent",
            NotReported::DryRun => "dry-run",
            NotReported::NoEvidence => "no-evidence",
        }
    }
}

impl fmt::Display for NotReported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReported::Refused(r) => write!(f, "{r}"),
            NotReported::RecentlyReported { at, until } => write!(
                f,
                "reported at {} by this host; AbuseIPDB takes one report per 15 minutes, next one from {}",
                rfc3339(*at),
                rfc3339(*until)
            ),
            NotReported::InProgress => f.write_str("another process is reporting it right now"),
            NotReported::AlreadyReported => {
                f.write_str("AbuseIPDB says it was already reported in the last 15 minutes")
            }
            NotReported::QuotaSpent { until: Some(t) } => {
                write!(f, "the daily report quota is spent until {}", rfc3339(*t))
            }
            NotReported::QuotaSpent { until: None } => {
                f.write_str("the daily report quota is spent")
            }
            NotReported::DryRun => f.write_str("dry run"),
            NotReported::NoEvidence => f.write_str("no failed login or probe in the evidence"),
        }
    }
}

/// A report that could not be made for a reason other than the rules.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Ledger(#[from] LedgerError),
    #[error("AbuseIPDB: {0}")]
    Api(#[from] ApiError),
    #[error("listing this host's addresses: {0}")]
    HostAddresses(std::io::Error),
    #[error("a report needs at least one category")]
    NoCategory,
}

/// What became of one report.
#[derive(Debug)]
pub enum ReportOutcome {
    /// Sent and accepted; `score` is the address's score after it.
    Reported {
        score: u64,
        comment: Option<String>,
    },
    NotReported(NotReported),
    Failed(ReportError),
}

impl ReportOutcome {
    pub fn is_reported(&self) -> bool {
        matches!(self, ReportOutcome::Reported { .. })
    }
}

/// Sends reports within AbuseIPDB's rules; see the module documentation.
pub struct Reporter {
    client: AbuseIpdb,
    ledger: Box<dyn ReportLedger>,
    safety: SafetyPolicy,
    redaction: Redaction,
    audit: AuditLog,
    /// Refuse everything (and audit what would have been sent).
    pub dry_run: bool,
    /// The command reporting, for the audit log.
    by: &'static str,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("client", &self.client)
            .field("dry_run", &self.dry_run)
            .field("by", &self.by)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// The reporter the settings describe: the AbuseIPDB client, the ledger in the store
    /// file, this host's safety policy and names, the audit log. `by` names the command.
    pub fn for_config(config: &Config, by: &'static str) -> Result<Reporter, ReportError> {
        let safety = SafetyPolicy::for_this_host(config.allowlist.clone())
            .map_err(ReportError::HostAddresses)?;
        let redaction = Redaction::for_config(config);
        let ledger: Box<dyn ReportLedger> = match &config.cache {
            crate::config::StoreSetting::Redis(target) => {
                Box::new(crate::fleet::RedisLedger::new(target.clone()))
            }
            _ => Box::new(SqliteLedger::open(&config.store_path())?),
        };
        let audit = AuditLog::new(config.report.audit_target(&config.state_dir));
        Ok(Reporter::from_parts(
            AbuseIpdb::from_config(config),
            ledger,
            safety,
            redaction,
            audit,
            by,
        ))
    }

    pub fn from_parts(
        client: AbuseIpdb,
        ledger: Box<dyn ReportLedger>,
        safety: SafetyPolicy,
        redaction: Redaction,
        audit: AuditLog,
        by: &'static str,
    ) -> Reporter {
        Reporter {
            client,
            ledger,
            safety,
            redaction,
            audit,
            dry_run: false,
            by,
        }
    }

    /// The request a ban on `evidence` makes: the categories it supports, the comment built
    /// from it, and its first attack as the time (when recent).
    pub fn ban_request(&self, evidence: &Evidence) -> ReportRequest {
        let comment = build_comment(evidence, &self.redaction);
        let now = Timestamp::now();
        let timestamp = evidence.first.filter(|t| {
            let age = now.as_second() - t.as_second();
            (0..=MAX_TIMESTAMP_AGE.as_secs() as i64).contains(&age)
        });
        ReportRequest {
            categories: evidence.categories(),
            comment: (!comment.is_empty()).then_some(comment),
            timestamp,
        }
    }

    /// Reports a banned address on its evidence, with the categories the evidence gives.
    pub fn report_ban(&self, ip: IpAddr, evidence: &Evidence) -> ReportOutcome {
        self.report_ban_as(ip, &self.ban_request(evidence))
    }

    /// Reports a ban as `request` says (`repute watch`: its categories the decision step's);
    /// with no category it is not reported (no evidence).
    pub fn report_ban_as(&self, ip: IpAddr, request: &ReportRequest) -> ReportOutcome {
        if request.categories.is_empty() {
            return self.finish(
                ip,
                request,
                ReportOutcome::NotReported(NotReported::NoEvidence),
            );
        }
        self.report(ip, request)
    }

    /// Reports `ip` as `request` says, within the rules (see the module documentation).
    pub fn report(&self, ip: IpAddr, request: &ReportRequest) -> ReportOutcome {
        let request = ReportRequest {
            comment: request
                .comment
                .as_deref()
                .map(cap_comment)
                .filter(|c| !c.is_empty()),
            ..request.clone()
        };
        let outcome = self.attempt(ip.to_canonical(), &request);
        self.finish(ip, &request, outcome)
    }

    fn attempt(&self, ip: IpAddr, request: &ReportRequest) -> ReportOutcome {
        use ReportOutcome::{Failed, NotReported as Not};
        if let Err(refusal) = self.safety.check(ip) {
            return Not(NotReported::Refused(refusal));
        }
        if request.categories.is_empty() {
            return Failed(ReportError::NoCategory);
        }
        if self.dry_run {
            return Not(NotReported::DryRun);
        }
        let now = Timestamp::now().as_second();
        match self.ledger.quota() {
            Ok(Some(q)) if q.blocked_at(now).is_some() => {
                return Not(NotReported::QuotaSpent {
                    until: q.blocked_at(now),
                });
            }
            Ok(_) => {}
            Err(e) => return Failed(e.into()),
        }
        let holder = holder();
        // A claim outlives the longest call, so it never lapses while its holder still waits.
        let hold = self.client.settings().timeout.as_secs() as i64 + 30;
        match self.ledger.claim(ip, &holder, now, hold) {
            Ok(Claim::Granted) => {}
            Ok(Claim::Held(Mark::Reported { at, until })) => {
                return Not(NotReported::RecentlyReported { at, until });
            }
            Ok(Claim::Held(Mark::Pending { .. })) => return Not(NotReported::InProgress),
            Err(e) => return Failed(e.into()),
        }
        let ids: Vec<u16> = request
            .categories
            .iter()
            .map(|c| u16::from(c.id()))
            .collect();
        let sent = self
            .client
            .report(ip, &ids, request.comment.as_deref(), request.timestamp);
        let now = Timestamp::now().as_second();
        let window = REPORT_INTERVAL.as_secs() as i64;
        match sent {
            Ok(answer) => {
                if let Some(state) = QuotaState::from_rate(&answer.rate, now) {
                    self.keep_quota(&state);
                }
                if let Err(e) = self.ledger.settle(ip, &holder, now, now + window) {
                    tracing::warn!(%ip, error = %e, "reported, but the mark could not be stored");
                }
                if let Err(e) = self.ledger.count_sent(now) {
                    tracing::warn!(error = %e, "reported, but the day's count could not be stored");
                }
                ReportOutcome::Reported {
                    score: answer.abuse_confidence_score,
                    comment: request.comment.clone(),
                }
            }
            Err(ApiError::DuplicateReport { .. }) => {
                // Someone (an earlier run of ours, most likely) reported it within 15
                // minutes: remember that as a report of ours, so nothing asks again.
                if let Err(e) = self.ledger.settle(ip, &holder, now, now + window) {
                    tracing::warn!(%ip, error = %e, "could not store the duplicate mark");
                }
                Not(NotReported::AlreadyReported)
            }
            Err(ApiError::QuotaExhausted { retry_at, .. }) => {
                self.release(ip, &holder);
                let previous = self.ledger.quota().ok().flatten();
                let state = QuotaState::exhausted(previous, retry_at, now);
                self.keep_quota(&state);
                Not(NotReported::QuotaSpent {
                    until: state.blocked_until,
                })
            }
            Err(e) => {
                self.release(ip, &holder);
                Failed(e.into())
            }
        }
    }

    fn keep_quota(&self, state: &QuotaState) {
        if let Err(e) = self.ledger.record_quota(state) {
            tracing::warn!(error = %e, "could not record the report quota");
        }
    }

    fn release(&self, ip: IpAddr, holder: &str) {
        if let Err(e) = self.ledger.release(ip, holder) {
            tracing::warn!(%ip, error = %e, "could not release the report claim");
        }
    }

    /// Writes the audit line of `outcome` and hands it back.
    fn finish(&self, ip: IpAddr, request: &ReportRequest, outcome: ReportOutcome) -> ReportOutcome {
        let (action, reason, reason_code, score) = match &outcome {
            ReportOutcome::Reported { score, .. } => ("reported", None, None, Some(*score)),
            ReportOutcome::NotReported(why) => {
                let action = match why {
                    NotReported::AlreadyReported => "already_reported",
                    _ => "not_reported",
                };
                (action, Some(why.to_string()), Some(why.code()), None)
            }
            ReportOutcome::Failed(e) => ("failed", Some(e.to_string()), Some("error"), None),
        };
        self.audit.write(&AuditEntry {
            time: Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ip,
            action,
            reason,
            reason_code,
            categories: request.categories.iter().map(|c| c.id()).collect(),
            comment: request.comment.as_deref(),
            score,
            by: self.by,
            dry_run: self.dry_run,
        });
        outcome
    }
}

/// A claim holder name unique to this call: process id and a fine clock reading.
fn holder() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

fn rfc3339(secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reporter_can_be_shared_between_threads() {
        // `watch` holds one reporter for all its workers.
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Reporter>();
    }

    #[test]
    fn every_refusal_has_its_own_code() {
        let reasons = [
            NotReported::Refused(Refusal::NotPublic(crate::addr::AddrClass::Private)),
            NotReported::Refused(Refusal::Allowlisted(ipnet::IpNet::default())),
            NotReported::Refused(Refusal::OwnAddress),
            NotReported::RecentlyReported { at: 0, until: 900 },
            NotReported::InProgress,
            NotReported::AlreadyReported,
            NotReported::QuotaSpent { until: None },
            NotReported::DryRun,
            NotReported::NoEvidence,
        ];
        let codes: std::collections::HashSet<&str> = reasons.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), reasons.len());
        assert_eq!(
            NotReported::RecentlyReported { at: 0, until: 900 }.to_string(),
            "reported at 1970-01-01T00:00:00Z by this host; AbuseIPDB takes one report per 15 minutes, next one from 1970-01-01T00:15:00Z"
        );
    }
}
