//! The HTTP API of `cru serve`, as data: the request body the Go tool's clients send, the
//! answer, and the checks that turn a body into an update job or into a 4xx with a message.
//! Pure: no sockets, no git, no registries; the server and the worker live beside it.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::plan::{Rules, Selection};
use crate::reference::Reference;
use crate::version::Level;

/// `POST /`: the Go tool's request, plus `resolve-digest`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UpdateRequest {
    /// The references to set: every reference in the files with the same repository becomes
    /// this one's tag and digest.
    pub image_references: Vec<String>,
    /// The message of the commit.
    pub commit_message: String,
    /// Only update references whose tag equals the new reference's tag.
    #[serde(default)]
    pub matching_tag: bool,
    /// Pin the references to the digest their tag points at now.
    #[serde(default)]
    pub resolve_digest: bool,
    /// Instead of setting the references, move every reference to their repositories to
    /// the newest tag its policy allows, up to this level where no marker or rule says.
    #[serde(default)]
    pub bump: Option<Level>,
}

/// The answer to `POST /`: `files` and `commit-sha` are left out when nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateResponse {
    /// The repository, with any password redacted.
    pub git_url: String,
    /// The files changed (or that would change, with `--dry-run`), relative to the
    /// repository's root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The commit pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<String>,
    /// What the update warned about (a credential helper that failed, a registry that
    /// rate-limited, a reference left alone); left out when there was nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub error: String,
    /// What the update warned about before it failed; left out when there was nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A checked request: what the worker runs.
#[derive(Debug, Clone)]
pub struct Job {
    /// The references asked for, as given.
    pub references: Vec<Reference>,
    /// What to update and to what.
    pub rules: Rules,
    /// The commit message.
    pub message: String,
    /// Whether to pin digests with the registries.
    pub resolve_digest: bool,
    /// `bump`: the references name the repositories to bump.
    pub bump: Option<Level>,
}

/// Why a request is refused before any work is done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The body is not a valid request (400).
    #[error("{0}")]
    BadRequest(String),
    /// A reference's repository is not on the allow-list (403).
    #[error("{0}")]
    Forbidden(String),
}

/// The longest commit message accepted, in bytes.
pub const MAX_MESSAGE: usize = 16 * 1024;

/// The most references one request may set.
pub const MAX_REFERENCES: usize = 1000;

/// Parses and checks a request body against the allow-list (empty: everything allowed).
/// Everything git would refuse later (a NUL in the message) is refused here, before any git
/// work, so that a bad request answers 400 and not a gateway error.
pub fn job(body: &[u8], allow: &[Regex]) -> Result<Job, Refusal> {
    let request: UpdateRequest = serde_json::from_slice(body)
        .map_err(|e| Refusal::BadRequest(format!("invalid request body: {e}")))?;
    if request.commit_message.trim().is_empty() {
        return Err(Refusal::BadRequest("commit-message is empty".into()));
    }
    if request.commit_message.contains('\0') {
        return Err(Refusal::BadRequest(
            "commit-message holds a NUL character, which git cannot store".into(),
        ));
    }
    if request.commit_message.len() > MAX_MESSAGE {
        return Err(Refusal::BadRequest(format!(
            "commit-message is {} bytes long; at most {MAX_MESSAGE} are accepted",
            request.commit_message.len()
        )));
    }
    if request.image_references.is_empty() {
        return Err(Refusal::BadRequest("image-references is empty".into()));
    }
    if request.image_references.len() > MAX_REFERENCES {
        return Err(Refusal::BadRequest(format!(
            "image-references has {} entries; at most {MAX_REFERENCES} are accepted",
            request.image_references.len()
        )));
    }
    if let Some(text) = request.image_references.iter().find(|t| t.contains('\0')) {
        return Err(Refusal::BadRequest(format!(
            "image-references: {text:?} holds a NUL character"
        )));
    }
    let mut references = Vec::with_capacity(request.image_references.len());
    for text in &request.image_references {
        let reference = Reference::parse(text.trim()).map_err(|e| {
            Refusal::BadRequest(format!(
                "image-references: {:?} is not a reference: {e}",
                text
            ))
        })?;
        references.push(reference);
    }
    if !allow.is_empty() {
        let refused: Vec<String> = references
            .iter()
            .map(Reference::normalized_name)
            .filter(|name| !allow.iter().any(|re| re.is_match(name)))
            .collect();
        if !refused.is_empty() {
            return Err(Refusal::Forbidden(format!(
                "not allowed to update {}: the repositories this service updates are limited \
                 by --allow",
                refused.join(", ")
            )));
        }
    }
    let rules = match request.bump {
        Some(_) if request.matching_tag => {
            return Err(Refusal::BadRequest(
                "bump and matching-tag do not go together".into(),
            ))
        }
        Some(level) => Rules::bump_only(&references, level),
        None => Rules::new(
            Selection::References(references.clone()),
            request.matching_tag,
        )
        .map_err(|e| Refusal::BadRequest(e.to_string()))?,
    };
    Ok(Job {
        references,
        rules,
        message: request.commit_message,
        resolve_digest: request.resolve_digest,
        bump: request.bump,
    })
}

/// Compiles `--allow` patterns so that each must match a whole repository name.
pub fn allow_list(patterns: &[String]) -> Result<Vec<Regex>, regex::Error> {
    patterns
        .iter()
        .map(|p| Regex::new(&format!("^(?:{p})$")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowing(patterns: &[&str]) -> Vec<Regex> {
        allow_list(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn refusal(body: &str, allow: &[&str]) -> Refusal {
        job(body.as_bytes(), &allowing(allow)).expect_err("refused")
    }

    #[test]
    fn a_bump_request_names_the_repositories_to_bump() {
        let body = r#"{"image-references": ["gcr.io/p/app"], "commit-message": "bump",
                       "bump": "minor"}"#;
        let job = job(body.as_bytes(), &[]).unwrap();
        assert_eq!(job.bump, Some(Level::Minor));
        assert_eq!(job.rules.bump_level(), Some(Level::Minor));
        let found = Reference::parse("gcr.io/p/app:1.2.3").unwrap();
        assert_eq!(job.rules.target(&found), Some(found));
        assert!(job
            .rules
            .target(&Reference::parse("gcr.io/p/other:1").unwrap())
            .is_none());
        let bad =
            r#"{"image-references": ["gcr.io/p/app"], "commit-message": "b", "bump": "huge"}"#;
        assert!(matches!(refusal(bad, &[]), Refusal::BadRequest(_)));
        let both = r#"{"image-references": ["gcr.io/p/app"], "commit-message": "b", "bump": "patch", "matching-tag": true}"#;
        assert!(matches!(refusal(both, &[]), Refusal::BadRequest(_)));
        // The allow-list still decides which repositories may be touched.
        assert!(matches!(
            refusal(
                r#"{"image-references": ["gcr.io/p/app"], "commit-message": "b", "bump": "patch"}"#,
                &["docker.io/.*"]
            ),
            Refusal::Forbidden(_)
        ));
    }

    #[test]
    fn accepts_the_go_tools_request() {
        let body = r#"{"image-references": ["gcr.io/p/app:1.2.3"], "commit-message": "bump",
                       "matching-tag": false}"#;
        let job = job(body.as_bytes(), &[]).unwrap();
        assert_eq!(job.references[0].to_string(), "gcr.io/p/app:1.2.3");
        assert_eq!(job.message, "bump");
        assert!(!job.resolve_digest);
        let found = Reference::parse("gcr.io/p/app:1.0").unwrap();
        assert_eq!(
            job.rules.target(&found).unwrap().to_string(),
            "gcr.io/p/app:1.2.3"
        );
    }

    #[test]
    fn refuses_bad_bodies_with_a_reason() {
        let cases = [
            ("{", "invalid request body"),
            (r#"{"image-references": ["a/b:1"]}"#, "commit-message"),
            (
                r#"{"image-references": ["a/b:1"], "commit-message": "  "}"#,
                "commit-message is empty",
            ),
            (
                r#"{"image-references": [], "commit-message": "m"}"#,
                "image-references is empty",
            ),
            (
                r#"{"image-references": ["UPPER/case:1"], "commit-message": "m"}"#,
                "is not a reference",
            ),
            (
                r#"{"image-references": ["a/b:1"], "commit-message": "m", "resolve_digest": true}"#,
                "unknown field",
            ),
            (
                r#"{"image-references": ["a/b:1", "a/b:2"], "commit-message": "m"}"#,
                "both apply",
            ),
            (
                r#"{"image-references": ["a/b:1"], "commit-message": "bump\u0000"}"#,
                "NUL",
            ),
            (
                r#"{"image-references": ["a/b:1\u0000"], "commit-message": "m"}"#,
                "NUL",
            ),
        ];
        for (body, expected) in cases {
            match refusal(body, &[]) {
                Refusal::BadRequest(message) => {
                    assert!(message.contains(expected), "{body}: {message}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_over_long_messages_and_too_many_references() {
        let message = "m".repeat(MAX_MESSAGE + 1);
        let body = serde_json::json!({"image-references": ["a/b:1"], "commit-message": message});
        assert!(
            matches!(refusal(&body.to_string(), &[]), Refusal::BadRequest(m) if m.contains("at most")),
        );
        let at_limit = serde_json::json!({"image-references": ["a/b:1"],
                                         "commit-message": "m".repeat(MAX_MESSAGE)});
        assert!(job(at_limit.to_string().as_bytes(), &[]).is_ok());
        let many: Vec<String> = (0..=MAX_REFERENCES).map(|i| format!("a/b{i}:1")).collect();
        let body = serde_json::json!({"image-references": many, "commit-message": "m"});
        assert!(
            matches!(refusal(&body.to_string(), &[]), Refusal::BadRequest(m) if m.contains("entries")),
        );
    }

    #[test]
    fn the_allow_list_matches_whole_normalised_names() {
        let allow = ["gcr.io/team/.*", "docker.io/library/nginx"];
        let ok =
            r#"{"image-references": ["gcr.io/team/app:2", "nginx:1.27"], "commit-message": "m"}"#;
        let allow_re = allowing(&allow);
        assert!(job(ok.as_bytes(), &allow_re).is_ok());
        let prefix_only = r#"{"image-references": ["gcr.io/team-b/app:2"], "commit-message": "m"}"#;
        let longer =
            r#"{"image-references": ["evil.io/docker.io/library/nginx:1"], "commit-message": "m"}"#;
        for body in [prefix_only, longer] {
            assert!(
                matches!(refusal(body, &allow), Refusal::Forbidden(m) if m.contains("not allowed")),
                "{body}"
            );
        }
    }

    #[test]
    fn answers_leave_out_what_did_not_happen() {
        let nothing = UpdateResponse {
            git_url: "https://git.example/r.git".into(),
            files: vec![],
            commit_sha: None,
            warnings: vec![],
        };
        assert_eq!(
            serde_json::to_string(&nothing).unwrap(),
            r#"{"git-url":"https://git.example/r.git"}"#
        );
        let done = UpdateResponse {
            files: vec!["k8s/app.yaml".into()],
            commit_sha: Some("abc".into()),
            ..nothing
        };
        assert_eq!(
            serde_json::to_string(&done).unwrap(),
            r#"{"git-url":"https://git.example/r.git","files":["k8s/app.yaml"],"commit-sha":"abc"}"#
        );
        let warned = UpdateResponse {
            warnings: vec!["w".into()],
            ..done
        };
        assert_eq!(
            serde_json::to_string(&warned).unwrap(),
            r#"{"git-url":"https://git.example/r.git","files":["k8s/app.yaml"],"commit-sha":"abc","warnings":["w"]}"#
        );
    }
}
