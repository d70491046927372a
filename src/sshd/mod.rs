//! sshd log lines to [`Attempt`](crate::Attempt)s.
//!
//! (Skeleton: the API is the contract `scan` and the corpus runner use; the parser is filled
//! in by the "Core" issue.)

use crate::Attempt;

/// Parses sshd lines one at a time, remembering per connection (pid) what earlier lines said
/// so that lines without an address can be attributed.
#[derive(Debug, Default)]
pub struct Parser {}

impl Parser {
    /// A parser that dates year-less syslog stamps relative to `now` (a stamp later than
    /// `now` is taken as last year's).
    pub fn new(now: jiff::Timestamp) -> Self {
        let _ = now;
        Parser {}
    }

    /// One log line (without its newline) to an attempt, when it is an sshd authentication
    /// event. `origin` is left `Unknown` for the caller to fill in.
    pub fn parse_line(&mut self, line: &str) -> Option<Attempt> {
        let _ = line;
        None
    }
}
