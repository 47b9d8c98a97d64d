//! Finding image references in the bytes of a file.
//!
//! Two kinds of references are found. Qualified or namespaced ones (the name contains a `/`:
//! `gcr.io/p/app:v1`, `bitnami/nginx:1.2`) are found anywhere in any text, as the Go tool
//! does. Unqualified official images (`nginx:1.25`) are found only in image contexts: a
//! Dockerfile `FROM` or `COPY --from=`, the value of an `image` or `container` key (YAML, JSON,
//! HCL), and after a `docker://` transport. A reference must stand as a whole token, so URLs,
//! Bazel labels, volume mounts and templated names give nothing.
//!
//! The scanner works on bytes, so non-UTF-8 text and CRLF line endings are no obstacle. It is
//! pure: it does not read files or decide what a reference should become.

use regex::bytes::Regex;

use crate::reference::{Reference, TRANSPORTS};

mod boundary;
mod comment;
mod yaml;

use comment::Comments;
use yaml::Nesting;

/// One reference found in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Byte offset where the reference starts (after any transport prefix).
    pub start: usize,
    /// Byte offset just past the reference.
    pub end: usize,
    /// Byte offset just past the name, where `:tag@digest` begins.
    pub name_end: usize,
    /// The reference as written.
    pub reference: Reference,
}

/// What the scanner looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Also find unqualified official images (`nginx:1.25`) in image contexts.
    pub unqualified: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions { unqualified: true }
    }
}

/// A compiled scanner; cheap to clone, safe to share between threads.
#[derive(Debug, Clone)]
pub struct Scanner {
    qualified: Regex,
    /// The image-context searches, when unqualified names are looked for.
    context: Option<(Regex, Regex)>,
}

/// A candidate for a name with a `/`, then a tag and/or a digest. The candidate is loose
/// (the first segment may be a host or a path component); [`Reference::parse`] decides.
const QUALIFIED: &str = r"(?-u)[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+(?::[A-Za-z0-9_][A-Za-z0-9_.-]*(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]+)?|@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]+)";

/// Image contexts; the reference starts where the match ends. Every branch starts with a
/// literal, so the search skips ahead quickly; what must stand before it is checked by
/// [`context_applies`].
/// - Dockerfile `FROM [--platform=…] ` (the image may be quoted) and `COPY … --from=` at the
///   start of a line;
/// - a key `image` or `container` (`image`, `Image`, `IMAGE`), YAML/JSON/HCL style, quoted or not
///   (or quoted with escapes, JSON inside a string: `{\"image\":\"x:1\"}`);
/// - a `--image=` or `--image ` flag (`kubectl run`, `gcloud run deploy`), `docker pull` (past
///   its flags, and the values of those that take one: `--creds user:pass`);
/// - a `docker://`, `docker-image://` or `oci://` transport.
const CONTEXT: &str = r#"(?-u)(?:FROM|from)[ \t]+(?:--[A-Za-z-]+=[^ \t\r\n]+[ \t]+)*["']?|(?:COPY|copy)[ \t]+(?:--[A-Za-z-]+(?:=[^ \t\r\n]*)?[ \t]+)*--from=|(?:image|Image|IMAGE|container|Container|CONTAINER)(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?|--image[= ]["']?|(?:docker|podman)[ \t]+pull[ \t]+(?:--(?:creds|authfile|cert-dir|decryption-key|platform|arch|os|variant|retry|retry-delay|policy)[ \t]+[^ \t\r\n]+[ \t]+|--?[A-Za-z-]+(?:=[^ \t\r\n]+)?[ \t]+)*["']?|(?:docker|docker-image|oci)://"#;

/// GitLab CI's structured image contexts: list items under `services:` (`- postgres:16`,
/// `- name: mysql:8`) and `name:` under `image:`. Checked against the YAML nesting by
/// [`yaml::is_image_item`].
const YAML_ITEM: &str = r#"(?-u)(?m)^[ \t]*(?:-[ \t]+(?:name:[ \t]*)?|name:[ \t]*)["']?"#;

impl Scanner {
    /// Builds a scanner.
    pub fn new(options: ScanOptions) -> Scanner {
        Scanner {
            qualified: Regex::new(QUALIFIED).expect("valid regex"),
            context: options.unqualified.then(|| {
                (
                    Regex::new(CONTEXT).expect("valid regex"),
                    Regex::new(YAML_ITEM).expect("valid regex"),
                )
            }),
        }
    }

    /// Finds every reference in `haystack`, ordered by position, without overlaps.
    pub fn scan(&self, haystack: &[u8]) -> Vec<Occurrence> {
        let mut found = Vec::new();
        let mut at = 0;
        while let Some(m) = self.qualified.find_at(haystack, at) {
            // No valid start lies inside a rejected match: every byte of a match is one that
            // makes what follows it part of a longer token.
            at = m.end();
            if let Some(occ) = accept(haystack, m.start(), m.end()) {
                found.push(occ);
            }
        }
        let Some((context, yaml_item)) = &self.context else {
            drop_ignored(haystack, &mut found);
            return found;
        };
        let qualified = found.len();
        let add = |found: &mut Vec<Occurrence>, occ: Option<Occurrence>| {
            if let Some(occ) = occ {
                if !overlaps(&found[..qualified], &occ) {
                    found.push(occ);
                }
            }
        };
        let mut comments = Comments::new(haystack);
        for m in context.find_iter(haystack) {
            if context_applies(haystack, &mut comments, m.start(), m.as_bytes()) {
                add(&mut found, token_at(haystack, m.end()));
            }
        }
        if yaml::has_image_lists(haystack) {
            let mut nesting = Nesting::new(haystack);
            for m in yaml_item.find_iter(haystack) {
                let occ = token_at(haystack, m.end());
                if occ.is_some() && yaml::is_image_item(&mut nesting, m.start(), m.as_bytes()) {
                    add(&mut found, occ);
                }
            }
        }
        if found.len() > qualified {
            found.sort_by_key(|o| o.start);
            // Two contexts may lead to the same token (`image: docker://alpine:3`).
            found.dedup_by(|later, earlier| later.start < earlier.end);
        }
        drop_ignored(haystack, &mut found);
        found
    }
}

/// The marker that makes cru leave the references on its line alone (in any comment syntax).
pub const IGNORE_MARKER: &[u8] = b"cru:ignore";

/// Drops the references on lines that carry [`IGNORE_MARKER`] after them.
fn drop_ignored(haystack: &[u8], found: &mut Vec<Occurrence>) {
    if found.is_empty() || memchr::memmem::find(haystack, IGNORE_MARKER).is_none() {
        return;
    }
    // Each line is searched once, from the end of its first reference: the last marker on
    // it decides for every reference on it.
    let mut line: Option<(usize, Option<usize>)> = None;
    found.retain(|occ| {
        let (_, marker) = match line {
            Some((end, marker)) if occ.end <= end => (end, marker),
            _ => {
                let rest = &haystack[occ.end..];
                let end = occ.end + memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                let marker = memchr::memmem::rfind(&haystack[occ.end..end], IGNORE_MARKER)
                    .map(|i| occ.end + i);
                *line.insert((end, marker))
            }
        };
        marker.is_none_or(|m| m < occ.end)
    });
}

/// Whether a [`CONTEXT`] match at `start` stands where it counts.
fn context_applies(
    haystack: &[u8],
    comments: &mut Comments<'_>,
    start: usize,
    matched: &[u8],
) -> bool {
    let before = &haystack[..start];
    // Only blanks between the line's start and `start` (read backwards, so a long line
    // costs no more than its blanks).
    let blank_before = before
        .iter()
        .rev()
        .find(|b| !matches!(b, b' ' | b'\t'))
        .is_none_or(|&b| b == b'\n');
    let kind = matched[0].to_ascii_lowercase();
    match kind {
        // A transport is a context wherever it stands, comments included.
        _ if matched.ends_with(b"://") => true,
        // Dockerfile instructions start a line.
        b'f' => blank_before,
        b'c' if matched[1].eq_ignore_ascii_case(&b'o')
            && matched[2].eq_ignore_ascii_case(&b'p') =>
        {
            blank_before
        }
        // `--image` and `docker pull` follow a blank (or start a line).
        b'-' | b'd' | b'p' => {
            before
                .last()
                .is_none_or(|b| matches!(b, b' ' | b'\t' | b'\n'))
                && !comments.is_commented(start)
        }
        // A key: not the end of a longer key (`baseimage:`, `docker_image:`, `$image`).
        _ => {
            let key_start = match before.last() {
                Some(b'"' | b'\'') => start - 1,
                _ => start,
            };
            let glued = key_start > 0
                && (haystack[key_start - 1].is_ascii_alphanumeric()
                    || matches!(haystack[key_start - 1], b'_' | b'.' | b'$' | b'-'));
            !glued && !comments.is_commented(start)
        }
    }
}

/// Whether `occ` overlaps one of `sorted` (ordered by start, without overlaps).
fn overlaps(sorted: &[Occurrence], occ: &Occurrence) -> bool {
    let i = sorted.partition_point(|o| o.start < occ.end);
    i > 0 && sorted[i - 1].end > occ.start
}

/// Bytes that make a following reference part of a longer token: name characters, and the
/// ends of templates and escapes (`${X}`, `$(x)`, `<x>`, `%s`, `\n`), and YAML tags (`!!x`).
fn continues_before(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'/' | b'.'
                | b'-'
                | b'_'
                | b':'
                | b'@'
                | b'$'
                | b'}'
                | b')'
                | b'>'
                | b'%'
                | b'\\'
                | b'!'
        )
}

/// Bytes that make a preceding reference part of a longer token, or of a query string
/// (`app:v2?force=true`) or a key (`x/y:labels.id=…`).
fn continues_after(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'{' | b'$' | b'@' | b'?' | b'=')
}

/// Checks the token boundaries of a candidate and parses it.
fn accept(haystack: &[u8], start: usize, mut end: usize) -> Option<Occurrence> {
    let emphasis = boundary::emphasis_end(haystack, start, end);
    if let Some(e) = emphasis {
        end = e;
    }
    if start > 0 && continues_before(haystack[start - 1]) {
        let before = &haystack[..start];
        let after = &haystack[end..];
        let wrapped = match before[start - 1] {
            b'>' => boundary::is_element_content(before, after),
            b'_' => emphasis.is_some() && boundary::opens_emphasis(haystack, start),
            // Only with a digest: a default tag is often one part of a templated name.
            b'-' => {
                boundary::is_shell_default(before, after) && haystack[start..end].contains(&b'@')
            }
            _ => false,
        };
        if !wrapped && !TRANSPORTS.iter().any(|t| before.ends_with(t.as_bytes())) {
            return None;
        }
    }
    let occ = finish(haystack, start, end)?;
    (!boundary::is_request_or_refspec(haystack, start)).then_some(occ)
}

/// Trims a sentence's final dots (and log text glued on with an ellipsis, `:latest...ERRO`),
/// checks what follows, and parses.
fn finish(haystack: &[u8], start: usize, mut end: usize) -> Option<Occurrence> {
    if let Some(i) = memchr::memmem::find(&haystack[start..end], b"...") {
        end = start + i;
    }
    while end > start && haystack[end - 1] == b'.' {
        end -= 1;
    }
    if haystack.get(end).is_some_and(|&b| continues_after(b)) {
        return None;
    }
    if boundary::is_concatenated(&haystack[end..]) {
        return None;
    }
    let text = std::str::from_utf8(&haystack[start..end]).ok()?;
    let reference = Reference::parse(text).ok()?;
    if reference.name().len() + reference.suffix().len() != end - start {
        // A transport prefix inside the span (`docker://docker://x:1`): not a clean token.
        return None;
    }
    let after = haystack.get(end).copied();
    let rejected = match reference.tag() {
        None => reference.digest().is_none(),
        // `dir/file.go:12` and `"53": "kube-system/kube-dns:53"` are not images.
        Some(tag) if tag.bytes().all(|b| b.is_ascii_digit()) => {
            boundary::is_source_file(reference.name())
                || boundary::is_port_mapping(&haystack[..start])
        }
        Some(tag) => boundary::is_action_scope(tag, after),
    } || boundary::has_nested_host(reference.name());
    if rejected {
        return None;
    }
    let name_end = start + reference.name().len();
    Some(Occurrence {
        start,
        end,
        name_end,
        reference,
    })
}

/// Longer than any reference: a 255-byte name, a 128-byte tag and a sha512 digest.
const TOKEN_MAX: usize = 1024;

/// Reads the reference-like token that starts at `start` (the value after an image context).
fn token_at(haystack: &[u8], mut start: usize) -> Option<Occurrence> {
    if let Some(t) = TRANSPORTS
        .iter()
        .find(|t| haystack[start..].starts_with(t.as_bytes()))
    {
        start += t.len();
    }
    // No reference is longer than TOKEN_MAX, so a longer token is not read to its end.
    let window = &haystack[start..haystack.len().min(start + TOKEN_MAX + 1)];
    let len = window
        .iter()
        .position(|&b| {
            !(b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'-' | b'_' | b'/' | b':' | b'@' | b'='))
        })
        .unwrap_or(window.len());
    if len == 0 || len > TOKEN_MAX {
        return None;
    }
    let mut end = start + len;
    // A colon that ends a sentence or a log field: `pull docker://alpine:latest: unable`.
    if haystack[end - 1] == b':' && haystack.get(end).is_none_or(u8::is_ascii_whitespace) {
        end -= 1;
    } else if !boundary::ends_value(haystack.get(end).copied()) {
        return None;
    }
    finish(haystack, start, end)
}

#[cfg(test)]
mod tests;
