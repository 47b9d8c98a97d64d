//! A small client for the read side of the OCI distribution API, on `reqwest` and tokio.
//!
//! It answers two questions, gently: which digest does a tag point at (one manifest `HEAD`
//! per unique tag and run), and which tags does a repository have. It pings each registry
//! once to learn its challenge, decides credentials before the first request, fetches at most
//! one token per (registry, repository), merges identical lookups, bounds in-flight requests,
//! retries 5xx/408/timeouts/dropped connections with backoff and honours `Retry-After`
//! (seconds or an HTTP date) on 429. It distrusts what registries say: each lookup has a
//! deadline, bodies are capped while they stream, listed tags and digests must be well formed,
//! a body is hashed only if it is a manifest, next-page links stay on the registry's origin,
//! and credentials go to a token server only over HTTPS within the registry's own site.
//! It never pushes, deletes, or pulls blobs.
//!
//! Why not `oci-client`: its `fetch_manifest_digest` falls back to a `GET` whenever the `HEAD`
//! answer lacks `Docker-Content-Digest`, which includes every 404 and 429 (a `GET` that counts
//! against Docker Hub's pull limit and is itself rate limited); it has no retry hooks; and
//! concurrent first calls each fetch a token. See `docs/decisions.md`.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
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

/// The manifest media types whose bodies may be hashed into a digest; the first two are
/// indexes.
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Pages of a tag list followed at most; a longer list fails the lookup.
const MAX_TAG_PAGES: usize = 100;
/// Tags of one repository at most, across all pages; a longer list fails the lookup.
const MAX_TAGS: usize = 100_000;
/// Largest manifest body read, as distribution limits manifests it accepts.
const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Largest tag-list page read (`MAX_TAGS` tags of the longest length fit).
const MAX_TAG_PAGE_BYTES: usize = 16 << 20;
/// Largest token-endpoint answer read.
const MAX_TOKEN_BYTES: usize = 1 << 20;

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
    /// Time allowed for one lookup (a digest or a tag list), from its first request:
    /// retries, backoff, `Retry-After` waits and bodies included.
    pub lookup_deadline: Duration,
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
            lookup_deadline: Duration::from_secs(60),
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
    /// The token server (its host) gave no answer.
    TokenServerUnreachable {
        /// The token server's host and port, never its URL.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// 429 after the allowed waits, or a `Retry-After` beyond the bound.
    RateLimited(Option<Duration>),
    /// Another answer: a 5xx after retries, an unexpected status or a malformed body.
    Protocol(String),
    /// The index has no manifest for the platform.
    PlatformNotFound(Vec<String>),
}

/// When one lookup must be done: the clock starts at its first request, so that lookups
/// queued behind `--jobs` others are not charged for the wait.
struct Deadline {
    budget: Duration,
    at: OnceLock<tokio::time::Instant>,
}

impl Deadline {
    fn new(budget: Duration) -> Deadline {
        Deadline {
            budget,
            at: OnceLock::new(),
        }
    }

    /// The deadline, starting the clock if it has not started.
    fn start(&self) -> tokio::time::Instant {
        *self
            .at
            .get_or_init(|| tokio::time::Instant::now() + self.budget)
    }

    /// The deadline if the clock has started.
    fn started(&self) -> Option<tokio::time::Instant> {
        self.at.get().copied()
    }

    /// Whether waiting `d` from now would pass the deadline.
    fn passed_after(&self, d: Duration) -> bool {
        self.started()
            .is_some_and(|at| tokio::time::Instant::now() + d >= at)
    }

    fn exceeded(&self, last: Option<&str>) -> Failure {
        let mut reason = format!(
            "no answer within the lookup deadline of {}s",
            self.budget.as_secs_f32()
        );
        if let Some(last) = last {
            reason.push_str(&format!(" (last: {last})"));
        }
        Failure::Unreachable(reason)
    }
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
                let deadline = Deadline::new(self.policy.lookup_deadline);
                match platform {
                    None => self.head_digest(endpoint, tag, &deadline).await,
                    Some(p) => self.platform_digest(endpoint, tag, p, &deadline).await,
                }
            })
            .await
            .clone()
    }

    /// All tags of the endpoint's repository, following `Link` pages defensively.
    pub async fn tags(&self, endpoint: &Endpoint) -> Result<Arc<Vec<String>>, Failure> {
        cell(&self.tag_lists, endpoint.clone())
            .get_or_init(|| async {
                let deadline = Deadline::new(self.policy.lookup_deadline);
                self.list_tags(endpoint, &deadline).await
            })
            .await
            .clone()
    }

    async fn head_digest(
        &self,
        ep: &Endpoint,
        tag: &str,
        deadline: &Deadline,
    ) -> Result<String, Failure> {
        let url = manifest_url(ep, tag);
        let resp = self
            .repo_request(ep, deadline, Method::HEAD, &url, Some(MANIFEST_ACCEPT))
            .await?;
        check_status(resp.status())?;
        if let Some(digest) = header_digest(resp.headers()) {
            return Ok(digest);
        }
        tracing::debug!(
            url,
            "HEAD answer has no well-formed Docker-Content-Digest; fetching the manifest"
        );
        let resp = self
            .repo_request(ep, deadline, Method::GET, &url, Some(MANIFEST_ACCEPT))
            .await?;
        check_status(resp.status())?;
        let content_type = content_type(resp.headers());
        let body = read_body(resp, MAX_MANIFEST_BYTES, "the manifest", deadline).await?;
        // Only a manifest's bytes name an image: any other body hashes to a digest of nothing.
        parse_manifest(&body, &content_type)?;
        Ok(sha256_digest(&body))
    }

    async fn platform_digest(
        &self,
        ep: &Endpoint,
        tag: &str,
        platform: &Platform,
        deadline: &Deadline,
    ) -> Result<String, Failure> {
        let url = manifest_url(ep, tag);
        let resp = self
            .repo_request(ep, deadline, Method::GET, &url, Some(MANIFEST_ACCEPT))
            .await?;
        check_status(resp.status())?;
        let content_type = content_type(resp.headers());
        let body = read_body(resp, MAX_MANIFEST_BYTES, "the manifest", deadline).await?;
        pick_platform(&body, &content_type, platform)
    }

    async fn list_tags(
        &self,
        ep: &Endpoint,
        deadline: &Deadline,
    ) -> Result<Arc<Vec<String>>, Failure> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default, deserialize_with = "bounded_tags")]
            tags: Option<Vec<String>>,
        }
        let mut url = format!("{}/v2/{}/tags/list?n=1000", ep.base_url(), ep.repository);
        let mut seen_urls = HashSet::new();
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        let mut malformed = 0usize;
        for page in 0.. {
            if page == MAX_TAG_PAGES {
                // An incomplete list could make a wrong tag look like the best one.
                return Err(Failure::Protocol(format!(
                    "the tag list goes on past {MAX_TAG_PAGES} pages; cru does not choose \
                     from an incomplete list"
                )));
            }
            seen_urls.insert(url.clone());
            let resp = self
                .repo_request(ep, deadline, Method::GET, &url, Some("application/json"))
                .await?;
            check_status(resp.status())?;
            let next = next_link(resp.headers(), &url);
            let body = read_body(resp, MAX_TAG_PAGE_BYTES, "a tag-list page", deadline).await?;
            let parsed: Page = serde_json::from_slice(&body).map_err(|e| {
                if e.to_string().starts_with(TOO_MANY_TAGS) {
                    too_many_tags()
                } else {
                    Failure::Protocol(format!("malformed tag list: {e}"))
                }
            })?;
            drop(body);
            let before = tags.len();
            for tag in parsed.tags.unwrap_or_default() {
                // A listed "tag" is written into files: only the tag grammar gets through.
                if !crate::reference::is_tag(&tag) {
                    malformed += 1;
                    continue;
                }
                if seen.insert(tag.clone()) {
                    tags.push(tag);
                    if tags.len() > MAX_TAGS {
                        return Err(too_many_tags());
                    }
                }
            }
            let progressed = tags.len() > before;
            match next {
                Some(n) if progressed && !seen_urls.contains(&n) => {
                    if !same_origin(&n, &ep.base_url()) {
                        return Err(Failure::Protocol(format!(
                            "the tag list's next page is on another origin ({}); cru follows \
                             next-page links only on {}",
                            origin_of(&n),
                            ep.base_url()
                        )));
                    }
                    url = n
                }
                _ => break,
            }
        }
        if malformed > 0 {
            tracing::warn!(
                "{}/{}: ignored {malformed} listed tags that are not valid tags",
                ep.host,
                ep.repository
            );
        }
        Ok(Arc::new(tags))
    }

    /// Sends a request about `ep`'s repository with that repository's authorization.
    async fn repo_request(
        &self,
        ep: &Endpoint,
        deadline: &Deadline,
        method: Method,
        url: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Failure> {
        let authorization = self.authorization(ep, deadline).await?;
        self.send(deadline, || {
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
    async fn authorization(
        &self,
        ep: &Endpoint,
        deadline: &Deadline,
    ) -> Result<Option<Secret>, Failure> {
        let state = self.registry(ep, deadline).await?;
        match &state.challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(state.credential.as_ref().and_then(Credential::basic_header)),
            Challenge::Bearer { realm, service } => {
                let key = (ep.base_url(), ep.repository.clone());
                cell(&self.tokens, key)
                    .get_or_init(|| {
                        self.fetch_token(
                            ep,
                            realm,
                            service.as_deref(),
                            state.credential.as_ref(),
                            deadline,
                        )
                    })
                    .await
                    .clone()
            }
        }
    }

    /// Learns the registry's challenge (`GET /v2/`) and decides its credentials, once.
    async fn registry(
        &self,
        ep: &Endpoint,
        deadline: &Deadline,
    ) -> Result<Arc<RegistryState>, Failure> {
        cell(&self.registries, ep.base_url())
            .get_or_init(|| async {
                tracing::debug!(registry = ep.host, "pinging registry");
                let url = format!("{}/v2/", ep.base_url());
                let resp = self.send(deadline, || self.http.get(&url)).await?;
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
        deadline: &Deadline,
    ) -> Result<Option<Secret>, Failure> {
        let scope = format!("repository:{}:pull", ep.repository);
        let token_host = auth::url_host(realm);
        tracing::debug!(
            registry = ep.host,
            token_server = token_host,
            scope,
            "fetching token"
        );
        // Credentials for one registry go to its own site only, and never in clear text
        // (containerd's CVE-2020-15157): any other realm gets an anonymous request.
        let credential = match (credential, auth::realm_refusal(ep.scheme, &ep.host, realm)) {
            (Some(_), Some(why)) => {
                tracing::warn!(
                    "not sending the credentials for {} to the token server {token_host}: \
                     {why}; asking for an anonymous token",
                    ep.host
                );
                None
            }
            (c, _) => c,
        };
        let token_failure = |f: Failure| match f {
            Failure::Unreachable(reason) => Failure::TokenServerUnreachable {
                host: token_host.clone(),
                reason,
            },
            Failure::Protocol(reason) => {
                Failure::Protocol(format!("token server {token_host}: {reason}"))
            }
            other => other,
        };
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
                self.send(deadline, || self.http.post(realm).form(&form))
                    .await
                    .map_err(token_failure)?
            }
            _ => {
                let mut query = vec![("scope", scope.as_str())];
                if let Some(s) = service {
                    query.push(("service", s));
                }
                let basic = credential.and_then(Credential::basic_header);
                self.send(deadline, || {
                    let req = self.http.get(realm).query(&query);
                    match &basic {
                        Some(b) => req.header(AUTHORIZATION, b.expose()),
                        None => req,
                    }
                })
                .await
                .map_err(token_failure)?
            }
        };
        check_status(resp.status())?;
        let body = read_body(resp, MAX_TOKEN_BYTES, "the token answer", deadline)
            .await
            .map_err(token_failure)?;
        auth::parse_token_response(&body)
            .map(|t| Some(Secret::new(format!("Bearer {}", t.expose()))))
            .ok_or_else(|| {
                Failure::Protocol(format!(
                    "token server {token_host} answered without a token"
                ))
            })
    }

    /// Sends a request with the policy's retries, within the lookup's deadline; holds a
    /// permit only while in flight. Only transient failures are retried.
    async fn send(
        &self,
        deadline: &Deadline,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let mut failures = 0;
        let mut rate_limited = 0;
        let mut last: Option<String> = None;
        loop {
            let request = build()
                .build()
                .map_err(|e| Failure::Protocol(error_chain(&e)))?;
            let what = format!(
                "{} {}",
                request.method(),
                auth::redact_url(request.url().as_str())
            );
            let attempt = async {
                let _permit = self
                    .permits
                    .acquire()
                    .await
                    .expect("semaphore is never closed");
                let at = deadline.start();
                tokio::time::timeout_at(at, self.http.execute(request)).await
            };
            // Waiting for a permit counts only once the lookup has started.
            let result = match deadline.started() {
                Some(at) => tokio::time::timeout_at(at, attempt)
                    .await
                    .unwrap_or_else(Err),
                None => attempt.await,
            };
            let Ok(result) = result else {
                return Err(deadline.exceeded(last.as_deref()));
            };
            let problem = match result {
                Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let wait = retry_after(resp.headers());
                    let allowed = wait.unwrap_or(Duration::from_secs(5));
                    if rate_limited >= self.policy.rate_limit_retries
                        || allowed > self.policy.max_retry_after
                        || deadline.passed_after(allowed)
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
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::REQUEST_TIMEOUT =>
                {
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
                    let transient = is_transient(&e);
                    let reason = error_chain(&e.without_url());
                    if !transient {
                        return Err(Failure::Unreachable(reason));
                    }
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
            if deadline.passed_after(backoff) {
                return Err(deadline.exceeded(Some(&problem)));
            }
            failures += 1;
            tracing::debug!(
                "{what}: {problem}; retry {failures} in {}ms",
                backoff.as_millis()
            );
            last = Some(problem);
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

/// Reads a body of at most `cap` bytes, failing as soon as more arrive, within the deadline.
async fn read_body(
    mut resp: reqwest::Response,
    cap: usize,
    what: &str,
    deadline: &Deadline,
) -> Result<Vec<u8>, Failure> {
    let too_large = || {
        Failure::Protocol(format!(
            "{what} is larger than {} KiB, cru's limit",
            cap >> 10
        ))
    };
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let at = deadline.start();
    let mut body = Vec::new();
    loop {
        let chunk = tokio::time::timeout_at(at, resp.chunk())
            .await
            .map_err(|_| deadline.exceeded(Some(&format!("reading {what}"))))?
            .map_err(|e| Failure::Unreachable(error_chain(&e.without_url())))?;
        let Some(chunk) = chunk else {
            return Ok(body);
        };
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
}

/// The `Content-Type` without parameters, lowercased; empty if absent.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a failed request may succeed if sent again: timeouts and dropped or refused
/// connections may; TLS and certificate errors, malformed or oversized answers, bad URLs
/// and redirect loops will not.
fn is_transient(e: &reqwest::Error) -> bool {
    if e.is_builder() || e.is_redirect() || e.is_decode() {
        return false;
    }
    if e.is_timeout() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_too_large() || h.is_parse_status() {
                return false;
            }
        }
        // TLS failures (certificates, handshakes) come as rustls errors, bare or in an
        // `io::Error`; a host name TLS cannot use is `InvalidInput`.
        if s.downcast_ref::<rustls::Error>().is_some() {
            return false;
        }
        // `io::Error`s nest (reqwest wraps tokio-rustls' `InvalidData` in an `Other`), and
        // an `io::Error`'s `source()` skips its inner error: unwrap them by hand.
        let mut io = s.downcast_ref::<std::io::Error>();
        while let Some(e) = io {
            if e.kind() == std::io::ErrorKind::InvalidInput {
                return false;
            }
            let inner = e.get_ref();
            if inner.is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some()) {
                return false;
            }
            io = inner.and_then(|i| i.downcast_ref::<std::io::Error>());
        }
        source = s.source();
    }
    true
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

/// The `rel="next"` target of a `Link` header, resolved against the page's URL.
fn next_link(headers: &HeaderMap, current: &str) -> Option<String> {
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

fn too_many_tags() -> Failure {
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
fn origin_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "an invalid URL".to_owned(),
        |u| u.origin().ascii_serialization(),
    )
}

/// Whether two URLs have the same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// What a manifest body is; only these may be hashed into a digest.
#[derive(Debug)]
enum Manifest {
    /// A single-platform image manifest.
    Image,
    /// An index (manifest list) with its entries.
    Index(Vec<IndexEntry>),
}

#[derive(Debug, serde::Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<EntryPlatform>,
}

#[derive(Debug, serde::Deserialize)]
struct EntryPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// Checks that a body is a schema-2 manifest or index of a media type cru asked for, by its
/// `mediaType` (or else the `Content-Type`), which must agree with the `Content-Type`.
fn parse_manifest(body: &[u8], content_type: &str) -> Result<Manifest, Failure> {
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
