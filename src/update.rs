//! `cru update`: rewriting references in place, all or nothing.
//!
//! The steps: take stock of the tree; map each reference to its target with the [`Rules`];
//! hand the distinct targets to a [`Resolve`]r (registry lookups happen there, all before any
//! file is touched); compute every changed file's new content; then either print a diff
//! (`--dry-run`) or write all files, each atomically, after all of them were prepared.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::bump::{self, Marker};
use crate::config::{BumpSpec, Pin, SplitDigest};
use crate::files;
use crate::inventory::{scan_path, Inventory, Scope};
use crate::plan::Rules;
use crate::reference::Reference;
use crate::registry::Platform;
use crate::report::{Event, Log, Reporter};
use crate::rewrite::{self, Edit};
use crate::scan::{Occurrence, Role, Scanner, Site, Split, Tail};
use crate::walk::FileError;

/// Why a resolver failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Registry lookups failed; each was reported.
    #[error(transparent)]
    Lookups(#[from] crate::resolve::LookupsFailed),
    /// Anything else, as a message.
    #[error("{0}")]
    Failed(String),
}

impl From<&str> for ResolveError {
    fn from(message: &str) -> ResolveError {
        ResolveError::Failed(message.to_owned())
    }
}

/// What the configuration's rules ask of a group of targets: the resolver is asked once per
/// distinct group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Group {
    /// `pin:` (`None`: as the command line says).
    pub pin: Option<Pin>,
    /// `platform:` (`None`: as the command line says).
    pub platform: Option<Platform>,
    /// With `--bump`: the bump policy's keys (marker, rules and `--bump`, level always set).
    pub bump: Option<BumpSpec>,
}

impl Group {
    /// Whether this group's references are pinned: its `pin:` rule, else `default` (what the
    /// command line asked).
    pub fn pins_digest(&self, default: bool) -> bool {
        match self.pin {
            Some(Pin::Digest) => true,
            Some(Pin::None) => false,
            None => default,
        }
    }
}

/// Turns targets into the references to write: where registry lookups happen.
pub trait Resolve {
    /// Returns what each of `targets` (distinct, with the spelling of the file) becomes, in
    /// order, as `group` asks. All or nothing: an error means no file is written.
    fn resolve(
        &self,
        targets: &[Reference],
        group: &Group,
        reporter: &dyn Reporter,
    ) -> Result<Vec<Reference>, ResolveError>;

    /// Whether what it returns may have another name than the target (`cru mirror
    /// --rewrite`); another resolver's new name never reaches a file.
    fn renames(&self) -> bool {
        false
    }
}

/// The resolver that does no lookups: targets are written as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;

impl Resolve for Offline {
    fn resolve(
        &self,
        targets: &[Reference],
        _: &Group,
        _: &dyn Reporter,
    ) -> Result<Vec<Reference>, ResolveError> {
        Ok(targets.to_vec())
    }
}

/// Why an update wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// Some files or folders could not be read; each was reported.
    #[error("{} file(s) could not be read, no file was updated", .0.len())]
    Unreadable(Vec<FileError>),
    /// The resolver failed.
    #[error("no file was updated")]
    Resolve(#[source] ResolveError),
    /// A file changed between scanning and writing.
    #[error("{path}: changed while cru was running, no file was updated")]
    Changed {
        /// The file.
        path: String,
    },
    /// A reference to write does not read back as itself: a tag or digest from the resolver
    /// that breaks the grammar (a newline, a space) never reaches a file.
    #[error("{path}: refusing to write {reference:?}: not the valid image reference intended, no file was updated")]
    Invalid {
        /// The file.
        path: String,
        /// What would have been written, name and new suffix.
        reference: String,
    },
    /// A file could not be written.
    #[error("{path}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Writing the files failed; which were left how is said.
    #[error(transparent)]
    Files(#[from] files::WriteError),
    /// The diff could not be printed.
    #[error("writing the diff")]
    Output(#[source] std::io::Error),
}

/// One reference replaced in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The file, as shown to the user.
    pub path: String,
    /// The reference before.
    pub from: Reference,
    /// The reference after.
    pub to: Reference,
}

/// What an update did (or would do, in a dry run).
#[derive(Debug, Default)]
pub struct Summary {
    /// Distinct references found.
    pub found: usize,
    /// The files updated (or that would be), as shown to the user.
    pub files: Vec<String>,
    /// The same files, as walked (joined below the roots given).
    pub paths: Vec<PathBuf>,
    /// Every distinct change per file.
    pub changes: Vec<Change>,
}

/// Options of `cru update`.
#[derive(Debug)]
pub struct UpdateOptions {
    /// What to update and to what.
    pub rules: Rules,
    /// Print a diff instead of writing.
    pub dry_run: bool,
    /// The configuration's exclusions and per-image rules.
    pub scope: Scope,
    /// Write only files that resolve (through symlinks) inside this folder: a clone's root.
    pub confine: Option<PathBuf>,
}

/// Runs an update over `roots`; a dry run prints its diff to `out`.
pub fn run(
    roots: &[PathBuf],
    scanner: &Scanner,
    options: &UpdateOptions,
    resolver: &dyn Resolve,
    out: &mut dyn Write,
) -> Result<Summary, UpdateError> {
    Job {
        roots,
        base: None,
        scanner,
        rules: &options.rules,
        scope: &options.scope,
        confine: options.confine.as_deref(),
        resolver,
        dry_run: options.dry_run,
        reporter: &Log,
    }
    .run(out)
}

/// One update: what the CLI, `--repository` and every `cru serve` request run.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    /// The files and folders to update.
    pub roots: &'a [PathBuf],
    /// The folder files are shown relative to (a repository's working tree); `None`: the
    /// current folder.
    pub base: Option<&'a Path>,
    /// How references are found.
    pub scanner: &'a Scanner,
    /// What each reference becomes.
    pub rules: &'a Rules,
    /// The configuration's exclusions and per-image rules.
    pub scope: &'a Scope,
    /// Write only files that resolve (through symlinks) inside this folder: a clone's root.
    pub confine: Option<&'a Path>,
    /// Registry lookups.
    pub resolver: &'a dyn Resolve,
    /// Print a diff instead of writing.
    pub dry_run: bool,
    /// Where progress goes.
    pub reporter: &'a dyn Reporter,
}

/// The edits planned for one file and the distinct changes they make, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FilePlan {
    /// The edits, in buffer order.
    pub edits: Vec<Edit>,
    /// One `(from, to)` per distinct reference changed, in order of first occurrence.
    pub changes: Vec<(Reference, Reference)>,
    /// The split references that would change but are left alone, and why.
    pub fixed: Vec<(Reference, &'static str)>,
    /// The split references given another name without the digest, which has no place to go.
    pub unpinned: Vec<Reference>,
}

/// An edit that would leave something else than the intended reference in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotItself {
    /// What would have been written: the name as found and the new suffix.
    pub written: String,
}

/// Plans the edits of one buffer, purely: each occurrence whose reference `becomes` another
/// gets its `:tag@digest` replaced, keeping the name as written (a split reference: its tag and
/// digest values). A reference that becomes another name (`cru mirror --rewrite`) is written
/// whole; a split one gets its name values (see [`rename_split`]). Refuses (writing nothing) if
/// the new text would not read back as exactly the intended reference, or a split reference
/// has no place for it.
pub fn plan_file(
    buf: &[u8],
    occurrences: &[Occurrence],
    becomes: &dyn Fn(&Reference) -> Option<Reference>,
) -> Result<FilePlan, NotItself> {
    plan_file_placing(buf, occurrences, becomes, &|_| SplitDigest::DigestKey)
}

/// As [`plan_file`], with `split_digest` telling where the digest of each split reference
/// goes (a rule's `split-digest:`).
pub fn plan_file_placing(
    buf: &[u8],
    occurrences: &[Occurrence],
    becomes: &dyn Fn(&Reference) -> Option<Reference>,
    split_digest: &dyn Fn(&Reference) -> SplitDigest,
) -> Result<FilePlan, NotItself> {
    let mut plan = FilePlan::default();
    // What a reference becomes depends on it alone: one change per distinct `from`.
    let mut seen: HashSet<&Reference> = HashSet::new();
    let mut split_planned: Vec<(Reference, Vec<Edit>)> = Vec::new();
    // The values of split references that stay as they are.
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for occ in occurrences {
        let Some(to) = becomes(&occ.reference) else {
            if let Site::Split(split) = &occ.site {
                kept.extend(split.parts.iter().map(|p| (p.span.start, p.span.end)));
            }
            continue;
        };
        let mut to = to;
        match &occ.site {
            Site::Inline { name_end } => {
                // Another name: the whole reference is replaced.
                let keeps_name = to.name() == occ.reference.name();
                let (from, replacement) = if keeps_name {
                    (*name_end, to.suffix().into_bytes())
                } else {
                    (occ.start, to.to_string().into_bytes())
                };
                let name = &buf[occ.start..from];
                if !reads_back_as(name, &replacement, &to) {
                    let written = [name, &replacement].concat();
                    return Err(NotItself {
                        written: String::from_utf8_lossy(&written).into_owned(),
                    });
                }
                plan.edits.push(Edit {
                    range: from..occ.end,
                    replacement,
                });
            }
            Site::Split(split) => {
                if let Some(why) = split.fixed {
                    plan.fixed.push((occ.reference.clone(), why));
                    continue;
                }
                let placing = split_digest(&occ.reference);
                // `split-digest: none`: a digest is not added (one already written is kept).
                if placing == SplitDigest::None && occ.reference.digest().is_none() {
                    to = to.with(to.tag(), None);
                    if to == occ.reference {
                        kept.extend(split.parts.iter().map(|p| (p.span.start, p.span.end)));
                        continue;
                    }
                }
                let planned = if to.name() == occ.reference.name() {
                    split_edits(buf, split, &occ.reference, &to, placing).map(|e| (e, to.clone()))
                } else {
                    rename_split(buf, split, &occ.reference, &to, placing)
                };
                match planned {
                    Ok((edits, written)) => {
                        if written != to {
                            plan.unpinned.push(occ.reference.clone());
                        }
                        to = written;
                        split_planned.push((occ.reference.clone(), edits));
                    }
                    Err(why) => {
                        plan.fixed.push((occ.reference.clone(), why));
                        continue;
                    }
                }
            }
        }
        if seen.insert(&occ.reference) {
            plan.changes.push((occ.reference.clone(), to));
        }
    }
    // Split references may share a value (one ARG for two FROMs): the same edit is made
    // once; two that disagree are both left alone.
    let mut wanted: HashMap<(usize, usize), &[u8]> = HashMap::new();
    for &(start, end) in &kept {
        wanted.insert((start, end), &buf[start..end]);
    }
    let mut disagree: HashSet<(usize, usize)> = HashSet::new();
    for edit in split_planned.iter().flat_map(|(_, e)| e) {
        let key = (edit.range.start, edit.range.end);
        if *wanted.entry(key).or_insert(&edit.replacement) != edit.replacement.as_slice() {
            disagree.insert(key);
        }
    }
    let mut made: HashSet<(usize, usize)> = HashSet::new();
    for (reference, edits) in &split_planned {
        if edits
            .iter()
            .any(|e| disagree.contains(&(e.range.start, e.range.end)))
        {
            plan.fixed.push((
                reference.clone(),
                "a shared value would need two different values",
            ));
            plan.changes.retain(|(from, _)| from != reference);
            continue;
        }
        for edit in edits {
            if made.insert((edit.range.start, edit.range.end)) {
                plan.edits.push(edit.clone());
            }
        }
    }
    // A split reference's edits may enclose another reference's.
    plan.edits.sort_by_key(|e| e.range.start);
    Ok(plan)
}

/// The edits that make the split reference `from` (in `buf`) read `to`: the new tag into the
/// tag's value, the digest into the digest's value (or after the tag, or on a new line, as the
/// site says; with `split-digest: tag`, into the tag, emptying a `digest:` value that held
/// one). Why not, when `to` has another name or a part with no place to go.
fn split_edits(
    buf: &[u8],
    split: &Split,
    from: &Reference,
    to: &Reference,
    placing: SplitDigest,
) -> Result<Vec<Edit>, &'static str> {
    if to.name() != from.name() {
        return Err("a split reference's name is not rewritten");
    }
    let in_tag = match placing {
        // Only where the site takes a digest at all (not a Dockerfile `ARG`'s default).
        SplitDigest::Tag => {
            split.part(Role::Tag).is_some()
                && (split.tail != Tail::None || split.part(Role::Digest).is_some())
        }
        SplitDigest::DigestKey | SplitDigest::None => {
            split.part(Role::Digest).is_none() && split.tail == Tail::IntoTag
        }
    };
    let tag_value = |r: &Reference| {
        r.tag().map(|t| match r.digest() {
            Some(d) if in_tag => format!("{t}@{d}"),
            _ => t.to_owned(),
        })
    };
    let mut edits = Vec::new();
    match (split.part(Role::Tag), tag_value(to)) {
        (Some(part), Some(value)) => {
            if tag_value(from).as_ref() != Some(&value) {
                // The part holds what stands between its prefix and suffix (`${V}-alpine`).
                let value = value
                    .strip_prefix(part.prefix.as_str())
                    .and_then(|v| v.strip_suffix(part.suffix.as_str()))
                    .filter(|v| !v.is_empty())
                    .ok_or("the new tag does not fit the text around the variable")?;
                edits.push(Edit {
                    range: part.span.clone(),
                    replacement: part.style.render(value).into_bytes(),
                });
            }
        }
        (None, None) => {}
        (None, Some(_)) => return Err("there is no tag value to write the tag into"),
        (Some(_), None) => return Err("the tag value cannot be removed"),
    }
    // The digest now goes in the tag: a `digest:` value that held one is emptied, or the
    // reference would read two.
    if let Some(part) = split.part(Role::Digest).filter(|_| in_tag) {
        let held = &buf[part.span.clone()];
        if !matches!(
            held,
            b"" | b"\"\"" | b"''" | b"~" | b"null" | b"Null" | b"NULL"
        ) {
            edits.push(Edit {
                range: part.span.clone(),
                replacement: part.style.render("").into_bytes(),
            });
        }
    }
    if !in_tag && to.digest() != from.digest() {
        match (split.part(Role::Digest), &split.tail, to.digest()) {
            (Some(part), _, digest) => edits.push(Edit {
                range: part.span.clone(),
                replacement: part.style.render(digest.unwrap_or("")).into_bytes(),
            }),
            (None, Tail::Line { at, prefix }, Some(digest)) => edits.push(Edit {
                range: *at..*at,
                replacement: format!("{prefix}{digest}").into_bytes(),
            }),
            (None, _, Some(_)) => return Err("there is no place for a digest"),
            (None, _, None) => return Err("the digest is in the tag value"),
        }
    }
    Ok(edits)
}

/// The edits that make the split reference `from` read `to`, which has another name, and the
/// reference they write. The name goes into the name values: a `registry:` value gets `to`'s
/// host and the `repository:` value its path; a lone `repository:` (`image:`, a Kustomize
/// `newName:`, a default) the whole name. A Kustomize entry without `newName:` gets one (its
/// `name:` says which image the entry is for and never changes). The tag and digest then go
/// as [`split_edits`] places them; where the reference has no place for a digest (a compose
/// default), it is written without one. Why not, when the name is not in a value of its own
/// (`FROM node:${V}`).
fn rename_split(
    buf: &[u8],
    split: &Split,
    from: &Reference,
    to: &Reference,
    placing: SplitDigest,
) -> Result<(Vec<Edit>, Reference), &'static str> {
    const NO_NAME: &str = "the name is not written in a value of its own";
    let repository = split.part(Role::Repository).ok_or(NO_NAME)?;
    if !repository.prefix.is_empty() || !repository.suffix.is_empty() {
        return Err(NO_NAME);
    }
    if repository.style == crate::scan::Style::Bare && to.name().contains(':') {
        // A compose default holds no port: `${IMAGE:-host:5000/x}` is not read as a name.
        return Err("the new name has a port, which a default does not hold");
    }
    if buf[repository.span.end..].starts_with(b":$") {
        // `FROM node:${V}`, `image: org/app:${TAG:-1}`: a build may set another tag, which
        // the mirror does not hold.
        return Err(
            "the name stands before a variable tag, which may name a tag the mirror \
                    does not hold",
        );
    }
    let value = |part: &crate::scan::Part, text: &str| Edit {
        range: part.span.clone(),
        replacement: part.style.render(text).into_bytes(),
    };
    let mut edits = Vec::new();
    match (split.part(Role::Registry), to.name().split_once('/')) {
        (Some(registry), Some((host, path))) if to.has_host() => {
            edits.push(value(registry, host));
            edits.push(value(repository, path));
        }
        (Some(_), _) => return Err("the new name has no registry for the `registry:` value"),
        (None, _) => {
            let key_of = |part: &crate::scan::Part| key_before(buf, part.span.start);
            let kustomize_name = key_of(repository).is_some_and(|(k, _)| k == b"name")
                && split
                    .part(Role::Tag)
                    .is_none_or(|t| key_of(t).is_some_and(|(k, _)| k == b"newTag"));
            if kustomize_name {
                let (_, key_start) = key_of(repository).ok_or(NO_NAME)?;
                edits.push(new_name(buf, repository, key_start, to.name()));
            } else {
                edits.push(value(repository, to.name()));
            }
        }
    }
    let named = Reference::parse(&format!("{}{}", to.name(), from.suffix()))
        .map_err(|_| "the new name does not make a valid reference")?;
    // No digest value and nowhere to add one: renamed, not pinned.
    let no_digest_place = split.part(Role::Digest).is_none() && split.tail == Tail::None;
    let written = if no_digest_place && to.digest() != from.digest() {
        to.with(to.tag(), from.digest())
    } else {
        to.clone()
    };
    edits.extend(split_edits(buf, split, &named, &written, placing)?);
    Ok((edits, written))
}

/// A YAML key just before the value at `at` (`name: ` before `nginx`): its text and start.
fn key_before(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let mut end = at;
    while end > 0 && matches!(buf[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    end = end.checked_sub(1).filter(|&i| buf[i] == b':')?;
    if let Some(&quote @ (b'"' | b'\'')) = end.checked_sub(1).map(|i| &buf[i]) {
        let open = memchr::memrchr(quote, &buf[..end - 1])?;
        return Some((&buf[open + 1..end - 1], open));
    }
    let start = buf[..end]
        .iter()
        .rposition(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'{' | b','))
        .map_or(0, |i| i + 1);
    Some((&buf[start..end], start))
}

/// The edit that adds `newName: NAME` to the Kustomize entry whose `name:` key starts at
/// `key_start`: a line after the `name:` line, indented like its key; in a flow mapping
/// (`{name: x, newTag: 1}`), an entry after its value.
fn new_name(buf: &[u8], name: &crate::scan::Part, key_start: usize, to: &str) -> Edit {
    let line_start = memchr::memrchr(b'\n', &buf[..key_start]).map_or(0, |i| i + 1);
    let indent = &buf[line_start..key_start];
    let rendered = crate::scan::Style::Plain.render(to);
    if !indent.iter().all(|&b| matches!(b, b' ' | b'-')) {
        return Edit {
            range: name.span.end..name.span.end,
            replacement: format!(", newName: {rendered}").into_bytes(),
        };
    }
    let rest = &buf[name.span.end..];
    let mut at = name.span.end + memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let crlf = at > 0 && buf[at - 1] == b'\r';
    if crlf {
        at -= 1;
    }
    let newline = if crlf { "\r\n" } else { "\n" };
    Edit {
        range: at..at,
        replacement: format!("{newline}{}newName: {rendered}", " ".repeat(indent.len()))
            .into_bytes(),
    }
}

impl Job<'_> {
    /// Runs the update; a dry run prints its diff to `out`.
    pub fn run(&self, out: &mut dyn Write) -> Result<Summary, UpdateError> {
        let (scanner, scope, rules) = (self.scanner, self.scope, self.rules);
        let inventory = Inventory::take_in(self.roots, scanner, scope, self.base);
        if !inventory.errors.is_empty() {
            for err in &inventory.errors {
                self.reporter.report(Event::Error(err.to_string()));
            }
            return Err(UpdateError::Unreadable(inventory.errors));
        }
        let found = inventory.distinct_references();
        self.reporter.report(Event::Found { references: found });

        // The distinct targets of each group, groups in the order first met.
        // With `--bump`, a reference's policy also depends on the marker on its line;
        // `cru: ignore` leaves it alone. A split reference under `split-digest: none` is
        // not pinned: as `pin: none` for it only.
        let group_of = |r: &Reference, file: &Path, marker: Option<Marker>, split: bool| {
            let policy = scope.policy(r, file);
            let pin = policy.pin_for(split);
            let bump = match rules.bump_level() {
                Some(_) if marker == Some(Marker::Ignore) => return None,
                Some(default) => Some(bump::spec(&policy.bump, marker, default)),
                None => None,
            };
            Some(Group {
                pin,
                platform: policy.platform,
                bump,
            })
        };
        let mut groups: Vec<(Group, BTreeSet<Reference>)> = Vec::new();
        for file in &inventory.files {
            for located in &file.refs {
                let r = &located.occurrence.reference;
                let Some(target) = rules.target(r) else {
                    continue;
                };
                let split = matches!(located.occurrence.site, Site::Split(_));
                let Some(group) = group_of(r, &file.path, located.marker, split) else {
                    continue;
                };
                match groups.iter_mut().find(|(g, _)| *g == group) {
                    Some((_, targets)) => {
                        targets.insert(target);
                    }
                    None => groups.push((group, BTreeSet::from([target]))),
                }
            }
        }
        let mut resolved: HashMap<(Group, Reference), Reference> = HashMap::new();
        for (group, targets) in groups {
            let targets: Vec<Reference> = targets.into_iter().collect();
            let each = self
                .resolver
                .resolve(&targets, &group, self.reporter)
                .map_err(UpdateError::Resolve)?;
            resolved.extend(
                targets
                    .into_iter()
                    .zip(each)
                    .map(|(t, r)| ((group.clone(), t), r)),
            );
        }

        let mut summary = Summary {
            found,
            ..Summary::default()
        };
        let mut pending = files::Batch::new(self.confine)?;
        for file in &inventory.files {
            // What the `i`th occurrence of the file, `r`, becomes (its line's marker counts).
            let becomes_at = |i: usize, r: &Reference| {
                let target = rules.target(r)?;
                let located = file.refs.get(i);
                let marker = located.and_then(|l| l.marker);
                let split = located.is_some_and(|l| matches!(l.occurrence.site, Site::Split(_)));
                resolved
                    .get(&(group_of(r, &file.path, marker, split)?, target))
                    .filter(|t| *t != r)
                    .cloned()
            };
            if !file
                .refs
                .iter()
                .enumerate()
                .any(|(i, r)| becomes_at(i, &r.occurrence.reference).is_some())
            {
                continue;
            }
            // `plan_file` asks once per occurrence, in order: count them.
            let next = std::cell::Cell::new(0);
            let renamed: std::cell::RefCell<Option<String>> = Default::default();
            let becomes = |r: &Reference| {
                let i = next.get();
                next.set(i + 1);
                let to = becomes_at(i, r)?;
                if to.name() != r.name() && !self.resolver.renames() {
                    renamed
                        .borrow_mut()
                        .get_or_insert_with(|| format!("{}{}", r.name(), to.suffix()));
                }
                Some(to)
            };
            let path = file.shown.clone();
            let (buf, stamp) =
                files::read_for_update(&file.path).map_err(|source| UpdateError::Write {
                    path: path.clone(),
                    source,
                })?;
            let now = scope.filter(&file.path, scan_path(scanner, &file.path, &buf));
            let before: Vec<_> = file.refs.iter().map(|r| &r.occurrence).collect();
            if now.iter().ne(before.iter().copied()) {
                return Err(UpdateError::Changed { path });
            }
            let split_digest =
                |r: &Reference| scope.policy(r, &file.path).split_digest.unwrap_or_default();
            let plan = plan_file_placing(&buf, &now, &becomes, &split_digest);
            let plan = match renamed.into_inner() {
                Some(written) => Err(NotItself { written }),
                None => plan,
            }
            .map_err(|e| UpdateError::Invalid {
                path: path.clone(),
                reference: e.written,
            })?;
            for (r, why) in &plan.fixed {
                self.reporter
                    .report(Event::Warning(format!("{path}: {r} left alone: {why}")));
            }
            for r in &plan.unpinned {
                self.reporter.report(Event::Warning(format!(
                    "{path}: {r} renamed without its digest: there is no place for one"
                )));
            }
            if plan.edits.is_empty() {
                continue;
            }
            if self.resolver.renames() {
                // New names go into values of many kinds: the file must read back with each.
                let new = rewrite::apply(&buf, &plan.edits);
                let after = scope.filter(&file.path, scan_path(scanner, &file.path, &new));
                if let Some((_, to)) = plan
                    .changes
                    .iter()
                    .find(|(_, to)| !after.iter().any(|o| o.reference == *to))
                {
                    return Err(UpdateError::Invalid {
                        path,
                        reference: to.to_string(),
                    });
                }
            }
            let edits = plan.edits;
            let changes: Vec<Change> = plan
                .changes
                .into_iter()
                .map(|(from, to)| {
                    self.reporter.report(Event::Updating {
                        from: from.clone(),
                        to: to.clone(),
                        file: path.clone(),
                    });
                    Change {
                        path: path.clone(),
                        from,
                        to,
                    }
                })
                .collect();
            if self.dry_run {
                let diff =
                    rewrite::unified_diff(&format!("a/{path}"), &format!("b/{path}"), &buf, &edits);
                out.write_all(&diff).map_err(UpdateError::Output)?;
            } else {
                let new = rewrite::apply(&buf, &edits);
                pending.add(&path, &file.path, stamp, &new)?;
            }
            summary.files.push(path);
            summary.paths.push(file.path.clone());
            summary.changes.extend(changes);
        }
        // Every new content is on disk next to its file; only renames are left.
        pending.commit()?;
        if self.dry_run {
            out.flush().map_err(UpdateError::Output)?;
        }
        self.reporter.report(Event::Updated {
            files: summary.files.len(),
            dry_run: self.dry_run,
        });
        Ok(summary)
    }
}

/// Whether the bytes an edit leaves in the file, the name as found followed by the new
/// suffix, parse as a reference and as exactly `intended`: the last check before any write.
fn reads_back_as(name: &[u8], suffix: &[u8], intended: &Reference) -> bool {
    let written = [name, suffix].concat();
    std::str::from_utf8(&written)
        .ok()
        .and_then(|text| Reference::parse(text).ok())
        .is_some_and(|parsed| parsed == *intended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Selection;
    use crate::scan::ScanOptions;
    use std::fs;

    /// A resolver for faults no real registry produces on cue: it fails after seeing targets.
    struct Failing;

    impl Resolve for Failing {
        fn resolve(
            &self,
            targets: &[Reference],
            _: &Group,
            _: &dyn Reporter,
        ) -> Result<Vec<Reference>, ResolveError> {
            assert!(!targets.is_empty());
            Err("registry unreachable".into())
        }
    }

    /// Pins every target to a fixed digest, as a registry lookup would.
    struct Pin;

    impl Resolve for Pin {
        fn resolve(
            &self,
            targets: &[Reference],
            _: &Group,
            _: &dyn Reporter,
        ) -> Result<Vec<Reference>, ResolveError> {
            let digest = format!("sha256:{}", "ab".repeat(32));
            Ok(targets
                .iter()
                .map(|t| t.with(t.tag(), Some(&digest)))
                .collect())
        }
    }

    /// A registry side that lets a hostile tag through, or answers with another name.
    struct Hostile(&'static str);

    impl Resolve for Hostile {
        fn resolve(
            &self,
            targets: &[Reference],
            _: &Group,
            _: &dyn Reporter,
        ) -> Result<Vec<Reference>, ResolveError> {
            Ok(targets
                .iter()
                .map(|t| match self.0 {
                    "rename" => Reference::parse("gcr.io/other/name:2").unwrap(),
                    tag => t.with(Some(tag), None),
                })
                .collect())
        }
    }

    fn options() -> UpdateOptions {
        UpdateOptions {
            rules: Rules::new(Selection::All, true).unwrap(),
            dry_run: false,
            scope: Scope::default(),
            confine: None,
        }
    }

    /// `plan_file` over `text` with every reference becoming `name:to`, applied.
    fn planned(text: &[u8], to: &str) -> (Vec<u8>, Vec<(String, String)>) {
        let occurrences = Scanner::new(ScanOptions::default()).scan(text);
        let becomes = |r: &Reference| {
            let (tag, digest) = match to.split_once('@') {
                Some((t, d)) => (Some(t).filter(|t| !t.is_empty()), Some(d)),
                None => (Some(to), None),
            };
            Some(r.with(tag, digest)).filter(|t| t != r)
        };
        let plan = plan_file(text, &occurrences, &becomes).unwrap();
        let changes = plan
            .changes
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        (rewrite::apply(text, &plan.edits), changes)
    }

    #[test]
    fn plan_file_grows_and_shrinks_suffixes_keeping_every_other_byte() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let (out, _) = planned(b"image: nginx:1\n", &format!("1@{digest}"));
        assert_eq!(out, format!("image: nginx:1@{digest}\n").into_bytes());
        let (out, _) = planned(format!("image: nginx:1@{digest}\n").as_bytes(), "2");
        assert_eq!(out, b"image: nginx:2\n");
    }

    #[test]
    fn plan_file_at_the_edges_several_in_a_line_crlf_and_non_utf8() {
        let (out, changes) = planned(b"gcr.io/a/b:1", "2");
        assert_eq!(out, b"gcr.io/a/b:2", "start and end, no final newline");
        assert_eq!(changes, [("gcr.io/a/b:1".into(), "gcr.io/a/b:2".into())]);
        let (out, changes) = planned(b"x: gcr.io/a/b:1 gcr.io/a/c:1 gcr.io/a/b:1\n", "22");
        assert_eq!(out, b"x: gcr.io/a/b:22 gcr.io/a/c:22 gcr.io/a/b:22\n");
        assert_eq!(changes.len(), 2, "one change per distinct reference");
        let (out, _) = planned(b"\xff\xfe gcr.io/a/b:1 \xc3\r\n", "3");
        assert_eq!(out, b"\xff\xfe gcr.io/a/b:3 \xc3\r\n");
    }

    /// `plan_file` over the file `name` holding `text`, every reference becoming its mirror
    /// copy `r.io/m/<repository path>:tag@sha256:cd…`, applied; and what was left alone.
    fn mirrored(name: &str, text: &str) -> (String, Vec<String>) {
        let scanner = Scanner::new(ScanOptions::default());
        let occurrences = scanner.scan_file(Some(Path::new(name)), text.as_bytes(), &mut || None);
        let digest = format!("sha256:{}", "cd".repeat(32));
        let becomes = |r: &Reference| {
            let name = format!("r.io/m/{}", r.repository());
            let d = r.digest().unwrap_or(&digest);
            Some(Reference::parse(&name).unwrap().with(r.tag(), Some(d)))
        };
        let plan = plan_file(text.as_bytes(), &occurrences, &becomes).unwrap();
        let left = plan
            .fixed
            .iter()
            .map(|(r, why)| format!("{r}: {why}"))
            .chain(plan.unpinned.iter().map(|r| format!("{r}: unpinned")))
            .collect();
        let out = rewrite::apply(text.as_bytes(), &plan.edits);
        (String::from_utf8(out).unwrap(), left)
    }

    const D: &str = "sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

    #[test]
    fn a_new_name_replaces_the_whole_inline_reference_keeping_the_tag_as_written() {
        let (out, left) = mirrored(
            "deploy.yaml",
            "image: python:3.7 # app\r\n- docker://gcr.io/p/app:V1\r\nimage: nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
        );
        assert_eq!(
            out,
            format!(
                "image: r.io/m/library/python:3.7@{D} # app\r\n- docker://r.io/m/p/app:V1@{D}\r\nimage: r.io/m/library/nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n"
            )
        );
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_renamed_helm_map_gets_its_registry_and_repository_values() {
        let text = "image:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag: \"1.25\"\nsidecar:\n  repository: 'busybox'\n  tag: 1.36\n  digest: \"\"\n";
        let (out, left) = mirrored("values.yaml", text);
        assert_eq!(
            out,
            format!(
                "image:\n  registry: r.io\n  repository: m/bitnami/nginx\n  tag: \"1.25@{D}\"\nsidecar:\n  repository: 'r.io/m/library/busybox'\n  tag: 1.36\n  digest: \"{D}\"\n"
            )
        );
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_renamed_kustomize_entry_gets_a_new_name_and_its_name_stays() {
        let text = "images:\r\n  - name: nginx\r\n    newTag: \"1.25\"\r\n  - name: app\r\n    newName: gcr.io/p/app\r\n    newTag: v2\r\n  - {name: redis, newTag: \"7\"}\r\n";
        let (out, left) = mirrored("kustomization.yaml", text);
        assert_eq!(
            out,
            format!(
                "images:\r\n  - name: nginx\r\n    newName: r.io/m/library/nginx\r\n    newTag: \"1.25\"\r\n    digest: {D}\r\n  - name: app\r\n    newName: r.io/m/p/app\r\n    newTag: v2\r\n    digest: {D}\r\n  - {{name: redis, newName: r.io/m/library/redis, newTag: \"7\"}}\r\n"
            )
        );
        assert_eq!(
            left,
            ["redis:7: unpinned"],
            "a flow entry has no place for a digest"
        );
    }

    #[test]
    fn a_new_name_line_follows_a_quoted_name_key_at_the_end_of_the_file() {
        let text = "images:\n- \"name\": 'nginx'\n  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n- name: redis\n  newTag: '7'";
        let (out, left) = mirrored("kustomization.yaml", text);
        assert_eq!(
            out,
            format!("images:\n- \"name\": 'nginx'\n  newName: r.io/m/library/nginx\n  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n- name: redis\n  newName: r.io/m/library/redis\n  newTag: '7'\n  digest: {D}")
        );
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn dockerfile_and_compose_defaults_are_renamed_where_the_name_is_a_value() {
        let text = "ARG BASE=python:3.12\nARG V=20\nFROM ${BASE}\nFROM node:${V}\n";
        let (out, left) = mirrored("Dockerfile", text);
        assert_eq!(
            out,
            format!("ARG BASE=r.io/m/library/python:3.12@{D}\nARG V=20\nFROM ${{BASE}}\nFROM node:${{V}}\n")
        );
        assert_eq!(
            left,
            ["node:20: the name stands before a variable tag, which may name a tag the mirror does not hold"]
        );
        let text = "services:\n  a:\n    image: ${IMAGE:-org/app}:${TAG:-1.2}\n  b:\n    image: org/b:${TAG:-3}\n";
        let (out, left) = mirrored("compose.yaml", text);
        assert_eq!(
            out,
            "services:\n  a:\n    image: ${IMAGE:-r.io/m/org/app}:${TAG:-1.2}\n  b:\n    image: org/b:${TAG:-3}\n"
        );
        assert_eq!(
            left,
            [
                "org/b:3: the name stands before a variable tag, which may name a tag the mirror does not hold",
                "org/app:1.2: unpinned"
            ]
        );
    }

    /// `plan_file_placing` over `text` read as the file `name`, every reference becoming `to`,
    /// digests placed as `placing` says: the text after, and the changes reported.
    fn placed(name: &str, text: &str, to: &str, placing: SplitDigest) -> (String, usize) {
        let occurrences = Scanner::new(ScanOptions::default()).scan_file(
            Some(Path::new(name)),
            text.as_bytes(),
            &mut || None,
        );
        let to = Reference::parse(to).unwrap();
        let becomes = |r: &Reference| Some(to.clone()).filter(|t| t != r);
        let plan =
            plan_file_placing(text.as_bytes(), &occurrences, &becomes, &|_| placing).unwrap();
        let after = rewrite::apply(text.as_bytes(), &plan.edits);
        (String::from_utf8(after).unwrap(), plan.changes.len())
    }

    #[test]
    fn split_digest_puts_a_split_references_digest_in_its_key_its_tag_or_nowhere() {
        use SplitDigest::{DigestKey, None as Nowhere, Tag};
        let (d1, d2) = (
            format!("sha256:{}", "ab".repeat(32)),
            format!("sha256:{}", "cd".repeat(32)),
        );
        let to = format!("a/b:2@{d2}");
        let map = "image:\n  repository: a/b\n  tag: '1'\n  digest: \"\"\n";
        let with = |tag: &str, digest: &str| {
            format!("image:\n  repository: a/b\n  tag: {tag}\n  digest: {digest}\n")
        };
        let v = "values.yaml";
        assert_eq!(
            placed(v, map, &to, DigestKey).0,
            with("'2'", &format!("\"{d2}\""))
        );
        assert_eq!(
            placed(v, map, &to, Tag).0,
            with(&format!("'2@{d2}'"), "\"\"")
        );
        assert_eq!(placed(v, map, &to, Nowhere).0, with("'2'", "\"\""));
        // Only the digest would change: under `none`, nothing is planned or reported.
        assert_eq!(
            placed(v, map, &format!("a/b:1@{d2}"), Nowhere),
            (map.to_owned(), 0)
        );
        // The old digest in its key: `tag` empties the key; `none` keeps the pin in its place.
        let pinned = with("'1'", &d1);
        assert_eq!(
            placed(v, &pinned, &to, Tag).0,
            with(&format!("'2@{d2}'"), "\"\"")
        );
        assert_eq!(placed(v, &pinned, &to, Nowhere).0, with("'2'", &d2));
        assert_eq!(placed(v, &pinned, &to, DigestKey).0, with("'2'", &d2));
        // No digest key: `tag` and the default both write into the tag.
        let bare = "image:\n  repository: a/b\n  tag: '1'\n";
        let into_tag = format!("image:\n  repository: a/b\n  tag: '2@{d2}'\n");
        assert_eq!(placed(v, bare, &to, Tag).0, into_tag);
        assert_eq!(placed(v, bare, &to, DigestKey).0, into_tag);
        // Kustomize: `tag` writes into `newTag` instead of adding a `digest:` line.
        let k = "kustomization.yaml";
        let entry = "images:\n- name: a/b\n  newTag: \"1\"\n";
        assert_eq!(
            placed(k, entry, &to, Tag).0,
            format!("images:\n- name: a/b\n  newTag: \"2@{d2}\"\n")
        );
        assert_eq!(
            placed(k, entry, &to, DigestKey).0,
            format!("images:\n- name: a/b\n  newTag: \"2\"\n  digest: {d2}\n")
        );
        assert_eq!(
            placed(k, entry, &to, Nowhere).0,
            "images:\n- name: a/b\n  newTag: \"2\"\n"
        );
        // A Dockerfile `ARG` takes no digest, in its tag or elsewhere: left alone.
        let dockerfile = "ARG V=1\nFROM a/b:${V}\n";
        assert_eq!(
            placed("Dockerfile", dockerfile, &to, Tag),
            (dockerfile.to_owned(), 0)
        );
        // A reference in one piece is not a split one: placing does not apply.
        let inline = "image: a/b:1\n";
        assert_eq!(placed(v, inline, &to, Nowhere).0, format!("image: {to}\n"));
    }

    #[test]
    fn plan_file_plans_nothing_for_references_that_stay() {
        let text = b"image: gcr.io/a/b:1\n";
        let occurrences = Scanner::new(ScanOptions::default()).scan(text);
        let plan = plan_file(text, &occurrences, &|_| None).unwrap();
        assert_eq!(plan, FilePlan::default());
    }

    #[test]
    fn plan_file_refuses_a_suffix_that_does_not_read_back() {
        let text = b"image: gcr.io/a/b:1\n";
        let occurrences = Scanner::new(ScanOptions::default()).scan(text);
        let first = occurrences[0].reference.clone();
        let hostile = move |_: &Reference| Some(first.with(Some("2 x"), None));
        let err = plan_file(text, &occurrences, &hostile).unwrap_err();
        assert_eq!(err.written, "gcr.io/a/b:2 x");
    }

    #[test]
    fn a_failing_resolver_leaves_every_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), "image: nginx:1.25\n").unwrap();
        fs::write(dir.path().join("b.yaml"), "image: gcr.io/a/b:1\n").unwrap();
        let scanner = Scanner::new(ScanOptions::default());
        let mut out = Vec::new();
        let roots = [dir.path().to_path_buf()];
        let err = run(&roots, &scanner, &options(), &Failing, &mut out).unwrap_err();
        assert!(matches!(err, UpdateError::Resolve(_)));
        assert_eq!(
            fs::read_to_string(dir.path().join("a.yaml")).unwrap(),
            "image: nginx:1.25\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("b.yaml")).unwrap(),
            "image: gcr.io/a/b:1\n"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary files left"
        );
    }

    /// Issue 10 item 4: a PATH folder replaced by a symlink to a host folder made `cru serve`
    /// and `update --repository` rewrite files there.
    #[cfg(unix)]
    #[test]
    fn a_confined_update_writes_nothing_when_a_file_leads_out_of_the_root() {
        let host = tempfile::tempdir().unwrap();
        fs::write(host.path().join("host.yaml"), "image: nginx:1.25\n").unwrap();
        let clone = tempfile::tempdir().unwrap();
        fs::write(clone.path().join("a.yaml"), "image: nginx:1.25\n").unwrap();
        std::os::unix::fs::symlink(host.path(), clone.path().join("deploy")).unwrap();
        let scanner = Scanner::new(ScanOptions::default());
        let roots = [clone.path().to_path_buf(), clone.path().join("deploy")];
        let options = UpdateOptions {
            confine: Some(clone.path().to_path_buf()),
            ..options()
        };
        let err = run(&roots, &scanner, &options, &Pin, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("host.yaml: leads to"), "{err}");
        assert_eq!(
            fs::read_to_string(host.path().join("host.yaml")).unwrap(),
            "image: nginx:1.25\n"
        );
        assert_eq!(
            fs::read_to_string(clone.path().join("a.yaml")).unwrap(),
            "image: nginx:1.25\n"
        );
        assert_eq!(fs::read_dir(host.path()).unwrap().count(), 1);
    }

    #[test]
    fn resolved_targets_are_written_with_the_files_spelling() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("a.yaml"),
            "image: index.docker.io/library/nginx:1.25\n",
        )
        .unwrap();
        let scanner = Scanner::new(ScanOptions::default());
        let roots = [dir.path().to_path_buf()];
        let summary = run(&roots, &scanner, &options(), &Pin, &mut Vec::new()).unwrap();
        assert_eq!(summary.changes.len(), 1);
        assert_eq!(
            fs::read_to_string(dir.path().join("a.yaml")).unwrap(),
            format!(
                "image: index.docker.io/library/nginx:1.25@sha256:{}\n",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn a_hostile_tag_or_another_name_never_reaches_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        fs::write(&a, "image: gcr.io/a/b:1\n").unwrap();
        fs::write(&b, "image: nginx:1.25\n").unwrap();
        let scanner = Scanner::new(ScanOptions::default());
        let roots = [dir.path().to_path_buf()];
        for (resolver, written) in [
            (
                Hostile("2\nimage: evil/x:3"),
                "gcr.io/a/b:2\nimage: evil/x:3",
            ),
            (Hostile("2 x"), "gcr.io/a/b:2 x"),
            (Hostile("rename"), "gcr.io/a/b:2"),
        ] {
            for dry_run in [false, true] {
                let options = UpdateOptions {
                    dry_run,
                    ..options()
                };
                let mut out = Vec::new();
                let err = run(&roots, &scanner, &options, &resolver, &mut out).unwrap_err();
                let UpdateError::Invalid { path, reference } = &err else {
                    panic!("{err}");
                };
                assert!(path.ends_with("a.yaml"), "{path}");
                assert_eq!(reference, written);
                let message = err.to_string();
                assert!(!message.contains('\n'), "escaped: {message}");
                assert!(message.contains("no file was updated"), "{message}");
                assert!(out.is_empty(), "no diff is printed");
                assert_eq!(fs::read_to_string(&a).unwrap(), "image: gcr.io/a/b:1\n");
                assert_eq!(fs::read_to_string(&b).unwrap(), "image: nginx:1.25\n");
                assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
            }
        }
    }

    #[test]
    fn one_change_is_reported_per_distinct_reference_in_order() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("a.yaml"),
            "- gcr.io/a/b:1\n- gcr.io/a/c:1\n- gcr.io/a/b:1\n- gcr.io/a/c:1\n",
        )
        .unwrap();
        let scanner = Scanner::new(ScanOptions::default());
        let roots = [dir.path().to_path_buf()];
        let summary = run(&roots, &scanner, &options(), &Pin, &mut Vec::new()).unwrap();
        let from: Vec<String> = summary.changes.iter().map(|c| c.from.to_string()).collect();
        assert_eq!(from, ["gcr.io/a/b:1", "gcr.io/a/c:1"]);
    }

    #[test]
    fn a_job_reports_its_progress_to_the_reporter_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), "image: gcr.io/a/b:1\n").unwrap();
        let scanner = Scanner::new(ScanOptions::default());
        let roots = [dir.path().to_path_buf()];
        let rules = Rules::new(Selection::All, false).unwrap();
        let reporter = crate::report::Collect::default();
        let job = Job {
            roots: &roots,
            base: Some(dir.path()),
            scanner: &scanner,
            rules: &rules,
            scope: &Scope::default(),
            confine: None,
            resolver: &Offline,
            dry_run: true,
            reporter: &reporter,
        };
        let summary = job.run(&mut Vec::new()).unwrap();
        assert_eq!(summary.files, ["a.yaml"], "shown relative to the base");
        assert_eq!(
            reporter.events(),
            [
                Event::Found { references: 1 },
                Event::Updating {
                    from: Reference::parse("gcr.io/a/b:1").unwrap(),
                    to: Reference::parse("gcr.io/a/b:latest").unwrap(),
                    file: "a.yaml".into(),
                },
                Event::Updated {
                    files: 1,
                    dry_run: true
                },
            ]
        );
    }

    #[test]
    fn a_write_error_names_the_file_and_its_cause_once() {
        let err = UpdateError::Write {
            path: "f.yaml".into(),
            source: std::io::Error::from_raw_os_error(1),
        };
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(shown.matches("os error 1").count(), 1, "{shown}");
        assert!(shown.starts_with("f.yaml: "), "{shown}");
        let err = UpdateError::Output(std::io::Error::from_raw_os_error(28));
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(shown.matches("os error 28").count(), 1, "{shown}");
    }
}
