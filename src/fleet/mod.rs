//! The fleet store: one Redis (or Redis Cluster) shared by every host and every Wazuh manager.
//!
//! SQLite stays the embedded default; a Redis store serves the same traits
//! ([`crate::cache::ReputationCache`] and [`crate::quota::QuotaStore`] through [`RedisStore`],
//! [`crate::decisions::Decisions`] through
//! [`crate::decisions::RedisDecisions`]) so that several managers spend one quota and see one
//! cache, a ban decided on any host reaches every host, and [`RedisLedger`] keeps the report
//! marks of AbuseIPDB's 15-minute rule for the whole fleet. [`target`] parses the `store`
//! setting; [`Link`] is one connection with its timeouts and its failure memory.
//!
//! Failure is normal here. Every connection has a connect timeout and a read/write timeout
//! (never unbounded), and a link that failed stays down for a short, growing pause in which
//! every call fails at once: a per-alert process pays one timeout at most, then runs without
//! the store; a daemon retries with backoff. The sync API of the `redis` crate is used, so the
//! per-alert path builds no async runtime.

mod ledger;
mod store;
pub mod target;

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use ledger::RedisLedger;
pub use store::RedisStore;
pub use target::{OnStoreFailure, RedisOptions, RedisTarget};

use crate::store::StoreError;
use redis::ConnectionLike;

/// The first pause after a failure; doubled on each failure up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(30);

enum Conn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Conn {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => c.as_mut(),
        }
    }
}

struct LinkState {
    conn: Option<Conn>,
    /// No attempt before this instant (after a failure).
    down_until: Option<Instant>,
    pause: Duration,
    last_error: String,
}

/// One connection to the store, made on first use and remade after a failure (after a pause).
pub struct Link {
    target: RedisTarget,
    /// Bound on each answer; longer than the target's timeout for blocking reads.
    read_timeout: Duration,
    state: Mutex<LinkState>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("target", &self.target.to_string())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link to `target`; nothing is connected until the first call.
    pub fn new(target: RedisTarget) -> Link {
        let read_timeout = target.timeout;
        Link::with_read_timeout(target, read_timeout)
    }

    /// A link whose answers may take up to `read_timeout` (for `XREAD BLOCK`).
    pub fn with_read_timeout(target: RedisTarget, read_timeout: Duration) -> Link {
        Link {
            target,
            read_timeout,
            state: Mutex::new(LinkState {
                conn: None,
                down_until: None,
                pause: FIRST_PAUSE,
                last_error: String::new(),
            }),
        }
    }

    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// Connects now (and checks with a PING), so that a store down at start is known at once.
    pub fn connect(&self) -> Result<(), StoreError> {
        self.run(|c| redis::cmd("PING").query::<String>(c).map(drop))
    }

    /// Runs `f` on the connection. A failure that says the connection is gone (I/O, timeout,
    /// refused, cluster down) drops it and starts a pause; an error Redis answered (a script
    /// error, a wrong type) leaves the connection as it is.
    pub fn run<T>(
        &self,
        f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = state.down_until
            && Instant::now() < until
        {
            return Err(StoreError::Down {
                store: self.target.to_string(),
                detail: state.last_error.clone(),
            });
        }
        if state.conn.is_none() {
            match self.open() {
                Ok(conn) => state.conn = Some(conn),
                Err(e) => return Err(self.fail(&mut state, e)),
            }
        }
        let Some(conn) = state.conn.as_mut() else {
            return Err(StoreError::Down {
                store: self.target.to_string(),
                detail: "not connected".into(),
            });
        };
        match f(conn.as_dyn()) {
            Ok(v) => {
                state.down_until = None;
                state.pause = FIRST_PAUSE;
                Ok(v)
            }
            Err(e) if is_connection_failure(&e) => Err(self.fail(&mut state, e)),
            Err(e) => Err(StoreError::Redis {
                store: self.target.to_string(),
                detail: e.to_string(),
            }),
        }
    }

    fn fail(&self, state: &mut LinkState, e: redis::RedisError) -> StoreError {
        state.conn = None;
        state.last_error = e.to_string();
        state.down_until = Some(Instant::now() + state.pause);
        tracing::warn!(store = %self.target, error = %e, pause_ms = state.pause.as_millis() as u64,
            "store unreachable; working without it for a while");
        state.pause = (state.pause * 2).min(MAX_PAUSE);
        StoreError::Down {
            store: self.target.to_string(),
            detail: e.to_string(),
        }
    }

    fn open(&self) -> redis::RedisResult<Conn> {
        let t = &self.target;
        let redis_info = {
            let mut r = redis::RedisConnectionInfo::default()
                .set_db(t.db)
                .set_skip_set_lib_name();
            if let Some(user) = &t.username {
                r = r.set_username(user);
            }
            if let Some(pw) = &t.password {
                r = r.set_password(pw.expose());
            }
            r
        };
        let tls_certs = || redis::TlsCertificates {
            client_tls: None,
            root_cert: t.ca_pem.clone(),
        };
        let infos: Vec<redis::ConnectionInfo> = t
            .nodes
            .iter()
            .map(|node| {
                let addr = match node {
                    target::Node::Tcp { host, port } if t.tls => redis::ConnectionAddr::TcpTls {
                        host: host.clone(),
                        port: *port,
                        insecure: false,
                        tls_params: None,
                    },
                    target::Node::Tcp { host, port } => {
                        redis::ConnectionAddr::Tcp(host.clone(), *port)
                    }
                    target::Node::Unix(path) => redis::ConnectionAddr::Unix(path.clone()),
                };
                redis::IntoConnectionInfo::into_connection_info(addr)
                    .map(|i| i.set_redis_settings(redis_info.clone()))
            })
            .collect::<redis::RedisResult<_>>()?;
        if t.cluster {
            let mut builder = redis::cluster::ClusterClientBuilder::new(infos)
                .connection_timeout(t.timeout)
                .response_timeout(self.read_timeout)
                // A failover takes seconds; a per-alert process cannot wait for it, and a
                // daemon retries on its own schedule.
                .retries(1)
                .min_retry_wait(10)
                .max_retry_wait(100);
            if let Some(user) = &t.username {
                builder = builder.username(user);
            }
            if let Some(pw) = &t.password {
                builder = builder.password(pw.expose());
            }
            if t.tls {
                builder = builder.tls(redis::cluster::TlsMode::Secure);
                if t.ca_pem.is_some() {
                    builder = builder.certs(tls_certs());
                }
            }
            let conn = builder.build()?.get_connection()?;
            conn.set_write_timeout(Some(t.timeout))?;
            conn.set_read_timeout(Some(self.read_timeout))?;
            Ok(Conn::Cluster(Box::new(conn)))
        } else {
            let info = infos.into_iter().next().ok_or_else(|| {
                redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no node"))
            })?;
            let client = if t.tls && t.ca_pem.is_some() {
                redis::Client::build_with_tls(info, tls_certs())?
            } else {
                redis::Client::open(info)?
            };
            let conn = client.get_connection_with_timeout(t.timeout)?;
            conn.set_write_timeout(Some(t.timeout))?;
            conn.set_read_timeout(Some(self.read_timeout))?;
            Ok(Conn::Single(conn))
        }
    }
}

/// True when the error means the connection (or the cluster) is unusable, as opposed to an
/// answer Redis gave to one command.
fn is_connection_failure(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            redis::ErrorKind::AuthenticationFailed
                | redis::ErrorKind::InvalidClientConfig
                | redis::ErrorKind::ClusterConnectionNotFound
        )
}
