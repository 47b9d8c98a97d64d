//! The binary over `../shared/corpus` and `../shared/corpus-b`: real files from public
//! repositories.
//!
//! `cru list` must read all of each without error and find what a person finds there; an
//! update must change nothing but the reference spans. The number of references found in each
//! is pinned exactly, so that a change in detection shows here and is judged on purpose.

mod util;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use cru::scan::{ScanOptions, Scanner};
use util::{assert_exit, stdout, Dir};

/// `../shared/corpus-b`: Quadlet units, Nomad jobs, Woodpecker pipelines, Maven POMs, man
/// pages, buildx and podman docs.
fn corpus_b() -> PathBuf {
    let path = util::repo_root().join("../shared/corpus-b");
    assert!(
        path.join("SOURCES.md").is_file(),
        "the second corpus is missing: expected {}",
        path.display()
    );
    path
}

/// `cru list ARGS` run in `corpus`: its stdout lines.
fn list(corpus: &Path, args: &[&str]) -> Vec<String> {
    let out = util::cru_command()
        .current_dir(corpus)
        .arg("list")
        .args(args)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    stdout(&out).lines().map(str::to_owned).collect()
}

fn list_corpus() -> BTreeSet<String> {
    list(&util::corpus(), &[]).into_iter().collect()
}

/// The exact figures of `cru list` on each corpus: `path:reference` lines (distinct per
/// file) and occurrences (JSON lines). Reviewed kind by kind (issue 15); when detection
/// changes, read the difference and update these on purpose.
const CORPUS_LINES: usize = 2399;
const CORPUS_OCCURRENCES: usize = 2656;
const CORPUS_B_LINES: usize = 773;
const CORPUS_B_OCCURRENCES: usize = 1141;

#[test]
fn the_number_of_references_found_in_each_corpus_is_pinned() {
    for (corpus, lines, occurrences) in [
        (util::corpus(), CORPUS_LINES, CORPUS_OCCURRENCES),
        (corpus_b(), CORPUS_B_LINES, CORPUS_B_OCCURRENCES),
    ] {
        let found = list(&corpus, &[]).len();
        let json = list(&corpus, &["--format", "json"]).len();
        assert_eq!(
            (found, json),
            (lines, occurrences),
            "{}: (lines, occurrences)",
            corpus.display()
        );
    }
}

#[test]
fn list_reads_the_second_corpus_and_finds_its_new_kinds() {
    let found: BTreeSet<String> = list(&corpus_b(), &[]).into_iter().collect();
    for expected in [
        // Quadlet units (`Image=`), here in a man page.
        "containers__podman/docs/source/markdown/podman-quadlet-basic-usage.7.md:nginx:alpine",
        "containers__podman/test/e2e/quadlet/comment-with-continuation.container:localhost/image:latest",
        // Nomad job HCL.
        "hashicorp__nomad/command/asset/example.nomad.hcl:redis:7",
        "hashicorp__nomad/command/asset/connect.nomad.hcl:hashicorpdev/counter-api:v3",
        // Woodpecker pipelines.
        "renovatebot__renovate/lib/modules/manager/woodpecker/__fixtures__/.woodpecker.yml:postgres:9.5.0",
        // Maven POMs: references as element content.
        "renovatebot__renovate/lib/modules/manager/maven/__fixtures__/full_cnb.pom.xml:paketobuildpacks/run-noble-full:0.0.28",
        // Man pages: a transport reference followed by a colon in an error message.
        "containers__podman/troubleshooting.md:alpine:latest",
    ] {
        assert!(found.contains(expected), "missing {expected}");
    }
    for wrong in [
        // YAML tags, credentials given to pull, log text glued on with an ellipsis.
        "renovatebot__renovate/tools/mkdocs/mkdocs.yml:python/name:pymdownx.superfences.fence_code_format",
        "containers__podman/docs/source/markdown/podman-pull.1.md.in:testuser:testpassword",
        "containers__podman/troubleshooting.md:docker.io/library/alpine:latest...ERRO",
    ] {
        assert!(!found.contains(wrong), "found {wrong}");
    }
}

#[test]
fn list_reads_the_whole_corpus_and_finds_what_a_person_finds() {
    let found = list_corpus();
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
        // A quoted Dockerfile image; a reference after `<br />`; Markdown emphasis.
        "GoogleCloudPlatform__cloud-builders-community/pulumi/Dockerfile:node:8.15",
        "devcontainers__images/src/universal/README.md:mcr.microsoft.com/devcontainers/universal:noble",
        "tektoncd__catalog/task/npm/0.1/README.md:docker.io/library/node:12-alpine@sha256:12048cdfd75d944df35f3144132d9bdeee78015fbd6df765edad1be46599b110",
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
        // A policy path, a whole image value that is not a reference, a token scope, a filter.
        "argoproj__argo-cd/docs/proposals/attach-debug-containers.md:debug/gcr.io/example/dlv:1.22",
        "argoproj__argo-cd/test/e2e/testdata/progressive-sync/dev/deployment.yaml:alpine:invalid",
        "istio__istio/samples/bookinfo/README.md:user1/examples-bookinfo-details-v1:pull",
        "prometheus-community__helm-charts/charts/prometheus-stackdriver-exporter/values.yaml:pubsub.googleapis.com/subscription:resource.labels.subscription_id",
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
    assert_updates_change_only_spans(&util::corpus(), 1000);
}

#[test]
fn an_update_of_the_second_corpus_changes_nothing_but_reference_spans() {
    assert_updates_change_only_spans(&corpus_b(), 200);
}

/// The identity update (`--all --matching-tag`) leaves `corpus` byte-identical; an update of
/// everything to `latest` changes only the suffixes the scanner finds, in at least
/// `min_changed` files.
fn assert_updates_change_only_spans(corpus: &Path, min_changed: usize) {
    let dir = Dir::new();
    let copy = dir.path().join("corpus");
    util::copy_tree(corpus, &copy);

    // The identity: every reference to itself.
    let out = util::cru_command()
        .current_dir(&copy)
        .args(["update", "--all", "--matching-tag"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_same_tree(corpus, &copy);

    // Everything to `latest`: only the suffixes change.
    let out = util::cru_command()
        .current_dir(&copy)
        .args(["update", "--all"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let scanner = Scanner::new(ScanOptions::default());
    let mut changed = 0;
    for_each_file(corpus, &mut |original| {
        let rel = original.strip_prefix(corpus).unwrap();
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
    assert!(changed > min_changed, "only {changed} files changed");
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
