//! Where a Redis store is: the `store` setting's URL forms, parsed once, with the settings
//! that go with them (password file, key prefix, CA file, timeouts, what to do when it fails).
//!
//! Forms accepted (the password is never part of the URL, so it never sits in argv, a
//! process listing or a log line; it comes from `store_password_file`):
//!
//! - `redis://[user@]host[:port][/db]` (port 6379, db 0 by default; `[v6]` hosts)
//! - `rediss://…` the same over TLS (rustls; `store_ca_file` for a private CA)
//! - `redis+unix:///path/to/redis.sock[?db=N]` (also `unix://`; `redis+unix://user@/path`)
//! - `redis-cluster://[user@]h1:p1,h2:p2,…` a Redis Cluster from its seed nodes
//!   (`rediss-cluster://` over TLS)

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A password, kept out of every `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Password(text.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// One Redis node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Node::Tcp { host, port } => write!(f, "{host}:{port}"),
            Node::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What a per-alert command does when the store cannot be reached: look the address up
/// without the store (the default: an answer beats none, at the price of a shared quota),
/// or answer with an error (`store-unavailable`) and spend nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnStoreFailure {
    #[default]
    Lookup,
    Error,
}

impl OnStoreFailure {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "lookup" => Ok(OnStoreFailure::Lookup),
            "error" => Ok(OnStoreFailure::Error),
            other => Err(format!("`{other}` is not `lookup` or `error`")),
        }
    }
}

/// The settings that go with a Redis URL, each optional in every layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisOptions {
    pub password_file: Option<PathBuf>,
    pub prefix: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub on_failure: Option<OnStoreFailure>,
}

impl RedisOptions {
    /// `other`'s settings where given, else these.
    pub fn overlay(&mut self, other: RedisOptions) {
        let RedisOptions {
            password_file,
            prefix,
            ca_file,
            timeout,
            on_failure,
        } = other;
        self.password_file = password_file.or(self.password_file.take());
        self.prefix = prefix.or(self.prefix.take());
        self.ca_file = ca_file.or(self.ca_file.take());
        self.timeout = timeout.or(self.timeout);
        self.on_failure = on_failure.or(self.on_failure);
    }
}

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "repute:";
/// The default bound on connecting and on each command: short, because a per-alert process
/// must still answer within integratord's timeout when Redis is gone.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);

/// A Redis store, ready to connect to. Its `Debug` shows the URL without secrets and the
/// settings, never the password or the CA bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// One node, or a cluster's seed nodes.
    pub nodes: Vec<Node>,
    pub cluster: bool,
    pub tls: bool,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<Password>,
    /// PEM CA certificate(s) for `rediss://` with a private CA.
    pub ca_pem: Option<Vec<u8>>,
    /// Prepended to every key, so that deployments can share one Redis.
    pub prefix: String,
    /// Bound on connecting, and on each command's answer.
    pub timeout: Duration,
    pub on_failure: OnStoreFailure,
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("url", &self.to_string())
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("ca_file", &self.ca_pem.as_ref().map(|_| "set"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("on_failure", &self.on_failure)
            .finish()
    }
}

impl fmt::Display for RedisTarget {
    /// The URL without any secret, for logs and errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.cluster, self.tls, self.nodes.first()) {
            (true, true, _) => "rediss-cluster",
            (true, false, _) => "redis-cluster",
            (false, _, Some(Node::Unix(_))) => "redis+unix",
            (false, true, _) => "rediss",
            (false, false, _) => "redis",
        };
        write!(f, "{scheme}://")?;
        if let Some(user) = &self.username {
            write!(f, "{user}@")?;
        }
        let nodes: Vec<String> = self.nodes.iter().map(ToString::to_string).collect();
        write!(f, "{}", nodes.join(","))?;
        if !self.cluster && self.db != 0 {
            write!(f, "/{}", self.db)?;
        }
        Ok(())
    }
}

/// True when `value` names a Redis store rather than a SQLite path.
pub fn is_redis_url(value: &str) -> bool {
    let v = value.trim();
    [
        "redis://",
        "rediss://",
        "redis+unix://",
        "unix://",
        "redis-cluster://",
        "rediss-cluster://",
    ]
    .iter()
    .any(|s| v.starts_with(s))
}

impl RedisTarget {
    /// Parses `url` with its `options`; `read` reads the password and CA files (tests pass
    /// their own). Errors are one line, never with the password.
    pub fn parse(url: &str, options: &RedisOptions) -> Result<RedisTarget, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{url}` is not a Redis URL"))?;
        let (cluster, tls, unix) = match scheme {
            "redis" => (false, false, false),
            "rediss" => (false, true, false),
            "redis+unix" | "unix" => (false, false, true),
            "redis-cluster" => (true, false, false),
            "rediss-cluster" => (true, true, false),
            other => return Err(format!("`{other}://` is not a Redis scheme")),
        };
        let mut target = RedisTarget {
            nodes: Vec::new(),
            cluster,
            tls,
            db: 0,
            username: None,
            password: None,
            ca_pem: None,
            prefix: options
                .prefix
                .clone()
                .unwrap_or_else(|| DEFAULT_PREFIX.into()),
            timeout: options.timeout.unwrap_or(DEFAULT_TIMEOUT),
            on_failure: options.on_failure.unwrap_or_default(),
        };
        if target.timeout.is_zero() {
            return Err("store_timeout must be more than zero".into());
        }
        let rest = if unix {
            target.parse_unix(rest)?
        } else {
            target.parse_tcp(rest)?
        };
        if let Some(q) = rest.filter(|q| !q.is_empty()) {
            return Err(format!("`{q}`: no query settings are read from the URL"));
        }
        if let Some(path) = &options.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("store password file {}: {e}", path.display()))?;
            // The first line, so that a file written by `echo` works; a password with a
            // newline in it is not one Redis accepts from a config file either.
            let password = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches('\r');
            if password.is_empty() {
                return Err(format!("store password file {} is empty", path.display()));
            }
            target.password = Some(Password::new(password));
        }
        if let Some(path) = &options.ca_file {
            if !tls {
                return Err("store_ca_file is only for rediss:// stores".into());
            }
            let pem = std::fs::read(path)
                .map_err(|e| format!("store CA file {}: {e}", path.display()))?;
            target.ca_pem = Some(pem);
        }
        Ok(target)
    }

    /// `[user@]/path[?db=N]`; returns the query when it says more than the db.
    fn parse_unix<'a>(&mut self, rest: &'a str) -> Result<Option<&'a str>, String> {
        let (authority, path_query) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        self.username = user(authority)?;
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_query, None),
        };
        if path.is_empty() {
            return Err(
                "a redis+unix:// URL needs a socket path (redis+unix:///run/redis.sock)".into(),
            );
        }
        self.nodes.push(Node::Unix(PathBuf::from(path)));
        let Some(query) = query else {
            return Ok(None);
        };
        match query.strip_prefix("db=") {
            Some(db) => {
                self.db = db
                    .parse()
                    .map_err(|_| format!("`db={db}` is not a database number"))?;
                Ok(None)
            }
            None => Ok(Some(query)),
        }
    }

    /// `[user@]host[:port][,host[:port]…][/db]`; returns any query.
    fn parse_tcp<'a>(&mut self, rest: &'a str) -> Result<Option<&'a str>, String> {
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, db) = match rest.split_once('/') {
            Some((a, d)) => (a, Some(d)),
            None => (rest, None),
        };
        let (hosts, name) = match authority.rsplit_once('@') {
            Some((u, h)) => (h, user(&format!("{u}@"))?),
            None => (authority, None),
        };
        self.username = name;
        for host in hosts.split(',') {
            self.nodes.push(node(host)?);
        }
        if self.nodes.len() > 1 && !self.cluster {
            return Err("several hosts need redis-cluster:// (h1:p1,h2:p2)".into());
        }
        if let Some(db) = db.filter(|d| !d.is_empty()) {
            self.db = db
                .parse()
                .ok()
                .filter(|n: &i64| *n >= 0)
                .ok_or_else(|| format!("`/{db}` is not a database number"))?;
            if self.cluster && self.db != 0 {
                return Err("a Redis Cluster has only database 0".into());
            }
        }
        Ok(query)
    }

    /// The prefixed key.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }
}

/// The user of `user@`, refusing `user:password@`.
fn user(authority: &str) -> Result<Option<String>, String> {
    let Some(userinfo) = authority.strip_suffix('@') else {
        return if authority.is_empty() {
            Ok(None)
        } else {
            Err(format!("`{authority}` is not `user@`"))
        };
    };
    if userinfo.contains(':') {
        return Err(
            "a password in the store URL would show in process listings and logs; put it in store_password_file"
                .into(),
        );
    }
    Ok((!userinfo.is_empty()).then(|| userinfo.to_string()))
}

fn node(text: &str) -> Result<Node, String> {
    let text = text.trim();
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{text}`: unclosed `[`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    let port = match port {
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{p}` is not a port"))?,
        None => 6379,
    };
    Ok(Node::Tcp {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<RedisTarget, String> {
        RedisTarget::parse(url, &RedisOptions::default())
    }

    #[test]
    fn every_form_parses_and_prints_without_secrets() {
        let t = parse("redis://repute@10.0.0.5:6380/2").expect("tcp");
        assert_eq!(
            (t.nodes.clone(), t.db, t.username.as_deref(), t.tls),
            (
                vec![Node::Tcp {
                    host: "10.0.0.5".into(),
                    port: 6380
                }],
                2,
                Some("repute"),
                false
            )
        );
        assert_eq!(t.to_string(), "redis://repute@10.0.0.5:6380/2");
        assert_eq!(
            parse("rediss://cache").expect("tls").to_string(),
            "rediss://cache:6379"
        );
        let u = parse("redis+unix:///run/redis/redis.sock?db=3").expect("unix");
        assert_eq!(u.nodes, vec![Node::Unix("/run/redis/redis.sock".into())]);
        assert_eq!(u.db, 3);
        let c = parse("redis-cluster://a:7000,b:7001,[::1]:7002").expect("cluster");
        assert!(c.cluster);
        assert_eq!(c.to_string(), "redis-cluster://a:7000,b:7001,[::1]:7002");
        assert_eq!(c.prefix, DEFAULT_PREFIX);
    }

    #[test]
    fn bad_urls_are_named_and_passwords_refused() {
        for (url, expected) in [
            ("redis://u:hunter2@h:1", "store_password_file"),
            ("redis://h:0", "not a port"),
            ("redis://h:1,h:2", "redis-cluster://"),
            ("redis-cluster://h:1/3", "database 0"),
            ("redis://h/x", "not a database"),
            ("redis+unix://", "socket path"),
            ("redis://h?timeout=3", "no query"),
            ("memcached://h", "not a Redis scheme"),
        ] {
            let err = parse(url).unwrap_err();
            assert!(err.contains(expected), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn the_password_comes_from_its_file_and_is_never_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret-pw\n").expect("write");
        let options = RedisOptions {
            password_file: Some(file),
            prefix: Some("site-a:".into()),
            ..RedisOptions::default()
        };
        let t = RedisTarget::parse("redis://app@h", &options).expect("parse");
        assert_eq!(t.password.as_ref().map(Password::expose), Some("s3cret-pw"));
        assert!(!format!("{t:?} {t}").contains("s3cret"));
        assert_eq!(t.key("rep:x"), "site-a:rep:x");
    }
}
