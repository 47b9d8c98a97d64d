//! Editing buffers: replacing spans and showing the change as a unified diff.
//!
//! Edits are pure buffer operations. Every byte outside an edited span is kept, so line
//! endings, encodings and neighbouring text survive. Writing the result to disk is
//! [`crate::files`]' concern.

use std::ops::Range;

/// Replace the bytes in `range` with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The span of the original buffer to replace.
    pub range: Range<usize>,
    /// What to put there.
    pub replacement: Vec<u8>,
}

/// Applies `edits` (ordered by position, not overlapping) to `buf`.
pub fn apply(buf: &[u8], edits: &[Edit]) -> Vec<u8> {
    let grow: isize = edits
        .iter()
        .map(|e| e.replacement.len() as isize - e.range.len() as isize)
        .sum();
    let mut out = Vec::with_capacity(buf.len().saturating_add_signed(grow));
    let mut at = 0;
    for edit in edits {
        assert!(edit.range.start >= at, "edits must be ordered and disjoint");
        out.extend_from_slice(&buf[at..edit.range.start]);
        out.extend_from_slice(&edit.replacement);
        at = edit.range.end;
    }
    out.extend_from_slice(&buf[at..]);
    out
}

/// Lines of context around each change in a diff.
const CONTEXT: usize = 3;

/// A unified diff (`diff -u` style) of what `edits` do to `buf`, byte for byte.
///
/// Edits here never span a line break, so each changed line maps to one new line.
pub fn unified_diff(old_name: &str, new_name: &str, buf: &[u8], edits: &[Edit]) -> Vec<u8> {
    if edits.is_empty() {
        return Vec::new();
    }
    let mut starts = vec![0];
    starts.extend(memchr::memchr_iter(b'\n', buf).map(|i| i + 1));
    if starts.last() == Some(&buf.len()) && !buf.is_empty() {
        starts.pop();
    }
    let line = |i: usize| &buf[starts[i]..starts.get(i + 1).copied().unwrap_or(buf.len())];

    // The changed lines with their new text, in order. Edits are ordered, so the line of each
    // is found by moving forward: one pass over lines and edits together.
    let mut changed: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut n = 0;
    let mut i = 0;
    while i < edits.len() {
        while n + 1 < starts.len() && starts[n + 1] <= edits[i].range.start {
            n += 1;
        }
        let next_line = starts.get(n + 1).copied().unwrap_or(usize::MAX);
        let mut j = i;
        while j < edits.len() && edits[j].range.start < next_line {
            j += 1;
        }
        let offset = starts[n];
        let local: Vec<Edit> = edits[i..j]
            .iter()
            .map(|e| Edit {
                range: e.range.start - offset..e.range.end - offset,
                replacement: e.replacement.clone(),
            })
            .collect();
        changed.push((n, apply(line(n), &local)));
        i = j;
    }

    let mut out = format!("--- {old_name}\n+++ {new_name}\n").into_bytes();
    let mut h = 0;
    while h < changed.len() {
        // Changes closer than twice the context share a hunk.
        let mut last = h;
        while last + 1 < changed.len() && changed[last + 1].0 - changed[last].0 <= 2 * CONTEXT + 1 {
            last += 1;
        }
        let first_line = changed[h].0.saturating_sub(CONTEXT);
        let end_line = (changed[last].0 + CONTEXT + 1).min(starts.len());
        let len = end_line - first_line;
        out.extend_from_slice(format!("@@ -{0},{1} +{0},{1} @@\n", first_line + 1, len).as_bytes());
        let mut n = first_line;
        let mut c = h;
        while n < end_line {
            if c <= last && changed[c].0 == n {
                // A run of consecutive changed lines: all removals, then all additions.
                let run_start = c;
                while c <= last && changed[c].0 == n {
                    c += 1;
                    n += 1;
                }
                for (old, _) in &changed[run_start..c] {
                    push_line(&mut out, b'-', line(*old));
                }
                for (_, new) in &changed[run_start..c] {
                    push_line(&mut out, b'+', new);
                }
            } else {
                push_line(&mut out, b' ', line(n));
                n += 1;
            }
        }
        h = last + 1;
    }
    out
}

fn push_line(out: &mut Vec<u8>, marker: u8, line: &[u8]) {
    out.push(marker);
    out.extend_from_slice(line);
    if !line.ends_with(b"\n") {
        out.extend_from_slice(b"\n\\ No newline at end of file\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(start: usize, end: usize, with: &str) -> Edit {
        Edit {
            range: start..end,
            replacement: with.as_bytes().to_vec(),
        }
    }

    #[test]
    fn growing_and_shrinking_at_start_and_end() {
        assert_eq!(apply(b"abc", &[edit(0, 1, "XYZ")]), b"XYZbc");
        assert_eq!(apply(b"abc", &[edit(2, 3, "")]), b"ab");
        assert_eq!(apply(b"abc", &[edit(0, 3, "")]), b"");
        assert_eq!(apply(b"abc", &[edit(3, 3, "!")]), b"abc!");
        assert_eq!(apply(b"", &[]), b"");
    }

    #[test]
    fn several_edits_in_one_line() {
        let buf = b"a:1 b:2 c:3";
        let out = apply(buf, &[edit(1, 3, ":10"), edit(9, 11, "")]);
        assert_eq!(out, b"a:10 b:2 c");
    }

    #[test]
    fn bytes_around_edits_are_kept() {
        let buf = b"\xff\r\nx:1\r\n\x80";
        assert_eq!(apply(buf, &[edit(4, 6, ":22")]), b"\xff\r\nx:22\r\n\x80");
    }

    #[test]
    fn diff_of_a_single_change() {
        let buf = b"1\n2\n3\n4\nimage: a:1\n6\n7\n8\n9\n";
        let diff = unified_diff("a/f", "b/f", buf, &[edit(16, 18, ":2")]);
        assert_eq!(
            String::from_utf8(diff).unwrap(),
            "--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-image: a:1\n+image: a:2\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn diff_without_final_newline_and_with_crlf() {
        let buf = b"x\r\nimage: a:1";
        let diff = unified_diff("a/f", "b/f", buf, &[edit(11, 13, ":2")]);
        assert_eq!(
            diff,
            b"--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n x\r\n-image: a:1\n\\ No newline at end of file\n+image: a:2\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn distant_changes_get_separate_hunks_and_near_ones_share() {
        let text: String = (1..=30).map(|i| format!("l{i:02}\n")).collect();
        let at = |line: usize| (line - 1) * 4;
        let diff = unified_diff(
            "a",
            "b",
            text.as_bytes(),
            &[
                edit(at(2), at(2) + 3, "X"),
                edit(at(9), at(9) + 3, "Y"),
                edit(at(25), at(25) + 3, "Z"),
            ],
        );
        let diff = String::from_utf8(diff).unwrap();
        let headers: Vec<_> = diff.lines().filter(|l| l.starts_with("@@")).collect();
        assert_eq!(headers, ["@@ -1,12 +1,12 @@", "@@ -22,7 +22,7 @@"]);
        assert!(diff.contains("-l02\n+X\n"));
        assert!(diff.contains("-l25\n+Z\n"));
    }

    #[test]
    fn consecutive_changed_lines_group_removals_first() {
        let diff = unified_diff("a", "b", b"p\nq\n", &[edit(0, 1, "P"), edit(2, 3, "Q")]);
        assert_eq!(diff, b"--- a\n+++ b\n@@ -1,2 +1,2 @@\n-p\n-q\n+P\n+Q\n");
    }

    #[test]
    fn several_edits_per_line_over_many_lines_give_one_new_line_each() {
        let text: String = (0..50).map(|i| format!("a:{i} b:{i}\n")).collect();
        let buf = text.as_bytes();
        let mut edits = Vec::new();
        let mut at = 0;
        for line in text.split_inclusive('\n') {
            let b = line.find(" b:").unwrap();
            edits.push(edit(at + 1, at + b, ":x"));
            edits.push(edit(at + b + 2, at + line.len() - 1, ":y"));
            at += line.len();
        }
        let diff = String::from_utf8(unified_diff("a", "b", buf, &edits)).unwrap();
        let added: Vec<_> = diff.lines().filter(|l| l.starts_with('+')).collect();
        assert_eq!(added.len(), 51, "{diff}");
        assert!(added[1..].iter().all(|l| *l == "+a:x b:y"), "{diff}");
        let removed = diff.lines().filter(|l| l.starts_with('-')).count();
        assert_eq!(removed, 51, "{diff}");
        assert!(diff.contains("\n-a:49 b:49\n"), "{diff}");
    }
}
