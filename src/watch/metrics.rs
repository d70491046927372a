//! Prometheus metrics of `repute watch`, and the small HTTP server that serves them.
//!
//! Names start with `repute_`, values are in base units (seconds), and no label ever holds
//! an address (an attacker choosing label values would grow the scrape without bound):
//! labels are source names (configured by the operator), event kinds and outcomes (closed
//! sets) and lookup answer sources. The server is one thread answering one request at a time
//! with a read timeout: a scrape is a few kilobytes, and nothing else is served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

type Labels = Vec<(&'static str, String)>;

/// Every metric watch keeps.
pub struct Metrics {
    registry: Registry,
    pub lines: Family<Labels, Counter>,
    pub events: Family<Labels, Counter>,
    pub lookups: Family<Labels, Counter>,
    pub bans: Counter,
    pub bans_active: Gauge,
    pub unbans: Counter,
    pub refused: Counter,
    pub tracked: Gauge,
    pub evicted: Counter,
    pub quota_remaining: Gauge,
    pub decision_latency: Histogram,
    /// Fleet: bans decided elsewhere and enforced here.
    pub fleet_bans: Counter,
    /// Fleet: store errors (following or recording); each is retried with backoff.
    pub fleet_errors: Counter,
    /// Fleet: 1 while the shared store answers, 0 while it fails (-1: no shared store).
    pub fleet_connected: Gauge,
    /// Fleet: own bans waiting to be recorded in the shared store.
    pub fleet_unshared: Gauge,
    /// Reports sent to AbuseIPDB, by result.
    pub reports: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("repute");
        let lines = Family::<Labels, Counter>::default();
        let events = Family::<Labels, Counter>::default();
        let lookups = Family::<Labels, Counter>::default();
        let (bans, unbans, refused, evicted) = (
            Counter::default(),
            Counter::default(),
            Counter::default(),
            Counter::default(),
        );
        let (bans_active, tracked, quota_remaining) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        // 50 µs to ~1.6 s.
        let decision_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register("lines_read", "Lines read, per source", lines.clone());
        registry.register(
            "events",
            "sshd authentication events, by kind and outcome",
            events.clone(),
        );
        registry.register(
            "lookups",
            "Reputation lookups, by where the answer came from",
            lookups.clone(),
        );
        registry.register("bans", "Bans decided", bans.clone());
        registry.register("bans_active", "Bans running now", bans_active.clone());
        registry.register("unbans", "Bans ended", unbans.clone());
        registry.register(
            "bans_refused",
            "Bans refused by a safety check (allowlist, own address, not public, full set)",
            refused.clone(),
        );
        registry.register(
            "tracked_addresses",
            "Addresses or IPv6 networks remembered by the policy",
            tracked.clone(),
        );
        registry.register(
            "evicted_addresses",
            "Addresses or networks forgotten to keep memory bounded",
            evicted.clone(),
        );
        registry.register(
            "quota_remaining",
            "AbuseIPDB check quota left, as last announced (-1: unknown)",
            quota_remaining.clone(),
        );
        quota_remaining.set(-1);
        registry.register_with_unit(
            "decision_latency",
            "From reading a line to its decision, before the firewall call",
            Unit::Seconds,
            decision_latency.clone(),
        );
        let (fleet_bans, fleet_errors) = (Counter::default(), Counter::default());
        let (fleet_connected, fleet_unshared) = (Gauge::default(), Gauge::default());
        let reports = Family::<Labels, Counter>::default();
        registry.register(
            "fleet_bans",
            "Bans decided by another host (or by hand) and enforced here",
            fleet_bans.clone(),
        );
        registry.register(
            "fleet_store_errors",
            "Errors of the shared decision store (retried with backoff)",
            fleet_errors.clone(),
        );
        registry.register(
            "fleet_store_up",
            "1 while the shared decision store answers, 0 while it fails, -1 with none",
            fleet_connected.clone(),
        );
        fleet_connected.set(-1);
        registry.register(
            "fleet_unshared_bans",
            "Own bans waiting to be recorded in the shared store",
            fleet_unshared.clone(),
        );
        registry.register(
            "reports",
            "Reports of banned addresses to AbuseIPDB, by result",
            reports.clone(),
        );
        Metrics {
            fleet_bans,
            fleet_errors,
            fleet_connected,
            fleet_unshared,
            reports,
            registry,
            lines,
            events,
            lookups,
            bans,
            bans_active,
            unbans,
            refused,
            tracked,
            evicted,
            quota_remaining,
            decision_latency,
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics` on `addr` from a thread; returns the address bound (port 0 picks
/// one).
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &metrics) {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            }
        })?;
    Ok(bound)
}

fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    // The request line and headers; anything past 8 KiB is not a scrape.
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let first = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let mut words = first.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, kind, body) = match (method, target) {
        ("GET", "/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "try /metrics\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_over_tcp_with_the_prefix_and_no_address_label() {
        let metrics = Arc::new(Metrics::new());
        metrics
            .lines
            .get_or_create(&vec![("source", "file:/var/log/auth.log".to_string())])
            .inc();
        metrics.decision_latency.observe(0.0003);
        let addr = serve("127.0.0.1:0".parse().expect("addr"), Arc::clone(&metrics)).expect("bind");
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("read");
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(
            reply.contains("repute_lines_read_total{source=\"file:/var/log/auth.log\"} 1"),
            "{reply}"
        );
        assert!(
            reply.contains("repute_decision_latency_seconds_count 1"),
            "{reply}"
        );
        assert!(reply.contains("repute_quota_remaining -1"), "{reply}");
    }
}
