//! Deciding what each found reference should become.
//!
//! The rules come from the command line: `--all` or a list of `--image-reference`s, with or
//! without `--matching-tag`. They map a reference found in a file to its target before any
//! registry lookup; resolving digests or tags is a later step over the distinct targets.
//! Names are compared normalised, but a target keeps the spelling of the name it replaces.

use std::collections::HashMap;

use crate::reference::Reference;
use crate::version::Level;

/// Which references an update touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every reference found.
    All,
    /// References with the same repository as one of these.
    References(Vec<Reference>),
}

/// Two `--image-reference`s that would claim the same references.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--image-reference {first} and {second} both apply to the same references{hint}")]
pub struct ConflictError {
    first: String,
    second: String,
    hint: &'static str,
}

/// The update rules: what to select and whether tags must match.
#[derive(Debug, Clone)]
pub struct Rules {
    all: bool,
    matching_tag: bool,
    /// Normalised name → the references given for it.
    by_name: HashMap<String, Vec<Reference>>,
    /// `--bump LEVEL`: every reference is a target as it is; the bump happens in the
    /// registry step, this is the level of references no marker or rule gives one.
    bump: Option<Level>,
}

impl Rules {
    /// Builds the rules, refusing references that would claim the same found reference.
    pub fn new(selection: Selection, matching_tag: bool) -> Result<Rules, ConflictError> {
        let mut by_name: HashMap<String, Vec<Reference>> = HashMap::new();
        let all = match selection {
            Selection::All => true,
            Selection::References(refs) => {
                for r in refs {
                    // A reference without tag or digest means `:latest`, as for `docker pull`.
                    let r = if r.tag().is_none() && r.digest().is_none() {
                        r.with(Some("latest"), None)
                    } else {
                        r
                    };
                    let entry = by_name.entry(r.normalized_name()).or_default();
                    if let Some(prev) = entry.iter().find(|p| !matching_tag || p.tag() == r.tag()) {
                        if prev.suffix() != r.suffix() {
                            return Err(ConflictError {
                                first: prev.to_string(),
                                second: r.to_string(),
                                hint: if matching_tag {
                                    ""
                                } else {
                                    " (use --matching-tag to update each tag separately)"
                                },
                            });
                        }
                        continue;
                    }
                    entry.push(r);
                }
                false
            }
        };
        Ok(Rules {
            all,
            matching_tag,
            by_name,
            bump: None,
        })
    }

    /// The rules of `--bump`: every reference found is a target as it is, bumped later up
    /// to `default` (where no marker or configuration rule says otherwise).
    pub fn bump(default: Level) -> Rules {
        Rules {
            all: true,
            matching_tag: true,
            by_name: HashMap::new(),
            bump: Some(default),
        }
    }

    /// The rules of a bump limited to the repositories of `references` (their tags and
    /// digests do not count): what `cru serve` runs for a request with `bump`.
    pub fn bump_only(references: &[Reference], default: Level) -> Rules {
        let mut by_name: HashMap<String, Vec<Reference>> = HashMap::new();
        for r in references {
            by_name
                .entry(r.normalized_name())
                .or_default()
                .push(r.clone());
        }
        Rules {
            all: false,
            matching_tag: true,
            by_name,
            bump: Some(default),
        }
    }

    /// The default level of `--bump`, when bumping.
    pub fn bump_level(&self) -> Option<Level> {
        self.bump
    }

    /// What `found` should become before registry lookups, or `None` if it is not selected.
    pub fn target(&self, found: &Reference) -> Option<Reference> {
        if self.all {
            return Some(if self.matching_tag {
                found.clone()
            } else {
                // The Go tool's semantics: every reference to its `latest` tag, digests dropped.
                found.with(Some("latest"), None)
            });
        }
        let given = self.by_name.get(&found.normalized_name())?;
        if self.bump.is_some() {
            // Bumped later, from the reference as found.
            return Some(found.clone());
        }
        let chosen = if self.matching_tag {
            let tag = found.tag()?;
            given.iter().find(|g| g.tag() == Some(tag))?
        } else {
            given.first()?
        };
        Some(found.with(chosen.tag(), chosen.digest()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn r(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    fn rules(refs: &[&str], matching_tag: bool) -> Rules {
        Rules::new(
            Selection::References(refs.iter().map(|t| r(t)).collect()),
            matching_tag,
        )
        .unwrap()
    }

    fn target(rules: &Rules, found: &str) -> Option<String> {
        rules.target(&r(found)).map(|t| t.to_string())
    }

    #[test]
    fn image_reference_sets_tag_and_digest_keeping_the_spelling() {
        let rules = rules(&["docker.io/library/nginx:1.27"], false);
        assert_eq!(target(&rules, "nginx:1.25").as_deref(), Some("nginx:1.27"));
        assert_eq!(
            target(&rules, &format!("index.docker.io/library/nginx:1.25@{D1}")).as_deref(),
            Some("index.docker.io/library/nginx:1.27")
        );
        assert_eq!(target(&rules, "nginx/nginx:1.25"), None);
        assert_eq!(target(&rules, "gcr.io/x/nginx:1.25"), None);
    }

    #[test]
    fn image_reference_with_digest_pins() {
        let rules = rules(&[&format!("gcr.io/p/app:v2@{D1}")], false);
        assert_eq!(
            target(&rules, "gcr.io/p/app:v1"),
            Some(format!("gcr.io/p/app:v2@{D1}"))
        );
    }

    #[test]
    fn matching_tag_only_touches_the_same_tag() {
        let rules = rules(&[&format!("python:3.7@{D2}")], true);
        assert_eq!(
            target(&rules, &format!("python:3.7@{D1}")),
            Some(format!("python:3.7@{D2}"))
        );
        assert_eq!(target(&rules, "python:3.8"), None);
        assert_eq!(target(&rules, &format!("python@{D1}")), None);
    }

    #[test]
    fn a_bare_name_means_latest() {
        let rules = rules(&["nginx"], false);
        assert_eq!(
            target(&rules, "nginx:1.25").as_deref(),
            Some("nginx:latest")
        );
    }

    #[test]
    fn all_without_matching_tag_goes_to_latest_and_drops_digests() {
        let rules = Rules::new(Selection::All, false).unwrap();
        assert_eq!(
            target(&rules, &format!("gcr.io/a/b:1@{D1}")).as_deref(),
            Some("gcr.io/a/b:latest")
        );
    }

    #[test]
    fn all_with_matching_tag_is_the_identity_offline() {
        let rules = Rules::new(Selection::All, true).unwrap();
        let text = format!("gcr.io/a/b:1@{D1}");
        assert_eq!(target(&rules, &text), Some(text));
    }

    #[test]
    fn a_bump_targets_every_reference_or_those_of_the_named_repositories_as_found() {
        let text = format!("gcr.io/a/b:1@{D1}");
        assert_eq!(
            target(&Rules::bump(Level::Minor), &text),
            Some(text.clone())
        );
        let only = Rules::bump_only(&[r("gcr.io/a/b:9")], Level::Patch);
        assert_eq!(only.bump_level(), Some(Level::Patch));
        assert_eq!(target(&only, &text), Some(text));
        assert_eq!(target(&only, "gcr.io/a/c:1"), None);
    }

    #[test]
    fn conflicting_references_are_refused() {
        let err = Rules::new(
            Selection::References(vec![r("nginx:1.25"), r("docker.io/library/nginx:1.27")]),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("--matching-tag"), "{err}");
        // With --matching-tag they apply to different references.
        let rules = rules(&["nginx:1.25", "nginx:1.27"], true);
        assert_eq!(target(&rules, "nginx:1.27").as_deref(), Some("nginx:1.27"));
        // The same reference twice is no conflict.
        assert!(Rules::new(
            Selection::References(vec![r("nginx:1.25"), r("nginx:1.25")]),
            false
        )
        .is_ok());
    }
}
