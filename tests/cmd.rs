//! The offline command-line cases, as data: every `tests/cmd/*.toml` file holds `[[case]]`s,
//! each a tree written into an empty folder, one `cru` command run in the sealed environment
//! of `tests/util`, and what must come out: the exit status, stdout (exactly, or lines it
//! must hold), lines stderr must hold, and the files after (exactly, or unchanged).
//!
//! In every string `$D1` and `$D2` read as two fixed digests and `$DIR` as the case's folder.
//! A `registries-conf: none  # default` in an expected stdout reads
//! `/etc/containers/registries.conf  # default` on a host that has that file.

mod util;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use util::{stderr, stdout, Dir};

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// One case.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Case {
    name: String,
    args: Vec<String>,
    /// A tree of the repository copied in first (e.g. `testdata/example`).
    #[serde(default)]
    tree: Option<String>,
    /// Files written (over the tree).
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// Environment added over the sealed one.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// `git init` the folder first.
    #[serde(default)]
    git: bool,
    /// The folder to run in, below the case's.
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    status: i32,
    /// Stdout, exactly.
    #[serde(default)]
    stdout: Option<String>,
    /// Text stdout must hold.
    #[serde(default)]
    stdout_has: Vec<String>,
    /// Text stderr must hold.
    #[serde(default)]
    stderr_has: Vec<String>,
    /// Files after the run, exactly.
    #[serde(default)]
    after: BTreeMap<String, String>,
    /// Every file the case wrote is as it was (and every file of the tree).
    #[serde(default)]
    unchanged: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    case: Vec<Case>,
}

fn expand(text: &str, dir: &Path) -> String {
    text.replace("$D1", D1)
        .replace("$D2", D2)
        .replace("$DIR", &dir.display().to_string())
}

/// Every file under `root`, by relative path.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Runs one case; what went wrong, if anything.
fn run(case: &Case) -> Result<(), String> {
    let dir = Dir::new();
    let root = dir.path();
    if let Some(tree) = &case.tree {
        util::copy_tree(&util::repo_root().join(tree), root);
    }
    if case.git {
        let out = Command::new("git")
            .args(["init", "-q"])
            .current_dir(root)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_SYSTEM", "/dev/null")
            .output()
            .expect("git");
        assert!(out.status.success(), "git init: {out:?}");
    }
    for (name, text) in &case.files {
        dir.write(name, expand(text, root));
    }
    let before = snapshot(root);
    let args: Vec<String> = case.args.iter().map(|a| expand(a, root)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = dir.cru(&args);
    for (k, v) in &case.env {
        cmd.env(k, expand(v, root));
    }
    if let Some(cwd) = &case.cwd {
        cmd.current_dir(root.join(cwd));
    }
    let out = cmd.output().unwrap();
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    let shown = || format!("\n--- stdout\n{out_text}--- stderr\n{err_text}");
    if out.status.code() != Some(case.status) {
        return Err(format!(
            "exit {:?}, not {}{}",
            out.status,
            case.status,
            shown()
        ));
    }
    if let Some(want) = &case.stdout {
        let mut want = expand(want, root);
        if Path::new("/etc/containers/registries.conf").is_file() {
            want = want.replace(
                "registries-conf: none  # default",
                "registries-conf: /etc/containers/registries.conf  # default",
            );
        }
        if out_text != want {
            return Err(format!("stdout is not\n{want}{}", shown()));
        }
    }
    for want in &case.stdout_has {
        if !out_text.contains(&expand(want, root)) {
            return Err(format!("stdout lacks {want:?}{}", shown()));
        }
    }
    for want in &case.stderr_has {
        if !err_text.contains(&expand(want, root)) {
            return Err(format!("stderr lacks {want:?}{}", shown()));
        }
    }
    for (name, want) in &case.after {
        let got = dir.read_string(name);
        if got != expand(want, root) {
            return Err(format!("{name} after is\n{got}"));
        }
    }
    if case.unchanged && snapshot(root) != before {
        return Err(format!("files changed{}", shown()));
    }
    Ok(())
}

#[test]
fn every_case_of_tests_cmd_holds() {
    let folder = util::repo_root().join("tests/cmd");
    let mut tables: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    tables.sort();
    let mut count = 0;
    let mut failed = Vec::new();
    for table in &tables {
        let text = std::fs::read_to_string(table).unwrap();
        let cases: Cases =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", table.display()));
        for case in &cases.case {
            count += 1;
            if let Err(why) = run(case) {
                let file = table.file_name().unwrap().to_string_lossy();
                failed.push(format!("{file}: {}: {why}", case.name));
            }
        }
    }
    assert!(count >= 30, "only {count} cases in {}", folder.display());
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
