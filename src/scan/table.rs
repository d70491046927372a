//! The per-address table a person reads: `repute scan --format table`.
//!
//! One row per attacking address, most attempts first, then a totals line. User names come
//! from attackers, so they are printed escaped (`{:?}`-style, without quotes) and cut short:
//! a name with control characters or 100 bytes of padding cannot break the layout.

use std::io::{self, Write};

use jiff::Timestamp;

use super::summary::{AddrSummary, Summary};

/// Longest user name shown, in characters.
const USER_SHOWN_CHARS: usize = 24;

/// Writes the table. `top` limits the rows (the totals still count every address).
pub fn write_table(
    out: &mut impl Write,
    summary: &Summary,
    only_public: bool,
    top: Option<usize>,
) -> io::Result<()> {
    let rows = summary.attackers(only_public);
    let shown = &rows[..top.map_or(rows.len(), |n| n.min(rows.len()))];
    let addr_width = shown
        .iter()
        .map(|r| r.ip.to_string().len())
        .max()
        .unwrap_or(0)
        .max(7);
    if !shown.is_empty() {
        writeln!(
            out,
            "{:<addr_width$}  {:<13}  {:>8}  {:>8}  {:>3}  {:>5}  {:<20}  {:<20}  USERS TRIED",
            "ADDRESS", "CLASS", "ATTEMPTS", "FAILURES", "OK", "USERS", "FIRST SEEN", "LAST SEEN"
        )?;
    }
    for row in shown {
        write_row(out, row, addr_width)?;
    }
    write_totals(out, summary, &rows, shown.len(), only_public)
}

fn write_row(out: &mut impl Write, row: &AddrSummary, addr_width: usize) -> io::Result<()> {
    let users = match (row.users.count(), row.users.is_lower_bound()) {
        (n, true) => format!("{n}+"),
        (n, false) => n.to_string(),
    };
    writeln!(
        out,
        "{:<addr_width$}  {:<13}  {:>8}  {:>8}  {:>3}  {:>5}  {:<20}  {:<20}  {}",
        row.ip.to_string(),
        row.class.as_str(),
        row.attempts,
        row.failures,
        row.successes,
        users,
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
    writeln!(
        out,
        "total: {attempts} attempts ({failures} failures) from {n}{scope} addresses{more}, \
         {public} public; {lines} lines read, {events} sshd events, \
         {noaddr} attacks without an address",
        n = rows.len(),
        lines = t.lines,
        events = t.events,
        noaddr = t.attacks_without_address,
    )
}

fn time_cell(time: Option<Timestamp>) -> String {
    time.map_or_else(
        || "-".to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
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
    let escaped: String = name.escape_debug().collect();
    let escaped = if escaped.is_empty() {
        "\"\"".to_string()
    } else {
        escaped
    };
    match escaped.char_indices().nth(USER_SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
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
    fn empty_summary_prints_only_totals() {
        let mut out = Vec::new();
        write_table(&mut out, &Summary::default(), false, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("total: 0 attempts"), "{text}");
    }
}
