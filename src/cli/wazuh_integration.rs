//! `repute wazuh integration …` and the `custom-*` executable names: the integratord command.
//!
//! integratord runs `integrations/<name>` with argv[0] = `integrations` (never the path), so
//! the binary recognises the call by its own executable name (`custom-abuseipdb`, any
//! `custom-*`, `.py` included), by its argv[0] name, or by argv[0] = `integrations`. The
//! explicit subcommand takes the same positional arguments. Exit codes are those of
//! [`repute::wazuh::integration`]; nothing but a one-line error on a non-zero exit is ever
//! printed, because integratord copies the last output line into `ossec.log`.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use repute::wazuh::home;
use repute::wazuh::integration::{self, Context, RunOutcome};
use repute::wazuh::options::Env;

use super::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ALERT_FILE API_KEY HOOK_URL [debug|""] [OPTIONS_FILE|""] [TIMEOUT] [RETRIES], exactly
    /// as integratord passes them (an empty API_KEY reads etc/repute/abuseipdb.key).
    #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true, value_name = "ARG")]
    pub args: Vec<OsString>,
}

/// The name integratord gave the program, when it looks like an integration.
fn integration_name(name: &OsStr) -> Option<String> {
    let name = name.to_string_lossy();
    name.starts_with("custom-").then(|| name.into_owned())
}

/// The file name of the running executable (`/proc/self/exe`).
fn exe_name() -> Option<OsString> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(OsStr::to_os_string))
}

fn argv0_name(args: &[OsString]) -> Option<OsString> {
    args.first()
        .and_then(|a| Path::new(a).file_name().map(OsStr::to_os_string))
}

/// True when the process was started by integratord: argv[0] `integrations`, or an executable
/// (or argv[0]) named `custom-*`. `exe` is the running executable, passed in so the decision
/// is testable. The executable's name does not count when argv[0] is in
/// `active-response/bin/`: that is execd's call through a symlink to the integration file.
pub fn called_by_integratord(args: &[OsString], exe: Option<&Path>) -> bool {
    let argv0 = argv0_name(args);
    let exe_counts = !super::wazuh_active_response::argv0_in_active_response_bin(args);
    argv0.as_deref() == Some(OsStr::new(home::INTEGRATIONS_DIR))
        || argv0.as_deref().and_then(integration_name).is_some()
        || (exe_counts
            && exe
                .and_then(Path::file_name)
                .and_then(integration_name)
                .is_some())
}

/// The integratord child: run and exit with the documented code.
pub fn run_as_integratord_child(args: &[OsString]) -> ExitCode {
    let name = exe_name()
        .as_deref()
        .and_then(integration_name)
        .or_else(|| argv0_name(args).as_deref().and_then(integration_name))
        .unwrap_or_else(|| "custom-abuseipdb".into());
    let report = run_integration(args.get(1..).unwrap_or_default(), name, None);
    exit_with(report)
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let report = run_integration(&args.args, "custom-abuseipdb".into(), global.config.clone());
    Ok(exit_with(report))
}

fn run_integration(argv: &[OsString], name: String, config_file: Option<PathBuf>) -> RunOutcome {
    let home = home::current_wazuh_home();
    log_library_warnings(&home);
    let ctx = Context {
        home,
        name,
        env: Env::from_process(),
        config_file,
        open: &integration::open_engine,
        exit_on_deadline: true,
    };
    integration::run(argv, &ctx)
}

/// Nothing on success; one line naming what went wrong otherwise.
/// The library's warnings (a cache that cannot be opened, a lease that could not be released)
/// go to `logs/integrations.log`, where an administrator looks; stdout and stderr stay quiet,
/// because integratord copies their last line into `ossec.log`. The library never logs the key.
fn log_library_warnings(home: &Path) {
    // 0640 like the integration's own log: it names addresses and alerts.
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(home.join(repute::wazuh::log::LOG_FILE))
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

fn exit_with(report: RunOutcome) -> ExitCode {
    if report.exit != integration::Exit::Done {
        eprintln!("repute: {}", report.summary);
    }
    ExitCode::from(report.exit.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn integratord_is_recognised_by_argv0_or_the_executable_name() {
        let exe = Path::new("/var/ossec/integrations/custom-abuseipdb");
        assert!(called_by_integratord(
            &args(&["integrations", "/tmp/a"]),
            None
        ));
        assert!(called_by_integratord(&args(&["custom-abuseipdb.py"]), None));
        assert!(called_by_integratord(&args(&["x", "/tmp/a"]), Some(exe)));
        assert!(!called_by_integratord(
            &args(&["/usr/bin/repute", "scan"]),
            Some(Path::new("/usr/bin/repute"))
        ));
    }

    #[test]
    fn execd_through_a_symlink_to_the_integration_is_not_integratord() {
        // active-response/bin/repute-block -> integrations/custom-abuseipdb: /proc/self/exe
        // names the integration, argv[0] names the active-response program.
        let exe = Path::new("/var/ossec/integrations/custom-abuseipdb");
        for argv in [
            args(&["/var/ossec/active-response/bin/repute-block"]),
            args(&["active-response/bin/repute-block", "--min-score", "50"]),
            args(&["active-response/bin/repute-block", "wazuh", "rules"]),
        ] {
            assert!(!called_by_integratord(&argv, Some(exe)), "{argv:?}");
        }
        let execd = args(&["/var/ossec/active-response/bin/repute-block"]);
        assert!(super::super::wazuh_active_response::called_by_execd(
            &execd,
            Some(exe)
        ));
    }
}
