//! The transports: fetch options with credentials, and pushing with the server's verdict
//! checked — over the network with libgit2, and into a repository on this machine with a
//! compare-and-swap of our own. Nothing here decides when to retry; [`super::Checkout`] does.

use std::cell::RefCell;
use std::path::Path;

use git2::{ErrorCode, FetchOptions, ObjectType, Oid, PushOptions, RemoteCallbacks, Repository};

use super::auth;
use super::deadline::{Deadline, Timeouts};
use super::url::{self, Location};

/// What a transport said about a push.
pub(super) enum Pushed {
    /// The server refused the reference; its message (and hook output).
    Refused(String),
    /// The remote branch has commits we lack.
    NotFastForward(String),
    /// The push did not happen (connection, authentication, …).
    Error(String),
}

/// Whether the transport can fetch shallow (libgit2's local transport cannot).
fn shallow(url: &str) -> bool {
    url::file_url_path(url).is_none() && matches!(Location::parse(url), Location::Remote(_))
}

/// Callbacks with credentials, which also stop the operation once `deadline` has passed.
pub(super) fn callbacks<'a>(
    creds: &'a RefCell<auth::Credentials>,
    deadline: Deadline,
) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |url, user, allowed| {
        deadline.check()?;
        creds.borrow_mut().next(url, user, allowed)
    });
    callbacks.transfer_progress(move |_| !deadline.passed());
    callbacks.sideband_progress(move |_| !deadline.passed());
    callbacks
}

pub(super) fn fetch_options<'a>(
    url: &str,
    creds: &'a RefCell<auth::Credentials>,
    deadline: Deadline,
) -> FetchOptions<'a> {
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks(creds, deadline));
    if shallow(url) {
        options.depth(1);
    }
    options
}

/// libgit2's message, with the credential sources tried when authentication failed and the
/// bound that stopped the operation when one did.
pub(super) fn hint(
    err: &git2::Error,
    creds: &RefCell<auth::Credentials>,
    deadline: &Deadline,
) -> String {
    deadline.explain(err, auth_hint(err, creds))
}

/// libgit2's message, with the credential sources tried when authentication failed.
fn auth_hint(err: &git2::Error, creds: &RefCell<auth::Credentials>) -> String {
    let message = err.message().to_string();
    let creds = creds.borrow();
    if err.code() == ErrorCode::Auth || message.contains("authentication") {
        if message.contains("credentials tried") {
            message
        } else {
            format!("{message} (credentials tried: {})", creds.tried())
        }
    } else if err.class() == git2::ErrorClass::Ssh && message.contains("hostkey") {
        format!("{message} (add the host's key to ~/.ssh/known_hosts, e.g. with ssh-keyscan)")
    } else if err.code() == ErrorCode::Certificate {
        format!(
            "{message} (the server's TLS certificate is not trusted: add its CA to the system's \
             certificates, or point SSL_CERT_FILE at it)"
        )
    } else {
        message
    }
}

/// Pushes over the network with libgit2, checking the server's verdict on the reference:
/// libgit2 returns Ok even when the server refuses it. libgit2 gets `url` without its
/// secrets; they come from the credentials callback.
pub(super) fn push_network(
    repo: &Repository,
    url: &str,
    refspec: &str,
    timeouts: &Timeouts,
) -> Result<(), Pushed> {
    let deadline = Deadline::start(timeouts);
    let creds = RefCell::new(auth::Credentials::new(url, repo.config().ok()));
    let refused: RefCell<Option<String>> = RefCell::new(None);
    let said = RefCell::new(String::new());
    let result = {
        let mut remote = repo
            .remote_anonymous(&url::connect_url(url))
            .map_err(|e| Pushed::Error(e.message().to_string()))?;
        let mut callbacks = callbacks(&creds, deadline);
        callbacks.push_update_reference(|refname, status| {
            if let Some(status) = status {
                *refused.borrow_mut() = Some(format!("{refname} rejected: {status}"));
            }
            Ok(())
        });
        callbacks.sideband_progress(|data| {
            said.borrow_mut().push_str(&String::from_utf8_lossy(data));
            !deadline.passed()
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        remote.push(&[refspec], Some(&mut options))
    };
    let said = said.into_inner();
    let said: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let with_said = |message: String| {
        if said.is_empty() {
            message
        } else {
            format!("{message}; the server said: {}", said.join(" / "))
        }
    };
    match result {
        Err(e) if e.code() == ErrorCode::NotFastForward => {
            Err(Pushed::NotFastForward(e.message().to_string()))
        }
        Err(e) => Err(Pushed::Error(with_said(hint(&e, &creds, &deadline)))),
        Ok(()) => match refused.into_inner() {
            Some(message) => Err(Pushed::Refused(with_said(message))),
            None => Ok(()),
        },
    }
}

/// Pushes into a repository on this machine. libgit2's local transport overwrites the remote
/// reference without checking that it is still what it was (two racing pushes would lose one
/// of them), so this copies the missing objects and moves the reference itself, with a
/// compare-and-swap under the reference's lock.
pub(super) fn push_local(repo: &Repository, dir: &Path, id: Oid, dst: &str) -> Result<(), Pushed> {
    let error = |e: git2::Error| Pushed::Error(e.message().to_string());
    let remote = Repository::open(dir).map_err(error)?;
    let current = remote.refname_to_id(dst).ok();
    if let Some(current) = current {
        if current == id {
            return Ok(());
        }
        let known = repo.odb().map_err(error)?.exists(current);
        if !known || !repo.graph_descendant_of(id, current).map_err(error)? {
            return Err(Pushed::NotFastForward(format!(
                "{dst} has commits that are not in the pushed branch"
            )));
        }
    }
    if !remote.is_bare() {
        let checked_out = remote
            .head()
            .ok()
            .and_then(|h| h.name().ok().map(str::to_string));
        if checked_out.as_deref() == Some(dst) {
            return Err(Pushed::Refused(format!(
                "{dst} is checked out in the non-bare repository {}; refusing to update it",
                dir.display()
            )));
        }
    }
    copy_objects(repo, &remote, id, current).map_err(error)?;
    let message = "push by cru";
    // A held lock means another writer is between its check and its rename: wait for it to
    // finish (then our compare-and-swap tells whether the branch moved) rather than calling
    // it a move that a fetch would not see yet.
    let mut waited = 0;
    let moved = loop {
        let moved = match current {
            Some(current) => remote.reference_matching(dst, id, true, current, message),
            None => remote.reference(dst, id, false, message),
        };
        match moved {
            Err(e) if is_lock(&e) && waited < LOCK_WAITS => {
                waited += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other,
        }
    };
    match moved {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.code(),
                ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked
            ) =>
        {
            Err(Pushed::NotFastForward(format!(
                "{dst} moved while pushing ({})",
                e.message()
            )))
        }
        Err(e) => Err(error(e)),
    }
}

/// How many times (10 ms apart) a local push waits for another writer's reference lock.
const LOCK_WAITS: u32 = 300;

/// Whether libgit2 failed because a lock file exists (another writer is at work).
pub(super) fn is_lock(err: &git2::Error) -> bool {
    err.code() == ErrorCode::Locked || err.message().contains("failed to lock")
}

/// Whether a server's refusal says a reference was locked by another writer.
pub(super) fn is_lock_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("failed to lock") || message.contains("cannot lock ref")
}

/// Copies the commits from `id` back to `known` (exclusive), with their trees and blobs, into
/// `to`, skipping every object it already has.
fn copy_objects(
    from: &Repository,
    to: &Repository,
    id: Oid,
    known: Option<Oid>,
) -> Result<(), git2::Error> {
    let (src, dst) = (from.odb()?, to.odb()?);
    let copy = |oid: Oid| -> Result<bool, git2::Error> {
        if dst.exists(oid) {
            return Ok(false);
        }
        let object = src.read(oid)?;
        dst.write(object.kind(), object.data())?;
        Ok(true)
    };
    fn tree(
        repo: &Repository,
        oid: Oid,
        copy: &dyn Fn(Oid) -> Result<bool, git2::Error>,
    ) -> Result<(), git2::Error> {
        if !copy(oid)? {
            return Ok(());
        }
        for entry in repo.find_tree(oid)?.iter() {
            match entry.kind() {
                Some(ObjectType::Tree) => tree(repo, entry.id(), copy)?,
                Some(ObjectType::Blob) => {
                    copy(entry.id())?;
                }
                _ => {}
            }
        }
        Ok(())
    }
    let mut walk = from.revwalk()?;
    walk.push(id)?;
    if let Some(known) = known {
        walk.hide(known)?;
    }
    for commit in walk {
        let commit = from.find_commit(commit?)?;
        tree(from, commit.tree_id(), &copy)?;
        copy(commit.id())?;
    }
    Ok(())
}
