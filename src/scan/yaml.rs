//! GitLab CI's structured image contexts, read from the YAML nesting: list items under
//! `services:` (`- postgres:16`, `- name: mysql:8`) and `name:` under `image:`.
//!
//! The nesting is read forward, one line at a time, with a stack of the lines that can still
//! be a parent, so that a list of any length costs time in proportion to its size. This is
//! not a YAML parser: flow collections, block scalars and anchors are not understood.

/// A line that may still be the parent of a later one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line<'a> {
    indent: usize,
    /// The line is a list item (`- …`).
    pub item: bool,
    /// The key of the block the line opens (`services:`, `- image:`), if it opens one.
    pub key: Option<&'a [u8]>,
    /// The key of the line's own parent.
    pub parent_key: Option<&'a [u8]>,
}

/// Reads the nesting of a buffer forward; asked about lines in increasing order.
#[derive(Debug)]
pub(super) struct Nesting<'a> {
    haystack: &'a [u8],
    /// Start of the next line to read.
    at: usize,
    /// Lines not hidden by a later one, innermost last.
    open: Vec<Line<'a>>,
}

impl<'a> Nesting<'a> {
    pub(super) fn new(haystack: &'a [u8]) -> Nesting<'a> {
        Nesting {
            haystack,
            at: 0,
            open: Vec::new(),
        }
    }

    /// The line that the line starting at `start` nests in: the nearest line above with less
    /// indentation (or, for a list item, the same indentation without a `-`).
    pub(super) fn parent_of(&mut self, start: usize) -> Option<Line<'a>> {
        if start < self.at {
            // Asked out of order: read again from the top.
            self.at = 0;
            self.open.clear();
        }
        while self.at <= start && self.at < self.haystack.len() {
            let line_start = self.at;
            let line = line_at(self.haystack, line_start);
            self.at = memchr::memchr(b'\n', &self.haystack[line_start..])
                .map_or(self.haystack.len(), |i| line_start + i + 1);
            let content = line.trim_ascii();
            if content.is_empty() || content.starts_with(b"#") {
                if line_start == start {
                    return None;
                }
                continue;
            }
            let indent = line.iter().take_while(|&&b| b == b' ').count();
            let item = line[indent..].starts_with(b"-");
            // A line hides the lines above that every later line would reach it before.
            while self.open.last().is_some_and(|top| {
                top.indent > indent || (top.indent == indent && (!item || top.item))
            }) {
                self.open.pop();
            }
            let parent = self.open.last().copied();
            self.open.push(Line {
                indent,
                item,
                key: block_key(line),
                parent_key: parent.and_then(|p| p.key),
            });
            if line_start == start {
                return parent;
            }
        }
        None
    }
}

/// The line starting at `start`, without its line break.
fn line_at(haystack: &[u8], start: usize) -> &[u8] {
    let end = memchr::memchr(b'\n', &haystack[start..]).map_or(haystack.len(), |i| start + i);
    haystack[start..end]
        .strip_suffix(b"\r")
        .unwrap_or(&haystack[start..end])
}

/// The key of a line that opens a block (`services:`, `- image:`), if it is one.
fn block_key(line: &[u8]) -> Option<&[u8]> {
    let line = line.trim_ascii();
    let line = line.strip_prefix(b"-").unwrap_or(line).trim_ascii_start();
    let (key, rest) = line.split_at(line.iter().position(|&b| b == b':')?);
    let rest = rest[1..].trim_ascii();
    (rest.is_empty() || rest.starts_with(b"#")).then_some(key.trim_ascii())
}

/// A cheap test for files that may hold GitLab CI's structured image contexts.
pub(super) fn has_image_lists(haystack: &[u8]) -> bool {
    memchr::memmem::find(haystack, b"services:").is_some()
        || memchr::memmem::find(haystack, b"image:\n").is_some()
        || memchr::memmem::find(haystack, b"image:\r\n").is_some()
}

/// Whether a `YAML_ITEM` match at `start` (a line start) is an image by its nesting:
/// `- X` or `- name: X` in a `services:` list, or `name: X` in an `image:` mapping or in a
/// `services:` list item.
pub(super) fn is_image_item(nesting: &mut Nesting<'_>, start: usize, matched: &[u8]) -> bool {
    let item = matched.trim_ascii_start().starts_with(b"-");
    let Some(parent) = nesting.parent_of(start) else {
        return false;
    };
    if item {
        return parent.key == Some(b"services");
    }
    // `name:` under `image:`, or in a list item's mapping under `services:`.
    parent.key == Some(b"image") || (parent.item && parent.parent_key == Some(b"services"))
}
