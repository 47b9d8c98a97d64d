//! Compose and shell defaults that split a reference: `image: ${IMAGE:-org/app}:${TAG:-1.2}`
//! or `org/app:${TAG:-1.2}`. The reference is composed from the defaults; an update rewrites
//! the tag's default. (A whole reference in one default, `${X:-quay.io/a:1}`, is found in one
//! piece by the scanner.) Nested or empty defaults give nothing.

use regex::bytes::Regex;

use crate::reference::Reference;
use crate::scan::{Occurrence, Part, Role, Site, Split, Style, Tail};

/// A name (a default, or literal text), a colon, and a tag default.
pub(super) const PATTERN: &str = r"(?-u)(?:\$\{[A-Za-z_][A-Za-z0-9_]*:?-([A-Za-z0-9./_-]+)\}|([A-Za-z0-9][A-Za-z0-9./_-]*)):\$\{[A-Za-z_][A-Za-z0-9_]*:?-([A-Za-z0-9_][A-Za-z0-9_.-]*)\}";

/// Whether `haystack` may hold such a default (a literal search).
pub(super) fn may_hold(haystack: &[u8]) -> bool {
    memchr::memmem::find(haystack, b":${").is_some()
}

/// Finds the references composed from defaults.
pub(super) fn find(pattern: &Regex, haystack: &[u8]) -> Vec<Occurrence> {
    let mut found = Vec::new();
    for caps in pattern.captures_iter(haystack) {
        let whole = caps.get(0).expect("the match");
        let (Some(name), Some(tag)) = (caps.get(1).or(caps.get(2)), caps.get(3)) else {
            continue;
        };
        // A literal name stands as a token of its own; a default one is closed by `}`.
        if caps.get(2).is_some()
            && whole.start() > 0
            && !matches!(
                haystack[whole.start() - 1],
                b' ' | b'\t' | b'"' | b'\'' | b'=' | b'\n'
            )
        {
            continue;
        }
        let (Ok(name_text), Ok(tag_text)) = (
            std::str::from_utf8(name.as_bytes()),
            std::str::from_utf8(tag.as_bytes()),
        ) else {
            continue;
        };
        let Ok(reference) = Reference::parse(&format!("{name_text}:{tag_text}")) else {
            continue;
        };
        if reference.name() != name_text || !name_text.contains('/') {
            continue;
        }
        let part = |role, m: regex::bytes::Match<'_>| Part {
            role,
            span: m.range(),
            style: Style::Bare,
            prefix: String::new(),
            suffix: String::new(),
        };
        found.push(Occurrence {
            start: name.start(),
            end: tag.end(),
            site: Site::Split(Split {
                parts: vec![part(Role::Repository, name), part(Role::Tag, tag)],
                tail: Tail::None,
                fixed: None,
            }),
            reference,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::scan::{ScanOptions, Scanner};

    fn refs(text: &str) -> Vec<String> {
        Scanner::new(ScanOptions::default())
            .scan(text.as_bytes())
            .into_iter()
            .map(|o| o.reference.to_string())
            .collect()
    }

    #[test]
    fn a_name_and_a_tag_default_compose_a_reference() {
        assert_eq!(
            refs("    image: ${IMAGE:-org/app}:${TAG:-1.2}\n"),
            ["org/app:1.2"]
        );
        assert_eq!(
            refs("image: \"ghcr.io/o/app:${TAG-v3}\"\n"),
            ["ghcr.io/o/app:v3"]
        );
        // No default, an empty one, or a glued name: nothing.
        assert!(refs("image: org/app:${TAG}\n").is_empty());
        assert!(refs("image: org/app:${TAG:-}\n").is_empty());
        assert!(refs("image: x${P}org/app:${TAG:-1}\n").is_empty());
    }
}
