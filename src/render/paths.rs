//! Paths as plans show them (`# declared at dm/tasks.yaml:12`): relative to the repository root when the current
//! directory is inside a git checkout, else to the current directory; never the absolute path of a CI runner's
//! workspace, which says nothing to a reviewer and differs between runs.

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use crate::config::Desired;

/// The directory paths are shown relative to: the root of the git checkout around the current directory, or the
/// current directory itself (`None` when even that is unknown).
fn base() -> Option<&'static Path> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BASE.get_or_init(|| {
        let cwd = std::env::current_dir().ok()?;
        let root = cwd.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf);
        Some(root.unwrap_or(cwd))
    })
    .as_deref()
}

/// `a/./b/../c` → `a/c`, without touching the file system (the file may be gone; symlinks stay as written).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` relative to `base` (with `..` where it lies outside), both absolute and normalized.
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// How a plan shows `file`, given the current directory `cwd` and the base of relative paths `base`.
fn display_with(file: &str, cwd: &Path, base: &Path) -> String {
    let p = Path::new(file);
    let abs = normalize(&if p.is_absolute() { p.to_path_buf() } else { cwd.join(p) });
    let rel = relative_to(&abs, base);
    if rel.as_os_str().is_empty() { ".".to_string() } else { rel.display().to_string() }
}

/// How a plan shows the configuration file `file` (see the module docs).
pub fn display(file: &str) -> String {
    match (std::env::current_dir(), base()) {
        (Ok(cwd), Some(base)) => display_with(file, &cwd, base),
        _ => file.to_string(),
    }
}

/// Rewrite where every declared resource comes from as plans show it.
pub fn relativize_origins(desired: &mut Desired) {
    for (_, o) in desired.sources.values_mut() {
        o.file = display(&o.file);
    }
    for (_, o) in desired.tasks.values_mut() {
        o.file = display(&o.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_relative_to_the_base() {
        let cwd = Path::new("/home/runner/work/repo/repo/dm");
        let base = Path::new("/home/runner/work/repo/repo");
        assert_eq!(display_with("/home/runner/work/repo/repo/dm/tasks.yaml", cwd, base), "dm/tasks.yaml");
        assert_eq!(display_with("tasks.yaml", cwd, base), "dm/tasks.yaml");
        assert_eq!(display_with("./prod/../shared/s.yaml", cwd, base), "dm/shared/s.yaml");
        assert_eq!(display_with("/etc/dm/x.yaml", cwd, base), "../../../../../etc/dm/x.yaml");
        assert!(!display_with("/home/runner/work/repo/repo/a.yaml", cwd, base).starts_with('/'));
    }
}
