//! `dm-apply show FILE`: print a saved plan as `plan` printed it, offline (no DM-master, no configuration, no
//! secrets: the file has none). What the file was made against goes to stderr; stdout is exactly `plan`'s output.

use crate::cli::{PlanFormat, ShowArgs};
use crate::commands::EXIT_OK;
use crate::render;
use crate::saved_plan::file;
use crate::ui::sanitize::inline;
use crate::ui::{Data, Ui};

pub fn run(args: &ShowArgs, ui: &Ui) -> miette::Result<u8> {
    let saved = file::read(&args.file)?;
    let plan = &saved.plan;
    let cluster = match plan.cluster.cluster_id {
        Some(id) => format!("{} (cluster id {id}, DM {})", plan.cluster.addr, plan.cluster.server_version),
        None => format!("{} (DM {})", plan.cluster.addr, plan.cluster.server_version),
    };
    ui.info(format!(
        "Saved plan {}: made by dm-apply {} against {} from {}",
        args.file.display(),
        inline(&saved.dm_apply_version),
        inline(&cluster),
        inline(&saved.config_paths.join(", ")),
    ));
    // A saved plan was never refused (`plan --out` writes none then): no problems to list.
    match args.output {
        PlanFormat::Text => ui.data(Data::Text, &render::text::render(plan, ui.color_stdout))?,
        PlanFormat::Markdown => ui.data(Data::Plain, &render::markdown::render_with_errors(plan, &[]))?,
        PlanFormat::Json => ui.data(Data::Json, &render::json::render(plan, &[]))?,
    }
    Ok(EXIT_OK)
}
