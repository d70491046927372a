//! sshd log lines to [`Attempt`]s.
//!
//! A line is read in two steps, both hand-written single passes (no regex, no allocation
//! until an attempt is returned): [`envelope`] takes off the syslog head (time, host, the
//! `sshd`/`sshd-session` tag and pid) and [`message`] recognises the message family and reads
//! the client address where the family's format string puts it ([`tail`] reads the tails sshd
//! appends after client-controlled text), minding the format's length limits and the 500-byte
//! syslog cut; `lit` is the literal search they share. [`rules`] names
//! the Wazuh rule the same line ends in, [`pids`] remembers each connection's client so that
//! address-less lines of the same pid (`kex_exchange_identification: …`, `Disconnecting: Too
//! many authentication failures`) can be attributed, and [`connection`] decides how many
//! attempts each line adds (one per try, however many lines describe it).
//!
//! Times: stamps without a zone are local time in the zone given to [`Parser::with_zone`]
//! (UTC with [`Parser::new`]); year-less BSD stamps take the year of the `now` given (or the
//! year before, when that would put them more than a day after `now`, or the year after,
//! when the log has run on past New Year).
//!
//! Callers that already have the message without its envelope (journald's `MESSAGE`, a Wazuh
//! alert's `full_log` split by Wazuh) use [`parse_message`] or [`Parser::parse_parts`];
//! [`journal`] reads `journalctl -o json`/`-o export` entries and decides from journald's
//! trusted fields whether they are sshd's.

pub mod connection;
pub mod envelope;
pub mod journal;
mod lit;
pub mod message;
pub mod pids;
pub mod rules;
pub mod tail;

use std::net::IpAddr;

use jiff::Timestamp;

use crate::{Attempt, Kind, Origin, Outcome};

use connection::Connections;
use envelope::{Clock, Envelope, Program};
use message::{Message, MessageAttempt};
use pids::PidTable;

/// Parses sshd lines one at a time, remembering per connection (pid) what earlier lines said
/// so that lines without an address can be attributed. Memory is bounded (see [`pids`]).
#[derive(Debug)]
pub struct Parser {
    clock: Clock,
    pids: PidTable,
    connections: Connections,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new(Timestamp::now())
    }
}

/// An attempt borrowed from the line it was read from: what [`Parser::parse_line_ref`]
/// returns, for callers that want to avoid the two small allocations of an [`Attempt`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttemptRef<'a> {
    pub time: Option<Timestamp>,
    pub host: Option<&'a str>,
    pub pid: Option<u32>,
    pub kind: Kind,
    pub outcome: Outcome,
    pub srcip: Option<IpAddr>,
    pub srcport: Option<u16>,
    pub user: Option<&'a str>,
    pub wazuh_rule: Option<u32>,
    /// How many attempts this line adds for its address once the other lines of its
    /// connection are accounted for ([`connection`]): 0 for a line that repeats a try
    /// another line counted, or that is not hostile; 1 for most attacks; more for a login
    /// that ends tries of several user names. Without connection context (a bare message),
    /// 1 for an attack and 0 otherwise.
    pub attempts: u32,
}

impl<'a> AttemptRef<'a> {
    /// What the message alone says: no time, host or pid (those come from an envelope), the
    /// client as the message wrote it (a pid table may fill it in later).
    fn from_message(ev: &MessageAttempt<'a>) -> AttemptRef<'a> {
        AttemptRef {
            time: None,
            host: None,
            pid: None,
            kind: ev.kind,
            outcome: ev.outcome,
            srcip: ev.srcip(),
            srcport: ev.peer.and_then(|p| p.port),
            user: ev.user,
            wazuh_rule: ev.wazuh_rule,
            attempts: u32::from(ev.outcome.is_attack()),
        }
    }

    /// The owned [`Attempt`] (origin `Unknown`).
    pub fn to_attempt(&self) -> Attempt {
        Attempt {
            time: self.time,
            host: self.host.map(str::to_owned),
            pid: self.pid,
            kind: self.kind,
            outcome: self.outcome,
            srcip: self.srcip,
            srcport: self.srcport,
            user: self.user.map(str::to_owned),
            wazuh_rule: self.wazuh_rule,
            origin: Origin::Unknown,
        }
    }
}

impl Parser {
    /// A parser that dates year-less syslog stamps relative to `now` (a stamp more than a day
    /// after `now` is taken as last year's).
    pub fn new(now: Timestamp) -> Self {
        Parser::with_clock(Clock::new(now))
    }

    /// As [`Parser::new`], with zone-less stamps read as local time in `zone` (the zone of
    /// the host that wrote the log: `TimeZone::system()` for this one).
    pub fn with_zone(now: Timestamp, zone: jiff::tz::TimeZone) -> Self {
        Parser::with_clock(Clock::with_zone(now, zone))
    }

    fn with_clock(clock: Clock) -> Self {
        Parser {
            clock,
            pids: PidTable::default(),
            connections: Connections::default(),
        }
    }

    /// A parser for one line or a few lines of one connection (a Wazuh alert's `full_log`):
    /// the same reading, with tables of one slot instead of the ones a log reader keeps
    /// (a megabyte, a millisecond of a one-alert process's life).
    pub fn for_one_line(now: Timestamp) -> Self {
        Parser {
            clock: Clock::new(now),
            pids: PidTable::with_slots(1),
            connections: Connections::with_slots(1, 1),
        }
    }

    /// Moves the reference instant for year-less stamps on: a long-running reader (`watch`)
    /// calls this now and then, so December's lines stay this year's.
    pub fn set_now(&mut self, now: Timestamp) {
        self.clock.set_now(now);
    }

    /// One log line (without its newline) to an attempt, when it is an sshd authentication
    /// event. `origin` is left `Unknown` for the caller to fill in.
    pub fn parse_line(&mut self, line: &str) -> Option<Attempt> {
        self.parse_line_ref(line).map(|e| e.to_attempt())
    }

    /// [`Parser::parse_line`] without allocating: the event borrows from `line`.
    pub fn parse_line_ref<'a>(&mut self, line: &'a str) -> Option<AttemptRef<'a>> {
        let env = envelope::split(line, &self.clock)?;
        self.parse_envelope(env)
    }

    /// A message whose envelope the caller already split (journald fields, a Wazuh alert's
    /// predecoded `program_name`/`hostname`): pid attribution works as for whole lines.
    pub fn parse_parts<'a>(
        &mut self,
        time: Option<Timestamp>,
        host: Option<&'a str>,
        pid: Option<u32>,
        message: &'a str,
    ) -> Option<AttemptRef<'a>> {
        self.parse_envelope(Envelope {
            time,
            host,
            program: Program::Sshd,
            pid,
            message,
        })
    }

    /// A line that is an sshd message without program tag (`journalctl -u ssh -o cat`, a
    /// runit/s6 log), after an optional time stamp and `facility.level:` banner. Only for
    /// input known to be sshd's alone: nothing here shows which program wrote the line.
    pub fn parse_bare<'a>(&mut self, line: &'a str) -> Option<AttemptRef<'a>> {
        let (time, message) = envelope::bare(line, &self.clock);
        self.parse_parts(time, None, None, message)
    }

    /// Forgets every connection (e.g. before reading an unrelated file).
    pub fn reset(&mut self) {
        self.pids.clear();
        self.connections.clear();
    }

    fn parse_envelope<'a>(&mut self, env: Envelope<'a>) -> Option<AttemptRef<'a>> {
        let msg = match env.program {
            Program::SshdPam => message::parse_pam_program(env.message)?,
            _ => message::parse(env.message)?,
        };
        let secs = env.time.map(|t| t.as_second());
        let host = pids::host_key(env.host);
        match msg {
            Message::Peer(peer) => {
                if let Some(pid) = env.pid {
                    self.pids.remember(pid, host, peer.ip, peer.port, secs);
                }
                None
            }
            Message::Attempt(ev) => {
                let ends_connection = ev.ends_connection;
                let mut out = self.attribute(&env, ev, host, secs);
                out.attempts = self.connections.attempts(&connection::Line {
                    host,
                    pid: env.pid,
                    secs,
                    kind: out.kind,
                    outcome: out.outcome,
                    srcip: out.srcip,
                    user: out.user,
                    ends_connection,
                });
                Some(out)
            }
        }
    }

    /// Fills in the address from the pid table when the message has none, and keeps the
    /// table up to date.
    fn attribute<'a>(
        &mut self,
        env: &Envelope<'a>,
        ev: MessageAttempt<'a>,
        host: u32,
        secs: Option<i64>,
    ) -> AttemptRef<'a> {
        let mut out = AttemptRef {
            time: env.time,
            host: env.host,
            pid: env.pid,
            ..AttemptRef::from_message(&ev)
        };
        let Some(pid) = env.pid else { return out };
        match ev.peer {
            Some(peer) => {
                let known = self.pids.get(pid, host, secs);
                // An address-less probe (`kex_exchange_identification`) was waiting for this
                // connection's address: its close is the probe's end, not a normal logout.
                if known.is_some_and(|k| k.pending && k.ip.is_none())
                    && out.outcome == Outcome::Info
                    && ev.ends_connection
                {
                    out.outcome = Outcome::Probe;
                }
                // A host name (UseDNS, PAM's rhost) is the same client as the address an
                // earlier line of the connection gave.
                let known_ip = known.and_then(|k| k.ip);
                if peer.ip.is_none() && known_ip.is_some() {
                    out.srcip = known_ip;
                    out.srcport = out.srcport.or(known.and_then(|k| k.port));
                }
                if ev.ends_connection {
                    self.pids.forget(pid, host);
                } else if peer.ip.is_some() || known_ip.is_none() {
                    self.pids.remember(pid, host, peer.ip, peer.port, secs);
                }
            }
            None => match self.pids.get(pid, host, secs) {
                Some(known) if known.ip.is_some() => {
                    out.srcip = known.ip;
                    out.srcport = known.port;
                }
                _ if out.outcome.is_attack() => self.pids.mark_pending(pid, host, secs),
                _ => {}
            },
        }
        out
    }
}

/// A message without envelope (journald `MESSAGE`, Wazuh's predecoded log) to an attempt,
/// without pid attribution or time.
pub fn parse_message(message: &str) -> Option<Attempt> {
    match message::parse(message)? {
        Message::Attempt(ev) => Some(AttemptRef::from_message(&ev).to_attempt()),
        Message::Peer(_) => None,
    }
}

#[cfg(test)]
mod tests;
