//! Literal search in short strings, without a searcher to build.
//!
//! sshd messages are about a hundred bytes; `str::find(&str)` and `memmem` spend more
//! setting up their searchers than searching. These look for the needle's first byte with
//! `memchr` and compare the rest in place. Needles are ASCII, so every index returned is a
//! char boundary.

/// Byte index of the first `needle` in `hay`.
pub fn find(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let (&first, rest) = n.split_first()?;
    let mut from = 0;
    while let Some(p) = memchr::memchr(first, h.get(from..)?) {
        let at = from + p;
        if h.get(at + 1..at + n.len()) == Some(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Byte index of the last `needle` in `hay`.
pub fn rfind(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let (&first, rest) = n.split_first()?;
    let mut end = h.len();
    while let Some(at) = memchr::memrchr(first, &h[..end]) {
        if h.get(at + 1..at + n.len()) == Some(rest) {
            return Some(at);
        }
        end = at;
    }
    None
}

/// `hay` split around the first `needle`.
pub fn split_once<'a>(hay: &'a str, needle: &str) -> Option<(&'a str, &'a str)> {
    let at = find(hay, needle)?;
    Some((&hay[..at], &hay[at + needle.len()..]))
}

/// `hay` split around the last `needle`.
pub fn rsplit_once<'a>(hay: &'a str, needle: &str) -> Option<(&'a str, &'a str)> {
    let at = rfind(hay, needle)?;
    Some((&hay[..at], &hay[at + needle.len()..]))
}

/// `s` without its leading spaces (a byte loop: `trim_start_matches` goes through the
/// generic pattern machinery).
pub fn skip_spaces(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| b == b' ').count();
    &s[n..]
}

/// `s` without trailing spaces, tabs and line ends.
pub fn trim_end_blanks(s: &str) -> &str {
    let n = s
        .bytes()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    &s[..s.len() - n]
}

/// Like [`find`], ignoring ASCII case.
pub fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let (&first, rest) = n.split_first()?;
    let mut from = 0;
    while let Some(p) = memchr::memchr2(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        h.get(from..)?,
    ) {
        let at = from + p;
        if h.get(at + 1..at + n.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
        {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Index of the first space (tokens are short: a plain loop beats a SIMD call).
pub fn space(s: &str) -> Option<usize> {
    s.bytes().position(|b| b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_like_std() {
        let hays = [
            "",
            "a",
            " from ",
            "x from y from z",
            "fro from",
            "ab",
            "from",
        ];
        for hay in hays {
            for needle in [" from ", "from", "a", "ab", " "] {
                assert_eq!(find(hay, needle), hay.find(needle), "{hay:?} {needle:?}");
                assert_eq!(rfind(hay, needle), hay.rfind(needle), "{hay:?} {needle:?}");
            }
        }
        assert_eq!(split_once("a=b=c", "="), Some(("a", "b=c")));
        assert_eq!(rsplit_once("a=b=c", "="), Some(("a=b", "c")));
        assert_eq!(space("ab c"), Some(2));
        assert_eq!(skip_spaces("  a "), "a ");
        assert_eq!(trim_end_blanks(" a \t\r\n"), " a");
        assert_eq!(find_ci("x Invalid USER y", "invalid user"), Some(2));
        assert_eq!(find_ci("abc", "abcd"), None);
    }
}
