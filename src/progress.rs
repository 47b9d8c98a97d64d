//! The progress bars for long registry work (lookups counted, mirror bytes), and the log
//! writer that keeps them readable.
//!
//! A bar is drawn on stderr only when stderr is a terminal and there are enough lookups to
//! wait for; otherwise it is hidden, so CI logs and pipes get nothing. Log lines written
//! through [`LogWriter`] while a bar is shown are printed above it instead of garbling it.
//! This is the one place besides the binary that writes to stderr; it does not decide what is
//! looked up or logged.

use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Fewer lookups than this finish too soon for a bar to help.
pub const MIN_LOOKUPS: usize = 10;

/// The bar on the terminal now, if any: log lines are printed around it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Progress over a number of registry lookups; the bar is cleared when this is dropped.
pub struct Lookups {
    bar: ProgressBar,
    shown: bool,
}

impl Lookups {
    /// Starts counting `total` lookups, on the terminal when stderr is one and `total` is at
    /// least [`MIN_LOOKUPS`].
    pub fn start(total: usize) -> Lookups {
        let shown = total >= MIN_LOOKUPS && io::stderr().is_terminal();
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        if shown {
            let style = ProgressStyle::with_template("registry lookups [{bar:30}] {pos}/{len}")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.tick();
            *SHOWN.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        }
        Lookups { bar, shown }
    }

    /// Counts one lookup as done.
    pub fn done_one(&self) {
        self.bar.inc(1);
    }
}

impl Drop for Lookups {
    fn drop(&mut self) {
        if self.shown {
            SHOWN.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
        self.bar.finish_and_clear();
    }
}

/// Progress over the bytes a `cru mirror` run uploads, on the terminal when stderr is one; the
/// total grows as blobs to upload are found. Cleared when dropped.
pub struct Bytes {
    bar: ProgressBar,
    shown: bool,
}

impl Bytes {
    /// Starts at zero of zero bytes.
    pub fn start() -> Bytes {
        let shown = io::stderr().is_terminal();
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        if shown {
            let style = ProgressStyle::with_template(
                "mirror [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            *SHOWN.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        }
        Bytes { bar, shown }
    }

    /// `n` more bytes to upload.
    pub fn add_total(&self, n: u64) {
        self.bar.inc_length(n);
    }

    /// `n` bytes uploaded.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        if self.shown {
            SHOWN.lock().unwrap_or_else(PoisonError::into_inner).take();
        }
        self.bar.finish_and_clear();
    }
}

/// Writes log lines to stderr, above the progress bar when one is shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl LogWriter {
    fn with_bar_hidden<R>(f: impl FnOnce() -> R) -> R {
        let shown = SHOWN.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match shown {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        LogWriter::with_bar_hidden(|| io::stderr().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        LogWriter::with_bar_hidden(|| io::stderr().write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
