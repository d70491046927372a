//! The Wazuh alert reader on arbitrary bytes (JSON alerts and integratord's legacy
//! `key='value'` format), then every accessor the integration calls, the sshd parser on the
//! alert's `full_log`, and the alert's attempt (`Alert::attempt`, which the integration and the
//! active response hand to the policy). Nothing may panic.
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
    if let Some(attempt) = alert.attempt()
        && let Some(ip) = alert.srcip()
    {
        let _ = repute::policy::decision::names_another(&attempt, ip);
    }
});
