//! Dockerfile `FROM` lines that use a global `ARG`'s default: `ARG NODE_VERSION=20.11.1` +
//! `FROM node:${NODE_VERSION}-alpine` (or `$NODE_VERSION`), and a whole image
//! `ARG BASE=python:3.12` + `FROM ${BASE}`.
//!
//! The reference is composed from the defaults; its tag (or the whole image) is written in
//! the `ARG` line, so an update rewrites the default. Only the `ARG`s before the first `FROM`
//! count (a stage's own `ARG`s are not seen by `FROM`). A variable without a default makes no
//! reference; a tag made of several variables, or a name made of one, is reported and left
//! alone. Instructions continued over several lines (`\`) are not read.

use std::collections::HashMap;
use std::ops::Range;

use crate::reference::Reference;
use crate::scan::{Occurrence, Part, Role, Site, Split, Style, Tail};

/// Whether `haystack` may hold a `FROM` that uses an `ARG` (a literal search).
pub(super) fn may_hold(haystack: &[u8]) -> bool {
    let has = |needle: &[u8]| memchr::memmem::find(haystack, needle).is_some();
    (has(b"ARG ") || has(b"arg ")) && has(b"$")
}

/// A global `ARG`'s default: its value's span (quotes excluded) and how it is quoted.
#[derive(Debug, Clone)]
struct Default {
    span: Range<usize>,
    style: Style,
}

/// One piece of a `FROM` image: literal text, or a variable's default.
enum Piece {
    Literal(Range<usize>),
    Variable(Default),
}

/// Finds the references composed from `ARG` defaults.
pub(super) fn find(haystack: &[u8]) -> Vec<Occurrence> {
    let mut defaults: HashMap<&[u8], Option<Default>> = HashMap::new();
    let mut seen_from = false;
    let mut found = Vec::new();
    let mut at = 0;
    while at < haystack.len() {
        let end = memchr::memchr(b'\n', &haystack[at..]).map_or(haystack.len(), |i| at + i);
        let line_start = at;
        at = end + 1;
        let mut words = Words {
            haystack,
            at: line_start,
            end: trim_cr(haystack, line_start, end),
        };
        let Some(first) = words.next() else {
            continue;
        };
        let instruction = &haystack[first.clone()];
        if instruction.eq_ignore_ascii_case(b"ARG") && !seen_from {
            for word in words {
                let text = &haystack[word.clone()];
                match memchr::memchr(b'=', text) {
                    Some(eq) => {
                        let mut span = word.start + eq + 1..word.end;
                        let style = match haystack.get(span.start) {
                            Some(b'"') => Style::Double,
                            Some(b'\'') => Style::Single,
                            _ => Style::Bare,
                        };
                        if style != Style::Bare {
                            if span.len() < 2 || haystack[span.end - 1] != haystack[span.start] {
                                continue;
                            }
                            span = span.start + 1..span.end - 1;
                        }
                        defaults.insert(&text[..eq], Some(Default { span, style }));
                    }
                    None => {
                        defaults.insert(text, None);
                    }
                }
            }
        } else if instruction.eq_ignore_ascii_case(b"FROM") {
            seen_from = true;
            let image = words.find(|w| !haystack[w.clone()].starts_with(b"--"));
            if let Some(image) = image {
                if haystack[image.clone()].contains(&b'$') {
                    found.extend(compose(haystack, image, &defaults));
                }
            }
        }
    }
    found
}

/// The reference of a `FROM` image written with variables, if every variable has a default.
fn compose(
    haystack: &[u8],
    image: Range<usize>,
    defaults: &HashMap<&[u8], Option<Default>>,
) -> Option<Occurrence> {
    let mut pieces = Vec::new();
    let mut i = image.start;
    let mut literal = i;
    while i < image.end {
        if haystack[i] != b'$' {
            i += 1;
            continue;
        }
        let (name, next) = if haystack.get(i + 1) == Some(&b'{') {
            let close = memchr::memchr(b'}', &haystack[i..image.end])? + i;
            (&haystack[i + 2..close], close + 1)
        } else {
            let len = haystack[i + 1..image.end]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            (&haystack[i + 1..i + 1 + len], i + 1 + len)
        };
        // `${X:-d}` and other modifiers are not defaults of an ARG.
        if name.is_empty() || !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            return None;
        }
        let default = defaults.get(name)?.clone()?;
        if literal < i {
            pieces.push(Piece::Literal(literal..i));
        }
        pieces.push(Piece::Variable(default));
        i = next;
        literal = next;
    }
    if literal < image.end {
        pieces.push(Piece::Literal(literal..image.end));
    }
    let text_of = |p: &Piece| match p {
        Piece::Literal(r) => &haystack[r.clone()],
        Piece::Variable(d) => &haystack[d.span.clone()],
    };
    let composed: Vec<u8> = pieces.iter().flat_map(|p| text_of(p).to_vec()).collect();
    let text = std::str::from_utf8(&composed).ok()?;
    let reference = Reference::parse(text).ok()?;
    if reference.name().len() + reference.suffix().len() != text.len() {
        return None;
    }
    reference.tag().or(reference.digest())?;
    // A whole image in one default: a reference in one piece, in the ARG line.
    if let [Piece::Variable(d)] = pieces.as_slice() {
        return Some(Occurrence {
            start: d.span.start,
            end: d.span.end,
            site: Site::Inline {
                name_end: d.span.start + reference.name().len(),
            },
            reference,
        });
    }
    // Which pieces hold the tag (after the name, up to a digest).
    let tag_from = reference.name().len() + 1;
    let tag_to = tag_from + reference.tag().map_or(0, str::len);
    let mut offset = 0;
    let mut tag_variables = Vec::new();
    let mut name_variable = false;
    let mut tag_literal = None;
    for piece in &pieces {
        let len = text_of(piece).len();
        let range = offset..offset + len;
        offset += len;
        let in_tag = range.start < tag_to && range.end > tag_from;
        let in_name = range.start < tag_from - 1;
        match piece {
            Piece::Variable(d) => {
                if in_name {
                    name_variable = true;
                }
                if in_tag {
                    tag_variables.push((d, range));
                }
            }
            Piece::Literal(r) if in_tag && range.start <= tag_from && range.end >= tag_to => {
                tag_literal =
                    Some(r.start + (tag_from - range.start)..r.start + (tag_to - range.start));
            }
            Piece::Literal(_) => {}
        }
    }
    let (tag, fixed) = match (tag_variables.as_slice(), tag_literal) {
        ([(d, range)], _) if !name_variable && range.start >= tag_from && range.end <= tag_to => {
            let prefix = &composed[tag_from..range.start];
            let suffix = &composed[range.end..tag_to];
            let part = Part {
                role: Role::Tag,
                span: d.span.clone(),
                style: d.style,
                prefix: String::from_utf8_lossy(prefix).into_owned(),
                suffix: String::from_utf8_lossy(suffix).into_owned(),
            };
            (part, None)
        }
        ([], Some(span)) => (plain(Role::Tag, span), Some("the name is an ARG's default")),
        _ => (
            plain(Role::Tag, image.clone()),
            Some("the tag is composed from several parts"),
        ),
    };
    let fixed = if name_variable {
        Some("the name is an ARG's default")
    } else {
        fixed
    };
    let repository = plain(
        Role::Repository,
        image.start..image.start + reference.name().len(),
    );
    let mut parts = vec![repository, tag];
    parts.sort_by_key(|p| p.span.start);
    Some(Occurrence {
        start: parts[0].span.start,
        end: parts.iter().map(|p| p.span.end).max().unwrap_or(0),
        site: Site::Split(Split {
            parts,
            tail: Tail::None,
            fixed,
        }),
        reference,
    })
}

fn plain(role: Role, span: Range<usize>) -> Part {
    Part {
        role,
        span,
        style: Style::Bare,
        prefix: String::new(),
        suffix: String::new(),
    }
}

fn trim_cr(haystack: &[u8], start: usize, end: usize) -> usize {
    if end > start && haystack[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// The blank-separated words of a line (a quoted word may hold blanks).
struct Words<'a> {
    haystack: &'a [u8],
    at: usize,
    end: usize,
}

impl Iterator for Words<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        while self.at < self.end && matches!(self.haystack[self.at], b' ' | b'\t') {
            self.at += 1;
        }
        if self.at >= self.end || self.haystack[self.at] == b'#' {
            return None;
        }
        let start = self.at;
        let mut quote = None;
        while self.at < self.end {
            let b = self.haystack[self.at];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if b == b' ' || b == b'\t' => break,
                None => {}
            }
            self.at += 1;
        }
        Some(start..self.at)
    }
}

#[cfg(test)]
mod tests {
    use crate::scan::{ScanOptions, Scanner, Site};
    use std::path::Path;

    fn scan(text: &str) -> Vec<(String, Option<&'static str>, Vec<String>)> {
        Scanner::new(ScanOptions::default())
            .scan_file(Some(Path::new("Dockerfile")), text.as_bytes(), &mut || None)
            .into_iter()
            .map(|o| match &o.site {
                Site::Split(s) => (
                    o.reference.to_string(),
                    s.fixed,
                    s.parts
                        .iter()
                        .map(|p| format!("{}={}", p.role.as_str(), &text[p.span.clone()]))
                        .collect(),
                ),
                Site::Inline { .. } => (
                    o.reference.to_string(),
                    None,
                    vec![text[o.start..o.end].to_owned()],
                ),
            })
            .collect()
    }

    #[test]
    fn a_tag_from_an_arg_default_is_written_in_the_arg_line() {
        let text = "ARG NODE_VERSION=20.11.1\nFROM node:${NODE_VERSION}-alpine AS build\nFROM --platform=$BUILDPLATFORM node:$NODE_VERSION\n";
        assert_eq!(
            scan(text),
            [
                (
                    "node:20.11.1-alpine".to_owned(),
                    None,
                    vec!["tag=20.11.1".to_owned(), "repository=node".to_owned()]
                ),
                (
                    "node:20.11.1".to_owned(),
                    None,
                    vec!["tag=20.11.1".to_owned(), "repository=node".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn a_whole_image_default_is_a_reference_in_one_piece() {
        let text = "ARG BASE=\"python:3.12\"\r\nFROM ${BASE}\r\n";
        assert_eq!(
            scan(text),
            [(
                "python:3.12".to_owned(),
                None,
                vec!["python:3.12".to_owned()]
            )]
        );
    }

    #[test]
    fn no_default_a_stage_arg_or_a_modifier_gives_nothing() {
        assert!(scan("ARG V\nFROM node:${V}\n").is_empty());
        assert!(scan("FROM alpine\nARG V=1\nFROM node:${V}\n").is_empty());
        assert!(scan("ARG V=1\nFROM node:${V:-2}\n").is_empty());
    }

    #[test]
    fn a_name_or_a_tag_of_several_variables_is_reported_and_fixed() {
        let found = scan("ARG R=gcr.io/p\nARG A=1 B=2\nFROM $R/app:v1\nFROM a/b:${A}.${B}\n");
        let fixed: Vec<_> = found
            .iter()
            .map(|(r, f, _)| (r.as_str(), f.is_some()))
            .collect();
        assert_eq!(fixed, [("gcr.io/p/app:v1", true), ("a/b:1.2", true)]);
    }
}
