//! The syslog envelope around an sshd message: time stamp, host, program tag and pid.
//!
//! One hand-written pass over the head of the line recognises every envelope repute meets:
//! BSD syslog (`Mar  1 10:00:00 host sshd[123]: …`, with or without host), rsyslog and
//! journald ISO-8601 stamps (`2026-11-28T09:00:14.512093+00:00 host sshd[1]: …`,
//! `…+0000`), the macOS form (`2020-03-23 06:47:42.801612-0700  host sshd[1]: …`), RFC 5424
//! (`<38>1 2026-… host sshd 2215 - [sd…] …`), BusyBox and FreeBSD `-v` extras
//! (`host auth.info sshd[1]: …`, `<10.5> host sshd[1]: …`), socklog's `auth.info:` banner,
//! and journal exports with no stamp at all (`host sshd[1]: …`).
//!
//! Only the programs `sshd`, `sshd-session` (OpenSSH 9.8+), `sshd-auth` (10.0+) and the old
//! `sshd(pam_unix)` are accepted; the first program tag in the head decides, so `sudo: …
//! sshd[1]: Failed …` is not sshd. Stamps without a zone are the local time of the host that wrote them, read in the
//! [`Clock`]'s zone (UTC unless the caller gives one). Year-less BSD stamps get their year
//! from the parser's `now`: the year of `now`, or the year before when that would put the
//! stamp more than a day after `now`; a reader that meets January after December moves on to
//! the next year.

use std::cell::Cell;

use jiff::Timestamp;

use super::lit;

/// Which sshd program wrote the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Sshd,
    SshdSession,
    /// OpenSSH 10.0+'s pre-authentication binary.
    SshdAuth,
    /// `sshd(pam_unix)[pid]:` of old Red Hat systems: Linux-PAM messages of sshd.
    SshdPam,
}

/// The parts of a line around the sshd message, borrowed from the line.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    pub time: Option<Timestamp>,
    pub host: Option<&'a str>,
    pub program: Program,
    pub pid: Option<u32>,
    pub message: &'a str,
}

/// What a zone-less stamp needs to be dated: the reference instant, pre-split, the zone the
/// writing host kept its clock in, the last day looked up (consecutive lines almost always
/// share it), and the latest instant dated so far (so a long-running reader follows the log
/// across New Year).
#[derive(Debug, Clone)]
pub struct Clock {
    now_secs: i64,
    now_year: i32,
    /// (month, day) → start of that day this year and last year, when it exists.
    last_day: Cell<(u8, u8, Option<i64>, Option<i64>)>,
    zone: Zone,
    /// The latest instant a year-less stamp was dated to (`i64::MIN`: none yet).
    latest: Cell<i64>,
}

/// The zone of zone-less stamps: UTC, or a time zone resolved once, with the offset of the
/// last local hour looked up kept (a zone's offset changes at most once in an hour, on the
/// hour in every zone of today's database), so a line costs one comparison.
#[derive(Debug, Clone)]
enum Zone {
    Utc,
    Tz {
        tz: jiff::tz::TimeZone,
        /// (local hour since the epoch, offset in seconds east of UTC); hour `i64::MIN`: none.
        last_hour: Cell<(i64, i64)>,
    },
}

/// Seconds in the window (beyond a day) within which an instant counts as "not after now",
/// and in which a year-less stamp may run backwards before it is taken as next year's.
const DAY: i64 = 86_400;
const HALF_YEAR: i64 = 183 * DAY;

impl Clock {
    /// Zone-less stamps read as UTC.
    pub fn new(now: Timestamp) -> Self {
        let now_secs = now.as_second();
        let (now_year, _, _) = civil_from_days(now_secs.div_euclid(DAY));
        Clock {
            now_secs,
            now_year,
            last_day: Cell::new((0, 0, None, None)),
            zone: Zone::Utc,
            latest: Cell::new(i64::MIN),
        }
    }

    /// Moves the reference instant on (a long-running reader calls this now and then).
    pub fn set_now(&mut self, now: Timestamp) {
        self.now_secs = now.as_second();
        (self.now_year, _, _) = civil_from_days(self.now_secs.div_euclid(DAY));
        self.last_day.set((0, 0, None, None));
    }

    /// Zone-less stamps read as local time in `tz` (UTC itself takes the fast path).
    pub fn with_zone(now: Timestamp, tz: jiff::tz::TimeZone) -> Self {
        let mut clock = Clock::new(now);
        if tz != jiff::tz::TimeZone::UTC {
            clock.zone = Zone::Tz {
                tz,
                last_hour: Cell::new((i64::MIN, 0)),
            };
        }
        clock
    }

    /// Seconds since the epoch of a zone-less wall-clock time (`local`: the same count as if
    /// the wall clock were UTC). A time that a zone's clock skipped or showed twice is read
    /// as RFC 5545 and Temporal do ("compatible": the earlier of two, after a gap).
    fn to_utc(&self, local: i64) -> i64 {
        let Zone::Tz { tz, last_hour } = &self.zone else {
            return local;
        };
        let hour = local.div_euclid(3600);
        let (cached, offset) = last_hour.get();
        if cached == hour {
            return local - offset;
        }
        let offset = jiff::Timestamp::from_second(hour * 3600)
            .ok()
            .map(|t| jiff::tz::TimeZone::UTC.to_datetime(t))
            .and_then(|dt| tz.to_ambiguous_timestamp(dt).compatible().ok())
            .map_or(0, |t| hour * 3600 - t.as_second());
        last_hour.set((hour, offset));
        local - offset
    }

    /// The instant of a year-less stamp: this year, or last year when this year's would lie
    /// more than a day after `now` (or after the latest stamp, when the log has run past
    /// `now`); next year's when it would lie more than half a year before the latest stamp
    /// (a reader started in December meeting January's lines).
    fn date_yearless(&self, month: u8, day: u8, secs_of_day: i64) -> Option<Timestamp> {
        let (m, d, mut this_year, mut last_year) = self.last_day.get();
        if (m, d) != (month, day) {
            let start = |year: i32| -> Option<i64> {
                (day <= days_in_month(year, month)).then(|| days_from_civil(year, month, day) * DAY)
            };
            (this_year, last_year) = (start(self.now_year), start(self.now_year - 1));
            self.last_day.set((month, day, this_year, last_year));
        }
        let latest = self.latest.get();
        let reference = self.now_secs.max(latest);
        let mut secs = match this_year {
            Some(s) if self.to_utc(s + secs_of_day) <= reference + DAY => {
                self.to_utc(s + secs_of_day)
            }
            // Feb 29 of a leap year seen in a non-leap year, or a stamp in the future.
            _ => self.to_utc(last_year? + secs_of_day),
        };
        if latest != i64::MIN && secs < latest - HALF_YEAR {
            // Past New Year: the same day one year on (none for Feb 29 in a common year).
            let (year, _, _) = civil_from_days(secs.div_euclid(DAY));
            if day <= days_in_month(year + 1, month) {
                let next = self.to_utc(days_from_civil(year + 1, month, day) * DAY + secs_of_day);
                // At most a week past the reference (a reader between two `set_now`s): an old
                // line out of order stays in its year.
                if next <= reference + 7 * DAY {
                    secs = next;
                }
            }
        }
        if secs > latest {
            self.latest.set(secs);
        }
        Timestamp::new(secs, 0).ok()
    }
}

/// Splits a line into its envelope and the sshd message, or `None` when the line is not
/// written by sshd (another program, or no program tag at all).
pub fn split<'a>(line: &'a str, clock: &Clock) -> Option<Envelope<'a>> {
    let bytes = line.as_bytes();
    if bytes.first() == Some(&b'<')
        && let Some(env) = rfc5424(line)
    {
        return Some(env);
    }
    let (time, rest) = match stamp(line, clock) {
        Some((t, rest)) => (t, rest),
        None => (None, line),
    };
    header(rest, time, clock)
}

/// A bare message: an optional leading stamp and `facility.level:` banner (socklog), then
/// the message itself.
pub fn bare<'a>(line: &'a str, clock: &Clock) -> (Option<Timestamp>, &'a str) {
    let (time, rest) = match stamp(line, clock) {
        Some((t, rest)) => (t, lit::skip_spaces(rest)),
        None => (None, line),
    };
    let end = lit::space(rest).unwrap_or(rest.len());
    let rest = match rest[..end].strip_suffix(':') {
        Some(banner) if is_facility_level(banner) => lit::skip_spaces(&rest[end..]),
        _ => rest,
    };
    (time, rest)
}

/// `[<PRI>]` + host tokens + program tag, after the stamp (if any).
fn header<'a>(mut rest: &'a str, time: Option<Timestamp>, clock: &Clock) -> Option<Envelope<'a>> {
    let mut host: Option<&'a str> = None;
    let mut time = time;
    // host, facility.level, `<10.5>`: at most three tokens precede the program tag.
    for _ in 0..4 {
        rest = lit::skip_spaces(rest);
        let end = lit::space(rest).unwrap_or(rest.len());
        let token = &rest[..end];
        if token.is_empty() {
            return None;
        }
        match tag(token) {
            Tag::Sshd(program, pid) => {
                let message = lit::skip_spaces(&rest[end..]);
                return Some(Envelope {
                    time,
                    host,
                    program,
                    pid,
                    message,
                });
            }
            Tag::Other => return None,
            Tag::Banner => {
                // socklog: `auth.info: [Mmm dd hh:mm:ss ]sshd[pid]: …`
                rest = &rest[end..];
                if let Some((t, after)) = stamp(lit::skip_spaces(rest), clock) {
                    time = time.or(t);
                    rest = after;
                }
            }
            Tag::Plain => {
                if host.is_none() && !token.starts_with('<') {
                    host = Some(token);
                }
                rest = &rest[end..];
            }
        }
    }
    None
}

enum Tag {
    Sshd(Program, Option<u32>),
    /// Another program's tag (`sudo:`, `CRON[12]:`): the line is not sshd's.
    Other,
    /// A `facility.level:` banner (socklog) that precedes the real header.
    Banner,
    Plain,
}

/// Recognises a program tag: `sshd[123]:`, `sshd:`, `[sshd]:`, `[sshd]`, `sshd[123]` (rsyslog
/// without colon), `sshd-session[123]:`, `sshd(pam_unix)[123]:`.
fn tag(token: &str) -> Tag {
    let (token, colon) = match token.strip_suffix(':') {
        Some(t) => (t, true),
        None => (token, false),
    };
    if let Some(inner) = token.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return match program(inner) {
            Some(p) => Tag::Sshd(p, None),
            None if colon => Tag::Other,
            None => Tag::Plain,
        };
    }
    let (name, pid) = match token.find('[') {
        Some(open) if token.ends_with(']') => {
            let digits = &token[open + 1..token.len() - 1];
            match parse_u32(digits) {
                Some(pid) => (&token[..open], Some(pid)),
                None => return if colon { Tag::Other } else { Tag::Plain },
            }
        }
        _ => (token, None),
    };
    match program(name) {
        Some(p) if colon || pid.is_some() => Tag::Sshd(p, pid),
        _ if colon && pid.is_none() && is_facility_level(name) => Tag::Banner,
        _ if colon => Tag::Other,
        _ if pid.is_some() => Tag::Other,
        _ => Tag::Plain,
    }
}

fn program(name: &str) -> Option<Program> {
    match name {
        "sshd" => Some(Program::Sshd),
        "sshd-session" => Some(Program::SshdSession),
        "sshd-auth" => Some(Program::SshdAuth),
        "sshd(pam_unix)" => Some(Program::SshdPam),
        _ => None,
    }
}

/// `auth.info`, `authpriv.notice`: a syslog facility and level.
fn is_facility_level(name: &str) -> bool {
    match name.split_once('.') {
        Some((f, l)) => {
            !f.is_empty()
                && !l.is_empty()
                && f.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && l.bytes().all(|b| b.is_ascii_lowercase())
        }
        None => false,
    }
}

/// RFC 5424: `<PRI>1 STAMP HOST APP PROCID MSGID SD MSG`.
fn rfc5424(line: &str) -> Option<Envelope<'_>> {
    let close = line.find('>')?;
    parse_u32(&line[1..close])?;
    let rest = line[close + 1..].strip_prefix("1 ")?;
    let (stamp_tok, rest) = next_token(rest)?;
    let time = if stamp_tok == "-" {
        None
    } else {
        Some(iso_token(stamp_tok)?)
    };
    let (host_tok, rest) = next_token(rest)?;
    let (app, rest) = next_token(rest)?;
    let program = program(app)?;
    let (procid, rest) = next_token(rest)?;
    let (_msgid, rest) = next_token(rest)?;
    let rest = skip_structured_data(rest)?;
    let message = rest.strip_prefix(' ').unwrap_or(rest);
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);
    Some(Envelope {
        time,
        host: (host_tok != "-").then_some(host_tok),
        program,
        pid: parse_u32(procid),
        message,
    })
}

/// One space-separated token and the rest after the single separating space.
fn next_token(s: &str) -> Option<(&str, &str)> {
    let end = lit::space(s)?;
    Some((&s[..end], &s[end + 1..]))
}

/// Skips `-` or one or more `[id k="v" …]` elements; values may hold `]` and `\"`.
fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(rest);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    while bytes.get(i) == Some(&b'[') {
        let mut in_quotes = false;
        i += 1;
        loop {
            match *bytes.get(i)? {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    (i > 0).then(|| &s[i..])
}

/// A leading time stamp (BSD or ISO-8601) and the rest of the line after it.
fn stamp<'a>(line: &'a str, clock: &Clock) -> Option<(Option<Timestamp>, &'a str)> {
    let b = line.as_bytes();
    if b.len() >= 15 && b[0].is_ascii_uppercase() {
        return bsd_stamp(line, clock);
    }
    if b.len() >= 19 && b[0].is_ascii_digit() && b[4] == b'-' {
        return iso_stamp(line, clock);
    }
    None
}

/// `Mmm dd hh:mm:ss` (day space- or zero-padded, or a single digit).
fn bsd_stamp<'a>(line: &'a str, clock: &Clock) -> Option<(Option<Timestamp>, &'a str)> {
    let month = month_number(line.get(..3)?)?;
    let rest = lit::skip_spaces(line.get(3..)?.strip_prefix(' ')?);
    let (day_tok, rest) = next_token(rest)?;
    let day = u8::try_from(parse_u32(day_tok)?).ok()?;
    let b = rest.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let secs = hms(&b[..8])?;
    if !(1..=31).contains(&day) {
        return None;
    }
    let mut rest = &rest[8..];
    // Some exports keep fractions or a year: `10:00:00.123`, `10:00:00 2024`.
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    Some((clock.date_yearless(month, day, secs), rest))
}

fn month_number(name: &str) -> Option<u8> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS.iter().position(|m| *m == name).map(|i| i as u8 + 1)
}

/// `YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|±hh:mm|±hhmm]`, then the rest of the line. Without a
/// zone the stamp is local time in the clock's zone.
fn iso_stamp<'a>(line: &'a str, clock: &Clock) -> Option<(Option<Timestamp>, &'a str)> {
    let end = iso_end(line)?;
    let (local, nanos, offset) = iso_parts(&line[..end])?;
    let secs = match offset {
        Some(offset) => local - offset,
        None => clock.to_utc(local),
    };
    Some((Timestamp::new(secs, nanos).ok(), &line[end..]))
}

/// Where an ISO stamp that starts the line ends (the date/time separator may be a space).
fn iso_end(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    // The stamp's 19 bytes must be ASCII: a multi-byte char across byte 19 would make the
    // slice at the stamp's end panic (the loop below only steps over ASCII bytes).
    if b.len() < 19 || !b[..19].is_ascii() || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let mut i = 19;
    while i < b.len()
        && (b[i].is_ascii_digit() || matches!(b[i], b'.' | b',' | b':' | b'+' | b'-' | b'Z'))
    {
        i += 1;
    }
    Some(i)
}

/// Parses one whole ISO-8601 stamp token; no zone means UTC.
pub fn iso_token(tok: &str) -> Option<Timestamp> {
    let (local, nanos, offset) = iso_parts(tok)?;
    Timestamp::new(local - offset.unwrap_or(0), nanos).ok()
}

/// An ISO-8601 stamp token as its wall-clock seconds (counted as if UTC), nanoseconds and
/// zone offset (seconds east of UTC; `None` when the stamp has no zone).
fn iso_parts(tok: &str) -> Option<(i64, i32, Option<i64>)> {
    let b = tok.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let year = i32::try_from(digits(&b[0..4])?).ok()?;
    let month = u8::try_from(digits(&b[5..7])?).ok()?;
    let day = u8::try_from(digits(&b[8..10])?).ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let secs_of_day = hms(&b[11..19])?;
    let mut i = 19;
    let mut nanos: i32 = 0;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset = zone_offset(&b[i..])?;
    let local = days_from_civil(year, month, day) * 86_400 + secs_of_day;
    Some((local, nanos, offset))
}

/// `""` (no zone: `None`), `Z` (0), `±hh:mm`, `±hhmm`, `±hh` → seconds east of UTC.
fn zone_offset(b: &[u8]) -> Option<Option<i64>> {
    let sign = match b.first() {
        None => return Some(None),
        Some(b'Z') if b.len() == 1 => return Some(Some(0)),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let rest = &b[1..];
    let (h, m) = match rest.len() {
        2 => (digits(rest)?, 0),
        4 => (digits(&rest[..2])?, digits(&rest[2..])?),
        5 if rest[2] == b':' => (digits(&rest[..2])?, digits(&rest[3..])?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(Some(sign * (i64::from(h) * 3600 + i64::from(m) * 60)))
}

/// `hh:mm:ss` → seconds of the day.
fn hms(b: &[u8]) -> Option<i64> {
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s) = (digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?);
    // 60 is a leap second; jiff has none, so it is folded onto :59.
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s.min(59)))
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// A decimal `u32` made of ASCII digits only (no sign, no spaces).
pub fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    s.bytes().try_fold(0u32, |acc, c| {
        if c.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u32::from(c - b'0'))
        } else {
            None
        }
    })
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        Clock::new("2026-11-28T12:00:00Z".parse().unwrap())
    }

    fn env(line: &str) -> Envelope<'_> {
        split(line, &clock()).unwrap_or_else(|| panic!("no envelope: {line}"))
    }

    fn ts(s: &str) -> Option<Timestamp> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn bsd_with_host() {
        let e = env("Mar  1 10:00:00 srv01 sshd[123]: Invalid user x from 192.0.2.1");
        assert_eq!(e.time, ts("2026-03-01T10:00:00Z"));
        assert_eq!(e.host, Some("srv01"));
        assert_eq!(e.pid, Some(123));
        assert_eq!(e.program, Program::Sshd);
        assert_eq!(e.message, "Invalid user x from 192.0.2.1");
    }

    #[test]
    fn bsd_without_host_and_single_digit_day() {
        let e = env("Feb 7 16:01:07 sshd[5106]: msg");
        assert_eq!(e.time, ts("2026-02-07T16:01:07Z"));
        assert_eq!(e.host, None);
        assert_eq!(e.message, "msg");
    }

    #[test]
    fn bsd_stamp_after_now_is_last_year() {
        let e = env("Dec 12 20:04:39 aragorn sshd[1328]: msg");
        assert_eq!(e.time, ts("2025-12-12T20:04:39Z"));
        // Within a day after now still counts as this year (clock skew).
        let e = env("Nov 29 06:00:00 h sshd[1]: msg");
        assert_eq!(e.time, ts("2026-11-29T06:00:00Z"));
    }

    #[test]
    fn feb_29_goes_to_the_last_leap_year_only_if_it_exists() {
        let c = Clock::new("2029-03-01T00:00:00Z".parse().unwrap());
        let e = split("Feb 29 10:00:00 h sshd[1]: m", &c).unwrap();
        // 2029 and 2028: 2028 is a leap year.
        assert_eq!(e.time, ts("2028-02-29T10:00:00Z"));
        let c = Clock::new("2027-03-01T00:00:00Z".parse().unwrap());
        let e = split("Feb 29 10:00:00 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, None);
        assert_eq!(e.message, "m");
    }

    #[test]
    fn zone_less_stamps_are_local_time_in_the_clock_zone() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        let c = Clock::with_zone(now, paris.clone());
        // Winter: UTC+1; summer: UTC+2.
        let e = split("Nov 28 10:00:00 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2026-11-28T09:00:00Z"));
        let e = split("Jul  1 10:00:00 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2026-07-01T08:00:00Z"));
        let e = split("2026-07-01T10:00:00 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2026-07-01T08:00:00Z"));
        // A stamp with its own zone keeps it.
        let e = split("2026-07-01T10:00:00+00:00 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2026-07-01T10:00:00Z"));
        // The hour the clocks skip (2026-03-29 02:xx in Paris) reads as after the gap.
        let e = split("Mar 29 02:30:00 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2026-03-29T01:30:00Z"));
        // UTC stays UTC.
        let c = Clock::with_zone(now, jiff::tz::TimeZone::UTC);
        let e = split("Nov 28 10:00:00 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2026-11-28T10:00:00Z"));
    }

    #[test]
    fn a_long_running_reader_follows_the_log_past_new_year() {
        // Last told the date at noon on Dec 31.
        let mut c = Clock::new("2026-12-01T00:00:00Z".parse().unwrap());
        c.set_now("2026-12-31T12:00:00Z".parse().unwrap());
        let e = split("Dec 31 23:59:59 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2026-12-31T23:59:59Z"));
        let e = split("Jan  1 00:00:01 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2027-01-01T00:00:01Z"));
        let e = split("Jan  2 08:00:00 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2027-01-02T08:00:00Z"));
        // A file read in March: December's lines are last year's, January's this year's.
        let c = Clock::new("2027-03-01T00:00:00Z".parse().unwrap());
        let e = split("Dec 31 23:59:59 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2026-12-31T23:59:59Z"));
        let e = split("Jan  1 00:00:01 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2027-01-01T00:00:01Z"));
        // An old line out of order never moves into the future.
        let c = Clock::new("2005-08-14T10:00:00Z".parse().unwrap());
        split("Jun  7 10:00:00 h sshd[1]: m", &c).unwrap();
        let e = split("Nov 11 08:04:51 h sshd[1]: m", &c).unwrap();
        assert_eq!(e.time, ts("2004-11-11T08:04:51Z"));
    }

    #[test]
    fn rsyslog_iso_high_precision() {
        let e = env("2026-11-28T09:00:14.512093+00:00 host sshd[1]: m");
        assert_eq!(e.time, ts("2026-11-28T09:00:14.512093Z"));
        assert_eq!(e.host, Some("host"));
        let e = env("2019-07-08T17:40:16.954167-04:00 h sshd[2]: m");
        assert_eq!(e.time, ts("2019-07-08T21:40:16.954167Z"));
    }

    #[test]
    fn a_multi_byte_char_across_the_iso_stamp_end_is_no_stamp() {
        // `é` spans bytes 18..20: slicing the stamp at byte 19 used to panic.
        // Not a stamp, so the token is taken for the host name (as for any other word).
        for line in [
            "2026-11-28T09:00:0\u{e9} sshd[1]: x",
            "2026-11-28T09:00:\u{e9}0 sshd[1]: x",
        ] {
            let e = env(line);
            assert_eq!((e.time, e.message), (None, "x"), "{line}");
        }
        let e = env("2026-11-28T09:00:00\u{e9} sshd[1]: x");
        assert_eq!((e.host, e.message), (Some("\u{e9}"), "x"));
        assert_eq!(e.time, ts("2026-11-28T09:00:00Z"));
    }

    proptest::proptest! {
        /// An ISO-like prefix cut anywhere and followed by arbitrary chars never panics.
        #[test]
        fn iso_prefix_then_any_chars_never_panics(
            cut in 0usize..=32,
            tail in "\\PC{0,12}",
        ) {
            let full = "2026-11-28T09:00:14.512093+00:00";
            let line = format!("{}{tail} h sshd[1]: m", &full[..cut]);
            let _ = split(&line, &clock());
            let _ = iso_token(&line);
        }
    }

    #[test]
    fn journald_short_iso_and_no_zone_is_utc() {
        let e = env("2026-11-28T09:00:14+0000 host sshd-session[7]: m");
        assert_eq!(e.time, ts("2026-11-28T09:00:14Z"));
        assert_eq!(e.program, Program::SshdSession);
        let e = env("2026-11-28T09:00:14 host sshd[7]: m");
        assert_eq!(e.time, ts("2026-11-28T09:00:14Z"));
    }

    #[test]
    fn macos_space_separated_stamp() {
        let e = env("2020-03-23 06:47:42.801612-0700  localhost sshd[3186]: error: PAM: x");
        assert_eq!(e.time, ts("2020-03-23T13:47:42.801612Z"));
        assert_eq!(e.host, Some("localhost"));
        assert_eq!(e.message, "error: PAM: x");
    }

    #[test]
    fn rfc5424_plain_and_with_structured_data() {
        let e = env("<38>1 2019-07-08T17:40:16.954167-04:00 h.example.com sshd 57915 - - Failed x");
        assert_eq!(e.pid, Some(57915));
        assert_eq!(e.host, Some("h.example.com"));
        assert_eq!(e.message, "Failed x");
        let e = env(
            r#"<38>1 2019-07-08T17:40:17Z h sshd 5 - [t tzKnown="1"][x@1 a="[b]" c="\"]"] Failed y"#,
        );
        assert_eq!(e.message, "Failed y");
        assert_eq!(e.time, ts("2019-07-08T17:40:17Z"));
        assert!(split("<38>1 2019-07-08T17:40:17Z h sudo 5 - - Failed y", &clock()).is_none());
    }

    #[test]
    fn journal_export_without_stamp() {
        let e = env("srv sshd[13709]: error: PAM: x");
        assert_eq!(e.time, None);
        assert_eq!(e.host, Some("srv"));
        assert_eq!(e.pid, Some(13709));
    }

    #[test]
    fn bsd_variants_busybox_freebsd_socklog_bracket_tags() {
        let e = env("Jun 20 02:18:39 vps auth.info sshd[13482]: m");
        assert_eq!((e.host, e.pid), (Some("vps"), Some(13482)));
        let e = env("Jan  1 00:00:00 <10.5> foxtrot sshd[1234]: m");
        assert_eq!(e.host, Some("foxtrot"));
        let e = env("2015-05-27T04:31:28.10040 auth.info: May 27 04:31:28 sshd[30993]: m");
        assert_eq!(e.pid, Some(30993));
        assert_eq!(e.message, "m");
        let e = env("Mar  3 00:17:22 [sshd]: m");
        assert_eq!((e.host, e.pid, e.message), (None, None, "m"));
        let e = env("Jun 25 23:53:34 [sshd] m");
        assert_eq!(e.message, "m");
        let e = env("2020-05-29T11:28:56.058908+02:00 bastion sshd[20974] error: m");
        assert_eq!(e.message, "error: m");
    }

    #[test]
    fn other_programs_are_not_sshd() {
        for line in [
            "Mar  1 10:00:00 host sudo: sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2",
            "Mar  1 10:00:00 host su[12]: Failed password for root from 192.0.2.1 port 1 ssh2",
            "Mar  1 10:00:00 host CRON[12]: pam_unix(cron:session): x",
            "Mar  1 10:00:00 host sshdx[1]: Failed password for root from 192.0.2.1 port 1 ssh2",
            "Mar  1 10:00:00 host Failed password for root from 192.0.2.1 port 1 ssh2",
            "2018-06-26 13:22:02.108781500 Failed password for woold from 192.0.2.1 port 1 ssh2",
            "",
            "Mar",
        ] {
            assert!(split(line, &clock()).is_none(), "{line}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
