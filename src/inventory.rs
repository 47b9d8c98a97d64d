//! Taking stock of a tree: every file walked, read and scanned, in parallel.
//!
//! The result holds where each reference stands (byte span, line, column) but not the file
//! contents, so that memory stays small on large trees; an update reads the few files it
//! changes again. A file reached twice, under two roots or two spellings, is kept once.
//! Paths are shown escaped ([`escape_path`]), so that two files never print alike.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::bump::Marker;
use crate::config::{Config, ImagePolicy};
use crate::files;
use crate::reference::Reference;
use crate::scan::{Occurrence, Role, Scanner, Site};
use crate::walk::{self, FileError};

/// A reference found in a file, with its 1-based line and byte column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The reference and its span.
    pub occurrence: Occurrence,
    /// 1-based line number.
    pub line: usize,
    /// 1-based byte offset in the line.
    pub column: usize,
    /// Where each part of a split reference is (empty for one in one piece).
    pub parts: Vec<PartAt>,
    /// A `cru: bump=LEVEL` or `cru: ignore` marker after it on its line.
    pub marker: Option<Marker>,
}

/// Where one part of a split reference is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartAt {
    /// What the part holds.
    pub role: Role,
    /// 1-based line number.
    pub line: usize,
    /// 1-based byte offset in the line.
    pub column: usize,
}

/// The references of one file.
#[derive(Debug, Clone)]
pub struct FoundFile {
    /// The file's path, as walked.
    pub path: PathBuf,
    /// The file as shown to the user (see [`display_path_from`]).
    pub shown: String,
    /// Its references, in order.
    pub refs: Vec<Located>,
}

/// All references under some paths, files sorted by path.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Files with at least one reference, sorted by path.
    pub files: Vec<FoundFile>,
    /// Files and folders that could not be read.
    pub errors: Vec<FileError>,
}

/// What the configuration file says about which files and references count: `exclude:` for
/// the walk, `rules:` for each reference. The default scope has no configuration.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    config: Option<Arc<Config>>,
}

impl Scope {
    /// The scope of `config` (none: everything counts, no rules).
    pub fn new(config: Option<Arc<Config>>) -> Scope {
        Scope { config }
    }

    /// The configuration, if there is one.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_deref()
    }

    /// What the rules say about `reference` in `file` (as walked).
    pub fn policy(&self, reference: &Reference, file: &Path) -> ImagePolicy {
        self.config
            .as_ref()
            .map(|c| c.policy(reference, file))
            .unwrap_or_default()
    }

    /// Whether `reference` in `file` counts: not dropped by an `ignore: true` rule.
    pub fn keeps(&self, reference: &Reference, file: &Path) -> bool {
        self.config
            .as_ref()
            .is_none_or(|c| !c.policy(reference, file).ignore)
    }

    /// The occurrences of `file` that count.
    pub fn filter(&self, file: &Path, mut found: Vec<Occurrence>) -> Vec<Occurrence> {
        if self.config.as_ref().is_some_and(|c| !c.rules.is_empty()) {
            found.retain(|o| self.keeps(&o.reference, file));
        }
        found
    }

    /// The walk's exclusions, if the configuration has any.
    pub fn exclude(&self) -> Option<walk::Exclude> {
        let config = self.config.clone().filter(|c| c.exclude.is_some())?;
        Some(Arc::new(move |path: &Path, is_dir: bool| {
            config.excludes(path, is_dir)
        }))
    }
}

impl Inventory {
    /// Walks `roots` and scans every text file (and every file named explicitly).
    pub fn take(roots: &[PathBuf], scanner: &Scanner) -> Inventory {
        Inventory::take_in(roots, scanner, &Scope::default(), None)
    }

    /// Like [`Inventory::take`], within `scope`: excluded paths are not walked, ignored
    /// references are not kept. Files (and errors) are shown relative to `base` (a
    /// repository's working tree), else to the current folder.
    pub fn take_in(
        roots: &[PathBuf],
        scanner: &Scanner,
        scope: &Scope,
        base: Option<&Path>,
    ) -> Inventory {
        // Only several roots can reach one file twice (a walk does not follow symlinks).
        let overlap = roots.len() > 1;
        let found = Mutex::new(Vec::new());
        let read_errors = Mutex::new(Vec::new());
        let mut errors = walk::for_each_file_except(roots, scope.exclude(), |entry| {
            match files::read_text(entry.path, !entry.explicit) {
                Ok(Some(buf)) => {
                    let refs = locate(
                        &buf,
                        scope.filter(entry.path, scan_path(scanner, entry.path, &buf)),
                    );
                    if !refs.is_empty() {
                        let file = FoundFile {
                            path: entry.path.to_path_buf(),
                            shown: display_path_from(base, entry.path),
                            refs,
                        };
                        let identity = overlap.then(|| std::fs::canonicalize(entry.path).ok());
                        found
                            .lock()
                            .expect("no panics")
                            .push((identity.flatten(), file));
                    }
                }
                Ok(None) => {}
                Err(err) => read_errors.lock().expect("no panics").push(FileError {
                    path: entry.path.to_path_buf(),
                    message: err.to_string(),
                }),
            }
        });
        errors.extend(read_errors.into_inner().expect("no panics"));
        if let Some(base) = base {
            for e in &mut errors {
                if let Ok(rel) = e.path.strip_prefix(base) {
                    e.path = rel.to_path_buf();
                }
            }
        }
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        let found = found.into_inner().expect("no panics");
        let mut files = if overlap {
            first_spellings(roots, found)
        } else {
            found.into_iter().map(|(_, file)| file).collect()
        };
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Inventory { files, errors }
    }

    /// How many distinct references (as written) were found.
    pub fn distinct_references(&self) -> usize {
        let mut all: Vec<String> = self
            .files
            .iter()
            .flat_map(|f| f.refs.iter().map(|r| r.occurrence.reference.to_string()))
            .collect();
        all.sort_unstable();
        all.dedup();
        all.len()
    }
}

/// Keeps one entry per file (by canonical path, else as walked): the one found under the root
/// given first, so that the spelling shown is the first one on the command line.
fn first_spellings(roots: &[PathBuf], found: Vec<(Option<PathBuf>, FoundFile)>) -> Vec<FoundFile> {
    let mut rank: HashMap<&Path, usize> = HashMap::new();
    for (i, root) in roots.iter().enumerate() {
        rank.entry(root.as_path()).or_insert(i);
    }
    // A walked path starts with the root it was found under, as that root was spelled.
    let rank_of = |path: &Path| {
        path.ancestors()
            .filter_map(|a| rank.get(a).copied())
            .min()
            .unwrap_or(usize::MAX)
    };
    let mut keyed: Vec<(PathBuf, usize, FoundFile)> = found
        .into_iter()
        .map(|(identity, file)| {
            let key = identity.unwrap_or_else(|| file.path.clone());
            (key, rank_of(&file.path), file)
        })
        .collect();
    keyed.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    keyed.dedup_by(|later, earlier| later.0 == earlier.0);
    keyed.into_iter().map(|(_, _, file)| file).collect()
}

/// The references in `buf`, the contents of the file `path`; a values map's `tag: ""` reads
/// the `appVersion` of the nearest `Chart.yaml` above the file (never written).
pub fn scan_path(scanner: &Scanner, path: &Path, buf: &[u8]) -> Vec<Occurrence> {
    scanner.scan_file(Some(path), buf, &mut || chart_app_version(path))
}

/// Longer than any `Chart.yaml` worth reading for its `appVersion`.
const CHART_MAX: u64 = 1 << 20;

/// The `appVersion` of the nearest `Chart.yaml` in a folder above `path`.
fn chart_app_version(path: &Path) -> Option<String> {
    use std::io::Read;
    let chart = path
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("Chart.yaml"))
        .find(|chart| chart.is_file())?;
    let mut text = String::new();
    std::fs::File::open(&chart)
        .ok()?
        .take(CHART_MAX)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|line| {
        let value = line.strip_prefix("appVersion:")?;
        let value = value.split(" #").next()?.trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Adds line and column numbers to occurrences (ordered by position): a split reference is
/// located at its tag, and each of its parts at its own place.
pub fn locate(buf: &[u8], occurrences: Vec<Occurrence>) -> Vec<Located> {
    let mut lines = Lines {
        buf,
        at: 0,
        line: 1,
        line_start: 0,
        starts: None,
    };
    // The marker of the line last read: (the line's start, its end, its marker). Split
    // references may go back in the buffer, so a hit needs both bounds.
    let mut marked: Option<(usize, usize, Option<Marker>)> = None;
    occurrences
        .into_iter()
        .map(|occurrence| {
            let marker = match marked {
                Some((start, end, marker)) if start <= occurrence.end && occurrence.end <= end => {
                    marker
                }
                _ => {
                    let rest = &buf[occurrence.end..];
                    let end = occurrence.end + memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                    let start = memchr::memrchr(b'\n', &buf[..occurrence.end]).map_or(0, |i| i + 1);
                    let marker = Marker::find(&buf[occurrence.end..end]);
                    marked = Some((start, end, marker));
                    marker
                }
            };
            let (line, column) = lines.at(occurrence.anchor());
            let parts = match &occurrence.site {
                Site::Split(split) => split
                    .parts
                    .iter()
                    .map(|p| {
                        let (line, column) = lines.at(p.span.start);
                        PartAt {
                            role: p.role,
                            line,
                            column,
                        }
                    })
                    .collect(),
                Site::Inline { .. } => Vec::new(),
            };
            Located {
                occurrence,
                line,
                column,
                parts,
                marker,
            }
        })
        .collect()
}

/// Line and column of byte offsets, asked mostly in increasing order (a split reference's
/// tag or parts may lie after the next reference's start).
struct Lines<'a> {
    buf: &'a [u8],
    at: usize,
    line: usize,
    line_start: usize,
    starts: Option<Vec<usize>>,
}

impl Lines<'_> {
    fn at(&mut self, pos: usize) -> (usize, usize) {
        if pos < self.at {
            // Back: from the table of line starts, built once.
            let buf = self.buf;
            let starts = self.starts.get_or_insert_with(|| {
                std::iter::once(0)
                    .chain(memchr::memchr_iter(b'\n', buf).map(|i| i + 1))
                    .collect()
            });
            let line = starts.partition_point(|&s| s <= pos);
            return (line, pos - starts[line - 1] + 1);
        }
        let upto = &self.buf[self.at..pos];
        self.line += memchr::memchr_iter(b'\n', upto).count();
        if let Some(i) = memchr::memrchr(b'\n', upto) {
            self.line_start = self.at + i + 1;
        }
        self.at = pos;
        (self.line, pos - self.line_start + 1)
    }
}

/// How a path is shown to the user: relative to the current folder when below it.
pub fn display_path(path: &Path) -> String {
    display_path_from(None, path)
}

/// How a path is shown: relative to `base` when below it (a repository's working tree, so that
/// a clone's files read as the repository's), else to the current folder.
pub fn display_path_from(base: Option<&Path>, path: &Path) -> String {
    let base = base
        .map(Path::to_path_buf)
        .or_else(|| std::env::current_dir().ok());
    let shown = base
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(path);
    let shown = shown.strip_prefix(".").unwrap_or(shown);
    escape_path(shown)
}

/// A path as text that tells every path apart: each byte that is not valid UTF-8, and each
/// control character, as `\xNN`; a backslash as `\\`; everything else as it is.
pub fn escape_path(path: &Path) -> String {
    #[cfg(unix)]
    return escape_bytes(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()));
    // Elsewhere `\` is the separator and names are UTF-16: shown as they are.
    #[cfg(not(unix))]
    return path.to_string_lossy().into_owned();
}

#[cfg(unix)]
fn escape_bytes(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u8);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::ScanOptions;

    #[test]
    fn lines_and_columns_are_one_based() {
        let buf = b"a/b:1\r\n\n  image: c:2 d/e:3\n";
        let scanner = Scanner::new(ScanOptions::default());
        let located = locate(buf, scanner.scan(buf));
        let at: Vec<_> = located.iter().map(|l| (l.line, l.column)).collect();
        assert_eq!(at, [(1, 1), (3, 10), (3, 14)]);
    }

    #[test]
    fn display_path_strips_dot_slash() {
        assert_eq!(display_path(Path::new("./a/b.yaml")), "a/b.yaml");
        assert_eq!(display_path(Path::new("a/b.yaml")), "a/b.yaml");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(display_path(&cwd.join("x/y")), "x/y");
        assert_eq!(display_path(Path::new("/elsewhere/f")), "/elsewhere/f");
    }

    #[cfg(unix)]
    #[test]
    fn escaped_paths_never_print_alike() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let shown = |bytes: &[u8]| escape_path(Path::new(OsStr::from_bytes(bytes)));
        assert_eq!(shown(b"dir/caf\xc3\xa9.yaml"), "dir/caf\u{e9}.yaml");
        assert_eq!(shown(b"a\xff.yaml"), "a\\xff.yaml");
        assert_eq!(shown(b"a\\xff.yaml"), "a\\\\xff.yaml");
        assert_eq!(shown(b"a\xc3.yaml"), "a\\xc3.yaml", "a cut sequence");
        assert_eq!(shown(b"new\nline\x1b[31m"), "new\\x0aline\\x1b[31m");
        assert_eq!(shown("bidi\u{85}".as_bytes()), "bidi\\u{85}");
        assert_eq!(
            display_path(Path::new(OsStr::from_bytes(b"./x\xfe"))),
            "x\\xfe"
        );
    }
}
