//! The git layer against real repositories and servers on loopback, checked with the `git`
//! command line as an independent reader.

#[path = "support/git.rs"]
mod git_support;

use std::path::Path;

use git_support::{request_path, run, Answer, Env, Fake};

const FILES: &[(&str, &str)] = &[
    ("deploy/app.yaml", "image: bitnami/nginx:1.24\n"),
    ("Dockerfile", "FROM gcr.io/project/app:1.0\n"),
    ("README.md", "no references here\n"),
];

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[test]
fn clones_checks_out_a_branch_commits_with_the_author_and_pushes() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &["release"]);
    let main_before = env.rev(&bare, "main");
    let (code, _, err) = run(env.cru().args([
        "update",
        "--repository",
        &file_url(&bare),
        "--branch",
        "release",
        "--image-reference",
        "bitnami/nginx:1.25",
        "--commit",
        "bump nginx",
        "--username",
        "Alice Ops",
        "--email",
        "alice@example.com",
    ]));
    assert_eq!(code, 0, "{err}");
    let log = env.git(
        &bare,
        &["log", "-1", "--format=%an|%ae|%cn|%ce|%s", "release"],
    );
    assert_eq!(
        log.trim(),
        "Alice Ops|alice@example.com|Alice Ops|alice@example.com|bump nginx"
    );
    assert_eq!(
        env.show(&bare, "release", "deploy/app.yaml"),
        "image: bitnami/nginx:1.25\n"
    );
    let changed = env.git(&bare, &["show", "--format=", "--name-only", "release"]);
    assert_eq!(changed.trim(), "deploy/app.yaml");
    assert_eq!(env.rev(&bare, "main"), main_before, "other branches stay");
    assert_eq!(env.rev(&bare, "release^"), main_before, "one commit on top");
    assert!(err.contains("pushed"), "{err}");
    assert_eq!(
        env.leftovers(),
        Vec::<String>::new(),
        "the clone is removed"
    );
}

#[test]
fn default_branch_and_author_come_from_the_remote_and_git_config() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    // No identity anywhere: cru <cru@localhost>.
    let args = |r: &str| {
        vec![
            "update".to_string(),
            "--repository".into(),
            file_url(&bare),
            "--image-reference".into(),
            r.into(),
            "--commit".into(),
            format!("set {r}"),
        ]
    };
    let (code, _, err) = run(env.cru().args(args("bitnami/nginx:1.25")));
    assert_eq!(code, 0, "{err}");
    let log = env.git(&bare, &["log", "-1", "--format=%an <%ae>|%s", "main"]);
    assert_eq!(log.trim(), "cru <cru@localhost>|set bitnami/nginx:1.25");

    std::fs::write(
        env.home.join(".gitconfig"),
        "[user]\n\tname = Config Person\n\temail = config@example.com\n",
    )
    .unwrap();
    let (code, _, err) = run(env.cru().args(args("bitnami/nginx:1.26")));
    assert_eq!(code, 0, "{err}");
    let log = env.git(&bare, &["log", "-1", "--format=%an <%ae>", "main"]);
    assert_eq!(log.trim(), "Config Person <config@example.com>");
}

#[test]
fn a_missing_branch_is_a_clear_error() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let (code, _, err) = run(env.cru().args([
        "update",
        "--repository",
        &file_url(&bare),
        "--branch",
        "nope",
        "--all",
        "--commit",
        "x",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("branch \"nope\" does not exist"), "{err}");
    assert!(err.contains(&file_url(&bare)), "{err}");
    assert_eq!(
        env.leftovers(),
        Vec::<String>::new(),
        "the clone is removed on failure"
    );
}

#[test]
fn commit_without_repository_is_a_usage_error() {
    let env = Env::new();
    let (code, _, err) = run(env.cru().args(["update", "--all", "--commit", "x"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--repository"), "{err}");
}

#[test]
fn paths_outside_the_repository_are_a_usage_error() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let work = env.path("work");
    env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    std::fs::write(env.path("outside.yaml"), "image: bitnami/nginx:1.24\n").unwrap();
    for path in [
        "../outside.yaml",
        env.path("outside.yaml").to_str().unwrap(),
    ] {
        let (code, _, err) = run(env.cru().args([
            "update",
            "--repository",
            work.to_str().unwrap(),
            "--all",
            "--commit",
            "x",
            path,
        ]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("outside the repository"), "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(env.path("outside.yaml")).unwrap(),
        "image: bitnami/nginx:1.24\n"
    );
}

#[test]
fn no_change_means_no_commit_and_no_push() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let before = env.rev(&bare, "main");
    let (code, _, err) = run(env.cru().args([
        "update",
        "--repository",
        &file_url(&bare),
        "--image-reference",
        "bitnami/nginx:1.24",
        "--commit",
        "nothing",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("INFO: no files were updated by cru"), "{err}");
    assert!(!err.contains("pushed"), "{err}");
    assert_eq!(env.rev(&bare, "main"), before);
}

#[test]
fn dry_run_clones_shows_the_diff_and_commits_nothing() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let before = env.rev(&bare, "main");
    let (code, out, err) = run(env.cru().args([
        "update",
        "--dry-run",
        "--repository",
        &file_url(&bare),
        "--image-reference",
        "bitnami/nginx:1.25",
        "--commit",
        "bump",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+image: bitnami/nginx:1.25"), "{out}");
    assert!(
        out.contains("a/deploy/app.yaml"),
        "paths are relative to the root: {out}"
    );
    assert!(err.contains("would commit 1 files"), "{err}");
    assert!(err.contains("and push"), "{err}");
    assert_eq!(env.rev(&bare, "main"), before);
}

#[test]
fn list_reads_a_branch_of_a_remote() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &["dev"]);
    let (code, out, err) = run(env.cru().args([
        "list",
        "--repository",
        &file_url(&bare),
        "--branch",
        "dev",
        "deploy",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "deploy/app.yaml:bitnami/nginx:1.24\n");
}

#[test]
fn a_local_repository_keeps_the_users_own_changes_out_of_the_commit() {
    let env = Env::new();
    let bare = env.bare_repo(
        "remote",
        &[
            ("deploy/app.yaml", "image: bitnami/nginx:1.24\n"),
            ("staged.txt", "one\n"),
            ("unstaged.txt", "one\n"),
        ],
        &[],
    );
    let work = env.path("work");
    env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    std::fs::write(work.join("staged.txt"), "two\n").unwrap();
    env.git(&work, &["add", "staged.txt"]);
    // An unstaged change of the same size and mtime second as the indexed file, that git sees
    // only through its racy-git check (ctime ignored): cru rewriting the index a second later
    // must not make it look clean.
    env.git(&work, &["config", "core.trustctime", "false"]);
    let unstaged = work.join("unstaged.txt");
    let mtime = std::fs::metadata(&unstaged).unwrap().modified().unwrap();
    std::fs::write(&unstaged, "two\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&unstaged)
        .unwrap()
        .set_modified(mtime + std::time::Duration::from_nanos(1))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(work.join("untracked.txt"), "new\n").unwrap();
    let remote_before = env.rev(&bare, "main");

    let (code, _, err) = run(env.cru().current_dir(work.join("deploy")).args([
        "update",
        "--repository",
        ".",
        "--image-reference",
        "bitnami/nginx:1.25",
        "--commit",
        "bump nginx",
    ]));
    assert_eq!(code, 0, "{err}");
    let changed = env.git(&work, &["show", "--format=%s", "--name-only", "HEAD"]);
    assert_eq!(changed.trim(), "bump nginx\n\ndeploy/app.yaml");
    assert_eq!(
        env.git(&work, &["diff", "--cached", "--name-only"]).trim(),
        "staged.txt"
    );
    assert_eq!(
        env.git(&work, &["diff", "--name-only"]).trim(),
        "unstaged.txt"
    );
    let status = env.git(&work, &["status", "--porcelain"]);
    assert_eq!(status, "M  staged.txt\n M unstaged.txt\n?? untracked.txt\n");
    assert_eq!(
        std::fs::read_to_string(work.join("untracked.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(
        env.rev(&bare, "main"),
        remote_before,
        "no push without --push"
    );

    // --push sends the branch to its upstream.
    let (code, _, err) = run(env.cru().current_dir(&work).args([
        "update",
        "--repository",
        ".",
        "--image-reference",
        "bitnami/nginx:1.26",
        "--commit",
        "bump again",
        "--push",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.rev(&bare, "main"), env.rev(&work, "HEAD"));
    assert_eq!(
        env.show(&bare, "main", "deploy/app.yaml"),
        "image: bitnami/nginx:1.26\n"
    );
    assert_eq!(env.show(&bare, "main", "staged.txt"), "one\n");
}

#[test]
fn a_local_push_to_a_moved_upstream_fails_and_says_to_pull() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let work = env.path("work");
    let other = env.path("other");
    for dir in [&work, &other] {
        env.git(
            env.dir.path(),
            &["clone", "-q", bare.to_str().unwrap(), dir.to_str().unwrap()],
        );
    }
    std::fs::write(other.join("README.md"), "changed elsewhere\n").unwrap();
    env.git(&other, &["commit", "-q", "-am", "elsewhere"]);
    env.git(&other, &["push", "-q"]);
    let remote_tip = env.rev(&bare, "main");
    let (code, _, err) = run(env.cru().current_dir(&work).args([
        "update",
        "--repository",
        ".",
        "--image-reference",
        "bitnami/nginx:1.25",
        "--commit",
        "bump",
        "--push",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("push failed") && err.contains("pull"), "{err}");
    assert_eq!(env.rev(&bare, "main"), remote_tip, "nothing forced");
    let subject = env.git(&work, &["log", "-1", "--format=%s"]);
    assert_eq!(
        subject.trim(),
        "bump",
        "the commit stays for the user to rebase"
    );
}

#[test]
fn a_local_dry_run_commits_nothing() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let work = env.path("work");
    env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    let head = env.rev(&work, "HEAD");
    let (code, out, err) = run(env.cru().args([
        "update",
        "--dry-run",
        "--repository",
        work.to_str().unwrap(),
        "--image-reference",
        "bitnami/nginx:1.25",
        "--commit",
        "bump",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+image: bitnami/nginx:1.25"), "{out}");
    assert!(err.contains("would commit 1 files"), "{err}");
    assert_eq!(env.rev(&work, "HEAD"), head);
    assert_eq!(env.git(&work, &["status", "--porcelain"]), "");
}

#[test]
fn a_local_repository_is_not_switched_to_another_branch() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &["dev"]);
    let work = env.path("work");
    env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    let (code, _, err) = run(env.cru().args([
        "update",
        "--repository",
        work.to_str().unwrap(),
        "--branch",
        "dev",
        "--all",
        "--commit",
        "x",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("checkout failed") && err.contains("on main"),
        "{err}"
    );
    assert_eq!(env.git(&work, &["status", "--porcelain"]), "");
}

#[test]
fn a_local_file_with_the_users_own_changes_is_refused_and_left_alone() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let work = env.path("work");
    env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    let mine = "image: bitnami/nginx:1.24\n# my edit\n";
    std::fs::write(work.join("deploy/app.yaml"), mine).unwrap();
    let head = env.rev(&work, "HEAD");
    let (code, _, err) = run(env.cru().args([
        "update",
        "--repository",
        work.to_str().unwrap(),
        "--image-reference",
        "bitnami/nginx:1.25",
        "--commit",
        "bump",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("deploy/app.yaml"), "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("deploy/app.yaml")).unwrap(),
        mine
    );
    assert_eq!(env.rev(&work, "HEAD"), head);
}

#[test]
fn a_server_side_rejection_fails_with_the_hooks_message() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'policy: main is frozen until Monday' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = env.rev(&bare, "main");
    let daemon = env.git_daemon(env.dir.path());
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let (code, _, err) = run(env.cru().args([
        "update",
        "--repository",
        &url,
        "--image-reference",
        "bitnami/nginx:1.25",
        "--commit",
        "bump",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("policy: main is frozen until Monday"), "{err}");
    assert!(err.contains("push failed for git://"), "{err}");
    assert!(err.contains("(branch main)"), "{err}");
    assert_eq!(env.rev(&bare, "main"), before);
    assert_eq!(
        env.leftovers(),
        Vec::<String>::new(),
        "the clone is removed on failure"
    );
}

/// Ten writers, each changing a different reference in its own file, at the same time.
fn race(env: &Env, bare: &Path, url: &str) {
    let children: Vec<_> = (0..10)
        .map(|i| {
            env.cru()
                .args([
                    "update",
                    "--repository",
                    url,
                    "--image-reference",
                    &format!("example.com/app{i}:2.0"),
                    "--commit",
                    &format!("bump app{i}"),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
    }
    for i in 0..10 {
        assert_eq!(
            env.show(bare, "main", &format!("app{i}.yaml")),
            format!("image: example.com/app{i}:2.0\n")
        );
    }
    let log = env.git(bare, &["log", "--format=%s", "main"]);
    let subjects: Vec<&str> = log.lines().collect();
    assert_eq!(subjects.len(), 11, "{log}");
    let merges = env.git(bare, &["rev-list", "--merges", "main"]);
    assert!(merges.is_empty(), "history is linear");
}

fn race_files() -> Vec<(String, String)> {
    (0..10)
        .map(|i| {
            (
                format!("app{i}.yaml"),
                format!("image: example.com/app{i}:1.0\n"),
            )
        })
        .collect()
}

#[test]
fn ten_concurrent_updates_over_file_urls_all_land() {
    let env = Env::new();
    let files = race_files();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let bare = env.bare_repo("remote", &files, &[]);
    race(&env, &bare, &file_url(&bare));
}

#[test]
fn ten_concurrent_updates_over_git_daemon_all_land() {
    let env = Env::new();
    let files = race_files();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let bare = env.bare_repo("remote", &files, &[]);
    let daemon = env.git_daemon(env.dir.path());
    race(
        &env,
        &bare,
        &format!("git://127.0.0.1:{}/remote.git", daemon.port),
    );
}

fn ssh_update(env: &Env, url: &str, tag: &str) -> (i32, String) {
    let (code, _, err) = run(env.cru().args([
        "update",
        "--repository",
        url,
        "--image-reference",
        &format!("bitnami/nginx:{tag}"),
        "--commit",
        &format!("nginx {tag}"),
    ]));
    (code, err)
}

#[test]
fn pushes_over_ssh_with_an_agent_key_and_with_an_identity_file() {
    let mut env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let agent_key = env.path("agent_key");
    let agent_pub = env.keygen(&agent_key);
    let file_key = env.home.join(".ssh/deploy_key");
    let file_pub = env.keygen(&file_key);
    let sshd = env.sshd(&format!("{agent_pub}{file_pub}"));
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let url = format!("ssh://{user}@127.0.0.1:{}{}", sshd.port, bare.display());

    // No credentials at all: a clear failure that names what was tried.
    let (code, err) = ssh_update(&env, &url, "1.25");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("clone failed"), "{err}");
    assert!(
        err.contains("credentials tried: none; not found: ssh-agent"),
        "{err}"
    );
    assert!(err.contains("key files"), "{err}");

    // From ~/.ssh/config IdentityFile; the host key must be known.
    std::fs::write(
        env.home.join(".ssh/config"),
        "Host 127.0.0.1\n  IdentityFile ~/.ssh/deploy_key\n",
    )
    .unwrap();
    let known_hosts = env.home.join(".ssh/known_hosts");
    let known = std::fs::read(&known_hosts).unwrap();
    std::fs::write(&known_hosts, "").unwrap();
    let (code, err) = ssh_update(&env, &url, "1.25");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("known_hosts"), "{err}");
    std::fs::write(&known_hosts, known).unwrap();
    let (code, err) = ssh_update(&env, &url, "1.25");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        env.show(&bare, "main", "deploy/app.yaml"),
        "image: bitnami/nginx:1.25\n"
    );

    // From the agent, with no key file configured.
    std::fs::remove_file(env.home.join(".ssh/config")).unwrap();
    std::fs::remove_file(&file_key).unwrap();
    let _agent = env.ssh_agent(&agent_key);
    let (code, err) = ssh_update(&env, &url, "1.26");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        env.show(&bare, "main", "deploy/app.yaml"),
        "image: bitnami/nginx:1.26\n"
    );
    assert_eq!(
        env.git(&bare, &["log", "--format=%s", "main"])
            .lines()
            .collect::<Vec<_>>(),
        ["nginx 1.26", "nginx 1.25", "initial"]
    );
}

#[test]
fn pushes_over_http_with_basic_auth_and_never_shows_the_password() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let password = "s3cret-Pa55word";
    let server = env.http_git(env.dir.path(), "alice", password);
    let plain = format!("http://127.0.0.1:{}/git/remote.git", server.port);
    let with_password = format!(
        "http://alice:{password}@127.0.0.1:{}/git/remote.git",
        server.port
    );
    let update = |url: &str, tag: &str| {
        run(env.cru().args([
            "update",
            "--verbose",
            "--repository",
            url,
            "--image-reference",
            &format!("bitnami/nginx:{tag}"),
            "--commit",
            &format!("nginx {tag}"),
        ]))
    };

    // user:password in the URL.
    let (code, out, err) = update(&with_password, "1.25");
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(password) && !err.contains(password), "{err}");
    assert!(err.contains("http://***@127.0.0.1"), "{err}");
    assert_eq!(
        env.show(&bare, "main", "deploy/app.yaml"),
        "image: bitnami/nginx:1.25\n"
    );

    // A wrong password: refused, the sources tried are named, no password shown.
    let wrong = with_password.replace(password, "wr0ng-Passw0rd");
    let (code, out, err) = update(&wrong, "1.26");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("credentials tried"), "{err}");
    assert!(
        !out.contains("wr0ng-Passw0rd") && !err.contains("wr0ng-Passw0rd"),
        "{err}"
    );

    // GIT_ASKPASS, answering both prompts.
    let askpass = env.path("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\ncase \"$1\" in Username*) echo alice;; *) echo '{password}';; esac\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, out, err) =
        run(env
            .cru()
            .env("GIT_ASKPASS", &askpass)
            .args(["list", "--repository", &plain]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Dockerfile:gcr.io/project/app:1.0\ndeploy/app.yaml:bitnami/nginx:1.25\n"
    );

    // A credential helper (git's own `store`) in the user's git config.
    let store = env.path("credentials");
    std::fs::write(
        &store,
        format!("http://alice:{password}@127.0.0.1%3a{}\n", server.port),
    )
    .unwrap();
    std::fs::write(
        env.home.join(".gitconfig"),
        format!(
            "[credential]\n\thelper = store --file={}\n",
            store.display()
        ),
    )
    .unwrap();
    let (code, out, err) = update(&plain, "1.26");
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(password) && !err.contains(password), "{err}");
    assert_eq!(
        env.show(&bare, "main", "deploy/app.yaml"),
        "image: bitnami/nginx:1.26\n"
    );
}

#[test]
fn pushes_over_https_and_checks_the_certificate() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let password = "tls-Pa55word";
    let (server, cert) = env.https_git(env.dir.path(), "alice", password);
    let url = format!(
        "https://alice:{password}@127.0.0.1:{}/git/remote.git",
        server.port
    );
    let args = [
        "update",
        "--repository",
        &url,
        "--image-reference",
        "bitnami/nginx:1.25",
        "--commit",
        "over https",
    ];

    // A certificate nobody vouches for is refused.
    let (code, out, err) = run(env
        .cru()
        .env("SSL_CERT_FILE", env.path("none.pem"))
        .args(args));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("clone failed for https://***@127.0.0.1"),
        "{err}"
    );
    assert!(err.contains("certificate is not trusted"), "{err}");
    assert!(!out.contains(password) && !err.contains(password), "{err}");

    let (code, out, err) = run(env.cru().env("SSL_CERT_FILE", &cert).args(args));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(password) && !err.contains(password), "{err}");
    assert_eq!(
        env.show(&bare, "main", "deploy/app.yaml"),
        "image: bitnami/nginx:1.25\n"
    );
    let subject = env.git(&bare, &["log", "-1", "--format=%s", "main"]);
    assert_eq!(subject.trim(), "over https");
}

/// Sends every request to the same path on `port`.
fn redirect_to(head: &str, port: u16) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}{}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        request_path(head)
    )
}

/// Asks for basic auth, whatever the request.
fn ask_for_password(_head: &str, _: u16) -> String {
    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
     Content-Length: 0\r\nConnection: close\r\n\r\n"
        .to_string()
}

#[test]
fn credentials_are_not_sent_to_the_other_origin_a_redirect_points_at() {
    let env = Env::new();
    let password = "s3cret-Redirect";
    // A different port is a different origin, as another host would be.
    let elsewhere = Fake::start(Answer::Http(ask_for_password), 0);
    let redirector = Fake::start(Answer::Http(redirect_to), elsewhere.port);
    let url = format!(
        "http://alice:{password}@127.0.0.1:{}/git/remote.git",
        redirector.port
    );
    let (code, out, err) = run(env.cru().args(["list", "--repository", &url]));
    assert_eq!(code, 3, "{err}");
    let asked = elsewhere.requests();
    assert!(!asked.is_empty(), "the redirect was followed: {err}");
    for head in &asked {
        assert!(
            !head.to_ascii_lowercase().contains("authorization:"),
            "credentials went to the other origin: {head}"
        );
    }
    assert!(err.contains("only to its own"), "{err}");
    assert!(!out.contains(password) && !err.contains(password), "{err}");
}

/// Every file under `dir` that holds `secret`.
fn files_holding(dir: &Path, secret: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if String::from_utf8_lossy(&std::fs::read(&path).unwrap()).contains(secret) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_clone_is_private_and_stores_no_password_yet_fetches_and_pushes_with_it() {
    use cru::git::{Checkout, CommitSpec, Outcome};
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let password = "s3cret-Pa55word";
    let server = env.http_git(env.dir.path(), "alice", password);
    let url = format!(
        "http://alice:{password}@127.0.0.1:{}/git/remote.git",
        server.port
    );
    let checkout = Checkout::clone_with(&url, None, TIMEOUTS).unwrap();
    let root = checkout.workdir().to_path_buf();
    for dir in [&root, root.parent().unwrap()] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is mode {mode:o}", dir.display());
    }
    let config = std::fs::read_to_string(root.join(".git/config")).unwrap();
    assert!(
        config.contains(&format!(
            "url = http://127.0.0.1:{}/git/remote.git",
            server.port
        )),
        "{config}"
    );
    assert_eq!(files_holding(&root, password), Vec::<String>::new());

    // Fetching and pushing still authenticate, with the password from memory.
    checkout.refresh().unwrap();
    let spec = CommitSpec {
        message: "from memory".into(),
        ..CommitSpec::default()
    };
    let outcome = checkout
        .update(Some(&spec), false, |workdir, _| {
            std::fs::write(workdir.join("README.md"), "changed\n")?;
            Ok(vec!["README.md".into()])
        })
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Committed { pushed: true, .. }),
        "{outcome:?}"
    );
    assert_eq!(env.show(&bare, "main", "README.md"), "changed\n");
    assert_eq!(files_holding(&root, password), Vec::<String>::new());
}

/// `git clone` of `bare` into a working tree `name`.
fn work_clone(env: &Env, bare: &Path, name: &str) -> std::path::PathBuf {
    let work = env.path(name);
    env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    work
}

#[test]
fn changes_without_commit_end_with_the_go_tools_skipping_line() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let work = work_clone(&env, &bare, "work");
    let line = "INFO: no commit message, skipping commit and push";
    let update = |repository: &str, tag: &str, extra: &[&str]| {
        run(env
            .cru()
            .args(["update", "--repository", repository, "--image-reference"])
            .arg(format!("bitnami/nginx:{tag}"))
            .args(extra))
    };
    for repository in [file_url(&bare), work.display().to_string()] {
        let (code, _, err) = update(&repository, "1.25", &[]);
        assert_eq!(code, 0, "{err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.ends_with(line), "{repository}: {err}");
    }
    // No change, a dry run or a commit: nothing is skipped.
    for extra in [&[][..], &["--dry-run"], &["--commit", "bump"]] {
        let tag = if extra.is_empty() { "1.25" } else { "1.26" };
        if extra.first() == Some(&"--commit") {
            env.git(&work, &["checkout", "--", "."]);
        }
        let (code, _, err) = update(work.to_str().unwrap(), tag, extra);
        assert_eq!(code, 0, "{err}");
        assert!(!err.contains(line), "{extra:?}: {err}");
    }
}

/// The bounds of every in-process git operation in these tests: libgit2 keeps the connect
/// and stall timeouts per process, so all use the same ones.
const TIMEOUTS: cru::git::Timeouts = cru::git::Timeouts {
    connect: std::time::Duration::from_secs(5),
    stall: std::time::Duration::from_secs(3),
    total: std::time::Duration::from_secs(60),
};

/// Runs `op` on a thread; its error, or a failure when it is still running after `limit`.
fn fails_within<T: Send + 'static>(
    what: &str,
    limit: std::time::Duration,
    op: impl FnOnce() -> Result<T, cru::git::GitError> + Send + 'static,
) -> std::thread::JoinHandle<String> {
    let what = what.to_string();
    std::thread::spawn(move || {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(op().err().map(|e| e.to_string()));
        });
        match rx.recv_timeout(limit) {
            Ok(Some(message)) => message,
            Ok(None) => panic!("{what}: succeeded against a server that never answers"),
            Err(_) => panic!("{what}: still waiting after {limit:?}"),
        }
    })
}

#[test]
fn git_network_operations_against_a_stalling_server_fail_within_the_bound() {
    use cru::git::{probe_with, Checkout, CommitSpec};
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let silent = Fake::start(Answer::Bytes(b""), 0);
    let http_head = Fake::start(
        Answer::Bytes(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-"),
        0,
    );
    let ssh_banner = Fake::start(Answer::Bytes(b"SSH-2.0-OpenSSH_9.6\r\n"), 0);
    let limit = TIMEOUTS.stall * 10;

    // A clone whose origin then stalls (fetch), and a working tree whose upstream stalls (push).
    let clone = Checkout::clone_with(&file_url(&bare), None, TIMEOUTS).unwrap();
    let stalling = format!("git://127.0.0.1:{}/remote.git", silent.port);
    env.git(clone.workdir(), &["remote", "set-url", "origin", &stalling]);
    let work = work_clone(&env, &bare, "work");
    env.git(&work, &["remote", "set-url", "origin", &stalling]);
    let local = Checkout::new_with(work.to_str().unwrap(), None, TIMEOUTS).unwrap();

    let port = |f: &Fake| f.port;
    let mut waits = Vec::new();
    for (what, url) in [
        (
            "http, silent",
            format!("http://127.0.0.1:{}/r.git", port(&silent)),
        ),
        (
            "http, half a head",
            format!("http://127.0.0.1:{}/r.git", port(&http_head)),
        ),
        (
            "git://, silent",
            format!("git://127.0.0.1:{}/r.git", port(&silent)),
        ),
        (
            "ssh, banner only",
            format!("ssh://git@127.0.0.1:{}/r.git", port(&ssh_banner)),
        ),
    ] {
        let u = url.clone();
        waits.push((
            format!("clone over {what}"),
            fails_within(what, limit, move || {
                Checkout::clone_with(&u, None, TIMEOUTS)
            }),
        ));
        waits.push((
            format!("probe over {what}"),
            fails_within(what, limit, move || probe_with(&url, "main", TIMEOUTS)),
        ));
    }
    for (what, wait) in waits {
        let message = wait.join().unwrap();
        assert!(
            message.contains("cru's git stall timeout"),
            "{what}: {message}"
        );
        assert!(message.contains("3 s"), "{what}: {message}");
    }

    let fetched = clone.refresh().unwrap_err().to_string();
    assert!(fetched.starts_with("fetch failed"), "{fetched}");
    assert!(fetched.contains("cru's git stall timeout"), "{fetched}");
    let spec = CommitSpec {
        message: "bump".into(),
        push: true,
        ..CommitSpec::default()
    };
    let pushed = local
        .update(Some(&spec), false, |workdir, _| {
            std::fs::write(workdir.join("README.md"), "changed\n")?;
            Ok(vec!["README.md".into()])
        })
        .unwrap_err()
        .to_string();
    assert!(pushed.starts_with("push failed"), "{pushed}");
    assert!(pushed.contains("cru's git stall timeout"), "{pushed}");
}

#[test]
fn a_git_operation_past_its_total_deadline_is_stopped() {
    let env = Env::new();
    let _bare = env.bare_repo("remote", FILES, &[]);
    let daemon = env.git_daemon(env.dir.path());
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let none = cru::git::Timeouts {
        total: std::time::Duration::ZERO,
        ..TIMEOUTS
    };
    let err = cru::git::Checkout::clone_with(&url, None, none)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(": gave up after 0 ms, cru's limit for one git network operation"),
        "{err}"
    );
}

/// A working tree `work` (from a bare `remote`) with the repository `inner` checked out as
/// the submodule `sub`, both holding an nginx reference.
fn with_submodule(env: &Env) -> std::path::PathBuf {
    let bare = env.bare_repo("remote", FILES, &[]);
    let inner = env.bare_repo("inner", &[("app.yaml", "image: bitnami/nginx:1.24\n")], &[]);
    let work = work_clone(env, &bare, "work");
    env.git(
        &work,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            inner.to_str().unwrap(),
            "sub",
        ],
    );
    env.git(&work, &["commit", "-q", "-m", "add the submodule"]);
    work
}

#[test]
fn files_in_a_submodule_are_refused_before_anything_is_written() {
    let env = Env::new();
    let work = with_submodule(&env);
    let head = env.rev(&work, "HEAD");
    let update = |extra: &[&str]| {
        run(env
            .cru()
            .args([
                "update",
                "--repository",
                work.to_str().unwrap(),
                "--image-reference",
                "bitnami/nginx:1.25",
                "--commit",
                "bump",
            ])
            .args(extra))
    };
    // A dry run does not promise a commit that cannot be made.
    let (code, _, err) = update(&["--dry-run"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("inside the submodule sub"), "{err}");
    let (code, _, err) = update(&[]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("sub/app.yaml would change inside the submodule sub"),
        "{err}"
    );
    assert!(err.contains("no file was updated"), "{err}");
    assert!(!err.contains("D/F"), "{err}");
    assert_eq!(env.git(&work, &["status", "--porcelain"]), "");
    assert_eq!(env.git(&work.join("sub"), &["status", "--porcelain"]), "");
    assert_eq!(env.rev(&work, "HEAD"), head);

    // Left out as the message says, the rest is updated and committed.
    std::fs::write(work.join(".cruignore"), "sub/\n").unwrap();
    let (code, _, err) = update(&[]);
    assert_eq!(code, 0, "{err}");
    let changed = env.git(&work, &["show", "--format=", "--name-only", "HEAD"]);
    assert_eq!(changed.trim(), "deploy/app.yaml");
    assert_eq!(env.git(&work.join("sub"), &["status", "--porcelain"]), "");
}

#[test]
fn a_symlink_path_commits_its_target_inside_the_repository() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let work = work_clone(&env, &bare, "work");
    std::os::unix::fs::symlink("deploy/app.yaml", work.join("link.yaml")).unwrap();
    std::os::unix::fs::symlink("deploy", work.join("k8s")).unwrap();
    env.git(&work, &["add", "link.yaml", "k8s"]);
    env.git(&work, &["commit", "-q", "-m", "links"]);
    for (path, tag) in [("link.yaml", "1.25"), ("k8s", "1.26")] {
        let before = env.rev(&work, "HEAD");
        let (code, _, err) = run(env.cru().args([
            "update",
            "--repository",
            work.to_str().unwrap(),
            "--image-reference",
            &format!("bitnami/nginx:{tag}"),
            "--commit",
            &format!("bump via {path}"),
            path,
        ]));
        assert_eq!(code, 0, "{path}: {err}");
        assert_eq!(env.rev(&work, "HEAD^"), before, "{path}: one new commit");
        let changed = env.git(&work, &["show", "--format=", "--name-only", "HEAD"]);
        assert_eq!(changed.trim(), "deploy/app.yaml", "{path}");
        assert_eq!(
            env.show(&work, "HEAD", "deploy/app.yaml"),
            format!("image: bitnami/nginx:{tag}\n")
        );
        assert_eq!(env.git(&work, &["status", "--porcelain"]), "", "{path}");
        assert!(work
            .join(path)
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink());
    }
}

#[test]
fn a_file_in_head_that_is_now_a_folder_is_refused_with_what_to_do() {
    let env = Env::new();
    let bare = env.bare_repo("remote", &[("config", "no references\n")], &[]);
    let work = work_clone(&env, &bare, "work");
    // `config` is now an (ignored) folder with a reference in it.
    std::fs::remove_file(work.join("config")).unwrap();
    std::fs::create_dir(work.join("config")).unwrap();
    let app = "image: bitnami/nginx:1.24\n";
    std::fs::write(work.join("config/app.yaml"), app).unwrap();
    std::fs::write(work.join(".git/info/exclude"), "config/\n").unwrap();
    let head = env.rev(&work, "HEAD");
    let (code, _, err) = run(env.cru().args([
        "update",
        "--repository",
        work.to_str().unwrap(),
        "--image-reference",
        "bitnami/nginx:1.25",
        "--commit",
        "bump",
        "config/app.yaml",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(
            "config/app.yaml cannot be committed: in the last commit config is a file, and now \
             it is a folder"
        ),
        "{err}"
    );
    assert!(err.contains("commit the change that replaced it"), "{err}");
    assert!(err.contains("no file was updated"), "{err}");
    assert!(!err.contains("D/F conflict when"), "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("config/app.yaml")).unwrap(),
        app
    );
    assert_eq!(env.rev(&work, "HEAD"), head);
}

#[test]
fn a_clones_warnings_go_to_the_reporter_it_is_handed() {
    use cru::git::{Checkout, Outcome};
    use cru::report::{Collect, SharedReporter};
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let mut checkout = Checkout::clone_with(&file_url(&bare), None, TIMEOUTS).unwrap();
    let collect = std::sync::Arc::new(Collect::default());
    checkout.set_reporter(SharedReporter::new(collect.clone()));
    // Changes to a clone without a commit are discarded: the reporter is told.
    let outcome = checkout
        .update(None, false, |workdir, _| {
            std::fs::write(workdir.join("README.md"), "changed\n").unwrap();
            Ok(vec!["README.md".into()])
        })
        .unwrap();
    assert!(matches!(outcome, Outcome::NotCommitted(_)), "{outcome:?}");
    let warnings = collect.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("no --commit given: the changes to the clone of"),
        "{warnings:?}"
    );
}

#[test]
fn credential_helpers_run_with_terminal_prompts_off_whatever_crus_environment() {
    let env = Env::new();
    let _bare = env.bare_repo("remote", FILES, &[]);
    let password = "h3lper-Pa55word";
    let server = env.http_git(env.dir.path(), "alice", password);
    let plain = format!("http://127.0.0.1:{}/git/remote.git", server.port);
    // A helper that answers only when it may not prompt, as git and GCM then behave.
    std::fs::write(
        env.home.join(".gitconfig"),
        format!(
            "[credential]\n\thelper = \"!f() {{ test \\\"$GIT_TERMINAL_PROMPT\\\" = 0 || exit 1; \
             echo username=alice; echo password={password}; }}; f\"\n"
        ),
    )
    .unwrap();
    let (code, out, err) =
        run(env
            .cru()
            .env_remove("GIT_TERMINAL_PROMPT")
            .args(["list", "--repository", &plain]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Dockerfile:gcr.io/project/app:1.0\ndeploy/app.yaml:bitnami/nginx:1.24\n"
    );
    assert!(!err.contains(password), "{err}");
}
