//! Tags read as versions, and the choice of the newest tag a policy allows.
//!
//! A tag splits into an optional prefix (`v`, `release-`), a numeric core of one to four
//! parts, an optional prerelease (`-rc.1`, `b1`, `-alpha`), a variant (`-alpine3.20`,
//! `-slim-bookworm`), a build or revision (`-r24`, `-ls126`, `_1`) and, last, an ignored
//! commit hash (`-c29d4c0c8`). A candidate may replace the current tag only when it keeps the
//! prefix, the variant, the build's shape and the precision (the number of core parts), is
//! not a prerelease (unless the current tag is a prerelease of the same core), and is newer.
//! Tags that are not versions (`latest`, `main`, `sha-1a2b3c4`, commit hashes) never move.
//!
//! This module is pure: it compares strings and knows nothing of registries or files. The
//! README's table of rules is tested here row by row.

use std::cmp::Ordering;

use regex::Regex;

/// How far a bump may go.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Same major and minor: `1.25.3` → `1.25.5`.
    Patch,
    /// Same major: `1.25.3` → `1.27.2`.
    Minor,
    /// Any newer version: `1.25.3` → `2.0.1`.
    Major,
}

impl std::str::FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Level, String> {
        match s {
            "patch" => Ok(Level::Patch),
            "minor" => Ok(Level::Minor),
            "major" => Ok(Level::Major),
            other => Err(format!(
                "unknown bump level `{other}`: expected patch, minor or major"
            )),
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Patch => "patch",
            Level::Minor => "minor",
            Level::Major => "major",
        })
    }
}

/// How tags are read as versions.
#[derive(Debug, Clone, Default)]
pub enum Versioning {
    /// The built-in reading (prefix, core, prerelease, variant, build).
    #[default]
    Auto,
    /// A regex with named groups `major`, and optionally `minor`, `patch`, `build`,
    /// `prerelease` and `compatibility` (which must be equal between tags); a tag that does
    /// not match is not a version.
    Regex(Regex),
}

impl Versioning {
    /// A regex versioning, checked to have a `major` group.
    pub fn regex(pattern: &str) -> Result<Versioning, String> {
        let re = Regex::new(pattern).map_err(|e| e.to_string())?;
        if !re.capture_names().flatten().any(|n| n == "major") {
            return Err(format!(
                "versioning regex `{pattern}` needs a named group `major`"
            ));
        }
        Ok(Versioning::Regex(re))
    }

    /// Reads `tag` as a version under this scheme.
    pub fn parse(&self, tag: &str) -> Option<Version> {
        match self {
            Versioning::Auto => Version::parse(tag),
            Versioning::Regex(re) => parse_with_regex(re, tag),
        }
    }
}

/// What a bump may choose from.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The furthest level allowed.
    pub level: Level,
    /// Whether the variant's own version may move (`-alpine3.19` → `-alpine3.20`).
    pub variant_may_move: bool,
    /// Only tags matching this are candidates.
    pub allow: Option<Regex>,
    /// Tags matching any of these are never candidates.
    pub ignore: Vec<Regex>,
    /// How tags are read.
    pub versioning: Versioning,
}

impl Policy {
    /// A policy that allows up to `level` with the built-in reading and no filters.
    pub fn new(level: Level) -> Policy {
        Policy {
            level,
            variant_may_move: false,
            allow: None,
            ignore: Vec::new(),
            versioning: Versioning::Auto,
        }
    }
}

/// A prerelease: a label's rank, its spelling and an optional number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pre {
    /// The label's place in the order `dev` < `alpha` < `beta` < `milestone` < `pre` < `rc`.
    pub rank: u8,
    /// The label, lower case.
    pub label: String,
    /// The number after the label, if any.
    pub number: Option<u64>,
}

/// A build or revision: its marker (`-r`, `-ls`, `_`, `-`) and number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The separator and letters before the number.
    pub marker: String,
    /// The build or revision number.
    pub number: u64,
}

/// A tag read as a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// `v`, `release-`, or empty.
    pub prefix: String,
    /// One to four numbers.
    pub core: Vec<u64>,
    /// `-rc.1`, `b1`…
    pub pre: Option<Pre>,
    /// Everything between the core (or prerelease) and the build, separators included.
    pub variant: String,
    /// `-r24`, `-ls126`, `_1`.
    pub build: Option<Build>,
    /// A trailing commit hash, kept out of every comparison but its presence.
    pub hash: bool,
}

/// Longest number part read (u64 holds 19 digits).
const MAX_DIGITS: usize = 18;

impl Version {
    /// Reads a tag with the built-in rules; `None` when it is not a version.
    pub fn parse(tag: &str) -> Option<Version> {
        if tag.is_empty() || tag.len() > 128 || is_commit_like(tag) {
            return None;
        }
        let first_digit = tag.find(|c: char| c.is_ascii_digit())?;
        let prefix = &tag[..first_digit];
        if !is_prefix(prefix) {
            return None;
        }
        let (core, rest) = read_core(&tag[first_digit..])?;
        let (pre, rest) = read_pre(rest);
        // What follows the core (or prerelease) must start a new segment.
        if let Some(c) = rest.chars().next() {
            if !matches!(c, '-' | '_' | '+' | '.') {
                return None;
            }
            if c == '.' && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
                return None; // a fifth number part
            }
        }
        let (rest, hash) = strip_hash(rest);
        let (variant, build) = split_build(rest);
        Some(Version {
            prefix: prefix.to_owned(),
            core,
            pre,
            variant: variant.to_owned(),
            build,
            hash,
        })
    }

    /// Whether this is a prerelease.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }

    /// Orders two versions of one shape: core, then release over prerelease, then build,
    /// then the variant's own numbers.
    fn cmp_key(&self, other: &Version) -> Ordering {
        self.core
            .cmp(&other.core)
            .then_with(|| cmp_pre(&self.pre, &other.pre))
            .then_with(|| {
                let a = self.build.as_ref().map(|b| b.number);
                let b = other.build.as_ref().map(|b| b.number);
                a.cmp(&b)
            })
            .then_with(|| variant_numbers(&self.variant).cmp(&variant_numbers(&other.variant)))
    }

    /// Whether `candidate` has this version's shape: prefix, precision, variant, build kind.
    fn same_shape(&self, candidate: &Version, variant_may_move: bool) -> bool {
        let variant_ok = if variant_may_move {
            variant_family(&self.variant) == variant_family(&candidate.variant)
                && variant_numbers(&candidate.variant).len() == variant_numbers(&self.variant).len()
        } else {
            self.variant == candidate.variant
        };
        self.prefix == candidate.prefix
            && self.core.len() == candidate.core.len()
            && variant_ok
            && self.build.as_ref().map(|b| &b.marker) == candidate.build.as_ref().map(|b| &b.marker)
            && self.hash == candidate.hash
    }

    /// Whether `candidate` stays within `level` of this version.
    fn within(&self, candidate: &Version, level: Level) -> bool {
        let keep = match level {
            Level::Patch => 2,
            Level::Minor => 1,
            Level::Major => 0,
        };
        let keep = keep.min(self.core.len());
        self.core[..keep] == candidate.core[..keep]
    }
}

/// Why a tag has no newer version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotBumpable {
    /// The tag is not a version (`latest`, `main`, a commit).
    NotAVersion,
}

/// The newest candidate per level; each is `None` when nothing newer is allowed there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Newest {
    /// Same major.minor.
    pub patch: Option<String>,
    /// Same major.
    pub minor: Option<String>,
    /// Any.
    pub major: Option<String>,
}

impl Newest {
    /// The newest at `level`.
    pub fn at(&self, level: Level) -> Option<&str> {
        match level {
            Level::Patch => self.patch.as_deref(),
            Level::Minor => self.minor.as_deref(),
            Level::Major => self.major.as_deref(),
        }
        .or(match level {
            // A wider level includes the narrower ones' answers.
            Level::Patch => None,
            Level::Minor => self.patch.as_deref(),
            Level::Major => self.minor.as_deref().or(self.patch.as_deref()),
        })
    }
}

/// The newest tag among `tags` that `policy` allows in place of `current`, or `None` when
/// `current` is newest. Linear in the number of tags.
pub fn choose<'t, S: AsRef<str>>(
    current: &str,
    tags: &'t [S],
    policy: &Policy,
) -> Result<Option<&'t str>, NotBumpable> {
    Ok(newest(current, tags, policy)?
        .at(policy.level)
        .and_then(|t| tags.iter().map(AsRef::as_ref).find(|c| *c == t)))
}

/// The newest allowed candidate at each level (the policy's level is ignored; its filters,
/// variant rule and versioning apply).
pub fn newest<S: AsRef<str>>(
    current: &str,
    tags: &[S],
    policy: &Policy,
) -> Result<Newest, NotBumpable> {
    let cur = policy
        .versioning
        .parse(current)
        .ok_or(NotBumpable::NotAVersion)?;
    let mut best: [Option<(Version, &str)>; 3] = [None, None, None];
    for tag in tags.iter().map(AsRef::as_ref) {
        if tag == current
            || !policy.allow.as_ref().is_none_or(|re| re.is_match(tag))
            || policy.ignore.iter().any(|re| re.is_match(tag))
        {
            continue;
        }
        let Some(cand) = policy.versioning.parse(tag) else {
            continue;
        };
        if !cur.same_shape(&cand, policy.variant_may_move)
            || cand.cmp_key(&cur) != Ordering::Greater
        {
            continue;
        }
        if cand.is_prerelease() && !(cur.is_prerelease() && cand.core == cur.core) {
            continue;
        }
        for (slot, level) in best
            .iter_mut()
            .zip([Level::Patch, Level::Minor, Level::Major])
        {
            if !cur.within(&cand, level) {
                continue;
            }
            let better = match slot {
                None => true,
                Some((v, t)) => match cand.cmp_key(v) {
                    Ordering::Greater => true,
                    // Same version spelt twice (`1.02` and `1.2`, two hashes): a stable pick.
                    Ordering::Equal => tag > *t,
                    Ordering::Less => false,
                },
            };
            if better {
                *slot = Some((cand.clone(), tag));
            }
        }
    }
    let [patch, minor, major] = best.map(|b| b.map(|(_, t)| t.to_owned()));
    // A level only lists a candidate the narrower level does not already give.
    let minor = minor.filter(|m| Some(m) != patch.as_ref());
    let major = major.filter(|m| Some(m) != minor.as_ref() && Some(m) != patch.as_ref());
    Ok(Newest {
        patch,
        minor,
        major,
    })
}

/// `v`, `V`, or a word ending in a separator or `v` (`release-`, `release-v`, `version_`).
fn is_prefix(prefix: &str) -> bool {
    if prefix.is_empty() || prefix == "v" || prefix == "V" {
        return true;
    }
    let word = prefix
        .strip_suffix(['-', '_'])
        .or_else(|| {
            prefix
                .strip_suffix(['v', 'V'])
                .and_then(|p| p.strip_suffix(['-', '_']))
        })
        .unwrap_or("");
    word.len() >= 2
        && word.len() <= 32
        && word.starts_with(|c: char| c.is_ascii_alphabetic())
        && word
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
}

/// `sha-1a2b3c4`, `sha256-…`, and commit hashes (7+ hex digits with a letter and a digit).
fn is_commit_like(tag: &str) -> bool {
    let lower = tag.to_ascii_lowercase();
    if lower.starts_with("sha-") || lower.starts_with("sha256-") || lower.starts_with("sha256:") {
        return true;
    }
    is_hash(tag)
}

fn is_hash(text: &str) -> bool {
    text.len() >= 7
        && text.bytes().all(|b| b.is_ascii_hexdigit())
        && text.bytes().any(|b| b.is_ascii_digit())
        && text.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Reads `N(.N){0,3}` from the start of `text`.
fn read_core(text: &str) -> Option<(Vec<u64>, &str)> {
    let mut core = Vec::new();
    let mut rest = text;
    loop {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > MAX_DIGITS {
            return None;
        }
        core.push(rest[..digits].parse().ok()?);
        rest = &rest[digits..];
        let more = rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit());
        if !more || core.len() == 4 {
            return Some((core, rest));
        }
        rest = &rest[1..];
    }
}

/// Prerelease labels, lowest first; the rank orders them (`alpha` < `beta` < `rc`).
const PRE_LABELS: &[(&str, u8)] = &[
    ("dev", 0),
    ("alpha", 1),
    ("a", 1),
    ("beta", 2),
    ("b", 2),
    ("milestone", 3),
    ("m", 3),
    ("preview", 4),
    ("pre", 4),
    ("rc", 5),
    ("c", 5),
];

/// Reads a prerelease right after the core: `-rc.1`, `-rc1`, `.beta2`, `b1`, `rc1`, `-alpha`.
fn read_pre(rest: &str) -> (Option<Pre>, &str) {
    let (sep, body) = match rest.chars().next() {
        Some(c @ ('-' | '.')) => (true, &rest[c.len_utf8()..]),
        _ => (false, rest),
    };
    let letters = body.bytes().take_while(u8::is_ascii_alphabetic).count();
    if letters == 0 {
        return (None, rest);
    }
    let word = &body[..letters];
    let lower = word.to_ascii_lowercase();
    let Some(&(_, rank)) = PRE_LABELS.iter().find(|(l, _)| *l == lower) else {
        return (None, rest);
    };
    // Single-letter labels only glued to the core or with a number: `3.13.0b1`, `1.0-a1`.
    let mut after = &body[letters..];
    let mut number = None;
    let digits_at = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let glued = digits_at(after);
    if glued > 0 && glued <= MAX_DIGITS {
        number = after[..glued].parse().ok();
        after = &after[glued..];
    } else if after.starts_with('.') && (1..=MAX_DIGITS).contains(&digits_at(&after[1..])) {
        let n = digits_at(&after[1..]);
        number = after[1..=n].parse().ok();
        after = &after[1 + n..];
    }
    if word.len() == 1 && (number.is_none() || sep && word.eq_ignore_ascii_case("c")) {
        return (None, rest);
    }
    // The label must end its segment: `-beta2` yes, `-alpine` or `-rc1x` no.
    if after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return (None, rest);
    }
    let pre = Pre {
        rank,
        label: lower,
        number,
    };
    (Some(pre), after)
}

fn cmp_pre(a: &Option<Pre>, b: &Option<Pre>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => a.rank.cmp(&b.rank).then(a.number.cmp(&b.number)),
    }
}

/// Splits off a trailing commit hash segment: `-c29d4c0c8`.
fn strip_hash(rest: &str) -> (&str, bool) {
    match rest.rfind(['-', '_', '+']) {
        Some(i) if is_hash(&rest[i + 1..]) => (&rest[..i], true),
        _ => (rest, false),
    }
}

/// Build markers: `-r24` (Alpine/Bitnami revisions), `-ls126` (linuxserver), `-build3`.
const BUILD_MARKERS: &[&str] = &["r", "ls", "build", "rev", "p"];

/// Splits the variant from a trailing build: `-debian-12-r24` → (`-debian-12`, `-r` 24);
/// `_1` and a lone `-1` right after the core count as builds too.
fn split_build(rest: &str) -> (&str, Option<Build>) {
    let Some(i) = rest.rfind(['-', '_', '+']) else {
        return (rest, None);
    };
    let (sep, seg) = (&rest[i..=i], &rest[i + 1..]);
    let letters = seg.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (marker, digits) = seg.split_at(letters);
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return (rest, None);
    }
    let is_build = if marker.is_empty() {
        // `_1`, `+3`, or `-1` with nothing before it (`1.2.3-1`, a packaging revision).
        sep != "-" || i == 0
    } else {
        BUILD_MARKERS.contains(&marker.to_ascii_lowercase().as_str())
    };
    if !is_build {
        return (rest, None);
    }
    let Ok(number) = digits.parse() else {
        return (rest, None);
    };
    let build = Build {
        marker: format!("{sep}{marker}"),
        number,
    };
    (&rest[..i], Some(build))
}

/// The variant with its numbers taken out: `-alpine3.20` → `-alpine`.
fn variant_family(variant: &str) -> String {
    let mut out = String::with_capacity(variant.len());
    let mut prev_digit = false;
    for c in variant.chars() {
        if c.is_ascii_digit() || (c == '.' && prev_digit) {
            prev_digit = c.is_ascii_digit() || prev_digit;
            continue;
        }
        prev_digit = false;
        out.push(c);
    }
    out
}

/// The numbers in a variant: `-alpine3.20` → `[3, 20]`.
fn variant_numbers(variant: &str) -> Vec<u64> {
    variant
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.get(..MAX_DIGITS).unwrap_or(s).parse().unwrap_or(u64::MAX))
        .collect()
}

fn parse_with_regex(re: &Regex, tag: &str) -> Option<Version> {
    let caps = re.captures(tag)?;
    let whole = caps.get(0)?;
    if whole.start() != 0 || whole.end() != tag.len() {
        return None;
    }
    let num = |name: &str| -> Option<Option<u64>> {
        match caps.name(name) {
            None => Some(None),
            Some(m) if m.as_str().is_empty() => Some(None),
            Some(m) => m.as_str().parse().ok().map(Some),
        }
    };
    let mut core = vec![num("major")??];
    for name in ["minor", "patch"] {
        match num(name)? {
            Some(n) => core.push(n),
            None => break,
        }
    }
    let build = num("build")?.map(|number| Build {
        marker: String::new(),
        number,
    });
    let pre = caps
        .name("prerelease")
        .filter(|m| !m.as_str().is_empty())
        .map(|m| {
            let (pre, _) = read_pre(m.as_str());
            pre.unwrap_or(Pre {
                rank: 0,
                label: m.as_str().to_owned(),
                number: None,
            })
        });
    Some(Version {
        prefix: String::new(),
        core,
        pre,
        variant: caps
            .name("compatibility")
            .map_or("", |m| m.as_str())
            .to_owned(),
        build,
        hash: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(current: &str, tags: &[&str], level: Level) -> Option<String> {
        choose(current, tags, &Policy::new(level))
            .unwrap()
            .map(str::to_owned)
    }

    /// Asserts the choice at each level: (patch, minor, major).
    #[track_caller]
    fn levels(current: &str, tags: &[&str], want: [Option<&str>; 3]) {
        let got = [Level::Patch, Level::Minor, Level::Major].map(|l| pick(current, tags, l));
        let want = want.map(|w| w.map(str::to_owned));
        assert_eq!(got, want, "{current} among {tags:?}");
    }

    /// Every row of the README's table of tag rules holds.
    #[test]
    fn the_readme_table_of_tag_rules_holds() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("<!-- tag rules:")
            .nth(1)
            .expect("the README has the table of tag rules");
        let quoted = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        let mut rows = 0;
        for line in table.lines().skip(3) {
            if !line.starts_with('|') {
                break;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (current, tags, policy, chosen) =
                (&quoted(cells[1])[0], quoted(cells[2]), cells[3], cells[4]);
            let level = policy.split(',').next().unwrap().parse().unwrap();
            let policy = Policy {
                variant_may_move: cells[3].contains("variant-may-move"),
                ..Policy::new(level)
            };
            let got = match choose(current, &tags, &policy) {
                Ok(Some(t)) => format!("`{t}`"),
                Ok(None) => "—".to_owned(),
                Err(NotBumpable::NotAVersion) => "not a version".to_owned(),
            };
            assert_eq!(got, chosen, "README row: {line}");
            rows += 1;
        }
        assert!(rows >= 20, "{rows} rows read");
    }

    #[test]
    fn parses_the_parts_of_a_tag() {
        let v = Version::parse("v1.25.3-rc.1").unwrap();
        assert_eq!(v.prefix, "v");
        assert_eq!(v.core, [1, 25, 3]);
        assert_eq!(v.pre.as_ref().unwrap().label, "rc");
        assert_eq!(v.pre.as_ref().unwrap().number, Some(1));
        let v = Version::parse("1.25.3-debian-12-r24").unwrap();
        assert_eq!(v.variant, "-debian-12");
        assert_eq!(
            v.build,
            Some(Build {
                marker: "-r".into(),
                number: 24
            })
        );
        let v = Version::parse("1.2.3-ls126").unwrap();
        assert_eq!(v.variant, "");
        assert_eq!(v.build.unwrap().number, 126);
        let v = Version::parse("20-alpine3.20").unwrap();
        assert_eq!(v.core, [20]);
        assert_eq!(v.variant, "-alpine3.20");
        let v = Version::parse("3.13.0b1").unwrap();
        assert_eq!(v.core, [3, 13, 0]);
        assert_eq!(v.pre.unwrap().label, "b");
        let v = Version::parse("1.40.0.7998-c29d4c0c8").unwrap();
        assert_eq!(v.core, [1, 40, 0, 7998]);
        assert!(v.hash);
        assert_eq!(v.variant, "");
        let v = Version::parse("release-2.1").unwrap();
        assert_eq!(v.prefix, "release-");
        let v = Version::parse("17-jdk-windowsservercore-ltsc2022").unwrap();
        assert_eq!(v.variant, "-jdk-windowsservercore-ltsc2022");
        let v = Version::parse("3.12-slim-bookworm").unwrap();
        assert_eq!(v.variant, "-slim-bookworm");
        assert!(v.build.is_none());
        let v = Version::parse("8.0_1").unwrap();
        assert_eq!(v.build.unwrap().marker, "_");
    }

    #[test]
    fn tags_that_are_not_versions() {
        for tag in [
            "latest",
            "stable",
            "main",
            "lts-alpine",
            "alpine",
            "sha-1a2b3c4",
            "sha256-0123456789abcdef",
            "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d",
            "deadbeef1",
            "edge",
            "a1.2",
            "1.2.3.4.5",
            "1.2x",
            "",
        ] {
            assert_eq!(Version::parse(tag), None, "{tag}");
        }
        let err = choose("latest", &["1.0", "2.0"], &Policy::new(Level::Major)).unwrap_err();
        assert_eq!(err, NotBumpable::NotAVersion);
    }

    #[test]
    fn versions_that_look_odd_but_are() {
        for tag in [
            "1",
            "20240115",
            "2024.01.15",
            "v2",
            "1.0.0.1",
            "3.0rc1",
            "1.0-alpha",
            "1.0-SNAPSHOT",
            "0.0.1_2",
        ] {
            assert!(Version::parse(tag).is_some(), "{tag}");
        }
    }

    #[test]
    fn semver_levels() {
        let tags = [
            "1.25.3", "1.25.4", "1.25.5", "1.26.0", "1.27.1", "1.27.2", "2.0.0", "2.0.1",
        ];
        levels(
            "1.25.3",
            &tags,
            [Some("1.25.5"), Some("1.27.2"), Some("2.0.1")],
        );
        levels("1.27.2", &tags, [None, None, Some("2.0.1")]);
        levels("2.0.1", &tags, [None, None, None]);
    }

    #[test]
    fn order_is_numeric_never_lexical() {
        levels(
            "1.9",
            &["1.10", "1.9", "1.8", "1.100"],
            [None, Some("1.100"), Some("1.100")],
        );
        levels(
            "1.0.0-rc9",
            &["1.0.0-rc10", "1.0.0-rc9", "1.0.0-rc2"],
            [Some("1.0.0-rc10"); 3],
        );
        levels("9", &["10", "9", "11", "100"], [None, None, Some("100")]);
    }

    #[test]
    fn never_downgrades() {
        levels("2.0.0", &["1.9.9", "1.99.0", "0.1.0"], [None, None, None]);
        levels("1.2.3-r5", &["1.2.3-r4", "1.2.3-r1"], [None, None, None]);
    }

    #[test]
    fn precision_is_kept() {
        // `1.20` never flips to `1.20.0`, nor `1.20.0` to `1.21`.
        levels(
            "1.20",
            &["1.20.0", "1.20.1", "1.21", "1.21.0", "2"],
            [None, Some("1.21"), Some("1.21")],
        );
        levels(
            "1.20.0",
            &["1.20", "1.21", "1.20.1", "2"],
            [Some("1.20.1"); 3],
        );
        levels("20", &["20.11.1", "21", "22.1"], [None, None, Some("21")]);
    }

    #[test]
    fn variants_must_match() {
        let tags = [
            "1.25-alpine",
            "1.27-alpine",
            "1.27-bookworm",
            "1.27.3-alpine",
            "1.27",
            "1.26-alpine-slim",
        ];
        levels(
            "1.25-alpine",
            &tags,
            [None, Some("1.27-alpine"), Some("1.27-alpine")],
        );
        levels("1.25", &tags, [None, Some("1.27"), Some("1.27")]);
    }

    #[test]
    fn a_variants_own_version_moves_only_when_allowed() {
        let tags = [
            "20-alpine3.19",
            "20-alpine3.20",
            "21-alpine3.20",
            "22-alpine3.19",
        ];
        levels("20-alpine3.19", &tags, [None, None, Some("22-alpine3.19")]);
        let mut policy = Policy::new(Level::Minor);
        policy.variant_may_move = true;
        assert_eq!(
            choose("20-alpine3.19", &tags, &policy).unwrap(),
            Some("20-alpine3.20")
        );
        policy.level = Level::Major;
        assert_eq!(
            choose("20-alpine3.19", &tags, &policy).unwrap(),
            Some("22-alpine3.19"),
            "a newer core wins over a newer variant"
        );
        // The family still has to match.
        assert_eq!(
            choose("20-alpine3.19", &["20-bookworm", "20-alpine"], &policy).unwrap(),
            None
        );
    }

    #[test]
    fn prereleases_only_from_a_prerelease_of_the_same_core() {
        let tags = [
            "3.12.1",
            "3.12.2",
            "3.13.0b1",
            "3.13.0b2",
            "3.13.0rc1",
            "3.13.0",
            "3.14.0a1",
        ];
        levels(
            "3.12.1",
            &tags,
            [Some("3.12.2"), Some("3.13.0"), Some("3.13.0")],
        );
        levels(
            "3.13.0b1",
            &tags,
            [Some("3.13.0"), Some("3.13.0"), Some("3.13.0")],
        );
        levels(
            "3.13.0b1",
            &["3.13.0b1", "3.13.0b2", "3.13.0rc1", "3.14.0a1"],
            [Some("3.13.0rc1"); 3],
        );
        levels(
            "21.0.0-rc.1",
            &["21.0.0-rc.2", "21.0.0", "22.0.0-rc.1"],
            [Some("21.0.0"); 3],
        );
        levels(
            "1.0",
            &["1.1-beta", "1.1-rc1", "2.0-alpha"],
            [None, None, None],
        );
    }

    #[test]
    fn prerelease_labels_order_alpha_beta_rc() {
        levels(
            "1.0.0-alpha.2",
            &["1.0.0-alpha.10", "1.0.0-beta.1", "1.0.0-rc.1"],
            [Some("1.0.0-rc.1"); 3],
        );
        levels(
            "2.0.0-alpha",
            &["2.0.0-alpha.1", "2.0.0-dev"],
            [Some("2.0.0-alpha.1"); 3],
        );
    }

    #[test]
    fn node_tags() {
        let tags = [
            "20.11.0-alpine3.19",
            "20.11.1-alpine3.19",
            "20.12.0-alpine3.19",
            "20.12.0-alpine3.20",
            "21.6.0-alpine3.19",
            "21.0.0-rc.1-alpine3.19",
            "20-alpine",
            "21-alpine",
            "lts-alpine",
            "alpine",
            "20.11.1",
            "20.12.2",
        ];
        levels(
            "20.11.1-alpine3.19",
            &tags,
            [None, Some("20.12.0-alpine3.19"), Some("21.6.0-alpine3.19")],
        );
        levels("20-alpine", &tags, [None, None, Some("21-alpine")]);
        levels("20.11.1", &tags, [None, Some("20.12.2"), Some("20.12.2")]);
        assert_eq!(
            choose("lts-alpine", &tags, &Policy::new(Level::Major)),
            Err(NotBumpable::NotAVersion)
        );
    }

    #[test]
    fn python_tags() {
        let tags = [
            "3.12.1",
            "3.12.2",
            "3.12-slim-bookworm",
            "3.13-slim-bookworm",
            "3.13.0b1",
            "3.12.2-slim-bookworm",
            "3.12.1-slim-bookworm",
        ];
        levels(
            "3.12-slim-bookworm",
            &tags,
            [None, Some("3.13-slim-bookworm"), Some("3.13-slim-bookworm")],
        );
        levels(
            "3.12.1-slim-bookworm",
            &tags,
            [Some("3.12.2-slim-bookworm"); 3],
        );
        levels("3.12.1", &tags, [Some("3.12.2"); 3]);
    }

    #[test]
    fn bitnami_revisions() {
        let tags = [
            "1.25.3-debian-12-r24",
            "1.25.3-debian-12-r25",
            "1.25.4-debian-12-r1",
            "1.26.0-debian-12-r0",
            "1.25.3-debian-11-r99",
            "1.25.3",
        ];
        levels(
            "1.25.3-debian-12-r24",
            &tags,
            [
                Some("1.25.4-debian-12-r1"),
                Some("1.26.0-debian-12-r0"),
                Some("1.26.0-debian-12-r0"),
            ],
        );
        levels(
            "1.25.3-debian-12-r24",
            &[
                "1.25.3-debian-12-r24",
                "1.25.3-debian-12-r25",
                "1.25.3-debian-12-r3",
            ],
            [Some("1.25.3-debian-12-r25"); 3],
        );
    }

    #[test]
    fn linuxserver_builds() {
        let tags = [
            "1.2.3-ls126",
            "1.2.3-ls127",
            "1.2.4-ls1",
            "1.3.0-ls5",
            "1.2.4",
        ];
        levels(
            "1.2.3-ls126",
            &tags,
            [Some("1.2.4-ls1"), Some("1.3.0-ls5"), Some("1.3.0-ls5")],
        );
    }

    #[test]
    fn prefixes_must_match() {
        let tags = ["v1.2.3", "v1.2.4", "1.2.9", "v1.3.0", "release-1.4.0"];
        levels(
            "v1.2.3",
            &tags,
            [Some("v1.2.4"), Some("v1.3.0"), Some("v1.3.0")],
        );
        levels("1.2.3", &tags, [Some("1.2.9"); 3]);
        levels(
            "release-1.3.0",
            &tags,
            [None, Some("release-1.4.0"), Some("release-1.4.0")],
        );
    }

    #[test]
    fn four_part_and_date_versions_compare_as_numbers() {
        levels(
            "1.40.0.7998-c29d4c0c8",
            &[
                "1.40.0.7998-c29d4c0c8",
                "1.40.1.8227-c61411d5a",
                "1.41.0.8992-8463ad060",
            ],
            [
                Some("1.40.1.8227-c61411d5a"),
                Some("1.41.0.8992-8463ad060"),
                Some("1.41.0.8992-8463ad060"),
            ],
        );
        levels(
            "20240115",
            &["20240115", "20240201", "20231231"],
            [None, None, Some("20240201")],
        );
        levels(
            "2024.01.15",
            &["2024.01.15", "2024.02.01", "2025.01.01"],
            [None, Some("2024.02.01"), Some("2025.01.01")],
        );
    }

    #[test]
    fn commit_like_tags_are_never_candidates() {
        levels(
            "1.0",
            &["abcdef1234567", "1.1", "sha-1234567"],
            [None, Some("1.1"), Some("1.1")],
        );
    }

    #[test]
    fn allow_and_ignore_filter_candidates() {
        let tags = ["1.2.3", "1.2.4", "1.3.0", "1.4.0"];
        let mut policy = Policy::new(Level::Minor);
        policy.ignore = vec![Regex::new(r"^1\.4\.").unwrap()];
        assert_eq!(choose("1.2.3", &tags, &policy).unwrap(), Some("1.3.0"));
        policy.allow = Some(Regex::new(r"^1\.2\.").unwrap());
        assert_eq!(choose("1.2.3", &tags, &policy).unwrap(), Some("1.2.4"));
    }

    #[test]
    fn regex_versioning_for_the_rest() {
        let versioning =
            Versioning::regex(r"^(?<major>\d+)\.(?<minor>\d+)-ls(?<build>\d+)$").unwrap();
        let mut policy = Policy::new(Level::Minor);
        policy.versioning = versioning;
        let tags = ["4.1-ls10", "4.1-ls12", "4.2-ls1", "5.0-ls3", "latest"];
        assert_eq!(choose("4.1-ls10", &tags, &policy).unwrap(), Some("4.2-ls1"));
        policy.level = Level::Patch;
        assert_eq!(
            choose("4.1-ls10", &tags, &policy).unwrap(),
            Some("4.1-ls12")
        );
        assert!(Versioning::regex(r"(?<minor>\d+)").is_err());
        assert!(Versioning::regex(r"(").is_err());
    }

    #[test]
    fn regex_versioning_keeps_the_compatibility_group() {
        let versioning =
            Versioning::regex(r"^(?<major>\d+)\.(?<minor>\d+)-(?<compatibility>.*)$").unwrap();
        let mut policy = Policy::new(Level::Major);
        policy.versioning = versioning;
        let tags = ["1.0-foo", "1.1-bar", "2.0-foo"];
        assert_eq!(choose("1.0-foo", &tags, &policy).unwrap(), Some("2.0-foo"));
    }

    #[test]
    fn newest_lists_each_level_once() {
        let tags = ["1.25.3", "1.25.5", "1.27.2", "2.0.1"];
        let n = newest("1.25.3", &tags, &Policy::new(Level::Patch)).unwrap();
        assert_eq!(n.patch.as_deref(), Some("1.25.5"));
        assert_eq!(n.minor.as_deref(), Some("1.27.2"));
        assert_eq!(n.major.as_deref(), Some("2.0.1"));
        let n = newest("1.25.3", &["1.25.3", "1.25.5"], &Policy::new(Level::Patch)).unwrap();
        assert_eq!(n.minor, None, "the patch answer is not repeated");
        assert_eq!(n.at(Level::Major), Some("1.25.5"));
    }

    #[test]
    fn the_choice_does_not_depend_on_order() {
        let mut tags = vec![
            "1.25.3",
            "1.25.5",
            "1.26.0",
            "1.27.2",
            "2.0.1",
            "1.27.2-alpine",
            "latest",
        ];
        let first = pick("1.25.3", &tags, Level::Minor);
        tags.reverse();
        assert_eq!(pick("1.25.3", &tags, Level::Minor), first);
        tags.rotate_left(3);
        assert_eq!(pick("1.25.3", &tags, Level::Minor), first);
    }

    #[test]
    fn levels_parse_and_print() {
        for l in [Level::Patch, Level::Minor, Level::Major] {
            assert_eq!(l.to_string().parse::<Level>(), Ok(l));
        }
        assert!("huge".parse::<Level>().is_err());
    }

    #[test]
    fn a_huge_tag_list_is_linear_and_correct() {
        let tags: Vec<String> = (0..10_000)
            .map(|i| format!("1.{}.{}", i / 100, i % 100))
            .collect();
        assert_eq!(
            choose("1.0.0", &tags, &Policy::new(Level::Minor)).unwrap(),
            Some("1.99.99")
        );
        assert_eq!(
            choose("1.5.3", &tags, &Policy::new(Level::Patch)).unwrap(),
            Some("1.5.99")
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn tag() -> impl Strategy<Value = String> {
            (
                prop_oneof![Just(""), Just("v"), Just("release-")],
                proptest::collection::vec(0u64..30, 1..4),
                prop_oneof![Just(""), Just("-rc.1"), Just("b2"), Just("-alpha")],
                prop_oneof![
                    Just(""),
                    Just("-alpine3.19"),
                    Just("-alpine3.20"),
                    Just("-slim")
                ],
                prop_oneof![Just(""), Just("-r3"), Just("-r12"), Just("-ls7")],
            )
                .prop_map(|(p, core, pre, variant, build)| {
                    let core: Vec<String> = core.iter().map(u64::to_string).collect();
                    format!("{p}{}{pre}{variant}{build}", core.join("."))
                })
        }

        proptest! {
            #[test]
            fn parse_never_panics(text in "\\PC{0,40}") {
                let _ = Version::parse(&text);
            }

            #[test]
            fn a_choice_is_newer_of_the_same_shape_and_within_its_level(
                current in tag(),
                tags in proptest::collection::vec(tag(), 0..40),
            ) {
                let cur = Version::parse(&current).unwrap();
                let mut previous: Option<Version> = None;
                for level in [Level::Patch, Level::Minor, Level::Major] {
                    let Some(chosen) = choose(&current, &tags, &Policy::new(level)).unwrap() else {
                        prop_assert!(previous.is_none(), "a wider level found less");
                        continue;
                    };
                    let v = Version::parse(chosen).unwrap();
                    prop_assert_eq!(v.cmp_key(&cur), Ordering::Greater);
                    prop_assert!(cur.same_shape(&v, false));
                    prop_assert!(cur.within(&v, level));
                    prop_assert!(!v.is_prerelease() || (cur.is_prerelease() && v.core == cur.core));
                    if let Some(p) = &previous {
                        prop_assert_ne!(v.cmp_key(p), Ordering::Less, "a wider level chose older");
                    }
                    previous = Some(v);
                }
            }

            #[test]
            fn the_choice_is_the_same_in_any_order(
                current in tag(),
                mut tags in proptest::collection::vec(tag(), 0..40),
                rotate in 0usize..40,
            ) {
                let first = choose(&current, &tags, &Policy::new(Level::Major)).unwrap().map(str::to_owned);
                tags.reverse();
                if !tags.is_empty() {
                    let n = rotate % tags.len();
                    tags.rotate_left(n);
                }
                let again = choose(&current, &tags, &Policy::new(Level::Major)).unwrap().map(str::to_owned);
                prop_assert_eq!(first, again);
            }
        }
    }
}
