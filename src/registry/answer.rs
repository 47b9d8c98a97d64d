//! What registries answer, read and checked: pure functions over headers and bodies.
//!
//! A registry is input like a file: a `Docker-Content-Digest` must be a digest, a body is
//! hashed only if it is a manifest or index of a type cru asked for, a listed tag must be a
//! tag, a tag-list page is refused past the tag cap while it is parsed, and next-page links
//! are resolved as RFC 8288 says so that [`super::client`] can keep them on the registry's
//! origin. Nothing here sends a request or waits.

use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use sha2::{Digest as _, Sha256};

use super::client::Failure;
use super::Platform;

/// The manifest media types whose bodies may be hashed into a digest; the first two are
/// indexes.
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Tags of one repository at most, across all pages; a longer list fails the lookup.
pub(super) const MAX_TAGS: usize = 100_000;

/// A well-formed `Docker-Content-Digest`, if present.
pub(super) fn header_digest(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("docker-content-digest")?.to_str().ok()?.trim();
    crate::reference::is_digest(value).then(|| value.to_owned())
}

/// `sha256:` of bytes, the digest of a manifest as the registry stores it.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// How long `Retry-After` asks to wait: seconds (`7`) or an HTTP date (from now).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    retry_after_at(value, chrono::Utc::now())
}

fn retry_after_at(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // An HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`) is RFC 2822's format; one in the past
    // means now.
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// The `rel="next"` target of a `Link` header, resolved against the page's URL.
pub(super) fn next_link(headers: &HeaderMap, current: &str) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK).iter() {
        let value = value.to_str().ok()?;
        for part in value.split(',') {
            let (target, params) = part.split_once(';').unwrap_or((part, ""));
            if !params.replace(' ', "").contains("rel=\"next\"") && !params.contains("rel=next") {
                continue;
            }
            let target = target.trim().trim_start_matches('<').trim_end_matches('>');
            return url::Url::parse(current)
                .and_then(|base| base.join(target))
                .ok()
                .map(String::from);
        }
    }
    None
}

const TOO_MANY_TAGS: &str = "more than the tag cap";

pub(super) fn too_many_tags() -> Failure {
    Failure::Protocol(format!(
        "the tag list has more than {MAX_TAGS} tags; cru does not choose from an incomplete list"
    ))
}

/// A page's `tags` (an array or `null`), refused past `MAX_TAGS` entries as they are read,
/// so that a page of millions of tiny tags is not held whole.
fn bounded_tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct Tags;
    impl<'de> serde::de::Visitor<'de> for Tags {
        type Value = Option<Vec<String>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of tags")
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(tag) = seq.next_element::<String>()? {
                if out.len() == MAX_TAGS {
                    return Err(serde::de::Error::custom(TOO_MANY_TAGS));
                }
                out.push(tag);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(Tags)
}

/// `scheme://host:port` of a URL, for messages (never its path or query).
pub(super) fn origin_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "an invalid URL".to_owned(),
        |u| u.origin().ascii_serialization(),
    )
}

/// Whether two URLs have the same scheme, host and port.
pub(super) fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// What a manifest body is; only these may be hashed into a digest.
#[derive(Debug)]
pub(super) enum Manifest {
    /// A single-platform image manifest.
    Image,
    /// An index (manifest list) with its entries.
    Index(Vec<IndexEntry>),
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<EntryPlatform>,
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct EntryPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// Checks that a body is a schema-2 manifest or index of a media type cru asked for, by its
/// `mediaType` (or else the `Content-Type`), which must agree with the `Content-Type`.
pub(super) fn parse_manifest(body: &[u8], content_type: &str) -> Result<Manifest, Failure> {
    #[derive(serde::Deserialize)]
    struct Raw {
        #[serde(default, rename = "schemaVersion")]
        schema_version: Option<u64>,
        #[serde(default, rename = "mediaType")]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<Vec<IndexEntry>>,
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|_| {
        Failure::Protocol(format!(
            "the manifest is not JSON (Content-Type {:?})",
            shorten(content_type)
        ))
    })?;
    if raw.schema_version != Some(2) {
        return Err(Failure::Protocol(
            "the manifest is not a schema 2 manifest or index".into(),
        ));
    }
    let known = |t: &str| MANIFEST_TYPES.contains(&t);
    let media_type = match raw.media_type.as_deref() {
        Some(t) if !known(t) => {
            return Err(Failure::Protocol(format!(
                "unsupported manifest media type {:?}",
                shorten(t)
            )))
        }
        Some(t) => {
            if known(content_type) && content_type != t {
                return Err(Failure::Protocol(format!(
                    "the manifest says it is {t} but was served as {content_type}"
                )));
            }
            t
        }
        None if known(content_type) => content_type,
        None => {
            return Err(Failure::Protocol(format!(
                "the manifest has no mediaType and was served as {:?}",
                shorten(content_type)
            )))
        }
    };
    if MANIFEST_TYPES[..2].contains(&media_type) {
        raw.manifests
            .map(Manifest::Index)
            .ok_or_else(|| Failure::Protocol("an index without manifests".into()))
    } else {
        Ok(Manifest::Image)
    }
}

/// A registry's text, cut for a message.
fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The digest of `platform`'s manifest in an index; a single manifest is its own answer.
pub fn pick_platform(
    body: &[u8],
    content_type: &str,
    platform: &Platform,
) -> Result<String, Failure> {
    let manifests = match parse_manifest(body, content_type)? {
        // A single-platform image: its manifest is the platform's manifest.
        Manifest::Image => return Ok(sha256_digest(body)),
        Manifest::Index(entries) => entries,
    };
    let mut available = Vec::new();
    for entry in &manifests {
        let Some(p) = &entry.platform else { continue };
        let found = Platform {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone(),
        };
        if platform.matches(&found) {
            if !crate::reference::is_digest(&entry.digest) {
                return Err(Failure::Protocol(format!(
                    "the index entry for {found} has a malformed digest {:?}",
                    shorten(&entry.digest)
                )));
            }
            return Ok(entry.digest.clone());
        }
        available.push(found.to_string());
    }
    Err(Failure::PlatformNotFound(available))
}

/// The `Content-Type` without parameters, lowercased; empty if absent.
pub(super) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The valid tags of one tag-list page, and how many listed entries were not tags (a listed
/// "tag" is written into files: only the tag grammar gets through).
pub(super) fn parse_tag_page(body: &[u8]) -> Result<(Vec<String>, usize), Failure> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default, deserialize_with = "bounded_tags")]
        tags: Option<Vec<String>>,
    }
    let page: Page = serde_json::from_slice(body).map_err(|e| {
        if e.to_string().starts_with(TOO_MANY_TAGS) {
            too_many_tags()
        } else {
            Failure::Protocol(format!("malformed tag list: {e}"))
        }
    })?;
    let listed = page.tags.unwrap_or_default();
    let total = listed.len();
    let tags: Vec<String> = listed
        .into_iter()
        .filter(|t| crate::reference::is_tag(t))
        .collect();
    let dropped = total - tags.len();
    Ok((tags, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn sha256_of_empty() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(r#"</v2/a/tags/list?last=x&n=2>; rel="next""#),
        );
        assert_eq!(
            next_link(&h, "http://r/v2/a/tags/list?n=2"),
            Some("http://r/v2/a/tags/list?last=x&n=2".into())
        );
        assert_eq!(next_link(&HeaderMap::new(), "http://r/v2/"), None);
        // Relative to the page, as RFC 8288 resolves them.
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(r#"<list?last=y>; rel="next""#),
        );
        assert_eq!(
            next_link(&h, "http://r:5000/v2/a/tags/list?n=2"),
            Some("http://r:5000/v2/a/tags/list?last=y".into())
        );
    }

    #[test]
    fn one_page_past_the_tag_cap_is_refused_while_it_is_read() {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default, deserialize_with = "bounded_tags")]
            tags: Option<Vec<String>>,
        }
        let page = |n: usize| {
            let tags: Vec<String> = (0..n).map(|i| format!("\"{i}\"")).collect();
            format!(r#"{{"tags":[{}]}}"#, tags.join(","))
        };
        let full: Page = serde_json::from_str(&page(MAX_TAGS)).unwrap();
        assert_eq!(full.tags.map(|t| t.len()), Some(MAX_TAGS));
        let e = serde_json::from_str::<Page>(&page(MAX_TAGS + 1))
            .err()
            .unwrap();
        assert!(e.to_string().starts_with(TOO_MANY_TAGS), "{e}");
        let none: Page = serde_json::from_str(r#"{"tags":null}"#).unwrap();
        assert_eq!(none.tags, None);
        let absent: Page = serde_json::from_str(r#"{"name":"x"}"#).unwrap();
        assert_eq!(absent.tags, None);
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin("http://r:5000/v2/x?last=1", "http://r:5000"));
        assert!(same_origin("https://r/v2/", "https://r:443"));
        assert!(!same_origin("http://r:5001/v2/", "http://r:5000"));
        assert!(!same_origin("https://r:5000/v2/", "http://r:5000"));
        assert!(!same_origin("http://evil/v2/", "http://r"));
        assert!(!same_origin("not a url", "http://r"));
        assert_eq!(
            origin_of("http://u:p@evil:81/v2/?q=secret"),
            "http://evil:81"
        );
    }

    #[test]
    fn only_known_schema_2_manifests_are_digest_sources() {
        let oci = "application/vnd.oci.image.manifest.v1+json";
        let ok = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
        assert!(matches!(parse_manifest(ok, ""), Ok(Manifest::Image)));
        assert!(matches!(
            parse_manifest(ok, "application/json"),
            Ok(Manifest::Image)
        ));
        // No mediaType in the body (allowed by OCI 1.0): the Content-Type decides.
        let bare = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert!(matches!(parse_manifest(bare, oci), Ok(Manifest::Image)));
        let rejected: [(&[u8], &str); 7] = [
            (b"AAAAAAAA", oci),
            (b"<html>not found</html>", "text/html"),
            (
                br#"{"schemaVersion":1,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
                oci,
            ),
            (
                br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
                oci,
            ),
            (bare, "application/octet-stream"),
            (br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, oci),
            (ok, "application/vnd.docker.distribution.manifest.v2+json"),
        ];
        for (body, ct) in rejected {
            assert!(
                matches!(parse_manifest(body, ct), Err(Failure::Protocol(_))),
                "{} as {ct}",
                String::from_utf8_lossy(body)
            );
        }
        let index_without_entries =
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#;
        assert!(parse_manifest(index_without_entries, "").is_err());
    }

    #[test]
    fn a_malformed_digest_in_the_platform_entry_fails_the_lookup() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"digest":"sha256:../../etc","platform":{"os":"linux","architecture":"amd64"}}]}"#;
        let got = pick_platform(index, "", &"linux/amd64".parse().unwrap());
        assert!(
            matches!(&got, Err(Failure::Protocol(m)) if m.contains("malformed digest")),
            "{got:?}"
        );
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retry_after_an_http_date_waits_until_then() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(retry_after_at(date, now), Some(Duration::from_secs(30)));
        let later = now + chrono::Duration::seconds(120);
        assert_eq!(retry_after_at(date, later), Some(Duration::ZERO));
        assert_eq!(retry_after_at("Wed, 32 Oct 2015", now), None);
    }

    #[test]
    fn platform_from_index() {
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"digest":"{d1}","platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"digest":"{d2}","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
        );
        let p = |s: &str| s.parse::<Platform>().unwrap();
        assert_eq!(
            pick_platform(index.as_bytes(), "", &p("linux/amd64")),
            Ok(d1)
        );
        assert_eq!(
            pick_platform(index.as_bytes(), "", &p("linux/arm64")),
            Ok(d2.clone())
        );
        assert_eq!(
            pick_platform(index.as_bytes(), "", &p("linux/arm64/v8")),
            Ok(d2)
        );
        assert_eq!(
            pick_platform(index.as_bytes(), "", &p("linux/s390x")),
            Err(Failure::PlatformNotFound(vec![
                "linux/amd64".into(),
                "linux/arm64/v8".into()
            ]))
        );
        let single = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
        assert_eq!(
            pick_platform(single, "", &p("linux/s390x")),
            Ok(sha256_digest(single))
        );
    }
}
