//! `dm-apply plan`: load the configuration, read DM, plan, render on stdout, optionally save.

use std::collections::BTreeSet;

use crate::cli::{ConnArgs, PlanArgs, PlanFormat};
use crate::commands::{EXIT_CHANGES, EXIT_OK};
use crate::dm::{ClientOptions, DmClient};
use crate::live::{self, FetchOptions};
use crate::plan::{self, Address, PlanOptions};
use crate::render;
use crate::saved_plan;
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
        ..ClientOptions::new(conn.addr.clone().unwrap_or_else(|| crate::cli::DEFAULT_ADDR.to_string()))
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

/// `--split-comments` writes markdown: refused with another output format (what would the files hold?).
pub fn check_split_comments(args: &PlanArgs) -> miette::Result<()> {
    if args.split_comments.is_some() && args.output != PlanFormat::Markdown {
        return Err(miette::miette!(
            code = "plan::split_comments",
            help = "add `-o markdown`",
            "--split-comments writes markdown comments and needs `-o markdown`"
        ));
    }
    Ok(())
}

/// Write `comments` as DIR/comment-001.md, comment-002.md, ... (DIR created when missing). Comment files of an
/// earlier run are removed first, so the directory holds exactly this plan's comments, in name order.
pub fn write_comments(dir: &std::path::Path, comments: &[String], ui: &Ui) -> miette::Result<()> {
    let fail =
        |e: std::io::Error| miette::miette!(code = "plan::split_comments", "--split-comments {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let path = entry.map_err(fail)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let ours = name
            .strip_prefix("comment-")
            .and_then(|r| r.strip_suffix(".md"))
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if ours {
            std::fs::remove_file(&path).map_err(fail)?;
        }
    }
    for (i, c) in comments.iter().enumerate() {
        std::fs::write(dir.join(format!("comment-{:03}.md", i + 1)), c).map_err(fail)?;
    }
    ui.info(format!("Wrote the plan as {} comment(s) to {} (comment-001.md first).", comments.len(), dir.display()));
    Ok(())
}

pub async fn run(args: &PlanArgs, ui: &Ui) -> miette::Result<u8> {
    if let Some(file) = &args.files.clusters {
        return crate::clusters::plan_command(file, args, ui).await;
    }
    check_split_comments(args)?;
    let targets = parse_targets(&args.target)?;
    let replace = parse_targets(&args.replace)?;
    let state_key = crate::state::key::load(args.state.state_key_file.as_deref())?;
    let desired = crate::config::load_for_command(&args.files.files, ui)?;
    let client = DmClient::new(&client_options(&args.conn))?;
    let accept_loss = parse_targets(&args.accept_loss)?;
    let mut live = live::fetch_with(&client, &fetch_options(&desired)).await?;
    key_advice(state_key.as_ref(), &live, ui);
    let opts =
        PlanOptions { prune: args.prune, targets, allow_restart: args.allow_restart, replace, state_key, accept_loss };
    let (mut plan, problems) = match crate::legacy::plan(&client, &desired, &mut live, &opts).await {
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
        let saved = saved_plan::save(&plan, &desired, &live, &opts, &config);
        saved_plan::file::write(path, &saved)?;
        ui.info(format!(
            "Saved the plan to {}; apply it with `dm-apply apply --plan {}`.",
            path.display(),
            path.display()
        ));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { EXIT_CHANGES } else { EXIT_OK })
}
