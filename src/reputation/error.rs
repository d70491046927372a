//! Typed AbuseIPDB failures, decided by HTTP status first and by the body second.
//!
//! The status is the most reliable signal (the docs say so); the JSON:API error body
//! (`errors[].detail/status/source.parameter`) only refines it, and may be an HTML page or
//! empty. Every text carried here has been scrubbed of the API key and of anything that looks
//! like one (see [`scrub`]).

use serde::Deserialize;

/// Why an AbuseIPDB call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("maxAgeInDays {0} is not between 1 and 365")]
    InvalidMaxAge(u16),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("no API key configured")]
    NoApiKey,
    /// 401, or a 403 that is not a duplicate report: the key is missing, wrong or revoked.
    #[error("API key refused (HTTP {status}): {detail}")]
    Unauthorized { status: u16, detail: String },
    /// 402: a parameter beyond the plan.
    #[error("not allowed by the plan (HTTP 402): {detail}")]
    PaymentRequired { detail: String },
    /// 422: a parameter the API rejected.
    #[error("request rejected (HTTP 422){}: {detail}", parameter.as_ref().map(|p| format!(" on `{p}`")).unwrap_or_default())]
    Unprocessable {
        parameter: Option<String>,
        detail: String,
    },
    /// 429 (not a duplicate report): the daily quota of the endpoint is spent. `retry_at` is
    /// when calling makes sense again (Unix seconds), from `Retry-After` or `X-RateLimit-Reset`.
    #[error("daily quota exhausted (HTTP 429){}: {detail}", retry_at.map(|t| format!(" until {}", crate::reputation::error::rfc3339(t))).unwrap_or_default())]
    QuotaExhausted {
        retry_at: Option<i64>,
        detail: String,
    },
    /// The same address was reported less than 15 minutes ago; never retried.
    #[error("duplicate report (HTTP {status}): {detail}")]
    DuplicateReport { status: u16, detail: String },
    /// 5xx.
    #[error("AbuseIPDB server error (HTTP {status}): {detail}")]
    Server { status: u16, detail: String },
    /// Any other non-success status.
    #[error("unexpected HTTP {status}: {detail}")]
    UnexpectedStatus { status: u16, detail: String },
    /// A success status with a body that is not the expected JSON.
    #[error("unreadable answer (HTTP {status}): {detail}")]
    BadBody { status: u16, detail: String },
    #[error("timed out: {0}")]
    Timeout(String),
    /// Refused, reset or closed connections, and name resolution failures.
    #[error("connection failed: {0}")]
    Connection(String),
    /// Any other failure of the HTTP layer (a bad URL, a TLS error).
    #[error("HTTP failure: {0}")]
    Transport(String),
}

impl ApiError {
    /// Errors worth another try within the time budget: the server or the path failed, not
    /// the request.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::Server { .. } | ApiError::Timeout(_) | ApiError::Connection(_)
        )
    }

    /// The HTTP status, when one was received.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Unauthorized { status, .. }
            | ApiError::DuplicateReport { status, .. }
            | ApiError::Server { status, .. }
            | ApiError::UnexpectedStatus { status, .. }
            | ApiError::BadBody { status, .. } => Some(*status),
            ApiError::PaymentRequired { .. } => Some(402),
            ApiError::Unprocessable { .. } => Some(422),
            ApiError::QuotaExhausted { .. } => Some(429),
            _ => None,
        }
    }
}

/// Unix seconds as RFC 3339 (UTC), or the number when out of range.
pub(crate) fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorItem {
    detail: Option<String>,
    source: Option<ErrorSource>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorSource {
    parameter: Option<String>,
}

/// What could be read from an error body: the first `detail` (or a scrubbed excerpt of a body
/// that is not JSON) and the first `source.parameter`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorInfo {
    pub detail: String,
    pub parameter: Option<String>,
}

impl ErrorInfo {
    pub fn from_body(body: &str, key: Option<&str>) -> Self {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(parsed) if !parsed.errors.is_empty() => {
                let detail = parsed
                    .errors
                    .iter()
                    .filter_map(|e| e.detail.as_deref())
                    .collect::<Vec<_>>()
                    .join("; ");
                let parameter = parsed
                    .errors
                    .iter()
                    .find_map(|e| e.source.as_ref()?.parameter.as_deref())
                    // Echoed text like the detail: a server may put the key there.
                    .map(|p| excerpt(p, key));
                ErrorInfo {
                    detail: excerpt(&detail, key),
                    parameter,
                }
            }
            _ => ErrorInfo {
                detail: describe_raw(body, key),
                parameter: None,
            },
        }
    }

    /// The duplicate-report 429 (403 in older API behaviour): by parameter or by text.
    pub fn is_duplicate_report(&self) -> bool {
        self.parameter.as_deref() == Some("ip")
            || self.detail.contains("once in 15 minutes")
            || self.detail.contains("report the same IP")
    }
}

/// A body that is not a JSON:API error: say what it looks like, with a short scrubbed excerpt.
fn describe_raw(body: &str, key: Option<&str>) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "empty body".into();
    }
    let lower = trimmed
        .get(..trimmed.len().min(256))
        .unwrap_or("")
        .to_ascii_lowercase();
    let kind = if lower.starts_with("<!doctype html") || lower.contains("<html") {
        "HTML page"
    } else {
        "non-JSON body"
    };
    format!("{kind}: {}", excerpt(trimmed, key))
}

/// At most 200 characters on one line, scrubbed.
pub(crate) fn excerpt(text: &str, key: Option<&str>) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let scrubbed = scrub(&one_line, key);
    let mut out: String = scrubbed.chars().take(200).collect();
    if scrubbed.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Removes the key itself and any run of 64 or more letters and digits (AbuseIPDB keys are
/// 80 lowercase alphanumerics) from text that may be echoed.
pub fn scrub(text: &str, key: Option<&str>) -> String {
    let mut text = text.to_string();
    // A "key" of a few characters is no secret, and replacing it would mangle every word
    // that contains it.
    if let Some(k) = key.filter(|k| k.len() >= 8) {
        text = text.replace(k, "[redacted]");
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
            continue;
        }
        flush_run(&mut out, &mut run);
        out.push(c);
    }
    flush_run(&mut out, &mut run);
    out
}

fn flush_run(out: &mut String, run: &mut String) {
    if run.len() >= 64 {
        out.push_str("[redacted]");
    } else {
        out.push_str(run);
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_key_and_key_shaped_runs() {
        let key = "k".repeat(80);
        let other = "a1".repeat(40);
        let s = scrub(
            &format!("bad key {key} and {other}; short abc123"),
            Some(&key),
        );
        assert!(!s.contains(&key) && !s.contains(&other));
        assert!(s.contains("short abc123"));
        assert_eq!(s.matches("[redacted]").count(), 2);
    }

    #[test]
    fn duplicate_report_is_recognised_by_parameter_or_text() {
        let body = r#"{"errors":[{"detail":"You can only report the same IP address (`127.0.0.2`) once in 15 minutes.","status":429,"source":{"parameter":"ip"}}]}"#;
        let info = ErrorInfo::from_body(body, None);
        assert!(info.is_duplicate_report());
        assert_eq!(info.parameter.as_deref(), Some("ip"));
        let by_text = ErrorInfo::from_body(
            r#"{"errors":[{"detail":"You can only report the same IP address once in 15 minutes.","status":403}]}"#,
            None,
        );
        assert!(by_text.is_duplicate_report());
        let quota = ErrorInfo::from_body(
            r#"{"errors":[{"detail":"Daily rate limit of 1000 requests exceeded for this endpoint.","status":429}]}"#,
            None,
        );
        assert!(!quota.is_duplicate_report());
    }

    #[test]
    fn html_and_empty_bodies_are_described_not_parsed() {
        let info =
            ErrorInfo::from_body("<!DOCTYPE html><html><body>Bad gateway</body></html>", None);
        assert!(info.detail.starts_with("HTML page"), "{}", info.detail);
        assert_eq!(ErrorInfo::from_body("  ", None).detail, "empty body");
        let long = "x ".repeat(500);
        assert!(ErrorInfo::from_body(&long, None).detail.chars().count() <= 230);
    }
}
