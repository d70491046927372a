//! A mock AbuseIPDB v2 on 127.0.0.1, hand-written on `std::net::TcpListener` so that every
//! fault can be injected at the socket level: statuses and bodies of every documented error,
//! HTML pages, a server that accepts and never answers, connection resets, quota 429s with
//! `Retry-After`, and a daily quota that runs out. It counts requests per path and per
//! address so tests can assert how many calls reached "AbuseIPDB".
//!
//! Answers follow the documented shapes (`{"data":{…}}`, JSON:API errors); the values are
//! this file's own. `118.25.6.39` answers like the documented example; any other address
//! gets a score derived from its text, and addresses whose score comes out 0 are "unknown"
//! (no reports). Use it in-process (`MockAbuseIpdb::start()`), or as a separate process
//! through `examples/mock_abuseipdb.rs`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a hanging connection is held (tests never wait this long: clients time out).
const MAX_HANG: Duration = Duration::from_secs(30);

/// A fault served instead of the normal answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status, body and extra headers.
    Status {
        status: u16,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// Read the request, then never answer (until the mock is dropped or `MAX_HANG`).
    Hang,
    /// Read the request, then reset the connection (RST).
    Reset,
    /// Read the request, then close without a byte.
    Close,
    /// Answer normally after a pause.
    Delay(Duration),
    /// A hostile server (or proxy) that echoes the request's `Key` header back: in a 422's
    /// `source.parameter` and `detail`.
    EchoKeyIn422,
    /// The same, in a normal-looking answer: `isp`, `domain`, `countryCode`, `hostnames`.
    EchoKeyInAnswer,
}

impl Fault {
    pub fn status(status: u16, body: &str) -> Fault {
        Fault::Status {
            status,
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    /// The documented 401 text.
    pub fn unauthorized() -> Fault {
        Fault::status(401, &error_body(401, AUTH_FAILED, None))
    }

    pub fn payment_required() -> Fault {
        Fault::status(
            402,
            &error_body(402, "Your plan does not allow this parameter.", None),
        )
    }

    pub fn unprocessable_ip() -> Fault {
        Fault::status(
            422,
            &error_body(
                422,
                "The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8 or 2001:4860:4860::8888).",
                Some("ipAddress"),
            ),
        )
    }

    /// The daily-quota 429 with the documented headers (`Retry-After` seconds from now).
    pub fn quota(retry_after: u64) -> Fault {
        let reset = now_secs() + retry_after;
        Fault::Status {
            status: 429,
            body: error_body(429, QUOTA_TEXT, None),
            headers: vec![
                ("Retry-After".into(), retry_after.to_string()),
                ("X-RateLimit-Limit".into(), "1000".into()),
                ("X-RateLimit-Remaining".into(), "0".into()),
                ("X-RateLimit-Reset".into(), reset.to_string()),
            ],
        }
    }

    /// A duplicate-report 429 for `ip`.
    pub fn duplicate_report(ip: &str) -> Fault {
        Fault::status(429, &duplicate_body(ip))
    }

    /// A 5xx with a JSON body.
    pub fn server_error(status: u16) -> Fault {
        Fault::status(status, &error_body(status, "Server Error", None))
    }

    /// An HTML page, as a proxy or an `Accept`-less request gets.
    pub fn html(status: u16) -> Fault {
        Fault::Status {
            status,
            body: "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
                   <body><h1>Bad Gateway</h1></body></html>"
                .into(),
            headers: vec![("Content-Type".into(), "text/html".into())],
        }
    }
}

const AUTH_FAILED: &str = "Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key.";
const QUOTA_TEXT: &str = "Daily rate limit of 1000 requests exceeded for this endpoint. See headers for additional details.";

/// One request as the mock saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string (still percent-encoded).
    pub query: String,
    /// Decoded query or form parameters.
    pub params: HashMap<String, String>,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    faults: VecDeque<Fault>,
    sticky: Option<Fault>,
    expected_key: Option<String>,
    /// Checks left today; `None` = unlimited.
    quota_left: Option<u64>,
    answers: HashMap<String, String>,
    seen: Vec<SeenRequest>,
    checks_per_ip: HashMap<String, u64>,
    report: ReportState,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    wake: Condvar,
    hang_lock: Mutex<()>,
}

/// The mock server; stops when dropped.
pub struct MockAbuseIpdb {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl MockAbuseIpdb {
    /// Starts on an ephemeral port of 127.0.0.1.
    pub fn start() -> MockAbuseIpdb {
        MockAbuseIpdb::start_on("127.0.0.1:0")
    }

    /// Starts on `bind`; panics when it cannot (tests want to stop there).
    pub fn start_on(bind: &str) -> MockAbuseIpdb {
        MockAbuseIpdb::try_start_on(bind).expect("bind the mock on loopback")
    }

    pub fn try_start_on(bind: &str) -> std::io::Result<MockAbuseIpdb> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
            hang_lock: Mutex::new(()),
        });
        let for_thread = Arc::clone(&shared);
        let accept = std::thread::spawn(move || accept_loop(listener, for_thread));
        Ok(MockAbuseIpdb {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base to configure (`http://127.0.0.1:PORT/api/v2`).
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v2", self.addr)
    }

    /// The check endpoint, as Wazuh's hook URL gives it.
    pub fn check_url(&self) -> String {
        format!("{}/check", self.base_url())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Only this key is accepted; any other gets the documented 401.
    pub fn expect_key(&self, key: &str) {
        self.state().expected_key = Some(key.to_string());
    }

    /// The next requests get these faults, in order, then normal answers again.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().faults.extend(faults);
    }

    /// Every request gets this fault until [`MockAbuseIpdb::clear_faults`].
    pub fn always(&self, fault: Fault) {
        self.state().sticky = Some(fault);
    }

    pub fn clear_faults(&self) {
        let mut s = self.state();
        s.faults.clear();
        s.sticky = None;
    }

    /// After `n` more checks the daily quota is spent (429 with headers).
    pub fn set_daily_quota(&self, n: u64) {
        self.state().quota_left = Some(n);
    }

    /// Serves this `data` object (JSON text) for `ip` instead of the derived answer.
    pub fn set_answer(&self, ip: &str, data_json: &str) {
        self.state()
            .answers
            .insert(ip.to_string(), data_json.to_string());
    }

    /// Every request seen, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state().seen.clone()
    }

    /// Number of requests to a path ending in `endpoint` (`check`, `report`, `blacklist`).
    pub fn count(&self, endpoint: &str) -> usize {
        let suffix = format!("/{endpoint}");
        self.state()
            .seen
            .iter()
            .filter(|r| r.path.ends_with(&suffix))
            .count()
    }

    /// Number of `check` requests for `ip` (as the client sent it).
    pub fn checks_for(&self, ip: &str) -> u64 {
        self.state().checks_per_ip.get(ip).copied().unwrap_or(0)
    }

    /// Every address checked, with its count.
    pub fn checks_per_ip(&self) -> HashMap<String, u64> {
        self.state().checks_per_ip.clone()
    }
}

impl Drop for MockAbuseIpdb {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        // Unblock `accept`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let _ = serve(stream, &shared);
        });
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let Some(request) = read_request(&stream)? else {
        return Ok(());
    };
    let fault = {
        let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        s.seen.push(request.clone());
        if request.path.ends_with("/check") {
            let ip = request.params.get("ipAddress").cloned().unwrap_or_default();
            *s.checks_per_ip.entry(ip).or_default() += 1;
        }
        s.faults.pop_front().or_else(|| s.sticky.clone())
    };
    match fault {
        Some(Fault::Hang) => {
            hang(shared);
            return Ok(());
        }
        Some(Fault::Reset) => {
            reset(&stream);
            return Ok(());
        }
        Some(Fault::Close) => {
            let _ = stream.shutdown(Shutdown::Both);
            return Ok(());
        }
        Some(Fault::Status {
            status,
            body,
            headers,
        }) => return respond(&mut stream, status, &body, &headers),
        Some(Fault::Delay(d)) => std::thread::sleep(d),
        Some(Fault::EchoKeyIn422) => {
            let key = request.headers.get("key").cloned().unwrap_or_default();
            let body = error_body(422, &format!("bad key {key}"), Some(&key));
            return respond(&mut stream, 422, &body, &[]);
        }
        Some(Fault::EchoKeyInAnswer) => {
            let key = request.headers.get("key").cloned().unwrap_or_default();
            let ip = request.params.get("ipAddress").cloned().unwrap_or_default();
            let key = json_string(&key);
            let body = format!(
                r#"{{"data":{{"ipAddress":{ip},"abuseConfidenceScore":100,"countryCode":{key},"isp":{key},"domain":{key},"usageType":{key},"hostnames":[{key}],"totalReports":3,"lastReportedAt":"2026-11-27T08:15:00+00:00"}}}}"#,
                ip = json_string(&ip)
            );
            return respond(&mut stream, 200, &body, &[]);
        }
        None => {}
    }
    let (status, body, headers) = answer(&request, shared);
    respond(&mut stream, status, &body, &headers)
}

fn hang(shared: &Shared) {
    let start = Instant::now();
    let mut guard = shared.hang_lock.lock().unwrap_or_else(|p| p.into_inner());
    while !shared.stop.load(Ordering::SeqCst) && start.elapsed() < MAX_HANG {
        guard = shared
            .wake
            .wait_timeout(guard, Duration::from_millis(200))
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

/// Closes with SO_LINGER 0, which sends a RST instead of a FIN.
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Option<SeenRequest>> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let mut params = parse_form(&query);
    params.extend(parse_body(&headers, &body));
    Ok(Some(SeenRequest {
        method,
        path,
        query,
        params,
        headers,
    }))
}

fn parse_form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The normal answer to a request.
fn answer(req: &SeenRequest, shared: &Shared) -> (u16, String, Vec<(String, String)>) {
    let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(expected) = &s.expected_key
        && req.headers.get("key") != Some(expected)
    {
        return (401, error_body(401, AUTH_FAILED, None), Vec::new());
    }
    if req.headers.get("accept").map(String::as_str) != Some("application/json") {
        return (
            200,
            "<html><body>Send Accept: application/json</body></html>".into(),
            Vec::new(),
        );
    }
    let endpoint = req.path.rsplit('/').next().unwrap_or_default().to_string();
    match (req.method.as_str(), endpoint.as_str()) {
        ("GET", "check") => check_answer(req, &mut s),
        ("POST", "report") => report_answer(req, &mut s.report),
        ("GET", "blacklist") => (200, BLACKLIST.to_string(), Vec::new()),
        _ => (404, error_body(404, "Not Found", None), Vec::new()),
    }
}

fn check_answer(req: &SeenRequest, s: &mut State) -> (u16, String, Vec<(String, String)>) {
    if let Some(left) = s.quota_left {
        if left == 0 {
            return quota_answer();
        }
        s.quota_left = Some(left - 1);
    }
    let ip = req.params.get("ipAddress").cloned().unwrap_or_default();
    let Ok(parsed) = ip.parse::<std::net::IpAddr>() else {
        let detail = "The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8 or 2001:4860:4860::8888).";
        return (422, error_body(422, detail, Some("ipAddress")), Vec::new());
    };
    let max_age: i64 = req
        .params
        .get("maxAgeInDays")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    if !(1..=365).contains(&max_age) {
        let body = error_body(422, "The max age in days must be between 1 and 365.", None);
        return (422, body, Vec::new());
    }
    let verbose = req.params.contains_key("verbose");
    let data = s
        .answers
        .get(&ip)
        .cloned()
        .unwrap_or_else(|| derived_answer(parsed, verbose));
    let remaining = s.quota_left.unwrap_or(999);
    let headers = vec![
        ("X-RateLimit-Limit".to_string(), "1000".to_string()),
        ("X-RateLimit-Remaining".to_string(), remaining.to_string()),
    ];
    (200, format!("{{\"data\":{data}}}"), headers)
}

fn quota_answer() -> (u16, String, Vec<(String, String)>) {
    match Fault::quota(3600) {
        Fault::Status {
            status,
            body,
            headers,
        } => (status, body, headers),
        _ => (429, String::new(), Vec::new()),
    }
}

/// The score the mock gives an address: stable, spread over 0..=100.
pub fn derived_score(ip: &str) -> u8 {
    let sum: u32 = ip.bytes().map(u32::from).sum();
    (sum.wrapping_mul(2_654_435_761) % 101) as u8
}

fn derived_answer(ip: std::net::IpAddr, verbose: bool) -> String {
    let text = ip.to_string();
    if text == "118.25.6.39" {
        return documented_example(verbose);
    }
    let score = derived_score(&text);
    let reports = u64::from(score) / 3;
    let last = if reports == 0 {
        "null".to_string()
    } else {
        "\"2026-11-27T08:15:00+00:00\"".to_string()
    };
    let version = if ip.is_ipv4() { 4 } else { 6 };
    format!(
        r#"{{"ipAddress":"{text}","isPublic":true,"ipVersion":{version},"isWhitelisted":false,
"abuseConfidenceScore":{score},"countryCode":"NL","usageType":"Fixed Line ISP","isp":"Example Networks B.V.",
"domain":"example.net","hostnames":[],"isTor":false,"totalReports":{reports},"numDistinctUsers":{users},
"lastReportedAt":{last},"someFutureField":{{"nested":[1,2]}}}}"#,
        users = reports.min(7)
    )
}

/// The documented check example's shape, with slashes escaped as the live API sends them.
fn documented_example(verbose: bool) -> String {
    let extra = if verbose {
        r#","countryName":"China","reports":[{"reportedAt":"2018-12-20T20:55:14+00:00","comment":"sshd: Invalid user admin from 118.25.6.39","categories":[18,22],"reporterId":1,"reporterCountryCode":"US","reporterCountryName":"United States"}]"#
    } else {
        ""
    };
    format!(
        r#"{{"ipAddress":"118.25.6.39","isPublic":true,"ipVersion":4,"isWhitelisted":false,"abuseConfidenceScore":100,"countryCode":"CN","usageType":"Data Center\/Web Hosting\/Transit","isp":"Tencent Cloud Computing (Beijing) Co. Ltd","domain":"tencent.com","hostnames":[],"isTor":false,"totalReports":1,"numDistinctUsers":1,"lastReportedAt":"2018-12-20T20:55:14+00:00"{extra}}}"#
    )
}

const BLACKLIST: &str = r#"{"meta":{"generatedAt":"2026-11-28T06:00:00+00:00"},"data":[
{"ipAddress":"203.0.113.200","abuseConfidenceScore":100,"lastReportedAt":"2026-11-28T05:59:01+00:00","countryCode":"US"},
{"ipAddress":"198.51.100.77","abuseConfidenceScore":100,"lastReportedAt":"2026-11-28T05:58:12+00:00"},
{"ipAddress":"2001:db8::66","abuseConfidenceScore":100,"lastReportedAt":null,"countryCode":null}]}"#;

pub fn error_body(status: u16, detail: &str, parameter: Option<&str>) -> String {
    let source = parameter
        .map(|p| format!(r#","source":{{"parameter":"{p}"}}"#))
        .unwrap_or_default();
    format!(
        r#"{{"errors":[{{"detail":{},"status":{status}{source}}}]}}"#,
        json_string(detail)
    )
}

fn duplicate_body(ip: &str) -> String {
    error_body(
        429,
        &format!("You can only report the same IP address (`{ip}`) once in 15 minutes."),
        Some("ip"),
    )
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    body: &str,
    headers: &[(String, String)],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let content_type = if headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        String::new()
    } else {
        "Content-Type: application/json\r\n".to_string()
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\n{content_type}Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---- The report endpoint: the 15-minute rule, its own quota, what was reported. ----

/// AbuseIPDB's window between two reports of one address.
pub const REPORT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// One report the mock accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedReport {
    pub ip: String,
    pub categories: String,
    pub comment: Option<String>,
    pub timestamp: Option<String>,
}

#[derive(Default)]
struct ReportState {
    /// When each address was last accepted (mock clock, see `advance_report_clock`).
    last_at: HashMap<String, Duration>,
    /// How far the mock's report clock has been moved forward.
    skew: Duration,
    /// Reports left today; `None` = unlimited.
    quota_left: Option<u64>,
    accepted: Vec<AcceptedReport>,
    duplicates: u64,
}

impl ReportState {
    fn now(&self) -> Duration {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        real + self.skew
    }
}

impl MockAbuseIpdb {
    /// Reports accepted (answered 200), in order.
    pub fn accepted_reports(&self) -> Vec<AcceptedReport> {
        self.state().report.accepted.clone()
    }

    /// Reports answered with the duplicate 429.
    pub fn duplicate_reports(&self) -> u64 {
        self.state().report.duplicates
    }

    /// After `n` more accepted reports the report endpoint's daily quota is spent.
    pub fn set_report_quota(&self, n: u64) {
        self.state().report.quota_left = Some(n);
    }

    /// Moves the report endpoint's clock forward (to step past the 15-minute window).
    pub fn advance_report_clock(&self, by: Duration) {
        self.state().report.skew += by;
    }
}

/// `POST /report`, as the real endpoint answers: 422 for a bad address or no category, the
/// duplicate 429 (`source.parameter: ip`) within 15 minutes of the last accepted report of
/// the address (and always for the test address 127.0.0.2), the quota 429 when the report
/// quota is spent, else 200 with the updated score and the rate-limit headers.
fn report_answer(req: &SeenRequest, s: &mut ReportState) -> (u16, String, Vec<(String, String)>) {
    let ip = req.params.get("ip").cloned().unwrap_or_default();
    if ip.parse::<std::net::IpAddr>().is_err() {
        let body = error_body(
            422,
            "The ip must be a valid IPv4 or IPv6 address.",
            Some("ip"),
        );
        return (422, body, Vec::new());
    }
    let categories = req.params.get("categories").cloned().unwrap_or_default();
    let valid = !categories.is_empty()
        && categories
            .split(',')
            .all(|c| c.trim().parse::<u8>().is_ok_and(|n| (1..=23).contains(&n)));
    if !valid {
        let body = error_body(
            422,
            "The categories must be valid category ids.",
            Some("categories"),
        );
        return (422, body, Vec::new());
    }
    let now = s.now();
    let recent = s
        .last_at
        .get(&ip)
        .is_some_and(|at| now.saturating_sub(*at) < REPORT_WINDOW);
    if ip == "127.0.0.2" || recent {
        s.duplicates += 1;
        return (429, duplicate_body(&ip), Vec::new());
    }
    if let Some(left) = s.quota_left {
        if left == 0 {
            return quota_answer();
        }
        s.quota_left = Some(left - 1);
    }
    s.last_at.insert(ip.clone(), now);
    s.accepted.push(AcceptedReport {
        ip: ip.clone(),
        categories,
        comment: req.params.get("comment").cloned(),
        timestamp: req.params.get("timestamp").cloned(),
    });
    let remaining = s.quota_left.unwrap_or(999);
    let headers = vec![
        ("X-RateLimit-Limit".to_string(), "1000".to_string()),
        ("X-RateLimit-Remaining".to_string(), remaining.to_string()),
    ];
    let body = format!(r#"{{"data":{{"ipAddress":"{ip}","abuseConfidenceScore":52}}}}"#);
    (200, body, headers)
}

/// The body's parameters: a JSON object (`Content-Type: application/json`; arrays of
/// categories joined with commas, numbers as text) or a form.
fn parse_body(headers: &HashMap<String, String>, body: &[u8]) -> HashMap<String, String> {
    let is_json = headers
        .get("content-type")
        .is_some_and(|t| t.starts_with("application/json"));
    if !is_json {
        return parse_form(&String::from_utf8_lossy(body));
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return HashMap::new();
    };
    map.into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(t) => t,
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(t) => t.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            (k, text)
        })
        .collect()
}

/// The mock, listening on the own loopback of a network namespace a test made (the
/// namespace's `/proc/…/ns/net` or bind-mount path): sockets belong to the namespace of the
/// thread that makes them, so a thread that entered it starts, and later stops, the mock.
pub struct MockInNetns {
    mock: Option<MockAbuseIpdb>,
    ns: std::path::PathBuf,
}

impl MockInNetns {
    pub fn start(ns: &std::path::Path) -> MockInNetns {
        MockInNetns {
            mock: Some(in_netns(ns, MockAbuseIpdb::start)),
            ns: ns.to_path_buf(),
        }
    }

    pub fn api(&self) -> &MockAbuseIpdb {
        self.mock.as_ref().expect("running mock")
    }
}

/// Runs `job` on a short-lived thread that entered the network namespace at `ns`.
pub fn in_netns<T: Send + 'static>(
    ns: &std::path::Path,
    job: impl FnOnce() -> T + Send + 'static,
) -> T {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(ns).expect("open the namespace");
    std::thread::spawn(move || {
        // SAFETY: setns(2) on a valid descriptor; it changes only this short-lived thread.
        let entered = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
        job()
    })
    .join()
    .expect("a job inside the namespace")
}

impl std::ops::Deref for MockInNetns {
    type Target = MockAbuseIpdb;
    fn deref(&self) -> &MockAbuseIpdb {
        self.api()
    }
}

impl Drop for MockInNetns {
    fn drop(&mut self) {
        if let Some(mock) = self.mock.take() {
            in_netns(&self.ns, move || drop(mock));
        }
    }
}
