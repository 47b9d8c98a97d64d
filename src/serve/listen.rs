//! The accept loop of `cru serve`: HTTP/1 connections with a deadline for every request head
//! (which also closes a kept-alive connection left idle), a limit on open connections, and a
//! shutdown that waits for the requests in flight for a bounded time only. At the limit, the
//! oldest connection that is not in a request (half-sent or idle) is closed to make room, so
//! that many half-open connections cannot keep a client out; when every connection is in a
//! request, the new one is closed at once. It knows nothing of the API: it serves a router.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request's head, and how long a kept-alive
    /// connection may stay idle.
    pub header_timeout: Duration,
    /// How many connections may be open at once.
    pub max_connections: usize,
    /// How long a shutdown waits for the requests in flight.
    pub grace: Duration,
}

/// Descriptors kept for everything else than connections (the clone, git, registries, logs).
const SPARE_FILES: usize = 64;

impl Limits {
    /// These limits with `max_connections` lowered, with a warning, so that the connections
    /// cannot use up the process's open-file limit (where that can be read).
    pub fn within_open_files(mut self) -> Limits {
        if let Some(limit) = open_files_limit() {
            let most = limit.saturating_sub(SPARE_FILES).max(1);
            if self.max_connections > most {
                tracing::warn!(
                    "--max-connections {} is more than the open-file limit ({limit}) allows: \
                     using {most} (raise it with `ulimit -n`)",
                    self.max_connections
                );
                self.max_connections = most;
            }
        }
        self
    }
}

/// The soft limit on open files, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One open connection, as the accept loop sees it.
struct Connection {
    /// Requests in progress on it (0: half-sent or idle, so it may be closed).
    busy: Arc<AtomicUsize>,
    /// Closes it.
    _close: oneshot::Sender<()>,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Connections(Mutex<BTreeMap<u64, Connection>>);

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Connection>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the oldest connection not in a request; false when every one is in a request.
    fn close_oldest_idle(&self) -> bool {
        let mut open = self.lock();
        let oldest = open
            .iter()
            .find(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        // Dropping its sender closes it.
        oldest.and_then(|id| open.remove(&id)).is_some()
    }
}

/// Counts a request in progress on a connection for as long as it lives.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::AcqRel);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Connections still in a request when the grace period ended, and cut.
    pub cut: usize,
    /// When the shutdown began.
    pub since: Instant,
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets the
/// requests in flight finish for up to `limits.grace`, and cuts the rest.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    let open = Arc::new(Connections::default());
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_id: u64 = 0;
    let mut warned: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, most likely: wait for connections to close.
                    if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!("accepting a connection: {e}");
                        warned = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if open.lock().len() >= limits.max_connections && !open.close_oldest_idle() {
            if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(
                    "{} connections open (--max-connections), all in a request: closing new ones",
                    limits.max_connections
                );
                warned = Some(Instant::now());
            }
            continue;
        }
        let id = next_id;
        next_id += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let (close, closed) = oneshot::channel();
        open.lock().insert(
            id,
            Connection {
                busy: busy.clone(),
                _close: close,
            },
        );
        let app = app.clone();
        let counted = busy.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let in_request = Busy::new(&counted);
            let app = app.clone();
            async move {
                let response = app.oneshot(request.map(Body::new)).await;
                drop(in_request);
                response
            }
        });
        let (open, mut stopping) = (open.clone(), stopping.clone());
        tasks.spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = closed => {}
                _ = async { stopping.wait_for(|stop| *stop).await.is_ok() } => {
                    // A connection in a request gets its answer; a half-sent or idle one
                    // is closed now, not when its header timeout ends.
                    if busy.load(Ordering::Acquire) > 0 {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
            }
            open.lock().remove(&id);
        });
    }
    let since = Instant::now();
    drop(listener);
    let _ = stop.send(true);
    let finished = tokio::time::timeout(limits.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let cut = if finished.is_err() { tasks.len() } else { 0 };
    tasks.abort_all();
    Stopped { cut, since }
}
