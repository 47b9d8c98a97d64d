use super::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn refs(text: &str) -> Vec<String> {
    Scanner::new(ScanOptions::default())
        .scan(text.as_bytes())
        .into_iter()
        .map(|o| {
            assert_eq!(&text[o.start..o.end], o.reference.to_string());
            o.reference.to_string()
        })
        .collect()
}

fn qualified_only(text: &str) -> Vec<String> {
    Scanner::new(ScanOptions { unqualified: false })
        .scan(text.as_bytes())
        .into_iter()
        .map(|o| o.reference.to_string())
        .collect()
}

#[test]
fn qualified_references_anywhere() {
    assert_eq!(refs("use gcr.io/p/app:v1 here"), ["gcr.io/p/app:v1"]);
    assert_eq!(refs("bitnami/nginx:1.2"), ["bitnami/nginx:1.2"]);
    let pinned = format!("quay.io/x/y@{D}");
    assert_eq!(refs(&format!("x {pinned} y")), [pinned]);
    let both = format!("docker.io/library/python:3.7@{D}");
    assert_eq!(refs(&both), [both]);
    assert_eq!(refs("localhost:5000/app:1"), ["localhost:5000/app:1"]);
}

#[test]
fn names_without_tag_or_digest_are_not_references() {
    assert!(refs("gcr.io/p/app and bitnami/nginx").is_empty());
    assert!(refs("image: nginx\nFROM ubuntu\n").is_empty());
}

#[test]
fn single_character_tags() {
    assert_eq!(refs("repo/x:3"), ["repo/x:3"]);
}

#[test]
fn numeric_tags_outside_file_lines_and_port_maps() {
    assert_eq!(refs("  image: bitnami/redis:7"), ["bitnami/redis:7"]);
    assert_eq!(refs("gcr.io/p/app.v2:10"), ["gcr.io/p/app.v2:10"]);
    assert_eq!(refs("- 'gcr.io/a/b:1' # quoted"), ["gcr.io/a/b:1"]);
    assert_eq!(refs(r#"x: "gcr.io/a/b:1""#), ["gcr.io/a/b:1"]);
}

#[test]
fn urls_labels_mounts_and_templates_give_nothing() {
    for text in [
        "https://host/a/b:c",
        "see https://github.com/org/repo:main for details",
        "//pkg:target",
        "@io_bazel//container:container.bzl",
        "docker//container:container.bzl",
        "- /my/data:/var/lib/mysql:Z",
        "./conf/nginx.conf:/etc/nginx/nginx.conf:ro",
        "${REGISTRY}/team/app:v1",
        "gcr.io/$PROJECT_ID/app:1",
        "gcr.io/${PROJECT}/app:1",
        "{{ .Values.registry }}/app:1",
        "$(params.image)/x:1",
        "image: nginx:{{ .Values.tag }}",
        "image: {{ .Values.repo }}:{{ .Values.tag }}",
        "gcr.io/a/b:v1{x}",
        "gcr.io/a/b:v1$x",
        "golang.org/x/tools/cmd/goimports@v0.1.0",
        "git@github.com:org/repo.git",
        "app.kubernetes.io/name: foo",
        "Foo/bar:1",
        "a/b:c@sha256:123",
        r#"Sprintf("%s/test/valid/docker:latest", host)"#,
        r"runtime\t/usr/lib/golang/src/runtime/proc.go:225",
        "<your-registry>/app:1",
        "$(REGISTRY)app:1",
        r#""caller":"entrypoint/entrypointer.go:188""#,
        "alertmanager: 'quay.io/prometheus/alertmanager:v' + $.values.versions.am,",
        r#"x = "gcr.io/a/b:v" + version"#,
        r#"  "8080": "default/example-tcp-svc:9000""#,
        "##   53: \"kube-system/kube-dns:53\"",
        "  9000: default/test:8080",
    ] {
        assert_eq!(refs(text), Vec::<String>::new(), "{text:?}");
    }
}

#[test]
fn a_host_with_dots_in_the_path_is_one_reference() {
    assert_eq!(
        refs("gcr.io/google.com/cloudsdktool/cloud-sdk:alpine"),
        ["gcr.io/google.com/cloudsdktool/cloud-sdk:alpine"]
    );
}

#[test]
fn a_sentence_final_dot_is_not_part_of_the_tag() {
    assert_eq!(refs("… use gcr.io/a/b:v1.2."), ["gcr.io/a/b:v1.2"]);
    assert_eq!(refs("use gcr.io/a/b:v1.2.\nnext"), ["gcr.io/a/b:v1.2"]);
    assert_eq!(refs("FROM python:3.12."), ["python:3.12"]);
}

#[test]
fn transports_are_skipped() {
    assert_eq!(refs("docker://gcr.io/a/b:1"), ["gcr.io/a/b:1"]);
    assert_eq!(refs("docker-image://alpine/git:2"), ["alpine/git:2"]);
    assert_eq!(refs("oci://quay.io/a/b:1"), ["quay.io/a/b:1"]);
    assert_eq!(refs("    uses: docker://alpine:3.8"), ["alpine:3.8"]);
    assert_eq!(refs("uses: 'docker://alpine:3.8'"), ["alpine:3.8"]);
    assert_eq!(refs("image: docker://alpine:3.8"), ["alpine:3.8"]);
    assert_eq!(refs("image: docker://gcr.io/a/b:1"), ["gcr.io/a/b:1"]);
}

#[test]
fn dockerfile_from_and_copy_from() {
    let text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n\
                FROM build AS test\n\
                FROM scratch\n\
                COPY --from=build /a /b\n\
                COPY --chown=1:1 --from=busybox:1.36 /bin/sh /sh\n\
                FROM python:3.12-slim@{D}\n";
    let text = text.replace("{D}", D);
    assert_eq!(
        refs(&text),
        [
            "golang:1.22".to_owned(),
            "busybox:1.36".to_owned(),
            format!("python:3.12-slim@{D}")
        ]
    );
}

#[test]
fn image_keys_in_yaml_json_and_hcl() {
    assert_eq!(refs("  - image: nginx:1.25\n"), ["nginx:1.25"]);
    assert_eq!(refs("    image: \"redis:7\" # cache\n"), ["redis:7"]);
    assert_eq!(refs("Image: 'postgres:16'"), ["postgres:16"]);
    assert_eq!(
        refs(r#"{"name": "web", "image": "httpd:2.4"}"#),
        ["httpd:2.4"]
    );
    assert_eq!(refs(r#""Image":"mysql:8""#), ["mysql:8"]);
    assert_eq!(refs("  image = \"nginx:1.21.6\""), ["nginx:1.21.6"]);
    assert_eq!(
        refs("    container: node:16-buster-slim"),
        ["node:16-buster-slim"]
    );
    assert_eq!(refs("IMAGE: alpine:3"), ["alpine:3"]);
}

#[test]
fn longer_keys_are_not_image_contexts() {
    for text in [
        "baseimage: nginx:1",
        "docker_image: nginx:1",
        "container-image: nginx:1",
        "my.image: nginx:1",
        "imagePullPolicy: nginx:1",
        "containerPort: 80:80",
        "$image: nginx:1",
    ] {
        assert_eq!(refs(text), Vec::<String>::new(), "{text:?}");
    }
}

#[test]
fn commented_out_lines_are_not_image_contexts() {
    for text in [
        "# image: nginx:1.25",
        "  #FROM python:3",
        "// image: nginx:1",
        "foo: bar # image: nginx:1",
    ] {
        assert_eq!(refs(text), Vec::<String>::new(), "{text:?}");
    }
    // Qualified references are found even in comments, as the Go tool does.
    assert_eq!(refs("# image: gcr.io/a/b:1"), ["gcr.io/a/b:1"]);
}

#[test]
fn markdown_code_blocks_count() {
    let md =
        "Some text\n\n```dockerfile\nFROM node:20-alpine\n```\n\n```yaml\nimage: redis:7\n```\n";
    assert_eq!(refs(md), ["node:20-alpine", "redis:7"]);
}

#[test]
fn image_flags_and_docker_pull() {
    assert_eq!(
        refs("kubectl run x --tty -i --image=python:slim bash"),
        ["python:slim"]
    );
    assert_eq!(refs("gcloud run deploy --image 'nginx:1'"), ["nginx:1"]);
    assert_eq!(
        refs("  docker pull redis:8.10.1-alpine"),
        ["redis:8.10.1-alpine"]
    );
    assert_eq!(
        refs("$ docker pull -q --platform=linux/arm64 redis:7"),
        ["redis:7"]
    );
    assert!(refs("--images=nginx:1").is_empty());
    assert!(refs("docker run -p 80:80 nginx").is_empty());
}

#[test]
fn gitlab_services_and_image_names() {
    let ci = "test:\n  image:\n    name: ruby:3.3\n    entrypoint: [\"\"]\n  services:\n    - postgres:16\n    - name: mysql:8.0\n      alias: db\n    - alias: cache\n      name: redis:7\n  script:\n    - echo x:1\n    - name: not:this\n";
    assert_eq!(
        refs(ci),
        ["ruby:3.3", "postgres:16", "mysql:8.0", "redis:7"]
    );
    let flush = "services:\n- docker:dind\n# - old:1\n\n- name: docker:27-dind\n";
    assert_eq!(refs(flush), ["docker:dind", "docker:27-dind"]);
    // Lists elsewhere are not image contexts.
    assert!(refs("args:\n  - foo:bar\nenv:\n  - name: key:value\n").is_empty());
    assert!(refs("services:\n  web:\n    ports:\n      - 80:80\n      - a:b\n").is_empty());
}

#[test]
fn a_cru_ignore_comment_hides_the_references_before_it_on_its_line() {
    let text = "image: nginx:1.25 # cru:ignore\nimage: redis:7\nx: gcr.io/a/b:1 // cru:ignore old\n- gcr.io/a/c:1 <!-- cru:ignore -->\n";
    assert_eq!(refs(text), ["redis:7"]);
    assert_eq!(qualified_only(text), Vec::<String>::new());
    assert_eq!(refs("# cru:ignore\nimage: nginx:1.25\n"), ["nginx:1.25"]);
}

#[test]
fn prose_is_not_a_context() {
    assert!(refs("From python:3.8 you get").is_empty());
    assert!(refs("run nginx:1.25 now").is_empty());
}

#[test]
fn qualified_only_mode_skips_contexts() {
    assert!(qualified_only("FROM python:3.12\nimage: nginx:1").is_empty());
    assert_eq!(qualified_only("image: gcr.io/a/b:1"), ["gcr.io/a/b:1"]);
}

#[test]
fn several_on_one_line_and_crlf_and_non_utf8() {
    let mut text = b"\xff\xfe a/b:1 c/d:2\r\nimage: e:3\r\n\x80".to_vec();
    let found = Scanner::new(ScanOptions::default()).scan(&text);
    let names: Vec<_> = found.iter().map(|o| o.reference.to_string()).collect();
    assert_eq!(names, ["a/b:1", "c/d:2", "e:3"]);
    text.truncate(found[2].end);
    assert!(text.ends_with(b"e:3"));
}

#[test]
fn name_end_marks_the_suffix() {
    let text = "x gcr.io/a/b:1@".to_owned() + D;
    let o = &Scanner::new(ScanOptions::default()).scan(text.as_bytes())[0];
    assert_eq!(&text[o.start..o.name_end], "gcr.io/a/b");
    assert_eq!(&text[o.name_end..o.end], format!(":1@{D}"));
}

#[test]
fn a_hash_inside_a_string_does_not_hide_later_references() {
    // Regression (issue 10, item 19): ` #` in a string earlier on the line read as a comment.
    assert_eq!(
        refs(r#"{"args":["--port 80 #main"],"image":"nginx:1.25"}"#),
        ["nginx:1.25"]
    );
    assert_eq!(refs("cmd: 'a #b' image: redis:7"), ["redis:7"]);
    assert_eq!(refs("image: nginx:1.25 # comment"), ["nginx:1.25"]);
    assert!(refs("# image: nginx:1.25").is_empty());
    assert!(refs(r#"x: "y" # image: nginx:1.25"#).is_empty());
}

/// The long inputs of issue 10, item 16, in small: every reference on a line of many is found
/// (the checks that once read back to the line's start for each of them now read forward).
#[test]
fn many_image_keys_on_one_line_are_all_found() {
    let n = 5000;
    let json: String = (0..n)
        .map(|i| format!(r#"{{"image":"nginx:1.{i}"}},"#))
        .collect();
    let found = refs(&format!("[{json}]"));
    assert_eq!(found.len(), n);
    assert_eq!(found[n - 1], format!("nginx:1.{}", n - 1));
    let flags: String = (0..n).map(|i| format!("--image=x:{i} ")).collect();
    assert_eq!(refs(&flags).len(), n);
}

#[test]
fn a_long_services_list_is_all_found() {
    let n = 5000;
    let items: String = (0..n).map(|i| format!("    - postgres:{i}\n")).collect();
    let found = refs(&format!(
        "test:\n  services:\n{items}  script:\n    - a:1\n"
    ));
    assert_eq!(found.len(), n);
    let names: String = (0..n)
        .map(|i| format!("    - name: mysql:{i}\n      alias: db{i}\n"))
        .collect();
    assert_eq!(refs(&format!("services:\n{names}")).len(), n);
}

#[test]
fn a_cru_ignore_marker_on_a_long_line_hides_only_what_stands_before_it() {
    let n = 5000;
    let line: String = (0..n).map(|i| format!("gcr.io/a/b:{i} ")).collect();
    assert!(refs(&format!("{line}# cru:ignore\n")).is_empty());
    let found = refs(&format!("{line}# cru:ignore {line}\nimage: c/d:1\n"));
    assert_eq!(found.len(), n + 1);
    assert_eq!(found[0], "gcr.io/a/b:0");
    assert_eq!(found[n], "c/d:1");
}

#[test]
fn port_maps_are_told_apart_on_long_lines() {
    let n = 5000;
    let line: String = (0..n)
        .map(|i| format!("\"{i}\": gcr.io/a/b:{i} "))
        .collect();
    // Only a port key that starts the line makes a port map.
    assert_eq!(refs(&line).len(), n - 1);
    assert!(refs("  \"8080\": \"ns/svc:9000\"").is_empty());
    assert!(refs("# 8080 : ns/svc:9000").is_empty());
    assert_eq!(refs("a 8080: ns/svc:9000"), ["ns/svc:9000"]);
}

#[test]
fn a_token_longer_than_any_reference_after_a_context_is_none() {
    // Each `image:` starts a context whose value runs to the end: only the last can be read.
    let long = "image:".repeat(20_000);
    assert!(refs(&long).len() <= 1);
    let name = "a".repeat(2000);
    assert!(refs(&format!("image: {name}:1")).is_empty());
}

#[test]
fn request_paths_in_http_logs_are_not_references() {
    for text in [
        "DELETE images/localhost/app:v2?force=true 200",
        "  GET containers/ctr/app:v1 404",
        "POST build/x/y:1",
        "curl -X GET 'a/b/c:tag?all=1'",
    ] {
        assert_eq!(refs(text), Vec::<String>::new(), "{text:?}");
    }
    // A method-like word that is part of something else is no request.
    assert_eq!(refs("FORGET a/b:1"), ["a/b:1"]);
}

#[test]
fn file_and_line_for_any_extension_is_not_a_reference() {
    for text in [
        "at test/run.bats:809",
        "dir/foo_test.go.bkp:10",
        "see lib/x.tmpl:3",
    ] {
        assert_eq!(refs(text), Vec::<String>::new(), "{text:?}");
    }
    // A version in the last part is no extension.
    assert_eq!(refs("gcr.io/p/app.v2:10"), ["gcr.io/p/app.v2:10"]);
    assert_eq!(refs("a/b.c:v1"), ["a/b.c:v1"]);
}

#[test]
fn yaml_tags_are_not_references() {
    assert!(refs("format: !!python/name:module.fence_code").is_empty());
    assert!(refs("x: !custom/tag:value").is_empty());
}

#[test]
fn log_text_glued_with_dots_is_cut_off() {
    assert_eq!(
        refs("Trying to pull docker.io/library/alpine:latest...ERRO[0000] x"),
        ["docker.io/library/alpine:latest"]
    );
    assert_eq!(refs("pulling a/b:1.2..."), ["a/b:1.2"]);
}

#[test]
fn git_refspecs_are_not_references() {
    assert!(refs("git push origin feature/x:main").is_empty());
    assert!(refs("$ git fetch upstream release/v1:release/v1").is_empty());
    assert!(refs("  git pull origin team/a:b").is_empty());
}

#[test]
fn windows_volume_mounts_are_not_references() {
    for text in [
        "services:\n  - logs:c:/logs:ro\n",
        "docker run -v logs:c:/logs:ro img",
        "volumes:\n  - data:C:/data/app:rw\n",
        "image: logs:c:/logs:ro",
    ] {
        assert_eq!(refs(text), Vec::<String>::new(), "{text:?}");
    }
}

#[test]
fn the_value_of_a_pull_flag_is_not_the_image() {
    assert!(refs("podman pull --creds user:pass quay.io/a/b").is_empty());
    assert_eq!(
        refs("podman pull --creds user:pass docker.io/a/b:1"),
        ["docker.io/a/b:1"]
    );
    assert_eq!(
        refs("docker pull --platform linux/arm64 alpine:3"),
        ["alpine:3"]
    );
    assert_eq!(refs("podman pull -q alpine:3"), ["alpine:3"]);
}

#[test]
fn registry_token_scopes_are_not_references() {
    assert!(refs("=> [auth] user1/app:pull,push token for registry-1.docker.io").is_empty());
    assert!(refs("scope=repository:org/app:push,pull").is_empty());
    // A tag that happens to be an action word, alone, is a tag.
    assert_eq!(refs("image: org/app:push"), ["org/app:push"]);
}

#[test]
fn an_image_value_that_is_not_a_reference_as_a_whole_gives_nothing() {
    for text in [
        "image: alpine:invalid!",
        "image: alpine:3*",
        "image: alpine:3(x)",
        "image=alpine:3&x=1",
    ] {
        assert_eq!(refs(text), Vec::<String>::new(), "{text:?}");
    }
    assert_eq!(refs(r#""image": "alpine:3","#), ["alpine:3"]);
    assert_eq!(refs("(image=alpine:3)"), ["alpine:3"]);
    assert_eq!(refs(r#"{\"image\":\"alpine:3\"}"#), ["alpine:3"]);
}

#[test]
fn paths_holding_a_registry_host_inside_are_not_references() {
    assert!(
        refs("p, role:go-debug, exec, debug/gcr.io/example/dlv:1.22, prod/*, allow").is_empty()
    );
    assert!(refs("allow team/docker.io/x:1").is_empty());
    // A host first, then a dotted path part, is a reference.
    assert_eq!(
        refs("gcr.io/google.com/cloudsdktool/cloud-sdk:alpine"),
        ["gcr.io/google.com/cloudsdktool/cloud-sdk:alpine"]
    );
}

#[test]
fn monitoring_filters_are_not_references() {
    assert!(refs(
        "- 'pubsub.googleapis.com/subscription:resource.labels.subscription_id=monitoring.x'"
    )
    .is_empty());
}

#[test]
fn references_as_xml_or_html_element_content_are_found() {
    assert_eq!(
        refs("<builder>org/builder:0.4</builder>"),
        ["org/builder:0.4"]
    );
    assert_eq!(
        refs("x[<code>ghcr.io/o/r:full</code><br><code>d.io/o/r:full</code>]"),
        ["ghcr.io/o/r:full", "d.io/o/r:full"]
    );
    assert_eq!(
        refs("| mcr.microsoft.com/x/y:linux<br />mcr.microsoft.com/x/y:noble |"),
        ["mcr.microsoft.com/x/y:linux", "mcr.microsoft.com/x/y:noble"]
    );
    assert_eq!(refs(r#"<image kind="x">a/b:1</image>"#), ["a/b:1"]);
    // A placeholder or a preset arrow is no element.
    assert!(refs("<registry>org/app:1 here").is_empty());
    assert!(refs("`github>abc/foo:xyz`").is_empty());
}

#[test]
fn a_transport_reference_followed_by_a_colon_is_found() {
    assert_eq!(
        refs("Error: unable to pull docker://alpine:latest: unable to pull"),
        ["alpine:latest"]
    );
    assert_eq!(refs("image: alpine:3:"), ["alpine:3"]);
    assert!(refs("image: alpine:3:x").is_empty());
}

#[test]
fn a_quoted_dockerfile_image_is_found() {
    assert_eq!(refs("FROM \"node:8.15\"\n"), ["node:8.15"]);
    assert_eq!(refs("FROM 'node:8' AS build\n"), ["node:8"]);
}

#[test]
fn a_whole_reference_with_a_digest_as_a_shell_default_is_found() {
    let text = format!("IMG=${{IMAGE:-gcr.io/x/y:1@{D}}}");
    assert_eq!(refs(&text), [format!("gcr.io/x/y:1@{D}")]);
    // Without a digest, or not a whole default, nothing.
    assert!(refs("IMG=${IMAGE:-gcr.io/x/y:1}").is_empty());
    assert!(refs(&format!("x:-gcr.io/x/y@{D}")).is_empty());
    assert!(refs(&format!("${{A:-gcr.io/x/y@{D}-b}}")).is_empty());
}

#[test]
fn markdown_emphasis_around_a_reference_is_not_part_of_it() {
    assert_eq!(refs("_gcr.io/x/y:1.0-rc1_"), ["gcr.io/x/y:1.0-rc1"]);
    assert_eq!(
        refs(&format!("(_Default: docker.io/library/node:12@{D}_)")),
        [format!("docker.io/library/node:12@{D}")]
    );
    assert_eq!(refs("*gcr.io/x/y:1*"), ["gcr.io/x/y:1"]);
    // An underscore inside a word opens no emphasis: the tag keeps its final `_`.
    assert_eq!(refs("snake_case x/y:1_"), ["x/y:1_"]);
}

#[test]
fn a_hash_before_a_number_is_no_comment() {
    assert_eq!(
        refs("Step #1: Already have image: rocker:latest"),
        ["rocker:latest"]
    );
    assert!(refs("a: b # image: nginx:1").is_empty());
}
