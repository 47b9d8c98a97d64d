//! The worker of `cru serve`: one thread owns the working clone and runs the update jobs one
//! at a time, so that requests for the repository are serialised without a clone per request.
//! Before each job the clone is fetched and reset to the branch's tip; after a failed job it
//! is reset again, so one bad request never leaks into the next. The git layer retries a push
//! that lost a race. Blocking work (git2, registry lookups on their own runtime) stays on this
//! thread, off the server's async runtime.

use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use axum::http::StatusCode;
use tokio::sync::{mpsc, oneshot};

use crate::git::{Checkout, CommitSpec, GitError};
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
        message: chain(&e),
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
    let mut files = Vec::new();
    let outcome = checkout.update(Some(&spec), settings.dry_run, |workdir, dry_run| {
        let options = UpdateOptions {
            rules: job.rules.clone(),
            dry_run,
        };
        let summary = update::run(
            &roots,
            &settings.scanner,
            &options,
            resolve,
            &mut io::sink(),
        )?;
        files = summary.paths.iter().map(|p| relative(workdir, p)).collect();
        Ok(summary.paths)
    });
    match outcome {
        Ok(crate::git::Outcome::Committed { id, .. }) => Ok(Done {
            files,
            commit: Some(id),
        }),
        Ok(crate::git::Outcome::DryRun(_)) => Ok(Done {
            files,
            commit: None,
        }),
        Ok(_) => Ok(Done::default()),
        Err(e) => Err(failed(e)),
    }
}

/// A path below the working tree as the client should see it: relative, with `/`.
fn relative(workdir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(workdir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The status for a failed update: the registries or the git server refusing is a bad
/// gateway; a branch that keeps moving is worth retrying later; the rest is ours.
fn failed(err: GitError) -> Failed {
    let mut message = chain(&err);
    let status = match &err {
        GitError::Change { source, .. } => match source.downcast_ref::<UpdateError>() {
            Some(UpdateError::Resolve(inner)) => {
                if let Some(lookups) = inner.downcast_ref::<LookupsFailed>() {
                    message = format!("{message}: {}", lookups.messages().join("; "));
                }
                StatusCode::BAD_GATEWAY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        GitError::KeptMoving { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    Failed { status, message }
}

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}
