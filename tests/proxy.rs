//! Reaching AbuseIPDB through a company proxy (issue 10 item 14), end to end on loopback: a
//! small CONNECT proxy written here, and an HTTPS mock whose certificate is signed by a CA
//! made for the test (rcgen), which only the `ca_file` setting makes trusted. The tests prove
//! that the request went through the proxy, that the CA bundle was what made TLS work, that
//! `NO_PROXY` and `proxy = "none"` are honoured, and that the proxy never saw the key: it
//! travels in a header inside the tunnel, never in the `CONNECT` line or its headers.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::wazuh_tree::{WazuhTree, args_4_8, split_message};

const KEY: &str =
    "proxykeycanary000000000000000000000000000000000000000000000000000000000000000042";
const MARKER: &str = "proxykeycanary";
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const PROXY_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Reads an HTTP head (up to the blank line), at most 64 KiB.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || head.len() > 65_536 {
            break;
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    Ok(head)
}

/// Accepts connections on a non-blocking listener until `stop`, each on its own thread.
fn serve_until(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    handle: impl Fn(TcpStream) + Send + Sync + 'static,
) {
    listener.set_nonblocking(true).expect("nonblocking");
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
                    let handle = Arc::clone(&handle);
                    std::thread::spawn(move || handle(stream));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
}

/// An HTTPS AbuseIPDB on 127.0.0.1 (certificate for `localhost`), recording what it was sent.
struct TlsMock {
    addr: SocketAddr,
    ca_pem: String,
    /// Every request head received (inside TLS).
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl TlsMock {
    fn start() -> TlsMock {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "repute test proxy CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().expect("server key");
        let server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("server cert");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![server_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
            )
            .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&heads);
        serve_until(listener, Arc::clone(&stop), move |tcp| {
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                return;
            };
            let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
            let Ok(head) = read_head(&mut tls) else {
                return;
            };
            if head.is_empty() {
                return;
            }
            seen.lock().expect("lock").push(head.clone());
            let ip = head
                .split("ipAddress=")
                .nth(1)
                .and_then(|rest| rest.split(['&', ' ']).next())
                .unwrap_or("0.0.0.0")
                .to_string();
            let body = format!(
                r#"{{"data":{{"ipAddress":"{ip}","abuseConfidenceScore":77,"countryCode":"NL","isp":"Proxied Networks","totalReports":4,"lastReportedAt":"2026-11-27T08:15:00+00:00"}}}}"#
            );
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let stream = tls.get_mut();
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.flush();
            stream.conn.send_close_notify();
            let _ = stream.flush();
        });
        TlsMock {
            addr,
            ca_pem: ca_cert.pem(),
            heads,
            stop,
        }
    }

    /// The API base as a client must name it (the certificate is for `localhost`).
    fn base_url(&self) -> String {
        format!("https://localhost:{}/api/v2", self.addr.port())
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }
}

impl Drop for TlsMock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A CONNECT proxy on 127.0.0.1 that only tunnels to `localhost` or `127.0.0.1` (so no test
/// traffic can leave the machine), recording each CONNECT head and every byte it relayed.
struct ConnectProxy {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    relayed: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let relayed = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, bytes) = (Arc::clone(&heads), Arc::clone(&relayed));
        serve_until(listener, Arc::clone(&stop), move |client| {
            let mut reader = BufReader::new(client.try_clone().expect("clone"));
            let Ok(head) = read_head(&mut reader) else {
                return;
            };
            seen.lock().expect("lock").push(head.clone());
            let target = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let port = target.rsplit_once(':').and_then(|(host, port)| {
                matches!(host, "localhost" | "127.0.0.1")
                    .then(|| port.parse::<u16>().ok())
                    .flatten()
            });
            let mut client = client;
            let Some(port) = port.filter(|_| head.starts_with("CONNECT ")) else {
                let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
                return;
            };
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                return;
            };
            let _ = upstream.set_read_timeout(Some(IO_TIMEOUT));
            let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            // Bytes the client sent after the head are already in `reader`'s buffer.
            let pending = reader.buffer().to_vec();
            let mut up_writer = upstream.try_clone().expect("clone");
            let _ = up_writer.write_all(&pending);
            bytes.lock().expect("lock").extend_from_slice(&pending);
            let relay_bytes = Arc::clone(&bytes);
            let mut client_reader = reader.into_inner();
            let to_upstream = std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = client_reader.read(&mut buf) {
                    if n == 0 || up_writer.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    relay_bytes
                        .lock()
                        .expect("lock")
                        .extend_from_slice(&buf[..n]);
                }
                let _ = up_writer.shutdown(Shutdown::Write);
            });
            let mut upstream_reader = upstream;
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = upstream_reader.read(&mut buf) {
                if n == 0 || client.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = client.shutdown(Shutdown::Write);
            let _ = to_upstream.join();
        });
        ConnectProxy {
            addr,
            heads,
            relayed,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }

    fn relayed(&self) -> Vec<u8> {
        self.relayed.lock().expect("lock").clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `repute check --format json IP` against `mock`, with only the environment given.
fn check(dir: &Path, mock: &TlsMock, env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repute"));
    for var in PROXY_VARS.iter().chain(&[
        "ABUSEIPDB_API_KEY_FILE",
        "REPUTE_CONFIG",
        "REPUTE_PROXY",
        "REPUTE_CA_FILE",
    ]) {
        cmd.env_remove(var);
    }
    cmd.env("ABUSEIPDB_API_KEY", KEY)
        .env("ABUSEIPDB_API_URL", mock.base_url())
        .env("REPUTE_CACHE", "none")
        .env("REPUTE_STATE_DIR", dir.join("state"))
        .env("REPUTE_TIMEOUT", "8s")
        .env("RUST_LOG", "trace");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["check", "--format", "json", "45.33.32.156"])
        .output()
        .expect("run repute")
}

fn all_output(out: &Output) -> Vec<u8> {
    let mut all = out.stdout.clone();
    all.extend_from_slice(&out.stderr);
    all
}

struct Setup {
    dir: tempfile::TempDir,
    mock: TlsMock,
    proxy: ConnectProxy,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        let mock = TlsMock::start();
        std::fs::write(dir.path().join("ca.pem"), &mock.ca_pem).expect("CA file");
        Setup {
            dir,
            mock,
            proxy: ConnectProxy::start(),
        }
    }

    fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }
}

#[test]
fn https_proxy_and_the_ca_bundle_carry_the_lookup_and_the_proxy_never_sees_the_key() {
    let s = Setup::new();
    let out = check(
        s.dir.path(),
        &s.mock,
        &[
            ("HTTPS_PROXY", s.proxy.url()),
            ("REPUTE_CA_FILE", s.ca_file()),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\"abuse_confidence_score\":77"), "{text}");
    assert!(
        text.contains("Proxied Networks"),
        "the TLS mock answered: {text}"
    );
    // Through the proxy: one CONNECT to the API's host and port, nothing else.
    let heads = s.proxy.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let connect = format!("CONNECT localhost:{} HTTP/1.1\r\n", s.mock.addr.port());
    assert!(heads[0].starts_with(&connect), "{heads:?}");
    // The key reached the server, in its header, and never the proxy.
    let server_heads = s.mock.heads();
    assert_eq!(server_heads.len(), 1, "{server_heads:?}");
    assert!(
        server_heads[0].contains(&format!("key: {KEY}"))
            || server_heads[0].contains(&format!("Key: {KEY}")),
        "{server_heads:?}"
    );
    assert!(
        !server_heads[0]
            .lines()
            .next()
            .unwrap_or_default()
            .contains(MARKER)
    );
    assert!(!contains(heads[0].as_bytes(), MARKER), "{heads:?}");
    let relayed = s.proxy.relayed();
    assert!(!relayed.is_empty(), "the tunnel carried the TLS session");
    assert!(
        !contains(&relayed, MARKER),
        "the proxy saw the key in clear"
    );
    assert!(!contains(&all_output(&out), MARKER));
}

#[test]
fn without_the_ca_bundle_the_proxied_tls_is_refused() {
    let s = Setup::new();
    let out = check(s.dir.path(), &s.mock, &[("HTTPS_PROXY", s.proxy.url())]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("provider-failed"), "{text}");
    // Through the proxy (once, or twice with the retry a transport failure gets).
    assert!(!s.proxy.heads().is_empty(), "it did go through the proxy");
    assert!(
        s.mock.heads().is_empty(),
        "no request without a trusted certificate"
    );
}

#[test]
fn no_proxy_and_proxy_none_go_direct() {
    let s = Setup::new();
    for env in [
        vec![
            ("HTTPS_PROXY", s.proxy.url()),
            ("NO_PROXY", "example.org, localhost".to_string()),
            ("REPUTE_CA_FILE", s.ca_file()),
        ],
        vec![
            ("HTTPS_PROXY", s.proxy.url()),
            ("REPUTE_PROXY", "none".to_string()),
            ("REPUTE_CA_FILE", s.ca_file()),
        ],
        // HTTP_PROXY is for http:// targets only, as curl and requests read it.
        vec![
            ("HTTP_PROXY", s.proxy.url()),
            ("REPUTE_CA_FILE", s.ca_file()),
        ],
    ] {
        let out = check(s.dir.path(), &s.mock, &env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{env:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(s.proxy.heads().is_empty(), "{:?}", s.proxy.heads());
    assert_eq!(s.mock.heads().len(), 3);
}

#[test]
fn the_proxy_setting_wins_and_its_password_is_never_shown() {
    let s = Setup::new();
    let password = "proxyPassw0rdCanary";
    let with_auth = format!("http://alice:{password}@{}", s.proxy.addr);
    let out = check(
        s.dir.path(),
        &s.mock,
        &[("REPUTE_PROXY", with_auth), ("REPUTE_CA_FILE", s.ca_file())],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.proxy.heads().len(), 1);
    assert!(
        !contains(&all_output(&out), password),
        "the proxy password was shown"
    );
}

#[test]
fn a_bad_ca_file_or_proxy_is_a_one_line_error_naming_it() {
    let s = Setup::new();
    let not_pem = s.dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").expect("write");
    for (env, expected) in [
        (
            vec![("REPUTE_CA_FILE", not_pem.display().to_string())],
            "no PEM certificate",
        ),
        (
            vec![("REPUTE_CA_FILE", "/nonexistent/ca.pem".to_string())],
            "/nonexistent/ca.pem",
        ),
        (
            vec![("REPUTE_PROXY", "socks5://127.0.0.1:1080".to_string())],
            "REPUTE_PROXY",
        ),
    ] {
        let out = check(s.dir.path(), &s.mock, &env);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{env:?}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.contains(expected), "{env:?}: {err}");
    }
    assert!(s.mock.heads().is_empty());
}

/// The integration reads `proxy` and `ca_file` from its options file (integratord's
/// `<options>`), and the environment's proxy as every door does.
#[test]
fn the_integration_goes_through_the_proxy_with_its_options() {
    let s = Setup::new();
    let tree = WazuhTree::new();
    tree.install_binary("custom-abuseipdb");
    let options = tree.path().join("tmp/x.options");
    std::fs::write(
        &options,
        serde_json::json!({ "proxy": s.proxy.url(), "ca_file": s.ca_file(), "cache": "none" })
            .to_string(),
    )
    .expect("options");
    let alert = tree.write_alert(
        "a.alert",
        r#"{"rule":{"level":10,"id":"100001"},"agent":{"id":"000","name":"m"},"id":"1.2","data":{"srcip":"45.33.32.157"}}"#,
    );
    let hook = format!("{}/check", s.mock.base_url());
    let mut args = args_4_8(alert.to_str().expect("utf8"), KEY, &hook);
    args[4] = options.display().to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = tree.integratord_command("custom-abuseipdb", &args);
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run the integration");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}",
        String::from_utf8_lossy(&out.stderr),
        tree.log()
    );
    let got = tree.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1, "{}", tree.log());
    let (_, event) = split_message(&got[0]);
    assert_eq!(event["abuseipdb"]["abuse_confidence_score"], 77, "{event}");
    assert_eq!(s.proxy.heads().len(), 1);
    assert!(!contains(&s.proxy.relayed(), MARKER));
}
