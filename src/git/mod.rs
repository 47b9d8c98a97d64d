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

mod auth;
mod deadline;
mod error;
mod transport;
mod tree;
pub mod url;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use git2::{build::RepoBuilder, BranchType, Oid, Repository, ResetType};

use crate::backoff::Backoff;
use crate::report::SharedReporter;

pub use crate::redact::redact_url;
use deadline::Deadline;
pub use deadline::Timeouts;
use error::branch_suffix;
pub use error::{ChangeError, GitError, Step};
use transport::{fetch_options, hint, push_local, push_network, Pushed};
use tree::{signature, smudge_modified, tree_conflict, GITLINK};
pub use url::Location;

/// How often an update is re-applied on a branch that keeps moving before cru gives up. Each
/// round lets at least one of the racing writers through, so this is also how many writers
/// racing on one branch are sure to all land.
pub const PUSH_ATTEMPTS: u32 = 10;
/// The wait between push attempts: jittered, so that racing writers do not collide again in
/// lockstep, and capped near the longest wait of the linear backoff it replaced (650 ms).
const PUSH_BACKOFF: Backoff = Backoff {
    retries: PUSH_ATTEMPTS - 1,
    base: Duration::from_millis(150),
    max: Duration::from_millis(600),
};

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
    /// Opens `--repository`: a local working tree in place, a URL cloned with `branch` checked
    /// out (default: the remote's default branch). Network operations get the default
    /// [`Timeouts`].
    pub fn new(repository: &str, branch: Option<&str>) -> Result<Checkout, GitError> {
        Checkout::new_with(repository, branch, Timeouts::default())
    }

    /// As [`Checkout::new`], with every network operation (the clone, later fetches and
    /// pushes) bounded by `timeouts`.
    pub fn new_with(
        repository: &str,
        branch: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<Checkout, GitError> {
        match Location::parse(repository) {
            // A bare repository on disk has no working tree to update: clone it like a URL.
            Location::Path(path) if Repository::open_bare(&path).is_ok() => {
                Checkout::clone_with(repository, branch, timeouts)
            }
            Location::Path(path) => {
                let mut checkout = Checkout::open(&path, branch)?;
                checkout.timeouts = timeouts;
                Ok(checkout)
            }
            Location::Remote(url) => Checkout::clone_with(&url, branch, timeouts),
        }
    }

    /// Opens the repository at or above `path`; `branch`, if given, must be checked out.
    pub fn open(path: &Path, branch: Option<&str>) -> Result<Checkout, GitError> {
        let shown = path.display().to_string();
        let fail = |message: String| GitError::Step {
            step: Step::Open,
            url: shown.clone(),
            branch: branch.map(str::to_string),
            message,
        };
        let repo = Repository::discover(path).map_err(|e| fail(e.message().to_string()))?;
        if repo.is_bare() {
            return Err(fail("a bare repository has no files to update".into()));
        }
        let current = repo
            .head()
            .ok()
            .and_then(|h| h.shorthand().ok().map(str::to_string));
        if let Some(wanted) = branch {
            if current.as_deref() != Some(wanted) {
                return Err(GitError::Step {
                    step: Step::Checkout,
                    url: shown,
                    branch: Some(wanted.to_string()),
                    message: format!(
                        "the working tree is on {}; cru does not switch branches in a working \
                         tree (check it out yourself, or give a URL to clone)",
                        current.as_deref().unwrap_or("no branch")
                    ),
                });
            }
        }
        tracing::debug!("opened repository {shown}");
        Ok(Checkout {
            repo,
            url: path.display().to_string(),
            shown,
            branch: current,
            remote: false,
            timeouts: Timeouts::default(),
            reporter: SharedReporter::default(),
            _temp: None,
        })
    }

    /// Clones `url` into a temporary directory and checks out `branch`, with the default
    /// [`Timeouts`].
    pub fn clone(url: &str, branch: Option<&str>) -> Result<Checkout, GitError> {
        Checkout::clone_with(url, branch, Timeouts::default())
    }

    /// As [`Checkout::clone`], with the clone and every later fetch and push bounded by
    /// `timeouts`.
    pub fn clone_with(
        url: &str,
        branch: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<Checkout, GitError> {
        let shown = redact_url(url);
        let fail = |step: Step, message: &str| GitError::Step {
            step,
            url: shown.clone(),
            branch: branch.map(str::to_string),
            message: url::scrub(message, url),
        };
        // Private: the clone is the user's repository, readable by nobody else on the machine.
        let temp = tempfile::Builder::new()
            .prefix("cru-clone-")
            .tempdir()
            .and_then(|t| make_private(t.path()).map(|()| t))
            .map_err(|e| fail(Step::Clone, &format!("creating a temporary directory: {e}")))?;
        let creds = RefCell::new(auth::Credentials::new(
            url,
            git2::Config::open_default().ok(),
        ));
        // The remote URL kept in `.git/config` holds no secret: they stay in memory and reach
        // the server through the credentials callback only.
        let dir = temp.path().join("repo");
        let deadline = Deadline::start(&timeouts);
        let cloned = RepoBuilder::new()
            .fetch_options(fetch_options(url, &creds, deadline))
            .clone(&url::connect_url(url), &dir);
        let repo = cloned.map_err(|e| fail(Step::Clone, &hint(&e, &creds, &deadline)))?;
        make_private(&dir)
            .map_err(|e| fail(Step::Clone, &format!("making the clone private: {e}")))?;
        tracing::info!("cloned {shown}");

        let branch = match branch {
            Some(wanted) => {
                let remote_ref = format!("refs/remotes/origin/{wanted}");
                let tip = match repo.refname_to_id(&remote_ref) {
                    Ok(id) => id,
                    Err(_) => {
                        return Err(GitError::NoSuchBranch {
                            url: shown,
                            branch: wanted.to_string(),
                        })
                    }
                };
                let checkout = || -> Result<(), git2::Error> {
                    let commit = repo.find_commit(tip)?;
                    let local = format!("refs/heads/{wanted}");
                    if repo.find_branch(wanted, BranchType::Local).is_err() {
                        repo.branch(wanted, &commit, false)?;
                    }
                    repo.set_head(&local)?;
                    repo.reset(commit.as_object(), ResetType::Hard, None)
                };
                checkout().map_err(|e| fail(Step::Checkout, e.message()))?;
                wanted.to_string()
            }
            None => {
                let head = repo.head().map_err(|e| {
                    fail(
                        Step::Checkout,
                        &format!("the remote has no default branch ({})", e.message()),
                    )
                })?;
                head.shorthand().unwrap_or("HEAD").to_string()
            }
        };
        tracing::debug!("checked out branch {branch} of {shown}");
        Ok(Checkout {
            repo,
            url: url.to_string(),
            shown,
            branch: Some(branch),
            remote: true,
            timeouts,
            reporter: SharedReporter::default(),
            _temp: Some(temp),
        })
    }

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

    /// Runs `change` on the working tree and, with `commit`, commits the files it changed and
    /// pushes them. `change(workdir, dry_run)` returns the paths it changed (or would change),
    /// relative to the working tree root. When the push finds the branch moved, the clone is
    /// reset to the new tip and `change` runs again.
    pub fn update<F>(
        &self,
        commit: Option<&CommitSpec>,
        dry_run: bool,
        mut change: F,
    ) -> Result<Outcome, GitError>
    where
        F: FnMut(&Path, bool) -> Result<Vec<PathBuf>, ChangeError>,
    {
        let mut attempt = 1;
        loop {
            let base = self.repo.head().ok().and_then(|h| h.target());
            if commit.is_some() && !dry_run {
                self.precheck(&mut change)?;
            }
            let changed = self.run_change(&mut change, dry_run)?;
            if changed.is_empty() {
                return Ok(Outcome::NoChange);
            }
            let Some(spec) = commit else {
                if self.remote && !dry_run {
                    self.reporter.warn(format!(
                        "no --commit given: the changes to the clone of {} are discarded",
                        self.shown
                    ));
                }
                return Ok(if dry_run {
                    Outcome::DryRun(changed)
                } else {
                    Outcome::NotCommitted(changed)
                });
            };
            let push = self.remote || spec.push;
            if dry_run {
                self.committable(&changed)?;
                tracing::info!(
                    "dry run: would commit {} files to {}{}{}",
                    changed.len(),
                    self.shown,
                    branch_suffix(&self.branch),
                    if push { " and push" } else { "" }
                );
                return Ok(Outcome::DryRun(changed));
            }
            let id = self.commit(&changed, spec)?;
            tracing::info!(
                "committed {} files as {:.7} on {}{}",
                changed.len(),
                id,
                self.shown,
                branch_suffix(&self.branch)
            );
            if !push {
                return Ok(Outcome::Committed {
                    id: id.to_string(),
                    files: changed,
                    pushed: false,
                    attempts: attempt,
                });
            }
            match self.push(id, base) {
                Ok(()) => {
                    tracing::info!(
                        "pushed {:.7} to {}{}",
                        id,
                        self.shown,
                        branch_suffix(&self.branch)
                    );
                    return Ok(Outcome::Committed {
                        id: id.to_string(),
                        files: changed,
                        pushed: true,
                        attempts: attempt,
                    });
                }
                Err(Rejection::Moved) if attempt < PUSH_ATTEMPTS => {
                    tracing::info!(
                        "{}{} has new commits; updating again from the new tip (attempt {} of {})",
                        self.shown,
                        branch_suffix(&self.branch),
                        attempt + 1,
                        PUSH_ATTEMPTS
                    );
                    std::thread::sleep(PUSH_BACKOFF.delay(attempt - 1));
                    attempt += 1;
                }
                Err(Rejection::Moved) => {
                    return Err(GitError::KeptMoving {
                        url: self.shown.clone(),
                        branch: self.branch.clone().unwrap_or_default(),
                        attempts: attempt,
                    })
                }
                Err(Rejection::Failed(err)) => return Err(err),
            }
        }
    }

    fn run_change<F>(&self, change: &mut F, dry_run: bool) -> Result<Vec<PathBuf>, GitError>
    where
        F: FnMut(&Path, bool) -> Result<Vec<PathBuf>, ChangeError>,
    {
        let workdir = self.workdir().to_path_buf();
        let paths = change(&workdir, dry_run).map_err(|source| GitError::Change {
            url: self.shown.clone(),
            branch: self.branch.clone(),
            source,
        })?;
        let mut relative = BTreeSet::new();
        for path in paths {
            relative.insert(self.relative(&workdir, &path)?);
        }
        Ok(relative.into_iter().collect())
    }

    fn relative(&self, workdir: &Path, path: &Path) -> Result<PathBuf, GitError> {
        let outside = || GitError::Outside {
            url: self.shown.clone(),
            path: path.display().to_string(),
        };
        let rel = if path.is_absolute() {
            let canonical = workdir.canonicalize().unwrap_or_else(|_| workdir.into());
            path.strip_prefix(workdir)
                .or_else(|_| path.strip_prefix(&canonical))
                .map_err(|_| outside())?
        } else {
            path
        };
        let mut clean = PathBuf::new();
        for part in rel.components() {
            match part {
                Component::CurDir => {}
                Component::Normal(p) => clean.push(p),
                _ => return Err(outside()),
            }
        }
        // A path through a symbolic link (a PATH that is one, or below a linked folder): the
        // file written is the link's target, and that is what gets committed; committing the
        // link would commit nothing.
        let full = workdir.join(&clean);
        let linked = full.ancestors().take(clean.components().count()).any(|p| {
            p.symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
        });
        if !linked {
            return Ok(clean);
        }
        let (Ok(root), Ok(target)) = (workdir.canonicalize(), full.canonicalize()) else {
            return Ok(clean);
        };
        match target.strip_prefix(&root) {
            Ok(inside) => Ok(inside.to_path_buf()),
            Err(_) => Err(outside()),
        }
    }

    /// Checks, before anything is written, what would stop the commit: files of the user's
    /// own among those the update would change, files inside a submodule, a path that is a
    /// file in one place and a folder in the other. This takes a preview of the update
    /// (a dry run), made only when one of these can happen: the working tree has changes of
    /// its own or a checked-out submodule. A working tree identical to HEAD has neither kind
    /// of conflict.
    fn precheck<F>(&self, change: &mut F) -> Result<(), GitError>
    where
        F: FnMut(&Path, bool) -> Result<Vec<PathBuf>, ChangeError>,
    {
        let dirty = if self.remote {
            BTreeSet::new()
        } else {
            self.dirty()?
        };
        if dirty.is_empty() && self.submodules().is_empty() {
            return Ok(());
        }
        let would = self.run_change(change, true)?;
        self.committable(&would)?;
        let files: Vec<String> = would
            .iter()
            .filter(|p| dirty.contains(*p))
            .map(|p| p.display().to_string())
            .collect();
        if files.is_empty() {
            Ok(())
        } else {
            Err(GitError::Uncommitted {
                url: self.shown.clone(),
                files,
            })
        }
    }

    /// The checked-out submodules of the working tree (paths of gitlinks in the index
    /// whose folder holds a repository).
    fn submodules(&self) -> Vec<PathBuf> {
        let Ok(index) = self.repo.index() else {
            return Vec::new();
        };
        let workdir = self.workdir();
        index
            .iter()
            .filter(|e| e.mode == GITLINK)
            .filter_map(|e| String::from_utf8(e.path).ok().map(PathBuf::from))
            .filter(|p| workdir.join(p).join(".git").exists())
            .collect()
    }

    /// Fails when `paths` cannot be committed to this repository: inside a submodule, or
    /// where HEAD has a file (or link, or submodule) for a folder on the way, or a folder.
    fn committable(&self, paths: &[PathBuf]) -> Result<(), GitError> {
        let submodules = self.submodules();
        for submodule in &submodules {
            let files: Vec<String> = paths
                .iter()
                .filter(|p| p.starts_with(submodule))
                .map(|p| p.display().to_string())
                .collect();
            if !files.is_empty() {
                return Err(GitError::InSubmodule {
                    url: self.shown.clone(),
                    submodule: submodule.display().to_string(),
                    files,
                });
            }
        }
        let Ok(tree) = self.repo.head().and_then(|h| h.peel_to_tree()) else {
            return Ok(());
        };
        for path in paths {
            if let Some(reason) = tree_conflict(&tree, path) {
                return Err(GitError::Conflict {
                    url: self.shown.clone(),
                    path: path.display().to_string(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// The files with changes of the user's own (staged, unstaged or untracked): committing
    /// one of them would commit those too.
    fn dirty(&self) -> Result<BTreeSet<PathBuf>, GitError> {
        let statuses = self.worktree_statuses(Step::Commit)?;
        Ok(statuses
            .iter()
            .filter(|s| !s.status().is_ignored())
            .filter_map(|s| s.path().ok().map(PathBuf::from))
            .collect())
    }

    /// Commits exactly `paths` on top of HEAD: the new tree is HEAD's with only those blobs
    /// replaced, and only their index entries are updated, so whatever else the user staged
    /// stays staged and out of the commit.
    fn commit(&self, paths: &[PathBuf], spec: &CommitSpec) -> Result<Oid, GitError> {
        let repo = &self.repo;
        let run = || -> Result<Oid, git2::Error> {
            let head = repo.head()?.peel_to_commit()?;
            let mut index = repo.index()?;
            let mut tree = git2::build::TreeUpdateBuilder::new();
            for path in paths {
                index.add_path(path)?;
                let entry = index.get_path(path, 0).ok_or_else(|| {
                    git2::Error::from_str(&format!("{} is not in the index", path.display()))
                })?;
                let mode = match entry.mode {
                    0o100755 => git2::FileMode::BlobExecutable,
                    0o120000 => git2::FileMode::Link,
                    _ => git2::FileMode::Blob,
                };
                tree.upsert(path, entry.id, mode);
            }
            let tree_id = tree.create_updated(repo, &head.tree()?)?;
            let tree = repo.find_tree(tree_id)?;
            let signature = signature(repo, spec)?;
            let id = repo.commit(
                Some("HEAD"),
                &signature,
                &signature,
                &spec.message,
                &tree,
                &[&head],
            )?;
            smudge_modified(repo, &mut index)?;
            index.write()?;
            Ok(id)
        };
        run().map_err(|e| {
            // libgit2 says "D/F conflict when updating tree": say which path, and what to do.
            let tree = repo.head().and_then(|h| h.peel_to_tree());
            let conflict = tree.ok().and_then(|tree| {
                paths
                    .iter()
                    .find_map(|p| tree_conflict(&tree, p).map(|r| (p, r)))
            });
            match conflict {
                Some((path, reason)) => self.step_error(
                    Step::Commit,
                    &format!(
                        "{} cannot be committed: {reason}; the files cru changed are left \
                         changed",
                        path.display()
                    ),
                ),
                None => self.step_error(Step::Commit, e.message()),
            }
        })
    }

    fn step_error(&self, step: Step, message: &str) -> GitError {
        GitError::Step {
            step,
            url: self.shown.clone(),
            branch: self.branch.clone(),
            message: url::scrub(message, &self.url),
        }
    }

    /// Pushes `id` to the branch's remote. A refusal is [`Rejection::Moved`] when the remote
    /// branch is no longer `base` (the clone is then reset to its new tip), else an error with
    /// the server's message.
    fn push(&self, id: Oid, base: Option<Oid>) -> Result<(), Rejection> {
        let branch = self
            .branch
            .clone()
            .ok_or_else(|| self.step_error(Step::Push, "HEAD is not on a branch"))?;
        let (url, dst) = if self.remote {
            (self.url.clone(), format!("refs/heads/{branch}"))
        } else {
            self.upstream(&branch)?
        };
        let result = match url::file_url_path(&url).or_else(|| match Location::parse(&url) {
            Location::Path(p) => Some(p),
            Location::Remote(_) => None,
        }) {
            Some(dir) => push_local(&self.repo, &dir, id, &dst),
            None => push_network(&self.repo, &url, &format!("{id}:{dst}"), &self.timeouts),
        };
        let shown = redact_url(&url);
        let fail = |message: String| {
            Rejection::Failed(GitError::Step {
                step: Step::Push,
                url: shown.clone(),
                branch: Some(branch.clone()),
                message: url::scrub(&message, &url),
            })
        };
        match result {
            Ok(()) => Ok(()),
            Err(Pushed::Refused(message)) | Err(Pushed::NotFastForward(message)) => {
                if !self.remote {
                    return Err(fail(format!(
                        "{message} (cru does not pull into your working tree: pull, then run \
                         cru again)"
                    )));
                }
                let tip = self.fetch_reset(&branch).map_err(Rejection::Failed)?;
                // A lock held by another writer is a move that may not be visible yet.
                if Some(tip) != base || transport::is_lock_message(&message) {
                    Err(Rejection::Moved)
                } else {
                    Err(fail(message))
                }
            }
            Err(Pushed::Error(message)) => Err(fail(message)),
        }
    }

    /// The remote URL and reference a local branch pushes to.
    fn upstream(&self, branch: &str) -> Result<(String, String), GitError> {
        let local = format!("refs/heads/{branch}");
        let find = || -> Result<(String, String), git2::Error> {
            let remote = self.repo.branch_upstream_remote(&local)?;
            let remote = self.repo.find_remote(remote.as_str()?)?;
            let merge = self.repo.branch_upstream_merge(&local)?;
            let url = match remote.pushurl()? {
                Some(url) => url.to_string(),
                None => remote.url()?.to_string(),
            };
            Ok((url, merge.as_str()?.to_string()))
        };
        find().map_err(|e| {
            self.step_error(
                Step::Push,
                &format!(
                    "branch {branch} has no upstream to push to ({}); set one with \
                     `git push -u REMOTE {branch}`",
                    e.message()
                ),
            )
        })
    }

    /// Brings a clone back to its remote branch: fetches the tip, resets the working tree hard
    /// to it and removes files git does not track. `cru serve` calls this before each request
    /// and after a failed one, so one working clone serves every request. When the fetch
    /// fails, the clone is still reset to the last tip it knew, and the error returned.
    pub fn refresh(&self) -> Result<String, GitError> {
        let branch = self
            .branch
            .clone()
            .ok_or_else(|| self.step_error(Step::Fetch, "HEAD is not on a branch"))?;
        if !self.remote {
            return Err(self.step_error(
                Step::Fetch,
                "only a clone is refreshed: cru never resets a working tree of yours",
            ));
        }
        let fetched = self.fetch_reset(&branch);
        if fetched.is_err() {
            if let Err(e) = self.reset_to_remote(&branch) {
                self.reporter.warn(format!(
                    "resetting {} to origin/{branch}: {}",
                    self.shown,
                    e.message()
                ));
            }
        }
        self.remove_untracked()?;
        fetched.map(|tip| tip.to_string())
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

    /// Deletes the files in the working tree that git does not track.
    fn remove_untracked(&self) -> Result<(), GitError> {
        let statuses = self.worktree_statuses(Step::Checkout)?;
        let workdir = self.workdir();
        for entry in statuses.iter() {
            if entry.status().contains(git2::Status::WT_NEW) {
                if let Ok(path) = entry.path() {
                    let _ = std::fs::remove_file(workdir.join(path));
                }
            }
        }
        Ok(())
    }

    /// Fetches the branch's new tip and resets the clone to it; returns the tip.
    fn fetch_reset(&self, branch: &str) -> Result<Oid, GitError> {
        let creds = RefCell::new(auth::Credentials::new(&self.url, self.repo.config().ok()));
        let deadline = Deadline::start(&self.timeouts);
        let run = || -> Result<Oid, git2::Error> {
            let mut remote = self.repo.find_remote("origin")?;
            let mut options = fetch_options(&self.url, &creds, deadline);
            let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
            remote.fetch(&[refspec], Some(&mut options), None)?;
            self.reset_to_remote(branch)
        };
        run().map_err(|e| self.step_error(Step::Fetch, &hint(&e, &creds, &deadline)))
    }

    /// Resets the clone hard to the last fetched tip of the branch; returns that tip.
    fn reset_to_remote(&self, branch: &str) -> Result<Oid, git2::Error> {
        let tip = self
            .repo
            .refname_to_id(&format!("refs/remotes/origin/{branch}"))?;
        let object = self.repo.find_object(tip, None)?;
        self.repo.reset(&object, ResetType::Hard, None)?;
        Ok(tip)
    }
}

/// Makes a folder readable by its owner only (mode 0700).
fn make_private(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Why a push did not land, as [`Checkout::update`] needs to know it.
enum Rejection {
    /// The branch moved: update again from the new tip.
    Moved,
    /// Anything else.
    Failed(GitError),
}

impl From<GitError> for Rejection {
    fn from(err: GitError) -> Rejection {
        Rejection::Failed(err)
    }
}

/// Whether the repository at `url` answers and has `branch`: lists its references without
/// fetching anything, with the same credentials as a clone. For health checks; bounded by
/// the default [`Timeouts`].
pub fn probe(url: &str, branch: &str) -> Result<(), GitError> {
    probe_with(url, branch, Timeouts::default())
}

/// As [`probe`], bounded by `timeouts`.
pub fn probe_with(url: &str, branch: &str, timeouts: Timeouts) -> Result<(), GitError> {
    let shown = redact_url(url);
    let creds = RefCell::new(auth::Credentials::new(
        url,
        git2::Config::open_default().ok(),
    ));
    let deadline = Deadline::start(&timeouts);
    let run = || -> Result<bool, git2::Error> {
        let mut remote = git2::Remote::create_detached(url::connect_url(url))?;
        let connection = remote.connect_auth(
            git2::Direction::Fetch,
            Some(transport::callbacks(&creds, deadline)),
            None,
        )?;
        let wanted = format!("refs/heads/{branch}");
        let found = connection.list()?.iter().any(|head| head.name() == wanted);
        Ok(found)
    };
    match run() {
        Ok(true) => Ok(()),
        Ok(false) => Err(GitError::NoSuchBranch {
            url: shown,
            branch: branch.to_string(),
        }),
        Err(e) => Err(GitError::Step {
            step: Step::Fetch,
            message: url::scrub(&hint(&e, &creds, &deadline), url),
            url: shown,
            branch: Some(branch.to_string()),
        }),
    }
}
