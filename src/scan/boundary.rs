//! What stands around a candidate: the text that makes a reference-shaped token something
//! else (a file and line, a port map, an API path, a YAML tag, a credential, a refspec), or
//! that wraps a real one (an XML element, Markdown emphasis, a shell default).
//!
//! Each check reads a bounded stretch before or after the candidate, never the whole line, so
//! that a line of any length costs time in proportion to its length.

/// A quoted string that continues with `+`: the tag is only the start of an expression
/// (`'quay.io/prometheus/alertmanager:v' + version`).
pub(super) fn is_concatenated(after: &[u8]) -> bool {
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

/// Whether the last part of a name is a file name: a known source extension, or any
/// extension of letters only (`run.bats`, `foo_test.go.bkp`), unlike a version (`app.v2`).
pub(super) fn is_source_file(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.rsplit_once('.').is_some_and(|(_, ext)| {
        SOURCE_EXTENSIONS.contains(&ext)
            || (!ext.is_empty() && ext.len() <= 10 && ext.bytes().all(|b| b.is_ascii_alphabetic()))
    })
}

/// A line like `"8080": "default/example-tcp-svc:9000"` (ingress-nginx TCP/UDP services):
/// a port number as the key, `namespace/service:port` as the value. Read backwards from the
/// value, so that only the key and the blanks around it are read.
pub(super) fn is_port_mapping(before: &[u8]) -> bool {
    let blank = |b: &u8| b.is_ascii_whitespace() && *b != b'\n';
    let mut rest = before;
    let skip = |rest: &mut &[u8], f: &dyn Fn(&u8) -> bool| {
        let n = rest.iter().rev().take_while(|b| f(b)).count();
        *rest = &rest[..rest.len() - n];
        n
    };
    skip(&mut rest, &blank);
    if rest.last() == Some(&b'"') {
        rest = &rest[..rest.len() - 1];
        skip(&mut rest, &blank);
    }
    let Some(r) = rest.strip_suffix(b":") else {
        return false;
    };
    rest = r;
    skip(&mut rest, &blank);
    let quoted = rest.last() == Some(&b'"');
    if quoted {
        rest = &rest[..rest.len() - 1];
    }
    if skip(&mut rest, &|b| b.is_ascii_digit()) == 0 {
        return false;
    }
    if quoted {
        let Some(r) = rest.strip_suffix(b"\"") else {
            return false;
        };
        rest = r;
    }
    skip(&mut rest, &blank);
    skip(&mut rest, &|b| *b == b'#');
    skip(&mut rest, &blank);
    rest.last().is_none_or(|&b| b == b'\n')
}

/// How far back on its line a check looks for what a candidate stands in.
const LOOK_BACK: usize = 256;

/// The part of the line before `start`, at most [`LOOK_BACK`] bytes of it.
fn line_before(haystack: &[u8], start: usize) -> &[u8] {
    let window = &haystack[start.saturating_sub(LOOK_BACK)..start];
    match memchr::memrchr(b'\n', window) {
        Some(i) => &window[i + 1..],
        None => window,
    }
}

/// A reference as the content of an XML or HTML element: `<builder>org/b:1</builder>`,
/// `<code>x/y:1</code>`, or after a line break tag, `a<br />x/y:1`. `before` ends with `>`.
/// A placeholder (`<registry>app:1`) is neither closed by an element end nor a line break.
pub(super) fn is_element_content(before: &[u8], after: &[u8]) -> bool {
    let window = &before[before.len().saturating_sub(64)..before.len() - 1];
    let Some(open) = memchr::memrchr(b'<', window) else {
        return false;
    };
    let tag = &window[open + 1..];
    let tag = tag.strip_prefix(b"/").unwrap_or(tag);
    let name_len = tag
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
        .count();
    if name_len == 0 || !tag[0].is_ascii_alphabetic() || tag.contains(&b'>') {
        return false;
    }
    let rest = tag[name_len..].trim_ascii();
    if !(rest.is_empty() || rest == b"/" || tag[name_len] == b' ') {
        return false;
    }
    tag[..name_len].eq_ignore_ascii_case(b"br") || after.starts_with(b"</")
}

/// Where a candidate ends without the closing `_` of Markdown emphasis (`_gcr.io/x/y:1_`,
/// `(_Default: x/y:1_)`): it ends with `_` outside a word, and an opening `_` (not inside a
/// word, not before a blank) stands before it on the line.
pub(super) fn emphasis_end(haystack: &[u8], start: usize, end: usize) -> Option<usize> {
    if haystack[end - 1] != b'_'
        || haystack
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return None;
    }
    let before = line_before(haystack, start);
    let opened = before.iter().enumerate().any(|(i, &b)| {
        b == b'_'
            && (i == 0 || !before[i - 1].is_ascii_alphanumeric() && before[i - 1] != b'_')
            && before.get(i + 1).is_none_or(|b| !b.is_ascii_whitespace())
    });
    let trimmed = haystack[start..end]
        .iter()
        .rev()
        .take_while(|&&b| b == b'_')
        .count();
    opened.then_some(end - trimmed)
}

/// Whether an `_` before `start` opens emphasis: it does not continue a word.
pub(super) fn opens_emphasis(haystack: &[u8], start: usize) -> bool {
    haystack[start - 1] == b'_'
        && (start < 2
            || !(haystack[start - 2].is_ascii_alphanumeric() || haystack[start - 2] == b'_'))
}

/// A whole reference as the default of a shell parameter, `${IMAGE:-gcr.io/x/y@sha256:…}`.
/// `before` ends with `:-`.
pub(super) fn is_shell_default(before: &[u8], after: &[u8]) -> bool {
    let Some(rest) = before.strip_suffix(b":-") else {
        return false;
    };
    let name = rest
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    name > 0 && rest[..rest.len() - name].ends_with(b"${") && after.starts_with(b"}")
}

/// Whether the value of an image context ends where a value may end: at a blank, a quote, a
/// separator or a closing bracket. `image: alpine:invalid!` holds no reference.
pub(super) fn ends_value(after: Option<u8>) -> bool {
    after.is_none_or(|b| {
        b.is_ascii_whitespace()
            || !b.is_ascii()
            || matches!(
                b,
                b'"' | b'\''
                    | b'`'
                    | b','
                    | b';'
                    | b')'
                    | b']'
                    | b'}'
                    | b'<'
                    | b'>'
                    | b'|'
                    | b'#'
                    | b'\\'
            )
    })
}

/// The text before a candidate makes it something else: an HTTP request path
/// (`DELETE images/localhost/app:v2?force=true`), a git refspec (`git push origin a/b:main`).
pub(super) fn is_request_or_refspec(haystack: &[u8], start: usize) -> bool {
    let before = line_before(haystack, start);
    let word = before.trim_ascii_end();
    let method_len = word
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    let method = &word[word.len() - method_len..];
    let starts_word =
        word.len() == method_len || !word[word.len() - method_len - 1].is_ascii_alphanumeric();
    if word.len() < before.len()
        && starts_word
        && [
            &b"GET"[..],
            b"HEAD",
            b"POST",
            b"PUT",
            b"DELETE",
            b"PATCH",
            b"OPTIONS",
        ]
        .contains(&method)
    {
        return true;
    }
    memchr::memmem::find_iter(before, b"git ").any(|i| {
        let rest = &before[i + 4..];
        rest.starts_with(b"push ") || rest.starts_with(b"fetch ") || rest.starts_with(b"pull ")
    })
}

/// A tag that is a list of registry actions, as in a token scope (`user/app:pull,push`).
pub(super) fn is_action_scope(tag: &str, after: Option<u8>) -> bool {
    matches!(tag, "pull" | "push" | "delete" | "catalog") && after == Some(b',')
}

/// A registry host inside the path, after a first part that is no host:
/// `debug/gcr.io/x/y:1` is a path in a policy string, not an image on Docker Hub.
pub(super) fn has_nested_host(name: &str) -> bool {
    let mut parts = name.split('/');
    let first = parts.next().unwrap_or_default();
    if first.contains(['.', ':']) || first == "localhost" {
        return false;
    }
    parts.any(|part| {
        part.rsplit_once('.')
            .is_some_and(|(_, tld)| matches!(tld, "io" | "com" | "org" | "net" | "dev"))
    })
}
