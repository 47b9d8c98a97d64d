//! Split references (issue 13), end to end: Helm values maps, Kustomize `images:` entries and
//! Dockerfile `ARG` defaults listed, checked and updated by the binary, each update asserting
//! the exact bytes after; digests resolved against the real distribution registry.

mod support;
mod util;

use support::registry::Registry;
use util::{assert_exit, stderr, stdout, Dir};

const D: &str = "sha256:abababababababababababababababababababababababababababababababab";

/// A folder with an empty docker config and registries.conf, so the user's never leak in.
fn setup() -> Dir {
    let dir = Dir::new();
    dir.write(".config/docker/config.json", "{}");
    dir.write(".config/registries.conf", "");
    dir
}

fn run(dir: &Dir, args: &[&str]) -> std::process::Output {
    dir.cru(args)
        .env("DOCKER_CONFIG", dir.path().join(".config/docker"))
        .env(
            "CRU_REGISTRIES_CONF",
            dir.path().join(".config/registries.conf"),
        )
        .env("HOME", dir.path())
        .output()
        .unwrap()
}

/// The values of `helm create`'s scaffold (Helm 3.14), the part about the image.
const HELM_CREATE: &str = "# Default values for mychart.\n# This is a YAML-formatted file.\n\nreplicaCount: 1\n\nimage:\n  repository: nginx\n  pullPolicy: IfNotPresent\n  # Overrides the image tag whose default is the chart appVersion.\n  tag: \"\"\n\nimagePullSecrets: []\nnameOverride: \"\"\n";

#[test]
fn the_helm_create_scaffold_lists_the_charts_app_version_and_is_never_rewritten() {
    let dir = setup();
    dir.write(
        "mychart/Chart.yaml",
        "apiVersion: v2\nname: mychart\nversion: 0.1.0\nappVersion: \"1.16.0\"\n",
    );
    dir.write("mychart/values.yaml", HELM_CREATE);
    let out = run(&dir, &["list"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "mychart/values.yaml:nginx:1.16.0\n");

    let out = run(&dir, &["update", "--image-reference", "nginx:1.25.3"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("left alone: the tag is the chart's appVersion"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dir.read_string("mychart/values.yaml"), HELM_CREATE);
    assert!(dir
        .read_string("mychart/Chart.yaml")
        .contains("appVersion: \"1.16.0\""));

    // Without a Chart.yaml above, an empty tag is no reference.
    let alone = setup();
    alone.write("values.yaml", HELM_CREATE);
    assert_eq!(stdout(&run(&alone, &["list"])), "");
}

#[test]
fn image_reference_rewrites_only_the_tag_value_keeping_quotes() {
    let dir = setup();
    let before = HELM_CREATE.replace("tag: \"\"", "tag: \"1.16.0\" # pinned");
    dir.write("values.yaml", &before);
    let out = run(&dir, &["update", "--image-reference", "nginx:1.25.3"]);
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("values.yaml"),
        before.replace("\"1.16.0\" # pinned", "\"1.25.3\" # pinned")
    );

    // A plain tag that YAML would read as a number is written quoted.
    dir.write("values.yaml", "app:\n  image: a/b\n  tag: v1\n");
    let out = run(&dir, &["update", "--image-reference", "a/b:3.10"]);
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("values.yaml"),
        "app:\n  image: a/b\n  tag: \"3.10\"\n"
    );
}

/// A Bitnami-style values file: registry, repository, tag and an empty digest, with CRLF.
fn bitnami(host: &str) -> String {
    format!(
        "## @param image.registry\r\nimage:\r\n  registry: {host}\r\n  repository: bitnami/nginx\r\n  tag: 1.25.3-debian-12-r0\r\n  digest: \"\"\r\n  pullPolicy: IfNotPresent\r\nmetrics:\r\n  image: {{registry: {host}, repository: bitnami/exporter, tag: '1.0'}}\r\n"
    )
}

#[test]
fn resolve_digest_fills_an_empty_digest_key_and_pins_into_the_tag_without_one() {
    let reg = Registry::start();
    let host = reg.host();
    let nginx = reg.push_oci("bitnami/nginx", "n", &["1.25.3-debian-12-r0"]);
    let exporter = reg.push_oci("bitnami/exporter", "e", &["1.0"]);
    let dir = setup();
    dir.write("values.yaml", bitnami(&host));
    let out = run(&dir, &["list"]);
    assert_eq!(
        stdout(&out),
        format!("values.yaml:{host}/bitnami/exporter:1.0\nvalues.yaml:{host}/bitnami/nginx:1.25.3-debian-12-r0\n")
    );

    let out = run(
        &dir,
        &["update", "--resolve-digest", "--all", "--matching-tag"],
    );
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("values.yaml"),
        bitnami(&host)
            .replace("digest: \"\"", &format!("digest: \"{nginx}\""))
            .replace("tag: '1.0'", &format!("tag: '1.0@{exporter}'"))
    );
    // Pinned now: check finds nothing, and a second run changes nothing.
    assert_exit(&run(&dir, &["check", "--require-digest"]), 0);
    let pinned = dir.read_string("values.yaml");
    assert_exit(
        &run(
            &dir,
            &["update", "--resolve-digest", "--all", "--matching-tag"],
        ),
        0,
    );
    assert_eq!(dir.read_string("values.yaml"), pinned);
}

#[test]
fn list_json_shows_where_each_part_is_and_check_reports_the_tags_line() {
    let dir = setup();
    dir.write("values.yaml", bitnami("docker.io"));
    let out = run(&dir, &["list", "--format", "json"]);
    assert_exit(&out, 0);
    let first = stdout(&out).lines().next().unwrap().to_owned();
    assert_eq!(
        first,
        r#"{"file":"values.yaml","line":5,"column":8,"reference":"docker.io/bitnami/nginx:1.25.3-debian-12-r0","name":"docker.io/bitnami/nginx","registry":"docker.io","repository":"bitnami/nginx","tag":"1.25.3-debian-12-r0","digest":null,"parts":[{"role":"registry","line":3,"column":13},{"role":"repository","line":4,"column":15},{"role":"tag","line":5,"column":8},{"role":"digest","line":6,"column":11}]}"#
    );
    let out = run(&dir, &["check", "--require-digest"]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).starts_with("values.yaml:5:8: docker.io/bitnami/nginx:1.25.3-debian-12-r0 is not pinned to a digest\n"),
        "{}",
        stdout(&out)
    );
}

const KUSTOMIZATION: &str = "resources:\n- deployment.yaml\nimages:\n- name: nginx\n  newName: HOST/team/nginx\n  newTag: \"1.0\" # the web tier\n- name: redis\n  newName: HOST/team/redis\n  newTag: \"7\"\n  digest: DIGEST\n";

#[test]
fn kustomize_entries_get_a_digest_line_or_their_digest_replaced_and_name_is_kept() {
    let reg = Registry::start();
    let host = reg.host();
    let nginx = reg.push_oci("team/nginx", "n", &["1.0"]);
    let redis = reg.push_oci("team/redis", "r", &["7"]);
    let dir = setup();
    let before = KUSTOMIZATION.replace("HOST", &host).replace("DIGEST", D);
    dir.write("overlay/kustomization.yaml", &before);
    let out = run(&dir, &["list"]);
    assert_eq!(
        stdout(&out),
        format!("overlay/kustomization.yaml:{host}/team/nginx:1.0\noverlay/kustomization.yaml:{host}/team/redis:7@{D}\n")
    );
    let out = run(
        &dir,
        &["update", "--resolve-digest", "--all", "--matching-tag"],
    );
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("overlay/kustomization.yaml"),
        before
            .replace(
                "newTag: \"1.0\" # the web tier\n",
                &format!("newTag: \"1.0\" # the web tier\n  digest: {nginx}\n")
            )
            .replace(D, &redis)
    );
}

#[test]
fn a_dry_run_shows_the_added_digest_line() {
    let dir = setup();
    dir.write("kustomization.yaml", "images:\n- name: a/b\n  newTag: v1\n");
    let out = run(
        &dir,
        &[
            "update",
            "--dry-run",
            "--image-reference",
            &format!("a/b:v1@{D}"),
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        format!("--- a/kustomization.yaml\n+++ b/kustomization.yaml\n@@ -1,3 +1,4 @@\n images:\n - name: a/b\n-  newTag: v1\n+  newTag: v1\n+  digest: {D}\n")
    );
    assert_eq!(
        dir.read_string("kustomization.yaml"),
        "images:\n- name: a/b\n  newTag: v1\n"
    );
}

#[test]
fn cru_ignore_on_a_line_of_a_values_map_opts_it_out() {
    let dir = setup();
    let text = "image:\n  repository: a/b # cru:ignore\n  tag: v1\n";
    dir.write("values.yaml", text);
    assert_eq!(stdout(&run(&dir, &["list"])), "");
    assert_exit(&run(&dir, &["update", "--image-reference", "a/b:v2"]), 0);
    assert_eq!(dir.read_string("values.yaml"), text);
}

#[test]
fn a_dockerfile_arg_default_is_rewritten_for_the_from_that_uses_it() {
    let dir = setup();
    let before = "# syntax=docker/dockerfile:1\nARG NODE_VERSION=20.11.1\nARG BASE=\"python:3.12\"\nFROM node:${NODE_VERSION}-alpine AS build\nRUN npm ci\nFROM ${BASE}\nCOPY --from=build /app /app\n";
    dir.write("Dockerfile", before);
    let out = run(&dir, &["list"]);
    assert_eq!(
        stdout(&out),
        "Dockerfile:docker/dockerfile:1\nDockerfile:node:20.11.1-alpine\nDockerfile:python:3.12\n"
    );
    let out = run(
        &dir,
        &[
            "update",
            "--image-reference",
            "node:22.1.0-alpine",
            "--image-reference",
            "python:3.13",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("Dockerfile"),
        before
            .replace("NODE_VERSION=20.11.1", "NODE_VERSION=22.1.0")
            .replace("\"python:3.12\"", "\"python:3.13\"")
    );
}

#[test]
fn an_arg_two_froms_need_different_values_for_is_reported_and_left_alone() {
    let dir = setup();
    let before = "ARG V=1.0\nFROM a/b:${V}\nFROM c/d:${V}\n";
    dir.write("Dockerfile", before);
    let out = run(&dir, &["update", "--image-reference", "a/b:2.0"]);
    assert_exit(&out, 0);
    assert_eq!(dir.read_string("Dockerfile"), before);
    // Both to the same value: one edit.
    let out = run(
        &dir,
        &[
            "update",
            "--image-reference",
            "a/b:2.0",
            "--image-reference",
            "c/d:2.0",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("Dockerfile"),
        "ARG V=2.0\nFROM a/b:${V}\nFROM c/d:${V}\n"
    );
}

#[test]
fn a_compose_tag_default_is_rewritten_and_the_name_default_kept() {
    let dir = setup();
    let before = "services:\n  app:\n    image: ${IMAGE:-org/app}:${TAG:-1.2}\n";
    dir.write("compose.yaml", before);
    assert_eq!(stdout(&run(&dir, &["list"])), "compose.yaml:org/app:1.2\n");
    let out = run(&dir, &["update", "--image-reference", "org/app:1.3"]);
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("compose.yaml"),
        before.replace("TAG:-1.2", "TAG:-1.3")
    );
}

/// A Bitnami-style map whose digest key holds `digest`, a sibling `image:` + `tag:` pair with
/// no digest key, and the same image in one piece.
fn placed_values(host: &str, tag: &str, digest: &str) -> String {
    format!(
        "image:\n  registry: {host}\n  repository: bitnami/nginx\n  tag: {tag}\n  digest: {digest}\nsidecar:\n  image: {host}/bitnami/exporter\n  tag: '1.0'\nwhole: {host}/bitnami/nginx:1.25.3\n"
    )
}

/// A registry with `bitnami/nginx:1.25.3` and `bitnami/exporter:1.0`, a folder whose
/// `.cru.yaml` says `split-digest: VALUE`, and the two digests.
fn placing(value: &str) -> (Registry, Dir, String, String) {
    let reg = Registry::start();
    let nginx = reg.push_oci("bitnami/nginx", "n", &["1.25.3"]);
    let exporter = reg.push_oci("bitnami/exporter", "e", &["1.0"]);
    let dir = setup();
    dir.write(
        ".cru.yaml",
        format!("rules:\n  - match: {{image: \"**\"}}\n    split-digest: {value}\n"),
    );
    let out = run(&dir, &["config", "show"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains(&format!(
            "rule: match: {{image: \"**\"}}, split-digest: {value}  # .cru.yaml:2"
        )),
        "{}",
        stdout(&out)
    );
    (reg, dir, nginx, exporter)
}

#[test]
fn split_digest_digest_key_fills_the_digest_key_and_pins_into_the_tag_without_one() {
    let (reg, dir, nginx, exporter) = placing("digest-key");
    let host = reg.host();
    dir.write("values.yaml", placed_values(&host, "1.25.3", "\"\""));
    let out = run(
        &dir,
        &["update", "--resolve-digest", "--all", "--matching-tag"],
    );
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("values.yaml"),
        placed_values(&host, "1.25.3", &format!("\"{nginx}\""))
            .replace("tag: '1.0'", &format!("tag: '1.0@{exporter}'"))
            .replace("nginx:1.25.3\n", &format!("nginx:1.25.3@{nginx}\n"))
    );
}

#[test]
fn split_digest_tag_pins_into_the_tag_and_empties_a_digest_key_that_held_the_old_one() {
    let (reg, dir, nginx, exporter) = placing("tag");
    let host = reg.host();
    dir.write("values.yaml", placed_values(&host, "1.25.3", "\"\""));
    let out = run(
        &dir,
        &["update", "--resolve-digest", "--all", "--matching-tag"],
    );
    assert_exit(&out, 0);
    let pinned = placed_values(&host, &format!("1.25.3@{nginx}"), "\"\"")
        .replace("tag: '1.0'", &format!("tag: '1.0@{exporter}'"))
        .replace("nginx:1.25.3\n", &format!("nginx:1.25.3@{nginx}\n"));
    assert_eq!(dir.read_string("values.yaml"), pinned);
    // Pinned in the tag: a second run changes nothing.
    assert_exit(
        &run(
            &dir,
            &["update", "--resolve-digest", "--all", "--matching-tag"],
        ),
        0,
    );
    assert_eq!(dir.read_string("values.yaml"), pinned);

    // The old digest in the digest key: it moves into the tag, the key is emptied.
    dir.write("values.yaml", placed_values(&host, "1.25.3", D));
    let out = run(
        &dir,
        &["update", "--resolve-digest", "--all", "--matching-tag"],
    );
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("values.yaml"),
        placed_values(&host, &format!("1.25.3@{nginx}"), "\"\"")
            .replace("tag: '1.0'", &format!("tag: '1.0@{exporter}'"))
            .replace("nginx:1.25.3\n", &format!("nginx:1.25.3@{nginx}\n"))
    );
}

#[test]
fn split_digest_none_never_pins_a_split_reference_but_pins_the_same_image_in_one_piece() {
    let (reg, dir, nginx, _) = placing("none");
    let host = reg.host();
    let before = placed_values(&host, "1.25.3", "\"\"");
    dir.write("values.yaml", &before);
    let out = run(
        &dir,
        &["update", "--resolve-digest", "--all", "--matching-tag"],
    );
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("values.yaml"),
        before.replace("nginx:1.25.3\n", &format!("nginx:1.25.3@{nginx}\n"))
    );
    // `check` does not require a digest of the split references; the one in one piece has one.
    assert_exit(&run(&dir, &["check", "--require-digest"]), 0);
    // A new tag is written, with no digest even when one is given.
    let out = run(
        &dir,
        &[
            "update",
            "--image-reference",
            &format!("{host}/bitnami/nginx:1.26.0@{D}"),
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("values.yaml"),
        placed_values(&host, "1.26.0", "\"\"")
            .replace("nginx:1.25.3\n", &format!("nginx:1.26.0@{D}\n"))
    );
}
