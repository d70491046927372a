//! `repute wazuh active-response --report`: after blocking, report the address to AbuseIPDB on
//! the evidence the alert carries.
//!
//! The alert's attempt ([`Message::attempt`]: its `full_log` read as an sshd line, a whole
//! syslog line or a bare message) is the evidence, and the report goes through the library's
//! `Reporter` like any other: the same refusals, the 15-minute mark in the store (execd runs one process per alert, so a storm of alerts
//! from one address makes one report), the comment built from counts, one audit line. No
//! sshd evidence in the alert, no report. The outcome is one line of the active-response log.

use std::net::IpAddr;

use repute::config::Config;
use repute::report::{Evidence, ReportOutcome, Reporter};
use repute::wazuh::active_response::{ArLog, Message};

/// Reports `ip` on the evidence of `message`'s alert, and logs what became of it.
pub fn report_blocked(log: &ArLog, config: &Config, message: &Message, ip: IpAddr) {
    let evidence = alert_evidence(message, ip);
    let line = match Reporter::for_config(config, "active-response") {
        Err(e) => format!("Not reported {ip}: {e}"),
        Ok(reporter) => match reporter.report_ban(ip, &evidence) {
            ReportOutcome::Reported { score, .. } => {
                format!("Reported {ip} to AbuseIPDB (score now {score})")
            }
            ReportOutcome::NotReported(why) => format!("Not reported {ip}: {why}"),
            ReportOutcome::Failed(e) => format!("Not reported {ip}: {e}"),
        },
    };
    log.log(&line);
}

/// The attempt in the alert's log, when it is an sshd line from `ip` (an alert of another
/// kind is no evidence of an SSH attack).
fn alert_evidence(message: &Message, ip: IpAddr) -> Evidence {
    let mut evidence = Evidence::new();
    if let Some(attempt) = message.attempt().filter(|a| {
        a.kind != repute::Kind::WazuhAlert
            && a.srcip.map(|s| s.to_canonical()) == Some(ip.to_canonical())
    }) {
        evidence.add_attempt(&attempt);
    }
    evidence
}
