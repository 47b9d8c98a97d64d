//! `.cru.yaml` applied: discovery, precedence (flag > environment > file > default), `exclude:`,
//! `qualified-only:`, `check.require:` and the rules' `ignore:`/`pin:` in list, check and update,
//! and `--repository` reading the clone's own file. `cru config show` is data:
//! `tests/cmd/config_show.toml`, run by `tests/cmd.rs`.

mod util;

use std::process::Command;

use util::{assert_exit, stderr, stdout, Dir};

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {:?}", out);
}

fn git_init(dir: &Dir) {
    git(dir.path(), &["init", "-q"]);
}

#[test]
fn exclude_in_the_file_leaves_folders_unwalked_but_named_paths_are_read() {
    let dir = Dir::new();
    dir.write(".cru.yaml", "exclude: [vendor/, '**/testdata/**']\n");
    dir.write("a.yaml", "image: nginx:1.25\n");
    dir.write("vendor/x.yaml", "image: redis:7\n");
    dir.write("src/testdata/y.yaml", "image: gcr.io/a/b:1\n");
    let out = dir.run(&["list"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "a.yaml:nginx:1.25\n");
    let out = dir.run(&["list", "vendor/x.yaml"]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        "vendor/x.yaml:redis:7\n",
        "named: always read"
    );
    let out = dir.run(&["list", "--no-config"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
}

#[test]
fn the_file_is_found_at_the_top_of_the_repository_from_a_nested_folder() {
    let dir = Dir::new();
    git_init(&dir);
    dir.write(".cru.yaml", "qualified-only: true\n");
    dir.write("a/b/f.yaml", "image: nginx:1.25\nimage: bitnami/redis:7\n");
    let nested = dir.path().join("a/b");
    let out = dir.cru(&["list"]).current_dir(&nested).output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "f.yaml:bitnami/redis:7\n");
    // From the top, with the nested folder as PATH: the same file.
    let out = dir.run(&["list", "a/b"]);
    assert_eq!(stdout(&out), "a/b/f.yaml:bitnami/redis:7\n");
    // A nested .cru.yaml is not the repository's.
    dir.write("a/.cru.yaml", "qualified-only: false\n");
    let out = dir.cru(&["list"]).current_dir(&nested).output().unwrap();
    assert_eq!(stdout(&out), "f.yaml:bitnami/redis:7\n");
}

#[test]
fn outside_a_repository_the_file_is_the_first_paths_folders_own() {
    let dir = Dir::new();
    dir.write("tree/.cru.yaml", "qualified-only: true\n");
    dir.write("tree/f.yaml", "image: nginx:1.25\nimage: bitnami/redis:7\n");
    dir.write("loose.yaml", "image: nginx:1.25\n");
    let out = dir.run(&["list", "tree"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "tree/f.yaml:bitnami/redis:7\n");
    let out = dir.run(&["list", "loose.yaml"]);
    assert_eq!(
        stdout(&out),
        "loose.yaml:nginx:1.25\n",
        "the top has no file"
    );
}

#[test]
fn config_flag_and_variable_name_the_file_and_no_config_ignores_every_one() {
    let dir = Dir::new();
    dir.write(".cru.yaml", "qualified-only: true\n");
    dir.write(
        "ci/none.yaml",
        "rules:\n  - match: {image: '**'}\n    ignore: true\n",
    );
    dir.write("ci/bad.yaml", "jobs: 0\n");
    dir.write("f.yaml", "image: nginx:1.25\nimage: bitnami/redis:7\n");
    let all = "f.yaml:bitnami/redis:7\nf.yaml:nginx:1.25\n";
    let out = dir.run(&["list"]);
    assert_eq!(stdout(&out), "f.yaml:bitnami/redis:7\n");
    let out = dir.run(&["list", "--config", "ci/none.yaml"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "", "every reference ignored");
    let out = dir
        .cru(&["list"])
        .env("CRU_CONFIG", "ci/none.yaml")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "");
    // --config over $CRU_CONFIG.
    let out = dir
        .cru(&["list", "--config", ".cru.yaml"])
        .env("CRU_CONFIG", "ci/none.yaml")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "f.yaml:bitnami/redis:7\n");
    let out = dir
        .cru(&["list", "--no-config"])
        .env("CRU_CONFIG", "ci/bad.yaml")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), all);
    // A file that is named but broken stops every command with exit 2 and its line.
    for args in [
        &["list", "--config", "ci/bad.yaml"][..],
        &["check", "--config", "ci/bad.yaml"],
        &["update", "--all", "--config", "ci/bad.yaml"],
    ] {
        let out = dir.run(args);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains("ERROR: ci/bad.yaml:1:7: jobs: 0 is not in 1..=256"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        dir.read_string("f.yaml"),
        "image: nginx:1.25\nimage: bitnami/redis:7\n"
    );
    let out = dir.run(&["list", "--config", "x.yaml", "--no-config"]);
    assert_exit(&out, 2);
}

#[test]
fn ignore_rules_drop_references_in_list_check_and_update() {
    let dir = Dir::new();
    dir.write(
        ".cru.yaml",
        "rules:\n  - match: {image: 'gcr.io/legacy/**'}\n    ignore: true\n  - match: {image: redis, files: 'old/**'}\n    ignore: true\n",
    );
    dir.write(
        "k8s/a.yaml",
        "image: gcr.io/legacy/x/y:1\nimage: nginx:1.25\nimage: redis:7\n",
    );
    dir.write("old/b.yaml", "image: redis:7\n");
    let out = dir.run(&["list"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "k8s/a.yaml:nginx:1.25\nk8s/a.yaml:redis:7\n");
    let out = dir.run(&["check"]);
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        "k8s/a.yaml:2:8: nginx:1.25 is not pinned to a digest\nk8s/a.yaml:3:8: redis:7 is not pinned to a digest\n"
    );
    let out = dir.run(&["update", "--all"]);
    assert_exit(&out, 0);
    assert_eq!(
        dir.read_string("k8s/a.yaml"),
        "image: gcr.io/legacy/x/y:1\nimage: nginx:latest\nimage: redis:latest\n"
    );
    assert_eq!(dir.read_string("old/b.yaml"), "image: redis:7\n");
}

#[test]
fn check_require_in_the_file_is_the_default_policy_and_a_flag_wins() {
    let dir = Dir::new();
    let digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    dir.write(
        "f.yaml",
        format!("image: nginx:1.25\nimage: redis@{digest}\nimage: gcr.io/dev/app:1\n"),
    );
    dir.write(
        ".cru.yaml",
        "check: {require: tag}\nrules:\n  - match: {image: 'gcr.io/dev/*'}\n    pin: none\n",
    );
    let out = dir.run(&["check"]);
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        format!("f.yaml:2:8: redis@{digest} has no tag, only a digest\n")
    );
    let out = dir.run(&["check", "--require-digest"]);
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        "f.yaml:1:8: nginx:1.25 is not pinned to a digest\n",
        "pin: none exempts gcr.io/dev/app"
    );
    dir.write(".cru.yaml", "check: {require: none}\n");
    let out = dir.run(&["check"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_repository_clone_reads_its_own_configuration_file() {
    let origin = Dir::new();
    git_init(&origin);
    origin.write(".cru.yaml", "exclude: [legacy/]\nqualified-only: true\n");
    origin.write("a.yaml", "image: nginx:1.25\nimage: bitnami/redis:7\n");
    origin.write("legacy/b.yaml", "image: bitnami/redis:6\n");
    git(origin.path(), &["add", "."]);
    git(
        origin.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ],
    );
    let url = format!("file://{}", origin.path().display());
    // Run from a folder with a configuration of its own that says the opposite.
    let here = Dir::new();
    here.write(".cru.yaml", "qualified-only: false\n");
    let out = here
        .cru(&["list", "--repository", &url])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "a.yaml:bitnami/redis:7\n");
}

#[test]
fn an_update_of_a_repository_clone_honours_its_rules_and_pushes_only_what_they_allow() {
    let work = Dir::new();
    git_init(&work);
    work.write(
        ".cru.yaml",
        "rules:\n  - match: {image: 'gcr.io/frozen/**'}\n    ignore: true\n",
    );
    work.write(
        "a.yaml",
        "image: gcr.io/frozen/app:1\nimage: gcr.io/live/app:1\n",
    );
    git(work.path(), &["add", "."]);
    git(
        work.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ],
    );
    let bare = Dir::new();
    git(
        bare.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.path().to_str().unwrap(),
            "r.git",
        ],
    );
    let url = format!("file://{}/r.git", bare.path().display());
    let here = Dir::new();
    let out = here
        .cru(&[
            "update",
            "--repository",
            &url,
            "--image-reference",
            "gcr.io/frozen/app:2",
            "--image-reference",
            "gcr.io/live/app:2",
            "--commit",
            "bump",
            "--username",
            "cru",
            "--email",
            "cru@localhost",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let shown = Command::new("git")
        .args(["show", "HEAD:a.yaml"])
        .current_dir(bare.path().join("r.git"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        "image: gcr.io/frozen/app:1\nimage: gcr.io/live/app:2\n"
    );
    assert!(
        stderr(&out).contains("INFO: updated a total of 1 files"),
        "{}",
        stderr(&out)
    );
}
