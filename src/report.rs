//! What cru tells the user while it works, as typed events: the library emits [`Event`]s to a
//! [`Reporter`] the caller passes in, instead of logging from deep inside.
//!
//! [`Log`] writes each event as today's Go-style log line (through `tracing`, which the binary
//! formats as `2026/01/02 15:04:05 INFO: …`); [`Silent`] drops them (cru's own preview before a
//! commit); [`Collect`] keeps them, for a caller that answers with them (a `cru serve` request)
//! or a test. The texts are the Go tool's, which scripts grep for: change them only with care.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::reference::Reference;

/// One thing worth telling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The tree was scanned: this many distinct references.
    Found {
        /// Distinct references (as written).
        references: usize,
    },
    /// A reference is replaced in a file (shown with `--verbose`).
    Updating {
        /// Before.
        from: Reference,
        /// After.
        to: Reference,
        /// The file, as shown.
        file: String,
    },
    /// A tag was looked up: its digest now.
    ResolvedDigest {
        /// The normalised name.
        name: String,
        /// The tag.
        tag: String,
        /// The digest it points at.
        digest: String,
    },
    /// A tag was looked up for `--resolve-tag`: the best tag with the same digest.
    ResolvedTag {
        /// The normalised name.
        name: String,
        /// The tag as found.
        tag: String,
        /// The tag chosen.
        best: String,
        /// Every tag with that digest, best first.
        matching: Vec<String>,
    },
    /// `--bump` chose a newer tag.
    Bumped {
        /// The normalised name.
        name: String,
        /// The tag as found.
        tag: String,
        /// The tag chosen.
        to: String,
        /// The policy's level.
        level: crate::version::Level,
    },
    /// The update is done (or would be, in a dry run).
    Updated {
        /// Files changed.
        files: usize,
        /// Nothing was written.
        dry_run: bool,
    },
    /// `cru check` is done.
    Checked {
        /// Distinct references checked.
        references: usize,
        /// Findings reported.
        findings: usize,
    },
    /// Files were changed but there is no commit message (the Go tool's last line).
    NotCommitted,
    /// Something went wrong but the run goes on (or stops after reporting every one).
    Error(String),
    /// Something the user should know.
    Warning(String),
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Found { references } => write!(f, "{references} image references found"),
            Event::Updating { from, to, file } => {
                write!(f, "updating reference {from} to {to} in {file}")
            }
            Event::ResolvedDigest { name, tag, digest } => {
                write!(
                    f,
                    "resolving repository {name} Tag {tag} to Digest {digest}"
                )
            }
            Event::ResolvedTag {
                name,
                tag,
                best,
                matching,
            } => write!(
                f,
                "resolving repository {name} Tag {tag} to Tag {best} (same digest: {})",
                matching.join(", ")
            ),
            Event::Bumped {
                name,
                tag,
                to,
                level,
            } => write!(
                f,
                "bumping repository {name} Tag {tag} to Tag {to} ({level})"
            ),
            Event::Updated { files: 0, .. } => f.write_str("no files were updated by cru"),
            Event::Updated {
                files,
                dry_run: true,
            } => write!(f, "dry run: {files} files would be updated"),
            Event::Updated {
                files,
                dry_run: false,
            } => write!(f, "updated a total of {files} files"),
            Event::Checked {
                references,
                findings,
            } => write!(
                f,
                "{references} image references checked, {findings} findings"
            ),
            Event::NotCommitted => f.write_str("no commit message, skipping commit and push"),
            Event::Error(message) | Event::Warning(message) => f.write_str(message),
        }
    }
}

/// Where events go.
pub trait Reporter: Sync {
    /// Takes one event.
    fn report(&self, event: Event);
}

/// Log lines: errors as ERROR, warnings as WARNING, `Updating` only with `--verbose` (debug),
/// the rest as INFO.
#[derive(Debug, Clone, Copy, Default)]
pub struct Log;

impl Reporter for Log {
    fn report(&self, event: Event) {
        match &event {
            Event::Error(_) => tracing::error!("{event}"),
            Event::Warning(_) => tracing::warn!("{event}"),
            Event::Updating { .. } => tracing::debug!("{event}"),
            _ => tracing::info!("{event}"),
        }
    }
}

/// A reporter that long-lived parts (the registry client, a clone kept by `cru serve`) hold
/// and hand to their tasks: cheap to clone, [`Log`] by default.
#[derive(Clone)]
pub struct SharedReporter(Arc<dyn Reporter + Send + Sync>);

impl SharedReporter {
    /// Shares `reporter`.
    pub fn new(reporter: Arc<dyn Reporter + Send + Sync>) -> SharedReporter {
        SharedReporter(reporter)
    }

    /// Reports a [`Event::Warning`].
    pub fn warn(&self, message: impl Into<String>) {
        self.0.report(Event::Warning(message.into()));
    }
}

impl Default for SharedReporter {
    fn default() -> Self {
        SharedReporter(Arc::new(Log))
    }
}

impl fmt::Debug for SharedReporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedReporter")
    }
}

impl Reporter for SharedReporter {
    fn report(&self, event: Event) {
        self.0.report(event);
    }
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _: Event) {}
}

/// Keeps every event, in order.
#[derive(Debug, Default)]
pub struct Collect(Mutex<Vec<Event>>);

impl Collect {
    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The texts of the warnings so far, in order.
    pub fn warnings(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Warning(w) => Some(w),
                _ => None,
            })
            .collect()
    }
}

impl Reporter for Collect {
    fn report(&self, event: Event) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_the_go_tools_lines() {
        let r = |t: &str| Reference::parse(t).unwrap();
        for (event, line) in [
            (Event::Found { references: 2 }, "2 image references found"),
            (
                Event::Updating {
                    from: r("gcr.io/x/y:3"),
                    to: r("gcr.io/x/y:latest"),
                    file: "Dockerfile".into(),
                },
                "updating reference gcr.io/x/y:3 to gcr.io/x/y:latest in Dockerfile",
            ),
            (
                Event::Updated {
                    files: 0,
                    dry_run: true,
                },
                "no files were updated by cru",
            ),
            (
                Event::Updated {
                    files: 1,
                    dry_run: true,
                },
                "dry run: 1 files would be updated",
            ),
            (
                Event::Updated {
                    files: 2,
                    dry_run: false,
                },
                "updated a total of 2 files",
            ),
            (
                Event::Checked {
                    references: 3,
                    findings: 1,
                },
                "3 image references checked, 1 findings",
            ),
            (
                Event::NotCommitted,
                "no commit message, skipping commit and push",
            ),
        ] {
            assert_eq!(event.to_string(), line);
        }
    }

    #[test]
    fn collect_keeps_events_in_order() {
        let c = Collect::default();
        c.report(Event::Found { references: 1 });
        c.report(Event::Warning("w".into()));
        assert_eq!(
            c.events(),
            [Event::Found { references: 1 }, Event::Warning("w".into())]
        );
    }
}
