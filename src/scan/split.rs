//! References written in parts: Helm-style values maps (`repository:` + `tag:`, optionally
//! `registry:` and `digest:`, or sibling `image:` + `tag:`) in any YAML file, and Kustomize
//! `images:` entries (`name`, `newName`, `newTag`, `digest`) in a kustomization file.
//!
//! The YAML is read for the byte span of every scalar, so that an update replaces only the
//! bytes of the values that change; it is never serialised again. Plain block-style YAML (nearly
//! every values file) is read in one pass over its lines ([`lines`]); the rest with an event
//! parser, which gives the same spans. Only files that can hold these forms are read (a literal
//! prefilter), so that the cost of a scan on other files does not change. Templated values (`{{ … }}`) are not
//! references; anchored or aliased values, block scalars and values spread over several lines
//! are reported but marked fixed (left alone by an update). This module does not read files:
//! a chart's `appVersion` (for `tag: ""`) is passed in by the caller.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle};

use crate::reference::{is_digest, is_host, Reference};

mod lines;

/// Where a reference is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// In one piece; `name_end` is the byte offset just past the name, where `:tag@digest`
    /// begins.
    Inline {
        /// Byte offset just past the name.
        name_end: usize,
    },
    /// In parts.
    Split(Split),
}

/// A reference written in parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The parts, in buffer order.
    pub parts: Vec<Part>,
    /// Where a digest goes when there is no digest part.
    pub tail: Tail,
    /// Why an update must leave the reference alone, if it must.
    pub fixed: Option<&'static str>,
}

impl Split {
    /// The part with `role`, if there is one.
    pub fn part(&self, role: Role) -> Option<&Part> {
        self.parts.iter().find(|p| p.role == role)
    }
}

/// One value of a split reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// What the value is.
    pub role: Role,
    /// The value's bytes, quotes included.
    pub span: Range<usize>,
    /// How the value is written.
    pub style: Style,
    /// Text that stands before the value in what the role holds (`FROM node:v${V}`: `v`).
    pub prefix: String,
    /// Text that stands after the value in what the role holds (`${V}-alpine`: `-alpine`).
    pub suffix: String,
}

/// What a part of a split reference holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The registry host (`registry:`).
    Registry,
    /// The repository or whole name (`repository:`, `image:`, `newName:`, `name:`).
    Repository,
    /// The tag (`tag:`, `version:`, `newTag:`), possibly with a digest (`1.2@sha256:…`).
    Tag,
    /// The digest (`digest:`).
    Digest,
}

impl Role {
    /// The role as shown in `list --format json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Registry => "registry",
            Role::Repository => "repository",
            Role::Tag => "tag",
            Role::Digest => "digest",
        }
    }
}

/// How a YAML value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain (`1.2`).
    Plain,
    /// Single-quoted (`'1.2'`).
    Single,
    /// Double-quoted (`"1.2"`).
    Double,
    /// Not written (`digest:`); the span is empty, just past the colon.
    Empty,
    /// Not YAML: written as it is (a Dockerfile `ARG`'s default).
    Bare,
}

impl Style {
    /// `value` written in this style; a plain value that YAML would read as something other
    /// than a string (`3.10`, `1e3`, `on`, `null`) is double-quoted.
    pub fn render(self, value: &str) -> String {
        match self {
            Style::Plain if !reads_as_string(value) => format!("\"{value}\""),
            Style::Plain | Style::Bare => value.to_owned(),
            Style::Single => format!("'{value}'"),
            Style::Double => format!("\"{value}\""),
            Style::Empty => format!(" {}", Style::Plain.render(value)),
        }
    }
}

/// Whether YAML (1.1 or 1.2) reads a plain scalar as a string. Tags and digests hold only
/// `[A-Za-z0-9_.:@-]`, so what could be read otherwise is a number, a bool or a null.
fn reads_as_string(value: &str) -> bool {
    const WORDS: [&str; 8] = ["y", "yes", "n", "no", "true", "false", "on", "off"];
    let lower = value.to_ascii_lowercase();
    if value.is_empty() || WORDS.contains(&lower.as_str()) || matches!(lower.as_str(), "null" | "~")
    {
        return false;
    }
    let digits = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    let number = digits.replace('_', "").parse::<f64>().is_ok()
        || ["0x", "0o", "0b"].iter().any(|p| {
            digits
                .strip_prefix(p)
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        || matches!(digits, ".inf" | ".nan");
    !number
}

/// Where a digest is written when the reference has no digest part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// After the tag, in the tag's value (`tag: 1.25.3@sha256:…`).
    IntoTag,
    /// On a new line inserted at `at` (a line's end), starting with `prefix`
    /// (`\n  digest: `).
    Line {
        /// Where the line is inserted.
        at: usize,
        /// The line break, the indentation and the key.
        prefix: String,
    },
    /// Nowhere: a digest cannot be added.
    None,
}

/// A scalar value read from the YAML.
#[derive(Debug, PartialEq)]
struct Scalar {
    text: String,
    /// The key's start, for a value in a mapping.
    key_start: usize,
    span: Range<usize>,
    style: Style,
    fixed: Option<&'static str>,
}

#[derive(Debug, PartialEq)]
enum Value {
    Scalar(Scalar),
    /// A mapping or a sequence.
    Other,
}

#[derive(Debug)]
enum Frame<'a> {
    Map {
        /// The mapping is the value of an `images` key (or an item of its sequence).
        images: bool,
        /// A key read, waiting for its value: its text and start.
        pending: Option<(Cow<'a, str>, usize)>,
        /// The entries whose keys a split reference may use.
        entries: Vec<(Cow<'a, str>, Value)>,
    },
    Seq {
        images: bool,
    },
}

/// The keys a split reference is made of.
const KEYS: [&str; 11] = [
    "repository",
    "image",
    "name",
    "tag",
    "version",
    "imageTag",
    "registry",
    "digest",
    "newName",
    "newTag",
    "images",
];

/// What kind of file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Any YAML file: Helm-style maps.
    Values,
    /// A kustomization file: `images:` entries (and Helm-style maps).
    Kustomization,
}

/// Whether `haystack` may hold a split reference of `kind` (a literal search, so that only
/// such files are parsed).
pub(super) fn may_hold(haystack: &[u8], kind: Kind) -> bool {
    use memchr::memmem::Finder;
    // Built once: a finder costs more to build than to run on a small file.
    static NEEDLES: LazyLock<[Finder<'static>; 7]> = LazyLock::new(|| {
        [
            "images:",
            "repository:",
            "tag:",
            "Tag:",
            "image",
            "name:",
            "version:",
        ]
        .map(Finder::new)
    });
    let [images, repository, tag, tag_suffix, image, name, version] = &*NEEDLES;
    let has = |needle: &Finder| needle.find(haystack).is_some();
    if kind == Kind::Kustomization && has(images) {
        return true;
    }
    let repository = has(repository);
    ((has(tag) || has(tag_suffix)) && (repository || has(image) || has(name)))
        || (repository && has(version))
}

/// Finds the split references in a YAML buffer. `app_version` gives the chart's `appVersion`
/// for a `tag: ""` (asked only when one is met). A buffer the parser rejects gives nothing
/// (and the error).
pub(super) fn find(
    haystack: &[u8],
    kind: Kind,
    unqualified: bool,
    app_version: &mut dyn FnMut() -> Option<String>,
) -> Result<Vec<super::Occurrence>, String> {
    let Ok(text) = std::str::from_utf8(haystack) else {
        return Ok(Vec::new());
    };
    // Most values files are plain block style, which a single pass over the lines reads; the
    // parser reads the rest (flow maps, anchors, block scalar values, anything unusual).
    let mappings = match lines::read(text) {
        Some(mappings) => mappings,
        None => parsed(text)?,
    };
    let mut found: Vec<super::Occurrence> = mappings
        .iter()
        .filter_map(|m| {
            if kind == Kind::Kustomization && m.images_item {
                kustomize_entry(haystack, &m.entries)
            } else {
                values_map(&m.entries, unqualified, app_version)
            }
        })
        .collect();
    found.sort_by_key(|o| o.start);
    Ok(found)
}

/// A mapping that holds keys a split reference may use, as read from the YAML.
#[derive(Debug, PartialEq)]
struct Mapping<'a> {
    /// The mapping is an item of a sequence that is the value of an `images` key.
    images_item: bool,
    /// The entries whose keys a split reference may use, in order.
    entries: Vec<(Cow<'a, str>, Value)>,
}

/// The mappings of `text` that hold keys a split reference may use, read with the YAML
/// parser, in the order they end.
fn parsed(text: &str) -> Result<Vec<Mapping<'_>>, String> {
    let haystack = text.as_bytes();
    let mut found = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, String> = HashMap::new();
    let mut options = Options::default();
    // Comments are skipped, not captured: values files are half comments.
    options.set_emit_comments(false);
    let mut parser = Parser::new_from_str_with_options(text, options);
    // Whether a node is the value of an `images` key: the pending key of a mapping, or a
    // sequence's.
    let images_child = |stack: &mut Vec<Frame>| -> bool {
        match stack.last_mut() {
            Some(Frame::Map {
                pending, entries, ..
            }) => pending.take().is_some_and(|(k, _)| {
                let images = k == "images";
                if KEYS.contains(&k.as_ref()) {
                    entries.push((k, Value::Other));
                }
                images
            }),
            Some(Frame::Seq { images }) => *images,
            None => false,
        }
    };
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| e.to_string())?;
        let (Some(start), Some(end)) = (span.start.byte_offset(), span.end.byte_offset()) else {
            continue;
        };
        let value = match event {
            Event::MappingStart(..) => {
                let images = images_child(&mut stack);
                stack.push(Frame::Map {
                    images,
                    pending: None,
                    entries: Vec::new(),
                });
                continue;
            }
            Event::SequenceStart(..) => {
                let images = images_child(&mut stack);
                stack.push(Frame::Seq { images });
                continue;
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    images, entries, ..
                }) = stack.pop()
                {
                    if !entries.is_empty() {
                        found.push(Mapping {
                            images_item: images && matches!(stack.last(), Some(Frame::Seq { .. })),
                            entries,
                        });
                    }
                }
                continue;
            }
            Event::SequenceEnd => {
                stack.pop();
                continue;
            }
            Event::Scalar(text, style, anchor, _) => {
                let raw = &haystack[start..end];
                if start == end {
                    // No value (`digest:`): the parser places it at the colon.
                    let at = start + usize::from(haystack.get(start) == Some(&b':'));
                    (Cow::Borrowed(""), Style::Empty, None, at)
                } else {
                    let (style, block) = match style {
                        ScalarStyle::Plain => (Style::Plain, false),
                        ScalarStyle::SingleQuoted => (Style::Single, false),
                        ScalarStyle::DoubleQuoted => (Style::Double, false),
                        _ => (Style::Plain, true),
                    };
                    let fixed = if block || raw.contains(&b'\n') {
                        Some("the value is spread over several lines")
                    } else if anchor != 0 {
                        anchors.insert(anchor, text.to_string());
                        Some("the value is anchored (&)")
                    } else {
                        None
                    };
                    (text, style, fixed, start)
                }
            }
            Event::Alias(id) => (
                Cow::Owned(anchors.get(&id).cloned().unwrap_or_default()),
                Style::Plain,
                Some("the value is an alias (*)"),
                start,
            ),
            _ => continue,
        };
        let (text, style, fixed, start) = value;
        let end = end.max(start);
        if let Some(Frame::Map {
            pending, entries, ..
        }) = stack.last_mut()
        {
            match pending.take() {
                None => *pending = Some((text, start)),
                Some((key, key_start)) if KEYS.contains(&key.as_ref()) => entries.push((
                    key,
                    Value::Scalar(Scalar {
                        text: text.into_owned(),
                        key_start,
                        span: start..end,
                        style,
                        fixed,
                    }),
                )),
                Some(_) => {}
            }
        }
    }
    Ok(found)
}

/// The first scalar value of `key` in a mapping; `Err` if the key holds a collection.
fn scalar<'a>(entries: &'a [(Cow<'_, str>, Value)], key: &str) -> Result<Option<&'a Scalar>, ()> {
    match entries.iter().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, Value::Scalar(s))) => Ok(Some(s)),
        Some((_, Value::Other)) => Err(()),
    }
}

/// A YAML null (`~`, `null`) as an empty value.
fn null_as_empty(text: &str) -> &str {
    match text {
        "~" | "null" | "Null" | "NULL" => "",
        t => t,
    }
}

/// Whether `text` is an image name without tag or digest (and not a URL or a template).
fn is_bare_name(text: &str) -> bool {
    !text.contains("://")
        && !text.contains('@')
        && Reference::parse(text).is_ok_and(|r| r.tag().is_none() && r.name() == text)
}

fn part(role: Role, s: &Scalar) -> Part {
    Part {
        role,
        span: s.span.clone(),
        style: s.style,
        prefix: String::new(),
        suffix: String::new(),
    }
}

/// A Helm-style values map, if `entries` are one.
fn values_map(
    entries: &[(Cow<'_, str>, Value)],
    unqualified: bool,
    app_version: &mut dyn FnMut() -> Option<String>,
) -> Option<super::Occurrence> {
    let get = |key: &str| scalar(entries, key);
    let (repo, tag) = if let Some(repo) = get("repository").ok()? {
        (repo, get("tag").ok()?.or(get("version").ok()?))
    } else if let Some(repo) = get("image").ok()?.filter(|s| is_bare_name(&s.text)) {
        (repo, get("tag").ok()?.or(get("imageTag").ok()?))
    } else {
        (
            get("name").ok()?.filter(|s| is_bare_name(&s.text))?,
            get("tag").ok()?,
        )
    };
    let tag = tag?;
    let registry = get("registry").ok()?.filter(|s| !s.text.is_empty());
    let digest = get("digest").ok()?;
    let digest_text = digest.map_or("", |d| null_as_empty(&d.text));
    let all = [Some(repo), Some(tag), registry, digest];
    if all.iter().flatten().any(|s| s.text.contains("{{")) || !is_bare_name(&repo.text) {
        return None;
    }
    let mut name = repo.text.clone();
    if let Some(registry) = registry {
        if !is_host(&registry.text) {
            return None;
        }
        name = format!("{}/{name}", registry.text);
    }
    let mut fixed = all.iter().flatten().find_map(|s| s.fixed);
    let mut text = name.clone();
    // No tag (`tag: ""`, `tag:`, `tag: null`): the chart's appVersion.
    if null_as_empty(&tag.text).is_empty() {
        text = format!("{text}:{}", app_version()?);
        fixed = fixed.or(Some("the tag is the chart's appVersion"));
    } else {
        text = format!("{text}:{}", tag.text);
    }
    if !digest_text.is_empty() {
        if !is_digest(digest_text) || tag.text.contains('@') {
            return None;
        }
        text = format!("{text}@{digest_text}");
    }
    let reference = Reference::parse(&text).ok()?;
    if reference.name() != name || (!unqualified && !name.contains('/')) {
        return None;
    }
    let mut parts = vec![part(Role::Repository, repo), part(Role::Tag, tag)];
    parts.extend(registry.map(|s| part(Role::Registry, s)));
    parts.extend(digest.map(|s| part(Role::Digest, s)));
    Some(occurrence(parts, Tail::IntoTag, fixed, reference))
}

/// A Kustomize `images:` entry, if `entries` are one.
fn kustomize_entry(
    haystack: &[u8],
    entries: &[(Cow<'_, str>, Value)],
) -> Option<super::Occurrence> {
    let get = |key: &str| scalar(entries, key);
    let name = get("name").ok()??;
    let new_name = get("newName").ok()?;
    let tag = get("newTag")
        .ok()?
        .filter(|t| !null_as_empty(&t.text).is_empty());
    let digest = get("digest").ok()?;
    if tag.is_none() && digest.is_none() {
        return None;
    }
    let all = [Some(name), new_name, tag, digest];
    if all.iter().flatten().any(|s| s.text.contains("{{")) {
        return None;
    }
    let repo = new_name.unwrap_or(name);
    if !is_bare_name(&repo.text) {
        return None;
    }
    let mut text = repo.text.clone();
    if let Some(tag) = tag {
        text = format!("{text}:{}", tag.text);
    }
    if let Some(d) = digest
        .map(|d| null_as_empty(&d.text))
        .filter(|d| !d.is_empty())
    {
        text = format!("{text}@{d}");
    }
    let reference = Reference::parse(&text).ok()?;
    if reference.name() != repo.text {
        return None;
    }
    let fixed = all.iter().flatten().find_map(|s| s.fixed);
    let mut parts = vec![part(Role::Repository, repo)];
    parts.extend(tag.map(|s| part(Role::Tag, s)));
    parts.extend(digest.map(|s| part(Role::Digest, s)));
    // A new `digest:` line after the tag's, at the tag key's indentation (block style only).
    let tail = match tag {
        Some(tag) if digest.is_none() => digest_line(haystack, tag).unwrap_or(Tail::None),
        _ => Tail::None,
    };
    Some(occurrence(parts, tail, fixed, reference))
}

/// A new line for `digest:` after the line of `tag`'s value, indented like its key.
fn digest_line(haystack: &[u8], tag: &Scalar) -> Option<Tail> {
    let line_start = memchr::memrchr(b'\n', &haystack[..tag.key_start]).map_or(0, |i| i + 1);
    let indent = &haystack[line_start..tag.key_start];
    // In a flow mapping (`{name: x, newTag: 1}`) the key does not start its line.
    if !indent.iter().all(|&b| matches!(b, b' ' | b'-')) {
        return None;
    }
    let rest = &haystack[tag.span.end..];
    let mut at = tag.span.end + memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let crlf = at > 0 && haystack[at - 1] == b'\r';
    if crlf {
        at -= 1;
    }
    let newline = if crlf { "\r\n" } else { "\n" };
    Some(Tail::Line {
        at,
        prefix: format!("{newline}{}digest: ", " ".repeat(indent.len())),
    })
}

fn occurrence(
    mut parts: Vec<Part>,
    tail: Tail,
    fixed: Option<&'static str>,
    reference: Reference,
) -> super::Occurrence {
    parts.sort_by_key(|p| p.span.start);
    super::Occurrence {
        start: parts.first().map_or(0, |p| p.span.start),
        end: parts.last().map_or(0, |p| p.span.end),
        site: Site::Split(Split { parts, tail, fixed }),
        reference,
    }
}

#[cfg(test)]
mod tests;
