//! Durations as people and scripts write them, the one parser for every setting and flag:
//! `500ms`, `90s`, `10m`, `1h`, `2d`, `1w`, a bare number of seconds, or a sum such as `1h30m`.
//! So `default_duration = "1h30m"` in the settings file means what `--for 1h30m` means, and
//! `"0"` is refused everywhere (a zero TTL, timeout or block is always a mistake).
//!
//! Hand-written rather than jiff's friendly parser: a duration here is a fixed number of
//! seconds (days are 24 hours, no calendar), and the error can say exactly which part was
//! wrong.

use std::time::Duration;

/// The longest duration accepted: a year. A longer block is a permanent block in disguise,
/// a longer TTL a cache that never forgets.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a duration was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {why}")]
pub struct DurationError {
    pub input: String,
    pub why: &'static str,
}

/// Parses a duration (see the module documentation); zero and more than a year are refused.
/// A block needs whole seconds on top: see `block::parse_duration`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError {
        input: input.to_string(),
        why,
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(err("empty"));
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("expected a number, as in 90s, 10m, 1h, 2d"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| err("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = unit_millis(&rest[..unit_len])
            .ok_or_else(|| err("unknown unit (use ms, s, m, h, d or w)"))?;
        rest = &rest[unit_len..];
        let part = number.checked_mul(unit).ok_or_else(|| err("too long"))?;
        total_ms = total_ms.checked_add(part).ok_or_else(|| err("too long"))?;
    }
    let duration = Duration::from_millis(total_ms);
    if duration.is_zero() {
        return Err(err("must be more than zero"));
    }
    if duration > MAX_DURATION {
        return Err(err("longer than a year"));
    }
    Ok(duration)
}

fn unit_millis(unit: &str) -> Option<u64> {
    let seconds = match unit {
        "ms" => return Some(1),
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return None,
    };
    Some(seconds * 1000)
}

/// A remaining time for people: `1d2h`, `59m59s`, `5s`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_forms() {
        let secs = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("10m"), Ok(600));
        assert_eq!(secs("1h"), Ok(3600));
        assert_eq!(secs("2d"), Ok(172_800));
        assert_eq!(secs("1w"), Ok(604_800));
        assert_eq!(secs("45"), Ok(45));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs(" 2 "), Ok(2));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn refusals_say_why() {
        let why = |s| parse_duration(s).err().map(|e| e.why);
        assert_eq!(why(""), Some("empty"));
        assert_eq!(why("0s"), Some("must be more than zero"));
        assert_eq!(why("0"), Some("must be more than zero"));
        assert_eq!(why("1y"), Some("unknown unit (use ms, s, m, h, d or w)"));
        assert_eq!(why("h"), Some("expected a number, as in 90s, 10m, 1h, 2d"));
        assert_eq!(
            why("-5s"),
            Some("expected a number, as in 90s, 10m, 1h, 2d")
        );
        assert_eq!(why("400d"), Some("longer than a year"));
        assert_eq!(why("99999999999999999999s"), Some("number too large"));
        assert_eq!(why("9999999999999999d"), Some("too long"));
        let msg = parse_duration("5x").err().map(|e| e.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("invalid duration \"5x\": unknown unit (use ms, s, m, h, d or w)")
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_secs(3599)), "59m59s");
        assert_eq!(format_duration(Duration::from_secs(93_600)), "1d2h");
    }
}
