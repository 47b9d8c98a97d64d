//! Looking up what tags point at in registries: digests for `--resolve-digest` and
//! same-digest tags for `--resolve-tag`.
//!
//! [`Resolver`] is the synchronous facade the commands call: it owns a tokio runtime and a
//! [`client::Client`] for one run, so every unique (registry, repository, tag) is asked
//! once. Where lookups go comes from [`registries_conf`], credentials from [`auth`]. Lookups are all
//! or nothing: every one finishes, then the first failure (in input order) is returned.
//! On a terminal, a [`progress`] bar counts the lookups done.
//! It does not edit files or decide which references to resolve.

mod answer;
pub mod auth;
pub mod blob;
pub mod client;
pub mod manifest;
pub mod registries_conf;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::progress;
use crate::reference::Reference;
use crate::report::SharedReporter;

use client::Client;
pub use client::Failure;
pub use client::RetryPolicy;
use registries_conf::{Endpoint, RegistriesConf};

/// A target platform, `os/arch[/variant]` (`linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`, `windows`.
    pub os: String,
    /// `amd64`, `arm64`.
    pub architecture: String,
    /// `v7`, `v8`; `None` matches any.
    pub variant: Option<String>,
}

impl Platform {
    /// Whether an index entry's platform satisfies this one.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

/// Why a platform could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")]
pub struct PlatformError(String);

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return Err(PlatformError(s.to_owned()));
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// How to build a [`Resolver`].
#[derive(Debug, Clone)]
pub struct ResolverOptions {
    /// The registries.conf to read (chosen by the settings); `None`: no mirrors.
    pub registries_conf: Option<PathBuf>,
    /// The directory holding `config.json` (chosen by the settings); `None`: no credentials.
    pub docker_config: Option<PathBuf>,
    /// Resolve to this platform's manifest instead of the index (`--platform`).
    pub platform: Option<Platform>,
    /// Requests in flight at most (`--jobs`).
    pub jobs: usize,
    /// Retries, backoff and timeouts.
    pub retry: RetryPolicy,
    /// Where the lookups' warnings go (default: the log).
    pub reporter: SharedReporter,
}

/// The default for `--jobs`.
pub const DEFAULT_JOBS: usize = 16;

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            registries_conf: None,
            docker_config: None,
            platform: None,
            jobs: DEFAULT_JOBS,
            retry: RetryPolicy::default(),
            reporter: SharedReporter::default(),
        }
    }
}

/// Why a resolver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The registries.conf is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] registries_conf::ConfigError),
    /// The docker config.json is unreadable or invalid.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// The HTTP client or the runtime could not start.
    #[error("cannot start the registry client: {0}")]
    Start(String),
}

/// Why a lookup failed: the one failure of the registry layer ([`Failure`]), with the
/// lookup it ended: the normalised `registry/repository:tag`, the host that was asked (a
/// mirror or location from registries.conf) and the platform asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reference}: {}", self.reason())]
pub struct Error {
    /// The reference.
    pub reference: String,
    /// The host asked.
    pub registry: String,
    /// The platform asked for, if one was.
    pub platform: Option<String>,
    /// What went wrong.
    pub failure: Failure,
}

impl Error {
    fn from_failure(
        failure: Failure,
        reference: &str,
        registry: &str,
        platform: Option<&Platform>,
    ) -> Error {
        Error {
            reference: reference.to_owned(),
            registry: registry.to_owned(),
            platform: platform.map(ToString::to_string),
            failure,
        }
    }

    /// A reference with no tag: nothing was asked.
    fn no_tag(r: &Reference) -> Error {
        Error {
            reference: r.normalized_name(),
            registry: r.registry(),
            platform: None,
            failure: Failure::NoTag,
        }
    }

    /// What went wrong, in words, with the host asked.
    fn reason(&self) -> String {
        let registry = &self.registry;
        match &self.failure {
            Failure::NoTag => "no tag to resolve".to_owned(),
            Failure::NotFound => format!("tag not found on {registry}"),
            Failure::Unauthorized => format!(
                "unauthorized on {registry} (or no such repository); log in with \
                 `docker login {registry}` or configure a credential helper in the docker config"
            ),
            Failure::Unreachable(reason) => format!("cannot reach {registry}: {reason}"),
            Failure::TokenServerUnreachable { host, reason } => {
                format!("cannot reach the token server {host} of {registry}: {reason}")
            }
            Failure::RateLimited(retry_after) => format!(
                "rate limited by {registry}{}",
                retry_after
                    .map(|d| format!(" (Retry-After {}s)", d.as_secs()))
                    .unwrap_or_default()
            ),
            Failure::PlatformNotFound(available) => format!(
                "no {} image on {registry} (it has: {})",
                self.platform.as_deref().unwrap_or_default(),
                available.join(", ")
            ),
            Failure::Protocol(reason) => format!("{registry}: {reason}"),
        }
    }
}

/// The outcome of `--resolve-tag` for one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagChoice {
    /// The digest the reference's tag points at.
    pub digest: String,
    /// Every tag of the repository with that digest (the reference's own included), best first.
    pub matching: Vec<String>,
    /// The tag to write: the first of `matching`.
    pub best: String,
}

/// Resolves tags against registries; one per run, so that lookups are shared.
pub struct Resolver {
    runtime: tokio::runtime::Runtime,
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    conf: RegistriesConf,
    platform: Option<Platform>,
}

impl Resolver {
    /// Reads the settings and credentials configuration and starts the client.
    pub fn new(options: ResolverOptions) -> Result<Resolver, SetupError> {
        let conf = RegistriesConf::discover(options.registries_conf.as_deref())?;
        let docker_config = match options.docker_config.as_deref() {
            Some(dir) => auth::DockerConfig::discover(dir)?,
            None => auth::DockerConfig::default(),
        };
        let client = Client::new(docker_config, options.retry, options.jobs)
            .map_err(|e| SetupError::Start(e.to_string()))?
            .with_reporter(options.reporter);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SetupError::Start(e.to_string()))?;
        Ok(Resolver {
            runtime,
            inner: Arc::new(Inner {
                client,
                conf,
                platform: options.platform,
            }),
        })
    }

    /// The digest each reference's tag points at now, in order. All lookups finish; then
    /// the first error (in input order) is returned.
    pub fn resolve_digests(&self, refs: &[Reference]) -> Result<Vec<String>, Error> {
        self.digests_each(refs).into_iter().collect()
    }

    /// Like [`Resolver::resolve_digests`], with every lookup's own outcome, so that all
    /// failures can be reported.
    pub fn digests_each(&self, refs: &[Reference]) -> Vec<Result<String, Error>> {
        self.digests_on(refs, None)
    }

    /// Like [`Resolver::digests_each`], resolving to `platform`'s manifest where the resolver
    /// has no platform of its own (`--platform` wins over a configuration rule's).
    pub fn digests_on(
        &self,
        refs: &[Reference],
        platform: Option<&Platform>,
    ) -> Vec<Result<String, Error>> {
        let platform = self.inner.platform.clone().or_else(|| platform.cloned());
        self.each(refs, |inner, r| {
            let platform = platform.clone();
            async move { inner.resolve(&r, platform.as_ref()).await }
        })
    }

    /// For each reference: the digest its tag points at, the repository's tags with the same
    /// digest and the best of them. All lookups finish; then the first error is returned.
    pub fn resolve_tags(&self, refs: &[Reference]) -> Result<Vec<TagChoice>, Error> {
        self.tags_each(refs).into_iter().collect()
    }

    /// Like [`Resolver::resolve_tags`], with every lookup's own outcome.
    pub fn tags_each(&self, refs: &[Reference]) -> Vec<Result<TagChoice, Error>> {
        self.tags_on(refs, None)
    }

    /// Like [`Resolver::tags_each`], on `platform` where the resolver has none of its own.
    pub fn tags_on(
        &self,
        refs: &[Reference],
        platform: Option<&Platform>,
    ) -> Vec<Result<TagChoice, Error>> {
        let platform = self.inner.platform.clone().or_else(|| platform.cloned());
        self.each(refs, |inner, r| {
            let platform = platform.clone();
            async move { inner.resolve_tag(&r, platform.as_ref()).await }
        })
    }
}

impl Resolver {
    /// The tag list of each reference's repository, in order: one list per repository per
    /// run (single-flight, shared by every reference to it and with `--resolve-tag`),
    /// fetched concurrently under `--jobs`. No manifest is read.
    pub fn tag_lists(&self, refs: &[Reference]) -> Vec<Result<Arc<Vec<String>>, Error>> {
        self.each(refs, |inner, r| async move {
            inner.tags_of(&r).await.map(|(_, tags)| tags)
        })
    }

    /// Runs `steps` for every reference concurrently (bounded by `--jobs`), with the
    /// resolver's [`Lookups`]: a reference's next lookup (the digest of the tag chosen from
    /// its repository's list) starts as soon as its previous answer is in, not after every
    /// reference's, so that `--jobs` requests stay in flight to the end. The outcomes in
    /// input order; each reference counts once on the progress bar.
    pub fn pipeline<T, Fut>(
        &self,
        refs: &[Reference],
        steps: impl Fn(Lookups, Reference) -> Fut,
    ) -> Vec<T>
    where
        T: Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        self.each(refs, |inner, r| steps(Lookups { inner }, r))
    }

    /// Runs `lookup` for every reference concurrently (bounded by the client's `--jobs`),
    /// counting each on the progress bar; the outcomes in input order.
    fn each<T, Fut>(
        &self,
        refs: &[Reference],
        lookup: impl Fn(Arc<Inner>, Reference) -> Fut,
    ) -> Vec<T>
    where
        T: Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        let progress = Arc::new(progress::Lookups::start(refs.len()));
        self.runtime.block_on(join_all(refs.iter().map(|r| {
            let lookup = lookup(self.inner.clone(), r.clone());
            let progress = progress.clone();
            async move {
                let outcome = lookup.await;
                progress.done_one();
                outcome
            }
        })))
    }
}

/// The lookups a reference's steps make in [`Resolver::pipeline`]; shared with the
/// resolver's other lookups (one tag list per repository and one `HEAD` per tag and run).
#[derive(Clone)]
pub struct Lookups {
    inner: Arc<Inner>,
}

impl Lookups {
    /// The tag list of `r`'s repository, as [`Resolver::tag_lists`].
    pub async fn tag_list(&self, r: &Reference) -> Result<Arc<Vec<String>>, Error> {
        self.inner.tags_of(r).await.map(|(_, tags)| tags)
    }

    /// The digest `r`'s tag points at, on `platform` where the resolver has none of its
    /// own, as [`Resolver::digests_on`].
    pub async fn digest(
        &self,
        r: &Reference,
        platform: Option<&Platform>,
    ) -> Result<String, Error> {
        let platform = self.inner.platform.clone().or_else(|| platform.cloned());
        self.inner.resolve(r, platform.as_ref()).await
    }
}

/// Runs futures concurrently on the runtime and returns their outputs in order.
async fn join_all<T: Send + 'static>(
    futures: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("lookup task panicked"));
    }
    out
}

impl Inner {
    fn endpoints(&self, r: &Reference) -> Vec<Endpoint> {
        self.conf.endpoints(&r.registry(), &r.repository())
    }

    /// Asks each endpoint in turn (mirrors first) until one answers.
    async fn digest_of(
        &self,
        r: &Reference,
        tag: &str,
        platform: Option<&Platform>,
    ) -> Result<String, Error> {
        let name = format!("{}:{tag}", r.normalized_name());
        let endpoints = self.endpoints(r);
        let mut last = None;
        for (i, ep) in endpoints.iter().enumerate() {
            match self.inner_digest(ep, tag, platform).await {
                Ok(d) => return Ok(d),
                Err(f) => {
                    let e = Error::from_failure(f, &name, &ep.host, platform);
                    if i + 1 < endpoints.len() {
                        self.client
                            .reporter()
                            .warn(format!("{e}; trying the next endpoint"));
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.expect("there is always at least one endpoint"))
    }

    async fn inner_digest(
        &self,
        ep: &Endpoint,
        tag: &str,
        platform: Option<&Platform>,
    ) -> Result<String, Failure> {
        self.client.digest(ep, tag, platform).await
    }

    async fn resolve(&self, r: &Reference, platform: Option<&Platform>) -> Result<String, Error> {
        let tag = r.tag().ok_or_else(|| Error::no_tag(r))?;
        let digest = self.digest_of(r, tag, platform).await?;
        // The user-facing line is the caller's (a report event); this is for tracing.
        tracing::trace!(
            "resolving repository {} Tag {tag} to Digest {digest}",
            r.normalized_name()
        );
        Ok(digest)
    }

    async fn resolve_tag(
        self: &Arc<Self>,
        r: &Reference,
        platform: Option<&Platform>,
    ) -> Result<TagChoice, Error> {
        let own = r.tag().ok_or_else(|| Error::no_tag(r))?;
        // The tag's digest and the tag list do not depend on each other: ask both at once.
        let (digest, listed) = tokio::join!(self.resolve(r, platform), self.tags_of(r));
        let (digest, (ep, tags)) = (digest?, listed?);
        let lookups = tags
            .iter()
            .filter(|t| t.as_str() != own)
            .cloned()
            .map(|tag| {
                let inner = self.clone();
                let ep = ep.clone();
                let platform = platform.cloned();
                async move {
                    let d = inner.inner_digest(&ep, &tag, platform.as_ref()).await;
                    (tag, d)
                }
            });
        let mut matching = vec![own.to_owned()];
        let mut first_error = None;
        for (tag, d) in join_all(lookups).await {
            match d {
                Ok(d) if d == digest => matching.push(tag),
                Ok(_) => {}
                // Listed but gone (deleted meanwhile): not a match, not an error.
                Err(Failure::NotFound) => {}
                Err(f) => {
                    let name = format!("{}:{tag}", r.normalized_name());
                    first_error.get_or_insert(Error::from_failure(f, &name, &ep.host, platform));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        crate::tags::rank_tags(&mut matching);
        let best = matching[0].clone();
        tracing::trace!(
            "resolving repository {} Tag {own} to Tag {best} (same digest: {})",
            r.normalized_name(),
            matching.join(", ")
        );
        Ok(TagChoice {
            digest,
            matching,
            best,
        })
    }

    /// The tag list from the first endpoint that gives one.
    async fn tags_of(&self, r: &Reference) -> Result<(Endpoint, Arc<Vec<String>>), Error> {
        let name = r.normalized_name();
        let endpoints = self.endpoints(r);
        let mut last = None;
        for ep in endpoints {
            match self.client.tags(&ep).await {
                Ok(tags) => return Ok((ep, tags)),
                Err(f) => last = Some(Error::from_failure(f, &name, &ep.host, None)),
            }
        }
        Err(last.expect("there is always at least one endpoint"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn platforms_parse_and_print() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            "Linux/AMD64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn variant_less_platform_matches_any_variant() {
        let want: Platform = "linux/arm64".parse().unwrap();
        assert!(want.matches(&"linux/arm64/v8".parse().unwrap()));
        let want: Platform = "linux/arm/v7".parse().unwrap();
        assert!(!want.matches(&"linux/arm/v6".parse().unwrap()));
    }

    #[test]
    fn errors_name_reference_registry_and_reason() {
        let e = Error::from_failure(
            Failure::Unauthorized,
            "docker.io/library/x:1",
            "registry-1.docker.io",
            None,
        );
        let text = e.to_string();
        assert!(
            text.contains("docker.io/library/x:1") && text.contains("docker login"),
            "{text}"
        );
        let e = Error::from_failure(
            Failure::RateLimited(Some(Duration::from_secs(30))),
            "r/x:1",
            "h",
            None,
        );
        assert_eq!(e.to_string(), "r/x:1: rate limited by h (Retry-After 30s)");
    }
}
