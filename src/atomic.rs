//! The one way dm-apply writes an output file (saved plans, `--out`, `--split-comments`, the Prometheus
//! textfile): a temporary file in the same directory, flushed to disk, then renamed over the target. A reader
//! (node_exporter, `apply --plan`, a CI step) sees the old file or the new one, never half of one, even after a
//! crash.

use std::io::Write;
use std::path::Path;

/// Who may read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The process's umask decides (ordinary output files).
    Default,
    /// The owner only (0600 on Unix): saved plans name resources and addresses.
    Private,
}

/// Write `content` to `path` atomically. The temporary file is `.<name>.<pid>.tmp` (it does not end like the
/// target, so collectors that match `*.prom` ignore it) and is removed when anything fails.
pub fn write(path: &Path, content: &[u8], mode: Mode) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "dm-apply".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if mode == Mode::Private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let res = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.prom");
        write(&p, b"one", Mode::Default).unwrap();
        write(&p, b"two", Mode::Private).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from("out.prom")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The mode applies to a file the write creates (the temporary), so the rename carries it over.
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename fails, the temporary is removed.
        let p = dir.path().join("d");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("x"), "x").unwrap();
        assert!(write(&p, b"x", Mode::Default).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
