//! DM-master version, read once from `GET /status` (`Release Version: vX.Y.Z...`), and the features that depend on
//! it (docs/dm-behaviour.md §1, §15). Features a server lacks are not sent: older servers silently ignore unknown fields and
//! parameters, which would make dm-apply believe something happened that did not.

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

    /// Unreleased HEAD features (after v26.3.3): `DELETE /tasks/{n}?keep_meta`, `task.timezone`,
    /// `incr_migrate_conf.safe_mode`, `target_config.session.foreign_key_checks`.
    pub fn supports_keep_meta(&self) -> bool {
        self.is_head()
    }

    pub fn is_head(&self) -> bool {
        match self.semver {
            Some((maj, min, pat)) => (maj, min, pat) > (26, 3, 3),
            None => false,
        }
    }

    /// v8.5.4+ accept the binlog filter events `add foreign key` / `drop foreign key`; older servers drop a rule
    /// that names them, silently (docs/dm-behaviour.md R5.11). `None` when the version is unknown.
    pub fn knows_foreign_key_events(&self) -> Option<bool> {
        self.semver.map(|(maj, min, pat)| (maj, min, pat) >= (8, 5, 4))
    }

    /// Whether a task read back carries `target_config.security`, `full_migrate_conf.import_mode`, `pd_addr` and
    /// `security`: from v9.0.0-beta.1 / v26.3 on. v8.5.x (and unknown versions) drop them on read, so dm-apply
    /// tracks them like passwords (docs/dm-behaviour.md §9, §15).
    pub fn returns_full_task_config(&self) -> bool {
        self.semver.is_some_and(|(major, _, _)| major >= 9)
    }

    /// v8.5.4+ and v26.3+ fill spec defaults into request bodies (kin-openapi ≥ v0.95).
    pub fn injects_request_defaults(&self) -> bool {
        match self.semver {
            Some((8, 5, p)) => p >= 4,
            Some((maj, min, _)) => (maj, min) >= (26, 3),
            None => false,
        }
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
