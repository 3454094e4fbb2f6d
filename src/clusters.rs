//! Several DM clusters from one repository: a clusters file names each cluster's address, TLS files, config paths
//! and (optionally) which environment variables hold its credentials. `validate`, `plan` and `drift` with
//! `--clusters FILE` run for every cluster concurrently, print the output grouped per cluster in file order, and
//! combine exit codes: any error → 1, else any changes/drift → 2, else 0.
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
use crate::config::{self, Desired, LoadError};
use crate::dm::client::display_addr;
use crate::dm::{ClientOptions, DmClient};
use crate::live::{self, FetchOptions};
use crate::plan::{self, PlanOptions};
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
    let analysis = config::analyze_with_env(&c.files, &|n| c.lookup(n));
    for w in &analysis.warnings {
        diagnostics.push(format!("{:?}", miette::Report::new(w.clone())));
    }
    if analysis.errors.is_empty() {
        Some(analysis.desired)
    } else {
        diagnostics.push(format!("{:?}", miette::Report::new(LoadError { errors: analysis.errors, warnings: vec![] })));
        None
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
    let (plan, problems) = match crate::legacy::plan(&client, &desired, &mut live, &opts).await {
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
    let (output, json) = match args.output {
        PlanFormat::Text => (crate::render::text::render(&plan, color), None),
        PlanFormat::Markdown => (crate::render::markdown::render(&plan), None),
        PlanFormat::Json => (String::new(), Some(crate::render::json::render_value(&plan, &problems))),
    };
    let code = if !problems.is_empty() {
        diagnostics.push(format!("{:?}", miette::Report::new(plan::PlanError { problems, plan: None })));
        EXIT_ERROR
    } else if plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    Outcome { name: c.name.clone(), addr: display_addr(&c.addr), code, output, json, diagnostics }
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
    Outcome { name: c.name.clone(), addr: display_addr(&c.addr), code, output, json, diagnostics }
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
    let mut out = String::new();
    if json {
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
            if markdown {
                let _ = writeln!(out, "## Cluster `{}` ({})\n", o.name, o.addr);
            } else {
                let _ = writeln!(out, "=== cluster {} ({}) ===", o.name, o.addr);
            }
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
    let n = |c: u8| outcomes.iter().filter(|o| o.code == c).count();
    let summary = format!(
        "{} cluster(s): {} with {}, {} without, {} failed",
        outcomes.len(),
        n(EXIT_CHANGES),
        if what == "drift" { "drift" } else { "changes" },
        n(EXIT_OK),
        n(EXIT_ERROR)
    );
    if markdown {
        let _ = writeln!(out, "### Summary\n\n{summary}");
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
    if args.out.is_some() {
        return Err(miette::miette!(
            code = "clusters::out",
            help = "plan each cluster on its own (`dm-apply plan -f DIR --addr URL --out FILE`) to save plans",
            "--out cannot be combined with --clusters"
        ));
    }
    let clusters = load(file)?;
    let color = ui.color_stdout;
    let outcomes = run_all(clusters, |c| plan_cluster(c, args.clone(), color)).await;
    let code = print(&outcomes, "plan", args.output == PlanFormat::Markdown, args.output == PlanFormat::Json, ui)?;
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
    let clusters = load(file)?;
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let format = args.output;
    let outcomes = run_all(clusters, |c| drift_cluster(c, format, ts)).await;
    Ok(print(&outcomes, "drift", false, format == ReportFormat::Json, ui)?)
}

/// `dm-apply validate --clusters FILE`: every cluster's files, offline, with its variables.
pub fn validate_command(file: &Path, ui: &Ui) -> miette::Result<u8> {
    let clusters = load(file)?;
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
