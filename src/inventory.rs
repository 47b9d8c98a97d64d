//! Taking stock of a tree: every file walked, read and scanned, in parallel.
//!
//! The result holds where each reference stands (byte span, line, column) but not the file
//! contents, so that memory stays small on large trees; an update reads the few files it
//! changes again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::files;
use crate::scan::{Occurrence, Scanner};
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
}

/// The references of one file.
#[derive(Debug, Clone)]
pub struct FoundFile {
    /// The file's path, as walked.
    pub path: PathBuf,
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

impl Inventory {
    /// Walks `roots` and scans every text file (and every file named explicitly).
    pub fn take(roots: &[PathBuf], scanner: &Scanner) -> Inventory {
        let found = Mutex::new(Vec::new());
        let read_errors = Mutex::new(Vec::new());
        let mut errors = walk::for_each_file(roots, |entry| {
            match files::read_text(entry.path, !entry.explicit) {
                Ok(Some(buf)) => {
                    let refs = locate(&buf, scanner.scan(&buf));
                    if !refs.is_empty() {
                        let file = FoundFile {
                            path: entry.path.to_path_buf(),
                            refs,
                        };
                        found.lock().expect("no panics").push(file);
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
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        let mut files = found.into_inner().expect("no panics");
        files.sort_by(|a, b| a.path.cmp(&b.path));
        // A file named twice (or inside a named folder too) is listed once.
        files.dedup_by(|a, b| a.path == b.path);
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

/// Adds line and column numbers to occurrences (ordered by position).
pub fn locate(buf: &[u8], occurrences: Vec<Occurrence>) -> Vec<Located> {
    let mut line = 1;
    let mut line_start = 0;
    let mut at = 0;
    occurrences
        .into_iter()
        .map(|occurrence| {
            let upto = &buf[at..occurrence.start];
            line += memchr::memchr_iter(b'\n', upto).count();
            if let Some(i) = memchr::memrchr(b'\n', upto) {
                line_start = at + i + 1;
            }
            at = occurrence.start;
            let column = occurrence.start - line_start + 1;
            Located {
                occurrence,
                line,
                column,
            }
        })
        .collect()
}

/// How a path is shown to the user: relative to the current folder when below it.
pub fn display_path(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(path);
    let shown = shown.strip_prefix(".").unwrap_or(shown);
    shown.to_string_lossy().into_owned()
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
}
