//! Bounds on git network operations, so that a server that accepts a connection and then
//! stalls cannot hold cru (or `cru serve`) forever: a connect timeout and a stall timeout
//! enforced by libgit2 on every socket read and write (ssh through libssh2 too), and a
//! deadline for the whole operation checked whenever libgit2 calls back (credentials,
//! transfer and sideband progress). What this does not bound: a server that trickles bytes
//! faster than the stall timeout between two callbacks; and name resolution, which libgit2
//! does with the system resolver.

use std::os::raw::c_int;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long git network operations (clone, fetch, push, listing references) may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to the server.
    pub connect: Duration,
    /// The longest the server may keep cru waiting on one read or write.
    pub stall: Duration,
    /// One whole operation.
    pub total: Duration,
}

impl Default for Timeouts {
    /// What `--repository` uses: 30 s to connect, 60 s of silence, 10 minutes per operation.
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(30),
            stall: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    }
}

/// The connect and stall timeouts libgit2 was given. libgit2 keeps them per process, so the
/// first network operation's values hold for all that follow.
static INSTALLED: OnceLock<(Duration, Duration)> = OnceLock::new();

fn millis(d: Duration) -> c_int {
    // Zero would mean "no timeout" to libgit2.
    c_int::try_from(d.as_millis()).unwrap_or(c_int::MAX).max(1)
}

/// Gives libgit2 its socket timeouts, once per process; returns those in force.
#[allow(unsafe_code)]
fn install(timeouts: &Timeouts) -> (Duration, Duration) {
    *INSTALLED.get_or_init(|| {
        let (connect, stall) = (millis(timeouts.connect), millis(timeouts.stall));
        // SAFETY: these write two global integers of libgit2 that its socket streams read
        // when they open and use a connection. Every network operation of cru calls this
        // before it starts (`Deadline::start`), and `OnceLock` makes any other caller wait
        // until the writes are done, so no connection is opened or used while they happen.
        let set = unsafe {
            git2::opts::set_server_connect_timeout_in_milliseconds(connect)
                .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(stall))
        };
        if let Err(e) = set {
            tracing::warn!("git network timeouts could not be set: {}", e.message());
        }
        (timeouts.connect, timeouts.stall)
    })
}

/// The deadline of one network operation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline {
    end: Instant,
    total: Duration,
    connect: Duration,
    stall: Duration,
}

impl Deadline {
    /// Starts an operation bounded by `timeouts`.
    pub(super) fn start(timeouts: &Timeouts) -> Deadline {
        let (connect, stall) = install(timeouts);
        Deadline {
            end: Instant::now() + timeouts.total,
            total: timeouts.total,
            connect,
            stall,
        }
    }

    /// Whether the operation has run out of time.
    pub(super) fn passed(&self) -> bool {
        Instant::now() >= self.end
    }

    /// The error a callback returns to stop libgit2 once the deadline has passed.
    pub(super) fn check(&self) -> Result<(), git2::Error> {
        if self.passed() {
            Err(git2::Error::from_str(&self.exceeded()))
        } else {
            Ok(())
        }
    }

    fn exceeded(&self) -> String {
        format!(
            "gave up after {}, cru's limit for one git network operation",
            shown(self.total)
        )
    }

    /// libgit2's message, saying which bound stopped the operation if one did.
    pub(super) fn explain(&self, err: &git2::Error, message: String) -> String {
        let lower = message.to_ascii_lowercase();
        let timed_out = err.code() == git2::ErrorCode::Timeout
            || lower.contains("timed out")
            || lower.contains("timeout");
        if self.passed() {
            // A callback that returned false leaves libgit2 with nothing to say.
            let silent = message.is_empty() || message == "no error";
            if silent || message.contains("cru's limit") || err.code() == git2::ErrorCode::User {
                self.exceeded()
            } else {
                format!("{message} ({})", self.exceeded())
            }
        } else if timed_out && lower.contains("connect") {
            format!(
                "{message} (no connection within {}, cru's git connect timeout)",
                shown(self.connect)
            )
        } else if timed_out {
            format!(
                "{message} (the server sent nothing for {}, cru's git stall timeout: it \
                 accepted the connection but stopped answering)",
                shown(self.stall)
            )
        } else {
            message
        }
    }
}

/// A duration as people read it: `2 s`, `1.5 s`, `250 ms`.
fn shown(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(shown(Duration::from_secs(2)), "2 s");
        assert_eq!(shown(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(shown(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn timeouts_are_whole_milliseconds_never_zero() {
        assert_eq!(millis(Duration::from_micros(10)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(millis(Duration::from_secs(u64::MAX)), c_int::MAX);
    }
}
