//! The report comment: built from [`Evidence`] counts, never from log text.
//!
//! AbuseIPDB publishes every comment, and fail2ban's reporting action is known for sending the
//! raw matched lines, host names and user names included. Here a comment says what happened
//! and when, in UTC: "sshd: 14 failed login attempts (9 invalid user, 5 failed password); 9
//! user names tried; over 3 min, 2026-11-30 05:01:07 to 05:04:12 UTC". The counts are attempts
//! (see [`Evidence`]), not log lines. No host name, no address,
//! no user name. User names tried are added only when [`Redaction::user_names`] opts in, and
//! even then a name is left out when it exists on this host (an accepted login from the
//! evidence, or an account `getpwnam` knows, as `getent passwd` would), looks like a host name
//! of ours or an address, or holds anything but `[A-Za-z0-9._-]`.

use std::fmt::Write as _;
use std::net::IpAddr;

use jiff::Timestamp;

use super::evidence::Evidence;
use crate::attempt::Outcome;

/// The longest comment AbuseIPDB keeps: 1,024 characters (and, since its cut is said to be
/// in bytes, never more than 1,024 bytes either).
pub const MAX_COMMENT: usize = crate::reputation::abuseipdb::MAX_COMMENT_CHARS;
/// User names listed at most, when listing them is opted in.
pub const MAX_NAMES_LISTED: usize = 10;
/// The longest user name ever listed.
const MAX_NAME_LISTED: usize = 32;

/// Tells whether an account exists on this host.
pub trait Accounts: Send + Sync {
    fn exists(&self, name: &str) -> bool;
}

/// The host's own account database, through NSS (`getpwnam_r`, what `getent passwd NAME`
/// asks). A lookup that fails says "exists": a name is only shared when surely unknown.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostAccounts;

impl Accounts for HostAccounts {
    fn exists(&self, name: &str) -> bool {
        let Ok(c_name) = std::ffi::CString::new(name) else {
            return true;
        };
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        // SAFETY: an all-zero passwd is a valid value for getpwnam_r to fill in.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is its real size.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        rc != 0 || !found.is_null()
    }
}

/// What may appear in a comment.
pub struct Redaction {
    /// List (vetted) user names tried. Off by default.
    pub user_names: bool,
    /// This host's names, lower-cased (from `gethostname` and the settings).
    pub host_names: Vec<String>,
    pub accounts: Box<dyn Accounts>,
}

impl std::fmt::Debug for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redaction")
            .field("user_names", &self.user_names)
            .field("host_names", &self.host_names)
            .finish_non_exhaustive()
    }
}

impl Redaction {
    /// User names off; this host's name from `gethostname`; accounts from NSS.
    pub fn for_this_host(user_names: bool) -> Self {
        Redaction {
            user_names,
            host_names: this_host_name().into_iter().collect(),
            accounts: Box::new(HostAccounts),
        }
    }

    /// As [`Redaction::for_this_host`], with the `[report]` settings' opt-in and host names.
    pub fn for_config(config: &crate::config::Config) -> Self {
        let mut redaction = Redaction::for_this_host(config.report.user_names);
        let extra = config
            .report
            .host_names
            .iter()
            .map(|h| h.to_ascii_lowercase());
        redaction.host_names.extend(extra);
        redaction
    }

    /// Whether `name` may be listed: a plain short name that is not ours in any way.
    pub fn may_share(&self, name: &str, evidence: &Evidence) -> bool {
        let plain = !name.is_empty()
            && name.len() <= MAX_NAME_LISTED
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain
            || name.parse::<IpAddr>().is_ok()
            || name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            return false;
        }
        let lower = name.to_ascii_lowercase();
        let ours = |host: &str| {
            let host = host.to_ascii_lowercase();
            host == lower
                || host.split('.').any(|label| label == lower)
                || (host.len() >= 4 && lower.contains(&host))
                || (lower.len() >= 4 && host.contains(&lower))
        };
        if self
            .host_names
            .iter()
            .map(String::as_str)
            .chain(evidence.hosts())
            .any(ours)
        {
            return false;
        }
        if evidence
            .accepted_users()
            .any(|u| u.eq_ignore_ascii_case(name))
        {
            return false;
        }
        !self.accounts.exists(name)
    }
}

/// This host's name, lower-cased, if it has one.
pub fn this_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// The comment for `evidence` (empty when there is nothing hostile in it).
pub fn build_comment(evidence: &Evidence, redaction: &Redaction) -> String {
    if evidence.attacks() == 0 {
        return String::new();
    }
    let kinds = |outcome: Outcome| {
        evidence
            .kinds(outcome)
            .into_iter()
            .map(|(k, n)| format!("{n} {}", k.as_str().replace('_', " ")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if evidence.failures > 0 {
        parts.push(format!(
            "{} ({})",
            plural(
                evidence.failures,
                "failed login attempt",
                "failed login attempts",
            ),
            kinds(Outcome::Failure)
        ));
    }
    if evidence.probes > 0 {
        parts.push(format!(
            "{} ({})",
            plural(evidence.probes, "pre-auth probe", "pre-auth probes"),
            kinds(Outcome::Probe)
        ));
    }
    let mut text = format!("sshd: {}", parts.join(", "));
    let users = evidence.users_tried_count();
    if users > 0 {
        let more = if evidence.users_overflow() { "+" } else { "" };
        let noun = if users == 1 && more.is_empty() {
            "user name"
        } else {
            "user names"
        };
        let _ = write!(text, "; {users}{more} {noun} tried");
        if redaction.user_names {
            let shared: Vec<&str> = evidence
                .users_tried()
                .filter(|u| redaction.may_share(u, evidence))
                .take(MAX_NAMES_LISTED)
                .collect();
            if !shared.is_empty() {
                let _ = write!(text, " (including {})", shared.join(", "));
            }
        }
    }
    if let Some(span) = span_text(evidence.first, evidence.last) {
        let _ = write!(text, "; {span}");
    }
    cap_comment(&text)
}

/// A comment cut to [`MAX_COMMENT`] characters and bytes, never inside a character.
pub fn cap_comment(text: &str) -> String {
    crate::reputation::abuseipdb::cap_comment(text)
}

/// "over 3 min, 2026-11-30 05:01:07 to 05:04:12 UTC", or "at … UTC" for one instant.
fn span_text(first: Option<Timestamp>, last: Option<Timestamp>) -> Option<String> {
    let (first, last) = (first?, last?);
    let full = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M:%S").to_string();
    if first == last {
        return Some(format!("at {} UTC", full(first)));
    }
    let secs = last.as_second() - first.as_second();
    let same_day = first.strftime("%Y-%m-%d").to_string() == last.strftime("%Y-%m-%d").to_string();
    let end = if same_day {
        last.strftime("%H:%M:%S").to_string()
    } else {
        full(last)
    };
    Some(format!(
        "over {}, {} to {end} UTC",
        duration_text(secs),
        full(first)
    ))
}

fn duration_text(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 48 * 3600 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::Kind;

    struct Known(&'static [&'static str]);
    impl Accounts for Known {
        fn exists(&self, name: &str) -> bool {
            self.0.contains(&name)
        }
    }

    fn redaction(user_names: bool) -> Redaction {
        Redaction {
            user_names,
            host_names: vec!["bastion-7.corp.example.org".into()],
            accounts: Box::new(Known(&["root", "deploy"])),
        }
    }

    fn at(text: &str) -> Option<Timestamp> {
        text.parse().ok()
    }

    fn evidence() -> Evidence {
        let mut e = Evidence::new();
        let host = Some("web01");
        for (user, t) in [
            ("root", "2026-11-30T05:01:07Z"),
            ("oracle", "2026-11-30T05:02:00Z"),
            ("deploy", "2026-11-30T05:02:30Z"),
            ("bastion-7", "2026-11-30T05:03:00Z"),
            ("web01", "2026-11-30T05:03:10Z"),
            ("10.1.2.3", "2026-11-30T05:03:20Z"),
            ("al ice", "2026-11-30T05:03:30Z"),
            ("carol", "2026-11-30T05:03:40Z"),
        ] {
            e.add(
                at(t),
                host,
                Kind::InvalidUser,
                Outcome::Failure,
                Some(user),
                1,
            );
        }
        e.add(
            at("2026-11-30T05:04:12Z"),
            host,
            Kind::ConnClosedPreauth,
            Outcome::Probe,
            None,
            1,
        );
        // carol logged in from there: she exists here.
        e.add(
            at("2026-11-30T06:00:00Z"),
            host,
            Kind::Accepted,
            Outcome::Success,
            Some("carol"),
            0,
        );
        e
    }

    #[test]
    fn the_comment_is_counts_kinds_and_a_utc_span() {
        let text = build_comment(&evidence(), &redaction(false));
        assert_eq!(
            text,
            "sshd: 8 failed login attempts (8 invalid user), 1 pre-auth probe (1 conn closed preauth); \
             8 user names tried; over 3 min, 2026-11-30 05:01:07 to 05:04:12 UTC"
        );
    }

    #[test]
    fn opted_in_user_names_leave_out_ours() {
        let text = build_comment(&evidence(), &redaction(true));
        assert!(text.contains("(including oracle)"), "{text}");
        for name in [
            "root", "deploy", "bastion", "web01", "10.1.2.3", "al ice", "carol",
        ] {
            assert!(!text.contains(name), "{name} leaked: {text}");
        }
    }

    #[test]
    fn comments_are_capped_in_characters_and_bytes() {
        assert_eq!(cap_comment(&"a".repeat(2000)).len(), MAX_COMMENT);
        let accents = cap_comment(&"é".repeat(2000));
        assert!(accents.len() <= MAX_COMMENT && accents.chars().all(|c| c == 'é'));
        assert_eq!(cap_comment("short"), "short");
    }

    #[test]
    fn the_host_account_database_knows_root() {
        assert!(HostAccounts.exists("root"));
        assert!(!HostAccounts.exists("no-such-user-r3pute-x"));
    }
}
