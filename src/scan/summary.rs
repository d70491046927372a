//! Per-address aggregation of attempts: what `repute scan --format table` prints.
//!
//! A [`Summary`] grows with the number of distinct attacking addresses, never with the
//! number of lines: per address it keeps counters, first/last time and at most
//! [`MAX_USERS_TRACKED`] distinct user names. Summaries built by separate threads over
//! separate parts of the input merge into one ([`Summary::merge`]) in input order.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::IpAddr;

use jiff::Timestamp;

use crate::addr::{self, AddrClass};
use crate::sshd::Event;
use crate::{Attempt, Outcome};

/// Distinct user names remembered per address; beyond it the count shows as a lower bound.
pub const MAX_USERS_TRACKED: usize = 1000;

/// User names shown per address, in the order first tried.
pub const USERS_SHOWN: usize = 4;

/// The distinct user names one address tried, each with the input position (byte offset)
/// where it was first tried, so that "first tried" means the same whatever order threads
/// saw the input in.
#[derive(Debug, Clone, Default)]
pub struct Users {
    first_at: HashMap<Box<str>, u64, SeededHash>,
    overflow: bool,
}

impl Users {
    fn add(&mut self, user: &str, position: u64) {
        if let Some(first) = self.first_at.get_mut(user) {
            *first = (*first).min(position);
            return;
        }
        if self.first_at.len() >= MAX_USERS_TRACKED {
            self.overflow = true;
            return;
        }
        self.first_at.insert(user.into(), position);
    }

    fn shift_positions(&mut self, by: u64) {
        for position in self.first_at.values_mut() {
            *position = position.saturating_add(by);
        }
    }

    fn merge(&mut self, other: Users) {
        for (user, position) in other.first_at {
            self.add(&user, position);
        }
        self.overflow |= other.overflow;
    }

    /// How many distinct names were tried.
    pub fn count(&self) -> usize {
        self.first_at.len()
    }

    /// True when there were more than [`MAX_USERS_TRACKED`] and `count` is a lower bound.
    pub fn is_lower_bound(&self) -> bool {
        self.overflow
    }

    /// The first [`USERS_SHOWN`] names tried, in the order they were first tried.
    pub fn first_tried(&self) -> impl Iterator<Item = &str> {
        let mut by_position: Vec<(u64, &str)> = self
            .first_at
            .iter()
            .map(|(user, &at)| (at, &**user))
            .collect();
        by_position.sort_unstable();
        by_position.truncate(USERS_SHOWN);
        by_position.into_iter().map(|(_, user)| user)
    }
}

/// What one address did.
#[derive(Debug, Clone)]
pub struct AddrSummary {
    pub ip: IpAddr,
    pub class: AddrClass,
    /// Failures plus probes.
    pub attempts: u64,
    pub failures: u64,
    pub successes: u64,
    pub users: Users,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
}

impl AddrSummary {
    fn new(ip: IpAddr) -> Self {
        AddrSummary {
            ip,
            class: addr::classify(ip),
            attempts: 0,
            failures: 0,
            successes: 0,
            users: Users::default(),
            first_seen: None,
            last_seen: None,
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
    }

    fn seen_at(&mut self, first: Timestamp, last: Timestamp) {
        self.first_seen = Some(self.first_seen.map_or(first, |t| t.min(first)));
        self.last_seen = Some(self.last_seen.map_or(last, |t| t.max(last)));
    }

    fn merge(&mut self, other: AddrSummary) {
        self.attempts += other.attempts;
        self.failures += other.failures;
        self.successes += other.successes;
        self.users.merge(other.users);
        if let (Some(first), Some(last)) = (other.first_seen, other.last_seen) {
            self.seen_at(first, last);
        }
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

/// Attempts per address, plus totals.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    by_addr: HashMap<IpAddr, AddrSummary, SeededHash>,
    pub totals: Totals,
}

impl Summary {
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
    pub fn add_event(&mut self, at: u64, event: &Event<'_>) {
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
            Some(ip) => {
                let ip = addr::canonical(ip);
                let entry = self
                    .by_addr
                    .entry(ip)
                    .or_insert_with(|| AddrSummary::new(ip));
                entry.add(at, outcome, attempts, user, time);
            }
            None => self.totals.attacks_without_address += u64::from(attempts > 0),
        }
    }

    /// Folds in the summary of another part of the input (in any order: positions, not
    /// merge order, decide which names were tried first).
    pub fn merge(&mut self, other: Summary) {
        self.totals.merge(other.totals);
        for (ip, theirs) in other.by_addr {
            match self.by_addr.entry(ip) {
                std::collections::hash_map::Entry::Occupied(mut mine) => {
                    mine.get_mut().merge(theirs)
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(theirs);
                }
            }
        }
    }

    /// Moves every recorded position `by` further along the input (used to put a later
    /// input's summary after an earlier one's).
    pub fn shift_positions(&mut self, by: u64) {
        for addr in self.by_addr.values_mut() {
            addr.users.shift_positions(by);
        }
    }

    /// Addresses that attacked (at least one failure or probe), most attempts first (then
    /// most failures, then by address, so the order is stable).
    pub fn attackers(&self, only_public: bool) -> Vec<&AddrSummary> {
        let mut rows: Vec<&AddrSummary> = self
            .by_addr
            .values()
            .filter(|a| a.attempts > 0 && (!only_public || a.class.is_public()))
            .collect();
        rows.sort_by(|a, b| {
            b.attempts
                .cmp(&a.attempts)
                .then(b.failures.cmp(&a.failures))
                .then(a.ip.cmp(&b.ip))
        });
        rows
    }

    /// The summary of one address, if it appeared.
    pub fn get(&self, ip: IpAddr) -> Option<&AddrSummary> {
        self.by_addr.get(&addr::canonical(ip))
    }
}

/// The hash of the summary maps: a seeded multiply-and-fold hash (the construction of
/// `foldhash`), several times cheaper than std's SipHash on these short keys. Keys are
/// attacker-chosen (addresses, user names), so the seed is random per map, drawn from std's
/// own random keys; and a user map never holds more than [`MAX_USERS_TRACKED`] names, so
/// even a collision flood stays bounded.
#[derive(Clone)]
struct SeededHash {
    seed: u64,
}

impl Default for SeededHash {
    fn default() -> Self {
        let mut random = RandomState::new().build_hasher();
        random.write_u8(0);
        SeededHash {
            seed: random.finish() | 1,
        }
    }
}

impl BuildHasher for SeededHash {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            state: self.seed,
            seed: self.seed,
        }
    }
}

struct FoldHasher {
    state: u64,
    seed: u64,
}

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a).wrapping_mul(u128::from(b));
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, MULTIPLIER ^ self.seed);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        folded_multiply(self.state, self.seed.rotate_left(32) | 1)
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
    fn seeded_hash_spreads_similar_keys() {
        let build = SeededHash::default();
        let hash = |ip: IpAddr| build.hash_one(ip);
        let mut buckets = [0u32; 64];
        for i in 0..64_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0xc01f_c400 + i));
            buckets[(hash(ip) >> 58) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (700..1300).contains(&n)),
            "{buckets:?}"
        );
        let a = hash("2001:db8::1".parse().unwrap());
        assert_ne!(a, hash("2001:db8::2".parse().unwrap()));
        assert_ne!(
            a,
            SeededHash::default().hash_one("2001:db8::1".parse::<IpAddr>().unwrap())
        );
        assert_ne!(build.hash_one("root"), build.hash_one("root\0"));
    }

    #[test]
    fn users_are_bounded() {
        let mut s = Summary::default();
        for i in 0..MAX_USERS_TRACKED + 10 {
            s.add(
                0,
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
    }
}
