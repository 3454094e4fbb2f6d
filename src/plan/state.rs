//! dm-apply's state record: salted fingerprints of write-only values, kept in DM itself.
//!
//! DM masks source passwords (and source TLS contents) on every read, so a changed password in git cannot be seen by
//! comparing with DM. dm-apply therefore records, per resource address, a salted SHA-256 fingerprint of each
//! write-only value it sent, and compares the desired value's fingerprint (same salt) at plan time.
//!
//! The record lives in a DM task *template* named [`STATE_TEMPLATE`] (templates only store Task JSON in etcd and never
//! create tasks), so it travels with the cluster rather than with a CI runner. The record JSON is stored in the
//! template's `target_config.password` field, under the marker host [`STATE_MARKER_HOST`]. Reading it needs the
//! same API access as reading task target passwords, which DM returns in plain text anyway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::Address;
use crate::dm::error::codes;
use crate::dm::types::{FullMigrateConf, IncrMigrateConf, TargetConfig, Task, TaskSourceConfig};
use crate::dm::{DmClient, DmError};
use crate::secret::Secret;

/// Name of the task template holding the record. Never pruned, never shown as unmanaged.
pub const STATE_TEMPLATE: &str = "dm-apply-state";
/// Host of the template's target: not resolvable (`.invalid`), so the template can never be used for a real task.
pub const STATE_MARKER_HOST: &str = "dm-apply-state.invalid";
/// `format` value inside the record JSON.
pub const STATE_FORMAT: &str = "dm-apply-state";
/// Version of the record JSON.
pub const STATE_VERSION: u32 = 1;

/// Fingerprint keys.
pub const FP_PASSWORD: &str = "password";
pub const FP_SECURITY: &str = "security";
pub const FP_WRITE_ONLY: &str = "write_only";

/// The record: a salt and, per address, named fingerprints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    pub format: String,
    pub version: u32,
    /// Random per record; fingerprints are `Secret::fingerprint(salt)`.
    pub salt: String,
    #[serde(default)]
    pub resources: BTreeMap<String, BTreeMap<String, String>>,
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("cannot read dm-apply's state record (task template `{STATE_TEMPLATE}`): {0}")]
    #[diagnostic(code(plan::state))]
    Dm(#[from] DmError),
    #[error(
        "task template `{STATE_TEMPLATE}` exists but does not hold a dm-apply state record (format {found}); \
         rename or delete that template"
    )]
    #[diagnostic(code(plan::state_format))]
    Format { found: String },
}

impl StateRecord {
    /// An empty record with a fresh random salt.
    pub fn new_random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let salt: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self::with_salt(salt)
    }

    pub fn with_salt(salt: impl Into<String>) -> Self {
        StateRecord {
            format: STATE_FORMAT.to_string(),
            version: STATE_VERSION,
            salt: salt.into(),
            resources: BTreeMap::new(),
        }
    }

    /// Fingerprint of `secret` with this record's salt.
    pub fn fingerprint(&self, secret: &Secret) -> String {
        secret.fingerprint(&self.salt)
    }

    pub fn get(&self, address: &Address, key: &str) -> Option<&str> {
        self.resources.get(&address.to_string()).and_then(|m| m.get(key)).map(String::as_str)
    }

    pub fn is_tracked(&self, address: &Address) -> bool {
        self.resources.contains_key(&address.to_string())
    }

    /// Record the fingerprints of a resource after a successful create/update (replaces the old entry).
    pub fn set(&mut self, address: &Address, fingerprints: BTreeMap<String, String>) {
        if fingerprints.is_empty() {
            self.resources.remove(&address.to_string());
        } else {
            self.resources.insert(address.to_string(), fingerprints);
        }
    }

    /// Forget a resource after it was deleted.
    pub fn remove(&mut self, address: &Address) {
        self.resources.remove(&address.to_string());
    }

    /// The template that stores this record.
    pub fn to_template(&self) -> Task {
        let json = serde_json::to_string(self).unwrap_or_default();
        Task {
            name: STATE_TEMPLATE.to_string(),
            task_mode: "incremental".to_string(),
            meta_schema: Some("dm_meta".to_string()),
            enhance_online_schema_change: true,
            on_duplicate: "replace".to_string(),
            target_config: TargetConfig {
                host: STATE_MARKER_HOST.to_string(),
                port: 4000,
                user: "dm-apply".to_string(),
                password: Secret::new(json),
                security: None,
                session: None,
            },
            source_config: TaskSourceConfig {
                full_migrate_conf: Some(FullMigrateConf::default()),
                incr_migrate_conf: Some(IncrMigrateConf::default()),
                source_conf: vec![],
            },
            ..Task::default()
        }
    }

    /// Read the record back from its template.
    pub fn from_template(t: &Task) -> Result<Self, StateError> {
        if t.target_config.host != STATE_MARKER_HOST {
            return Err(StateError::Format { found: format!("target host {}", t.target_config.host) });
        }
        let rec: StateRecord = serde_json::from_str(t.target_config.password.expose())
            .map_err(|e| StateError::Format { found: format!("unreadable JSON: {e}") })?;
        if rec.format != STATE_FORMAT || rec.version > STATE_VERSION {
            return Err(StateError::Format { found: format!("{} v{}", rec.format, rec.version) });
        }
        Ok(rec)
    }
}

/// Read the record: `Ok(None)` when the template does not exist yet.
pub async fn read_state(client: &DmClient) -> Result<Option<StateRecord>, StateError> {
    match client.get_template(STATE_TEMPLATE).await? {
        None => Ok(None),
        Some(t) => StateRecord::from_template(&t).map(Some),
    }
}

/// Write the record (update, or create when the template does not exist yet).
pub async fn write_state(client: &DmClient, record: &StateRecord) -> Result<(), DmError> {
    let t = record.to_template();
    match client.update_template(&t).await {
        Ok(_) => Ok(()),
        Err(e) if e.has_code(codes::TEMPLATE_NOT_EXIST) || e.status() == Some(404) => {
            match client.create_template(&t).await {
                Ok(_) => Ok(()),
                // Someone created it between the two calls: update again.
                Err(e) if e.has_code(codes::TEMPLATE_EXISTS) => client.update_template(&t).await.map(|_| ()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_round_trip() {
        let mut r = StateRecord::with_salt("abc");
        let fp = r.fingerprint(&Secret::new("pw"));
        r.set(&Address::source("a"), BTreeMap::from([(FP_PASSWORD.to_string(), fp.clone())]));
        let t = r.to_template();
        assert_eq!(t.name, STATE_TEMPLATE);
        assert!(!t.target_config.password.expose().contains("\"pw\""));
        let back = StateRecord::from_template(&t).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.get(&Address::source("a"), FP_PASSWORD), Some(fp.as_str()));
        assert!(StateRecord::new_random().salt != StateRecord::new_random().salt);
    }

    #[test]
    fn foreign_template_is_refused() {
        let mut t = StateRecord::with_salt("x").to_template();
        t.target_config.host = "tidb".into();
        assert!(StateRecord::from_template(&t).is_err());
    }
}
