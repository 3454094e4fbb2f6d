//! What DM's lossy answers cannot show: write-only fields (never returned, or dropped by v8.5) and secrets, as
//! values dm-apply fingerprints in its state record (docs/dm-behaviour.md R3.5, R9.2–R9.4, R9.10).

use serde_json::{Value, json};

use crate::dm::ServerVersion;
use crate::dm::facts;
use crate::dm::types::{Security, Source, Task};
use crate::secret::Secret;

use super::ne;

/// Write-only `full_migrate_conf` fields (never returned by GET), as one canonical string to fingerprint.
pub fn task_write_only(t: &Task) -> Option<Secret> {
    let f = t.source_config.full_migrate_conf.as_ref()?;
    let v = json!({
        "sorting_dir": f.sorting_dir, "disk_quota": f.disk_quota, "checksum": f.checksum, "analyze": f.analyze,
        "range_concurrency": f.range_concurrency, "compress-kv-pairs": f.compress_kv_pairs,
        "on_duplicate_physical": f.on_duplicate_physical,
    });
    if v.as_object().is_some_and(|o| o.values().all(Value::is_null)) {
        return None;
    }
    Some(Secret::new(v.to_string()))
}

/// A value DM never returns (on this server version), which dm-apply tracks through its state record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOnlyField {
    /// Key in the record, and the attribute path shown in plans (also what `lifecycle.ignore_changes` matches).
    pub key: &'static str,
    /// What the plan says changed, e.g. "password".
    pub label: &'static str,
    /// The canonical value that is fingerprinted (in memory only).
    pub value: Secret,
    /// A secret (shown as `(sensitive value)`); otherwise the plan shows `display`.
    pub sensitive: bool,
    pub display: Option<Value>,
}

/// Record keys of a task's write-only `full_migrate_conf` fields, and of the fields v8.5 drops on read.
pub const TASK_WRITE_ONLY_KEY: &str = "source_config.full_migrate_conf.(write-only fields)";
pub const TASK_TARGET_SECURITY_KEY: &str = "target_config.security";
pub const TASK_IMPORT_MODE_KEY: &str = "source_config.full_migrate_conf.import_mode";
pub const TASK_PD_ADDR_KEY: &str = "source_config.full_migrate_conf.pd_addr";
/// Record keys of a source's write-only values.
pub const SOURCE_PASSWORD_KEY: &str = "password";
pub const SOURCE_SECURITY_KEY: &str = "security";

/// A source's write-only values: its password and TLS contents (DM masks both on every read).
pub fn source_write_only(wire: &Source) -> Vec<WriteOnlyField> {
    let mut v = vec![];
    if let Some(p) = &wire.password {
        v.push(WriteOnlyField {
            key: SOURCE_PASSWORD_KEY,
            label: "password",
            value: p.clone(),
            sensitive: true,
            display: None,
        });
    }
    if let Some(s) = source_security_secret(wire) {
        v.push(WriteOnlyField {
            key: SOURCE_SECURITY_KEY,
            label: "security (TLS contents)",
            value: s,
            sensitive: true,
            display: None,
        });
    }
    v
}

/// A task's write-only values on `version`: the `full_migrate_conf` fields no version returns, and on v8.5 the
/// target TLS, `import_mode` and `pd_addr` (docs/dm-behaviour.md §9). On v26.3+ those are read back and compared
/// directly instead.
pub fn task_write_only_fields(wire: &Task, version: &ServerVersion) -> Vec<WriteOnlyField> {
    let mut v = vec![];
    if let Some(w) = task_write_only(wire) {
        let display = serde_json::from_str(w.expose()).ok();
        v.push(WriteOnlyField {
            key: TASK_WRITE_ONLY_KEY,
            label: "write-only full_migrate_conf fields",
            value: w,
            sensitive: false,
            display,
        });
    }
    if version.returns_full_task_config() {
        return v;
    }
    if let Some(s) = &wire.target_config.security {
        v.push(WriteOnlyField {
            key: TASK_TARGET_SECURITY_KEY,
            label: "target TLS settings",
            value: security_secret(s),
            sensitive: true,
            display: None,
        });
    }
    let f = wire.source_config.full_migrate_conf.as_ref();
    // `logical` is the default: absent and `logical` are the same value.
    if let Some(m) = f.and_then(|f| ne(&f.import_mode)).filter(|m| *m != facts::IMPORT_MODE) {
        v.push(WriteOnlyField {
            key: TASK_IMPORT_MODE_KEY,
            label: "import_mode",
            value: Secret::new(m),
            sensitive: false,
            display: Some(json!(m)),
        });
    }
    if let Some(pd) = f.and_then(|f| ne(&f.pd_addr)) {
        v.push(WriteOnlyField {
            key: TASK_PD_ADDR_KEY,
            label: "pd_addr",
            value: Secret::new(pd),
            sensitive: false,
            display: Some(json!(pd)),
        });
    }
    v
}

fn security_secret(x: &Security) -> Secret {
    let mut cn = x.cert_allowed_cn.clone().unwrap_or_default();
    cn.sort();
    Secret::new(format!(
        "{}\0{}\0{}\0{}",
        x.ssl_ca_content,
        x.ssl_cert_content,
        x.ssl_key_content.expose(),
        cn.join(",")
    ))
}

/// Source TLS contents as one value to fingerprint (DM hides them on GET).
pub fn source_security_secret(s: &Source) -> Option<Secret> {
    s.security
        .as_ref()
        .map(|x| Secret::new(format!("{}\0{}\0{}", x.ssl_ca_content, x.ssl_cert_content, x.ssl_key_content.expose())))
}

/// Whether any secret of a task (target password, TLS keys) differs. Compared directly where DM returns them as
/// sent; v8.5 drops the TLS settings on read (they are tracked through dm-apply's state record there).
pub fn task_secrets_differ(a: &Task, b: &Task, version: &ServerVersion) -> Vec<&'static str> {
    let mut v = vec![];
    if a.target_config.password != b.target_config.password {
        v.push("target_config.password");
    }
    if !version.returns_full_task_config() {
        return v;
    }
    let key = |s: &Option<Security>| s.as_ref().map(|x| x.ssl_key_content.clone());
    if key(&a.target_config.security) != key(&b.target_config.security) {
        v.push("target_config.security.ssl_key_content");
    }
    let fkey = |t: &Task| t.source_config.full_migrate_conf.as_ref().and_then(|f| key(&f.security));
    if fkey(a) != fkey(b) {
        v.push("source_config.full_migrate_conf.security.ssl_key_content");
    }
    v
}
