//! A minimal unified diff, for `repute wazuh install --dry-run`.
//!
//! Every change install makes is one contiguous edit (an inserted block, a new or replaced
//! file), so the diff is the common prefix and suffix of lines around one hunk with three
//! lines of context; no general diff algorithm is needed.

const CONTEXT: usize = 3;

/// The unified diff of `old` → `new`, or an empty string when they are equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let start = prefix.saturating_sub(CONTEXT);
    let tail = suffix.min(CONTEXT);
    let (a_end, b_end) = (a.len() - suffix + tail, b.len() - suffix + tail);
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    out.push_str(&format!(
        "@@ -{} +{} @@\n",
        range(start, a_end - start),
        range(start, b_end - start)
    ));
    for line in &a[start..prefix] {
        out.push_str(&format!(" {line}\n"));
    }
    for line in &a[prefix..a.len() - suffix] {
        out.push_str(&format!("-{line}\n"));
    }
    for line in &b[prefix..b.len() - suffix] {
        out.push_str(&format!("+{line}\n"));
    }
    for line in &a[a.len() - suffix..a_end] {
        out.push_str(&format!(" {line}\n"));
    }
    out
}

/// `start,len` in a hunk header: 1-based, and `0,0` style for an empty side.
fn range(start: usize, len: usize) -> String {
    if len == 0 {
        format!("{start},0")
    } else {
        format!("{},{len}", start + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insertion_shows_three_lines_of_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\n";
        let new = "a\nb\nc\nd\nX\nY\ne\nf\ng\n";
        let d = unified(old, new, "a/f", "b/f");
        assert_eq!(
            d,
            "--- a/f\n+++ b/f\n@@ -2,6 +2,8 @@\n b\n c\n d\n+X\n+Y\n e\n f\n g\n"
        );
    }

    #[test]
    fn new_files_and_equal_files() {
        assert_eq!(unified("x\n", "x\n", "a", "b"), "");
        assert_eq!(
            unified("", "x\ny\n", "/dev/null", "b/f"),
            "--- /dev/null\n+++ b/f\n@@ -0,0 +1,2 @@\n+x\n+y\n"
        );
    }

    #[test]
    fn a_replacement_keeps_both_sides() {
        let d = unified("a\nb\nc\n", "a\nB\nc\n", "x", "y");
        assert_eq!(d, "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    }
}
