//! Finding the Wazuh home (e.g. `/var/ossec`) from inside a program Wazuh runs.
//!
//! Both Wazuh commands start with no useful path on the command line: integratord passes `argv[0]`
//! = `integrations`, execd passes `active-response/bin/<name>` relative to the home it runs
//! from. So the home comes, in this order, from
//!
//! 1. `WAZUH_HOME`, when set and not empty (tests, unusual layouts);
//! 2. the executable's own resolved path, in either layout Wazuh installs programs in:
//!    `<home>/integrations/<name>` or `<home>/active-response/bin/<name>`;
//! 3. `argv[0]` (made absolute against the working directory) in the same layouts, which
//!    covers a program installed as a symlink to a binary elsewhere (`/proc/self/exe` then
//!    names the target, `argv[0]` the link) — Wazuh's own `w_homedir()` does the same;
//! 4. the working directory, which both integratord and execd set to the home.
//!
//! Both commands call [`wazuh_home`] (through [`current_wazuh_home`]); [`HomeFrom`] says which
//! clue answered, for the debug log.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// The directory integratord runs integrations from.
pub const INTEGRATIONS_DIR: &str = "integrations";
/// The directory execd runs active-response programs from.
pub const ACTIVE_RESPONSE_BIN_DIR: &str = "active-response/bin";

/// What the process knows that can tell the home.
#[derive(Debug, Clone, Default)]
pub struct HomeClues {
    /// `WAZUH_HOME`.
    pub env_home: Option<OsString>,
    /// The resolved executable (`/proc/self/exe`).
    pub exe: Option<PathBuf>,
    /// `argv[0]` as given.
    pub argv0: Option<PathBuf>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
}

impl HomeClues {
    /// The clues of the running process.
    pub fn of_process() -> HomeClues {
        HomeClues {
            env_home: std::env::var_os("WAZUH_HOME"),
            exe: std::env::current_exe().ok(),
            argv0: std::env::args_os().next().map(PathBuf::from),
            cwd: std::env::current_dir().ok(),
        }
    }
}

/// Which clue gave the home.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeFrom {
    Env,
    Executable,
    Argv0,
    WorkingDirectory,
}

/// A home and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WazuhHome {
    pub path: PathBuf,
    pub from: HomeFrom,
}

/// The home the clues point to, in the order the module documentation gives; `None` only
/// when there is no clue at all (no environment, no path, no working directory).
pub fn wazuh_home(clues: &HomeClues) -> Option<WazuhHome> {
    let found = |path: PathBuf, from: HomeFrom| Some(WazuhHome { path, from });
    if let Some(home) = clues.env_home.as_ref().filter(|h| !h.is_empty()) {
        return found(PathBuf::from(home), HomeFrom::Env);
    }
    if let Some(home) = clues.exe.as_deref().and_then(home_of_installed) {
        return found(home, HomeFrom::Executable);
    }
    let argv0 = clues.argv0.as_deref().map(|a| match &clues.cwd {
        Some(cwd) if a.is_relative() => cwd.join(a),
        _ => a.to_path_buf(),
    });
    if let Some(home) = argv0.as_deref().and_then(home_of_installed) {
        return found(home, HomeFrom::Argv0);
    }
    clues
        .cwd
        .clone()
        .and_then(|cwd| found(cwd, HomeFrom::WorkingDirectory))
}

/// The home of the running process (`.` when nothing at all tells).
pub fn current_wazuh_home() -> PathBuf {
    wazuh_home(&HomeClues::of_process()).map_or_else(|| PathBuf::from("."), |h| h.path)
}

/// `<home>/integrations/<name>` or `<home>/active-response/bin/<name>` → `<home>`, for an
/// absolute `<home>` only (a relative one would depend on where the question is asked).
pub fn home_of_installed(path: &Path) -> Option<PathBuf> {
    let dir = path.parent()?;
    let home = if dir.file_name()? == INTEGRATIONS_DIR {
        dir.parent()?
    } else if in_active_response_bin(path) {
        dir.parent()?.parent()?
    } else {
        return None;
    };
    Some(home.to_path_buf()).filter(|h| h.is_absolute())
}

/// True when `path` names a program in `…/active-response/bin/`.
pub fn in_active_response_bin(path: &Path) -> bool {
    let mut parents = path.components().rev().skip(1);
    parents.next() == Some(Component::Normal("bin".as_ref()))
        && parents.next() == Some(Component::Normal("active-response".as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clues(
        env: Option<&str>,
        exe: Option<&str>,
        argv0: Option<&str>,
        cwd: Option<&str>,
    ) -> HomeClues {
        HomeClues {
            env_home: env.map(OsString::from),
            exe: exe.map(PathBuf::from),
            argv0: argv0.map(PathBuf::from),
            cwd: cwd.map(PathBuf::from),
        }
    }

    fn home(c: &HomeClues) -> Option<(PathBuf, HomeFrom)> {
        wazuh_home(c).map(|h| (h.path, h.from))
    }

    #[test]
    fn home_is_the_parent_of_integrations() {
        let c = clues(
            None,
            Some("/var/ossec/integrations/custom-abuseipdb"),
            Some("integrations"),
            Some("/elsewhere"),
        );
        assert_eq!(home(&c), Some(("/var/ossec".into(), HomeFrom::Executable)));
    }

    #[test]
    fn home_is_above_active_response_bin() {
        let c = clues(
            None,
            Some("/var/ossec/active-response/bin/repute-block"),
            Some("active-response/bin/repute-block"),
            None,
        );
        assert_eq!(home(&c), Some(("/var/ossec".into(), HomeFrom::Executable)));
    }

    #[test]
    fn env_overrides_and_cwd_is_the_fallback() {
        let exe = Some("/var/ossec/integrations/custom-abuseipdb");
        assert_eq!(
            home(&clues(Some("/opt/wazuh"), exe, None, None)),
            Some(("/opt/wazuh".into(), HomeFrom::Env))
        );
        assert_eq!(
            home(&clues(
                None,
                Some("/usr/bin/repute"),
                None,
                Some("/var/ossec")
            )),
            Some(("/var/ossec".into(), HomeFrom::WorkingDirectory))
        );
        // An empty WAZUH_HOME is no override; with no clue at all there is no home.
        assert_eq!(
            home(&clues(Some(""), Some("/usr/bin/repute"), None, None)),
            None
        );
        let nothing = HomeClues::default();
        assert_eq!(home(&nothing), None);
    }

    #[test]
    fn a_symlinked_install_is_found_by_argv0_under_the_cwd() {
        // The resolved exe says nothing, `argv[0]` under the cwd does (execd's way of starting).
        let c = clues(
            None,
            Some("/usr/bin/repute"),
            Some("active-response/bin/repute-block"),
            Some("/var/ossec"),
        );
        assert_eq!(home(&c), Some(("/var/ossec".into(), HomeFrom::Argv0)));
        let absolute = clues(
            None,
            Some("/usr/bin/repute"),
            Some("/opt/w/integrations/custom-abuseipdb"),
            Some("/"),
        );
        assert_eq!(home(&absolute), Some(("/opt/w".into(), HomeFrom::Argv0)));
        // integratord's literal `argv[0]` names no layout: the cwd answers.
        let integratord = clues(
            None,
            Some("/usr/bin/repute"),
            Some("integrations"),
            Some("/var/ossec"),
        );
        assert_eq!(
            home(&integratord),
            Some(("/var/ossec".into(), HomeFrom::WorkingDirectory))
        );
        let by_hand = clues(None, Some("/usr/bin/repute"), Some("repute"), Some("/"));
        assert_eq!(
            home(&by_hand),
            Some(("/".into(), HomeFrom::WorkingDirectory))
        );
    }

    #[test]
    fn only_the_two_layouts_count() {
        for path in [
            "/usr/bin/repute",
            "/x/active-response/repute",
            "/x/bin/repute",
            "integrations/custom-abuseipdb",
            "active-response/bin/repute-block",
        ] {
            assert_eq!(home_of_installed(Path::new(path)), None, "{path}");
        }
        assert!(in_active_response_bin(Path::new(
            "/var/ossec/active-response/bin/repute-block"
        )));
        assert!(in_active_response_bin(Path::new(
            "active-response/bin/repute-block"
        )));
        assert!(!in_active_response_bin(Path::new("/usr/bin/repute")));
        assert!(!in_active_response_bin(Path::new(
            "/x/active-response/repute"
        )));
    }
}
