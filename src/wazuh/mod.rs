//! Wazuh: the alert model, the integration protocol, the queue socket, the shipped ruleset,
//! installation into a Wazuh tree, and active response.
//!
//! - [`alert`] reads the alert file integratord writes (JSON or the legacy text format).
//! - [`args`] understands integratord's command line in every 4.x layout.
//! - [`home`] finds the Wazuh home for both commands (`integrations/<name>` and
//!   `active-response/bin/<name>` layouts, `WAZUH_HOME`, `argv[0]`, the working directory).
//! - [`options`] builds the run's settings (home defaults, environment, `<options>`, argv).
//! - [`event`] builds the enrichment event, field-compatible with the seed script.
//! - [`queue`] frames it and sends it to analysisd's datagram socket.
//! - [`log`] writes `logs/integrations.log` without the key.
//! - [`integration`] ties them together: one run per alert, bounded in time.
//! - [`ruleset`] is the shipped XML rules; [`install`] puts binary, rules and configuration
//!   (and, on request, the active response) into a Wazuh tree, editing `ossec.conf` with
//!   [`ossec_conf`]; `--dry-run` shows the edits as a unified [`diff`]. [`xml`] reads Wazuh's
//!   XML dialect (rules files, `ossec.conf`) for all of them. [`uninstall`] takes it all back
//!   out (the key only on request), with a backup of `ossec.conf`.
//! - [`active_response`] is execd's side: the 4.2+ JSON protocol that `repute wazuh
//!   active-response` speaks to block and unblock an address.

pub mod active_response;
pub mod alert;
pub mod args;
pub mod diff;
pub mod event;
pub mod home;
pub mod install;
pub mod integration;
pub mod log;
pub mod options;
pub mod ossec_conf;
pub mod queue;
pub mod ruleset;
pub mod uninstall;
pub mod xml;
