//! Reading and writing the record's template, and the read-modify-write apply does.

use super::StateView;
use super::fingerprint::{self, StateKey};
use super::record::{Entry, Parsed, STATE_TEMPLATE, StateRecord, Unreadable};
use crate::dm::error::codes;
use crate::dm::types::TargetConfig;
use crate::dm::{DmClient, DmError};
use crate::secret::Secret;

/// Read the template: one GET.
pub async fn read(client: &DmClient) -> StateView {
    match client.get_template(STATE_TEMPLATE).await {
        Ok(None) => StateView::Absent,
        Ok(Some(t)) => match StateRecord::from_template(&t) {
            Ok(Parsed::Record(record)) => StateView::Record { record, target: t.target_config },
            Ok(Parsed::Legacy) => StateView::Legacy,
            Err(Unreadable::Foreign(why)) => StateView::Foreign(why),
            Err(Unreadable::Damaged(why)) => StateView::Damaged(why),
        },
        Err(e) => StateView::Unreadable(e.to_string()),
    }
}

/// Write the record into its template, connecting to `home`: create it when `exists` is false, else update it
/// (falling back to the other when someone created or deleted it meanwhile).
pub async fn write(client: &DmClient, record: &StateRecord, home: &TargetConfig, exists: bool) -> Result<(), DmError> {
    let t = record.to_template(home);
    if !exists {
        match client.create_template(&t).await {
            Ok(_) => return Ok(()),
            Err(e) if e.has_code(codes::TEMPLATE_EXISTS) => {}
            Err(e) => return Err(e),
        }
    }
    match client.update_template(&t).await {
        Ok(_) => Ok(()),
        Err(e) if e.has_code(codes::TEMPLATE_NOT_EXIST) || e.is_absent() => {
            client.create_template(&t).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// The record to modify, from what was read: a new one when there is none (or only dm-apply ≤ 0.1's).
pub fn base(view: &StateView) -> Result<(StateRecord, bool), String> {
    match view {
        StateView::Absent => Ok((StateRecord::default(), false)),
        StateView::Legacy => Ok((StateRecord::default(), true)),
        StateView::Record { record, .. } => Ok((record.clone(), true)),
        v => Err(v.problem().unwrap_or_else(|| "dm-apply's state record cannot be used".into())),
    }
}

/// One resource's change to the record (what apply computed from the configuration).
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Fingerprint `values` (field key → value) and/or record `version`. `merge`: keep the entry's other fields.
    Set {
        values: Vec<(String, Secret)>,
        version: Option<u64>,
        merge: bool,
    },
    Forget,
}

/// Apply `updates` (address → update) to `record`, computing fingerprints in parallel (Argon2id without a key).
/// Only these entries change: entries written by others meanwhile are kept.
pub fn merge(record: &mut StateRecord, updates: &[(String, Update)], key: Option<&StateKey>) {
    let jobs: Vec<(usize, &str, &Secret)> = updates
        .iter()
        .enumerate()
        .flat_map(|(i, (_, u))| match u {
            Update::Set { values, .. } => values.iter().map(|(k, v)| (i, k.as_str(), v)).collect::<Vec<_>>(),
            Update::Forget => vec![],
        })
        .collect();
    let fps = fingerprint::par_map(&jobs, |(i, k, v)| fingerprint::compute(key, &updates[*i].0, k, v));
    let mut computed: Vec<Vec<(String, fingerprint::Fingerprint)>> = vec![vec![]; updates.len()];
    for ((i, k, _), fp) in jobs.iter().zip(fps) {
        computed[*i].push((k.to_string(), fp));
    }
    for ((address, u), fps) in updates.iter().zip(computed) {
        match u {
            Update::Forget => {
                record.resources.remove(address);
            }
            Update::Set { version, merge, .. } => {
                let mut entry = if *merge && version.is_none() {
                    record.resources.get(address).cloned().unwrap_or_default()
                } else {
                    Entry::default()
                };
                if version.is_some() {
                    entry.fingerprints.clear();
                }
                entry.write_only_version = *version;
                entry.fingerprints.extend(fps);
                record.resources.insert(address.clone(), entry);
            }
        }
    }
}
