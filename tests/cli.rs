//! The `cru` binary over small trees, where a case needs more than data: JSON read back,
//! permissions, symlinks, FIFOs, terminals, pipes, odd bytes and names. The plain offline
//! cases (a tree, a command, what comes out) are data in `tests/cmd/*.toml`, run by
//! `tests/cmd.rs`.

mod util;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

use util::{assert_exit, on_a_terminal, stderr, stdout, Dir};

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

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

// --- cru check, update --check, completions, man, exit codes, colour ---

/// A tree with one unpinned reference among pinned ones.
fn check_tree() -> Dir {
    let dir = Dir::new();
    dir.write(
        "k8s/deploy.yaml",
        format!("spec:\n  image: gcr.io/p/app:1@{D1}\n  sidecar: gcr.io/p/proxy:2\n"),
    );
    dir.write("Dockerfile", format!("FROM golang:1.22@{D2}\n"));
    dir
}

#[test]
fn check_json_prints_one_object_per_finding() {
    let dir = check_tree();
    dir.write("b.yaml", "image: nginx:1.25\n");
    let out = dir.run(&["check", "--format", "json"]);
    assert_exit(&out, 1);
    let findings: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(findings.len(), 2, "{}", stdout(&out));
    let f = &findings[1];
    assert_eq!(f["file"], "k8s/deploy.yaml");
    assert_eq!(f["line"], 3);
    assert_eq!(f["column"], 12);
    assert_eq!(f["reference"], "gcr.io/p/proxy:2");
    assert_eq!(f["message"], "gcr.io/p/proxy:2 is not pinned to a digest");
    assert_eq!(findings[0]["file"], "b.yaml");
    assert_eq!(findings[0]["reference"], "nginx:1.25");
}

#[test]
fn completions_and_man_page_come_from_the_command_line_definitions() {
    let dir = Dir::new();
    let out = dir.run(&["completions", "bash"]);
    assert_exit(&out, 0);
    let bash = stdout(&out);
    assert!(
        bash.contains("_cru()") && bash.contains("complete "),
        "{bash}"
    );
    assert!(bash.contains("--require-digest"), "{bash}");
    let out = dir.run(&["completions", "zsh"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("#compdef cru"), "{}", stdout(&out));
    let out = dir.run(&["man"]);
    assert_exit(&out, 0);
    let man = stdout(&out);
    assert!(man.starts_with(".ie") || man.starts_with(".TH"), "{man}");
    assert!(man.contains(".TH cru"), "{man}");
    assert!(man.contains("update"), "{man}");
}

/// The README's table of exit codes, row by row.
#[test]
fn exit_codes_follow_the_documented_table() {
    let dir = Dir::new();
    dir.write("pinned/f.yaml", format!("image: gcr.io/p/app:1@{D1}\n"));
    dir.write("loose/f.yaml", "image: gcr.io/p/app:1\n");
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    dir.write(
        "remote/f.yaml",
        format!("image: 127.0.0.1:{closed_port}/p/app:1\n"),
    );
    dir.write(
        "remote-pinned/f.yaml",
        format!("image: 127.0.0.1:{closed_port}/p/app:1@{D1}\n"),
    );
    dir.write(".config/docker/config.json", "{}");
    dir.write(".config/registries.conf", "");
    let table: &[(&[&str], i32)] = &[
        // success
        (&["list", "loose"], 0),
        (&["check", "pinned"], 0),
        (
            &["update", "--all", "--matching-tag", "--check", "loose"],
            0,
        ),
        (&["completions", "fish"], 0),
        // findings, or files that would change
        (&["check", "loose"], 1),
        (&["update", "--all", "--check", "loose"], 1),
        // usage errors
        (&["list", "--no-such-flag"], 2),
        (&["check", "--format", "xml"], 2),
        (&["check", "missing-path"], 2),
        (
            &["update", "--image-reference", "nginx:1", "missing-path"],
            2,
        ),
        (&["completions", "nosh"], 2),
        // runtime failures: a registry nobody answers at
        (
            &[
                "update",
                "--all",
                "--matching-tag",
                "--resolve-digest",
                "remote",
            ],
            3,
        ),
        (&["check", "--stale", "remote-pinned"], 3),
    ];
    for (args, code) in table {
        let out = dir
            .cru(args)
            .env("DOCKER_CONFIG", dir.path().join(".config/docker"))
            .env(
                "CRU_REGISTRIES_CONF",
                dir.path().join(".config/registries.conf"),
            )
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(*code),
            "cru {args:?}\nstdout:\n{}\nstderr:\n{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

const ESC: &str = "\x1b[";

#[test]
fn no_colour_when_stderr_is_not_a_terminal() {
    let dir = check_tree();
    for args in [
        &["list", "missing-path"][..],
        &["list", "--no-such-flag"],
        &["check"],
        &["update", "--all", "--verbose", "--dry-run"],
    ] {
        let out = dir.cru(args).env("TERM", "xterm").output().unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!text.contains(ESC), "cru {args:?}: {text:?}");
    }
}

#[test]
fn colour_on_a_terminal_unless_no_color_is_set() {
    let dir = Dir::new();
    let error = on_a_terminal(&dir.cru(&[]), "list missing-path", None);
    assert!(
        error.contains("\x1b[31mERROR\x1b[0m: missing-path: no such file or directory"),
        "{error:?}"
    );
    let usage = on_a_terminal(&dir.cru(&[]), "list --no-such-flag", None);
    assert!(usage.contains(ESC), "{usage:?}");
    assert!(usage.contains("--no-such-flag"), "{usage:?}");
    // An empty NO_COLOR does not count (no-color.org).
    let error = on_a_terminal(&dir.cru(&[]), "list missing-path", Some(""));
    assert!(error.contains(ESC), "{error:?}");
    for args in ["list missing-path", "list --no-such-flag"] {
        let text = on_a_terminal(&dir.cru(&[]), args, Some("1"));
        assert!(!text.contains(ESC), "NO_COLOR=1 cru {args}: {text:?}");
        assert!(text.contains("-path") || text.contains("-flag"), "{text:?}");
    }
}

// --- messages, file errors, odd files and names ---

/// Output to a full disk: the cause is printed once (an error type printed its source in
/// its own message and again as the next link of the chain).
#[cfg(target_os = "linux")]
#[test]
fn an_output_error_is_printed_once_with_its_cause() {
    let dir = Dir::new();
    dir.write("f.yaml", "image: gcr.io/a/b:1\n");
    for args in [&["list"][..], &["update", "--all", "--dry-run"]] {
        let full = fs::File::create("/dev/full").unwrap();
        let out = dir.cru(args).stdout(full).output().unwrap();
        assert_exit(&out, 3);
        let err = stderr(&out);
        assert_eq!(err.matches("os error 28").count(), 1, "cru {args:?}: {err}");
        assert!(err.contains("writing "), "cru {args:?}: {err}");
    }
}

/// A file that cannot be read (`/proc/self/mem` fails with EIO even for root): each
/// command names it, still reports the other files, and exits 3.
#[cfg(target_os = "linux")]
#[test]
fn a_file_error_names_the_file_and_exits_3() {
    let dir = Dir::new();
    dir.write("f.yaml", "image: gcr.io/a/b:1\n");
    for args in [
        &["list", "/proc/self/mem", "f.yaml"][..],
        &["check", "/proc/self/mem", "f.yaml"],
        &["update", "--all", "/proc/self/mem", "f.yaml"],
    ] {
        let out = dir.run(args);
        assert_exit(&out, 3);
        let err = stderr(&out);
        assert!(
            err.contains("ERROR: /proc/self/mem: Input/output error"),
            "cru {args:?}: {err}"
        );
        match args[0] {
            "list" => assert_eq!(stdout(&out), "f.yaml:gcr.io/a/b:1\n"),
            "check" => assert!(stdout(&out).starts_with("f.yaml:1:8: "), "{}", stdout(&out)),
            _ => assert!(err.contains("no file was updated"), "{err}"),
        }
    }
    assert_eq!(dir.read_string("f.yaml"), "image: gcr.io/a/b:1\n");
}

/// Runs `cmd` to its end within a deadline (a hang, e.g. on opening a FIFO, fails the test).
fn run_within_deadline(cmd: &mut std::process::Command) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cru did not finish: blocked on a FIFO?");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn one_file_named_three_ways_is_one_file_under_its_first_spelling() {
    let dir = Dir::new();
    dir.write("a.yaml", "image: gcr.io/a/b:1\n");
    dir.write("dir/c.yaml", "image: gcr.io/a/c:1\n");
    let out = dir.run(&["list", "./a.yaml", "a.yaml", "dir/../a.yaml"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "a.yaml:gcr.io/a/b:1\n");
    let out = dir.run(&["list", "dir/../a.yaml", "a.yaml"]);
    assert_eq!(stdout(&out), "dir/../a.yaml:gcr.io/a/b:1\n");
    // A folder and a file inside it, spelled differently.
    let out = dir.run(&["list", "./dir", "dir/c.yaml", "dir/./c.yaml"]);
    assert_eq!(stdout(&out), "dir/c.yaml:gcr.io/a/c:1\n");

    let out = dir.run(&[
        "update",
        "--all",
        "--verbose",
        "a.yaml",
        "./a.yaml",
        "dir/../a.yaml",
        "./dir",
        "dir/c.yaml",
    ]);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("INFO: updated a total of 2 files"), "{err}");
    assert_eq!(err.matches("updating reference").count(), 2, "{err}");
    assert_eq!(dir.read_string("a.yaml"), "image: gcr.io/a/b:latest\n");
    let out = dir.run(&["update", "--all", "--dry-run", "a.yaml", "./a.yaml"]);
    assert_eq!(stdout(&out).matches("+++ ").count(), 0, "nothing left");
}

#[cfg(unix)]
#[test]
fn a_symlink_named_with_its_target_is_one_file() {
    let dir = Dir::new();
    dir.write("real.yaml", "image: gcr.io/a/b:1\n");
    std::os::unix::fs::symlink("real.yaml", dir.path().join("link.yaml")).unwrap();
    let out = dir.run(&["list", "link.yaml", "real.yaml"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "link.yaml:gcr.io/a/b:1\n");
    let out = dir.run(&["update", "--all", "real.yaml", "link.yaml"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("updated a total of 1 files"));
}

#[cfg(unix)]
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn a_fifo_or_device_named_is_an_error_without_opening_it() {
    let dir = Dir::new();
    dir.write("f.yaml", "image: gcr.io/a/b:1\n");
    mkfifo(&dir.path().join("pipe.yaml"));
    for (args, named) in [
        (&["list", "pipe.yaml", "f.yaml"][..], "pipe.yaml: is a FIFO"),
        (&["check", "pipe.yaml"], "pipe.yaml: is a FIFO"),
        (
            &["update", "--all", "f.yaml", "pipe.yaml"],
            "pipe.yaml: is a FIFO",
        ),
        (&["list", "/dev/null"], "/dev/null: is a character device"),
    ] {
        let out = run_within_deadline(&mut dir.cru(args));
        assert_exit(&out, 3);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("ERROR: {named}")),
            "cru {args:?}: {err}"
        );
    }
    assert_eq!(dir.read_string("f.yaml"), "image: gcr.io/a/b:1\n");
}

#[cfg(unix)]
#[test]
fn a_fifo_met_while_walking_is_skipped_without_opening_it() {
    let dir = Dir::new();
    dir.write("tree/f.yaml", "image: gcr.io/a/b:1\n");
    mkfifo(&dir.path().join("tree/pipe.yaml"));
    let out = run_within_deadline(&mut dir.cru(&["list", "tree"]));
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "tree/f.yaml:gcr.io/a/b:1\n");
    assert_eq!(stderr(&out), "");
}

#[cfg(unix)]
#[test]
fn non_utf8_file_names_are_escaped_so_two_files_never_print_alike() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = Dir::new();
    let raw = OsStr::from_bytes(b"a\xff.yaml");
    fs::write(dir.path().join(raw), "image: gcr.io/a/b:1\n").unwrap();
    dir.write("a\\xff.yaml", "image: gcr.io/a/b:1\n");
    dir.write("a\u{fffd}.yaml", "image: gcr.io/a/b:1\n");
    let out = dir.run(&["list"]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        "a\\\\xff.yaml:gcr.io/a/b:1\na\u{fffd}.yaml:gcr.io/a/b:1\na\\xff.yaml:gcr.io/a/b:1\n"
    );
    let out = dir.run(&["check", "--format", "json"]);
    let files: Vec<String> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["file"].to_string())
        .collect();
    assert_eq!(files.len(), 3);
    assert!(files.contains(&r#""a\\xff.yaml""#.to_string()), "{files:?}");
    // In the diff, the log and errors too.
    let out = dir
        .cru(&["update", "--all", "--dry-run", "--verbose"])
        .arg(raw)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("--- a/a\\xff.yaml\n+++ b/a\\xff.yaml\n"));
    assert!(stderr(&out).contains("in a\\xff.yaml"), "{}", stderr(&out));
    mkfifo(&dir.path().join(OsStr::from_bytes(b"p\xfe")));
    let out = run_within_deadline(dir.cru(&["list"]).arg(OsStr::from_bytes(b"p\xfe")));
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("ERROR: p\\xfe: is a FIFO"),
        "{}",
        stderr(&out)
    );
    let out = dir
        .cru(&["list"])
        .arg(OsStr::from_bytes(b"m\xfd"))
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("ERROR: m\\xfd: no such file or directory"),
        "{err}"
    );
}

#[test]
fn an_update_that_changed_files_ends_with_the_go_tools_skipping_commit_line() {
    let dir = Dir::new();
    dir.write("f.yaml", "image: nginx:1.25\n");
    let line = "INFO: no commit message, skipping commit and push";
    let out = dir.run(&["update", "--dry-run", "--image-reference", "nginx:1.27"]);
    assert_exit(&out, 0);
    assert!(
        !stderr(&out).contains(line),
        "a dry run writes nothing: {}",
        stderr(&out)
    );
    let out = dir.run(&["update", "--image-reference", "nginx:1.27"]);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.lines().last().unwrap_or("").ends_with(line), "{err}");
    let out = dir.run(&["update", "--image-reference", "nginx:1.27"]);
    assert_exit(&out, 0);
    assert!(
        !stderr(&out).contains(line),
        "nothing changed: {}",
        stderr(&out)
    );
}
