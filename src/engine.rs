//! Address to reputation: class gate, allowlist, cache, provider.
//!
//! [`Engine::lookup`] is the one path every command takes to a reputation, in this order: the
//! address is unwrapped (IPv4-mapped IPv6) and classified, and only a public address goes on;
//! the allowlist; the shared cache; then the provider, under a short lease so that processes
//! missing on the same address at the same moment share one call, never while the shared
//! quota state says the daily quota is spent, and never while the engine's circuit breaker is
//! open (after [`GIVE_UP_AFTER`] failures in a row, until [`RETRY_AFTER`] has passed; then one
//! lookup tries again). The engine only looks addresses up: what to do
//! about an attempt is decided by [`crate::policy::decision`]. Nothing here fails: every
//! reason for having no reputation is a [`NoReputation`], and a broken cache is logged and
//! bypassed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::addr::AddrClass;
use crate::cache::{
    CacheError, CacheKey, FailureNote, LeaseState, LookupFailure, QuotaUpdate, Settlement,
};
use crate::config::{Config, StoreSetting};
use crate::fleet::{OnStoreFailure, RedisStore};
use crate::quota::QuotaState;
use crate::reputation::abuseipdb::AbuseIpdb;
use crate::reputation::rfc3339;
use crate::reputation::{ApiError, Provider, Reputation};
use crate::store::{NoStore, SqliteStore, Store};

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Cache,
    Api,
    Skipped,
}

impl Source {
    /// The contract's name: `cache`, `api` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cache => "cache",
            Source::Api => "api",
            Source::Skipped => "skipped",
        }
    }
}

/// Why there is no reputation for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoReputation {
    /// Not a public address: never sent to a provider.
    NotPublic(AddrClass),
    /// On the configured allowlist.
    Allowlisted,
    /// No API key configured.
    NoApiKey,
    /// The daily quota is spent; no call until this time (RFC 3339), when known.
    QuotaExhausted { until: Option<String> },
    /// The provider refused the key (401/403).
    Unauthorized,
    /// The provider failed (5xx, timeout, connection reset, bad body): what happened.
    ProviderFailed { status: Option<u16>, detail: String },
    /// The shared store could not be reached and the settings say not to look up without it
    /// (`store_failure = "error"`).
    StoreUnavailable { detail: String },
}

impl NoReputation {
    /// A stable machine name for the reason (`not-public`, `allowlisted`, `no-api-key`,
    /// `quota-exhausted`, `unauthorized`, `provider-failed`).
    pub fn code(&self) -> &'static str {
        match self {
            NoReputation::NotPublic(_) => "not-public",
            NoReputation::Allowlisted => "allowlisted",
            NoReputation::NoApiKey => "no-api-key",
            NoReputation::QuotaExhausted { .. } => "quota-exhausted",
            NoReputation::Unauthorized => "unauthorized",
            NoReputation::ProviderFailed { .. } => "provider-failed",
            NoReputation::StoreUnavailable { .. } => "store-unavailable",
        }
    }

    /// True when the address was deliberately not looked up (not a failure).
    pub fn is_deliberate(&self) -> bool {
        matches!(self, NoReputation::NotPublic(_) | NoReputation::Allowlisted)
    }
}

impl fmt::Display for NoReputation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoReputation::NotPublic(c) => write!(f, "not a public address ({c})"),
            NoReputation::Allowlisted => f.write_str("allowlisted"),
            NoReputation::NoApiKey => f.write_str("no API key configured"),
            NoReputation::QuotaExhausted { until: Some(t) } => {
                write!(f, "daily quota exhausted until {t}")
            }
            NoReputation::QuotaExhausted { until: None } => f.write_str("daily quota exhausted"),
            NoReputation::Unauthorized => f.write_str("API key refused"),
            NoReputation::ProviderFailed {
                status: Some(s),
                detail,
            } => {
                write!(f, "provider failed (HTTP {s}): {detail}")
            }
            NoReputation::ProviderFailed {
                status: None,
                detail,
            } => {
                write!(f, "provider failed: {detail}")
            }
            NoReputation::StoreUnavailable { detail } => {
                write!(f, "store unavailable, not looked up: {detail}")
            }
        }
    }
}

/// The answer for one address: where it came from, and the reputation or why there is none
/// (one `Result`, so that "neither" cannot be written).
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub ip: IpAddr,
    pub class: AddrClass,
    pub source: Source,
    pub answer: Result<Reputation, NoReputation>,
}

impl Lookup {
    fn skipped(ip: IpAddr, class: AddrClass, why: NoReputation) -> Self {
        Lookup {
            ip,
            class,
            source: Source::Skipped,
            answer: Err(why),
        }
    }

    fn found(ip: IpAddr, class: AddrClass, source: Source, reputation: Reputation) -> Self {
        Lookup {
            ip,
            class,
            source,
            answer: Ok(reputation),
        }
    }

    /// The reputation, when there is one.
    pub fn reputation(&self) -> Option<&Reputation> {
        self.answer.as_ref().ok()
    }

    /// Why there is no reputation, when there is none.
    pub fn missing(&self) -> Option<&NoReputation> {
        self.answer.as_ref().err()
    }

    /// The score, when there is a reputation.
    pub fn score(&self) -> Option<u8> {
        self.reputation().map(|r| r.abuse_confidence_score)
    }

    /// The JSON shape of the `repute check --format json` contract (also used to enrich
    /// scan summaries): `ip`, `class`, `source`, `reputation` (null when there is none), and
    /// then `reason` (a [`NoReputation::code`]) and `detail` (its text).
    pub fn record(&self) -> LookupRecord<'_> {
        LookupRecord {
            ip: self.ip,
            class: self.class,
            source: self.source,
            reputation: self.reputation(),
            reason: self.missing().map(NoReputation::code),
            detail: self.missing().map(ToString::to_string),
        }
    }
}

/// See [`Lookup::record`].
#[derive(Debug, Clone, Serialize)]
pub struct LookupRecord<'a> {
    pub ip: IpAddr,
    pub class: AddrClass,
    pub source: Source,
    pub reputation: Option<&'a Reputation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// The settings the engine reads from [`Config`].
#[derive(Debug, Clone)]
struct LookupSettings {
    max_age_days: u16,
    positive_ttl: Duration,
    negative_ttl: Duration,
    allowlist: Vec<ipnet::IpNet>,
    /// How long a lookup lease lasts: the provider's whole time budget and a margin.
    lease_ttl: Duration,
    /// Whether to look up when the shared store cannot be reached.
    on_store_failure: OnStoreFailure,
}

impl LookupSettings {
    fn from_config(config: &Config) -> Self {
        LookupSettings {
            max_age_days: config.max_age_days.clamp(1, 365),
            positive_ttl: config.positive_ttl,
            negative_ttl: config.negative_ttl,
            allowlist: config.allowlist.clone(),
            lease_ttl: config.timeout + config.connect_timeout + Duration::from_secs(1),
            on_store_failure: match &config.cache {
                StoreSetting::Redis(target) => target.on_failure,
                _ => OnStoreFailure::Lookup,
            },
        }
    }
}

/// Turns addresses into [`Lookup`]s.
pub struct Engine {
    settings: LookupSettings,
    store: Box<dyn Store>,
    provider: Option<Box<dyn Provider>>,
    breaker: Mutex<Breaker>,
}

/// Failed lookups in a row after which an engine stops asking the provider.
pub const GIVE_UP_AFTER: u32 = 3;
/// How long the breaker stays open before one lookup may try the provider again.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The engine's circuit breaker: a provider that is down (or refuses the key) would cost every
/// remaining address of a long run (`repute scan --enrich`, `repute check` of many addresses,
/// `repute watch`) its own timeout, so after [`GIVE_UP_AFTER`] failures in a row it is not
/// asked for [`RETRY_AFTER`]; cached answers are still served, and misses carry the last
/// failure. Then it is half-open: the next miss tries the provider (one caller; the others
/// keep the cache only for another pause), and an answer closes it, a failure opens it again.
/// A per-alert process makes one lookup, so it never trips, and a one-shot one never notices
/// the retry.
#[derive(Debug)]
struct Breaker {
    failures_in_a_row: u32,
    last_failure: Option<NoReputation>,
    /// While open: when the provider may be tried again.
    retry_at: Option<Instant>,
    retry_after: Duration,
}

impl Breaker {
    fn new(retry_after: Duration) -> Self {
        Breaker {
            failures_in_a_row: 0,
            last_failure: None,
            retry_at: None,
            retry_after,
        }
    }

    /// Whether the provider may be asked at `now`, or why not while the breaker is open.
    /// Once the pause is over one caller is let through, and the next pause starts at once,
    /// so that callers at the same moment do not all try.
    fn permit(&mut self, now: Instant) -> Result<(), NoReputation> {
        let Some(last) = self.last_failure.as_ref() else {
            return Ok(());
        };
        if self.failures_in_a_row < GIVE_UP_AFTER {
            return Ok(());
        }
        match self.retry_at {
            Some(at) if now < at => Err(given_up(last, self.retry_after)),
            _ => {
                self.retry_at = Some(now + self.retry_after);
                Ok(())
            }
        }
    }

    /// Counts the answer of a call `permit` allowed.
    fn note(&mut self, lookup: &Lookup, now: Instant) {
        match (&lookup.source, lookup.missing()) {
            (Source::Api, _) => {
                self.failures_in_a_row = 0;
                self.retry_at = None;
            }
            (_, Some(why @ (NoReputation::ProviderFailed { .. } | NoReputation::Unauthorized))) => {
                self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
                self.last_failure = Some(why.clone());
                if self.failures_in_a_row >= GIVE_UP_AFTER {
                    self.retry_at = Some(now + self.retry_after);
                    // Debug only: one-shot commands say the reason once, on their own.
                    tracing::debug!(
                        failures = self.failures_in_a_row,
                        why = %why,
                        retry_in = %crate::block::duration::format_duration(self.retry_after),
                        "reputation provider failing; only the cache answers until the retry"
                    );
                }
            }
            _ => {}
        }
    }
}

/// The reason given to an address the provider was not asked about, after `last` failed.
fn given_up(last: &NoReputation, retry_after: Duration) -> NoReputation {
    match last {
        NoReputation::ProviderFailed { status, detail } => NoReputation::ProviderFailed {
            status: *status,
            detail: format!(
                "{detail}; not asked for {} after {GIVE_UP_AFTER} failures in a row",
                crate::block::duration::format_duration(retry_after)
            ),
        },
        other => other.clone(),
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("policy", &self.settings)
            .field(
                "provider",
                &self.provider.as_ref().map(|p| p.name().to_string()),
            )
            .finish_non_exhaustive()
    }
}

/// AbuseIPDB, when the configuration has a key.
fn abuseipdb(config: &Config) -> Option<Box<dyn Provider>> {
    config
        .api_key
        .as_ref()
        .map(|_| Box::new(AbuseIpdb::from_config(config)) as Box<dyn Provider>)
}

/// Opens the store (answers and quota) the configuration names. A Redis store connects on
/// first use, so one that is down costs its connect timeout once, then every call fails at
/// once (see [`crate::fleet`]).
pub fn open_store(config: &Config) -> Result<Box<dyn Store>, CacheError> {
    Ok(match &config.cache {
        StoreSetting::Sqlite(path) => Box::new(SqliteStore::open(path)?),
        StoreSetting::Disabled => Box::new(NoStore::new()),
        StoreSetting::Redis(target) => Box::new(RedisStore::new(target.clone())),
    })
}

impl Engine {
    /// The engine of `config`: its cache, and AbuseIPDB when a key is configured (without
    /// one, cached answers are still served and misses say [`NoReputation::NoApiKey`]).
    pub fn new(config: &Config) -> Result<Engine, EngineError> {
        Ok(Engine::from_parts(
            config,
            open_store(config)?,
            abuseipdb(config),
        ))
    }

    /// As [`Engine::new`], but a cache that cannot be opened (a directory the process may
    /// not write, a full disk) is logged and replaced by no cache: for the per-alert commands,
    /// where an answer without the cache beats no answer.
    pub fn new_or_uncached(config: &Config) -> Engine {
        let store: Box<dyn Store> = match open_store(config) {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(error = %e, "cache unavailable; looking up without it");
                Box::new(NoStore::new())
            }
        };
        Engine::from_parts(config, store, abuseipdb(config))
    }

    /// The cache of `config` with another provider (tests, other sources).
    pub fn with_provider(
        config: &Config,
        provider: Box<dyn Provider>,
    ) -> Result<Engine, EngineError> {
        Ok(Engine::from_parts(
            config,
            open_store(config)?,
            Some(provider),
        ))
    }

    /// An engine from its parts.
    pub fn from_parts(
        config: &Config,
        store: Box<dyn Store>,
        provider: Option<Box<dyn Provider>>,
    ) -> Engine {
        Engine {
            settings: LookupSettings::from_config(config),
            store,
            provider,
            breaker: Mutex::new(Breaker::new(RETRY_AFTER)),
        }
    }

    /// The `maxAgeInDays` lookups use.
    pub fn max_age_days(&self) -> u16 {
        self.settings.max_age_days
    }

    /// The answer for one address; never fails, never looks up a non-public address, and
    /// asks a provider that failed [`GIVE_UP_AFTER`] times in a row only once per
    /// [`RETRY_AFTER`] (the breaker).
    pub fn lookup(&self, ip: IpAddr) -> Lookup {
        let (ip, class, key) = match self.answer_without_provider(ip) {
            Ok(answer) => return answer,
            Err(miss) => miss,
        };
        let Some(provider) = self.provider.as_deref() else {
            return Lookup::skipped(ip, class, NoReputation::NoApiKey);
        };
        if let Err(why) = self.breaker().permit(Instant::now()) {
            return Lookup::skipped(ip, class, why);
        }
        let lookup = match self.fetch_under_lease(&key, provider) {
            Ok((source, rep)) => Lookup::found(ip, class, source, rep),
            Err(why) => Lookup::skipped(ip, class, why),
        };
        self.breaker().note(&lookup, Instant::now());
        lookup
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The breaker's pause before the provider is tried again (default [`RETRY_AFTER`]).
    pub fn with_retry_after(self, pause: Duration) -> Engine {
        self.breaker().retry_after = pause;
        self
    }

    /// The answer of the class gate, the allowlist and the cache, or the canonical address,
    /// its class and its cache key when only the provider can answer.
    fn answer_without_provider(&self, ip: IpAddr) -> Result<Lookup, (IpAddr, AddrClass, CacheKey)> {
        let ip = match crate::addr::public(ip) {
            Ok(ip) => ip,
            Err(class) => {
                let ip = crate::addr::canonical(ip);
                return Ok(Lookup::skipped(ip, class, NoReputation::NotPublic(class)));
            }
        };
        let class = AddrClass::Public;
        if self.settings.allowlist.iter().any(|net| net.contains(&ip)) {
            return Ok(Lookup::skipped(ip, class, NoReputation::Allowlisted));
        }
        let key = CacheKey::new(ip, self.settings.max_age_days);
        match self.cached(&key) {
            Some(rep) => Ok(Lookup::found(ip, class, Source::Cache, rep)),
            None => Err((ip, class, key)),
        }
    }

    /// One lookup per distinct address (for `repute scan --enrich`): non-public and
    /// allowlisted addresses are answered without any call, each public one at most once.
    pub fn lookup_distinct(
        &self,
        ips: impl IntoIterator<Item = IpAddr>,
    ) -> BTreeMap<IpAddr, Lookup> {
        let mut answers = BTreeMap::new();
        for ip in ips {
            let ip = crate::addr::canonical(ip);
            answers.entry(ip).or_insert_with(|| self.lookup(ip));
        }
        answers
    }

    /// The shared quota state of the check endpoint, if any has been recorded.
    pub fn quota_state(&self) -> Option<QuotaState> {
        let provider = self.provider.as_deref()?;
        self.store.quota(&quota_endpoint(provider)).ok().flatten()
    }

    fn cached(&self, key: &CacheKey) -> Option<Reputation> {
        match self.store.get(key) {
            Ok(hit) => hit.map(|c| c.reputation),
            Err(e) => {
                tracing::warn!(error = %e, "cache read failed; asking the provider");
                None
            }
        }
    }

    /// The provider's answer when the store failed with `e`: asked anyway, or, when the
    /// settings say so, not asked at all.
    fn fetch_without_store(
        &self,
        key: &CacheKey,
        provider: &dyn Provider,
        holder: &str,
        e: &CacheError,
    ) -> Result<(Source, Reputation), NoReputation> {
        if e.is_unreachable() && self.settings.on_store_failure == OnStoreFailure::Error {
            return Err(NoReputation::StoreUnavailable {
                detail: e.to_string(),
            });
        }
        tracing::warn!(error = %e, "cache lease failed; asking the provider");
        self.fetch(key, provider, holder).map(|r| (Source::Api, r))
    }

    /// Takes the lookup lease for `key`, or waits (bounded) for its holder's answer to land in
    /// the cache. A holder that dies leaves a lease that expires after `lease_ttl`. Taking the
    /// lease is one commit, settling it ([`Engine::fetch`]) another: a miss costs two.
    fn fetch_under_lease(
        &self,
        key: &CacheKey,
        provider: &dyn Provider,
    ) -> Result<(Source, Reputation), NoReputation> {
        let holder = lease_holder();
        let deadline = Instant::now() + self.settings.lease_ttl + Duration::from_secs(1);
        let mut pause = Duration::from_millis(5);
        loop {
            match self.store.take_lease(key, &holder, self.settings.lease_ttl) {
                Ok(LeaseState::Taken) => {
                    // Another process may have filled the cache between our miss and now.
                    if let Some(rep) = self.cached(key) {
                        self.settle(key, &holder, Settlement::Release, None);
                        return Ok((Source::Cache, rep));
                    }
                    return self.fetch(key, provider, &holder).map(|r| (Source::Api, r));
                }
                Ok(LeaseState::Failed(note)) => {
                    return match self.failure_note(note, provider) {
                        Note::Ours(why) => Err(why),
                        // Noted for another endpoint or key: says nothing about ours.
                        Note::OtherTarget => {
                            tracing::debug!(ip = %key.ip, "failure noted for another endpoint; asking");
                            self.fetch(key, provider, &holder).map(|r| (Source::Api, r))
                        }
                    };
                }
                Ok(LeaseState::HeldBy(_)) => {
                    if Instant::now() >= deadline {
                        tracing::warn!(ip = %key.ip, "lookup lease still held after waiting; asking anyway");
                        return self.fetch(key, provider, &holder).map(|r| (Source::Api, r));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                    if let Some(rep) = self.cached(key) {
                        return Ok((Source::Cache, rep));
                    }
                }
                Err(e) => return self.fetch_without_store(key, provider, &holder, &e),
            }
        }
    }

    /// The note to leave on the lease when the lookup failed for a reason every process would
    /// meet too, so that processes waiting on the same address give up at once instead of
    /// calling in turn (an outage costs one call per address per [`FAILED_LOOKUP_HOLD`], not
    /// one per process).
    fn note_for(failure: &NoReputation, provider: &dyn Provider) -> Option<FailureNote> {
        let failure = match failure {
            NoReputation::Unauthorized => LookupFailure::Unauthorized,
            NoReputation::ProviderFailed { status, detail } => LookupFailure::Provider {
                status: *status,
                detail: detail.clone(),
            },
            _ => return None,
        };
        Some(FailureNote {
            target: Some(provider.target_tag()),
            failure,
        })
    }

    /// What a failure note another process left on `key`'s lease means here. A note is
    /// tagged with the provider's [`Provider::target_tag`]; an untagged one comes from an
    /// older version and is taken as ours.
    fn failure_note(&self, note: FailureNote, provider: &dyn Provider) -> Note {
        if note.target.is_some_and(|tag| tag != provider.target_tag()) {
            return Note::OtherTarget;
        }
        Note::Ours(match note.failure {
            LookupFailure::Unauthorized => NoReputation::Unauthorized,
            LookupFailure::Provider { status, detail } => NoReputation::ProviderFailed {
                status,
                detail: format!("a lookup of this address failed moments ago: {detail}"),
            },
        })
    }

    /// Ends a lookup in one durable commit (see [`crate::cache::ReputationCache::settle`]);
    /// a store that fails here costs the next process a lookup, never this answer.
    fn settle(
        &self,
        key: &CacheKey,
        holder: &str,
        settlement: Settlement<'_>,
        quota: Option<QuotaUpdate<'_>>,
    ) {
        if let Err(e) = self.store.settle(key, holder, settlement, quota) {
            tracing::warn!(error = %e, "could not settle the lookup in the store");
        }
    }

    /// One provider call, honouring the shared quota state, then one commit that stores the
    /// answer (or leaves a failure note), gives `holder`'s lease back (when it has one) and
    /// records the quota the provider announced.
    fn fetch(
        &self,
        key: &CacheKey,
        provider: &dyn Provider,
        holder: &str,
    ) -> Result<Reputation, NoReputation> {
        let endpoint = quota_endpoint(provider);
        let now = jiff::Timestamp::now().as_second();
        let known = self.store.quota(&endpoint).ok().flatten();
        if let Some(until) = known.as_ref().and_then(|q| q.blocked_at(now)) {
            self.settle(key, holder, Settlement::Release, None);
            return Err(NoReputation::QuotaExhausted {
                until: Some(rfc3339(until)),
            });
        }
        tracing::debug!(ip = %key.ip, provider = provider.name(), "looking up");
        match provider.check(key.ip, key.max_age_days) {
            Ok(checked) => {
                let ttl = if checked.reputation.is_unknown() {
                    self.settings.negative_ttl
                } else {
                    self.settings.positive_ttl
                };
                // What the rate-limit headers said; a remaining count of zero stops every
                // process until the reset.
                let quota = QuotaState::from_rate(&checked.rate, now);
                self.settle(
                    key,
                    holder,
                    Settlement::Answer {
                        reputation: &checked.reputation,
                        ttl,
                    },
                    quota.as_ref().map(|state| QuotaUpdate {
                        endpoint: &endpoint,
                        state,
                    }),
                );
                Ok(checked.reputation)
            }
            Err(err) => {
                let (why, quota) = failure(err, known, now);
                let note = Engine::note_for(&why, provider);
                let settlement = match &note {
                    Some(note) => Settlement::Failed {
                        note,
                        hold: FAILED_LOOKUP_HOLD,
                    },
                    None => Settlement::Release,
                };
                let quota = quota.as_ref().map(|state| QuotaUpdate {
                    endpoint: &endpoint,
                    state,
                });
                self.settle(key, holder, settlement, quota);
                Err(why)
            }
        }
    }
}

/// Why there is no answer after the provider failed with `err`, and the quota state to record
/// (after a quota 429: nothing left until the time it gave, from `previous` on).
fn failure(
    err: ApiError,
    previous: Option<QuotaState>,
    now: i64,
) -> (NoReputation, Option<QuotaState>) {
    // The reason goes back in the Lookup; the command decides whether to print it.
    tracing::debug!(error = %err, "reputation lookup failed");
    match err {
        ApiError::QuotaExhausted { retry_at, .. } => {
            let state = QuotaState::exhausted(previous, retry_at, now);
            let why = NoReputation::QuotaExhausted {
                until: state.blocked_until.map(rfc3339),
            };
            (why, Some(state))
        }
        ApiError::Unauthorized { .. } => (NoReputation::Unauthorized, None),
        ApiError::NoApiKey => (NoReputation::NoApiKey, None),
        other => (
            NoReputation::ProviderFailed {
                status: other.status(),
                detail: other.to_string(),
            },
            None,
        ),
    }
}

/// A failure note found on a lease.
enum Note {
    /// Left by a lookup through this same endpoint and key.
    Ours(NoReputation),
    /// Left by a lookup through another endpoint or key.
    OtherTarget,
}

/// How long a failed lookup keeps other processes from retrying the same address.
pub const FAILED_LOOKUP_HOLD: Duration = Duration::from_secs(5);

fn quota_endpoint(provider: &dyn Provider) -> String {
    format!("{}/check", provider.name())
}

/// A lease holder name unique to this call: process id and a fine clock reading.
fn lease_holder() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ReputationCache;
    use crate::reputation::{Checked, RateLimit};
    use std::sync::Arc;
    use std::sync::Mutex;

    /// A provider that answers from a script and counts calls per address.
    #[derive(Clone, Default)]
    struct Fake {
        calls: Arc<Mutex<Vec<IpAddr>>>,
        fail_with: Arc<Mutex<Option<ApiError>>>,
        rate: Arc<Mutex<RateLimit>>,
    }

    impl Fake {
        fn calls(&self) -> usize {
            self.calls.lock().expect("lock").len()
        }
        fn fail(&self, err: Option<ApiError>) {
            *self.fail_with.lock().expect("lock") = err;
        }
    }

    impl Provider for Fake {
        fn name(&self) -> &str {
            "fake"
        }
        fn check(&self, ip: IpAddr, _max_age_days: u16) -> Result<Checked, ApiError> {
            self.calls.lock().expect("lock").push(ip);
            if let Some(e) = self.fail_with.lock().expect("lock").clone() {
                return Err(e);
            }
            // 8.8.8.8 is "unknown" (no reports); everything else scores by its last octet.
            let score = match ip {
                IpAddr::V4(v4) if v4.octets()[3] == 8 => 0,
                IpAddr::V4(v4) => v4.octets()[3].min(100),
                IpAddr::V6(_) => 50,
            };
            let mut reputation = Reputation::bare(ip, score);
            reputation.total_reports = Some(u64::from(score));
            Ok(Checked {
                reputation,
                rate: *self.rate.lock().expect("lock"),
            })
        }
    }

    fn config(dir: &std::path::Path) -> Config {
        Config {
            cache: StoreSetting::Sqlite(dir.join("cache.sqlite")),
            state_dir: dir.to_path_buf(),
            allowlist: crate::config::parse_allowlist(["1.1.1.0/24", "9.9.9.9"], "test")
                .expect("allowlist"),
            alert_min_score: 25,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_millis(200),
            ..Config::default()
        }
    }

    fn engine(dir: &std::path::Path, fake: &Fake) -> Engine {
        Engine::with_provider(&config(dir), Box::new(fake.clone())).expect("engine")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn non_public_addresses_are_never_looked_up() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        for text in [
            "10.0.0.1",
            "127.0.0.1",
            "::ffff:192.168.1.20",
            "2001:db8::1",
            "100.64.0.1",
            "fe80::1",
        ] {
            let l = e.lookup(ip(text));
            assert_eq!(l.source, Source::Skipped, "{text}");
            assert!(
                matches!(l.missing().cloned(), Some(NoReputation::NotPublic(_))),
                "{text}"
            );
            assert!(l.reputation().is_none());
        }
        assert_eq!(fake.calls(), 0);
        assert_eq!(e.lookup(ip("::ffff:192.168.1.20")).ip, ip("192.168.1.20"));
    }

    /// Every caller (check, scan, a daemon) gets the breaker: after three failures in a row
    /// the provider is not asked (for a minute), cached answers are still served, and another
    /// engine asks again.
    #[test]
    fn a_failing_provider_is_left_alone_after_three_failures_in_a_row() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        assert!(e.lookup(ip("45.155.205.60")).reputation().is_some());
        fake.fail(Some(ApiError::Server {
            status: 503,
            detail: "down".into(),
        }));
        for last in 61..=63 {
            assert!(
                e.lookup(ip(&format!("45.155.205.{last}")))
                    .missing()
                    .is_some()
            );
        }
        assert_eq!(fake.calls(), 4);
        let given_up = e.lookup(ip("45.155.205.64"));
        assert_eq!(fake.calls(), 4, "not asked after {GIVE_UP_AFTER} failures");
        let why = given_up
            .missing()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(why.contains("not asked for 1m"), "{why}");
        assert_eq!(
            e.lookup(ip("45.155.205.60")).source,
            Source::Cache,
            "cached answers are still served"
        );
        // Another engine (another process) asks again.
        fake.fail(None);
        let other = engine(dir.path(), &fake);
        assert_eq!(other.lookup(ip("45.155.205.65")).source, Source::Api);
    }

    /// A daemon's breaker closes again: once its pause is over one lookup goes to the
    /// provider; a failure opens it for another pause, an answer closes it. (The pause is
    /// ended by moving the breaker's retry time, so the test waits for nothing.)
    #[test]
    fn after_its_pause_the_breaker_lets_one_lookup_try_the_provider() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        let pause_over = |e: &Engine| e.breaker().retry_at = Some(Instant::now());
        fake.fail(Some(ApiError::Server {
            status: 503,
            detail: "down".into(),
        }));
        for last in 61..=63 {
            e.lookup(ip(&format!("45.155.205.{last}")));
        }
        e.lookup(ip("45.155.205.64"));
        assert_eq!(fake.calls(), 3, "open: not asked");

        // The pause is over, the provider still down: one try, and open again.
        pause_over(&e);
        let tried = e.lookup(ip("45.155.205.65"));
        assert_eq!(fake.calls(), 4, "half-open: one try");
        assert!(
            !tried
                .missing()
                .map(ToString::to_string)
                .unwrap_or_default()
                .contains("not asked"),
            "the try's own failure is said"
        );
        e.lookup(ip("45.155.205.66"));
        assert_eq!(fake.calls(), 4, "the failed try opened it again");

        // The pause is over and the provider back: its answer closes the breaker.
        pause_over(&e);
        fake.fail(None);
        assert_eq!(e.lookup(ip("45.155.205.67")).source, Source::Api);
        assert_eq!(e.lookup(ip("45.155.205.68")).source, Source::Api);
        assert_eq!(fake.calls(), 6, "closed: every miss asks");
    }

    /// While the one try is out, other callers keep to the cache: the next pause starts as
    /// the try is let through.
    #[test]
    fn the_breaker_lets_one_caller_through_per_pause() {
        let start = Instant::now();
        let mut breaker = Breaker::new(RETRY_AFTER);
        let failed = Lookup::skipped(
            ip("45.155.205.61"),
            AddrClass::Public,
            NoReputation::ProviderFailed {
                status: Some(503),
                detail: "down".into(),
            },
        );
        for _ in 0..GIVE_UP_AFTER {
            assert!(breaker.permit(start).is_ok());
            breaker.note(&failed, start);
        }
        assert!(breaker.permit(start + RETRY_AFTER / 2).is_err());
        let later = start + RETRY_AFTER;
        assert!(breaker.permit(later).is_ok(), "the pause is over: one try");
        assert!(breaker.permit(later).is_err(), "a second caller waits");
        breaker.note(&failed, later);
        assert!(breaker.permit(later + RETRY_AFTER / 2).is_err());
        assert!(breaker.permit(later + RETRY_AFTER).is_ok());
    }

    #[test]
    fn allowlisted_addresses_and_networks_are_skipped() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        for text in ["1.1.1.1", "1.1.1.200", "9.9.9.9"] {
            assert_eq!(
                e.lookup(ip(text)).missing().cloned(),
                Some(NoReputation::Allowlisted),
                "{text}"
            );
        }
        assert_eq!(fake.calls(), 0);
        assert_eq!(e.lookup(ip("9.9.9.10")).source, Source::Api);
    }

    #[test]
    fn a_miss_calls_once_and_the_next_lookup_is_a_hit() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        let first = e.lookup(ip("185.220.101.77"));
        assert_eq!((first.source, first.score()), (Source::Api, Some(77)));
        let second = e.lookup(ip("185.220.101.77"));
        assert_eq!((second.source, second.score()), (Source::Cache, Some(77)));
        // Another process (another engine on the same file) sees it too.
        let other = engine(dir.path(), &fake);
        assert_eq!(other.lookup(ip("185.220.101.77")).source, Source::Cache);
        assert_eq!(fake.calls(), 1);
    }

    #[test]
    fn unknown_addresses_use_the_negative_ttl() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let mut cfg = config(dir.path());
        cfg.negative_ttl = Duration::ZERO;
        let e = Engine::with_provider(&cfg, Box::new(fake.clone())).expect("engine");
        assert_eq!(e.lookup(ip("8.8.8.8")).score(), Some(0));
        assert_eq!(
            e.lookup(ip("8.8.8.8")).source,
            Source::Api,
            "negative entry expired"
        );
        assert_eq!(e.lookup(ip("8.8.4.40")).source, Source::Api);
        assert_eq!(
            e.lookup(ip("8.8.4.40")).source,
            Source::Cache,
            "positive entry lives"
        );
        assert_eq!(fake.calls(), 3);
    }

    #[test]
    fn a_quota_429_stops_every_engine_on_the_store() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        fake.fail(Some(ApiError::QuotaExhausted {
            retry_at: Some(jiff::Timestamp::now().as_second() + 600),
            detail: "Daily rate limit".into(),
        }));
        let l = e.lookup(ip("185.220.101.10"));
        assert!(matches!(
            l.missing().cloned(),
            Some(NoReputation::QuotaExhausted { until: Some(_) })
        ));
        fake.fail(None);
        let other = engine(dir.path(), &fake);
        let l = other.lookup(ip("185.220.101.11"));
        assert!(
            matches!(
                l.missing().cloned(),
                Some(NoReputation::QuotaExhausted { .. })
            ),
            "{l:?}"
        );
        assert_eq!(fake.calls(), 1, "no call while the quota is spent");
        assert!(other.quota_state().and_then(|q| q.blocked_until).is_some());
    }

    #[test]
    fn a_remaining_count_of_zero_stops_calls_until_the_reset() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        *fake.rate.lock().expect("lock") = RateLimit {
            limit: Some(1000),
            remaining: Some(0),
            reset_at: Some(jiff::Timestamp::now().as_second() + 3600),
            retry_after: None,
        };
        let e = engine(dir.path(), &fake);
        assert_eq!(e.lookup(ip("185.220.101.20")).source, Source::Api);
        let l = e.lookup(ip("185.220.101.21"));
        assert!(matches!(
            l.missing().cloned(),
            Some(NoReputation::QuotaExhausted { .. })
        ));
        assert_eq!(
            e.lookup(ip("185.220.101.20")).source,
            Source::Cache,
            "hits still served"
        );
        assert_eq!(fake.calls(), 1);
    }

    #[test]
    fn failures_are_reasons_not_cache_entries_and_hold_off_other_callers() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        fake.fail(Some(ApiError::Server {
            status: 503,
            detail: "down".into(),
        }));
        let l = e.lookup(ip("185.220.101.30"));
        assert_eq!(l.missing().map(NoReputation::code), Some("provider-failed"));
        // Another process right after: the failure note answers, no second call.
        let other = engine(dir.path(), &fake);
        match other.lookup(ip("185.220.101.30")).missing().cloned() {
            Some(NoReputation::ProviderFailed { status, detail }) => {
                assert_eq!(status, Some(503));
                assert!(
                    detail.contains("failed moments ago") && detail.contains("down"),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.calls(), 1);

        fake.fail(Some(ApiError::Unauthorized {
            status: 401,
            detail: "no".into(),
        }));
        assert_eq!(
            e.lookup(ip("185.220.101.31")).missing().cloned(),
            Some(NoReputation::Unauthorized)
        );
        assert_eq!(
            other.lookup(ip("185.220.101.31")).missing().cloned(),
            Some(NoReputation::Unauthorized)
        );
        assert_eq!(fake.calls(), 2);
        let cache = SqliteStore::open(&dir.path().join("cache.sqlite")).expect("open");
        assert_eq!(
            cache.entries().expect("count"),
            0,
            "failures are never cached"
        );
    }

    #[test]
    fn a_waiter_gives_up_when_the_holder_fails() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        let other = SqliteStore::open(&dir.path().join("cache.sqlite")).expect("open");
        let key = CacheKey::new(ip("185.220.101.90"), 90);
        assert_eq!(
            other
                .take_lease(&key, "holder", Duration::from_secs(5))
                .expect("lease"),
            LeaseState::Taken
        );
        let failer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            // Untagged, as an older version leaves it: read as ours.
            let note = FailureNote {
                target: None,
                failure: LookupFailure::Provider {
                    status: None,
                    detail: "timed out".into(),
                },
            };
            let failed = Settlement::Failed {
                note: &note,
                hold: Duration::from_secs(5),
            };
            other.settle(&key, "holder", failed, None).expect("fail");
        });
        let l = e.lookup(ip("185.220.101.90"));
        failer.join().expect("thread");
        assert_eq!(l.missing().map(NoReputation::code), Some("provider-failed"));
        assert_eq!(fake.calls(), 0);
    }

    #[test]
    fn the_engine_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Engine>();
    }

    #[test]
    fn without_a_key_cached_answers_are_still_served() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        engine(dir.path(), &fake).lookup(ip("185.220.101.40"));
        let keyless = Engine::new(&config(dir.path())).expect("engine");
        assert_eq!(keyless.lookup(ip("185.220.101.40")).source, Source::Cache);
        assert_eq!(
            keyless.lookup(ip("185.220.101.41")).missing().cloned(),
            Some(NoReputation::NoApiKey)
        );
    }

    #[test]
    fn a_waiter_takes_the_holders_answer_from_the_cache() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        let other = SqliteStore::open(&dir.path().join("cache.sqlite")).expect("open");
        let key = CacheKey::new(ip("185.220.101.50"), 90);
        assert_eq!(
            other
                .take_lease(&key, "other-process", Duration::from_secs(5))
                .expect("lease"),
            LeaseState::Taken
        );
        let filler = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            let answer = Reputation::bare(ip("185.220.101.50"), 42);
            let settlement = Settlement::Answer {
                reputation: &answer,
                ttl: Duration::from_secs(60),
            };
            other
                .settle(&key, "other-process", settlement, None)
                .expect("settle");
        });
        let l = e.lookup(ip("185.220.101.50"));
        filler.join().expect("filler");
        assert_eq!((l.source, l.score()), (Source::Cache, Some(42)));
        assert_eq!(fake.calls(), 0);
    }

    #[test]
    fn a_dead_holders_lease_expires() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        let other = SqliteStore::open(&dir.path().join("cache.sqlite")).expect("open");
        let key = CacheKey::new(ip("185.220.101.60"), 90);
        assert_eq!(
            other
                .take_lease(&key, "dead", Duration::from_millis(200))
                .expect("lease"),
            LeaseState::Taken
        );
        let l = e.lookup(ip("185.220.101.60"));
        assert_eq!(l.source, Source::Api);
        assert_eq!(fake.calls(), 1);
    }

    #[test]
    fn an_unopenable_cache_degrades_to_none() {
        let dir = tempfile::tempdir().expect("tmp");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "not a directory").expect("write");
        let mut cfg = config(dir.path());
        cfg.cache = StoreSetting::Sqlite(blocker.join("cache.sqlite"));
        assert!(Engine::new(&cfg).is_err());
        let e = Engine::new_or_uncached(&cfg);
        assert_eq!(
            e.lookup(ip("185.220.101.91")).missing().cloned(),
            Some(NoReputation::NoApiKey)
        );
    }

    #[test]
    fn a_disabled_cache_calls_every_time() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let mut cfg = config(dir.path());
        cfg.cache = StoreSetting::Disabled;
        let e = Engine::with_provider(&cfg, Box::new(fake.clone())).expect("engine");
        assert_eq!(e.lookup(ip("185.220.101.70")).source, Source::Api);
        assert_eq!(e.lookup(ip("185.220.101.70")).source, Source::Api);
        assert_eq!(fake.calls(), 2);
        assert!(
            std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
            "no file"
        );
    }

    #[test]
    fn lookup_distinct_calls_once_per_public_address() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        let ips = [
            "185.220.101.1",
            "10.0.0.1",
            "185.220.101.1",
            "::ffff:185.220.101.1",
            "185.220.101.2",
        ];
        let answers = e.lookup_distinct(ips.iter().map(|t| ip(t)));
        assert_eq!(answers.len(), 3);
        assert_eq!(fake.calls(), 2);
    }

    #[test]
    fn the_record_has_the_contract_fields() {
        let dir = tempfile::tempdir().expect("tmp");
        let fake = Fake::default();
        let e = engine(dir.path(), &fake);
        let found = serde_json::to_value(e.lookup(ip("185.220.101.80")).record()).expect("json");
        assert_eq!(found["source"], "api");
        assert_eq!(found["class"], "public");
        assert_eq!(found["reputation"]["abuse_confidence_score"], 80);
        assert!(found.get("reason").is_none());
        let skipped = serde_json::to_value(e.lookup(ip("192.168.0.1")).record()).expect("json");
        assert_eq!(skipped["reputation"], serde_json::Value::Null);
        assert_eq!(skipped["reason"], "not-public");
        assert_eq!(skipped["class"], "private");
    }
}
