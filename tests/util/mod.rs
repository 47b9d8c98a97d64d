//! A small harness for running the `cru` binary in a temporary folder (after ripgrep's
//! `tests/util.rs`): a temp dir per test, the binary from `CARGO_BIN_EXE_cru`, and an
//! environment without the user's configuration or credentials.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary folder to run `cru` in.
pub struct Dir {
    pub root: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            root: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// Writes a file, creating its folders.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.path().join(rel)).unwrap()
    }

    pub fn read_string(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).unwrap()
    }

    /// A `cru` command running in this folder.
    pub fn cru(&self, args: &[&str]) -> Command {
        let mut cmd = cru_command();
        cmd.current_dir(self.path()).args(args);
        cmd
    }

    /// Runs `cru` here and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cru(args).output().expect("run cru")
    }
}

/// The `cru` binary in a sealed environment: HOME, the docker config, the XDG and git
/// configuration point at an empty home of the tests' own (never the developer's), and
/// cru's own variables are unset. A test that needs one sets it on the command.
pub fn cru_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cru"));
    seal(&mut cmd);
    cmd
}

/// Seals `cmd`'s environment as [`cru_command`]'s: for a program that runs `cru` itself.
pub fn seal(cmd: &mut Command) -> &mut Command {
    seal_keeping_home(cmd).env("HOME", sealed_home())
}

/// Seals `cmd`'s environment as [`cru_command`]'s, but keeps `HOME`: for a tool that needs the
/// user's toolchain under it (pre-commit building cru with cargo and rustup). cru finds no
/// configuration through `HOME` then, since every variable it would look at first is set.
pub fn seal_keeping_home(cmd: &mut Command) -> &mut Command {
    let home = sealed_home();
    for var in [
        "CRU_REGISTRIES_CONF",
        "CRU_CONFIG",
        "CRU_SERVE_TOKEN",
        "REGISTRY_AUTH_FILE",
        "RUST_LOG",
        "NO_COLOR",
        "GIT_DIR",
        "GIT_WORK_TREE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DOCKER_CONFIG", home.join(".docker"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
}

/// An empty home for every test binary, made once under the target's test folder: an empty
/// `config.json` and `.gitconfig`, an empty `.config`. Each file is written by rename, so
/// that test binaries running at once never read half a file.
pub fn sealed_home() -> &'static Path {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sealed-home");
        for (rel, text) in [(".docker/config.json", "{}"), (".gitconfig", "")] {
            let path = home.join(rel);
            if path.is_file() {
                continue;
            }
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            fs::write(&tmp, text).unwrap();
            fs::rename(&tmp, &path).unwrap();
        }
        fs::create_dir_all(home.join(".config")).unwrap();
        home
    })
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

/// Asserts an exit code, showing the output when it differs.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies a folder tree (files and folders only), writable by its owner: a copy to edit
/// (`../shared` is read-only, and cru refuses to replace read-only files).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            fs::copy(entry.path(), &target).unwrap();
            let mut permissions = fs::metadata(&target).unwrap().permissions();
            let mode = std::os::unix::fs::PermissionsExt::mode(&permissions);
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, mode | 0o200);
            fs::set_permissions(&target, permissions).unwrap();
        }
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/corpus`, which CI and every developer have beside the repository.
pub fn corpus() -> PathBuf {
    let path = repo_root().join("../shared/corpus");
    assert!(
        path.join("MANIFEST.tsv").is_file(),
        "the corpus is missing: expected {} (shared/ beside the repository)",
        path.display()
    );
    path
}

/// Runs `cru ARGS` on a pseudo-terminal through `script` (util-linux), with the working
/// folder and environment of `like`, and returns what it printed (stdout and stderr mixed).
/// `no_color` sets `NO_COLOR`.
pub fn on_a_terminal(like: &Command, args: &str, no_color: Option<&str>) -> String {
    let command = format!("'{}' {args}", env!("CARGO_BIN_EXE_cru"));
    let mut cmd = Command::new("script");
    if let Some(dir) = like.get_current_dir() {
        cmd.current_dir(dir);
    }
    for (key, value) in like.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    cmd.args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null());
    if let Some(value) = no_color {
        cmd.env("NO_COLOR", value);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run script (util-linux, Debian's bsdutils): {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
