//! Fuzz target: one file's bytes through the whole `validate` pipeline (size limit, UTF-8 check, YAML parse with
//! spans, JSON Schema, typed deserialization, `${env:..}` interpolation, semantic checks), then every diagnostic
//! rendered the ways the CLI and library render them (rendering slices the file by span and can panic on a bad one).
#![no_main]

use dm_apply::config::{LoadError, analyze_source, render_plain};
use libfuzzer_sys::fuzz_target;

/// Some variables are set (with values that look like YAML and secrets), some are not, so both the substitution
/// and the "not set" paths run.
fn env(name: &str) -> Option<String> {
    match name.len() % 3 {
        0 => None,
        1 => Some(format!("v-{name}")),
        _ => Some(": {x: [\n${env:Y}\u{FFFD}".to_owned()),
    }
}

fuzz_target!(|data: &[u8]| {
    let analysis = analyze_source("fuzz.yaml", data, &env);
    let lines = data.split(|b| *b == b'\n').count();
    for p in analysis.errors.iter().chain(analysis.warnings.iter()) {
        // A position past the end of the file would be a wrong `file:line:col` for the user.
        assert!(p.line <= lines + 1, "line {} beyond the file ({lines} lines): {}", p.line, p.message);
        let _ = p.location();
        // The plain rendering has no colour codes: any control character in it came from the file, and would
        // reach the terminal.
        let plain = render_plain(p);
        assert!(!plain.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "control character in {plain:?}");
        // What `validate` prints: the report through miette's default (graphical) hook.
        let _ = format!("{:?}", miette::Report::new(p.clone()));
    }
    // What plan/apply print on invalid input: one report with every error as a related diagnostic.
    if !analysis.errors.is_empty() {
        let err = LoadError { errors: analysis.errors.clone(), warnings: analysis.warnings.clone() };
        let _ = render_plain(&err);
    }
});
