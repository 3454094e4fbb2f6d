//! `validate`, `plan` and `drift` with `--clusters FILE`: run for every cluster (or those named by `--cluster`)
//! concurrently through the same engine functions as one cluster (`crate::pipeline`), print the output grouped per
//! cluster in file order, and combine exit codes: any error → 1, else any changes/drift → 2, else 0. Diagnostics
//! go to stderr, each line prefixed with the cluster's name.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::cli::{DriftArgs, PlanArgs, PlanFormat, ReportFormat};
use crate::clusters::{Cluster, load_selected, run_all};
use crate::commands::common::{check_split_comments, write_comments};
use crate::commands::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::config::LoadError;
use crate::dm::client::display_addr;
use crate::pipeline::{self, ConfigSource, Failure, Notice, PlanRequest, Planned};
use crate::plan::{self, Plan, PlanProblem};
use crate::render::markdown;
use crate::saved_plan::SavedPlan;
use crate::ui::Ui;

/// What one cluster produced, ready to print.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub addr: String,
    /// 0 no changes, 2 changes/drift, 1 error.
    pub code: u8,
    /// The data (plan, report), in the requested format.
    pub output: String,
    /// For JSON: the cluster's document.
    pub json: Option<Value>,
    /// Diagnostics (warnings, errors), shown on stderr.
    pub diagnostics: Vec<String>,
    /// The plan and the problems that refused it, for markdown (which lays out every cluster together).
    pub plan: Option<Box<Plan>>,
    pub problems: Vec<PlanProblem>,
    /// The plan to save (`plan --out`, one cluster).
    pub saved: Option<Box<SavedPlan>>,
}

impl Outcome {
    fn error(c: &Cluster, diagnostics: Vec<String>) -> Outcome {
        Outcome {
            name: c.name.clone(),
            addr: display_addr(&c.addr),
            code: EXIT_ERROR,
            output: String::new(),
            json: None,
            diagnostics,
            plan: None,
            problems: vec![],
            saved: None,
        }
    }
}

/// Combined exit code: any error → 1, else any changes → 2, else 0.
pub fn combine(codes: impl IntoIterator<Item = u8>) -> u8 {
    let codes: Vec<u8> = codes.into_iter().collect();
    if codes.contains(&EXIT_ERROR) {
        EXIT_ERROR
    } else if codes.contains(&EXIT_CHANGES) {
        EXIT_CHANGES
    } else {
        EXIT_OK
    }
}

/// The run's warnings as a cluster's diagnostics (notes and skipped files are not repeated per cluster).
fn diagnostics_of(notices: Vec<Notice>) -> Vec<String> {
    notices
        .into_iter()
        .filter_map(|n| match n {
            Notice::Warning(w) => Some(format!("{w:?}")),
            Notice::Skipped(_) | Notice::Note(_) => None,
        })
        .collect()
}

/// A failed run as a cluster's diagnostics (an invalid configuration's warnings first, then the error).
fn push_failure(diagnostics: &mut Vec<String>, failure: Failure) {
    let report = match failure {
        Failure::Config(e) => {
            for w in &e.warnings {
                diagnostics.push(format!("{:?}", miette::Report::new(w.clone())));
            }
            miette::Report::new(LoadError { errors: e.errors, warnings: vec![] })
        }
        other => other.into_report(),
    };
    diagnostics.push(format!("{report:?}"));
}

/// What `plan` needs to lay out one cluster.
struct PlanJob {
    options: plan::PlanOptions,
    preview: bool,
    format: PlanFormat,
    color: bool,
    save: bool,
}

/// Plan one cluster: `pipeline::plan`, as `dm-apply plan` runs it for one address.
async fn plan_cluster(c: Cluster, job: Arc<PlanJob>) -> Outcome {
    let req = PlanRequest { client: c.client_options(), options: job.options.clone(), preview: job.preview };
    let run = pipeline::plan(ConfigSource { paths: &c.files, cluster: Some(&c) }, &req).await;
    let mut diagnostics = diagnostics_of(run.notices);
    let Planned { plan, problems, desired, live } = match run.result {
        Ok(p) => p,
        Err(f) => {
            push_failure(&mut diagnostics, f);
            return Outcome::error(&c, diagnostics);
        }
    };
    let (output, json) = match job.format {
        PlanFormat::Text => (crate::render::text::render(&plan, job.color), None),
        // Laid out with the other clusters' plans by `print`.
        PlanFormat::Markdown => (String::new(), None),
        PlanFormat::Json => (String::new(), Some(crate::render::json::render_value(&plan, &problems))),
    };
    let code = if !problems.is_empty() {
        diagnostics
            .push(format!("{:?}", miette::Report::new(plan::PlanError { problems: problems.clone(), plan: None })));
        EXIT_ERROR
    } else if plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    let saved = (job.save && problems.is_empty()).then(|| {
        let config = crate::saved_plan::ConfigPaths {
            paths: c.files.iter().map(|p| p.display().to_string()).collect(),
            dir: std::env::current_dir().ok().map(|d| d.display().to_string()),
        };
        Box::new(crate::saved_plan::save(&plan, &desired, &live, &req.options, &config))
    });
    Outcome {
        name: c.name.clone(),
        addr: display_addr(&c.addr),
        code,
        output,
        json,
        diagnostics,
        plan: Some(Box::new(plan)),
        problems,
        saved,
    }
}

/// Drift-check one cluster (read-only): `pipeline::drift`, as `dm-apply drift` runs it.
async fn drift_cluster(
    c: Cluster,
    format: ReportFormat,
    timestamp: u64,
    key: Option<crate::state::StateKey>,
) -> Outcome {
    let run =
        pipeline::drift(ConfigSource { paths: &c.files, cluster: Some(&c) }, &c.client_options(), key.as_ref()).await;
    let mut diagnostics = diagnostics_of(run.notices);
    let report = match run.result {
        Ok(r) => r,
        Err(f) => {
            push_failure(&mut diagnostics, f);
            return Outcome::error(&c, diagnostics);
        }
    };
    let (output, json) = match format {
        ReportFormat::Text => (crate::drift::render_text(&report), None),
        ReportFormat::Json => {
            let text = crate::drift::render_json(&report, timestamp);
            (String::new(), Some(serde_json::from_str(&text).unwrap_or(Value::String(text))))
        }
    };
    let code = if report.has_drift() { EXIT_CHANGES } else { EXIT_OK };
    Outcome {
        name: c.name.clone(),
        addr: display_addr(&c.addr),
        code,
        output,
        json,
        diagnostics,
        plan: None,
        problems: vec![],
        saved: None,
    }
}

/// The outcomes in file order; a cluster whose task panicked is that cluster's error.
fn in_order(clusters: &[Cluster], results: Vec<Option<Outcome>>) -> Vec<Outcome> {
    results
        .into_iter()
        .zip(clusters)
        .map(|(o, c)| {
            o.unwrap_or_else(|| Outcome::error(c, vec!["internal error: the cluster's task panicked".into()]))
        })
        .collect()
}

/// `2 cluster(s): 1 with changes, 1 without, 0 failed`.
fn summary_line(outcomes: &[Outcome], what: &str) -> String {
    let n = |c: u8| outcomes.iter().filter(|o| o.code == c).count();
    format!(
        "{} cluster(s): {} with {}, {} without, {} failed",
        outcomes.len(),
        n(EXIT_CHANGES),
        if what == "drift" { "drift" } else { "changes" },
        n(EXIT_OK),
        n(EXIT_ERROR)
    )
}

/// The markdown sections of the clusters' plans.
fn sections(outcomes: &[Outcome]) -> Vec<markdown::Section<'_>> {
    outcomes
        .iter()
        .map(|o| markdown::Section {
            cluster: Some((o.name.as_str(), o.addr.as_str())),
            body: match &o.plan {
                Some(p) => markdown::Body::Plan { plan: p, errors: &o.problems },
                None => markdown::Body::Failed,
            },
        })
        .collect()
}

/// Print grouped output (stdout) and diagnostics (stderr); returns the combined exit code.
fn print(outcomes: &[Outcome], what: &str, markdown: bool, json: bool, ui: &Ui) -> Result<u8, crate::ui::OutputError> {
    use std::fmt::Write as _;
    for o in outcomes {
        for d in &o.diagnostics {
            crate::ui::eprint(&prefixed(&o.name, d));
        }
    }
    let summary = summary_line(outcomes, what);
    let mut out = String::new();
    if markdown {
        // One comment for every cluster: each summary kept, details cut to fit (see render::markdown).
        out = markdown::document(&sections(outcomes), Some(&summary));
    } else if json {
        let doc = json!({
            "format_version": "1",
            "clusters": outcomes.iter().map(|o| json!({
                "name": o.name,
                "addr": o.addr,
                "exit_code": o.code,
                "status": status(o.code),
                what: o.json.clone().unwrap_or(Value::Null),
            })).collect::<Vec<_>>(),
        });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for o in outcomes {
            let _ = writeln!(out, "=== cluster {} ({}) ===", o.name, o.addr);
            if o.code == EXIT_ERROR && o.output.is_empty() {
                // Said on stderr (stdout carries only data): the section stays, empty.
                crate::ui::eprint(&prefixed(&o.name, &format!("{what} failed: see the errors above.")));
                out.push('\n');
            } else {
                out.push_str(&o.output);
                if !o.output.ends_with('\n') {
                    out.push('\n');
                }
                out.push('\n');
            }
        }
    }
    let kind = match (json, markdown) {
        (true, _) => crate::ui::Data::Json,
        // Markdown and drift text are never coloured: nothing is left in that looks like a colour code.
        (false, true) => crate::ui::Data::Plain,
        (false, false) if what == "drift" => crate::ui::Data::Plain,
        (false, false) => crate::ui::Data::Text,
    };
    ui.data(kind, &out)?;
    if !markdown {
        ui.info(&summary);
    }
    Ok(combine(outcomes.iter().map(|o| o.code)))
}

/// Every line of a (multi-line) diagnostic prefixed with the cluster's name, so interleaved reports stay readable.
pub fn prefixed(name: &str, text: &str) -> String {
    text.trim_end().lines().map(|l| format!("[{name}] {l}\n")).collect()
}

fn status(code: u8) -> &'static str {
    match code {
        EXIT_OK => "ok",
        EXIT_CHANGES => "changes",
        _ => "error",
    }
}

/// `dm-apply plan --clusters FILE`.
pub async fn plan_command(file: &Path, args: &PlanArgs, ui: &Ui) -> miette::Result<u8> {
    let clusters = load_selected(file, &args.files.cluster)?;
    if args.out.is_some() && clusters.len() != 1 {
        return Err(miette::miette!(
            code = "clusters::out",
            help = "name the cluster to save the plan of: `--clusters FILE --cluster NAME --out plan.json`, then \
                    `dm-apply apply --clusters FILE --cluster NAME --plan plan.json`",
            "--out with --clusters saves the plan of one cluster, and {} are selected",
            clusters.len()
        ));
    }
    check_split_comments(args)?;
    // The same options for every cluster, parsed once (as `plan` parses them for one).
    let job = Arc::new(PlanJob {
        options: super::plan::plan_options(args)?,
        preview: !args.no_preview,
        format: args.output,
        color: ui.color_stdout,
        save: args.out.is_some(),
    });
    let results = run_all(&clusters, |c| plan_cluster(c, job.clone())).await;
    let outcomes = in_order(&clusters, results);
    if let Some(dir) = &args.split_comments {
        let summary = summary_line(&outcomes, "plan");
        write_comments(dir, &markdown::comments(&sections(&outcomes), Some(&summary)), ui)?;
    }
    let code = print(&outcomes, "plan", args.output == PlanFormat::Markdown, args.output == PlanFormat::Json, ui)?;
    if let (Some(path), [o]) = (&args.out, outcomes.as_slice())
        && let Some(saved) = &o.saved
    {
        crate::saved_plan::file::write(path, saved)?;
        ui.info(format!(
            "Saved the plan of cluster {} to {}; apply it with `dm-apply apply --clusters {} --cluster {} --plan {}`.",
            o.name,
            path.display(),
            file.display(),
            o.name,
            path.display()
        ));
    }
    // Like a single plan: changes give 2 only with --detailed-exitcode.
    Ok(if code == EXIT_CHANGES && !args.detailed_exitcode { EXIT_OK } else { code })
}

/// `dm-apply drift --clusters FILE`.
pub async fn drift_command(file: &Path, args: &DriftArgs, ui: &Ui) -> miette::Result<u8> {
    if args.prometheus_textfile.is_some() {
        return Err(miette::miette!(
            code = "clusters::prometheus",
            help = "run one drift check per cluster, each with its own textfile",
            "--prometheus-textfile cannot be combined with --clusters"
        ));
    }
    let clusters = load_selected(file, &args.files.cluster)?;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let format = args.output;
    // The state key from the environment only, for every cluster.
    let key = crate::state::key::load(None)?;
    let results = run_all(&clusters, |c| drift_cluster(c, format, ts, key.clone())).await;
    Ok(print(&in_order(&clusters, results), "drift", false, format == ReportFormat::Json, ui)?)
}

/// `dm-apply validate --clusters FILE`: every cluster's files (or those of `names`), offline, with its variables.
pub fn validate_command(file: &Path, names: &[String], allow_missing_env: bool, ui: &Ui) -> miette::Result<u8> {
    let clusters = load_selected(file, names)?;
    let mut codes = Vec::new();
    for c in &clusters {
        let mut diagnostics = Vec::new();
        let mut notices = Vec::new();
        let loaded = if allow_missing_env {
            let (loaded, missing) = c.load_allowing_missing(&c.files);
            for name in missing {
                ui.warn(format_args!(
                    "[{}] environment variable `{name}` is not set (allowed by --allow-missing-env)",
                    c.name
                ));
            }
            loaded.map(|l| {
                notices.extend(l.warnings.into_iter().map(Notice::Warning));
                l.desired
            })
        } else {
            pipeline::load_config(ConfigSource { paths: &c.files, cluster: Some(c) }, &mut notices)
        };
        let ok = match loaded {
            Ok(d) => Some((d.sources.len(), d.tasks.len())),
            Err(e) => {
                push_failure(&mut diagnostics, Failure::Config(e));
                None
            }
        };
        diagnostics.splice(0..0, diagnostics_of(notices));
        for d in &diagnostics {
            crate::ui::eprint(&prefixed(&c.name, d));
        }
        match ok {
            Some((s, t)) => {
                ui.info(format_args!("[{}] {s} source(s), {t} task(s): valid", c.name));
                codes.push(EXIT_OK);
            }
            None => {
                crate::ui::eprint(&format!("[{}] invalid\n", c.name));
                codes.push(EXIT_ERROR);
            }
        }
    }
    Ok(combine(codes))
}

/// The configuration of one cluster for `apply --clusters FILE --cluster NAME`: warnings printed with the
/// cluster's name, errors returned as one error naming the cluster.
pub fn load_for_cluster(c: &Cluster, paths: &[std::path::PathBuf]) -> miette::Result<crate::config::Desired> {
    let mut notices = Vec::new();
    let loaded = pipeline::load_config(ConfigSource { paths, cluster: Some(c) }, &mut notices);
    let mut diagnostics = diagnostics_of(notices);
    let result = match loaded {
        Ok(d) => Ok(d),
        Err(e) => {
            push_failure(&mut diagnostics, Failure::Config(e));
            Err(miette::miette!(
                code = "clusters::invalid_config",
                "the configuration of cluster `{}` is invalid",
                c.name
            ))
        }
    };
    for d in &diagnostics {
        crate::ui::eprint(&prefixed(&c.name, d));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_combine() {
        assert_eq!(combine([0, 0]), 0);
        assert_eq!(combine([0, 2]), 2);
        assert_eq!(combine([2, 1, 0]), 1);
        assert_eq!(combine([]), 0);
    }
}
