//! Several DM clusters from one repository: a clusters file names each cluster's address, TLS files, config paths
//! and (optionally) which environment variables hold its credentials. `validate`, `plan` and `drift` with
//! `--clusters FILE` run for every cluster (or those named by `--cluster`) concurrently.
//! `apply --clusters FILE --cluster NAME` applies one cluster with the same settings.
//!
//! This is the engine part: read the clusters file, each cluster's client options and configuration (with its
//! variable mapping), and [`run_all`] to run one function per cluster concurrently. What is printed and which exit
//! code the outcomes make is the command's business (src/commands/clusters.rs).
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

use crate::config::diag::Problem;
use crate::config::{self, LoadError, Loaded};
use crate::dm::ClientOptions;
use crate::duration::parse_request_timeout;

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

    /// The configuration of this cluster from `paths` (its `files`, or those a saved plan records), read with its
    /// variables. An unset variable the clusters file maps is reported under the mapped name.
    pub fn load(&self, paths: &[PathBuf]) -> Result<Loaded, LoadError> {
        let mut analysis = config::analyze_with_env(paths, &|n| self.lookup(n));
        for e in &mut analysis.errors {
            name_mapped_variable(self, e);
        }
        config::finish(analysis)
    }

    /// Like [`Cluster::load`], for `validate --allow-missing-env`: an unset variable reads as a placeholder (and an
    /// unreadable `${file:..}` as a warning), so every other check still runs. Also returns the unset variables, by
    /// the name the environment is read under (the clusters file's mapping applied).
    pub fn load_allowing_missing(&self, paths: &[PathBuf]) -> (Result<Loaded, LoadError>, BTreeSet<String>) {
        let missing = std::cell::RefCell::new(BTreeSet::new());
        let analysis = config::analyze_with_options(
            paths,
            &|n| {
                self.lookup(n).or_else(|| {
                    missing.borrow_mut().insert(self.env.get(n).cloned().unwrap_or_else(|| n.to_string()));
                    Some(format!("unset-{n}"))
                })
            },
            config::InterpOptions { allow_missing_files: true },
        );
        (config::finish(analysis), missing.into_inner())
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

/// Run `f` for every cluster concurrently; results in the clusters file's order. `None`: that cluster's task
/// panicked (a bug), reported by the caller as that cluster's error.
pub async fn run_all<F, Fut, T>(clusters: &[Cluster], f: F) -> Vec<Option<T>>
where
    F: Fn(Cluster) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, c) in clusters.iter().cloned().enumerate() {
        let fut = f(c);
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(clusters.len()).collect();
    while let Some(r) = set.join_next().await {
        if let Ok((i, o)) = r {
            out[i] = Some(o);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
