//! What can go wrong in the git work, as the messages name it: the step, the repository
//! (always redacted), the branch and what to do. Nothing here talks to git.

use std::fmt;

/// Why the function that updates the working tree failed: the update job's error, typed, so
/// that `cru serve` can choose its status without downcasting; or a plain IO error.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The update job failed.
    #[error(transparent)]
    Update(#[from] crate::update::UpdateError),
    /// Writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The step of the git work that failed, as named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Opening a local repository.
    Open,
    /// Cloning a remote.
    Clone,
    /// Checking out the branch.
    Checkout,
    /// Committing the changed files.
    Commit,
    /// Fetching the new tip of the branch.
    Fetch,
    /// Pushing the commit.
    Push,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Open => "open",
            Step::Clone => "clone",
            Step::Checkout => "checkout",
            Step::Commit => "commit",
            Step::Fetch => "fetch",
            Step::Push => "push",
        })
    }
}

/// Why the git work failed. URLs in here are redacted.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A git operation failed.
    #[error("{step} failed for {url}{}: {message}", branch_suffix(.branch))]
    Step {
        /// What was being done.
        step: Step,
        /// The repository, redacted.
        url: String,
        /// The branch, when known.
        branch: Option<String>,
        /// What went wrong (secrets scrubbed).
        message: String,
    },
    /// The branch asked for does not exist.
    #[error("checkout failed for {url}: branch {branch:?} does not exist")]
    NoSuchBranch {
        /// The repository, redacted.
        url: String,
        /// The branch asked for.
        branch: String,
    },
    /// Files cru would change have changes of the user's own.
    #[error(
        "commit refused in {url}: cru commits only its own changes, and these files it would \
         change have uncommitted changes of yours: {} (commit or stash them first); no file \
         was updated",
        .files.join(", ")
    )]
    Uncommitted {
        /// The repository.
        url: String,
        /// The files, relative to the repository root.
        files: Vec<String>,
    },
    /// Files cru would change are inside a submodule.
    #[error(
        "commit refused in {url}: {} would change inside the submodule {submodule}, and cru \
         commits to one repository, never into a submodule: update the submodule on its own \
         (--repository {submodule}), or leave it out (PATHs without it, or `{submodule}/` in \
         .cruignore); no file was updated",
        .files.join(", ")
    )]
    InSubmodule {
        /// The repository.
        url: String,
        /// The submodule, relative to the repository root.
        submodule: String,
        /// The files inside it, relative to the repository root.
        files: Vec<String>,
    },
    /// A file cru would change cannot be committed where it is.
    #[error("commit refused in {url}: {path} cannot be committed: {reason}; no file was updated")]
    Conflict {
        /// The repository.
        url: String,
        /// The file, relative to the repository root.
        path: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The branch kept moving.
    #[error(
        "push failed for {url} (branch {branch}): the branch kept moving, \
         gave up after {attempts} attempts"
    )]
    KeptMoving {
        /// The repository, redacted.
        url: String,
        /// The branch.
        branch: String,
        /// How many times the update was applied.
        attempts: u32,
    },
    /// A changed path is not inside the working tree.
    #[error("{url}: {path} is outside the repository")]
    Outside {
        /// The repository, redacted.
        url: String,
        /// The path.
        path: String,
    },
    /// Updating the files failed.
    #[error("updating files in {url}{}", branch_suffix(.branch))]
    Change {
        /// The repository, redacted.
        url: String,
        /// The branch, when known.
        branch: Option<String>,
        /// Why.
        #[source]
        source: ChangeError,
    },
}

pub(super) fn branch_suffix(branch: &Option<String>) -> String {
    branch
        .as_ref()
        .map(|b| format!(" (branch {b})"))
        .unwrap_or_default()
}
