//! A small client for the read side of the OCI distribution API, on `reqwest` and tokio.
//!
//! It answers two questions, gently: which digest does a tag point at (one manifest `HEAD`
//! per unique tag and run), and which tags does a repository have. It pings each registry
//! once to learn its challenge, decides credentials before the first request, fetches at most
//! one token per (registry, repository), merges identical lookups, bounds in-flight requests,
//! retries 5xx/timeouts/dropped connections with backoff and honours `Retry-After` (seconds
//! or an HTTP date) on 429.
//! It never pushes, deletes, or pulls blobs.
//!
//! Why not `oci-client`: its `fetch_manifest_digest` falls back to a `GET` whenever the `HEAD`
//! answer lacks `Docker-Content-Digest`, which includes every 404 and 429 (a `GET` that counts
//! against Docker Hub's pull limit and is itself rate limited); it has no retry hooks; and
//! concurrent first calls each fetch a token. See `docs/decisions.md`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::sync::{OnceCell, Semaphore};

use super::auth::{self, Challenge, Credential, CredentialSource, DockerConfig, Secret};
use super::config::Endpoint;
use super::Platform;

/// The manifest media types cru accepts, indexes first: a multi-platform tag resolves to
/// its index, as `docker pull` records it.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Pages of a tag list followed at most.
const MAX_TAG_PAGES: usize = 100;
/// Tags collected at most from one repository.
const MAX_TAGS: usize = 100_000;
/// Largest manifest body read.
const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// How hard to try before giving up on a request.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after a 5xx, a timeout or a dropped connection.
    pub retries: u32,
    /// The first backoff; it doubles each retry, with jitter.
    pub base_backoff: Duration,
    /// The longest single backoff.
    pub max_backoff: Duration,
    /// Retries after a 429.
    pub rate_limit_retries: u32,
    /// The longest `Retry-After` waited for; a longer one fails the lookup.
    pub max_retry_after: Duration,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 8,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(4),
            rate_limit_retries: 3,
            max_retry_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a request to one endpoint failed; the resolver adds the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 404: the tag or repository does not exist there.
    NotFound,
    /// 401/403, or a token could not be had.
    Unauthorized,
    /// No answer: connection refused, reset or timed out, after retries.
    Unreachable(String),
    /// 429 after the allowed waits, or a `Retry-After` beyond the bound.
    RateLimited(Option<Duration>),
    /// Another answer: a 5xx after retries, an unexpected status or a malformed body.
    Protocol(String),
    /// The index has no manifest for the platform.
    PlatformNotFound(Vec<String>),
}

/// What cru knows about one registry host before sending repository requests.
#[derive(Debug)]
struct RegistryState {
    challenge: Challenge,
    credential: Option<Credential>,
}

type Shared<T> = Arc<OnceCell<T>>;
/// One shared result per key: concurrent callers with the same key await one computation.
type SingleFlight<K, T> = Mutex<HashMap<K, Shared<Result<T, Failure>>>>;

/// The distribution-API client: connection pool, caches and limits for one run.
pub struct Client {
    http: reqwest::Client,
    docker_config: DockerConfig,
    policy: RetryPolicy,
    permits: Semaphore,
    registries: SingleFlight<String, Arc<RegistryState>>,
    tokens: SingleFlight<(String, String), Option<Secret>>,
    digests: SingleFlight<(Endpoint, String, Option<Platform>), String>,
    tag_lists: SingleFlight<Endpoint, Arc<Vec<String>>>,
}

/// The cell for `key`, created on first use: callers awaiting it share one computation.
fn cell<K: Eq + std::hash::Hash, T>(map: &Mutex<HashMap<K, Shared<T>>>, key: K) -> Shared<T> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key).or_default().clone()
}

impl Client {
    /// A client that sends at most `jobs` requests at once.
    pub fn new(
        docker_config: DockerConfig,
        policy: RetryPolicy,
        jobs: usize,
    ) -> Result<Client, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("cru/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.request_timeout)
            .pool_max_idle_per_host(jobs.max(1))
            .build()?;
        Ok(Client {
            http,
            docker_config,
            policy,
            permits: Semaphore::new(jobs.max(1)),
            registries: Mutex::default(),
            tokens: Mutex::default(),
            digests: Mutex::default(),
            tag_lists: Mutex::default(),
        })
    }

    /// The digest `endpoint`'s `tag` points at: the manifest's (or index's) own digest, or
    /// with a platform, that platform's manifest digest from the index. Shared per run.
    pub async fn digest(
        &self,
        endpoint: &Endpoint,
        tag: &str,
        platform: Option<&Platform>,
    ) -> Result<String, Failure> {
        let key = (endpoint.clone(), tag.to_owned(), platform.cloned());
        cell(&self.digests, key)
            .get_or_init(|| async {
                match platform {
                    None => self.head_digest(endpoint, tag).await,
                    Some(p) => self.platform_digest(endpoint, tag, p).await,
                }
            })
            .await
            .clone()
    }

    /// All tags of the endpoint's repository, following `Link` pages defensively.
    pub async fn tags(&self, endpoint: &Endpoint) -> Result<Arc<Vec<String>>, Failure> {
        cell(&self.tag_lists, endpoint.clone())
            .get_or_init(|| self.list_tags(endpoint))
            .await
            .clone()
    }

    async fn head_digest(&self, ep: &Endpoint, tag: &str) -> Result<String, Failure> {
        let url = manifest_url(ep, tag);
        let resp = self
            .repo_request(ep, Method::HEAD, &url, Some(MANIFEST_ACCEPT))
            .await?;
        check_status(resp.status())?;
        if let Some(digest) = header_digest(resp.headers()) {
            return Ok(digest);
        }
        tracing::debug!(
            url,
            "HEAD answer has no Docker-Content-Digest; fetching the manifest"
        );
        let resp = self
            .repo_request(ep, Method::GET, &url, Some(MANIFEST_ACCEPT))
            .await?;
        check_status(resp.status())?;
        let body = read_body(resp).await?;
        Ok(sha256_digest(&body))
    }

    async fn platform_digest(
        &self,
        ep: &Endpoint,
        tag: &str,
        platform: &Platform,
    ) -> Result<String, Failure> {
        let url = manifest_url(ep, tag);
        let resp = self
            .repo_request(ep, Method::GET, &url, Some(MANIFEST_ACCEPT))
            .await?;
        check_status(resp.status())?;
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = read_body(resp).await?;
        pick_platform(&body, &content_type, platform)
    }

    async fn list_tags(&self, ep: &Endpoint) -> Result<Arc<Vec<String>>, Failure> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = format!("{}/v2/{}/tags/list?n=1000", ep.base_url(), ep.repository);
        let mut seen_urls = HashSet::new();
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        for page in 0.. {
            if page == MAX_TAG_PAGES {
                tracing::warn!(
                    "stopping the tag list of {}/{} after {MAX_TAG_PAGES} pages",
                    ep.host,
                    ep.repository
                );
                break;
            }
            seen_urls.insert(url.clone());
            let resp = self
                .repo_request(ep, Method::GET, &url, Some("application/json"))
                .await?;
            check_status(resp.status())?;
            let next = next_link(resp.headers(), &ep.base_url());
            let body = read_body(resp).await?;
            let parsed: Page = serde_json::from_slice(&body)
                .map_err(|e| Failure::Protocol(format!("malformed tag list: {e}")))?;
            let before = tags.len();
            for tag in parsed.tags.unwrap_or_default() {
                if seen.insert(tag.clone()) {
                    tags.push(tag);
                }
            }
            let progressed = tags.len() > before;
            match next {
                Some(n) if progressed && tags.len() < MAX_TAGS && !seen_urls.contains(&n) => {
                    url = n
                }
                _ => break,
            }
        }
        Ok(Arc::new(tags))
    }

    /// Sends a request about `ep`'s repository with that repository's authorization.
    async fn repo_request(
        &self,
        ep: &Endpoint,
        method: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Failure> {
        let authorization = self.authorization(ep).await?;
        self.send(|| {
            let mut req = self.http.request(method.clone(), url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(auth) = &authorization {
                req = req.header(AUTHORIZATION, auth.expose());
            }
            req
        })
        .await
    }

    /// The `Authorization` value for `ep`'s repository, if any: fetched once per run.
    async fn authorization(&self, ep: &Endpoint) -> Result<Option<Secret>, Failure> {
        let state = self.registry(ep).await?;
        match &state.challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(state.credential.as_ref().and_then(Credential::basic_header)),
            Challenge::Bearer { realm, service } => {
                let key = (ep.base_url(), ep.repository.clone());
                cell(&self.tokens, key)
                    .get_or_init(|| {
                        self.fetch_token(ep, realm, service.as_deref(), state.credential.as_ref())
                    })
                    .await
                    .clone()
            }
        }
    }

    /// Learns the registry's challenge (`GET /v2/`) and decides its credentials, once.
    async fn registry(&self, ep: &Endpoint) -> Result<Arc<RegistryState>, Failure> {
        cell(&self.registries, ep.base_url())
            .get_or_init(|| async {
                tracing::debug!(registry = ep.host, "pinging registry");
                let url = format!("{}/v2/", ep.base_url());
                let resp = self.send(|| self.http.get(&url)).await?;
                let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
                    resp.headers()
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find_map(auth::parse_challenge)
                        .unwrap_or(Challenge::Basic)
                } else {
                    Challenge::None
                };
                // Decided once, before any repository request; helpers only run when the
                // registry asks for authentication (an open registry needs none).
                let credential = match (&challenge, self.docker_config.source_for(&ep.host)) {
                    (Challenge::None, _) | (_, CredentialSource::Anonymous) => None,
                    (_, CredentialSource::Static(c)) => Some(c),
                    (_, CredentialSource::Helper { name, server }) => {
                        auth::run_helper(&name, &server).await
                    }
                };
                tracing::debug!(
                    registry = ep.host,
                    ?challenge,
                    credentials = credential.is_some(),
                    "registry authentication decided"
                );
                Ok(Arc::new(RegistryState {
                    challenge,
                    credential,
                }))
            })
            .await
            .clone()
    }

    async fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        credential: Option<&Credential>,
    ) -> Result<Option<Secret>, Failure> {
        let scope = format!("repository:{}:pull", ep.repository);
        tracing::debug!(registry = ep.host, scope, "fetching token");
        let resp = match credential {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.expose()),
                    ("client_id", "cru"),
                    ("scope", scope.as_str()),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                self.send(|| self.http.post(realm).form(&form)).await?
            }
            _ => {
                let mut query = vec![("scope", scope.as_str())];
                if let Some(s) = service {
                    query.push(("service", s));
                }
                let basic = credential.and_then(Credential::basic_header);
                self.send(|| {
                    let req = self.http.get(realm).query(&query);
                    match &basic {
                        Some(b) => req.header(AUTHORIZATION, b.expose()),
                        None => req,
                    }
                })
                .await?
            }
        };
        check_status(resp.status())?;
        let body = read_body(resp).await?;
        auth::parse_token_response(&body)
            .map(|t| Some(Secret::new(format!("Bearer {}", t.expose()))))
            .ok_or_else(|| Failure::Protocol("token endpoint answered without a token".into()))
    }

    /// Sends a request with the policy's retries; holds a permit only while in flight.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let mut failures = 0;
        let mut rate_limited = 0;
        loop {
            let request = build()
                .build()
                .map_err(|e| Failure::Protocol(error_chain(&e)))?;
            let what = format!(
                "{} {}",
                request.method(),
                auth::redact_url(request.url().as_str())
            );
            let result = {
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .expect("semaphore is never closed");
                self.http.execute(request).await
            };
            let problem = match result {
                Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let wait = retry_after(resp.headers());
                    let allowed = wait.unwrap_or(Duration::from_secs(5));
                    if rate_limited >= self.policy.rate_limit_retries
                        || allowed > self.policy.max_retry_after
                    {
                        return Err(Failure::RateLimited(wait));
                    }
                    rate_limited += 1;
                    tracing::warn!(
                        "{what}: rate limited (429); waiting {}s as Retry-After asks",
                        allowed.as_secs_f32()
                    );
                    tokio::time::sleep(allowed).await;
                    continue;
                }
                Ok(resp) if resp.status().is_server_error() => {
                    let status = resp.status();
                    if failures >= self.policy.retries {
                        return Err(Failure::Protocol(format!(
                            "{status} after {} attempts",
                            failures + 1
                        )));
                    }
                    format!("{status}")
                }
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    let reason = error_chain(&e.without_url());
                    if failures >= self.policy.retries {
                        return Err(Failure::Unreachable(format!(
                            "{reason} (after {} attempts)",
                            failures + 1
                        )));
                    }
                    reason
                }
            };
            let backoff = self.backoff(failures);
            failures += 1;
            tracing::debug!(
                "{what}: {problem}; retry {failures} in {}ms",
                backoff.as_millis()
            );
            tokio::time::sleep(backoff).await;
        }
    }

    /// Exponential backoff with full jitter in its upper half: `[d/2, d]`, `d = base·2^n`.
    fn backoff(&self, attempt: u32) -> Duration {
        let d = self
            .policy
            .base_backoff
            .saturating_mul(1 << attempt.min(16))
            .min(self.policy.max_backoff);
        let jitter = random_fraction();
        d / 2 + d.mul_f64(jitter / 2.0)
    }
}

/// A number in `[0, 1)` from the standard library's per-process random hash keys.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn manifest_url(ep: &Endpoint, tag: &str) -> String {
    format!("{}/v2/{}/manifests/{tag}", ep.base_url(), ep.repository)
}

fn check_status(status: StatusCode) -> Result<(), Failure> {
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::NOT_FOUND => Err(Failure::NotFound),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Failure::Unauthorized),
        s => Err(Failure::Protocol(format!("unexpected answer {s}"))),
    }
}

async fn read_body(resp: reqwest::Response) -> Result<Vec<u8>, Failure> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64 * 4)
    {
        return Err(Failure::Protocol("answer too large".into()));
    }
    resp.bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| Failure::Unreachable(error_chain(&e.without_url())))
}

/// A well-formed `Docker-Content-Digest`, if present.
fn header_digest(headers: &HeaderMap) -> Option<String> {
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
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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

/// The `rel="next"` target of a `Link` header, made absolute.
fn next_link(headers: &HeaderMap, base: &str) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK).iter() {
        let value = value.to_str().ok()?;
        for part in value.split(',') {
            let (target, params) = part.split_once(';').unwrap_or((part, ""));
            if !params.replace(' ', "").contains("rel=\"next\"") && !params.contains("rel=next") {
                continue;
            }
            let target = target.trim().trim_start_matches('<').trim_end_matches('>');
            return Some(if target.starts_with('/') {
                format!("{base}{target}")
            } else {
                target.to_owned()
            });
        }
    }
    None
}

/// The digest of `platform`'s manifest in an index; a single manifest is its own answer.
pub fn pick_platform(
    body: &[u8],
    content_type: &str,
    platform: &Platform,
) -> Result<String, Failure> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default, rename = "mediaType")]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<Vec<Entry>>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        digest: String,
        #[serde(default)]
        platform: Option<EntryPlatform>,
    }
    #[derive(serde::Deserialize)]
    struct EntryPlatform {
        os: String,
        architecture: String,
        #[serde(default)]
        variant: Option<String>,
    }
    let index: Index = serde_json::from_slice(body)
        .map_err(|e| Failure::Protocol(format!("malformed manifest: {e}")))?;
    let media_type = index.media_type.as_deref().unwrap_or(content_type);
    let is_index = media_type.contains("image.index") || media_type.contains("manifest.list");
    let Some(manifests) = index.manifests.filter(|_| is_index) else {
        // A single-platform image: its manifest is the platform's manifest.
        return Ok(sha256_digest(body));
    };
    let mut available = Vec::new();
    for entry in &manifests {
        let Some(p) = &entry.platform else { continue };
        let found = Platform {
            os: p.os.clone(),
            architecture: p.architecture.clone(),
            variant: p.variant.clone(),
        };
        if platform.matches(&found) && crate::reference::is_digest(&entry.digest) {
            return Ok(entry.digest.clone());
        }
        available.push(found.to_string());
    }
    Err(Failure::PlatformNotFound(available))
}

/// The error and its sources joined by `: ` (reqwest hides the cause in `source()`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
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
            next_link(&h, "http://r"),
            Some("http://r/v2/a/tags/list?last=x&n=2".into())
        );
        assert_eq!(next_link(&HeaderMap::new(), "http://r"), None);
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
            r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
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
        let single = br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
        assert_eq!(
            pick_platform(single, "", &p("linux/s390x")),
            Ok(sha256_digest(single))
        );
    }
}
