//! `GET /healthz` of `cru serve`: whether the repository answers and has the branch. The
//! endpoint needs no token, so it must not let anyone make the service open git connections
//! at will: one probe runs at a time (single flight), its answer is kept for a few seconds
//! and given to every request in that time, and a probe stuck on a stalling git server is
//! never joined by a second one. It does not look at the worker: the server does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Mutex};

use crate::git;

/// How long one probe may take before the repository counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a probe's answer is given to later requests.
pub const CACHE_FOR: Duration = Duration::from_secs(5);

/// The shared probe of one repository.
#[derive(Debug)]
pub struct Health {
    /// The repository as given, with any credentials: never shown.
    url: String,
    /// The repository as shown, redacted.
    shown: String,
    branch: String,
    /// The last answer and when it was had; held while a probe runs, so that concurrent
    /// requests wait for that probe instead of starting their own.
    last: Mutex<Option<(Instant, Result<(), String>)>>,
    /// Whether a probe thread is still running (it may outlive its timeout).
    probing: Arc<AtomicBool>,
    /// The git layer's bounds for the probe (its total is [`PROBE_TIMEOUT`]).
    timeouts: git::Timeouts,
}

impl Health {
    /// A probe of `url`'s `branch`; `shown` names the repository in messages.
    /// `timeouts` are the service's git bounds (libgit2 keeps them per process).
    pub fn new(url: String, shown: String, branch: String, timeouts: git::Timeouts) -> Health {
        Health {
            timeouts: git::Timeouts {
                total: PROBE_TIMEOUT,
                ..timeouts
            },
            url,
            shown,
            branch,
            last: Mutex::new(None),
            probing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the repository answers: the cached answer if it is recent, else a new probe's.
    /// The error says why not, redacted.
    pub async fn check(&self) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = &*last {
            if at.elapsed() < CACHE_FOR {
                return answer.clone();
            }
        }
        let answer = self.probe().await;
        if let Err(e) = &answer {
            tracing::warn!("health check: {e}");
        }
        *last = Some((Instant::now(), answer.clone()));
        answer
    }

    async fn probe(&self) -> Result<(), String> {
        if self.probing.swap(true, Ordering::AcqRel) {
            return Err(format!(
                "the previous probe of {} has not returned yet",
                self.shown
            ));
        }
        let (url, branch, timeouts) = (self.url.clone(), self.branch.clone(), self.timeouts);
        let probing = self.probing.clone();
        let (tx, rx) = oneshot::channel();
        // A thread of its own, not the runtime's blocking pool: a probe stuck on a stalling
        // server must not hold up the runtime's shutdown.
        let spawned = std::thread::Builder::new()
            .name("cru-serve-probe".into())
            .spawn(move || {
                let result = git::probe_with(&url, &branch, timeouts).map_err(|e| e.to_string());
                probing.store(false, Ordering::Release);
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            self.probing.store(false, Ordering::Release);
            return Err(format!("starting a probe: {e}"));
        }
        match tokio::time::timeout(PROBE_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the probe stopped without an answer".into()),
            Err(_) => Err(format!(
                "no answer from {} within {} s",
                self.shown,
                PROBE_TIMEOUT.as_secs()
            )),
        }
    }
}
