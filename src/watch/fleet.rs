//! Watch's side of the fleet: its own bans recorded in the shared decision store, the other
//! hosts' bans (and `repute block add/del` anywhere) followed from it.
//!
//! Two threads, so that a slow or absent Redis never holds up reading and deciding: the
//! recorder writes this host's bans (a queue, retried with backoff while the store fails, so
//! a ban decided during an outage is shared when it returns), and the follower runs
//! [`decisions::follow`] (a snapshot first, then the change log; a snapshot again after any
//! error, which is how a host resyncs after a reconnect). The main loop drains the follower's
//! updates each round and enforces them (see `Core::apply_fleet`). While the store fails,
//! watch goes on enforcing its own decisions; the log says so once per failure and the
//! `repute_fleet_store_up` / `repute_fleet_store_errors` metrics show it.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::decisions::{self, Ban, Decisions, Update};

use super::metrics::Metrics;

/// How long the follower waits on the change log per poll: with the main loop's own wait,
/// a ban decided elsewhere is enforced well within the fleet's 2 s.
const FOLLOW_WAIT: Duration = Duration::from_secs(1);
/// Own bans kept for the store while it fails; past that the oldest are dropped (they are
/// enforced here regardless).
const MAX_UNSHARED: usize = 10_000;
/// The recorder's first pause after a failure; doubled up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// The running fleet threads of one watch.
pub struct Fleet {
    updates: Receiver<Update>,
    own: Sender<Ban>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// This host's name in the decisions it records.
    pub origin: String,
    /// Addresses enforced here because of a decision made elsewhere (or by hand): a snapshot
    /// that no longer holds one means it was revoked.
    pub remote: HashSet<IpAddr>,
}

impl Fleet {
    /// Starts the recorder and the follower on `store`.
    pub fn start(store: Arc<dyn Decisions>, metrics: Arc<Metrics>) -> Fleet {
        let stop = Arc::new(AtomicBool::new(false));
        let (own, own_rx) = channel::<Ban>();
        let (updates_tx, updates) = channel::<Update>();
        metrics.fleet_connected.set(1);
        let recorder = {
            let (store, stop, metrics) =
                (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&metrics));
            std::thread::spawn(move || record_loop(store.as_ref(), &stop, &own_rx, &metrics))
        };
        let follower = {
            let (stop, m_ok, m_err) = (Arc::clone(&stop), Arc::clone(&metrics), metrics);
            std::thread::spawn(move || {
                let mut failing = false;
                decisions::follow(
                    store.as_ref(),
                    &stop,
                    FOLLOW_WAIT,
                    |update| {
                        if std::mem::take(&mut failing) {
                            tracing::info!("shared decision store back; resynced");
                        }
                        m_ok.fleet_connected.set(1);
                        let _ = updates_tx.send(update);
                    },
                    |e| {
                        m_err.fleet_errors.inc();
                        m_err.fleet_connected.set(0);
                        tracing::warn!(
                            error = %e,
                            "shared decision store unavailable: enforcing this host's own \
                             decisions, retrying with backoff"
                        );
                    },
                );
            })
        };
        Fleet {
            updates,
            own,
            stop,
            threads: vec![recorder, follower],
            origin: decisions::this_host(),
            remote: HashSet::new(),
        }
    }

    /// Hands one of this host's bans to the recorder (never blocks).
    pub fn share(&self, ban: Ban) {
        let _ = self.own.send(ban);
    }

    /// The updates the follower has read since the last call.
    pub fn updates(&self) -> Vec<Update> {
        self.updates.try_iter().collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Both threads see `stop` within a poll (about a second).
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn record_loop(store: &dyn Decisions, stop: &AtomicBool, own: &Receiver<Ban>, metrics: &Metrics) {
    let mut pending: VecDeque<Ban> = VecDeque::new();
    let mut pause = FIRST_PAUSE;
    let mut retry_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let wait = retry_at
            .map_or(Duration::from_millis(200), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(200));
        match own.recv_timeout(wait) {
            Ok(ban) => pending.push_back(ban),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        pending.extend(own.try_iter());
        while pending.len() > MAX_UNSHARED {
            pending.pop_front();
        }
        if retry_at.is_some_and(|t| Instant::now() < t) {
            metrics.fleet_unshared.set(pending.len() as i64);
            continue;
        }
        let now_ms = crate::store::now_ms();
        while let Some(ban) = pending.front() {
            if ban.until_ms <= now_ms {
                pending.pop_front();
                continue;
            }
            match store.record(ban) {
                Ok(_) => {
                    pending.pop_front();
                    if retry_at.take().is_some() {
                        tracing::info!("shared decision store back; own bans recorded");
                    }
                    pause = FIRST_PAUSE;
                }
                Err(e) => {
                    metrics.fleet_errors.inc();
                    metrics.fleet_connected.set(0);
                    tracing::warn!(
                        error = %e,
                        waiting = pending.len(),
                        retry_in_ms = pause.as_millis() as u64,
                        "cannot record this host's bans in the shared store; enforcing them \
                         here, retrying with backoff"
                    );
                    retry_at = Some(Instant::now() + pause);
                    pause = (pause * 2).min(MAX_PAUSE);
                    break;
                }
            }
        }
        metrics.fleet_unshared.set(pending.len() as i64);
    }
}
