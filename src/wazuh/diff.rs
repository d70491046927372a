//! A small unified diff, for `repute wazuh install --dry-run`.
//!
//! Install's edits are few and small (a new file, a block or two inserted into `ossec.conf`),
//! so a plain longest-common-subsequence table over the lines between the common prefix and
//! suffix is enough; hunks carry three lines of context and merge when their context meets.
//! A middle too large for the table (never an `ossec.conf`) is shown as one replacement.

const CONTEXT: usize = 3;
/// The largest LCS table built, in cells.
const MAX_TABLE: usize = 4_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Keep,
    Remove,
    Add,
}

/// The unified diff of `old` → `new`, or an empty string when they are equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let script = edit_script(&a, &b);
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    for hunk in hunks(&script) {
        out.push_str(&render(&script[hunk.0..hunk.1], &a, &b));
    }
    out
}

/// One step per line: the line of `a` kept or removed, or the line of `b` added; with the
/// index of the line in `a` and in `b` it is at.
fn edit_script(a: &[&str], b: &[&str]) -> Vec<(Op, usize, usize)> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut script: Vec<(Op, usize, usize)> = (0..prefix).map(|i| (Op::Keep, i, i)).collect();
    let middle = middle_ops(am, bm);
    let (mut i, mut j) = (prefix, prefix);
    for op in middle {
        script.push((op, i, j));
        match op {
            Op::Keep => (i, j) = (i + 1, j + 1),
            Op::Remove => i += 1,
            Op::Add => j += 1,
        }
    }
    script.extend((0..suffix).map(|k| (Op::Keep, i + k, j + k)));
    script
}

/// The operations turning `a` into `b`, by LCS (or remove-all, add-all when too large).
fn middle_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) > MAX_TABLE {
        return [vec![Op::Remove; n], vec![Op::Add; m]].concat();
    }
    // lcs[i][j]: the LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::with_capacity(n + m));
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Keep);
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals first, as diff(1) shows a replaced line.
            ops.push(Op::Remove);
            i += 1;
        } else {
            ops.push(Op::Add);
            j += 1;
        }
    }
    ops
}

/// The ranges of the script each hunk covers: the changes with their context, merged when
/// they overlap or touch.
fn hunks(script: &[(Op, usize, usize)]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (k, step) in script.iter().enumerate() {
        if step.0 == Op::Keep {
            continue;
        }
        let (start, end) = (
            k.saturating_sub(CONTEXT),
            (k + 1 + CONTEXT).min(script.len()),
        );
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = end,
            _ => out.push((start, end)),
        }
    }
    out
}

/// One hunk: its header and its lines.
fn render(steps: &[(Op, usize, usize)], a: &[&str], b: &[&str]) -> String {
    let a_len = steps.iter().filter(|s| s.0 != Op::Add).count();
    let b_len = steps.iter().filter(|s| s.0 != Op::Remove).count();
    let (a_start, b_start) = steps.first().map_or((0, 0), |s| (s.1, s.2));
    let mut out = format!(
        "@@ -{} +{} @@\n",
        range(a_start, a_len),
        range(b_start, b_len)
    );
    for &(op, i, j) in steps {
        match op {
            Op::Keep => out.push_str(&format!(" {}\n", a[i])),
            Op::Remove => out.push_str(&format!("-{}\n", a[i])),
            Op::Add => out.push_str(&format!("+{}\n", b[j])),
        }
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
    fn two_insertions_make_two_hunks() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 5\n", "line 5\nX\n")
            .replace("line 15\n", "line 15\nY\nZ\n");
        let d = unified(&old, &new, "a", "b");
        assert_eq!(
            d,
            "--- a\n+++ b\n@@ -3,6 +3,7 @@\n line 3\n line 4\n line 5\n+X\n line 6\n line 7\n line 8\n@@ -13,6 +14,8 @@\n line 13\n line 14\n line 15\n+Y\n+Z\n line 16\n line 17\n line 18\n"
        );
        // Close changes share one hunk.
        let near = old
            .replace("line 5\n", "line 5\nX\n")
            .replace("line 9\n", "line 9\nY\n");
        assert_eq!(unified(&old, &near, "a", "b").matches("@@ -").count(), 1);
    }

    #[test]
    fn a_replacement_keeps_both_sides() {
        let d = unified("a\nb\nc\n", "a\nB\nc\n", "x", "y");
        assert_eq!(d, "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    }
}
