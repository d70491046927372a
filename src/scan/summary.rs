//! Per-source aggregation of attempts: what `repute scan --format table` prints.
//!
//! A [`Summary`] is a bounded [`History`] of [`AddrSummary`] rows plus [`Totals`]. A row is
//! a [`Source`]: an IPv4 address, or an IPv6 prefix (a /64 unless [`Grouping`] says
//! otherwise), since one host owns a whole /64 and could otherwise make 2^64 rows. At most
//! `max_sources` rows are kept (the least active are dropped past that, and counted), and a
//! row's own detail is bounded too: how many distinct user names were tried is exact up to
//! [`MAX_USERS_TRACKED`] (kept as 8-byte fingerprints, not names), and only the first
//! [`USERS_SHOWN`] names are kept as text. So memory is flat whatever the input: a row costs
//! at most about 1.3 KiB (64 fingerprints and four 100-byte names; a few hundred bytes
//! typically), and there are at most `max_sources` rows.
//!
//! Summaries built by separate threads over separate parts of the input merge into one
//! ([`Summary::merge`]) in input order: positions, not merge order, decide which names were
//! tried first. Under the bound the result does not depend on the number of threads; past it,
//! which rows were dropped may.

use std::net::IpAddr;

use jiff::Timestamp;

use crate::addr::{self, AddrClass};
use crate::policy::history::{self, Activity, Grouping, History, Source};
use crate::sshd::AttemptRef;
use crate::{Attempt, Outcome};

/// Distinct user names counted per source; beyond it the count shows as a lower bound
/// (`64+`).
pub const MAX_USERS_TRACKED: usize = 64;

/// User names kept (and shown) per source, in the order first tried.
pub const USERS_SHOWN: usize = 4;

/// Longest user name kept, in bytes (cut at a character boundary). sshd itself logs at most
/// 100 bytes of a name, and the table shows fewer characters than that.
const USER_KEPT_BYTES: usize = 100;

/// The distinct user names one source tried: how many (exact up to [`MAX_USERS_TRACKED`]),
/// and the first [`USERS_SHOWN`] of them with the input position (byte offset) where each
/// was first tried, so that "first tried" means the same whatever order threads saw the
/// input in.
#[derive(Debug, Clone, Default)]
pub struct Users {
    /// Fingerprints of the distinct names seen, sorted, at most [`MAX_USERS_TRACKED`].
    seen: Vec<u64>,
    /// The fingerprint of the name added last: one connection's lines repeat its name, so
    /// 70 % of names on the benchmark file are answered by this alone.
    last: u64,
    /// The earliest names, earliest first, at most [`USERS_SHOWN`].
    first: Vec<(u64, Box<str>)>,
    overflow: bool,
}

impl Users {
    fn add(&mut self, user: &str, position: u64) {
        let print = history::fingerprint(user.as_bytes());
        if print == self.last && !self.seen.is_empty() {
            self.note_earlier(user, position);
            return;
        }
        self.last = print;
        match self.seen.binary_search(&print) {
            Ok(_) => self.note_earlier(user, position),
            Err(_) if self.seen.len() >= MAX_USERS_TRACKED => {
                self.overflow = true;
                self.note_earlier(user, position);
            }
            Err(at) => {
                // Most sources try one or two names: grow one at a time, not by four.
                self.seen.reserve_exact(1);
                self.seen.insert(at, print);
                self.note_first(user, position);
            }
        }
    }

    /// A name seen again: it only matters when it comes before a name kept, which input
    /// read in order never does.
    fn note_earlier(&mut self, user: &str, position: u64) {
        if self.first.last().is_some_and(|&(last, _)| position < last) {
            self.note_first(user, position);
        }
    }

    /// Keeps `user` among the first names if it is one of the earliest.
    fn note_first(&mut self, user: &str, position: u64) {
        if self.first.len() >= USERS_SHOWN
            && self.first.last().is_some_and(|&(last, _)| position >= last)
        {
            return;
        }
        let user = kept(user);
        match self.first.iter_mut().find(|(_, name)| **name == *user) {
            Some((at, _)) => *at = (*at).min(position),
            None => {
                self.first.reserve_exact(1);
                self.first.push((position, user.into()));
            }
        }
        self.first.sort_unstable();
        self.first.truncate(USERS_SHOWN);
    }

    fn shift_positions(&mut self, by: u64) {
        for (position, _) in &mut self.first {
            *position = position.saturating_add(by);
        }
    }

    fn merge(&mut self, other: Users) {
        for print in other.seen {
            match self.seen.binary_search(&print) {
                Ok(_) => {}
                Err(_) if self.seen.len() >= MAX_USERS_TRACKED => {
                    self.overflow = true;
                    break;
                }
                Err(at) => self.seen.insert(at, print),
            }
        }
        self.overflow |= other.overflow;
        for (position, user) in other.first {
            self.note_first(&user, position);
        }
    }

    /// How many distinct names were tried (a lower bound when [`Users::is_lower_bound`]).
    pub fn count(&self) -> usize {
        self.seen.len()
    }

    /// True when there were more than [`MAX_USERS_TRACKED`] and `count` is a lower bound.
    pub fn is_lower_bound(&self) -> bool {
        self.overflow
    }

    /// The first [`USERS_SHOWN`] names tried, in the order they were first tried.
    pub fn first_tried(&self) -> impl Iterator<Item = &str> {
        self.first.iter().map(|(_, user)| &**user)
    }
}

/// `user` cut to at most [`USER_KEPT_BYTES`] bytes at a character boundary.
fn kept(user: &str) -> &str {
    if user.len() <= USER_KEPT_BYTES {
        return user;
    }
    let mut end = USER_KEPT_BYTES;
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    &user[..end]
}

/// What one source (an address, or an IPv6 prefix) did.
#[derive(Debug, Clone)]
pub struct AddrSummary {
    /// What the row stands for: an address, or an IPv6 prefix.
    pub source: Source,
    /// The source's first address seen (the one `--enrich` looks up for a prefix).
    pub ip: IpAddr,
    /// The class of [`AddrSummary::ip`].
    pub class: AddrClass,
    /// Failures plus probes.
    pub attempts: u64,
    pub failures: u64,
    pub successes: u64,
    pub users: Users,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    /// Input positions of the first and the last event.
    first_at: u64,
    last_at: u64,
}

impl AddrSummary {
    fn new(source: Source, ip: IpAddr, at: u64) -> Self {
        let ip = addr::canonical(ip);
        AddrSummary {
            source,
            ip,
            class: addr::classify(ip),
            attempts: 0,
            failures: 0,
            successes: 0,
            users: Users::default(),
            first_seen: None,
            last_seen: None,
            first_at: at,
            last_at: at,
        }
    }

    /// `attempts`: what the line adds once its connection's other lines are accounted for
    /// (`sshd::connection`); a success after tries of other names adds failures too.
    fn add(
        &mut self,
        at: u64,
        outcome: Outcome,
        attempts: u32,
        user: Option<&str>,
        time: Option<Timestamp>,
    ) {
        let attempts = u64::from(attempts);
        self.attempts += attempts;
        match outcome {
            Outcome::Failure => self.failures += attempts,
            Outcome::Probe | Outcome::Info => {}
            Outcome::Success => {
                self.successes += 1;
                self.failures += attempts;
            }
        }
        if let (true, Some(user)) = (outcome.is_attack() || attempts > 0, user) {
            self.users.add(user, at);
        }
        if let Some(time) = time {
            self.seen_at(time, time);
        }
        self.last_at = self.last_at.max(at);
    }

    fn seen_at(&mut self, first: Timestamp, last: Timestamp) {
        self.first_seen = Some(self.first_seen.map_or(first, |t| t.min(first)));
        self.last_seen = Some(self.last_seen.map_or(last, |t| t.max(last)));
    }

    fn shift_positions(&mut self, by: u64) {
        self.first_at = self.first_at.saturating_add(by);
        self.last_at = self.last_at.saturating_add(by);
        self.users.shift_positions(by);
    }
}

impl Activity for AddrSummary {
    fn activity(&self) -> u64 {
        self.attempts
    }

    fn last_active(&self) -> u64 {
        self.last_at
    }

    fn merge(&mut self, other: AddrSummary) {
        self.attempts += other.attempts;
        self.failures += other.failures;
        self.successes += other.successes;
        self.users.merge(other.users);
        if let (Some(first), Some(last)) = (other.first_seen, other.last_seen) {
            self.seen_at(first, last);
        }
        if other.first_at < self.first_at {
            (self.ip, self.class, self.first_at) = (other.ip, other.class, other.first_at);
        }
        self.last_at = self.last_at.max(other.last_at);
    }
}

/// Counts over the whole input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Lines read, including skipped ones.
    pub lines: u64,
    /// Recognised sshd authentication events (any outcome).
    pub events: u64,
    /// Failures and probes.
    pub attacks: u64,
    /// Attacks whose line gave no address and no earlier line of the connection did.
    pub attacks_without_address: u64,
    /// Lines skipped because they are not UTF-8.
    pub invalid_utf8: u64,
    /// Lines skipped because they are longer than [`super::MAX_LINE`].
    pub overlong: u64,
}

impl Totals {
    fn merge(&mut self, other: Totals) {
        self.lines += other.lines;
        self.events += other.events;
        self.attacks += other.attacks;
        self.attacks_without_address += other.attacks_without_address;
        self.invalid_utf8 += other.invalid_utf8;
        self.overlong += other.overlong;
    }
}

/// Attempts per source, plus totals.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    rows: History<AddrSummary>,
    pub totals: Totals,
}

impl Summary {
    /// An empty summary grouping addresses by `grouping`, keeping at most `max_sources`
    /// rows.
    pub fn new(grouping: Grouping, max_sources: usize) -> Self {
        Summary {
            rows: History::new(grouping, max_sources),
            totals: Totals::default(),
        }
    }

    /// How addresses are grouped into rows.
    pub fn grouping(&self) -> Grouping {
        self.rows.grouping()
    }

    /// The most rows kept.
    pub fn max_sources(&self) -> usize {
        self.rows.max_sources()
    }

    /// Rows dropped (the least active) to stay within `max_sources`; their events still
    /// count in [`Summary::totals`].
    pub fn evicted(&self) -> u64 {
        self.rows.evicted()
    }

    /// Counts one recognised event found at input position `at` (any number that grows
    /// along the input: a byte offset, a line number).
    pub fn add(&mut self, at: u64, attempt: &Attempt) {
        let user = attempt.user.as_deref();
        let attempts = u32::from(attempt.outcome.is_attack());
        self.record(
            at,
            attempt.srcip,
            attempt.outcome,
            attempts,
            user,
            attempt.time,
        );
    }

    /// Counts one recognised event, borrowed from its line, as the attempts its connection
    /// logic gave it.
    pub fn add_event(&mut self, at: u64, event: &AttemptRef<'_>) {
        let (ip, outcome, attempts) = (event.srcip, event.outcome, event.attempts);
        self.record(at, ip, outcome, attempts, event.user, event.time);
    }

    fn record(
        &mut self,
        at: u64,
        srcip: Option<IpAddr>,
        outcome: Outcome,
        attempts: u32,
        user: Option<&str>,
        time: Option<Timestamp>,
    ) {
        self.totals.events += 1;
        let is_attack = outcome.is_attack();
        self.totals.attacks += u64::from(is_attack);
        match srcip {
            Some(ip) => self
                .rows
                .row(ip, |source, ip| AddrSummary::new(source, ip, at))
                .add(at, outcome, attempts, user, time),
            None => self.totals.attacks_without_address += u64::from(attempts > 0),
        }
    }

    /// Folds in the summary of another part of the input (in any order: positions, not
    /// merge order, decide which names were tried first).
    pub fn merge(&mut self, other: Summary) {
        self.totals.merge(other.totals);
        self.rows.merge(other.rows);
    }

    /// Moves every recorded position `by` further along the input (used to put a later
    /// input's summary after an earlier one's).
    pub fn shift_positions(&mut self, by: u64) {
        for row in self.rows.values_mut() {
            row.shift_positions(by);
        }
    }

    /// Sources that attacked (at least one failure or probe), most attempts first (then
    /// most failures, then by source, so the order is stable).
    pub fn attackers(&self, only_public: bool) -> Vec<&AddrSummary> {
        let mut rows: Vec<&AddrSummary> = self
            .rows
            .iter()
            .map(|(_, row)| row)
            .filter(|a| a.attempts > 0 && (!only_public || a.class.is_public()))
            .collect();
        rows.sort_by(|a, b| {
            b.attempts
                .cmp(&a.attempts)
                .then(b.failures.cmp(&a.failures))
                .then(a.source.cmp(&b.source))
        });
        rows
    }

    /// True when some source attacked (as `!attackers(only_public).is_empty()`, without
    /// sorting).
    pub fn has_attackers(&self, only_public: bool) -> bool {
        self.rows
            .iter()
            .any(|(_, a)| a.attempts > 0 && (!only_public || a.class.is_public()))
    }

    /// The row of the source `ip` belongs to, if it appeared (and was not dropped).
    pub fn get(&self, ip: IpAddr) -> Option<&AddrSummary> {
        self.rows.get(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, Origin};

    fn attempt(ip: &str, outcome: Outcome, user: Option<&str>, secs: i64) -> Attempt {
        Attempt {
            time: Some(Timestamp::from_second(secs).unwrap()),
            host: None,
            pid: None,
            kind: Kind::FailedPassword,
            outcome,
            srcip: ip.parse().ok(),
            srcport: None,
            user: user.map(String::from),
            wazuh_rule: None,
            origin: Origin::Unknown,
        }
    }

    #[test]
    fn counts_attempts_failures_users_and_times() {
        let mut s = Summary::default();
        let ip = "198.51.100.1";
        s.add(1, &attempt(ip, Outcome::Failure, Some("root"), 20));
        s.add(2, &attempt(ip, Outcome::Failure, Some("root"), 10));
        s.add(3, &attempt(ip, Outcome::Probe, Some("admin"), 30));
        s.add(4, &attempt(ip, Outcome::Success, Some("alice"), 40));
        s.add(5, &attempt("::ffff:198.51.100.1", Outcome::Info, None, 5));
        s.add(6, &attempt("-", Outcome::Probe, None, 1));
        let a = s.get("198.51.100.1".parse().unwrap()).unwrap();
        assert_eq!((a.attempts, a.failures, a.successes), (3, 2, 1));
        assert_eq!(a.users.count(), 2);
        assert_eq!(a.users.first_tried().collect::<Vec<_>>(), ["root", "admin"]);
        assert_eq!(a.first_seen, Some(Timestamp::from_second(5).unwrap()));
        assert_eq!(a.last_seen, Some(Timestamp::from_second(40).unwrap()));
        assert_eq!(a.class, AddrClass::Documentation);
        assert_eq!(s.totals.events, 6);
        assert_eq!(s.totals.attacks, 4);
        assert_eq!(s.totals.attacks_without_address, 1);
    }

    #[test]
    fn attackers_are_sorted_and_filtered() {
        let mut s = Summary::default();
        for _ in 0..3 {
            s.add(0, &attempt("10.0.0.1", Outcome::Failure, None, 1));
        }
        for _ in 0..2 {
            s.add(0, &attempt("8.8.8.8", Outcome::Probe, None, 1));
        }
        s.add(0, &attempt("1.1.1.1", Outcome::Failure, None, 1));
        s.add(0, &attempt("1.0.0.1", Outcome::Failure, None, 1));
        s.add(0, &attempt("9.9.9.9", Outcome::Success, None, 1));
        let order: Vec<String> = s
            .attackers(false)
            .iter()
            .map(|a| a.ip.to_string())
            .collect();
        assert_eq!(order, ["10.0.0.1", "8.8.8.8", "1.0.0.1", "1.1.1.1"]);
        let public: Vec<String> = s.attackers(true).iter().map(|a| a.ip.to_string()).collect();
        assert_eq!(public, ["8.8.8.8", "1.0.0.1", "1.1.1.1"]);
    }

    #[test]
    fn merge_equals_one_pass() {
        let events: Vec<Attempt> = (0..50)
            .map(|i| {
                let ip = format!("203.0.113.{}", i % 7);
                let user = format!("u{}", (i * 7) % 11);
                let outcome = if i % 3 == 0 {
                    Outcome::Probe
                } else {
                    Outcome::Failure
                };
                attempt(&ip, outcome, Some(&user), 100 - i)
            })
            .collect();
        let mut whole = Summary::default();
        let at = |i: usize| i as u64;
        events
            .iter()
            .enumerate()
            .for_each(|(i, e)| whole.add(at(i), e));
        // Parts merged in either order give the same summary.
        let (mut first, mut second) = (Summary::default(), Summary::default());
        events[..20]
            .iter()
            .enumerate()
            .for_each(|(i, e)| first.add(at(i), e));
        events[20..]
            .iter()
            .enumerate()
            .for_each(|(i, e)| second.add(at(i + 20), e));
        second.merge(first);
        assert_eq!(second.totals, whole.totals);
        assert_eq!(second.attackers(false).len(), whole.attackers(false).len());
        for (a, b) in second.attackers(false).iter().zip(whole.attackers(false)) {
            assert_eq!(
                (a.ip, a.attempts, a.failures),
                (b.ip, b.attempts, b.failures)
            );
            assert_eq!((a.first_seen, a.last_seen), (b.first_seen, b.last_seen));
            assert_eq!(a.users.count(), b.users.count());
            assert!(a.users.first_tried().eq(b.users.first_tried()));
        }
    }

    #[test]
    fn users_are_bounded() {
        let mut s = Summary::default();
        for i in 0..MAX_USERS_TRACKED + 10 {
            s.add(
                i as u64,
                &attempt(
                    "203.0.113.9",
                    Outcome::Failure,
                    Some(&format!("user{i}")),
                    1,
                ),
            );
        }
        let a = s.get("203.0.113.9".parse().unwrap()).unwrap();
        assert_eq!(a.users.count(), MAX_USERS_TRACKED);
        assert!(a.users.is_lower_bound());
        assert_eq!(
            a.users.first_tried().collect::<Vec<_>>(),
            ["user0", "user1", "user2", "user3"]
        );
        assert_eq!(a.users.first.len(), USERS_SHOWN);
    }

    #[test]
    fn long_user_names_are_kept_cut_at_a_character_boundary() {
        let mut s = Summary::default();
        let long = format!("{}é{}", "a".repeat(99), "b".repeat(500));
        s.add(0, &attempt("203.0.113.9", Outcome::Failure, Some(&long), 1));
        let a = s.get("203.0.113.9".parse().unwrap()).unwrap();
        let kept = a.users.first_tried().next().unwrap();
        assert_eq!(kept, "a".repeat(99));
    }

    #[test]
    fn the_first_names_survive_merging_in_any_order() {
        // Each part keeps only its own first names; merged, the earliest overall win.
        let names = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];
        let mut late = Summary::default();
        for (i, name) in names.iter().enumerate() {
            late.add(
                100 + i as u64,
                &attempt("192.0.2.1", Outcome::Failure, Some(name), 1),
            );
        }
        let mut early = Summary::default();
        early.add(50, &attempt("192.0.2.1", Outcome::Failure, Some("n6"), 1));
        early.add(51, &attempt("192.0.2.1", Outcome::Failure, Some("zz"), 1));
        late.merge(early);
        let a = late.get("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(
            a.users.first_tried().collect::<Vec<_>>(),
            ["n6", "zz", "n0", "n1"]
        );
        assert_eq!(a.users.count(), 9);
    }

    #[test]
    fn ipv6_sources_are_one_row_per_prefix() {
        let mut s = Summary::default();
        for i in 0..10_000u128 {
            let ip = std::net::Ipv6Addr::from(0x2001_0db8_0001_0002_u128 << 64 | i);
            let mut a = attempt("-", Outcome::Failure, Some("root"), 1);
            a.srcip = Some(ip.into());
            s.add(i as u64, &a);
        }
        let rows = s.attackers(false);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].source.to_string(), "2001:db8:1:2::/64");
        assert_eq!(rows[0].ip.to_string(), "2001:db8:1:2::");
        assert_eq!(rows[0].attempts, 10_000);
        let mut each = Summary::new(Grouping { ipv6_prefix: 128 }, 1000);
        for i in 0..10_000u128 {
            let ip = std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | i);
            let mut a = attempt("-", Outcome::Failure, None, 1);
            a.srcip = Some(ip.into());
            each.add(i as u64, &a);
        }
        assert!(each.attackers(false).len() <= 1000);
        assert_eq!(each.evicted() + each.attackers(false).len() as u64, 10_000);
        assert_eq!(each.totals.attacks, 10_000);
    }
}
