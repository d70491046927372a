//! sshd message families: one message (the text after `sshd[pid]: `) to what it means.
//!
//! Each family is matched by its fixed leading words, then its address tail is read from the
//! right end (see [`super::tail`]); whatever lies between (a user name, an identification
//! string) is opaque text, kept as the user but never searched for an address. The table of
//! families, their `kind`, `outcome` and Wazuh rule is in `attempt.rs` ([`Kind`]) and in
//! [`super::rules`].

use std::net::IpAddr;

use crate::{Kind, Outcome};

use super::lit;
use super::rules;
use super::tail::{
    Peer, Preamble, host_port, is_token, parse_port, preamble_host_port, preamble_user,
    rightmost_from,
};

/// What one sshd message says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Message<'a> {
    /// An authentication event.
    Attempt(MessageAttempt<'a>),
    /// Not an event, but it tells which client a connection (pid) serves:
    /// `Connection from A port N on B port 22`.
    Peer(Peer<'a>),
}

/// An authentication event read from one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageAttempt<'a> {
    pub kind: Kind,
    pub outcome: Outcome,
    /// The client as written in the message; `None` for families without one (attributed
    /// through the connection's pid).
    pub peer: Option<Peer<'a>>,
    pub user: Option<&'a str>,
    pub wazuh_rule: Option<u32>,
    /// The last line of a connection: its pid may be forgotten afterwards.
    pub ends_connection: bool,
}

impl<'a> MessageAttempt<'a> {
    fn new(kind: Kind, outcome: Outcome, peer: Option<Peer<'a>>) -> Self {
        MessageAttempt {
            kind,
            outcome,
            peer,
            user: None,
            wazuh_rule: None,
            ends_connection: false,
        }
    }

    fn user(mut self, user: Option<&'a str>) -> Self {
        self.user = user;
        self
    }

    fn ends(mut self) -> Self {
        self.ends_connection = true;
        self
    }

    pub fn srcip(&self) -> Option<IpAddr> {
        self.peer.and_then(|p| p.ip)
    }
}

/// The message with its fixed decorations taken off.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Body<'a> {
    /// The message as Wazuh's rules see it (after the Solaris `[ID …]` tag).
    pub full: &'a str,
    /// After `error: ` / `fatal: ` and without ` [preauth]` or trailing blanks.
    pub text: &'a str,
    pub level: Level,
    pub preauth: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Plain,
    Error,
    Fatal,
}

/// sshd formats every log message into a 1024-byte buffer (`log.c` `MSGBUFSIZ`); with
/// ` [preauth]` and syslog decorations a genuine message stays far below this. Longer
/// "messages" are not sshd's, and refusing them keeps the right-to-left searches linear in
/// practice whatever a 10 MB line holds.
pub const MAX_MESSAGE: usize = 2048;

/// Reads one sshd message (no envelope). `None`: not an authentication event.
pub fn parse(message: &str) -> Option<Message<'_>> {
    if message.len() > MAX_MESSAGE {
        return None;
    }
    let body = body(message);
    let text = body.text;
    let full_len = message.len();
    let first = *text.as_bytes().first()?;
    let msg = match first {
        b'F' => failed_or_accepted(text, "Failed ", full_len),
        b'A' => failed_or_accepted(text, "Accepted ", full_len),
        b'P' => failed_or_accepted(text, "Postponed ", full_len)
            .or_else(|| pam_more(text))
            .or_else(|| pam_error(text)),
        b'I' => invalid_user(text, "Invalid user ").or_else(|| invalid_user(text, "Illegal user ")),
        b'U' => user_not_allowed(text).or_else(|| unable_to_negotiate(text)),
        b'R' => root_refused(text)
            .or_else(|| received_disconnect(text, body.preauth))
            .or_else(|| read_socket(text)),
        b'C' => connection(text, body.preauth)
            .or_else(|| close_session(text))
            .or_else(|| corrupted_mac(text)),
        b'D' => disconnected(text, body.preauth)
            .or_else(|| disconnecting(text))
            .or_else(|| no_identification(text)),
        b'B' => bad_protocol(text),
        b'b' => banner_exchange(text),
        b'k' => kex_ident(text),
        b'm' => max_auth_tries(text, full_len),
        b'n' => no_matching(text, body.level),
        b'p' => pam_unix(text),
        b'r' => refused_connect(text),
        b'M' => magic_value(text),
        b'T' => timeout(text),
        b'd' => penalty_drop(text),
        b's' => dispatch_fatal(text),
        b'S' => ssh_remote(text),
        _ => None,
    }?;
    Some(with_rule(uncut(msg, full_len), &body))
}

/// The connection id sshd puts before an address (`packet.c` `sshpkt_fmt_connection_id`,
/// `"%.200s%s%s port %d"`) holds up to 200 bytes of preamble (`invalid user NAME`).
const MAX_PREAMBLE: usize = 200;

/// Families whose address follows the `[invalid |authenticating ]user NAME` preamble.
fn after_preamble(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::ConnClosedPreauth
            | Kind::ConnResetPreauth
            | Kind::ConnClosed
            | Kind::ConnReset
            | Kind::DisconnectedPreauth
            | Kind::Disconnected
            | Kind::TooManyAuthFailures
            | Kind::ChangeOfUsername
            | Kind::CorruptMac
    )
}

/// A preamble name is not cut at 100 bytes, and the pre-auth child's lines are escaped twice
/// before OpenSSH 10.3: a name of escapes can push the real address past the 500-byte cut
/// and leave a line that ends in whatever the name said. Such a line keeps its kind but
/// gives no address (the connection's pid may still give the real one).
fn uncut(msg: Message<'_>, full_len: usize) -> Message<'_> {
    match msg {
        Message::Attempt(mut ev)
            if ev.user.is_some()
                && ev.peer.is_some()
                && after_preamble(ev.kind)
                && may_be_cut(full_len, MAX_PREAMBLE) =>
        {
            ev.peer = None;
            Message::Attempt(ev)
        }
        other => other,
    }
}

/// Reads the message of the old `sshd(pam_unix)[pid]:` program: Linux-PAM's own text
/// without the `pam_unix(sshd:auth): ` prefix.
pub fn parse_pam_program(message: &str) -> Option<Message<'_>> {
    if message.len() > MAX_MESSAGE {
        return None;
    }
    let body = body(message);
    let text = body.text;
    let msg = if text == "check pass; user unknown" {
        event(MessageAttempt::new(
            Kind::PamUserUnknown,
            Outcome::Failure,
            None,
        ))
    } else if let Some(fields) = text.strip_prefix("authentication failure; ") {
        pam_fields(fields, Kind::PamAuthFailure)
    } else {
        pam_more_fields(text)
    }?;
    Some(with_rule(msg, &body))
}

fn with_rule<'a>(msg: Message<'a>, body: &Body<'_>) -> Message<'a> {
    match msg {
        Message::Attempt(mut ev) => {
            ev.wazuh_rule = rules::wazuh_rule(&ev, body);
            Message::Attempt(ev)
        }
        peer => peer,
    }
}

/// Strips the decorations sshd, PAM and a few syslog daemons add around the text proper.
pub(crate) fn body(message: &str) -> Body<'_> {
    let mut full = message;
    // Solaris: `[ID 800047 auth.info] `; journal: `kernel:[  970.69]: `, `kernel: [  970.69] `.
    if full.starts_with("[ID ") {
        if let Some(i) = lit::find(full, "] ") {
            full = &full[i + 2..];
        }
    } else if let Some(rest) = full.strip_prefix("kernel:") {
        let rest = lit::skip_spaces(rest);
        if let Some(rest) = rest.strip_prefix('[')
            && let Some(i) = rest.find(']')
        {
            let rest = &rest[i + 1..];
            full = rest
                .strip_prefix(':')
                .unwrap_or(rest)
                .trim_start_matches(' ');
        }
    }
    let full = lit::trim_end_blanks(full);
    let (text, preauth) = match full.strip_suffix(" [preauth]") {
        Some(t) => (lit::trim_end_blanks(t), true),
        None => (full, false),
    };
    let (text, level) = if let Some(t) = text.strip_prefix("error: ") {
        (t, Level::Error)
    } else if let Some(t) = text.strip_prefix("fatal: ") {
        (t, Level::Fatal)
    } else {
        (text, Level::Plain)
    };
    Body {
        full,
        text,
        level,
        preauth,
    }
}

fn event(ev: MessageAttempt<'_>) -> Option<Message<'_>> {
    Some(Message::Attempt(ev))
}

/// `Failed|Accepted|Postponed METHOD for [invalid user ]USER from HOST port N sshV[: INFO]`
/// (`auth.c` `auth_log`: `"%s %s%s%s for %s%.100s from %.200s port %d ssh2%s%s"`).
///
/// Both USER and INFO are client text: USER any name the client asked for, INFO a key's
/// type and fingerprint and, for a certificate, the `ID <key id>` its signer chose. What
/// fixes the address is that sshd cuts the requested name at its first `:` (`auth2.c`
/// `input_userauth_request`, the `user:style` split) before it logs anything, while INFO
/// always starts with `: `. So the real ` from HOST port N ssh2` is the first ` from ` whose
/// tail fits with no `:` before it: a ` from ` inside USER is followed by more of USER, so
/// its tail cannot end the line or reach `: ` (USER has no `:`), and one inside INFO has
/// the real `: ` before it. The line may have been cut at 500 bytes (`log.c` `do_log`,
/// `"%.500s"`), but not before the address: prefix, 100 bytes of name (400 once
/// escaped) and ` from ` stay under 500. `Postponed` lines come from the pre-auth child and
/// are escaped twice by OpenSSH before 10.3, so they can be cut before the address:
/// those that may have been cut give no address.
fn failed_or_accepted<'a>(text: &'a str, verb: &str, full_len: usize) -> Option<Message<'a>> {
    let rest = text.strip_prefix(verb)?;
    let (method, rest) = lit::split_once(rest, " ")?;
    let rest = rest.strip_prefix("for ")?;
    let invalid_rest = rest
        .strip_prefix("invalid user ")
        .or_else(|| rest.strip_prefix("illegal user "));
    let invalid = invalid_rest.is_some();
    let named = invalid_rest.unwrap_or(rest);
    let (user, mut peer) = first_fitting_from(named)?;
    let (kind, outcome) = match verb {
        "Accepted " => (Kind::Accepted, Outcome::Success),
        "Postponed " => (Kind::Postponed, Outcome::Info),
        _ => failed_kind(method, invalid),
    };
    if verb == "Postponed " && may_be_cut(full_len, MAX_USER) {
        peer = None;
    }
    event(MessageAttempt::new(kind, outcome, peer).user(Some(user)))
}

/// `USER from HOST[ port N][ sshV][: INFO]`: the first ` from ` with no `:` before it whose
/// tail fits (see [`failed_or_accepted`]). `Some((user, None))` when a ` from ` is there
/// but no tail fits before the first `:` (no address rather than a guess); `None` when the
/// text has no ` from ` at all (not this family).
fn first_fitting_from(named: &str) -> Option<(&str, Option<Peer<'_>>)> {
    // `invalid user  from …`: an empty name.
    if let Some(tail) = named.strip_prefix("from ")
        && let Some(peer) = auth_tail(tail)
    {
        return Some(("", Some(peer)));
    }
    let colon = named.find(':').unwrap_or(named.len());
    let mut first_user = None;
    let mut at = 0;
    while let Some(i) = lit::find(&named[at..], " from ").map(|i| at + i) {
        let user = &named[..i];
        first_user.get_or_insert(user);
        if i > colon {
            break;
        }
        if let Some(peer) = auth_tail(&named[i + 6..]) {
            return Some((user, Some(peer)));
        }
        at = i + 6;
    }
    first_user.map(|u| (u, None))
}

/// The longest user name sshd logs in `auth_log` and its kin (`%.100s`).
const MAX_USER: usize = 100;

/// The longest message sshd hands to syslog (`log.c` `do_log`: `"%.500s"`).
pub const SYSLOG_CUT: usize = 500;

/// Whether a message of `full_len` bytes (without envelope) may be the first 500 bytes of a longer
/// one. A logger may have trimmed the blanks the cut left at the end; those come from a
/// client field of at most `client_field` bytes before escaping, so a message shorter than
/// `SYSLOG_CUT - client_field` is whole.
fn may_be_cut(full_len: usize, client_field: usize) -> bool {
    full_len + client_field >= SYSLOG_CUT
}

fn failed_kind(method: &str, invalid: bool) -> (Kind, Outcome) {
    let kind = match method {
        "password" => Kind::FailedPassword,
        "publickey" => Kind::FailedPublickey,
        "none" => Kind::FailedNone,
        m if m.starts_with("keyboard-interactive") => Kind::FailedKeyboardInteractive,
        _ => Kind::FailedOther,
    };
    // A valid user whose key is refused is usually a client offering its keys in turn.
    let outcome = if kind == Kind::FailedPublickey && !invalid {
        Outcome::Info
    } else {
        Outcome::Failure
    };
    (kind, outcome)
}

/// `HOST[ port N][ sshV][: INFO]`, the tail after sshd's ` from `.
fn auth_tail(tail: &str) -> Option<Peer<'_>> {
    // Split at the `: ` after `sshV` (an IPv6 host may end in `::`); the old form without
    // a version is split at its first `: `.
    let main = match lit::find(tail, " ssh2: ").or_else(|| lit::find(tail, " ssh1: ")) {
        Some(i) => &tail[..i + 5],
        None => match lit::find(tail, ": ") {
            Some(i) if !tail.ends_with(" ssh2") && !tail.ends_with(" ssh1") => &tail[..i],
            _ => tail,
        },
    };
    let main = main
        .strip_suffix(" ssh2")
        .or_else(|| main.strip_suffix(" ssh1"))
        .unwrap_or(main);
    host_port(main)
}

/// `Invalid user USER from HOST[ port N]`, USER possibly empty or with spaces.
fn invalid_user<'a>(text: &'a str, lead: &str) -> Option<Message<'a>> {
    let rest = text.strip_prefix(lead.trim_end())?;
    let (user, peer) = match rest.strip_prefix(' ') {
        Some(after) => rightmost_from(after, host_port).or_else(|| {
            after
                .strip_prefix("from ")
                .and_then(host_port)
                .map(|p| ("", p))
        })?,
        None => ("", rest.strip_prefix(" from ").and_then(host_port)?),
    };
    event(MessageAttempt::new(Kind::InvalidUser, Outcome::Failure, Some(peer)).user(Some(user)))
}

/// `User U from HOST[ port N] not allowed because REASON` or, without an address,
/// `User U not allowed because account is locked` (attributed by pid).
fn user_not_allowed(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("User ")?;
    let at = lit::rfind(rest, " not allowed because ")?;
    let head = &rest[..at];
    let reason = &rest[at + 21..];
    if let Some((user, peer)) = rightmost_from(head, host_port) {
        return event(
            MessageAttempt::new(Kind::NotAllowed, Outcome::Failure, Some(peer)).user(Some(user)),
        );
    }
    (reason == "account is locked").then(|| {
        Message::Attempt(
            MessageAttempt::new(Kind::AccountLocked, Outcome::Failure, None).user(Some(head)),
        )
    })
}

/// `Unable to negotiate with HOST[ port N]: no matching ALG found. Their offer: …` and the
/// address-less `Unable to negotiate a key exchange method`.
fn unable_to_negotiate(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("Unable to negotiate ")?;
    if rest.starts_with("a key exchange method") {
        return event(MessageAttempt::new(
            Kind::NegotiationFailed,
            Outcome::Probe,
            None,
        ));
    }
    let rest = rest.strip_prefix("with ")?;
    // The client's offer follows the address; only the text up to the first `: ` is sshd's.
    let peer = leading_peer(rest)?;
    event(MessageAttempt::new(
        Kind::NegotiationFailed,
        Outcome::Probe,
        Some(peer),
    ))
}

/// `HOST port N: …` or the old `HOST: …` at the start of `s` (nothing client-controlled
/// precedes it). IPv6 in the old form ends in `:` too: `2001:db8::1: …`.
fn leading_peer(s: &str) -> Option<Peer<'_>> {
    let space = lit::space(s).unwrap_or(s.len());
    let token = &s[..space];
    if let Some(after) = s[space..].strip_prefix(" port ") {
        let end = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let port = parse_port(&after[..end])?;
        return Some(Peer::new(token, Some(port)));
    }
    let host = token.strip_suffix(':').unwrap_or(token);
    is_token(host).then(|| Peer::new(host, None))
}

/// `fatal: no matching mac found: client … server …` (old OpenSSH, by pid).
fn no_matching(text: &str, level: Level) -> Option<Message<'_>> {
    let rest = text.strip_prefix("no matching ")?;
    let (_alg, after) = lit::split_once(rest, " found")?;
    (level == Level::Fatal && (after.is_empty() || after.starts_with(':'))).then(|| {
        Message::Attempt(MessageAttempt::new(
            Kind::NegotiationFailed,
            Outcome::Probe,
            None,
        ))
    })
}

/// `ROOT LOGIN REFUSED FROM HOST[ port N]`.
fn root_refused(text: &str) -> Option<Message<'_>> {
    let tail = text.strip_prefix("ROOT LOGIN REFUSED FROM ")?;
    let peer = host_port(tail)?;
    event(
        MessageAttempt::new(Kind::RootLoginRefused, Outcome::Failure, Some(peer))
            .user(Some("root")),
    )
}

/// `Received disconnect from HOST port N:CODE: TEXT` or the old `HOST: CODE: TEXT`. The
/// address comes first; the text after it is the client's.
fn received_disconnect(text: &str, preauth: bool) -> Option<Message<'_>> {
    let rest = text.strip_prefix("Received disconnect from ")?;
    let peer = leading_peer(rest)?;
    let after_host = &rest[peer.host.len()..];
    let after = match peer.port {
        Some(_) => lit::split_once(after_host, ":")?.1,
        None => after_host.strip_prefix(':')?,
    };
    let after = lit::skip_spaces(after);
    let (code, reason) = lit::split_once(after, ":").unwrap_or((after, ""));
    let reason = lit::skip_spaces(reason);
    let (kind, outcome) = match code {
        "3" if reason.ends_with("Auth fail") => (Kind::AuthFailDisconnect, Outcome::Failure),
        "14" => (Kind::NoAuthMethods, Outcome::Probe),
        _ if preauth => (Kind::ReceivedDisconnectPreauth, Outcome::Probe),
        _ => (Kind::ReceivedDisconnect, Outcome::Info),
    };
    let ev = MessageAttempt::new(kind, outcome, Some(peer));
    event(if outcome == Outcome::Info {
        ev.ends()
    } else {
        ev
    })
}

/// `Connection closed|reset by [PREAMBLE ]HOST[ port N][ [preauth]]`, and the helper
/// `Connection from HOST port N on …` that names a connection's client.
fn connection(text: &str, preauth: bool) -> Option<Message<'_>> {
    let rest = text.strip_prefix("Connection ")?;
    if let Some(from) = rest.strip_prefix("from ") {
        return connection_from(from);
    }
    let (closed, tail) = match rest.strip_prefix("closed by ") {
        Some(t) => (true, t),
        None => (false, rest.strip_prefix("reset by ")?),
    };
    let (preamble, peer) = preamble_host_port(tail)?;
    let (user, who) = preamble_user(preamble)?;
    let preauth = preauth || before_auth(who);
    let (kind, outcome) = match (closed, preauth) {
        (true, true) => (Kind::ConnClosedPreauth, preauth_outcome(who, false)),
        (false, true) => (Kind::ConnResetPreauth, preauth_outcome(who, false)),
        (true, false) => (Kind::ConnClosed, Outcome::Info),
        (false, false) => (Kind::ConnReset, Outcome::Info),
    };
    event(
        MessageAttempt::new(kind, outcome, Some(peer))
            .user(user)
            .ends(),
    )
}

/// An `invalid user` or `authenticating user` preamble means the connection never
/// authenticated, whether or not the line carries ` [preauth]` (Wazuh's tests drop it).
fn before_auth(who: Preamble) -> bool {
    matches!(who, Preamble::Invalid | Preamble::Authenticating)
}

/// A pre-authentication close is a probe, or a failure when it names an invalid user (and,
/// for `Disconnected from`, an authenticating user: the client gave up after failing).
fn preauth_outcome(who: Preamble, disconnected: bool) -> Outcome {
    match who {
        Preamble::Invalid => Outcome::Failure,
        Preamble::Authenticating if disconnected => Outcome::Failure,
        _ => Outcome::Probe,
    }
}

/// `Connection from HOST port N on ADDR port N[ rdomain "…"]` (or the old `Connection from
/// HOST`): no event, but the pid's client.
fn connection_from(s: &str) -> Option<Message<'_>> {
    let s = match lit::find(s, " rdomain ") {
        Some(i) => &s[..i],
        None => s,
    };
    let s = match lit::find(s, " on ") {
        Some(i) => &s[..i],
        None => s,
    };
    Some(Message::Peer(host_port(s)?))
}

/// `Disconnected from [PREAMBLE ]HOST port N[ [preauth]]`.
fn disconnected(text: &str, preauth: bool) -> Option<Message<'_>> {
    let tail = text.strip_prefix("Disconnected from ")?;
    let (preamble, peer) = preamble_host_port(tail)?;
    let (user, who) = preamble_user(preamble)?;
    let (kind, outcome) = if preauth || before_auth(who) {
        (Kind::DisconnectedPreauth, preauth_outcome(who, true))
    } else {
        (Kind::Disconnected, Outcome::Info)
    };
    event(
        MessageAttempt::new(kind, outcome, Some(peer))
            .user(user)
            .ends(),
    )
}

/// `Disconnecting: Too many authentication failures[ for U]` (by pid) and
/// `Disconnecting PREAMBLE HOST port N: REASON` (`packet.c` `"Disconnecting %s: %.100s"`).
fn disconnecting(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("Disconnecting")?;
    if let Some(reason) = rest.strip_prefix(": ") {
        let user = reason
            .strip_prefix("Too many authentication failures")
            .map(|r| r.strip_prefix(" for ").unwrap_or(r));
        let user = user.filter(|u| !u.is_empty());
        return reason
            .starts_with("Too many authentication failures")
            .then(|| {
                Message::Attempt(
                    MessageAttempt::new(Kind::TooManyAuthFailures, Outcome::Failure, None)
                        .user(user),
                )
            });
    }
    let rest = rest.strip_prefix(' ')?;
    const TOO_MANY: &str = ": Too many authentication failures";
    let (conn, kind) = if let Some(conn) = rest.strip_suffix(TOO_MANY) {
        (conn, Kind::TooManyAuthFailures)
    } else if lit::find(rest, CHANGE_OF_USERNAME).is_some() {
        match change_of_username_head(rest) {
            Some(conn) => (conn, Kind::ChangeOfUsername),
            // No split sshd could have written: the address is left to the pid's client.
            None => {
                return event(MessageAttempt::new(
                    Kind::ChangeOfUsername,
                    Outcome::Failure,
                    None,
                ));
            }
        }
    } else if lit::find(rest, ": ").is_none() {
        // Wazuh's test `Disconnecting invalid user root 172.18.1.100 port 43042`: no reason.
        // sshd itself always writes `: REASON`, whose client text must not be searched.
        (rest, Kind::Disconnected)
    } else {
        return None;
    };
    let (preamble, peer) = preamble_host_port(conn)?;
    peer.port?;
    let (user, who) = preamble_user(preamble)?;
    let outcome = match (kind, who) {
        (Kind::Disconnected, Preamble::Invalid) => Outcome::Failure,
        (Kind::Disconnected, _) => Outcome::Info,
        _ => Outcome::Failure,
    };
    event(MessageAttempt::new(kind, outcome, Some(peer)).user(user))
}

/// The separator and fixed start of `auth2.c`'s reason `Change of username or service not
/// allowed: (U,svc) -> (V,svc)`.
const CHANGE_OF_USERNAME: &str = ": Change of username or service not allowed: ";

/// `packet.c` cuts the reason of `"Disconnecting %s: %.100s"` to 100 bytes.
const MAX_DISCONNECT_REASON: usize = 100;

/// The connection id before `: Change of username …: (U,svc) -> (V,svc)`. The id's user and
/// the reason are both client text, and the reason is cut to 100 bytes, so it need not repeat
/// the id's user. sshd writes the fixed part of the reason before the cut, so the real
/// separator is always there in full: when it occurs once, it is the real one. Otherwise the
/// real one is the leftmost that sshd could have written: a reason of 100 bytes (cut) or a
/// shorter one that starts with `(U,` for the id's user U. A separator further left (inside
/// the user name) has the real separator, address and reason after it, longer than 100
/// bytes; one further right lies inside the real reason. No such split gives `None`.
fn change_of_username_head(rest: &str) -> Option<&str> {
    let finder = memchr::memmem::Finder::new(CHANGE_OF_USERNAME);
    let mut splits = finder.find_iter(rest.as_bytes());
    let first = splits.next()?;
    if splits.next().is_none() {
        return change_of_username_split(rest, first, |_, _| true);
    }
    finder.find_iter(rest.as_bytes()).find_map(|at| {
        change_of_username_split(rest, at, |user, reason| {
            reason.len() == MAX_DISCONNECT_REASON
                || (reason.len() < MAX_DISCONNECT_REASON
                    && reason
                        .strip_prefix(&CHANGE_OF_USERNAME[2..])
                        .and_then(|r| r.strip_prefix('('))
                        .and_then(|r| r.strip_prefix(user))
                        .is_some_and(|r| r.starts_with(',')))
        })
    })
}

/// The id before the separator at `at` when it names a user, an address and a port, and
/// `fits(user, reason)` accepts it (the reason starts after the separator's `: `).
fn change_of_username_split(
    rest: &str,
    at: usize,
    fits: impl Fn(&str, &str) -> bool,
) -> Option<&str> {
    let head = &rest[..at];
    let reason = &rest[at + 2..];
    let (preamble, peer) = preamble_host_port(head)?;
    peer.port?;
    let user = preamble_user(preamble)?.0?;
    fits(user, reason).then_some(head)
}

/// `Did not receive identification string from HOST[ port N]`.
fn no_identification(text: &str) -> Option<Message<'_>> {
    let tail = text.strip_prefix("Did not receive identification string from ")?;
    event(
        MessageAttempt::new(
            Kind::NoIdentification,
            Outcome::Probe,
            Some(host_port(tail)?),
        )
        .ends(),
    )
}

/// `Bad protocol version identification 'IDENT' from HOST[ port N]`: IDENT is the client's.
fn bad_protocol(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("Bad protocol version identification")?;
    let (_ident, peer) = rightmost_from(rest, host_port)?;
    event(MessageAttempt::new(Kind::BadProtocolVersion, Outcome::Probe, Some(peer)).ends())
}

/// `banner exchange: Connection from HOST port N: REASON`.
fn banner_exchange(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("banner exchange: Connection from ")?;
    let peer = leading_peer(rest)?;
    event(MessageAttempt::new(Kind::BannerExchange, Outcome::Probe, Some(peer)).ends())
}

/// `kex_exchange_identification: …` — the client closed, reset, or sent no SSH banner
/// (`Connection closed by remote host`, `client sent invalid protocol identifier "…"`,
/// `banner line contains invalid characters`, …). No address: attributed by pid.
fn kex_ident(text: &str) -> Option<Message<'_>> {
    // Every one of these is sshd failing to read the client's identification: the client
    // closed, reset, or sent something that is not SSH (fail2ban lists three of them).
    text.strip_prefix("kex_exchange_identification: ")?;
    event(MessageAttempt::new(
        Kind::KexIdentification,
        Outcome::Probe,
        None,
    ))
}

/// `maximum authentication attempts exceeded for [invalid user ]U from HOST port N sshV`
/// (`auth.c` `auth_maxtries_exceeded`, `"%s%.100s from %.200s port %d ssh2"`): as for
/// `Failed` lines, U has no `:`, so the first ` from ` with no `:` before it whose tail ends
/// the line is sshd's. The line comes from the pre-auth child (escaped twice before OpenSSH
/// 10.3), so a long one may have been cut inside U: no address then.
fn max_auth_tries(text: &str, full_len: usize) -> Option<Message<'_>> {
    let rest = text.strip_prefix("maximum authentication attempts exceeded for ")?;
    let named = rest
        .strip_prefix("invalid user ")
        .or_else(|| rest.strip_prefix("illegal user "))
        .unwrap_or(rest);
    let colon = named.find(':').unwrap_or(named.len());
    let mut found = None;
    let mut at = 0;
    while let Some(i) = lit::find(&named[at..], " from ").map(|i| at + i) {
        if i > colon {
            break;
        }
        let tail = &named[i + 6..];
        let whole = tail
            .strip_suffix(" ssh2")
            .or_else(|| tail.strip_suffix(" ssh1"))
            .unwrap_or(tail);
        if let Some(peer) = host_port(whole) {
            found = Some((&named[..i], peer));
            break;
        }
        at = i + 6;
    }
    let (user, peer) = found?;
    let peer = (!may_be_cut(full_len, MAX_USER)).then_some(peer);
    event(MessageAttempt::new(Kind::MaxAuthTries, Outcome::Failure, peer).user(Some(user)))
}

/// `pam_unix(sshd:auth): authentication failure; … rhost=HOST[  user=U]` and
/// `pam_unix(sshd:auth): check pass; user unknown` (by pid).
fn pam_unix(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("pam_")?;
    let (_module, rest) = lit::split_once(rest, "(sshd:auth): ")?;
    if rest == "check pass; user unknown" {
        return event(MessageAttempt::new(
            Kind::PamUserUnknown,
            Outcome::Failure,
            None,
        ));
    }
    // pam_unix with `audit`: `check pass; user (NAME) unknown`.
    if let Some(name) = rest
        .strip_prefix("check pass; user (")
        .and_then(|r| r.strip_suffix(") unknown"))
    {
        let ev = MessageAttempt::new(Kind::PamUserUnknown, Outcome::Failure, None);
        return event(ev.user(Some(name)));
    }
    let fields = rest.strip_prefix("authentication failure; ")?;
    pam_fields(fields, Kind::PamAuthFailure)
}

/// `PAM N more authentication failure[s]; logname= … rhost=HOST[  user=U]` (Linux-PAM
/// `pam_unix` `_cleanup_failures`: singular when N is 1), and the same after
/// `sshd(pam_unix)[pid]: ` without the `PAM ` (old Red Hat).
fn pam_more(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("PAM ")?;
    pam_more_fields(rest)
}

fn pam_more_fields(rest: &str) -> Option<Message<'_>> {
    let (count, rest) = rest.split_once(' ')?;
    count.parse::<u32>().ok()?;
    let fields = rest
        .strip_prefix("more authentication failures; ")
        .or_else(|| rest.strip_prefix("more authentication failure; "))?;
    pam_fields(fields, Kind::PamMoreFailures)
}

/// The fields of PAM's failure line, as Linux-PAM's `pam_unix` (`support.c`
/// `_unix_verify_password`: `"logname=%s uid=%d euid=%d tty=%s ruser=%s rhost=%s %s%s"`
/// with `" user="` and the name when there is one) and SSSD's `pam_sss` (`"logname=%s
/// uid=%lu euid=%d tty=%s ruser=%s rhost=%s user=%s[ seq=%lu]"`) write them.
///
/// The name after `user=` is whatever the client asked for (pam_unix with `audit`, pam_sss
/// always), so ` rhost=` may occur in it: the address is where the format puts it, right
/// after `ruser=`. OpenSSH sets no PAM_RUSER, so `ruser=` is empty and the first ` rhost=`
/// after it is PAM's. Some old sshd builds put the requested name in PAM_RUSER too; when
/// `ruser=` is not empty and ` rhost=` occurs again later, which one is PAM's cannot be
/// told: no address then.
fn pam_fields(fields: &str, kind: Kind) -> Option<Message<'_>> {
    let ruser_at = lit::find(fields, "ruser=")?;
    let after_ruser = &fields[ruser_at + 6..];
    let (ruser_end, after) = if let Some(after) = after_ruser.strip_prefix("rhost=") {
        (0, after)
    } else {
        let at = lit::find(after_ruser, " rhost=")?;
        (at, &after_ruser[at + 7..])
    };
    let ambiguous = ruser_end > 0 && lit::find(after, " rhost=").is_some();
    let host_end = after.find(' ').unwrap_or(after.len());
    let host = &after[..host_end];
    let rest = lit::skip_spaces(&after[host_end..]);
    // What follows the host is nothing or ` user=NAME`; anything else is not the format
    // (still PAM's failure, but its address cannot be told).
    let (user, fits) = match rest.strip_prefix("user=") {
        // pam_sss 2.x appends ` seq=N` after the name.
        Some(user) => match lit::rsplit_once(user, " seq=") {
            Some((name, seq)) if seq.parse::<u64>().is_ok() => (Some(name), true),
            _ => (Some(user), true),
        },
        None => (None, rest.is_empty()),
    };
    let ambiguous = ambiguous || !fits;
    let peer = (!host.is_empty() && !ambiguous).then(|| Peer::new(host, None));
    // Old sshd builds name the requested user only in `ruser=`.
    let ruser = &after_ruser[..ruser_end];
    let user = user.or((!ruser.is_empty() && !ambiguous).then_some(ruser));
    event(MessageAttempt::new(kind, Outcome::Failure, peer).user(user))
}

/// `error: PAM: WHAT for [illegal user ]U from HOST[ via ADDR]` (`auth-pam.c`, BSD, macOS,
/// old Linux): the address is the rightmost ` from `.
fn pam_error(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("PAM: ")?;
    let (_what, rest) = lit::split_once(rest, " for ")?;
    let (user, peer) = rightmost_from(rest, pam_error_tail)?;
    let user = user
        .strip_prefix("illegal user ")
        .or_else(|| user.strip_prefix("invalid user "))
        .unwrap_or(user);
    event(MessageAttempt::new(Kind::PamError, Outcome::Failure, Some(peer)).user(Some(user)))
}

/// `HOST[ via ADDR]`, the whole tail of an `error: PAM:` line.
fn pam_error_tail(t: &str) -> Option<Peer<'_>> {
    let host = match lit::split_once(t, " via ") {
        Some((h, via)) if is_token(via) => h,
        Some(_) => return None,
        None => t,
    };
    is_token(host).then(|| Peer::new(host, None))
}

/// `refused connect from NAME (ADDR)` (tcp_wrappers): the address is in the closing parens.
fn refused_connect(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("refused connect from ")?;
    let inner = rest.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let host = &inner[open + 1..];
    let host = host.strip_prefix("::ffff:").unwrap_or(host);
    let peer = Peer::new(host, None);
    peer.ip?;
    event(MessageAttempt::new(Kind::RefusedConnect, Outcome::Probe, Some(peer)).ends())
}

/// `Magic value check failed (N) on obfuscated handshake from HOST port N` (obfuscated-ssh
/// builds).
fn magic_value(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("Magic value check failed ")?;
    let (_, peer) = rightmost_from(rest, host_port)?;
    event(MessageAttempt::new(
        Kind::MagicValueFailed,
        Outcome::Probe,
        Some(peer),
    ))
}

/// `[fatal: ]Timeout before authentication for HOST[ port N]` (before 9.8) and
/// `Timeout before authentication for connection from HOST to ADDR, pid = N` (9.8+).
fn timeout(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("Timeout before authentication for ")?;
    let peer = match rest.strip_prefix("connection from ") {
        Some(r) => {
            let end = lit::find(r, " to ")?;
            Peer::new(&r[..end], None)
        }
        None => host_port(rest)?,
    };
    event(MessageAttempt::new(Kind::LoginGraceTimeout, Outcome::Probe, Some(peer)).ends())
}

/// `drop connection #N from [ADDR]:PORT on [ADDR]:PORT penalty: REASON` (9.8+).
fn penalty_drop(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("drop connection #")?;
    let (_, rest) = lit::split_once(rest, " from [")?;
    let (host, rest) = lit::split_once(rest, "]:")?;
    let end = rest.find(' ').unwrap_or(rest.len());
    let port = parse_port(&rest[..end]);
    let peer = Peer::new(host, port);
    peer.ip?;
    event(MessageAttempt::new(
        Kind::PenaltyDrop,
        Outcome::Probe,
        Some(peer),
    ))
}

/// `ssh_dispatch_run_fatal: Connection from [PREAMBLE ]HOST port N: REASON`; the reason is
/// sshd's, so the rightmost `: ` whose head ends in `HOST port N` splits it.
fn dispatch_fatal(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("ssh_dispatch_run_fatal: Connection from ")?;
    let mut end = rest.len();
    while let Some(at) = lit::rfind(&rest[..end], ": ") {
        if let Some((preamble, peer)) = preamble_host_port(&rest[..at])
            && let (Some((user, _)), Some(_)) = (preamble_user(preamble), peer.port)
        {
            let ev = MessageAttempt::new(Kind::CorruptMac, Outcome::Probe, Some(peer));
            return event(ev.user(user).ends());
        }
        end = at;
    }
    None
}

/// `Corrupted MAC on input.` and `Read from socket failed: Connection reset by peer`: no
/// address, attributed by pid.
fn corrupted_mac(text: &str) -> Option<Message<'_>> {
    (text == "Corrupted MAC on input.")
        .then(|| Message::Attempt(MessageAttempt::new(Kind::CorruptMac, Outcome::Probe, None)))
}

/// `fatal: Read from socket failed: Connection reset by peer` (old OpenSSH), by pid.
fn read_socket(text: &str) -> Option<Message<'_>> {
    (text == "Read from socket failed: Connection reset by peer").then(|| {
        Message::Attempt(MessageAttempt::new(
            Kind::ReadSocketReset,
            Outcome::Probe,
            None,
        ))
    })
}

/// `Close session: user U from HOST port N id N`: a session ending, not hostile.
fn close_session(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("Close session: user ")?;
    let (user, peer) = rightmost_from(rest, |t| {
        let (hp, id) = lit::rsplit_once(t, " id ")?;
        id.parse::<u32>().ok()?;
        host_port(hp)
    })?;
    event(MessageAttempt::new(Kind::CloseSession, Outcome::Info, Some(peer)).user(Some(user)))
}

/// `SSH: Server;Ltype: …;Remote: HOST-PORT;…` (old SUSE audit lines): the pid's client.
fn ssh_remote(text: &str) -> Option<Message<'_>> {
    let rest = text.strip_prefix("SSH: Server;")?;
    let (_, remote) = lit::split_once(rest, ";Remote: ")?;
    let remote = remote.split(';').next()?;
    let (host, port) = remote.rsplit_once('-')?;
    let peer = Peer::new(host, parse_port(port));
    peer.ip?;
    Some(Message::Peer(peer))
}

#[cfg(test)]
mod tests;
