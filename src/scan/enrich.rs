//! `repute scan --enrich`: the reputation of the addresses a scan reports, one lookup per
//! distinct address.
//!
//! The scan core counts and writes; the [`Engine`] answers (class gate, cache, provider,
//! shared quota). This file sits between them: which addresses to look up (only the rows the
//! table shows, so `--top` spends no quota on rows it hides), the table's reputation cells,
//! the tally of where the answers came from, and the `reputation` member that JSON events of
//! public addresses get ([`EventReputation`], one lookup per distinct address while
//! streaming). A failed lookup is a cell or a `reason`, never an error of the scan, and a
//! provider that keeps failing is left alone for the rest of the scan (the engine's circuit
//! breaker, which serves every caller).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use super::Enricher;
use super::summary::Summary;
use crate::engine::{Engine, Lookup, NoReputation, Source};

/// Longest usage type shown in the table, in characters.
const USAGE_SHOWN_CHARS: usize = 32;

/// The addresses of the rows the table shows (`top` of them), in table order.
pub fn shown_addresses(summary: &Summary, only_public: bool, top: Option<usize>) -> Vec<IpAddr> {
    summary
        .attackers(only_public)
        .into_iter()
        .take(top.unwrap_or(usize::MAX))
        .map(|a| a.ip)
        .collect()
}

/// Why a row has no score, in a word or two (`private`, `no key`, `quota`, …).
pub fn short_reason(why: &NoReputation) -> &'static str {
    match why {
        NoReputation::NotPublic(class) => class.as_str(),
        NoReputation::Allowlisted => "allowlisted",
        NoReputation::NoApiKey => "no key",
        NoReputation::QuotaExhausted { .. } => "quota",
        NoReputation::Unauthorized => "key refused",
        NoReputation::ProviderFailed { .. } => "provider failed",
        NoReputation::StoreUnavailable { .. } => "store down",
    }
}

/// The reputation columns of one table row, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReputationCells {
    /// The score, or `-` and a short reason.
    pub score: String,
    pub country: String,
    pub reports: String,
    pub usage: String,
}

impl ReputationCells {
    pub fn header() -> Self {
        ReputationCells {
            score: "SCORE".into(),
            country: "COUNTRY".into(),
            reports: "REPORTS".into(),
            usage: "USAGE".into(),
        }
    }

    pub fn columns(&self) -> [&str; 4] {
        [&self.score, &self.country, &self.reports, &self.usage]
    }
}

/// The cells of a row from its lookup (`None`: the address was not looked up).
pub fn cells(lookup: Option<&Lookup>) -> ReputationCells {
    let dash = || "-".to_string();
    let Some(lookup) = lookup else {
        return ReputationCells {
            score: dash(),
            country: dash(),
            reports: dash(),
            usage: dash(),
        };
    };
    match &lookup.answer {
        Ok(r) => ReputationCells {
            score: r.abuse_confidence_score.to_string(),
            // Provider text: escaped and cut, as attacker text is.
            country: r
                .country_code
                .as_deref()
                .map_or_else(dash, |c| crate::printable::shown(c, 8)),
            reports: r.total_reports.map_or_else(dash, |n| n.to_string()),
            usage: r
                .usage_type
                .as_deref()
                .map_or_else(dash, |u| crate::printable::shown(u, USAGE_SHOWN_CHARS)),
        },
        Err(why) => ReputationCells {
            score: format!("- {}", short_reason(why)),
            country: dash(),
            reports: dash(),
            usage: dash(),
        },
    }
}

/// Where the answers came from: counts for the totals line, and the failures, to say once
/// why there is no score.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub cache: u64,
    pub api: u64,
    /// Addresses without an answer, by short reason (deliberate skips and failures).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Failed lookups (not deliberate skips) by reason code, with the first one's text.
    failures: BTreeMap<&'static str, (u64, String)>,
}

impl Tally {
    pub fn of<'a>(lookups: impl IntoIterator<Item = &'a Lookup>) -> Self {
        let mut tally = Tally::default();
        lookups.into_iter().for_each(|l| tally.add(l));
        tally
    }

    pub fn add(&mut self, lookup: &Lookup) {
        match (lookup.source, lookup.missing()) {
            (Source::Cache, _) => self.cache += 1,
            (Source::Api, _) => self.api += 1,
            (Source::Skipped, None) => *self.skipped.entry("unknown").or_default() += 1,
            (Source::Skipped, Some(why)) => {
                *self.skipped.entry(short_reason(why)).or_default() += 1;
                if !why.is_deliberate() {
                    let entry = self
                        .failures
                        .entry(why.code())
                        .or_insert_with(|| (0, why.to_string()));
                    entry.0 += 1;
                }
            }
        }
    }

    /// `reputation: 2 from the API, 1 from the cache, 3 skipped (1 private, 2 no key)`.
    pub fn line(&self) -> String {
        let skipped: u64 = self.skipped.values().sum();
        let mut line = format!(
            "reputation: {} from the API, {} from the cache, {skipped} skipped",
            self.api, self.cache
        );
        if skipped > 0 {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect();
            line.push_str(&format!(" ({})", reasons.join(", ")));
        }
        line
    }

    /// When every failed lookup failed for the same reason: that reason, in one line, to say
    /// once (with a hint for a missing key). `None` when nothing failed or reasons differ
    /// (the rows say them).
    pub fn common_failure(&self) -> Option<String> {
        let mut failures = self.failures.iter();
        let (code, (count, text)) = failures.next()?;
        if failures.next().is_some() {
            return None;
        }
        let hint = if *code == NoReputation::NoApiKey.code() {
            " (set ABUSEIPDB_API_KEY_FILE or ABUSEIPDB_API_KEY)"
        } else {
            ""
        };
        let addresses = if *count == 1 { "address" } else { "addresses" };
        Some(format!(
            "no reputation for {count} public {addresses}: {text}{hint}"
        ))
    }
}

/// The `reputation` member of JSON events (`repute scan --format jsonl --enrich`): the
/// `repute check --format json` object of the event's address, looked up once per distinct
/// address and kept, serialised, for its later events.
pub struct EventReputation<'e> {
    engine: &'e Engine,
    members: HashMap<IpAddr, String>,
    tally: Tally,
}

impl<'e> EventReputation<'e> {
    pub fn new(engine: &'e Engine) -> Self {
        EventReputation {
            engine,
            members: HashMap::new(),
            tally: Tally::default(),
        }
    }

    /// Where the answers came from, so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }
}

impl Enricher for EventReputation<'_> {
    fn event_members(&mut self, ip: IpAddr) -> &str {
        // Keyed by the canonical address, as `lookup_distinct` is: `::ffff:a.b.c.d` and
        // `a.b.c.d` are one address, one lookup, one tally entry.
        let ip = crate::addr::canonical(ip);
        let (engine, tally) = (self.engine, &mut self.tally);
        self.members.entry(ip).or_insert_with(|| {
            let lookup = engine.lookup(ip);
            tally.add(&lookup);
            // A record of plain data always serialises; an empty member is the fallback.
            serde_json::to_string(&lookup.record())
                .map(|json| format!(",\"reputation\":{json}"))
                .unwrap_or_default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::AddrClass;
    use crate::reputation::Reputation;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn found(text: &str, source: Source, score: u8) -> Lookup {
        let mut reputation = Reputation::bare(ip(text), score);
        reputation.country_code = Some("NL".into());
        reputation.total_reports = Some(12);
        reputation.usage_type = Some("Data Center\n/Web Hosting/Transit and more text".into());
        Lookup {
            ip: ip(text),
            class: AddrClass::Public,
            source,
            answer: Ok(reputation),
        }
    }

    fn missing(text: &str, class: AddrClass, why: NoReputation) -> Lookup {
        Lookup {
            ip: ip(text),
            class,
            source: Source::Skipped,
            answer: Err(why),
        }
    }

    #[test]
    fn cells_show_the_score_or_why_not() {
        let c = cells(Some(&found("192.31.196.1", Source::Api, 87)));
        assert_eq!(
            (c.score.as_str(), c.country.as_str(), c.reports.as_str()),
            ("87", "NL", "12")
        );
        assert!(c.usage.starts_with("Data Center\\n/"), "{}", c.usage);
        assert_eq!(c.usage.chars().count(), USAGE_SHOWN_CHARS + 1);
        let private = missing(
            "10.0.0.1",
            AddrClass::Private,
            NoReputation::NotPublic(AddrClass::Private),
        );
        assert_eq!(cells(Some(&private)).score, "- private");
        let quota = missing(
            "192.31.196.2",
            AddrClass::Public,
            NoReputation::QuotaExhausted { until: None },
        );
        assert_eq!(cells(Some(&quota)).score, "- quota");
        assert_eq!(cells(None).score, "-");
    }

    #[test]
    fn the_tally_counts_sources_and_names_a_common_failure() {
        let lookups = [
            found("192.31.196.1", Source::Api, 87),
            found("192.31.196.2", Source::Cache, 3),
            missing(
                "10.0.0.1",
                AddrClass::Private,
                NoReputation::NotPublic(AddrClass::Private),
            ),
            missing("192.31.196.3", AddrClass::Public, NoReputation::NoApiKey),
            missing("192.31.196.4", AddrClass::Public, NoReputation::NoApiKey),
        ];
        let tally = Tally::of(&lookups);
        assert_eq!(
            tally.line(),
            "reputation: 1 from the API, 1 from the cache, 3 skipped (2 no key, 1 private)"
        );
        let said = tally.common_failure().expect("one reason");
        assert!(
            said.starts_with("no reputation for 2 public addresses: no API key configured"),
            "{said}"
        );

        let mixed = Tally::of(&[
            missing("192.31.196.3", AddrClass::Public, NoReputation::NoApiKey),
            missing(
                "192.31.196.4",
                AddrClass::Public,
                NoReputation::Unauthorized,
            ),
        ]);
        assert_eq!(mixed.common_failure(), None);
        assert_eq!(Tally::of(&lookups[..3]).common_failure(), None);
    }

    #[test]
    fn a_mapped_address_shares_the_memo_of_its_ipv4_form() {
        let config = crate::config::Config {
            cache: crate::config::StoreSetting::Disabled,
            ..crate::config::Config::default()
        };
        let engine = Engine::from_parts(&config, Box::new(crate::store::NoStore::new()), None);
        let mut events = EventReputation::new(&engine);
        let plain = events.event_members(ip("49.88.112.73")).to_string();
        let mapped = events.event_members(ip("::ffff:49.88.112.73")).to_string();
        assert_eq!(plain, mapped);
        assert_eq!(events.members.len(), 1);
        assert_eq!(events.tally().skipped.values().sum::<u64>(), 1);
    }
}
