//! What each source did, bounded: the table `repute scan` summarises into, and the one a
//! long-running `watch` will keep.
//!
//! An attacker chooses how many addresses we see: one IPv6 /64 holds 2^64 of them. So a
//! row is per [`Source`], not per address: an IPv4 address, or an IPv6 prefix (per /64 by
//! default, as fail2ban's and CrowdSec's users ask; [`Grouping`] says how long), and a
//! [`History`] keeps at most `max_sources` rows. Past that it drops the least active rows
//! (fewest attacks, then longest quiet) a quarter at a time, so eviction costs O(1) per new
//! row on average and a flood of new sources cannot push out the heaviest attackers; how
//! many were dropped is counted. Memory is then flat: `max_sources` rows whatever the input.
//!
//! It lives here, under `policy`, rather than in `scan`, because the rows are generic
//! ([`Activity`]): `scan` keeps counters and user names per row (`scan::Summary`), `watch`
//! will keep its failure times per row, and both need the same grouping, bound and eviction.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::OnceLock;

use crate::addr;

/// Prefix length IPv6 sources are grouped by unless told otherwise: one /64 is what a
/// single host or customer usually gets.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// Rows kept unless told otherwise (see [`History`] for what a row costs).
pub const DEFAULT_MAX_SOURCES: usize = 100_000;

/// How addresses become [`Source`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grouping {
    /// IPv6 addresses are grouped by their first `ipv6_prefix` bits (1..=128; 128 = one row
    /// per address). IPv4 addresses are always their own source.
    pub ipv6_prefix: u8,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }
}

impl Grouping {
    /// The source `ip` belongs to (IPv4-mapped IPv6 counts as IPv4).
    pub fn source(&self, ip: IpAddr) -> Source {
        match addr::canonical(ip) {
            IpAddr::V4(v4) => Source {
                addr: IpAddr::V4(v4),
                prefix: 32,
            },
            IpAddr::V6(v6) => {
                let prefix = self.ipv6_prefix.clamp(1, 128);
                let mask = u128::MAX << (128 - u32::from(prefix));
                Source {
                    addr: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                    prefix,
                }
            }
        }
    }

    /// True when a row of this grouping may stand for more than one address.
    pub fn groups_ipv6(&self) -> bool {
        self.ipv6_prefix < 128
    }
}

/// One row's key: an address, or an IPv6 network (address with its host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    addr: IpAddr,
    prefix: u8,
}

impl Source {
    /// The address, or the network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Prefix length: 32 for IPv4, 1..=128 for IPv6.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True when the source is a single address.
    pub fn is_single_address(&self) -> bool {
        matches!(
            (self.addr, self.prefix),
            (IpAddr::V4(_), _) | (IpAddr::V6(_), 128)
        )
    }
}

/// `198.51.100.7`, `2001:db8::1` (a /128), `2001:db8:1:2::/64`.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single_address() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// One or two words into the hasher rather than std's discriminant-then-bytes walk.
impl Hash for Source {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self.addr {
            IpAddr::V4(v4) => state.write_u64(u64::from(v4.to_bits())),
            IpAddr::V6(v6) => {
                let bits = v6.to_bits();
                state.write_u64((bits >> 64) as u64 ^ u64::from(self.prefix) << 56);
                state.write_u64(bits as u64);
            }
        }
    }
}

/// What a [`History`] needs of a row to pick which to drop.
pub trait Activity {
    /// How much the source did (attacks); the least active go first.
    fn activity(&self) -> u64;
    /// When it last did something, as a number that grows along the input (a position, a
    /// time); among equally active rows the longest quiet go first.
    fn last_active(&self) -> u64;
    /// Folds in the row of the same source from another history.
    fn merge(&mut self, other: Self);
}

/// At most `max_sources` rows of `V`, one per [`Source`].
///
/// The rows sit in a vector, found through a hash index; the row used last is remembered,
/// since consecutive events often come from one source (a connection writes several lines):
/// on the 1 M-line benchmark file 45 % of events skip the hash lookup that way.
///
/// Memory: at most `max_sources` rows (`Source` and `V`, plus what each `V` owns) and an
/// index of one `(Source, u32)` slot per row (std's table, at most 7/8 full).
#[derive(Debug, Clone)]
pub struct History<V> {
    rows: Vec<(Source, V)>,
    index: HashMap<Source, u32, SeededHash>,
    /// The row used last, and where it is.
    last: Option<(Source, u32)>,
    grouping: Grouping,
    max_sources: usize,
    evicted: u64,
}

impl<V> Default for History<V> {
    fn default() -> Self {
        History::new(Grouping::default(), DEFAULT_MAX_SOURCES)
    }
}

impl<V> History<V> {
    /// An empty history; `max_sources` is at least 4 (a quarter must be at least one row)
    /// and at most `u32::MAX`.
    pub fn new(grouping: Grouping, max_sources: usize) -> Self {
        History {
            rows: Vec::new(),
            index: HashMap::default(),
            last: None,
            grouping,
            max_sources: max_sources.clamp(4, u32::MAX as usize),
            evicted: 0,
        }
    }

    pub fn grouping(&self) -> Grouping {
        self.grouping
    }

    pub fn max_sources(&self) -> usize {
        self.max_sources
    }

    /// Rows dropped so far to stay within `max_sources` (a source that came back after being
    /// dropped counts again).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row of the source `ip` belongs to, if kept.
    pub fn get(&self, ip: IpAddr) -> Option<&V> {
        let at = *self.index.get(&self.grouping.source(ip))?;
        self.rows.get(at as usize).map(|(_, row)| row)
    }

    /// Every row, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Source, &V)> {
        self.rows.iter().map(|(source, row)| (source, row))
    }

    /// Every row, mutably, in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.rows.iter_mut().map(|(_, row)| row)
    }

    /// Appends a row for a source not in the index (the caller made room).
    fn push(&mut self, source: Source, row: V) -> u32 {
        // `max_sources` ≤ u32::MAX, and the caller keeps `len` below it.
        let at = self.rows.len() as u32;
        self.rows.push((source, row));
        self.index.insert(source, at);
        at
    }
}

impl<V: Activity> History<V> {
    /// The row of the source `ip` belongs to, made with `new` (from the source and the
    /// address) when missing; the least active quarter is dropped first when full.
    pub fn row(&mut self, ip: IpAddr, new: impl FnOnce(Source, IpAddr) -> V) -> &mut V {
        let source = self.grouping.source(ip);
        let at = match self.last {
            Some((last, at)) if last == source => at,
            _ => match self.index.get(&source) {
                Some(&at) => at,
                None => {
                    if self.rows.len() >= self.max_sources {
                        self.evict_quarter();
                    }
                    self.push(source, new(source, ip))
                }
            },
        };
        self.last = Some((source, at));
        &mut self.rows[at as usize].1
    }

    /// Folds in another history (built with the same grouping), staying within the bound.
    pub fn merge(&mut self, other: History<V>) {
        self.evicted += other.evicted;
        if self.rows.is_empty() && other.rows.len() <= self.max_sources {
            // Taking the rows whole spares a second table alive during the copy.
            (self.rows, self.index, self.last) = (other.rows, other.index, None);
            return;
        }
        for (source, theirs) in other.rows {
            match self.index.get(&source) {
                Some(&at) => self.rows[at as usize].1.merge(theirs),
                None => {
                    if self.rows.len() >= self.max_sources {
                        self.evict_quarter();
                    }
                    self.push(source, theirs);
                }
            }
        }
    }

    /// Drops the least active quarter of the rows (fewest attacks, then longest quiet).
    fn evict_quarter(&mut self) {
        let quota = (self.rows.len() / 4).max(1);
        let rank = |v: &V| (v.activity(), v.last_active());
        let mut ranks: Vec<(u64, u64)> = self.rows.iter().map(|(_, v)| rank(v)).collect();
        let (_, &mut threshold, _) = ranks.select_nth_unstable(quota - 1);
        // Everything below the threshold goes, and as many rows equal to it as the quota
        // still allows (so equal ranks cannot empty the table).
        let below = ranks.iter().filter(|&&r| r < threshold).count();
        let mut equal_to_drop = quota - below;
        drop(ranks);
        self.rows.retain(|(_, v)| {
            let r = rank(v);
            if r < threshold {
                false
            } else if r == threshold && equal_to_drop > 0 {
                equal_to_drop -= 1;
                false
            } else {
                true
            }
        });
        self.index.clear();
        for (at, (source, _)) in self.rows.iter().enumerate() {
            self.index.insert(*source, at as u32);
        }
        self.last = None;
        self.evicted += quota as u64;
    }
}

/// A 64-bit fingerprint of `bytes`, the same in every thread of the process (so parts built
/// by separate threads compare), keyed by a random per-process seed so an attacker cannot
/// aim for collisions.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    static KEY: OnceLock<u64> = OnceLock::new();
    let key = *KEY.get_or_init(random_seed);
    let mut hasher = FoldHasher {
        state: key,
        seed: key,
    };
    hasher.write(bytes);
    hasher.finish()
}

fn random_seed() -> u64 {
    let mut random = RandomState::new().build_hasher();
    random.write_u8(0);
    random.finish() | 1
}

/// The hash of the history's table (and of other maps keyed by attacker-chosen text): a
/// seeded multiply-and-fold hash (the construction of `foldhash`), several times cheaper
/// than std's SipHash on these short keys. Keys are attacker-chosen, so the seed is random
/// per map, drawn from std's own random keys.
#[derive(Clone)]
pub struct SeededHash {
    seed: u64,
}

impl fmt::Debug for SeededHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededHash")
    }
}

impl Default for SeededHash {
    fn default() -> Self {
        SeededHash {
            seed: random_seed(),
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

pub struct FoldHasher {
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

    #[derive(Debug, Clone, PartialEq)]
    struct Count {
        hits: u64,
        last: u64,
    }

    impl Activity for Count {
        fn activity(&self) -> u64 {
            self.hits
        }
        fn last_active(&self) -> u64 {
            self.last
        }
        fn merge(&mut self, other: Self) {
            self.hits += other.hits;
            self.last = self.last.max(other.last);
        }
    }

    fn hit(h: &mut History<Count>, ip: &str, at: u64) {
        let row = h.row(ip.parse().unwrap(), |_, _| Count { hits: 0, last: 0 });
        row.hits += 1;
        row.last = at;
    }

    #[test]
    fn ipv6_is_grouped_by_prefix_and_ipv4_per_address() {
        let g = Grouping::default();
        let a = g.source("2001:db8:1:2::1".parse().unwrap());
        assert_eq!(a, g.source("2001:db8:1:2:ffff::9".parse().unwrap()));
        assert_ne!(a, g.source("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let v4 = g.source("::ffff:198.51.100.7".parse().unwrap());
        assert_eq!(v4.to_string(), "198.51.100.7");
        assert_ne!(v4, g.source("198.51.100.8".parse().unwrap()));
        let each = Grouping { ipv6_prefix: 128 };
        assert_eq!(
            each.source("2001:db8::1".parse().unwrap()).to_string(),
            "2001:db8::1"
        );
        let wide = Grouping { ipv6_prefix: 48 };
        assert_eq!(
            wide.source("2001:db8:1:2::1".parse().unwrap()).to_string(),
            "2001:db8:1::/48"
        );
        // Out-of-range lengths are clamped rather than panicking on the shift.
        let zero = Grouping { ipv6_prefix: 0 }.source("8000::1".parse().unwrap());
        assert_eq!(zero.to_string(), "8000::/1");
    }

    #[test]
    fn a_full_history_drops_the_least_active_quarter() {
        let mut h = History::new(Grouping::default(), 8);
        for at in 0..5 {
            hit(&mut h, "203.0.113.1", at); // the heavy one
        }
        for i in 2..9u64 {
            hit(&mut h, &format!("203.0.113.{i}"), 10 + i);
        }
        assert_eq!((h.len(), h.evicted()), (8, 0));
        hit(&mut h, "203.0.113.1", 30); // an existing row never evicts
        assert_eq!(h.evicted(), 0);
        hit(&mut h, "203.0.113.100", 40);
        // Quota 2: the two quietest single-hit rows (.2 at 12, .3 at 13) went.
        assert_eq!((h.len(), h.evicted()), (7, 2));
        assert!(h.get("203.0.113.2".parse().unwrap()).is_none());
        assert!(h.get("203.0.113.3".parse().unwrap()).is_none());
        assert!(h.get("203.0.113.4".parse().unwrap()).is_some());
        assert_eq!(h.get("203.0.113.1".parse().unwrap()).unwrap().hits, 6);
    }

    #[test]
    fn a_flood_of_new_sources_stays_within_the_bound_and_keeps_the_heavy() {
        let mut h = History::new(Grouping { ipv6_prefix: 128 }, 1000);
        for at in 0..50 {
            hit(&mut h, "2001:db8::1", at);
        }
        for i in 0..100_000u64 {
            let ip = Ipv6Addr::from(0x2001_0db8_0001_u128 << 80 | u128::from(i));
            hit(&mut h, &ip.to_string(), 100 + i);
            assert!(h.len() <= 1000);
        }
        assert_eq!(h.get("2001:db8::1".parse().unwrap()).unwrap().hits, 50);
        assert_eq!(h.evicted() + h.len() as u64, 100_001);
    }

    #[test]
    fn equal_ranks_do_not_empty_the_table() {
        let mut h = History::new(Grouping::default(), 4);
        for i in 1..=4 {
            hit(&mut h, &format!("192.0.2.{i}"), 7);
        }
        hit(&mut h, "192.0.2.5", 7);
        assert_eq!((h.len(), h.evicted()), (4, 1));
    }

    #[test]
    fn merge_stays_within_the_bound() {
        let (mut a, mut b) = (
            History::new(Grouping::default(), 4),
            History::new(Grouping::default(), 4),
        );
        for i in 1..=4 {
            hit(&mut a, &format!("192.0.2.{i}"), i);
            hit(&mut b, &format!("198.51.100.{i}"), i);
        }
        hit(&mut a, "192.0.2.1", 5);
        hit(&mut a, "192.0.2.1", 6);
        hit(&mut b, "192.0.2.1", 9);
        a.merge(b);
        assert!(a.len() <= 4);
        // The busiest source survives every eviction the merge makes, and its parts add up.
        assert_eq!(a.get("192.0.2.1".parse().unwrap()).unwrap().hits, 4);
        assert_eq!(a.evicted() + a.len() as u64, 8);
    }

    #[test]
    fn seeded_hash_spreads_similar_keys() {
        let build = SeededHash::default();
        let g = Grouping { ipv6_prefix: 128 };
        let mut buckets = [0u32; 64];
        for i in 0..64_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0xc01f_c400 + i));
            buckets[(build.hash_one(g.source(ip)) >> 58) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (700..1300).contains(&n)),
            "{buckets:?}"
        );
        let mut buckets = [0u32; 64];
        for i in 0..64_000u128 {
            let ip = IpAddr::from(Ipv6Addr::from(0x2001_0db8_u128 << 96 | i << 64));
            buckets[(build.hash_one(Grouping::default().source(ip)) >> 58) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (700..1300).contains(&n)),
            "{buckets:?}"
        );
        assert_ne!(build.hash_one("root"), build.hash_one("root\0"));
        assert_eq!(fingerprint(b"root"), fingerprint(b"root"));
        assert_ne!(fingerprint(b"root"), fingerprint(b"root\0"));
    }
}
