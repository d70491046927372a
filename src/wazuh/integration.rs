//! One integration run, as integratord starts it once per alert: read the alert, look the
//! source address up, send the enrichment (or error) event to analysisd, log one line, exit.
//!
//! The whole run is bounded by integratord's `<timeout>` (`argv[6]`, default 10 s): the HTTP
//! attempts share it (see [`super::options`]), and a watchdog, started before the alert file is
//! even opened, sends a 408 error event (or, when the run never got to the lookup, logs why)
//! and ends the process when the budget is spent. The alert file itself must be a regular file
//! of at most [`super::alert::MAX_ALERT_BYTES`] (1 MiB). integratord has
//! no timeout of its own and runs integrations one at a time, so a hung child would stall
//! every integration on the manager.
//!
//! What is deliberately *not* answered with an event (the run logs why and exits 0): alerts
//! raised on our own events (loop guard), alerts without a `data.srcip` or whose srcip is a host
//! name, alerts whose sshd log names another address than `data.srcip` (a decoder fooled by a
//! crafted user name), non-public addresses and allowlisted ones (never sent to AbuseIPDB, and
//! the trigger rule already excludes them, so an event would only repeat the alert), and
//! scores below the configured `min_score`. Whether to send an event is the policy's decision
//! step ([`crate::policy::decision`]) on the alert's attempt ([`Alert::attempt`]), with the
//! options' `min_score` as its alert threshold.
//!
//! Exit codes (documented for `ossec.log`, where integratord reports non-zero ones):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done: an event was sent (including an error event), or the alert needed none |
//! | 1 | internal error |
//! | 2 | bad arguments |
//! | 3 | bad options file or API key file (an error event was still sent) |
//! | 5 | the queue socket does not exist |
//! | 6 | the alert file is missing or unreadable |
//! | 7 | the alert file is not valid JSON |
//! | 8 | analysisd is not running or not reading (the socket refused the event, or took none for `queue::SEND_TIMEOUT`) |
//! | 9 | the event was too long for the socket |

use std::ffi::OsString;
use std::net::IpAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::alert::Alert;
use super::args::{self, IntegrationArgs};
use super::event::{EnrichmentEvent, ErrorCode, SourceAlert};
use super::log::IntegrationLog;
use super::options::{self, Env, Options, Settings};
use super::queue::{self, MAX_MESSAGE, QueueError};
use crate::addr;
use crate::attempt::Attempt;
use crate::config::Config;
use crate::engine::{Lookup, Source};
use crate::policy::decision::{self, Answer, Thresholds};

/// How a run ended, as a process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Done = 0,
    Internal = 1,
    BadArguments = 2,
    BadOptions = 3,
    SocketMissing = 5,
    AlertMissing = 6,
    InvalidAlert = 7,
    AnalysisdDown = 8,
    TooLong = 9,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The outcome of a run: the exit code and the one line that says what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub exit: Exit,
    pub summary: String,
}

/// Anything that answers reputation questions (the engine, or a stand-in in tests).
pub trait ReputationLookup {
    fn lookup(&mut self, ip: IpAddr) -> Lookup;
}

impl ReputationLookup for crate::engine::Engine {
    fn lookup(&mut self, ip: IpAddr) -> Lookup {
        crate::engine::Engine::lookup(self, ip)
    }
}

/// The real lookup: the engine of `config` (cache, then AbuseIPDB). A cache that cannot be
/// opened is bypassed: for one alert, an answer without the cache beats no answer.
pub fn open_engine(config: &Config) -> Result<Box<dyn ReputationLookup>, String> {
    Ok(Box::new(crate::engine::Engine::new_or_uncached(config)))
}

/// Builds the lookup from the run's settings (opening the cache, the HTTP agent).
pub type OpenLookup<'a> = &'a dyn Fn(&Config) -> Result<Box<dyn ReputationLookup>, String>;

/// Everything a run needs from its surroundings.
pub struct Context<'a> {
    /// The Wazuh home (`/var/ossec`).
    pub home: PathBuf,
    /// The integration's name, for the log (`custom-abuseipdb`).
    pub name: String,
    pub env: Env,
    /// The settings file given as `--config` (else `REPUTE_CONFIG`, else the default file).
    pub config_file: Option<PathBuf>,
    pub open: OpenLookup<'a>,
    /// When the budget runs out: `true` ends the process after sending the timeout event
    /// (the integratord child), `false` only sends it (library callers).
    pub exit_on_deadline: bool,
}

/// Runs the integration with the arguments after `argv[0]`.
pub fn run(argv: &[OsString], ctx: &Context) -> RunOutcome {
    let started = Instant::now();
    let args = match args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            let mut log = IntegrationLog::open(&ctx.home, &ctx.name, false);
            let summary = format!("bad arguments: {e}");
            log.info(&summary);
            return RunOutcome {
                exit: Exit::BadArguments,
                summary,
            };
        }
    };
    let mut log = IntegrationLog::open(&ctx.home, &ctx.name, args.debug);
    if let Some(key) = &args.api_key {
        log.scrub(key.expose());
    }
    log.debug(&describe_args(&args, &ctx.home));
    let run = Run {
        ctx,
        args: &args,
        log: Arc::new(Mutex::new(log)),
        started,
        watched: Arc::new(Mutex::new(Watch::Reading)),
    };
    // Before anything that could block (opening the alert file, the cache, the network).
    run.start_watchdog(options::budget(&args));
    let report = run.alert_to_event();
    *lock(&run.watched) = Watch::Finished;
    report
}

fn describe_args(args: &IntegrationArgs, home: &Path) -> String {
    format!(
        "start: home {}, alert file {}, key {}, hook {}, options {}, timeout {:?}, retries {:?}",
        home.display(),
        args.alert_file.display(),
        if args.api_key.is_some() {
            "given"
        } else {
            "none"
        },
        args.hook_url.as_deref().map_or("none".into(), shown_hook),
        args.options_file
            .as_deref()
            .map_or("none".into(), |p| p.display().to_string()),
        args.timeout,
        args.retries,
    )
}

/// The hook URL as the log may show it: a `user:pass@` is a credential, and a value that is
/// no URL at all may be the second half of an `<api_key>` integratord split on a space.
fn shown_hook(hook: &str) -> String {
    let lower = hook.trim().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        crate::config::redact_userinfo(hook.trim())
    } else {
        "given but not a URL (not shown)".into()
    }
}

/// An options-file error as it may be shown. integratord names its options files
/// `….options`; any other value in that slot may be a piece of an `<api_key>` split on
/// spaces (a key with two spaces in a row), so it is named by position, not by value.
fn shown_options_error(path: &Path, err: options::OptionsError) -> String {
    match err {
        options::OptionsError::Options { detail, .. }
            if !path.to_string_lossy().ends_with("options") =>
        {
            format!(
                "argument 5 (options file): {detail} (the value is not shown: it is not an integratord options file name and may be part of a split <api_key>)"
            )
        }
        other => other.to_string(),
    }
}

struct Run<'a, 'c> {
    ctx: &'a Context<'c>,
    args: &'a IntegrationArgs,
    log: Arc<Mutex<IntegrationLog>>,
    started: Instant,
    /// What the watchdog does when the budget runs out.
    watched: Arc<Mutex<Watch>>,
}

/// Where the run is, as the watchdog sees it.
enum Watch {
    /// The alert is not read yet (or its address not known): nothing to answer.
    Reading,
    /// Looking the address up: the watchdog answers with a timeout event.
    Answering(Watched),
    /// The run is over.
    Finished,
}

/// The alert the watchdog would answer for.
struct Watched {
    source: SourceAlert,
    ip: IpAddr,
    what: String,
    responder: Arc<Responder>,
}

impl Run<'_, '_> {
    fn info(&self, message: &str) {
        lock(&self.log).info(message);
    }

    fn debug(&self, message: &str) {
        lock(&self.log).debug(message);
    }

    fn finish(&self, exit: Exit, summary: String) -> RunOutcome {
        self.info(&summary);
        RunOutcome { exit, summary }
    }

    fn alert_to_event(&self) -> RunOutcome {
        let alert = match Alert::read(&self.args.alert_file) {
            Ok(a) => a,
            Err(e @ super::alert::AlertError::Unreadable { .. }) => {
                return self.finish(Exit::AlertMissing, e.to_string());
            }
            Err(e) => return self.finish(Exit::InvalidAlert, e.to_string()),
        };
        let what = describe_alert(&alert);
        self.debug(&format!("alert: {what}"));
        // The loop guard comes before anything that could answer with an event (even a
        // settings error event): our own enrichment alert must never cause another event.
        if alert.is_own_enrichment() {
            return self.finish(
                Exit::Done,
                format!("{what}: skipped, an enrichment event of this integration"),
            );
        }
        let responder = Arc::new(Responder::new(&self.ctx.home, &alert));
        let settings = match self.settings() {
            Ok(s) => s,
            Err(e) => return self.options_failed(&alert, &responder, &what, e),
        };
        if let Some(key) = &settings.config.api_key {
            lock(&self.log).scrub(key.expose());
        }
        let Some(ip) = alert.srcip() else {
            let why = match alert.srcip_text() {
                Some(text) => format!("srcip {text:?} is not an IP address"),
                None => "no data.srcip".into(),
            };
            return self.finish(Exit::Done, format!("{what}: skipped, {why}"));
        };
        let ip = match addr::public(ip) {
            Ok(ip) => ip,
            Err(class) => {
                return self.finish(
                    Exit::Done,
                    format!("{what}: skipped, not a public address ({class})"),
                );
            }
        };
        // A decoder fooled by a crafted user name: no lookup, no event, so no block follows.
        let attempt = alert.attempt_with(ip);
        if let Some(why) = decision::names_another(&attempt, ip) {
            return self.finish(Exit::Done, format!("{what}: skipped, {why}"));
        }
        // No lookup (and no quota spent) for an event that could not be delivered.
        if let Err(e) = responder.connect() {
            return self.finish(exit_for(&e), format!("{what}: not looked up: {e}"));
        }
        *lock(&self.watched) = Watch::Answering(Watched {
            source: SourceAlert::from_alert(&alert),
            ip,
            what: what.clone(),
            responder: Arc::clone(&responder),
        });
        self.look_up_and_send(&settings, &alert, &attempt, ip, &responder, &what)
    }

    fn settings(&self) -> Result<Settings, String> {
        let options = match &self.args.options_file {
            Some(path) => Options::read(path).map_err(|e| shown_options_error(path, e))?,
            None => Options::default(),
        };
        options::settings(
            &self.ctx.home,
            self.ctx.config_file.as_deref(),
            self.args,
            &options,
            &self.ctx.env,
        )
        .map_err(|e| e.to_string())
    }

    /// A settings problem is still answered with an error event, so that it shows on the
    /// dashboard and not only in a log file.
    fn options_failed(
        &self,
        alert: &Alert,
        responder: &Responder,
        what: &str,
        err: String,
    ) -> RunOutcome {
        let mut event = EnrichmentEvent::error(
            SourceAlert::from_alert(alert),
            alert.srcip(),
            ErrorCode::Code("bad_options"),
            err.clone(),
        );
        let sent = match responder.send(&mut event) {
            Ok(_) => "error event sent",
            Err(_) => "no event sent",
        };
        self.finish(Exit::BadOptions, format!("{what}: {err}; {sent}"))
    }

    fn look_up_and_send(
        &self,
        settings: &Settings,
        alert: &Alert,
        attempt: &Attempt,
        ip: IpAddr,
        responder: &Responder,
        what: &str,
    ) -> RunOutcome {
        self.debug(&format!(
            "lookup {ip}: cache {:?}, api {}",
            settings.config.cache,
            crate::config::redact_userinfo(&settings.config.api_url)
        ));
        let mut lookup = match (self.ctx.open)(&settings.config) {
            Ok(l) => l,
            Err(e) => {
                let mut event = EnrichmentEvent::error(
                    SourceAlert::from_alert(alert),
                    Some(ip),
                    ErrorCode::Code("internal"),
                    format!("cannot start the lookup: {e}"),
                );
                let delivered = self.deliver(responder, &mut event, what, "lookup could not start");
                return if delivered.exit == Exit::Done {
                    self.finish(
                        Exit::Internal,
                        format!("{what}: cannot start the lookup: {e}"),
                    )
                } else {
                    delivered
                };
            }
        };
        let answer = lookup.lookup(ip);
        self.debug(&format!("answer: {}", describe_lookup(&answer)));
        let decision = decide(settings, attempt, &answer);
        let source = SourceAlert::from_alert(alert);
        let mut event = match (decision.alert, &answer.answer) {
            (decision::Alert::Nothing(why), _) => {
                return self.finish(Exit::Done, format!("{what}: {why}"));
            }
            (_, Ok(rep)) => EnrichmentEvent::found(source, rep, answer.source),
            (_, Err(why)) => match EnrichmentEvent::for_missing(source, ip, why) {
                Some(e) => e,
                None => return self.finish(Exit::Done, format!("{what}: skipped, {why}")),
            },
        };
        self.deliver(responder, &mut event, what, &describe_lookup(&answer))
    }

    fn deliver(
        &self,
        responder: &Responder,
        event: &mut EnrichmentEvent,
        what: &str,
        result: &str,
    ) -> RunOutcome {
        match responder.send(event) {
            Ok(Delivery::Sent(bytes)) => self.finish(
                Exit::Done,
                format!("{what}: {result}; event sent ({bytes} bytes)"),
            ),
            // The watchdog answered first; it logged its own line.
            Ok(Delivery::AlreadySent) => RunOutcome {
                exit: Exit::Done,
                summary: format!("{what}: answered by the timeout event"),
            },
            Err(e) => self.finish(exit_for(&e), format!("{what}: {result}; {e}")),
        }
    }

    /// Starts the watchdog: when the budget is spent, it answers the alert with a timeout
    /// event (once its address is known), or, if the run never got that far (an alert file
    /// that will not open, a stalled file system), logs why; either way the integratord
    /// child then ends, so one stuck run cannot stall every integration on the manager.
    fn start_watchdog(&self, budget: Duration) {
        let deadline = self.started + budget.saturating_sub(Duration::from_millis(100));
        let watched = Arc::clone(&self.watched);
        let log = Arc::clone(&self.log);
        let alert_file = self.args.alert_file.display().to_string();
        let exit_process = self.ctx.exit_on_deadline;
        std::thread::spawn(move || {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            let state = std::mem::replace(&mut *lock(&watched), Watch::Finished);
            let (exit, line) = match state {
                Watch::Finished => return,
                Watch::Answering(w) => {
                    let mut event = EnrichmentEvent::error(
                        w.source,
                        Some(w.ip),
                        ErrorCode::Status(408),
                        format!(
                            "no answer from AbuseIPDB within the {}s budget",
                            budget.as_secs_f32()
                        ),
                    );
                    match w.responder.send(&mut event) {
                        Ok(Delivery::AlreadySent) => return,
                        Ok(Delivery::Sent(_)) => (
                            Exit::Done,
                            format!("{}: timed out after {budget:?}; error event sent", w.what),
                        ),
                        Err(e) => (
                            exit_for(&e),
                            format!("{}: timed out after {budget:?}; {e}", w.what),
                        ),
                    }
                }
                Watch::Reading => (
                    Exit::AlertMissing,
                    format!(
                        "alert file {alert_file}: the run did not get to the lookup within the {budget:?} budget (a stalled alert, options or key file?); no event sent"
                    ),
                ),
            };
            lock(&log).info(&line);
            if exit_process {
                if exit != Exit::Done {
                    eprintln!("{line}");
                }
                std::process::exit(exit.code().into());
            }
        });
    }
}

/// The policy's decision on the alert's attempt, with the options' `min_score` as the alert
/// threshold.
fn decide(settings: &Settings, attempt: &Attempt, answer: &Lookup) -> decision::Decision {
    let thresholds = Thresholds {
        alert_min_score: settings.min_score,
        ..Thresholds::from_config(&settings.config)
    };
    decision::decide(attempt, None, &Answer::of(answer), &thresholds)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn exit_for(err: &QueueError) -> Exit {
    match err {
        QueueError::Missing(_) => Exit::SocketMissing,
        QueueError::NotRunning(_) | QueueError::Stalled(_) => Exit::AnalysisdDown,
        QueueError::NotASocket { .. } => Exit::SocketMissing,
        QueueError::TooLong(_) => Exit::TooLong,
        QueueError::Io { .. } => Exit::Internal,
    }
}

fn describe_alert(alert: &Alert) -> String {
    format!(
        "alert {} rule {} srcip {}",
        alert.id().unwrap_or_else(|| "-".into()),
        alert.rule_id().unwrap_or_else(|| "-".into()),
        alert.srcip_text().unwrap_or_else(|| "-".into()),
    )
}

fn describe_lookup(l: &Lookup) -> String {
    let from = match l.source {
        Source::Cache => "cache",
        Source::Api => "api",
        Source::Skipped => "skipped",
    };
    match &l.answer {
        Ok(r) => format!(
            "score {}, {} reports ({from})",
            r.abuse_confidence_score,
            r.total_reports.map_or("?".into(), |n| n.to_string())
        ),
        Err(why) => format!("no reputation: {why}"),
    }
}

/// What a send achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Sent(usize),
    /// Another thread (the watchdog, or the run) already answered this alert.
    AlreadySent,
}

/// Sends at most one event per alert, whichever of the run and the watchdog comes first.
struct Responder {
    path: PathBuf,
    location: String,
    state: Mutex<SendState>,
}

#[derive(Default)]
struct SendState {
    socket: Option<UnixDatagram>,
    sent: bool,
}

impl Responder {
    fn new(home: &Path, alert: &Alert) -> Responder {
        Responder {
            path: home.join(queue::SOCKET),
            location: queue::location_for(alert.agent().as_ref()),
            state: Mutex::new(SendState::default()),
        }
    }

    /// Connects now, so that a missing socket or a stopped analysisd is known before lookup.
    fn connect(&self) -> Result<(), QueueError> {
        let mut state = lock(&self.state);
        if state.socket.is_none() {
            state.socket = Some(queue::connect(&self.path)?);
        }
        Ok(())
    }

    fn send(&self, event: &mut EnrichmentEvent) -> Result<Delivery, QueueError> {
        let mut state = lock(&self.state);
        if state.sent {
            return Ok(Delivery::AlreadySent);
        }
        let prefix = queue::frame(&self.location, "");
        let payload = event.to_payload(prefix.len(), MAX_MESSAGE);
        let message = format!("{prefix}{payload}");
        match &state.socket {
            Some(socket) => queue::send_on(socket, &self.path, message.as_bytes())?,
            None => queue::send(&self.path, message.as_bytes())?,
        }
        state.sent = true;
        Ok(Delivery::Sent(message.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::AddrClass;
    use crate::engine::NoReputation;

    /// A lookup that ignores every time limit, as a wedged provider or a stuck lock would.
    struct Wedged(Duration);

    impl ReputationLookup for Wedged {
        fn lookup(&mut self, ip: IpAddr) -> Lookup {
            std::thread::sleep(self.0);
            Lookup {
                ip,
                class: AddrClass::Public,
                source: Source::Api,
                answer: Err(NoReputation::ProviderFailed {
                    status: Some(500),
                    detail: "too late".into(),
                }),
            }
        }
    }

    fn wedged(_: &Config) -> Result<Box<dyn ReputationLookup>, String> {
        Ok(Box::new(Wedged(Duration::from_millis(1500))))
    }

    #[test]
    fn the_watchdog_answers_a_wedged_lookup_once_within_the_budget() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("queue/sockets")).unwrap();
        let socket = UnixDatagram::bind(home.path().join(queue::SOCKET)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let alert = home.path().join("a.alert");
        std::fs::write(
            &alert,
            r#"{"id":"1.2","rule":{"id":"100001"},"data":{"srcip":"49.88.112.73"}}"#,
        )
        .unwrap();
        let ctx = Context {
            home: home.path().to_path_buf(),
            name: "custom-abuseipdb".into(),
            env: Env::default(),
            config_file: None,
            open: &wedged,
            exit_on_deadline: false,
        };
        let argv: Vec<OsString> = [alert.to_str().unwrap(), "k", "", "", "", "1", "0"]
            .iter()
            .map(OsString::from)
            .collect();
        let started = Instant::now();
        let receiver = std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            let first = socket.recv(&mut buf).map(|n| {
                (
                    started.elapsed(),
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                )
            });
            socket
                .set_read_timeout(Some(Duration::from_millis(800)))
                .unwrap();
            (first, socket.recv(&mut buf).is_ok())
        });
        let report = run(&argv, &ctx);
        let (first, second_arrived) = receiver.join().unwrap();
        let (arrived, text) = first.expect("the timeout event arrives");
        // The budget is 1 s; the wedged lookup takes 1.5 s.
        assert!(arrived < Duration::from_millis(1400), "{arrived:?}");
        let payload: serde_json::Value =
            serde_json::from_str(text.strip_prefix("1:abuseipdb:").unwrap()).unwrap();
        assert_eq!(payload["abuseipdb"]["error"], 408);
        assert_eq!(report.exit, Exit::Done);
        assert!(
            report.summary.contains("timeout event"),
            "{}",
            report.summary
        );
        assert!(!second_arrived, "only one event per alert");
    }
}
