//! `dm-apply convert`: dmctl files → dm-apply YAML on stdout (or `--out FILE`); warnings and the variables to set
//! on stderr. Exit 1, writing nothing, when something cannot be carried without replicating more.

use std::path::{Path, PathBuf};

use crate::cli::ConvertArgs;
use crate::config::diag::FileSource;
use crate::config::yaml;
use crate::convert::{self, ConvertError};
use crate::ui::{Data, Ui};

use super::EXIT_OK;

pub fn run(args: &ConvertArgs, ui: &Ui) -> miette::Result<u8> {
    let out = out_file(args.out.as_deref(), args.legacy_out.as_deref(), ui)?;
    let conv = convert::convert_files(&args.files).map_err(diagnose)?;
    let text = convert::render(&conv, &args.schema_ref);
    for w in &conv.warnings {
        ui.warn(w);
    }
    match out {
        Some(path) => write_file(&path, &text)?,
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
        ui.info(format_args!("{n} note(s) above (also in the file's header) need a reviewer's eye"));
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

/// The file to write: `--out`, or the deprecated `-o` (which `plan` and `drift` use for a format: a value that
/// looks like one is refused rather than written to a file of that name).
pub(crate) fn out_file(out: Option<&Path>, legacy: Option<&Path>, ui: &Ui) -> miette::Result<Option<PathBuf>> {
    let Some(legacy) = legacy else { return Ok(out.map(Path::to_path_buf)) };
    let text = legacy.to_string_lossy();
    if ["json", "yaml", "yml", "text", "markdown"].iter().any(|f| text.eq_ignore_ascii_case(f)) {
        return Err(miette::miette!(
            help = "this command writes YAML only: name the file with `--out FILE` (e.g. `--out dm/cluster.yaml`), \
                    or leave it out to write to stdout",
            "`-o {text}` looks like an output format, but here -o would name the output file"
        ));
    }
    ui.warn(format_args!("`-o FILE` is deprecated here; use `--out {text}`"));
    Ok(Some(legacy.to_path_buf()))
}

/// Write `text` to `path`, creating missing parent directories (the README writes into `dm/`).
pub(crate) fn write_file(path: &Path, text: &str) -> miette::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| miette::miette!("cannot create directory `{}`: {e}", parent.display()))?;
    }
    crate::atomic::write(path, text.as_bytes(), crate::atomic::Mode::Default)
        .map_err(|e| miette::miette!("cannot write `{}`: {e}", path.display()))
}
