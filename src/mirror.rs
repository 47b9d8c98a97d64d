//! `cru mirror`: copying the images a tree uses into another registry, by digest.
//!
//! Two parts. The plan is pure: [`Destination`] parses `--to REGISTRY[/PREFIX]` and [`plan`]
//! maps each source name to `PREFIX/<repository path>` (`docker.io/library/python` →
//! `PREFIX/library/python`), refusing two sources that would land on one target name before
//! anything is copied. The copy ([`copy`]) asks the registries: the source tag's digest by
//! `HEAD` (no pull counted), the target by digest; an image the target has is only tagged,
//! with nothing fetched from the source. Otherwise the index and every manifest it lists are
//! copied unchanged (so the digest stays the source's), blobs first, then child manifests,
//! then the index, then the tag: a run killed at any point leaves no tag on an incomplete
//! image, and the next run finishes the job. Each blob crosses the network at most once per
//! run (one transfer per digest; another repository of the target gets a mount), and at most
//! [`MAX_TRANSFERS`] blobs stream at once, so memory stays a few chunks whatever the sizes.
//! Pushes go to the target itself, never to a registries.conf mirror of it.
//!
//! It does not rewrite files (`--rewrite` comes with the settings layer) and does not print:
//! the outcome is returned for the caller to show.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, Semaphore};

use crate::reference::{is_host, is_path_component, Reference};
use crate::registry::auth::DockerConfig;
use crate::registry::blob::{CopyFailure, Mount};
use crate::registry::client::{Access, Client, Failure};
use crate::registry::config::{Endpoint, RegistriesConf};
use crate::registry::manifest::{Manifest, RateLimit};
use crate::registry::{Platform, RetryPolicy, SetupError};

/// Blobs streaming at once at most: each holds up to one upload chunk in memory.
pub const MAX_TRANSFERS: usize = 4;
/// The default for `--min-ratelimit`.
pub const DEFAULT_MIN_RATELIMIT: u64 = 10;

/// Where images go: `REGISTRY[/PREFIX]` (`123.dkr.ecr.eu-west-1.amazonaws.com/mirror`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The registry host, with its port (`127.0.0.1:5000`).
    pub registry: String,
    /// The repository path prefix, without slashes at either end; may be empty.
    pub prefix: String,
}

/// Why `--to` is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --to {0:?}: expected REGISTRY[/PREFIX] with a registry host (a name with a dot \
     or a port, or localhost) and lowercase path components, e.g. registry.example.com/mirror"
)]
pub struct DestinationError(String);

impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(text: &str) -> Result<Destination, DestinationError> {
        let bad = || DestinationError(text.to_owned());
        let trimmed = text.trim_end_matches('/');
        let (host, prefix) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        if !is_host(host) || (!prefix.is_empty() && !prefix.split('/').all(is_path_component)) {
            return Err(bad());
        }
        let registry = host.to_ascii_lowercase();
        if matches!(
            registry.as_str(),
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        ) && prefix.is_empty()
        {
            // Docker Hub names need a namespace; an empty prefix would write `library/x`.
            return Err(bad());
        }
        Ok(Destination {
            registry,
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            f.write_str(&self.registry)
        } else {
            write!(f, "{}/{}", self.registry, self.prefix)
        }
    }
}

/// One image to copy: a source reference and the repository it lands in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The source, normalised (`docker.io/library/python:3.7`), with a tag or a digest.
    pub source: Reference,
    /// The repository path on the target (`mirror/library/python`).
    pub target_repository: String,
}

impl Planned {
    /// The target name, `registry/repository`.
    pub fn target_name(&self, to: &Destination) -> String {
        format!("{}/{}", to.registry, self.target_repository)
    }
}

/// The images of a run, in a stable order, with their targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorPlan {
    /// Where they go.
    pub to: Destination,
    /// What goes, sorted and without duplicates.
    pub images: Vec<Planned>,
}

/// Why the plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Two sources map to one target name.
    #[error(
        "{first} and {second} would both be mirrored to {target}; \
         mirror them in separate runs with different --to prefixes"
    )]
    Collision {
        /// The target name.
        target: String,
        /// One source name.
        first: String,
        /// The other.
        second: String,
    },
    /// A source is already on the target registry under the target name.
    #[error("{0} is already the mirror's name; nothing to copy it from")]
    SelfCopy(String),
}

/// The plan for `refs`: each unique reference once, mapped to `PREFIX/<repository path>`.
/// A reference with neither tag nor digest means `:latest`, as `docker pull` reads it.
pub fn plan(refs: &[Reference], to: &Destination) -> Result<MirrorPlan, PlanError> {
    let mut unique = BTreeSet::new();
    for r in refs {
        let tag = match (r.tag(), r.digest()) {
            (None, None) => Some("latest"),
            (tag, _) => tag,
        };
        let normal = Reference::parse(&r.normalized_name())
            .expect("a normalised name parses")
            .with(tag, r.digest());
        unique.insert(normal);
    }
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut images = Vec::new();
    for source in unique {
        let repository = source.repository();
        let target_repository = if to.prefix.is_empty() {
            repository
        } else {
            format!("{}/{repository}", to.prefix)
        };
        let target = format!("{}/{target_repository}", to.registry);
        let name = source.normalized_name();
        if name == target {
            return Err(PlanError::SelfCopy(name));
        }
        match owners.get(&target) {
            Some(first) if *first != name => {
                return Err(PlanError::Collision {
                    target,
                    first: first.clone(),
                    second: name,
                })
            }
            Some(_) => {}
            None => {
                owners.insert(target, name);
            }
        }
        images.push(Planned {
            source,
            target_repository,
        });
    }
    Ok(MirrorPlan {
        to: to.clone(),
        images,
    })
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Copy.
    #[default]
    Copy,
    /// Read both sides and say what would be copied; write nothing.
    DryRun,
    /// Only ask whether each image is on the target (`HEAD`s); write nothing.
    Check,
}

/// How to run a copy.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// A registries.conf to use instead of the discovered one.
    pub registries_conf: Option<std::path::PathBuf>,
    /// The directory holding `config.json`, instead of `$DOCKER_CONFIG` or `~/.docker`.
    pub docker_config: Option<std::path::PathBuf>,
    /// Copy only these platforms' manifests (`--platform`, repeatable); empty: all.
    pub platforms: Vec<Platform>,
    /// Copy, dry run or check.
    pub mode: Mode,
    /// Requests in flight at most.
    pub jobs: usize,
    /// Stop when a source says fewer pulls than this are left.
    pub min_ratelimit: u64,
    /// Copy the images' referrers too (signatures, attestations, SBOMs).
    pub referrers: bool,
    /// Retries, backoff and timeouts.
    pub retry: RetryPolicy,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            registries_conf: None,
            docker_config: None,
            platforms: Vec::new(),
            mode: Mode::Copy,
            jobs: crate::registry::DEFAULT_JOBS,
            min_ratelimit: DEFAULT_MIN_RATELIMIT,
            referrers: false,
            retry: RetryPolicy::default(),
        }
    }
}

/// Why an image could not be mirrored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    /// A request failed.
    #[error("{what}: {registry}: {reason}")]
    Registry {
        /// What was being done (`reading docker.io/library/x:1`).
        what: String,
        /// The host asked.
        registry: String,
        /// What went wrong.
        reason: String,
    },
    /// The target has no such repository and does not create it on push.
    #[error(
        "{name}: the target registry says this repository does not exist (NAME_UNKNOWN); \
         create it first (ECR: `aws ecr create-repository --repository-name {repository}`) \
         or let the registry create repositories on push"
    )]
    NameUnknown {
        /// `registry/repository`.
        name: String,
        /// The repository path.
        repository: String,
    },
    /// The target refused to move a tag (an immutable tag, a policy).
    #[error(
        "{name}: the target refused to point the tag at {digest} ({reason}); \
         cru does not overwrite a tag the registry keeps"
    )]
    TagRefused {
        /// `registry/repository:tag`.
        name: String,
        /// The digest it should point at.
        digest: String,
        /// The registry's answer.
        reason: String,
    },
    /// The source's pull limit is nearly spent.
    #[error(
        "{registry} has {remaining} pulls left{}, below --min-ratelimit {min}; \
         stopping before it refuses (wait for the window to reset, or log in for a higher limit)",
        window.map(|w| format!(" in its {}-hour window", w / 3600)).unwrap_or_default()
    )]
    RateLimitLow {
        /// The source registry.
        registry: String,
        /// Pulls left.
        remaining: u64,
        /// The window, in seconds.
        window: Option<u64>,
        /// The bound.
        min: u64,
    },
    /// None of the requested platforms is in the image.
    #[error("{reference}: none of the platforms {wanted} is in the image (it has: {available})")]
    PlatformNotFound {
        /// The source.
        reference: String,
        /// The platforms asked for.
        wanted: String,
        /// The platforms the index lists.
        available: String,
    },
    /// A manifest cru cannot copy.
    #[error("{reference}: {reason}")]
    Unsupported {
        /// The source.
        reference: String,
        /// Why.
        reason: String,
    },
}

/// What happened to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Copied (manifests pushed).
    Copied,
    /// The target had it; the tag was set or already right.
    Present,
    /// Not on the target (dry run and check): it would be copied.
    Missing,
}

/// One image's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReport {
    /// The source, normalised, as planned.
    pub source: String,
    /// `registry/repository[:tag]@digest` on the target (the platform manifest's digest with
    /// one `--platform`).
    pub target: String,
    /// What happened.
    pub outcome: Outcome,
}

/// The counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Images copied (or, in a dry run and check, missing).
    pub images_copied: u64,
    /// Images already there.
    pub images_skipped: u64,
    /// Images that failed.
    pub images_failed: u64,
    /// Blobs uploaded (in a dry run: to upload).
    pub blobs_uploaded: u64,
    /// Blobs mounted from another repository of the target.
    pub blobs_mounted: u64,
    /// Blobs the target repository had.
    pub blobs_skipped: u64,
    /// Bytes uploaded (in a dry run: to upload).
    pub bytes: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "images: {} copied, {} skipped, {} failed; blobs: {} uploaded, {} mounted, {} \
             skipped; {} uploaded",
            self.images_copied,
            self.images_skipped,
            self.images_failed,
            self.blobs_uploaded,
            self.blobs_mounted,
            self.blobs_skipped,
            human_bytes(self.bytes)
        )
    }
}

impl Summary {
    /// The summary line for a run in `mode`: counts of what was done, or would be.
    pub fn line(&self, mode: Mode) -> String {
        match mode {
            Mode::Copy => self.to_string(),
            Mode::DryRun => format!(
                "dry run, nothing written: images: {} to copy, {} present, {} failed; blobs: {} \
                 to upload, {} present; {} to upload",
                self.images_copied,
                self.images_skipped,
                self.images_failed,
                self.blobs_uploaded,
                self.blobs_skipped,
                human_bytes(self.bytes)
            ),
            Mode::Check => format!(
                "check, nothing written: images: {} missing, {} present, {} failed",
                self.images_copied, self.images_skipped, self.images_failed
            ),
        }
    }
}

/// `1.5 MiB`, `300 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {} ({n} bytes)", UNITS[unit])
}

/// The result of [`copy`]: each image's outcome in plan order, and the counts.
#[derive(Debug)]
pub struct Run {
    /// Per image, in plan order.
    pub images: Vec<Result<ImageReport, MirrorError>>,
    /// The counts.
    pub summary: Summary,
}

/// Copies (or, by mode, checks) every image of the plan. Every image is tried; failures are
/// in [`Run::images`].
pub fn copy(plan: &MirrorPlan, options: MirrorOptions) -> Result<Run, SetupError> {
    let conf = RegistriesConf::discover(options.registries_conf.as_deref())?;
    let docker_config = DockerConfig::discover(options.docker_config.as_deref())?;
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

/// A blob a manifest refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Blob {
    digest: String,
    size: u64,
}

/// A manifest an index lists.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Child {
    digest: String,
    platform: Option<Platform>,
}

/// What a manifest holds, as far as copying goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Contents {
    Index(Vec<Child>),
    Image(Vec<Blob>),
}

/// Reads the references of a manifest or index (pure). Layers marked non-distributable
/// (Windows foreign layers) are not in registries and are not copied.
fn contents(bytes: &[u8]) -> Result<Contents, String> {
    #[derive(serde::Deserialize)]
    struct Descriptor {
        #[serde(default, rename = "mediaType")]
        media_type: String,
        digest: String,
        #[serde(default)]
        size: u64,
        #[serde(default)]
        platform: Option<RawPlatform>,
    }
    #[derive(serde::Deserialize)]
    struct RawPlatform {
        os: String,
        architecture: String,
        #[serde(default)]
        variant: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Raw {
        #[serde(default, rename = "schemaVersion")]
        schema_version: Option<u64>,
        #[serde(default)]
        manifests: Option<Vec<Descriptor>>,
        #[serde(default)]
        config: Option<Descriptor>,
        #[serde(default)]
        layers: Option<Vec<Descriptor>>,
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|_| "the manifest is not JSON")?;
    if raw.schema_version != Some(2) {
        return Err("the manifest is not a schema 2 manifest or index".into());
    }
    let check = |d: &Descriptor| {
        if crate::reference::is_digest(&d.digest) {
            Ok(())
        } else {
            Err(format!(
                "the manifest lists a malformed digest {:?}",
                d.digest
            ))
        }
    };
    if let Some(entries) = raw.manifests {
        let mut children = Vec::with_capacity(entries.len());
        for e in entries {
            check(&e)?;
            children.push(Child {
                digest: e.digest,
                platform: e.platform.map(|p| Platform {
                    os: p.os,
                    architecture: p.architecture,
                    variant: p.variant,
                }),
            });
        }
        return Ok(Contents::Index(children));
    }
    let config = raw
        .config
        .ok_or("the manifest has neither manifests nor a config")?;
    let mut blobs = Vec::new();
    for d in std::iter::once(config).chain(raw.layers.unwrap_or_default()) {
        check(&d)?;
        if d.media_type.contains("foreign") || d.media_type.contains("nondistributable") {
            continue;
        }
        blobs.push(Blob {
            digest: d.digest,
            size: d.size,
        });
    }
    Ok(Contents::Image(blobs))
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
        let n = self
            .client
            .copy_blob(&source.ep, target, &blob.digest, blob.size, &|n| {
                self.progress.advance(n)
            })
            .await
            .map_err(|f| {
                let what = format!("copying blob {} of {}", blob.digest, source.name);
                match f {
                    CopyFailure::Target(Failure::NotFound) => self.name_unknown(target),
                    CopyFailure::Target(f) => registry_error(what, target, f),
                    CopyFailure::Source(f) => registry_error(what, &source.ep, f),
                }
            })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(names: &[&str]) -> Vec<Reference> {
        names.iter().map(|n| Reference::parse(n).unwrap()).collect()
    }

    fn to(text: &str) -> Destination {
        text.parse().unwrap()
    }

    #[test]
    fn destinations_parse_registry_and_prefix() {
        assert_eq!(
            to("123.dkr.ecr.eu-west-1.amazonaws.com/mirror/"),
            Destination {
                registry: "123.dkr.ecr.eu-west-1.amazonaws.com".into(),
                prefix: "mirror".into()
            }
        );
        assert_eq!(to("127.0.0.1:5000").prefix, "");
        assert_eq!(to("localhost:5000/a/b").prefix, "a/b");
        for bad in [
            "mirror",
            "",
            "reg.io/Upper",
            "reg.io//x",
            "docker.io",
            "a b.io/x",
        ] {
            assert!(bad.parse::<Destination>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_map_to_prefix_and_repository_path() {
        let p = plan(
            &refs(&["python:3.7", "gcr.io/p/app:1"]),
            &to("reg.example.com/mirror"),
        )
        .unwrap();
        let names: Vec<String> = p.images.iter().map(|i| i.target_name(&p.to)).collect();
        assert_eq!(
            names,
            [
                "reg.example.com/mirror/library/python",
                "reg.example.com/mirror/p/app"
            ]
        );
        assert_eq!(
            p.images[0].source.to_string(),
            "docker.io/library/python:3.7"
        );
    }

    #[test]
    fn duplicates_are_planned_once_and_bare_names_mean_latest() {
        let p = plan(
            &refs(&["nginx", "docker.io/library/nginx:latest", "nginx:1"]),
            &to("r.io/m"),
        )
        .unwrap();
        let sources: Vec<String> = p.images.iter().map(|i| i.source.to_string()).collect();
        assert_eq!(
            sources,
            [
                "docker.io/library/nginx:1",
                "docker.io/library/nginx:latest"
            ]
        );
    }

    #[test]
    fn two_sources_on_one_target_name_are_refused_before_copying() {
        let e = plan(
            &refs(&["docker.io/p/app:1", "gcr.io/p/app:2"]),
            &to("r.io/m"),
        )
        .unwrap_err();
        assert_eq!(
            e,
            PlanError::Collision {
                target: "r.io/m/p/app".into(),
                first: "docker.io/p/app".into(),
                second: "gcr.io/p/app".into()
            }
        );
        assert!(e.to_string().contains("r.io/m/p/app"), "{e}");
    }

    #[test]
    fn a_source_already_at_the_target_name_is_refused() {
        let e = plan(&refs(&["r.io/x:1"]), &to("r.io")).unwrap_err();
        assert_eq!(e, PlanError::SelfCopy("r.io/x".into()));
    }

    #[test]
    fn manifests_list_blobs_and_indexes_list_children() {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let image = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"c","digest":"{}","size":3}},
               "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":5}},
                         {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":9}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        assert_eq!(
            contents(image.as_bytes()).unwrap(),
            Contents::Image(vec![
                Blob {
                    digest: d('a'),
                    size: 3
                },
                Blob {
                    digest: d('b'),
                    size: 5
                }
            ])
        );
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
               {{"digest":"{}","size":1,"platform":{{"os":"unknown","architecture":"unknown"}},"annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}]}}"#,
            d('a'),
            d('b')
        );
        let Contents::Index(children) = contents(index.as_bytes()).unwrap() else {
            panic!("an index")
        };
        assert_eq!(children.len(), 2);
        assert_eq!(
            children[0].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!(contents(br#"{"schemaVersion":2,"config":{"digest":"sha256:x"}}"#).is_err());
        assert!(contents(b"[]").is_err());
    }

    #[test]
    fn summaries_count_images_blobs_and_bytes() {
        let s = Summary {
            images_copied: 2,
            images_skipped: 1,
            blobs_uploaded: 3,
            blobs_mounted: 1,
            blobs_skipped: 4,
            bytes: 3 << 20,
            ..Summary::default()
        };
        assert_eq!(
            s.to_string(),
            "images: 2 copied, 1 skipped, 0 failed; blobs: 3 uploaded, 1 mounted, 4 skipped; \
             3.0 MiB (3145728 bytes) uploaded"
        );
    }
}
