//! The saved plan file on disk, and the configuration it was made from.

use std::path::{Path, PathBuf};

use super::{SAVED_FORMAT, SavedPlan};

/// Errors reading or writing a saved plan file, or finding the configuration it was made from.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SavedPlanError {
    #[error("cannot read or write the plan file {path}: {source}")]
    #[diagnostic(code(plan::file))]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a dm-apply saved plan: {detail}")]
    #[diagnostic(code(plan::file_format), help("write one with `dm-apply plan --out FILE`"))]
    Format { path: String, detail: String },
    #[error(
        "cannot find the configuration the saved plan was made from ({paths}): looked in the current directory{}",
        match dir { Some(d) => format!(" and in {d}, where plan ran"), None => String::new() }
    )]
    #[diagnostic(
        code(plan::config_not_found),
        help(
            "run apply where the configuration is, or point at it with `-f PATH` (it must be the configuration the \
             plan was made from)"
        )
    )]
    ConfigNotFound { paths: String, dir: Option<String> },
}

/// Write atomically (temporary file in the same directory, then rename), readable by the owner only.
pub fn write(path: &Path, saved: &SavedPlan) -> Result<(), SavedPlanError> {
    let io = |e| SavedPlanError::Io { path: path.display().to_string(), source: e };
    let text = serde_json::to_string_pretty(saved).map_err(|e| io(std::io::Error::other(e)))?;
    let mut bytes = text.into_bytes();
    bytes.push(b'\n');
    crate::atomic::write(path, &bytes, crate::atomic::Mode::Private).map_err(io)
}

/// Read and parse a saved plan (its content is checked by `apply --plan`, never trusted).
pub fn read(path: &Path) -> Result<SavedPlan, SavedPlanError> {
    let shown = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SavedPlanError::Io { path: shown(), source: e })?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| SavedPlanError::Format {
        path: shown(),
        detail: crate::ui::sanitize::inline(&e.to_string()).into(),
    })?;
    if saved.format != SAVED_FORMAT || !saved.format_version.starts_with("1.") {
        return Err(SavedPlanError::Format {
            path: shown(),
            detail: crate::ui::sanitize::inline(&format!("format {} {}", saved.format, saved.format_version)).into(),
        });
    }
    Ok(saved)
}

/// The configuration paths `apply --plan` reads, and how they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocation {
    pub paths: Vec<PathBuf>,
    /// For people: where the paths come from.
    pub how: String,
}

/// Find the configuration a saved plan was made from: the `-f` paths when given; otherwise the recorded paths,
/// relative to the current directory first, then to the directory `plan` ran in. Whichever is used, its content
/// must still match the plan's desired digest (checked later): a path only says where to look.
pub fn locate_config(saved: &SavedPlan, explicit: &[PathBuf]) -> Result<ConfigLocation, SavedPlanError> {
    if !explicit.is_empty() {
        return Ok(ConfigLocation { paths: explicit.to_vec(), how: "given with -f".to_string() });
    }
    let recorded: Vec<PathBuf> = saved.config_paths.iter().map(PathBuf::from).collect();
    let not_found = || SavedPlanError::ConfigNotFound {
        paths: crate::ui::sanitize::inline(&saved.config_paths.join(", ")).into(),
        dir: saved.config_dir.as_deref().map(|d| crate::ui::sanitize::inline(d).into_owned()),
    };
    if recorded.is_empty() {
        return Err(not_found());
    }
    if recorded.iter().all(|p| p.exists()) {
        return Ok(ConfigLocation { paths: recorded, how: "from the current directory".to_string() });
    }
    if let Some(dir) = &saved.config_dir {
        let joined: Vec<PathBuf> = recorded.iter().map(|p| Path::new(dir).join(p)).collect();
        if joined.iter().all(|p| p.exists()) {
            return Ok(ConfigLocation {
                paths: joined,
                how: format!("from {}, where plan ran", crate::ui::sanitize::inline(dir)),
            });
        }
    }
    Err(not_found())
}
