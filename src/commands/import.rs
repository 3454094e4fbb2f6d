//! `dm-apply import`: read DM (GET only), write dm-apply YAML to stdout or `--out FILE`; warnings and the variables
//! to set on stderr.

use crate::cli::ImportArgs;
use crate::commands::EXIT_OK;
use crate::commands::common::client_options;
use crate::dm::DmClient;
use crate::import::{self, ImportOptions};
use crate::live;
use crate::ui::{Data, Ui};

pub async fn run(args: &ImportArgs, ui: &Ui) -> miette::Result<u8> {
    let out = super::convert::out_file(args.out.as_deref(), args.legacy_out.as_deref(), ui)?;
    let client = DmClient::new(&client_options(&args.conn))?;
    let mut live = live::fetch(&client).await?;
    for w in &live.warnings {
        ui.warn(w);
    }
    let opts = ImportOptions { sources: args.sources.clone(), tasks: args.tasks.clone() };
    // What DM stores beyond its OpenAPI view (tasks created with dmctl): one legacy read per imported task.
    let everything = opts.sources.is_empty() && opts.tasks.is_empty();
    let names: Vec<String> = live
        .tasks
        .keys()
        .filter(|n| n.as_str() != crate::state::STATE_TEMPLATE && (everything || opts.tasks.contains(n)))
        .cloned()
        .collect();
    live.legacy = crate::legacy::read(&client, &names).await;
    let imported = import::import(&live, &opts)?;
    // The shown address: credentials in --addr never reach the file.
    let text = import::render(&imported, client.addr(), &args.schema_ref);
    for w in &imported.warnings {
        ui.warn(w);
    }
    match &out {
        Some(path) => super::convert::write_file(path, &text)?,
        None => ui.data(Data::Yaml, &text)?,
    }
    ui.info(format_args!(
        "Imported {} source(s) and {} task(s).",
        imported.config.sources.len(),
        imported.config.tasks.len()
    ));
    if !imported.env.is_empty() {
        ui.info("Set these environment variables before running validate/plan/apply:");
        for v in &imported.env {
            ui.info(format_args!("  {}: {}", v.name, v.purpose));
        }
    }
    Ok(EXIT_OK)
}
