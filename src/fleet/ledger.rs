//! The report ledger ([`crate::report::ReportLedger`]) in Redis, so that every host of a fleet
//! keeps AbuseIPDB's one-report-per-address-per-15-minutes rule together.
//!
//! One key per address, `report:{ip}` under the prefix, holding the mark as JSON (`state`,
//! `holder`, `at`, `until`, Unix seconds as the caller gives them). Claim, settle and release
//! are Lua scripts, so each is one atomic step for every host, with the same rules as the SQLite
//! ledger (a live mark is one whose `until` is after the caller's `now`). Redis expires the key
//! a while after its `until`, so nothing has to purge it. The report quota sits beside the
//! check quota (`quota:abuseipdb/report`); the reports sent per UTC day are a counter,
//! `report-sent:{day}`, that expires after [`DAY_COUNT_KEPT_SECS`].

use std::net::IpAddr;

use serde::Deserialize;

use super::{Link, RedisStore, RedisTarget};
use crate::quota::{QuotaState, QuotaStore};
use crate::report::ledger::QUOTA_ENDPOINT;
use crate::report::{Claim, LedgerError, Mark, ReportLedger};

/// ARGV: holder, now, until, expiry ms. Returns the live mark, or nil when granted.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if v then
  local m = cjson.decode(v)
  if tonumber(m['until']) > tonumber(ARGV[2]) then return v end
end
redis.call('SET', KEYS[1], cjson.encode({state='pending', holder=ARGV[1], at=tonumber(ARGV[2]),
  ['until']=tonumber(ARGV[3])}), 'PX', ARGV[4])
return false
";

/// ARGV: holder, at, until, expiry ms. Keeps the later `until`.
const SETTLE: &str = r"
local u = tonumber(ARGV[3])
local v = redis.call('GET', KEYS[1])
if v then
  local m = cjson.decode(v)
  if tonumber(m['until']) > u then u = tonumber(m['until']) end
end
redis.call('SET', KEYS[1], cjson.encode({state='reported', holder=ARGV[1], at=tonumber(ARGV[2]),
  ['until']=u}), 'PX', ARGV[4])
return 1
";

/// ARGV: holder. Drops only that holder's pending claim.
const RELEASE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local m = cjson.decode(v)
if m['state'] == 'pending' and m['holder'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// ARGV: seconds to keep. Counts one report in the day's key.
const COUNT_SENT: &str = r"
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return n
";

/// How long Redis keeps a day's count of reports sent (the day, and two more).
const DAY_COUNT_KEPT_SECS: i64 = 3 * 86_400;

/// How long past its `until` Redis keeps a mark (the caller's clock may be behind Redis's).
const KEEP_AFTER_MS: i64 = 3_600_000;

#[derive(Deserialize)]
struct StoredMark {
    state: String,
    at: i64,
    until: i64,
}

impl StoredMark {
    fn mark(self) -> Mark {
        if self.state == "reported" {
            Mark::Reported {
                at: self.at,
                until: self.until,
            }
        } else {
            Mark::Pending {
                at: self.at,
                until: self.until,
            }
        }
    }
}

/// The report ledger on a Redis store.
#[derive(Debug)]
pub struct RedisLedger {
    link: Link,
    quota: RedisStore,
}

impl RedisLedger {
    /// The ledger on `target`; it connects on first use.
    pub fn new(target: RedisTarget) -> Self {
        RedisLedger {
            quota: RedisStore::new(target.clone()),
            link: Link::new(target),
        }
    }

    fn day_key(&self, at: i64) -> String {
        self.link.target().key(&format!(
            "report-sent:{}",
            crate::report::ledger::utc_day(at)
        ))
    }

    fn key(&self, ip: IpAddr) -> String {
        self.link
            .target()
            .key(&format!("report:{}", crate::addr::canonical(ip)))
    }
}

/// Milliseconds Redis keeps a mark that ends at `until` (Unix seconds): until then, and a
/// margin, at least 1.
fn expiry_ms(until: i64) -> i64 {
    let now_ms = crate::store::now_ms();
    (until.saturating_mul(1000) - now_ms).max(0) + KEEP_AFTER_MS
}

impl ReportLedger for RedisLedger {
    fn claim(&self, ip: IpAddr, holder: &str, now: i64, hold: i64) -> Result<Claim, LedgerError> {
        let key = self.key(ip);
        let until = now.saturating_add(hold);
        let held: Option<String> = self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(CLAIM)
                .arg(1)
                .arg(&key)
                .arg(holder)
                .arg(now)
                .arg(until)
                .arg(expiry_ms(until))
                .query(c)
        })?;
        Ok(match held {
            None => Claim::Granted,
            Some(text) => match serde_json::from_str::<StoredMark>(&text) {
                Ok(m) => Claim::Held(m.mark()),
                // A mark this version cannot read still holds the address.
                Err(_) => Claim::Held(Mark::Pending { at: now, until }),
            },
        })
    }

    fn settle(&self, ip: IpAddr, holder: &str, at: i64, until: i64) -> Result<(), LedgerError> {
        let key = self.key(ip);
        self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(SETTLE)
                .arg(1)
                .arg(&key)
                .arg(holder)
                .arg(at)
                .arg(until)
                .arg(expiry_ms(until))
                .query::<i64>(c)
                .map(drop)
        })?;
        Ok(())
    }

    fn release(&self, ip: IpAddr, holder: &str) -> Result<(), LedgerError> {
        let key = self.key(ip);
        self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(&key)
                .arg(holder)
                .query::<i64>(c)
                .map(drop)
        })?;
        Ok(())
    }

    fn mark(&self, ip: IpAddr, now: i64) -> Result<Option<Mark>, LedgerError> {
        let key = self.key(ip);
        let text: Option<String> = self.link.run(|c| redis::cmd("GET").arg(&key).query(c))?;
        Ok(text
            .and_then(|t| serde_json::from_str::<StoredMark>(&t).ok())
            .filter(|m| m.until > now)
            .map(StoredMark::mark))
    }

    fn quota(&self) -> Result<Option<QuotaState>, LedgerError> {
        Ok(self.quota.quota(QUOTA_ENDPOINT)?)
    }

    fn record_quota(&self, state: &QuotaState) -> Result<(), LedgerError> {
        Ok(self.quota.record_quota(QUOTA_ENDPOINT, state)?)
    }

    fn count_sent(&self, at: i64) -> Result<(), LedgerError> {
        let key = self.day_key(at);
        // One key, one script: atomic on a single node and on a cluster alike.
        self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(COUNT_SENT)
                .arg(1)
                .arg(&key)
                .arg(DAY_COUNT_KEPT_SECS)
                .query::<i64>(c)
                .map(drop)
        })?;
        Ok(())
    }

    fn sent_on_day_of(&self, at: i64) -> Result<u64, LedgerError> {
        let key = self.day_key(at);
        let sent: Option<u64> = self.link.run(|c| redis::cmd("GET").arg(&key).query(c))?;
        Ok(sent.unwrap_or(0))
    }
}
