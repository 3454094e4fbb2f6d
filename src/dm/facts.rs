//! Every fact about DM-master that dm-apply relies on, in one place: the defaults the server fills in, the field
//! names it generates, the fields it never returns, and the version gates. Each item cites the rule of
//! `docs/dm-behaviour.md` that describes it; a change of DM's behaviour is a change here (and in that document).
//!
//! The wire form (`crate::normalize`), the comparable form, `import`, `convert` and the simulator's views read
//! their defaults from here, so that "what DM fills in" and "what dm-apply leaves out" cannot drift apart.

use super::ServerVersion;

// ---------------------------------------------------------------------------------------------------------------
// Source defaults

/// `purge.interval` (seconds between relay-log expiry checks) the server uses when unset (docs/dm-behaviour.md R2.11).
pub const PURGE_INTERVAL: i64 = 3600;
/// `purge.expires` (hours; 0 = never expire) the server uses when unset (docs/dm-behaviour.md R2.11).
pub const PURGE_EXPIRES: i64 = 0;
/// `purge.remain_space` (GB) the server uses when unset (docs/dm-behaviour.md R2.11).
pub const PURGE_REMAIN_SPACE: i64 = 15;
/// `relay_config.relay_dir` the server stores when the field is empty (docs/dm-behaviour.md R3.2).
pub const RELAY_DIR_STORED: &str = "relay-dir";
/// `relay_config.relay_dir` v8.5.4+ injects into a body that has `relay_config` without it (docs/dm-behaviour.md
/// R2.11, R4.2).
pub const RELAY_DIR_INJECTED: &str = "./relay_log";

/// Whether `dir` is one of the server's own relay directories (stored or injected), i.e. "not set by the user"
/// (docs/dm-behaviour.md R3.2, R2.11).
pub fn is_default_relay_dir(dir: &str) -> bool {
    dir.is_empty() || dir == RELAY_DIR_STORED || dir == RELAY_DIR_INJECTED
}

// ---------------------------------------------------------------------------------------------------------------
// Task defaults

/// `meta_schema` an absent value becomes on v8.5.0–8.5.3 (and what dm-apply always sends when the user sets none)
/// (docs/dm-behaviour.md R5.2).
pub const META_SCHEMA: &str = "dm_meta";
/// `meta_schema` v8.5.4+ injects when a client omits it (docs/dm-behaviour.md R5.2, R2.11, §15).
pub const META_SCHEMA_INJECTED: &str = "dm-meta";
/// `full_migrate_conf.export_threads` when unset (docs/dm-behaviour.md R9.2).
pub const EXPORT_THREADS: i64 = 4;
/// `full_migrate_conf.import_threads` when unset (docs/dm-behaviour.md R9.2).
pub const IMPORT_THREADS: i64 = 16;
/// `full_migrate_conf.data_dir` when unset (docs/dm-behaviour.md R9.2, R9.9).
pub const DATA_DIR: &str = "./dumped_data";
/// `full_migrate_conf.import_mode` when unset (docs/dm-behaviour.md R9.3).
pub const IMPORT_MODE: &str = "logical";
/// `full_migrate_conf.range_concurrency` when unset (docs/dm-behaviour.md R2.11).
pub const RANGE_CONCURRENCY: i64 = 0;
/// `on_duplicate` (logical import) when unset (docs/dm-behaviour.md R9.8).
pub const ON_DUPLICATE: &str = "replace";
/// `incr_migrate_conf.repl_threads` when unset (docs/dm-behaviour.md R9.2).
pub const REPL_THREADS: i64 = 16;
/// `incr_migrate_conf.repl_batch` when unset (docs/dm-behaviour.md R9.2).
pub const REPL_BATCH: i64 = 100;
/// `enhance_online_schema_change` when unset: the spec's default (v8.5.4+ inject it), and what dm-apply sends
/// explicitly, as older servers refuse a body without it (docs/dm-behaviour.md R2.11).
pub const ENHANCE_ONLINE_SCHEMA_CHANGE: bool = true;
/// Infix of the names DM gives a source's binlog filter rules on read, `{source}-filter-rule-{i}`
/// (docs/dm-behaviour.md R9.6).
pub const FILTER_RULE_INFIX: &str = "-filter-rule-";

/// The name DM gives the `i`-th binlog filter rule of `source` on read (docs/dm-behaviour.md R9.6).
pub fn filter_rule_name(source: &str, i: usize) -> String {
    format!("{source}{FILTER_RULE_INFIX}{i}")
}

/// `(index)` of a server-generated filter name `{source}-filter-rule-{i}` (docs/dm-behaviour.md R9.6).
pub fn filter_rule_index(source: &str, name: &str) -> Option<u64> {
    name.strip_prefix(source)?.strip_prefix(FILTER_RULE_INFIX)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------------------------
// Fields DM does not return

/// `full_migrate_conf` fields no generation returns on read: dm-apply fingerprints them in its state record
/// (docs/dm-behaviour.md R9.4). Spelled as on the wire.
pub const TASK_WRITE_ONLY_FULL_FIELDS: &[&str] = &[
    "sorting_dir",
    "disk_quota",
    "checksum",
    "analyze",
    "range_concurrency",
    "compress-kv-pairs",
    "on_duplicate_physical",
];

/// Task fields v8.5.x drops on read (returned from v26.3 on, see [`ServerVersion::returns_full_task_config`]):
/// tracked through dm-apply's state record there (docs/dm-behaviour.md R9.2, R9.3).
pub const TASK_FIELDS_DROPPED_BY_V85: &[&str] = &[
    "target_config.security",
    "source_config.full_migrate_conf.import_mode",
    "source_config.full_migrate_conf.pd_addr",
    "source_config.full_migrate_conf.security",
];

/// Source fields DM masks on every read (docs/dm-behaviour.md R3.5).
pub const SOURCE_MASKED_FIELDS: &[&str] =
    &["password", "security.ssl_ca_content", "security.ssl_cert_content", "security.ssl_key_content"];

// ---------------------------------------------------------------------------------------------------------------
// Version gates (docs/dm-behaviour.md §1, §15). Features a server lacks are not sent: older servers ignore unknown
// fields silently, which would make dm-apply believe something happened that did not.

impl ServerVersion {
    /// Unreleased HEAD (after v26.3.3) (docs/dm-behaviour.md §1, §15).
    pub fn is_head(&self) -> bool {
        match self.semver {
            Some((maj, min, pat)) => (maj, min, pat) > (26, 3, 3),
            None => false,
        }
    }

    /// `DELETE /tasks/{n}?keep_meta=true` keeps checkpoints: HEAD only (docs/dm-behaviour.md R7.5).
    pub fn supports_keep_meta(&self) -> bool {
        self.is_head()
    }

    /// `task.timezone`, `incr_migrate_conf.safe_mode` and `target_config.session.foreign_key_checks` are applied
    /// and read back: HEAD only; older servers ignore them (docs/dm-behaviour.md R9.3, §15).
    pub fn supports_head_task_fields(&self) -> bool {
        self.is_head()
    }

    /// `full_migrate_conf.security` exists from v9.0.0-beta.1 / v26.3 on; older servers drop it
    /// (docs/dm-behaviour.md R9.3, §15).
    pub fn supports_full_migrate_security(&self) -> bool {
        self.semver.is_some_and(|(major, _, _)| major >= 9)
    }

    /// v8.5.4+ accept the binlog filter events `add foreign key` / `drop foreign key`; older servers drop a rule
    /// that names them, silently (docs/dm-behaviour.md R5.11). `None` when the version is unknown.
    pub fn knows_foreign_key_events(&self) -> Option<bool> {
        self.semver.map(|(maj, min, pat)| (maj, min, pat) >= (8, 5, 4))
    }

    /// Whether a task read back carries `target_config.security`, `full_migrate_conf.import_mode`, `pd_addr` and
    /// `security`: from v9.0.0-beta.1 / v26.3 on. v8.5.x (and unknown versions) drop them on read, so dm-apply
    /// tracks them like passwords (docs/dm-behaviour.md R9.2, R9.3, §15).
    pub fn returns_full_task_config(&self) -> bool {
        self.semver.is_some_and(|(major, _, _)| major >= 9)
    }

    /// v8.5.4+ and v26.3+ fill spec defaults into request bodies (kin-openapi ≥ v0.95) (docs/dm-behaviour.md R2.11).
    pub fn injects_request_defaults(&self) -> bool {
        match self.semver {
            Some((8, 5, p)) => p >= 4,
            Some((maj, min, _)) => (maj, min) >= (26, 3),
            None => false,
        }
    }

    /// The `meta_schema` an absent value becomes on this server (docs/dm-behaviour.md R5.2).
    pub fn default_meta_schema(&self) -> &'static str {
        if self.injects_request_defaults() { META_SCHEMA_INJECTED } else { META_SCHEMA }
    }

    /// The `relay_dir` stored for a `relay_config` sent without one (docs/dm-behaviour.md R2.11, R3.2, §15).
    pub fn default_relay_dir(&self) -> &'static str {
        if self.injects_request_defaults() { RELAY_DIR_INJECTED } else { RELAY_DIR_STORED }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_by_generation() {
        let v853 = ServerVersion::parse("v8.5.3");
        let v854 = ServerVersion::parse("v8.5.4");
        let v263 = ServerVersion::parse("v26.3.0");
        let head = ServerVersion::parse("v26.4.0-alpha");
        assert_eq!(v853.default_meta_schema(), META_SCHEMA);
        assert_eq!(v854.default_meta_schema(), META_SCHEMA_INJECTED);
        assert_eq!(v853.default_relay_dir(), RELAY_DIR_STORED);
        assert_eq!(v263.default_relay_dir(), RELAY_DIR_INJECTED);
        assert!(!v854.supports_full_migrate_security() && v263.supports_full_migrate_security());
        assert!(!v263.supports_head_task_fields() && head.supports_head_task_fields());
        assert!(
            is_default_relay_dir("relay-dir") && is_default_relay_dir("./relay_log") && !is_default_relay_dir("/x")
        );
        assert_eq!(filter_rule_index("s1", "s1-filter-rule-12"), Some(12));
        assert_eq!(filter_rule_index("s1", "s2-filter-rule-1"), None);
        assert_eq!(filter_rule_index("s1", &filter_rule_name("s1", 3)), Some(3));
    }

    /// The simulator models DM independently (so that a wrong fact here is caught against it), but its generations
    /// must agree with the version gates dm-apply applies to the version each one reports.
    #[test]
    fn simulator_generations_agree_with_the_gates() {
        use crate::sim::Generation;
        for g in Generation::ALL {
            let v = ServerVersion::parse(g.release_version());
            assert_eq!(v.injects_request_defaults(), g.injects_defaults(), "{g:?}");
            assert_eq!(v.returns_full_task_config(), g.v26(), "{g:?}");
            assert_eq!(v.supports_full_migrate_security(), g.v26(), "{g:?}");
            assert_eq!(v.is_head(), g.head(), "{g:?}");
            assert_eq!(v.supports_keep_meta(), g.head(), "{g:?}");
            assert_eq!(v.supports_head_task_fields(), g.head(), "{g:?}");
            assert_eq!(v.knows_foreign_key_events(), Some(g.knows_foreign_key_events()), "{g:?}");
        }
    }

    /// The defaults the configuration's documentation states (doc comments of `config::model`, shown in editors
    /// through the JSON schema) are these facts.
    #[test]
    fn configuration_docs_state_these_defaults() {
        let schema: serde_json::Value = serde_json::from_str(&crate::config::json_schema_text()).unwrap();
        let cases: [(&str, &str, String); 11] = [
            ("PurgeSpec", "interval", format!("DM default {PURGE_INTERVAL})")),
            ("PurgeSpec", "expires", format!("DM default {PURGE_EXPIRES} ")),
            ("PurgeSpec", "remain_space", format!("DM default {PURGE_REMAIN_SPACE})")),
            ("RelayConfigSpec", "relay_dir", format!("default `{RELAY_DIR_STORED}`")),
            ("FullMigrateConfSpec", "export_threads", format!("DM default {EXPORT_THREADS})")),
            ("FullMigrateConfSpec", "import_threads", format!("DM default {IMPORT_THREADS})")),
            ("FullMigrateConfSpec", "data_dir", format!("DM default `{DATA_DIR}`")),
            ("FullMigrateConfSpec", "range_concurrency", format!("DM default {RANGE_CONCURRENCY})")),
            ("FullMigrateConfSpec", "on_duplicate_logical", format!("DM default `{ON_DUPLICATE}`")),
            ("IncrMigrateConfSpec", "repl_threads", format!("DM default {REPL_THREADS})")),
            ("IncrMigrateConfSpec", "repl_batch", format!("DM default {REPL_BATCH})")),
        ];
        for (def, prop, want) in cases {
            let d = schema["definitions"][def]["properties"][prop]["description"].as_str().unwrap_or_default();
            assert!(d.contains(&want), "{def}.{prop}: `{d}` should say `{want}`");
        }
    }
}
