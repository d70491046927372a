//! Text from outside (attackers' user names, the provider's ISP, domain or usage type) made
//! safe to print on a terminal.
//!
//! Such text may carry newlines, ANSI escape sequences or other control characters that would
//! forge table rows or recolour and rewrite the screen; every table that shows it (`repute
//! scan`'s, `repute check`'s) passes it through [`shown`]. JSON output needs none of this:
//! the serializer escapes control characters itself.

/// `text` escaped (`{:?}`-style, without the quotes: a newline is `\n`, ESC is `\u{1b}`) and
/// cut to `max` characters and an ellipsis, so it can neither break nor widen a layout.
pub fn shown(text: &str, max: usize) -> String {
    let escaped: String = text.escape_debug().collect();
    match escaped.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_escapes_are_shown_not_obeyed() {
        assert_eq!(shown("plain ISP", 40), "plain ISP");
        assert_eq!(shown("a\nb\x1b[31mc\r\t", 40), "a\\nb\\u{1b}[31mc\\r\\t");
        assert_eq!(shown("\u{9b}2J", 40), "\\u{9b}2J");
        assert_eq!(shown(&"x".repeat(50), 10), format!("{}…", "x".repeat(10)));
    }
}
