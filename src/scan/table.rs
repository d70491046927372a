//! The per-address table a person reads: `repute scan --format table`.
//!
//! One row per attacking source, most attempts first, then a totals line. A source is an
//! address, or an IPv6 prefix (`2001:db8:1:2::/64`) when the scan groups IPv6 addresses (the
//! default; the totals line then says so), and the totals line says how many quiet sources
//! were dropped past the row cap. User names come
//! from attackers, so they are printed escaped (`{:?}`-style, without quotes) and cut short:
//! a name with control characters or 100 bytes of padding cannot break the layout.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;

use jiff::Timestamp;

use super::enrich::{self, ReputationCells};
use super::summary::{AddrSummary, Summary};
use crate::engine::Lookup;

/// Longest user name shown, in characters.
const USER_SHOWN_CHARS: usize = 24;

/// Writes the table. `top` limits the rows (the totals still count every address).
pub fn write_table(
    out: &mut impl Write,
    summary: &Summary,
    only_public: bool,
    top: Option<usize>,
) -> io::Result<()> {
    write_table_with(out, summary, only_public, top, None)
}

/// As [`write_table`], with the reputation columns (SCORE, COUNTRY, REPORTS, USAGE) filled
/// from `lookups` (see [`super::enrich`]) and a line saying where the answers came from.
pub fn write_table_enriched(
    out: &mut impl Write,
    summary: &Summary,
    only_public: bool,
    top: Option<usize>,
    lookups: &BTreeMap<IpAddr, Lookup>,
) -> io::Result<()> {
    write_table_with(out, summary, only_public, top, Some(lookups))?;
    writeln!(out, "{}", enrich::Tally::of(lookups.values()).line())
}

fn write_table_with(
    out: &mut impl Write,
    summary: &Summary,
    only_public: bool,
    top: Option<usize>,
    lookups: Option<&BTreeMap<IpAddr, Lookup>>,
) -> io::Result<()> {
    let rows = summary.attackers(only_public);
    let shown = &rows[..top.map_or(rows.len(), |n| n.min(rows.len()))];
    let sources: Vec<String> = shown.iter().map(|r| r.source.to_string()).collect();
    let addr_width = sources.iter().map(String::len).max().unwrap_or(0).max(7);
    let reputation: Option<Vec<ReputationCells>> =
        lookups.map(|l| shown.iter().map(|r| enrich::cells(l.get(&r.ip))).collect());
    let widths = reputation.as_deref().map(RepWidths::of);
    if !shown.is_empty() {
        write!(
            out,
            "{:<addr_width$}  {:<13}  {:>8}  {:>8}  {:>3}  {:>5}  ",
            "ADDRESS", "CLASS", "ATTEMPTS", "FAILURES", "OK", "USERS"
        )?;
        if let Some(w) = &widths {
            w.write(out, &ReputationCells::header())?;
        }
        writeln!(
            out,
            "{:<20}  {:<20}  USERS TRIED",
            "FIRST SEEN", "LAST SEEN"
        )?;
    }
    for (i, (row, source)) in shown.iter().zip(&sources).enumerate() {
        let cells = reputation.as_ref().and_then(|r| r.get(i));
        write_row(out, row, source, addr_width, cells.zip(widths.as_ref()))?;
    }
    write_totals(out, summary, &rows, shown.len(), only_public)
}

/// The widths of the reputation columns, from their cells.
struct RepWidths([usize; 4]);

impl RepWidths {
    fn of(rows: &[ReputationCells]) -> Self {
        let mut widths = ReputationCells::header()
            .columns()
            .map(|c| c.chars().count());
        for row in rows {
            for (w, cell) in widths.iter_mut().zip(row.columns()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        RepWidths(widths)
    }

    /// Score left-aligned (it may carry a reason), reports right-aligned, each followed by
    /// two spaces.
    fn write(&self, out: &mut impl Write, cells: &ReputationCells) -> io::Result<()> {
        let [score, country, reports, usage] = self.0;
        write!(
            out,
            "{:<score$}  {:<country$}  {:>reports$}  {:<usage$}  ",
            cells.score, cells.country, cells.reports, cells.usage
        )
    }
}

fn write_row(
    out: &mut impl Write,
    row: &AddrSummary,
    source: &str,
    addr_width: usize,
    reputation: Option<(&ReputationCells, &RepWidths)>,
) -> io::Result<()> {
    let users = match (row.users.count(), row.users.is_lower_bound()) {
        (n, true) => format!("{n}+"),
        (n, false) => n.to_string(),
    };
    write!(
        out,
        "{:<addr_width$}  {:<13}  {:>8}  {:>8}  {:>3}  {:>5}  ",
        source,
        row.class.as_str(),
        row.attempts,
        row.failures,
        row.successes,
        users,
    )?;
    if let Some((cells, widths)) = reputation {
        widths.write(out, cells)?;
    }
    writeln!(
        out,
        "{:<20}  {:<20}  {}",
        time_cell(row.first_seen),
        time_cell(row.last_seen),
        users_cell(row),
    )
}

fn write_totals(
    out: &mut impl Write,
    summary: &Summary,
    rows: &[&AddrSummary],
    shown: usize,
    only_public: bool,
) -> io::Result<()> {
    let attempts: u64 = rows.iter().map(|r| r.attempts).sum();
    let failures: u64 = rows.iter().map(|r| r.failures).sum();
    let public = rows.iter().filter(|r| r.class.is_public()).count();
    let t = &summary.totals;
    let scope = if only_public { " public" } else { "" };
    let more = if shown < rows.len() {
        format!(" ({shown} shown)")
    } else {
        String::new()
    };
    let grouping = summary.grouping();
    let grouped = grouping.groups_ipv6() && rows.iter().any(|r| !r.source.is_single_address());
    let mut notes = String::new();
    if grouped {
        notes += &format!(
            "; an IPv6 row is a /{} prefix (--ipv6-prefix)",
            grouping.ipv6_prefix
        );
    }
    if summary.evicted() > 0 {
        notes += &format!(
            "; {} quieter sources dropped past --max-sources {} (their attempts are not in the rows)",
            summary.evicted(),
            summary.max_sources()
        );
    }
    let n = rows.len() as u64;
    let noun = match (grouped, n) {
        (true, 1) => "source",
        (true, _) => "sources",
        (false, _) => {
            if n == 1 {
                "address"
            } else {
                "addresses"
            }
        }
    };
    writeln!(
        out,
        "total: {} ({}) from {}{scope} {noun}{more}, {} public; {}, {}, {}{notes}",
        counted(attempts, "attempt", "attempts"),
        counted(failures, "failure", "failures"),
        thousands(n),
        thousands(public as u64),
        counted(t.lines, "line read", "lines read"),
        counted(t.events, "sshd event", "sshd events"),
        counted(
            t.attacks_without_address,
            "attack without an address",
            "attacks without an address"
        ),
    )
}

/// `1 attempt`, `12,345 attempts`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// `1234567` as `1,234,567`, as a person reads a total.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2026-03-01 10:00:00Z`. Written digit by digit from the Unix time: a table of 13,000 rows
/// spent more on `strftime` (which parses its format for every cell) than on summarising the
/// million lines behind them.
fn time_cell(time: Option<Timestamp>) -> String {
    let Some(time) = time else {
        return "-".to_string();
    };
    let seconds = time.as_second();
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return time.strftime("%Y-%m-%d %H:%M:%SZ").to_string();
    }
    let mut cell = [0u8; 20];
    let fields = [
        (0, year as u32, 4),
        (5, month, 2),
        (8, day, 2),
        (11, (of_day / 3600) as u32, 2),
        (14, (of_day / 60 % 60) as u32, 2),
        (17, (of_day % 60) as u32, 2),
    ];
    for (at, mut value, width) in fields {
        for i in (0..width).rev() {
            cell[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    for (at, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b' '),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ] {
        cell[at] = separator;
    }
    String::from_utf8_lossy(&cell).into_owned()
}

/// The proleptic Gregorian (year, month, day) of a day number counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn users_cell(row: &AddrSummary) -> String {
    let mut names: Vec<String> = row.users.first_tried().map(shown_user).collect();
    if row.users.count() > names.len() {
        names.push("…".to_string());
    }
    names.join(", ")
}

/// An attacker-chosen name, made safe to print: escaped and cut short.
fn shown_user(name: &str) -> String {
    let escaped = crate::printable::shown(name, USER_SHOWN_CHARS);
    if escaped.is_empty() {
        "\"\"".to_string()
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_escaped_and_cut() {
        assert_eq!(shown_user("root"), "root");
        assert_eq!(shown_user(""), "\"\"");
        assert_eq!(shown_user("a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
        let long = "x".repeat(100);
        assert_eq!(shown_user(&long).chars().count(), USER_SHOWN_CHARS + 1);
    }

    #[test]
    fn times_are_utc_to_the_second() {
        let t = Timestamp::from_second(1_772_359_200).unwrap(); // 2026-03-01 10:00:00Z
        assert_eq!(time_cell(Some(t)), "2026-03-01 10:00:00Z");
        assert_eq!(time_cell(None), "-");
        let before_epoch = Timestamp::from_second(-1).unwrap();
        assert_eq!(time_cell(Some(before_epoch)), "1969-12-31 23:59:59Z");
        // Every day for 80 years, and the ends of jiff's range, agree with strftime.
        let days = (-10_000i64..20_000).map(|d| d * 86_400 + 86_399);
        for s in days.chain([Timestamp::MIN.as_second(), Timestamp::MAX.as_second()]) {
            let t = Timestamp::from_second(s).unwrap();
            let want = t.strftime("%Y-%m-%d %H:%M:%SZ").to_string();
            assert_eq!(time_cell(Some(t)), want);
        }
    }

    #[test]
    fn totals_say_one_in_the_singular_and_group_thousands() {
        assert_eq!(counted(1, "attempt", "attempts"), "1 attempt");
        assert_eq!(counted(0, "attempt", "attempts"), "0 attempts");
        assert_eq!(
            counted(1_234_567, "line read", "lines read"),
            "1,234,567 lines read"
        );
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
    }

    #[test]
    fn empty_summary_prints_only_totals() {
        let mut out = Vec::new();
        write_table(&mut out, &Summary::default(), false, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("total: 0 attempts"), "{text}");
    }
}
