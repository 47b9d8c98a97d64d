//! `cru config validate`: the configuration file checked from the command line.

mod util;

use std::process::Command;

use util::{assert_exit, stderr, stdout, Dir};

fn git_init(dir: &Dir) {
    let status = Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .status()
        .expect("git");
    assert!(status.success());
}

#[test]
fn a_valid_file_at_the_top_of_the_repository_is_found_from_a_nested_folder() {
    let dir = Dir::new();
    git_init(&dir);
    dir.write(
        ".cru.yaml",
        "exclude: [vendor/**]\njobs: 4\nrules:\n  - match: {image: nginx, files: 'k8s/**'}\n    pin: digest\n  - match: {image: 'gcr.io/legacy/**'}\n    ignore: true\n",
    );
    dir.write("a/b/deploy.yaml", "image: nginx:1.25\n");
    let out = dir
        .cru(&["config", "validate"])
        .current_dir(dir.path().join("a/b"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(
        stdout(&out).ends_with(".cru.yaml: valid (2 rules)\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_misspelt_key_is_exit_2_with_file_line_column_and_a_suggestion() {
    let dir = Dir::new();
    dir.write(".cru.yaml", "jobs: 4\nregistry-conf: ci/registries.conf\n");
    let out = dir.run(&["config", "validate"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(
            "ERROR: .cru.yaml:2:1: unknown key `registry-conf`; did you mean `registries-conf`?"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_credential_in_the_file_is_refused_without_echoing_it() {
    let dir = Dir::new();
    dir.write(
        "ci/cru.yaml",
        "rules:\n  - match: {image: 'registry.example/**'}\n    password: s3cret-value\n",
    );
    let out = dir.run(&["config", "validate", "ci/cru.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("ci/cru.yaml:3:5: `password` looks like a credential"),
        "{err}"
    );
    assert!(err.contains("config.json"), "{err}");
    assert!(!err.contains("s3cret-value"), "{err}");
}

#[test]
fn cru_config_names_the_file_and_a_named_file_wins_over_it() {
    let dir = Dir::new();
    dir.write("bad.yaml", "jobs: 0\n");
    dir.write("good.yaml", "qualified-only: true\n");
    let out = dir
        .cru(&["config", "validate"])
        .env("CRU_CONFIG", "bad.yaml")
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("bad.yaml:1:7: jobs: 0 is not in 1..=256"),
        "{}",
        stderr(&out)
    );
    let out = dir
        .cru(&["config", "validate", "good.yaml"])
        .env("CRU_CONFIG", "bad.yaml")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "good.yaml: valid (0 rules)\n");
}

#[test]
fn no_file_to_validate_is_a_usage_error() {
    let dir = Dir::new();
    git_init(&dir);
    let out = dir.run(&["config", "validate"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("no configuration file found"),
        "{}",
        stderr(&out)
    );
    let out = dir.run(&["config", "validate", "missing.yaml"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("missing.yaml: No such file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_yaml_and_invalid_globs_say_where() {
    let dir = Dir::new();
    dir.write(".cru.yaml", "rules: [\n");
    let out = dir.run(&["config", "validate"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains(".cru.yaml:1:8: "), "{}", stderr(&out));
    dir.write(".cru.yaml", "rules:\n  - match:\n      tag: '(unclosed'\n");
    let out = dir.run(&["config", "validate"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(".cru.yaml:3:12: match.tag: invalid regular expression"),
        "{}",
        stderr(&out)
    );
}
