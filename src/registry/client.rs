//! A small client for the read side of the OCI distribution API, on `reqwest` and tokio.
//!
//! It answers two questions, gently: which digest does a tag point at (one manifest `HEAD`
//! per unique tag and run), and which tags does a repository have. It pings each registry
//! once to learn its challenge, decides credentials before the first request, fetches at most
//! one token per (registry, repository, scope), merges identical lookups, bounds in-flight requests,
//! retries 5xx/408/timeouts/dropped connections with backoff and honours `Retry-After`
//! (seconds or an HTTP date) on 429. It distrusts what registries say: each lookup has a
//! deadline, bodies are capped while they stream, listed tags and digests must be well formed,
//! a body is hashed only if it is a manifest, next-page links stay on the registry's origin,
//! and credentials go to a token server only over HTTPS within the registry's own site
//! (the pure checks of answers are in `registry/answer.rs`, the realm rule in [`super::auth`]).
//! Reading manifests by digest and the write side (`cru mirror`: blobs, manifest pushes with
//! push-scoped tokens) are in [`super::manifest`] and [`super::blob`]; nothing here deletes.
//!
//! Why not `oci-client`: its `fetch_manifest_digest` falls back to a `GET` whenever the `HEAD`
//! answer lacks `Docker-Content-Digest`, which includes every 404 and 429 (a `GET` that counts
//! against Docker Hub's pull limit and is itself rate limited); it has no retry hooks; and
//! concurrent first calls each fetch a token. See `docs/decisions.md`.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use tokio::sync::{OnceCell, Semaphore};

use crate::backoff::{Backoff, RetryAfter};
use crate::report::SharedReporter;

use super::answer::{
    content_type, header_digest, next_link, origin_of, parse_manifest, parse_tag_page, retry_after,
    same_origin, too_many_tags, MAX_TAGS,
};
pub use super::answer::{pick_platform, sha256_digest};
use super::auth::{self, Challenge, Credential, CredentialSource, DockerConfig, Secret};
use super::registries_conf::Endpoint;
use super::Platform;

/// The manifest media types cru accepts, indexes first: a multi-platform tag resolves to
/// its index, as `docker pull` records it.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Pages of a tag list followed at most; a longer list fails the lookup.
const MAX_TAG_PAGES: usize = 100;
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

impl RetryPolicy {
    /// The backoff after a 5xx, a timeout or a dropped connection.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            retries: self.retries,
            base: self.base_backoff,
            max: self.max_backoff,
        }
    }

    /// How a 429 is answered: `Retry-After` (5 s when not given) within the limits.
    pub fn rate_limit(&self) -> RetryAfter {
        RetryAfter {
            retries: self.rate_limit_retries,
            default: Duration::from_secs(5),
            max: self.max_retry_after,
        }
    }
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

/// Why a request to one endpoint failed: the registry layer's one failure type. The resolver
/// wraps it in a [`super::Error`] with the reference, the host and the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The reference has no tag to look up (nothing was asked).
    NoTag,
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
pub(super) struct Deadline {
    budget: Duration,
    at: OnceLock<tokio::time::Instant>,
}

impl Deadline {
    pub(super) fn new(budget: Duration) -> Deadline {
        Deadline {
            budget,
            at: OnceLock::new(),
        }
    }

    /// The deadline, starting the clock if it has not started.
    pub(super) fn start(&self) -> tokio::time::Instant {
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

    pub(super) fn exceeded(&self, last: Option<&str>) -> Failure {
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

/// What a request does to a repository: the token scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `repository:NAME:pull`.
    Pull,
    /// `repository:NAME:pull,push`.
    Push,
}

impl Access {
    /// The token scope for `repository`.
    pub fn scope(self, repository: &str) -> String {
        match self {
            Access::Pull => format!("repository:{repository}:pull"),
            Access::Push => format!("repository:{repository}:pull,push"),
        }
    }
}

/// The distribution-API client: connection pool, caches and limits for one run.
pub struct Client {
    pub(super) http: reqwest::Client,
    docker_config: DockerConfig,
    pub(super) policy: RetryPolicy,
    permits: Semaphore,
    registries: SingleFlight<String, Arc<RegistryState>>,
    /// Tokens per (registry, repository, scope, repository also pulled from): a pull token
    /// never serves a push.
    tokens: SingleFlight<(String, String, Access, Option<String>), Option<Secret>>,
    digests: SingleFlight<(Endpoint, String, Option<Platform>), String>,
    tag_lists: SingleFlight<Endpoint, Arc<Vec<String>>>,
    /// Where warnings go (retries after a 429, refused realms, credential helpers).
    reporter: SharedReporter,
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
            reporter: SharedReporter::default(),
        })
    }

    /// The same client, with its warnings going to `reporter` instead of the log.
    pub fn with_reporter(mut self, reporter: SharedReporter) -> Client {
        self.reporter = reporter;
        self
    }

    /// Where this client's warnings go.
    pub fn reporter(&self) -> &SharedReporter {
        &self.reporter
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
            let (listed, dropped) = parse_tag_page(&body)?;
            drop(body);
            malformed += dropped;
            let before = tags.len();
            for tag in listed {
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
            self.reporter.warn(format!(
                "{}/{}: ignored {malformed} listed tags that are not valid tags",
                ep.host, ep.repository
            ));
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
        self.authed(ep, Access::Pull, deadline, || {
            let req = self.http.request(method.clone(), url);
            match accept {
                Some(a) => req.header(ACCEPT, a),
                None => req,
            }
        })
        .await
    }

    /// Sends the request `build` makes with the authorization for `access` to `ep`'s
    /// repository. Only for URLs on `ep`'s own origin: credentials go to their host only.
    pub(super) async fn authed(
        &self,
        ep: &Endpoint,
        access: Access,
        deadline: &Deadline,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        self.authed_with(ep, access, None, deadline, build).await
    }

    /// Like [`Client::authed`], but a request that may have reached the registry and lost
    /// its answer (a timeout or a connection closed after it was sent) is not sent again:
    /// for requests that change state by position, such as an upload chunk.
    pub(super) async fn authed_once_sent(
        &self,
        ep: &Endpoint,
        deadline: &Deadline,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let authorization = self.authorization(ep, Access::Push, None, deadline).await?;
        self.send_with(deadline, false, || match &authorization {
            Some(auth) => build().header(AUTHORIZATION, auth.expose()),
            None => build(),
        })
        .await
    }

    /// Like [`Client::authed`], with a token that may also pull from repository `also_pull`
    /// of the same registry (a cross-repository mount needs both).
    pub(super) async fn authed_with(
        &self,
        ep: &Endpoint,
        access: Access,
        also_pull: Option<&str>,
        deadline: &Deadline,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let authorization = self.authorization(ep, access, also_pull, deadline).await?;
        self.send(deadline, || match &authorization {
            Some(auth) => build().header(AUTHORIZATION, auth.expose()),
            None => build(),
        })
        .await
    }

    /// The `Authorization` value for `ep`'s repository, if any: fetched once per run.
    async fn authorization(
        &self,
        ep: &Endpoint,
        access: Access,
        also_pull: Option<&str>,
        deadline: &Deadline,
    ) -> Result<Option<Secret>, Failure> {
        let state = self.registry(ep, deadline).await?;
        match &state.challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(state.credential.as_ref().and_then(Credential::basic_header)),
            Challenge::Bearer { realm, service } => {
                let key = (
                    ep.base_url(),
                    ep.repository.clone(),
                    access,
                    also_pull.map(str::to_owned),
                );
                cell(&self.tokens, key)
                    .get_or_init(|| {
                        let mut scopes = vec![access.scope(&ep.repository)];
                        scopes.extend(also_pull.map(|from| Access::Pull.scope(from)));
                        self.fetch_token(
                            ep,
                            scopes,
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
                        auth::run_helper(&name, &server, &self.reporter).await
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
        scopes: Vec<String>,
        realm: &str,
        service: Option<&str>,
        credential: Option<&Credential>,
        deadline: &Deadline,
    ) -> Result<Option<Secret>, Failure> {
        // One `scope` parameter each in a query; space-separated in an OAuth2 form.
        let scope = scopes.join(" ");
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
                self.reporter.warn(format!(
                    "not sending the credentials for {} to the token server {token_host}: \
                     {why}; asking for an anonymous token",
                    ep.host
                ));
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
                let mut query: Vec<(&str, &str)> =
                    scopes.iter().map(|s| ("scope", s.as_str())).collect();
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
    pub(super) async fn send(
        &self,
        deadline: &Deadline,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        self.send_with(deadline, true, build).await
    }

    /// [`Client::send`]; with `resend_lost` false, a request whose answer was lost after it
    /// may have been sent (a timeout, a connection closed) fails at once, `Unreachable`,
    /// while one that never left (a refused connection) or got a 5xx is still retried.
    pub(super) async fn send_with(
        &self,
        deadline: &Deadline,
        resend_lost: bool,
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
                    let Some(allowed) = self
                        .policy
                        .rate_limit()
                        .wait(rate_limited, wait)
                        .filter(|w| !deadline.passed_after(*w))
                    else {
                        return Err(Failure::RateLimited(wait));
                    };
                    rate_limited += 1;
                    self.reporter.warn(format!(
                        "{what}: rate limited (429); waiting {}s as Retry-After asks",
                        allowed.as_secs_f32()
                    ));
                    tokio::time::sleep(allowed).await;
                    continue;
                }
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::REQUEST_TIMEOUT =>
                {
                    let status = resp.status();
                    if !self.policy.backoff().allows(failures) {
                        return Err(Failure::Protocol(format!(
                            "{status} after {} attempts",
                            failures + 1
                        )));
                    }
                    format!("{status}")
                }
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    let transient = is_transient(&e) && (resend_lost || e.is_connect());
                    let reason = error_chain(&e.without_url());
                    if !transient {
                        return Err(Failure::Unreachable(reason));
                    }
                    if !self.policy.backoff().allows(failures) {
                        return Err(Failure::Unreachable(format!(
                            "{reason} (after {} attempts)",
                            failures + 1
                        )));
                    }
                    reason
                }
            };
            let backoff = self.policy.backoff().delay(failures);
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
}

pub(super) fn manifest_url(ep: &Endpoint, tag: &str) -> String {
    format!("{}/v2/{}/manifests/{tag}", ep.base_url(), ep.repository)
}

pub(super) fn check_status(status: StatusCode) -> Result<(), Failure> {
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::NOT_FOUND => Err(Failure::NotFound),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Failure::Unauthorized),
        s => Err(Failure::Protocol(format!("unexpected answer {s}"))),
    }
}

/// Reads a body of at most `cap` bytes, failing as soon as more arrive, within the deadline.
pub(super) async fn read_body(
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

/// The error and its sources joined by `: ` (reqwest hides the cause in `source()`).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
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
