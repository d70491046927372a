//! The block service the commands use: safety checks, the entry limit, the kernel, the state.
//!
//! The state table is the record of intent and the kernel set the enforcement. `list`
//! reconciles the two: a recorded block whose time is up is forgotten and taken out of the
//! kernel if still there; a recorded block still running but missing from the kernel (a reboot,
//! `nft flush ruleset`, a change of backend) is put back for the time it has left, but only if
//! it still passes the address checks: an address allowlisted since, or the peer of the SSH
//! session running `list` (an administrator back after a reboot), is not put back; its record
//! is forgotten and the listing says why. Records added with `--force` are not marked as such,
//! so they too are restored only when they pass the checks. An address in the kernel set that
//! nobody recorded is shown with no reason and left alone. `flush` restores nothing.
//!
//! Every change (and `list`, which may change things) holds the state's change lock, so two
//! processes cannot both pass the entry limit or both insert the same iptables rule.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::safety::{Refusal, SafetyPolicy};
use super::state::{BlockDecision, Enforcement, Origin, Record, State};
use super::{BlockError, Firewall, KernelEntry};
use crate::addr::canonical;
use crate::config::Config;

/// A request to block one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub ip: IpAddr,
    pub duration: Duration,
    pub reason: Option<String>,
    /// Skip the address checks (not the entry limit, which protects the kernel).
    pub force: bool,
}

/// What `add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub ip: IpAddr,
    pub duration: Duration,
    /// The address was already blocked; its timeout was renewed.
    pub renewed: bool,
    pub backend: &'static str,
}

/// What an active-response `add` did. Active response never shortens a block that runs
/// longer, and never re-labels an administrator's block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArAdded {
    /// Blocked, or an active-response block renewed, as asked.
    Applied(Added),
    /// A block running at least as long was there: left exactly as it was.
    KeptLonger(BlockDecision),
    /// An administrator's shorter block: its time was extended to the request's, its
    /// reason and origin kept (so an active-response `delete` will not remove it either).
    ExtendedManual(BlockDecision),
}

/// What an active-response `delete` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArDeleted {
    /// The active-response block was removed.
    Removed,
    /// An administrator's block: left in place.
    KeptManual(BlockDecision),
    /// In the kernel set but recorded by nobody (added by hand with nft or ipset): left.
    KeptUnrecorded,
    /// Not blocked at all.
    NotBlocked,
}

/// One blocked address, as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    pub ip: IpAddr,
    /// Seconds the kernel will keep it; `null` when it has no timeout.
    pub remaining_secs: Option<u64>,
    /// Why it was blocked, when repute blocked it.
    pub reason: Option<String>,
    /// The backend that blocked it, when repute blocked it.
    pub backend: Option<String>,
    /// It was missing from the kernel and was put back by this listing.
    pub restored: bool,
    /// It was missing from the kernel and a safety check refused to put it back (the
    /// refusal, as text); its record has been forgotten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_restored: Option<String>,
}

/// Blocks and unblocks addresses with one backend and one state store.
pub struct Blocker {
    firewall: Box<dyn Firewall>,
    state: State,
    safety: SafetyPolicy,
    max_entries: usize,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Blocker {
    pub fn new(
        firewall: Box<dyn Firewall>,
        state: State,
        safety: SafetyPolicy,
        max_entries: usize,
    ) -> Self {
        Blocker {
            firewall,
            state,
            safety,
            max_entries,
        }
    }

    /// The blocker a command uses: backend, store and allowlist from `config`, the host's
    /// addresses and the SSH session from this process.
    pub fn for_config(config: &Config) -> Result<Self, BlockError> {
        let firewall = super::open_backend(&config.block)?;
        let state = State::open(&config.store_path())?;
        let safety = SafetyPolicy::for_this_host(config.allowlist.clone())
            .map_err(BlockError::Interfaces)?;
        Ok(Blocker::new(
            firewall,
            state,
            safety,
            config.block.max_entries,
        ))
    }

    pub fn backend(&self) -> &'static str {
        self.firewall.name()
    }

    /// The address checks alone (for a command that wants to refuse before anything else).
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.safety.check(ip)
    }

    /// Blocks `request.ip` for `request.duration`, unless a check refuses it: an
    /// administrator's block, which replaces whatever was there.
    pub fn add(&self, request: &Request) -> Result<Added, BlockError> {
        let ip = canonical(request.ip);
        if !request.force {
            self.safety
                .check(ip)
                .map_err(|reason| BlockError::Refused { ip, reason })?;
        }
        let _lock = self.state.lock()?;
        self.apply(ip, request, Origin::Manual, unix_now())
    }

    /// Blocks for Wazuh's active response: as [`Blocker::add`], except that a block already
    /// running longer is kept as it is, and an administrator's block keeps its reason (and
    /// is only ever extended).
    pub fn add_for_active_response(&self, request: &Request) -> Result<ArAdded, BlockError> {
        let ip = canonical(request.ip);
        if !request.force {
            self.safety
                .check(ip)
                .map_err(|reason| BlockError::Refused { ip, reason })?;
        }
        let _lock = self.state.lock()?;
        let now = unix_now();
        let secs = i64::try_from(request.duration.as_secs()).unwrap_or(i64::MAX);
        let wanted_until = now.saturating_add(secs);
        // Judged by the decision alone: who asked, and until when.
        let running = self
            .state
            .get(ip)?
            .map(|r| r.decision)
            .filter(|d| d.until > now);
        match running {
            Some(decision) if decision.until >= wanted_until => Ok(ArAdded::KeptLonger(decision)),
            Some(decision) if decision.origin == Origin::Manual => {
                let keep = Request {
                    reason: decision.reason.clone(),
                    ..request.clone()
                };
                self.apply(ip, &keep, Origin::Manual, now)?;
                Ok(ArAdded::ExtendedManual(BlockDecision {
                    until: wanted_until,
                    ..decision
                }))
            }
            _ => self
                .apply(ip, request, Origin::ActiveResponse, now)
                .map(ArAdded::Applied),
        }
    }

    /// Unblocks for Wazuh's active response: only a block active response made (see
    /// [`ArDeleted`]).
    pub fn del_for_active_response(&self, ip: IpAddr) -> Result<ArDeleted, BlockError> {
        let ip = canonical(ip);
        let _lock = self.state.lock()?;
        let now = unix_now();
        match self.state.get(ip)?.map(|r| r.decision) {
            Some(decision) if decision.origin == Origin::Manual && decision.until > now => {
                Ok(ArDeleted::KeptManual(decision))
            }
            Some(_) => {
                self.firewall.del(ip)?;
                self.state.remove(ip)?;
                Ok(ArDeleted::Removed)
            }
            None if self.firewall.list()?.iter().any(|e| e.ip == ip) => {
                Ok(ArDeleted::KeptUnrecorded)
            }
            None => Ok(ArDeleted::NotBlocked),
        }
    }

    /// Applies a block under the change lock: the entry limit, the kernel, the state.
    fn apply(
        &self,
        ip: IpAddr,
        request: &Request,
        origin: Origin,
        now: i64,
    ) -> Result<Added, BlockError> {
        let refused = |reason| BlockError::Refused { ip, reason };
        let active = self.active_addresses(now)?;
        let renewed = active.contains(&ip);
        if !renewed && active.len() >= self.max_entries {
            return Err(refused(Refusal::Full {
                max: self.max_entries,
            }));
        }
        self.firewall.ensure()?;
        self.firewall.add(ip, request.duration)?;
        // Whole seconds, rounded down: the state never outlives the kernel entry.
        let secs = i64::try_from(request.duration.as_secs()).unwrap_or(i64::MAX);
        self.state.put(&Record {
            decision: BlockDecision {
                ip,
                until: now.saturating_add(secs),
                reason: request.reason.clone(),
                origin,
            },
            enforcement: Enforcement {
                backend: self.firewall.name().to_string(),
                applied_at: now,
            },
        })?;
        Ok(Added {
            ip,
            duration: request.duration,
            renewed,
            backend: self.firewall.name(),
        })
    }

    /// Whether `ip` is blocked now (in the kernel, or recorded and not expired).
    pub fn is_blocked(&self, ip: IpAddr) -> Result<bool, BlockError> {
        Ok(self.active_addresses(unix_now())?.contains(&canonical(ip)))
    }

    /// Unblocks `ip`; returns whether it was blocked (in the kernel or the state).
    pub fn del(&self, ip: IpAddr) -> Result<bool, BlockError> {
        let ip = canonical(ip);
        let _lock = self.state.lock()?;
        let in_kernel = self.firewall.del(ip)?;
        let in_state = self.state.remove(ip)?;
        Ok(in_kernel || in_state)
    }

    /// Empties the kernel sets and the state; returns how many addresses were blocked (in
    /// the kernel, or recorded and not expired). Nothing is restored first.
    pub fn flush(&self) -> Result<usize, BlockError> {
        let _lock = self.state.lock()?;
        let count = self.active_addresses(unix_now())?.len();
        self.firewall.flush()?;
        self.state.clear()?;
        Ok(count)
    }

    /// Addresses blocked now: in the kernel, or recorded and not yet expired.
    fn active_addresses(&self, now: i64) -> Result<HashSet<IpAddr>, BlockError> {
        let mut active: HashSet<IpAddr> = self.firewall.list()?.into_iter().map(|e| e.ip).collect();
        for Record { decision, .. } in self.state.all()? {
            if decision.until > now {
                active.insert(decision.ip);
            }
        }
        Ok(active)
    }

    /// Every blocked address, after reconciling the state with the kernel (see the module
    /// documentation).
    pub fn list(&self) -> Result<Vec<Listed>, BlockError> {
        let _lock = self.state.lock()?;
        let now = unix_now();
        let mut kernel = self.firewall.list()?;
        let mut listed = Vec::new();
        for record in self.state.all()? {
            let decision = &record.decision;
            let position = kernel.iter().position(|e| e.ip == decision.ip);
            let entry = position.map(|i| kernel.swap_remove(i));
            if decision.until <= now {
                self.forget(decision, entry.is_some())?;
                continue;
            }
            let restored = entry.is_none();
            let remaining = match entry {
                Some(e) => e.remaining,
                None => match self.safety.check(decision.ip) {
                    Ok(()) => Some(self.restore(decision, now)?),
                    Err(refusal) => {
                        listed.push(self.refuse_restore(record, &refusal)?);
                        continue;
                    }
                },
            };
            let Record {
                decision,
                enforcement,
            } = record;
            listed.push(Listed {
                ip: decision.ip,
                remaining_secs: remaining.map(|d| d.as_secs()),
                reason: decision.reason,
                backend: Some(enforcement.backend),
                restored,
                not_restored: None,
            });
        }
        listed.extend(kernel.into_iter().map(unrecorded));
        Ok(listed)
    }

    /// An expired record: out of the state, and out of the kernel if it lingers there.
    fn forget(&self, decision: &BlockDecision, in_kernel: bool) -> Result<(), BlockError> {
        if in_kernel {
            self.firewall.del(decision.ip)?;
        }
        self.state.remove(decision.ip).map(drop)
    }

    /// A running block missing from the kernel that the checks no longer allow: forgotten,
    /// not put back, and listed with the refusal so the operator sees what happened.
    fn refuse_restore(&self, record: Record, refusal: &Refusal) -> Result<Listed, BlockError> {
        let Record {
            decision,
            enforcement,
        } = record;
        self.state.remove(decision.ip)?;
        Ok(Listed {
            ip: decision.ip,
            remaining_secs: None,
            reason: decision.reason,
            backend: Some(enforcement.backend),
            restored: false,
            not_restored: Some(refusal.to_string()),
        })
    }

    /// Puts a running block back into the kernel for the time it has left.
    fn restore(&self, decision: &BlockDecision, now: i64) -> Result<Duration, BlockError> {
        let left = Duration::from_secs(u64::try_from(decision.until - now).unwrap_or(1));
        self.firewall.ensure()?;
        self.firewall.add(decision.ip, left)?;
        Ok(left)
    }
}

fn unrecorded(entry: KernelEntry) -> Listed {
    Listed {
        ip: entry.ip,
        remaining_secs: entry.remaining.map(|d| d.as_secs()),
        reason: None,
        backend: None,
        restored: false,
        not_restored: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

    use super::*;

    /// An in-memory firewall, so the reconciliation logic is tested without a kernel (the
    /// kernel paths are tested end to end in `tests/block_*.rs`, inside a namespace).
    #[derive(Default)]
    struct MemoryFirewall {
        entries: Mutex<HashMap<IpAddr, Duration>>,
    }

    impl MemoryFirewall {
        fn entries(&self) -> MutexGuard<'_, HashMap<IpAddr, Duration>> {
            self.entries.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl Firewall for Arc<MemoryFirewall> {
        fn name(&self) -> &'static str {
            "memory"
        }
        fn ensure(&self) -> Result<(), BlockError> {
            Ok(())
        }
        fn add(&self, ip: IpAddr, timeout: Duration) -> Result<(), BlockError> {
            self.entries().insert(ip, timeout);
            Ok(())
        }
        fn del(&self, ip: IpAddr) -> Result<bool, BlockError> {
            Ok(self.entries().remove(&ip).is_some())
        }
        fn list(&self) -> Result<Vec<KernelEntry>, BlockError> {
            let entries = self.entries();
            Ok(entries
                .iter()
                .map(|(ip, t)| KernelEntry {
                    ip: *ip,
                    remaining: Some(*t),
                })
                .collect())
        }
        fn flush(&self) -> Result<(), BlockError> {
            self.entries().clear();
            Ok(())
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0u8; 4]))
    }

    fn setup(max: usize) -> Result<(tempfile::TempDir, Arc<MemoryFirewall>, Blocker), BlockError> {
        let dir = tempfile::tempdir().map_err(|source| BlockError::Spawn {
            program: "tempdir".into(),
            source,
        })?;
        let fw = Arc::new(MemoryFirewall::default());
        let state = State::open(&dir.path().join("store.sqlite"))?;
        let blocker = Blocker::new(Box::new(fw.clone()), state, SafetyPolicy::default(), max);
        Ok((dir, fw, blocker))
    }

    fn forced(addr: &str, secs: u64, reason: Option<&str>) -> Request {
        Request {
            ip: ip(addr),
            duration: Duration::from_secs(secs),
            reason: reason.map(str::to_string),
            force: true,
        }
    }

    #[test]
    fn flushed_kernel_set_is_restored_from_state() -> Result<(), BlockError> {
        let (_dir, fw, blocker) = setup(10)?;
        blocker.add(&forced("45.155.205.233", 600, Some("brute force")))?;
        fw.entries().clear();
        let listed = blocker.list()?;
        assert_eq!(listed.len(), 1);
        assert!(listed[0].restored);
        assert_eq!(listed[0].reason.as_deref(), Some("brute force"));
        assert!(fw.entries().contains_key(&ip("45.155.205.233")));
        Ok(())
    }

    #[test]
    fn refused_record_is_not_restored_and_forgotten() -> Result<(), BlockError> {
        let (_dir, fw, mut blocker) = setup(10)?;
        blocker.add(&forced("45.155.205.233", 600, Some("brute force")))?;
        fw.entries().clear();
        blocker.safety.session_peers = vec![(ip("45.155.205.233"), "SSH_CLIENT")];
        let listed = blocker.list()?;
        assert_eq!(listed.len(), 1);
        assert!(!listed[0].restored);
        let why = listed[0].not_restored.as_deref().unwrap_or_default();
        assert!(why.contains("SSH session"), "{why}");
        assert!(fw.entries().is_empty());
        assert!(blocker.state.all()?.is_empty());
        assert!(blocker.list()?.is_empty());
        Ok(())
    }

    #[test]
    fn forced_non_public_record_is_not_restored() -> Result<(), BlockError> {
        let (_dir, fw, blocker) = setup(10)?;
        blocker.add(&forced("10.0.0.1", 600, None))?;
        fw.entries().clear();
        let listed = blocker.list()?;
        assert_eq!(listed.len(), 1);
        let why = listed[0].not_restored.as_deref().unwrap_or_default();
        assert!(why.starts_with("not a public address"), "{why}");
        assert!(fw.entries().is_empty());
        Ok(())
    }

    #[test]
    fn flush_restores_nothing_and_counts() -> Result<(), BlockError> {
        let (_dir, fw, blocker) = setup(10)?;
        blocker.add(&forced("45.155.205.233", 600, None))?;
        blocker.add(&forced("203.0.113.10", 600, None))?;
        fw.entries().remove(&ip("45.155.205.233"));
        assert_eq!(blocker.flush()?, 2);
        assert!(fw.entries().is_empty());
        assert!(blocker.state.all()?.is_empty());
        Ok(())
    }

    #[test]
    fn expired_record_is_removed_from_state_and_kernel() -> Result<(), BlockError> {
        let (_dir, fw, blocker) = setup(10)?;
        blocker.add(&forced("203.0.113.9", 600, None))?;
        // Make the record expired while the kernel entry lingers.
        blocker.state.put(&Record {
            decision: BlockDecision {
                ip: ip("203.0.113.9"),
                until: unix_now() - 1,
                reason: None,
                origin: Origin::Manual,
            },
            enforcement: Enforcement {
                backend: "memory".into(),
                applied_at: unix_now() - 601,
            },
        })?;
        assert!(blocker.list()?.is_empty());
        assert!(fw.entries().is_empty());
        assert!(blocker.state.all()?.is_empty());
        Ok(())
    }

    #[test]
    fn unrecorded_kernel_entries_are_listed_without_reason() -> Result<(), BlockError> {
        let (_dir, fw, blocker) = setup(10)?;
        fw.add(ip("198.51.100.7"), Duration::from_secs(30))?;
        let listed = blocker.list()?;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].reason, None);
        assert_eq!(listed[0].remaining_secs, Some(30));
        Ok(())
    }

    #[test]
    fn limit_holds_even_when_forced_but_renewal_passes() -> Result<(), BlockError> {
        let (_dir, _fw, blocker) = setup(1)?;
        blocker.add(&forced("203.0.113.9", 60, None))?;
        let second = blocker.add(&forced("203.0.113.10", 60, None));
        assert!(matches!(
            second,
            Err(BlockError::Refused {
                reason: Refusal::Full { max: 1 },
                ..
            })
        ));
        let renewed = blocker.add(&forced("203.0.113.9", 120, None))?;
        assert!(renewed.renewed);
        Ok(())
    }

    #[test]
    fn unforced_non_public_is_refused_and_nothing_applied() -> Result<(), BlockError> {
        let (_dir, fw, blocker) = setup(10)?;
        let mut request = forced("10.0.0.1", 60, None);
        request.force = false;
        assert!(matches!(
            blocker.add(&request),
            Err(BlockError::Refused { .. })
        ));
        assert!(fw.entries().is_empty());
        assert!(blocker.state.all()?.is_empty());
        Ok(())
    }

    #[test]
    fn mapped_addresses_are_blocked_as_ipv4_and_deleted() -> Result<(), BlockError> {
        let (_dir, fw, blocker) = setup(10)?;
        let added = blocker.add(&forced("::ffff:203.0.113.9", 60, None))?;
        assert_eq!(added.ip, ip("203.0.113.9"));
        assert!(fw.entries().contains_key(&ip("203.0.113.9")));
        assert!(blocker.del(ip("203.0.113.9"))?);
        assert!(!blocker.del(ip("203.0.113.9"))?);
        Ok(())
    }

    #[test]
    fn active_response_never_shortens_relabels_or_removes_a_manual_block() -> Result<(), BlockError>
    {
        let (_dir, fw, blocker) = setup(10)?;
        let manual = forced("45.155.205.233", 30 * 86_400, Some("manual"));
        blocker.add(&manual)?;
        let ar = forced("45.155.205.233", 600, Some("sshd brute force"));
        let kept = blocker.add_for_active_response(&ar)?;
        assert!(
            matches!(&kept, ArAdded::KeptLonger(r) if r.reason.as_deref() == Some("manual")),
            "{kept:?}"
        );
        let record = blocker
            .state
            .get(ip("45.155.205.233"))?
            .expect("recorded")
            .decision;
        assert_eq!(record.reason.as_deref(), Some("manual"));
        assert!(record.until > unix_now() + 29 * 86_400, "not shortened");
        assert_eq!(
            fw.entries().get(&ip("45.155.205.233")),
            Some(&Duration::from_secs(30 * 86_400)),
            "the kernel timeout is untouched"
        );
        let deleted = blocker.del_for_active_response(ip("45.155.205.233"))?;
        assert!(matches!(deleted, ArDeleted::KeptManual(_)), "{deleted:?}");
        assert!(fw.entries().contains_key(&ip("45.155.205.233")));
        assert!(blocker.state.get(ip("45.155.205.233"))?.is_some());
        Ok(())
    }

    #[test]
    fn active_response_extends_a_shorter_manual_block_but_keeps_it_manual() -> Result<(), BlockError>
    {
        let (_dir, fw, blocker) = setup(10)?;
        blocker.add(&forced("203.0.113.9", 60, Some("manual")))?;
        let extended =
            blocker.add_for_active_response(&forced("203.0.113.9", 3600, Some("rule 5763")))?;
        assert!(
            matches!(extended, ArAdded::ExtendedManual(_)),
            "{extended:?}"
        );
        let record = blocker
            .state
            .get(ip("203.0.113.9"))?
            .expect("recorded")
            .decision;
        assert_eq!(record.reason.as_deref(), Some("manual"));
        assert_eq!(record.origin, Origin::Manual);
        assert_eq!(
            fw.entries().get(&ip("203.0.113.9")),
            Some(&Duration::from_secs(3600))
        );
        assert!(matches!(
            blocker.del_for_active_response(ip("203.0.113.9"))?,
            ArDeleted::KeptManual(_)
        ));
        Ok(())
    }

    #[test]
    fn active_response_blocks_are_renewed_and_removed_by_active_response() -> Result<(), BlockError>
    {
        let (_dir, fw, blocker) = setup(10)?;
        let first = blocker.add_for_active_response(&forced("203.0.113.10", 600, Some("a")))?;
        assert!(matches!(first, ArAdded::Applied(_)), "{first:?}");
        // A shorter one keeps the longer block; a longer one renews it.
        let shorter = blocker.add_for_active_response(&forced("203.0.113.10", 60, Some("b")))?;
        assert!(matches!(shorter, ArAdded::KeptLonger(_)), "{shorter:?}");
        let longer = blocker.add_for_active_response(&forced("203.0.113.10", 1200, Some("c")))?;
        assert!(
            matches!(longer, ArAdded::Applied(ref a) if a.renewed),
            "{longer:?}"
        );
        assert_eq!(
            blocker.del_for_active_response(ip("203.0.113.10"))?,
            ArDeleted::Removed
        );
        assert!(fw.entries().is_empty());
        // Somebody's own nft entry is not active response's to remove.
        fw.add(ip("198.51.100.7"), Duration::from_secs(30))?;
        assert_eq!(
            blocker.del_for_active_response(ip("198.51.100.7"))?,
            ArDeleted::KeptUnrecorded
        );
        assert_eq!(
            blocker.del_for_active_response(ip("198.51.100.8"))?,
            ArDeleted::NotBlocked
        );
        Ok(())
    }
}
