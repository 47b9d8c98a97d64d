//! `cru mirror` against two real `docker-registry` instances with htpasswd authentication,
//! credentials from a temporary DOCKER_CONFIG, requests counted by `registry-proxy`, and every
//! copy checked with skopeo as an independent client.

mod support;
mod util;

use std::process::Output;

use base64::Engine as _;
use support::registry::{Logged, Proxy, Registry};
use util::{assert_exit, stderr, stdout, Dir};

const USER: &str = "mirror-user";
const PASSWORD: &str = "s3cret-mirror-pw";

/// Two registries and a folder to run cru in, with credentials for both (and for proxies).
struct Setup {
    source: Registry,
    target: Registry,
    dir: Dir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            source: Registry::start_with_htpasswd(USER, PASSWORD),
            target: Registry::start_with_htpasswd(USER, PASSWORD),
            dir: Dir::new(),
        }
    }

    /// Writes the docker config with credentials for each host, and an empty registries.conf.
    fn credentials(&self, hosts: &[String]) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let entries: Vec<String> = hosts
            .iter()
            .map(|h| format!(r#""{h}": {{"auth": "{auth}"}}"#))
            .collect();
        self.dir.write(
            "docker/config.json",
            format!(r#"{{"auths": {{{}}}}}"#, entries.join(",")),
        );
        self.dir.write("registries.conf", "");
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.dir.cru(&["mirror"]);
        cmd.args(args)
            .arg("--registries-conf")
            .arg(self.dir.path().join("registries.conf"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker"));
        cmd.output().expect("run cru")
    }
}

fn writes(log: &[Logged]) -> Vec<&Logged> {
    log.iter()
        .filter(|l| matches!(l.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
        .collect()
}

#[test]
fn copies_images_and_buildx_indexes_with_attestations_unchanged() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    let single = s.source.push_docker("team/app", "one", &["1.0"]);
    let (index, children) = s.source.push_buildx_index("team/multi", "two", &["2.0"]);
    let src = s.source.host();
    let out = s.run(&[
        "--to",
        &format!("{}/mirror", s.target.host()),
        "--image-reference",
        &format!("{src}/team/app:1.0"),
        "--image-reference",
        &format!("{src}/team/multi:2.0"),
    ]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "copied {src}/team/app:1.0 -> {}/mirror/team/app:1.0@{single}",
            s.target.host()
        )),
        "{text}"
    );
    assert!(
        text.contains("images: 2 copied, 0 skipped, 0 failed"),
        "{text}"
    );
    // An independent client sees the source's digests under the source's tags...
    assert_eq!(s.target.skopeo_digest("mirror/team/app:1.0"), single);
    assert_eq!(s.target.skopeo_digest("mirror/team/multi:2.0"), index);
    // ...every manifest of the index, attestations included, by digest...
    for child in &children {
        assert!(
            s.target.has_manifest("mirror/team/multi", child),
            "{child} missing"
        );
    }
    // ...and can pull the copies out whole.
    let out_dir = tempfile::tempdir().unwrap();
    s.target
        .skopeo_copy_out("mirror/team/app:1.0", &out_dir.path().join("app"));
    s.target
        .skopeo_copy_out("mirror/team/multi:2.0", &out_dir.path().join("multi"));
    assert!(
        !stderr(&out).contains(PASSWORD),
        "the password leaked: {}",
        stderr(&out)
    );
}

#[test]
fn shared_layers_cross_once_and_a_second_run_only_asks_heads_of_the_source() {
    let s = Setup::new();
    let source_proxy = Proxy::start(&s.source.url(), &[]);
    let target_proxy = Proxy::start(&s.target.url(), &[]);
    s.credentials(&[source_proxy.host(), target_proxy.host()]);
    let base: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    for (repo, seed) in [("a/one", "1"), ("b/two", "2"), ("c/three", "3")] {
        let own = format!("own layer of {seed}").into_bytes();
        s.source.push_layers(repo, seed, &[&base, &own], &["v1"]);
    }
    let src = source_proxy.host();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec!["--to".to_owned(), format!("{}/m", target_proxy.host())];
        for repo in ["a/one", "b/two", "c/three"] {
            a.push("--image-reference".into());
            a.push(format!("{src}/{repo}:v1"));
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let first: Vec<String> = args(&["--jobs", "4"]);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let out = s.run(&first);
    assert_exit(&out, 0);
    let text = stdout(&out);
    // 3 configs + 3 own layers + the base once; the base mounted into the other two.
    assert!(
        text.contains("blobs: 7 uploaded, 2 mounted, 0 skipped"),
        "{text}"
    );
    let source_log = source_proxy.requests();
    let base_gets = source_log
        .iter()
        .filter(|l| l.method == "GET" && l.path.contains("/blobs/"))
        .count();
    assert_eq!(base_gets, 7, "blob GETs from the source: {source_log:#?}");
    let target_log = target_proxy.requests();
    let finished = target_log
        .iter()
        .filter(|l| l.method == "PUT" && l.path.contains("/blobs/uploads/"))
        .count();
    let mounts = target_log
        .iter()
        .filter(|l| l.method == "POST" && l.path.contains("mount="))
        .count();
    assert_eq!((finished, mounts), (7, 2), "{target_log:#?}");
    for repo in ["a/one", "b/two", "c/three"] {
        assert_eq!(
            s.target.skopeo_digest(&format!("m/{repo}:v1")),
            s.source.skopeo_digest(&format!("{repo}:v1"))
        );
    }

    let source_before = source_proxy.requests().len();
    let target_before = target_proxy.requests().len();
    let out = s.run(&first);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("images: 0 copied, 3 skipped, 0 failed; blobs: 0 uploaded"),
        "{}",
        stdout(&out)
    );
    let second = &source_proxy.requests()[source_before..];
    assert!(
        second
            .iter()
            .all(|l| l.method == "HEAD" || (l.method == "GET" && l.path == "/v2/")),
        "the second run fetched from the source: {second:#?}"
    );
    assert_eq!(
        second.iter().filter(|l| l.method == "HEAD").count(),
        3,
        "{second:#?}"
    );
    let second_target = &target_proxy.requests()[target_before..];
    assert!(
        writes(second_target).is_empty(),
        "the second run wrote: {second_target:#?}"
    );
}

#[test]
fn dry_run_and_check_write_nothing_and_check_fails_on_missing_images() {
    let s = Setup::new();
    let target_proxy = Proxy::start(&s.target.url(), &[]);
    s.credentials(&[s.source.host(), target_proxy.host()]);
    s.source.push_oci("x/app", "dry", &["1"]);
    let to = format!("{}/m", target_proxy.host());
    let image = format!("{}/x/app:1", s.source.host());
    let out = s.run(&["--to", &to, "--dry-run", "--image-reference", &image]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains(&format!("would copy {image} -> ")), "{text}");
    assert!(
        text.contains(
            "dry run, nothing written: images: 1 to copy, 0 present, 0 failed; blobs: 2 to upload"
        ),
        "{text}"
    );
    let out = s.run(&["--to", &to, "--check", "--image-reference", &image]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains(&format!("missing {image} -> ")));
    assert!(stdout(&out).contains("check, nothing written: images: 1 missing, 0 present"));
    assert!(
        writes(&target_proxy.requests()).is_empty(),
        "{:#?}",
        target_proxy.requests()
    );
    assert!(!s.target.has_manifest("m/x/app", "1"));

    assert_exit(&s.run(&["--to", &to, "--image-reference", &image]), 0);
    let out = s.run(&["--to", &to, "--check", "--image-reference", &image]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(&format!("present {image} -> ")));
}

#[test]
fn references_found_under_paths_are_mirrored() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    let digest = s.source.push_oci("tools/builder", "scan", &["3"]);
    let src = s.source.host();
    s.dir.write(
        "app/Dockerfile",
        format!("FROM {src}/tools/builder:3 AS build\nRUN make\n"),
    );
    let before = s.dir.read("app/Dockerfile");
    let out = s.run(&["--to", &s.target.host(), "app"]);
    assert_exit(&out, 0);
    assert_eq!(s.target.skopeo_digest("tools/builder:3"), digest);
    // Without --rewrite the files stay as they are.
    assert_eq!(s.dir.read("app/Dockerfile"), before);
}

#[test]
fn platform_copies_that_manifest_only_and_tags_it_not_a_filtered_index() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    let (_, amd64, arm64) = s.source.push_index("p/multi", "plat", &["1"]);
    let out = s.run(&[
        "--to",
        &format!("{}/m", s.target.host()),
        "--platform",
        "linux/arm64",
        "--image-reference",
        &format!("{}/p/multi:1", s.source.host()),
    ]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains(&format!(":1@{arm64}")),
        "{}",
        stdout(&out)
    );
    assert_eq!(s.target.skopeo_digest("m/p/multi:1"), arm64);
    assert!(!s.target.has_manifest("m/p/multi", &amd64));
}

#[test]
fn a_large_layer_streams_through_in_small_memory() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    // 200 MiB that does not compress: a simple xorshift stream.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let layer: Vec<u8> = (0..200usize << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let digest = s.source.push_layers("big/image", "big", &[&layer], &["1"]);
    drop(layer);
    let rss = s.dir.path().join("rss");
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&rss)
        .arg(env!("CARGO_BIN_EXE_cru"))
        .args([
            "mirror",
            "--to",
            &format!("{}/m", s.target.host()),
            "--image-reference",
            &format!("{}/big/image:1", s.source.host()),
            "--registries-conf",
        ])
        .arg(s.dir.path().join("registries.conf"))
        .env("DOCKER_CONFIG", s.dir.path().join("docker"))
        .env_remove("CRU_REGISTRIES_CONF")
        .current_dir(s.dir.path())
        .output()
        .expect("run cru under /usr/bin/time");
    assert_exit(&out, 0);
    let timed = std::fs::read_to_string(&rss).unwrap();
    let (seconds, peak_kib) = timed
        .lines()
        .last()
        .and_then(|l| l.trim().split_once(' '))
        .and_then(|(s, k)| Some((s.to_owned(), k.parse::<u64>().ok()?)))
        .expect("time printed the wall time and peak RSS");
    // A figure for the report, not a test of speed.
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "copying a 200 MiB layer: {seconds} s, peak RSS {} MiB",
            peak_kib >> 10
        );
    }
    assert!(
        peak_kib < 64 << 10,
        "peak RSS {peak_kib} KiB for a 200 MiB layer"
    );
    assert_eq!(s.target.skopeo_digest("m/big/image:1"), digest);
}

#[test]
fn two_sources_landing_on_one_target_name_fail_before_anything_is_copied() {
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&[
            "mirror",
            // Nothing listens there: the run must stop before asking anyone.
            "--to",
            "127.0.0.1:9/m",
            "--image-reference",
            "docker.io/p/app:1",
            "--image-reference",
            "gcr.io/p/app:1",
        ])
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(
            "docker.io/p/app and gcr.io/p/app would both be mirrored to 127.0.0.1:9/m/p/app"
        ),
        "{err}"
    );
}

#[test]
fn faults_on_both_sides_still_give_a_correct_copy() {
    let s = Setup::new();
    let faults = ["--fail-503", "0.3", "--drop", "0.05", "--seed", "7"];
    let source_proxy = Proxy::start(&s.source.url(), &faults);
    let target_proxy = Proxy::start(&s.target.url(), &faults);
    s.credentials(&[source_proxy.host(), target_proxy.host()]);
    // 20 MiB: a few upload chunks, each of which may meet a fault.
    let layer: Vec<u8> = (0..20u32 << 20).map(|i| (i % 241) as u8).collect();
    let big = s.source.push_layers("f/big", "faults", &[&layer], &["1"]);
    let (index, _) = s.source.push_buildx_index("f/multi", "faults", &["1"]);
    let src = source_proxy.host();
    let out = s.run(&[
        "--to",
        &format!("{}/m", target_proxy.host()),
        "--image-reference",
        &format!("{src}/f/big:1"),
        "--image-reference",
        &format!("{src}/f/multi:1"),
    ]);
    assert_exit(&out, 0);
    let log = target_proxy.requests();
    assert!(
        log.iter().any(|l| l.status == "503") && log.iter().any(|l| l.status == "drop"),
        "no faults were injected: {log:#?}"
    );
    assert_eq!(s.target.skopeo_digest("m/f/big:1"), big);
    assert_eq!(s.target.skopeo_digest("m/f/multi:1"), index);
    let out_dir = tempfile::tempdir().unwrap();
    s.target
        .skopeo_copy_out("m/f/multi:1", &out_dir.path().join("multi"));
}

/// A relay in front of the real registry `target` that passes every request on, except
/// the first one `pick` chooses: that one is passed on and its answer lost (`lose`: the
/// connection closes without a word once the registry took it) or never passed on (`!lose`).
fn faulty_relay(
    target: &Registry,
    lose: bool,
    pick: impl Fn(&support::fake::Seen) -> bool + Send + Sync + 'static,
) -> support::fake::Hostile {
    use std::sync::atomic::{AtomicBool, Ordering};
    use support::fake::{forward, Hostile, Reply};
    let upstream = target.host();
    let done = AtomicBool::new(false);
    Hostile::start(move |seen, _| {
        if pick(seen) && !done.swap(true, Ordering::SeqCst) {
            if lose {
                forward(&upstream, seen);
            }
            return Reply::Hangup;
        }
        match forward(&upstream, seen) {
            answer if answer.is_empty() => Reply::Hangup,
            answer => Reply::Raw(answer),
        }
    })
}

/// Mirrors a 9 MiB single-layer image (one upload chunk and the closing `PUT`) from a real
/// source through `relay` into `target`; returns cru's output and the image's digest.
fn mirror_through(relay: &support::fake::Hostile, source: &Registry) -> (Output, String) {
    let layer: Vec<u8> = (0..9u32 << 20).map(|i| (i % 251) as u8).collect();
    let digest = source.push_layers("f/big", "relay", &[&layer], &["1"]);
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&["mirror", "--to", &format!("{}/m", relay.host())])
        .arg("--image-reference")
        .arg(format!("{}/f/big:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    (out, digest)
}

fn upload_sessions(relay: &support::fake::Hostile) -> usize {
    relay
        .seen()
        .iter()
        .filter(|r| r.method == "POST" && r.target.starts_with("/v2/m/f/big/blobs/uploads/"))
        .count()
}

#[test]
fn a_chunk_the_target_took_whose_answer_was_lost_is_uploaded_again_in_a_fresh_session() {
    // docker-registry refuses the repeat of a chunk it took (the session's state is stale)
    // and drops the session: before the fix, the image failed with a misleading
    // "repository does not exist".
    let (source, target) = (Registry::start(), Registry::start());
    let relay = faulty_relay(&target, true, |r| r.method == "PATCH");
    let (out, digest) = mirror_through(&relay, &source);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("was lost") && err.contains("starting it again"),
        "{err}"
    );
    // The config blob, the layer, and the layer again.
    assert_eq!(upload_sessions(&relay), 3, "{:#?}", relay.seen());
    assert_eq!(target.skopeo_digest("m/f/big:1"), digest);
}

#[test]
fn a_closing_put_the_target_took_whose_answer_was_lost_is_found_by_a_head() {
    let (source, target) = (Registry::start(), Registry::start());
    let relay = faulty_relay(&target, true, |r| {
        r.method == "PUT" && r.target.contains("digest=") && r.body.len() > 1 << 10
    });
    let (out, digest) = mirror_through(&relay, &source);
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("was lost"), "{}", stderr(&out));
    assert_eq!(upload_sessions(&relay), 2, "{:#?}", relay.seen());
    let heads = relay
        .seen()
        .iter()
        .filter(|r| r.method == "HEAD" && r.target.contains("/blobs/"))
        .count();
    // One before each blob's copy, and one after the lost answer.
    assert_eq!(heads, 3, "{:#?}", relay.seen());
    assert_eq!(target.skopeo_digest("m/f/big:1"), digest);
}

#[test]
fn a_chunk_that_never_reached_the_target_is_sent_again_in_the_same_session() {
    let (source, target) = (Registry::start(), Registry::start());
    let relay = faulty_relay(&target, false, |r| r.method == "PATCH");
    let (out, digest) = mirror_through(&relay, &source);
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("was lost"), "{}", stderr(&out));
    assert_eq!(upload_sessions(&relay), 2, "{:#?}", relay.seen());
    // The chunk, its status asked, the chunk again.
    let seen = relay.seen();
    let methods: Vec<&str> = seen
        .iter()
        .filter(|r| r.target.starts_with("/v2/m/f/big/blobs/uploads/") && r.method != "POST")
        .map(|r| r.method.as_str())
        .collect();
    assert!(
        methods.windows(3).any(|w| w == ["PATCH", "GET", "PATCH"]),
        "{methods:?}"
    );
    assert_eq!(target.skopeo_digest("m/f/big:1"), digest);
}

/// Which upload request of the big layer a [`SessionTarget`] takes only part of and leaves
/// unanswered, once.
#[derive(Clone, Copy)]
enum Lose {
    /// The `n`th `PATCH` (from 1).
    Patch(usize),
    /// The closing `PUT ?digest=`.
    ClosingPut,
}

/// The state of a [`SessionTarget`]: stored blobs and manifests, open sessions.
#[derive(Default)]
struct Kept {
    blobs: std::collections::HashMap<String, Vec<u8>>,
    manifests: std::collections::HashMap<String, (String, Vec<u8>)>,
    sessions: std::collections::HashMap<u64, Vec<u8>>,
    next_session: u64,
    patches: usize,
    lost: bool,
}

/// An in-process target registry that keeps its upload sessions, as distribution 2.8 does
/// not after a lost answer: a session's status (`GET`, `Range: 0-N`) says what it holds, and
/// a `PATCH` or `PUT` must carry the state (`?_state=N`) the last answer or status gave and
/// start at the byte it holds (else 416), as distribution checks. Once, the request `lose`
/// names has only its first `keep` bytes stored and its answer lost.
struct SessionTarget {
    server: support::fake::Hostile,
    kept: std::sync::Arc<std::sync::Mutex<Kept>>,
}

impl SessionTarget {
    fn start(lose: Lose, keep: usize) -> SessionTarget {
        use support::fake::{Hostile, Reply};
        let kept = std::sync::Arc::new(std::sync::Mutex::new(Kept::default()));
        let k = kept.clone();
        let server = Hostile::start(move |seen, _| {
            let mut k = k.lock().unwrap();
            let (path, query) = seen.target.split_once('?').unwrap_or((&seen.target, ""));
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .map(|v| v.replace("%3A", ":"))
            };
            let answer = |status, h: Vec<(&str, String)>| {
                let h = h.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                Reply::Answer(status, h, Vec::new())
            };
            // What a session holds, as distribution says it: `0-0` when empty.
            let status = |path: &str, held: usize| {
                vec![
                    ("Location", format!("{path}?_state={held}")),
                    ("Range", format!("0-{}", held.saturating_sub(1))),
                ]
            };
            if path == "/v2/" {
                return Reply::json("{}");
            }
            let Some((repo, rest)) = path.strip_prefix("/v2/").and_then(|p| {
                p.split_once("/blobs/")
                    .or_else(|| p.split_once("/manifests/"))
            }) else {
                return answer(404, vec![]);
            };
            if path.contains("/manifests/") {
                let key = format!("{repo}:{rest}");
                return match seen.method.as_str() {
                    "PUT" => {
                        let digest = support::registry::sha256(&seen.body);
                        let ctype = seen
                            .headers
                            .get("content-type")
                            .cloned()
                            .unwrap_or_default();
                        k.manifests.insert(key, (ctype.clone(), seen.body.clone()));
                        k.manifests
                            .insert(format!("{repo}:{digest}"), (ctype, seen.body.clone()));
                        answer(201, vec![("Docker-Content-Digest", digest)])
                    }
                    _ => match k.manifests.get(&key) {
                        Some((ctype, body)) => Reply::Answer(
                            200,
                            vec![
                                ("Content-Type".into(), ctype.clone()),
                                (
                                    "Docker-Content-Digest".into(),
                                    support::registry::sha256(body),
                                ),
                            ],
                            body.clone(),
                        ),
                        None => answer(404, vec![]),
                    },
                };
            }
            let Some(id) = rest.strip_prefix("uploads/") else {
                // A blob by digest.
                return match k.blobs.get(rest) {
                    Some(_) => answer(200, vec![("Docker-Content-Digest", rest.to_owned())]),
                    None => answer(404, vec![]),
                };
            };
            if seen.method == "POST" {
                assert!(param("mount").is_none(), "one registry, nothing to mount");
                k.next_session += 1;
                let id = k.next_session;
                k.sessions.insert(id, Vec::new());
                return answer(202, status(&format!("/v2/{repo}/blobs/uploads/{id}"), 0));
            }
            let Some(id) = id
                .parse::<u64>()
                .ok()
                .filter(|id| k.sessions.contains_key(id))
            else {
                return answer(404, vec![]);
            };
            let held = k.sessions[&id].len();
            let big = seen.body.len() > 1 << 20;
            match seen.method.as_str() {
                "GET" => answer(204, status(path, held)),
                "DELETE" => {
                    k.sessions.remove(&id);
                    answer(204, vec![])
                }
                "PATCH" | "PUT" => {
                    let from = seen
                        .headers
                        .get("content-range")
                        .and_then(|r| r.split_once('-'))
                        .map(|(a, _)| a.parse::<usize>().unwrap());
                    if param("_state") != Some(held.to_string()) || from.is_some_and(|a| a != held)
                    {
                        return answer(416, status(path, held));
                    }
                    if seen.method == "PATCH" && big {
                        k.patches += 1;
                    }
                    let lost_here = match lose {
                        Lose::Patch(n) => seen.method == "PATCH" && big && k.patches == n,
                        Lose::ClosingPut => seen.method == "PUT" && big,
                    };
                    if lost_here && !k.lost {
                        k.lost = true;
                        let part = seen.body[..keep.min(seen.body.len())].to_vec();
                        k.sessions.get_mut(&id).unwrap().extend_from_slice(&part);
                        return Reply::Hangup;
                    }
                    k.sessions
                        .get_mut(&id)
                        .unwrap()
                        .extend_from_slice(&seen.body);
                    let held = k.sessions[&id].len();
                    if seen.method == "PATCH" {
                        return answer(202, status(path, held));
                    }
                    let bytes = k.sessions.remove(&id).unwrap();
                    let digest = param("digest").unwrap_or_default();
                    if support::registry::sha256(&bytes) != digest {
                        return answer(400, vec![]);
                    }
                    k.blobs.insert(digest.clone(), bytes);
                    answer(
                        201,
                        vec![
                            ("Location", format!("/v2/{repo}/blobs/{digest}")),
                            ("Docker-Content-Digest", digest),
                        ],
                    )
                }
                _ => answer(405, vec![]),
            }
        });
        SessionTarget { server, kept }
    }
}

/// Mirrors a 20 MiB single-layer image (two 8 MiB chunks and a closing `PUT` of 4 MiB) from
/// a real source into a [`SessionTarget`] that loses the answer to `lose`, having kept
/// `keep` bytes of it; checks the copy exits 0, the blobs and manifest on the target are the
/// source's and no second session was opened; returns the big layer's requests.
fn resume_through(lose: Lose, keep: usize) -> Vec<support::fake::Seen> {
    let source = Registry::start();
    let layer: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let digest = source.push_layers("f/big", "resume", &[&layer], &["1"]);
    let target = SessionTarget::start(lose, keep);
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&["mirror", "--to", &format!("{}/m", target.server.host())])
        .arg("--image-reference")
        .arg(format!("{}/f/big:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(!err.contains("was lost"), "{err}");
    let seen = target.server.seen();
    let kept = target.kept.lock().unwrap();
    assert!(kept.lost, "the fault was not met: {seen:#?}");
    let layer_digest = support::registry::sha256(&layer);
    let stored = kept.blobs.get(&layer_digest);
    assert!(
        stored.is_some_and(|b| *b == layer),
        "the layer on the target is not the source's"
    );
    let (_, manifest) = &kept.manifests["m/f/big:1"];
    assert_eq!(support::registry::sha256(manifest), digest);
    assert_eq!(kept.blobs.len(), 2, "the config and the layer");
    let posts = seen.iter().filter(|r| r.method == "POST").count();
    assert_eq!(
        posts, 2,
        "one session per blob, none started again: {seen:#?}"
    );
    let hex = layer_digest.trim_start_matches("sha256:");
    seen.into_iter()
        .filter(|r| match r.method.as_str() {
            "PATCH" => true,
            "GET" => r.target.contains("/uploads/"),
            "PUT" => r.target.contains(hex),
            _ => false,
        })
        .collect()
}

/// One request of the big layer's upload, as [`SessionTarget`] saw it.
#[derive(Debug, PartialEq)]
enum Step {
    /// A chunk: its first byte and its length (`Content-Range` checked against the body).
    Patch(usize, usize),
    /// The session's status asked.
    Status,
    /// The closing `PUT` with this many bytes.
    Put(usize),
}

fn upload_steps(seen: &[support::fake::Seen]) -> Vec<Step> {
    seen.iter()
        .map(
            |r| match (r.method.as_str(), r.headers.get("content-range")) {
                ("PATCH", Some(range)) => {
                    let (a, b) = range.split_once('-').unwrap();
                    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                    assert_eq!(b + 1 - a, r.body.len(), "Content-Range {range}");
                    Step::Patch(a, r.body.len())
                }
                ("GET", None) => Step::Status,
                ("PUT", None) => Step::Put(r.body.len()),
                _ => panic!("unexpected {} {}", r.method, r.target),
            },
        )
        .collect()
}

const MIB: usize = 1 << 20;
const LAYER: usize = 20 * MIB;

/// The lengths of the first two chunks (at least 8 MiB each: as many pieces as the source's
/// body came in).
fn chunks(steps: &[Step]) -> (usize, usize) {
    let mut lens = steps.iter().filter_map(|s| match s {
        Step::Patch(_, n) => Some(*n),
        _ => None,
    });
    let (a, b) = (lens.next().unwrap(), lens.next().unwrap());
    assert!(a >= 8 * MIB && b >= 8 * MIB, "{steps:?}");
    (a, b)
}

#[test]
fn a_chunk_the_target_took_whole_whose_answer_was_lost_goes_on_from_the_sessions_status() {
    let steps = upload_steps(&resume_through(Lose::Patch(1), usize::MAX));
    let (a, b) = chunks(&steps);
    // The status says the chunk is there: not sent again, the next goes from its end.
    assert_eq!(
        steps,
        [
            Step::Patch(0, a),
            Step::Status,
            Step::Patch(a, b),
            Step::Put(LAYER - a - b),
        ]
    );
}

#[test]
fn a_chunk_the_target_took_in_part_whose_answer_was_lost_is_finished_from_the_offset_it_holds() {
    // The second chunk lost its answer with only its first 3 MiB stored: the rest goes.
    let steps = upload_steps(&resume_through(Lose::Patch(2), 3 * MIB));
    let (a, b) = chunks(&steps);
    assert_eq!(
        steps,
        [
            Step::Patch(0, a),
            Step::Patch(a, b),
            Step::Status,
            Step::Patch(a + 3 * MIB, b - 3 * MIB),
            Step::Put(LAYER - a - b),
        ]
    );
}

#[test]
fn a_closing_put_the_target_took_in_part_whose_answer_was_lost_sends_the_rest_from_its_offset() {
    // The blob is not there (a HEAD says), the session holds 1 MiB of the last bytes: the
    // rest goes in the closing PUT.
    let steps = upload_steps(&resume_through(Lose::ClosingPut, MIB));
    let (a, b) = chunks(&steps);
    assert_eq!(
        steps,
        [
            Step::Patch(0, a),
            Step::Patch(a, b),
            Step::Put(LAYER - a - b),
            Step::Status,
            Step::Put(LAYER - a - b - MIB),
        ]
    );
}

#[test]
fn a_closing_put_whose_bytes_all_reached_the_session_but_no_blob_is_closed_by_an_empty_put() {
    // The session holds every byte but the blob was not made: nothing is sent twice.
    let steps = upload_steps(&resume_through(Lose::ClosingPut, usize::MAX));
    let (a, b) = chunks(&steps);
    assert_eq!(
        steps,
        [
            Step::Patch(0, a),
            Step::Patch(a, b),
            Step::Put(LAYER - a - b),
            Step::Status,
            Step::Put(0),
        ]
    );
}

#[test]
fn a_manifest_put_the_target_took_whose_answer_was_lost_is_simply_sent_again() {
    // A manifest `PUT` is idempotent (same bytes, same digest): the repeat is answered 201,
    // so it needs no `HEAD` first.
    let (source, target) = (Registry::start(), Registry::start());
    let relay = faulty_relay(&target, true, |r| {
        r.method == "PUT" && r.target.contains("/manifests/")
    });
    let (out, digest) = mirror_through(&relay, &source);
    assert_exit(&out, 0);
    let puts = relay
        .seen()
        .iter()
        .filter(|r| r.method == "PUT" && r.target.contains("/manifests/"))
        .count();
    // By digest (lost, then again) and by tag.
    assert_eq!(puts, 3, "{:#?}", relay.seen());
    assert_eq!(target.skopeo_digest("m/f/big:1"), digest);
}

#[test]
fn a_request_meeting_ten_5xx_in_a_row_still_lands() {
    // A mirror's requests are many, and at 30% 5xx a run of 9 (a lookup's budget) is no
    // rarity among them: the faults test failed one run in ten on one such request.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use support::fake::{forward, Hostile, Reply};
    let (source, target) = (Registry::start(), Registry::start());
    let digest = source.push_oci("team/app", "ten", &["1"]);
    let upstream = target.host();
    let refused = AtomicUsize::new(0);
    let relay = Hostile::start(move |seen, _| {
        if seen.method == "PUT"
            && seen.target.contains("/manifests/sha256:")
            && refused.fetch_add(1, Ordering::SeqCst) < 10
        {
            return Reply::Answer(503, vec![], b"injected 503".to_vec());
        }
        Reply::Raw(forward(&upstream, seen))
    });
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&["mirror", "--to", &format!("{}/m", relay.host())])
        .arg("--image-reference")
        .arg(format!("{}/team/app:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(target.skopeo_digest("m/team/app:1"), digest);
}

/// A source that serves `manifest` for `lie/app:1` (and by digest) and `blobs` by digest.
fn lying_source(
    manifest: String,
    blobs: Vec<(String, Vec<u8>)>,
    headers: Vec<(String, String)>,
) -> support::fake::Hostile {
    use support::fake::{Hostile, Reply};
    let digest = support::registry::sha256(manifest.as_bytes());
    Hostile::start(move |seen, _| {
        let path = seen.target.split('?').next().unwrap_or("");
        if path == "/v2/" {
            return Reply::json("{}");
        }
        if path == "/v2/lie/app/manifests/1" || path == format!("/v2/lie/app/manifests/{digest}") {
            let mut h = vec![
                (
                    "Content-Type".to_owned(),
                    support::registry::OCI_MANIFEST.to_owned(),
                ),
                ("Docker-Content-Digest".to_owned(), digest.clone()),
            ];
            h.extend(headers.iter().cloned());
            return Reply::Answer(200, h, manifest.clone().into_bytes());
        }
        for (d, bytes) in &blobs {
            if path == format!("/v2/lie/app/blobs/{d}") {
                return Reply::Answer(200, vec![], bytes.clone());
            }
        }
        Reply::Answer(404, vec![], b"{}".to_vec())
    })
}

fn small_manifest(config: &[u8], layer_digest: &str, layer_len: usize) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_digest}","size":{layer_len}}}]}}"#,
        support::registry::OCI_MANIFEST,
        support::registry::sha256(config),
        config.len()
    )
}

#[test]
fn a_blob_that_does_not_match_its_digest_aborts_the_image_and_leaves_no_tag() {
    let target = Registry::start();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let honest = support::registry::sha256(b"honest");
    let manifest = small_manifest(&config, &honest, 6);
    let source = lying_source(
        manifest,
        vec![
            (support::registry::sha256(&config), config),
            (honest.clone(), b"hacked".to_vec()),
        ],
        vec![],
    );
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&["mirror", "--to", &format!("{}/m", target.host())])
        .arg("--image-reference")
        .arg(format!("{}/lie/app:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("blob {honest} from the source hashes to")),
        "{err}"
    );
    assert!(stdout(&out).contains("0 copied, 0 skipped, 1 failed"));
    assert!(!target.has_manifest("m/lie/app", "1"));
}

#[test]
fn a_nearly_spent_pull_limit_stops_before_any_manifest_is_fetched() {
    let target = Registry::start();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"layer".to_vec();
    let manifest = small_manifest(&config, &support::registry::sha256(&layer), layer.len());
    let source = lying_source(
        manifest,
        vec![],
        vec![("RateLimit-Remaining".into(), "3;w=21600".into())],
    );
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&["mirror", "--to", &format!("{}/m", target.host())])
        .arg("--image-reference")
        .arg(format!("{}/lie/app:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("has 3 pulls left in its 6-hour window, below --min-ratelimit 10"),
        "{err}"
    );
    let gets: Vec<_> = source
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.target != "/v2/")
        .collect();
    assert!(gets.is_empty(), "{gets:#?}");
    // With a lower bound the same run goes on (and fails later, on the missing blobs).
    let out = dir
        .cru(&["mirror", "--min-ratelimit", "2"])
        .args(["--to", &format!("{}/m", target.host())])
        .arg("--image-reference")
        .arg(format!("{}/lie/app:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert!(!stderr(&out).contains("pulls left"), "{}", stderr(&out));
}

#[test]
fn a_target_without_the_repository_fails_with_its_name_and_what_to_do() {
    use support::fake::{Hostile, Reply};
    let source = Registry::start();
    source.push_oci("team/app", "nameunknown", &["1"]);
    let target = Hostile::start(|seen, _| {
        let path = seen.target.split('?').next().unwrap_or("");
        match (seen.method.as_str(), path) {
            ("GET", "/v2/") => Reply::json("{}"),
            ("HEAD", _) => Reply::Answer(404, vec![], vec![]),
            _ => Reply::Answer(
                404,
                vec![("Content-Type".into(), "application/json".into())],
                br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository 'm/team/app' does not exist"}]}"#.to_vec(),
            ),
        }
    });
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&["mirror", "--to", &format!("{}/m", target.host())])
        .arg("--image-reference")
        .arg(format!("{}/team/app:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}/m/team/app: the target registry says this repository does not exist (NAME_UNKNOWN)",
            target.host()
        )) && err.contains("aws ecr create-repository --repository-name m/team/app"),
        "{err}"
    );
}

#[test]
fn push_requests_get_their_own_push_scoped_token_once() {
    use cru::registry::auth::DockerConfig;
    use cru::registry::client::{Access, Client};
    use cru::registry::registries_conf::Endpoint;
    use cru::registry::RetryPolicy;
    let fake = support::fake::FakeRegistry::start();
    let client = Client::new(DockerConfig::default(), RetryPolicy::default(), 4).unwrap();
    let ep = Endpoint {
        scheme: "http",
        host: fake.host(),
        repository: "team/app".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for access in [Access::Pull, Access::Push, Access::Push, Access::Pull] {
            let head = client.head_manifest(&ep, access, "1").await.unwrap();
            assert!(head.is_some_and(|h| h.digest.is_some()));
        }
    });
    let tokens: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.contains("/token?"))
        .collect();
    assert_eq!(tokens.len(), 2, "{tokens:#?}");
    assert!(
        tokens[0].contains("scope=repository%3Ateam%2Fapp%3Apull&"),
        "{tokens:#?}"
    );
    assert!(
        tokens[1].contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush"),
        "{tokens:#?}"
    );
}

#[test]
fn a_run_killed_mid_copy_leaves_no_tag_and_the_next_run_completes_it() {
    let s = Setup::new();
    // Slow enough that the kill lands between the first manifest push and the tag.
    let target_proxy = Proxy::start(&s.target.url(), &["--delay-ms", "300"]);
    s.credentials(&[s.source.host(), target_proxy.host()]);
    let layer: Vec<u8> = (0..12u32 << 20).map(|i| (i % 239) as u8).collect();
    let index = s.source.push_big_index("k/app", "kill", &layer, &["1"]);
    let args = [
        "--to".to_owned(),
        format!("{}/m", target_proxy.host()),
        "--image-reference".to_owned(),
        format!("{}/k/app:1", s.source.host()),
        "--registries-conf".to_owned(),
        s.dir.path().join("registries.conf").display().to_string(),
    ];
    let mut child = s
        .dir
        .cru(&["mirror"])
        .args(&args)
        .env("DOCKER_CONFIG", s.dir.path().join("docker"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let manifest_put = |l: &Logged| l.method == "PUT" && l.path.contains("/manifests/sha256:");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !target_proxy.requests().iter().any(manifest_put) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "cru finished before it could be killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no manifest was pushed"
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !s.target.has_manifest("m/k/app", "1"),
        "a tag points at an image cru was killed while copying"
    );
    assert!(!s.target.has_manifest("m/k/app", &index));

    let out = s.run(&args[..4].iter().map(String::as_str).collect::<Vec<_>>());
    assert_exit(&out, 0);
    assert_eq!(s.target.skopeo_digest("m/k/app:1"), index);
    let out_dir = tempfile::tempdir().unwrap();
    s.target
        .skopeo_copy_out("m/k/app:1", &out_dir.path().join("app"));
}

#[test]
fn on_a_terminal_a_bar_counts_the_bytes_uploaded() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    let layer: Vec<u8> = (0..20u32 << 20).map(|i| (i % 233) as u8).collect();
    s.source.push_layers("t/app", "tty", &[&layer], &["1"]);
    let mut like = s.dir.cru(&[]);
    like.env("DOCKER_CONFIG", s.dir.path().join("docker"))
        .env("CRU_REGISTRIES_CONF", s.dir.path().join("registries.conf"));
    let shown = util::on_a_terminal(
        &like,
        &format!(
            "mirror --to {}/m --image-reference {}/t/app:1",
            s.target.host(),
            s.source.host()
        ),
        Some("1"),
    );
    assert!(shown.contains("mirror ["), "{shown}");
    assert!(shown.contains("images: 1 copied"), "{shown}");
}

#[test]
fn referrers_come_along_with_their_tags_when_asked() {
    use support::registry::{sha256, OCI_INDEX, OCI_MANIFEST};
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    let image = s.source.push_oci("r/app", "signed", &["1"]);
    let src = &s.source;
    let empty = src.push_blob("r/app", b"{}");
    // A cosign-style signature under `sha256-<hex>.sig`.
    let payload = format!(r#"{{"critical":{{"image":{{"docker-manifest-digest":"{image}"}}}}}}"#);
    let payload_digest = src.push_blob("r/app", payload.as_bytes());
    let sig = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"{payload_digest}","size":{},"annotations":{{"dev.cosignproject.cosign/signature":"MEUC"}}}}]}}"#,
        payload.len()
    );
    let sig_tag = format!("{}.sig", image.replacen(':', "-", 1));
    let sig_digest = src.push_manifest("r/app", &sig_tag, OCI_MANIFEST, sig.as_bytes());
    // An OCI 1.1 referrer, listed in the `sha256-<hex>` fallback index.
    let sbom = br#"{"spdxVersion":"SPDX-2.3"}"#;
    let sbom_digest = src.push_blob("r/app", sbom);
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/spdx+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"application/spdx+json","digest":"{sbom_digest}","size":{}}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{image}","size":1}}}}"#,
        sbom.len()
    );
    let referrer_digest = src.push_manifest(
        "r/app",
        &sha256(referrer.as_bytes()),
        OCI_MANIFEST,
        referrer.as_bytes(),
    );
    let fallback = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{referrer_digest}","size":{},"artifactType":"application/spdx+json"}}]}}"#,
        referrer.len()
    );
    let fallback_tag = image.replacen(':', "-", 1);
    let fallback_digest = src.push_manifest("r/app", &fallback_tag, OCI_INDEX, fallback.as_bytes());
    let to = format!("{}/m", s.target.host());
    let image_ref = format!("{}/r/app:1", s.source.host());

    assert_exit(&s.run(&["--to", &to, "--image-reference", &image_ref]), 0);
    assert!(!s.target.has_manifest("m/r/app", &sig_tag));

    // Asked for, on an image the target has already: only the referrers are copied.
    let out = s.run(&["--to", &to, "--referrers", "--image-reference", &image_ref]);
    assert_exit(&out, 0);
    assert_eq!(
        s.target.skopeo_digest(&format!("m/r/app:{sig_tag}")),
        sig_digest
    );
    assert_eq!(
        s.target.skopeo_digest(&format!("m/r/app:{fallback_tag}")),
        fallback_digest
    );
    assert!(s.target.has_manifest("m/r/app", &referrer_digest));
    assert_eq!(s.target.skopeo_digest("m/r/app:1"), image);
}

#[test]
fn a_blob_redirected_to_another_host_is_fetched_without_the_source_credentials() {
    use support::fake::{Hostile, Reply};
    let target = Registry::start();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"layer bytes from a blob store".to_vec();
    let (config_digest, layer_digest) = (
        support::registry::sha256(&config),
        support::registry::sha256(&layer),
    );
    let manifest = small_manifest(&config, &layer_digest, layer.len());
    let manifest_digest = support::registry::sha256(manifest.as_bytes());
    let blobs = vec![(config_digest, config), (layer_digest, layer)];
    let store = Hostile::start_on("127.0.0.2", move |seen, _| {
        for (d, bytes) in &blobs {
            if seen.target == format!("/store/{d}") {
                return Reply::Answer(200, vec![], bytes.clone());
            }
        }
        Reply::Answer(404, vec![], vec![])
    });
    let store_host = store.host();
    let source = Hostile::start(move |seen, _| {
        if !seen.headers.contains_key("authorization") {
            let challenge = (
                "WWW-Authenticate".to_owned(),
                r#"Basic realm="x""#.to_owned(),
            );
            return Reply::Answer(401, vec![challenge], vec![]);
        }
        let path = seen.target.as_str();
        if path == "/v2/" {
            return Reply::json("{}");
        }
        if path.ends_with("/manifests/1")
            || path.ends_with(&format!("/manifests/{manifest_digest}"))
        {
            let headers = vec![
                (
                    "Content-Type".to_owned(),
                    support::registry::OCI_MANIFEST.to_owned(),
                ),
                ("Docker-Content-Digest".to_owned(), manifest_digest.clone()),
            ];
            return Reply::Answer(200, headers, manifest.clone().into_bytes());
        }
        if let Some(d) = path.strip_prefix("/v2/lie/app/blobs/") {
            let to = format!("http://{store_host}/store/{d}");
            return Reply::Answer(307, vec![("Location".to_owned(), to)], vec![]);
        }
        Reply::Answer(404, vec![], vec![])
    });
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    dir.write(
        "docker/config.json",
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            source.host()
        ),
    );
    let out = dir
        .cru(&["mirror", "--to", &format!("{}/m", target.host())])
        .arg("--image-reference")
        .arg(format!("{}/lie/app:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .env("DOCKER_CONFIG", dir.path().join("docker"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let fetched = store.seen();
    assert_eq!(fetched.len(), 2, "{fetched:#?}");
    assert!(
        fetched
            .iter()
            .all(|s| !s.headers.contains_key("authorization")),
        "the source's credentials went to the blob store: {fetched:#?}"
    );
    assert!(target.has_manifest("m/lie/app", "1"));
}

#[test]
fn a_pinned_reference_is_copied_by_digest_and_leaves_the_targets_tag_alone() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    let old = s.source.push_oci("pin/app", "old", &["1"]);
    let new = s.source.push_oci("pin/app", "new", &["1"]);
    let src = s.source.host();
    let to = format!("{}/m", s.target.host());
    let out = s.run(&[
        "--to",
        &to,
        "--image-reference",
        &format!("{src}/pin/app:1"),
        "--image-reference",
        &format!("{src}/pin/app:1@{old}"),
    ]);
    assert_exit(&out, 0);
    assert!(s.target.has_manifest("m/pin/app", &old));
    assert_eq!(s.target.skopeo_digest("m/pin/app:1"), new);
    assert!(
        stdout(&out).contains(&format!(
            "copied {src}/pin/app:1@{old} -> {to}/pin/app:1@{old}"
        )),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_unusable_destination_is_a_usage_error() {
    let dir = Dir::new();
    let out = dir.run(&["mirror", "--to", "mirror", "--image-reference", "nginx:1"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("invalid --to \"mirror\": expected REGISTRY[/PREFIX]"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_tag_the_target_keeps_immutable_is_an_error_not_an_overwrite() {
    use support::fake::{Hostile, Reply};
    let source = Registry::start();
    let digest = source.push_oci("team/app", "immutable", &["1"]);
    let manifest = {
        let out = std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/team/app:1", source.host()))
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let other = format!("sha256:{}", "e".repeat(64));
    let (want, body) = (digest.clone(), manifest.clone());
    // A target that has the image, and keeps its tag `1` on another digest.
    let target = Hostile::start(move |seen, _| {
        let path = seen.target.split('?').next().unwrap_or("");
        let manifest_headers = |d: &str| {
            vec![
                (
                    "Content-Type".to_owned(),
                    support::registry::OCI_MANIFEST.to_owned(),
                ),
                ("Docker-Content-Digest".to_owned(), d.to_owned()),
            ]
        };
        match (seen.method.as_str(), path) {
            ("GET", "/v2/") => Reply::json("{}"),
            ("HEAD", "/v2/m/team/app/manifests/1") => {
                Reply::Answer(200, manifest_headers(&other), vec![])
            }
            ("HEAD" | "GET", p) if p == format!("/v2/m/team/app/manifests/{want}") => {
                Reply::Answer(200, manifest_headers(&want), body.clone())
            }
            ("PUT", "/v2/m/team/app/manifests/1") => Reply::Answer(
                400,
                vec![("Content-Type".into(), "application/json".into())],
                br#"{"errors":[{"code":"TAG_INVALID","message":"the tag 1 is immutable"}]}"#
                    .to_vec(),
            ),
            _ => Reply::Answer(404, vec![], vec![]),
        }
    });
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&["mirror", "--to", &format!("{}/m", target.host())])
        .arg("--image-reference")
        .arg(format!("{}/team/app:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}/m/team/app:1: the target refused to point the tag at {digest}",
            target.host()
        )) && err.contains("TAG_INVALID: the tag 1 is immutable")
            && err.contains("cru does not overwrite"),
        "{err}"
    );
    let puts: Vec<_> = target
        .seen()
        .into_iter()
        .filter(|s| s.method != "GET" && s.method != "HEAD")
        .collect();
    assert_eq!(puts.len(), 1, "{puts:#?}");
}

#[test]
fn referrers_listed_by_the_referrers_api_are_copied() {
    use support::fake::{Hostile, Reply};
    let target = Registry::start();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"image layer".to_vec();
    let image = small_manifest(&config, &support::registry::sha256(&layer), layer.len());
    let image_digest = support::registry::sha256(image.as_bytes());
    let sbom = br#"{"spdxVersion":"SPDX-2.3"}"#.to_vec();
    let referrer = small_manifest(&config, &support::registry::sha256(&sbom), sbom.len());
    let referrer_digest = support::registry::sha256(referrer.as_bytes());
    let listing = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{referrer_digest}","size":{},"artifactType":"application/spdx+json"}}]}}"#,
        support::registry::OCI_INDEX,
        support::registry::OCI_MANIFEST,
        referrer.len()
    );
    let manifests = vec![
        (image_digest.clone(), image.clone()),
        (referrer_digest.clone(), referrer),
    ];
    let blobs = vec![
        (support::registry::sha256(&config), config),
        (support::registry::sha256(&layer), layer),
        (support::registry::sha256(&sbom), sbom),
    ];
    let referrers_path = format!("/v2/lie/app/referrers/{image_digest}");
    let source = Hostile::start(move |seen, _| {
        let path = seen.target.split('?').next().unwrap_or("");
        if path == "/v2/" {
            return Reply::json("{}");
        }
        if path == referrers_path {
            let ct = (
                "Content-Type".to_owned(),
                support::registry::OCI_INDEX.to_owned(),
            );
            return Reply::Answer(200, vec![ct], listing.clone().into_bytes());
        }
        for (d, body) in &manifests {
            let by_tag = path == "/v2/lie/app/manifests/1" && *d == manifests[0].0;
            if by_tag || path == format!("/v2/lie/app/manifests/{d}") {
                let headers = vec![
                    (
                        "Content-Type".to_owned(),
                        support::registry::OCI_MANIFEST.to_owned(),
                    ),
                    ("Docker-Content-Digest".to_owned(), d.clone()),
                ];
                return Reply::Answer(200, headers, body.clone().into_bytes());
            }
        }
        for (d, bytes) in &blobs {
            if path == format!("/v2/lie/app/blobs/{d}") {
                return Reply::Answer(200, vec![], bytes.clone());
            }
        }
        Reply::Answer(404, vec![], vec![])
    });
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&[
            "mirror",
            "--referrers",
            "--to",
            &format!("{}/m", target.host()),
        ])
        .arg("--image-reference")
        .arg(format!("{}/lie/app:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(target.has_manifest("m/lie/app", &referrer_digest));
    assert_eq!(target.skopeo_digest("m/lie/app:1"), image_digest);
}

#[test]
fn a_mount_asks_for_one_token_that_can_push_here_and_pull_from_there() {
    use cru::registry::auth::DockerConfig;
    use cru::registry::client::Client;
    use cru::registry::registries_conf::Endpoint;
    use cru::registry::RetryPolicy;
    let fake = support::fake::FakeRegistry::start();
    let client = Client::new(DockerConfig::default(), RetryPolicy::default(), 4).unwrap();
    let ep = Endpoint {
        scheme: "http",
        host: fake.host(),
        repository: "m/b".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let digest = format!("sha256:{}", "a".repeat(64));
    // The fake has no blob API; what matters is the token the mount was sent with.
    let _ = runtime.block_on(client.mount_blob(&ep, &digest, "m/a"));
    let tokens: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.contains("/token?"))
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:#?}");
    assert!(
        tokens[0].contains("scope=repository%3Am%2Fb%3Apull%2Cpush")
            && tokens[0].contains("scope=repository%3Am%2Fa%3Apull"),
        "{tokens:#?}"
    );
}

#[test]
fn a_blob_whose_source_body_breaks_off_is_started_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use support::fake::{Hostile, Reply};
    let target = Registry::start();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 199) as u8).collect();
    let layer_digest = support::registry::sha256(&layer);
    let manifest = small_manifest(&config, &layer_digest, layer.len());
    let manifest_digest = support::registry::sha256(manifest.as_bytes());
    let expected = manifest_digest.clone();
    let layer_gets = std::sync::Arc::new(AtomicUsize::new(0));
    let gets = layer_gets.clone();
    let config_digest = support::registry::sha256(&config);
    let source = Hostile::start(move |seen, _| {
        let path = seen.target.as_str();
        if path == "/v2/" {
            return Reply::json("{}");
        }
        if path.ends_with("/manifests/1")
            || path.ends_with(&format!("/manifests/{manifest_digest}"))
        {
            let headers = vec![
                (
                    "Content-Type".to_owned(),
                    support::registry::OCI_MANIFEST.to_owned(),
                ),
                ("Docker-Content-Digest".to_owned(), manifest_digest.clone()),
            ];
            return Reply::Answer(200, headers, manifest.clone().into_bytes());
        }
        if path == format!("/v2/lie/app/blobs/{config_digest}") {
            return Reply::Answer(200, vec![], config.clone());
        }
        if path == format!("/v2/lie/app/blobs/{layer_digest}") {
            if gets.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::Truncated(vec![], layer.clone(), 100_000);
            }
            return Reply::Answer(200, vec![], layer.clone());
        }
        Reply::Answer(404, vec![], vec![])
    });
    let dir = Dir::new();
    dir.write("registries.conf", "");
    let out = dir
        .cru(&["mirror", "--to", &format!("{}/m", target.host())])
        .arg("--image-reference")
        .arg(format!("{}/lie/app:1", source.host()))
        .arg("--registries-conf")
        .arg(dir.path().join("registries.conf"))
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("broke off"), "{}", stderr(&out));
    assert_eq!(layer_gets.load(Ordering::SeqCst), 2);
    assert!(
        stdout(&out).contains("blobs: 2 uploaded"),
        "{}",
        stdout(&out)
    );
    assert_eq!(target.skopeo_digest("m/lie/app:1"), expected);
}

// --- `--rewrite`: pointing the files at the copies ---

/// A tree that uses three images of the source in every form cru rewrites, and each image's
/// digest: `team/app:1.0`, `team/side:2`, `team/base:3`.
fn rewrite_tree(s: &Setup) -> [String; 3] {
    let app = s.source.push_oci("team/app", "rw-app", &["1.0"]);
    let side = s.source.push_oci("team/side", "rw-side", &["2"]);
    let base = s.source.push_docker("team/base", "rw-base", &["3"]);
    let src = s.source.host();
    s.dir.write(
        "tree/k8s/deploy.yaml",
        format!(
            "spec:\n  containers:\n    - name: app\n      image: {src}/team/app:1.0   # the app\n    - name: side\n      image: \"{src}/team/side:2\"\n"
        ),
    );
    s.dir.write(
        "tree/Dockerfile",
        format!("ARG BASE={src}/team/base:3\r\nFROM ${{BASE}} AS build\r\nFROM {src}/team/app:1.0\r\nRUN true\r\n"),
    );
    s.dir.write(
        "tree/compose.yaml",
        format!("services:\n  web:\n    image: {src}/team/side:2\n    environment: [A=1]\n"),
    );
    s.dir.write(
        "tree/chart/values.yaml",
        format!(
            "image:\n  registry: {src}\n  repository: team/app\n  tag: \"1.0\"\nsidecar:\n  repository: {src}/team/side\n  tag: 2\n  digest: \"\"\n"
        ),
    );
    s.dir.write(
        "tree/overlay/kustomization.yaml",
        format!(
            "images:\r\n  - name: {src}/team/app\r\n    newTag: \"1.0\"\r\n  - name: side\r\n    newName: {src}/team/side\r\n    newTag: \"2\"\r\n"
        ),
    );
    [app, side, base]
}

const TREE_FILES: [&str; 5] = [
    "tree/k8s/deploy.yaml",
    "tree/Dockerfile",
    "tree/compose.yaml",
    "tree/chart/values.yaml",
    "tree/overlay/kustomization.yaml",
];

fn snapshot(s: &Setup) -> Vec<Vec<u8>> {
    TREE_FILES.iter().map(|f| s.dir.read(f)).collect()
}

#[test]
fn rewrite_points_every_form_at_its_copy_pinned_keeping_every_other_byte() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    let [app, side, base] = rewrite_tree(&s);
    let tgt = s.target.host();
    let to = format!("{tgt}/m");
    let out = s.run(&["--to", &to, "--rewrite", "tree"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("images: 3 copied, 0 skipped, 0 failed"),
        "{}",
        stdout(&out)
    );
    let read = |f: &str| String::from_utf8(s.dir.read(f)).unwrap();
    assert_eq!(
        read("tree/k8s/deploy.yaml"),
        format!(
            "spec:\n  containers:\n    - name: app\n      image: {to}/team/app:1.0@{app}   # the app\n    - name: side\n      image: \"{to}/team/side:2@{side}\"\n"
        )
    );
    assert_eq!(
        read("tree/Dockerfile"),
        format!("ARG BASE={to}/team/base:3@{base}\r\nFROM ${{BASE}} AS build\r\nFROM {to}/team/app:1.0@{app}\r\nRUN true\r\n")
    );
    assert_eq!(
        read("tree/compose.yaml"),
        format!("services:\n  web:\n    image: {to}/team/side:2@{side}\n    environment: [A=1]\n")
    );
    assert_eq!(
        read("tree/chart/values.yaml"),
        format!(
            "image:\n  registry: {tgt}\n  repository: m/team/app\n  tag: \"1.0@{app}\"\nsidecar:\n  repository: {to}/team/side\n  tag: 2\n  digest: \"{side}\"\n"
        )
    );
    let src = s.source.host();
    assert_eq!(
        read("tree/overlay/kustomization.yaml"),
        format!(
            "images:\r\n  - name: {src}/team/app\r\n    newName: {to}/team/app\r\n    newTag: \"1.0\"\r\n    digest: {app}\r\n  - name: side\r\n    newName: {to}/team/side\r\n    newTag: \"2\"\r\n    digest: {side}\r\n"
        )
    );
    // cru itself reads back exactly the copies...
    let listed = s.dir.run(&["list", "--no-filename", "tree"]);
    assert_exit(&listed, 0);
    let listed = stdout(&listed);
    let mut refs: Vec<&str> = listed.lines().collect();
    refs.sort();
    refs.dedup();
    let mut want = vec![
        format!("{to}/team/app:1.0@{app}"),
        format!("{to}/team/base:3@{base}"),
        format!("{to}/team/side:2@{side}"),
    ];
    want.sort();
    assert_eq!(refs, want);
    // ...and an independent client finds those digests on the target.
    assert_eq!(s.target.skopeo_digest("m/team/app:1.0"), app);
    assert_eq!(s.target.skopeo_digest("m/team/side:2"), side);
    assert_eq!(s.target.skopeo_digest("m/team/base:3"), base);
    // A second run: nothing to copy, nothing to rewrite.
    let before = snapshot(&s);
    let out = s.run(&["--to", &to, "--rewrite", "tree"]);
    assert_exit(&out, 0);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn a_failing_copy_leaves_every_file_as_it_was() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    rewrite_tree(&s);
    // One more image, which the source does not have.
    s.dir.write(
        "tree/missing.yaml",
        format!("image: {}/team/gone:9\n", s.source.host()),
    );
    let before = snapshot(&s);
    let out = s.run(&[
        "--to",
        &format!("{}/m", s.target.host()),
        "--rewrite",
        "tree",
    ]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("no file was rewritten"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&s), before);
    assert_eq!(
        s.dir.read("tree/missing.yaml"),
        format!("image: {}/team/gone:9\n", s.source.host()).into_bytes()
    );
}

#[test]
fn check_fails_for_a_file_not_pointing_at_its_copy_and_passes_after_rewrite() {
    let s = Setup::new();
    let target_proxy = Proxy::start(&s.target.url(), &[]);
    s.credentials(&[s.source.host(), target_proxy.host()]);
    rewrite_tree(&s);
    let to = format!("{}/m", target_proxy.host());
    // Copied, not rewritten: the images are there, the files do not point at them.
    assert_exit(&s.run(&["--to", &to, "tree"]), 0);
    let before = snapshot(&s);
    let writes_before = writes(&target_proxy.requests()).len();
    let out = s.run(&["--to", &to, "--rewrite", "--check", "tree"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    let src = s.source.host();
    assert!(
        text.contains(&format!(
            "tree/k8s/deploy.yaml:4:14: {src}/team/app:1.0 does not point at its copy {to}/team/app:1.0@sha256:"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "tree/overlay/kustomization.yaml:3:13: {src}/team/app:1.0 does not"
        )),
        "{text}"
    );
    assert!(text.contains("images: 0 missing, 3 present"), "{text}");
    assert_eq!(snapshot(&s), before, "a check writes no file");
    assert_eq!(writes(&target_proxy.requests()).len(), writes_before);

    assert_exit(&s.run(&["--to", &to, "--rewrite", "tree"]), 0);
    let out = s.run(&["--to", &to, "--rewrite", "--check", "tree"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(!text.contains("does not point"), "{text}");
    // The references now name the copies: those are what is checked.
    assert!(text.contains("images: 0 missing, 3 present"), "{text}");
    assert!(
        text.contains(&format!("present {to}/team/app:1.0@sha256:")),
        "{text}"
    );
}

#[test]
fn dry_run_rewrite_prints_the_diff_and_writes_neither_files_nor_the_target() {
    let s = Setup::new();
    let target_proxy = Proxy::start(&s.target.url(), &[]);
    s.credentials(&[s.source.host(), target_proxy.host()]);
    let [app, ..] = rewrite_tree(&s);
    let to = format!("{}/m", target_proxy.host());
    let before = snapshot(&s);
    let out = s.run(&["--to", &to, "--rewrite", "--dry-run", "tree"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("--- a/tree/k8s/deploy.yaml"), "{text}");
    assert!(
        text.contains(&format!(
            "+      image: {to}/team/app:1.0@{app}   # the app"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("+    newName: {to}/team/app\r")),
        "{text}"
    );
    assert_eq!(snapshot(&s), before);
    let log = target_proxy.requests();
    assert!(writes(&log).is_empty(), "{log:#?}");
    assert!(!s.target.has_manifest("m/team/app", "1.0"));
}

#[test]
fn the_config_file_names_the_target_and_maps_names_with_placeholders() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    let [app, ..] = rewrite_tree(&s);
    let tgt = s.target.host();
    let src = s.source.host();
    s.dir.write(
        "tree/.cru.yaml",
        format!("mirror:\n  to: {tgt}/m\n  map:\n    - from: \"{src}/team/app\"\n      to: \"apps/{{name}}\"\n    - from: \"{src}/**\"\n      to: \"src/{{path}}\"\n"),
    );
    let out = s.run(&["--rewrite", "tree"]);
    assert_exit(&out, 0);
    assert_eq!(s.target.skopeo_digest("m/apps/app:1.0"), app);
    assert!(s.target.has_manifest("m/src/team/side", "2"));
    let deploy = s.dir.read_string("tree/k8s/deploy.yaml");
    assert!(
        deploy.contains(&format!("image: {tgt}/m/apps/app:1.0@{app}   # the app")),
        "{deploy}"
    );
    let shown = s.dir.run(&["config", "show", "tree"]);
    assert!(
        stdout(&shown).contains(&format!("mirror.to: {tgt}/m  # tree/.cru.yaml:2")),
        "{}",
        stdout(&shown)
    );
    // --to wins over the file.
    let out = s.run(&[
        "--to",
        &format!("{tgt}/z"),
        "--image-reference",
        &format!("{src}/team/base:3"),
        "tree",
    ]);
    assert_exit(&out, 0);
    assert!(s.target.has_manifest("z/src/team/base", "3"));
}

#[test]
fn a_map_that_sends_two_sources_to_one_name_fails_before_anything_is_copied() {
    let s = Setup::new();
    let target_proxy = Proxy::start(&s.target.url(), &[]);
    s.credentials(&[s.source.host(), target_proxy.host()]);
    rewrite_tree(&s);
    let tgt = target_proxy.host();
    s.dir.write(
        "tree/.cru.yaml",
        format!(
            "mirror:\n  to: {tgt}/m\n  map:\n    - {{from: \"**\", to: \"all/{{registry}}\"}}\n"
        ),
    );
    let before = snapshot(&s);
    let out = s.run(&["--rewrite", "tree"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(&format!("would both be mirrored to {tgt}/m/all/127.0.0.1-")),
        "{}",
        stderr(&out)
    );
    assert!(
        target_proxy.requests().is_empty(),
        "{:#?}",
        target_proxy.requests()
    );
    assert_eq!(snapshot(&s), before);
}

#[test]
fn rewrite_with_one_platform_pins_the_platform_manifest_and_a_pinned_reference_keeps_its_digest() {
    let s = Setup::new();
    s.credentials(&[s.source.host(), s.target.host()]);
    let (_, _, arm64) = s.source.push_index("p/multi", "rw-plat", &["1"]);
    let old = s.source.push_oci("pin/app", "rw-old", &["1"]);
    s.source.push_oci("pin/app", "rw-new", &["1"]);
    let src = s.source.host();
    s.dir.write(
        "tree/a.yaml",
        format!("- image: {src}/p/multi:1\n- image: {src}/pin/app:1@{old}\n"),
    );
    let to = format!("{}/m", s.target.host());
    let out = s.run(&[
        "--to",
        &to,
        "--platform",
        "linux/arm64",
        "--rewrite",
        "tree",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        s.dir.read_string("tree/a.yaml"),
        format!("- image: {to}/p/multi:1@{arm64}\n- image: {to}/pin/app:1@{old}\n")
    );
    assert_eq!(s.target.skopeo_digest("m/p/multi:1"), arm64);
}

#[test]
fn rewrite_refuses_several_platforms_and_named_images_without_paths() {
    let dir = Dir::new();
    for (args, says) in [
        (
            &[
                "--platform",
                "linux/amd64",
                "--platform",
                "linux/arm64",
                ".",
            ][..],
            "--rewrite with several --platform",
        ),
        (&["--image-reference", "nginx:1"][..], "give the PATHs"),
    ] {
        let mut all = vec!["mirror", "--to", "127.0.0.1:9/m", "--rewrite"];
        all.extend(args);
        let out = dir.run(&all);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    let out = dir.run(&["mirror", "--image-reference", "nginx:1"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("cru mirror needs a target: give --to"),
        "{}",
        stderr(&out)
    );
}
