//! `repute scan --format abuseipdb-csv`: a backlog of attackers as AbuseIPDB's bulk-report CSV.
//!
//! The file AbuseIPDB's `bulk-report` endpoint (and its web form) takes has the header
//! `IP,Categories,ReportDate,Comment`, one row per address, the categories as a quoted
//! comma-separated list of ids, the date in ISO 8601 with an offset, the comment quoted
//! (RFC 4180: a `"` inside is doubled). Each address's row is built from its
//! [`Evidence`] exactly as a live report is: the categories it supports, a comment of counts
//! and kinds with the same redaction (no host name, no address, no user name unless opted in,
//! and then never one that exists here), the first attack as the date. Addresses that are not
//! public, allowlisted or this host's own get no row; neither do addresses that only logged in.
//!
//! The evidence is gathered on one thread, in input order, with memory growing with distinct
//! attacking addresses only (see [`Evidence`]).

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::ops::ControlFlow;

use jiff::Timestamp;

use super::lines::{LineCounts, read_lines};
use super::open::{self, Opened};
use super::{Input, InputError, LineJudge, Options, Progress, Totals};
use crate::addr;
use crate::report::{Evidence, Redaction, build_comment, categories::join_ids};

/// The header AbuseIPDB's bulk report expects.
pub const HEADER: &str = "IP,Categories,ReportDate,Comment";

/// The evidence per attacking address, in the order addresses first appeared.
#[derive(Debug, Default)]
pub struct Backlog {
    pub addresses: Vec<(IpAddr, Evidence)>,
    pub totals: Totals,
    pub errors: Vec<InputError>,
}

/// Reads every input and gathers the evidence per address (public ones only when
/// `opts.only_public`).
pub fn gather(inputs: &[Input], opts: &Options, progress: &dyn Progress) -> Backlog {
    let mut index: HashMap<IpAddr, usize> = HashMap::new();
    let mut backlog = Backlog::default();
    for input in inputs {
        let result = match open::open(input) {
            Err(e) => Err(e),
            Ok(Opened::PlainFile { file, .. }) => {
                gather_stream(file, opts, progress, &mut index, &mut backlog)
            }
            Ok(Opened::Stream(src)) => gather_stream(src, opts, progress, &mut index, &mut backlog),
        };
        if let Err(source) = result {
            backlog.errors.push(InputError {
                name: input.name(),
                source,
            });
        }
    }
    backlog
}

fn gather_stream(
    src: impl io::Read,
    opts: &Options,
    progress: &dyn Progress,
    index: &mut HashMap<IpAddr, usize>,
    backlog: &mut Backlog,
) -> io::Result<()> {
    let mut judge = LineJudge::new(opts);
    let mut counts = LineCounts::default();
    let mut scratch = String::new();
    let on_read = |n: usize| progress.advance(n as u64);
    let Backlog {
        addresses, totals, ..
    } = backlog;
    let result = read_lines(src, 0, false, &mut counts, on_read, |line| {
        let Some(event) = judge.judge(&line, &mut scratch) else {
            return ControlFlow::Continue(());
        };
        totals.events += 1;
        totals.attacks += u64::from(event.outcome.is_attack());
        let Some(ip) = event.srcip.map(addr::canonical) else {
            totals.attacks_without_address += u64::from(event.outcome.is_attack());
            return ControlFlow::Continue(());
        };
        if opts.only_public && !addr::is_public(ip) {
            return ControlFlow::Continue(());
        }
        let slot = *index.entry(ip).or_insert_with(|| {
            addresses.push((ip, Evidence::new()));
            addresses.len() - 1
        });
        addresses[slot].1.add_event(&event);
        ControlFlow::Continue(())
    });
    judge.add_counts(counts, totals);
    result
}

/// Writes the header and one row per address `keep` accepts that has an attack; returns the
/// rows written. `now` dates the rows whose evidence carries no time.
pub fn write_csv(
    out: &mut dyn Write,
    addresses: &[(IpAddr, Evidence)],
    keep: &dyn Fn(IpAddr) -> bool,
    redaction: &Redaction,
    now: Timestamp,
) -> io::Result<u64> {
    writeln!(out, "{HEADER}")?;
    let mut rows = 0;
    for (ip, evidence) in addresses {
        let categories = evidence.categories();
        if categories.is_empty() || !keep(*ip) {
            continue;
        }
        let date = evidence
            .first
            .unwrap_or(now)
            .strftime("%Y-%m-%dT%H:%M:%S+00:00");
        let comment = build_comment(evidence, redaction);
        writeln!(
            out,
            "{ip},{},{date},{}",
            quote(&join_ids(&categories)),
            quote(&comment)
        )?;
        rows += 1;
    }
    Ok(rows)
}

/// An RFC 4180 quoted field.
fn quote(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::{Kind, Outcome};

    #[test]
    fn rows_are_quoted_and_filtered() {
        let mut attacker = Evidence::new();
        let t = "2026-11-30T05:01:07Z".parse().ok();
        attacker.add(
            t,
            Some("h"),
            Kind::FailedPassword,
            Outcome::Failure,
            Some("x"),
            1,
        );
        let mut friend = Evidence::new();
        friend.add(
            t,
            Some("h"),
            Kind::Accepted,
            Outcome::Success,
            Some("me"),
            0,
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0u8; 4]));
        let rows = vec![
            (ip("203.0.113.7"), attacker.clone()),
            (ip("198.51.100.1"), friend),
            (ip("192.0.2.99"), attacker),
        ];
        let redaction = Redaction {
            user_names: false,
            host_names: vec![],
            accounts: Box::new(crate::report::comment::HostAccounts),
        };
        let mut out = Vec::new();
        let keep = |a: IpAddr| a != ip("192.0.2.99");
        let n =
            write_csv(&mut out, &rows, &keep, &redaction, Timestamp::UNIX_EPOCH).expect("write");
        assert_eq!(n, 1);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(
            text,
            "IP,Categories,ReportDate,Comment\n203.0.113.7,\"18,22\",2026-11-30T05:01:07+00:00,\
             \"sshd: 1 failed login attempt (1 failed password); 1 user name tried; at 2026-11-30 05:01:07 UTC\"\n"
        );
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
