//! Output rules (after uv's STYLE.md): stdout carries only data (plans, reports, JSON); everything for people
//! (diagnostics, progress, warnings) goes to stderr; all output reads the same without colour; `NO_COLOR` and
//! `--color` are honoured; progress is shown only on a terminal.

use std::io::IsTerminal;

use clap::ValueEnum;

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
            let prefix = if self.color_stderr { "\x1b[33mwarning\x1b[0m" } else { "warning" };
            eprintln!("{prefix}: {msg}");
        }
    }

    /// An informational line on stderr, unless quiet.
    pub fn info(&self, msg: impl std::fmt::Display) {
        if self.verbosity > Verbosity::Quiet {
            eprintln!("{msg}");
        }
    }
}
