//! Registry lookups for `cru update`: pinning digests (`--resolve-digest`) and choosing the
//! best tag with the same digest (`--resolve-tag`).
//!
//! This adapts the [`registry::Resolver`] to the update's [`Resolve`] seam. Targets without a
//! tag (digest-only references) have nothing to follow and are left as they are. Every lookup
//! finishes before any file is written; every failure is reported, then the update stops.
//!
//! A group's `pin:` from the configuration decides the digest lookup for its targets:
//! `digest` pins them without `--resolve-digest`, `none` never looks a digest up, even with
//! it (digests the targets already carry stay). Its `platform:` applies unless `--platform`
//! was given: the flag wins over the file.

use crate::reference::Reference;
use crate::registry::{self, Resolver};
use crate::report::{Event, Reporter};
use crate::update::{Group, Resolve, ResolveError};

/// What to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookups {
    /// Pin each target to the digest its tag points at now.
    pub digest: bool,
    /// Replace each target's tag by the most specific tag with the same digest.
    pub tag: bool,
}

/// A [`Resolve`] that asks registries.
pub struct RegistryResolve {
    resolver: Resolver,
    lookups: Lookups,
}

/// Some lookups failed; each was reported.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} registry lookups failed")]
pub struct LookupsFailed {
    failed: usize,
    total: usize,
    messages: Vec<String>,
}

impl LookupsFailed {
    /// `failed` of `total` lookups failed, with each failure's message.
    pub fn new(failed: usize, total: usize, messages: Vec<String>) -> LookupsFailed {
        LookupsFailed {
            failed,
            total,
            messages,
        }
    }

    /// Each failure's message, in the order of the targets.
    pub fn messages(&self) -> &[String] {
        &self.messages
    }
}

impl RegistryResolve {
    /// A resolver doing `lookups` with `resolver`.
    pub fn new(resolver: Resolver, lookups: Lookups) -> RegistryResolve {
        RegistryResolve { resolver, lookups }
    }
}

impl Resolve for RegistryResolve {
    fn resolve(
        &self,
        targets: &[Reference],
        group: &Group,
        reporter: &dyn Reporter,
    ) -> Result<Vec<Reference>, ResolveError> {
        let pin_digest = group.pins_digest(self.lookups.digest);
        if !(pin_digest || self.lookups.tag) {
            return Ok(targets.to_vec());
        }
        let platform = group.platform.as_ref();
        let wanted: Vec<Reference> = targets
            .iter()
            .filter(|t| t.tag().is_some())
            .cloned()
            .collect();
        let mut failures: Vec<registry::Error> = Vec::new();
        let mut resolved: Vec<Reference> = Vec::with_capacity(wanted.len());
        if self.lookups.tag {
            for (target, outcome) in wanted.iter().zip(self.resolver.tags_on(&wanted, platform)) {
                match outcome {
                    Ok(choice) => {
                        reporter.report(Event::ResolvedDigest {
                            name: target.normalized_name(),
                            tag: target.tag().unwrap_or_default().to_owned(),
                            digest: choice.digest.clone(),
                        });
                        reporter.report(Event::ResolvedTag {
                            name: target.normalized_name(),
                            tag: target.tag().unwrap_or_default().to_owned(),
                            best: choice.best.clone(),
                            matching: choice.matching.clone(),
                        });
                        let digest = if pin_digest {
                            Some(choice.digest.as_str())
                        } else {
                            target.digest()
                        };
                        resolved.push(target.with(Some(&choice.best), digest));
                    }
                    Err(e) => failures.push(e),
                }
            }
        } else if pin_digest {
            for (target, outcome) in wanted
                .iter()
                .zip(self.resolver.digests_on(&wanted, platform))
            {
                match outcome {
                    Ok(digest) => {
                        reporter.report(Event::ResolvedDigest {
                            name: target.normalized_name(),
                            tag: target.tag().unwrap_or_default().to_owned(),
                            digest: digest.clone(),
                        });
                        resolved.push(target.with(target.tag(), Some(&digest)));
                    }
                    Err(e) => failures.push(e),
                }
            }
        } else {
            resolved = wanted.clone();
        }
        if !failures.is_empty() {
            for e in &failures {
                reporter.report(Event::Error(e.to_string()));
            }
            return Err(ResolveError::Lookups(LookupsFailed {
                failed: failures.len(),
                total: wanted.len(),
                messages: failures.iter().map(ToString::to_string).collect(),
            }));
        }
        let mut resolved = resolved.into_iter();
        Ok(targets
            .iter()
            .map(|t| {
                if t.tag().is_some() {
                    resolved.next().expect("one result per tagged target")
                } else {
                    t.clone()
                }
            })
            .collect())
    }
}
