//! The one decision step: what to do about one attempt, for every command.
//!
//! [`decide`] takes an [`Attempt`] (read from a log, or from a Wazuh alert by
//! [`crate::wazuh::alert::Alert::attempt`]), optionally what its address did (its
//! [`History`]: the [`Evidence`] of its attempts, and the count of its recent tries when the
//! caller keeps one), and its reputation ([`Answer`]: a score looked up through the
//! [`crate::engine::Engine`], a score the alert already carries, one the caller remembers, or
//! why there is none), and returns a [`Decision`]: whether to alert (the integration's
//! enrichment or error event), whether to block and for how long (the active response, and
//! `repute watch`'s bans: the count judged by [`crate::policy::Policy::observe`], or the
//! reputation at the first attack), and with which AbuseIPDB categories to report (only
//! when reporting is on, from the history's evidence). Each part carries the reason text the
//! commands log, so a decision reads the same whichever command took it. [`names_another`]
//! is the check both Wazuh commands make first: an alert whose log names another address than
//! the one they would act on (a decoder fooled by a crafted user name) is not acted on.
//!
//! The thresholds are [`Thresholds`], from [`Config`]: `alert_min_score` (the integration:
//! its options' `min_score`), `block.min_score` (the active response: `extra_args` and its
//! flag first; `repute watch`: its `ban_score`), what to do when no score can be had
//! (`--on-lookup-failure`), and `block.default_duration` (`repute watch`: its growing ban
//! time). The lookup is the caller's (through the engine, only when a threshold needs a
//! score), so the step itself never does I/O.

use std::net::IpAddr;
use std::time::Duration;

use crate::attempt::Attempt;
use crate::config::Config;
use crate::engine::{Lookup, NoReputation, Source};
use crate::report::{Category, Evidence};

/// When no score can be had (no key, quota spent, provider down) and blocking needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnLookupFailure {
    /// Block anyway (the default: the Wazuh rule that fired already judged the address, and
    /// an attacker must not be able to switch blocking off by exhausting the quota).
    #[default]
    Block,
    /// Do not block.
    Skip,
}

impl std::str::FromStr for OnLookupFailure {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "block" => Ok(OnLookupFailure::Block),
            "skip" => Ok(OnLookupFailure::Skip),
            other => Err(format!("{other:?}: on-lookup-failure is block or skip")),
        }
    }
}

/// The settings one decision is taken by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// Alert at or above this score (0: every score).
    pub alert_min_score: u8,
    /// Block only at or above this score; `None`: whatever the score, without asking for one
    /// (the Wazuh rule that fired, or the count, judged the address).
    pub block_min_score: Option<u8>,
    pub on_lookup_failure: OnLookupFailure,
    /// How long a block lasts.
    pub block_duration: Duration,
    /// Report blocked attackers to AbuseIPDB.
    pub report: bool,
}

impl Thresholds {
    /// The thresholds of `config`: `alert_min_score`, `block.min_score`,
    /// `block.default_duration`, `[report] enabled`; a failed lookup blocks.
    pub fn from_config(config: &Config) -> Self {
        Thresholds {
            alert_min_score: config.alert_min_score,
            block_min_score: config.block.min_score,
            on_lookup_failure: OnLookupFailure::default(),
            block_duration: config.block.default_duration,
            report: config.report.enabled,
        }
    }

    /// Whether blocking depends on a score (so the caller should look one up).
    pub fn block_needs_score(&self) -> bool {
        self.block_min_score.is_some()
    }
}

/// Whether `score` reaches the threshold `min`: the one comparison every threshold uses
/// (the alert's, the block's, `repute watch`'s `ban_score`).
pub fn reaches(score: u8, min: u8) -> bool {
    score >= min
}

/// Where a score came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreFrom {
    /// The alert carried it (an AbuseIPDB enrichment alert).
    Alert,
    /// The engine's lookup: the cache or the API.
    Lookup(Source),
    /// An earlier lookup the caller remembers (`repute watch` looks an address up once, at
    /// its first failure, and keeps the score with its count).
    Remembered,
}

impl ScoreFrom {
    /// `alert`, `cache` or `api`: the word the logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreFrom::Alert => "alert",
            ScoreFrom::Lookup(source) => source.as_str(),
            ScoreFrom::Remembered => "memory",
        }
    }
}

/// The reputation a decision is taken on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Nobody asked: no threshold needed a score.
    NotAsked,
    /// A score, and where it came from.
    Score { score: u8, from: ScoreFrom },
    /// Why there is none.
    Missing(NoReputation),
}

impl Answer {
    /// The answer of a lookup.
    pub fn of(lookup: &Lookup) -> Answer {
        match &lookup.answer {
            Ok(rep) => Answer::Score {
                score: rep.abuse_confidence_score,
                from: ScoreFrom::Lookup(lookup.source),
            },
            Err(why) => Answer::Missing(why.clone()),
        }
    }

    /// A score the alert already carries.
    pub fn carried(score: u8) -> Answer {
        Answer::Score {
            score,
            from: ScoreFrom::Alert,
        }
    }
}

/// What the address did: the decision's "recent history" input.
#[derive(Debug, Clone, Copy, Default)]
pub struct History<'a> {
    /// The evidence of its attempts, this one included (a caller that keeps evidence has
    /// counted it already): what the report categories come from. `None`: this attempt alone.
    pub evidence: Option<&'a Evidence>,
    /// The count of its recent tries, when the caller keeps one (`repute watch`:
    /// [`crate::policy::Policy::observe`]); `None` for a one-alert process, where the rule that
    /// fired judged the address.
    pub count: Option<Count>,
}

impl<'a> History<'a> {
    /// Only the evidence of its attempts.
    pub fn of(evidence: &'a Evidence) -> Self {
        History {
            evidence: Some(evidence),
            count: None,
        }
    }
}

/// What the count of an address's recent tries says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Enough tries (or probes) within the window: block, whatever the score.
    Reached,
    /// Not yet: only the reputation can block (at or above the block threshold).
    Below,
}

/// Whether to alert: the integration's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// Send the enrichment event with the reputation.
    Reputation,
    /// Send the error event: the lookup failed (not a deliberate skip), and the dashboard
    /// should hear it.
    Failure,
    /// Send nothing; the reason, as the integration logs it (`score 3 below min_score 5, no
    /// event`, `skipped, allowlisted`).
    Nothing(String),
}

/// Whether to block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Block for `duration`; `gate` is what the reputation said, when a score was needed
    /// (`AbuseIPDB score 93 from alert, minimum 50`).
    For {
        duration: Duration,
        gate: Option<String>,
    },
    /// Do not block; the reason, as the active response logs it after `Declined to block IP: `.
    Not(String),
}

impl Block {
    pub fn is_block(&self) -> bool {
        matches!(self, Block::For { .. })
    }
}

/// What to do about one attempt, each part with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub alert: Alert,
    pub block: Block,
    /// Report the address with these categories; `None`: no report (reporting off, no block,
    /// or nothing hostile in the evidence).
    pub report: Option<Vec<Category>>,
}

/// The decision on `attempt`, given what its address did (`history`, if kept) and its
/// reputation (`answer`), by `thresholds`. Never fails; every "no" says why.
pub fn decide(
    attempt: &Attempt,
    history: Option<&History<'_>>,
    answer: &Answer,
    thresholds: &Thresholds,
) -> Decision {
    let history = history.copied().unwrap_or_default();
    let block = block(attempt, history.count, answer, thresholds);
    let report = (thresholds.report && block.is_block())
        .then(|| match history.evidence {
            Some(evidence) => report_categories(evidence),
            None => {
                let mut evidence = Evidence::new();
                evidence.add_attempt(attempt);
                report_categories(&evidence)
            }
        })
        .flatten();
    Decision {
        alert: alert(answer, thresholds.alert_min_score),
        block,
        report,
    }
}

fn alert(answer: &Answer, min: u8) -> Alert {
    match answer {
        Answer::Score { score, .. } if reaches(*score, min) => Alert::Reputation,
        Answer::Score { score, .. } => {
            Alert::Nothing(format!("score {score} below min_score {min}, no event"))
        }
        Answer::Missing(why) if why.is_deliberate() => Alert::Nothing(format!("skipped, {why}")),
        Answer::Missing(_) => Alert::Failure,
        Answer::NotAsked => Alert::Nothing("skipped, not looked up".into()),
    }
}

/// The AbuseIPDB categories a report of an address with `evidence` carries; `None` when
/// nothing in it is hostile (nothing to report).
fn report_categories(evidence: &Evidence) -> Option<Vec<Category>> {
    Some(evidence.categories()).filter(|categories| !categories.is_empty())
}

fn block(attempt: &Attempt, count: Option<Count>, answer: &Answer, t: &Thresholds) -> Block {
    if !attempt.outcome.is_attack() {
        return Block::Not(format!(
            "not an attack: {} ({})",
            attempt.kind.as_str(),
            attempt.outcome.as_str()
        ));
    }
    let duration = t.block_duration;
    // The count judged the address, as a Wazuh rule does; the firewall's own checks still
    // refuse an allowlisted or non-public address, and say so.
    if count == Some(Count::Reached) {
        return Block::For {
            duration,
            gate: None,
        };
    }
    // Never blocked, whatever the settings: the firewall's own checks refuse these too.
    if let Answer::Missing(why) = answer
        && why.is_deliberate()
    {
        return Block::Not(why.to_string());
    }
    let min = match (t.block_min_score, count) {
        (Some(min), _) => min,
        // No count kept: the rule that fired judged the address.
        (None, None) => {
            return Block::For {
                duration,
                gate: None,
            };
        }
        (None, Some(_)) => return Block::Not("too few tries, and no score threshold".into()),
    };
    let why = match answer {
        Answer::Score { score, from } if reaches(*score, min) => {
            return Block::For {
                duration,
                gate: Some(format!(
                    "AbuseIPDB score {score} from {}, minimum {min}",
                    from.as_str()
                )),
            };
        }
        Answer::Score { score, from } => {
            return Block::Not(format!(
                "AbuseIPDB score {score} (from {}) is below the minimum {min}",
                from.as_str()
            ));
        }
        Answer::Missing(why) => why.to_string(),
        Answer::NotAsked => "not looked up".to_string(),
    };
    match t.on_lookup_failure {
        OnLookupFailure::Block => Block::For {
            duration,
            gate: Some(format!("no AbuseIPDB score: {why}; blocking anyway")),
        },
        OnLookupFailure::Skip => Block::Not(format!("no AbuseIPDB score: {why}")),
    }
}

/// Why not to act on `target` for `attempt`, when the attempt's log names another address.
/// Wazuh's decoders take the address from the first place their pattern fits, so a user name
/// sent as `x 198.51.100.7` can put a decoy in `data.srcip`; the sshd parser takes the address
/// where sshd wrote it. Acting on the decoy would let an attacker aim the block (and the
/// lookup) at anyone.
pub fn names_another(attempt: &Attempt, target: IpAddr) -> Option<String> {
    let named = crate::addr::canonical(attempt.srcip?);
    let target = crate::addr::canonical(target);
    (named != target).then(|| format!("the alert's log names {named}, not {target}"))
}

#[cfg(test)]
mod tests;
