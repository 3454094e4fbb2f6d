//! `dm-apply convert`: dmctl files → dm-apply YAML on stdout (or `-o FILE`); warnings and the variables to set on
//! stderr.

use crate::cli::ConvertArgs;
use crate::convert;
use crate::ui::Ui;

use super::EXIT_OK;

pub fn run(args: &ConvertArgs, ui: &Ui) -> miette::Result<u8> {
    let conv = convert::convert_files(&args.files)?;
    let text = convert::render(&conv, &args.schema_ref);
    for w in &conv.warnings {
        ui.warn(w);
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| miette::miette!("cannot write `{}`: {e}", path.display()))?
        }
        None => print!("{text}"),
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
