//! Finding the Wazuh home (e.g. `/var/ossec`) from inside an integration.
//!
//! integratord passes argv[0] = `integrations`, not the program path, so the home comes from
//! the executable itself: `<home>/integrations/<name>` → `<home>`. `WAZUH_HOME` overrides it
//! (tests, unusual layouts), and the working directory, which integratord sets to the home, is
//! the last resort (a binary reached through a symlink resolves to its real location).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The directory integratord runs integrations from.
pub const INTEGRATIONS_DIR: &str = "integrations";

/// The home for an executable at `exe`, given `WAZUH_HOME` and the working directory.
pub fn wazuh_home(exe: Option<&Path>, env_home: Option<OsString>, cwd: Option<PathBuf>) -> PathBuf {
    if let Some(home) = env_home.filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    if let Some(home) = exe.and_then(home_of_installed) {
        return home;
    }
    cwd.unwrap_or_else(|| PathBuf::from("."))
}

/// `<home>/integrations/<name>` → `<home>`.
fn home_of_installed(exe: &Path) -> Option<PathBuf> {
    let dir = exe.parent()?;
    (dir.file_name()? == INTEGRATIONS_DIR).then(|| dir.parent().map(Path::to_path_buf))?
}

/// The home of the running process.
pub fn current_wazuh_home() -> PathBuf {
    wazuh_home(
        std::env::current_exe().ok().as_deref(),
        std::env::var_os("WAZUH_HOME"),
        std::env::current_dir().ok(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_the_parent_of_integrations() {
        let home = wazuh_home(
            Some(Path::new("/var/ossec/integrations/custom-abuseipdb")),
            None,
            Some("/elsewhere".into()),
        );
        assert_eq!(home, PathBuf::from("/var/ossec"));
    }

    #[test]
    fn env_overrides_and_cwd_is_the_fallback() {
        let exe = Path::new("/var/ossec/integrations/custom-abuseipdb");
        assert_eq!(
            wazuh_home(Some(exe), Some("/opt/wazuh".into()), None),
            PathBuf::from("/opt/wazuh")
        );
        assert_eq!(
            wazuh_home(
                Some(Path::new("/usr/bin/repute")),
                None,
                Some("/var/ossec".into())
            ),
            PathBuf::from("/var/ossec")
        );
        assert_eq!(
            wazuh_home(Some(Path::new("/usr/bin/repute")), Some("".into()), None),
            PathBuf::from(".")
        );
    }
}
