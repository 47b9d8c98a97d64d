use std::path::Path;

use crate::scan::{Occurrence, ScanOptions, Scanner};

use super::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn scan_as(name: &str, text: &str) -> Vec<Occurrence> {
    Scanner::new(ScanOptions::default()).scan_file(
        Some(Path::new(name)),
        text.as_bytes(),
        &mut || None,
    )
}

/// The split references of `text` read as `values.yaml`, as written.
fn split_refs(text: &str) -> Vec<String> {
    scan_as("values.yaml", text)
        .into_iter()
        .filter(|o| matches!(o.site, Site::Split(_)))
        .map(|o| o.reference.to_string())
        .collect()
}

fn split_of(o: &Occurrence) -> &Split {
    match &o.site {
        Site::Split(s) => s,
        Site::Inline { .. } => panic!("in one piece: {o:?}"),
    }
}

/// The text of each part of the first split reference, by role.
fn parts(text: &str) -> Vec<(Role, String)> {
    let found = scan_as("values.yaml", text);
    let o = found
        .iter()
        .find(|o| matches!(o.site, Site::Split(_)))
        .unwrap();
    split_of(o)
        .parts
        .iter()
        .map(|p| (p.role, text[p.span.clone()].to_owned()))
        .collect()
}

#[test]
fn a_bitnami_map_composes_registry_repository_tag_and_digest() {
    let text = "image:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag: 1.25.3-debian-12-r0\n  digest: \"\"\n";
    assert_eq!(
        split_refs(text),
        ["docker.io/bitnami/nginx:1.25.3-debian-12-r0"]
    );
    assert_eq!(
        parts(text),
        [
            (Role::Registry, "docker.io".to_owned()),
            (Role::Repository, "bitnami/nginx".to_owned()),
            (Role::Tag, "1.25.3-debian-12-r0".to_owned()),
            (Role::Digest, "\"\"".to_owned()),
        ]
    );
}

#[test]
fn a_filled_digest_is_part_of_the_reference() {
    let text = format!("image:\n  repository: a/b\n  tag: \"1.2\"\n  digest: {D}\n");
    assert_eq!(split_refs(&text), [format!("a/b:1.2@{D}")]);
}

#[test]
fn the_helm_create_scaffold_is_found_at_any_depth() {
    let text = "replicaCount: 1\nimage:\n  repository: nginx\n  pullPolicy: IfNotPresent\n  # Overrides the image tag whose default is the chart appVersion.\n  tag: \"1.16.0\"\n\nsidecars:\n  deep:\n    image:\n      repository: ghcr.io/o/side\n      tag: v2\n";
    assert_eq!(split_refs(text), ["nginx:1.16.0", "ghcr.io/o/side:v2"]);
}

#[test]
fn flow_maps_and_several_documents_are_read() {
    let text = "a: {repository: a/b, tag: '3'}\n---\nimage: {repository: c/d, tag: v4}\n";
    assert_eq!(split_refs(text), ["a/b:3", "c/d:v4"]);
}

#[test]
fn crlf_and_comments_between_keys_do_not_matter() {
    let text = "image:\r\n  repository: a/b # the name\r\n  # a comment\r\n  tag: v1\r\n";
    assert_eq!(split_refs(text), ["a/b:v1"]);
    assert_eq!(parts(text)[1], (Role::Tag, "v1".to_owned()));
}

#[test]
fn sibling_image_and_tag_keys_are_one_reference() {
    assert_eq!(split_refs("image: a/b\ntag: v1\n"), ["a/b:v1"]);
    assert_eq!(split_refs("image: a/b\nimageTag: v2\n"), ["a/b:v2"]);
    // An image with its own tag is one piece: the sibling tag does not make another.
    let found = scan_as("values.yaml", "image: a/b:v1\ntag: v2\n");
    assert_eq!(found.len(), 1);
    assert!(matches!(found[0].site, Site::Inline { .. }));
}

#[test]
fn numeric_looking_tags_are_read_as_written() {
    assert_eq!(
        split_refs("image:\n  repository: a/b\n  tag: 3.10\n"),
        ["a/b:3.10"]
    );
    assert_eq!(
        split_refs("image:\n  repository: a/b\n  tag: 16\n"),
        ["a/b:16"]
    );
}

#[test]
fn templates_urls_and_chart_dependencies_are_not_references() {
    assert!(
        split_refs("image:\n  repository: a/b\n  tag: \"{{ .Chart.AppVersion }}\"\n").is_empty()
    );
    assert!(split_refs("image:\n  repository: '{{ .Values.r }}'\n  tag: v1\n").is_empty());
    let deps = "dependencies:\n- name: redis\n  version: 17.0.0\n  repository: https://charts.bitnami.com/bitnami\n- name: pg\n  version: 1.2.3\n  repository: oci://registry-1.docker.io/bitnamicharts\n";
    assert!(split_refs(deps).is_empty());
    assert!(scan_as("Chart.yaml", "image:\n  repository: a/b\n  tag: v1\n").is_empty());
    // A name key needs a tag key; `version:` alone is not an image's.
    assert!(split_refs("- name: geerlingguy.docker\n  version: 6.1.0\n").is_empty());
}

#[test]
fn an_empty_tag_is_the_charts_app_version() {
    let text = "image:\n  repository: a/b\n  tag: \"\"\n";
    assert!(split_refs(text).is_empty(), "without a Chart.yaml");
    let found = Scanner::new(ScanOptions::default()).scan_file(
        Some(Path::new("values.yaml")),
        text.as_bytes(),
        &mut || Some("1.4.2".to_owned()),
    );
    assert_eq!(found[0].reference.to_string(), "a/b:1.4.2");
    assert_eq!(
        split_of(&found[0]).fixed,
        Some("the tag is the chart's appVersion")
    );
}

#[test]
fn anchored_aliased_and_multiline_values_are_fixed() {
    let text = "base: &v v1\nimage:\n  repository: a/b\n  tag: *v\nother:\n  repository: c/d\n  tag: &t v2\nlong:\n  repository: e/f\n  tag: >-\n    v3\n";
    let found = scan_as("values.yaml", text);
    let refs: Vec<_> = found
        .iter()
        .map(|o| (o.reference.to_string(), split_of(o).fixed.is_some()))
        .collect();
    assert_eq!(
        refs,
        [
            ("a/b:v1".to_owned(), true),
            ("c/d:v2".to_owned(), true),
            ("e/f:v3".to_owned(), true)
        ]
    );
}

#[test]
fn a_file_the_parser_rejects_keeps_its_whole_references() {
    let text = "image: a/b:v1\nx:\n  repository: c/d\n  tag: v2\n y: [\n";
    let found = scan_as("values.yaml", text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].reference.to_string(), "a/b:v1");
}

#[test]
fn non_yaml_files_are_not_read_for_maps() {
    assert!(scan_as("main.go", "image:\n  repository: a/b\n  tag: v1\n").is_empty());
}

#[test]
fn kustomize_images_compose_new_name_tag_and_digest() {
    let text = format!(
        "images:\n- name: nginx\n  newName: ghcr.io/o/nginx\n  newTag: 1.25.3\n- name: redis\n  newTag: \"7\"\n  digest: {D}\n- name: only/name\n"
    );
    let found = scan_as("kustomization.yaml", &text);
    let refs: Vec<_> = found.iter().map(|o| o.reference.to_string()).collect();
    assert_eq!(
        refs,
        ["ghcr.io/o/nginx:1.25.3".to_owned(), format!("redis:7@{D}")]
    );
    // A new digest line goes after the tag's, at the tag key's indentation.
    assert_eq!(
        split_of(&found[0]).tail,
        Tail::Line {
            at: text.find("1.25.3").unwrap() + 6,
            prefix: "\n  digest: ".to_owned()
        }
    );
    // The same entries in another YAML file are not Kustomize's.
    assert!(scan_as("other.yaml", &text).is_empty());
}

#[test]
fn cru_ignore_on_any_line_of_a_split_reference_opts_it_out() {
    assert!(split_refs("image:\n  repository: a/b # cru:ignore\n  tag: v1\n").is_empty());
    assert!(split_refs("image:\n  repository: a/b\n  tag: v1 # cru:ignore\n").is_empty());
    assert_eq!(
        split_refs("image: # cru:ignore\n  repository: a/b\n  tag: v1\n"),
        ["a/b:v1"]
    );
}

#[test]
fn plain_values_yaml_would_read_otherwise_are_quoted() {
    for (value, written) in [
        ("3.10", "\"3.10\""),
        ("1e3", "\"1e3\""),
        ("on", "\"on\""),
        ("No", "\"No\""),
        ("16", "\"16\""),
        ("0x1f", "\"0x1f\""),
        ("1.25.3", "1.25.3"),
        ("v1", "v1"),
        ("latest", "latest"),
    ] {
        assert_eq!(Style::Plain.render(value), written, "{value}");
    }
    assert_eq!(Style::Single.render("3.10"), "'3.10'");
    assert_eq!(Style::Empty.render(D), format!(" {D}"));
}

/// The YAML files of `../shared/corpus` and `../shared/corpus-b` (and `kustomization`s),
/// with their paths.
fn corpus_yaml() -> Vec<(std::path::PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let mut dirs: Vec<std::path::PathBuf> = ["corpus", "corpus-b"].map(|c| root.join(c)).to_vec();
    for dir in &dirs {
        assert!(
            dir.is_dir(),
            "the corpus is missing: expected {}",
            dir.display()
        );
    }
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy();
            if !(name.ends_with(".yaml") || name.ends_with(".yml") || name == "Kustomization") {
                continue;
            }
            if let Ok(text) = String::from_utf8(std::fs::read(&path).unwrap()) {
                files.push((path, text));
            }
        }
    }
    files.sort();
    files
}

/// The line reader reads `text` as the parser does, or declines it.
fn agrees(text: &str) -> bool {
    match lines::read(text) {
        Some(mappings) => {
            assert_eq!(Ok(mappings), parsed(text), "{text:?}");
            true
        }
        None => false,
    }
}

#[test]
fn the_line_reader_gives_what_the_parser_gives_on_the_corpus_yaml() {
    // Files that may hold a split reference (those that get read), and how many of them the
    // line reader read.
    let (mut held, mut read_held) = (0, 0);
    for (path, text) in corpus_yaml() {
        let crlf = (!text.contains('\r')).then(|| text.replace('\n', "\r\n"));
        for text in std::iter::once(&text).chain(crlf.as_ref()) {
            let read = agrees(text);
            if may_hold(text.as_bytes(), Kind::Values) && !path.ends_with("Chart.yaml") {
                held += 1;
                read_held += usize::from(read);
            }
        }
    }
    // The line reader must read nearly all of them, or it is no faster (and this test says
    // little).
    assert!(read_held * 10 >= held * 9, "{read_held} of {held} read");
}

#[test]
fn the_line_reader_gives_what_the_parser_gives_or_declines() {
    let read = [
        "image:\n  repository: a/b\n  tag: v1\n  digest:\n",
        "image:\n  repository: a/b\n  tag: v1\n  digest: # none yet\nnext: 1\n",
        "image:\n  repository: a/b\n  digest:\n  tag: v1",
        "\"image\":\n  'repository': \"a/b\"\n  tag: 'it''s'\n",
        "images:\n- name: a/b\n  newTag: v1\n- name: c\n  newName: d/e\n  digest: x\nother: 1\n",
        "a:\n  -\n    repository: a/b\n    tag: v1\n  - x\n  - image: c/d\n    tag: v2\n",
        "a: |\n  text: with\n    repository: x\n\n  tag: 1\nimage:\n  repository: a/b\n  tag: v1\n",
        "- |-\n  x: y\n- image: a/b\n  tag: 1\n",
        "a: [1, 'b', \"c\", [d, e], ]\nb: {x: 1, 'y': [2], z: {w: v}}\nc:\n  {}\nimage:\n  repository: a/b\n  tag: [1]\n",
        "---\nimage:\n  repository: a/b\n  tag: v1\n--- # two\nimage:\n  repository: c/d\n  tag: v2\n...\n",
        "  image:\n    repository: a/b   # c\n    tag: \"1.0\"  \n# at the margin\n    digest: ''\n",
        "image:\r\n  repository: a/b\r\n  tag: v1\r\n  digest:\r\n",
        "a:\n  b: c:d\n  image: x/y\n  tag: 1 # x\n  version:\n",
        "key with spaces: 1\nimage :\n  repository: a/b\n  tag: v1\n",
    ];
    for text in read {
        assert!(agrees(text), "declined {text:?}");
    }
    // What the parser rejects or marks, or the line reader cannot be sure of.
    let declined = [
        "a:\n    b: 1\n  c: 2\n",
        "a: b: c\n",
        "a: 'x' y\n",
        "a: b\n  c\n",
        "a:\n  b\n",
        "image:\n  repository: &r a/b\n  tag: v1\n",
        "image:\n  repository: a/b\n  tag: *t\n",
        "image: {repository: a/b, tag: v1}\n",
        "a: [x, {tag: 1}]\n",
        "image:\n  repository: a/b\n  tag: |\n    v1\n",
        "image:\n  repository: \"a/\\u0062\"\n  tag: v1\n",
        "image:\n\trepository: a/b\n",
        "? image\n: x\n",
        "%YAML 1.2\n---\na: 1\n",
        "--- a\n",
        "a: \"x\n  y\"\n",
        "a: [1,\n  2]\n",
        "  a: 1\nb: 2\n",
        "a: 1\n- b\n",
        "a: |2\n   x\n",
        "a: !!str 1\n",
        "\u{feff}a: 1\n",
        "a: 1\rb: 2\n",
        "a: [b: c]\n",
        "a: {b}\n",
        "- - a\n",
    ];
    for text in declined {
        assert!(!agrees(text), "read {text:?}");
    }
}

#[test]
fn a_values_file_of_many_maps_and_a_long_flow_line_are_read_in_one_pass() {
    // Each takes time in proportion to its size (scripts/bench long-lines prints figures).
    let n = 20_000;
    let text: String = (0..n)
        .map(|i| format!("m{i}:\n  image:\n    repository: a/b\n    tag: v{i}\n"))
        .collect();
    assert!(lines::read(&text).is_some());
    assert_eq!(split_refs(&text).len(), n);
    // One line of about 1 MB: a flow sequence the line reader reads, and one of maps that it
    // leaves to the parser.
    let seq = format!("a: [{}]\n", vec!["x"; 300_000].join(", "));
    assert!(lines::read(&seq).is_some());
    let maps: String = (0..n / 2)
        .map(|i| format!("{{repository: a/b, tag: v{i}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let maps = format!("a: [{maps}]\n");
    assert!(lines::read(&maps).is_none());
    assert_eq!(split_refs(&maps).len(), n / 2);
}

#[test]
fn the_line_reader_gives_what_the_parser_gives_on_random_yaml_like_lines() {
    const INDENTS: [&str; 6] = ["", " ", "  ", "   ", "    ", "      "];
    const PREFIXES: [&str; 5] = ["", "", "- ", "-", "- - "];
    const KEYS_: [&str; 14] = [
        "image",
        "repository",
        "tag",
        "digest",
        "name",
        "newTag",
        "images",
        "a",
        "\"tag\"",
        "'image'",
        "x y",
        "? a",
        "registry",
        "newName",
    ];
    const SEPS: [&str; 4] = [":", ": ", ":  ", " : "];
    const VALUES: [&str; 30] = [
        "",
        "a/b",
        "v1",
        "'1'",
        "\"2\"",
        "''",
        "\"\"",
        "{}",
        "[]",
        "[a, b]",
        "{a: 1}",
        "{tag: 1}",
        "|",
        ">-",
        "&x v",
        "*x",
        "!!str v",
        "# c",
        "1 # c",
        "a: b",
        "'a' b",
        "\"a\\\"b\"",
        "x #y",
        "null",
        "~",
        "[a, [b, c], ]",
        "{a: [1], b: {c: d}}",
        "'it''s'",
        "@x",
        "[a,",
    ];
    const LINES: [&str; 13] = [
        "---",
        "...",
        "# comment",
        "",
        "  text",
        "--- # c",
        "  - x",
        "    more text",
        "\ttab: 1",
        "key:\tv",
        "a: 'multi",
        "  line'",
        "key:value",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut read = 0;
    for _ in 0..100_000 {
        let mut text = String::new();
        let crlf = next(4) == 0;
        // Mostly an indentation near the line before's, as in real files.
        let mut indent: usize = 0;
        for _ in 0..1 + next(10) {
            if next(6) == 0 {
                text.push_str(LINES[next(LINES.len())]);
            } else {
                indent = match next(8) {
                    0 => next(INDENTS.len()),
                    1 | 2 => indent.saturating_sub(2),
                    3 | 4 => (indent + 2).min(INDENTS.len() - 1),
                    _ => indent,
                };
                text.push_str(INDENTS[indent]);
                text.push_str(PREFIXES[next(PREFIXES.len())]);
                if next(5) == 0 {
                    text.push_str(VALUES[next(VALUES.len())]);
                } else {
                    text.push_str(KEYS_[next(KEYS_.len())]);
                    text.push_str(SEPS[next(SEPS.len())]);
                    text.push_str(VALUES[next(VALUES.len())]);
                }
            }
            text.push_str(if crlf { "\r\n" } else { "\n" });
        }
        read += usize::from(agrees(&text));
    }
    // Enough of them are read for the comparison to mean something.
    assert!(read > 5_000, "{read} read");
}
