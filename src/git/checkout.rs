//! Getting a working tree to update: a local repository opened in place, or a remote cloned
//! into a private temporary folder; bringing a clone back to its remote branch before each
//! run (`refresh`); and probing whether a remote answers. Nothing here commits or pushes
//! (that is [`super::change`]).

use std::cell::RefCell;
use std::path::Path;

use git2::{build::RepoBuilder, BranchType, Oid, Repository, ResetType};

use crate::redact::redact_url;
use crate::report::SharedReporter;

use super::deadline::{Deadline, Timeouts};
use super::error::{GitError, Step};
use super::transport::{fetch_options, hint};
use super::url::Location;
use super::{auth, transport, url, Checkout};

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
    pub(super) fn fetch_reset(&self, branch: &str) -> Result<Oid, GitError> {
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
