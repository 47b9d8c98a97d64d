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
