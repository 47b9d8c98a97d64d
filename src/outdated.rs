//! `cru outdated`: for each reference with a version tag, the newest tag its policy allows
//! and the newest per level, from one tag list per repository.
//!
//! [`plan`] picks the references and their policies (pure); the caller fetches the tag
//! lists of [`Plan::repositories`]; [`report`] compares (pure) and [`write`] prints text,
//! JSON lines or GitHub annotations, as `cru check` does.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

use serde::Serialize;

use crate::bump::{self, Marker};
use crate::check::{escape_data, escape_property, Format};
use crate::inventory::Inventory;
use crate::reference::Reference;
use crate::version::{self, Level, Policy};

/// One reference to compare.
#[derive(Debug, Clone)]
pub struct Item {
    /// The file, as shown.
    pub file: String,
    /// 1-based line and byte column.
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
    /// The reference as written.
    pub reference: Reference,
    /// Its policy.
    pub policy: Arc<Policy>,
}

/// The references to compare, and the repositories whose tag lists are needed.
#[derive(Debug, Default)]
pub struct Plan {
    /// In file and position order.
    pub items: Vec<Item>,
    /// One reference per repository (normalised name) whose tag list is needed.
    pub repositories: Vec<Reference>,
}

/// A configuration rule's regex that does not compile (checked when the file was read, so
/// only a hand-built configuration gets here).
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct PolicyError {
    file: String,
    line: usize,
    message: String,
}

/// The references of `inventory` with a tag, each with its policy: its line's marker over
/// the rules' keys over `default`. Lines marked `cru: ignore` are left out.
pub fn plan(
    inventory: &Inventory,
    scope: &crate::inventory::Scope,
    default: Level,
) -> Result<Plan, PolicyError> {
    let mut plan = Plan::default();
    let mut policies: HashMap<crate::config::BumpSpec, Arc<Policy>> = HashMap::new();
    let mut seen: std::collections::HashSet<String> = Default::default();
    for file in &inventory.files {
        for located in &file.refs {
            let r = &located.occurrence.reference;
            let Some(tag) = r.tag() else { continue };
            if located.marker == Some(Marker::Ignore) {
                continue;
            }
            let spec = bump::spec(&scope.policy(r, &file.path).bump, located.marker, default);
            let policy = match policies.get(&spec) {
                Some(p) => p.clone(),
                None => {
                    let p = Arc::new(spec.policy(default).map_err(|message| PolicyError {
                        file: file.shown.clone(),
                        line: located.line,
                        message,
                    })?);
                    policies.insert(spec, p.clone());
                    p
                }
            };
            if policy.versioning.parse(tag).is_some() && seen.insert(r.normalized_name()) {
                plan.repositories.push(r.clone());
            }
            plan.items.push(Item {
                file: file.shown.clone(),
                line: located.line,
                column: located.column,
                reference: r.clone(),
                policy,
            });
        }
    }
    Ok(plan)
}

/// What `outdated` found for one reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The file, as shown.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
    /// The reference as written.
    pub reference: String,
    /// Its tag.
    pub current: String,
    /// `outdated` (its policy allows a newer tag), `current` (none allowed; newer ones may
    /// exist beyond the policy) or `not-a-version` (`latest`, `main`, a commit).
    pub status: &'static str,
    /// The policy's level.
    pub bump: Level,
    /// The newest tag the policy allows, if newer.
    pub allowed: Option<String>,
    /// The newest with the same major.minor.
    pub patch: Option<String>,
    /// The newest with the same major (if not the patch one).
    pub minor: Option<String>,
    /// The newest of all (if not one of the above).
    pub major: Option<String>,
}

impl Row {
    /// Whether the policy allows a newer tag.
    pub fn is_outdated(&self) -> bool {
        self.status == "outdated"
    }

    /// The line `cru outdated` prints, without the file and line.
    pub fn message(&self) -> String {
        if self.status == "not-a-version" {
            return format!("{}: not a version", self.reference);
        }
        let levels: Vec<String> = [
            (&self.patch, "patch"),
            (&self.minor, "minor"),
            (&self.major, "major"),
        ]
        .into_iter()
        .filter_map(|(t, l)| t.as_ref().map(|t| format!("{t} ({l})")))
        .collect();
        let mut text = if levels.is_empty() {
            format!("{}: up to date", self.reference)
        } else {
            format!("{} → {}", self.reference, levels.join(", "))
        };
        if self.bump != Level::Major && !levels.is_empty() {
            match &self.allowed {
                Some(t) => text.push_str(&format!("; bump={} allows {t}", self.bump)),
                None => text.push_str(&format!("; bump={} allows none", self.bump)),
            }
        }
        text
    }
}

/// Compares each item of `plan` with its repository's tags (`tags` gives the list by
/// normalised name; `None`: its lookup failed and the item is left out).
pub fn report(plan: &Plan, tags: &dyn Fn(&str) -> Option<Arc<Vec<String>>>) -> Vec<Row> {
    let mut rows = Vec::new();
    for item in &plan.items {
        let current = item.reference.tag().unwrap_or_default();
        let row = |status, allowed, newest: version::Newest| Row {
            file: item.file.clone(),
            line: item.line,
            column: item.column,
            reference: item.reference.to_string(),
            current: current.to_owned(),
            status,
            bump: item.policy.level,
            allowed,
            patch: newest.patch,
            minor: newest.minor,
            major: newest.major,
        };
        if item.policy.versioning.parse(current).is_none() {
            rows.push(row("not-a-version", None, version::Newest::default()));
            continue;
        }
        let Some(list) = tags(&item.reference.normalized_name()) else {
            continue;
        };
        match version::newest(current, &list, &item.policy) {
            Ok(newest) => {
                let allowed = newest.at(item.policy.level).map(str::to_owned);
                let status = if allowed.is_some() {
                    "outdated"
                } else {
                    "current"
                };
                rows.push(row(status, allowed, newest));
            }
            Err(version::NotBumpable::NotAVersion) => {
                rows.push(row("not-a-version", None, version::Newest::default()))
            }
        }
    }
    rows
}

/// Writes `rows`: text lines for references with something newer (and those that are not
/// versions), JSON for every row, GitHub warnings for references with something newer.
pub fn write(rows: &[Row], format: Format, out: &mut dyn Write) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    for row in rows {
        let newer = row.patch.is_some() || row.minor.is_some() || row.major.is_some();
        match format {
            Format::Text if newer || row.status == "not-a-version" => {
                writeln!(out, "{}:{}: {}", row.file, row.line, row.message())?
            }
            Format::Text => {}
            Format::Json => {
                serde_json::to_writer(&mut out, row)?;
                out.write_all(b"\n")?;
            }
            Format::Github if newer => writeln!(
                out,
                "::{} file={},line={},col={},title=cru::{}",
                if row.is_outdated() {
                    "warning"
                } else {
                    "notice"
                },
                escape_property(&row.file),
                row.line,
                row.column,
                escape_data(&row.message())
            )?,
            Format::Github => {}
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{locate, FoundFile, Scope};
    use crate::scan::{ScanOptions, Scanner};
    use std::path::PathBuf;

    fn inventory(text: &str) -> Inventory {
        let scanner = Scanner::new(ScanOptions::default());
        Inventory {
            files: vec![FoundFile {
                path: PathBuf::from("f.yaml"),
                shown: "f.yaml".into(),
                refs: locate(text.as_bytes(), scanner.scan(text.as_bytes())),
            }],
            errors: Vec::new(),
        }
    }

    fn lines(text: &str, default: Level, tags: &[&str]) -> (Vec<Row>, String) {
        let plan = plan(&inventory(text), &Scope::default(), default).unwrap();
        let tags: Arc<Vec<String>> = Arc::new(tags.iter().map(|t| t.to_string()).collect());
        let rows = report(&plan, &|_| Some(tags.clone()));
        let mut out = Vec::new();
        write(&rows, Format::Text, &mut out).unwrap();
        (rows, String::from_utf8(out).unwrap())
    }

    const NGINX: &[&str] = &[
        "1.25.3",
        "1.25.5",
        "1.27.2",
        "2.0.1",
        "latest",
        "2.1.0-rc.1",
    ];

    #[test]
    fn text_lists_the_newest_per_level_as_the_issue_shows() {
        let (rows, text) = lines("image: nginx:1.25.3\n", Level::Major, NGINX);
        assert_eq!(
            text,
            "f.yaml:1: nginx:1.25.3 → 1.25.5 (patch), 1.27.2 (minor), 2.0.1 (major)\n"
        );
        assert_eq!(rows[0].allowed.as_deref(), Some("2.0.1"));
        assert!(rows[0].is_outdated());
    }

    #[test]
    fn a_marker_limits_the_policy_and_the_line_says_what_it_allows() {
        let (rows, text) = lines(
            "image: nginx:1.25.3 # cru: bump=patch\nimage: nginx:1.25.5 # cru: bump=patch\n",
            Level::Major,
            NGINX,
        );
        assert_eq!(
            text,
            "f.yaml:1: nginx:1.25.3 → 1.25.5 (patch), 1.27.2 (minor), 2.0.1 (major); bump=patch allows 1.25.5\n\
             f.yaml:2: nginx:1.25.5 → 1.27.2 (minor), 2.0.1 (major); bump=patch allows none\n"
        );
        assert_eq!(rows[1].status, "current");
        assert!(!rows[1].is_outdated());
    }

    #[test]
    fn tags_that_are_not_versions_say_so_and_need_no_tag_list() {
        let text = "image: nginx:latest\nimage: gcr.io/a/b:main\n";
        let plan = plan(&inventory(text), &Scope::default(), Level::Major).unwrap();
        assert!(plan.repositories.is_empty(), "no tag list is fetched");
        let (rows, out) = lines(text, Level::Major, NGINX);
        assert_eq!(
            out,
            "f.yaml:1: nginx:latest: not a version\nf.yaml:2: gcr.io/a/b:main: not a version\n"
        );
        assert!(rows.iter().all(|r| !r.is_outdated()));
    }

    #[test]
    fn one_repository_per_name_and_ignored_lines_are_left_out() {
        let text = "image: nginx:1.25.3\nimage: docker.io/library/nginx:1.27.2\nimage: nginx:1.2 # cru: ignore\n";
        let plan = plan(&inventory(text), &Scope::default(), Level::Major).unwrap();
        assert_eq!(plan.repositories.len(), 1);
        assert_eq!(plan.items.len(), 2);
    }

    #[test]
    fn json_has_every_row_and_github_warns_with_the_position() {
        let (rows, _) = lines(
            "image: nginx:1.25.3\nimage: nginx:2.0.1\n",
            Level::Minor,
            NGINX,
        );
        let mut out = Vec::new();
        write(&rows, Format::Json, &mut out).unwrap();
        let json: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(json.len(), 2);
        assert_eq!(json[0]["allowed"], "1.27.2");
        assert_eq!(json[0]["bump"], "minor");
        assert_eq!(json[1]["status"], "current");
        let mut out = Vec::new();
        write(&rows, Format::Github, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "::warning file=f.yaml,line=1,col=8,title=cru::nginx:1.25.3 → 1.25.5 (patch), 1.27.2 (minor), 2.0.1 (major); bump=minor allows 1.27.2\n"
        );
    }
}
