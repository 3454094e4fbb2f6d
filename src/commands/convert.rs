//! `dm-apply convert`: dmctl files → dm-apply YAML on stdout (or `-o FILE`); warnings and the variables to set on
//! stderr.

use crate::cli::ConvertArgs;
use crate::config::diag::FileSource;
use crate::config::yaml;
use crate::convert::{self, ConvertError};
use crate::ui::{Data, Ui};

use super::EXIT_OK;

pub fn run(args: &ConvertArgs, ui: &Ui) -> miette::Result<u8> {
    let conv = convert::convert_files(&args.files).map_err(diagnose)?;
    let text = convert::render(&conv, &args.schema_ref);
    for w in &conv.warnings {
        ui.warn(w);
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| miette::miette!("cannot write `{}`: {e}", path.display()))?
        }
        None => ui.data(Data::Yaml, &text)?,
    }
    if !conv.env.is_empty() {
        ui.info("Set these environment variables before running validate/plan/apply:");
        for v in &conv.env {
            ui.info(format_args!("  {}: {}", v.name, v.purpose));
        }
    }
    let n = conv.warnings.len();
    if n > 0 {
        ui.info(format_args!("{n} setting(s) could not be converted as they were; review the warnings above"));
    }
    Ok(EXIT_OK)
}

/// A dmctl file that is not valid YAML is reported like a dm-apply file: through the configuration's diagnostics,
/// whose snippet hides every secret-looking value (dmctl files hold plain-text passwords), instead of the parser's
/// own message, which quotes the file's text around the error.
fn diagnose(e: ConvertError) -> miette::Report {
    if let ConvertError::Yaml { file, .. } = &e
        && let Ok(text) = std::fs::read_to_string(file)
        && let Err(parse) = yaml::parse(&text)
    {
        let source = FileSource::new(file, 0, &text, &yaml::heuristic_secret_ranges(&text));
        let mut problem = yaml::syntax_problem(&parse, &source, &text);
        if problem.help.is_none() {
            problem = problem.with_help("fix the YAML syntax; dmctl would refuse this file too");
        }
        return miette::Report::new(problem);
    }
    match e {
        // Not re-readable: the parser's message without its snippet.
        ConvertError::Yaml { file, .. } => miette::miette!(
            code = "convert::yaml",
            help = "fix the YAML syntax; dmctl would refuse this file too",
            "{file}: not valid YAML"
        ),
        e => miette::Report::new(e),
    }
}
