//! The worker of `cru serve`: one thread owns the working clone and runs the update jobs one
//! at a time, so that requests for the repository are serialised without a clone per request.
//! Before each job the clone is fetched and reset to the branch's tip; after a failed job it
//! is reset again, so one bad request never leaks into the next. The git layer retries a push
//! that lost a race. Blocking work (git2, registry lookups on their own runtime) stays on this
//! thread, off the server's async runtime.
//!
//! Every wait for the worker has a deadline (`--request-timeout`): a request not started by
//! then is withdrawn (the worker skips it) and answers 503; one started but not finished
//! answers 504; while the worker has been on one request for longer, new requests and
//! `/healthz` answer 503 at once. The worker itself cannot be interrupted in a blocking git
//! or registry call: the git layer's own deadlines end those.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::{mpsc, oneshot};

use crate::git::{ChangeError, Checkout, CommitSpec, GitError, Outcome};
use crate::registry::{Resolver, ResolverOptions};
use crate::report::{Collect, Event, Log, Reporter, SharedReporter};
use crate::resolve::{Lookups, RegistryResolve};
use crate::settings::Layers;
use crate::update::{self, Offline, ResolveError, UpdateError};

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
    /// Flags and environment; merged per request with the configuration file of the
    /// branch's tip (`.cru.yaml`, re-read after every refresh).
    pub layers: Layers,
    /// Author and committer name.
    pub name: Option<String>,
    /// Author and committer email.
    pub email: Option<String>,
    /// How long a request waits for its update, and after which a running update counts as
    /// stuck.
    pub request_timeout: Duration,
}

/// A job's result.
#[derive(Debug, Clone, Default)]
pub struct Done {
    /// The files changed (or that would be), relative to the repository's root.
    pub files: Vec<String>,
    /// The commit pushed, if one was.
    pub commit: Option<String>,
    /// The warnings of the update (registry, git and update job), in order.
    pub warnings: Vec<String>,
}

/// A job that failed: the HTTP status to answer and why (secrets already redacted).
#[derive(Debug, Clone)]
pub struct Failed {
    /// The status to answer with.
    pub status: StatusCode,
    /// The message.
    pub message: String,
    /// The warnings of the update before it failed, in order.
    pub warnings: Vec<String>,
}

impl Failed {
    fn new(status: StatusCode, message: impl Into<String>) -> Failed {
        Failed {
            status,
            message: message.into(),
            warnings: Vec::new(),
        }
    }
}

/// One request's reporter: its warnings are kept, to answer with and to log under the
/// request's number; cru's other lines go to the log as for the command line.
#[derive(Debug, Default)]
struct PerRequest(Collect);

impl Reporter for PerRequest {
    fn report(&self, event: Event) {
        match event {
            Event::Warning(_) => self.0.report(event),
            other => Log.report(other),
        }
    }
}

type Reply = oneshot::Sender<Result<Done, Failed>>;

/// A queued job's fate, decided once: the worker starts it or the waiting request withdraws it.
#[derive(Debug, Default)]
struct Ticket(AtomicU8);

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const WITHDRAWN: u8 = 2;

impl Ticket {
    fn start(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn withdraw(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

struct Queued {
    /// The request's number, in the order requests were queued (from 1), for the log.
    id: u64,
    job: Job,
    ticket: Arc<Ticket>,
    reply: Reply,
}

/// What the worker is doing, for the requests waiting on it and for `/healthz`.
#[derive(Debug, Default)]
struct Status {
    /// When the job running now started.
    running_since: Mutex<Option<Instant>>,
}

impl Status {
    fn running_since(&self) -> Option<Instant> {
        *self.running_since.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, since: Option<Instant>) {
        *self.running_since.lock().unwrap_or_else(|e| e.into_inner()) = since;
    }
}

/// Where the server hands jobs to the worker.
#[derive(Debug, Clone)]
pub struct Queue {
    jobs: mpsc::Sender<Queued>,
    next_id: Arc<AtomicU64>,
    status: Arc<Status>,
    timeout: Duration,
}

impl Queue {
    /// How long the worker has been on its current job, when that is longer than the request
    /// timeout: the git server or a registry is not answering.
    pub fn stuck(&self) -> Option<Duration> {
        let running = self.status.running_since()?.elapsed();
        (running > self.timeout).then_some(running)
    }

    /// Queues `job` and waits for its result, at most the request timeout for it to start
    /// and as long again for it to finish.
    pub async fn run(&self, job: Job) -> Result<Done, Failed> {
        if let Some(running) = self.stuck() {
            return Err(Failed {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: format!(
                    "the update worker has been on one request for {} s (the git server or a \
                     registry is not answering); try again later",
                    running.as_secs()
                ),
                warnings: Vec::new(),
            });
        }
        let (reply, mut answer) = oneshot::channel();
        let ticket = Arc::new(Ticket::default());
        let queued = Queued {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            job,
            ticket: ticket.clone(),
            reply,
        };
        self.jobs.try_send(queued).map_err(|e| Failed {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: match e {
                mpsc::error::TrySendError::Full(_) => {
                    format!("too many requests waiting ({QUEUE}); try again later")
                }
                mpsc::error::TrySendError::Closed(_) => "the service is shutting down".into(),
            },
            warnings: Vec::new(),
        })?;
        let stopped = || Failed {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the update worker stopped".into(),
            warnings: Vec::new(),
        };
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, &mut answer).await {
            Ok(result) => return result.map_err(|_| stopped())?,
            Err(_) if ticket.withdraw() => {
                return Err(Failed {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: format!(
                        "the update worker did not get to this request within {} s (the \
                         requests before it are slow or stuck); nothing was changed, try again \
                         later",
                        timeout.as_secs()
                    ),
                    warnings: Vec::new(),
                })
            }
            Err(_) => {}
        }
        // Started: it has its own request timeout to finish.
        let started = self.status.running_since().unwrap_or_else(Instant::now);
        let deadline = tokio::time::Instant::from_std(started + timeout);
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(result) => result.map_err(|_| stopped())?,
            Err(_) => Err(Failed {
                status: StatusCode::GATEWAY_TIMEOUT,
                message: format!(
                    "the update did not finish within {} s (the git server or a registry is \
                     not answering); it may still be pushed if the server answers later",
                    timeout.as_secs()
                ),
                warnings: Vec::new(),
            }),
        }
    }
}

/// The worker thread, to wait for at shutdown.
#[derive(Debug)]
pub struct Worker {
    thread: JoinHandle<()>,
    status: Arc<Status>,
}

impl Worker {
    /// Waits up to `grace` for the worker to finish its jobs; returns how long the job it is
    /// still on has been running when it did not finish in time.
    pub fn join_within(self, grace: Duration) -> Result<(), Duration> {
        let deadline = Instant::now() + grace;
        while !self.thread.is_finished() {
            if Instant::now() >= deadline {
                let running = self
                    .status
                    .running_since()
                    .map(|since| since.elapsed())
                    .unwrap_or_default();
                return Err(running);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.thread.join();
        Ok(())
    }
}

/// Starts the worker thread; it ends when every [`Queue`] is dropped.
pub fn start(checkout: Checkout, settings: Settings) -> io::Result<(Queue, Worker)> {
    let (jobs, mut incoming) = mpsc::channel::<Queued>(QUEUE);
    let status = Arc::new(Status::default());
    let timeout = settings.request_timeout;
    let worker_status = status.clone();
    let thread = std::thread::Builder::new()
        .name("cru-serve-worker".into())
        .spawn(move || {
            let mut checkout = checkout;
            while let Some(queued) = incoming.blocking_recv() {
                // A request that gave up waiting is not run behind its client's back.
                if !queued.ticket.start() {
                    continue;
                }
                worker_status.set(Some(Instant::now()));
                let reporter = Arc::new(PerRequest::default());
                let shared = SharedReporter::new(reporter.clone());
                checkout.set_reporter(shared.clone());
                let result = run_job(&checkout, &settings, &queued.job, &shared);
                checkout.set_reporter(SharedReporter::default());
                worker_status.set(None);
                let warnings = reporter.0.warnings();
                for warning in &warnings {
                    tracing::warn!("request {}: {warning}", queued.id);
                }
                let result = match result {
                    Ok(done) => Ok(Done { warnings, ..done }),
                    Err(failed) => Err(Failed { warnings, ..failed }),
                };
                // The client may have gone; the work is done either way.
                let _ = queued.reply.send(result);
            }
        })?;
    Ok((
        Queue {
            jobs,
            next_id: Arc::default(),
            status: status.clone(),
            timeout,
        },
        Worker { thread, status },
    ))
}

fn run_job(
    checkout: &Checkout,
    settings: &Settings,
    job: &Job,
    reporter: &SharedReporter,
) -> Result<Done, Failed> {
    checkout.refresh().map_err(|e| Failed {
        status: StatusCode::BAD_GATEWAY,
        message: chain(e),
        warnings: Vec::new(),
    })?;
    // The branch's tip decides where a PATH leads: a commit can replace a folder with a
    // symbolic link to anywhere on this host.
    if let Some(path) = settings.paths.iter().find(|p| checkout.is_outside(p)) {
        return Err(Failed {
            status: StatusCode::CONFLICT,
            message: format!(
                "{}: leads outside the repository {} in the branch's tip (a symbolic link?); \
                 nothing was changed",
                path.display(),
                checkout.shown()
            ),
            warnings: Vec::new(),
        });
    }
    let result = update(checkout, settings, job, reporter);
    if result.is_err() {
        // Whatever the job wrote or committed locally goes; the remote was never touched
        // by a failed push.
        if let Err(e) = checkout.refresh() {
            reporter.warn(format!(
                "resetting the working clone after a failed request: {e}"
            ));
        }
    }
    result
}

fn update(
    checkout: &Checkout,
    settings: &Settings,
    job: &Job,
    reporter: &SharedReporter,
) -> Result<Done, Failed> {
    let workdir = checkout.workdir().to_path_buf();
    let roots: Vec<PathBuf> = if settings.paths.is_empty() {
        vec![workdir.clone()]
    } else {
        settings.paths.iter().map(|p| workdir.join(p)).collect()
    };
    // The configuration of the branch's tip, read again for every request.
    let merged = settings.layers.settings(&roots[0]).map_err(|e| Failed {
        status: StatusCode::CONFLICT,
        message: format!(
            "the repository's configuration file cannot be used: {e}; nothing was changed"
        ),
        warnings: Vec::new(),
    })?;
    let scanner = merged.scanner();
    let scope = merged.scope();
    let registry: Option<Box<dyn update::Resolve>> =
        if job.bump.is_some() || job.resolve_digest || merged.pins_digests() {
            let options = ResolverOptions {
                reporter: reporter.clone(),
                ..merged.resolver_options()
            };
            let resolver = Resolver::new(options).map_err(|e| Failed {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("setting up registry lookups: {e}"),
                warnings: Vec::new(),
            })?;
            Some(if job.bump.is_some() {
                Box::new(crate::bump::BumpResolve::new(resolver, job.resolve_digest))
            } else {
                Box::new(RegistryResolve::new(
                    resolver,
                    Lookups {
                        digest: job.resolve_digest,
                        tag: false,
                    },
                ))
            })
        } else {
            None
        };
    let resolve: &dyn update::Resolve = match &registry {
        Some(r) => r.as_ref(),
        None => &Offline,
    };
    let spec = CommitSpec {
        message: job.message.clone(),
        name: settings.name.clone(),
        email: settings.email.clone(),
        push: true,
    };
    let outcome = checkout.update(Some(&spec), settings.dry_run, |workdir, dry_run| {
        let summary = update::Job {
            roots: &roots,
            base: Some(workdir),
            scanner: &scanner,
            rules: &job.rules,
            scope: &scope,
            confine: Some(workdir),
            resolver: resolve,
            dry_run,
            reporter,
        }
        .run(&mut io::sink())?;
        Ok(summary.paths)
    });
    // The git layer gives the files relative to the working tree's root.
    let shown = |files: Vec<PathBuf>| files.iter().map(|f| f.display().to_string()).collect();
    match outcome {
        Ok(Outcome::Committed { id, files, .. }) => Ok(Done {
            files: shown(files),
            commit: Some(id),
            ..Done::default()
        }),
        Ok(Outcome::DryRun(files)) => Ok(Done {
            files: shown(files),
            ..Done::default()
        }),
        Ok(Outcome::NoChange | Outcome::NotCommitted(_)) => Ok(Done::default()),
        Err(e) => Err(failed(e)),
    }
}

/// The status for a failed update: the registries or the git server refusing is a bad
/// gateway; a branch that keeps moving is worth retrying later; the rest is ours.
fn failed(err: GitError) -> Failed {
    let (status, lookups) = match &err {
        GitError::Change {
            source: ChangeError::Update(UpdateError::Resolve(inner)),
            ..
        } => (
            StatusCode::BAD_GATEWAY,
            match inner {
                ResolveError::Lookups(l) => Some(l.messages().join("; ")),
                ResolveError::Failed(_) => None,
            },
        ),
        GitError::Change { .. } => (StatusCode::INTERNAL_SERVER_ERROR, None),
        GitError::KeptMoving { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
        _ => (StatusCode::BAD_GATEWAY, None),
    };
    let message = match lookups {
        Some(each) => format!("{}: {each}", chain(err)),
        None => chain(err),
    };
    Failed::new(status, message)
}

/// The error and its causes, as the binary prints them (`{:#}`).
fn chain(err: GitError) -> String {
    format!("{:#}", anyhow::Error::from(err))
}
