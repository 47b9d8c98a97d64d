//! The effects of `cru mirror`: the engine that asks the registries and copies, in the
//! order and with the sharing the module above describes ([`super`]). It owns a tokio runtime
//! for one run and returns every image's outcome; it prints nothing.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, Semaphore};

use super::{
    contents, Blob, Contents, Destination, ImageReport, MirrorError, MirrorOptions, MirrorPlan,
    Mode, Outcome, Planned, Run, Summary, MAX_TRANSFERS,
};
use crate::backoff::Backoff;
use crate::reference::Reference;
use crate::registry::auth::DockerConfig;
use crate::registry::blob::{CopyFailure, Mount};
use crate::registry::client::{Access, Client, Failure};
use crate::registry::manifest::{Manifest, RateLimit};
use crate::registry::registries_conf::{Endpoint, RegistriesConf};
use crate::registry::{Platform, SetupError};

/// A blob whose source body breaks off, or whose upload session the target lost, is started
/// again twice at most (three attempts), after a short jittered wait.
const BLOB_RETRY: Backoff = Backoff {
    retries: 2,
    base: std::time::Duration::from_millis(100),
    max: std::time::Duration::from_secs(1),
};

/// Copies (or, by mode, checks) every image of the plan. Every image is tried; failures are
/// in [`Run::images`].
pub fn copy(plan: &MirrorPlan, options: MirrorOptions) -> Result<Run, SetupError> {
    let conf = RegistriesConf::discover(options.registries_conf.as_deref())?;
    let docker_config = match options.docker_config.as_deref() {
        Some(dir) => DockerConfig::discover(dir)?,
        None => DockerConfig::default(),
    };
    let client = Client::new(docker_config, options.retry.clone(), options.jobs)
        .map_err(|e| SetupError::Start(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SetupError::Start(e.to_string()))?;
    let engine = Arc::new(Engine {
        client,
        conf,
        to: plan.to.clone(),
        platforms: options.platforms,
        mode: options.mode,
        min_ratelimit: options.min_ratelimit,
        referrers: options.referrers,
        ratelimits: Mutex::default(),
        blobs: Mutex::default(),
        transfers: Mutex::default(),
        manifests: Mutex::default(),
        planned_blobs: Mutex::default(),
        transfer_permits: Semaphore::new(MAX_TRANSFERS.min(options.jobs.max(1))),
        counts: Counts::default(),
        progress: crate::progress::Bytes::start(),
    });
    let images = runtime.block_on(join_all(plan.images.iter().cloned().map(|image| {
        let engine = engine.clone();
        async move { engine.image(&image).await }
    })));
    drop(runtime);
    let mut summary = engine.counts.summary();
    for image in &images {
        match image {
            Ok(r) if r.outcome == Outcome::Present => summary.images_skipped += 1,
            Ok(_) => summary.images_copied += 1,
            Err(_) => summary.images_failed += 1,
        }
    }
    Ok(Run { images, summary })
}

type Shared<T> = Arc<OnceCell<Result<T, MirrorError>>>;
type SingleFlight<K, T> = Mutex<HashMap<K, Shared<T>>>;

fn cell<K: Eq + std::hash::Hash, T>(map: &SingleFlight<K, T>, key: K) -> Shared<T> {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key).or_default().clone()
}

#[derive(Default)]
struct Counts {
    uploaded: AtomicU64,
    mounted: AtomicU64,
    skipped: AtomicU64,
    bytes: AtomicU64,
}

impl Counts {
    fn summary(&self) -> Summary {
        Summary {
            blobs_uploaded: self.uploaded.load(Ordering::Relaxed),
            blobs_mounted: self.mounted.load(Ordering::Relaxed),
            blobs_skipped: self.skipped.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            ..Summary::default()
        }
    }
}

struct Engine {
    client: Client,
    conf: RegistriesConf,
    to: Destination,
    platforms: Vec<Platform>,
    mode: Mode,
    min_ratelimit: u64,
    referrers: bool,
    /// The last pull limit each source host reported.
    ratelimits: Mutex<HashMap<String, RateLimit>>,
    /// One check-and-copy per (target repository, blob).
    blobs: SingleFlight<(String, String), ()>,
    /// One transfer per blob digest: the target repository it landed in.
    transfers: SingleFlight<String, String>,
    /// One copy per (target repository, manifest digest).
    manifests: SingleFlight<(String, String), ()>,
    /// Blobs a dry run would upload, counted once.
    planned_blobs: Mutex<BTreeSet<String>>,
    transfer_permits: Semaphore,
    counts: Counts,
    progress: crate::progress::Bytes,
}

/// The source side of one image: the endpoint that answered and the name for messages.
#[derive(Clone)]
struct Source {
    ep: Endpoint,
    name: String,
}

fn registry_error(what: impl Into<String>, ep: &Endpoint, failure: Failure) -> MirrorError {
    let reason = match failure {
        Failure::NoTag => "no tag".to_owned(),
        Failure::NotFound => "not found".to_owned(),
        Failure::Unauthorized => format!(
            "unauthorized (or no such repository); log in with `docker login {}` or configure \
             a credential helper in the docker config",
            ep.host
        ),
        Failure::Unreachable(r) => format!("cannot reach it: {r}"),
        Failure::TokenServerUnreachable { host, reason } => {
            format!("cannot reach its token server {host}: {reason}")
        }
        Failure::RateLimited(after) => format!(
            "rate limited{}",
            after
                .map(|d| format!(" (Retry-After {}s)", d.as_secs()))
                .unwrap_or_default()
        ),
        Failure::PlatformNotFound(_) => "no such platform".to_owned(),
        Failure::Protocol(r) => r,
    };
    MirrorError::Registry {
        what: what.into(),
        registry: ep.host.clone(),
        reason,
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Engine {
    fn target_ep(&self, repository: &str) -> Endpoint {
        self.conf.push_endpoint(&self.to.registry, repository)
    }

    /// The scope of the target's reads: a check or dry run needs no push rights.
    fn target_access(&self) -> Access {
        match self.mode {
            Mode::Copy => Access::Push,
            Mode::DryRun | Mode::Check => Access::Pull,
        }
    }

    /// Mirrors one planned image.
    async fn image(self: &Arc<Self>, image: &Planned) -> Result<ImageReport, MirrorError> {
        let target = self.target_ep(&image.target_repository);
        let target_name = image.target_name(&self.to);
        let source_name = image.source.to_string();
        let tag = image.source.tag();
        // A pinned reference is copied by its digest and leaves the target's tag alone: the
        // tag follows the source's tag, which may have moved on (and another file may use it).
        let set_tag = tag.filter(|_| image.source.digest().is_none());
        let (digest, source) = match image.source.digest() {
            // A pinned reference: the target may have it without asking the source.
            Some(d) => (d.to_owned(), None),
            None => {
                let (d, s) = self.source_digest(&image.source).await?;
                (d, Some(s))
            }
        };
        let report = |digest: &str, outcome| ImageReport {
            source: source_name.clone(),
            target: match tag {
                Some(t) => format!("{target_name}:{t}@{digest}"),
                None => format!("{target_name}@{digest}"),
            },
            outcome,
        };
        if !self.platforms.is_empty() {
            let source = match source {
                Some(s) => s,
                None => self.source_holding(&image.source, &digest).await?,
            };
            return self
                .platform_image(image, &source, &target, &digest, report)
                .await;
        }
        let present = self.target_has(&target, &target_name, &digest).await?;
        if present {
            let tagged = match set_tag {
                Some(tag) => self.tag(&target, &target_name, tag, &digest, None).await?,
                None => true,
            };
            if self.referrers && self.mode == Mode::Copy {
                let source = match source {
                    Some(s) => s,
                    None => self.source_holding(&image.source, &digest).await?,
                };
                self.copy_referrers(&source, &target, &digest).await?;
            }
            let outcome = if tagged || self.mode == Mode::Copy {
                Outcome::Present
            } else {
                Outcome::Missing
            };
            return Ok(report(&digest, outcome));
        }
        if self.mode == Mode::Check {
            return Ok(report(&digest, Outcome::Missing));
        }
        let source = match source {
            Some(s) => s,
            None => self.source_holding(&image.source, &digest).await?,
        };
        let manifest = self
            .copy_manifest(source.clone(), target.clone(), digest.clone(), true)
            .await?;
        if let Some(tag) = set_tag {
            self.tag(&target, &target_name, tag, &digest, manifest.as_ref())
                .await?;
        }
        if self.referrers && self.mode == Mode::Copy {
            self.copy_referrers(&source, &target, &digest).await?;
        }
        Ok(report(
            &digest,
            if self.mode == Mode::DryRun {
                Outcome::Missing
            } else {
                Outcome::Copied
            },
        ))
    }

    /// `--platform`: copies the chosen platforms' manifests; tags the one chosen manifest
    /// (never a filtered index under the source's tag).
    async fn platform_image(
        self: &Arc<Self>,
        image: &Planned,
        source: &Source,
        target: &Endpoint,
        digest: &str,
        report: impl Fn(&str, Outcome) -> ImageReport,
    ) -> Result<ImageReport, MirrorError> {
        let target_name = image.target_name(&self.to);
        let top = self.source_manifest(source, digest).await?;
        let unsupported = |reason| MirrorError::Unsupported {
            reference: source.name.clone(),
            reason,
        };
        let chosen: Vec<String> = match contents(&top.bytes).map_err(unsupported)? {
            Contents::Image(_) => vec![digest.to_owned()],
            Contents::Index(children) => {
                let chosen: Vec<String> = children
                    .iter()
                    .filter(|c| {
                        c.platform
                            .as_ref()
                            .is_some_and(|p| self.platforms.iter().any(|want| want.matches(p)))
                    })
                    .map(|c| c.digest.clone())
                    .collect();
                if chosen.is_empty() {
                    let available: Vec<String> = children
                        .iter()
                        .filter_map(|c| c.platform.as_ref().map(ToString::to_string))
                        .collect();
                    return Err(MirrorError::PlatformNotFound {
                        reference: source.name.clone(),
                        wanted: self
                            .platforms
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        available: available.join(", "),
                    });
                }
                chosen
            }
        };
        let mut all_present = true;
        let mut pushed = Vec::new();
        for d in &chosen {
            if self.target_has(target, &target_name, d).await? {
                pushed.push(None);
                continue;
            }
            all_present = false;
            if self.mode == Mode::Check {
                pushed.push(None);
                continue;
            }
            let m = self
                .copy_manifest(source.clone(), target.clone(), d.clone(), true)
                .await?;
            pushed.push(m);
        }
        let shown = chosen[0].clone();
        if chosen.len() == 1 {
            if let Some(tag) = image
                .source
                .tag()
                .filter(|_| image.source.digest().is_none())
            {
                let tagged = self
                    .tag(target, &target_name, tag, &shown, pushed[0].as_ref())
                    .await?;
                all_present &= tagged || self.mode == Mode::Copy;
            }
        } else {
            tracing::warn!(
                "{}: {} platforms copied by digest only; a tag names one manifest, so the \
                 source's tag is not set on {target_name} (use one --platform to tag)",
                source.name,
                chosen.len()
            );
        }
        let outcome = match (all_present, self.mode) {
            (true, _) => Outcome::Present,
            (false, Mode::Copy) => Outcome::Copied,
            (false, _) => Outcome::Missing,
        };
        Ok(report(&shown, outcome))
    }

    /// The source endpoint (mirrors first) whose `HEAD` of the tag answers, and the digest.
    async fn source_digest(&self, r: &Reference) -> Result<(String, Source), MirrorError> {
        let tag = r.tag().unwrap_or("latest");
        let mut last = None;
        for ep in self.conf.endpoints(&r.registry(), &r.repository()) {
            let what = format!("reading {r}");
            match self.client.head_manifest(&ep, Access::Pull, tag).await {
                Ok(Some(head)) => {
                    self.note_ratelimit(&ep, head.ratelimit);
                    let source = Source {
                        ep: ep.clone(),
                        name: r.to_string(),
                    };
                    let digest = match head.digest {
                        Some(d) => d,
                        // No digest in the answer: the manifest itself says (a GET, counted).
                        None => self.source_manifest(&source, tag).await?.digest(),
                    };
                    return Ok((digest, source));
                }
                Ok(None) => last = Some(registry_error(what, &ep, Failure::NotFound)),
                Err(f) => last = Some(registry_error(what, &ep, f)),
            }
        }
        Err(last.expect("there is always at least one endpoint"))
    }

    /// The source endpoint that has `digest` (a `HEAD` each, mirrors first).
    async fn source_holding(&self, r: &Reference, digest: &str) -> Result<Source, MirrorError> {
        let mut last = None;
        for ep in self.conf.endpoints(&r.registry(), &r.repository()) {
            let what = format!("reading {r}");
            match self.client.head_manifest(&ep, Access::Pull, digest).await {
                Ok(Some(head)) => {
                    self.note_ratelimit(&ep, head.ratelimit);
                    return Ok(Source {
                        ep,
                        name: r.to_string(),
                    });
                }
                Ok(None) => last = Some(registry_error(what, &ep, Failure::NotFound)),
                Err(f) => last = Some(registry_error(what, &ep, f)),
            }
        }
        Err(last.expect("there is always at least one endpoint"))
    }

    fn note_ratelimit(&self, ep: &Endpoint, limit: Option<RateLimit>) {
        if let Some(limit) = limit {
            let mut map = self.ratelimits.lock().unwrap_or_else(|e| e.into_inner());
            map.insert(ep.host.clone(), limit);
        }
    }

    /// A manifest from the source, unless its pull limit is nearly spent.
    async fn source_manifest(
        &self,
        source: &Source,
        reference: &str,
    ) -> Result<Manifest, MirrorError> {
        let known = {
            let map = self.ratelimits.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&source.ep.host).copied()
        };
        if let Some(limit) = known {
            if limit.remaining < self.min_ratelimit {
                return Err(MirrorError::RateLimitLow {
                    registry: source.ep.host.clone(),
                    remaining: limit.remaining,
                    window: limit.window,
                    min: self.min_ratelimit,
                });
            }
        }
        let m = self
            .client
            .get_manifest(&source.ep, Access::Pull, reference)
            .await
            .map_err(|f| registry_error(format!("reading {}", source.name), &source.ep, f))?;
        self.note_ratelimit(&source.ep, m.ratelimit);
        Ok(m)
    }

    async fn target_has(
        &self,
        target: &Endpoint,
        name: &str,
        digest: &str,
    ) -> Result<bool, MirrorError> {
        self.client
            .head_manifest(target, self.target_access(), digest)
            .await
            .map(|h| h.is_some())
            .map_err(|f| registry_error(format!("looking up {name}@{digest}"), target, f))
    }

    /// Points `tag` at `digest` on the target unless it does already (in a dry run or check,
    /// only says whether it does). The bytes come from `manifest` or the target itself, never
    /// from the source.
    async fn tag(
        &self,
        target: &Endpoint,
        target_name: &str,
        tag: &str,
        digest: &str,
        manifest: Option<&Manifest>,
    ) -> Result<bool, MirrorError> {
        let name = format!("{target_name}:{tag}");
        let now = self
            .client
            .head_manifest(target, self.target_access(), tag)
            .await
            .map_err(|f| registry_error(format!("looking up {name}"), target, f))?;
        let current = now.as_ref().and_then(|h| h.digest.as_deref());
        if current == Some(digest) {
            return Ok(true);
        }
        if self.mode != Mode::Copy {
            return Ok(false);
        }
        let fetched;
        let manifest = match manifest {
            Some(m) => m,
            None => {
                fetched = self
                    .client
                    .get_manifest(target, Access::Push, digest)
                    .await
                    .map_err(|f| {
                        registry_error(format!("reading {target_name}@{digest}"), target, f)
                    })?;
                &fetched
            }
        };
        match self.client.put_manifest(target, tag, manifest).await {
            Ok(()) => Ok(true),
            Err(Failure::NotFound) => Err(self.name_unknown(target)),
            Err(Failure::Protocol(reason)) if now.is_some() => Err(MirrorError::TagRefused {
                name,
                digest: digest.to_owned(),
                reason,
            }),
            Err(f) => Err(registry_error(format!("tagging {name}"), target, f)),
        }
    }

    /// `--referrers`: the manifests that refer to `digest` (OCI 1.1 `subject`), from the
    /// referrers API or else the `sha256-<hex>` tag fallback, and cosign's
    /// `sha256-<hex>.sig`, `.att` and `.sbom` tags; copied with their tags.
    async fn copy_referrers(
        self: &Arc<Self>,
        source: &Source,
        target: &Endpoint,
        digest: &str,
    ) -> Result<(), MirrorError> {
        let target_name = format!("{}/{}", self.to.registry, target.repository);
        let listed = self
            .client
            .referrers(&source.ep, digest)
            .await
            .map_err(|f| {
                registry_error(
                    format!("listing referrers of {}", source.name),
                    &source.ep,
                    f,
                )
            })?;
        if let Some(index) = listed {
            if let Ok(Contents::Index(children)) = contents(&index.bytes) {
                let copies = children
                    .into_iter()
                    .map(|c| self.copy_manifest(source.clone(), target.clone(), c.digest, false));
                first_error(join_all(copies).await)?;
            }
        }
        let hex = digest.replacen(':', "-", 1);
        for suffix in ["", ".sig", ".att", ".sbom"] {
            let tag = format!("{hex}{suffix}");
            let head = self
                .client
                .head_manifest(&source.ep, Access::Pull, &tag)
                .await
                .map_err(|f| {
                    registry_error(format!("reading {}:{tag}", source.name), &source.ep, f)
                })?;
            let Some(head) = head else { continue };
            let d = match head.digest {
                Some(d) => d,
                None => self.source_manifest(source, &tag).await?.digest(),
            };
            let m = self
                .copy_manifest(source.clone(), target.clone(), d.clone(), false)
                .await?;
            self.tag(target, &target_name, &tag, &d, m.as_ref()).await?;
        }
        Ok(())
    }

    fn name_unknown(&self, target: &Endpoint) -> MirrorError {
        MirrorError::NameUnknown {
            name: format!("{}/{}", self.to.registry, target.repository),
            repository: target.repository.clone(),
        }
    }

    /// Copies the manifest `digest` and everything it refers to, children first, itself last;
    /// once per (target repository, digest). Returns the manifest when it was read here.
    /// `known_missing`: the caller just saw the target lacks it.
    fn copy_manifest(
        self: &Arc<Self>,
        source: Source,
        target: Endpoint,
        digest: String,
        known_missing: bool,
    ) -> BoxFuture<'static, Result<Option<Manifest>, MirrorError>> {
        let engine = self.clone();
        Box::pin(async move {
            let key = (target.repository.clone(), digest.clone());
            let read = Arc::new(Mutex::new(None));
            let slot = read.clone();
            let done = cell(&engine.manifests, key)
                .get_or_init(|| async {
                    let m = engine
                        .copy_manifest_once(&source, &target, &digest, known_missing)
                        .await?;
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = m;
                    Ok(())
                })
                .await
                .clone();
            done?;
            let m = read.lock().unwrap_or_else(|e| e.into_inner()).take();
            Ok(m)
        })
    }

    async fn copy_manifest_once(
        self: &Arc<Self>,
        source: &Source,
        target: &Endpoint,
        digest: &str,
        known_missing: bool,
    ) -> Result<Option<Manifest>, MirrorError> {
        let target_name = format!("{}/{}", self.to.registry, target.repository);
        if !known_missing && self.target_has(target, &target_name, digest).await? {
            return Ok(None);
        }
        let manifest = self.source_manifest(source, digest).await?;
        let unsupported = |reason| MirrorError::Unsupported {
            reference: format!("{}@{digest}", source.name),
            reason,
        };
        match contents(&manifest.bytes).map_err(unsupported)? {
            Contents::Index(children) => {
                let copies = children
                    .into_iter()
                    .map(|c| self.copy_manifest(source.clone(), target.clone(), c.digest, false));
                first_error(join_all(copies).await)?;
            }
            Contents::Image(blobs) => {
                let copies = blobs.into_iter().map(|b| {
                    let engine = self.clone();
                    let (source, target) = (source.clone(), target.clone());
                    async move { engine.blob(&source, &target, &b).await }
                });
                first_error(join_all(copies).await)?;
            }
        }
        if self.mode == Mode::DryRun {
            return Ok(Some(manifest));
        }
        match self.client.put_manifest(target, digest, &manifest).await {
            Ok(()) => Ok(Some(manifest)),
            Err(Failure::NotFound) => Err(self.name_unknown(target)),
            Err(f) => Err(registry_error(
                format!("pushing {target_name}@{digest}"),
                target,
                f,
            )),
        }
    }

    /// Makes sure the target repository has the blob: there already, mounted from where this
    /// run put it, or streamed from the source once.
    async fn blob(
        self: &Arc<Self>,
        source: &Source,
        target: &Endpoint,
        blob: &Blob,
    ) -> Result<(), MirrorError> {
        let key = (target.repository.clone(), blob.digest.clone());
        cell(&self.blobs, key)
            .get_or_init(|| self.blob_once(source, target, blob))
            .await
            .clone()
    }

    async fn blob_once(
        self: &Arc<Self>,
        source: &Source,
        target: &Endpoint,
        blob: &Blob,
    ) -> Result<(), MirrorError> {
        let target_name = format!("{}/{}", self.to.registry, target.repository);
        let what = || format!("copying blob {} to {target_name}", blob.digest);
        let there = self
            .client
            .blob_exists(target, self.target_access(), &blob.digest)
            .await
            .map_err(|f| registry_error(what(), target, f))?;
        if there {
            self.counts.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if self.mode == Mode::DryRun {
            let mut planned = self.planned_blobs.lock().unwrap_or_else(|e| e.into_inner());
            if planned.insert(blob.digest.clone()) {
                self.counts.uploaded.fetch_add(1, Ordering::Relaxed);
                self.counts.bytes.fetch_add(blob.size, Ordering::Relaxed);
            }
            return Ok(());
        }
        let home = cell(&self.transfers, blob.digest.clone())
            .get_or_init(|| async {
                self.upload(source, target, blob).await?;
                Ok(target.repository.clone())
            })
            .await
            .clone()?;
        if home == target.repository {
            return Ok(());
        }
        let mounted = self
            .client
            .mount_blob(target, &blob.digest, &home)
            .await
            .map_err(|f| match f {
                Failure::NotFound => self.name_unknown(target),
                f => registry_error(what(), target, f),
            })?;
        match mounted {
            Mount::Mounted => {
                self.counts.mounted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            // The registry does not mount: upload again (counted).
            Mount::Refused => self.upload(source, target, blob).await,
        }
    }

    async fn upload(
        &self,
        source: &Source,
        target: &Endpoint,
        blob: &Blob,
    ) -> Result<(), MirrorError> {
        let _permit = self
            .transfer_permits
            .acquire()
            .await
            .expect("semaphore is never closed");
        self.progress.add_total(blob.size);
        let mut attempt = 1;
        let n = loop {
            let sent = AtomicU64::new(0);
            let copied = self
                .client
                .copy_blob(&source.ep, target, &blob.digest, blob.size, &|n| {
                    sent.fetch_add(n, Ordering::Relaxed);
                    self.progress.advance(n)
                })
                .await;
            match copied {
                Ok(n) => break n,
                // The source's body broke off or stalled: start the blob again, a few times.
                Err(CopyFailure::Source(Failure::Unreachable(why)))
                    if BLOB_RETRY.allows(attempt - 1) =>
                {
                    tracing::warn!(
                        "{}: blob {} broke off ({why}); starting it again",
                        source.name,
                        blob.digest
                    );
                    self.progress.add_total(sent.load(Ordering::Relaxed));
                    tokio::time::sleep(BLOB_RETRY.delay(attempt - 1)).await;
                    attempt += 1;
                }
                // The target lost the session (an answer lost in transit, its retry refused):
                // start again in a fresh one, the source's body fetched and hashed anew.
                Err(CopyFailure::Session(why)) if BLOB_RETRY.allows(attempt - 1) => {
                    tracing::warn!(
                        "{}: the upload of blob {} to {} was lost ({why}); starting it again",
                        source.name,
                        blob.digest,
                        target.host
                    );
                    self.progress.add_total(sent.load(Ordering::Relaxed));
                    tokio::time::sleep(BLOB_RETRY.delay(attempt - 1)).await;
                    attempt += 1;
                }
                Err(f) => {
                    let what = format!("copying blob {} of {}", blob.digest, source.name);
                    return Err(match f {
                        CopyFailure::Target(Failure::NotFound) => self.name_unknown(target),
                        CopyFailure::Target(f) => registry_error(what, target, f),
                        CopyFailure::Source(f) => registry_error(what, &source.ep, f),
                        CopyFailure::Session(why) => {
                            registry_error(what, target, Failure::Protocol(why))
                        }
                    });
                }
            }
        };
        self.counts.uploaded.fetch_add(1, Ordering::Relaxed);
        self.counts.bytes.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

fn first_error<T>(results: Vec<Result<T, MirrorError>>) -> Result<(), MirrorError> {
    results.into_iter().try_for_each(|r| r.map(drop))
}

/// Runs futures concurrently on the runtime and returns their outputs in order.
async fn join_all<T: Send + 'static>(
    futures: impl Iterator<Item = impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("mirror task panicked"));
    }
    out
}
