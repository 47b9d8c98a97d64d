//! The binary over `../shared/corpus`: real files from public repositories.
//!
//! `cru list` must read all of it without error and find what a person finds there; an update
//! must change nothing but the reference spans.

mod util;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use cru::scan::{ScanOptions, Scanner};
use util::{assert_exit, stdout, Dir};

fn list_corpus() -> BTreeSet<String> {
    let corpus = util::corpus();
    let out = util::cru_command()
        .current_dir(&corpus)
        .args(["list"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    stdout(&out).lines().map(str::to_owned).collect()
}

#[test]
fn list_reads_the_whole_corpus_and_finds_what_a_person_finds() {
    let found = list_corpus();
    assert!(found.len() > 2000, "only {} lines", found.len());
    for expected in [
        // A host in the path is part of one reference, not a fragment.
        "GoogleCloudPlatform__cloud-builders-community/binauthz-attestation/Dockerfile:gcr.io/google.com/cloudsdktool/cloud-sdk:alpine",
        // Unqualified images in image contexts.
        "jessfraz__dockerfiles/ab/Dockerfile:alpine:latest",
        "nektos__act/pkg/runner/testdata/shells/bash/push.yml:node:16-buster-slim",
        "aws-samples__aws-containers-task-definitions/nginx/nginx_fargate.json:nginx:latest",
        "aws-cloudformation__aws-cloudformation-templates/ECS/ECS_Schedule_Example.yaml:httpd:2.4",
        "kubernetes__ingress-nginx/NEW_CONTRIBUTOR.md:httpd:alpine",
        // Compose files and Helm values.
        "docker__awesome-compose/wasmedge-mysql-nginx/compose.yml:nginx:alpine",
    ] {
        assert!(found.contains(expected), "missing {expected}");
    }
    for line in &found {
        let reference = line.rsplit_once(".md:").map_or(line.as_str(), |(_, r)| r);
        assert!(
            !reference.starts_with(".com/") && !line.contains("container:container.bzl"),
            "a fragment or Bazel label: {line}"
        );
        assert!(
            !line.contains("%s") && !line.contains("%%"),
            "a template: {line}"
        );
    }
    for wrong in [
        "prometheus-operator__kube-prometheus/jsonnet/kube-prometheus/main.libsonnet:quay.io/prometheus/alertmanager:v",
        "istio__istio/pkg/wasm/cache_test.go:s/test/valid/docker:latest",
        "kubernetes__ingress-nginx/charts/ingress-nginx/ci/controller-service-values.yaml:default/test:8080",
        "tektoncd__catalog/task/rhacs-image-scan/4.0/README.md:entrypoint/entrypointer.go:188",
    ] {
        assert!(!found.contains(wrong), "found {wrong}");
    }
}

#[test]
fn the_go_tools_fragments_are_not_found() {
    let found = list_corpus();
    let fragments: Vec<_> = found
        .iter()
        .filter(|l| l.contains(":.com/") || l.contains("docker//"))
        .collect();
    assert!(fragments.is_empty(), "{fragments:?}");
}

#[test]
fn an_update_changes_nothing_but_reference_spans() {
    let dir = Dir::new();
    let copy = dir.path().join("corpus");
    util::copy_tree(&util::corpus(), &copy);

    // The identity: every reference to itself.
    let out = util::cru_command()
        .current_dir(&copy)
        .args(["update", "--all", "--matching-tag"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_same_tree(&util::corpus(), &copy);

    // Everything to `latest`: only the suffixes change.
    let out = util::cru_command()
        .current_dir(&copy)
        .args(["update", "--all"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let scanner = Scanner::new(ScanOptions::default());
    let mut changed = 0;
    for_each_file(&util::corpus(), &mut |original| {
        let rel = original.strip_prefix(util::corpus()).unwrap();
        let before = fs::read(original).unwrap();
        let after = fs::read(copy.join(rel)).unwrap();
        let mut expected = Vec::new();
        let mut at = 0;
        for occ in scanner.scan(&before) {
            expected.extend_from_slice(&before[at..occ.name_end]);
            expected.extend_from_slice(b":latest");
            at = occ.end;
        }
        expected.extend_from_slice(&before[at..]);
        if before != after {
            changed += 1;
        }
        assert!(
            expected == after,
            "{} differs outside reference spans",
            rel.display()
        );
    });
    assert!(changed > 1000, "only {changed} files changed");
}

fn assert_same_tree(a: &Path, b: &Path) {
    for_each_file(a, &mut |file| {
        let rel = file.strip_prefix(a).unwrap();
        assert!(
            fs::read(file).unwrap() == fs::read(b.join(rel)).unwrap(),
            "{} changed",
            rel.display()
        );
    });
}

fn for_each_file(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            for_each_file(&entry.path(), f);
        } else if kind.is_file() {
            f(&entry.path());
        }
    }
}
