//! Finding image references in the bytes of a file.
//!
//! Two kinds of references are found. Qualified or namespaced ones (the name contains a `/`:
//! `gcr.io/p/app:v1`, `bitnami/nginx:1.2`) are found anywhere in any text, as the Go tool
//! does. Unqualified official images (`nginx:1.25`) are found only in image contexts: a
//! Dockerfile `FROM` or `COPY --from=`, the value of an `image` or `container` key (YAML, JSON,
//! HCL), and after a `docker://` transport. A reference must stand as a whole token, so URLs,
//! Bazel labels, volume mounts and templated names give nothing.
//!
//! The scanner works on bytes, so non-UTF-8 text and CRLF line endings are no obstacle. It is
//! pure: it does not read files or decide what a reference should become.

use regex::bytes::Regex;

use crate::reference::{Reference, TRANSPORTS};

/// One reference found in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Byte offset where the reference starts (after any transport prefix).
    pub start: usize,
    /// Byte offset just past the reference.
    pub end: usize,
    /// Byte offset just past the name, where `:tag@digest` begins.
    pub name_end: usize,
    /// The reference as written.
    pub reference: Reference,
}

/// What the scanner looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Also find unqualified official images (`nginx:1.25`) in image contexts.
    pub unqualified: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions { unqualified: true }
    }
}

/// A compiled scanner; cheap to clone, safe to share between threads.
#[derive(Debug, Clone)]
pub struct Scanner {
    qualified: Regex,
    /// The image-context searches, when unqualified names are looked for.
    context: Option<(Regex, Regex)>,
}

/// A candidate for a name with a `/`, then a tag and/or a digest. The candidate is loose
/// (the first segment may be a host or a path component); [`Reference::parse`] decides.
const QUALIFIED: &str = r"(?-u)[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+(?::[A-Za-z0-9_][A-Za-z0-9_.-]*(?:@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]+)?|@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]+)";

/// Image contexts; the reference starts where the match ends. Every branch starts with a
/// literal, so the search skips ahead quickly; what must stand before it is checked by
/// [`context_applies`].
/// - Dockerfile `FROM [--platform=…] ` and `COPY … --from=` at the start of a line;
/// - a key `image` or `container` (`image`, `Image`, `IMAGE`), YAML/JSON/HCL style, quoted or not;
/// - a `--image=` or `--image ` flag (`kubectl run`, `gcloud run deploy`), `docker pull`;
/// - a `docker://`, `docker-image://` or `oci://` transport.
const CONTEXT: &str = r#"(?-u)(?:FROM|from)[ \t]+(?:--[A-Za-z-]+=[^ \t\r\n]+[ \t]+)*|(?:COPY|copy)[ \t]+(?:--[A-Za-z-]+(?:=[^ \t\r\n]*)?[ \t]+)*--from=|(?:image|Image|IMAGE|container|Container|CONTAINER)["']?[ \t]*[:=][ \t]*["']?|--image[= ]["']?|(?:docker|podman)[ \t]+pull[ \t]+(?:--?[A-Za-z-]+(?:=[^ \t\r\n]+)?[ \t]+)*["']?|(?:docker|docker-image|oci)://"#;

/// GitLab CI's structured image contexts: list items under `services:` (`- postgres:16`,
/// `- name: mysql:8`) and `name:` under `image:`. Checked against the YAML nesting by
/// [`yaml_image_item`].
const YAML_ITEM: &str = r#"(?-u)(?m)^[ \t]*(?:-[ \t]+(?:name:[ \t]*)?|name:[ \t]*)["']?"#;

impl Scanner {
    /// Builds a scanner.
    pub fn new(options: ScanOptions) -> Scanner {
        Scanner {
            qualified: Regex::new(QUALIFIED).expect("valid regex"),
            context: options.unqualified.then(|| {
                (
                    Regex::new(CONTEXT).expect("valid regex"),
                    Regex::new(YAML_ITEM).expect("valid regex"),
                )
            }),
        }
    }

    /// Finds every reference in `haystack`, ordered by position, without overlaps.
    pub fn scan(&self, haystack: &[u8]) -> Vec<Occurrence> {
        let mut found = Vec::new();
        let mut at = 0;
        while let Some(m) = self.qualified.find_at(haystack, at) {
            // No valid start lies inside a rejected match: every byte of a match is one that
            // makes what follows it part of a longer token.
            at = m.end();
            if let Some(occ) = accept(haystack, m.start(), m.end()) {
                found.push(occ);
            }
        }
        let Some((context, yaml_item)) = &self.context else {
            drop_ignored(haystack, &mut found);
            return found;
        };
        let qualified = found.len();
        let add = |found: &mut Vec<Occurrence>, occ: Option<Occurrence>| {
            if let Some(occ) = occ {
                if !overlaps(&found[..qualified], &occ) {
                    found.push(occ);
                }
            }
        };
        for m in context.find_iter(haystack) {
            if context_applies(haystack, m.start(), m.as_bytes()) {
                add(&mut found, token_at(haystack, m.end()));
            }
        }
        if has_yaml_image_lists(haystack) {
            for m in yaml_item.find_iter(haystack) {
                let occ = token_at(haystack, m.end());
                if occ.is_some() && yaml_image_item(haystack, m.start(), m.as_bytes()) {
                    add(&mut found, occ);
                }
            }
        }
        if found.len() > qualified {
            found.sort_by_key(|o| o.start);
            // Two contexts may lead to the same token (`image: docker://alpine:3`).
            found.dedup_by(|later, earlier| later.start < earlier.end);
        }
        drop_ignored(haystack, &mut found);
        found
    }
}

/// The marker that makes cru leave the references on its line alone (in any comment syntax).
pub const IGNORE_MARKER: &[u8] = b"cru:ignore";

/// Drops the references on lines that carry [`IGNORE_MARKER`] after them.
fn drop_ignored(haystack: &[u8], found: &mut Vec<Occurrence>) {
    if found.is_empty() || memchr::memmem::find(haystack, IGNORE_MARKER).is_none() {
        return;
    }
    found.retain(|occ| {
        let rest = &haystack[occ.end..];
        let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
        memchr::memmem::find(line, IGNORE_MARKER).is_none()
    });
}

/// Whether a [`CONTEXT`] match at `start` stands where it counts.
fn context_applies(haystack: &[u8], start: usize, matched: &[u8]) -> bool {
    let before = &haystack[..start];
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let blank_before = before[line_start..]
        .iter()
        .all(|b| matches!(b, b' ' | b'\t'));
    let kind = matched[0].to_ascii_lowercase();
    match kind {
        // A transport is a context wherever it stands, comments included.
        _ if matched.ends_with(b"://") => true,
        // Dockerfile instructions start a line.
        b'f' => blank_before,
        b'c' if matched[1].eq_ignore_ascii_case(&b'o')
            && matched[2].eq_ignore_ascii_case(&b'p') =>
        {
            blank_before
        }
        // `--image` and `docker pull` follow a blank (or start a line).
        b'-' | b'd' | b'p' => {
            (start == line_start || matches!(before[start - 1], b' ' | b'\t'))
                && !is_commented(haystack, start)
        }
        // A key: not the end of a longer key (`baseimage:`, `docker_image:`, `$image`).
        _ => {
            let key_start = match before.last() {
                Some(b'"' | b'\'') => start - 1,
                _ => start,
            };
            let glued = key_start > 0
                && (haystack[key_start - 1].is_ascii_alphanumeric()
                    || matches!(haystack[key_start - 1], b'_' | b'.' | b'$' | b'-'));
            !glued && !is_commented(haystack, start)
        }
    }
}

/// A cheap test for files that may hold GitLab CI's structured image contexts.
fn has_yaml_image_lists(haystack: &[u8]) -> bool {
    memchr::memmem::find(haystack, b"services:").is_some()
        || memchr::memmem::find(haystack, b"image:\n").is_some()
        || memchr::memmem::find(haystack, b"image:\r\n").is_some()
}

/// Whether a [`YAML_ITEM`] match at `start` (a line start) is an image by its nesting:
/// `- X` or `- name: X` in a `services:` list, or `name: X` in an `image:` mapping or in a
/// `services:` list item.
fn yaml_image_item(haystack: &[u8], start: usize, matched: &[u8]) -> bool {
    let trimmed = matched.trim_ascii_start();
    let item = trimmed.starts_with(b"-");
    let Some(parent) = yaml_parent(haystack, start) else {
        return false;
    };
    let parent_line = yaml_line(haystack, parent);
    if item {
        return yaml_key(parent_line) == Some(b"services");
    }
    // `name:` under `image:`, or in a list item's mapping under `services:`.
    if yaml_key(parent_line) == Some(b"image") {
        return true;
    }
    parent_line.trim_ascii_start().starts_with(b"-")
        && yaml_parent(haystack, parent)
            .is_some_and(|p| yaml_key(yaml_line(haystack, p)) == Some(b"services"))
}

/// The line starting at `start`, without its line break.
fn yaml_line(haystack: &[u8], start: usize) -> &[u8] {
    let end = memchr::memchr(b'\n', &haystack[start..]).map_or(haystack.len(), |i| start + i);
    haystack[start..end]
        .strip_suffix(b"\r")
        .unwrap_or(&haystack[start..end])
}

fn yaml_indent(line: &[u8]) -> usize {
    line.iter().take_while(|&&b| b == b' ').count()
}

/// The key of a line that opens a block (`services:`, `- image:`), if it is one.
fn yaml_key(line: &[u8]) -> Option<&[u8]> {
    let line = line.trim_ascii();
    let line = line.strip_prefix(b"-").unwrap_or(line).trim_ascii_start();
    let (key, rest) = line.split_at(line.iter().position(|&b| b == b':')?);
    let rest = rest[1..].trim_ascii();
    (rest.is_empty() || rest.starts_with(b"#")).then_some(key.trim_ascii())
}

/// The start of the line that a YAML line at `start` nests in: the nearest line above with
/// less indentation (or, for a list item, the same indentation without a `-`).
fn yaml_parent(haystack: &[u8], start: usize) -> Option<usize> {
    let line = yaml_line(haystack, start);
    let indent = yaml_indent(line);
    let item = line[indent..].starts_with(b"-");
    let mut end = start;
    while end > 0 {
        let line_start = memchr::memrchr(b'\n', &haystack[..end - 1]).map_or(0, |i| i + 1);
        let above = yaml_line(haystack, line_start);
        end = line_start;
        let content = above.trim_ascii();
        if content.is_empty() || content.starts_with(b"#") {
            continue;
        }
        let above_indent = yaml_indent(above);
        if above_indent < indent
            || (item && above_indent == indent && !above[above_indent..].starts_with(b"-"))
        {
            return Some(line_start);
        }
    }
    None
}

/// Whether `occ` overlaps one of `sorted` (ordered by start, without overlaps).
fn overlaps(sorted: &[Occurrence], occ: &Occurrence) -> bool {
    let i = sorted.partition_point(|o| o.start < occ.end);
    i > 0 && sorted[i - 1].end > occ.start
}

/// Bytes that make a following reference part of a longer token: name characters, and the
/// ends of templates and escapes (`${X}`, `$(x)`, `<x>`, `%s`, `\n`).
fn continues_before(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'/' | b'.' | b'-' | b'_' | b':' | b'@' | b'$' | b'}' | b')' | b'>' | b'%' | b'\\'
        )
}

/// Bytes that make a preceding reference part of a longer token.
fn continues_after(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'{' | b'$' | b'@')
}

/// Checks the token boundaries of a candidate and parses it.
fn accept(haystack: &[u8], start: usize, end: usize) -> Option<Occurrence> {
    if start > 0 && continues_before(haystack[start - 1]) {
        let before = &haystack[..start];
        if !TRANSPORTS.iter().any(|t| before.ends_with(t.as_bytes())) {
            return None;
        }
    }
    finish(haystack, start, end)
}

/// Trims a sentence's final dots, checks what follows, and parses.
fn finish(haystack: &[u8], start: usize, mut end: usize) -> Option<Occurrence> {
    while end > start && haystack[end - 1] == b'.' {
        end -= 1;
    }
    if haystack.get(end).is_some_and(|&b| continues_after(b)) {
        return None;
    }
    if is_concatenated(&haystack[end..]) {
        return None;
    }
    let text = std::str::from_utf8(&haystack[start..end]).ok()?;
    let reference = Reference::parse(text).ok()?;
    if reference.name().len() + reference.suffix().len() != end - start {
        // A transport prefix inside the span (`docker://docker://x:1`): not a clean token.
        return None;
    }
    let rejected = match reference.tag() {
        None => reference.digest().is_none(),
        // `dir/file.go:12` and `"53": "kube-system/kube-dns:53"` are not images.
        Some(tag) if tag.bytes().all(|b| b.is_ascii_digit()) => {
            is_source_file(reference.name()) || is_port_mapping(&haystack[..start])
        }
        Some(_) => false,
    };
    if rejected {
        return None;
    }
    let name_end = start + reference.name().len();
    Some(Occurrence {
        start,
        end,
        name_end,
        reference,
    })
}

/// A quoted string that continues with `+`: the tag is only the start of an expression
/// (`'quay.io/prometheus/alertmanager:v' + version`).
fn is_concatenated(after: &[u8]) -> bool {
    let Some((&quote, rest)) = after.split_first() else {
        return false;
    };
    let rest = &rest[rest
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count()..];
    matches!(quote, b'\'' | b'"') && rest.first() == Some(&b'+')
}

/// Extensions of source files, whose `path/file.ext:123` is a file and line, not an image.
const SOURCE_EXTENSIONS: [&str; 24] = [
    "c",
    "cc",
    "cpp",
    "cs",
    "go",
    "h",
    "hpp",
    "java",
    "js",
    "json",
    "jsonnet",
    "kt",
    "libsonnet",
    "md",
    "php",
    "py",
    "rb",
    "rs",
    "scala",
    "sh",
    "swift",
    "ts",
    "yaml",
    "yml",
];

fn is_source_file(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.rsplit_once('.')
        .is_some_and(|(_, ext)| SOURCE_EXTENSIONS.contains(&ext))
}

/// A line like `"8080": "default/example-tcp-svc:9000"` (ingress-nginx TCP/UDP services):
/// a port number as the key, `namespace/service:port` as the value.
fn is_port_mapping(before: &[u8]) -> bool {
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let line = before[line_start..].trim_ascii();
    let comment = line.iter().take_while(|&&b| b == b'#').count();
    let line = line[comment..].trim_ascii();
    let line = line.strip_suffix(b"\"").unwrap_or(line).trim_ascii();
    let Some(key) = line.strip_suffix(b":") else {
        return false;
    };
    let key = key.trim_ascii();
    let key = key
        .strip_prefix(b"\"")
        .and_then(|k| k.strip_suffix(b"\""))
        .unwrap_or(key);
    !key.is_empty() && key.iter().all(u8::is_ascii_digit)
}

/// Reads the reference-like token that starts at `start` (the value after an image context).
fn token_at(haystack: &[u8], mut start: usize) -> Option<Occurrence> {
    if let Some(t) = TRANSPORTS
        .iter()
        .find(|t| haystack[start..].starts_with(t.as_bytes()))
    {
        start += t.len();
    }
    let len = haystack[start..]
        .iter()
        .position(|&b| {
            !(b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'-' | b'_' | b'/' | b':' | b'@' | b'='))
        })
        .unwrap_or(haystack.len() - start);
    if len == 0 {
        return None;
    }
    finish(haystack, start, start + len)
}

/// Whether the line holding `pos` is commented out before `pos` (`#` or `//` comments).
fn is_commented(haystack: &[u8], pos: usize) -> bool {
    let line_start = memchr::memrchr(b'\n', &haystack[..pos]).map_or(0, |i| i + 1);
    let line = &haystack[line_start..pos];
    let trimmed = match line.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => &line[i..],
        None => return false,
    };
    if trimmed.starts_with(b"#") || trimmed.starts_with(b"//") {
        return true;
    }
    // A YAML comment later in the line: ` # image: nginx:1`.
    trimmed
        .windows(2)
        .any(|w| w[0].is_ascii_whitespace() && w[1] == b'#')
}

#[cfg(test)]
mod tests {
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
        let md = "Some text\n\n```dockerfile\nFROM node:20-alpine\n```\n\n```yaml\nimage: redis:7\n```\n";
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
}
