//! Per-connection logic: how many attempts each line adds, so that one try counts once.
//!
//! sshd and PAM describe one password try of an unknown user in up to five lines (`Invalid
//! user …`, `pam_unix(sshd:auth): check pass; user unknown`, `pam_unix(sshd:auth):
//! authentication failure; … rhost=…`, `Failed password for invalid user …`, `Connection
//! closed by invalid user … [preauth]`). Each line keeps its own honest `kind` and
//! `outcome`; this module only decides how many *attempts* (tries of a user and password or
//! key, or probes of a connection that tried nothing) a line adds for its address, as
//! fail2ban does per connection:
//!
//! - A line that opens a try (`Invalid user`, `User … not allowed`, `ROOT LOGIN REFUSED`)
//!   counts one; the `Failed …` line of the same connection (pid) that closes that try
//!   counts none. Other `Failed …` lines count one each (`Failed none`, a client asking
//!   which methods exist, only when the connection has counted nothing yet).
//! - Lines that end or summarise a connection (`Connection closed by …`, `Disconnecting:
//!   Too many authentication failures`, `PAM N more authentication failures`, `maximum
//!   authentication attempts exceeded`, a `kex_exchange_identification` probe) count one
//!   only when the connection counted nothing yet: a scan or probe is one attempt.
//! - PAM's own lines come from a process of their own whose pid nothing else names, so the
//!   address after `rhost=` is their only link: they are held per address, not counted. The
//!   next `Failed …` line of that address is the same try and takes one held line back.
//!   Held lines count only when the address tries a second user name (old logs have no
//!   `Failed` lines at all: fail2ban's "attempt 2nd user").
//! - An `Accepted …` line after tries of other user names (on the connection, or in PAM's
//!   lines of its address) is the end of an attack, not a login that cancels it: it counts
//!   what was held plus one ("intruder tries to forget failed attempts by a success login").
//!   Otherwise a success forgets what its address held.
//!
//! Memory is fixed, like the pid table's: connections in direct-mapped slots by (host, pid),
//! PAM's held lines in direct-mapped slots by (host, address); a newcomer overwrites an old
//! entry, and entries older than [`super::pids::MAX_AGE_SECS`] are ignored. User names are
//! kept as 64-bit hashes, with the backslashes sshd escapes (once in one message, twice in
//! another before OpenSSH 10.3) collapsed so that one name does not look like two.

use std::net::IpAddr;

use crate::{Kind, Outcome};

use super::pids::MAX_AGE_SECS;

/// Connection slots (a power of two), as many as the pid table's.
const CONN_SLOTS: usize = 8192;
/// Address slots for PAM's held lines (a power of two).
const ADDR_SLOTS: usize = 4096;

/// What one connection (pid) has done so far.
#[derive(Debug, Clone, Copy, Default)]
struct Conn {
    /// Pid + 1 (0 marks an empty slot).
    pid1: u32,
    host: u32,
    secs: Option<i64>,
    /// Attempts counted for this connection.
    counted: u32,
    /// Attempts of lines that named no address (`kex_exchange_identification: …`), handed
    /// to the next line of the connection that names one.
    owed: u32,
    /// A try was opened (`Invalid user`, `not allowed`) and its `Failed` line is still to come.
    try_open: bool,
    users: UserSet,
}

/// PAM's failure lines of one address, not yet matched by sshd's own `Failed` lines.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    ip: Option<IpAddr>,
    host: u32,
    secs: Option<i64>,
    /// PAM failure lines held (not counted).
    held: u32,
    /// PAM failure lines already counted (after a second user name): the `Failed` line of
    /// the same try counts none.
    counted: u32,
    /// Tries of this address already counted by the line that opened them (`Invalid user`)
    /// and not yet closed by their `Failed` line: a PAM failure line meanwhile is one of them.
    open: u32,
    users: UserSet,
}

/// The user names seen, as far as "one name" or "several names" goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct UserSet {
    first: Option<u64>,
    several: bool,
}

impl UserSet {
    fn add(&mut self, user: Option<&str>) {
        let Some(key) = user.filter(|u| !u.is_empty()).map(user_key) else {
            return;
        };
        match self.first {
            None => self.first = Some(key),
            Some(first) if first != key => self.several = true,
            Some(_) => {}
        }
    }

    /// True when `user` (if any) and the names seen make more than one name.
    fn several_with(&self, user: Option<&str>) -> bool {
        let mut all = *self;
        all.add(user);
        all.several
    }

    fn merge(&mut self, other: UserSet) {
        if let Some(first) = other.first {
            match self.first {
                None => self.first = Some(first),
                Some(mine) if mine != first => self.several = true,
                Some(_) => {}
            }
        }
        self.several |= other.several;
    }
}

/// A hash of a user name with every run of backslashes counted as one: sshd escapes a
/// backslash as `\\` in the lines its monitor writes and as `\\\\` in the lines the
/// pre-auth child writes (escaped twice before OpenSSH 10.3).
pub fn user_key(user: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut last_backslash = false;
    for b in user.bytes() {
        if b == b'\\' && last_backslash {
            continue;
        }
        last_backslash = b == b'\\';
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The per-connection state of one parser (see the module documentation).
pub struct Connections {
    conns: Box<[Conn]>,
    held: Box<[Held]>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let conns = self.conns.iter().filter(|c| c.pid1 != 0).count();
        let held = self.held.iter().filter(|h| h.ip.is_some()).count();
        write!(f, "Connections {{ {conns} connections, {held} addresses }}")
    }
}

impl Default for Connections {
    fn default() -> Self {
        Connections::with_slots(CONN_SLOTS, ADDR_SLOTS)
    }
}

impl Connections {
    /// Tables of `conns` connections and `held` addresses (powers of two): a reader of one
    /// line (a Wazuh alert's log) needs one of each, not the megabyte a log reader keeps,
    /// which costs a one-alert process a millisecond of page faults.
    pub(crate) fn with_slots(conns: usize, held: usize) -> Self {
        debug_assert!(conns.is_power_of_two() && held.is_power_of_two());
        Connections {
            conns: vec![Conn::default(); conns].into_boxed_slice(),
            held: vec![Held::default(); held].into_boxed_slice(),
        }
    }
}

/// What the connection logic needs to know of one line.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub host: u32,
    pub pid: Option<u32>,
    pub secs: Option<i64>,
    pub kind: Kind,
    pub outcome: Outcome,
    pub srcip: Option<IpAddr>,
    pub user: Option<&'a str>,
    pub ends_connection: bool,
}

fn fresh(then: Option<i64>, now: Option<i64>) -> bool {
    match (then, now) {
        (Some(then), Some(now)) => (now - then).abs() <= MAX_AGE_SECS,
        _ => true,
    }
}

impl Connections {
    fn conn_index(&self, pid: u32, host: u32) -> usize {
        (pid ^ host.rotate_left(7)).wrapping_mul(0x9e37_79b9) as usize >> 13
            & (self.conns.len() - 1)
    }

    fn addr_index(&self, ip: IpAddr, host: u32) -> usize {
        let bits: u128 = match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        let folded = (bits as u64) ^ ((bits >> 64) as u64) ^ u64::from(host);
        (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize & (self.held.len() - 1)
    }

    /// The connection of `pid`, started afresh when its slot held another or a stale one.
    fn conn(&mut self, pid: u32, host: u32, secs: Option<i64>) -> &mut Conn {
        let index = self.conn_index(pid, host);
        let slot = &mut self.conns[index];
        let same = slot.pid1 == pid.wrapping_add(1) && slot.host == host;
        if !same || !fresh(slot.secs, secs) {
            *slot = Conn {
                pid1: pid.wrapping_add(1),
                host,
                ..Conn::default()
            };
        }
        if secs.is_some() {
            slot.secs = secs;
        }
        slot
    }

    /// PAM's held lines of `ip`, started afresh when its slot held another or a stale one.
    fn held(&mut self, ip: IpAddr, host: u32, secs: Option<i64>) -> &mut Held {
        let index = self.addr_index(ip, host);
        let slot = &mut self.held[index];
        if slot.ip != Some(ip) || slot.host != host || !fresh(slot.secs, secs) {
            *slot = Held {
                ip: Some(ip),
                host,
                ..Held::default()
            };
        }
        if secs.is_some() {
            slot.secs = secs;
        }
        slot
    }

    /// How many attempts `line` adds for its address (see the module documentation).
    pub fn attempts(&mut self, line: &Line<'_>) -> u32 {
        let n = self.decide(line);
        if line.ends_connection
            && let Some(pid) = line.pid
        {
            let index = self.conn_index(pid, line.host);
            let slot = &mut self.conns[index];
            if slot.pid1 == pid.wrapping_add(1) && slot.host == line.host {
                let was_open = slot.try_open;
                *slot = Conn::default();
                // A try opened and never closed by a `Failed` line (a scan of user names).
                if was_open && let Some(ip) = line.srcip {
                    let h = self.held(ip, line.host, line.secs);
                    h.open = h.open.saturating_sub(1);
                }
            }
        }
        n
    }

    fn decide(&mut self, line: &Line<'_>) -> u32 {
        match line.kind {
            Kind::PamUserUnknown => 0,
            Kind::PamAuthFailure => self.pam_failure(line),
            Kind::Accepted => self.accepted(line),
            _ if !line.outcome.is_attack() => 0,
            Kind::InvalidUser | Kind::NotAllowed | Kind::AccountLocked | Kind::RootLoginRefused => {
                let (opened, n) = self.with_conn_state(line, |c| {
                    let opened = !c.try_open;
                    c.try_open = true;
                    (opened, 1)
                });
                if opened && let Some(ip) = line.srcip {
                    let h = self.held(ip, line.host, line.secs);
                    h.open = h.open.saturating_add(1);
                }
                n
            }
            Kind::FailedPassword
            | Kind::FailedPublickey
            | Kind::FailedKeyboardInteractive
            | Kind::FailedOther
            | Kind::PamError
            | Kind::AuthFailDisconnect => {
                let (try_open, n) = self.with_conn_state(line, |c| {
                    let open = c.try_open;
                    c.try_open = false;
                    (open, u32::from(!open))
                });
                // The PAM line of this try, if any, is this try: take it back.
                let n = match line.srcip {
                    Some(ip) => {
                        let h = self.held(ip, line.host, line.secs);
                        h.users.add(line.user);
                        if try_open && h.open > 0 {
                            // Its PAM line, if any, was not held (see `pam_failure`).
                            h.open -= 1;
                            0
                        } else if h.counted > 0 {
                            h.counted -= 1;
                            0
                        } else {
                            h.held = h.held.saturating_sub(1);
                            n
                        }
                    }
                    None => n,
                };
                if try_open { 0 } else { n }
            }
            Kind::ChangeOfUsername => self.with_conn(line, |_| 1),
            // Probes and the lines that end or summarise a connection: one attempt for a
            // connection that counted nothing else.
            _ => self.with_conn(line, |c| u32::from(c.counted == 0)),
        }
    }

    /// Runs `f` on the line's connection (a pid-less line is its own connection) and counts
    /// what it returns there.
    fn with_conn(&mut self, line: &Line<'_>, f: impl FnOnce(&mut Conn) -> u32) -> u32 {
        self.with_conn_state(line, |c| ((), f(c))).1
    }

    fn with_conn_state<T>(
        &mut self,
        line: &Line<'_>,
        f: impl FnOnce(&mut Conn) -> (T, u32),
    ) -> (T, u32) {
        let mut alone = Conn::default();
        let conn = match line.pid {
            Some(pid) => self.conn(pid, line.host, line.secs),
            None => &mut alone,
        };
        conn.users.add(line.user);
        let (t, n) = f(conn);
        conn.counted = conn.counted.saturating_add(n);
        // An address-less line's attempt goes to the connection's address once a line names
        // it (the pid table fills that address in), or stays without one at the end.
        let n = match (line.srcip, line.pid) {
            (None, Some(_)) if !line.ends_connection => {
                conn.owed = conn.owed.saturating_add(n);
                0
            }
            _ => n.saturating_add(std::mem::take(&mut conn.owed)),
        };
        (t, n)
    }

    /// PAM's `authentication failure; … rhost=A[ user=U]` (or `ruser=U`): held for A, unless
    /// A has now tried a second user name, which releases what was held.
    fn pam_failure(&mut self, line: &Line<'_>) -> u32 {
        let Some(ip) = line.srcip else { return 0 };
        let h = self.held(ip, line.host, line.secs);
        if h.open > 0 {
            // The try an `Invalid user` line of this address opened and counted.
            h.users.add(line.user);
            0
        } else if h.users.several_with(line.user) {
            h.users.add(line.user);
            let n = h.held + 1;
            h.held = 0;
            h.counted = h.counted.saturating_add(1);
            n
        } else {
            h.users.add(line.user);
            h.held = h.held.saturating_add(1);
            0
        }
    }

    /// `Accepted …`: an attack's end when its connection or address tried other names.
    fn accepted(&mut self, line: &Line<'_>) -> u32 {
        let mut users = UserSet::default();
        if let Some(pid) = line.pid {
            users = self.conn(pid, line.host, line.secs).users;
        }
        let mut held = 0;
        if let Some(ip) = line.srcip {
            let h = self.held(ip, line.host, line.secs);
            users.merge(h.users);
            held = h.held;
            *h = Held::default();
        }
        if users.several_with(line.user) {
            held + 1
        } else {
            0
        }
    }

    /// Forgets everything (a new file).
    pub fn clear(&mut self) {
        self.conns.fill(Conn::default());
        self.held.fill(Held::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(
        pid: u32,
        kind: Kind,
        outcome: Outcome,
        ip: &str,
        user: Option<&'a str>,
    ) -> Line<'a> {
        Line {
            host: 1,
            pid: Some(pid),
            secs: Some(100),
            kind,
            outcome,
            srcip: ip.parse().ok(),
            user,
            ends_connection: false,
        }
    }

    #[test]
    fn backslashes_escaped_once_or_twice_are_one_name() {
        assert_eq!(user_key(r"a\\b"), user_key(r"a\\\\b"));
        assert_ne!(user_key("ab"), user_key(r"a\\b"));
    }

    #[test]
    fn memory_is_fixed() {
        let c = Connections::default();
        let bytes =
            CONN_SLOTS * std::mem::size_of::<Conn>() + ADDR_SLOTS * std::mem::size_of::<Held>();
        assert!(bytes < 1024 * 1024, "{bytes}");
        assert_eq!(
            format!("{c:?}"),
            "Connections { 0 connections, 0 addresses }"
        );
    }

    #[test]
    fn one_password_try_of_an_unknown_user_is_one_attempt() {
        use Kind as K;
        use Outcome::{Failure as F, Probe as P};
        let mut c = Connections::default();
        let a = "203.0.113.5";
        let mut n = 0;
        n += c.attempts(&line(10, K::InvalidUser, F, a, Some("bob")));
        n += c.attempts(&line(11, K::PamUserUnknown, F, "", None));
        n += c.attempts(&line(11, K::PamAuthFailure, F, a, None));
        n += c.attempts(&line(10, K::FailedPassword, F, a, Some("bob")));
        let mut closed = line(10, K::ConnClosedPreauth, F, a, Some("bob"));
        closed.ends_connection = true;
        n += c.attempts(&closed);
        assert_eq!(n, 1);
        // A bare probe is one attempt, for the address a later line of its connection gives.
        assert_eq!(c.attempts(&line(12, K::KexIdentification, P, "", None)), 0);
        assert_eq!(c.attempts(&line(12, K::ConnClosedPreauth, P, a, None)), 1);
    }
}
