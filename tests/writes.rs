//! How `cru update` writes files, through the binary: all or nothing, each file keeping its
//! identity, no temporary file left or scanned, no descriptor held per file.

mod util;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{assert_exit, stderr, stdout, Dir};

const OLD: &str = "image: nginx:1.25\n";
const NEW: &str = "image: nginx:1.27\n";

/// The names in `dir` that are cru's temporary files.
fn temporary_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            found.extend(temporary_files(&entry.path()));
        } else if name.starts_with(".cru-") {
            found.push(name);
        }
    }
    found
}

fn chattr(flag: &str, path: &Path) {
    let status = Command::new("chattr").arg(flag).arg(path).status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "chattr {flag} (e2fsprogs) on {}",
        path.display()
    );
}

/// Issue 10 item 11: every pending write kept a descriptor, so more than ~1,000 changed
/// files failed with "Too many open files" under `ulimit -n 1024`.
#[test]
fn five_thousand_changed_files_update_under_an_open_file_limit_of_256() {
    let dir = Dir::new();
    for i in 0..5000 {
        dir.write(&format!("d{}/f{i}.yaml", i / 500), OLD);
    }
    let command = format!(
        "ulimit -n 256 && exec '{}' update --image-reference nginx:1.27 .",
        env!("CARGO_BIN_EXE_cru")
    );
    // sh, with the environment `cru_command` gives cru.
    let mut sh = Command::new("sh");
    for (key, value) in util::cru_command().get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    let out = sh
        .arg("-c")
        .arg(&command)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("updated a total of 5000 files"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dir.read_string("d0/f0.yaml"), NEW);
    assert_eq!(dir.read_string("d9/f4999.yaml"), NEW);
    assert!(temporary_files(dir.path()).is_empty());
}

/// Issue 10 item 7: an immutable file failed its rename after others had been replaced
/// (exit 3 with half the files changed).
#[test]
fn an_immutable_file_fails_the_update_before_any_file_is_replaced() {
    let dir = Dir::new();
    dir.write("a.yaml", OLD);
    let locked = dir.write("b.yaml", OLD);
    dir.write("c.yaml", OLD);
    chattr("+i", &locked);
    let out = dir.run(&["update", "--image-reference", "nginx:1.27", "."]);
    chattr("-i", &locked);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("b.yaml: not writable"), "{err}");
    assert!(err.contains("no file was updated"), "{err}");
    for name in ["a.yaml", "b.yaml", "c.yaml"] {
        assert_eq!(dir.read_string(name), OLD, "{name}");
    }
    assert!(temporary_files(dir.path()).is_empty());
}

/// Issue 10 item 7: run by another user, cru replaced that user's files in a sticky folder
/// and then failed to rename over root's file there (exit 3, the first files changed). The
/// new file cannot be given root's ownership, so the update fails before any rename.
#[test]
fn a_file_cru_may_not_replace_in_a_sticky_folder_fails_the_update_before_any_rename() {
    use std::os::unix::fs::{chown, PermissionsExt};
    let dir = Dir::new();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let sticky = dir.path().join("shared");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    let mine = dir.write("shared/a.yaml", OLD);
    chown(&mine, Some(65534), Some(65534)).unwrap();
    let roots = dir.write("shared/z.yaml", OLD);
    fs::set_permissions(&roots, fs::Permissions::from_mode(0o666)).unwrap();

    // cru as nobody, with the environment `cru_command` gives it.
    let mut cmd = Command::new("setpriv");
    for (key, value) in util::cru_command().get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let out = cmd
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_cru"))
        .args(["update", "--image-reference", "nginx:1.27", "."])
        .current_dir(&sticky)
        .output()
        .expect("setpriv (util-linux)");
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("z.yaml: cannot keep its owner 0:0"), "{err}");
    assert_eq!(dir.read_string("shared/a.yaml"), OLD);
    assert_eq!(dir.read_string("shared/z.yaml"), OLD);
    assert!(temporary_files(dir.path()).is_empty());
}

/// Issue 10 item 10: a hard-linked file was silently split from its other names.
#[test]
fn a_hard_linked_file_is_refused_and_nothing_is_written() {
    let dir = Dir::new();
    dir.write("a.yaml", OLD);
    let linked = dir.write("b.yaml", OLD);
    fs::hard_link(&linked, dir.path().join("elsewhere.txt")).unwrap();
    let out = dir.run(&[
        "update",
        "--image-reference",
        "nginx:1.27",
        "a.yaml",
        "b.yaml",
    ]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("b.yaml: has 2 hard links"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dir.read_string("a.yaml"), OLD);
    assert_eq!(dir.read_string("elsewhere.txt"), OLD);
    assert_eq!(
        fs::metadata(&linked).unwrap().ino(),
        fs::metadata(dir.path().join("elsewhere.txt"))
            .unwrap()
            .ino()
    );
}

/// Issue 10 item 10: the rewritten file belonged to whoever ran cru.
#[test]
fn an_updated_file_keeps_its_owner_group_and_mode() {
    let dir = Dir::new();
    let path = dir.write("a.yaml", OLD);
    std::os::unix::fs::chown(&path, Some(4321), Some(8765)).unwrap();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let out = dir.run(&["update", "--image-reference", "nginx:1.27"]);
    assert_exit(&out, 0);
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (4321, 8765, 0o640)
    );
    assert_eq!(dir.read_string("a.yaml"), NEW);
}

/// Issue 10 item 9: temporary files of killed runs were scanned by later runs; stale ones
/// (of a pid no longer alive) are removed, those of a live run left alone.
#[test]
fn temporary_files_are_never_scanned_and_those_of_dead_runs_are_removed() {
    let dir = Dir::new();
    dir.write("a.yaml", OLD);
    // 99999999 is beyond any pid_max, so never alive; pid 1 always is.
    dir.write("k8s/.cru-99999999-7.tmp", OLD);
    dir.write("k8s/.cru-1-7.tmp", OLD);
    let out = dir.run(&["list"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "a.yaml:nginx:1.25\n");
    assert!(!dir.path().join("k8s/.cru-99999999-7.tmp").exists());
    assert!(dir.path().join("k8s/.cru-1-7.tmp").exists());

    dir.write("k8s/.cru-99999999-8.orig", OLD);
    let out = dir.run(&["update", "--image-reference", "nginx:1.27"]);
    assert_exit(&out, 0);
    assert_eq!(dir.read_string("a.yaml"), NEW);
    assert_eq!(
        dir.read_string("k8s/.cru-1-7.tmp"),
        OLD,
        "a live run's file is not touched"
    );
    assert_eq!(temporary_files(dir.path()), [".cru-1-7.tmp"]);
}

/// Issue 10 item 9: Ctrl-C (and SIGTERM) left hundreds of temporary files behind. Waits
/// (with a deadline) until the update has prepared some files, then interrupts it.
#[test]
fn an_interrupted_update_removes_its_temporary_files_and_exits_130_or_143() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let dir = Dir::new();
        for i in 0..20_000 {
            dir.write(&format!("d{}/f{i}.yaml", i / 1000), OLD);
        }
        let mut child = dir
            .cru(&["update", "--image-reference", "nginx:1.27", "."])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while temporary_files(dir.path()).is_empty() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "cru ended before it was interrupted"
            );
            assert!(Instant::now() < deadline, "no temporary file appeared");
            std::thread::sleep(Duration::from_millis(5));
        }
        let kill = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "SIG{signal}");
        assert!(
            temporary_files(dir.path()).is_empty(),
            "SIG{signal}: {:?}",
            temporary_files(dir.path())
        );
        // All or nothing: the interruption came before the renames or put them back.
        let changed = (0..20_000)
            .filter(|i| dir.read_string(&format!("d{}/f{i}.yaml", i / 1000)) != OLD)
            .count();
        assert_eq!(changed, 0, "SIG{signal}");
    }
}
