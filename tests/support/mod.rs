//! Test support shared by the door tests: `mod support;` in a test file, then
//! `support::mock_abuseipdb::MockAbuseIpdb::start()`.

#![allow(dead_code)]

pub mod mock_abuseipdb;
pub mod redis_server;
pub mod wazuh_tree;

#[allow(unused_imports)]
pub use wazuh_tree::copy_program;
