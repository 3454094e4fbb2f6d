//! The record and how it is kept in a DM task template.
//!
//! A template is the only place in DM's API that stores arbitrary Task JSON without running anything, but DM
//! connects to a template's target and logs in with its password whenever a template is created or updated
//! (docs/dm-behaviour.md §10). So the template's `target_config` is a real target: that of a declared task (the
//! one with the smallest name), which DM-master can reach. The record JSON goes where it plays no part in the
//! connection: the `ignore_sql` list of a binlog filter rule named [`RULE`], as chunks of bounded size. The first
//! chunk is a header with the format, version, length and checksum of the rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use crate::dm::types::{BinlogFilterRule, FullMigrateConf, IncrMigrateConf, TargetConfig, Task, TaskSourceConfig};
use crate::plan::Address;

/// Name of the task template holding the record. Never pruned, never shown as unmanaged.
pub const STATE_TEMPLATE: &str = "dm-apply-state";
/// Name of the binlog filter rule whose `ignore_sql` holds the record.
pub const RULE: &str = "dm-apply-state";
/// `format` value inside the record JSON and the header's prefix.
pub const FORMAT: &str = "dm-apply-state";
/// Version of the record JSON.
pub const VERSION: u32 = 2;
/// Largest chunk, in bytes.
pub const CHUNK_BYTES: usize = 4000;
/// Target host of dm-apply ≤ 0.1's record (v1, JSON in the target password, fast SHA-256 fingerprints). DM-master
/// cannot store such a template (it cannot connect to that host), but simulators could: it is replaced.
pub const LEGACY_HOST: &str = "dm-apply-state.invalid";

/// What dm-apply remembers of one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Per write-only field (`password`, `security`, a task field path): its fingerprint.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fingerprints: BTreeMap<String, Fingerprint>,
    /// Version-field mode: the `write_only_version` last applied (no fingerprints are kept then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_only_version: Option<u64>,
}

/// Who is applying right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// `user@host`.
    pub holder: String,
    pub pid: u32,
    /// Random per apply: tells two applies of the same user and host apart.
    pub id: String,
    /// Unix seconds when it was taken.
    pub since: u64,
}

impl Lease {
    /// `user@host (pid 42), for 3m12s`.
    pub fn describe(&self, now: u64) -> String {
        format!("{} (pid {}), for {}", self.holder, self.pid, age(now.saturating_sub(self.since)))
    }
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub resources: BTreeMap<String, Entry>,
    /// The apply lease as earlier dm-apply builds kept it, inside the record. Read so that such a build's lease is
    /// still honoured; this build keeps its lease in a template of its own ([`super::lease`]) and never sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

impl Default for StateRecord {
    fn default() -> Self {
        StateRecord { format: FORMAT.to_string(), version: VERSION, resources: BTreeMap::new(), lease: None }
    }
}

/// Why a template named [`STATE_TEMPLATE`] cannot be read as a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Not dm-apply's (no record rule): someone else's template with the same name.
    Foreign(String),
    /// dm-apply's, but damaged or from a newer dm-apply.
    Damaged(String),
}

/// What the template holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Record(StateRecord),
    /// dm-apply ≤ 0.1's record: its fingerprints are fast hashes and are not trusted; it is replaced.
    Legacy,
}

impl StateRecord {
    pub fn entry(&self, address: &Address) -> Option<&Entry> {
        self.resources.get(&address.to_string())
    }

    /// The chunks: a header, then the JSON in pieces of at most [`CHUNK_BYTES`] (cut at character boundaries).
    pub fn to_chunks(&self) -> Vec<String> {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut chunks = vec![format!("{FORMAT}:v{VERSION}:len={}:sha256={}", json.len(), sha256_hex(&json))];
        let mut rest = json.as_str();
        while !rest.is_empty() {
            let mut cut = rest.len().min(CHUNK_BYTES);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            chunks.push(rest[..cut].to_string());
            rest = &rest[cut..];
        }
        chunks
    }

    /// Reassemble and check chunks written by [`StateRecord::to_chunks`].
    pub fn from_chunks(chunks: &[String]) -> Result<Self, Unreadable> {
        let Some(header) = chunks.first() else { return Err(Unreadable::Foreign("an empty record rule".into())) };
        let Some(rest) = header.strip_prefix(&format!("{FORMAT}:v")) else {
            return Err(Unreadable::Foreign("its record rule has no dm-apply header".into()));
        };
        let mut parts = rest.split(':');
        let version: u32 = parts
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Unreadable::Damaged(format!("unreadable header `{header}`")))?;
        if version > VERSION {
            return Err(Unreadable::Damaged(format!(
                "record format v{version} was written by a newer dm-apply (this one reads up to v{VERSION}); upgrade \
                 dm-apply"
            )));
        }
        let len: Option<usize> = parts.next().and_then(|p| p.strip_prefix("len=")).and_then(|n| n.parse().ok());
        let sum = parts.next().and_then(|p| p.strip_prefix("sha256="));
        let json: String = chunks[1..].concat();
        if len != Some(json.len()) || sum != Some(sha256_hex(&json).as_str()) {
            return Err(Unreadable::Damaged("its chunks do not match their header (length or checksum)".into()));
        }
        let rec: StateRecord =
            serde_json::from_str(&json).map_err(|e| Unreadable::Damaged(format!("unreadable JSON: {e}")))?;
        if rec.format != FORMAT {
            return Err(Unreadable::Damaged(format!("format `{}`", rec.format)));
        }
        Ok(rec)
    }

    /// The template that stores this record, connecting to `home` (a declared task's target).
    pub fn to_template(&self, home: &TargetConfig) -> Task {
        template(STATE_TEMPLATE, home, RULE, self.to_chunks())
    }

    /// Read a template named [`STATE_TEMPLATE`].
    pub fn from_template(t: &Task) -> Result<Parsed, Unreadable> {
        if t.target_config.host == LEGACY_HOST {
            return Ok(Parsed::Legacy);
        }
        let chunks = t
            .binlog_filter_rule
            .as_ref()
            .and_then(|m| m.get(RULE))
            .and_then(|r| r.ignore_sql.as_ref())
            .ok_or_else(|| Unreadable::Foreign(format!("it has no binlog filter rule `{RULE}`")))?;
        Self::from_chunks(chunks).map(Parsed::Record)
    }
}

/// A template named `name` that connects to `home` (a declared task's target) and carries `lines` in the
/// `ignore_sql` of binlog filter rule `rule`, where they play no part in the connection.
pub(super) fn template(name: &str, home: &TargetConfig, rule: &str, lines: Vec<String>) -> Task {
    let rule_body = BinlogFilterRule { ignore_event: None, ignore_sql: Some(lines) };
    Task {
        name: name.to_string(),
        task_mode: "incremental".to_string(),
        meta_schema: Some("dm_meta".to_string()),
        enhance_online_schema_change: true,
        on_duplicate: "replace".to_string(),
        target_config: TargetConfig {
            host: home.host.clone(),
            port: home.port,
            user: home.user.clone(),
            password: home.password.clone(),
            security: home.security.clone(),
            session: None,
        },
        binlog_filter_rule: Some(BTreeMap::from([(rule.to_string(), rule_body)])),
        source_config: TaskSourceConfig {
            full_migrate_conf: Some(FullMigrateConf::default()),
            incr_migrate_conf: Some(IncrMigrateConf::default()),
            source_conf: vec![],
        },
        ..Task::default()
    }
}

fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn home() -> TargetConfig {
        TargetConfig {
            host: "tidb".into(),
            port: 4000,
            user: "root".into(),
            password: Secret::new("pw"),
            ..Default::default()
        }
    }

    #[test]
    fn template_round_trip_in_chunks() {
        let mut r = StateRecord::default();
        for i in 0..200 {
            r.resources.insert(
                format!("source.s-{i}-é"),
                Entry {
                    fingerprints: BTreeMap::from([(
                        "password".into(),
                        Fingerprint::Hmac { key_id: "k".into(), mac: "ab".repeat(32) },
                    )]),
                    write_only_version: None,
                },
            );
        }
        r.lease = Some(Lease { holder: "me@here".into(), pid: 1, id: "x".into(), since: 5 });
        let t = r.to_template(&home());
        assert_eq!(t.target_config.host, "tidb");
        assert_eq!(t.target_config.password.expose(), "pw");
        let chunks = t.binlog_filter_rule.as_ref().unwrap()[RULE].ignore_sql.clone().unwrap();
        assert!(chunks.len() > 3 && chunks.iter().all(|c| c.len() <= CHUNK_BYTES));
        assert_eq!(StateRecord::from_template(&t), Ok(Parsed::Record(r)));
    }

    #[test]
    fn foreign_damaged_and_legacy_templates() {
        let mut t = StateRecord::default().to_template(&home());
        t.binlog_filter_rule = None;
        assert!(matches!(StateRecord::from_template(&t), Err(Unreadable::Foreign(_))));
        let mut t = StateRecord::default().to_template(&home());
        t.binlog_filter_rule.as_mut().unwrap().get_mut(RULE).unwrap().ignore_sql.as_mut().unwrap().push("x".into());
        assert!(matches!(StateRecord::from_template(&t), Err(Unreadable::Damaged(_))));
        let mut t = StateRecord::default().to_template(&home());
        t.target_config.host = LEGACY_HOST.into();
        assert_eq!(StateRecord::from_template(&t), Ok(Parsed::Legacy));
        assert!(matches!(
            StateRecord::from_chunks(&["dm-apply-state:v9:len=0:sha256=x".into()]),
            Err(Unreadable::Damaged(m)) if m.contains("newer")
        ));
    }

    #[test]
    fn lease_age() {
        let l = Lease { holder: "a@b".into(), pid: 7, id: "i".into(), since: 100 };
        assert_eq!(l.describe(100 + 192), "a@b (pid 7), for 3m12s");
    }
}
