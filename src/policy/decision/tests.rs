use super::*;
use crate::addr::AddrClass;
use crate::attempt::{Kind, Origin, Outcome};

const SCORES: [u8; 7] = [0, 1, 49, 50, 89, 90, 100];

fn attempt(attack: bool) -> Attempt {
    let (kind, outcome) = if attack {
        (Kind::FailedPassword, Outcome::Failure)
    } else {
        (Kind::Accepted, Outcome::Success)
    };
    Attempt {
        time: None,
        host: None,
        pid: None,
        kind,
        outcome,
        srcip: "45.155.205.233".parse().ok(),
        srcport: None,
        user: Some("root".into()),
        wazuh_rule: None,
        origin: Origin::Unknown,
    }
}

/// Alert at 50, block at 90, for an hour, reporting on.
fn thresholds(on_lookup_failure: OnLookupFailure) -> Thresholds {
    Thresholds {
        alert_min_score: 50,
        block_min_score: Some(90),
        on_lookup_failure,
        block_duration: Duration::from_secs(3600),
        report: true,
    }
}

fn every_missing_reason() -> Vec<NoReputation> {
    vec![
        NoReputation::NotPublic(AddrClass::Private),
        NoReputation::Allowlisted,
        NoReputation::NoApiKey,
        NoReputation::QuotaExhausted { until: None },
        NoReputation::Unauthorized,
        NoReputation::ProviderFailed {
            status: Some(503),
            detail: "down".into(),
        },
        NoReputation::StoreUnavailable {
            detail: "redis down".into(),
        },
    ]
}

fn hour(gate: &str) -> Block {
    Block::For {
        duration: Duration::from_secs(3600),
        gate: Some(gate.into()),
    }
}

/// The table: every score that sits on or next to a threshold, attack or not, each reason
/// for having no score, each lookup-failure setting.
#[test]
fn the_decision_table() {
    let brute_force = Some(vec![Category::BRUTE_FORCE, Category::SSH]);
    for on_failure in [OnLookupFailure::Block, OnLookupFailure::Skip] {
        let t = thresholds(on_failure);
        for attack in [true, false] {
            let a = attempt(attack);
            for score in SCORES {
                let d = decide(
                    &a,
                    None,
                    &Answer::Score {
                        score,
                        from: ScoreFrom::Lookup(Source::Api),
                    },
                    &t,
                );
                let want_alert = if score >= 50 {
                    Alert::Reputation
                } else {
                    Alert::Nothing(format!("score {score} below min_score 50, no event"))
                };
                assert_eq!(d.alert, want_alert, "{score} {attack}");
                let want_block = match (attack, score >= 90) {
                    (false, _) => Block::Not("not an attack: accepted (success)".into()),
                    (true, true) => hour(&format!("AbuseIPDB score {score} from api, minimum 90")),
                    (true, false) => Block::Not(format!(
                        "AbuseIPDB score {score} (from api) is below the minimum 90"
                    )),
                };
                assert_eq!(d.block, want_block, "{score} {attack} {on_failure:?}");
                let want_report = (attack && score >= 90)
                    .then(|| brute_force.clone())
                    .flatten();
                assert_eq!(d.report, want_report, "{score} {attack}");
            }
            for why in every_missing_reason() {
                let d = decide(&a, None, &Answer::Missing(why.clone()), &t);
                let deliberate =
                    matches!(why, NoReputation::NotPublic(_) | NoReputation::Allowlisted);
                let want_alert = if deliberate {
                    Alert::Nothing(format!("skipped, {why}"))
                } else {
                    Alert::Failure
                };
                assert_eq!(d.alert, want_alert, "{why}");
                let want_block = match (attack, deliberate, on_failure) {
                    (false, _, _) => Block::Not("not an attack: accepted (success)".into()),
                    (true, true, _) => Block::Not(why.to_string()),
                    (true, false, OnLookupFailure::Block) => {
                        hour(&format!("no AbuseIPDB score: {why}; blocking anyway"))
                    }
                    (true, false, OnLookupFailure::Skip) => {
                        Block::Not(format!("no AbuseIPDB score: {why}"))
                    }
                };
                assert_eq!(d.block, want_block, "{why} {attack} {on_failure:?}");
                assert_eq!(d.report.is_some(), d.block.is_block(), "{why}");
            }
        }
    }
}

/// A few rows written out, as the active response and the integration log them.
#[test]
fn rows_as_the_commands_log_them() {
    let t = thresholds(OnLookupFailure::Skip);
    let low = decide(
        &attempt(true),
        None,
        &Answer::carried(12),
        &Thresholds {
            block_min_score: Some(50),
            ..t.clone()
        },
    );
    assert_eq!(
        low.block,
        Block::Not("AbuseIPDB score 12 (from alert) is below the minimum 50".into())
    );
    assert_eq!(
        low.alert,
        Alert::Nothing("score 12 below min_score 50, no event".into())
    );
    let cached = decide(
        &attempt(true),
        None,
        &Answer::Score {
            score: 100,
            from: ScoreFrom::Lookup(Source::Cache),
        },
        &t,
    );
    assert_eq!(
        cached.block,
        hour("AbuseIPDB score 100 from cache, minimum 90")
    );
    let no_key = decide(
        &attempt(true),
        None,
        &Answer::Missing(NoReputation::NoApiKey),
        &t,
    );
    assert_eq!(
        no_key.block,
        Block::Not("no AbuseIPDB score: no API key configured".into())
    );
}

/// Without a block threshold the score is not needed: every attack is blocked, and the
/// reputation only decides the alert.
#[test]
fn without_a_block_threshold_every_attack_blocks() {
    let t = Thresholds {
        block_min_score: None,
        ..thresholds(OnLookupFailure::Skip)
    };
    assert!(!t.block_needs_score());
    for answer in [
        Answer::NotAsked,
        Answer::carried(0),
        Answer::Missing(NoReputation::NoApiKey),
    ] {
        let d = decide(&attempt(true), None, &answer, &t);
        assert_eq!(
            d.block,
            Block::For {
                duration: Duration::from_secs(3600),
                gate: None
            },
            "{answer:?}"
        );
    }
    assert!(
        !decide(&attempt(false), None, &Answer::NotAsked, &t)
            .block
            .is_block()
    );
}

/// Reporting: only when it is on, only for a block, with the categories of the whole history.
#[test]
fn reports_carry_the_categories_of_the_history() {
    let mut t = thresholds(OnLookupFailure::Block);
    let mut probe = attempt(true);
    probe.kind = Kind::KexIdentification;
    probe.outcome = Outcome::Probe;
    let answer = Answer::carried(95);
    assert_eq!(
        decide(&probe, None, &answer, &t).report,
        Some(vec![Category::PORT_SCAN, Category::SSH])
    );
    let mut history = Evidence::new();
    history.add_attempt(&attempt(true));
    history.add_attempt(&probe);
    assert_eq!(
        decide(&probe, Some(&History::of(&history)), &answer, &t).report,
        Some(vec![Category::BRUTE_FORCE, Category::SSH]),
        "tries before the probe make it brute force"
    );
    assert_eq!(
        decide(&probe, Some(&History::of(&Evidence::new())), &answer, &t).report,
        None,
        "a caller that kept no evidence has nothing to report"
    );
    t.report = false;
    assert_eq!(
        decide(&probe, Some(&History::of(&history)), &answer, &t).report,
        None
    );
}

#[test]
fn the_thresholds_come_from_the_settings() {
    let mut config = Config {
        alert_min_score: 40,
        ..Config::default()
    };
    config.block.min_score = Some(75);
    config.block.default_duration = Duration::from_secs(90);
    config.report.enabled = true;
    let t = Thresholds::from_config(&config);
    assert_eq!(
        t,
        Thresholds {
            alert_min_score: 40,
            block_min_score: Some(75),
            on_lookup_failure: OnLookupFailure::Block,
            block_duration: Duration::from_secs(90),
            report: true,
        }
    );
    assert_eq!("skip".parse(), Ok(OnLookupFailure::Skip));
    assert!("maybe".parse::<OnLookupFailure>().is_err());
}

/// The address the log names against the one a command would act on: the same address in
/// either form passes, another is named in the reason, a log without one says nothing.
#[test]
fn names_another_compares_canonical_addresses() {
    let a = attempt(true);
    let target = |t: &str| t.parse::<std::net::IpAddr>().expect("ip");
    assert_eq!(names_another(&a, target("45.155.205.233")), None);
    assert_eq!(names_another(&a, target("::ffff:45.155.205.233")), None);
    assert_eq!(
        names_another(&a, target("198.51.100.7")),
        Some("the alert's log names 45.155.205.233, not 198.51.100.7".into())
    );
    let mut none = attempt(true);
    none.srcip = None;
    assert_eq!(names_another(&none, target("198.51.100.7")), None);
}

/// `repute watch`'s bans: the count of recent tries is part of the history. Reached, it
/// blocks whatever the answer (the firewall's checks still refuse what they refuse, and say
/// so); below, only a score at or above the block threshold does, and with no threshold
/// nothing. A history without a count is a one-alert process's, decided as before.
#[test]
fn a_count_in_the_history_blocks_when_reached_else_only_the_score_does() {
    let mut t = thresholds(OnLookupFailure::Skip);
    let reached = History {
        evidence: None,
        count: Some(Count::Reached),
    };
    let below = History {
        evidence: None,
        count: Some(Count::Below),
    };
    let mut answers = vec![Answer::NotAsked];
    answers.extend(SCORES.iter().map(|s| Answer::carried(*s)));
    answers.extend(every_missing_reason().into_iter().map(Answer::Missing));
    for answer in &answers {
        assert_eq!(
            decide(&attempt(true), Some(&reached), answer, &t).block,
            Block::For {
                duration: Duration::from_secs(3600),
                gate: None
            },
            "{answer:?}"
        );
        assert!(
            !decide(&attempt(false), Some(&reached), answer, &t)
                .block
                .is_block(),
            "not an attack: {answer:?}"
        );
    }
    for score in SCORES {
        let answer = Answer::Score {
            score,
            from: ScoreFrom::Remembered,
        };
        let block = decide(&attempt(true), Some(&below), &answer, &t).block;
        assert_eq!(block.is_block(), score >= 90, "{score}: {block:?}");
    }
    for answer in [Answer::NotAsked, Answer::Missing(NoReputation::NoApiKey)] {
        assert!(
            !decide(&attempt(true), Some(&below), &answer, &t)
                .block
                .is_block(),
            "without a score counting goes on: {answer:?}"
        );
    }
    t.block_min_score = None;
    assert_eq!(
        decide(&attempt(true), Some(&below), &Answer::carried(100), &t).block,
        Block::Not("too few tries, and no score threshold".into())
    );
    assert!(
        decide(&attempt(true), None, &Answer::carried(0), &t)
            .block
            .is_block(),
        "no count kept: the rule that fired judged"
    );
}
