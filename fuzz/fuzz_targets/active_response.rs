//! The active-response reader on arbitrary bytes, as execd would send them: the bounded
//! line reader, the message parser and every field the program reads, the extra arguments,
//! and the reply to `check_keys`. Nothing may panic.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use repute::wazuh::active_response::{self, Message};

/// The cap the program reads execd's lines with is not public; any small one exercises the
/// same code.
const MAX_LINE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    // Two lines, as execd's protocol has: the message, then the reply to check_keys.
    let Ok(Some(first)) = active_response::read_line_bounded(&mut input, MAX_LINE) else {
        return;
    };
    if let Ok(Some(reply)) = active_response::read_line_bounded(&mut input, MAX_LINE) {
        let _ = active_response::parse_reply(&reply);
    }
    let _ = active_response::parse_reply(&first);
    let Ok(message) = Message::parse(&first) else {
        return;
    };
    let _ = message.srcip_text();
    let _ = message.srcip();
    let _ = message.alert_score();
    let _ = message.rule_summary();
    let extra = message.extra_args();
    let _ = active_response::parse_extra_args(&extra);
    let _ = active_response::check_keys_message("repute-block", &extra);
});
