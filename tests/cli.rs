//! The `cru` binary over small trees: output, files after, exit codes, bad input.

mod util;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use util::{assert_exit, stderr, stdout, Dir};

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn example() -> Dir {
    let dir = Dir::new();
    util::copy_tree(&util::repo_root().join("testdata/example"), dir.path());
    dir
}

#[test]
fn list_prints_sorted_deduplicated_path_reference_lines() {
    let dir = Dir::new();
    dir.write(
        "b.yaml",
        "image: nginx:1.25\nimage: nginx:1.25\nx: gcr.io/a/b:1\n",
    );
    dir.write("a/c.txt", "see quay.io/x/y:2 and bitnami/redis:7\n");
    let out = dir.run(&["list"]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        "a/c.txt:bitnami/redis:7\na/c.txt:quay.io/x/y:2\nb.yaml:gcr.io/a/b:1\nb.yaml:nginx:1.25\n"
    );
}

#[test]
fn list_no_filename_and_explicit_paths() {
    let dir = Dir::new();
    dir.write("one/f.yaml", "image: nginx:1.25\n");
    dir.write("two/f.yaml", "image: redis:7\n");
    let out = dir.run(&["list", "--no-filename", "two"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "redis:7\n");
    let abs = dir.path().join("one/f.yaml");
    let out = dir.run(&["list", abs.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        "one/f.yaml:nginx:1.25\n",
        "shown relative to the cwd"
    );
}

#[test]
fn list_json_has_positions_and_normalised_parts() {
    let dir = Dir::new();
    dir.write("k.yaml", format!("a: 1\n  image: nginx:1.25@{D1}\n"));
    let out = dir.run(&["list", "--format", "json"]);
    assert_exit(&out, 0);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let v = &lines[0];
    assert_eq!(v["file"], "k.yaml");
    assert_eq!(v["line"], 2);
    assert_eq!(v["column"], 10);
    assert_eq!(v["reference"], format!("nginx:1.25@{D1}"));
    assert_eq!(v["name"], "docker.io/library/nginx");
    assert_eq!(v["registry"], "docker.io");
    assert_eq!(v["repository"], "library/nginx");
    assert_eq!(v["tag"], "1.25");
    assert_eq!(v["digest"], D1);
}

#[test]
fn list_visits_hidden_files_but_honours_ignore_files_and_skips_binaries() {
    let dir = Dir::new();
    fs::create_dir(dir.path().join(".git")).unwrap();
    dir.write(".gitignore", "vendor/\n");
    dir.write(".github/workflows/ci.yml", "container: node:20\n");
    dir.write(".gitlab-ci.yml", "image: ruby:3.3\n");
    dir.write("vendor/x.yaml", "image: gcr.io/vendored/x:1\n");
    dir.write(".git/config", "gcr.io/in/git:1\n");
    dir.write("blob.dat", b"\x00\x01gcr.io/in/binary:1\n");
    let out = dir.run(&["list"]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        ".github/workflows/ci.yml:node:20\n.gitlab-ci.yml:ruby:3.3\n"
    );
    // Named explicitly, ignored and binary files are read.
    let out = dir.run(&["list", "vendor/x.yaml", "blob.dat"]);
    assert_eq!(
        stdout(&out),
        "blob.dat:gcr.io/in/binary:1\nvendor/x.yaml:gcr.io/vendored/x:1\n"
    );
}

#[test]
fn qualified_only_matches_the_go_tool() {
    let dir = Dir::new();
    dir.write("Dockerfile", "FROM python:3.12\nFROM gcr.io/a/b:1\n");
    let out = dir.run(&["list", "--qualified-only"]);
    assert_eq!(stdout(&out), "Dockerfile:gcr.io/a/b:1\n");
}

#[test]
fn a_missing_path_is_a_usage_error_naming_it() {
    let dir = Dir::new();
    let out = dir.run(&["list", "nope"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("nope: no such file or directory"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = Dir::new();
    assert_exit(&dir.run(&[]), 2);
    assert_exit(&dir.run(&["update"]), 2);
    assert_exit(
        &dir.run(&["update", "--all", "--image-reference", "a:1"]),
        2,
    );
    let out = dir.run(&["update", "--image-reference", "UPPER/x:1"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("invalid repository name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn update_changes_only_the_tag_and_digest_keeping_the_spelling() {
    let dir = Dir::new();
    let before = format!(
        "a: index.docker.io/library/nginx:1.25@{D1}\nimage: nginx:1.24 # web\nb: docker.io/nginx:1.25\nc: nginx/nginx:1.25\n"
    );
    dir.write("f.yaml", &before);
    let out = dir.run(&[
        "update",
        "--image-reference",
        "docker.io/library/nginx:1.27",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("f.yaml"),
        "a: index.docker.io/library/nginx:1.27\nimage: nginx:1.27 # web\nb: docker.io/nginx:1.27\nc: nginx/nginx:1.25\n"
    );
    let err = stderr(&out);
    assert!(err.contains(" INFO: updated a total of 1 files"), "{err}");
    assert!(stdout(&out).is_empty(), "logs never go to stdout");
}

#[test]
fn update_with_matching_tag_refreshes_only_that_tag() {
    let dir = Dir::new();
    dir.write(
        "f.yaml",
        format!("- gcr.io/p/app:v1@{D1}\n- gcr.io/p/app:v2@{D1}\n- gcr.io/p/app:v1\n"),
    );
    let reference = format!("gcr.io/p/app:v1@{D2}");
    let out = dir.run(&["update", "--matching-tag", "--image-reference", &reference]);
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("f.yaml"),
        format!("- gcr.io/p/app:v1@{D2}\n- gcr.io/p/app:v2@{D1}\n- gcr.io/p/app:v1@{D2}\n")
    );
}

#[test]
fn update_all_sets_latest_and_drops_digests() {
    let dir = Dir::new();
    dir.write(
        "Dockerfile",
        format!("FROM golang:1.22@{D1} AS build\nFROM gcr.io/x/y:3\n"),
    );
    let out = dir.run(&["update", "--all", "--verbose"]);
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("Dockerfile"),
        "FROM golang:latest AS build\nFROM gcr.io/x/y:latest\n"
    );
    let err = stderr(&out);
    assert!(err.contains("INFO: 2 image references found"), "{err}");
    assert!(
        err.contains("INFO: updating reference gcr.io/x/y:3 to gcr.io/x/y:latest in Dockerfile"),
        "{err}"
    );
}

#[test]
fn update_all_matching_tag_offline_changes_nothing() {
    let dir = example();
    let before = dir.read("k8s/deployment.yaml");
    let out = dir.run(&["update", "--all", "--matching-tag"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("INFO: no files were updated by cru"));
    assert_eq!(dir.read("k8s/deployment.yaml"), before);
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let dir = example();
    let before = dir.read("k8s/deployment.yaml");
    let out = dir.run(&["update", "--dry-run", "--image-reference", "nginx:1.27"]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        "--- a/k8s/deployment.yaml\n+++ b/k8s/deployment.yaml\n@@ -10,7 +10,7 @@\n           image: gcr.io/example-project/migrate:v1.4.2\n       containers:\n         - name: web\n-          image: nginx:1.25\n+          image: nginx:1.27\n         - name: cache\n           image: \"docker.io/library/redis:7.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\n         # - name: old\n"
    );
    assert_eq!(dir.read("k8s/deployment.yaml"), before);
    assert!(stderr(&out).contains("dry run: 1 files would be updated"));
}

#[test]
fn update_keeps_crlf_non_utf8_bytes_and_a_missing_final_newline() {
    let dir = Dir::new();
    let before: &[u8] = b"\xef\xbb\xbfa:\r\n  image: redis:7\r\n\xff\xfe gcr.io/a/b:1";
    dir.write("f.yaml", before);
    let out = dir.run(&[
        "update",
        "--image-reference",
        "redis:7.2",
        "--image-reference",
        "gcr.io/a/b:22",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        dir.read("f.yaml"),
        b"\xef\xbb\xbfa:\r\n  image: redis:7.2\r\n\xff\xfe gcr.io/a/b:22"
    );
}

#[cfg(unix)]
#[test]
fn update_keeps_permissions_and_symlinks() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = Dir::new();
    let script = dir.write("run.sh", "#!/bin/sh\nexec docker run gcr.io/a/b:1\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let real = dir.write("real/values.yaml", "image: gcr.io/a/b:1\n");
    symlink(&real, dir.path().join("link.yaml")).unwrap();

    let out = dir.run(&[
        "update",
        "--image-reference",
        "gcr.io/a/b:2",
        "run.sh",
        "link.yaml",
    ]);
    assert_exit(&out, 0);
    let mode = fs::metadata(&script).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    assert_eq!(
        dir.read_string("run.sh"),
        "#!/bin/sh\nexec docker run gcr.io/a/b:2\n"
    );
    let link = fs::symlink_metadata(dir.path().join("link.yaml")).unwrap();
    assert!(link.file_type().is_symlink(), "the symlink stays a symlink");
    assert_eq!(dir.read_string("real/values.yaml"), "image: gcr.io/a/b:2\n");
}

#[test]
fn conflicting_image_references_are_a_usage_error_and_write_nothing() {
    let dir = Dir::new();
    dir.write("f.yaml", "image: nginx:1.25\n");
    let out = dir.run(&[
        "update",
        "--image-reference",
        "nginx:1.26",
        "--image-reference",
        "nginx:1.27",
    ]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--matching-tag"), "{}", stderr(&out));
    assert_eq!(dir.read_string("f.yaml"), "image: nginx:1.25\n");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let dir = Dir::new();
    let text: String = (0..3000)
        .map(|i| format!("image: gcr.io/p/app{i}:v1\n"))
        .collect();
    for f in 0..20 {
        dir.write(&format!("f{f:02}.yaml"), &text);
    }
    let mut child = dir
        .cru(&["list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("f00.yaml:gcr.io/p/app"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}
