//! Where the state key comes from: `--state-key-file PATH` / `DM_APPLY_STATE_KEY_FILE`, else `DM_APPLY_STATE_KEY`.

use std::path::{Path, PathBuf};

use super::fingerprint::{ShortKey, StateKey};

/// Environment variable holding the key itself.
pub const KEY_ENV: &str = "DM_APPLY_STATE_KEY";
/// Environment variable naming a file that holds the key (also `--state-key-file`).
pub const KEY_FILE_ENV: &str = "DM_APPLY_STATE_KEY_FILE";
/// A key file larger than this is not a key.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// The key could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KeyError {
    #[error("cannot read the state key file {path}: {source}")]
    #[diagnostic(code(state::key_file), help("check --state-key-file / {KEY_FILE_ENV}"))]
    File { path: PathBuf, source: std::io::Error },
    #[error("the state key file {path} is larger than {MAX_KEY_FILE} bytes: it is not a key")]
    #[diagnostic(code(state::key_file), help("check --state-key-file / {KEY_FILE_ENV}"))]
    TooLarge { path: PathBuf },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Short(#[from] ShortKey),
}

/// Load the key: the file (flag or `DM_APPLY_STATE_KEY_FILE`) wins over `DM_APPLY_STATE_KEY`. `None`: no key (the
/// memory-hard scheme is used). An empty `DM_APPLY_STATE_KEY` counts as unset (CI systems set missing secrets to
/// the empty string).
pub fn load(file: Option<&Path>) -> Result<Option<StateKey>, KeyError> {
    let env_file = std::env::var_os(KEY_FILE_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = file.map(Path::to_path_buf).or(env_file) {
        let meta = std::fs::metadata(&path).map_err(|e| KeyError::File { path: path.clone(), source: e })?;
        if meta.len() > MAX_KEY_FILE {
            return Err(KeyError::TooLarge { path });
        }
        let mut bytes = std::fs::read(&path).map_err(|e| KeyError::File { path: path.clone(), source: e })?;
        // One trailing newline (as `echo` and editors write) is not part of the key.
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        return Ok(Some(StateKey::new(bytes, &path.display().to_string())?));
    }
    match std::env::var_os(KEY_ENV).filter(|v| !v.is_empty()) {
        Some(v) => Ok(Some(StateKey::new(v.as_encoded_bytes().to_vec(), KEY_ENV)?)),
        None => Ok(None),
    }
}
