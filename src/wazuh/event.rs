//! The enrichment event sent back to analysisd, field-compatible with the seed script.
//!
//! The seed sent `{"abuseipdb":{…},"integration":"custom-abuseipdb"}`; every one of its fields
//! keeps its name, JSON type and meaning here, so rules written for it keep working:
//!
//! - `abuseipdb.found`: integer 1 when AbuseIPDB has reports in the window (`totalReports != 0`),
//!   else 0.
//! - `abuseipdb.source.{alert_id,rule,description,full_log,srcip}`: the alert that asked.
//! - `abuse_confidence_score`, `country_code`, `usage_type`, `isp`, `domain`, `total_reports`,
//!   `last_reported_at`: AbuseIPDB's answer, `null` where AbuseIPDB has no value.
//!
//! One deliberate difference: the seed emitted the answer fields only when `found` was 1; here
//! they are always present. The score of an unreported address is 0, which the seed's rule
//! (`abuse_confidence_score` not `^0$`) already treats as "nothing to report", and a rule that
//! tests `found` sees the same value as before.
//!
//! Added: a top-level `srcip` (a static field in Wazuh, so `<srcip>`, `same_source_ip` and
//! firewall-drop work on the enrichment alert), `is_tor`, `num_distinct_users`,
//! `is_whitelisted`, and `answer_source` (`cache` or `api`).
//!
//! Failures are events too, as in the seed: `abuseipdb.error` (the HTTP status as an integer,
//! or 408 for a timeout, or a short code such as `"network"` when there was no HTTP answer),
//! `abuseipdb.description`, and the source alert.

use std::net::IpAddr;

use serde::Serialize;

use super::alert::{Alert, INTEGRATION_NAME};
use crate::engine::{NoReputation, Source};
use crate::reputation::Reputation;

/// The alert that asked, as the seed reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceAlert {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_log: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srcip: Option<String>,
}

impl SourceAlert {
    pub fn from_alert(alert: &Alert) -> SourceAlert {
        SourceAlert {
            alert_id: alert.id(),
            rule: alert.rule_id(),
            description: alert.rule_description(),
            full_log: alert.full_log(),
            srcip: alert.srcip_text(),
        }
    }
}

/// `abuseipdb.error`: an HTTP status, or a code when there was none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ErrorCode {
    Status(u16),
    Code(&'static str),
}

/// What goes under `abuseipdb`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Body {
    Found(Box<FoundBody>),
    Error(ErrorBody),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoundBody {
    pub found: u8,
    pub source: SourceAlert,
    pub abuse_confidence_score: u8,
    pub country_code: Option<String>,
    pub usage_type: Option<String>,
    pub isp: Option<String>,
    pub domain: Option<String>,
    pub total_reports: Option<u64>,
    pub last_reported_at: Option<String>,
    pub num_distinct_users: Option<u64>,
    pub is_tor: Option<bool>,
    pub is_whitelisted: Option<bool>,
    /// `cache` or `api`.
    pub answer_source: Source,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub description: String,
    pub source: SourceAlert,
}

/// The whole payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnrichmentEvent {
    pub abuseipdb: Body,
    pub integration: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srcip: Option<String>,
}

impl EnrichmentEvent {
    /// The event for an answer.
    pub fn found(source: SourceAlert, rep: &Reputation, answer: Source) -> EnrichmentEvent {
        let body = FoundBody {
            // The seed's test: `totalReports != 0`. Without a count, a score says it was reported.
            found: u8::from(
                rep.total_reports
                    .map_or(rep.abuse_confidence_score > 0, |n| n != 0),
            ),
            source,
            abuse_confidence_score: rep.abuse_confidence_score,
            country_code: rep.country_code.clone(),
            usage_type: rep.usage_type.clone(),
            isp: rep.isp.clone(),
            domain: rep.domain.clone(),
            total_reports: rep.total_reports,
            last_reported_at: rep.last_reported_at.clone(),
            num_distinct_users: rep.num_distinct_users,
            is_tor: rep.is_tor,
            is_whitelisted: rep.is_whitelisted,
            answer_source: answer,
        };
        EnrichmentEvent {
            abuseipdb: Body::Found(Box::new(body)),
            integration: INTEGRATION_NAME,
            srcip: Some(rep.ip.to_string()),
        }
    }

    /// The event for a failure.
    pub fn error(
        source: SourceAlert,
        ip: Option<IpAddr>,
        error: ErrorCode,
        description: String,
    ) -> EnrichmentEvent {
        EnrichmentEvent {
            abuseipdb: Body::Error(ErrorBody {
                error,
                description,
                source,
            }),
            integration: INTEGRATION_NAME,
            srcip: ip.map(|ip| ip.to_string()),
        }
    }

    /// The event for a lookup that gave no reputation, or `None` when there is nothing to say
    /// (the address was deliberately not looked up).
    pub fn for_missing(
        source: SourceAlert,
        ip: IpAddr,
        why: &NoReputation,
    ) -> Option<EnrichmentEvent> {
        let code = match why {
            NoReputation::NotPublic(_) | NoReputation::Allowlisted => return None,
            NoReputation::NoApiKey => ErrorCode::Code("no_api_key"),
            NoReputation::QuotaExhausted { .. } => ErrorCode::Status(429),
            NoReputation::Unauthorized => ErrorCode::Status(401),
            NoReputation::ProviderFailed {
                status: Some(s), ..
            } => ErrorCode::Status(*s),
            NoReputation::ProviderFailed {
                status: None,
                detail,
            } if is_timeout(detail) => ErrorCode::Status(408),
            NoReputation::ProviderFailed { status: None, .. } => ErrorCode::Code("network"),
            NoReputation::StoreUnavailable { .. } => ErrorCode::Code("store_unavailable"),
        };
        Some(EnrichmentEvent::error(
            source,
            Some(ip),
            code,
            why.to_string(),
        ))
    }

    fn source_mut(&mut self) -> &mut SourceAlert {
        match &mut self.abuseipdb {
            Body::Found(b) => &mut b.source,
            Body::Error(b) => &mut b.source,
        }
    }

    /// The JSON payload, trimmed so that the framed message stays within `max_message` bytes:
    /// `source.full_log` goes first, then the rule description, then the error description.
    pub fn to_payload(&mut self, prefix_len: usize, max_message: usize) -> String {
        for _ in 0..4 {
            let json = serde_json::to_string(self).unwrap_or_default();
            let excess = (prefix_len + json.len()).saturating_sub(max_message);
            if excess == 0 {
                return json;
            }
            self.shed(excess);
        }
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Removes at least `excess` bytes of serialized text, least useful text first.
    fn shed(&mut self, excess: usize) {
        let source = self.source_mut();
        for field in [&mut source.full_log, &mut source.description] {
            if let Some(text) = field.as_mut().filter(|t| !t.is_empty()) {
                // Serialized text is never shorter than the raw text, so cutting `excess` raw
                // bytes (or everything) removes at least that much.
                truncate_at_char(text, text.len().saturating_sub(excess));
                return;
            }
        }
        if let Body::Error(b) = &mut self.abuseipdb {
            let keep = b.description.len().saturating_sub(excess);
            truncate_at_char(&mut b.description, keep);
        }
    }
}

fn truncate_at_char(text: &mut String, max: usize) {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
}

fn is_timeout(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("timeout") || d.contains("timed out")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn reputation(score: u8, total: Option<u64>) -> Reputation {
        Reputation {
            ip: "49.88.112.73".parse().unwrap(),
            abuse_confidence_score: score,
            country_code: Some("CN".into()),
            usage_type: Some("Data Center/Web Hosting/Transit".into()),
            isp: Some("ChinaNet Jiangsu Province Network".into()),
            domain: None,
            total_reports: total,
            num_distinct_users: Some(12),
            last_reported_at: Some("2026-11-28T10:00:00+00:00".into()),
            is_tor: Some(false),
            is_whitelisted: None,
        }
    }

    fn source() -> SourceAlert {
        SourceAlert {
            alert_id: Some("1.2".into()),
            rule: Some("100001".into()),
            description: Some("d".into()),
            full_log: Some("log".into()),
            srcip: Some("49.88.112.73".into()),
        }
    }

    #[test]
    fn found_follows_total_reports_and_types_are_the_seeds() {
        let mut e = EnrichmentEvent::found(source(), &reputation(100, Some(42)), Source::Api);
        let v: Value = serde_json::from_str(&e.to_payload(0, 65_535)).unwrap();
        assert_eq!(v["abuseipdb"]["found"], json!(1));
        assert_eq!(v["abuseipdb"]["abuse_confidence_score"], json!(100));
        assert_eq!(v["abuseipdb"]["total_reports"], json!(42));
        assert_eq!(v["abuseipdb"]["domain"], Value::Null);
        assert_eq!(v["abuseipdb"]["answer_source"], json!("api"));
        assert_eq!(v["integration"], json!("custom-abuseipdb"));
        assert_eq!(v["srcip"], json!("49.88.112.73"));
        assert_eq!(v["abuseipdb"]["source"]["rule"], json!("100001"));

        let mut none = EnrichmentEvent::found(source(), &reputation(0, Some(0)), Source::Cache);
        let v: Value = serde_json::from_str(&none.to_payload(0, 65_535)).unwrap();
        assert_eq!(v["abuseipdb"]["found"], json!(0));
        assert_eq!(v["abuseipdb"]["abuse_confidence_score"], json!(0));
        assert_eq!(v["abuseipdb"]["answer_source"], json!("cache"));
    }

    #[test]
    fn payload_starts_like_a_json_object_wazuh_decodes() {
        let mut e = EnrichmentEvent::found(source(), &reputation(1, Some(1)), Source::Api);
        assert!(e.to_payload(0, 65_535).starts_with("{\""));
    }

    #[test]
    fn failures_map_to_codes() {
        let ip = "49.88.112.73".parse().unwrap();
        let code = |why: NoReputation| match EnrichmentEvent::for_missing(source(), ip, &why)
            .map(|e| e.abuseipdb)
        {
            Some(Body::Error(b)) => Some(b.error),
            _ => None,
        };
        assert_eq!(
            code(NoReputation::Unauthorized),
            Some(ErrorCode::Status(401))
        );
        assert_eq!(
            code(NoReputation::QuotaExhausted { until: None }),
            Some(ErrorCode::Status(429))
        );
        assert_eq!(
            code(NoReputation::ProviderFailed {
                status: Some(500),
                detail: "x".into()
            }),
            Some(ErrorCode::Status(500))
        );
        assert_eq!(
            code(NoReputation::ProviderFailed {
                status: None,
                detail: "operation timed out".into()
            }),
            Some(ErrorCode::Status(408))
        );
        assert_eq!(
            code(NoReputation::ProviderFailed {
                status: None,
                detail: "connection reset".into()
            }),
            Some(ErrorCode::Code("network"))
        );
        assert_eq!(code(NoReputation::Allowlisted), None);
        assert_eq!(
            code(NoReputation::NotPublic(crate::addr::AddrClass::Private)),
            None
        );
    }

    #[test]
    fn oversized_events_shed_full_log_first_and_fit() {
        let mut s = source();
        s.full_log = Some("é".repeat(40_000));
        s.description = Some("keep me".into());
        let mut e = EnrichmentEvent::found(s, &reputation(5, Some(1)), Source::Api);
        let prefix = "1:abuseipdb:".len();
        let payload = e.to_payload(prefix, 65_535);
        assert!(prefix + payload.len() <= 65_535);
        let v: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["abuseipdb"]["source"]["description"], json!("keep me"));
        assert!(v["abuseipdb"]["source"]["full_log"].as_str().unwrap().len() < 80_000);
    }

    #[test]
    fn escaped_text_that_grows_when_serialized_still_fits() {
        let mut s = source();
        s.full_log = Some("\u{1}".repeat(30_000)); // 6 bytes each once escaped
        s.description = Some("\"".repeat(30_000));
        let mut e = EnrichmentEvent::error(s, None, ErrorCode::Status(500), "\\".repeat(30_000));
        let payload = e.to_payload(40, 65_535);
        assert!(40 + payload.len() <= 65_535);
        assert!(serde_json::from_str::<Value>(&payload).is_ok());
    }
}
