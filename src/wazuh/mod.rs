//! Wazuh: alerts, the integration protocol, the queue socket, ruleset, install, active response.
//! (Skeleton.)
pub mod active_response;
