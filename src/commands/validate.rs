//! `dm-apply validate`: check configuration files offline (YAML, JSON Schema, semantic checks). Never opens a
//! network connection. Diagnostics go to stderr, then a one-line summary; exit 0 when valid, 1 when not.

use crate::cli::ValidateArgs;
use crate::commands::{EXIT_ERROR, EXIT_OK};
use crate::config;
use crate::ui::{Ui, Verbosity};

pub fn run(args: &ValidateArgs, ui: &Ui) -> miette::Result<u8> {
    if let Some(file) = &args.files.clusters {
        return super::clusters::validate_command(file, &args.files.cluster, args.allow_missing_env, ui);
    }
    // With --allow-missing-env an unset variable reads as a placeholder, so every other check still runs on the
    // value's place; the unset names are reported as warnings afterwards.
    let missing = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let analysis = if args.allow_missing_env {
        config::analyze_with_options(
            &args.files.files,
            &|name| {
                std::env::var(name).ok().or_else(|| {
                    missing.borrow_mut().insert(name.to_string());
                    Some(format!("unset-{name}"))
                })
            },
            config::InterpOptions { allow_missing_files: true },
        )
    } else {
        config::analyze(&args.files.files)
    };
    for name in missing.into_inner() {
        ui.warn(format!("environment variable `{name}` is not set (allowed by --allow-missing-env)"));
    }
    if ui.verbosity >= Verbosity::Verbose {
        for f in &analysis.skipped {
            ui.info(config::skipped_note(f));
        }
    }
    if ui.verbosity > Verbosity::Quiet {
        for w in &analysis.warnings {
            ui.diagnostic(&miette::Report::new(w.clone()));
        }
    }
    for e in &analysis.errors {
        ui.diagnostic(&miette::Report::new(e.clone()));
    }
    let files = analysis.files;
    let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("{n} {one}") } else { format!("{n} {many}") };
    if analysis.errors.is_empty() {
        let d = &analysis.desired;
        let mut line = format!(
            "{}, {} in {}: valid",
            plural(d.sources.len(), "source", "sources"),
            plural(d.tasks.len(), "task", "tasks"),
            plural(files, "file", "files"),
        );
        if !analysis.warnings.is_empty() {
            line.push_str(&format!(" ({})", plural(analysis.warnings.len(), "warning", "warnings")));
        }
        ui.info(line);
        Ok(EXIT_OK)
    } else {
        let mut line = plural(analysis.errors.len(), "error", "errors");
        if !analysis.warnings.is_empty() {
            line.push_str(&format!(", {}", plural(analysis.warnings.len(), "warning", "warnings")));
        }
        line.push_str(&format!(" in {}: invalid", plural(files, "file", "files")));
        // The summary is printed even with -q: it is the answer to the command.
        crate::ui::eprint(&format!("{line}\n"));
        Ok(EXIT_ERROR)
    }
}
