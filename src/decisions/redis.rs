//! Ban decisions in Redis, per `docs/watch-fleet.md` §E: a sorted set (member = address,
//! score = end time in ms) is the authoritative current set, a hash keeps each ban's details,
//! and a stream (`XADD MAXLEN ~`) logs the changes. The three keys share the hash tag
//! `{bans}`, so one Lua script changes them atomically on a single node or a Cluster. A host
//! follows the stream with `XREAD BLOCK` from its last id; when that id is no longer in the
//! stream (trimmed, or Redis restarted empty and numbers ids from scratch) it is told to reload
//! the set.

use std::net::IpAddr;
use std::time::Duration;

use redis::Value;

use super::{Ban, Change, Changes, Cursor, Decisions, LOG_LENGTH};
use crate::fleet::{Link, RedisTarget};
use crate::store::{StoreError, now_ms};

/// KEYS: set, details, log. ARGV: ip, until, details JSON, now, log length, reason, origin,
/// decided at.
const RECORD: &str = r"
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'kind', 'ban', 'ip', ARGV[1],
  'until', ARGV[2], 'reason', ARGV[6], 'origin', ARGV[7], 'at', ARGV[8])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, 100)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
return 1
";

/// KEYS: set, details, log. ARGV: ip, origin, now, log length.
const REVOKE: &str = r"
local had = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if had == 1 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'kind', 'unban', 'ip', ARGV[1],
    'until', '0', 'reason', '', 'origin', ARGV[2], 'at', ARGV[3])
end
return had
";

/// KEYS: log. The first and last ids of the stream ('' when empty).
const ENDS: &str = r"
local f = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local l = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return { f[1] and f[1][1] or '', l[1] and l[1][1] or '' }
";

/// The decisions on a Redis store.
#[derive(Debug)]
pub struct RedisDecisions {
    link: Link,
    /// A second connection for `XREAD BLOCK`, whose answers may take the whole wait.
    feed: Link,
    set: String,
    details: String,
    log: String,
}

/// Longest wait a single `XREAD BLOCK` is given (the feed's read timeout is this plus the
/// command timeout).
const MAX_WAIT: Duration = Duration::from_secs(5);

impl RedisDecisions {
    /// The decisions on `target`; connects on first use.
    pub fn new(target: RedisTarget) -> Self {
        let read = MAX_WAIT + target.timeout;
        RedisDecisions {
            set: target.key("{bans}:until"),
            details: target.key("{bans}:detail"),
            log: target.key("{bans}:log"),
            feed: Link::with_read_timeout(target.clone(), read),
            link: Link::new(target),
        }
    }

    fn ends(&self, link: &Link) -> Result<(Option<StreamId>, Option<StreamId>), StoreError> {
        let (first, last): (String, String) =
            link.run(|c| redis::cmd("EVAL").arg(ENDS).arg(1).arg(&self.log).query(c))?;
        Ok((StreamId::parse(&first), StreamId::parse(&last)))
    }
}

/// A stream id, `ms-seq`, comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StreamId(u64, u64);

impl StreamId {
    fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One stream entry `[id, [field, value, …]]` as a change.
fn entry(v: &Value) -> Option<(Cursor, Change)> {
    let Value::Array(parts) = v else { return None };
    let id = text(parts.first()?)?;
    let Value::Array(fields) = parts.get(1)? else {
        return None;
    };
    let mut get = std::collections::HashMap::new();
    for pair in fields.chunks(2) {
        if let [k, v] = pair {
            get.insert(text(k)?, text(v)?);
        }
    }
    let ip: IpAddr = get.get("ip")?.parse().ok()?;
    let origin = get.get("origin").cloned().unwrap_or_default();
    let at_ms = get.get("at").and_then(|a| a.parse().ok()).unwrap_or(0);
    let change = if get.get("kind").map(String::as_str) == Some("unban") {
        Change::Unban { ip, origin, at_ms }
    } else {
        Change::Ban(Ban {
            ip,
            until_ms: get.get("until")?.parse().ok()?,
            reason: get.get("reason").cloned().unwrap_or_default(),
            origin,
            decided_at_ms: at_ms,
        })
    };
    Some((Cursor(id), change))
}

impl Decisions for RedisDecisions {
    fn record(&self, ban: &Ban) -> Result<bool, StoreError> {
        let details = serde_json::to_string(ban).unwrap_or_default();
        let ip = crate::addr::canonical(ban.ip).to_string();
        let changed: i64 = self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(RECORD)
                .arg(3)
                .arg(&self.set)
                .arg(&self.details)
                .arg(&self.log)
                .arg(&ip)
                .arg(ban.until_ms)
                .arg(&details)
                .arg(now_ms())
                .arg(LOG_LENGTH)
                .arg(&ban.reason)
                .arg(&ban.origin)
                .arg(ban.decided_at_ms)
                .query(c)
        })?;
        Ok(changed == 1)
    }

    fn revoke(&self, ip: IpAddr, origin: &str) -> Result<bool, StoreError> {
        let ip = crate::addr::canonical(ip).to_string();
        let had: i64 = self.link.run(|c| {
            redis::cmd("EVAL")
                .arg(REVOKE)
                .arg(3)
                .arg(&self.set)
                .arg(&self.details)
                .arg(&self.log)
                .arg(&ip)
                .arg(origin)
                .arg(now_ms())
                .arg(LOG_LENGTH)
                .query(c)
        })?;
        Ok(had == 1)
    }

    fn current(&self) -> Result<Vec<Ban>, StoreError> {
        let now = now_ms();
        type Live = Vec<(String, i64)>;
        type Details = Vec<(String, String)>;
        let (live, details): (Live, Details) = self.link.run(|c| {
            let live = redis::cmd("ZRANGEBYSCORE")
                .arg(&self.set)
                .arg(format!("({now}"))
                .arg("+inf")
                .arg("WITHSCORES")
                .query(c)?;
            let details = redis::cmd("HGETALL").arg(&self.details).query(c)?;
            Ok((live, details))
        })?;
        let details: std::collections::HashMap<String, String> = details.into_iter().collect();
        Ok(live
            .into_iter()
            .filter_map(|(ip, until_ms)| {
                let addr: IpAddr = ip.parse().ok()?;
                let known = details
                    .get(&ip)
                    .and_then(|d| serde_json::from_str::<Ban>(d).ok());
                Some(match known {
                    // The set's end time is the authority.
                    Some(ban) => Ban { until_ms, ..ban },
                    None => Ban {
                        ip: addr,
                        until_ms,
                        reason: String::new(),
                        origin: String::new(),
                        decided_at_ms: 0,
                    },
                })
            })
            .collect())
    }

    fn head(&self) -> Result<Cursor, StoreError> {
        let (_, last) = self.ends(&self.link)?;
        Ok(Cursor(last.map_or("0-0".into(), |StreamId(ms, seq)| {
            format!("{ms}-{seq}")
        })))
    }

    fn changes_after(&self, cursor: &Cursor, wait: Duration) -> Result<Changes, StoreError> {
        let after = StreamId::parse(&cursor.0).unwrap_or(StreamId(0, 0));
        let (first, last) = self.ends(&self.feed)?;
        let lost = match (first, last) {
            // Entries after ours were trimmed (the entry right after ours may be the first
            // left, but there is no telling; a reload is cheap and safe).
            (Some(first), _) if after < first && after != StreamId(0, 0) => true,
            // The stream restarted below our place (Redis lost its data).
            (_, Some(last)) => last < after,
            (None, None) => after != StreamId(0, 0),
            _ => false,
        };
        if lost {
            return Ok(Changes::Gap);
        }
        let block = u64::try_from(wait.min(MAX_WAIT).as_millis()).unwrap_or(0);
        let reply: Value = self.feed.run(|c| {
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT").arg(512);
            if block > 0 {
                cmd.arg("BLOCK").arg(block);
            }
            cmd.arg("STREAMS").arg(&self.log).arg(&cursor.0).query(c)
        })?;
        // [[key, [entry, …]]] (RESP2), or nil when BLOCK timed out.
        let mut out = Vec::new();
        if let Value::Array(streams) = reply {
            for stream in streams {
                if let Value::Array(kv) = stream
                    && let Some(Value::Array(entries)) = kv.get(1)
                {
                    out.extend(entries.iter().filter_map(entry));
                }
            }
        }
        Ok(Changes::After(out))
    }
}
