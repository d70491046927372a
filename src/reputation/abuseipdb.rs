//! The AbuseIPDB v2 client: `check`, `blacklist` and `report` over blocking `ureq`.
//!
//! Blocking on purpose: the Wazuh commands start one process per alert, and a tokio runtime or a
//! system trust store load would cost more than the lookup. Every call has a connect timeout
//! and a total time budget; transient failures (5xx, timeouts, resets) are retried a bounded
//! number of times inside that same budget, never beyond it. Answers are parsed leniently
//! (every field optional but the address and the score, unknown fields ignored), and failures
//! are typed by status first and body second ([`ApiError`]). The key only ever goes into the
//! `Key` header, and every text that came from the network (error bodies, and every text field
//! of an answer) is scrubbed of it before anyone stores or shows it. Calls go through the
//! proxy [`proxy_for`] picks (the `proxy` setting, else `HTTPS_PROXY`/`NO_PROXY` as curl
//! reads them) and trust the `ca_file` bundle instead of the compiled-in roots when one is set.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::Agent;
use ureq::http::{HeaderMap, Response};

use super::error::{ErrorInfo, excerpt, scrub};
use super::{ApiError, Checked, Provider, RateLimit, Reputation};
use crate::config::{ApiKey, Config, ProxyUrl};

/// The documented default API base.
pub const DEFAULT_BASE_URL: &str = "https://api.abuseipdb.com/api/v2";
/// The longest report comment sent: AbuseIPDB's 1,024 characters (its cut is said to be in
/// bytes, so a comment is also kept within 1,024 bytes).
pub const MAX_COMMENT_CHARS: usize = 1024;
/// When a quota 429 carries neither `Retry-After` nor `X-RateLimit-Reset`, wait this long.
pub const DEFAULT_QUOTA_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// The most a body is read (a verbose check holds up to 10,000 reports).
const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// The longest a quota 429 may stop calls: AbuseIPDB's quotas are daily, so whatever a
/// `Retry-After` or `X-RateLimit-Reset` says, the count resets within a day (its reset is
/// midnight US-Eastern, `docs/abuseipdb.md`, so "the next UTC midnight" would be too early).
pub const MAX_QUOTA_BLOCK: Duration = Duration::from_secs(24 * 3600);
/// The largest CA bundle read.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

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
    /// `None`: the environment's proxy; `Some("none")`: none; else this proxy URL.
    pub proxy: Option<ProxyUrl>,
    /// A PEM bundle trusted instead of the compiled-in roots.
    pub ca_file: Option<PathBuf>,
}

impl ClientSettings {
    pub fn from_config(config: &Config) -> Self {
        ClientSettings {
            base_url: config.api_url.clone(),
            api_key: config.api_key.clone(),
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
            retries: config.retries,
            proxy: config.proxy.clone(),
            ca_file: config.ca_file.clone(),
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
    /// The answer with the key (and anything shaped like one) taken out of every text: a
    /// server or a proxy that echoes the request must not get the key into the cache, an
    /// event or a report.
    fn scrubbed(mut self, key: Option<&str>) -> Self {
        let clean = |field: &mut Option<String>| {
            if let Some(text) = field.as_mut() {
                *text = scrub(text, key);
            }
        };
        clean(&mut self.country_code);
        clean(&mut self.country_name);
        clean(&mut self.usage_type);
        clean(&mut self.isp);
        clean(&mut self.domain);
        clean(&mut self.last_reported_at);
        self.ip_address = scrub(&self.ip_address, key);
        for host in &mut self.hostnames {
            *host = scrub(host, key);
        }
        for report in &mut self.reports {
            for field in [
                &mut report.reported_at,
                &mut report.comment,
                &mut report.reporter_country_code,
                &mut report.reporter_country_name,
            ] {
                clean(field);
            }
        }
        self
    }

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
    /// A proxy or CA bundle that could not be used: every call fails with it, rather than
    /// going out directly or with the wrong roots.
    setup_error: Option<String>,
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
        let proxy = chosen_proxy(&settings);
        let roots = match &settings.ca_file {
            Some(path) => read_ca_file(path).map(Some),
            None => Ok(None),
        };
        let setup_error = match (&proxy, &roots) {
            (Err(e), _) | (_, Err(e)) => Some(e.clone()),
            _ => None,
        };
        let mut config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(settings.connect_timeout))
            .timeout_global(Some(settings.timeout))
            // Plain HTTP answers 302 to HTTPS; never follow, so the key is never re-sent.
            .max_redirects(0)
            .user_agent(concat!("repute/", env!("CARGO_PKG_VERSION")))
            // Always set, so ureq's own reading of the environment (which takes ALL_PROXY
            // first and HTTP_PROXY for https) never applies; see [`proxy_for`].
            .proxy(proxy.unwrap_or(None));
        if let Ok(Some(certs)) = roots {
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
            config = config.tls_config(tls);
        }
        AbuseIpdb {
            settings,
            agent: config.build().new_agent(),
            setup_error,
        }
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
            data: data.scrubbed(Some(key)),
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
        let body: BlacklistBody =
            serde_json::from_str(&ex.body).map_err(|e| bad_body(&ex, e, Some(key)))?;
        let clean = |text: String| scrub(&text, Some(key));
        Ok(Blacklist {
            generated_at: body.meta.and_then(|m| m.generated_at).map(clean),
            entries: body
                .data
                .into_iter()
                .map(|e| BlacklistEntry {
                    ip_address: clean(e.ip_address),
                    last_reported_at: e.last_reported_at.map(clean),
                    country_code: e.country_code.map(clean),
                    ..e
                })
                .collect(),
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
            ip_address: scrub(&data.ip_address, Some(key)),
            abuse_confidence_score: data.abuse_confidence_score,
            rate: ex.rate,
            already_reported: false,
        })
    }

    fn key(&self) -> Result<&str, ApiError> {
        if let Some(e) = &self.setup_error {
            return Err(ApiError::Transport(e.clone()));
        }
        self.settings
            .api_key
            .as_ref()
            .map(ApiKey::expose)
            .ok_or(ApiError::NoApiKey)
    }

    fn parse_data<T: serde::de::DeserializeOwned>(&self, ex: &Exchange) -> Result<T, ApiError> {
        let key = self.settings.api_key.as_ref().map(ApiKey::expose);
        serde_json::from_str::<Envelope<T>>(&ex.body)
            .map(|e| e.data)
            .map_err(|e| bad_body(ex, e, key))
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

    /// A hash of the API base, the key, the proxy and the CA file: a changed hook URL (or a
    /// key fixed after a 401) is not held off by a failure another process noted for the old
    /// one. A 64-bit hash, so the key cannot be read back from it.
    fn target_tag(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.settings.base_url.hash(&mut h);
        self.settings
            .api_key
            .as_ref()
            .map(ApiKey::expose)
            .hash(&mut h);
        self.settings.proxy.hash(&mut h);
        self.settings.ca_file.hash(&mut h);
        format!("{:016x}", h.finish())
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
/// Never later than [`MAX_QUOTA_BLOCK`] from now: a header that says "in a thousand years"
/// is clamped (and logged), so no answer can stop every process for good.
pub fn retry_at(rate: &RateLimit, now: i64) -> i64 {
    let at = if let Some(after) = rate.retry_after {
        now.saturating_add(i64::try_from(after).unwrap_or(i64::MAX))
    } else if let Some(reset) = rate.reset_at.filter(|r| *r > now) {
        reset
    } else {
        now + DEFAULT_QUOTA_BACKOFF.as_secs() as i64
    };
    clamp_quota_block(at, now)
}

/// `until`, or [`MAX_QUOTA_BLOCK`] from `now` when it is later than that (with a warning
/// naming both).
pub fn clamp_quota_block(until: i64, now: i64) -> i64 {
    let latest = now.saturating_add(MAX_QUOTA_BLOCK.as_secs() as i64);
    if until <= latest {
        return until;
    }
    tracing::warn!(
        "AbuseIPDB asked to wait until {}, more than a day away; its quotas are daily, so calls resume at {} instead",
        super::rfc3339(until),
        super::rfc3339(latest)
    );
    latest
}

/// The proxy a call to `target` goes through: the `proxy` setting (`none`: no proxy), else
/// the environment as curl and Python's requests read it (`HTTPS_PROXY` for https targets,
/// `HTTP_PROXY` for http ones, `ALL_PROXY` for either, lower-case names too), unless the
/// target's host is in `NO_PROXY`. The key is sent only in a header, inside the tunnel the
/// proxy opens with `CONNECT host:port`, so the proxy sees neither the key nor the path.
pub fn proxy_for(
    target: &str,
    setting: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let var = |names: &[&str]| {
        names.iter().find_map(|n| {
            env(n)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
    };
    let chosen = match setting {
        Some(s) if s.eq_ignore_ascii_case("none") => return Ok(None),
        Some(s) => s.to_string(),
        None => {
            let https = target.to_ascii_lowercase().starts_with("https://");
            let names: &[&str] = if https {
                &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
            } else {
                &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
            };
            match var(names) {
                Some(v) => v,
                None => return Ok(None),
            }
        }
    };
    let no_proxy = var(&["no_proxy", "NO_PROXY"]).unwrap_or_default();
    if host_of(target).is_some_and(|host| in_no_proxy(&host, &no_proxy)) {
        return Ok(None);
    }
    let url = if chosen.contains("://") {
        crate::config::lowercase_scheme(&chosen)
    } else {
        format!("http://{chosen}")
    };
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(Some(url))
    } else {
        Err(format!(
            "proxy `{}` is not an http:// or https:// proxy",
            crate::config::redact_userinfo(&url)
        ))
    }
}

/// The host of a URL, lower-cased, without port or brackets.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => host_port.split(':').next()?,
    };
    Some(host.to_ascii_lowercase())
}

/// curl's `NO_PROXY`: comma- or space-separated; `*` matches everything; an entry matches
/// its host and every name under it (`example.com` and `.example.com` both match
/// `api.example.com`); an address matches itself.
fn in_no_proxy(host: &str, list: &str) -> bool {
    list.split([',', ' '])
        .map(|e| e.trim().trim_start_matches("*.").trim_start_matches('.'))
        .filter(|e| !e.is_empty())
        .any(|entry| {
            let entry = entry.to_ascii_lowercase();
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            entry == "*"
                || host == entry
                || host
                    .strip_suffix(entry)
                    .is_some_and(|head| head.ends_with('.'))
        })
}

/// The proxy of a client's settings and environment, ready for ureq (and said in the debug
/// log, without its `user:pass@`).
fn chosen_proxy(settings: &ClientSettings) -> Result<Option<ureq::Proxy>, String> {
    let env = |name: &str| std::env::var(name).ok();
    let setting = settings.proxy.as_ref().map(ProxyUrl::as_str);
    let Some(url) = proxy_for(&settings.base_url, setting, &env)? else {
        return Ok(None);
    };
    let shown = crate::config::redact_userinfo(&url);
    tracing::debug!(proxy = %shown, "AbuseIPDB through a proxy");
    ureq::Proxy::new(&url)
        .map(Some)
        .map_err(|e| format!("proxy `{shown}`: {e}"))
}

/// The certificates of a PEM bundle (one or more `CERTIFICATE` blocks), read with a bound;
/// the error names the file and what is wrong with it.
pub fn read_ca_file(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    use std::io::Read;
    let err = |detail: String| format!("CA file {}: {detail}", path.display());
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| err(e.to_string()))?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(err(format!(
            "longer than {MAX_CA_FILE_BYTES} bytes; not a CA bundle"
        )));
    }
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(err(format!("not a PEM file: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
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

fn bad_body(ex: &Exchange, err: serde_json::Error, key: Option<&str>) -> ApiError {
    let info = ErrorInfo::from_body(&ex.body, key);
    // serde_json quotes the offending value, which may be an echo of the key.
    ApiError::BadBody {
        status: ex.status,
        detail: excerpt(&format!("{err}; {}", info.detail), key),
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
    fn retry_at_never_blocks_for_more_than_a_day() {
        let now = 1_545_944_000;
        let absurd = RateLimit {
            retry_after: Some(99_999_999_999_999),
            reset_at: Some(99_999_999_999_999),
            ..RateLimit::default()
        };
        assert_eq!(retry_at(&absurd, now), now + 86_400);
        let reset_only = RateLimit {
            reset_at: Some(i64::MAX),
            ..RateLimit::default()
        };
        assert_eq!(retry_at(&reset_only, now), now + 86_400);
        // A real one (the documented example) is kept as it is.
        let real = RateLimit {
            retry_after: Some(29_241),
            ..RateLimit::default()
        };
        assert_eq!(retry_at(&real, now), now + 29_241);
    }

    #[test]
    fn the_proxy_follows_the_setting_then_the_environment_as_curl_reads_it() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let https = "https://api.abuseipdb.com/api/v2";
        let none: &[(&str, &str)] = &[];
        assert_eq!(proxy_for(https, None, &env(none)), Ok(None));
        let both = &[
            ("HTTPS_PROXY", "proxy:3128"),
            ("HTTP_PROXY", "http://other:80"),
        ];
        assert_eq!(
            proxy_for(https, None, &env(both)),
            Ok(Some("http://proxy:3128".into()))
        );
        assert_eq!(
            proxy_for("http://127.0.0.1:9/api/v2", None, &env(both)),
            Ok(Some("http://other:80".into()))
        );
        let only_http = &[("HTTP_PROXY", "http://other:80")];
        assert_eq!(proxy_for(https, None, &env(only_http)), Ok(None));
        let all = &[("ALL_PROXY", "http://all:1")];
        assert_eq!(
            proxy_for(https, None, &env(all)),
            Ok(Some("http://all:1".into()))
        );
        assert_eq!(proxy_for(https, Some("none"), &env(both)), Ok(None));
        assert_eq!(
            proxy_for(https, Some("http://set:2"), &env(none)),
            Ok(Some("http://set:2".into()))
        );
        for list in [
            "abuseipdb.com",
            ".abuseipdb.com",
            "*.abuseipdb.com",
            "x, API.abuseipdb.com",
            "*",
        ] {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
                ("HTTPS_PROXY", "http://p:1"),
                (
                    "NO_PROXY",
                    Box::leak(list.to_string().into_boxed_str()) as &str,
                ),
            ]));
            assert_eq!(proxy_for(https, None, &env(pairs)), Ok(None), "{list}");
        }
        let miss = &[
            ("HTTPS_PROXY", "http://p:1"),
            ("NO_PROXY", "buseipdb.com,example.org"),
        ];
        assert_eq!(
            proxy_for(https, None, &env(miss)),
            Ok(Some("http://p:1".into()))
        );
        let socks = &[("HTTPS_PROXY", "socks5://p:1")];
        assert!(proxy_for(https, None, &env(socks)).is_err());
    }

    #[test]
    fn echoed_text_in_an_answer_is_scrubbed_of_the_key() {
        let key = "kx9echo-odd-shaped-key";
        let body = format!(
            r#"{{"data":{{"ipAddress":"1.2.3.4","abuseConfidenceScore":5,"isp":"{key}","domain":"a.{key}","hostnames":["{key}"],"reports":[{{"comment":"{key}"}}]}}}}"#
        );
        let env: Envelope<CheckData> = serde_json::from_str(&body).expect("parses");
        let data = env.data.scrubbed(Some(key));
        let text = format!("{data:?}");
        assert!(!text.contains(key), "{text}");
        assert_eq!(data.isp.as_deref(), Some("[redacted]"));
        assert_eq!(data.abuse_confidence_score, 5);
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
