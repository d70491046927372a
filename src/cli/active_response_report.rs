//! `repute wazuh active-response --report`: after blocking, report the address to AbuseIPDB on
//! the evidence the alert carries.
//!
//! The alert's attempt (`Message::attempt`: its `full_log` read as an sshd line, a whole
//! syslog line or a bare message) is the evidence, the categories are the decision step's
//! (`policy::decide`, from that evidence), and the report goes through the library's
//! `Reporter` like any other: the same refusals, the 15-minute mark in the store (execd runs one process per alert, so a storm of alerts
//! from one address makes one report), the comment built from counts, one audit line. No
//! sshd evidence in the alert, no report. The outcome is one line of the active-response log.

use std::net::IpAddr;

use repute::config::Config;
use repute::report::{Category, Evidence, ReportOutcome, Reporter};
use repute::wazuh::active_response::ArLog;

/// Reports `ip` with the `categories` the decision step gave, on the alert's `evidence`
/// (the comment and time come from it), and logs what became of it. No category (the
/// alert's log was no sshd attack from `ip`), no report.
pub fn report_blocked(
    log: &ArLog,
    config: &Config,
    ip: IpAddr,
    evidence: &Evidence,
    categories: Vec<Category>,
) {
    let line = match Reporter::for_config(config, "active-response") {
        Err(e) => format!("Not reported {ip}: {e}"),
        Ok(reporter) => {
            let request = repute::report::ReportRequest {
                categories,
                ..reporter.ban_request(evidence)
            };
            match reporter.report_ban_as(ip, &request) {
                ReportOutcome::Reported { score, .. } => {
                    format!("Reported {ip} to AbuseIPDB (score now {score})")
                }
                ReportOutcome::NotReported(why) => format!("Not reported {ip}: {why}"),
                ReportOutcome::Failed(e) => format!("Not reported {ip}: {e}"),
            }
        }
    };
    log.log(&line);
}
