//! The `cru` binary: parses arguments, sets up logging, runs the library and maps the outcome
//! to an exit code. Log lines go to stderr in the Go tool's style
//! (`2026/01/02 15:04:05 INFO: …`); stdout is for results only.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::{format::Writer, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use cru::app::{self, Status};
use cru::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if app::verbose(&cli) {
        Level::DEBUG
    } else {
        Level::INFO
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(io::stderr)
        .event_format(GoLog)
        .init();

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
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO | Level::DEBUG => "INFO",
            Level::TRACE => "DEBUG",
        };
        let now = chrono::Local::now().format("%Y/%m/%d %H:%M:%S");
        write!(writer, "{now} {level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
