//! The pid table: which client each live sshd connection (process) serves.
//!
//! Some sshd lines carry no address (`kex_exchange_identification: …`, `Disconnecting: Too
//! many authentication failures`, PAM `check pass; user unknown`); like fail2ban, repute
//! attributes them through an earlier line of the same pid. The table is a fixed array of
//! slots indexed by (host, pid), direct-mapped: a new connection simply overwrites whatever
//! older one shared its slot, so memory is constant (under half a MiB) whatever the input, and
//! no line costs more than one probe. Entries are forgotten when a connection ends, and an
//! entry older than [`MAX_AGE_SECS`] is not trusted, so a recycled pid does not inherit an
//! old connection's address.

use std::net::IpAddr;

/// Slots in the table (a power of two).
const SLOTS: usize = 8192;

/// An entry older than this (by the lines' own time stamps) is ignored. sshd's pre-auth
/// phase lasts at most LoginGraceTime (120 s by default); authenticated sessions can last
/// longer, but their address-less lines are not attacks.
pub const MAX_AGE_SECS: i64 = 3600;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Pid + 1 (0 marks an empty slot).
    pid1: u32,
    host: u32,
    ip: Option<IpAddr>,
    port: Option<u16>,
    secs: Option<i64>,
    /// An address-less hostile line was seen before any address: the next line that names
    /// the client completes it.
    pending: bool,
}

/// What the table knows of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub pending: bool,
}

/// The bounded table of connections by (host, pid).
pub struct PidTable {
    slots: Box<[Slot]>,
}

impl std::fmt::Debug for PidTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.slots.iter().filter(|s| s.pid1 != 0).count();
        write!(
            f,
            "PidTable {{ {used} of {} slots used }}",
            self.slots.len()
        )
    }
}

impl Default for PidTable {
    fn default() -> Self {
        PidTable::with_slots(SLOTS)
    }
}

impl PidTable {
    /// A table of `slots` connections (a power of two; see `Connections::with_slots`).
    pub(crate) fn with_slots(slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two());
        PidTable {
            slots: vec![Slot::default(); slots].into_boxed_slice(),
        }
    }
}

/// A short hash of the host name, so that merged logs of several hosts keep their pids
/// apart (FNV-1a, enough for slot choice and a cheap equality check).
pub fn host_key(host: Option<&str>) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in host.unwrap_or("").bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

impl PidTable {
    fn index(&self, pid: u32, host: u32) -> usize {
        (pid ^ host.rotate_left(13)).wrapping_mul(0x9e37_79b9) as usize >> 19
            & (self.slots.len() - 1)
    }

    fn slot(&mut self, pid: u32, host: u32) -> &mut Slot {
        let index = self.index(pid, host);
        &mut self.slots[index]
    }

    /// Records the client of connection `pid` (keeps an earlier pending mark).
    pub fn remember(
        &mut self,
        pid: u32,
        host: u32,
        ip: Option<IpAddr>,
        port: Option<u16>,
        secs: Option<i64>,
    ) {
        let slot = self.slot(pid, host);
        let same = slot.pid1 == pid.wrapping_add(1) && slot.host == host;
        let pending = same && slot.pending && slot.ip.is_none();
        *slot = Slot {
            pid1: pid.wrapping_add(1),
            host,
            ip,
            port,
            secs,
            pending,
        };
    }

    /// Marks connection `pid` as having an address-less hostile line still to attribute.
    pub fn mark_pending(&mut self, pid: u32, host: u32, secs: Option<i64>) {
        let slot = self.slot(pid, host);
        if slot.pid1 != pid.wrapping_add(1) || slot.host != host {
            *slot = Slot {
                pid1: pid.wrapping_add(1),
                host,
                secs,
                pending: true,
                ..Slot::default()
            };
        } else {
            slot.pending = true;
        }
    }

    /// What is known of connection `pid`, if recent enough.
    pub fn get(&self, pid: u32, host: u32, secs: Option<i64>) -> Option<Known> {
        let slot = &self.slots[self.index(pid, host)];
        if slot.pid1 != pid.wrapping_add(1) || slot.host != host {
            return None;
        }
        if let (Some(then), Some(now)) = (slot.secs, secs)
            && (now - then).abs() > MAX_AGE_SECS
        {
            return None;
        }
        Some(Known {
            ip: slot.ip,
            port: slot.port,
            pending: slot.pending,
        })
    }

    /// Forgets connection `pid` (it ended).
    pub fn forget(&mut self, pid: u32, host: u32) {
        let slot = self.slot(pid, host);
        if slot.pid1 == pid.wrapping_add(1) && slot.host == host {
            *slot = Slot::default();
        }
    }

    /// Forgets everything (a new file, a rotated log).
    pub fn clear(&mut self) {
        self.slots.fill(Slot::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_host_and_pid_and_forgets() {
        let mut t = PidTable::default();
        let ip = "192.0.2.1".parse().ok();
        let (a, b) = (host_key(Some("a")), host_key(Some("b")));
        t.remember(10, a, ip, Some(22), Some(100));
        assert_eq!(t.get(10, a, Some(150)).map(|k| k.ip), Some(ip));
        assert_eq!(t.get(10, b, Some(150)), None);
        assert_eq!(t.get(11, a, Some(150)), None);
        assert_eq!(t.get(10, a, Some(100 + MAX_AGE_SECS + 1)), None);
        t.forget(10, a);
        assert_eq!(t.get(10, a, Some(150)), None);
    }

    #[test]
    fn pending_survives_until_an_address_arrives() {
        let mut t = PidTable::default();
        let h = host_key(None);
        t.mark_pending(7, h, None);
        assert!(t.get(7, h, None).unwrap().pending);
        t.remember(7, h, "192.0.2.2".parse().ok(), None, None);
        assert!(t.get(7, h, None).unwrap().pending);
    }

    #[test]
    fn memory_is_bounded_whatever_the_number_of_pids() {
        let mut t = PidTable::default();
        let h = host_key(Some("h"));
        for pid in 0..200_000u32 {
            t.remember(pid, h, None, None, None);
        }
        assert_eq!(t.slots.len(), SLOTS);
        assert!(SLOTS * std::mem::size_of::<Slot>() < 512 * 1024);
        assert_eq!(
            format!("{t:?}"),
            format!("PidTable {{ {SLOTS} of {SLOTS} slots used }}")
        );
        assert!(t.get(199_999, h, None).is_some());
    }
}
