//! The policy: what to do about an attempt, for every command.
//!
//! [`decision`] is the one decision step every command calls: an attempt (from a log line or
//! a Wazuh alert), its address's history and its reputation in, a [`Decision`] out (alert,
//! block for how long, report with which categories, or ignore, each with its reason). The
//! integration's `min_score`, the active response's reputation gate and `repute watch`'s ban
//! at the first attack all go through it.
//!
//! The rest of this module is `repute watch`'s counting: when an attacking address gets
//! banned, and for how long: fail2ban's vocabulary, sshguard's weighing, reputation where it
//! earns its quota, in bounded memory.
//!
//! - **Counting.** Every attack (failure or probe) from an address adds points in a sliding
//!   window of `find_time`: a try (a refused password, key, user) weighs [`TRY_POINTS`], a
//!   probe (scan, aborted handshake, timeout) [`PROBE_POINTS`]. What is counted is attempts,
//!   never lines: the parser's per-connection logic ([`crate::sshd::AttemptRef::attempts`], shared
//!   with `scan`) says how many attempts each line adds, and a line that only repeats a try
//!   its connection already counted (PAM's lines, `Failed password` after `Invalid user`, the
//!   close of a refused connection, the summaries) adds none: on sshd with PAM one try writes
//!   up to five lines, and `max_retry = 5` must mean five tries. The address is banned when
//!   its points reach `max_retry × TRY_POINTS`: five tries, or ten probes.
//! - **Reputation.** An address is looked up (by the caller, through the engine) at its
//!   first failure; with a score at or above `ban_score` ([`decision::reaches`], the
//!   comparison every threshold uses) it is banned there.
//!   Without an answer (provider down, quota spent) counting goes on as if none was asked.
//! - **Ban time** grows for repeat offenders: `ban_time × factor^(bans before)`, capped at
//!   `ban_time_max`, as fail2ban's `bantime.increment`.
//! - **IPv6** is counted per network (`/64` by default, `ipv6_prefix`), since one host holds a
//!   whole /64. The firewall sets hold single addresses, so a ban of a network bans each of
//!   its addresses seen attacking (up to [`MAX_MEMBERS`]), and any further address of it at
//!   its first attack, until the ban ends.
//! - **Memory** is bounded: at most `max_tracked` networks or addresses are remembered; past
//!   that the least recently active one is forgotten (banned ones last, so that their unban
//!   is still announced).
//!
//! Time is whole Unix seconds given by the caller, so tests need no clock.

pub mod decision;
pub mod history;

pub use decision::{Decision, Thresholds, decide};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::{Kind, Outcome};

/// Points of one try (a failure).
pub const TRY_POINTS: u32 = 2;
/// Points of one probe: half a try.
pub const PROBE_POINTS: u32 = 1;
/// Addresses of one IPv6 network remembered for its ban.
pub const MAX_MEMBERS: usize = 16;

/// The policy's settings (the `[watch]` section and watch's flags).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    /// Tries (or twice as many probes) within `find_time` that earn a ban.
    pub max_retry: u32,
    pub find_time: Duration,
    /// The first ban's length.
    pub ban_time: Duration,
    /// Each further ban of the same address lasts this many times longer (1: no growth).
    pub ban_time_factor: u32,
    pub ban_time_max: Duration,
    /// Ban at the first attack when the reputation score is at least this; `None`: never.
    pub ban_score: Option<u8>,
    /// IPv6 addresses are counted and banned per network of this length (128: per address).
    pub ipv6_prefix: u8,
    /// At most this many addresses/networks are remembered.
    pub max_tracked: usize,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            max_retry: 5,
            find_time: Duration::from_secs(600),
            ban_time: Duration::from_secs(600),
            ban_time_factor: 2,
            ban_time_max: Duration::from_secs(7 * 24 * 3600),
            ban_score: Some(90),
            ipv6_prefix: 64,
            max_tracked: 100_000,
        }
    }
}

/// What one attempt of a line weighs: a try [`TRY_POINTS`], a probe [`PROBE_POINTS`]. How
/// many attempts a line adds is the parser's per-connection logic ([`crate::sshd::AttemptRef::attempts`]),
/// not this table: the policy never counts lines.
pub fn attempt_points(kind: Kind, outcome: Outcome) -> u32 {
    match (kind, outcome) {
        (_, Outcome::Success | Outcome::Info) => 0,
        // A client asking which methods exist tried nothing yet.
        (Kind::FailedNone, _) => PROBE_POINTS,
        (_, Outcome::Failure) => TRY_POINTS,
        (_, Outcome::Probe) => PROBE_POINTS,
    }
}

/// A ban the policy asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Ban {
    /// What was counted: the address, or its IPv6 network.
    pub network: IpNet,
    /// The addresses to put in the firewall.
    pub addresses: Vec<IpAddr>,
    pub duration: Duration,
    /// Unix seconds when it ends.
    pub until: i64,
    pub reason: String,
    pub evidence: Evidence,
}

/// What a ban was decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Evidence {
    /// Tries and probes within `find_time`.
    pub failures: u32,
    pub probes: u32,
    /// The reputation score, when there was one.
    pub score: Option<u8>,
    /// Bans of the same address or network before this one (what made it longer).
    pub bans_before: u32,
}

/// A ban that has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Unban {
    pub network: IpNet,
    pub addresses: Vec<IpAddr>,
}

/// What the policy remembers of one address or network.
#[derive(Debug, Default)]
struct Track {
    /// (Unix seconds, points) of the attacks within the window, oldest first.
    hits: VecDeque<(i64, u8)>,
    bans: u32,
    banned_until: Option<i64>,
    /// Addresses seen attacking (for an IPv6 network; empty for an address).
    members: Vec<IpAddr>,
    looked_up: bool,
    score: Option<u8>,
    /// Position in the least-recently-active order.
    touched: u64,
}

/// The per-address state and the rules; see the module documentation.
#[derive(Debug)]
pub struct Policy {
    settings: PolicySettings,
    tracks: HashMap<IpNet, Track>,
    /// `touched` → network, oldest first.
    order: BTreeMap<u64, IpNet>,
    clock: u64,
    /// Networks forgotten to stay within `max_tracked`.
    pub evicted: u64,
}

impl Policy {
    pub fn new(settings: PolicySettings) -> Self {
        Policy {
            settings,
            tracks: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
            evicted: 0,
        }
    }

    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// New settings (a reload); what is remembered stays.
    pub fn set_settings(&mut self, settings: PolicySettings) {
        self.settings = settings;
    }

    /// How many addresses or networks are remembered.
    pub fn tracked(&self) -> usize {
        self.tracks.len()
    }

    /// What `ip` is counted as: itself, or its IPv6 network.
    pub fn network_of(&self, ip: IpAddr) -> IpNet {
        let ip = crate::addr::canonical(ip);
        let prefix = match ip {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => self.settings.ipv6_prefix.clamp(1, 128),
        };
        IpNet::new(ip, prefix).map_or(IpNet::from(ip), |n| n.trunc())
    }

    /// Whether `ip`'s network should be looked up now: not looked up yet (the caller asks at a first failure).
    pub fn wants_lookup(&self, ip: IpAddr) -> bool {
        self.settings.ban_score.is_some()
            && self
                .tracks
                .get(&self.network_of(ip))
                .is_none_or(|t| !t.looked_up)
    }

    /// Whether `ip` is banned now (itself, or as part of its network).
    pub fn is_banned(&self, ip: IpAddr, now: i64) -> bool {
        let ip = crate::addr::canonical(ip);
        self.tracks.get(&self.network_of(ip)).is_some_and(|t| {
            t.banned_until.is_some_and(|u| u > now)
                && (t.members.is_empty() || t.members.contains(&ip))
        })
    }

    /// Counts one attack (`score`: the answer of a lookup made for it, if any) and says
    /// whether it earns a ban. `attempts` is what the line adds ([`crate::sshd::AttemptRef::attempts`]).
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        ip: IpAddr,
        kind: Kind,
        outcome: Outcome,
        attempts: u32,
        score: Option<u8>,
        looked_up: bool,
        now: i64,
    ) -> Option<Ban> {
        let unit = attempt_points(kind, outcome);
        let weight = unit.saturating_mul(attempts);
        if !outcome.is_attack() {
            return None;
        }
        let ip = crate::addr::canonical(ip);
        let network = self.network_of(ip);
        let per_network = network.prefix_len() < network.max_prefix_len();
        let settings = self.settings.clone();
        let track = self.touch(network);
        if looked_up {
            track.looked_up = true;
            track.score = track.score.or(score);
        }
        let newcomer = per_network && !track.members.contains(&ip);
        if newcomer {
            if track.members.len() >= MAX_MEMBERS {
                track.members.remove(0);
            }
            track.members.push(ip);
        }
        // A banned network: a new address of it is banned for the time left.
        if let Some(until) = track.banned_until.filter(|u| *u > now) {
            return (newcomer && weight > 0).then(|| Ban {
                network,
                addresses: vec![ip],
                duration: Duration::from_secs(u64::try_from(until - now).unwrap_or(1)),
                until,
                reason: format!("repute watch: in banned network {network}"),
                evidence: Evidence {
                    bans_before: track.bans.saturating_sub(1),
                    score: track.score,
                    ..Evidence::default()
                },
            });
        }
        let window = i64::try_from(settings.find_time.as_secs()).unwrap_or(i64::MAX);
        while track.hits.front().is_some_and(|(t, _)| now - *t >= window) {
            track.hits.pop_front();
        }
        // Only the newest hits can matter: a full window never needs more than the threshold.
        let threshold = settings.max_retry.max(1).saturating_mul(TRY_POINTS);
        // One hit per attempt (a login ending tries of several names adds several).
        if weight > 0 {
            for _ in 0..attempts.min(threshold) {
                track
                    .hits
                    .push_back((now, u8::try_from(unit).unwrap_or(u8::MAX)));
            }
        }
        while track.hits.len() > threshold as usize {
            track.hits.pop_front();
        }
        let total: u32 = track.hits.iter().map(|(_, w)| u32::from(*w)).sum();
        let by_score = weight > 0
            && settings
                .ban_score
                .zip(track.score)
                .is_some_and(|(min, s)| decision::reaches(s, min));
        if total < threshold && !by_score {
            return None;
        }
        let failures = track
            .hits
            .iter()
            .filter(|(_, w)| u32::from(*w) >= TRY_POINTS)
            .count() as u32;
        let probes = track.hits.len() as u32 - failures;
        let bans_before = track.bans;
        let duration = ban_duration(&settings, bans_before);
        let until = now.saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX));
        track.bans = track.bans.saturating_add(1);
        track.banned_until = Some(until);
        track.hits.clear();
        let reason = if total >= threshold {
            format!(
                "repute watch: {failures} tries and {probes} probes within {}",
                crate::block::duration::format_duration(settings.find_time)
            )
        } else {
            format!(
                "repute watch: reputation score {} at its first failure",
                track.score.unwrap_or_default()
            )
        };
        let addresses = if per_network {
            track.members.clone()
        } else {
            vec![ip]
        };
        Some(Ban {
            network,
            addresses,
            duration,
            until,
            reason,
            evidence: Evidence {
                failures,
                probes,
                score: track.score,
                bans_before,
            },
        })
    }

    /// A ban found in the block state at start (watch restarted): remembered so that it is
    /// not decided again and its end is announced.
    pub fn restore_ban(&mut self, ip: IpAddr, until: i64) {
        let ip = crate::addr::canonical(ip);
        let network = self.network_of(ip);
        let per_network = network.prefix_len() < network.max_prefix_len();
        let track = self.touch(network);
        track.banned_until = Some(track.banned_until.map_or(until, |u| u.max(until)));
        track.bans = track.bans.max(1);
        track.looked_up = true;
        if per_network && !track.members.contains(&ip) && track.members.len() < MAX_MEMBERS {
            track.members.push(ip);
        }
    }

    /// How many times `network` was banned before watch restarted (kept in the store), so
    /// that its next ban is as long as without the restart. A network saved under another
    /// `ipv6_prefix` counts for the network its address falls in now.
    pub fn restore_ban_count(&mut self, network: IpNet, bans: u32) {
        let network = self.network_of(network.addr());
        let track = self.touch(network);
        track.bans = track.bans.max(bans);
    }

    /// When the running ban covering `ip` ends (Unix seconds), if one runs.
    pub fn banned_until(&self, ip: IpAddr, now: i64) -> Option<i64> {
        let ip = crate::addr::canonical(ip);
        self.tracks.get(&self.network_of(ip)).and_then(|t| {
            t.banned_until
                .filter(|u| *u > now && (t.members.is_empty() || t.members.contains(&ip)))
        })
    }

    /// Ends the ban covering `ip` now (revoked elsewhere); true when one was running. Its
    /// end is not announced again by [`Policy::expired`].
    pub fn end_ban(&mut self, ip: IpAddr, now: i64) -> bool {
        let ip = crate::addr::canonical(ip);
        let network = self.network_of(ip);
        match self.tracks.get_mut(&network) {
            Some(t) if t.banned_until.is_some_and(|u| u > now) => {
                t.banned_until = None;
                true
            }
            _ => false,
        }
    }

    /// Bans that have ended by `now`; their networks stay remembered (for the next ban's
    /// length) until evicted.
    pub fn expired(&mut self, now: i64) -> Vec<Unban> {
        let mut ended = Vec::new();
        for (network, track) in &mut self.tracks {
            if track.banned_until.is_some_and(|u| u <= now) {
                track.banned_until = None;
                let per_network = network.prefix_len() < network.max_prefix_len();
                ended.push(Unban {
                    network: *network,
                    addresses: if per_network {
                        track.members.clone()
                    } else {
                        vec![network.addr()]
                    },
                });
            }
        }
        ended.sort_by_key(|u| u.network);
        ended
    }

    /// Bans running now: (network, Unix seconds when it ends).
    pub fn active_bans(&self, now: i64) -> Vec<(IpNet, i64)> {
        let mut bans: Vec<_> = self
            .tracks
            .iter()
            .filter_map(|(n, t)| t.banned_until.filter(|u| *u > now).map(|u| (*n, u)))
            .collect();
        bans.sort();
        bans
    }

    /// The track of `network`, created (evicting the least recently active one when full)
    /// and marked as the most recently active.
    fn touch(&mut self, network: IpNet) -> &mut Track {
        self.clock += 1;
        let clock = self.clock;
        if let Some(track) = self.tracks.get_mut(&network) {
            self.order.remove(&track.touched);
            self.order.insert(clock, network);
            // Reborrow after the order update.
            let track = self.tracks.get_mut(&network).expect("present");
            track.touched = clock;
            return track;
        }
        while self.tracks.len() >= self.settings.max_tracked.max(1) {
            self.evict_one();
        }
        self.order.insert(clock, network);
        self.tracks.entry(network).or_insert(Track {
            touched: clock,
            ..Track::default()
        })
    }

    /// Forgets the least recently active network, preferring one not banned among the
    /// oldest few.
    fn evict_one(&mut self) {
        const LOOK_AT: usize = 16;
        let victim = self
            .order
            .iter()
            .take(LOOK_AT)
            .find(|(_, n)| self.tracks.get(n).is_none_or(|t| t.banned_until.is_none()))
            .or_else(|| self.order.iter().next())
            .map(|(k, n)| (*k, *n));
        if let Some((key, network)) = victim {
            self.order.remove(&key);
            self.tracks.remove(&network);
            self.evicted += 1;
        }
    }
}

/// `ban_time × factor^bans_before`, capped.
pub fn ban_duration(settings: &PolicySettings, bans_before: u32) -> Duration {
    let factor = u64::from(settings.ban_time_factor.max(1));
    let base = settings.ban_time.as_secs().max(1);
    let secs = factor
        .checked_pow(bans_before)
        .and_then(|f| base.checked_mul(f))
        .unwrap_or(u64::MAX);
    Duration::from_secs(secs.min(settings.ban_time_max.as_secs().max(base)))
}

#[cfg(test)]
mod tests;
