//! The hooks in `.pre-commit-hooks.yaml`, run by the real `pre-commit` (Debian's package) the
//! way a user installs them: a `.pre-commit-config.yaml` in a git repository of their own that
//! names this checkout, then `pre-commit run HOOK --all-files`. pre-commit builds cru from the
//! checkout with `cargo install` (`language: rust`) once, in a store of the test's own, so this
//! is the slowest test (an unoptimised build of cru, about 1.5 minutes on 2 cores), and nothing
//! touches `~/.cache`. (`pre-commit try-repo` would build in a temporary store for every call,
//! doubling that for nothing it tests beyond this.)
//!
//! Nothing here skips: a missing `pre-commit` fails the test with how to install it.

mod support;
mod util;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::registry::Registry;
use util::{repo_root, seal_keeping_home};

const PINNED: &str =
    "gcr.io/proj/app:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Runs a command and returns its output, failing the test when it cannot start.
fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

#[track_caller]
fn git(dir: &Path, args: &[&str]) -> String {
    let out = run(Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=cru test", "-c", "user.email=cru@localhost"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE"));
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A repository holding this checkout's working tree as one commit, uncommitted changes
/// included, so that what is tested is the code here and one hook environment serves every
/// run (pre-commit keys its environment on the repository and the commit).
fn snapshot_of_checkout(into: &Path) -> PathBuf {
    let snap = into.join("cru");
    fs::create_dir_all(&snap).unwrap();
    git(&snap, &["init", "-q"]);
    let git_dir = format!("--git-dir={}", snap.join(".git").display());
    let work_tree = format!("--work-tree={}", repo_root().display());
    git(&snap, &[&git_dir, &work_tree, "add", "-A"]);
    git(&snap, &[&git_dir, "commit", "-q", "-m", "snapshot"]);
    // A clean working tree: pre-commit would take a checked-out-nothing tree for changes.
    git(&snap, &["reset", "-q", "--hard"]);
    snap
}

/// A git repository of a user, with the files staged.
struct UserRepo {
    root: tempfile::TempDir,
}

impl UserRepo {
    fn new() -> UserRepo {
        let root = tempfile::tempdir().unwrap();
        git(root.path(), &["init", "-q"]);
        UserRepo { root }
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    fn stage(&self, rel: &str, text: &str) {
        fs::write(self.path().join(rel), text).unwrap();
        git(self.path(), &["add", rel]);
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path().join(rel)).unwrap()
    }
}

/// `pre-commit`, with its store in `home` and cargo's build kept cheap.
struct PreCommit {
    home: tempfile::TempDir,
    checkout: PathBuf,
}

impl PreCommit {
    fn new() -> PreCommit {
        let home = tempfile::tempdir().unwrap();
        let checkout = snapshot_of_checkout(home.path());
        PreCommit { home, checkout }
    }

    /// `pre-commit run HOOK --all-files` in `repo`, with a `.pre-commit-config.yaml` that uses
    /// the checkout at its commit, as a user installs the hooks; the hook environment is
    /// built once in the store and shared by every run.
    fn run(&self, repo: &UserRepo, hook: &str, env: &[(&str, &Path)]) -> (Output, String) {
        let rev = git(&self.checkout, &["rev-parse", "HEAD"]);
        repo.stage(
            ".pre-commit-config.yaml",
            &format!(
                "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: cru-check\n      - id: cru-pin\n",
                self.checkout.display()
            ),
        );
        let mut cmd = self.command(repo);
        cmd.args(["run", hook, "--all-files", "--color=never"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        PreCommit::output(cmd)
    }

    fn command(&self, repo: &UserRepo) -> Command {
        let mut cmd = Command::new("pre-commit");
        // The hooks' cru runs in the tests' sealed environment; HOME stays for cargo and
        // rustup, and cru reads nothing through it.
        seal_keeping_home(&mut cmd);
        cmd.current_dir(repo.path())
            .env("PRE_COMMIT_HOME", self.home.path().join("store"))
            // An unoptimised release build is all a test needs. pre-commit gives each hook
            // environment a CARGO_HOME of its own, and cargo's fingerprints of registry crates
            // include their source path, so a kept CARGO_TARGET_DIR would be rebuilt whole
            // anyway: `cargo install` builds in a temporary folder of its own.
            .env_remove("CARGO_TARGET_DIR")
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
            .env("CARGO_INCREMENTAL", "0")
            .env("CARGO_TERM_COLOR", "never");
        for var in ["SKIP", "PRE_COMMIT_COLOR"] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn output(mut cmd: Command) -> (Output, String) {
        let out = cmd.output().unwrap_or_else(|e| {
            panic!(
                "cannot run pre-commit ({e}): it is Debian's package `pre-commit`, which \
                 ./scripts/test installs (apt-get install pre-commit)"
            )
        });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, text)
    }
}

#[test]
fn pre_commit_runs_the_shipped_hooks_cru_check_fails_unpinned_and_cru_pin_pins() {
    let pre_commit = PreCommit::new();

    // cru-check, installed from a .pre-commit-config.yaml: an unpinned reference fails the
    // hook with the finding shown, a pinned one passes.
    let repo = UserRepo::new();
    repo.stage("deploy.yaml", "image: gcr.io/proj/app:1.2\n");
    let (out, text) = pre_commit.run(&repo, "cru-check", &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Failed"), "{text}");
    assert!(
        text.contains("deploy.yaml:1:8: gcr.io/proj/app:1.2 is not pinned to a digest"),
        "{text}"
    );
    repo.stage("deploy.yaml", &format!("image: {PINNED}\n"));
    let (out, text) = pre_commit.run(&repo, "cru-check", &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Passed"), "{text}");

    // cru-pin: pins each file pre-commit passes to the digest in the registry, which makes the
    // hook fail (files were modified) as formatters do; then it passes.
    let reg = Registry::start();
    let digest = reg.push_oci("team/app", "a", &["1.0"]);
    let host = reg.host();
    let config = tempfile::tempdir().unwrap();
    fs::write(config.path().join("config.json"), "{}").unwrap();
    fs::write(config.path().join("registries.conf"), "").unwrap();
    let conf = config.path().join("registries.conf");
    let env = [
        ("DOCKER_CONFIG", config.path()),
        ("CRU_REGISTRIES_CONF", conf.as_path()),
    ];
    // A repository of its own: cru-pin asks a registry about every tag, gcr.io's too.
    let repo = UserRepo::new();
    repo.stage("values.yaml", &format!("image: {host}/team/app:1.0\n"));
    let (out, text) = pre_commit.run(&repo, "cru-pin", &env);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("files were modified by this hook"), "{text}");
    assert_eq!(
        repo.read("values.yaml"),
        format!("image: {host}/team/app:1.0@{digest}\n")
    );
    git(repo.path(), &["add", "values.yaml"]);
    let (out, text) = pre_commit.run(&repo, "cru-pin", &env);
    assert_eq!(out.status.code(), Some(0), "{text}");
}
