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
//! The plan's names come from `PREFIX/<repository path>` or the first `.cru.yaml`
//! `mirror.map` rule whose `from` glob matches ([`MapRule`], a [`Template`] below the
//! prefix). References already on the mirror (under `REGISTRY/PREFIX`) are not copied, only
//! looked up: a tree that `--rewrite` pointed at the copies is checked against the mirror
//! itself. [`Rewrite`] is the [`crate::update::Resolve`]r of `--rewrite`: it turns each
//! reference into its copy, pinned, for the one update path. This module does not print: the
//! outcome is returned for the caller to show.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::reference::{is_host, is_path_component, Reference};
use crate::registry::{Platform, RetryPolicy};

mod copy;
pub use copy::copy;

/// Blobs streaming at once at most: each holds up to one upload chunk in memory.
pub const MAX_TRANSFERS: usize = 4;
/// The default for `--min-ratelimit`.
pub const DEFAULT_MIN_RATELIMIT: u64 = 10;

/// Retries per request of a mirror, more than a lookup's 8: a mirror makes hundreds of
/// requests, and a fault falls on each alone. On a link that fails 35% of requests (30%
/// 5xx, 5% dropped), 9 attempts lose one request in 12,000, so one run of 200 requests in
/// 60; 13 attempts lose one in 800,000. The backoff is capped at 4 s, so the 12 retries
/// wait 30 s at most, within the request's 60 s deadline.
pub const MIRROR_RETRIES: u32 = 12;

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
        if crate::docker_hub::is_hub(&registry) && prefix.is_empty() {
            // Docker Hub names need a namespace; an empty prefix would write `library/x`.
            return Err(bad());
        }
        Ok(Destination {
            registry,
            prefix: prefix.to_owned(),
        })
    }
}

impl Destination {
    /// Whether `r` is already on the mirror: on its registry, under its prefix.
    pub fn holds(&self, r: &Reference) -> bool {
        let repository = r.repository();
        r.registry() == self.registry
            && (self.prefix.is_empty()
                || repository
                    .strip_prefix(&self.prefix)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// A `mirror.map` target: a repository path below the destination's prefix, with
/// placeholders for the source's parts: `{path}` (`library/python`), `{registry}`
/// (`docker.io`; a port's `:` becomes `-`) and `{name}` (the last component, `python`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

/// The placeholders a [`Template`] may hold.
pub const PLACEHOLDERS: [&str; 3] = ["path", "registry", "name"];

impl Template {
    /// Checks a template: known placeholders only, and a valid repository path for any
    /// source (lowercase components separated by `/`, not empty).
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            let close = match (rest.as_bytes()[open], rest[open..].find('}')) {
                (b'{', Some(close)) => open + close,
                _ => return Err(format!("`{text}`: a `{{` or `}}` without its pair")),
            };
            let name = &rest[open + 1..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "`{text}`: unknown placeholder `{{{name}}}`; use {{path}}, {{registry}} or \
                     {{name}}"
                ));
            }
            rest = &rest[close + 1..];
        }
        let template = Template(text.to_owned());
        let sample = template.fill("r.io", "a/b");
        if sample.is_empty() {
            return Err(format!("`{text}`: the repository path is empty"));
        }
        if !sample.split('/').all(is_path_component) {
            return Err(format!(
                "`{text}` does not make a repository path (lowercase components separated by \
                 `/`); it is the path below the prefix of `to`: e.g. `gcr/{{path}}`"
            ));
        }
        Ok(template)
    }

    /// The path for `source`.
    pub fn expand(&self, source: &Reference) -> String {
        self.fill(&source.registry().replace(':', "-"), &source.repository())
    }

    fn fill(&self, registry: &str, path: &str) -> String {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.0
            .replace("{path}", path)
            .replace("{registry}", registry)
            .replace("{name}", name)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `mirror.map` rule of `.cru.yaml`.
#[derive(Debug, Clone)]
pub struct MapRule {
    /// `from:`, a glob over normalised names, as written.
    pub from_text: String,
    /// `from:` compiled.
    pub from: globset::GlobMatcher,
    /// `to:`.
    pub to: Template,
    /// The rule's line in the file.
    pub line: usize,
}

/// The name a source is planned under: normalised, and a bare name means `:latest`, as
/// `docker pull` reads it.
pub fn source_key(r: &Reference) -> Reference {
    let tag = match (r.tag(), r.digest()) {
        (None, None) => Some("latest"),
        (tag, _) => tag,
    };
    Reference::parse(&r.normalized_name())
        .expect("a normalised name parses")
        .with(tag, r.digest())
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
    /// The references on the mirror already (normalised, sorted): they are only checked
    /// (one `HEAD`), at the end of [`MirrorPlan::images`], under their own names.
    pub mirrored: Vec<Reference>,
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
    /// A `mirror.map` rule makes a name that is not a repository path for this source.
    #[error(
        "{source_name}: the mirror.map rule of line {line} makes `{path}`, not a repository path"
    )]
    BadPath {
        /// The source.
        source_name: String,
        /// What the rule made.
        path: String,
        /// The rule's line.
        line: usize,
    },
}

/// The plan for `refs`: each unique reference once (see [`source_key`]), mapped by the first
/// `map` rule that matches, else to `PREFIX/<repository path>`. References already on the
/// mirror are not copied, only checked ([`MirrorPlan::mirrored`]).
pub fn plan(
    refs: &[Reference],
    to: &Destination,
    map: &[MapRule],
) -> Result<MirrorPlan, PlanError> {
    let mut unique = BTreeSet::new();
    let mut mirrored = BTreeSet::new();
    for r in refs {
        if to.holds(r) {
            mirrored.insert(source_key(r));
        } else {
            unique.insert(source_key(r));
        }
    }
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut images = Vec::new();
    for source in unique {
        let name = source.normalized_name();
        let path = match map.iter().find(|m| m.from.is_match(&name)) {
            Some(rule) => {
                let path = rule.to.expand(&source);
                if !path.split('/').all(is_path_component) {
                    return Err(PlanError::BadPath {
                        source_name: name,
                        path,
                        line: rule.line,
                    });
                }
                path
            }
            None => source.repository(),
        };
        let target_repository = if to.prefix.is_empty() {
            path
        } else {
            format!("{}/{path}", to.prefix)
        };
        let target = format!("{}/{target_repository}", to.registry);
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
    // Not owners of their names: a source planned onto the same name is what they are, and
    // one whose copy this run makes (the same tag, or digest) is not looked up while it is
    // being made.
    let covered = |r: &Reference| {
        images.iter().any(|p| {
            p.target_name(to) == r.normalized_name()
                && ((r.tag().is_some() && p.source.tag() == r.tag())
                    || (r.digest().is_some() && p.source.digest() == r.digest()))
        })
    };
    let checked: Vec<Planned> = mirrored
        .iter()
        .filter(|r| !covered(r))
        .map(|r| Planned {
            source: r.clone(),
            target_repository: r.repository(),
        })
        .collect();
    images.extend(checked);
    Ok(MirrorPlan {
        to: to.clone(),
        images,
        mirrored: mirrored.into_iter().collect(),
    })
}

/// The resolver of `--rewrite`: each reference becomes its copy on the mirror, pinned to the
/// digest copied (with one `--platform`, the platform manifest's), with the tag as the file
/// writes it (none where it has none). References on the mirror already stay.
#[derive(Debug)]
pub struct Rewrite {
    to: Destination,
    /// Source key → the copy, `registry/repository[:tag]@digest`.
    copies: std::collections::HashMap<Reference, Reference>,
}

impl Rewrite {
    /// The resolver for a run whose every image was copied (or, in a dry run or check, would
    /// be), in plan order.
    pub fn new(plan: &MirrorPlan, reports: &[ImageReport]) -> Rewrite {
        let copies = plan
            .images
            .iter()
            .zip(reports)
            .filter_map(|(p, r)| Some((p.source.clone(), Reference::parse(&r.target).ok()?)))
            .collect();
        Rewrite {
            to: plan.to.clone(),
            copies,
        }
    }
}

impl crate::update::Resolve for Rewrite {
    fn resolve(
        &self,
        targets: &[Reference],
        _: &crate::update::Group,
        _: &dyn crate::report::Reporter,
    ) -> Result<Vec<Reference>, crate::update::ResolveError> {
        targets
            .iter()
            .map(|t| {
                if self.to.holds(t) {
                    return Ok(t.clone());
                }
                let copy = self.copies.get(&source_key(t)).ok_or_else(|| {
                    crate::update::ResolveError::Failed(format!("{t} was not mirrored"))
                })?;
                Ok(Reference::parse(copy.name())
                    .expect("a copy's name parses")
                    .with(t.tag(), copy.digest()))
            })
            .collect()
    }

    fn renames(&self) -> bool {
        true
    }
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
    /// The directory holding `config.json` (chosen by the settings); `None`: no credentials.
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
    /// Retries, backoff and timeouts ([`MIRROR_RETRIES`] retries by default).
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
            retry: RetryPolicy {
                retries: MIRROR_RETRIES,
                ..RetryPolicy::default()
            },
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
            // Every spelling of Docker Hub needs a namespace (see crate::docker_hub).
            "registry.hub.docker.com",
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
            &[],
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
            &[],
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
            &[],
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
    fn references_already_on_the_mirror_are_left_out_of_the_plan() {
        let p = plan(&refs(&["r.io/x:1", "nginx:1"]), &to("r.io"), &[]).unwrap();
        assert_eq!(p.mirrored, refs(&["r.io/x:1"]));
        let names: Vec<String> = p.images.iter().map(|i| i.target_name(&p.to)).collect();
        assert_eq!(
            names,
            ["r.io/library/nginx", "r.io/x"],
            "checked under its own name"
        );
        // A source planned onto a name the tree already uses is no collision, and that
        // copy is not looked up while this run makes it.
        let p = plan(
            &refs(&[
                "r.io/m/library/nginx:1",
                "r.io/m/library/nginx:2",
                "nginx:1",
            ]),
            &to("r.io/m"),
            &[],
        )
        .unwrap();
        let sources: Vec<String> = p.images.iter().map(|i| i.source.to_string()).collect();
        assert_eq!(
            sources,
            ["docker.io/library/nginx:1", "r.io/m/library/nginx:2"]
        );
        let p = plan(
            &refs(&["r.io/m/library/nginx:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "r.io/mx/a:1", "r.io/a:1"]),
            &to("r.io/m"),
            &[],
        )
        .unwrap();
        assert_eq!(p.mirrored.len(), 1, "only under the prefix");
        let names: Vec<String> = p.images.iter().map(|i| i.target_name(&p.to)).collect();
        assert_eq!(names, ["r.io/m/a", "r.io/m/mx/a", "r.io/m/library/nginx"]);
    }

    fn rule(from: &str, to: &str) -> MapRule {
        MapRule {
            from_text: from.into(),
            from: globset::GlobBuilder::new(from)
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher(),
            to: Template::parse(to).unwrap(),
            line: 7,
        }
    }

    #[test]
    fn the_first_matching_map_rule_names_the_copy_else_the_repository_path() {
        let map = [
            rule("gcr.io/**", "gcr/{path}"),
            rule("gcr.io/p/*", "never/{name}"),
            rule("localhost:5000/**", "{registry}/{name}"),
        ];
        let p = plan(
            &refs(&["gcr.io/p/app:1", "python:3.7", "localhost:5000/a/b:1"]),
            &to("r.io/m"),
            &map,
        )
        .unwrap();
        let names: Vec<String> = p.images.iter().map(|i| i.target_name(&p.to)).collect();
        assert_eq!(
            names,
            [
                "r.io/m/library/python",
                "r.io/m/gcr/p/app",
                "r.io/m/localhost-5000/b"
            ]
        );
        let e = plan(
            &refs(&["gcr.io/a/x:1", "quay.io/b/x:1"]),
            &to("r.io/m"),
            &[rule("**", "{name}")],
        )
        .unwrap_err();
        assert!(matches!(e, PlanError::Collision { .. }), "{e}");
    }

    #[test]
    fn templates_with_unknown_placeholders_or_no_path_are_refused() {
        for (bad, says) in [
            ("{repo}", "unknown placeholder `{repo}`"),
            ("", "is empty"),
            ("gcr/{path", "without its pair"),
            ("PREFIX/gcr/{path}", "below the prefix"),
            ("a//{path}", "does not make a repository path"),
            ("/{path}", "does not make a repository path"),
        ] {
            let e = Template::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let t = Template::parse("x-{registry}/{name}").unwrap();
        assert_eq!(
            t.expand(&Reference::parse("nginx").unwrap()),
            "x-docker.io/nginx"
        );
    }

    #[test]
    fn rewrite_points_each_reference_at_its_copy_keeping_the_tag_as_written() {
        use crate::update::Resolve;
        let p = plan(
            &refs(&["python:3.7", "nginx", "r.io/m/a:1"]),
            &to("r.io/m"),
            &[],
        )
        .unwrap();
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let reports: Vec<ImageReport> = p
            .images
            .iter()
            .map(|i| ImageReport {
                source: i.source.to_string(),
                target: format!("{}:{}@{d}", i.target_name(&p.to), i.source.tag().unwrap()),
                outcome: Outcome::Copied,
            })
            .collect();
        let rewrite = Rewrite::new(&p, &reports);
        assert!(rewrite.renames());
        let got = rewrite
            .resolve(
                &refs(&["docker.io/library/python:3.7", "nginx", "r.io/m/a:1"]),
                &crate::update::Group::default(),
                &crate::report::Silent,
            )
            .unwrap();
        let got: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                format!("r.io/m/library/python:3.7@{d}"),
                format!("r.io/m/library/nginx@{d}"),
                "r.io/m/a:1".into()
            ]
        );
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
