//! `cru serve` end to end: the binary on a free loopback port against real bare repositories
//! (checked with the `git` command line) and the real distribution registry, driven with
//! reqwest as any client would.

#[path = "support/git.rs"]
mod git_support;
mod support;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git_support::{run, Env};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::registry::Registry;

const TOKEN: &str = "s3cret-token-for-tests";

/// A running `cru serve`, killed on drop; its stderr is collected.
struct Service {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
    client: Client,
}

impl Service {
    /// Starts `cru serve --repository <bare> ARGS` with the token in `$CRU_SERVE_TOKEN`.
    fn start(env: &Env, repository: impl AsRef<OsStr>, args: &[&str]) -> Service {
        Service::start_with(env, repository, args, Some(TOKEN))
    }

    fn start_with(
        env: &Env,
        repository: impl AsRef<OsStr>,
        args: &[&str],
        token: Option<&str>,
    ) -> Service {
        Service::launch(env.cru(), repository, args, token)
    }

    /// Starts `cru serve` as `start` does, under `ulimit -n files`.
    fn start_with_open_files(
        env: &Env,
        repository: impl AsRef<OsStr>,
        args: &[&str],
        files: usize,
    ) -> Service {
        let cru = env.cru();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("ulimit -n {files} && exec \"$0\" \"$@\"")])
            .arg(cru.get_program());
        for (key, value) in cru.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = cru.get_current_dir() {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::null());
        Service::launch(cmd, repository, args, Some(TOKEN))
    }

    fn launch(
        mut cmd: Command,
        repository: impl AsRef<OsStr>,
        args: &[&str],
        token: Option<&str>,
    ) -> Service {
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1",
            "--port",
            "0",
            "--repository",
        ])
        .arg(repository)
        .args(args)
        .env_remove("CRU_SERVE_TOKEN")
        .env_remove("PORT")
        .stderr(Stdio::piped());
        if let Some(token) = token {
            cmd.env("CRU_SERVE_TOKEN", token);
        }
        let mut child = cmd.spawn().expect("cru serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split(" on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "cru serve did not start listening:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Service {
            child,
            base: format!("http://{addr}"),
            log,
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        }
    }

    fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(Some(TOKEN), body.to_string().into_bytes())
    }

    fn post_raw(&self, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut request = self.client.post(&self.base).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().expect("cru serve answers");
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status {status}: not JSON ({e}): {text}"));
        (status, value)
    }

    fn health(&self) -> u16 {
        self.client
            .get(format!("{}/healthz", self.base))
            .send()
            .expect("cru serve answers")
            .status()
            .as_u16()
    }

    /// Waits for `/healthz` to answer `expected` (its answers are kept a few seconds).
    fn health_becomes(&self, expected: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.health();
            if status == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/healthz still answers {status}, not {expected}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log line holding every one of `parts`, waited for (stderr is read by a thread).
    fn log_line(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {parts:?} in:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&mut self) -> i32 {
        let pid = self.child.id().to_string();
        let (code, _, err) = run(std::process::Command::new("kill").args(["-TERM", &pid]));
        assert_eq!(code, 0, "kill: {err}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "cru serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn update(refs: &[&str], message: &str) -> Value {
    json!({"image-references": refs, "commit-message": message, "matching-tag": false})
}

fn subjects(env: &Env, bare: &Path) -> Vec<String> {
    env.git(bare, &["log", "--format=%s", "main"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn install_hook(bare: &Path, name: &str, script: &str) {
    let hook = bare.join("hooks").join(name);
    std::fs::write(&hook, script).unwrap();
    let mut perms = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap();
}

/// Runs `cru serve --repository <bare> ARGS`, which must refuse to start with a usage error
/// (exit 2); returns its stderr.
fn refused_at_start(env: &Env, bare: &Path, args: &[&str], token: Option<&str>) -> String {
    let mut cmd = env.cru();
    cmd.args(["serve", "--port", "0", "--repository"])
        .arg(bare)
        .args(args)
        .env_remove("CRU_SERVE_TOKEN");
    if let Some(token) = token {
        cmd.env("CRU_SERVE_TOKEN", token);
    }
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 2, "{err}");
    err
}

const FILES: &[(&str, &str)] = &[
    (
        "deploy/app.yaml",
        "spec:\n  image: gcr.io/project/app:1.0\n  sidecar: bitnami/nginx:1.24\n",
    ),
    ("Dockerfile", "FROM gcr.io/project/app:1.0\n"),
    ("docs/notes.md", "gcr.io/project/app:0.9 is old\n"),
];

#[test]
fn updates_commits_pushes_and_answers_like_the_go_tool() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let service = Service::start(&env, &bare, &["--username", "Bot", "--email", "bot@ci"]);

    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "bump app to 1.1"));
    assert_eq!(status, 200, "{answer}");
    let head = env.rev(&bare, "main");
    assert_eq!(answer["commit-sha"], head);
    // One structured log line per request.
    let line = service.log_line(&["INFO: request", "status=200"]);
    for part in [
        "method=POST",
        "path=/",
        "duration_ms=",
        "references=gcr.io/project/app:1.1",
        &format!("commit={head}"),
    ] {
        assert!(line.contains(part), "{part} not in {line}");
    }
    assert_eq!(answer["git-url"], bare.display().to_string());
    assert_eq!(
        answer["files"],
        json!(["Dockerfile", "deploy/app.yaml", "docs/notes.md"])
    );
    assert_eq!(
        env.show(&bare, "main", "deploy/app.yaml"),
        "spec:\n  image: gcr.io/project/app:1.1\n  sidecar: bitnami/nginx:1.24\n"
    );
    assert_eq!(
        env.git(&bare, &["log", "-1", "--format=%an <%ae>|%s", "main"])
            .trim(),
        "Bot <bot@ci>|bump app to 1.1"
    );

    // With matching-tag only references with the same tag change (none here): no commit,
    // and the answer leaves out files and commit-sha.
    let (status, answer) = service.post(&json!({
        "image-references": ["gcr.io/project/app:1.0"],
        "commit-message": "refresh",
        "matching-tag": true
    }));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"git-url": bare.display().to_string()}));
    assert_eq!(env.rev(&bare, "main"), head);

    // Someone else pushes: the next request starts from their commit.
    let other = env.path("other");
    env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    std::fs::write(other.join("extra.yaml"), "image: bitnami/nginx:1.24\n").unwrap();
    env.git(&other, &["add", "-A"]);
    env.git(&other, &["commit", "-q", "-m", "someone else"]);
    env.git(&other, &["push", "-q", "origin", "main"]);
    let (status, answer) = service.post(&update(&["bitnami/nginx:1.25"], "nginx 1.25"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["files"], json!(["deploy/app.yaml", "extra.yaml"]));
    assert_eq!(
        subjects(&env, &bare),
        ["nginx 1.25", "someone else", "bump app to 1.1", "initial"]
    );
    assert!(!service.log().contains(TOKEN), "{}", service.log());
}

#[test]
#[allow(clippy::print_stderr)]
fn a_hundred_concurrent_requests_all_land_in_a_linear_history() {
    let env = Env::new();
    let files: Vec<(String, String)> = (0..100)
        .map(|i| {
            (
                format!("apps/app{i:03}.yaml"),
                format!("image: gcr.io/project/app{i:03}:1.0\n"),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let bare = env.bare_repo("many", &borrowed, &[]);
    let service = Arc::new(Service::start(&env, &bare, &[]));

    let started = Instant::now();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let service = service.clone();
                scope.spawn(move || {
                    service.post(&update(
                        &[&format!("gcr.io/project/app{i:03}:2.0")],
                        &format!("app{i:03} to 2.0"),
                    ))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    eprintln!(
        "100 concurrent requests answered in {:.2} s: {:.1} requests/s",
        elapsed.as_secs_f64(),
        100.0 / elapsed.as_secs_f64()
    );

    let mut shas = std::collections::HashSet::new();
    for (i, (status, answer)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "request {i}: {answer}");
        assert_eq!(answer["files"], json!([format!("apps/app{i:03}.yaml")]));
        assert!(shas.insert(answer["commit-sha"].as_str().unwrap().to_string()));
    }
    let history = env.git(&bare, &["rev-list", "main"]);
    assert_eq!(history.lines().count(), 101, "one commit per request");
    assert_eq!(env.git(&bare, &["rev-list", "--merges", "main"]), "");
    for sha in &shas {
        assert!(history.contains(sha.as_str()), "{sha} is not in main");
    }
    for i in 0..100 {
        assert_eq!(
            env.show(&bare, "main", &format!("apps/app{i:03}.yaml")),
            format!("image: gcr.io/project/app{i:03}:2.0\n")
        );
    }
}

#[test]
fn only_a_valid_bearer_token_gets_in_and_health_needs_none() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let before = env.rev(&bare, "main");
    let service = Service::start(&env, &bare, &[]);
    let body = update(&["gcr.io/project/app:9"], "m")
        .to_string()
        .into_bytes();

    for token in [None, Some("wrong"), Some("s3cret-token-for-test"), Some("")] {
        let (status, answer) = service.post_raw(token, body.clone());
        assert_eq!(status, 401, "{token:?}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("Bearer"));
    }
    let basic = service
        .client
        .post(&service.base)
        .basic_auth("user", Some(TOKEN))
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401);
    assert_eq!(basic.headers()["www-authenticate"], "Bearer");
    assert_eq!(service.health(), 200);
    assert_eq!(env.rev(&bare, "main"), before);
    service.log_line(&["request failed", "status=401", "missing or invalid token"]);
    let log = service.log();
    assert!(!log.contains(TOKEN), "{log}");
}

#[test]
fn starts_only_with_a_token_and_valid_patterns_or_with_insecure_no_auth() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let err = refused_at_start(&env, &bare, &[], None);
    assert!(
        err.contains("CRU_SERVE_TOKEN") && err.contains("--token-file"),
        "{err}"
    );

    let empty = env.path("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let err = refused_at_start(
        &env,
        &bare,
        &["--token-file", empty.to_str().unwrap()],
        None,
    );
    assert!(err.contains("empty"), "{err}");

    let err = refused_at_start(&env, &bare, &["--allow", "gcr.io/(unclosed"], Some(TOKEN));
    assert!(err.contains("--allow"), "{err}");

    let service = Service::start_with(&env, &bare, &["--insecure-no-auth"], None);
    let (status, answer) = service.post_raw(
        None,
        update(&["gcr.io/project/app:1.1"], "no auth")
            .to_string()
            .into_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    assert!(service.log().contains("--insecure-no-auth"));
}

#[test]
fn a_token_file_is_read_and_trimmed() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let file = env.path("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let service = Service::start_with(
        &env,
        &bare,
        &["--token-file", file.to_str().unwrap()],
        Some("another-token-in-the-environment"),
    );
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "from file"));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn bad_requests_are_refused_with_a_reason_and_change_nothing() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let before = env.rev(&bare, "main");
    let service = Service::start(
        &env,
        &bare,
        &["--allow", "gcr\\.io/project/.*", "--max-body", "2048"],
    );
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"{not json".to_vec(), 400, "invalid request body"),
        (
            update(&["gcr.io/project/app:1.1"], "")
                .to_string()
                .into_bytes(),
            400,
            "commit-message is empty",
        ),
        (
            update(&["gcr.io/project/App:1.1"], "m")
                .to_string()
                .into_bytes(),
            400,
            "is not a reference",
        ),
        (
            json!({"image-references": ["gcr.io/project/app:2"]})
                .to_string()
                .into_bytes(),
            400,
            "commit-message",
        ),
        (
            update(&["bitnami/nginx:1.25"], "m")
                .to_string()
                .into_bytes(),
            403,
            "docker.io/bitnami/nginx",
        ),
        (
            update(&[&format!("gcr.io/project/app:{}", "1".repeat(4000))], "m")
                .to_string()
                .into_bytes(),
            413,
            "length limit",
        ),
        // Regression: git refused the NUL only at the commit, answered as a 502.
        (
            update(&["gcr.io/project/app:1.1"], "bump\0app")
                .to_string()
                .into_bytes(),
            400,
            "NUL",
        ),
    ];
    for (body, expected, reason) in cases {
        let (status, answer) = service.post_raw(Some(TOKEN), body);
        assert_eq!(status, expected, "{answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(reason), "{expected}: {message}");
    }
    assert_eq!(env.rev(&bare, "main"), before);
    // The service is still fine.
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "ok"));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn a_push_refused_by_a_hook_answers_502_and_the_next_request_starts_clean() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    install_hook(
        &bare,
        "pre-receive",
        "#!/bin/sh\nwhile read old new ref; do\n  if git log --format=%s \"$old..$new\" | grep -q forbidden; then\n    echo 'policy: forbidden commits are refused' >&2\n    exit 1\n  fi\ndone\n",
    );
    let before = env.rev(&bare, "main");
    // Over git daemon: hooks run on the server (a push into a path is cru's own
    // compare-and-swap, which runs none).
    let daemon = env.git_daemon(env.dir.path());
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let service = Service::start(&env, &url, &[]);

    let (status, answer) = service.post(&update(&["gcr.io/project/app:6.6"], "forbidden bump"));
    assert_eq!(status, 502, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains("push failed"), "{message}");
    assert!(
        message.contains("forbidden commits are refused"),
        "{message}"
    );
    assert_eq!(env.rev(&bare, "main"), before);
    assert_eq!(service.health(), 200);

    let (status, answer) = service.post(&update(&["bitnami/nginx:1.25"], "nginx"));
    assert_eq!(status, 200, "{answer}");
    // Only this request's change: the refused one was reset away.
    assert_eq!(
        env.show(&bare, "main", "deploy/app.yaml"),
        "spec:\n  image: gcr.io/project/app:1.0\n  sidecar: bitnami/nginx:1.25\n"
    );
    assert_eq!(subjects(&env, &bare), ["nginx", "initial"]);
}

#[test]
fn health_fails_when_the_repository_is_gone() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let service = Service::start(&env, &bare, &[]);
    assert_eq!(service.health(), 200);
    let moved = env.path("moved.git");
    std::fs::rename(&bare, &moved).unwrap();
    service.health_becomes(503);
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "m"));
    assert_eq!(status, 502, "{answer}");
    std::fs::rename(&moved, &bare).unwrap();
    service.health_becomes(200);
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "m"));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn sigterm_during_a_push_answers_the_request_then_exits() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    install_hook(&bare, "pre-receive", "#!/bin/sh\ncat >/dev/null\nsleep 2\n");
    let daemon = env.git_daemon(env.dir.path());
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let mut service = Service::start(&env, &url, &[]);
    let client = service.client.clone();
    let base = service.base.clone();
    let request = std::thread::spawn(move || {
        let response = client
            .post(&base)
            .bearer_auth(TOKEN)
            .body(update(&["gcr.io/project/app:1.1"], "in flight").to_string())
            .send()
            .expect("answered before the service stopped");
        (
            response.status().as_u16(),
            serde_json::from_str::<Value>(&response.text().unwrap()).unwrap(),
        )
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !service.log().contains("committed") {
        assert!(Instant::now() < deadline, "{}", service.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Committed locally, push in progress (the hook sleeps): now stop.
    let code = service.terminate();
    let (status, answer) = request.join().unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["commit-sha"], env.rev(&bare, "main"));
    assert_eq!(code, 0, "{}", service.log());
    let log = service.log();
    let pushed = log.find("pushed").expect("pushed");
    let stopping = log.find("shutting down").expect("shutting down");
    assert!(stopping < pushed, "the signal came during the push:\n{log}");
}

#[test]
fn resolve_digest_pins_the_reference_with_the_registry() {
    let reg = Registry::start();
    let host = reg.host();
    let digest = reg.push_oci("team/app", "a", &["2.0"]);
    let env = Env::new();
    let text = format!("image: {host}/team/app:1.0\n");
    let bare = env.bare_repo("remote", &[("app.yaml", text.as_str())], &[]);
    let service = Service::start(&env, &bare, &[]);
    let (status, answer) = service.post(&json!({
        "image-references": [format!("{host}/team/app:2.0")],
        "commit-message": "app 2.0, pinned",
        "resolve-digest": true
    }));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        env.show(&bare, "main", "app.yaml"),
        format!("image: {host}/team/app:2.0@{digest}\n")
    );
    // A tag the registry does not have: 502 with the registry's answer, nothing pushed.
    let before = env.rev(&bare, "main");
    let (status, answer) = service.post(&json!({
        "image-references": [format!("{host}/team/app:3.0")],
        "commit-message": "missing",
        "resolve-digest": true
    }));
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("3.0"),
        "{answer}"
    );
    assert_eq!(env.rev(&bare, "main"), before);
}

#[test]
fn a_bump_request_moves_the_named_repositories_to_their_newest_allowed_tag() {
    let reg = Registry::start();
    let host = reg.host();
    reg.push_oci("team/app", "a", &["1.0.0", "1.0.3", "1.2.0", "2.0.0"]);
    let pinned = reg.push_oci("team/db", "old", &["5.0.0"]);
    let db = reg.push_oci("team/db", "new", &["5.0.1"]);
    let env = Env::new();
    let text = format!(
        "a: {host}/team/app:1.0.0\nb: {host}/team/db:5.0.0@{pinned}\nc: {host}/team/other:1.0.0\n"
    );
    let bare = env.bare_repo("remote", &[("app.yaml", text.as_str())], &[]);
    let service = Service::start(&env, &bare, &[]);
    let (status, answer) = service.post(&json!({
        "image-references": [format!("{host}/team/app"), format!("{host}/team/db")],
        "commit-message": "bump",
        "bump": "minor"
    }));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        env.show(&bare, "main", "app.yaml"),
        format!(
            "a: {host}/team/app:1.2.0\nb: {host}/team/db:5.0.1@{db}\nc: {host}/team/other:1.0.0\n"
        ),
        "the pinned one gets its new tag's digest; a repository not named stays"
    );
    // A repository the registry does not have: 502, nothing pushed.
    let before = env.rev(&bare, "main");
    let (status, answer) = service.post(&json!({
        "image-references": [format!("{host}/team/other")],
        "commit-message": "missing",
        "bump": "major"
    }));
    assert_eq!(status, 502, "{answer}");
    assert_eq!(env.rev(&bare, "main"), before);
}

#[test]
fn a_dry_run_reports_the_files_and_pushes_nothing() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let before = env.rev(&bare, "main");
    let service = Service::start(&env, &bare, &["--dry-run", "deploy"]);
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "dry"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["files"], json!(["deploy/app.yaml"]));
    assert!(answer.get("commit-sha").is_none(), "{answer}");
    assert_eq!(env.rev(&bare, "main"), before);
}

#[test]
fn paths_outside_the_repository_are_refused_at_start() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let err = refused_at_start(&env, &bare, &["../.."], Some(TOKEN));
    assert!(err.contains("outside the repository"), "{err}");
}

#[test]
fn a_password_in_the_repository_url_is_never_answered_or_logged() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let password = "s3cret-Pa55word";
    let server = env.http_git(env.dir.path(), "alice", password);
    let url = format!(
        "http://alice:{password}@127.0.0.1:{}/git/remote.git",
        server.port
    );
    let service = Service::start(&env, &url, &["--verbose"]);
    assert_eq!(service.health(), 200);
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "over http"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["commit-sha"], env.rev(&bare, "main"));
    let shown = answer["git-url"].as_str().unwrap();
    assert!(
        shown.contains("127.0.0.1") && !shown.contains(password),
        "{shown}"
    );
    // Nothing left to change: answered without a commit.
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "no change"));
    assert_eq!(status, 200, "{answer}");
    // The repository goes: the failure names it, still redacted.
    std::fs::rename(&bare, env.path("gone.git")).unwrap();
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.2"], "gone"));
    assert_eq!(status, 502, "{answer}");
    assert!(!answer.to_string().contains(password), "{answer}");
    service.health_becomes(503);
    let log = service.log();
    assert!(!log.contains(password), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
}

#[test]
fn the_port_comes_from_the_port_variable_when_not_given() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let port = git_support::free_port();
    let mut child = env
        .cru()
        .args(["serve", "--listen", "127.0.0.1", "--repository"])
        .arg(&bare)
        .env("PORT", port.to_string())
        .env("CRU_SERVE_TOKEN", TOKEN)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        match client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
        {
            Ok(response) => break response.status().as_u16(),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("nothing answers on $PORT {port}: {e}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
}

/// A TCP proxy in front of a real git server that counts the connections it is given and,
/// once told to stall, accepts new ones and never answers: what a hung git server does.
struct GitProxy {
    port: u16,
    connections: Arc<AtomicUsize>,
    stall: Arc<AtomicBool>,
}

impl GitProxy {
    fn start(upstream: u16) -> GitProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stall = Arc::new(AtomicBool::new(false));
        let (counted, stalling) = (connections.clone(), stall.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                counted.fetch_add(1, Ordering::SeqCst);
                if stalling.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        GitProxy {
            port,
            connections,
            stall,
        }
    }

    fn url(&self, repository: &str) -> String {
        format!("git://127.0.0.1:{}/{repository}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn stall(&self) {
        self.stall.store(true, Ordering::SeqCst);
    }

    /// New connections reach the git server again (held ones stay stalled).
    fn resume(&self) {
        self.stall.store(false, Ordering::SeqCst);
    }
}

/// This process's soft limit on open files.
fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line["Max open files".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_path_replaced_by_a_symlink_out_of_the_clone_is_refused_on_the_next_request() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let outside = env.path("host-folder");
    std::fs::create_dir(&outside).unwrap();
    let host_file = "spec:\n  image: gcr.io/project/app:1.0\n";
    std::fs::write(outside.join("app.yaml"), host_file).unwrap();
    let service = Service::start(&env, &bare, &["deploy"]);

    // A commit replaces the PATH folder with a link to a folder on the service's host.
    let other = env.path("other");
    env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    std::fs::remove_dir_all(other.join("deploy")).unwrap();
    std::os::unix::fs::symlink(&outside, other.join("deploy")).unwrap();
    env.git(&other, &["add", "-A"]);
    env.git(&other, &["commit", "-q", "-m", "deploy is a link"]);
    env.git(&other, &["push", "-q", "origin", "main"]);
    let before = env.rev(&bare, "main");

    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "bump"));
    assert_eq!(status, 409, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(
        message.contains("deploy") && message.contains("outside the repository"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("app.yaml")).unwrap(),
        host_file
    );
    assert_eq!(env.rev(&bare, "main"), before);
}

#[test]
#[allow(clippy::print_stderr)]
fn half_sent_requests_neither_keep_clients_out_nor_stay_open() {
    // The case: 1,100 half-sent requests against a service allowed 1,024 open files.
    // This process holds them all, so it needs that many descriptors itself.
    let count = 1100.min(open_files_limit().saturating_sub(100));
    eprintln!("holding {count} half-sent requests");
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let service = Service::start_with_open_files(&env, &bare, &[], 1024);
    let addr = service.base.trim_start_matches("http://").to_string();
    let mut half_open: Vec<TcpStream> = (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(&addr).unwrap();
            stream.write_all(b"GET /healthz HT").unwrap();
            stream
        })
        .collect();

    // Answered while they are held: well before the 10 s the service gives a request head.
    let client = Client::builder()
        .timeout(Duration::from_secs(8))
        .build()
        .unwrap();
    let asked = Instant::now();
    let health = client
        .get(format!("{}/healthz", service.base))
        .send()
        .expect("answered despite the half-sent requests");
    assert_eq!(health.status().as_u16(), 200);
    eprintln!(
        "/healthz answered in {} ms beside them",
        asked.elapsed().as_millis()
    );
    // A kept-alive connection left idle after its request is closed too.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: cru\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    half_open.push(idle);

    // Every one of them is closed by the service: made room for others, or timed out.
    for stream in &mut half_open {
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("a half-sent request is still open: {e}"),
        }
    }
}

#[test]
fn health_checks_share_one_probe_of_the_git_server() {
    let env = Env::new();
    env.bare_repo("remote", FILES, &[]);
    let daemon = env.git_daemon(env.dir.path());
    let proxy = GitProxy::start(daemon.port);
    let service = Service::start(&env, proxy.url("remote.git"), &[]);
    let before = proxy.connections();

    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50).map(|_| scope.spawn(|| service.health())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let probes = proxy.connections() - before;
    assert!(
        (1..=2).contains(&probes),
        "50 health checks made {probes} git connections"
    );
}

#[test]
fn a_stalling_git_server_fails_requests_in_bounded_time_and_the_service_recovers() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let before = env.rev(&bare, "main");
    let daemon = env.git_daemon(env.dir.path());
    let proxy = GitProxy::start(daemon.port);
    let mut service = Service::start(&env, proxy.url("remote.git"), &["--request-timeout", "2"]);
    assert_eq!(service.health(), 200);

    proxy.stall();
    // The first request's fetch hangs; the second waits behind it. Both are answered, and
    // neither is a success: the git layer's bounds (the request timeout) free the worker.
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| service.post(&update(&["gcr.io/project/app:1.1"], "one")));
        std::thread::sleep(Duration::from_millis(300));
        let second = scope.spawn(|| service.post(&update(&["bitnami/nginx:1.25"], "two")));
        (first.join().unwrap(), second.join().unwrap())
    });
    for (status, answer) in [&first, &second] {
        assert!([502, 503, 504].contains(status), "{status}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("did not finish")
                || error.contains("nothing was changed")
                || error.contains("timed out"),
            "{error}"
        );
    }
    // While the git server stalls, health says so.
    service.health_becomes(503);
    assert_eq!(env.rev(&bare, "main"), before, "nothing was pushed");

    // Once it answers again, so does the service: health, and a request that lands alone.
    proxy.resume();
    service.health_becomes(200);
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.3"], "three"));
    assert_eq!(status, 200, "{answer}");
    let subjects = subjects(&env, &bare);
    assert_eq!(subjects[0], "three", "{subjects:?}");
    assert!(
        !subjects.iter().any(|s| s == "one" || s == "two"),
        "{subjects:?}"
    );

    let code = service.terminate();
    assert_eq!(code, 0, "{}", service.log());
}

/// Connects to the service and sends `bytes`, leaving the connection open.
fn send_partial(service: &Service, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(service.base.trim_start_matches("http://")).unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

#[test]
fn a_body_that_does_not_arrive_in_time_answers_408() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let before = env.rev(&bare, "main");
    let service = Service::start(&env, &bare, &["--request-timeout", "1"]);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: cru\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"image-"
    );
    let mut stream = send_partial(&service, head.as_bytes());
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 1 s"), "{answer}");
    assert_eq!(env.rev(&bare, "main"), before);
}

#[test]
fn the_connection_limit_is_lowered_to_fit_the_open_file_limit() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let service = Service::start_with_open_files(&env, &bare, &[], 256);
    service.log_line(&[
        "--max-connections 512",
        "open-file limit (256)",
        "using 192",
    ]);
    assert_eq!(service.health(), 200);
}

#[test]
fn sigterm_with_half_sent_requests_open_still_exits() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let mut service = Service::start(&env, &bare, &[]);
    let _half_open: Vec<TcpStream> = (0..5)
        .map(|_| send_partial(&service, b"GET /healthz HT"))
        .collect();
    let _idle = send_partial(&service, b"");
    assert_eq!(service.health(), 200);
    assert_eq!(service.terminate(), 0, "{}", service.log());
    service.log_line(&["stopped"]);
}

#[test]
fn a_probe_stuck_on_a_stalling_git_server_is_never_joined_by_another() {
    let env = Env::new();
    env.bare_repo("remote", FILES, &[]);
    let daemon = env.git_daemon(env.dir.path());
    let proxy = GitProxy::start(daemon.port);
    let service = Service::start(&env, proxy.url("remote.git"), &[]);
    proxy.stall();
    let before = proxy.connections();

    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20).map(|_| scope.spawn(|| service.health())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    // Past the time an answer is kept, the stuck probe still blocks a new one.
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
        assert_eq!(service.health(), 503);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(proxy.connections() - before, 1, "one probe, stuck");
    service.log_line(&["has not returned yet"]);
}

#[test]
fn a_port_in_use_is_reported_once_with_its_cause() {
    let env = Env::new();
    let bare = env.bare_repo("remote", FILES, &[]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut cmd = env.cru();
    cmd.args(["serve", "--listen", "127.0.0.1", "--port", &port])
        .arg("--repository")
        .arg(&bare)
        .env("CRU_SERVE_TOKEN", TOKEN);
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!("serving on 127.0.0.1:{port}: ")),
        "{err}"
    );
    assert_eq!(err.matches("os error").count(), 1, "the cause once: {err}");
}

#[test]
fn each_request_honours_the_configuration_file_of_the_branchs_tip() {
    let env = Env::new();
    let mut files = FILES.to_vec();
    files.push((".cru.yaml", "exclude: [docs/]\n"));
    let bare = env.bare_repo("remote", &files, &[]);
    let service = Service::start(&env, &bare, &[]);

    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "app 1.1"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["files"],
        json!(["Dockerfile", "deploy/app.yaml"]),
        "docs/ is excluded by the repository's .cru.yaml"
    );

    // Someone changes the configuration: the next request reads the new one.
    let other = env.path("other");
    env.git(
        env.dir.path(),
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    std::fs::write(
        other.join(".cru.yaml"),
        "rules:\n  - match: {files: 'Dockerfile'}\n    ignore: true\n",
    )
    .unwrap();
    env.git(&other, &["commit", "-qam", "configure cru"]);
    env.git(&other, &["push", "-q", "origin", "main"]);
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.2"], "app 1.2"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["files"], json!(["deploy/app.yaml", "docs/notes.md"]));
    assert_eq!(
        env.show(&bare, "main", "Dockerfile"),
        "FROM gcr.io/project/app:1.1\n"
    );

    // A broken file refuses the request with its line and changes nothing.
    env.git(&other, &["pull", "-q", "--ff-only", "origin", "main"]);
    std::fs::write(other.join(".cru.yaml"), "jobs: 0\n").unwrap();
    env.git(&other, &["commit", "-qam", "break it"]);
    env.git(&other, &["push", "-q", "origin", "main"]);
    let before = env.rev(&bare, "main");
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.3"], "app 1.3"));
    assert_eq!(status, 409, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(message.contains(".cru.yaml:1:7: jobs: 0"), "{message}");
    assert_eq!(env.rev(&bare, "main"), before);
}

#[test]
fn warnings_of_a_request_are_answered_and_logged_with_its_number() {
    let env = Env::new();
    let files = [
        (
            "chart/Chart.yaml",
            "apiVersion: v2\nname: c\nversion: 0.1.0\nappVersion: \"1.0\"\n",
        ),
        (
            "chart/values.yaml",
            "image:\n  repository: gcr.io/project/app\n  tag: \"\"\n",
        ),
        ("Dockerfile", "FROM gcr.io/project/app:1.0\n"),
    ];
    let bare = env.bare_repo("remote", &files, &[]);
    let service = Service::start(&env, &bare, &[]);

    // The first request warns about nothing: the answer has no `warnings`.
    let (status, answer) = service.post(&update(&["bitnami/nginx:1.25"], "nothing"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"git-url": bare.display().to_string()}));

    // The chart's tag is its appVersion: left alone, and the answer says so.
    let (status, answer) = service.post(&update(&["gcr.io/project/app:1.1"], "app 1.1"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["files"], json!(["Dockerfile"]));
    let warnings = answer["warnings"].as_array().expect("warnings answered");
    assert_eq!(warnings.len(), 1, "{answer}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.contains("chart/values.yaml")
            && warning.contains("left alone: the tag is the chart's appVersion"),
        "{warning}"
    );
    // Logged once, under the request's number.
    service.log_line(&["WARNING: request 2: ", "left alone"]);
    assert_eq!(service.log().matches("left alone").count(), 1);
}
