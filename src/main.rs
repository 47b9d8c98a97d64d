//! The `cru` binary: parses arguments, sets up logging, runs the library and maps the outcome
//! to an exit code. Log lines go to stderr in the Go tool's style
//! (`2026/01/02 15:04:05 INFO: …`); stdout is for results only. Colour (the level word, clap's
//! help and errors) only on a terminal, and never with `NO_COLOR` set.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::{ColorChoice, CommandFactory, FromArgMatches};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use cru::app::{self, Status};
use cru::cli::{Cli, Command};
use cru::progress::LogWriter;

fn main() -> ExitCode {
    // https://no-color.org: set and not empty.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut command = Cli::command();
    if no_color {
        command = command.color(ColorChoice::Never);
    }
    let cli = Cli::from_arg_matches(&command.get_matches_mut())
        .unwrap_or_else(|e| e.format(&mut command).exit());
    let level = if app::verbose(&cli) {
        Level::DEBUG
    } else {
        Level::INFO
    };
    // cru's own events only: the HTTP client's connection-pool chatter is not cru's to show.
    let log = tracing_subscriber::fmt::layer()
        .with_writer(|| LogWriter)
        .with_ansi(!no_color && io::stderr().is_terminal())
        .event_format(GoLog)
        .with_filter(Targets::new().with_target("cru", level));
    tracing_subscriber::registry().with(log).init();

    // `cru serve` shuts down on its own signals, letting the requests in flight finish.
    if !matches!(cli.command, Command::Serve(_)) {
        if let Err(e) = cru::files::clean_up_on_signals() {
            tracing::warn!("cannot clean up temporary files on SIGINT/SIGTERM: {e}");
        }
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let status = match app::run(cli, &mut out) {
        Ok(status) => status,
        Err(err) if err.is_broken_pipe() => Status::Success,
        Err(err) => {
            let status = err.status();
            tracing::error!("{:#}", anyhow::Error::from(err));
            status
        }
    };
    let _ = out.flush();
    ExitCode::from(status as u8)
}

/// Formats events like Go's `log` package: `2006/01/02 15:04:05 LEVEL: message`.
struct GoLog;

impl<S, N> FormatEvent<S, N> for GoLog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The level word, and its colour when colour is on (red, yellow).
        let (level, colour) = match *event.metadata().level() {
            Level::ERROR => ("ERROR", Some("\x1b[31m")),
            Level::WARN => ("WARNING", Some("\x1b[33m")),
            Level::INFO | Level::DEBUG => ("INFO", None),
            Level::TRACE => ("DEBUG", None),
        };
        let now = chrono::Local::now().format("%Y/%m/%d %H:%M:%S");
        match colour.filter(|_| writer.has_ansi_escapes()) {
            Some(colour) => write!(writer, "{now} {colour}{level}\x1b[0m: ")?,
            None => write!(writer, "{now} {level}: ")?,
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
