//! `cru serve`: an HTTP service that updates image references in one git repository on
//! request, so that a pipeline that just pushed an image can update the manifests without
//! write access to them. The API is the Go tool's (`POST /` with `image-references`,
//! `commit-message`, `matching-tag`; see [`api`]), behind a bearer token.
//!
//! The repository is cloned once at start; one worker thread ([`worker`]) owns that clone and
//! runs the requests one at a time. This module is the HTTP edge: authentication, the body
//! limit, status codes, request logs and a shutdown on SIGTERM that answers the requests in
//! flight but waits for them a bounded time only. Connections are bounded by [`listen`],
//! health probes shared by [`health`]. It never logs a token, and names the repository only
//! with its password redacted.

pub mod api;
pub mod health;
pub mod listen;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use regex::Regex;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::git::{self, Checkout, GitError};
use api::{ErrorBody, Refusal, UpdateResponse};
use health::Health;
use worker::Queue;

/// Everything `cru serve` runs with.
pub struct ServeOptions {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The repository, as given (may hold credentials: never shown).
    pub repository: String,
    /// The branch to update; default: the remote's default branch.
    pub branch: Option<String>,
    /// The bearer token clients must send; `None` serves without authentication.
    pub token: Option<String>,
    /// Repositories (normalised names) that may be updated; empty: all.
    pub allow: Vec<Regex>,
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// How many connections may be open at once.
    pub max_connections: usize,
    /// What the worker runs with.
    pub worker: worker::Settings,
}

/// Why the service could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Cloning the repository failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// A PATH leads out of the repository.
    #[error("{}: outside the repository {repository}", .path.display())]
    OutsideRepository {
        /// The PATH.
        path: PathBuf,
        /// The repository, redacted.
        repository: String,
    },
    /// The address could not be bound, or serving failed.
    #[error("serving on {addr}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// At shutdown, the update in progress did not finish within the grace period.
    #[error(
        "stopped without finishing the update in progress (running for {} s: the git server \
         or a registry did not answer); it may or may not have been pushed",
        .running.as_secs()
    )]
    Abandoned {
        /// How long it had been running.
        running: Duration,
    },
}

/// How long a client may take to send a request's head; also how long a kept-alive
/// connection may stay idle.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

struct AppState {
    queue: Queue,
    /// SHA-256 of the token: compared in constant time, whatever the lengths.
    token: Option<[u8; 32]>,
    allow: Vec<Regex>,
    /// The repository as shown in answers, redacted.
    shown: String,
    health: Health,
    /// How long a client may take to send a request's body: `--request-timeout`.
    body_timeout: Duration,
}

/// What a request did, for its log line.
#[derive(Debug, Clone, Default)]
struct RequestLog {
    references: Vec<String>,
    commit: Option<String>,
    error: Option<String>,
}

/// The bounds of every git network operation of the service: none outlives a request.
/// libgit2 keeps the connect and stall limits per process, so the clone, every fetch and push
/// and the health probe share these.
pub(crate) fn git_timeouts(request_timeout: Duration) -> git::Timeouts {
    let default = git::Timeouts::default();
    git::Timeouts {
        connect: default.connect.min(request_timeout),
        stall: default.stall.min(request_timeout),
        total: request_timeout,
    }
}

/// Clones the repository, starts the worker and serves until SIGTERM or Ctrl-C; requests in
/// flight are answered before it returns, if they finish within the request timeout.
pub fn run(options: ServeOptions) -> Result<(), ServeError> {
    let timeouts = git_timeouts(options.worker.request_timeout);
    let checkout = Checkout::clone_with(&options.repository, options.branch.as_deref(), timeouts)?;
    if let Some(path) = options.worker.paths.iter().find(|p| checkout.is_outside(p)) {
        return Err(ServeError::OutsideRepository {
            path: path.clone(),
            repository: checkout.shown().to_string(),
        });
    }
    let shown = checkout.shown().to_string();
    let branch = checkout.branch().unwrap_or("HEAD").to_string();
    let io_error = |source| ServeError::Io {
        addr: options.listen,
        source,
    };
    let grace = options.worker.request_timeout;
    // The clone's temporary folder, to remove if the worker (which owns it) is abandoned.
    let clone_dir = checkout
        .workdir()
        .parent()
        .filter(|dir| {
            dir.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("cru-clone-"))
        })
        .map(std::path::Path::to_path_buf);
    let (queue, worker) = worker::start(checkout, options.worker.clone()).map_err(io_error)?;
    if options.token.is_none() {
        tracing::warn!("--insecure-no-auth: anyone who can reach this port can push commits");
    }
    let state = Arc::new(AppState {
        queue,
        token: options.token.as_deref().map(|t| Sha256::digest(t).into()),
        allow: options.allow,
        shown: shown.clone(),
        health: Health::new(options.repository, shown.clone(), branch.clone(), timeouts),
        body_timeout: grace,
    });
    let app = router(state, options.max_body);
    let limits = listen::Limits {
        header_timeout: HEADER_TIMEOUT,
        max_connections: options.max_connections,
        grace,
    }
    .within_open_files();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io_error)?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        tracing::info!(
            "serving {shown} (branch {branch}){} on http://{}",
            if options.worker.dry_run {
                " in a dry run"
            } else {
                ""
            },
            listener.local_addr()?
        );
        let stopped = listen::serve(listener, app, limits, shutdown_signal()).await;
        Ok::<_, std::io::Error>(stopped)
    });
    // The router (and with it the last queue sender) is gone: the worker ends after its job,
    // or is abandoned when that job outlasts the grace period.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let stopped = served.map_err(io_error)?;
    if stopped.cut > 0 {
        tracing::warn!(
            "cut {} connection(s) whose requests had not finished within {} s",
            stopped.cut,
            grace.as_secs()
        );
    }
    let left = grace.saturating_sub(stopped.since.elapsed());
    if let Err(running) = worker.join_within(left) {
        tracing::warn!(
            "abandoning the update in progress after {} s: the git server or a registry did \
             not answer",
            running.as_secs()
        );
        if let Some(dir) = clone_dir {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!("removing the working clone {}: {e}", dir.display());
            }
        }
        return Err(ServeError::Abandoned { running });
    }
    tracing::info!("stopped");
    Ok(())
}

fn router(state: Arc<AppState>, max_body: usize) -> Router {
    Router::new()
        .route(
            "/",
            post(update).route_layer(middleware::from_fn_with_state(state.clone(), authorize)),
        )
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: answering the requests in flight first");
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    error_warned(status, message, Vec::new())
}

fn error_warned(status: StatusCode, message: impl Into<String>, warnings: Vec<String>) -> Response {
    let message = message.into();
    let mut response = (
        status,
        Json(ErrorBody {
            error: message.clone(),
            warnings,
        }),
    )
        .into_response();
    response.extensions_mut().insert(RequestLog {
        error: Some(message),
        ..RequestLog::default()
    });
    response
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn authorize(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        let valid = given.is_some_and(|token| {
            let digest: [u8; 32] = Sha256::digest(token).into();
            bool::from(digest.ct_eq(expected))
        });
        if !valid {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "missing or invalid token: send Authorization: Bearer <token>",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(request).await
}

async fn update(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let within = state.body_timeout;
    let body = match tokio::time::timeout(within, Bytes::from_request(request, &())).await {
        Ok(Ok(body)) => body,
        Ok(Err(rejection)) => return error(rejection.status(), rejection.body_text()),
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    within.as_secs()
                ),
            )
        }
    };
    let job = match api::job(&body, &state.allow) {
        Ok(job) => job,
        Err(Refusal::BadRequest(message)) => return error(StatusCode::BAD_REQUEST, message),
        Err(Refusal::Forbidden(message)) => return error(StatusCode::FORBIDDEN, message),
    };
    let references: Vec<String> = job.references.iter().map(ToString::to_string).collect();
    let mut response = match state.queue.run(job).await {
        Ok(done) => {
            let commit = done.commit.clone();
            let mut response = Json(UpdateResponse {
                git_url: state.shown.clone(),
                files: done.files,
                commit_sha: done.commit,
                warnings: done.warnings,
            })
            .into_response();
            response.extensions_mut().insert(RequestLog {
                commit,
                ..RequestLog::default()
            });
            response
        }
        Err(failed) => error_warned(failed.status, failed.message, failed.warnings),
    };
    if let Some(log) = response.extensions_mut().get_mut::<RequestLog>() {
        log.references = references;
    }
    response
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    // A worker stuck on a stalling git server or registry serves nobody, whatever the probe.
    // Logged at debug only: the endpoint needs no token, so its lines could flood the log; the
    // overrunning request logs its own failure.
    if let Some(running) = state.queue.stuck() {
        tracing::debug!(
            "health check: the update worker has been on one request for {} s",
            running.as_secs()
        );
        return unavailable(format!(
            "the update worker has been on one request for {} s",
            running.as_secs()
        ));
    }
    match state.health.check().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(_) => unavailable("the repository cannot be reached".into()),
    }
}

fn unavailable(why: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"status": "unavailable", "error": why})),
    )
        .into_response()
}

/// One log line per request: method, path, status, duration, and what the update did.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let millis = start.elapsed().as_millis() as u64;
    let log = response
        .extensions()
        .get::<RequestLog>()
        .cloned()
        .unwrap_or_default();
    let references = log.references.join(",");
    let commit = log.commit.as_deref().unwrap_or("-");
    match (&log.error, path.as_str()) {
        (Some(error), _) => tracing::warn!(
            %method, %path, status, duration_ms = millis, %references, %commit, %error,
            "request failed"
        ),
        (None, "/healthz") => {
            tracing::debug!(%method, %path, status, duration_ms = millis, "request")
        }
        (None, _) => tracing::info!(
            %method, %path, status, duration_ms = millis, %references, %commit,
            "request"
        ),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn reads_bearer_tokens_only() {
        assert_eq!(bearer("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer("bearer  s3cret "), Some("s3cret"));
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("s3cret"), None);
    }
}
