//! `dm-apply plan`: load the configuration, read DM, plan, render on stdout, optionally save. The run itself is
//! `crate::pipeline::plan`, which `plan --clusters` runs for every cluster too.

use crate::cli::{PlanArgs, PlanFormat};
use crate::commands::common::{
    check_split_comments, client_options, failure_report, parse_targets, print_notices, write_comments,
};
use crate::commands::{EXIT_CHANGES, EXIT_OK};
use crate::pipeline::{self, ConfigSource, PlanRequest, Planned};
use crate::plan::{self, PlanOptions};
use crate::render;
use crate::saved_plan;
use crate::ui::{Data, Ui};

/// The plan options from `plan`'s flags (`--target`, `--replace`, `--accept-loss`, the state key).
pub fn plan_options(args: &PlanArgs) -> miette::Result<PlanOptions> {
    Ok(PlanOptions {
        prune: args.prune,
        targets: parse_targets(&args.target)?,
        allow_restart: args.allow_restart,
        replace: parse_targets(&args.replace)?,
        state_key: crate::state::key::load(args.state.state_key_file.as_deref())?,
        accept_loss: parse_targets(&args.accept_loss)?,
    })
}

pub async fn run(args: &PlanArgs, ui: &Ui) -> miette::Result<u8> {
    if let Some(file) = &args.files.clusters {
        return super::clusters::plan_command(file, args, ui).await;
    }
    check_split_comments(args)?;
    let options = plan_options(args)?;
    let req = PlanRequest { client: client_options(&args.conn), options, preview: !args.no_preview };
    let run = pipeline::plan(ConfigSource { paths: &args.files.files, cluster: None }, &req).await;
    print_notices(&run.notices, ui);
    let Planned { plan, problems, desired, live } = run.result.map_err(|f| failure_report(f, ui))?;
    if let Some(dir) = &args.split_comments {
        let section = render::markdown::Section {
            cluster: None,
            body: render::markdown::Body::Plan { plan: &plan, errors: &problems },
        };
        write_comments(dir, &render::markdown::comments(&[section], None), ui)?;
    }
    match args.output {
        PlanFormat::Text => ui.data(Data::Text, &render::text::render(&plan, ui.color_stdout))?,
        PlanFormat::Markdown => ui.data(Data::Plain, &render::markdown::render_with_errors(&plan, &problems))?,
        PlanFormat::Json => ui.data(Data::Json, &render::json::render(&plan, &problems))?,
    }
    if !problems.is_empty() {
        // The plan was shown so reviewers see what was refused; the command still fails.
        return Err(miette::Report::new(plan::PlanError { problems, plan: None }));
    }
    if let Some(path) = &args.out {
        let config = saved_plan::ConfigPaths {
            paths: args.files.files.iter().map(|p| p.display().to_string()).collect(),
            dir: std::env::current_dir().ok().map(|d| d.display().to_string()),
        };
        let saved = saved_plan::save(&plan, &desired, &live, &req.options, &config);
        saved_plan::file::write(path, &saved)?;
        ui.info(format!(
            "Saved the plan to {}; apply it with `dm-apply apply --plan {}`.",
            path.display(),
            path.display()
        ));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { EXIT_CHANGES } else { EXIT_OK })
}
