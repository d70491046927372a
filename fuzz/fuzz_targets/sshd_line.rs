//! The sshd line parser on arbitrary input: each line of the input through one parser (so
//! the per-connection pid table sees sequences), and the last line as a bare message and as
//! a journald-style message with its envelope given apart. Nothing may panic, and every event
//! must turn into an `Attempt`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repute::sshd::{self, Parser};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let now = jiff::Timestamp::from_second(1_764_000_000).expect("a valid instant");
    let mut parser = Parser::new(now);
    let mut last = "";
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(event) = parser.parse_line_ref(line) {
            let _ = event.to_attempt();
        }
        last = line;
    }
    let _ = sshd::parse_message(last);
    if let Some(event) = parser.parse_parts(Some(now), Some("host"), Some(4242), last) {
        let _ = event.to_attempt();
    }
});
