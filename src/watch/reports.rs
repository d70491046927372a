//! Watch's reports to AbuseIPDB (`[report] enabled = true`): the evidence of each attacking
//! address kept as counts ([`crate::report::Evidence`], never log text), and each NEW ban reported
//! on a thread of its own, so that the API's latency never holds up reading and deciding.
//!
//! Only bans the policy decides here are reported: a ban restored after a restart, or one
//! enforced from the fleet's decisions, never is (the ledger would also refuse a repeat
//! within 15 minutes, whichever host asks). A dry run builds no reporter at all.
//! Every outcome comes back to the main loop as one `{"decision":"report",…}` record.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use serde::Serialize;

use crate::report::{Evidence, ReportOutcome, Reporter};
use crate::sshd::AttemptRef;

/// Addresses whose evidence is kept; past that the oldest is forgotten (its ban is then
/// reported as "no evidence" rather than memory growing with an attacker's addresses).
pub const MAX_EVIDENCE: usize = 10_000;

/// What became of one report, for the `{"decision":"report",…}` record.
#[derive(Debug, Serialize)]
pub struct Done {
    pub address: IpAddr,
    pub reported: bool,
    pub categories: Vec<u8>,
    /// The comment sent (or that would have been).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Why it was not reported (`reported-recently`, `no-evidence`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_reported: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The evidence kept and the reporting thread.
pub struct Reports {
    evidence: HashMap<IpAddr, Evidence>,
    order: VecDeque<IpAddr>,
    to_send: Option<Sender<(IpAddr, Evidence)>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

impl Reports {
    pub fn start(reporter: Reporter) -> Reports {
        let (to_send, jobs) = channel::<(IpAddr, Evidence)>();
        let (done_tx, done) = channel();
        let thread = std::thread::spawn(move || {
            for (ip, evidence) in jobs {
                let request = reporter.ban_request(&evidence);
                let categories = request.categories.iter().map(|c| c.id()).collect();
                let outcome = reporter.report_ban(ip, &evidence);
                let mut result = Done {
                    address: ip,
                    reported: outcome.is_reported(),
                    categories,
                    comment: request.comment,
                    not_reported: None,
                    error: None,
                };
                match outcome {
                    ReportOutcome::Reported { comment, .. } => result.comment = comment,
                    ReportOutcome::NotReported(why) => result.not_reported = Some(why.code()),
                    ReportOutcome::Failed(e) => {
                        tracing::warn!(%ip, error = %e, "report failed");
                        result.error = Some(e.to_string());
                    }
                }
                if done_tx.send(result).is_err() {
                    return;
                }
            }
        });
        Reports {
            evidence: HashMap::new(),
            order: VecDeque::new(),
            to_send: Some(to_send),
            done,
            thread: Some(thread),
        }
    }

    /// Counts one event of a public address into its evidence.
    pub fn observe(&mut self, ip: IpAddr, event: &AttemptRef<'_>) {
        if !self.evidence.contains_key(&ip) {
            if self.evidence.len() >= MAX_EVIDENCE
                && let Some(oldest) = self.order.pop_front()
            {
                self.evidence.remove(&oldest);
            }
            self.order.push_back(ip);
        }
        self.evidence.entry(ip).or_default().add_event(event);
    }

    /// Reports a new ban of `ip` on the evidence gathered so far (which is then dropped:
    /// a later ban is reported on what came after).
    pub fn report(&mut self, ip: IpAddr) {
        let evidence = self.evidence.remove(&ip).unwrap_or_default();
        self.order.retain(|a| *a != ip);
        if let Some(tx) = &self.to_send {
            let _ = tx.send((ip, evidence));
        }
    }

    /// Reports finished since the last call.
    pub fn finished(&self) -> Vec<Done> {
        self.done.try_iter().collect()
    }

    /// Waits for the reports already handed over (at a clean stop) and returns them.
    pub fn finish(&mut self) -> Vec<Done> {
        self.to_send = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.done.try_iter().collect()
    }
}
