//! `logs/integrations.log`, written the way Wazuh's own integrations write it.
//!
//! One line per call (what was asked and what was done), and with `debug` the steps as well.
//! Lines carry a `YYYY/MM/DD HH:MM:SS` local timestamp and the integration name, like Wazuh's
//! other logs. The API key is never written: nothing passes it in, and as a second guard any
//! line that would contain it has it replaced (the seed script logged it on every call).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Where the log lives inside the Wazuh home.
pub const LOG_FILE: &str = "logs/integrations.log";

/// The integration's log. Failing to open it never stops the integration.
pub struct IntegrationLog {
    file: Option<File>,
    debug: bool,
    name: String,
    secret: Option<String>,
}

impl IntegrationLog {
    /// Opens (creating, mode 0640 as Wazuh does) `logs/integrations.log` under `home`.
    pub fn open(home: &Path, name: &str, debug: bool) -> IntegrationLog {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(home.join(LOG_FILE))
            .ok();
        IntegrationLog {
            file,
            debug,
            name: name.to_string(),
            secret: None,
        }
    }

    /// Remembers the key so that it can be scrubbed from any line that would carry it.
    pub fn scrub(&mut self, secret: &str) {
        // Scrubbing a very short "key" would mangle ordinary words; such a key is not secret.
        if secret.len() >= 8 {
            self.secret = Some(secret.to_string());
        }
    }

    /// The one line per call.
    pub fn info(&mut self, message: &str) {
        self.write(message);
    }

    /// A step, written only with `debug`.
    pub fn debug(&mut self, message: &str) {
        if self.debug {
            self.write(&format!("debug: {message}"));
        }
    }

    fn write(&mut self, message: &str) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut text = message.replace(['\n', '\r'], " ");
        if let Some(secret) = &self.secret {
            text = text.replace(secret.as_str(), "[redacted]");
        }
        let line = format!("{} {}: {text}\n", timestamp(), self.name);
        // One write per line, so lines of concurrent processes do not interleave (O_APPEND).
        let _ = file.write_all(line.as_bytes());
    }
}

fn timestamp() -> String {
    local_now().strftime("%Y/%m/%d %H:%M:%S").to_string()
}

/// Now, in the host's local time, as Wazuh writes its logs: for the integration's and the
/// active response's log lines, which start once per alert.
///
/// Not `ZonedDateTime::now()`: to give the zone a *name*, jiff lists the whole zoneinfo
/// database (42 directory reads and a file per zone here, the largest cost of a run), and a
/// log line needs only the offset. `/etc/localtime`, read as TZif, has the same rules. `TZ`,
/// when set, still goes through jiff, which honours it.
pub fn local_now() -> jiff::ZonedDateTime {
    jiff::Timestamp::now().to_zoned_datetime(local_zone())
}

fn local_zone() -> jiff::tz::TimeZone {
    if std::env::var_os("TZ").is_some_and(|tz| !tz.is_empty()) {
        return jiff::tz::TimeZone::system();
    }
    std::fs::read("/etc/localtime")
        .ok()
        .and_then(|tzif| jiff::tz::TimeZone::tzif("localtime", &tzif).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_lines_and_debug_only_in_debug_and_never_the_key() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("logs")).unwrap();
        let mut log = IntegrationLog::open(home.path(), "custom-abuseipdb", false);
        log.scrub("0123456789abcdef");
        log.info("checked 49.88.112.73");
        log.debug("step one");
        let mut dbg = IntegrationLog::open(home.path(), "custom-abuseipdb", true);
        dbg.scrub("0123456789abcdef");
        dbg.debug("key was 0123456789abcdef\nsecond line");
        let text = std::fs::read_to_string(home.path().join(LOG_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("custom-abuseipdb: checked 49.88.112.73"));
        assert!(lines[1].contains("debug: key was [redacted] second line"));
        assert!(!text.contains("0123456789abcdef"));
        assert!(!text.contains("step one"));
    }

    #[test]
    fn the_local_time_is_the_system_zones() {
        // Same offset as jiff's own (slow) resolution of the system zone.
        let ours = local_now();
        let jiffs = jiff::ZonedDateTime::now();
        assert_eq!(ours.offset(), jiffs.offset());
    }

    #[test]
    fn a_missing_log_directory_is_not_an_error() {
        let home = tempfile::tempdir().unwrap();
        let mut log = IntegrationLog::open(&home.path().join("nope"), "x", true);
        log.info("nothing happens");
        assert!(!home.path().join("nope").exists());
    }
}
