//! The worker of `cru serve`: one thread owns the working clone and runs the update jobs one
//! at a time, so that requests for the repository are serialised without a clone per request.
//! Before each job the clone is fetched and reset to the branch's tip; after a failed job it
//! is reset again, so one bad request never leaks into the next. The git layer retries a push
//! that lost a race. Blocking work (git2, registry lookups on their own runtime) stays on this
//! thread, off the server's async runtime.

use std::io;
use std::path::PathBuf;
use std::thread::JoinHandle;

use axum::http::StatusCode;
use tokio::sync::{mpsc, oneshot};

use crate::git::{Checkout, CommitSpec, GitError, Outcome};
use crate::registry::{Resolver, ResolverOptions};
use crate::resolve::{Lookups, LookupsFailed, RegistryResolve};
use crate::scan::Scanner;
use crate::update::{self, Offline, UpdateError, UpdateOptions};

use super::api::Job;

/// Jobs waiting at most; more are refused with 503 rather than queued without bound.
pub const QUEUE: usize = 1024;

/// What every job shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Report what would change; commit nothing.
    pub dry_run: bool,
    /// The files and folders to update, relative to the repository's root (empty: all).
    pub paths: Vec<PathBuf>,
    /// How references are found.
    pub scanner: Scanner,
    /// How registries are reached, for `resolve-digest`.
    pub registry: ResolverOptions,
    /// Author and committer name.
    pub name: Option<String>,
    /// Author and committer email.
    pub email: Option<String>,
}

/// A job's result.
#[derive(Debug, Clone, Default)]
pub struct Done {
    /// The files changed (or that would be), relative to the repository's root.
    pub files: Vec<String>,
    /// The commit pushed, if one was.
    pub commit: Option<String>,
}

/// A job that failed: the HTTP status to answer and why (secrets already redacted).
#[derive(Debug, Clone)]
pub struct Failed {
    /// The status to answer with.
    pub status: StatusCode,
    /// The message.
    pub message: String,
}

type Reply = oneshot::Sender<Result<Done, Failed>>;

/// Where the server hands jobs to the worker.
#[derive(Debug, Clone)]
pub struct Queue {
    jobs: mpsc::Sender<(Job, Reply)>,
}

impl Queue {
    /// Queues `job` and waits for its result.
    pub async fn run(&self, job: Job) -> Result<Done, Failed> {
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send((job, reply)).map_err(|e| Failed {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: match e {
                mpsc::error::TrySendError::Full(_) => {
                    format!("too many requests waiting ({QUEUE}); try again later")
                }
                mpsc::error::TrySendError::Closed(_) => "the service is shutting down".into(),
            },
        })?;
        answer.await.map_err(|_| Failed {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the update worker stopped".into(),
        })?
    }
}

/// Starts the worker thread; it ends when every [`Queue`] is dropped.
pub fn start(checkout: Checkout, settings: Settings) -> io::Result<(Queue, JoinHandle<()>)> {
    let (jobs, mut incoming) = mpsc::channel::<(Job, Reply)>(QUEUE);
    let thread = std::thread::Builder::new()
        .name("cru-serve-worker".into())
        .spawn(move || {
            while let Some((job, reply)) = incoming.blocking_recv() {
                let result = run_job(&checkout, &settings, &job);
                // The client may have gone; the work is done either way.
                let _ = reply.send(result);
            }
        })?;
    Ok((Queue { jobs }, thread))
}

fn run_job(checkout: &Checkout, settings: &Settings, job: &Job) -> Result<Done, Failed> {
    checkout.refresh().map_err(|e| Failed {
        status: StatusCode::BAD_GATEWAY,
        message: chain(e),
    })?;
    let result = update(checkout, settings, job);
    if result.is_err() {
        // Whatever the job wrote or committed locally goes; the remote was never touched
        // by a failed push.
        if let Err(e) = checkout.refresh() {
            tracing::warn!("resetting the working clone after a failed request: {e}");
        }
    }
    result
}

fn update(checkout: &Checkout, settings: &Settings, job: &Job) -> Result<Done, Failed> {
    let workdir = checkout.workdir().to_path_buf();
    let roots: Vec<PathBuf> = if settings.paths.is_empty() {
        vec![workdir.clone()]
    } else {
        settings.paths.iter().map(|p| workdir.join(p)).collect()
    };
    let registry = if job.resolve_digest {
        let resolver = Resolver::new(settings.registry.clone()).map_err(|e| Failed {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("setting up registry lookups: {e}"),
        })?;
        Some(RegistryResolve::new(
            resolver,
            Lookups {
                digest: true,
                tag: false,
            },
        ))
    } else {
        None
    };
    let resolve: &dyn update::Resolve = match &registry {
        Some(r) => r,
        None => &Offline,
    };
    let spec = CommitSpec {
        message: job.message.clone(),
        name: settings.name.clone(),
        email: settings.email.clone(),
        push: true,
    };
    let outcome = checkout.update(Some(&spec), settings.dry_run, |workdir, dry_run| {
        let options = UpdateOptions {
            rules: job.rules.clone(),
            dry_run,
            confine: Some(workdir.to_path_buf()),
        };
        let summary = update::run(
            &roots,
            &settings.scanner,
            &options,
            resolve,
            &mut io::sink(),
        )?;
        Ok(summary.paths)
    });
    // The git layer gives the files relative to the working tree's root.
    let shown = |files: Vec<PathBuf>| files.iter().map(|f| f.display().to_string()).collect();
    match outcome {
        Ok(Outcome::Committed { id, files, .. }) => Ok(Done {
            files: shown(files),
            commit: Some(id),
        }),
        Ok(Outcome::DryRun(files)) => Ok(Done {
            files: shown(files),
            commit: None,
        }),
        Ok(Outcome::NoChange | Outcome::NotCommitted(_)) => Ok(Done::default()),
        Err(e) => Err(failed(e)),
    }
}

/// The status for a failed update: the registries or the git server refusing is a bad
/// gateway; a branch that keeps moving is worth retrying later; the rest is ours.
fn failed(err: GitError) -> Failed {
    let (status, lookups) = match &err {
        GitError::Change { source, .. } => match source.downcast_ref::<UpdateError>() {
            Some(UpdateError::Resolve(inner)) => (
                StatusCode::BAD_GATEWAY,
                inner
                    .downcast_ref::<LookupsFailed>()
                    .map(|l| l.messages().join("; ")),
            ),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
        },
        GitError::KeptMoving { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
        _ => (StatusCode::BAD_GATEWAY, None),
    };
    let message = match lookups {
        Some(each) => format!("{}: {each}", chain(err)),
        None => chain(err),
    };
    Failed { status, message }
}

/// The error and its causes, as the binary prints them (`{:#}`).
fn chain(err: GitError) -> String {
    format!("{:#}", anyhow::Error::from(err))
}
