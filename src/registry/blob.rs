//! Blobs for `cru mirror`: `HEAD` on the target, cross-repository mounts and the copy from a
//! source registry into a target upload.
//!
//! A copy streams: the source `GET` body is read a piece at a time, hashed while it streams
//! and handed to the target in chunks of [`CHUNK_BYTES`] (`PATCH` with `Content-Range`, at
//! least 5 MiB as ECR requires), the last piece with the closing `PUT ?digest=`; a blob
//! smaller than a chunk goes in one `PUT`. So at most one chunk per copy is in memory, and a
//! chunk is kept until the target took it, so that a 5xx is retried without fetching again.
//! A chunk or closing `PUT` whose answer was lost is not repeated blindly (the target may
//! have taken it, and refuses or drops a session resumed at a stale offset): a `HEAD` asks
//! whether the blob is there, the session's status (`GET`, `Range: 0-N`) where to go on
//! from; a session that is gone fails as [`CopyFailure::Session`], for the caller to start
//! again in a fresh one.
//! The body may not outgrow the size its descriptor gives, and must hash to its digest, or
//! the upload is abandoned and the copy fails. Credentials go only to the target's own
//! origin: an upload `Location` elsewhere gets no `Authorization`. It does not decide which
//! blobs to copy or share copies between images (that is [`crate::mirror`]).

use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

use super::answer::same_origin;
use super::client::{check_status, error_chain, Access, Client, Deadline, Failure};
use super::manifest::refusal;
use super::registries_conf::Endpoint;
use crate::backoff::Backoff;

/// The size of an upload chunk: at least 5 MiB (ECR refuses smaller ones but the last).
pub const CHUNK_BYTES: usize = 8 << 20;

/// A chunk or closing `PUT` that was refused or lost its answer is sent again, from where
/// the session's status says, three times at most.
const SESSION_RETRY: Backoff = Backoff {
    retries: 3,
    base: std::time::Duration::from_millis(100),
    max: std::time::Duration::from_secs(1),
};

/// How a blob reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// The registry linked it from the other repository (201).
    Mounted,
    /// The registry did not (202): it must be uploaded.
    Refused,
}

/// Which side of a copy failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFailure {
    /// Reading from the source, or what it sent (size, digest).
    Source(Failure),
    /// Writing to the target.
    Target(Failure),
    /// The target no longer has the upload session in the state this copy left it (a chunk
    /// or the closing `PUT` was taken but its answer lost, and the retry was refused): the
    /// copy may start again in a fresh session. Says what was refused.
    Session(String),
}

/// Whether a refused or unanswered upload request may be a retry of one the target took:
/// not a matter of credentials or limits, which another session would meet again.
fn maybe_taken(f: &Failure) -> bool {
    matches!(
        f,
        Failure::NotFound | Failure::Protocol(_) | Failure::Unreachable(_)
    )
}

/// A failure in a few words, for [`CopyFailure::Session`].
fn refused(f: &Failure) -> String {
    match f {
        Failure::NotFound => "404".to_owned(),
        Failure::Protocol(r) | Failure::Unreachable(r) => r.clone(),
        other => format!("{other:?}"),
    }
}

fn blob_url(ep: &Endpoint, digest: &str) -> String {
    format!("{}/v2/{}/blobs/{digest}", ep.base_url(), ep.repository)
}

impl Client {
    /// Whether the repository has the blob (`HEAD`, with the token for `access`).
    pub async fn blob_exists(
        &self,
        ep: &Endpoint,
        access: Access,
        digest: &str,
    ) -> Result<bool, Failure> {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let url = blob_url(ep, digest);
        let resp = self
            .authed(ep, access, &deadline, || self.http.head(&url))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        check_status(resp.status())?;
        Ok(true)
    }

    /// Asks the registry to mount `digest` from repository `from` (same registry) into `ep`'s
    /// repository. A 202 opens an upload session, which is cancelled: the caller uploads.
    pub async fn mount_blob(
        &self,
        ep: &Endpoint,
        digest: &str,
        from: &str,
    ) -> Result<Mount, Failure> {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let url = format!("{}/v2/{}/blobs/uploads/", ep.base_url(), ep.repository);
        let query = [("mount", digest), ("from", from)];
        let resp = self
            .authed_with(ep, Access::Push, Some(from), &deadline, || {
                self.http.post(&url).query(&query)
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => {
                if let Ok(location) = upload_location(ep, &resp) {
                    self.cancel_upload(ep, &location).await;
                }
                Ok(Mount::Refused)
            }
            _ => Err(refusal(resp, &deadline).await),
        }
    }

    /// Copies blob `digest` of `size` bytes from `source` into `target`, streaming, and
    /// returns the bytes moved. `progress` is told each piece's length as it arrives.
    pub async fn copy_blob(
        &self,
        source: &Endpoint,
        target: &Endpoint,
        digest: &str,
        size: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, CopyFailure> {
        let Some(want) = digest.strip_prefix("sha256:") else {
            return Err(CopyFailure::Source(Failure::Protocol(format!(
                "blob {digest}: cru copies sha256 blobs only"
            ))));
        };
        let mut location = self
            .start_upload(target)
            .await
            .map_err(CopyFailure::Target)?;
        let outcome = self
            .stream_into(source, target, digest, want, size, &mut location, progress)
            .await;
        if outcome.is_err() {
            self.cancel_upload(target, &location).await;
        }
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream_into(
        &self,
        source: &Endpoint,
        target: &Endpoint,
        digest: &str,
        want: &str,
        size: u64,
        location: &mut String,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, CopyFailure> {
        use CopyFailure::Source;
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let url = blob_url(source, digest);
        // The whole body must arrive within the request timeout plus a second per MiB.
        let allowed = self.policy.request_timeout + std::time::Duration::from_secs(size >> 20);
        let mut resp = self
            .authed(source, Access::Pull, &deadline, || {
                self.http.get(&url).timeout(allowed)
            })
            .await
            .map_err(Source)?;
        check_status(resp.status()).map_err(Source)?;
        if resp.content_length().is_some_and(|n| n != size) {
            return Err(Source(Failure::Protocol(format!(
                "blob {digest} is {} bytes on the source, its manifest says {size}",
                resp.content_length().unwrap_or(0)
            ))));
        }
        let mut hasher = Sha256::new();
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES.min(size as usize) + (64 << 10));
        let mut offset = 0u64;
        let mut got = 0u64;
        loop {
            let piece = tokio::time::timeout(self.policy.request_timeout, resp.chunk())
                .await
                .map_err(|_| {
                    Source(Failure::Unreachable(format!(
                        "blob {digest}: the source sent nothing for {}s",
                        self.policy.request_timeout.as_secs()
                    )))
                })?
                .map_err(|e| Source(Failure::Unreachable(error_chain(&e.without_url()))))?;
            let Some(piece) = piece else { break };
            got += piece.len() as u64;
            if got > size {
                return Err(Source(Failure::Protocol(format!(
                    "blob {digest} is larger on the source than the {size} bytes its manifest says"
                ))));
            }
            hasher.update(&piece);
            buf.extend_from_slice(&piece);
            progress(piece.len() as u64);
            if buf.len() >= CHUNK_BYTES {
                let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_BYTES));
                let len = chunk.len() as u64;
                *location = self.patch_chunk(target, location, offset, chunk).await?;
                offset += len;
            }
        }
        if got != size {
            return Err(Source(Failure::Protocol(format!(
                "blob {digest} ended after {got} of the {size} bytes its manifest says"
            ))));
        }
        let hash = hasher.finalize();
        let mut hex = String::with_capacity(64);
        for b in hash {
            hex.push_str(&format!("{b:02x}"));
        }
        if hex != want {
            return Err(Source(Failure::Protocol(format!(
                "blob {digest} from the source hashes to sha256:{hex}; not copied"
            ))));
        }
        self.finish_upload(target, location, offset, digest, buf)
            .await?;
        Ok(got)
    }

    /// `POST /v2/<name>/blobs/uploads/`: the session's URL.
    async fn start_upload(&self, ep: &Endpoint) -> Result<String, Failure> {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let url = format!("{}/v2/{}/blobs/uploads/", ep.base_url(), ep.repository);
        let resp = self
            .authed(ep, Access::Push, &deadline, || self.http.post(&url))
            .await?;
        if !matches!(resp.status(), StatusCode::ACCEPTED | StatusCode::CREATED) {
            return Err(refusal(resp, &deadline).await);
        }
        upload_location(ep, &resp)
    }

    /// Sends one chunk, which starts at `offset`; returns the session's next URL. A chunk
    /// refused or unanswered is not sent blindly again (a registry that took it refuses the
    /// repeat, and may drop the session): the session's status says what it holds, and the
    /// rest of the chunk goes from there. A session that is gone or holds less than
    /// `offset` is [`CopyFailure::Session`].
    async fn patch_chunk(
        &self,
        ep: &Endpoint,
        location: &str,
        offset: u64,
        chunk: Vec<u8>,
    ) -> Result<String, CopyFailure> {
        let body = bytes::Bytes::from(chunk);
        let end = offset + body.len() as u64;
        let mut location = location.to_owned();
        let mut start = offset;
        let mut failures = 0;
        loop {
            let rest = body.slice((start - offset) as usize..);
            let failure = match self.patch_once(ep, &location, start, rest).await {
                Ok(next) => return Ok(next),
                Err(f) if maybe_taken(&f) => f,
                Err(f) => return Err(CopyFailure::Target(f)),
            };
            match self.upload_status(ep, &location).await {
                Some((held, next)) if held == end => return Ok(next),
                Some((held, next))
                    if (offset..end).contains(&held) && SESSION_RETRY.allows(failures) =>
                {
                    location = next;
                    start = held;
                }
                _ => {
                    return Err(CopyFailure::Session(format!(
                        "the chunk at {offset} failed ({}) and the session does not hold it",
                        refused(&failure)
                    )))
                }
            }
            tokio::time::sleep(SESSION_RETRY.delay(failures)).await;
            failures += 1;
        }
    }

    async fn patch_once(
        &self,
        ep: &Endpoint,
        location: &str,
        start: u64,
        body: bytes::Bytes,
    ) -> Result<String, Failure> {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let range = format!("{start}-{}", start + body.len() as u64 - 1);
        let resp = self
            .session_request(ep, location, &deadline, false, || {
                self.http
                    .patch(location)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, &range)
                    .body(body.clone())
            })
            .await?;
        if !matches!(resp.status(), StatusCode::ACCEPTED | StatusCode::NO_CONTENT) {
            return Err(refusal(resp, &deadline).await);
        }
        upload_location(ep, &resp).or_else(|_| Ok(location.to_owned()))
    }

    /// The closing `PUT ?digest=` with the last bytes, which start at `offset`. When it is
    /// refused or unanswered, the blob may be stored all the same (a `PUT` whose answer was
    /// lost closed the session): a `HEAD` says; if it is not, the session's status says
    /// where to send the rest from, as for a chunk.
    async fn finish_upload(
        &self,
        ep: &Endpoint,
        location: &str,
        offset: u64,
        digest: &str,
        rest: Vec<u8>,
    ) -> Result<(), CopyFailure> {
        let body = bytes::Bytes::from(rest);
        let end = offset + body.len() as u64;
        let mut location = location.to_owned();
        let mut start = offset;
        let mut failures = 0;
        loop {
            let rest = body.slice((start - offset) as usize..);
            let failure = match self.put_once(ep, &location, digest, rest).await {
                Ok(()) => return Ok(()),
                Err(f) if maybe_taken(&f) => f,
                Err(f) => return Err(CopyFailure::Target(f)),
            };
            if self
                .blob_exists(ep, Access::Push, digest)
                .await
                .unwrap_or(false)
            {
                return Ok(());
            }
            match self.upload_status(ep, &location).await {
                Some((held, next))
                    if (offset..=end).contains(&held) && SESSION_RETRY.allows(failures) =>
                {
                    location = next;
                    start = held;
                }
                _ => {
                    return Err(CopyFailure::Session(format!(
                        "the closing PUT failed ({}) and the target has no such blob",
                        refused(&failure)
                    )))
                }
            }
            tokio::time::sleep(SESSION_RETRY.delay(failures)).await;
            failures += 1;
        }
    }

    async fn put_once(
        &self,
        ep: &Endpoint,
        location: &str,
        digest: &str,
        body: bytes::Bytes,
    ) -> Result<(), Failure> {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let mut url = url::Url::parse(location)
            .map_err(|_| Failure::Protocol("the upload location is not a URL".into()))?;
        url.query_pairs_mut().append_pair("digest", digest);
        let url = url.to_string();
        let resp = self
            .session_request(ep, location, &deadline, false, || {
                self.http
                    .put(&url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        if !matches!(
            resp.status(),
            StatusCode::CREATED | StatusCode::ACCEPTED | StatusCode::NO_CONTENT
        ) {
            return Err(refusal(resp, &deadline).await);
        }
        Ok(())
    }

    /// The upload's status (`GET` on the session, answered with `Range: 0-N` and the next
    /// `Location`): the bytes it holds and where to go on. `None`: the session is gone or
    /// answers nothing usable.
    async fn upload_status(&self, ep: &Endpoint, location: &str) -> Option<(u64, String)> {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let resp = self
            .session_request(ep, location, &deadline, true, || self.http.get(location))
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let last = resp
            .headers()
            .get(RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|r| r.trim().trim_start_matches("bytes="))
            .and_then(|r| r.strip_prefix("0-"))
            .and_then(|n| n.parse::<u64>().ok())?;
        // `0-0` is what distribution says of an empty session (and of one byte, which no
        // chunk of cru's is).
        let held = if last == 0 { 0 } else { last + 1 };
        let next = upload_location(ep, &resp).unwrap_or_else(|_| location.to_owned());
        Some((held, next))
    }

    /// Abandons an upload session, best effort.
    async fn cancel_upload(&self, ep: &Endpoint, location: &str) {
        let deadline = Deadline::new(self.policy.lookup_deadline);
        let _ = self
            .session_request(ep, location, &deadline, true, || self.http.delete(location))
            .await;
    }

    /// A request to an upload session: authorized only on the registry's own origin.
    /// `resend_lost`: whether a request whose answer was lost is sent again as it is.
    async fn session_request(
        &self,
        ep: &Endpoint,
        location: &str,
        deadline: &Deadline,
        resend_lost: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        match (same_origin(location, &ep.base_url()), resend_lost) {
            (true, true) => self.authed(ep, Access::Push, deadline, build).await,
            (true, false) => self.authed_once_sent(ep, deadline, build).await,
            (false, _) => self.send_with(deadline, resend_lost, build).await,
        }
    }
}

/// The absolute URL of an upload session from an answer's `Location`.
fn upload_location(ep: &Endpoint, resp: &reqwest::Response) -> Result<String, Failure> {
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Failure::Protocol("the upload answer has no Location".into()))?;
    url::Url::parse(&format!("{}/", ep.base_url()))
        .and_then(|base| base.join(location))
        .map(String::from)
        .map_err(|_| Failure::Protocol("the upload Location is not a URL".into()))
}
