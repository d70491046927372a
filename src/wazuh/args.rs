//! The command line integratord gives an integration, in every layout Wazuh 4.x has used.
//!
//! integratord builds one string and splits it on single spaces without a shell
//! (`docs/wazuh.md` §1.5), so empty values are real empty arguments and the redirect text
//! `> /dev/null 2>&1` arrives as a literal argument. After `argv[0]` (`integrations`):
//!
//! | Wazuh | arguments |
//! |---|---|
//! | 4.8+ | alert, key, hook, `debug`\|"", options\|"", timeout, retries, (`> /dev/null 2>&1`) |
//! | 4.7  | alert, key, hook, `debug`\|"", options\|"", (`> /dev/null 2>&1`) |
//! | ≤4.6 | alert, key, hook, `debug` \| ` > /dev/null 2>&1` |
//!
//! The redirect is recognised only as the last argument and never obeyed; the options file is
//! taken from its slot, or found by scanning for a name ending in `options` as Wazuh's own
//! scripts do.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::config::ApiKey;

/// What integratord told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationArgs {
    pub alert_file: PathBuf,
    /// `<api_key>`, when ossec.conf has one.
    pub api_key: Option<ApiKey>,
    /// `<hook_url>`: the AbuseIPDB check endpoint to call.
    pub hook_url: Option<String>,
    pub debug: bool,
    /// The `<options>` temp file (4.7+).
    pub options_file: Option<PathBuf>,
    /// `<timeout>` (4.8+): the budget for the whole run.
    pub timeout: Option<Duration>,
    /// `<retries>` (4.8+).
    pub retries: Option<u32>,
}

/// A command line that is not one integratord could have built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error(
        "no alert file argument (expected: ALERT_FILE API_KEY HOOK_URL [debug] [OPTIONS_FILE] [TIMEOUT] [RETRIES])"
    )]
    NoAlertFile,
    #[error("too many arguments ({0}); integratord passes at most 8 after the program name")]
    TooMany(usize),
    #[error("argument {index} ({what}): {detail}")]
    Bad {
        index: usize,
        what: &'static str,
        detail: String,
    },
}

/// The redirect integratord appends when not in debug mode (no shell ever sees it).
const REDIRECT: &str = "> /dev/null 2>&1";

fn is_redirect(arg: &str) -> bool {
    arg.trim() == REDIRECT
}

/// Parses the arguments after `argv[0]`.
pub fn parse(args: &[OsString]) -> Result<IntegrationArgs, ArgsError> {
    let mut args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.last().is_some_and(|a| is_redirect(a)) {
        args.pop();
    }
    if args.len() > 7 {
        return Err(ArgsError::TooMany(args.len() + 1));
    }
    let alert_file = match args.first() {
        Some(a) if !a.is_empty() => PathBuf::from(a),
        _ => return Err(ArgsError::NoAlertFile),
    };
    let slot = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let api_key = Some(slot(1)).filter(|k| !k.is_empty()).map(ApiKey::new);
    let hook_url = Some(slot(2)).filter(|h| !h.is_empty()).map(str::to_string);
    let debug = match slot(3) {
        "" => false,
        "debug" => true,
        // The value is never echoed: with a key containing spaces, integratord's split puts
        // pieces of the key in the later slots.
        _ => {
            return Err(bad(4, "debug flag", "expected \"debug\" or \"\"".into()));
        }
    };
    let options_file = match slot(4) {
        "" => scan_for_options(&args),
        path => Some(PathBuf::from(path)),
    };
    let timeout = number(&args, 5, "timeout")?.map(|s| Duration::from_secs(s.into()));
    let retries = number(&args, 6, "retries")?;
    Ok(IntegrationArgs {
        alert_file,
        api_key,
        hook_url,
        debug,
        options_file,
        timeout: timeout.filter(|t| !t.is_zero()),
        retries,
    })
}

fn bad(index: usize, what: &'static str, detail: String) -> ArgsError {
    ArgsError::Bad {
        index,
        what,
        detail,
    }
}

/// Wazuh's own scripts look for the options file anywhere after the debug slot.
fn scan_for_options(args: &[String]) -> Option<PathBuf> {
    args.iter()
        .skip(4)
        .find(|a| a.ends_with("options"))
        .map(PathBuf::from)
}

fn number(args: &[String], i: usize, what: &'static str) -> Result<Option<u32>, ArgsError> {
    match args.get(i).map(String::as_str) {
        None | Some("") => Ok(None),
        // Not echoed either, for the same reason as the debug slot.
        Some(text) => text
            .parse::<u32>()
            .map(Some)
            .map_err(|_| bad(i + 1, what, "expected a whole number".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn wazuh_4_8_without_debug() {
        let a = parse(&argv(&[
            "/tmp/custom-abuseipdb-1-2.alert",
            "",
            "",
            "",
            "",
            "10",
            "3",
            "> /dev/null 2>&1",
        ]))
        .unwrap();
        assert_eq!(
            a.alert_file,
            PathBuf::from("/tmp/custom-abuseipdb-1-2.alert")
        );
        assert_eq!(a.api_key, None);
        assert_eq!(a.hook_url, None);
        assert!(!a.debug);
        assert_eq!(a.options_file, None);
        assert_eq!(a.timeout, Some(Duration::from_secs(10)));
        assert_eq!(a.retries, Some(3));
    }

    #[test]
    fn wazuh_4_8_with_debug_and_options() {
        let a = parse(&argv(&[
            "/tmp/a.alert",
            "k3y",
            "http://127.0.0.1:9/api/v2/check",
            "debug",
            "/tmp/custom-abuseipdb-1--2.options",
            "5",
            "0",
        ]))
        .unwrap();
        assert_eq!(a.api_key, Some(ApiKey::new("k3y")));
        assert_eq!(
            a.hook_url.as_deref(),
            Some("http://127.0.0.1:9/api/v2/check")
        );
        assert!(a.debug);
        assert_eq!(
            a.options_file,
            Some(PathBuf::from("/tmp/custom-abuseipdb-1--2.options"))
        );
        assert_eq!(a.timeout, Some(Duration::from_secs(5)));
        assert_eq!(a.retries, Some(0));
    }

    #[test]
    fn wazuh_4_7_layout() {
        let a = parse(&argv(&[
            "/tmp/a.alert",
            "k",
            "h",
            "",
            "/tmp/x.options",
            "> /dev/null 2>&1",
        ]))
        .unwrap();
        assert_eq!(a.options_file, Some(PathBuf::from("/tmp/x.options")));
        assert_eq!(a.timeout, None);
        assert_eq!(a.retries, None);
    }

    #[test]
    fn wazuh_4_6_layout_redirect_with_leading_space() {
        let a = parse(&argv(&["/tmp/a.alert", "k", "h", " > /dev/null 2>&1"])).unwrap();
        assert!(!a.debug);
        assert_eq!(a.options_file, None);
        let d = parse(&argv(&["/tmp/a.alert", "k", "h", "debug"])).unwrap();
        assert!(d.debug);
    }

    #[test]
    fn seed_minimum_of_three_arguments() {
        let a = parse(&argv(&["/tmp/a.alert", "k", "h"])).unwrap();
        assert_eq!(a.api_key, Some(ApiKey::new("k")));
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert_eq!(parse(&argv(&[])), Err(ArgsError::NoAlertFile));
        assert_eq!(parse(&argv(&["", "k"])), Err(ArgsError::NoAlertFile));
        assert!(matches!(
            parse(&argv(&["a", "k", "h", "", "", "ten", "3"])),
            Err(ArgsError::Bad { index: 6, .. })
        ));
        assert!(matches!(
            parse(&argv(&["a", "k", "h", "verbose"])),
            Err(ArgsError::Bad { index: 4, .. })
        ));
        assert!(matches!(
            parse(&argv(&["a", "k", "h", "", "", "1", "2", "x", "y"])),
            Err(ArgsError::TooMany(10))
        ));
    }

    #[test]
    fn the_key_never_shows_in_errors_or_debug_output() {
        let a = parse(&argv(&["a", "s3cr3t-key-value", "h"])).unwrap();
        assert!(!format!("{a:?}").contains("s3cr3t"));
    }

    #[test]
    fn bad_slots_are_named_by_position_without_their_value() {
        let piece = "s3cr3tPieceOfTheKey";
        for list in [
            ["/tmp/a.alert", "k", "h", piece, "", "10", "3"],
            ["/tmp/a.alert", "k", "h", "", "", piece, "3"],
            ["/tmp/a.alert", "k", "h", "", "", "10", piece],
        ] {
            let err = parse(&argv(&list)).unwrap_err().to_string();
            assert!(err.starts_with("argument "), "{err}");
            assert!(!err.contains(piece), "the value was echoed: {err}");
        }
    }
}
