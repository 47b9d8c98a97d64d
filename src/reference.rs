//! Container image references: parsing, validating, normalising and formatting.
//!
//! A reference is `[host[:port]/]path[:tag][@digest]`, following the grammar of the
//! distribution project (`distribution/reference`) and the OCI image spec for digests.
//! This module is pure: it knows nothing of files, registries or where a reference was found.
//! It does not decide where references stand in text; that is [`crate::scan`].

use std::fmt;

use crate::docker_hub;

/// The registry that names without a host refer to (see [`crate::docker_hub`]).
pub const DOCKER_HUB: &str = docker_hub::NAME;
/// Names longer than this are not valid (distribution's `NameTotalLengthMax`).
const NAME_MAX: usize = 255;
/// Tags are at most this long (distribution's tag grammar: 1 + 127 characters).
const TAG_MAX: usize = 128;

/// Why a text is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is empty.
    #[error("empty image reference")]
    Empty,
    /// The name part breaks the grammar.
    #[error("invalid repository name {0:?}")]
    Name(String),
    /// The tag breaks the grammar.
    #[error("invalid tag {0:?}")]
    Tag(String),
    /// The digest breaks the grammar or names an unknown algorithm.
    #[error("invalid digest {0:?}")]
    Digest(String),
    /// The name is longer than 255 characters.
    #[error("repository name longer than {NAME_MAX} characters")]
    TooLong,
}

/// A parsed image reference, keeping the spelling it was written with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    name: String,
    /// Length of the host part of `name` (0 when the name has none).
    host_len: usize,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses `[docker://]name[:tag][@digest]`; a reference without tag and digest is allowed.
    pub fn parse(text: &str) -> Result<Reference, ParseError> {
        let text = strip_transport(text);
        if text.is_empty() {
            return Err(ParseError::Empty);
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                if !is_digest(digest) {
                    return Err(ParseError::Digest(digest.to_owned()));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // A tag follows the last ':' only if no '/' comes after it (else the ':' is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => {
                let tag = &rest[i + 1..];
                if !is_tag(tag) {
                    return Err(ParseError::Tag(tag.to_owned()));
                }
                (&rest[..i], Some(tag.to_owned()))
            }
            _ => (rest, None),
        };
        let host_len = split_name(name).ok_or_else(|| ParseError::Name(name.to_owned()))?;
        if name.len() > NAME_MAX {
            return Err(ParseError::TooLong);
        }
        Ok(Reference {
            name: name.to_owned(),
            host_len,
            tag,
            digest,
        })
    }

    /// The name as written, without tag and digest (`nginx`, `gcr.io/proj/app`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Whether the name was written with a host (`gcr.io/…`, `localhost:5000/…`).
    pub fn has_host(&self) -> bool {
        self.host_len > 0
    }

    /// The registry host, normalised: lowercase, `docker.io` for Docker Hub in all its spellings.
    pub fn registry(&self) -> String {
        if self.host_len == 0 {
            return DOCKER_HUB.to_owned();
        }
        docker_hub::normalise_host(&self.name[..self.host_len])
    }

    /// The repository path on its registry, normalised (`nginx` → `library/nginx` on Docker Hub).
    pub fn repository(&self) -> String {
        let path = if self.host_len == 0 {
            &self.name
        } else {
            &self.name[self.host_len + 1..]
        };
        if self.registry() == DOCKER_HUB {
            docker_hub::repository(path)
        } else {
            path.to_owned()
        }
    }

    /// The fully qualified, normalised name: `docker.io/library/nginx`.
    pub fn normalized_name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The same name with another tag and digest.
    pub fn with(&self, tag: Option<&str>, digest: Option<&str>) -> Reference {
        Reference {
            name: self.name.clone(),
            host_len: self.host_len,
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        }
    }

    /// The `:tag@digest` suffix as it is written after the name.
    pub fn suffix(&self) -> String {
        let mut out = String::new();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.suffix())
    }
}

impl std::str::FromStr for Reference {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// The transport prefixes that may stand before a reference (`docker://alpine:3`).
pub const TRANSPORTS: [&str; 3] = ["docker://", "docker-image://", "oci://"];

fn strip_transport(text: &str) -> &str {
    TRANSPORTS
        .iter()
        .find_map(|t| text.strip_prefix(t))
        .unwrap_or(text)
}

/// Validates a name and returns the length of its host part (0 if it has none).
fn split_name(name: &str) -> Option<usize> {
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) if is_host(first) => (Some(first), rest),
        _ => (None, name),
    };
    if rest.is_empty() || !rest.split('/').all(is_path_component) {
        return None;
    }
    Some(first.map_or(0, str::len))
}

/// A host: a domain containing a `.`, or with a `:port`, or `localhost`.
pub fn is_host(text: &str) -> bool {
    let (domain, port) = match text.split_once(':') {
        Some((domain, port)) => (domain, Some(port)),
        None => (text, None),
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let labels_ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        });
    labels_ok && (domain.contains('.') || port.is_some() || domain == "localhost")
}

/// A path component: `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`.
pub fn is_path_component(text: &str) -> bool {
    let b = text.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: one '.', one '_', two '_', or any number of '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = sep == b"." || sep == b"_" || sep == b"__" || sep.iter().all(|&c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_tag(text: &str) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A digest of a registered algorithm: `sha256:` + 64, `sha512:` + 128 lowercase hex
/// (`blake3:` + 64 too, registered by image-spec 1.1).
pub fn is_digest(text: &str) -> bool {
    let Some((algorithm, hex)) = text.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" | "blake3" => 64,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(text: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(text).unwrap();
        (
            r.registry(),
            r.repository(),
            r.tag().map(str::to_owned),
            r.digest().map(str::to_owned),
        )
    }

    #[test]
    fn official_images_normalise_to_docker_hub_library() {
        let r = Reference::parse("nginx:1.25").unwrap();
        assert_eq!(r.normalized_name(), "docker.io/library/nginx");
        assert_eq!(r.tag(), Some("1.25"));
        assert!(!r.has_host());
        for spelling in [
            "docker.io/library/nginx",
            "index.docker.io/library/nginx",
            "docker.io/nginx",
            "Docker.IO/library/nginx",
            "registry-1.docker.io/library/nginx",
        ] {
            let other = Reference::parse(spelling).unwrap();
            assert_eq!(
                other.normalized_name(),
                "docker.io/library/nginx",
                "{spelling}"
            );
        }
    }

    #[test]
    fn namespaced_names_without_host_are_docker_hub() {
        assert_eq!(
            parts("bitnami/nginx:1.2"),
            (
                "docker.io".into(),
                "bitnami/nginx".into(),
                Some("1.2".into()),
                None
            )
        );
    }

    #[test]
    fn hosts_need_a_dot_a_port_or_localhost() {
        assert_eq!(parts("gcr.io/p/app:v1").0, "gcr.io");
        assert_eq!(parts("localhost/app:v1").0, "localhost");
        assert_eq!(parts("localhost:5000/app:v1").0, "localhost:5000");
        assert_eq!(parts("myhost:5000/app").0, "myhost:5000");
        assert_eq!(parts("myhost/app:v1").0, "docker.io");
        assert_eq!(parts("myhost/app:v1").1, "myhost/app");
        assert_eq!(parts("127.0.0.1:5000/a/b:1").0, "127.0.0.1:5000");
    }

    #[test]
    fn port_is_not_a_tag() {
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.name(), "localhost:5000/app");
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn tag_and_digest_together() {
        let text = format!("docker.io/library/python:3.7@{D}");
        let r = Reference::parse(&text).unwrap();
        assert_eq!(r.tag(), Some("3.7"));
        assert_eq!(r.digest(), Some(D));
        assert_eq!(r.to_string(), text);
        assert_eq!(r.suffix(), format!(":3.7@{D}"));
    }

    #[test]
    fn single_character_tags_are_valid() {
        assert_eq!(Reference::parse("repo/x:3").unwrap().tag(), Some("3"));
    }

    #[test]
    fn transports_are_stripped() {
        for t in TRANSPORTS {
            let r = Reference::parse(&format!("{t}alpine:3.8")).unwrap();
            assert_eq!(r.to_string(), "alpine:3.8");
        }
    }

    #[test]
    fn invalid_references_are_rejected() {
        for bad in [
            "",
            "UPPER/app:1",
            "app:",
            "app:-x",
            "app:.x",
            "app@sha256:abc",
            "app@md5:0123456789abcdef0123456789abcdef",
            &format!("app@{}", D.to_uppercase()),
            "a//b:1",
            "a/b/:1",
            "/a:1",
            "a-/b:1",
            "a/_b:1",
            "a/b___c:1",
            "a/b..c:1",
            "-host.com/a:1",
            "host.com:99999x/a:1",
            &format!("a:{}", "x".repeat(129)),
            &format!("{}:1", "a".repeat(256)),
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn valid_edge_cases() {
        for good in [
            "a/b__c:1",
            "a/b---c:1",
            "a/b.c_d:1",
            &format!("a:{}", "x".repeat(128)),
            "gcr.io/google.com/cloudsdktool/cloud-sdk:alpine",
            &format!("a@sha512:{}", "ab".repeat(64)),
        ] {
            assert!(Reference::parse(good).is_ok(), "{good:?} should be valid");
        }
    }

    #[test]
    fn with_replaces_tag_and_digest_keeping_spelling() {
        let r = Reference::parse("Index.Docker.io/library/nginx:1.25").unwrap();
        assert_eq!(
            r.with(Some("1.27"), None).to_string(),
            "Index.Docker.io/library/nginx:1.27"
        );
        assert_eq!(
            r.with(None, Some(D)).to_string(),
            format!("Index.Docker.io/library/nginx@{D}")
        );
    }
}
