//! `.cru.yaml`: the model of cru's configuration file, its checks and where it is found.
//!
//! [`parse`] is pure: text in, a checked [`Config`] (globs and regexes compiled) or a
//! [`ConfigError`] with the file, line and column out. [`discover`] is the one place that looks
//! at the file system to find the file. Nothing here reads flags or the environment: the caller
//! passes what the user asked for (`--config`, `$CRU_CONFIG`, `--no-config`).
//!
//! Secrets do not belong in a file that is committed: a key that looks like a credential is
//! refused with a pointer to `config.json` and credential helpers.

use std::fmt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::docker_hub;
use crate::reference::Reference;
use crate::registry::Platform;
use crate::version::{Level, Policy, Versioning};

/// The names the file is found under, in order, at the top of a repository.
pub const FILE_NAMES: [&str; 2] = [".cru.yaml", ".cru.yml"];

/// Keys that name a secret: refused wherever they appear.
const CREDENTIAL_KEYS: &[&str] = &[
    "password",
    "passwd",
    "token",
    "auth",
    "secret",
    "credentials",
    "credential",
    "identitytoken",
    "registrytoken",
    "api-key",
    "apikey",
];

/// The largest configuration file read.
const MAX_BYTES: u64 = 1 << 20;

/// The file as written (kebab-case keys, every key optional).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(title = "cru configuration (.cru.yaml)"))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    /// Paths not to scan, in gitignore syntax (as `.cruignore`), relative to the file's folder.
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Vec<String>"))]
    pub exclude: Vec<Spanned<String>>,
    /// Only find names with a `/`, as the Go tool does.
    pub qualified_only: Option<bool>,
    /// A containers-registries.conf v2 file, relative to the file's folder.
    pub registries_conf: Option<String>,
    /// Registry requests in flight at most (1–256).
    #[cfg_attr(test, schemars(with = "Option<u16>", range(min = 1, max = 256)))]
    pub jobs: Option<Spanned<u16>>,
    /// The default policy of `cru check`.
    pub check: Option<CheckSection>,
    /// Per-image policies, in order: every matching rule applies, later ones win.
    #[serde(default)]
    pub rules: Vec<RuleSection>,
    /// `cru mirror`: where images are copied and under which names.
    pub mirror: Option<MirrorSection>,
}

/// `mirror:`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MirrorSection {
    /// The registry, and a repository prefix, to copy into (`REGISTRY[/PREFIX]`); `--to`
    /// wins over it.
    #[cfg_attr(test, schemars(with = "Option<String>"))]
    pub to: Option<Spanned<String>>,
    /// Names of the copies, in order: the first rule whose `from` matches names the copy;
    /// others go to `PREFIX/<repository path>`.
    #[serde(default)]
    pub map: Vec<MapSection>,
}

/// One entry of `mirror.map`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MapSection {
    /// A glob over the normalised image name, as `match.image` (`gcr.io/**`).
    #[cfg_attr(test, schemars(with = "String"))]
    pub from: Spanned<String>,
    /// The repository path below the prefix of `to`, with `{path}` (the source's repository
    /// path, `library/python`), `{registry}` (`docker.io`) and `{name}` (`python`).
    #[cfg_attr(test, schemars(with = "String"))]
    pub to: Spanned<String>,
}

/// `check:`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CheckSection {
    /// What every reference must carry.
    pub require: Option<Require>,
}

/// What `cru check` requires of every reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Require {
    /// A digest (`name:tag@sha256:…`).
    Digest,
    /// A tag.
    Tag,
    /// Nothing.
    None,
}

/// Whether a rule's images are pinned to digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Pin {
    /// Pin to the digest the tag points at.
    Digest,
    /// Do not pin.
    None,
}

/// Where the digest of a split reference (a Helm values map, a Kustomize entry) goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum SplitDigest {
    /// Into the `digest:` value if there is one, else into the tag (Kustomize: a new
    /// `digest:` line).
    #[default]
    DigestKey,
    /// Always into the tag (`tag: 1.25.3@sha256:…`, Kustomize's `newTag:`), where the site
    /// takes a digest at all (a Dockerfile `ARG` does not); a `digest:` value that held the
    /// old digest is emptied.
    Tag,
    /// Nowhere: split references are not pinned (as `pin: none` for them only); a digest
    /// already written stays where it is.
    None,
}

impl SplitDigest {
    /// The value as written in `.cru.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            SplitDigest::DigestKey => "digest-key",
            SplitDigest::Tag => "tag",
            SplitDigest::None => "none",
        }
    }
}

/// One entry of `rules:`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleSection {
    /// Which references the rule is for; all given conditions must hold.
    #[serde(rename = "match", default)]
    pub matches: MatchSection,
    /// Pin the references to digests, or not.
    pub pin: Option<Pin>,
    /// Where a split reference's digest goes: `digest-key` (the default: its `digest:` value,
    /// else the tag), `tag` (always `tag: 1.2@sha256:…`) or `none` (never pinned).
    pub split_digest: Option<SplitDigest>,
    /// Resolve to this platform's manifest (`os/arch[/variant]`).
    #[cfg_attr(test, schemars(with = "Option<String>"))]
    pub platform: Option<Spanned<String>>,
    /// Leave the references alone, as a `cru:ignore` on their lines.
    pub ignore: Option<bool>,
    /// How far `cru update --bump` and `cru outdated` may move the tag: `patch` (same
    /// major.minor), `minor` (same major) or `major` (any newer version).
    pub bump: Option<Level>,
    /// Only tags matching this regular expression (in full) are candidates for a bump.
    #[cfg_attr(test, schemars(with = "Option<String>"))]
    pub allow_tags: Option<Spanned<String>>,
    /// Tags matching any of these regular expressions (in full) are never candidates.
    #[serde(default)]
    #[cfg_attr(test, schemars(with = "Vec<String>"))]
    pub ignore_tags: Vec<Spanned<String>>,
    /// Read tags with this regular expression instead of the built-in rules: named groups
    /// `major` (required), `minor`, `patch`, `build`, `prerelease`, `compatibility`.
    #[cfg_attr(test, schemars(with = "Option<String>"))]
    pub versioning: Option<Spanned<String>>,
    /// Whether a variant's own version may move in a bump (`20-alpine3.19` →
    /// `20-alpine3.20`); default no.
    pub variant_may_move: Option<bool>,
}

/// `match:` of a rule.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MatchSection {
    /// A glob over the normalised image name (`nginx` is `docker.io/library/nginx`); `*`
    /// stays within one path component, `**` crosses them.
    #[cfg_attr(test, schemars(with = "Option<String>"))]
    pub image: Option<Spanned<String>>,
    /// A gitignore-style glob over file paths, relative to the file's folder.
    #[cfg_attr(test, schemars(with = "Option<String>"))]
    pub files: Option<Spanned<String>>,
    /// A regular expression the tag must match (in full).
    #[cfg_attr(test, schemars(with = "Option<String>"))]
    pub tag: Option<Spanned<String>>,
}

/// A checked configuration: the file's values with its globs and regexes compiled.
#[derive(Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The folder relative paths in it start from.
    pub dir: PathBuf,
    /// `exclude:` compiled (gitignore semantics rooted at `dir`).
    pub exclude: Option<Gitignore>,
    /// `exclude:` as written, with their lines.
    pub exclude_patterns: Vec<(String, usize)>,
    /// `qualified-only:` and its line.
    pub qualified_only: Option<(bool, usize)>,
    /// `registries-conf:` resolved against `dir`, and its line.
    pub registries_conf: Option<(PathBuf, usize)>,
    /// `jobs:` and its line.
    pub jobs: Option<(u16, usize)>,
    /// `check.require:` and its line.
    pub check_require: Option<(Require, usize)>,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// `mirror.to:` and its line.
    pub mirror_to: Option<(crate::mirror::Destination, usize)>,
    /// `mirror.map:`, in order.
    pub mirror_map: Vec<crate::mirror::MapRule>,
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// The rule's line in the file.
    pub line: usize,
    image: Option<GlobMatcher>,
    files: Option<Gitignore>,
    tag: Option<Regex>,
    /// `pin:`.
    pub pin: Option<Pin>,
    /// `split-digest:`.
    pub split_digest: Option<SplitDigest>,
    /// `platform:`.
    pub platform: Option<Platform>,
    /// `ignore:`.
    pub ignore: Option<bool>,
    /// The bump policy's keys this rule sets.
    pub bump: BumpSpec,
    /// The rule as written, on one line (for `cru config show`).
    pub text: String,
}

/// What the rules say about one reference in one file: each field from the last matching
/// rule that sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagePolicy {
    /// Pin or not; `None` when no rule says.
    pub pin: Option<Pin>,
    /// Where a split reference's digest goes; `None` when no rule says (`digest-key`).
    pub split_digest: Option<SplitDigest>,
    /// The platform to resolve to.
    pub platform: Option<Platform>,
    /// Leave the reference alone.
    pub ignore: bool,
    /// The bump policy's keys, each from the last matching rule that sets it.
    pub bump: BumpSpec,
}

impl ImagePolicy {
    /// Whether to pin, for a reference written in one piece or (`split`) in parts: a split
    /// reference under `split-digest: none` is not pinned, as if `pin: none` were set for it.
    pub fn pin_for(&self, split: bool) -> Option<Pin> {
        match self.split_digest {
            Some(SplitDigest::None) if split => Some(Pin::None),
            _ => self.pin,
        }
    }
}

/// The keys of a bump policy, as written (the regexes were checked when the file was read).
/// Each is `None` when not set; [`BumpSpec::over`] layers one over another.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BumpSpec {
    /// `bump:`.
    pub level: Option<Level>,
    /// `allow-tags:`.
    pub allow_tags: Option<String>,
    /// `ignore-tags:`.
    pub ignore_tags: Option<Vec<String>>,
    /// `versioning:`.
    pub versioning: Option<String>,
    /// `variant-may-move:`.
    pub variant_may_move: Option<bool>,
}

impl BumpSpec {
    /// `self`'s keys where set, else `below`'s.
    pub fn over(self, below: BumpSpec) -> BumpSpec {
        BumpSpec {
            level: self.level.or(below.level),
            allow_tags: self.allow_tags.or(below.allow_tags),
            ignore_tags: self.ignore_tags.or(below.ignore_tags),
            versioning: self.versioning.or(below.versioning),
            variant_may_move: self.variant_may_move.or(below.variant_may_move),
        }
    }

    /// The policy these keys make, `default` where no level is set.
    pub fn policy(&self, default: Level) -> Result<Policy, String> {
        let full = |p: &str| Regex::new(&format!("^(?:{p})$")).map_err(|e| e.to_string());
        Ok(Policy {
            level: self.level.unwrap_or(default),
            variant_may_move: self.variant_may_move.unwrap_or(false),
            allow: self.allow_tags.as_deref().map(full).transpose()?,
            ignore: self
                .ignore_tags
                .iter()
                .flatten()
                .map(|p| full(p))
                .collect::<Result<_, _>>()?,
            versioning: match &self.versioning {
                Some(p) => Versioning::regex(p)?,
                None => Versioning::Auto,
            },
        })
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What is wrong, and what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = crate::inventory::display_path(&self.path);
        match (self.line, self.column) {
            (0, _) => write!(f, "{path}: {}", self.message),
            (line, 0) => write!(f, "{path}:{line}: {}", self.message),
            (line, column) => write!(f, "{path}:{line}:{column}: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses and checks `text`, the contents of the file at `path`; relative paths in it start
/// from `path`'s folder.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let fail = |line: usize, column: usize, message: String| ConfigError {
        path: path.to_owned(),
        line,
        column,
        message,
    };
    let file: File = if text.trim().is_empty() {
        File::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
            fail(line, column, explain(&e, line, column))
        })?
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let line_of = |l: &serde_saphyr::Location| l.line() as usize;
    let col_of = |l: &serde_saphyr::Location| l.column() as usize;

    let mut exclude_patterns = Vec::new();
    let exclude = if file.exclude.is_empty() {
        None
    } else {
        let mut builder = GitignoreBuilder::new(&dir);
        for pattern in &file.exclude {
            let at = &pattern.referenced;
            builder
                .add_line(None, &pattern.value)
                .map_err(|e| fail(line_of(at), col_of(at), format!("exclude: {e}")))?;
            exclude_patterns.push((pattern.value.clone(), line_of(at)));
        }
        Some(
            builder
                .build()
                .map_err(|e| fail(0, 0, format!("exclude: {e}")))?,
        )
    };

    let jobs = match &file.jobs {
        Some(j) if !(1..=256).contains(&j.value) => {
            return Err(fail(
                line_of(&j.referenced),
                col_of(&j.referenced),
                format!("jobs: {} is not in 1..=256", j.value),
            ))
        }
        Some(j) => Some((j.value, line_of(&j.referenced))),
        None => None,
    };

    let mut rules = Vec::with_capacity(file.rules.len());
    for section in &file.rules {
        let m = &section.matches;
        let first = [&m.image, &m.files, &m.tag]
            .into_iter()
            .flatten()
            .map(|s| line_of(&s.referenced))
            .min()
            .or(section.platform.as_ref().map(|p| line_of(&p.referenced)))
            .or(section.allow_tags.as_ref().map(|p| line_of(&p.referenced)))
            .or(section.versioning.as_ref().map(|p| line_of(&p.referenced)))
            .or(section.ignore_tags.first().map(|p| line_of(&p.referenced)))
            .unwrap_or(0);
        let image = match &m.image {
            Some(s) => Some(
                image_glob(&s.value)
                    .map_err(|e| fail(line_of(&s.referenced), col_of(&s.referenced), e))?,
            ),
            None => None,
        };
        let files = match &m.files {
            Some(s) => {
                let mut builder = GitignoreBuilder::new(&dir);
                builder.add_line(None, &s.value).map_err(|e| {
                    fail(
                        line_of(&s.referenced),
                        col_of(&s.referenced),
                        format!("match.files: {e}"),
                    )
                })?;
                Some(builder.build().map_err(|e| {
                    fail(
                        line_of(&s.referenced),
                        col_of(&s.referenced),
                        format!("match.files: {e}"),
                    )
                })?)
            }
            None => None,
        };
        let tag = match &m.tag {
            Some(s) => Some(Regex::new(&format!("^(?:{})$", s.value)).map_err(|e| {
                fail(
                    line_of(&s.referenced),
                    col_of(&s.referenced),
                    format!("match.tag: invalid regular expression: {e}"),
                )
            })?),
            None => None,
        };
        let platform = match &section.platform {
            Some(s) => Some(s.value.parse::<Platform>().map_err(|e| {
                fail(
                    line_of(&s.referenced),
                    col_of(&s.referenced),
                    format!("platform: {e}"),
                )
            })?),
            None => None,
        };
        let regex_at =
            |s: &Spanned<String>, key: &str, check: &dyn Fn(&str) -> Result<(), String>| {
                check(&s.value).map_err(|e| {
                    fail(
                        line_of(&s.referenced),
                        col_of(&s.referenced),
                        format!("{key}: invalid regular expression: {e}"),
                    )
                })
            };
        let full = |p: &str| {
            Regex::new(&format!("^(?:{p})$"))
                .map(drop)
                .map_err(|e| e.to_string())
        };
        if let Some(s) = &section.allow_tags {
            regex_at(s, "allow-tags", &full)?;
        }
        for s in &section.ignore_tags {
            regex_at(s, "ignore-tags", &full)?;
        }
        if let Some(s) = &section.versioning {
            regex_at(s, "versioning", &|p| Versioning::regex(p).map(drop))?;
        }
        let bump = BumpSpec {
            level: section.bump,
            allow_tags: section.allow_tags.as_ref().map(|s| s.value.clone()),
            ignore_tags: (!section.ignore_tags.is_empty()).then(|| {
                section
                    .ignore_tags
                    .iter()
                    .map(|s| s.value.clone())
                    .collect()
            }),
            versioning: section.versioning.as_ref().map(|s| s.value.clone()),
            variant_may_move: section.variant_may_move,
        };
        let mut text = Vec::new();
        let mut conditions = Vec::new();
        for (key, value) in [("image", &m.image), ("files", &m.files), ("tag", &m.tag)] {
            if let Some(v) = value {
                conditions.push(format!("{key}: {:?}", v.value));
            }
        }
        text.push(format!("match: {{{}}}", conditions.join(", ")));
        if let Some(pin) = section.pin {
            text.push(format!(
                "pin: {}",
                match pin {
                    Pin::Digest => "digest",
                    Pin::None => "none",
                }
            ));
        }
        if let Some(d) = section.split_digest {
            text.push(format!("split-digest: {}", d.as_str()));
        }
        if let Some(p) = &platform {
            text.push(format!("platform: {p}"));
        }
        if let Some(ignore) = section.ignore {
            text.push(format!("ignore: {ignore}"));
        }
        if let Some(level) = bump.level {
            text.push(format!("bump: {level}"));
        }
        if let Some(p) = &bump.allow_tags {
            text.push(format!("allow-tags: {p:?}"));
        }
        if let Some(ps) = &bump.ignore_tags {
            text.push(format!("ignore-tags: {ps:?}"));
        }
        if let Some(p) = &bump.versioning {
            text.push(format!("versioning: {p:?}"));
        }
        if let Some(v) = bump.variant_may_move {
            text.push(format!("variant-may-move: {v}"));
        }
        rules.push(Rule {
            bump,
            text: text.join(", "),
            line: first,
            image,
            files,
            tag,
            pin: section.pin,
            split_digest: section.split_digest,
            platform,
            ignore: section.ignore,
        });
    }

    let mut mirror_to = None;
    let mut mirror_map = Vec::new();
    if let Some(section) = &file.mirror {
        if let Some(s) = &section.to {
            let at = &s.referenced;
            let to = s.value.parse::<crate::mirror::Destination>().map_err(|_| {
                fail(
                    line_of(at),
                    col_of(at),
                    format!(
                        "mirror.to: `{}` is not REGISTRY[/PREFIX]: a registry host (a name with \
                         a dot or a port, or localhost) and lowercase path components",
                        s.value
                    ),
                )
            })?;
            mirror_to = Some((to, line_of(at)));
        }
        for entry in &section.map {
            let (from, to) = (&entry.from, &entry.to);
            let glob = name_glob(&from.value, "mirror.map.from")
                .map_err(|e| fail(line_of(&from.referenced), col_of(&from.referenced), e))?;
            let template = crate::mirror::Template::parse(&to.value).map_err(|e| {
                fail(
                    line_of(&to.referenced),
                    col_of(&to.referenced),
                    format!("mirror.map.to: {e}"),
                )
            })?;
            mirror_map.push(crate::mirror::MapRule {
                from_text: from.value.clone(),
                from: glob,
                to: template,
                line: line_of(&from.referenced).min(line_of(&to.referenced)),
            });
        }
    }

    // Lines of scalar keys are not spanned by serde; find them in the text (top level only).
    let key_line = |key: &str| top_level_key_line(text, key);
    Ok(Config {
        exclude,
        exclude_patterns,
        qualified_only: file.qualified_only.map(|v| (v, key_line("qualified-only"))),
        registries_conf: file
            .registries_conf
            .as_ref()
            .map(|p| (dir.join(p), key_line("registries-conf"))),
        jobs,
        check_require: file
            .check
            .as_ref()
            .and_then(|c| c.require)
            .map(|r| (r, key_line("check"))),
        rules,
        mirror_to,
        mirror_map,
        path: path.to_owned(),
        dir,
    })
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let fail = |message: String| ConfigError {
        path: path.to_owned(),
        line: 0,
        column: 0,
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if meta.len() > MAX_BYTES {
        return Err(fail(format!(
            "{} bytes; a configuration file is at most {MAX_BYTES} bytes",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
    parse(path, &text)
}

/// Where the configuration comes from, as the user asked.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// `--config FILE`.
    pub explicit: Option<PathBuf>,
    /// `$CRU_CONFIG`.
    pub env: Option<PathBuf>,
    /// `--no-config`.
    pub disabled: bool,
}

/// The file to read: `--config`, else `$CRU_CONFIG`, else `.cru.yaml` (or `.cru.yml`) at the
/// top of the git repository that holds `start` (or in `start`'s folder, outside a
/// repository). `None` when disabled or when there is none.
pub fn discover(how: &Discovery, start: &Path) -> Option<PathBuf> {
    if how.disabled {
        return None;
    }
    if let Some(p) = how.explicit.clone().or_else(|| how.env.clone()) {
        return Some(p);
    }
    let start = std::fs::canonicalize(start).ok()?;
    let folder = if start.is_dir() {
        start
    } else {
        start.parent()?.to_owned()
    };
    let top = folder
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&folder);
    FILE_NAMES
        .iter()
        .map(|name| top.join(name))
        .find(|p| p.is_file())
}

impl Config {
    /// What the rules say about `reference` in `file` (a path as walked).
    pub fn policy(&self, reference: &Reference, file: &Path) -> ImagePolicy {
        let mut policy = ImagePolicy::default();
        let name = reference.normalized_name();
        for rule in self
            .rules
            .iter()
            .filter(|r| r.matches(&name, reference, file))
        {
            if rule.pin.is_some() {
                policy.pin = rule.pin;
            }
            if rule.split_digest.is_some() {
                policy.split_digest = rule.split_digest;
            }
            if rule.platform.is_some() {
                policy.platform = rule.platform.clone();
            }
            if let Some(ignore) = rule.ignore {
                policy.ignore = ignore;
            }
            policy.bump = rule.bump.clone().over(std::mem::take(&mut policy.bump));
        }
        policy
    }

    /// Whether some rule pins its images to digests (`pin: digest`): registry lookups may be
    /// needed even when no flag asks for them.
    pub fn pins_digests(&self) -> bool {
        self.rules.iter().any(|r| r.pin == Some(Pin::Digest))
    }

    /// Whether `path` (as walked) is excluded by `exclude:`.
    pub fn excludes(&self, path: &Path, is_dir: bool) -> bool {
        self.exclude.as_ref().is_some_and(|g| {
            let path = absolute(path);
            path.starts_with(g.path()) && g.matched_path_or_any_parents(&path, is_dir).is_ignore()
        })
    }
}

impl Rule {
    fn matches(&self, name: &str, reference: &Reference, file: &Path) -> bool {
        self.image.as_ref().is_none_or(|g| g.is_match(name))
            && self
                .tag
                .as_ref()
                .is_none_or(|re| reference.tag().is_some_and(|t| re.is_match(t)))
            && self.files.as_ref().is_none_or(|g| {
                let path = absolute(file);
                path.starts_with(g.path())
                    && g.matched_path_or_any_parents(&path, false).is_ignore()
            })
    }
}

/// `path` made absolute against the current folder, without touching symlinks.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Compiles an image glob over normalised names: `nginx` → `docker.io/library/nginx`,
/// `bitnami/*` → `docker.io/bitnami/*`, `gcr.io/p/**` as written.
fn image_glob(pattern: &str) -> Result<GlobMatcher, String> {
    name_glob(pattern, "match.image")
}

/// [`image_glob`] for the key `key`, which errors name.
fn name_glob(pattern: &str, key: &str) -> Result<GlobMatcher, String> {
    if pattern.is_empty() {
        return Err(format!("{key}: an empty pattern matches nothing"));
    }
    let normalised = normalise_pattern(pattern);
    GlobBuilder::new(&normalised)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("{key}: invalid glob `{pattern}`: {}", e.kind()))
}

/// Docker Hub's spellings for a name pattern, as for names (see [`Reference`]).
fn normalise_pattern(pattern: &str) -> String {
    let (first, rest) = match pattern.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (pattern, None),
    };
    let is_host = first.contains(['.', ':']) || first == "localhost";
    match (is_host, rest) {
        (true, Some(rest)) => {
            // A pattern's host keeps its case as written (globs are matched as given).
            let host = if docker_hub::is_hub(first) {
                docker_hub::NAME
            } else {
                first
            };
            if host == docker_hub::NAME && !rest.starts_with("**") {
                format!("{host}/{}", docker_hub::repository(rest))
            } else {
                format!("{host}/{rest}")
            }
        }
        // `**` alone, or `*`: any name anywhere.
        (false, None) if first.starts_with("**") => pattern.to_owned(),
        (false, None) => format!("{}/{}", docker_hub::NAME, docker_hub::repository(pattern)),
        (false, Some(_)) if first.starts_with("**") => pattern.to_owned(),
        (false, Some(_)) => format!("{}/{pattern}", docker_hub::NAME),
        (true, None) => pattern.to_owned(),
    }
}

/// The 1-based line of a top-level `key:`, or 0.
fn top_level_key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map_or(0, |i| i + 1)
}

/// A parser error as a sentence: the message without its position, a "did you mean" for a
/// misspelt key, and the refusal of credential keys.
fn explain(err: &serde_saphyr::Error, line: usize, column: usize) -> String {
    let text = err.without_snippet().to_string();
    let suffix = format!(" at line {line}, column {column}");
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return message;
    };
    let lower = field.to_ascii_lowercase().replace('_', "-");
    if CREDENTIAL_KEYS
        .iter()
        .any(|k| lower == *k || lower.ends_with(&format!("-{k}")))
    {
        return format!(
            "`{field}` looks like a credential; secrets do not belong in a file that is \
             committed: give registry credentials in ~/.docker/config.json (or $DOCKER_CONFIG), \
             through a credential helper, or with `docker login`"
        );
    }
    let candidates: Vec<&str> = expected
        .trim_start_matches(", expected one of ")
        .trim_start_matches(", expected ")
        .split(", ")
        .map(|c| c.trim_matches('`'))
        .filter(|c| !c.is_empty())
        .collect();
    let best = candidates
        .iter()
        .map(|c| (strsim::levenshtein(&lower, c), *c))
        .min();
    match best {
        Some((distance, candidate)) if distance <= 2.max(field.len() / 3) => {
            format!("unknown key `{field}`; did you mean `{candidate}`?")
        }
        _ => format!(
            "unknown key `{field}`; expected one of {}",
            candidates.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        parse(Path::new("/repo/.cru.yaml"), text).unwrap()
    }

    fn parse_err(text: &str) -> String {
        parse(Path::new(".cru.yaml"), text).unwrap_err().to_string()
    }

    fn reference(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    const FULL: &str = r#"exclude: [vendor/**, "**/testdata/**"]   # gitignore syntax
qualified-only: false
registries-conf: ci/registries.conf
jobs: 16
check: {require: digest}
rules:
  - match: {image: "docker.io/library/*", files: "k8s/**"}
    pin: digest
    platform: linux/amd64
  - match: {image: "gcr.io/legacy/**"}
    ignore: true
"#;

    #[test]
    fn the_issue_example_parses_with_its_lines() {
        let c = parse_ok(FULL);
        assert_eq!(c.qualified_only, Some((false, 2)));
        assert_eq!(
            c.registries_conf,
            Some((PathBuf::from("/repo/ci/registries.conf"), 3))
        );
        assert_eq!(c.jobs, Some((16, 4)));
        assert_eq!(c.check_require, Some((Require::Digest, 5)));
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].line, 7);
        assert_eq!(c.rules[1].line, 10);
        assert_eq!(
            c.exclude_patterns,
            [
                ("vendor/**".to_owned(), 1),
                ("**/testdata/**".to_owned(), 1)
            ]
        );
    }

    #[test]
    fn an_empty_file_is_an_empty_configuration() {
        let c = parse_ok("");
        assert!(c.rules.is_empty() && c.jobs.is_none() && c.exclude.is_none());
        let c = parse_ok("# only a comment\n");
        assert!(c.rules.is_empty());
    }

    #[test]
    fn image_globs_match_normalised_names() {
        for (pattern, name, want) in [
            ("nginx", "nginx:1.25", true),
            ("nginx", "docker.io/library/nginx:1", true),
            ("nginx", "index.docker.io/library/nginx:1", true),
            ("nginx", "bitnami/nginx:1", false),
            ("docker.io/library/*", "redis:7", true),
            ("docker.io/library/*", "bitnami/redis:7", false),
            ("bitnami/*", "bitnami/redis:7", true),
            ("bitnami/*", "docker.io/bitnami/redis:7", true),
            ("gcr.io/legacy/**", "gcr.io/legacy/a/b/c:1", true),
            ("gcr.io/legacy/*", "gcr.io/legacy/a/b:1", false),
            ("gcr.io/legacy/*", "gcr.io/legacy/a:1", true),
            ("**", "quay.io/x/y:1", true),
            ("**/nginx", "quay.io/x/nginx:1", true),
            ("**/nginx", "nginx:1", true),
            ("ghcr.io/o/*", "ghcr.io/o/r@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true),
            ("localhost:5000/app", "localhost:5000/app:1", true),
        ] {
            let c = parse_ok(&format!("rules:\n  - match: {{image: \"{pattern}\"}}\n    ignore: true\n"));
            let got = c.policy(&reference(name), Path::new("/repo/a.yaml")).ignore;
            assert_eq!(got, want, "{pattern} vs {name}");
        }
    }

    #[test]
    fn file_globs_are_relative_to_the_files_folder() {
        let c = parse_ok("rules:\n  - match: {files: \"k8s/**\"}\n    pin: digest\n");
        let r = reference("nginx:1");
        assert_eq!(
            c.policy(&r, Path::new("/repo/k8s/prod/deploy.yaml")).pin,
            Some(Pin::Digest)
        );
        assert_eq!(c.policy(&r, Path::new("/repo/docker/Dockerfile")).pin, None);
        assert_eq!(
            c.policy(&r, Path::new("/elsewhere/k8s/a.yaml")).pin,
            None,
            "outside the configuration's folder"
        );
        let c = parse_ok("rules:\n  - match: {files: \"*.md\"}\n    ignore: true\n");
        assert!(c.policy(&r, Path::new("/repo/docs/x/README.md")).ignore);
        assert!(!c.policy(&r, Path::new("/repo/docs/x/README.txt")).ignore);
    }

    #[test]
    fn tag_regexes_match_in_full() {
        let c = parse_ok("rules:\n  - match: {tag: '1\\.\\d+'}\n    ignore: true\n");
        let file = Path::new("/repo/a");
        assert!(c.policy(&reference("nginx:1.25"), file).ignore);
        assert!(!c.policy(&reference("nginx:1.25.3"), file).ignore);
        assert!(!c.policy(&reference("nginx:21.2"), file).ignore);
        assert!(
            !c.policy(
                &reference(
                    "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                ),
                file
            )
            .ignore
        );
    }

    #[test]
    fn split_digest_is_read_per_rule_and_shown() {
        let c = parse_ok(
            "rules:\n  - match: {image: '**'}\n    split-digest: tag\n  - match: {files: 'legacy/**'}\n    split-digest: none\n",
        );
        let r = reference("a/b:1");
        assert_eq!(
            c.policy(&r, Path::new("/repo/values.yaml")).split_digest,
            Some(SplitDigest::Tag)
        );
        assert_eq!(
            c.policy(&r, Path::new("/repo/legacy/values.yaml"))
                .split_digest,
            Some(SplitDigest::None)
        );
        assert_eq!(c.rules[0].text, "match: {image: \"**\"}, split-digest: tag");
        assert_eq!(
            parse_ok("rules:\n  - pin: none\n")
                .policy(&r, Path::new("/repo/a"))
                .split_digest,
            None
        );
        let err = parse_err("rules:\n  - split-digest: digest\n");
        assert!(err.contains("digest-key"), "{err}");
    }

    #[test]
    fn every_matching_rule_applies_and_later_ones_win() {
        let c = parse_ok(
            "rules:\n  - match: {image: '**'}\n    pin: digest\n    platform: linux/amd64\n  - match: {image: 'gcr.io/**'}\n    pin: none\n  - match: {image: 'gcr.io/legacy/**'}\n    ignore: true\n  - match: {image: 'gcr.io/legacy/keep'}\n    ignore: false\n",
        );
        let file = Path::new("/repo/a");
        let p = c.policy(&reference("nginx:1"), file);
        assert_eq!(p.pin, Some(Pin::Digest));
        assert_eq!(
            p.platform.map(|p| p.to_string()),
            Some("linux/amd64".into())
        );
        assert!(!p.ignore);
        let p = c.policy(&reference("gcr.io/p/app:1"), file);
        assert_eq!(p.pin, Some(Pin::None), "the later rule wins");
        assert!(
            p.platform.is_some(),
            "fields the later rule does not set stay"
        );
        assert!(c.policy(&reference("gcr.io/legacy/old:1"), file).ignore);
        assert!(!c.policy(&reference("gcr.io/legacy/keep:1"), file).ignore);
    }

    #[test]
    fn all_conditions_of_a_match_must_hold() {
        let c = parse_ok(
            "rules:\n  - match: {image: nginx, files: 'k8s/**', tag: '1\\..*'}\n    ignore: true\n",
        );
        assert!(
            c.policy(&reference("nginx:1.2"), Path::new("/repo/k8s/a.yaml"))
                .ignore
        );
        assert!(
            !c.policy(&reference("nginx:2.0"), Path::new("/repo/k8s/a.yaml"))
                .ignore
        );
        assert!(
            !c.policy(&reference("redis:1.2"), Path::new("/repo/k8s/a.yaml"))
                .ignore
        );
        assert!(
            !c.policy(&reference("nginx:1.2"), Path::new("/repo/b.yaml"))
                .ignore
        );
    }

    #[test]
    fn exclude_uses_gitignore_syntax_from_the_files_folder() {
        let c = parse_ok("exclude: [vendor/, '**/testdata/**', '*.lock']\n");
        assert!(c.excludes(Path::new("/repo/vendor"), true));
        assert!(c.excludes(Path::new("/repo/vendor/x/y.yaml"), false));
        assert!(c.excludes(Path::new("/repo/a/testdata/b/c.yaml"), false));
        assert!(c.excludes(Path::new("/repo/deep/Cargo.lock"), false));
        assert!(!c.excludes(Path::new("/repo/src/a.yaml"), false));
        assert!(!c.excludes(Path::new("/other/vendor/a.yaml"), false));
    }

    #[test]
    fn a_misspelt_key_gets_a_did_you_mean_with_its_line_and_column() {
        assert_eq!(
            parse_err("jobs: 2\nregistry-conf: x\n"),
            ".cru.yaml:2:1: unknown key `registry-conf`; did you mean `registries-conf`?"
        );
        assert_eq!(
            parse_err("rules:\n  - match:\n      imag: nginx\n"),
            ".cru.yaml:3:7: unknown key `imag`; did you mean `image`?"
        );
        assert_eq!(
            parse_err("rules:\n  - pinn: digest\n"),
            ".cru.yaml:2:5: unknown key `pinn`; did you mean `pin`?"
        );
        let far = parse_err("colour: red\n");
        assert!(
            far.starts_with(".cru.yaml:1:1: unknown key `colour`; expected one of "),
            "{far}"
        );
        assert!(far.contains("registries-conf"), "{far}");
    }

    #[test]
    fn wrong_types_and_values_say_where() {
        let e = parse_err("jobs: many\n");
        assert!(e.starts_with(".cru.yaml:1:7: "), "{e}");
        let e = parse_err("jobs: 0\n");
        assert_eq!(e, ".cru.yaml:1:7: jobs: 0 is not in 1..=256");
        let e = parse_err("jobs: 999\n");
        assert_eq!(e, ".cru.yaml:1:7: jobs: 999 is not in 1..=256");
        let e = parse_err("qualified-only: maybe\n");
        assert!(e.starts_with(".cru.yaml:1:17: "), "{e}");
        let e = parse_err("check: {require: everything}\n");
        assert!(e.starts_with(".cru.yaml:1:"), "{e}");
        assert!(e.contains("everything") || e.contains("variant"), "{e}");
        let e = parse_err("rules: {a: 1}\n");
        assert!(e.starts_with(".cru.yaml:1:"), "{e}");
        let e = parse_err("rules: [\n");
        assert!(e.starts_with(".cru.yaml:1:"), "{e}");
        let e = parse_err("jobs: 1\njobs: 2\n");
        assert!(e.starts_with(".cru.yaml:2:1: duplicate"), "{e}");
    }

    #[test]
    fn bump_keys_layer_per_key_and_bad_regexes_say_where() {
        let c = parse_ok(
            "rules:\n  - match: {image: '**'}\n    bump: minor\n    ignore-tags: ['.*-rc.*']\n  - match: {image: 'node'}\n    bump: patch\n    variant-may-move: true\n    allow-tags: '\\d+-alpine.*'\n  - match: {image: 'linuxserver/*'}\n    versioning: '^(?<major>\\d+)\\.(?<minor>\\d+)-ls(?<build>\\d+)$'\n",
        );
        let file = Path::new("/repo/a");
        let b = c.policy(&reference("node:20-alpine"), file).bump;
        assert_eq!(b.level, Some(Level::Patch), "the later rule wins");
        assert_eq!(
            b.ignore_tags,
            Some(vec![".*-rc.*".to_owned()]),
            "keys it does not set stay"
        );
        assert_eq!(b.variant_may_move, Some(true));
        let policy = b.policy(Level::Major).unwrap();
        assert!(policy.allow.as_ref().unwrap().is_match("20-alpine3.20"));
        assert!(
            !policy.allow.unwrap().is_match("x20-alpine"),
            "matched in full"
        );
        let b = c.policy(&reference("linuxserver/nginx:1.2-ls3"), file).bump;
        assert!(b.versioning.is_some());
        assert!(
            c.rules[1].text.contains("bump: patch"),
            "{}",
            c.rules[1].text
        );
        let e = parse_err("rules:\n  - match: {image: x}\n    allow-tags: '(1'\n");
        assert!(
            e.starts_with(".cru.yaml:3:17: allow-tags: invalid regular expression"),
            "{e}"
        );
        let e = parse_err("rules:\n  - match: {image: x}\n    ignore-tags: [a, '[b']\n");
        assert!(
            e.starts_with(".cru.yaml:3:22: ignore-tags: invalid regular expression"),
            "{e}"
        );
        let e = parse_err("rules:\n  - match: {image: x}\n    versioning: '(?<minor>\\d+)'\n");
        assert!(
            e.starts_with(".cru.yaml:3:17: versioning: invalid regular expression")
                && e.contains("major"),
            "{e}"
        );
        let e = parse_err("rules:\n  - match: {image: x}\n    bump: huge\n");
        assert!(e.starts_with(".cru.yaml:3:"), "{e}");
    }

    #[test]
    fn invalid_globs_regexes_and_platforms_say_where() {
        assert_eq!(
            parse_err("rules:\n  - match: {image: 'gcr.io/[a'}\n"),
            ".cru.yaml:2:20: match.image: invalid glob `gcr.io/[a`: unclosed character class; missing ']'"
        );
        let e = parse_err("rules:\n  - match:\n      tag: '(1'\n");
        assert!(
            e.starts_with(".cru.yaml:3:12: match.tag: invalid regular expression"),
            "{e}"
        );
        let e = parse_err("rules:\n  - match: {image: x}\n    platform: 'linux'\n");
        assert!(e.starts_with(".cru.yaml:3:15: platform: "), "{e}");
        let e = parse_err("rules:\n  - match: {image: ''}\n");
        assert!(
            e.starts_with(".cru.yaml:2:20: match.image: an empty pattern"),
            "{e}"
        );
    }

    #[test]
    fn the_mirror_section_is_checked_where_it_is_written() {
        let c = parse_ok(
            "mirror:\n  to: reg.example.com/mirror\n  map:\n    - from: \"gcr.io/**\"\n      to: \"gcr/{path}\"\n    - {from: nginx, to: \"hub/{name}\"}\n",
        );
        let (to, line) = c.mirror_to.as_ref().unwrap();
        assert_eq!(
            (to.to_string().as_str(), *line),
            ("reg.example.com/mirror", 2)
        );
        assert_eq!(c.mirror_map.len(), 2);
        assert_eq!(c.mirror_map[0].line, 4);
        assert!(
            c.mirror_map[1].from.is_match("docker.io/library/nginx"),
            "normalised"
        );
        assert!(c.mirror_map[0].from.is_match("gcr.io/p/a/b"));
        assert_eq!(
            parse_err("mirror:\n  map:\n    - {from: x, to: \"m/{repo}\"}\n"),
            ".cru.yaml:3:21: mirror.map.to: `m/{repo}`: unknown placeholder `{repo}`; use {path}, {registry} or {name}"
        );
        let e = parse_err("mirror:\n  map:\n    - from: x\n      to: \"\"\n");
        assert!(
            e.starts_with(".cru.yaml:4:11: mirror.map.to: ``: the repository path is empty"),
            "{e}"
        );
        let e = parse_err("mirror:\n  map:\n    - {from: '', to: a}\n");
        assert!(
            e.starts_with(".cru.yaml:3:14: mirror.map.from: an empty pattern"),
            "{e}"
        );
        let e = parse_err("mirror: {to: Mirror}\n");
        assert!(
            e.starts_with(".cru.yaml:1:14: mirror.to: `Mirror` is not REGISTRY[/PREFIX]"),
            "{e}"
        );
        let e = parse_err("mirror: {map: [{from: a}]}\n");
        assert!(e.starts_with(".cru.yaml:1:"), "{e}");
    }

    #[test]
    fn credential_keys_are_refused_anywhere() {
        for text in [
            "password: hunter2\n",
            "token: abc\n",
            "auth: dXNlcjpwYXNz\n",
            "rules:\n  - match: {image: x}\n    registry-password: p\n",
            "check: {token: x}\n",
        ] {
            let e = parse_err(text);
            assert!(e.contains("looks like a credential"), "{text}: {e}");
            assert!(e.contains("config.json"), "{e}");
            assert!(!e.contains("hunter2") && !e.contains("dXNlcjpwYXNz"), "{e}");
        }
    }

    #[test]
    fn discovery_order_and_repository_top() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("a/b")).unwrap();
        let none = Discovery::default();
        assert_eq!(discover(&none, &repo.join("a/b")), None);
        std::fs::write(repo.join(".cru.yml"), "").unwrap();
        let found = discover(&none, &repo.join("a/b")).unwrap();
        assert!(found.ends_with("repo/.cru.yml"), "{found:?}");
        std::fs::write(repo.join(".cru.yaml"), "").unwrap();
        let found = discover(&none, &repo.join("a/b")).unwrap();
        assert!(
            found.ends_with("repo/.cru.yaml"),
            ".cru.yaml before .cru.yml"
        );
        // A file named as the start point: its folder.
        std::fs::write(repo.join("a/b/f.yaml"), "").unwrap();
        assert!(discover(&none, &repo.join("a/b/f.yaml")).is_some());
        // A nested file is not the repository's.
        std::fs::write(repo.join("a/.cru.yaml"), "").unwrap();
        assert!(discover(&none, &repo.join("a/b"))
            .unwrap()
            .ends_with("repo/.cru.yaml"));
        // Outside a repository: the start folder itself.
        let loose = dir.path().join("loose");
        std::fs::create_dir_all(&loose).unwrap();
        std::fs::write(loose.join(".cru.yaml"), "").unwrap();
        assert!(discover(&none, &loose)
            .unwrap()
            .ends_with("loose/.cru.yaml"));
        // --config over $CRU_CONFIG over discovery; --no-config over all.
        let how = Discovery {
            explicit: Some("x.yaml".into()),
            env: Some("y.yaml".into()),
            disabled: false,
        };
        assert_eq!(discover(&how, &repo), Some(PathBuf::from("x.yaml")));
        let how = Discovery {
            explicit: None,
            ..how
        };
        assert_eq!(discover(&how, &repo), Some(PathBuf::from("y.yaml")));
        let how = Discovery {
            disabled: true,
            ..how
        };
        assert_eq!(discover(&how, &repo), None);
    }

    #[test]
    fn load_refuses_what_is_not_a_small_text_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(&dir.path().join("missing.yaml")).unwrap_err();
        assert!(e.message.contains("No such file"), "{e}");
        let e = load(dir.path()).unwrap_err();
        assert_eq!(e.message, "not a regular file");
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; (MAX_BYTES + 1) as usize]).unwrap();
        assert!(load(&big).unwrap_err().message.contains("at most"));
        let bin = dir.path().join("bin.yaml");
        std::fs::write(&bin, b"jobs: \xff\n").unwrap();
        assert_eq!(load(&bin).unwrap_err().message, "not UTF-8 text");
    }

    /// The JSON Schema in the repository is generated from these types; this fails when it is
    /// stale. `CRU_BLESS=1 cargo test --lib config` rewrites it.
    #[test]
    fn the_json_schema_in_docs_is_current() {
        let schema = schemars::schema_for!(File);
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cru.schema.json");
        if std::env::var_os("CRU_BLESS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "docs/cru.schema.json is stale: run `CRU_BLESS=1 cargo test --lib config` and commit it"
        );
    }
}
