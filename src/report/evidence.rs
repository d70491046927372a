//! What one address did, kept as counts: the only thing a report comment is built from.
//!
//! The counts are of *attempts*, as [`crate::sshd::connection`] counts them, not of log
//! lines: one try described by five PAM and sshd lines counts once, and a login that ends
//! tries of several user names counts each.
//!
//! Log lines are never kept, so no host name, address or message text can leak into a report
//! through them. Memory is bounded whatever the attacker sends: at most
//! [`MAX_USERS_TRACKED`] distinct user names (each cut to [`MAX_USER_CHARS`]), a few host
//! names, one counter per message kind.

use std::collections::{BTreeSet, HashMap};

use jiff::Timestamp;

use super::categories::Category;
use crate::attempt::{Attempt, Kind, Outcome};
use crate::sshd::AttemptRef;

/// Distinct user names remembered; beyond it the count is a lower bound.
pub const MAX_USERS_TRACKED: usize = 1000;
/// User names are kept cut to this many characters (longer ones are never shared anyway).
pub const MAX_USER_CHARS: usize = 64;
/// Host names (of this host, as its logs name it) remembered, to keep them out of comments.
const MAX_HOSTS: usize = 16;

/// The evidence against one address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// Failed login attempts (passwords, invalid users, PAM failures, …).
    pub failures: u64,
    /// Pre-authentication probes (scans, aborted handshakes, timeouts).
    pub probes: u64,
    /// Attempts per message kind and outcome (failure or probe): the kind of the line that
    /// counted each attempt.
    kinds: HashMap<(Kind, Outcome), u64>,
    tried: BTreeSet<String>,
    tried_overflow: bool,
    /// Names that logged in: they exist here, so they are never shared.
    accepted: BTreeSet<String>,
    hosts: BTreeSet<String>,
    /// First and last attack seen.
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl Evidence {
    pub fn new() -> Self {
        Evidence::default()
    }

    /// Adds one attempt without connection context (a Wazuh alert): an attack counts once.
    pub fn add_attempt(&mut self, attempt: &Attempt) {
        self.add(
            attempt.time,
            attempt.host.as_deref(),
            attempt.kind,
            attempt.outcome,
            attempt.user.as_deref(),
            u32::from(attempt.outcome.is_attack()),
        );
    }

    /// Adds one parsed line with the attempts its connection gives it (`event.attempts`: 0
    /// for a line repeating a try another line counted).
    pub fn add_event(&mut self, event: &AttemptRef<'_>) {
        self.add(
            event.time,
            event.host,
            event.kind,
            event.outcome,
            event.user,
            event.attempts,
        );
    }

    /// Adds one line by its parts: `attempts` tries of `kind` (a failure or a probe adds to
    /// the counts only that many; its user name and time are kept even at 0, since the try
    /// was counted by another line of it).
    pub fn add(
        &mut self,
        time: Option<Timestamp>,
        host: Option<&str>,
        kind: Kind,
        outcome: Outcome,
        user: Option<&str>,
        attempts: u32,
    ) {
        if let Some(host) = host.filter(|h| !h.is_empty())
            && self.hosts.len() < MAX_HOSTS
        {
            self.hosts.insert(cut(host));
        }
        let attempts = u64::from(attempts);
        match outcome {
            Outcome::Failure => self.failures += attempts,
            Outcome::Probe => self.probes += attempts,
            Outcome::Success => {
                if let Some(user) = user
                    && self.accepted.len() < MAX_USERS_TRACKED
                {
                    self.accepted.insert(cut(user));
                }
                return;
            }
            Outcome::Info => return,
        }
        if attempts > 0 {
            *self.kinds.entry((kind, outcome)).or_default() += attempts;
        }
        if let Some(user) = user {
            let user = cut(user);
            if self.tried.len() < MAX_USERS_TRACKED {
                self.tried.insert(user);
            } else if !self.tried.contains(&user) {
                self.tried_overflow = true;
            }
        }
        if let Some(t) = time {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
    }

    /// Failed login attempts plus probes.
    pub fn attacks(&self) -> u64 {
        self.failures + self.probes
    }

    /// The categories the evidence supports: failed logins are SSH brute force (18, 22);
    /// probes alone are a port scan of SSH (14, 22); nothing hostile, none.
    pub fn categories(&self) -> Vec<Category> {
        if self.failures > 0 {
            vec![Category::BRUTE_FORCE, Category::SSH]
        } else if self.probes > 0 {
            vec![Category::PORT_SCAN, Category::SSH]
        } else {
            Vec::new()
        }
    }

    /// The kinds of the attacks with `outcome` (failure or probe) and their counts, most
    /// frequent first (ties by name).
    pub fn kinds(&self, outcome: Outcome) -> Vec<(Kind, u64)> {
        let mut kinds: Vec<(Kind, u64)> = self
            .kinds
            .iter()
            .filter(|((_, o), _)| *o == outcome)
            .map(|((k, _), n)| (*k, *n))
            .collect();
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
        kinds
    }

    /// Distinct user names tried in attacks (a lower bound when [`Evidence::users_overflow`]).
    pub fn users_tried(&self) -> impl Iterator<Item = &str> {
        self.tried.iter().map(String::as_str)
    }

    pub fn users_tried_count(&self) -> usize {
        self.tried.len()
    }

    pub fn users_overflow(&self) -> bool {
        self.tried_overflow
    }

    /// Names that logged in from this address.
    pub fn accepted_users(&self) -> impl Iterator<Item = &str> {
        self.accepted.iter().map(String::as_str)
    }

    /// The host names the events carried (this host's, as its logs name it).
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(String::as_str)
    }
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_USER_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_make_brute_force_and_probes_alone_a_port_scan() {
        let mut e = Evidence::new();
        assert!(e.categories().is_empty());
        e.add(None, None, Kind::ConnClosedPreauth, Outcome::Probe, None, 1);
        assert_eq!(e.categories(), vec![Category::PORT_SCAN, Category::SSH]);
        e.add(
            None,
            None,
            Kind::InvalidUser,
            Outcome::Failure,
            Some("x"),
            1,
        );
        assert_eq!(e.categories(), vec![Category::BRUTE_FORCE, Category::SSH]);
        // A success or a disconnect is no attack.
        let mut quiet = Evidence::new();
        quiet.add(
            None,
            None,
            Kind::Accepted,
            Outcome::Success,
            Some("alice"),
            0,
        );
        quiet.add(None, None, Kind::Disconnected, Outcome::Info, None, 0);
        assert!(quiet.categories().is_empty());
        assert_eq!(quiet.accepted_users().collect::<Vec<_>>(), ["alice"]);
    }

    #[test]
    fn user_names_are_bounded() {
        let mut e = Evidence::new();
        let long = "u".repeat(10_000);
        e.add(
            None,
            None,
            Kind::InvalidUser,
            Outcome::Failure,
            Some(&long),
            1,
        );
        assert_eq!(
            e.users_tried().next().map(|u| u.chars().count()),
            Some(MAX_USER_CHARS)
        );
        for i in 0..(MAX_USERS_TRACKED + 10) {
            let name = format!("user{i}");
            e.add(
                None,
                None,
                Kind::InvalidUser,
                Outcome::Failure,
                Some(&name),
                1,
            );
        }
        assert_eq!(e.users_tried_count(), MAX_USERS_TRACKED);
        assert!(e.users_overflow());
    }

    /// A try that sshd and PAM describe in several lines counts once: the counts are the
    /// connection's attempts, not lines (five lines made five "failed logins" before).
    #[test]
    fn a_try_of_several_lines_counts_once() {
        let mut parser = crate::sshd::Parser::new("2026-12-01T00:00:00Z".parse().expect("now"));
        let lines = [
            "Nov 30 05:01:10 web01 sshd[4001]: Invalid user oracle from 203.0.113.50 port 40000",
            "Nov 30 05:01:10 web01 sshd[4001]: pam_unix(sshd:auth): check pass; user unknown",
            "Nov 30 05:01:10 web01 sshd[4001]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50",
            "Nov 30 05:01:12 web01 sshd[4001]: Failed password for invalid user oracle from 203.0.113.50 port 40000 ssh2",
            "Nov 30 05:01:14 web01 sshd[4001]: Connection closed by invalid user oracle 203.0.113.50 port 40000 [preauth]",
        ];
        let mut e = Evidence::new();
        let mut attack_lines = 0;
        for line in lines {
            if let Some(event) = parser.parse_line_ref(line) {
                attack_lines += u32::from(event.outcome.is_attack());
                e.add_event(&event);
            }
        }
        assert!(attack_lines >= 3, "the lines are attacks: {attack_lines}");
        assert_eq!((e.failures, e.probes), (1, 0), "{e:?}");
        assert_eq!(e.attacks(), 1);
        assert_eq!(
            e.kinds(Outcome::Failure)
                .iter()
                .map(|(_, n)| n)
                .sum::<u64>(),
            1
        );
        assert_eq!(e.users_tried().collect::<Vec<_>>(), ["oracle"]);
    }
}
