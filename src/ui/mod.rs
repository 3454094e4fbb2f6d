//! Output rules (after uv's STYLE.md): stdout carries only data (plans, reports, JSON); everything for people
//! (diagnostics, progress, warnings) goes to stderr; all output reads the same without colour; `NO_COLOR` and
//! `--color` are honoured; progress is shown only on a terminal.
//!
//! Every byte dm-apply prints goes through this module: [`Ui::data`] for stdout, [`eprint`] (and the `Ui` helpers,
//! the tracing writer and the panic hook built on it) for stderr. Both pass the text through the redaction layer
//! ([`redact::scrub`]: known secret values) and the stream sanitizer ([`sanitize::for_stream`]: control characters
//! from DM-master or files shown escaped), so no command can print around them. A closed stdout (`| head`) is not a
//! panic: [`Ui::data`] returns [`OutputError::Closed`] and the command ends quietly with exit code 1.

pub mod redact;
pub mod sanitize;
pub mod style;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;

use self::sanitize::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// Verbosity from `-q`/`-v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

/// How this process talks to people. Cheap to copy; passed to every command.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Colour on stdout.
    pub color_stdout: bool,
    /// Colour on stderr.
    pub color_stderr: bool,
    /// Live progress displays (stderr is a terminal and not quiet).
    pub progress: bool,
    /// stdin is a terminal (an interactive approval prompt is possible).
    pub interactive: bool,
    pub verbosity: Verbosity,
}

impl Ui {
    pub fn new(choice: ColorChoice, verbosity: Verbosity) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        let stderr_tty = std::io::stderr().is_terminal();
        Ui {
            color_stdout: decide(std::io::stdout().is_terminal()),
            color_stderr: decide(stderr_tty),
            progress: stderr_tty && verbosity > Verbosity::Quiet,
            interactive: std::io::stdin().is_terminal(),
            verbosity,
        }
    }

    /// A plain UI for tests and library callers: no colour, no progress, not interactive.
    pub fn plain() -> Self {
        Ui {
            color_stdout: false,
            color_stderr: false,
            progress: false,
            interactive: false,
            verbosity: Verbosity::Normal,
        }
    }

    /// A warning line on stderr (`warning: ...`), unless quiet.
    pub fn warn(&self, msg: impl std::fmt::Display) {
        if self.verbosity > Verbosity::Quiet {
            let prefix = self.paint_stderr("33", "warning");
            eprint(&format!("{prefix}: {msg}\n"));
        }
    }

    /// An informational line on stderr, unless quiet.
    pub fn info(&self, msg: impl std::fmt::Display) {
        if self.verbosity > Verbosity::Quiet {
            eprint(&format!("{msg}\n"));
        }
    }

    /// A diagnostic (error or warning report) on stderr, rendered by miette, always (also with `-q`).
    pub fn diagnostic(&self, report: &miette::Report) {
        eprint(&format!("{report:?}\n"));
    }

    /// `s` painted with an SGR colour code when stderr is coloured.
    pub fn paint_stderr(&self, code: &str, s: &str) -> String {
        style::Style::new(self.color_stderr).paint(code, s)
    }

    /// Write data to stdout (redacted and sanitized as `kind` allows) and flush it.
    pub fn data(&self, kind: Data, text: &str) -> Result<(), OutputError> {
        let policy = match kind {
            Data::Text => Policy::Text { colors: self.color_stdout },
            Data::Plain => Policy::Text { colors: false },
            Data::Json => Policy::Json,
            Data::Yaml => Policy::Yaml,
        };
        let scrubbed = redact::scrub(text);
        write_stdout(&sanitize::for_stream(&scrubbed, policy))
    }
}

/// What kind of data goes to stdout (it decides what the sanitizer may leave in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// Text for people, coloured when stdout is (plans, reports).
    Text,
    /// Text never coloured (markdown, completion scripts, man pages).
    Plain,
    /// JSON written by serde_json.
    Json,
    /// YAML written by dm-apply (import, convert).
    Yaml,
}

/// Why data could not be written to stdout.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum OutputError {
    /// The reader went away (`dm-apply plan | head -c1`): not worth a message; the command exits 1.
    #[error("stdout was closed before all output was written")]
    #[diagnostic(code(dm_apply::output::closed))]
    Closed,
    #[error("cannot write to stdout: {0}")]
    #[diagnostic(code(dm_apply::output::io))]
    Io(std::io::Error),
}

/// Set once stdout was found closed: later writes fail at once.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Whether stderr may carry colour (SGR) sequences; set by [`install`].
static STDERR_COLORS: AtomicBool = AtomicBool::new(false);

fn write_stdout(text: &str) -> Result<(), OutputError> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(OutputError::Closed);
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Err(OutputError::Closed)
        }
        Err(e) => Err(OutputError::Io(e)),
    }
}

/// Write text for people to stderr, redacted and sanitized. Errors (a closed stderr) are ignored: there is nowhere
/// left to report them.
pub fn eprint(text: &str) {
    let colors = STDERR_COLORS.load(Ordering::Relaxed);
    let scrubbed = redact::scrub(text);
    let safe = sanitize::for_stream(&scrubbed, Policy::Text { colors });
    let _ = std::io::stderr().lock().write_all(safe.as_bytes());
}

/// Route every stderr writer of the process through [`eprint`]: remembers whether stderr is coloured and installs
/// a panic hook that prints (redacted) through it. Called once by the binary.
pub fn install(ui: &Ui) {
    STDERR_COLORS.store(ui.color_stderr, Ordering::Relaxed);
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let bt = std::backtrace::Backtrace::capture();
        let bt =
            if bt.status() == std::backtrace::BacktraceStatus::Captured { format!("\n{bt}") } else { String::new() };
        eprint(&format!(
            "dm-apply panicked{at}: {msg}{bt}\nThis is a bug in dm-apply; please report it with the command that was run.\n"
        ));
    }));
}

/// The writer tracing's fmt layer logs through: each event is formatted into one buffer and written in one call,
/// so every log line is redacted whole.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        eprint(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}
