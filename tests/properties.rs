//! Property tests of the pure core: parsing, scanning and editing on generated input.

use proptest::prelude::*;

use cru::plan::{Rules, Selection};
use cru::reference::Reference;
use cru::rewrite::{apply, Edit};
use cru::scan::{ScanOptions, Scanner};

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}((\\.|_|__|-{1,2})[a-z0-9]{1,6}){0,2}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}[a-z0-9]\\.(io|com|dev)",
        "[a-z]{1,8}\\.[a-z]{2,3}:[1-9][0-9]{1,4}",
        Just("localhost".to_owned()),
        Just("localhost:5000".to_owned()),
    ]
}

/// A valid qualified reference: a `/` in the name and a tag and/or a digest.
fn qualified() -> impl Strategy<Value = String> {
    (
        prop::option::of(host()),
        prop::collection::vec(component(), 1..4),
        prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}[A-Za-z0-9_]"),
        prop::option::of("[a-f0-9]{64}"),
    )
        .prop_filter_map(
            "a name with a / and a tag or digest",
            |(h, path, tag, digest)| {
                // A registry host inside a path (`debug/gcr.io/x:1`) is a path, left out too.
                let nested_host = path.iter().skip(1).any(|c| {
                    c.rsplit_once('.')
                        .is_some_and(|(_, tld)| matches!(tld, "io" | "com" | "org" | "net" | "dev"))
                });
                if h.is_none() && !path[0].contains('.') && nested_host {
                    return None;
                }
                let mut name = path.join("/");
                if let Some(h) = h {
                    name = format!("{h}/{name}");
                }
                if !name.contains('/') || (tag.is_none() && digest.is_none()) {
                    return None;
                }
                // `dir/file.go:12` reads as a file and line, and is left out on purpose.
                let numeric = tag
                    .as_deref()
                    .is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit()));
                if numeric && path.last().is_some_and(|c| c.contains('.')) {
                    return None;
                }
                // An ellipsis ends a reference (`:latest...ERRO` in logs), also left out.
                if tag.as_deref().is_some_and(|t| t.contains("...")) {
                    return None;
                }
                let mut text = name;
                if let Some(t) = tag {
                    text.push(':');
                    text.push_str(&t);
                }
                if let Some(d) = digest {
                    text.push_str("@sha256:");
                    text.push_str(&d);
                }
                Some(text)
            },
        )
}

/// Text that mixes noise, separators, image contexts and references.
fn mixed_text() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..12),
        qualified().prop_map(String::into_bytes),
        Just(b"\nimage: ".to_vec()),
        Just(b"\nFROM ".to_vec()),
        Just(b"docker://".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b":".to_vec()),
        Just(b"/".to_vec()),
        Just(b"@".to_vec()),
        "[a-z0-9:.@/-]{1,10}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn scanning_arbitrary_bytes_never_panics_and_spans_are_sound(text in mixed_text()) {
        let found = Scanner::new(ScanOptions::default()).scan(&text);
        let mut last_end = 0;
        for occ in &found {
            prop_assert!(occ.start >= last_end && occ.start < occ.name_end && occ.name_end < occ.end);
            prop_assert!(occ.end <= text.len());
            let written = occ.reference.to_string();
            prop_assert_eq!(&text[occ.start..occ.end], written.as_bytes());
            last_end = occ.end;
        }
    }

    #[test]
    fn scanning_random_bytes_never_panics(text in prop::collection::vec(any::<u8>(), 0..512)) {
        Scanner::new(ScanOptions::default()).scan(&text);
        let _ = Reference::parse(&String::from_utf8_lossy(&text));
    }

    #[test]
    fn format_of_parse_is_the_identity(text in qualified()) {
        let parsed = Reference::parse(&text).unwrap();
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn a_reference_between_spaces_is_found_whole(text in qualified()) {
        let line = format!("x {text} y\n");
        let found = Scanner::new(ScanOptions::default()).scan(line.as_bytes());
        prop_assert_eq!(found.len(), 1);
        prop_assert_eq!(found[0].reference.to_string(), text);
    }

    #[test]
    fn an_identity_update_is_byte_identical(text in mixed_text()) {
        let rules = Rules::new(Selection::All, true).unwrap();
        let edits: Vec<Edit> = Scanner::new(ScanOptions::default())
            .scan(&text)
            .into_iter()
            .map(|occ| Edit {
                range: occ.name_end..occ.end,
                replacement: rules.target(&occ.reference).unwrap().suffix().into_bytes(),
            })
            .collect();
        prop_assert_eq!(apply(&text, &edits), text);
    }
}
