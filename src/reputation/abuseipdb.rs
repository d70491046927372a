//! The AbuseIPDB v2 client: `check`, `blacklist` and `report` over blocking `ureq`.
//!
//! Blocking on purpose: the Wazuh doors start one process per alert, and a tokio runtime or a
//! system trust store load would cost more than the lookup. Every call has a connect timeout
//! and a total time budget; transient failures (5xx, timeouts, resets) are retried a bounded
//! number of times inside that same budget, never beyond it. Answers are parsed leniently
//! (every field optional but the address and the score, unknown fields ignored), and failures
//! are typed by status first and body second ([`ApiError`]). The key only ever goes into the
//! `Key` header, and every text echoed from a body is scrubbed of it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::Agent;
use ureq::http::{HeaderMap, Response};

use super::error::{ErrorInfo, excerpt};
use super::{ApiError, Checked, Provider, RateLimit, Reputation};
use crate::config::{ApiKey, Config};

/// The documented default API base.
pub const DEFAULT_BASE_URL: &str = "https://api.abuseipdb.com/api/v2";
/// The longest report comment sent: AbuseIPDB's 1,024 characters (its cut is said to be in
/// bytes, so a comment is also kept within 1,024 bytes).
pub const MAX_COMMENT_CHARS: usize = 1024;
/// When a quota 429 carries neither `Retry-After` nor `X-RateLimit-Reset`, wait this long.
pub const DEFAULT_QUOTA_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// The most a body is read (a verbose check holds up to 10,000 reports).
const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// How to reach AbuseIPDB.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// The API base; a URL ending in `/check` (Wazuh's hook URL) is trimmed to the base.
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    pub connect_timeout: Duration,
    /// Budget for one whole call, retries included.
    pub timeout: Duration,
    /// Extra tries after a transient failure.
    pub retries: u32,
}

impl ClientSettings {
    pub fn from_config(config: &Config) -> Self {
        ClientSettings {
            base_url: config.api_url.clone(),
            api_key: config.api_key.clone(),
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
            retries: config.retries,
        }
    }
}

/// The `data` of a `check` answer. Only `ipAddress` and `abuseConfidenceScore` are required.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckData {
    pub ip_address: String,
    pub abuse_confidence_score: u64,
    pub is_public: Option<bool>,
    pub ip_version: Option<u8>,
    pub is_whitelisted: Option<bool>,
    pub country_code: Option<String>,
    /// Only with `verbose`.
    pub country_name: Option<String>,
    /// Kept whole: the values contain `/` (`Data Center/Web Hosting/Transit`).
    pub usage_type: Option<String>,
    pub isp: Option<String>,
    pub domain: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub hostnames: Vec<String>,
    pub is_tor: Option<bool>,
    pub total_reports: Option<u64>,
    pub num_distinct_users: Option<u64>,
    pub last_reported_at: Option<String>,
    /// Only with `verbose`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub reports: Vec<ReportInfo>,
}

/// One report in a verbose `check`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportInfo {
    pub reported_at: Option<String>,
    pub comment: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub categories: Vec<u16>,
    pub reporter_id: Option<u64>,
    pub reporter_country_code: Option<String>,
    pub reporter_country_name: Option<String>,
}

impl CheckData {
    /// The engine's view of the answer, for the address that was asked.
    pub fn to_reputation(&self, ip: IpAddr) -> Reputation {
        Reputation {
            ip,
            abuse_confidence_score: self.abuse_confidence_score.min(100) as u8,
            country_code: self.country_code.clone(),
            usage_type: self.usage_type.clone(),
            isp: self.isp.clone(),
            domain: self.domain.clone(),
            total_reports: self.total_reports,
            num_distinct_users: self.num_distinct_users,
            last_reported_at: self.last_reported_at.clone(),
            is_tor: self.is_tor,
            is_whitelisted: self.is_whitelisted,
        }
    }
}

/// A whole `check` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResponse {
    pub data: CheckData,
    pub rate: RateLimit,
}

/// Parameters of `blacklist` (JSON form).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlacklistQuery {
    /// 25..=100; free plans silently get 100 whatever is asked.
    pub confidence_minimum: Option<u8>,
    /// Silently capped by the plan.
    pub limit: Option<u32>,
    pub only_countries: Vec<String>,
    pub except_countries: Vec<String>,
    /// 4 or 6.
    pub ip_version: Option<u8>,
}

/// One blacklisted address.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlacklistEntry {
    pub ip_address: String,
    pub abuse_confidence_score: u64,
    pub last_reported_at: Option<String>,
    /// Sent by the live API, not in the docs' example.
    pub country_code: Option<String>,
}

/// A `blacklist` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Blacklist {
    pub generated_at: Option<String>,
    pub entries: Vec<BlacklistEntry>,
    pub rate: RateLimit,
}

/// A `report` answer: the address's updated score.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportResponse {
    pub ip_address: String,
    /// 0 when `already_reported` (the answer carried no score).
    pub abuse_confidence_score: u64,
    pub rate: RateLimit,
    /// A retry was answered "already reported": an earlier try was recorded after all.
    pub already_reported: bool,
}

/// A failed exchange, with what the retry logic needs to know about it.
#[derive(Debug)]
struct Failure {
    error: ApiError,
    /// The request surely never reached the server (refused, no such host, no connection).
    unsent: bool,
    /// An earlier try of the same call failed.
    retried: bool,
    rate: RateLimit,
}

impl Failure {
    fn new(error: ApiError) -> Self {
        Failure {
            error,
            unsent: false,
            retried: false,
            rate: RateLimit::default(),
        }
    }

    /// A non-idempotent call (a report) is tried again only when the server cannot have
    /// seen it: after a reset, a stalled body or a 5xx it may already have recorded it.
    fn worth_retrying(&self, idempotent: bool) -> bool {
        if idempotent {
            self.error.is_transient()
        } else {
            self.unsent
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        failure.error
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlacklistBody {
    #[serde(default)]
    meta: Option<BlacklistMeta>,
    data: Vec<BlacklistEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlacklistMeta {
    generated_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportData {
    ip_address: String,
    abuse_confidence_score: u64,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A response read whole: status, rate-limit headers and the body as text.
struct Exchange {
    status: u16,
    rate: RateLimit,
    body: String,
}

/// The AbuseIPDB client. Cheap to build: no connection is made until the first call.
pub struct AbuseIpdb {
    settings: ClientSettings,
    agent: Agent,
}

impl std::fmt::Debug for AbuseIpdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbuseIpdb")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AbuseIpdb {
    pub fn new(mut settings: ClientSettings) -> Self {
        settings.base_url = base_url(&settings.base_url);
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_global(Some(settings.timeout))
            // Plain HTTP answers 302 to HTTPS; never follow, so the key is never re-sent.
            .max_redirects(0)
            .user_agent(concat!("repute/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        AbuseIpdb { settings, agent }
    }

    pub fn from_config(config: &Config) -> Self {
        AbuseIpdb::new(ClientSettings::from_config(config))
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// `GET /check`: what AbuseIPDB knows of `ip` over the last `max_age_days` (1..=365).
    /// `verbose` adds `countryName` and the reports.
    pub fn check(
        &self,
        ip: IpAddr,
        max_age_days: u16,
        verbose: bool,
    ) -> Result<CheckResponse, ApiError> {
        if !(1..=365).contains(&max_age_days) {
            return Err(ApiError::InvalidMaxAge(max_age_days));
        }
        let key = self.key()?;
        let url = format!("{}/check", self.settings.base_url);
        let ex = self.with_retries(true, |budget| {
            let mut req = self
                .agent
                .get(&url)
                .header("Key", key)
                .header("Accept", "application/json")
                .query("ipAddress", ip.to_string())
                .query("maxAgeInDays", max_age_days.to_string());
            if verbose {
                req = req.query("verbose", "");
            }
            req.config().timeout_global(Some(budget)).build().call()
        })?;
        let data: CheckData = self.parse_data(&ex)?;
        Ok(CheckResponse {
            data,
            rate: ex.rate,
        })
    }

    /// `GET /blacklist` (JSON).
    pub fn blacklist(&self, query: &BlacklistQuery) -> Result<Blacklist, ApiError> {
        if let Some(c) = query.confidence_minimum.filter(|c| !(25..=100).contains(c)) {
            return Err(ApiError::InvalidRequest(format!(
                "confidenceMinimum {c} is not between 25 and 100"
            )));
        }
        let key = self.key()?;
        let url = format!("{}/blacklist", self.settings.base_url);
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(c) = query.confidence_minimum {
            params.push(("confidenceMinimum", c.to_string()));
        }
        if let Some(l) = query.limit {
            params.push(("limit", l.to_string()));
        }
        if !query.only_countries.is_empty() {
            params.push(("onlyCountries", query.only_countries.join(",")));
        }
        if !query.except_countries.is_empty() {
            params.push(("exceptCountries", query.except_countries.join(",")));
        }
        if let Some(v) = query.ip_version {
            params.push(("ipVersion", v.to_string()));
        }
        let ex = self.with_retries(true, |budget| {
            self.agent
                .get(&url)
                .header("Key", key)
                .header("Accept", "application/json")
                .query_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                .config()
                .timeout_global(Some(budget))
                .build()
                .call()
        })?;
        let body: BlacklistBody = serde_json::from_str(&ex.body).map_err(|e| bad_body(&ex, e))?;
        Ok(Blacklist {
            generated_at: body.meta.and_then(|m| m.generated_at),
            entries: body.data,
            rate: ex.rate,
        })
    }

    /// `POST /report`: reports `ip` under `categories` (1 to 30 ids), with an optional comment
    /// (cut to [`MAX_COMMENT_CHARS`]) and the time of the attack. A duplicate within 15
    /// minutes comes back as [`ApiError::DuplicateReport`] and is never retried. A failure after
    /// which the server may have recorded the report (timeout, reset, 5xx) is not retried
    /// either; one where the request never left (connection refused, no such host) is, and a
    /// duplicate answer to that retry counts as done (`already_reported`).
    pub fn report(
        &self,
        ip: IpAddr,
        categories: &[u16],
        comment: Option<&str>,
        timestamp: Option<jiff::Timestamp>,
    ) -> Result<ReportResponse, ApiError> {
        if categories.is_empty() || categories.len() > 30 {
            return Err(ApiError::InvalidRequest(format!(
                "a report needs 1 to 30 categories, not {}",
                categories.len()
            )));
        }
        let key = self.key()?;
        let url = format!("{}/report", self.settings.base_url);
        let mut form: Vec<(&str, String)> = vec![
            ("ip", ip.to_string()),
            (
                "categories",
                categories
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ];
        if let Some(c) = comment.filter(|c| !c.is_empty()) {
            form.push(("comment", cap_comment(c)));
        }
        if let Some(t) = timestamp {
            form.push(("timestamp", t.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()));
        }
        let sent = self.with_retries(false, |budget| {
            self.agent
                .post(&url)
                .header("Key", key)
                .header("Accept", "application/json")
                .config()
                .timeout_global(Some(budget))
                .build()
                .send_form(form.iter().map(|(k, v)| (*k, v.as_str())))
        });
        let ex = match sent {
            Ok(ex) => ex,
            Err(failure) => return duplicate_on_retry(ip, failure),
        };
        let data: ReportData = self.parse_data(&ex)?;
        Ok(ReportResponse {
            ip_address: data.ip_address,
            abuse_confidence_score: data.abuse_confidence_score,
            rate: ex.rate,
            already_reported: false,
        })
    }

    fn key(&self) -> Result<&str, ApiError> {
        self.settings
            .api_key
            .as_ref()
            .map(ApiKey::expose)
            .ok_or(ApiError::NoApiKey)
    }

    fn parse_data<T: serde::de::DeserializeOwned>(&self, ex: &Exchange) -> Result<T, ApiError> {
        serde_json::from_str::<Envelope<T>>(&ex.body)
            .map(|e| e.data)
            .map_err(|e| bad_body(ex, e))
    }

    /// Runs `send` until it succeeds, fails for good, or the time budget or the retry count
    /// is spent. `send` gets the time left; `idempotent` false retries only failures that
    /// happened before the request could reach the server (see [`Failure::worth_retrying`]).
    fn with_retries(
        &self,
        idempotent: bool,
        send: impl Fn(Duration) -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Exchange, Failure> {
        let start = Instant::now();
        let budget = self.settings.timeout;
        let mut tries = 0u32;
        loop {
            let left = budget.saturating_sub(start.elapsed());
            let result = self.once(left, &send);
            let mut failure = match result {
                Ok(ex) => return Ok(ex),
                Err(e) => e,
            };
            failure.retried = tries > 0;
            tries += 1;
            let pause = Duration::from_millis(100 * u64::from(tries.min(5)));
            let left = budget.saturating_sub(start.elapsed());
            if !failure.worth_retrying(idempotent)
                || tries > self.settings.retries
                || left <= pause * 2
            {
                return Err(failure);
            }
            tracing::debug!(error = %failure.error, tries, "AbuseIPDB call failed; trying again");
            std::thread::sleep(pause);
        }
    }

    fn once(
        &self,
        left: Duration,
        send: &impl Fn(Duration) -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Exchange, Failure> {
        if left.is_zero() {
            return Err(Failure::new(ApiError::Timeout("time budget spent".into())));
        }
        let key = self.settings.api_key.as_ref().map(ApiKey::expose);
        let mut response = send(left).map_err(|e| Failure {
            unsent: never_sent(&e),
            ..Failure::new(transport_error(e, key))
        })?;
        let status = response.status().as_u16();
        let rate = rate_limit(response.headers());
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|e| Failure::new(transport_error(e, key)))?;
        let body = String::from_utf8_lossy(&bytes).into_owned();
        tracing::debug!(status, remaining = ?rate.remaining, "AbuseIPDB answered");
        if (200..300).contains(&status) {
            return Ok(Exchange { status, rate, body });
        }
        Err(Failure {
            rate,
            ..Failure::new(status_error(status, &rate, &body, key))
        })
    }
}

/// A report that failed for good, unless it failed as a duplicate after a retry: then a try
/// the server did see was recorded, and the report is done.
fn duplicate_on_retry(ip: IpAddr, failure: Failure) -> Result<ReportResponse, ApiError> {
    match failure.error {
        ApiError::DuplicateReport { .. } if failure.retried => Ok(ReportResponse {
            ip_address: ip.to_string(),
            abuse_confidence_score: 0,
            rate: failure.rate,
            already_reported: true,
        }),
        error => Err(error),
    }
}

/// Whether a failed `send` surely never delivered the request: no connection was made.
fn never_sent(err: &ureq::Error) -> bool {
    match err {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

impl Provider for AbuseIpdb {
    fn name(&self) -> &str {
        "abuseipdb"
    }

    fn check(&self, ip: IpAddr, max_age_days: u16) -> Result<Checked, ApiError> {
        let answer = AbuseIpdb::check(self, ip, max_age_days, false)?;
        Ok(Checked {
            reputation: answer.data.to_reputation(ip),
            rate: answer.rate,
        })
    }
}

/// Trims a trailing `/` and a trailing `/check` (the Wazuh hook URL is the check endpoint).
pub fn base_url(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    trimmed
        .strip_suffix("/check")
        .unwrap_or(trimmed)
        .to_string()
}

/// Cuts a comment to [`MAX_COMMENT_CHARS`] characters and as many bytes (never inside a
/// character).
pub fn cap_comment(comment: &str) -> String {
    let mut end = 0;
    for (count, (at, c)) in comment.char_indices().enumerate() {
        if count >= MAX_COMMENT_CHARS || at + c.len_utf8() > MAX_COMMENT_CHARS {
            break;
        }
        end = at + c.len_utf8();
    }
    comment[..end].to_string()
}

/// Status first, body second.
fn status_error(status: u16, rate: &RateLimit, body: &str, key: Option<&str>) -> ApiError {
    let info = ErrorInfo::from_body(body, key);
    let detail = info.detail.clone();
    match status {
        401 => ApiError::Unauthorized { status, detail },
        402 => ApiError::PaymentRequired { detail },
        403 | 429 if info.is_duplicate_report() => ApiError::DuplicateReport { status, detail },
        403 => ApiError::Unauthorized { status, detail },
        422 => ApiError::Unprocessable {
            parameter: info.parameter,
            detail,
        },
        429 => ApiError::QuotaExhausted {
            retry_at: Some(retry_at(rate, jiff::Timestamp::now().as_second())),
            detail,
        },
        500..=599 => ApiError::Server { status, detail },
        _ => ApiError::UnexpectedStatus { status, detail },
    }
}

/// When calling makes sense again after a quota 429: `Retry-After` from now, else
/// `X-RateLimit-Reset`, else [`DEFAULT_QUOTA_BACKOFF`] from now.
pub fn retry_at(rate: &RateLimit, now: i64) -> i64 {
    if let Some(after) = rate.retry_after {
        return now.saturating_add(i64::try_from(after).unwrap_or(i64::MAX));
    }
    if let Some(reset) = rate.reset_at.filter(|r| *r > now) {
        return reset;
    }
    now + DEFAULT_QUOTA_BACKOFF.as_secs() as i64
}

fn rate_limit(headers: &HeaderMap) -> RateLimit {
    let number =
        |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    RateLimit {
        limit: number("x-ratelimit-limit"),
        remaining: number("x-ratelimit-remaining"),
        reset_at: number("x-ratelimit-reset").and_then(|n| i64::try_from(n).ok()),
        retry_after: number("retry-after").or_else(|| retry_after_date(headers)),
    }
}

/// `Retry-After` may also be an HTTP date.
fn retry_after_date(headers: &HeaderMap) -> Option<u64> {
    let text = headers.get("retry-after")?.to_str().ok()?;
    let at = jiff::fmt::rfc2822::parse(text).ok()?.timestamp();
    let secs = at.as_second() - jiff::Timestamp::now().as_second();
    Some(u64::try_from(secs).unwrap_or(0))
}

fn bad_body(ex: &Exchange, err: serde_json::Error) -> ApiError {
    let info = ErrorInfo::from_body(&ex.body, None);
    ApiError::BadBody {
        status: ex.status,
        detail: format!("{err}; {}", info.detail),
    }
}

fn transport_error(err: ureq::Error, key: Option<&str>) -> ApiError {
    let text = excerpt(&err.to_string(), key);
    match err {
        ureq::Error::Timeout(_) => ApiError::Timeout(text),
        ureq::Error::Io(ref io) if is_timeout(io) => ApiError::Timeout(text),
        ureq::Error::Io(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::Protocol(_)
        | ureq::Error::BodyStalled => ApiError::Connection(text),
        _ => ApiError::Transport(text),
    }
}

fn is_timeout(io: &std::io::Error) -> bool {
    matches!(
        io.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(error: ApiError, unsent: bool) -> Failure {
        Failure {
            unsent,
            ..Failure::new(error)
        }
    }

    #[test]
    fn reports_are_retried_only_when_never_sent() {
        let reset = || ApiError::Connection("connection reset".into());
        let server = || ApiError::Server {
            status: 503,
            detail: String::new(),
        };
        assert!(!failure(reset(), false).worth_retrying(false));
        assert!(!failure(server(), false).worth_retrying(false));
        assert!(!failure(ApiError::Timeout("t".into()), false).worth_retrying(false));
        assert!(failure(reset(), true).worth_retrying(false));
        // Lookups are idempotent: every transient failure is worth another try.
        assert!(failure(reset(), false).worth_retrying(true));
        assert!(failure(server(), false).worth_retrying(true));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(never_sent(&ureq::Error::Io(refused)));
        assert!(never_sent(&ureq::Error::ConnectionFailed));
        assert!(never_sent(&ureq::Error::HostNotFound));
        let reset_io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!never_sent(&ureq::Error::Io(reset_io)));
        assert!(!never_sent(&ureq::Error::BodyStalled));
    }

    #[test]
    fn a_refused_connection_counts_as_never_sent() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_or(9, |a| a.port());
        let err = ureq::get(&format!("http://127.0.0.1:{port}/")).call().err();
        assert!(err.as_ref().is_some_and(never_sent), "{err:?}");
    }

    #[test]
    fn a_duplicate_answer_to_a_retry_is_success() {
        let ip: IpAddr = "198.51.100.9".parse().unwrap_or(IpAddr::from([0u8; 4]));
        let duplicate = || ApiError::DuplicateReport {
            status: 429,
            detail: "already reported".into(),
        };
        let first = failure(duplicate(), false);
        assert!(matches!(
            duplicate_on_retry(ip, first),
            Err(ApiError::DuplicateReport { .. })
        ));
        let mut retried = failure(duplicate(), false);
        retried.retried = true;
        let done = duplicate_on_retry(ip, retried);
        assert!(
            matches!(&done, Ok(r) if r.already_reported && r.ip_address == "198.51.100.9"),
            "{done:?}"
        );
        let mut other = failure(ApiError::Connection("refused".into()), true);
        other.retried = true;
        assert!(matches!(
            duplicate_on_retry(ip, other),
            Err(ApiError::Connection(_))
        ));
    }

    #[test]
    fn base_url_accepts_the_check_endpoint() {
        assert_eq!(
            base_url("https://api.abuseipdb.com/api/v2/check"),
            DEFAULT_BASE_URL
        );
        assert_eq!(
            base_url("https://api.abuseipdb.com/api/v2/"),
            DEFAULT_BASE_URL
        );
        assert_eq!(base_url("http://127.0.0.1:9/x"), "http://127.0.0.1:9/x");
    }

    #[test]
    fn comments_are_capped_by_characters() {
        let long = "é".repeat(1500);
        let capped = cap_comment(&long);
        assert_eq!(capped.len(), MAX_COMMENT_CHARS);
        assert!(capped.chars().all(|c| c == 'é'));
        assert_eq!(cap_comment(&"a".repeat(1500)).chars().count(), 1024);
        assert_eq!(cap_comment("short"), "short");
    }

    #[test]
    fn retry_at_prefers_retry_after_then_reset() {
        let now = 1_545_944_000;
        let both = RateLimit {
            retry_after: Some(29_241),
            reset_at: Some(1_545_973_200),
            ..RateLimit::default()
        };
        assert_eq!(retry_at(&both, now), now + 29_241);
        let reset_only = RateLimit {
            reset_at: Some(1_545_973_200),
            ..RateLimit::default()
        };
        assert_eq!(retry_at(&reset_only, now), 1_545_973_200);
        let neither = RateLimit::default();
        assert_eq!(retry_at(&neither, now), now + 900);
    }

    #[test]
    fn status_comes_before_body() {
        let rate = RateLimit::default();
        let dup = r#"{"errors":[{"detail":"You can only report the same IP address (`1.2.3.4`) once in 15 minutes.","status":429,"source":{"parameter":"ip"}}]}"#;
        assert!(matches!(
            status_error(429, &rate, dup, None),
            ApiError::DuplicateReport { status: 429, .. }
        ));
        assert!(matches!(
            status_error(403, &rate, dup, None),
            ApiError::DuplicateReport { status: 403, .. }
        ));
        assert!(matches!(
            status_error(429, &rate, "<html>", None),
            ApiError::QuotaExhausted { .. }
        ));
        assert!(matches!(
            status_error(401, &rate, "", None),
            ApiError::Unauthorized { status: 401, .. }
        ));
        assert!(matches!(
            status_error(402, &rate, "{}", None),
            ApiError::PaymentRequired { .. }
        ));
        assert!(matches!(
            status_error(503, &rate, "<html>oops</html>", None),
            ApiError::Server { status: 503, .. }
        ));
        assert!(matches!(
            status_error(418, &rate, "", None),
            ApiError::UnexpectedStatus { status: 418, .. }
        ));
        let v = r#"{"errors":[{"detail":"The ip address must be a valid IPv4 or IPv6 address.","status":422,"source":{"parameter":"ipAddress"}}]}"#;
        match status_error(422, &rate, v, None) {
            ApiError::Unprocessable { parameter, .. } => {
                assert_eq!(parameter.as_deref(), Some("ipAddress"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lenient_check_parse_keeps_usage_type_whole() {
        let body = r#"{"data":{"ipAddress":"118.25.6.39","abuseConfidenceScore":100,
            "usageType":"Data Center\/Web Hosting\/Transit","isWhitelisted":null,
            "hostnames":null,"somethingNew":{"x":1},"lastReportedAt":null}}"#;
        let env: Envelope<CheckData> = serde_json::from_str(body).expect("parses");
        let rep = env.data.to_reputation("118.25.6.39".parse().expect("ip"));
        assert_eq!(
            rep.usage_type.as_deref(),
            Some("Data Center/Web Hosting/Transit")
        );
        assert_eq!(rep.abuse_confidence_score, 100);
        assert_eq!(rep.is_whitelisted, None);
        assert!(
            serde_json::from_str::<Envelope<CheckData>>(r#"{"data":{"ipAddress":"1.2.3.4"}}"#)
                .is_err()
        );
    }
}
