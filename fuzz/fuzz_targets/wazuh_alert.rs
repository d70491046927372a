//! The Wazuh alert reader on arbitrary bytes (JSON alerts and integratord's legacy
//! `key='value'` format), then every accessor the integration calls, and the sshd parser on
//! the alert's `full_log` as the integration does. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repute::wazuh::alert::Alert;

fuzz_target!(|data: &[u8]| {
    let Ok(alert) = Alert::parse(data) else {
        return;
    };
    let _ = alert.id();
    let _ = alert.rule_id();
    let _ = alert.rule_description();
    let _ = alert.location();
    let _ = alert.srcip_text();
    let _ = alert.srcip();
    let _ = alert.agent().map(|a| a.is_manager());
    let _ = alert.is_own_enrichment();
    if let Some(log) = alert.full_log() {
        let _ = repute::sshd::parse_message(&log);
    }
});
