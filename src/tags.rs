//! Choosing the best of several tags that point at the same image.
//!
//! When `latest`, `3`, `3.2` and `3.2.4` all name one digest, the most specific
//! version-like tag (`3.2.4`) says the most about what is pinned. This module is pure: it
//! ranks tag strings and knows nothing of registries. It does not compare versions across
//! digests (that would be "upgrade to the newest tag", which cru does not do).

use std::cmp::Ordering;

/// Picks the best tag among `tags`: the most specific version-like one, else the first by a
/// stable order. Returns `None` only for an empty slice. The result does not depend on the
/// order of `tags`.
pub fn best_tag<S: AsRef<str>>(tags: &[S]) -> Option<&str> {
    tags.iter().map(AsRef::as_ref).min_by(|a, b| compare(a, b))
}

/// Sorts tags best first, with the same order as [`best_tag`].
pub fn rank_tags<S: AsRef<str>>(tags: &mut [S]) {
    tags.sort_by(|a, b| compare(a.as_ref(), b.as_ref()));
}

/// A tag read as a version: `v1.2.3-alpine` is numbers `[1, 2, 3]` with suffix `alpine`.
#[derive(Debug, PartialEq, Eq)]
struct Version<'a> {
    numbers: Vec<u64>,
    suffix: &'a str,
}

/// Reads `[v]N(.N)*[-suffix]`; anything else (`latest`, `stable`, `sha-abc`) is not version-like.
fn parse_version(tag: &str) -> Option<Version<'_>> {
    let body = tag
        .strip_prefix('v')
        .or_else(|| tag.strip_prefix('V'))
        .unwrap_or(tag);
    let (numeric, suffix) = match body.find(['-', '_', '+']) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, ""),
    };
    if numeric.is_empty() {
        return None;
    }
    let mut numbers = Vec::new();
    for part in numeric.split('.') {
        if part.is_empty() || part.len() > 18 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        numbers.push(part.parse().ok()?);
    }
    Some(Version { numbers, suffix })
}

/// `Less` means `a` is the better tag.
fn compare(a: &str, b: &str) -> Ordering {
    match (parse_version(a), parse_version(b)) {
        (Some(va), Some(vb)) => vb
            .numbers
            .len()
            .cmp(&va.numbers.len()) // more components: more specific
            .then_with(|| va.suffix.is_empty().cmp(&vb.suffix.is_empty()).reverse())
            .then_with(|| vb.numbers.cmp(&va.numbers)) // higher version first
            .then_with(|| a.len().cmp(&b.len())) // `1.2` before `v1.2`
            .then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_version_wins() {
        assert_eq!(best_tag(&["latest", "3", "3.2", "3.2.4"]), Some("3.2.4"));
        assert_eq!(best_tag(&["3.2.4", "3.2", "3", "latest"]), Some("3.2.4"));
    }

    #[test]
    fn any_version_beats_a_name() {
        assert_eq!(best_tag(&["latest", "stable", "3"]), Some("3"));
    }

    #[test]
    fn empty_has_no_best() {
        assert_eq!(best_tag::<&str>(&[]), None);
    }

    #[test]
    fn plain_version_beats_suffixed_of_same_specificity() {
        assert_eq!(best_tag(&["1.25.3-bookworm", "1.25.3"]), Some("1.25.3"));
        // but specificity comes first
        assert_eq!(
            best_tag(&["1.25-bookworm", "1.25.3-bookworm"]),
            Some("1.25.3-bookworm")
        );
    }

    #[test]
    fn v_prefix_is_a_version() {
        assert_eq!(best_tag(&["latest", "v1.2.3", "v1.2"]), Some("v1.2.3"));
        assert_eq!(best_tag(&["v1.2.3", "1.2.3"]), Some("1.2.3"));
    }

    #[test]
    fn result_does_not_depend_on_input_order() {
        let mut tags = vec![
            "latest",
            "3.12",
            "3",
            "3.12.1",
            "3.12.1-slim",
            "bookworm",
            "v3.12.1",
        ];
        let first = best_tag(&tags).unwrap().to_owned();
        tags.reverse();
        assert_eq!(best_tag(&tags), Some(first.as_str()));
        tags.rotate_left(3);
        assert_eq!(best_tag(&tags), Some(first.as_str()));
        assert_eq!(first, "3.12.1");
    }

    #[test]
    fn names_fall_back_to_shortest_then_alphabetical() {
        assert_eq!(best_tag(&["stable", "latest", "edge"]), Some("edge"));
        assert_eq!(best_tag(&["beta", "edge"]), Some("beta"));
    }

    #[test]
    fn ranking_orders_best_first() {
        let mut tags = vec!["latest", "3", "3.2.4", "3.2"];
        rank_tags(&mut tags);
        assert_eq!(tags, ["3.2.4", "3.2", "3", "latest"]);
    }

    #[test]
    fn not_versions() {
        for tag in ["latest", "v", "1..2", ".1", "1.", "sha-1234abc", "a1.2"] {
            assert_eq!(parse_version(tag), None, "{tag}");
        }
        assert_eq!(
            parse_version("v1.2-rc1"),
            Some(Version {
                numbers: vec![1, 2],
                suffix: "rc1"
            })
        );
    }
}
