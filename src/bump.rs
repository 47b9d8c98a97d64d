//! Version updates: the policy of each reference and the registry step of
//! `cru update --bump`.
//!
//! A reference's bump policy comes from, most specific first: a marker on its line
//! (`# cru: bump=patch`), the `.cru.yaml` rules that match it (`bump:`, `allow-tags:`,
//! `ignore-tags:`, `versioning:`, `variant-may-move:`), then `--bump` on the command line.
//! A line marked `cru: ignore` (or `cru:ignore`) is never bumped. The choice itself is the
//! pure [`crate::version`]; here the tag lists are fetched (one per repository per run) and
//! the digests of the winners that must be pinned are looked up (one `HEAD` each).

use crate::config::BumpSpec;
use crate::reference::Reference;
use crate::registry::{self, Resolver};
use crate::report::{Event, Reporter};
use crate::resolve::LookupsFailed;
use crate::update::{Group, Resolve, ResolveError};
use crate::version::{self, Level};

/// A marker after a reference on its line, in any comment syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    /// `cru: ignore`: leave the line alone.
    Ignore,
    /// `cru: bump=patch|minor|major`: how far this reference may move.
    Bump(Level),
}

impl Marker {
    /// The marker in `rest`, the text after a reference up to the end of its line: the last
    /// `cru:` followed (after blanks) by `ignore` or `bump=LEVEL`. An unknown level is no
    /// marker.
    pub fn find(rest: &[u8]) -> Option<Marker> {
        let at = memchr::memmem::rfind(rest, b"cru:")?;
        let after = &rest[at + 4..];
        let word = after.trim_ascii_start();
        if word.starts_with(b"ignore") {
            return Some(Marker::Ignore);
        }
        let level = word.strip_prefix(b"bump=")?;
        let end = level
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(level.len());
        std::str::from_utf8(&level[..end])
            .ok()?
            .parse()
            .ok()
            .map(Marker::Bump)
    }
}

/// The bump policy keys of one reference: the marker's level over the rules' keys, and
/// `default` (the command line's `--bump`) where neither sets a level.
pub fn spec(rules: &BumpSpec, marker: Option<Marker>, default: Level) -> BumpSpec {
    let mut spec = rules.clone();
    if let Some(Marker::Bump(level)) = marker {
        spec.level = Some(level);
    }
    spec.level.get_or_insert(default);
    spec
}

/// The [`Resolve`] of `cru update --bump`: each target (a reference as found) becomes the
/// newest tag its group's policy allows. A target that carries a digest gets the new tag's
/// digest; with `pin` (`--resolve-digest`, or a `pin: digest` rule) every target is pinned.
pub struct BumpResolve {
    resolver: Resolver,
    pin_digest: bool,
}

impl BumpResolve {
    /// Bumps with `resolver`; `pin_digest` pins every target (`--resolve-digest`).
    pub fn new(resolver: Resolver, pin_digest: bool) -> BumpResolve {
        BumpResolve {
            resolver,
            pin_digest,
        }
    }
}

impl Resolve for BumpResolve {
    fn resolve(
        &self,
        targets: &[Reference],
        group: &Group,
        reporter: &dyn Reporter,
    ) -> Result<Vec<Reference>, ResolveError> {
        let Some(spec) = &group.bump else {
            return Ok(targets.to_vec());
        };
        let policy = spec.policy(Level::Major).map_err(ResolveError::Failed)?;
        let pin = group.pins_digest(self.pin_digest);
        // Per target, one pipeline: the repository's list (version tags only), the choice,
        // then the digest of the tag to write as soon as that list is in, while other lists
        // are still arriving (two phases would idle `--jobs` at the end of the first).
        let policy = std::sync::Arc::new(policy);
        let platform = group.platform.clone();
        let steps = self.resolver.pipeline(targets, |lookups, t| {
            let (policy, platform) = (policy.clone(), platform.clone());
            async move {
                let versioned = t
                    .tag()
                    .is_some_and(|tag| policy.versioning.parse(tag).is_some());
                let mut step = Step {
                    versioned,
                    ..Step::default()
                };
                if versioned {
                    match lookups.tag_list(&t).await {
                        Ok(tags) => {
                            let current = t.tag().expect("versioned targets have a tag");
                            step.chosen = version::choose(current, &tags, &policy)
                                .ok()
                                .flatten()
                                .map(str::to_owned);
                        }
                        Err(e) => {
                            step.list_failed = Some(e);
                            return step;
                        }
                    }
                }
                // A new tag with the old digest would be a lie.
                let look = match &step.chosen {
                    Some(_) => pin || t.digest().is_some(),
                    None => pin && t.tag().is_some(),
                };
                if look {
                    let tag = step.chosen.as_deref().or(t.tag());
                    let digest = lookups.digest(&t.with(tag, None), platform.as_ref()).await;
                    step.digest = Some(digest);
                }
                step
            }
        });
        let versioned = steps.iter().filter(|s| s.versioned).count();
        let mut failures: Vec<registry::Error> = Vec::new();
        for (t, step) in targets.iter().zip(&steps) {
            if let Some(e) = &step.list_failed {
                failures.push(e.clone());
            } else if let Some(new) = &step.chosen {
                reporter.report(Event::Bumped {
                    name: t.normalized_name(),
                    tag: t.tag().unwrap_or_default().to_owned(),
                    to: new.clone(),
                    level: policy.level,
                });
            }
        }
        if !failures.is_empty() {
            for e in &failures {
                reporter.report(Event::Error(e.to_string()));
            }
            return Err(ResolveError::Lookups(LookupsFailed::new(
                failures.len(),
                versioned,
                failures.iter().map(ToString::to_string).collect(),
            )));
        }
        let wanted = steps.iter().filter(|s| s.digest.is_some()).count();
        let mut out = Vec::with_capacity(targets.len());
        let mut failed = Vec::new();
        for (t, step) in targets.iter().zip(steps) {
            let r = match &step.chosen {
                Some(new) => t.with(Some(new), None),
                None => t.clone(),
            };
            match step.digest {
                None => out.push(r),
                Some(Ok(d)) => {
                    reporter.report(Event::ResolvedDigest {
                        name: r.normalized_name(),
                        tag: r.tag().unwrap_or_default().to_owned(),
                        digest: d.clone(),
                    });
                    out.push(r.with(r.tag(), Some(&d)));
                }
                Some(Err(e)) => {
                    reporter.report(Event::Error(e.to_string()));
                    failed.push(e.to_string());
                }
            }
        }
        if !failed.is_empty() {
            return Err(ResolveError::Lookups(LookupsFailed::new(
                failed.len(),
                wanted,
                failed,
            )));
        }
        Ok(out)
    }
}

/// What one target's pipeline in [`BumpResolve`] found.
#[derive(Default)]
struct Step {
    /// Its tag is a version, so its repository's list was asked for.
    versioned: bool,
    /// The list could not be had.
    list_failed: Option<registry::Error>,
    /// The newest tag its policy allows, if newer.
    chosen: Option<String>,
    /// The digest of the tag to write, where it had to be looked up.
    digest: Option<Result<String, registry::Error>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_read_in_any_comment_syntax() {
        assert_eq!(
            Marker::find(b" # cru: bump=patch"),
            Some(Marker::Bump(Level::Patch))
        );
        assert_eq!(
            Marker::find(b" // cru:bump=minor, reviewed"),
            Some(Marker::Bump(Level::Minor))
        );
        assert_eq!(Marker::find(b" <!-- cru: ignore -->"), Some(Marker::Ignore));
        assert_eq!(Marker::find(b" # cru: bump=huge"), None);
        assert_eq!(Marker::find(b" # nothing here"), None);
        assert_eq!(
            Marker::find(b" # cru: bump=major  cru: bump=patch"),
            Some(Marker::Bump(Level::Patch)),
            "the last marker decides"
        );
    }

    #[test]
    fn the_marker_wins_over_the_rules_and_the_rules_over_the_default() {
        let rules = BumpSpec {
            level: Some(Level::Minor),
            ..BumpSpec::default()
        };
        let level = |rules: &BumpSpec, marker| spec(rules, marker, Level::Major).level;
        assert_eq!(level(&BumpSpec::default(), None), Some(Level::Major));
        assert_eq!(level(&rules, None), Some(Level::Minor));
        assert_eq!(
            level(&rules, Some(Marker::Bump(Level::Patch))),
            Some(Level::Patch)
        );
        assert_eq!(level(&rules, Some(Marker::Ignore)), Some(Level::Minor));
    }
}
