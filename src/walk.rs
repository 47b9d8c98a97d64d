//! Walking the trees to scan, in parallel, as ripgrep does.
//!
//! `.gitignore` (inside a git checkout), `.ignore`, `.cruignore` and git's global excludes are honoured, the
//! `.git` folder is skipped, but hidden files and folders are visited: `.github/workflows` and
//! `.gitlab-ci.yml` are where many references live. Symlinks met while walking are not
//! followed; paths named explicitly are always visited, whatever the ignore files say.
//! A path named twice (`a.yaml ./a.yaml dir/../a.yaml`, or a symlink and its target) is
//! walked once, under its first spelling. FIFOs, devices and sockets are never opened: met
//! while walking they are skipped, named explicitly they are an error.
//! The configuration's `exclude:` comes in as a predicate ([`Exclude`]), applied like an
//! ignore file. This module only finds files; reading and scanning them is the caller's.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::{WalkBuilder, WalkState};

/// A path that could not be walked or read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", crate::inventory::escape_path(path))]
pub struct FileError {
    /// Where it happened.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// A file to scan.
#[derive(Debug, Clone, Copy)]
pub struct FileEntry<'a> {
    /// Its path, as given or joined below a given folder.
    pub path: &'a Path,
    /// Named on the command line (as opposed to found inside a named folder).
    pub explicit: bool,
}

/// A file of gitignore patterns for what cru must leave alone, in any folder of the tree.
pub const CRU_IGNORE: &str = ".cruignore";

/// Folders that are the internals of a version control system, never worth scanning.
const VCS_DIRS: [&str; 3] = [".git", ".hg", ".svn"];

/// A predicate over walked paths (`path`, `is_dir`) that leaves them out, as the
/// configuration's `exclude:` does; paths named explicitly are never left out.
pub type Exclude = Arc<dyn Fn(&Path, bool) -> bool + Send + Sync>;

/// Calls `visit` for every file under `roots`, from several threads; returns what failed.
pub fn for_each_file<F>(roots: &[PathBuf], visit: F) -> Vec<FileError>
where
    F: Fn(FileEntry<'_>) + Sync,
{
    for_each_file_except(roots, None, visit)
}

/// Like [`for_each_file`], leaving out what `exclude` says (folders are not entered).
pub fn for_each_file_except<F>(
    roots: &[PathBuf],
    exclude: Option<Exclude>,
    visit: F,
) -> Vec<FileError>
where
    F: Fn(FileEntry<'_>) + Sync,
{
    let roots = distinct(roots);
    let Some((first, rest)) = roots.split_first() else {
        return Vec::new();
    };
    let mut builder = WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    builder
        .add_custom_ignore_filename(CRU_IGNORE)
        .hidden(false)
        .follow_links(false)
        .filter_entry(move |e| {
            e.depth() == 0
                || !(VCS_DIRS.iter().any(|d| e.file_name() == *d)
                    || crate::files::skip_own_temp(e.path())
                    || exclude.as_ref().is_some_and(|excluded| {
                        excluded(e.path(), e.file_type().is_some_and(|t| t.is_dir()))
                    }))
        });
    let errors = std::sync::Mutex::new(Vec::new());
    builder.build_parallel().run(|| {
        let visit = &visit;
        let errors = &errors;
        Box::new(move |entry| {
            match entry {
                Ok(entry) => {
                    let explicit = entry.depth() == 0;
                    let is_file = if explicit {
                        // A named symlink counts as the file it points to.
                        match named_kind(entry.path()) {
                            Ok(is_file) => is_file,
                            Err(message) => {
                                errors.lock().expect("no panics").push(FileError {
                                    path: entry.path().to_path_buf(),
                                    message,
                                });
                                false
                            }
                        }
                    } else {
                        // The type from the folder listing: nothing is opened to learn it.
                        entry.file_type().is_some_and(|t| t.is_file())
                    };
                    if is_file {
                        visit(FileEntry {
                            path: entry.path(),
                            explicit,
                        });
                    }
                }
                Err(err) => errors.lock().expect("no panics").push(walk_error(err)),
            }
            WalkState::Continue
        })
    });
    errors.into_inner().expect("no panics")
}

/// The roots without repeats: two spellings of one path (or a symlink and its target) are one
/// root, under the spelling given first.
fn distinct(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    roots
        .iter()
        .filter(|root| seen.insert(fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())))
        .cloned()
        .collect()
}

/// Whether a path named explicitly is a file to read (`Ok(false)`: a folder, walked below);
/// anything else is refused by name, from its metadata alone: opening a FIFO would block.
fn named_kind(path: &Path) -> Result<bool, String> {
    let kind = fs::metadata(path).map_err(|e| e.to_string())?.file_type();
    if kind.is_file() || kind.is_dir() {
        return Ok(kind.is_file());
    }
    #[cfg(unix)]
    let what = {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "something else"
        }
    };
    #[cfg(not(unix))]
    let what = "something else";
    Err(format!("is {what}, not a regular file"))
}

fn walk_error(err: ignore::Error) -> FileError {
    fn path_of(err: &ignore::Error) -> Option<PathBuf> {
        match err {
            ignore::Error::WithPath { path, .. } => Some(path.clone()),
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                path_of(err)
            }
            _ => None,
        }
    }
    fn inner(err: &ignore::Error) -> String {
        match err {
            ignore::Error::WithPath { err, .. }
            | ignore::Error::WithDepth { err, .. }
            | ignore::Error::WithLineNumber { err, .. } => inner(err),
            other => other.to_string(),
        }
    }
    FileError {
        path: path_of(&err).unwrap_or_default(),
        message: inner(&err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::Mutex;

    fn files(roots: &[PathBuf]) -> Vec<(String, bool)> {
        let found = Mutex::new(Vec::new());
        let errors = for_each_file(roots, |e| {
            found
                .lock()
                .unwrap()
                .push((e.path.to_string_lossy().into_owned(), e.explicit))
        });
        assert!(errors.is_empty(), "{errors:?}");
        let mut found = found.into_inner().unwrap();
        found.sort();
        found
    }

    #[test]
    fn hidden_visited_vcs_and_ignored_skipped_explicit_always() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join(".git/objects")).unwrap();
        fs::create_dir_all(d.join(".github/workflows")).unwrap();
        fs::create_dir_all(d.join("node_modules/x")).unwrap();
        fs::write(d.join(".git/objects/o"), "a/b:1").unwrap();
        fs::write(d.join(".github/workflows/ci.yml"), "a/b:1").unwrap();
        fs::write(d.join(".gitlab-ci.yml"), "a/b:1").unwrap();
        fs::write(d.join("node_modules/x/f.yaml"), "a/b:1").unwrap();
        fs::write(d.join(".gitignore"), "node_modules/\n").unwrap();
        fs::write(d.join(".ignore"), "skipped.txt\n").unwrap();
        fs::write(d.join("skipped.txt"), "a/b:1").unwrap();
        fs::create_dir_all(d.join("legacy/old")).unwrap();
        fs::write(d.join("legacy/.cruignore"), "old/\n").unwrap();
        fs::write(d.join("legacy/old/f.yaml"), "a/b:1").unwrap();

        let root = d.to_path_buf();
        let found: Vec<_> = files(std::slice::from_ref(&root))
            .into_iter()
            .map(|(p, _)| p[root.to_string_lossy().len() + 1..].to_owned())
            .collect();
        assert_eq!(
            found,
            [
                ".github/workflows/ci.yml",
                ".gitignore",
                ".gitlab-ci.yml",
                ".ignore",
                "legacy/.cruignore"
            ]
        );

        let explicit = files(&[d.join("node_modules/x/f.yaml"), d.join("skipped.txt")]);
        assert_eq!(explicit.len(), 2);
        assert!(explicit.iter().all(|(_, e)| *e));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_only_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("tree")).unwrap();
        fs::write(d.join("real.yaml"), "a/b:1").unwrap();
        std::os::unix::fs::symlink(d.join("real.yaml"), d.join("tree/link.yaml")).unwrap();
        assert!(files(&[d.join("tree")]).is_empty());
        assert_eq!(files(&[d.join("tree/link.yaml")]).len(), 1);
    }
}
