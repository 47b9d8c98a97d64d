//! `cru serve`: an HTTP service that updates image references in one git repository on
//! request, so that a pipeline that just pushed an image can update the manifests without
//! write access to them. The API is the Go tool's (`POST /` with `image-references`,
//! `commit-message`, `matching-tag`; see [`api`]), behind a bearer token.
//!
//! The repository is cloned once at start; one worker thread ([`worker`]) owns that clone and
//! runs the requests one at a time. This module is the HTTP edge: authentication, the body
//! limit, status codes, request logs and a graceful shutdown on SIGTERM. It never logs a
//! token, and names the repository only with its password redacted.

pub mod api;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
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
}

/// How long `GET /healthz` waits for the git server.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

struct AppState {
    queue: Queue,
    /// SHA-256 of the token: compared in constant time, whatever the lengths.
    token: Option<[u8; 32]>,
    allow: Vec<Regex>,
    /// The repository as shown in answers, redacted.
    shown: String,
    /// The repository as given, for health probes; never shown.
    url: String,
    branch: String,
}

/// What a request did, for its log line.
#[derive(Debug, Clone, Default)]
struct RequestLog {
    references: Vec<String>,
    commit: Option<String>,
    error: Option<String>,
}

/// Clones the repository, starts the worker and serves until SIGTERM or Ctrl-C; requests in
/// flight are answered before it returns.
pub fn run(options: ServeOptions) -> Result<(), ServeError> {
    let checkout = Checkout::clone(&options.repository, options.branch.as_deref())?;
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
    let (queue, worker) = worker::start(checkout, options.worker.clone()).map_err(io_error)?;
    if options.token.is_none() {
        tracing::warn!("--insecure-no-auth: anyone who can reach this port can push commits");
    }
    let state = Arc::new(AppState {
        queue,
        token: options.token.as_deref().map(|t| Sha256::digest(t).into()),
        allow: options.allow,
        shown: shown.clone(),
        url: options.repository,
        branch: branch.clone(),
    });
    let app = router(state, options.max_body);
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
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    });
    // The router (and with it the last queue sender) is gone: the worker ends after its job.
    // A health probe stuck on a hanging git server must not hold the exit up.
    runtime.shutdown_timeout(HEALTH_TIMEOUT);
    let _ = worker.join();
    tracing::info!("stopped");
    served.map_err(io_error)
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
    let message = message.into();
    let mut response = (
        status,
        Json(ErrorBody {
            error: message.clone(),
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

async fn update(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
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
            })
            .into_response();
            response.extensions_mut().insert(RequestLog {
                commit,
                ..RequestLog::default()
            });
            response
        }
        Err(failed) => error(failed.status, failed.message),
    };
    if let Some(log) = response.extensions_mut().get_mut::<RequestLog>() {
        log.references = references;
    }
    response
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let (url, branch) = (state.url.clone(), state.branch.clone());
    let probe = tokio::task::spawn_blocking(move || git::probe(&url, &branch));
    // A health check must answer, also when the git server hangs.
    match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
        Ok(Ok(Ok(()))) => {
            (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response()
        }
        Ok(Ok(Err(e))) => {
            tracing::warn!("health check: {e}");
            unavailable()
        }
        Ok(Err(_)) => unavailable(),
        Err(_) => {
            tracing::warn!(
                "health check: no answer from {} within {HEALTH_TIMEOUT:?}",
                state.shown
            );
            unavailable()
        }
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"status": "unavailable", "error": "the repository cannot be reached"})),
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
