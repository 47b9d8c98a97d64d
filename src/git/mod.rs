//! Updating files in a git repository: a local working tree opened in place, or a remote
//! cloned into a temporary directory; then committing exactly the files cru changed and
//! pushing, retrying from the new tip when someone else pushed in between.
//!
//! What changes the files is not decided here: the caller passes a function that updates the
//! working tree and returns the paths it changed. This module deliberately never force-pushes,
//! never switches the branch of a user's working tree, never commits a file that had changes
//! of the user's own, and never prompts for credentials (see [`auth`]). Every message names
//! the repository with its password redacted ([`redact_url`]), never commits into a
//! submodule, and never waits on a network without a bound ([`Timeouts`]). Credentials live
//! in `auth` (given only to the repository's own origin, never stored in a clone),
//! connecting and pushing in `transport`, the bounds in `deadline`, URL handling in [`url`].
//! [`Checkout`] is defined here; opening, cloning and refreshing it live in `checkout`, the
//! change job (change, commit, push, retry) in `change`.

mod auth;
mod change;
mod checkout;
mod deadline;
mod error;
mod helper;
mod transport;
mod tree;
pub mod url;

use std::fmt;
use std::path::{Path, PathBuf};

use git2::Repository;

use crate::report::SharedReporter;

pub use crate::redact::redact_url;
pub use checkout::{probe, probe_with};
pub use deadline::Timeouts;
pub use error::{ChangeError, GitError, Step};
pub use url::Location;

/// How often an update is re-applied on a branch that keeps moving before cru gives up. Each
/// round lets at least one of the racing writers through, so this is also how many writers
/// racing on one branch are sure to all land.
pub const PUSH_ATTEMPTS: u32 = 10;

/// How to commit: `--commit`, `--username`, `--email`, `--push`.
#[derive(Debug, Clone, Default)]
pub struct CommitSpec {
    /// The commit message.
    pub message: String,
    /// Author and committer name; else `user.name` from git config, else `cru`.
    pub name: Option<String>,
    /// Author and committer email; else `user.email` from git config, else `cru@localhost`.
    pub email: Option<String>,
    /// Push a local repository's branch to its upstream (remote clones are always pushed).
    pub push: bool,
}

/// What an update in a repository did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No file changed: nothing was committed or pushed.
    NoChange,
    /// A dry run: these files (relative to the working tree root) would have been committed.
    DryRun(Vec<PathBuf>),
    /// These files changed but no commit was asked for.
    NotCommitted(Vec<PathBuf>),
    /// Committed (and maybe pushed).
    Committed {
        /// The new commit.
        id: String,
        /// The files committed, relative to the working tree root.
        files: Vec<PathBuf>,
        /// Whether it was pushed.
        pushed: bool,
        /// How many times the update was applied.
        attempts: u32,
    },
}

/// A working tree to update: a local repository or a temporary clone (removed on drop).
pub struct Checkout {
    repo: Repository,
    /// What the user typed, with secrets: used to connect, never shown.
    url: String,
    shown: String,
    branch: Option<String>,
    remote: bool,
    timeouts: Timeouts,
    /// Where warnings go (the log, unless the caller hands another reporter).
    reporter: SharedReporter,
    // Declared last so the repository is closed before its directory is removed.
    _temp: Option<tempfile::TempDir>,
}

impl fmt::Debug for Checkout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkout")
            .field("url", &self.shown)
            .field("branch", &self.branch)
            .field("workdir", &self.workdir())
            .finish_non_exhaustive()
    }
}

impl Checkout {
    /// The root of the working tree, where the files to update are.
    pub fn workdir(&self) -> &Path {
        self.repo.workdir().expect("bare repositories are refused")
    }

    /// Sends this checkout's warnings to `reporter` from now on (`cru serve` hands each
    /// request its own).
    pub fn set_reporter(&mut self, reporter: SharedReporter) {
        self.reporter = reporter;
    }

    /// The branch checked out, if any.
    pub fn branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// Whether `path` (relative to the working tree root, or absolute) leads out of the
    /// working tree, through `..` or a symbolic link. Paths that do not exist are inside.
    pub fn is_outside(&self, path: &Path) -> bool {
        let root = self.workdir();
        let (Ok(root), Ok(full)) = (root.canonicalize(), root.join(path).canonicalize()) else {
            return false;
        };
        !full.starts_with(root)
    }

    /// The repository as it may be shown (password redacted).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn step_error(&self, step: Step, message: &str) -> GitError {
        GitError::Step {
            step,
            url: self.shown.clone(),
            branch: self.branch.clone(),
            message: url::scrub(message, &self.url),
        }
    }

    /// The status of every file in the working tree that differs from HEAD, untracked files
    /// included (one by one, not their folders).
    fn worktree_statuses(&self, step: Step) -> Result<git2::Statuses<'_>, GitError> {
        let mut options = git2::StatusOptions::new();
        options.include_untracked(true).recurse_untracked_dirs(true);
        self.repo
            .statuses(Some(&mut options))
            .map_err(|e| self.step_error(step, e.message()))
    }
}
