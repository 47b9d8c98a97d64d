//! cru finds container image references in a tree of files and rewrites them in place.
//!
//! The core is pure: [`reference`] parses names, [`scan`] finds references in bytes,
//! [`plan`] decides what each becomes and [`rewrite`] edits buffers. Effects live at the
//! edges: [`walk`] and [`files`] touch the file system, [`inventory`] scans a tree; the
//! commands in [`list`] and [`update`] tie them together and [`app`] runs a command line.
//! [`config`] is the `.cru.yaml` model, [`settings`] merges flags, environment and that file
//! into the values a run works with.
//! The library never prints: results go to a writer that the caller passes, progress goes
//! to a [`report::Reporter`] (the binary's writes log lines through `tracing`); only
//! [`progress`] draws a bar for registry lookups on a terminal.

pub mod app;
pub mod backoff;
pub mod bump;
pub mod check;
pub mod cli;
pub mod config;
pub mod docker_hub;
pub mod files;
pub mod git;
pub mod inventory;
pub mod list;
pub mod mirror;
pub mod outdated;
pub mod plan;
pub mod progress;
pub mod redact;
pub mod reference;
pub mod registry;
pub mod report;
pub mod resolve;
pub mod rewrite;
pub mod scan;
pub mod serve;
pub mod settings;
pub mod tags;
pub mod update;
pub mod version;
pub mod walk;
