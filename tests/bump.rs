//! `cru outdated` and `cru update --bump`, end to end: the binary against the real
//! distribution registry, with tag sets modelled on real repositories; digests cross-checked
//! with skopeo, request counts from registry-proxy's log.

mod support;
mod util;

use std::collections::HashMap;
use std::path::PathBuf;

use support::registry::{Proxy, Registry};
use util::{assert_exit, stderr, stdout, Dir};

/// A folder with an empty docker config and registries.conf, so the user's never leak in.
struct Setup {
    dir: Dir,
}

impl Setup {
    fn new() -> Setup {
        let dir = Dir::new();
        dir.write(".config/docker/config.json", "{}");
        dir.write(".config/registries.conf", "");
        Setup { dir }
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join(".config/registries.conf")
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.dir.cru(args);
        cmd.env("DOCKER_CONFIG", self.dir.path().join(".config/docker"))
            .env("CRU_REGISTRIES_CONF", self.conf_path())
            .env("HOME", self.dir.path());
        cmd.output().unwrap()
    }
}

/// The tag sets, each repository's tags on one small image (the winners that a test pins on
/// images of their own).
fn push_tag_sets(reg: &Registry) {
    reg.push_oci(
        "lib/node",
        "node",
        &[
            "20.11.1-alpine3.19",
            "20.11.2-alpine3.19",
            "20.12.2-alpine3.19",
            "20.12.2-alpine3.20",
            "20.13.0-bookworm",
            "22.1.0-alpine3.19",
            "20.11.3",
            "20-alpine",
            "20-alpine3.19",
            "20-alpine3.20",
            "21-alpine",
            "22-alpine",
            "lts-alpine",
            "21.0.0-rc.1",
            "21.0.0-rc.2",
            "21.0.0",
            "21.1.0",
            "23.0.0-rc.1",
            "latest",
        ],
    );
    reg.push_oci(
        "lib/python",
        "python",
        &[
            "3.12.1",
            "3.12.2",
            "3.12.10",
            "3.13.0b1",
            "3.13.0b3",
            "3.13.0",
            "3.13.1",
            "3.14.0a1",
            "4.0.0a1",
            "3.12-slim-bookworm",
            "3.13-slim-bookworm",
            "3.13-slim-bullseye",
            "3.13",
        ],
    );
    reg.push_oci(
        "bitnami/redis",
        "redis",
        &[
            "7.2.4-debian-12-r24",
            "7.2.4-debian-12-r25",
            "7.2.4-debian-12-r9",
            "7.2.5-debian-12-r1",
            "7.4.0-debian-12-r3",
            "7.2.5",
            "7.2.4-debian-11-r30",
        ],
    );
    reg.push_oci(
        "bitnami/nginx",
        "bn",
        &[
            "1.25.3-debian-12-r24",
            "1.25.3-debian-12-r25",
            "1.25.3-debian-12-r9",
        ],
    );
    reg.push_oci(
        "linuxserver/nginx",
        "ls",
        &[
            "1.2.3-ls126",
            "1.2.3-ls127",
            "1.2.4-ls130",
            "1.3.0-ls131",
            "1.2.5",
        ],
    );
    reg.push_oci(
        "lib/app",
        "app",
        &["v1.2.3", "v1.2.4", "v2.0.0", "1.9.9", "release-3.0.0"],
    );
    reg.push_oci("lib/app", "app-1.3", &["v1.3.0"]);
    reg.push_oci(
        "lib/plex",
        "plex",
        &[
            "1.40.0.7998-c29d4c0c8",
            "1.40.1.8227-c0dd5a73e",
            "1.41.0.8992-8463ad060",
            "1.40.0.7998",
            "1.40.0",
        ],
    );
    reg.push_oci(
        "lib/dated",
        "dated",
        &[
            "2024.01.15",
            "2024.01.20",
            "2024.02.01",
            "2025.01.10",
            "20240115",
            "20250101",
        ],
    );
}

const FILE: &str = "\
a: HOST/lib/node:20.11.1-alpine3.19
b: HOST/lib/node:20-alpine3.19
c: HOST/lib/node:lts-alpine
d: HOST/lib/node:21.0.0-rc.1
e: HOST/lib/python:3.12.1
f: HOST/lib/python:3.13.0b1
g: HOST/lib/python:3.12-slim-bookworm
h: HOST/bitnami/redis:7.2.4-debian-12-r24
i: HOST/linuxserver/nginx:1.2.3-ls126
j: HOST/lib/app:v1.2.3
k: HOST/lib/plex:1.40.0.7998-c29d4c0c8
l: HOST/lib/dated:2024.01.15
m: HOST/lib/dated:20240115
n: HOST/lib/app:v1.2.3 # cru: bump=patch
o: HOST/bitnami/nginx:1.25.3-debian-12-r24
";

/// `cru outdated --format json` as reference → (status, patch, minor, major), for one line.
fn outdated_json(out: &str) -> HashMap<(String, usize), [Option<String>; 4]> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().map(str::to_owned);
            (
                (
                    s("reference").unwrap(),
                    v["line"].as_u64().unwrap() as usize,
                ),
                [s("status"), s("patch"), s("minor"), s("major")],
            )
        })
        .collect()
}

#[test]
fn outdated_and_bump_choose_the_exact_tag_at_each_level_on_real_tag_sets() {
    let reg = Registry::start();
    push_tag_sets(&reg);
    let proxy = Proxy::start(&format!("http://{}", reg.host()), &[]);
    let host = proxy.host();
    let setup = Setup::new();
    setup.dir.write("deploy.yaml", FILE.replace("HOST", &host));

    let out = setup.run(&["outdated", "--format", "json"]);
    assert_exit(&out, 1);
    let rows = outdated_json(&stdout(&out));
    let o = |s: &str| Some(s.to_owned());
    let want = |line: usize,
                r: &str,
                status: &str,
                p: Option<&str>,
                mi: Option<&str>,
                ma: Option<&str>| {
        let key = (format!("{host}/{r}"), line);
        assert_eq!(
            rows.get(&key),
            Some(&[
                o(status),
                p.map(str::to_owned),
                mi.map(str::to_owned),
                ma.map(str::to_owned)
            ]),
            "{key:?}"
        );
    };
    // The variant family and its own version stay; precision stays; prereleases only from a
    // prerelease of the same core.
    want(
        1,
        "lib/node:20.11.1-alpine3.19",
        "outdated",
        Some("20.11.2-alpine3.19"),
        Some("20.12.2-alpine3.19"),
        Some("22.1.0-alpine3.19"),
    );
    want(2, "lib/node:20-alpine3.19", "current", None, None, None);
    want(3, "lib/node:lts-alpine", "not-a-version", None, None, None);
    want(
        4,
        "lib/node:21.0.0-rc.1",
        "outdated",
        Some("21.0.0"),
        Some("21.1.0"),
        None,
    );
    want(
        5,
        "lib/python:3.12.1",
        "outdated",
        Some("3.12.10"),
        Some("3.13.1"),
        None,
    );
    want(
        6,
        "lib/python:3.13.0b1",
        "outdated",
        Some("3.13.1"),
        None,
        None,
    );
    want(
        7,
        "lib/python:3.12-slim-bookworm",
        "outdated",
        None,
        Some("3.13-slim-bookworm"),
        None,
    );
    // Bitnami: a newer version wins over a newer revision; the revision orders within one.
    want(
        8,
        "bitnami/redis:7.2.4-debian-12-r24",
        "outdated",
        Some("7.2.5-debian-12-r1"),
        Some("7.4.0-debian-12-r3"),
        None,
    );
    want(
        9,
        "linuxserver/nginx:1.2.3-ls126",
        "outdated",
        Some("1.2.4-ls130"),
        Some("1.3.0-ls131"),
        None,
    );
    want(
        10,
        "lib/app:v1.2.3",
        "outdated",
        Some("v1.2.4"),
        Some("v1.3.0"),
        Some("v2.0.0"),
    );
    want(
        11,
        "lib/plex:1.40.0.7998-c29d4c0c8",
        "outdated",
        Some("1.40.1.8227-c0dd5a73e"),
        Some("1.41.0.8992-8463ad060"),
        None,
    );
    want(
        12,
        "lib/dated:2024.01.15",
        "outdated",
        Some("2024.01.20"),
        Some("2024.02.01"),
        Some("2025.01.10"),
    );
    want(
        13,
        "lib/dated:20240115",
        "outdated",
        None,
        None,
        Some("20250101"),
    );
    // The marker limits the policy, not the levels shown.
    want(
        14,
        "lib/app:v1.2.3",
        "outdated",
        Some("v1.2.4"),
        Some("v1.3.0"),
        Some("v2.0.0"),
    );
    want(
        15,
        "bitnami/nginx:1.25.3-debian-12-r24",
        "outdated",
        Some("1.25.3-debian-12-r25"),
        None,
        None,
    );

    // One tag list per repository, one page each; no manifest requests at all.
    let requests = proxy.requests();
    let mut lists: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.contains("/tags/list"))
        .map(|r| r.path.as_str())
        .collect();
    lists.sort();
    assert_eq!(lists.len(), 8, "{lists:?}");
    lists.dedup_by(|a, b| a.split('?').next() == b.split('?').next());
    assert_eq!(lists.len(), 8, "one per repository: {requests:?}");
    assert!(
        !requests
            .iter()
            .any(|r| r.path.contains("/manifests/") || r.path.contains("/blobs/")),
        "{requests:?}"
    );

    // Bumping writes the tag the policy allows: here minor, patch on the marked line.
    let before = requests.len();
    let out = setup.run(&["update", "--bump", "minor"]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("deploy.yaml"),
        format!(
            "\
a: {host}/lib/node:20.12.2-alpine3.19
b: {host}/lib/node:20-alpine3.19
c: {host}/lib/node:lts-alpine
d: {host}/lib/node:21.1.0
e: {host}/lib/python:3.13.1
f: {host}/lib/python:3.13.1
g: {host}/lib/python:3.13-slim-bookworm
h: {host}/bitnami/redis:7.4.0-debian-12-r3
i: {host}/linuxserver/nginx:1.3.0-ls131
j: {host}/lib/app:v1.3.0
k: {host}/lib/plex:1.41.0.8992-8463ad060
l: {host}/lib/dated:2024.02.01
m: {host}/lib/dated:20240115
n: {host}/lib/app:v1.2.4 # cru: bump=patch
o: {host}/bitnami/nginx:1.25.3-debian-12-r25
"
        )
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "INFO: bumping repository {host}/lib/app Tag v1.2.3 to Tag v1.3.0 (minor)"
        )),
        "{err}"
    );
    let requests = proxy.requests();
    assert!(
        requests[before..]
            .iter()
            .all(|r| r.path == "/v2/" || r.path.contains("/tags/list")),
        "an unpinned bump reads tag lists only: {:?}",
        &requests[before..]
    );

    // Now nothing is outdated at the minor level.
    let out = setup.run(&["outdated", "--bump", "minor"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{host}/lib/node:lts-alpine: not a version")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "deploy.yaml:10: {host}/lib/app:v1.3.0 → v2.0.0 (major); bump=minor allows none"
        )),
        "{text}"
    );
}

#[test]
fn a_pinned_reference_gets_the_new_tags_digest_and_heads_are_only_for_pinned_winners() {
    let reg = Registry::start();
    let old = reg.push_oci("lib/app", "old", &["v1.2.3"]);
    let new = reg.push_oci("lib/app", "new", &["v1.3.0"]);
    reg.push_oci("lib/app", "other", &["v2.0.0", "v1.2.4"]);
    let (index, _, arm64) = reg.push_index("team/multi", "m2", &["2.1.0"]);
    let (_, _, arm64_old) = reg.push_index("team/multi", "m1", &["2.0.0"]);
    reg.push_oci("team/plain", "p", &["1.0.0", "1.1.0"]);
    let proxy = Proxy::start(&format!("http://{}", reg.host()), &[]);
    let host = proxy.host();
    let setup = Setup::new();
    let text = format!(
        "a: {host}/lib/app:v1.2.3@{old}\nb: {host}/team/plain:1.0.0\nc: {host}/lib/app:v1.2.3@{old}\n"
    );
    setup.dir.write("pinned.yaml", &text);

    let out = setup.run(&["update", "--bump", "minor"]);
    assert_exit(&out, 0);
    assert_eq!(new, reg.skopeo_digest("lib/app:v1.3.0"));
    assert_eq!(
        setup.dir.read_string("pinned.yaml"),
        format!("a: {host}/lib/app:v1.3.0@{new}\nb: {host}/team/plain:1.1.0\nc: {host}/lib/app:v1.3.0@{new}\n")
    );
    let requests = proxy.requests();
    let manifests: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("/manifests/"))
        .collect();
    assert_eq!(
        manifests.len(),
        1,
        "one HEAD for the one pinned winner: {requests:?}"
    );
    assert_eq!(manifests[0].method, "HEAD");
    assert!(
        manifests[0].path.ends_with("/manifests/v1.3.0"),
        "{manifests:?}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.path.contains("/tags/list"))
            .count(),
        2,
        "one tag list per repository: {requests:?}"
    );

    // --resolve-digest pins every bumped reference; a multi-platform winner gets the index's
    // digest, or with --platform the platform's own.
    setup
        .dir
        .write("multi.yaml", format!("x: {host}/team/multi:2.0.0\n"));
    let out = setup.run(&[
        "update",
        "--bump",
        "minor",
        "--resolve-digest",
        "multi.yaml",
    ]);
    assert_exit(&out, 0);
    assert_eq!(index, reg.skopeo_digest("team/multi:2.1.0"));
    assert_eq!(
        setup.dir.read_string("multi.yaml"),
        format!("x: {host}/team/multi:2.1.0@{index}\n")
    );
    setup
        .dir
        .write("multi.yaml", format!("x: {host}/team/multi:2.0.0\n"));
    let out = setup.run(&[
        "update",
        "--bump",
        "patch",
        "--resolve-digest",
        "--platform",
        "linux/arm64",
        "multi.yaml",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("multi.yaml"),
        format!("x: {host}/team/multi:2.0.0@{arm64_old}\n")
    );
    assert_eq!(
        arm64_old,
        reg.skopeo_digest(&format!("team/multi@{arm64_old}"))
    );
    let out = setup.run(&[
        "update",
        "--bump",
        "minor",
        "--resolve-digest",
        "--platform",
        "linux/arm64",
        "multi.yaml",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("multi.yaml"),
        format!("x: {host}/team/multi:2.1.0@{arm64}\n")
    );
}

/// Both proxies append to one log, so that its lines are in the order the answers were
/// sent across two registries: wait until it has `n` lines (at most 10 s).
fn shared_log(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_pinned_winners_head_is_sent_as_soon_as_its_tag_list_is_in() {
    // Issue 12's benchmark: the HEADs must not wait for every other tag list. One registry
    // behind a slow proxy (400 ms per request) and the same registry behind a fast one: the
    // fast repository's list and HEAD are done long before the slow repository's list.
    let reg = Registry::start();
    reg.push_oci("slow/app", "s1", &["1.0.0"]);
    reg.push_oci("slow/app", "s2", &["1.1.0"]);
    reg.push_oci("fast/app", "f1", &["1.0.0"]);
    let fast_new = reg.push_oci("fast/app", "f2", &["1.1.0"]);
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("both.log");
    let log_arg = log.to_str().unwrap();
    let upstream = format!("http://{}", reg.host());
    let slow = Proxy::start(&upstream, &["--delay-ms", "400", "--log", log_arg]);
    let fast = Proxy::start(&upstream, &["--log", log_arg]);
    let setup = Setup::new();
    setup.dir.write(
        "refs.yaml",
        format!(
            "a: {}/slow/app:1.0.0\nb: {}/fast/app:1.0.0\n",
            slow.host(),
            fast.host()
        ),
    );
    let out = setup.run(&["update", "--bump", "minor", "--resolve-digest"]);
    assert_exit(&out, 0);
    assert!(
        setup
            .dir
            .read_string("refs.yaml")
            .contains(&format!("/fast/app:1.1.0@{fast_new}\n")),
        "{}",
        setup.dir.read_string("refs.yaml")
    );
    // A ping, a tag list and a HEAD of the winner per registry; no manifest GET.
    let lines = shared_log(&log, 6);
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_eq!(count("GET /v2/ "), 2, "{lines:#?}");
    assert_eq!(count("HEAD /v2/slow/app/manifests/1.1.0 "), 1, "{lines:#?}");
    assert_eq!(count("HEAD /v2/fast/app/manifests/1.1.0 "), 1, "{lines:#?}");
    let at = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
    let fast_head = at("HEAD /v2/fast/app/manifests/1.1.0 ").unwrap();
    let slow_list = at("GET /v2/slow/app/tags/list").expect("the slow list");
    assert!(
        fast_head < slow_list,
        "the fast HEAD waited for the slow tag list: {lines:#?}"
    );
}

#[test]
fn a_failing_lookup_exits_3_and_writes_nothing() {
    let reg = Registry::start();
    reg.push_oci("lib/app", "a", &["1.0.0", "1.1.0"]);
    let host = reg.host();
    let setup = Setup::new();
    let text = format!("a: {host}/lib/app:1.0.0\nb: {host}/lib/missing:1.0.0\n");
    setup.dir.write("deploy.yaml", &text);
    for args in [
        &["update", "--bump", "major"][..],
        &["update", "--bump", "major", "--dry-run"][..],
    ] {
        let out = setup.run(args);
        assert_exit(&out, 3);
        let err = stderr(&out);
        assert!(err.contains(&format!("{host}/lib/missing")), "{err}");
        assert!(err.contains("no file was updated"), "{err}");
        assert!(stdout(&out).is_empty(), "no diff: {}", stdout(&out));
        assert_eq!(setup.dir.read_string("deploy.yaml"), text);
    }
    let out = setup.run(&["outdated"]);
    assert_exit(&out, 3);
    assert_eq!(
        stdout(&out),
        format!("deploy.yaml:1: {host}/lib/app:1.0.0 → 1.1.0 (minor)\n"),
        "what could be compared is still shown"
    );
}

#[test]
fn outdated_exit_codes_and_formats() {
    let reg = Registry::start();
    reg.push_oci("lib/app", "a", &["1.0.0", "1.0.1", "latest"]);
    let host = reg.host();
    let setup = Setup::new();
    setup.dir.write(
        "ok.yaml",
        format!("a: {host}/lib/app:1.0.1\nb: {host}/lib/app:latest\n"),
    );
    let out = setup.run(&["outdated", "ok.yaml"]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        format!("ok.yaml:2: {host}/lib/app:latest: not a version\n")
    );
    setup
        .dir
        .write("old.yaml", format!("a: {host}/lib/app:1.0.0\n"));
    let out = setup.run(&["outdated", "old.yaml"]);
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        format!("old.yaml:1: {host}/lib/app:1.0.0 → 1.0.1 (patch)\n")
    );
    let out = setup.run(&["outdated", "--format", "github", "old.yaml"]);
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        format!("::warning file=old.yaml,line=1,col=4,title=cru::{host}/lib/app:1.0.0 → 1.0.1 (patch)\n")
    );
    let out = setup.run(&["outdated", "--format", "json", "old.yaml"]);
    assert_exit(&out, 1);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["allowed"], "1.0.1");
    assert_eq!(v["status"], "outdated");
    assert_eq!(v["bump"], "major");
    assert_eq!(v["line"], 1);
    // `update --bump --check` is the same question with a diff: exit 1, nothing written.
    let out = setup.run(&["update", "--bump", "patch", "--check", "old.yaml"]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains(&format!("+a: {host}/lib/app:1.0.1")),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        setup.dir.read_string("old.yaml"),
        format!("a: {host}/lib/app:1.0.0\n")
    );
    // A .cru.yaml rule sets the policy: ignore-tags drops the only candidate.
    setup.dir.write(
        ".cru.yaml",
        "rules:\n  - match: {image: '**/lib/app'}\n    ignore-tags: ['1\\.0\\.1']\n",
    );
    let out = setup.run(&["outdated", "old.yaml"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "");
}

#[test]
fn ten_thousand_tags_are_read_once_for_every_reference_to_the_repository() {
    let reg = Registry::start();
    // Many tags on one image, pushed from a few threads.
    let tags: Vec<String> = (0..10_000)
        .map(|i| format!("1.{}.{}", i / 100, i % 100))
        .collect();
    let digest = reg.push_oci("big/many", "big", &["1.0.0"]);
    reg.tag_in_storage("big/many", &digest, &tags);
    // The listing is real: the registry answers with every tag.
    let proxy = Proxy::start(&format!("http://{}", reg.host()), &[]);
    let host = proxy.host();
    let setup = Setup::new();
    setup.dir.write(
        "big.yaml",
        format!("a: {host}/big/many:1.0.0\nb: {host}/big/many:1.42.7\n"),
    );
    let out = setup.run(&["update", "--bump", "minor"]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("big.yaml"),
        format!("a: {host}/big/many:1.99.99\nb: {host}/big/many:1.99.99\n")
    );
    let requests = proxy.requests();
    let pages: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("/tags/list"))
        .collect();
    // distribution 2.8 ignores `?n=` on tag lists and answers with all of them at once
    // (following `Link` pages is tested against a fake in tests/registry.rs).
    assert_eq!(pages.len(), 1, "read once for both references: {pages:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.path == "/v2/" || r.path.contains("/tags/list")),
        "{requests:?}"
    );
    let out = setup.run(&["outdated", "--format", "json", "--bump", "patch"]);
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(v["status"], "current", "{v}");
    assert_eq!(v["patch"], serde_json::Value::Null);
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_repository_clone_is_bumped_by_its_own_rules_and_the_commit_is_pushed() {
    let reg = Registry::start();
    reg.push_oci("lib/app", "a", &["1.0.0", "1.0.1", "1.1.0", "2.0.0"]);
    reg.push_oci("lib/db", "d", &["5.1.0", "5.2.0", "6.0.0"]);
    let host = reg.host();
    let work = Dir::new();
    git(work.path(), &["init", "-q", "-b", "main"]);
    work.write(
        ".cru.yaml",
        "rules:\n  - match: {image: '**/lib/db'}\n    bump: major\n",
    );
    work.write(
        "a.yaml",
        format!("a: {host}/lib/app:1.0.0\nb: {host}/lib/db:5.1.0\n"),
    );
    git(work.path(), &["add", "."]);
    git(
        work.path(),
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ],
    );
    let bare = Dir::new();
    git(
        bare.path(),
        &[
            "clone",
            "-q",
            "--bare",
            work.path().to_str().unwrap(),
            "r.git",
        ],
    );
    let url = format!("file://{}/r.git", bare.path().display());
    let setup = Setup::new();
    let out = setup.run(&[
        "update",
        "--bump",
        "patch",
        "--repository",
        &url,
        "--commit",
        "bump versions",
        "--username",
        "cru",
        "--email",
        "cru@localhost",
    ]);
    assert_exit(&out, 0);
    let repo = bare.path().join("r.git");
    assert_eq!(
        git(&repo, &["show", "HEAD:a.yaml"]),
        format!("a: {host}/lib/app:1.0.1\nb: {host}/lib/db:6.0.0\n"),
        "--bump patch for the app, the rule's major for the database"
    );
    assert_eq!(
        git(&repo, &["log", "-1", "--format=%s"]).trim(),
        "bump versions"
    );
}
