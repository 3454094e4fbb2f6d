//! Several DM clusters from one repository: a clusters file names each cluster's address, TLS files, config paths
//! and (optionally) which environment variables hold its credentials. `validate`, `plan` and `drift` with
//! `--clusters FILE` run for every cluster (or those named by `--cluster`) concurrently, print the output grouped
//! per cluster in file order, and combine exit codes: any error → 1, else any changes/drift → 2, else 0.
//! `apply --clusters FILE --cluster NAME` applies one cluster with the same settings.
//!
//! ```yaml
//! clusters:
//!   - name: staging
//!     addr: http://dm-staging.internal:8261
//!     files: [staging/]                 # relative to this file
//!   - name: production
//!     addr: https://dm-prod.internal:8261
//!     cacert: tls/prod-ca.pem
//!     files: [production/, shared/]
//!     env:                              # ${env:DM_SOURCE_PASSWORD} in production's files reads PROD_SOURCE_PASSWORD
//!       DM_SOURCE_PASSWORD: PROD_SOURCE_PASSWORD
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::{DriftArgs, PlanArgs, PlanFormat, ReportFormat, parse_request_timeout};
use crate::commands::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::config::diag::Problem;
use crate::config::{self, Desired, LoadError};
use crate::dm::client::display_addr;
use crate::dm::{ClientOptions, DmClient};
use crate::live::{self, FetchOptions};
use crate::plan::{self, Plan, PlanOptions, PlanProblem};
use crate::render::markdown;
use crate::saved_plan::SavedPlan;
use crate::ui::Ui;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    clusters: Vec<RawCluster>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    name: String,
    addr: String,
    files: Vec<PathBuf>,
    #[serde(default)]
    cacert: Option<PathBuf>,
    #[serde(default)]
    cert: Option<PathBuf>,
    #[serde(default)]
    key: Option<PathBuf>,
    #[serde(default)]
    request_timeout: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// One cluster, paths resolved against the clusters file's directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub addr: String,
    pub files: Vec<PathBuf>,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub request_timeout: Duration,
    /// Variable used in the configuration → variable that holds it for this cluster.
    pub env: BTreeMap<String, String>,
}

impl Cluster {
    /// `${env:NAME}` lookup for this cluster: the mapped variable when there is one, else NAME itself.
    pub fn lookup(&self, name: &str) -> Option<String> {
        std::env::var(self.env.get(name).map(String::as_str).unwrap_or(name)).ok()
    }

    /// The configuration of this cluster from `paths` (its `files`, or those a saved plan records), with its
    /// variables, for a command on this cluster alone: warnings printed, errors returned (as
    /// `config::load_for_command` does).
    pub fn load_for_command(&self, paths: &[PathBuf]) -> miette::Result<Desired> {
        let mut diagnostics = Vec::new();
        let desired = load_desired_from(self, paths, &mut diagnostics);
        for d in &diagnostics {
            crate::ui::eprint(&prefixed(&self.name, d));
        }
        desired.ok_or_else(|| {
            miette::miette!(
                code = "clusters::invalid_config",
                "the configuration of cluster `{}` is invalid",
                self.name
            )
        })
    }

    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            request_timeout: self.request_timeout,
            ..ClientOptions::new(self.addr.clone())
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{file}: {message}")]
#[diagnostic(code(clusters::invalid), help("see docs/adoption.md, \"Several clusters\""))]
pub struct ClustersError {
    pub file: String,
    pub message: String,
}

/// The clusters of `path` named in `names` (all when `names` is empty), in the file's order.
pub fn load_selected(path: &Path, names: &[String]) -> Result<Vec<Cluster>, ClustersError> {
    let all = load(path)?;
    let unknown: Vec<&String> = names.iter().filter(|n| !all.iter().any(|c| &c.name == *n)).collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        return Err(ClustersError {
            file: path.display().to_string(),
            message: format!(
                "no cluster named {} (the file lists {})",
                unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                known.join(", ")
            ),
        });
    }
    Ok(all.into_iter().filter(|c| names.is_empty() || names.contains(&c.name)).collect())
}

/// The one cluster `apply --clusters FILE --cluster NAME` works on.
pub fn load_one(path: &Path, name: &str) -> Result<Cluster, ClustersError> {
    let mut v = load_selected(path, &[name.to_string()])?;
    v.pop().ok_or_else(|| ClustersError { file: path.display().to_string(), message: format!("no cluster `{name}`") })
}

/// Read and check a clusters file.
pub fn load(path: &Path) -> Result<Vec<Cluster>, ClustersError> {
    let file = path.display().to_string();
    let err = |message: String| ClustersError { file: file.clone(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let raw: RawFile = serde_saphyr::from_str(&text).map_err(|e| err(e.to_string()))?;
    if raw.clusters.is_empty() {
        return Err(err("`clusters` lists no cluster".into()));
    }
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let rel = |p: &PathBuf| if p.is_absolute() { p.clone() } else { base.join(p) };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in raw.clusters {
        if c.name.is_empty() || !c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
            return Err(err(format!("cluster name `{}` must be letters, digits, `-` or `_`", c.name)));
        }
        if !seen.insert(c.name.clone()) {
            return Err(err(format!("cluster `{}` is listed twice", c.name)));
        }
        if c.files.is_empty() {
            return Err(err(format!("cluster `{}` has no configuration `files`", c.name)));
        }
        if c.cert.is_some() != c.key.is_some() {
            return Err(err(format!("cluster `{}`: `cert` and `key` go together", c.name)));
        }
        let request_timeout = match &c.request_timeout {
            Some(t) => {
                parse_request_timeout(t).map_err(|e| err(format!("cluster `{}`: request_timeout {e}", c.name)))?
            }
            None => Duration::from_secs(30),
        };
        out.push(Cluster {
            files: c.files.iter().map(rel).collect(),
            cacert: c.cacert.as_ref().map(rel),
            cert: c.cert.as_ref().map(rel),
            key: c.key.as_ref().map(rel),
            name: c.name,
            addr: c.addr,
            request_timeout,
            env: c.env,
        });
    }
    Ok(out)
}

/// What one cluster produced.
#[derive(Debug, Clone)]
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

fn load_desired(c: &Cluster, diagnostics: &mut Vec<String>) -> Option<Desired> {
    load_desired_from(c, &c.files, diagnostics)
}

fn load_desired_from(c: &Cluster, paths: &[PathBuf], diagnostics: &mut Vec<String>) -> Option<Desired> {
    let mut analysis = config::analyze_with_env(paths, &|n| c.lookup(n));
    for w in &analysis.warnings {
        diagnostics.push(format!("{:?}", miette::Report::new(w.clone())));
    }
    for e in &mut analysis.errors {
        name_mapped_variable(c, e);
    }
    if analysis.errors.is_empty() {
        let mut desired = analysis.desired;
        crate::render::paths::relativize_origins(&mut desired);
        Some(desired)
    } else {
        diagnostics.push(format!("{:?}", miette::Report::new(LoadError { errors: analysis.errors, warnings: vec![] })));
        None
    }
}

/// An unset variable that the clusters file maps: the variable to set is the mapped one, not the one the
/// configuration names (which is never read for this cluster).
fn name_mapped_variable(c: &Cluster, e: &mut Problem) {
    if e.code != "dm_apply::config::env_unset" {
        return;
    }
    let Some(name) = e.message.strip_prefix("environment variable `").and_then(|r| r.strip_suffix("` is not set"))
    else {
        return;
    };
    if let Some(var) = c.env.get(name) {
        e.message = format!(
            "environment variable `{var}` is not set (cluster `{}` reads `${{env:{name}}}` from it: `env` in the \
             clusters file)",
            c.name
        );
        e.help = Some(format!("export {var}=... before running dm-apply"));
    }
}

/// Plan one cluster (what `dm-apply plan` does for one address).
pub async fn plan_cluster(c: Cluster, args: PlanArgs, color: bool) -> Outcome {
    let mut diagnostics = Vec::new();
    let Some(desired) = load_desired(&c, &mut diagnostics) else { return Outcome::error(&c, diagnostics) };
    let targets = match crate::commands::plan::parse_targets(&args.target) {
        Ok(t) => t,
        Err(e) => return Outcome::error(&c, vec![format!("{e:?}")]),
    };
    let client = match DmClient::new(&c.client_options()) {
        Ok(cl) => cl,
        Err(e) => return Outcome::error(&c, vec![format!("{:?}", miette::Report::new(e))]),
    };
    let fetch = FetchOptions { status_for: Some(desired.tasks.keys().cloned().collect()) };
    let mut live = match live::fetch_with(&client, &fetch).await {
        Ok(l) => l,
        Err(e) => {
            diagnostics.push(format!("{:?}", miette::Report::new(e)));
            return Outcome::error(&c, diagnostics);
        }
    };
    let (replace, state_key) = match (
        crate::commands::plan::parse_targets(&args.replace),
        crate::state::key::load(args.state.state_key_file.as_deref()),
    ) {
        (Ok(r), Ok(k)) => (r, k),
        (Err(e), _) => return Outcome::error(&c, vec![format!("{e:?}")]),
        (_, Err(e)) => return Outcome::error(&c, vec![format!("{:?}", miette::Report::new(e))]),
    };
    let accept_loss = match crate::commands::plan::parse_targets(&args.accept_loss) {
        Ok(a) => a,
        Err(e) => return Outcome::error(&c, vec![format!("{e:?}")]),
    };
    let opts =
        PlanOptions { prune: args.prune, targets, allow_restart: args.allow_restart, replace, state_key, accept_loss };
    let (mut plan, problems) = match crate::legacy::plan(&client, &desired, &mut live, &opts).await {
        Ok(p) => (p, vec![]),
        Err(e) => match e.plan {
            Some(p) => (*p, e.problems),
            None => {
                diagnostics
                    .push(format!("{:?}", miette::Report::new(plan::PlanError { problems: e.problems, plan: None })));
                return Outcome::error(&c, diagnostics);
            }
        },
    };
    if !args.no_preview {
        // As `plan` does for one cluster (docs/plan.md, "Preview").
        plan.preview = crate::preview::compute(&client, &plan, &live, crate::preview::Limits::default()).await;
    }
    let (output, json) = match args.output {
        PlanFormat::Text => (crate::render::text::render(&plan, color), None),
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
    let saved = (args.out.is_some() && problems.is_empty()).then(|| {
        let config = crate::saved_plan::ConfigPaths {
            paths: c.files.iter().map(|p| p.display().to_string()).collect(),
            dir: std::env::current_dir().ok().map(|d| d.display().to_string()),
        };
        Box::new(crate::saved_plan::save(&plan, &desired, &live, &opts, &config))
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

/// Drift-check one cluster (read-only).
pub async fn drift_cluster(c: Cluster, format: ReportFormat, timestamp: u64) -> Outcome {
    let mut diagnostics = Vec::new();
    let Some(desired) = load_desired(&c, &mut diagnostics) else { return Outcome::error(&c, diagnostics) };
    let client = match DmClient::new(&c.client_options()) {
        Ok(cl) => cl,
        Err(e) => return Outcome::error(&c, vec![format!("{:?}", miette::Report::new(e))]),
    };
    let dm = crate::drift::ReadOnlyDm::new(client);
    let fetch = FetchOptions { status_for: Some(desired.tasks.keys().cloned().collect()) };
    let live = match dm.fetch(&fetch).await {
        Ok(l) => l,
        Err(e) => {
            diagnostics.push(format!("{:?}", miette::Report::new(e)));
            return Outcome::error(&c, diagnostics);
        }
    };
    let state_key = match crate::state::key::load(None) {
        Ok(k) => k,
        Err(e) => return Outcome::error(&c, vec![format!("{:?}", miette::Report::new(e))]),
    };
    let report = crate::drift::report(&desired, &live, state_key.as_ref());
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

/// Run `f` for every cluster concurrently; results in the clusters file's order.
pub async fn run_all<F, Fut>(clusters: Vec<Cluster>, f: F) -> Vec<Outcome>
where
    F: Fn(Cluster) -> Fut,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, c) in clusters.iter().cloned().enumerate() {
        let fut = f(c);
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<Option<Outcome>> = vec![None; clusters.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, o)) = r {
            out[i] = Some(o);
        }
    }
    out.into_iter()
        .zip(clusters)
        .map(|(o, c)| {
            o.unwrap_or_else(|| Outcome::error(&c, vec!["internal error: the cluster's task panicked".into()]))
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
pub fn print(
    outcomes: &[Outcome],
    what: &str,
    markdown: bool,
    json: bool,
    ui: &Ui,
) -> Result<u8, crate::ui::OutputError> {
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
                let _ = writeln!(out, "{what} failed: see the errors above (stderr).\n");
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
fn prefixed(name: &str, text: &str) -> String {
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
    crate::commands::plan::check_split_comments(args)?;
    let color = ui.color_stdout;
    let outcomes = run_all(clusters, |c| plan_cluster(c, args.clone(), color)).await;
    if let Some(dir) = &args.split_comments {
        let summary = summary_line(&outcomes, "plan");
        crate::commands::plan::write_comments(dir, &markdown::comments(&sections(&outcomes), Some(&summary)), ui)?;
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
    let outcomes = run_all(clusters, |c| drift_cluster(c, format, ts)).await;
    Ok(print(&outcomes, "drift", false, format == ReportFormat::Json, ui)?)
}

/// `dm-apply validate --clusters FILE`: every cluster's files (or those of `names`), offline, with its variables.
pub fn validate_command(file: &Path, names: &[String], ui: &Ui) -> miette::Result<u8> {
    let clusters = load_selected(file, names)?;
    let mut codes = Vec::new();
    for c in &clusters {
        let mut diagnostics = Vec::new();
        let ok = load_desired(c, &mut diagnostics).map(|d| (d.sources.len(), d.tasks.len()));
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

    #[test]
    fn clusters_file_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("clusters.yaml");
        let write = |t: &str| std::fs::write(&f, t).unwrap();
        write("clusters:\n  - {name: a, addr: http://x, files: [a/], env: {P: A_P}, request_timeout: 5s}\n");
        let c = load(&f).unwrap();
        assert_eq!(c[0].files, [dir.path().join("a/")]);
        assert_eq!(c[0].request_timeout, Duration::from_secs(5));
        for (bad, want) in [
            ("clusters: []\n", "lists no cluster"),
            ("clusters:\n  - {name: a, addr: x, files: [a]}\n  - {name: a, addr: y, files: [b]}\n", "listed twice"),
            ("clusters:\n  - {name: 'a b', addr: x, files: [a]}\n", "must be letters"),
            ("clusters:\n  - {name: a, addr: x, files: []}\n", "no configuration"),
            ("clusters:\n  - {name: a, addr: x, files: [a], cert: c.pem}\n", "go together"),
            ("clusters:\n  - {name: a, adr: x, files: [a]}\n", "adr"),
        ] {
            write(bad);
            let e = load(&f).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
