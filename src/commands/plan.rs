//! `dm-apply plan`: load the configuration, read DM, plan, render on stdout, optionally save.

use std::collections::BTreeSet;

use crate::cli::{ConnArgs, PlanArgs, PlanFormat};
use crate::commands::{EXIT_CHANGES, EXIT_OK};
use crate::dm::{ClientOptions, DmClient};
use crate::live::{self, FetchOptions};
use crate::plan::{self, Address, PlanOptions};
use crate::render;
use crate::ui::{Data, Ui};

/// What `--insecure-skip-tls-verify` prints, every time (even with `-q`: it is a security warning).
pub const INSECURE_WARNING: &str = "warning: --insecure-skip-tls-verify: the DM-master certificate is NOT verified; \
anyone on the network path can impersonate DM-master and read the passwords sent to it. Use --cacert instead.";

/// Client options from the shared connection flags.
pub fn client_options(conn: &ConnArgs) -> ClientOptions {
    if conn.insecure_skip_tls_verify {
        crate::ui::eprint(&format!("{INSECURE_WARNING}\n"));
    }
    ClientOptions {
        cacert: conn.cacert.clone(),
        cert: conn.cert.clone(),
        key: conn.key.clone(),
        request_timeout: conn.request_timeout,
        insecure_skip_verify: conn.insecure_skip_tls_verify,
        // Everything else (e.g. the retry policy) keeps the client's defaults.
        ..ClientOptions::new(conn.addr.clone())
    }
}

/// Parse `--target` values.
pub fn parse_targets(targets: &[String]) -> miette::Result<Vec<Address>> {
    targets.iter().map(|t| t.parse::<Address>().map_err(miette::Report::new)).collect()
}

/// Without a state key, fingerprints are Argon2id: checking them is slow on purpose. Said once per run, when the
/// record has any.
pub fn key_advice(key: Option<&crate::state::StateKey>, live: &crate::live::Live, ui: &Ui) {
    let argon = live.state.record().is_some_and(|r| {
        r.resources
            .values()
            .flat_map(|e| e.fingerprints.values())
            .any(|f| matches!(f, crate::state::Fingerprint::Argon2id { .. }))
    });
    if key.is_none() && argon {
        ui.info(format!(
            "note: no state key ({} or --state-key-file): dm-apply checks write-only values with the memory-hard \
             Argon2id scheme, which is slow on purpose; a key makes plans faster (docs/plan.md)",
            crate::state::key::KEY_ENV
        ));
    }
}

/// Fetch options: per-task status fallback only for declared tasks.
pub fn fetch_options(desired: &crate::config::Desired) -> FetchOptions {
    FetchOptions { status_for: Some(desired.tasks.keys().cloned().collect::<BTreeSet<_>>()) }
}

pub async fn run(args: &PlanArgs, ui: &Ui) -> miette::Result<u8> {
    if let Some(file) = &args.files.clusters {
        return crate::clusters::plan_command(file, args, ui).await;
    }
    let targets = parse_targets(&args.target)?;
    let replace = parse_targets(&args.replace)?;
    let state_key = crate::state::key::load(args.state.state_key_file.as_deref())?;
    let desired = crate::config::load_for_command(&args.files.files, ui)?;
    let client = DmClient::new(&client_options(&args.conn))?;
    let live = live::fetch_with(&client, &fetch_options(&desired)).await?;
    key_advice(state_key.as_ref(), &live, ui);
    let opts = PlanOptions { prune: args.prune, targets, allow_restart: args.allow_restart, replace, state_key };
    let (mut plan, problems) = match plan::make_plan(&desired, &live, &opts) {
        Ok(p) => (p, vec![]),
        Err(e) => match e.plan {
            Some(p) => (*p, e.problems),
            None => return Err(miette::Report::new(plan::PlanError { problems: e.problems, plan: None })),
        },
    };
    if !args.no_preview {
        // A separate step after planning: it reads only for changed tasks and never changes the plan's actions.
        plan.preview = crate::preview::compute(&client, &plan, &live, crate::preview::Limits::default()).await;
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
        let paths: Vec<String> = args.files.files.iter().map(|p| p.display().to_string()).collect();
        let saved = plan::saved::save(&plan, &desired, &live, &opts, &paths);
        plan::saved::write(path, &saved)?;
        ui.info(format!(
            "Saved the plan to {}; apply it with `dm-apply apply --plan {}`.",
            path.display(),
            path.display()
        ));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { EXIT_CHANGES } else { EXIT_OK })
}
