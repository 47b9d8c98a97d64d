//! The registry layer against the real distribution registry, checked with skopeo, and
//! through the fault-injecting proxy for retries, rate limits and request counts; hostile
//! registries (lying, stalling, flooding, sending credentials elsewhere) are in-process fakes.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cru::reference::Reference;
use cru::registry::{Error, Failure, Platform, Resolver, ResolverOptions, RetryPolicy};
use cru::report::{Collect, SharedReporter};
use support::fake::{fake_manifest, FakeRegistry, Hostile, Reply, Seen};
use support::registry::{sha256, Proxy, Registry};

/// Options isolated from the user's settings: an empty registries.conf and docker config.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("registries.conf"), "").unwrap();
        std::fs::create_dir(dir.path().join("docker")).unwrap();
        Env { dir }
    }

    fn with_registries_conf(self, text: &str) -> Env {
        std::fs::write(self.dir.path().join("registries.conf"), text).unwrap();
        self
    }

    fn with_docker_config(self, json: &str) -> Env {
        std::fs::write(self.dir.path().join("docker/config.json"), json).unwrap();
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn options(&self) -> ResolverOptions {
        ResolverOptions {
            registries_conf: Some(self.dir.path().join("registries.conf")),
            docker_config: Some(self.dir.path().join("docker")),
            retry: RetryPolicy {
                base_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(500),
                ..RetryPolicy::default()
            },
            ..ResolverOptions::default()
        }
    }

    fn resolver(&self) -> Resolver {
        Resolver::new(self.options()).unwrap()
    }
}

fn refs(host: &str, names: &[&str]) -> Vec<Reference> {
    names
        .iter()
        .map(|n| Reference::parse(&format!("{host}/{n}")).unwrap())
        .collect()
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn digests_of_each_manifest_kind_match_skopeo() {
    let reg = Registry::start();
    let oci = reg.push_oci("app/oci", "a", &["1.0"]);
    let docker = reg.push_docker("app/docker", "b", &["2.0"]);
    let (index, _, _) = reg.push_index("app/multi", "c", &["3.0"]);
    let env = Env::new();
    let got = env
        .resolver()
        .resolve_digests(&refs(
            &reg.host(),
            &[
                "app/multi:3.0",
                "app/oci:1.0",
                "app/docker:2.0",
                "app/oci:1.0",
            ],
        ))
        .unwrap();
    assert_eq!(
        got,
        [index.clone(), oci.clone(), docker.clone(), oci.clone()]
    );
    assert_eq!(reg.skopeo_digest("app/oci:1.0"), oci);
    assert_eq!(reg.skopeo_digest("app/docker:2.0"), docker);
    assert_eq!(reg.skopeo_digest("app/multi:3.0"), index);
}

#[test]
fn platform_picks_the_platform_manifest() {
    let reg = Registry::start();
    let (index, amd64, arm64) = reg.push_index("multi", "p", &["1"]);
    let oci = reg.push_oci("single", "s", &["1"]);
    let env = Env::new();
    let with = |p: &str| {
        Resolver::new(ResolverOptions {
            platform: Some(p.parse::<Platform>().unwrap()),
            ..env.options()
        })
        .unwrap()
    };
    let r = refs(&reg.host(), &["multi:1", "single:1"]);
    assert_eq!(
        with("linux/arm64").resolve_digests(&r).unwrap(),
        [arm64.clone(), oci.clone()]
    );
    assert_eq!(
        with("linux/arm64/v8").resolve_digests(&r).unwrap(),
        [arm64, oci.clone()]
    );
    assert_eq!(
        with("linux/amd64").resolve_digests(&r).unwrap(),
        [amd64, oci]
    );
    assert_eq!(reg.skopeo_digest("multi:1"), index);
    match with("linux/s390x").resolve_digests(&r[..1]) {
        Err(Error {
            failure: Failure::PlatformNotFound(available),
            platform,
            ..
        }) => {
            assert_eq!(platform.as_deref(), Some("linux/s390x"));
            assert_eq!(available, ["linux/amd64", "linux/arm64/v8"])
        }
        other => panic!("expected PlatformNotFound, got {other:?}"),
    }
}

#[test]
fn missing_tag_fails_naming_reference_and_registry_after_all_lookups() {
    let reg = Registry::start();
    reg.push_oci("app", "a", &["1"]);
    let err = Env::new()
        .resolver()
        .resolve_digests(&refs(&reg.host(), &["app:1", "app:nope", "other:1"]))
        .unwrap_err();
    assert_eq!(
        err,
        Error {
            reference: format!("{}/app:nope", reg.host()),
            registry: reg.host(),
            platform: None,
            failure: Failure::NotFound,
        }
    );
    assert!(err.to_string().contains("tag not found"), "{err}");
}

#[test]
fn registries_conf_location_and_mirror_serve_docker_hub_names() {
    let reg = Registry::start();
    let digest = reg.push_oci("library/python", "py", &["3.7"]);
    let names = [
        Reference::parse("docker.io/library/python:3.7").unwrap(),
        Reference::parse("python:3.7").unwrap(),
    ];
    let env = Env::new().with_registries_conf(&format!(
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"{}\"\n",
        reg.host()
    ));
    assert_eq!(
        env.resolver().resolve_digests(&names).unwrap(),
        [digest.clone(), digest.clone()]
    );

    // The mirror is asked first; the location (nothing listens there) is never needed.
    let env = Env::new().with_registries_conf(&format!(
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"127.0.0.1:9\"\n\
         [[registry.mirror]]\nlocation = \"{}\"\n",
        reg.host()
    ));
    assert_eq!(
        env.resolver().resolve_digests(&names[..1]).unwrap(),
        [digest]
    );
}

const USER: &str = "cru-user";
const PASSWORD: &str = "pw-Zq81-never-shown";

#[test]
fn credentials_from_plain_auths() {
    let reg = Registry::start_with_htpasswd(USER, PASSWORD);
    let digest = reg.push_oci("private/app", "x", &["1"]);
    let r = refs(&reg.host(), &["private/app:1"]);
    for entry in [
        format!(r#"{{"auth": "{}"}}"#, b64(&format!("{USER}:{PASSWORD}"))),
        format!(r#"{{"username": "{USER}", "password": "{PASSWORD}"}}"#),
    ] {
        let env = Env::new().with_docker_config(&format!(
            r#"{{"auths": {{"http://{}": {entry}}}}}"#,
            reg.host()
        ));
        assert_eq!(
            env.resolver().resolve_digests(&r).unwrap(),
            std::slice::from_ref(&digest)
        );
    }
    assert_eq!(reg.skopeo_digest("private/app:1"), digest);
}

#[test]
fn credentials_from_a_cred_helper_on_path() {
    let reg = Registry::start_with_htpasswd(USER, PASSWORD);
    let digest = reg.push_oci("private/app", "x", &["1"]);
    let env = Env::new().with_docker_config(&format!(
        r#"{{"credHelpers": {{"{}": "cru-test-helper"}}}}"#,
        reg.host()
    ));
    let bin = env.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-cru-test-helper");
    // The helper checks it is asked about this server, as docker's helpers are.
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$server\" = \"{}\" ] || exit 1\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            reg.host()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    prepend_path(&bin);
    let got = env
        .resolver()
        .resolve_digests(&refs(&reg.host(), &["private/app:1"]))
        .unwrap();
    assert_eq!(got, [digest]);
}

/// Adds a directory to this test process's PATH (helpers are found on PATH, like docker's).
fn prepend_path(dir: &Path) {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![PathBuf::from(dir)];
    paths.extend(std::env::split_paths(&old));
    std::env::set_var("PATH", std::env::join_paths(paths).unwrap());
}

#[test]
fn missing_or_wrong_credentials_are_unauthorized_and_never_shown() {
    let reg = Registry::start_with_htpasswd(USER, PASSWORD);
    reg.push_oci("private/app", "x", &["1"]);
    let r = refs(&reg.host(), &["private/app:1"]);

    let err = Env::new().resolver().resolve_digests(&r).unwrap_err();
    assert!(
        matches!(
            err,
            Error {
                failure: Failure::Unauthorized,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("docker login"), "{err}");

    let wrong = "wrong-Pw-77-secret";
    let env = Env::new().with_docker_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
        reg.host(),
        b64(&format!("{USER}:{wrong}"))
    ));
    let err = env.resolver().resolve_digests(&r).unwrap_err();
    assert!(
        matches!(
            err,
            Error {
                failure: Failure::Unauthorized,
                ..
            }
        ),
        "{err:?}"
    );
    let shown = format!("{err} {err:?} {:?}", env.options());
    assert!(
        !shown.contains(wrong) && !shown.contains(PASSWORD),
        "{shown}"
    );
}

#[test]
fn resolve_tags_finds_the_most_specific_of_250_tags_with_one_head_each() {
    let reg = Registry::start();
    let same = ["latest", "3", "3.2", "3.2.4"];
    let digest = reg.push_oci("many", "m", &same);
    let other: Vec<String> = (0..246).map(|i| format!("1.{i}")).collect();
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    reg.push_docker("many", "n", &other);
    let proxy = Proxy::start(&reg.url(), &[]);

    let choices = Env::new()
        .resolver()
        .resolve_tags(&refs(&proxy.host(), &["many:latest", "many:3.2"]))
        .unwrap();
    for choice in &choices {
        assert_eq!(choice.digest, digest);
        assert_eq!(choice.matching, ["3.2.4", "3.2", "3", "latest"]);
        assert_eq!(choice.best, "3.2.4");
    }
    let log = proxy.requests();
    let heads = log.iter().filter(|r| r.method == "HEAD").count();
    let lists = log.iter().filter(|r| r.path.contains("/tags/list")).count();
    let manifest_gets = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/manifests/"))
        .count();
    assert_eq!((heads, lists, manifest_gets), (250, 1, 0), "{log:?}");
}

#[test]
fn flaky_registry_still_gives_the_right_digests() {
    let reg = Registry::start();
    let mut want = Vec::new();
    let mut names = Vec::new();
    for i in 0..6 {
        let repo = format!("flaky/r{i}");
        want.push(reg.push_oci(&repo, &format!("f{i}"), &["1"]));
        names.push(format!("{repo}:1"));
    }
    let proxy = Proxy::start(
        &reg.url(),
        &["--fail-503", "0.3", "--drop", "0.05", "--seed", "7"],
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let got = Env::new()
        .resolver()
        .resolve_digests(&refs(&proxy.host(), &names))
        .unwrap();
    assert_eq!(got, want);
    let log = proxy.requests();
    assert!(
        log.iter().any(|r| r.status == "503"),
        "no fault was injected: {log:?}"
    );
}

#[test]
fn rate_limit_waits_for_retry_after_then_succeeds_warning_the_reporter_handed_in() {
    let reg = Registry::start();
    let (_, a, _) = reg.push_index("limited/a", "a", &["1"]);
    let (_, b, _) = reg.push_index("limited/b", "b", &["1"]);
    // One manifest GET per 2 s: the second platform lookup (a GET) is told to wait.
    let proxy = Proxy::start(&reg.url(), &["--rate-limit", "1/2"]);
    let collect = std::sync::Arc::new(Collect::default());
    let resolver = Resolver::new(ResolverOptions {
        platform: Some("linux/amd64".parse().unwrap()),
        reporter: SharedReporter::new(collect.clone()),
        ..Env::new().options()
    })
    .unwrap();
    let start = Instant::now();
    let got = resolver
        .resolve_digests(&refs(&proxy.host(), &["limited/a:1", "limited/b:1"]))
        .unwrap();
    assert_eq!(got, [a, b]);
    let log = proxy.requests();
    let limited = log.iter().filter(|r| r.status == "429").count();
    assert!(limited >= 1, "{log:?}");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "did not wait: {:?}",
        start.elapsed()
    );
    // The wait is told to the caller's reporter, not to the log.
    let warnings = collect.warnings();
    assert!(
        !warnings.is_empty()
            && warnings
                .iter()
                .all(|w| w.contains("rate limited (429); waiting")),
        "{warnings:?}"
    );
}

#[test]
fn registry_down_is_unreachable_naming_the_registry() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let resolver = Resolver::new(ResolverOptions {
        retry: RetryPolicy {
            retries: 2,
            base_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        ..Env::new().options()
    })
    .unwrap();
    let err = resolver
        .resolve_digests(&refs(&host, &["app:1"]))
        .unwrap_err();
    match &err {
        Error {
            failure: Failure::Unreachable(_),
            registry,
            ..
        } => assert_eq!(registry, &host),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&format!("cannot reach {host}")),
        "{err}"
    );
}

#[test]
fn one_head_per_unique_tag_and_no_manifest_get() {
    let reg = Registry::start();
    for repo in ["count/a", "count/b"] {
        reg.push_oci(repo, repo, &["1", "2", "3"]);
    }
    let proxy = Proxy::start(&reg.url(), &[]);
    let mut names = Vec::new();
    for _ in 0..3 {
        for repo in ["count/a", "count/b"] {
            for tag in ["1", "2", "3"] {
                names.push(format!("{repo}:{tag}"));
            }
        }
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let resolver = Env::new().resolver();
    resolver
        .resolve_digests(&refs(&proxy.host(), &names))
        .unwrap();
    // A second call on the same resolver (same run) asks nothing again.
    resolver
        .resolve_digests(&refs(&proxy.host(), &names))
        .unwrap();
    let log = proxy.requests();
    let kinds = |m: &str, p: &str| {
        log.iter()
            .filter(|r| r.method == m && r.path.contains(p))
            .count()
    };
    assert_eq!(kinds("HEAD", "/manifests/"), 6, "{log:?}");
    assert_eq!(kinds("GET", "/manifests/"), 0, "{log:?}");
    assert_eq!(log.len(), 7, "6 HEADs and one ping: {log:?}");
}

#[test]
fn one_token_per_repository_under_concurrency() {
    let fake = FakeRegistry::start();
    let mut names = Vec::new();
    for repo in ["t/a", "t/b", "t/c"] {
        for tag in ["1", "2", "3", "4", "5", "6"] {
            names.push(format!("{repo}:{tag}"));
        }
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let got = Env::new()
        .resolver()
        .resolve_digests(&refs(&fake.host(), &names))
        .unwrap();
    assert_eq!(got[0], sha256(fake_manifest("t/a", "1").as_bytes()));
    let log = fake.log();
    let tokens = |repo: &str| {
        log.iter()
            .filter(|l| l.contains("/token?") && l.contains(&repo.replace('/', "%2F")))
            .count()
    };
    assert_eq!(
        (tokens("t/a"), tokens("t/b"), tokens("t/c")),
        (1, 1, 1),
        "{log:#?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.starts_with("GET /v2/ ")).count(),
        1,
        "{log:#?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.starts_with("HEAD ")).count(),
        18,
        "{log:#?}"
    );
}

#[test]
fn head_without_digest_falls_back_to_get_and_hashes_the_body() {
    let fake = FakeRegistry::start();
    let got = Env::new()
        .resolver()
        .resolve_digests(&refs(&fake.host(), &["x/y:nodigest"]))
        .unwrap();
    assert_eq!(got, [sha256(fake_manifest("x/y", "nodigest").as_bytes())]);
    let manifest: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.contains("/manifests/"))
        .collect();
    assert_eq!(
        manifest,
        [
            "HEAD /v2/x/y/manifests/nodigest 200",
            "GET /v2/x/y/manifests/nodigest 200"
        ]
    );
}

#[test]
fn not_found_and_rate_limited_heads_are_never_retried_as_get() {
    let fake = FakeRegistry::start();
    let resolver = Env::new().resolver();
    let err = resolver
        .resolve_digests(&refs(&fake.host(), &["x/y:missing"]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error {
                failure: Failure::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
    let got = resolver
        .resolve_digests(&refs(&fake.host(), &["x/y:limited"]))
        .unwrap();
    assert_eq!(got, [sha256(fake_manifest("x/y", "limited").as_bytes())]);
    let manifest: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.contains("/manifests/"))
        .collect();
    assert_eq!(
        manifest,
        [
            "HEAD /v2/x/y/manifests/missing 404",
            "HEAD /v2/x/y/manifests/limited 429",
            "HEAD /v2/x/y/manifests/limited 200"
        ]
    );
}

/// Collects everything `tracing` emits, at every level, from the current thread.
fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

#[test]
fn passwords_never_reach_logs_or_errors_at_any_level() {
    let reg = Registry::start_with_htpasswd(USER, PASSWORD);
    reg.push_oci("private/app", "x", &["1"]);
    let r = refs(&reg.host(), &["private/app:1", "private/app:nope"]);
    let basic = b64(&format!("{USER}:{PASSWORD}"));
    let env = Env::new().with_docker_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "{basic}"}}}}}}"#,
        reg.host()
    ));
    let (result, logs) = capture_logs(|| env.resolver().resolve_digests(&r));
    let err = result.unwrap_err();
    let shown = format!("{logs}\n{err}\n{err:?}");
    assert!(logs.contains("resolving repository"), "{logs}");
    assert!(
        !shown.contains(PASSWORD) && !shown.contains(&basic),
        "{shown}"
    );
}

#[test]
fn tag_list_pages_are_followed_until_a_link_repeats() {
    let fake = FakeRegistry::start();
    let choices = Env::new()
        .resolver()
        .resolve_tags(&refs(&fake.host(), &["paged/app:latest"]))
        .unwrap();
    assert_eq!(choices[0].matching, ["1.2", "1", "latest"]);
    assert_eq!(choices[0].best, "1.2");
    let lists = fake
        .log()
        .iter()
        .filter(|l| l.contains("/tags/list"))
        .count();
    assert_eq!(lists, 2, "{:#?}", fake.log());
}

// ---- Hostile registries: what a registry says is checked before it is used or written.

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn header(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

/// An open registry whose manifests all have `DIGEST_A`, and whose tag list is `tags`.
fn open_registry(tags: impl Fn(&Seen, u16) -> Reply + Send + Sync + 'static) -> Hostile {
    Hostile::start(move |seen, port| {
        if seen.target.contains("/tags/list") {
            tags(seen, port)
        } else if seen.target.contains("/manifests/") {
            Reply::Answer(200, vec![header("Docker-Content-Digest", DIGEST_A)], vec![])
        } else {
            Reply::Answer(200, vec![], vec![])
        }
    })
}

fn heads(fake: &Hostile) -> Vec<String> {
    fake.seen()
        .into_iter()
        .filter(|s| s.method == "HEAD")
        .map(|s| s.target)
        .collect()
}

#[test]
fn listed_tags_outside_the_tag_grammar_are_never_asked_about_or_chosen() {
    // Issue 10 item 1a: a "tag" with a newline and YAML after it was written into a manifest.
    let fake = open_registry(|_, _| {
        Reply::json(
            r#"{"name":"app","tags":["latest","1.2.3.4.5-x\ncommand: [\"sh\",\"-c\",\"id\"]","9.9.9.9.9 x","1.0",".hidden","-dash"]}"#,
        )
    });
    let (choices, logs) = capture_logs(|| {
        Env::new()
            .resolver()
            .resolve_tags(&refs(&fake.host(), &["app:latest"]))
    });
    let choices = choices.unwrap();
    assert_eq!(choices[0].matching, ["1.0", "latest"]);
    assert_eq!(choices[0].best, "1.0");
    assert_eq!(
        heads(&fake),
        ["/v2/app/manifests/latest", "/v2/app/manifests/1.0"]
    );
    assert!(logs.contains("ignored 4 listed tags"), "{logs}");
}

#[test]
fn a_manifest_body_past_4_mib_fails_while_streaming_and_is_never_hashed() {
    // Issue 10 item 17: a chunked body had no length to refuse and was read whole.
    let fake = Hostile::start(|seen, _| match seen.method.as_str() {
        "GET" if seen.target.contains("/manifests/") => Reply::Chunked(
            vec![header(
                "Content-Type",
                "application/vnd.oci.image.manifest.v1+json",
            )],
            b'A',
            16 << 20,
        ),
        _ => Reply::Answer(200, vec![], vec![]),
    });
    let err = Env::new()
        .resolver()
        .resolve_digests(&refs(&fake.host(), &["app:1"]))
        .unwrap_err();
    assert!(
        matches!(&err, Error { failure: Failure::Protocol(reason), .. } if reason.contains("larger than 4096 KiB")),
        "{err:?}"
    );
}

#[test]
fn a_body_that_is_not_a_manifest_is_never_hashed_into_a_digest() {
    // Issue 10 item 17: without Docker-Content-Digest, any body's sha256 was pinned.
    let fake = Hostile::start(|seen, _| {
        let tag = seen.target.rsplit('/').next().unwrap_or("").to_owned();
        match (seen.method.as_str(), tag.as_str()) {
            ("GET", "html") => Reply::Answer(
                200,
                vec![header("Content-Type", "text/html")],
                b"<html>login</html>".to_vec(),
            ),
            ("GET", "json") => Reply::json(r#"{"hello":"world"}"#),
            ("GET", "ok") => Reply::Answer(
                200,
                vec![header(
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json",
                )],
                fake_manifest("app", "ok").into_bytes(),
            ),
            _ => Reply::Answer(200, vec![], vec![]),
        }
    });
    let resolver = Env::new().resolver();
    for tag in ["html", "json"] {
        let err = resolver
            .resolve_digests(&refs(&fake.host(), &[&format!("app:{tag}")]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error {
                    failure: Failure::Protocol(_),
                    ..
                }
            ),
            "{tag}: {err:?}"
        );
    }
    assert_eq!(
        resolver
            .resolve_digests(&refs(&fake.host(), &["app:ok"]))
            .unwrap(),
        [sha256(fake_manifest("app", "ok").as_bytes())]
    );
}

#[test]
fn a_tag_list_longer_than_the_cap_across_pages_fails_before_any_listed_tag_is_asked() {
    // Issue 10 items 17 and 20c: one page of 300k tags made 300k HEADs; the cap counted
    // only between pages, and a cut list only warned.
    let fake = open_registry(|seen, _| {
        let second = seen.target.contains("last=");
        let tags: Vec<String> = (0..60_000)
            .map(|i| format!("\"{}{i}\"", if second { "b" } else { "a" }))
            .collect();
        let mut extra = vec![header("Content-Type", "application/json")];
        if !second {
            extra.push(header(
                "Link",
                r#"</v2/app/tags/list?n=1000&last=a59999>; rel="next""#,
            ));
        }
        Reply::Answer(
            200,
            extra,
            format!(r#"{{"tags":[{}]}}"#, tags.join(",")).into_bytes(),
        )
    });
    let err = Env::new()
        .resolver()
        .resolve_tags(&refs(&fake.host(), &["app:latest"]))
        .unwrap_err();
    assert!(
        matches!(&err, Error { failure: Failure::Protocol(reason), .. } if reason.contains("more than 100000 tags")),
        "{err:?}"
    );
    // Only the reference's own tag, asked while the list was read.
    assert!(heads(&fake).len() <= 1, "{:?}", heads(&fake).len());
}

#[test]
fn a_tag_list_past_the_page_limit_fails_the_lookup() {
    // Issue 10 item 20c: the list was cut after 100 pages with a warning and ranked anyway.
    let fake = open_registry(|seen, _| {
        let page: usize = seen
            .target
            .split("last=t")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .map_or(0, |n: usize| n + 1);
        Reply::Answer(
            200,
            vec![
                header("Content-Type", "application/json"),
                header(
                    "Link",
                    format!(r#"</v2/app/tags/list?n=1&last=t{page}>; rel="next""#),
                ),
            ],
            format!(r#"{{"tags":["t{page}"]}}"#).into_bytes(),
        )
    });
    let err = Env::new()
        .resolver()
        .resolve_tags(&refs(&fake.host(), &["app:latest"]))
        .unwrap_err();
    assert!(
        matches!(&err, Error { failure: Failure::Protocol(reason), .. } if reason.contains("past 100 pages")),
        "{err:?}"
    );
    let lists = fake
        .seen()
        .iter()
        .filter(|s| s.target.contains("/tags/list"))
        .count();
    assert_eq!(lists, 100);
}

#[test]
fn a_next_page_on_another_origin_fails_the_lookup_and_gets_no_request() {
    // Issue 10 item 6: an absolute Link got the registry's Authorization and was trusted.
    let elsewhere = Hostile::start(|_, _| Reply::json(r#"{"tags":["9.9.9"]}"#));
    let next = format!("http://{}/v2/app/tags/list?last=1", elsewhere.host());
    let registry = Hostile::start(move |seen, _| {
        if seen.headers.get("authorization").map(String::as_str) != Some(&*basic_auth()) {
            return Reply::Answer(
                401,
                vec![header("WWW-Authenticate", r#"Basic realm="r""#)],
                vec![],
            );
        }
        if seen.target.contains("/tags/list") {
            Reply::Answer(
                200,
                vec![
                    header("Content-Type", "application/json"),
                    header("Link", format!(r#"<{next}>; rel="next""#)),
                ],
                br#"{"tags":["latest","1"]}"#.to_vec(),
            )
        } else {
            Reply::Answer(200, vec![header("Docker-Content-Digest", DIGEST_A)], vec![])
        }
    });
    let env = Env::new().with_docker_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
        registry.host(),
        b64(&format!("{USER}:{PASSWORD}"))
    ));
    let err = env
        .resolver()
        .resolve_tags(&refs(&registry.host(), &["app:latest"]))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("another origin") && text.contains(&format!("http://{}", elsewhere.host())),
        "{text}"
    );
    assert!(!text.contains("last=1"), "{text}");
    assert_eq!(elsewhere.connections(), 0);
}

fn basic_auth() -> String {
    format!("Basic {}", b64(&format!("{USER}:{PASSWORD}")))
}

/// A registry on 127.0.0.1 with a bearer challenge naming `realm` (`{port}` is its own
/// port), whose manifests want `Bearer tok` and all have `DIGEST_A`.
fn bearer_registry(realm: String) -> Hostile {
    Hostile::start(move |seen, port| {
        if seen.headers.get("authorization").map(String::as_str) != Some("Bearer tok") {
            let realm = realm.replace("{port}", &port.to_string());
            return Reply::Answer(
                401,
                vec![header(
                    "WWW-Authenticate",
                    format!(r#"Bearer realm="{realm}",service="s""#),
                )],
                vec![],
            );
        }
        Reply::Answer(200, vec![header("Docker-Content-Digest", DIGEST_A)], vec![])
    })
}

fn token_server(ip: &'static str) -> Hostile {
    Hostile::start_on(ip, |_, _| Reply::json(r#"{"token":"tok"}"#))
}

#[test]
fn credentials_never_go_to_a_token_realm_on_another_host() {
    // Issue 10 item 5 (containerd's CVE-2020-15157): the realm got the registry's password.
    let foreign = token_server("127.0.0.2");
    let registry = bearer_registry(format!("http://{}/token", foreign.host()));
    let env = Env::new().with_docker_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
        registry.host(),
        b64(&format!("{USER}:{PASSWORD}"))
    ));
    let (got, logs) = capture_logs(|| {
        env.resolver()
            .resolve_digests(&refs(&registry.host(), &["app:1"]))
    });
    assert_eq!(got.unwrap(), [DIGEST_A]);
    let asked = foreign.seen();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].headers.get("authorization"), None, "{asked:?}");
    assert!(
        logs.contains(&format!(
            "not sending the credentials for {} to the token server {}",
            registry.host(),
            foreign.host()
        )),
        "{logs}"
    );
    assert!(
        !logs.contains(PASSWORD) && !logs.contains(&basic_auth()),
        "{logs}"
    );
}

#[test]
fn credentials_go_to_a_token_realm_on_the_same_host_on_another_port() {
    let own = token_server("127.0.0.1");
    let registry = bearer_registry(format!("http://{}/token", own.host()));
    let env = Env::new().with_docker_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
        registry.host(),
        b64(&format!("{USER}:{PASSWORD}"))
    ));
    let got = env
        .resolver()
        .resolve_digests(&refs(&registry.host(), &["app:1"]))
        .unwrap();
    assert_eq!(got, [DIGEST_A]);
    let asked = own.seen();
    assert_eq!(asked[0].headers.get("authorization"), Some(&basic_auth()));
}

#[test]
fn an_unreachable_token_server_is_named_by_host_and_not_the_registry() {
    // Issue 10 item 21b: the error said "cannot reach <registry>".
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token_host = format!("127.0.0.1:{closed}");
    let registry = bearer_registry(format!("http://{token_host}/token?account=me-secret"));
    let resolver = Resolver::new(ResolverOptions {
        retry: RetryPolicy {
            retries: 1,
            base_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        },
        ..Env::new().options()
    })
    .unwrap();
    let err = resolver
        .resolve_digests(&refs(&registry.host(), &["app:1"]))
        .unwrap_err();
    match &err {
        Error {
            failure:
                Failure::TokenServerUnreachable {
                    host: token_server, ..
                },
            registry: r,
            ..
        } => {
            assert_eq!(r, &registry.host());
            assert_eq!(token_server, &token_host);
        }
        other => panic!("expected TokenServerUnreachable, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "cannot reach the token server {token_host} of {}",
            registry.host()
        )),
        "{text}"
    );
    assert!(
        !text.contains("me-secret") && !text.contains("/token"),
        "{text}"
    );
}

#[test]
fn a_registry_that_accepts_and_never_answers_fails_at_the_lookup_deadline() {
    // Issue 10 item 18: 9 attempts of 30 s plus backoff, 282 s per lookup.
    let fake = Hostile::start(|_, _| Reply::Silence);
    let resolver = Resolver::new(ResolverOptions {
        retry: RetryPolicy {
            lookup_deadline: Duration::from_secs(1),
            ..Env::new().options().retry
        },
        ..Env::new().options()
    })
    .unwrap();
    let err = resolver
        .resolve_digests(&refs(&fake.host(), &["app:1"]))
        .unwrap_err();
    assert!(
        matches!(&err, Error { failure: Failure::Unreachable(reason), .. } if reason.contains("lookup deadline of 1s")),
        "{err:?}"
    );
    assert_eq!(fake.seen().len(), 1, "no retry fits in the deadline");
}

#[test]
fn tls_errors_are_not_retried() {
    // Issue 10 item 18: certificate and handshake errors were retried 9 times.
    let not_tls = Hostile::raw(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    let registry = bearer_registry(format!("https://{}/token", not_tls.host()));
    let err = Env::new()
        .resolver()
        .resolve_digests(&refs(&registry.host(), &["app:1"]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error {
                failure: Failure::TokenServerUnreachable { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(not_tls.connections(), 1, "{err}");
}

#[test]
fn oversized_answer_headers_are_not_retried() {
    let fake = Hostile::start(|seen, _| {
        if seen.method == "HEAD" {
            Reply::Answer(200, vec![header("X-Padding", "a".repeat(1 << 20))], vec![])
        } else {
            Reply::Answer(200, vec![], vec![])
        }
    });
    let err = Env::new()
        .resolver()
        .resolve_digests(&refs(&fake.host(), &["app:1"]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error {
                failure: Failure::Unreachable(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(heads(&fake).len(), 1, "{err}");
}

#[test]
fn a_408_is_retried_like_a_5xx() {
    let timeouts = std::sync::atomic::AtomicUsize::new(0);
    let fake = Hostile::start(move |seen, _| {
        if seen.method == "HEAD" && timeouts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
        {
            return Reply::Answer(408, vec![], vec![]);
        }
        Reply::Answer(200, vec![header("Docker-Content-Digest", DIGEST_A)], vec![])
    });
    let got = Env::new()
        .resolver()
        .resolve_digests(&refs(&fake.host(), &["app:1"]))
        .unwrap();
    assert_eq!(got, [DIGEST_A]);
    assert_eq!(heads(&fake).len(), 2);
}

#[test]
fn a_credential_helper_whose_child_keeps_stdout_open_still_gives_its_credentials() {
    // Issue 10 item 18: reading to EOF waited 60 s for the grandchild, then dropped them.
    let reg = Registry::start_with_htpasswd(USER, PASSWORD);
    let digest = reg.push_oci("private/app", "x", &["1"]);
    let env = Env::new().with_docker_config(&format!(
        r#"{{"credHelpers": {{"{}": "cru-test-lingering"}}}}"#,
        reg.host()
    ));
    let bin = env.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-cru-test-lingering");
    let pid_file = env.path().join("grandchild.pid");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\nsleep 300 &\necho $! > '{}'\n\
             printf '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n",
            pid_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    prepend_path(&bin);
    let got = env
        .resolver()
        .resolve_digests(&refs(&reg.host(), &["private/app:1"]));
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    assert_eq!(got.unwrap(), [digest]);
}
