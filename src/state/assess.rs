//! The planner's view of write-only values: for each field of a resource, whether the configuration differs from
//! what was last applied, judged against the record. Pure: the Argon2id checks are CPU work, run in parallel (and
//! remembered for the rest of the run, `fingerprint::argon2_computed`).

use std::collections::BTreeMap;

use super::fingerprint::{self, Fingerprint, StateKey, Verdict};
use super::record::Entry;
use crate::normalize::WriteOnlyField;
use crate::secret::Secret;

/// One field's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldStatus {
    Unchanged,
    /// Differs from what was last applied (or was added or removed since).
    Changed,
    /// No usable record of it: trusted as it is in DM (trust on first use). The reason is shown in a note.
    Untracked(String),
}

/// A fingerprint check to run.
pub struct Check<'a> {
    pub address: String,
    pub key: &'static str,
    pub fingerprint: &'a Fingerprint,
    pub value: Secret,
}

/// Run every check (in parallel): `(address, key)` → verdict.
pub fn run_checks(checks: &[Check<'_>], key: Option<&StateKey>) -> BTreeMap<(String, &'static str), Verdict> {
    let before = fingerprint::argon2_computed();
    let verdicts =
        fingerprint::par_map(checks, |c| fingerprint::verify(c.fingerprint, key, &c.address, c.key, &c.value));
    let argon2 = checks.iter().filter(|c| matches!(c.fingerprint, Fingerprint::Argon2id { .. })).count();
    if argon2 > 0 {
        // Those this process had computed before (apply's verification) cost nothing: say how many were new.
        let computed = fingerprint::argon2_computed().saturating_sub(before);
        tracing::debug!(checks = checks.len(), argon2id = argon2, argon2id_computed = computed, "fingerprints checked");
    }
    checks.iter().zip(verdicts).map(|(c, v)| ((c.address.clone(), c.key), v)).collect()
}

/// The checks a resource needs: fields present both in the configuration and in the record.
pub fn checks_for<'a>(address: &str, entry: Option<&'a Entry>, fields: &[WriteOnlyField]) -> Vec<Check<'a>> {
    let Some(entry) = entry.filter(|e| e.write_only_version.is_none()) else { return vec![] };
    fields
        .iter()
        .filter_map(|f| {
            entry.fingerprints.get(f.key).map(|fp| Check {
                address: address.to_string(),
                key: f.key,
                fingerprint: fp,
                value: f.value.clone(),
            })
        })
        .collect()
}

/// Status of each field of a resource in fingerprint mode. `removable`: keys recorded but no longer in the
/// configuration count as changed (a task field set back to its default); not for sources (a password removed from
/// the configuration is simply no longer sent).
pub fn field_statuses(
    address: &str,
    entry: Option<&Entry>,
    fields: &[WriteOnlyField],
    verdicts: &BTreeMap<(String, &'static str), Verdict>,
    removable: &[&'static str],
) -> BTreeMap<&'static str, FieldStatus> {
    let mut out = BTreeMap::new();
    let Some(entry) = entry else {
        for f in fields {
            out.insert(f.key, FieldStatus::Untracked("no entry in dm-apply's state record".into()));
        }
        return out;
    };
    if entry.write_only_version.is_some() {
        for f in fields {
            out.insert(
                f.key,
                FieldStatus::Untracked("tracked by `write_only_version` until now, which keeps no fingerprint".into()),
            );
        }
        return out;
    }
    for f in fields {
        let status = match entry.fingerprints.get(f.key) {
            None => FieldStatus::Changed,
            Some(_) => match verdicts.get(&(address.to_string(), f.key)) {
                Some(Verdict::Match) => FieldStatus::Unchanged,
                Some(Verdict::Mismatch) => FieldStatus::Changed,
                Some(Verdict::Unverifiable(why)) => FieldStatus::Untracked(why.clone()),
                None => FieldStatus::Untracked("not checked".into()),
            },
        };
        out.insert(f.key, status);
    }
    for k in removable {
        if entry.fingerprints.contains_key(*k) && !out.contains_key(k) {
            out.insert(k, FieldStatus::Changed);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::fingerprint::compute;

    fn field(key: &'static str, v: &str) -> WriteOnlyField {
        WriteOnlyField { key, label: key, value: Secret::new(v), sensitive: true, display: None }
    }

    #[test]
    fn statuses() {
        let k = StateKey::new(b"0123456789abcdef".to_vec(), "t").unwrap();
        let entry = Entry {
            fingerprints: BTreeMap::from([
                ("password".to_string(), compute(Some(&k), "source.a", "password", &Secret::new("old"))),
                ("gone".to_string(), compute(Some(&k), "source.a", "gone", &Secret::new("x"))),
            ]),
            write_only_version: None,
        };
        let same = [field("password", "old"), field("security", "tls")];
        let checks = checks_for("source.a", Some(&entry), &same);
        assert_eq!(checks.len(), 1);
        let v = run_checks(&checks, Some(&k));
        let st = field_statuses("source.a", Some(&entry), &same, &v, &["gone"]);
        assert_eq!(st["password"], FieldStatus::Unchanged);
        assert_eq!(st["security"], FieldStatus::Changed);
        assert_eq!(st["gone"], FieldStatus::Changed);
        let changed = [field("password", "new")];
        let v = run_checks(&checks_for("source.a", Some(&entry), &changed), Some(&k));
        assert_eq!(field_statuses("source.a", Some(&entry), &changed, &v, &[])["password"], FieldStatus::Changed);
        // Without the key: not tracked (never "changed").
        let v = run_checks(&checks_for("source.a", Some(&entry), &changed), None);
        assert!(matches!(
            field_statuses("source.a", Some(&entry), &changed, &v, &[])["password"],
            FieldStatus::Untracked(_)
        ));
        assert!(matches!(field_statuses("source.a", None, &changed, &v, &[])["password"], FieldStatus::Untracked(_)));
    }
}
