//! `repute wazuh active-response`: the program execd runs to block and unblock an address.
//!
//! Installed as `<wazuh home>/active-response/bin/repute-block` (a copy or a symlink of the
//! repute binary), it is started by execd with no arguments and recognised by that path
//! ([`called_by_execd`]); `repute wazuh active-response [flags]` is the same command by hand.
//! It reads one JSON line, and for `add` it applies the same safety checks as `repute block`
//! and, with a minimum score, the reputation gate, then does the `check_keys` handshake and
//! blocks on `continue`. `delete` (execd's timeout) unblocks, without a handshake.
//!
//! Every step is logged to `<home>/logs/active-responses.log` in Wazuh's line format. Exit
//! codes: 0 when the message was handled (blocked, unblocked, declined, refused, aborted),
//! 1 when it could not be (bad input, a failed firewall), as Wazuh's own programs do.
//!
//! Timeouts: execd runs `delete` when its `<timeout>` expires, but that schedule lives only in
//! execd's memory. The kernel entry therefore gets its own timeout (`--for`, in `extra_args`
//! or as a flag, else `block.default_duration`), which should be at least the `<timeout>`, so
//! the block ends even if execd dies. When execd answers `abort` (the address is already in
//! its timeout list, whose timer it has just refreshed), the kernel entry is renewed too, so
//! the two stay in step.
//!
//! An administrator's block wins: `add` never shortens a block that runs longer nor re-labels
//! a manual one (`repute block add`), and `delete` never removes a manual block or an address
//! nobody recorded; the log says which of these happened. Every read from execd (the message,
//! the reply to `check_keys`) gives up after [`READ_TIMEOUT`] (5 s), so a silent execd cannot
//! hold the program, and execd's queue behind it.
//!
//! The reputation gate (`--min-score N`, `extra_args` `--min-score N` or `min_score=N`, or
//! `block.min_score`) is the policy's decision step ([`repute::policy::decide`]) on the
//! alert's attempt ([`Message::attempt`]), with the score the alert carries when it is an
//! AbuseIPDB enrichment alert, else the engine's answer (cache first). When no score can be
//! had (no key, quota spent, provider down), `--on-lookup-failure` decides: `block` (the
//! default: the Wazuh rule that fired already judged the address, and an attacker must not be
//! able to switch blocking off by exhausting the quota) or `skip`. An alert whose log is an
//! sshd line that is no attack (an accepted login), or that names another address than the one
//! to block ([`repute::policy::decision::names_another`]), is not blocked.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use repute::block::duration::format_duration;
use repute::block::state::Origin;
use repute::block::{ArAdded, ArDeleted, BlockError, Blocker, Request, parse_duration};
use repute::config::Config;
use repute::engine::Engine;
use repute::policy::decision::{self, Answer, History, OnLookupFailure, Thresholds};
use repute::report::{Category, Evidence};
use repute::wazuh::active_response::{
    ArError, ArLog, Command, MAX_MESSAGE_BYTES, Message, READ_TIMEOUT, Reply, TimedStdin,
    check_keys_message, parse_extra_args, parse_reply, read_line_bounded,
};
use repute::wazuh::home::{HomeClues, HomeFrom, in_active_response_bin, wazuh_home};

use super::Global;

/// Longest input text copied into the log.
const MAX_LOGGED_INPUT: usize = 8192;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Decline to block an address whose AbuseIPDB score is below N (0-100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub min_score: Option<u8>,
    /// When no score can be had: `block` anyway (default) or `skip`.
    #[arg(
        long,
        value_name = "ACTION",
        value_parser = clap::builder::TypedValueParser::try_map(
            clap::builder::PossibleValuesParser::new(["block", "skip"]),
            |s| s.parse::<OnLookupFailure>()
        )
    )]
    pub on_lookup_failure: Option<OnLookupFailure>,
    /// How long the kernel keeps the block (default: block.default_duration).
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// After blocking, report the address to AbuseIPDB on the alert's evidence (see
    /// docs/reporting.md).
    #[arg(long)]
    pub report: bool,
}

/// The command line when started as `active-response/bin/<name>`.
#[derive(Debug, Parser)]
#[command(name = "repute-block", about = "repute's Wazuh active response")]
struct ExecdCli {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    args: Args,
}

/// True when this process is a program in `active-response/bin/` started as execd starts it
/// (no subcommand: only flags, usually none).
/// `exe` is the running executable (`/proc/self/exe`), passed in so the decision is testable.
pub fn called_by_execd(args: &[OsString], exe: Option<&Path>) -> bool {
    let flags_only = args
        .get(1)
        .is_none_or(|a| a.to_string_lossy().starts_with('-'));
    let by_exe = exe.is_some_and(in_active_response_bin);
    flags_only && (argv0_in_active_response_bin(args) || by_exe)
}

/// True when argv[0] names a program in `active-response/bin/`: execd's call, whatever file
/// the path finally resolves to (a symlink to `integrations/custom-abuseipdb` included).
pub fn argv0_in_active_response_bin(args: &[OsString]) -> bool {
    args.first()
        .is_some_and(|a| in_active_response_bin(Path::new(a)))
}

pub fn run_as_execd_child(args: &[OsString]) -> ExitCode {
    let cli = ExecdCli::parse_from(args);
    respond(&cli.args, &cli.global)
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    Ok(respond(&args, global))
}

/// The program name execd keys on: the basename of argv[0].
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "repute".into())
}

fn this_wazuh_home() -> Option<PathBuf> {
    wazuh_home(&HomeClues::of_process()).map(|home| home.path)
}

/// The Wazuh home whose defaults the settings take (its store, its key file): the one execd
/// runs the program from, or `WAZUH_HOME`; run by hand elsewhere, the host's, as for every
/// command (a working directory is no evidence of a home).
fn settings_home() -> Option<PathBuf> {
    match wazuh_home(&HomeClues::of_process()) {
        Some(home) if home.from != HomeFrom::WorkingDirectory => Some(home.path),
        _ => repute::config::host_wazuh_home(&|name| std::env::var(name).ok()),
    }
}

fn respond(args: &Args, global: &Global) -> ExitCode {
    let program = program_name();
    let log = ArLog::new(this_wazuh_home().as_deref(), &program);
    log.log("Starting");
    let mut session = Session {
        args,
        global,
        program: &program,
        log: &log,
        // Every read bounded by READ_TIMEOUT: a silent stdin or no reply to check_keys
        // ends the program instead of holding execd (which runs its programs one by one).
        input: std::io::BufReader::new(TimedStdin::new(READ_TIMEOUT)),
        output: std::io::stdout().lock(),
    };
    let code = match session.handle() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log.log(&message);
            ExitCode::from(1)
        }
    };
    log.log("Ended");
    code
}

/// One run: the message, the handshake, the firewall. Errors are the line to log.
struct Session<'a, R: BufRead, W: Write> {
    args: &'a Args,
    global: &'a Global,
    program: &'a str,
    log: &'a ArLog,
    input: R,
    output: W,
}

impl<R: BufRead, W: Write> Session<'_, R, W> {
    fn handle(&mut self) -> Result<(), String> {
        let line = read_line_bounded(&mut self.input, MAX_MESSAGE_BYTES)
            .and_then(|l| l.ok_or(ArError::Empty))
            .map_err(|e| e.to_string())?;
        self.log
            .log(&line.chars().take(MAX_LOGGED_INPUT).collect::<String>());
        let message = Message::parse(&line).map_err(|e| e.to_string())?;
        let ip = message.srcip().map_err(|e| e.to_string())?;
        let extra = parse_extra_args(&message.extra_args()).map_err(|e| e.to_string())?;
        let config = Config::load_layered(
            self.global.config.as_deref(),
            settings_home().as_deref(),
            |name| std::env::var(name).ok(),
            &repute::config::Overrides::default(),
        )
        .map_err(|e| format!("configuration: {e}"))?;
        let blocker = Blocker::for_config(&config).map_err(|e| e.to_string())?;
        match message.command {
            Command::Delete => self.delete(&blocker, &config, ip),
            Command::Add => {
                let duration = self.duration(extra.duration.as_deref(), &config)?;
                let thresholds = Thresholds {
                    block_min_score: extra
                        .min_score
                        .or(self.args.min_score)
                        .or(config.block.min_score),
                    on_lookup_failure: self
                        .on_lookup_failure(extra.on_lookup_failure.as_deref())?,
                    block_duration: duration,
                    report: self.args.report,
                    ..Thresholds::from_config(&config)
                };
                self.add(&blocker, &config, &message, ip, &thresholds)
            }
        }
    }

    fn duration(&self, extra: Option<&str>, config: &Config) -> Result<Duration, String> {
        match extra.or(self.args.duration.as_deref()) {
            Some(text) => parse_duration(text).map_err(|e| e.to_string()),
            None => Ok(config.block.default_duration),
        }
    }

    fn on_lookup_failure(&self, extra: Option<&str>) -> Result<OnLookupFailure, String> {
        match extra {
            Some(text) => text.parse().map_err(|_| {
                format!("invalid extra argument {text:?}: on-lookup-failure is block or skip")
            }),
            None => Ok(self.args.on_lookup_failure.unwrap_or_default()),
        }
    }

    fn delete(&mut self, blocker: &Blocker, config: &Config, ip: IpAddr) -> Result<(), String> {
        let deleted = blocker
            .del_for_active_response(ip)
            .map_err(|e| e.to_string())?;
        let line = match deleted {
            ArDeleted::Removed => format!("Unblocked {ip}"),
            ArDeleted::KeptManual(record) => format!(
                "Kept {ip} blocked: a manual block{}, until {}; active response does not remove it",
                shown_reason(record.reason.as_deref()),
                rfc3339(record.until)
            ),
            ArDeleted::KeptUnrecorded => format!(
                "Kept {ip} blocked: it is in the firewall set but was not blocked by active response"
            ),
            ArDeleted::NotBlocked => format!("{ip} was not blocked"),
        };
        self.log.log(&line);
        // Only what the active response itself blocked is unbanned for the fleet: a manual
        // block kept here stays a decision everywhere.
        if line.starts_with("Unblocked") {
            let host = repute::decisions::this_host();
            if let Some(Err(e)) = repute::decisions::when_shared(config, |d| d.revoke(ip, &host)) {
                self.log.log(&format!("Unban of {ip} not shared: {e}"));
            }
        }
        Ok(())
    }

    fn add(
        &mut self,
        blocker: &Blocker,
        config: &Config,
        message: &Message,
        ip: IpAddr,
        thresholds: &Thresholds,
    ) -> Result<(), String> {
        // Refusals and declines come before the handshake: with no `check_keys` line, execd
        // schedules no `delete` for an address that was never blocked.
        if let Err(refusal) = blocker.check(ip) {
            self.log.log(&format!("Refused to block {ip}: {refusal}"));
            return Ok(());
        }
        let mut reason = message.rule_summary();
        let (block, evidence, categories) = decide(message, ip, thresholds, config);
        let duration = match block {
            decision::Block::Not(why) => {
                self.log.log(&format!("Declined to block {ip}: {why}"));
                return Ok(());
            }
            decision::Block::For { duration, gate } => {
                if let Some(why) = gate {
                    reason.push_str(&format!(" ({why})"));
                }
                duration
            }
        };
        let request = Request {
            ip,
            duration,
            reason: Some(reason),
            force: false,
        };
        match self.handshake(ip)? {
            Reply::Continue => {
                self.block(blocker, config, &request)?;
                if thresholds.report {
                    super::active_response_report::report_blocked(
                        self.log,
                        config,
                        ip,
                        &evidence,
                        categories.unwrap_or_default(),
                    );
                }
                Ok(())
            }
            Reply::Abort => {
                self.log.log("Aborted");
                self.renew_if_blocked(blocker, config, &request)
            }
            Reply::Other(text) => Err(format!("Invalid value of 'command' in reply: {text:?}")),
        }
    }

    /// Sends `check_keys` and reads execd's answer.
    fn handshake(&mut self, ip: IpAddr) -> Result<Reply, String> {
        let line = check_keys_message(self.program, &[ip.to_string()]);
        writeln!(self.output, "{line}")
            .and_then(|()| self.output.flush())
            .map_err(|e| format!("cannot write to execd: {e}"))?;
        match read_line_bounded(&mut self.input, MAX_MESSAGE_BYTES) {
            Ok(Some(reply)) => Ok(parse_reply(&reply)),
            Ok(None) => Err("no reply to check_keys".into()),
            Err(ArError::Read(e)) if e.kind() == std::io::ErrorKind::TimedOut => Err(format!(
                "no reply to check_keys within {}s; nothing blocked",
                READ_TIMEOUT.as_secs()
            )),
            Err(e) => Err(format!("reply to check_keys: {e}")),
        }
    }

    fn block(
        &mut self,
        blocker: &Blocker,
        config: &Config,
        request: &Request,
    ) -> Result<(), String> {
        match blocker.add_for_active_response(request) {
            Ok(ArAdded::Applied(added)) => {
                let reason = request.reason.clone().unwrap_or_else(|| "renewed".into());
                let ban = repute::decisions::Ban::new(added.ip, added.duration, reason);
                if let Some(Err(e)) = repute::decisions::when_shared(config, |d| d.record(&ban)) {
                    self.log
                        .log(&format!("Ban of {} not shared: {e}", added.ip));
                }
                let verb = if added.renewed { "Renewed" } else { "Blocked" };
                self.log.log(&format!(
                    "{verb} {} for {} ({})",
                    added.ip,
                    format_duration(added.duration),
                    added.backend
                ));
                Ok(())
            }
            Ok(ArAdded::KeptLonger(record)) => {
                let kind = match record.origin {
                    Origin::Manual => "a manual block",
                    Origin::ActiveResponse => "a block",
                };
                self.log.log(&format!(
                    "Kept {} blocked until {}: {kind}{} runs longer than the {} asked for; not shortened",
                    record.ip,
                    rfc3339(record.until),
                    shown_reason(record.reason.as_deref()),
                    format_duration(request.duration)
                ));
                Ok(())
            }
            Ok(ArAdded::ExtendedManual(record)) => {
                self.log.log(&format!(
                    "Extended the manual block{} of {} to {} ({}); its reason is kept",
                    shown_reason(record.reason.as_deref()),
                    record.ip,
                    rfc3339(record.until),
                    format_duration(request.duration)
                ));
                Ok(())
            }
            Err(refused @ BlockError::Refused { .. }) => {
                self.log.log(&format!("Refused: {refused}"));
                Ok(())
            }
            Err(e) => Err(format!("Cannot block {}: {e}", request.ip)),
        }
    }

    /// execd refreshed its timer for an address it already handles: refresh ours.
    fn renew_if_blocked(
        &mut self,
        blocker: &Blocker,
        config: &Config,
        request: &Request,
    ) -> Result<(), String> {
        let blocked = blocker.is_blocked(request.ip).map_err(|e| e.to_string())?;
        if blocked {
            let renewal = Request {
                reason: None,
                ..request.clone()
            };
            self.block(blocker, config, &renewal)?;
        }
        Ok(())
    }
}

/// ` ("reason")`, or nothing.
fn shown_reason(reason: Option<&str>) -> String {
    reason.map(|r| format!(" ({r:?})")).unwrap_or_default()
}

/// Unix seconds as RFC 3339 (UTC).
fn rfc3339(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// The policy's decision on the alert's attempt: whether to block (with a minimum score, on
/// the score the alert carries when it is an enrichment alert, else the engine's answer,
/// cache then AbuseIPDB; without one, no lookup), and, with `--report`, the categories to
/// report with, from the alert's own evidence (its sshd line from this address; an alert of
/// another kind is no evidence of an SSH attack, so it is not reported).
fn decide(
    message: &Message,
    ip: IpAddr,
    thresholds: &Thresholds,
    config: &Config,
) -> (decision::Block, Evidence, Option<Vec<Category>>) {
    // The message's address was found, so the alert has an attempt; no address, no block.
    let Some(attempt) = message.attempt() else {
        let why = decision::Block::Not("the alert names no address".into());
        return (why, Evidence::new(), None);
    };
    if let Some(why) = decision::names_another(&attempt, ip) {
        return (decision::Block::Not(why), Evidence::new(), None);
    }
    let mut evidence = Evidence::new();
    if attempt.kind != repute::Kind::WazuhAlert
        && attempt.srcip.map(|s| s.to_canonical()) == Some(ip.to_canonical())
    {
        evidence.add_attempt(&attempt);
    }
    let answer = match message.alert_score() {
        _ if !thresholds.block_needs_score() => Answer::NotAsked,
        Some(score) => Answer::carried(score),
        None => Answer::of(&Engine::new_or_uncached(config).lookup(ip)),
    };
    let decision = decision::decide(&attempt, Some(&History::of(&evidence)), &answer, thresholds);
    (decision.block, evidence, decision.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn execd_is_recognised_by_the_program_path() {
        let none = None;
        assert!(called_by_execd(
            &args(&["active-response/bin/repute-block"]),
            none
        ));
        assert!(called_by_execd(
            &args(&[
                "/var/ossec/active-response/bin/repute-block",
                "--min-score",
                "50"
            ]),
            none
        ));
        // The same binary used as `repute …` keeps its subcommands.
        assert!(!called_by_execd(
            &args(&[
                "/var/ossec/active-response/bin/repute-block",
                "wazuh",
                "active-response"
            ]),
            none
        ));
        assert!(!called_by_execd(
            &args(&["/usr/bin/repute", "block", "list"]),
            none
        ));
        // Recognised by the executable alone, when argv[0] is a bare name.
        let exe = Path::new("/var/ossec/active-response/bin/repute-block");
        assert!(called_by_execd(&args(&["repute-block"]), Some(exe)));
    }

    #[test]
    fn lookup_failure_policy_from_extra_args() {
        let flags = Args {
            min_score: None,
            on_lookup_failure: Some(OnLookupFailure::Skip),
            duration: None,
            report: false,
        };
        let global = Global { config: None };
        let session = Session {
            args: &flags,
            global: &global,
            program: "repute-block",
            log: &ArLog::new(None, "repute-block"),
            input: std::io::empty(),
            output: std::io::sink(),
        };
        assert_eq!(session.on_lookup_failure(None), Ok(OnLookupFailure::Skip));
        assert_eq!(
            session.on_lookup_failure(Some("block")),
            Ok(OnLookupFailure::Block)
        );
        assert!(session.on_lookup_failure(Some("maybe")).is_err());
    }
}
