//! Manifests as bytes, for copying them (`cru mirror`): `HEAD` by tag or digest, `GET` by
//! digest with the body checked against the digest, and `PUT` of the exact bytes under their
//! media type. Reading Docker Hub's `ratelimit-remaining` header lives here too.
//!
//! It does not decide what to copy or in which order (that is [`crate::mirror`]) and it does
//! not interpret manifests beyond the size cap and the digest check; the endpoints it is given
//! are used as they are (the caller keeps registries.conf mirrors off the push path).

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;

use super::answer::{content_type, header_digest, sha256_digest};
use super::client::{
    check_status, manifest_url, read_body, Access, Client, Deadline, Failure, MANIFEST_ACCEPT,
};
use super::registries_conf::Endpoint;

/// Largest manifest read or pushed, as distribution limits the manifests it accepts.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Largest error body read, to name the registry's error code.
const MAX_ERROR_BYTES: usize = 64 << 10;

/// What Docker Hub says is left of its pull limit (`ratelimit-remaining: 76;w=21600`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Pulls left in the window.
    pub remaining: u64,
    /// The window, in seconds, when given.
    pub window: Option<u64>,
}

/// Reads a `ratelimit-remaining` value: `76;w=21600` or `76`.
pub fn parse_ratelimit(value: &str) -> Option<RateLimit> {
    let mut parts = value.split(';');
    let remaining = parts.next()?.trim().parse().ok()?;
    let window = parts
        .filter_map(|p| p.trim().strip_prefix("w="))
        .find_map(|w| w.trim().parse().ok());
    Some(RateLimit { remaining, window })
}

fn ratelimit_of(headers: &reqwest::header::HeaderMap) -> Option<RateLimit> {
    parse_ratelimit(headers.get("ratelimit-remaining")?.to_str().ok()?)
}

/// A manifest `HEAD` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// The digest the registry names, if it sent a well-formed one.
    pub digest: Option<String>,
    /// The pull limit left, if the registry says.
    pub ratelimit: Option<RateLimit>,
}

/// A manifest's exact bytes and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The body, as served.
    pub bytes: Vec<u8>,
    /// Its `Content-Type`, without parameters.
    pub media_type: String,
    /// The pull limit left, if the registry says.
    pub ratelimit: Option<RateLimit>,
}

impl Manifest {
    /// `sha256:` of the bytes.
    pub fn digest(&self) -> String {
        sha256_digest(&self.bytes)
    }
}

impl Client {
    /// `HEAD` of a manifest by tag or digest: `None` when the registry does not have it.
    /// A `HEAD` does not count against Docker Hub's pull limit.
    pub async fn head_manifest(
        &self,
        ep: &Endpoint,
        access: Access,
        reference: &str,
    ) -> Result<Option<ManifestHead>, Failure> {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let url = manifest_url(ep, reference);
        let resp = self
            .authed(ep, access, &deadline, || {
                self.http.head(&url).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check_status(resp.status())?;
        Ok(Some(ManifestHead {
            digest: header_digest(resp.headers()),
            ratelimit: ratelimit_of(resp.headers()),
        }))
    }

    /// The manifest `reference` (a digest, or a tag) names, capped at 4 MiB. By digest, the
    /// body must hash to it: a registry cannot hand over other bytes under a digest.
    pub async fn get_manifest(
        &self,
        ep: &Endpoint,
        access: Access,
        reference: &str,
    ) -> Result<Manifest, Failure> {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let url = manifest_url(ep, reference);
        let resp = self
            .authed(ep, access, &deadline, || {
                self.http.get(&url).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        check_status(resp.status())?;
        let media_type = content_type(resp.headers());
        let ratelimit = ratelimit_of(resp.headers());
        let bytes = read_body(resp, MAX_MANIFEST_BYTES, "the manifest", &deadline).await?;
        let manifest = Manifest {
            bytes,
            media_type,
            ratelimit,
        };
        if crate::reference::is_digest(reference) && manifest.digest() != reference {
            return Err(Failure::Protocol(format!(
                "the manifest served as {reference} has the digest {}",
                manifest.digest()
            )));
        }
        Ok(manifest)
    }

    /// The OCI referrers index of `digest` (`GET /v2/<name>/referrers/<digest>`), or `None`
    /// when the registry has no referrers API (404, or another answer than an index).
    pub async fn referrers(
        &self,
        ep: &Endpoint,
        digest: &str,
    ) -> Result<Option<Manifest>, Failure> {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let url = format!("{}/v2/{}/referrers/{digest}", ep.base_url(), ep.repository);
        let resp = self
            .authed(ep, Access::Pull, &deadline, || {
                self.http
                    .get(&url)
                    .header(ACCEPT, "application/vnd.oci.image.index.v1+json")
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND || resp.status() == StatusCode::BAD_REQUEST {
            return Ok(None);
        }
        check_status(resp.status())?;
        let media_type = content_type(resp.headers());
        if media_type != "application/vnd.oci.image.index.v1+json" {
            return Ok(None);
        }
        let bytes = read_body(resp, MAX_MANIFEST_BYTES, "the referrers index", &deadline).await?;
        Ok(Some(Manifest {
            bytes,
            media_type,
            ratelimit: None,
        }))
    }

    /// Pushes a manifest's exact bytes under a digest or tag; 201 (and 202) are success.
    /// A digest the registry names in its answer must be the bytes' own.
    pub async fn put_manifest(
        &self,
        ep: &Endpoint,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(), Failure> {
        if manifest.bytes.len() > MAX_MANIFEST_BYTES {
            return Err(Failure::Protocol(format!(
                "the manifest is larger than {} KiB, cru's limit",
                MAX_MANIFEST_BYTES >> 10
            )));
        }
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let url = manifest_url(ep, reference);
        // Cheap to clone for a retry.
        let body = bytes::Bytes::copy_from_slice(&manifest.bytes);
        let resp = self
            .authed(ep, Access::Push, &deadline, || {
                self.http
                    .put(&url)
                    .header(CONTENT_TYPE, &manifest.media_type)
                    .body(body.clone())
            })
            .await?;
        if !matches!(resp.status(), StatusCode::CREATED | StatusCode::ACCEPTED) {
            return Err(refusal(resp, &deadline).await);
        }
        if let Some(d) = header_digest(resp.headers()) {
            if d != manifest.digest() {
                return Err(Failure::Protocol(format!(
                    "the registry stored the manifest as {d}, not as its digest {}",
                    manifest.digest()
                )));
            }
        }
        Ok(())
    }
}

/// The failure an unexpected answer stands for, with the registry's error code and message
/// (`400 Bad Request: TAG_INVALID: …`) when it gives one. 404 is [`Failure::NotFound`].
pub(super) async fn refusal(resp: reqwest::Response, deadline: &Deadline) -> Failure {
    let status = resp.status();
    match status {
        StatusCode::NOT_FOUND => return Failure::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Failure::Unauthorized,
        _ => {}
    }
    let detail = match read_body(resp, MAX_ERROR_BYTES, "the error", deadline).await {
        Ok(body) => error_code(&body)
            .map(|c| format!(": {c}"))
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    Failure::Protocol(format!("unexpected answer {status}{detail}"))
}

/// `CODE: message` of the first entry of a distribution error body, cut short.
pub(super) fn error_code(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: String,
        #[serde(default)]
        message: String,
    }
    let first = serde_json::from_slice::<Errors>(body)
        .ok()?
        .errors
        .into_iter()
        .next()?;
    let text = if first.message.is_empty() {
        first.code
    } else {
        format!("{}: {}", first.code, first.message)
    };
    Some(text.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratelimit_headers_are_read_with_and_without_window() {
        assert_eq!(
            parse_ratelimit("76;w=21600"),
            Some(RateLimit {
                remaining: 76,
                window: Some(21600)
            })
        );
        assert_eq!(
            parse_ratelimit(" 3 "),
            Some(RateLimit {
                remaining: 3,
                window: None
            })
        );
        assert_eq!(parse_ratelimit("many"), None);
    }

    #[test]
    fn error_bodies_name_code_and_message() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{}}]}"#;
        assert_eq!(
            error_code(body).as_deref(),
            Some("NAME_UNKNOWN: repository name not known to registry")
        );
        assert_eq!(error_code(b"<html>"), None);
    }
}
