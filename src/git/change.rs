//! The change job on a working tree: run the caller's change, check that exactly the files it
//! changed can be committed (no changes of the user's own, no submodule), commit them and
//! push, updating again from the new tip when someone else pushed in between. Nothing here
//! opens or clones a repository (that is [`super::checkout`]).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use git2::Oid;

use crate::backoff::Backoff;
use crate::redact::redact_url;

use super::error::{branch_suffix, ChangeError, GitError, Step};
use super::transport::{push_local, push_network, Pushed};
use super::tree::{signature, smudge_modified, tree_conflict, GITLINK};
use super::url::Location;
use super::{transport, url, Checkout, CommitSpec, Outcome, PUSH_ATTEMPTS};

/// The wait between push attempts: jittered, so that racing writers do not collide again in
/// lockstep, and capped near the longest wait of the linear backoff it replaced (650 ms).
const PUSH_BACKOFF: Backoff = Backoff {
    retries: PUSH_ATTEMPTS - 1,
    base: Duration::from_millis(150),
    max: Duration::from_millis(600),
};

impl Checkout {
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
