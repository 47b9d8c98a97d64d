//! `cru check`: reporting references that break a pinning policy, for CI and pre-commit.
//!
//! The policy checks are pure functions of the references found; the staleness check (a
//! pinned digest that its tag no longer points at) needs a registry and is given the digests
//! the tags point at now. Findings print as `file:line:column: message`, as JSON lines, or as
//! GitHub Actions workflow commands so they show on pull requests.

use std::io::{self, Write};

use serde::Serialize;

use crate::config::Pin;
use crate::inventory::{Inventory, Located, Scope};
use crate::reference::Reference;
use crate::scan::Site;

/// What `check` requires of every reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Every reference is pinned to a digest.
    pub require_digest: bool,
    /// Every reference has a tag a person can read.
    pub require_tag: bool,
}

/// A reference that breaks the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file, as shown to the user.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
    /// The reference as written.
    pub reference: String,
    /// What is wrong.
    pub message: String,
}

/// The policy findings of `inventory`, in file and position order. A rule's `pin:` in
/// `scope` overrides the digest requirement for its images: `none` exempts them, `digest`
/// requires a digest whatever the policy; `split-digest: none` exempts its split references.
pub fn policy_findings(inventory: &Inventory, policy: Policy, scope: &Scope) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in &inventory.files {
        let path = &file.shown;
        for located in &file.refs {
            let r = &located.occurrence.reference;
            let split = matches!(located.occurrence.site, Site::Split(_));
            let require_digest = match scope.policy(r, &file.path).pin_for(split) {
                Some(Pin::Digest) => true,
                Some(Pin::None) => false,
                None => policy.require_digest,
            };
            if require_digest && r.digest().is_none() {
                findings.push(finding(
                    path,
                    located,
                    format!("{r} is not pinned to a digest"),
                ));
            }
            if policy.require_tag && r.tag().is_none() {
                findings.push(finding(
                    path,
                    located,
                    format!("{r} has no tag, only a digest"),
                ));
            }
        }
    }
    findings
}

/// Findings for pinned references whose tag now points at another digest.
///
/// `current` gives, for a reference with tag and digest, the digest its tag points at now.
pub fn stale_findings(
    inventory: &Inventory,
    current: &dyn Fn(&Reference) -> Option<String>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in &inventory.files {
        let path = &file.shown;
        for located in &file.refs {
            let r = &located.occurrence.reference;
            let (Some(tag), Some(pinned)) = (r.tag(), r.digest()) else {
                continue;
            };
            if let Some(now) = current(r).filter(|now| now != pinned) {
                findings.push(finding(
                    path,
                    located,
                    format!("{r} is stale: tag {tag} now points at {now}, not {pinned}"),
                ));
            }
        }
    }
    findings
}

fn finding(path: &str, located: &Located, message: String) -> Finding {
    Finding {
        file: path.to_owned(),
        line: located.line,
        column: located.column,
        reference: located.occurrence.reference.to_string(),
        message,
    }
}

/// How findings are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// `file:line:column: message`.
    #[default]
    Text,
    /// One JSON object per finding.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…,col=…::…`).
    Github,
}

/// Writes `findings` to `out`.
pub fn write(findings: &[Finding], format: Format, out: &mut dyn Write) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    for f in findings {
        match format {
            Format::Text => writeln!(out, "{}:{}:{}: {}", f.file, f.line, f.column, f.message)?,
            Format::Json => {
                serde_json::to_writer(&mut out, f)?;
                out.write_all(b"\n")?;
            }
            Format::Github => writeln!(
                out,
                "::error file={},line={},col={},title=cru::{}",
                escape_property(&f.file),
                f.line,
                f.column,
                escape_data(&f.message)
            )?,
        }
    }
    out.flush()
}

/// Escapes a workflow command's message (GitHub's `escapeData`).
pub(crate) fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (GitHub's `escapeProperty`).
pub(crate) fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{locate, FoundFile};
    use crate::scan::{ScanOptions, Scanner};
    use std::path::PathBuf;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn inventory(text: &str) -> Inventory {
        let scanner = Scanner::new(ScanOptions::default());
        Inventory {
            files: vec![FoundFile {
                path: PathBuf::from("dir/f.yaml"),
                shown: "dir/f.yaml".into(),
                refs: locate(text.as_bytes(), scanner.scan(text.as_bytes())),
            }],
            errors: Vec::new(),
        }
    }

    #[test]
    fn a_rules_pin_overrides_the_digest_requirement_for_its_images() {
        let inv = inventory("image: nginx:1.25\nimage: gcr.io/dev/app:1\n");
        let config = crate::config::parse(
            std::path::Path::new(".cru.yaml"),
            "rules:\n  - match: {image: 'gcr.io/dev/*'}\n    pin: none\n  - match: {image: nginx}\n    pin: digest\n",
        )
        .unwrap();
        let scope = Scope::new(Some(std::sync::Arc::new(config)));
        let digest = Policy {
            require_digest: true,
            require_tag: false,
        };
        let found: Vec<String> = policy_findings(&inv, digest, &scope)
            .into_iter()
            .map(|f| f.reference)
            .collect();
        assert_eq!(found, ["nginx:1.25"], "pin: none exempts gcr.io/dev/app");
        let tag_only = Policy {
            require_digest: false,
            require_tag: true,
        };
        let found: Vec<String> = policy_findings(&inv, tag_only, &scope)
            .into_iter()
            .map(|f| f.reference)
            .collect();
        assert_eq!(found, ["nginx:1.25"], "pin: digest requires one anyway");
    }

    #[test]
    fn require_digest_and_tag() {
        let inv = inventory(&format!(
            "image: nginx:1.25\nimage: redis:7@{D1}\nimage: gcr.io/a/b@{D1}\n"
        ));
        let digest = policy_findings(
            &inv,
            Policy {
                require_digest: true,
                require_tag: false,
            },
            &Scope::default(),
        );
        assert_eq!(digest.len(), 1);
        assert_eq!(
            (digest[0].line, digest[0].column, digest[0].message.as_str()),
            (1, 8, "nginx:1.25 is not pinned to a digest")
        );
        let tag = policy_findings(
            &inv,
            Policy {
                require_digest: false,
                require_tag: true,
            },
            &Scope::default(),
        );
        assert_eq!(tag.len(), 1);
        assert_eq!(tag[0].reference, format!("gcr.io/a/b@{D1}"));
        assert!(policy_findings(&inv, Policy::default(), &Scope::default()).is_empty());
    }

    #[test]
    fn stale_compares_the_pinned_digest_with_the_current_one() {
        let inv = inventory(&format!(
            "a: gcr.io/a/b:1@{D1}\nb: gcr.io/a/c:1@{D1}\nc: gcr.io/a/d:1\n"
        ));
        let current = |r: &Reference| match r.name() {
            "gcr.io/a/b" => Some(D2.to_owned()),
            _ => Some(D1.to_owned()),
        };
        let stale = stale_findings(&inv, &current);
        assert_eq!(stale.len(), 1);
        assert_eq!(
            stale[0].message,
            format!("gcr.io/a/b:1@{D1} is stale: tag 1 now points at {D2}, not {D1}")
        );
    }

    #[test]
    fn formats() {
        let findings = vec![Finding {
            file: "a,b:c.yaml".into(),
            line: 3,
            column: 9,
            reference: "nginx:1".into(),
            message: "nginx:1 is 100% not pinned".into(),
        }];
        let render = |format| {
            let mut out = Vec::new();
            write(&findings, format, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            render(Format::Text),
            "a,b:c.yaml:3:9: nginx:1 is 100% not pinned\n"
        );
        assert_eq!(
            render(Format::Github),
            "::error file=a%2Cb%3Ac.yaml,line=3,col=9,title=cru::nginx:1 is 100%25 not pinned\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render(Format::Json)).unwrap();
        assert_eq!(json["line"], 3);
        assert_eq!(json["reference"], "nginx:1");
    }
}
