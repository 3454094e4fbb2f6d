//! DM-master version, read once from `GET /status` (`Release Version: vX.Y.Z...`) (docs/dm-behaviour.md §1). The
//! features that depend on it (version gates) live with the other DM facts in `crate::dm::facts`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// As the server printed it, e.g. `v8.5.3` (or `unknown`).
    pub raw: String,
    /// `(major, minor, patch)` when parseable.
    pub semver: Option<(u64, u64, u64)>,
    /// Pre-release suffix, e.g. `beta.1` or `alpha`.
    pub pre: Option<String>,
}

impl ServerVersion {
    /// Parse the plain-text body of `GET /status`.
    pub fn parse_status(text: &str) -> Self {
        let raw = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Release Version:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        Self::parse(&raw)
    }

    pub fn parse(raw: &str) -> Self {
        let v = raw.trim().trim_start_matches('v');
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (v, None),
        };
        let nums: Vec<u64> = core.split('.').map_while(|p| p.parse().ok()).collect();
        let semver = (nums.len() == 3).then(|| (nums[0], nums[1], nums[2]));
        ServerVersion { raw: raw.trim().to_string(), semver, pre }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_text() {
        let v = ServerVersion::parse_status("Release Version: v8.5.3\nGit Commit Hash: abc\n");
        assert_eq!(v.semver, Some((8, 5, 3)));
        assert!(!v.injects_request_defaults());
        assert!(!v.supports_keep_meta());
    }

    #[test]
    fn generations() {
        assert!(ServerVersion::parse("v8.5.4").injects_request_defaults());
        assert!(ServerVersion::parse("v26.3.1").injects_request_defaults());
        assert!(!ServerVersion::parse("v9.0.0-beta.1").injects_request_defaults());
        assert!(ServerVersion::parse("v26.4.0-alpha").supports_keep_meta());
        assert!(!ServerVersion::parse("v26.3.3").supports_keep_meta());
        assert!(!ServerVersion::parse("v8.5.4").returns_full_task_config());
        assert!(ServerVersion::parse("v26.3.0").returns_full_task_config());
        assert!(!ServerVersion::parse("unknown").returns_full_task_config());
        assert_eq!(ServerVersion::parse_status("garbage").semver, None);
        assert_eq!(ServerVersion::parse("v8.5.3").knows_foreign_key_events(), Some(false));
        assert_eq!(ServerVersion::parse("v8.5.4").knows_foreign_key_events(), Some(true));
        assert_eq!(ServerVersion::parse("v26.3.0").knows_foreign_key_events(), Some(true));
        assert_eq!(ServerVersion::parse("nightly").knows_foreign_key_events(), None);
    }
}
