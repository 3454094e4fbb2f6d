//! The apply lease: at most one apply changes a cluster at a time.
//!
//! The lease is a task template of its own, [`LEASE_TEMPLATE`], holding who applies. Creating a template is
//! DM's one compare-and-set: the existence check and the write are one etcd transaction, so of two applies
//! creating it at once exactly one succeeds (docs/dm-behaviour.md R10.2); the other stops before any mutation.
//! Releasing deletes it. Every write of the state record during the apply first checks the lease is still ours.
//! `plan` and `drift` never take it.
//!
//! Earlier dm-apply builds kept the lease inside the state record. Such a lease is still honoured (refused, or
//! replaced with `--take-over-lease`), so an older build's apply is not run over.

use super::record::StateRecord;
use super::record::{self, Lease};
use super::{now, store};
use crate::dm::error::codes;
use crate::dm::types::{TargetConfig, Task};
use crate::dm::{DmClient, DmError};

/// Name of the task template that is the lease while an apply runs.
pub const LEASE_TEMPLATE: &str = "dm-apply-lease";
/// Its binlog filter rule, whose one `ignore_sql` line is [`PREFIX`] and the lease's JSON.
const RULE: &str = "dm-apply-lease";
const PREFIX: &str = "dm-apply-lease:v1:";

/// Why the lease was not taken.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LeaseError {
    #[error("another apply holds the lease on this DM cluster: {holder}; nothing was changed")]
    #[diagnostic(
        code(apply::lease_held),
        help(
            "wait for it to finish; if it died (the lease is then left behind), run again with --take-over-lease, \
             which replaces its lease explicitly"
        )
    )]
    Held { holder: String },
    #[error("another apply took the lease at the same time: {holder}; nothing was changed")]
    #[diagnostic(code(apply::lease_lost), help("run again once it has finished"))]
    Lost { holder: String },
    #[error("{0}; nothing was changed")]
    #[diagnostic(
        code(apply::state_record),
        help(
            "fix the cause, or pass --no-lease to apply without the lease (no other apply is then kept out, and \
             write-only values may not be recorded)"
        )
    )]
    Unusable(String),
    #[error(
        "cannot write dm-apply's state record (task template `{template}`, which connects to the target of \
         task.{home}): {source}; nothing was changed"
    )]
    #[diagnostic(
        code(apply::state_record),
        help(
            "DM-master connects to that target whenever a template is written: check that it can reach it with the \
             configured credentials, or pass --no-lease to apply without the lease"
        )
    )]
    /// `template`: the lease's, or the record's when an earlier build's lease is taken out of it.
    Write { template: &'static str, home: String, source: DmError },
    #[error(
        "--take-over-lease removed the lease of {holder}, but this apply's lease could not be written: {source}; \
         nothing else was changed"
    )]
    #[diagnostic(
        code(apply::state_record),
        help("no lease is held now: fix the cause and run again (without --take-over-lease if nobody took it since)")
    )]
    Replaced { holder: String, source: DmError },
}

/// A lease we hold.
#[derive(Debug, Clone)]
pub struct Held {
    pub lease: Lease,
    /// The lease we replaced with `--take-over-lease`.
    pub took_over: Option<Lease>,
}

/// What the lease template holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// No template: nobody holds the lease.
    Free,
    Held(Lease),
    /// A template with the lease's name that dm-apply cannot read as a lease.
    Foreign,
}

impl Current {
    /// Whether it is the lease with this id.
    pub fn is(&self, id: &str) -> bool {
        matches!(self, Current::Held(l) if l.id == id)
    }

    fn describe(&self) -> String {
        match self {
            Current::Held(l) => l.describe(now()),
            Current::Free => "nobody (the lease was released meanwhile)".into(),
            Current::Foreign => format!("unknown (task template `{LEASE_TEMPLATE}` is not a lease dm-apply can read)"),
        }
    }
}

fn holder() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host}")
}

fn random_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The lease's template, connecting to `home` as the record's does (DM connects on every template write).
pub fn to_template(lease: &Lease, home: &TargetConfig) -> Task {
    let json = serde_json::to_string(lease).unwrap_or_default();
    record::template(LEASE_TEMPLATE, home, RULE, vec![format!("{PREFIX}{json}")])
}

/// Read a template named [`LEASE_TEMPLATE`]; `None` when it is not a lease.
pub fn from_template(t: &Task) -> Option<Lease> {
    let lines = t.binlog_filter_rule.as_ref()?.get(RULE)?.ignore_sql.as_ref()?;
    let [line] = lines.as_slice() else { return None };
    serde_json::from_str(line.strip_prefix(PREFIX)?).ok()
}

/// Read the lease: one GET.
pub async fn read(client: &DmClient) -> Result<Current, DmError> {
    Ok(match client.get_template(LEASE_TEMPLATE).await? {
        None => Current::Free,
        Some(t) => from_template(&t).map_or(Current::Foreign, Current::Held),
    })
}

/// Take the lease (see the module docs). `home_task` names the task whose target the templates connect to.
pub async fn take(
    client: &DmClient,
    home: &TargetConfig,
    home_task: &str,
    take_over: bool,
) -> Result<Held, LeaseError> {
    // The record must be usable, and may hold an earlier build's lease.
    let view = store::read(client).await;
    let (mut record, exists) = store::base(&view).map_err(LeaseError::Unusable)?;
    let older = record.lease.clone();
    if let Some(l) = &older
        && !take_over
    {
        return Err(LeaseError::Held { holder: l.describe(now()) });
    }
    let lease = Lease { holder: holder(), pid: std::process::id(), id: random_id(), since: now() };
    let write_error = |source| LeaseError::Write { template: LEASE_TEMPLATE, home: home_task.to_string(), source };
    let mut took_over = match create(client, &lease, home).await.map_err(write_error)? {
        Created::Ours => None,
        Created::Exists(Current::Foreign) => {
            return Err(LeaseError::Unusable(format!(
                "a task template named `{LEASE_TEMPLATE}` exists that is not dm-apply's lease: rename or delete it \
                 (dm-apply keeps its apply lease under that name)"
            )));
        }
        Created::Exists(current) if !take_over => return Err(LeaseError::Held { holder: current.describe() }),
        Created::Exists(current) => {
            // Replace it: delete, then create again. Of two take-overs at once, the one whose create fails stops;
            // a delete landing after the other's create is not caught (DM's delete is unconditional; docs/plan.md).
            client.delete_template(LEASE_TEMPLATE).await.map_err(write_error)?;
            let replaced = |source| LeaseError::Replaced { holder: current.describe(), source };
            match create(client, &lease, home).await.map_err(replaced)? {
                Created::Ours => {}
                Created::Exists(now_held) => return Err(LeaseError::Lost { holder: now_held.describe() }),
            }
            match current {
                Current::Held(l) => Some(l),
                _ => None,
            }
        }
    };
    if let Some(l) = older {
        // The earlier build's lease goes from the record, or our own record writes would refuse to run.
        record.lease = None;
        if let Err(source) = store::write(client, &record, home, exists).await {
            let _ = client.delete_template(LEASE_TEMPLATE).await;
            return Err(LeaseError::Write { template: record::STATE_TEMPLATE, home: home_task.to_string(), source });
        }
        took_over = took_over.or(Some(l));
    }
    Ok(Held { lease, took_over })
}

enum Created {
    Ours,
    /// The template exists (20050): what it holds now.
    Exists(Current),
}

/// Create the lease's template. An answer lost on the way is settled by reading: the template is then ours only if
/// it carries our id. A lease released between the refusal and the read is tried once more.
async fn create(client: &DmClient, lease: &Lease, home: &TargetConfig) -> Result<Created, DmError> {
    let template = to_template(lease, home);
    let mut tries = 2;
    loop {
        tries -= 1;
        match client.create_template(&template).await {
            Ok(_) => return Ok(Created::Ours),
            Err(e) if e.has_code(codes::TEMPLATE_EXISTS) => match read(client).await? {
                Current::Free if tries > 0 => continue,
                current if current.is(&lease.id) => return Ok(Created::Ours),
                current => return Ok(Created::Exists(current)),
            },
            Err(e) if e.is_ambiguous() => {
                return match read(client).await {
                    Ok(current) if current.is(&lease.id) => Ok(Created::Ours),
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        }
    }
}

/// Before a write of the record: the lease read beside it must still be the one with `id`, and no earlier
/// dm-apply build may have put its own lease into the record meanwhile.
pub fn still_ours(lease: &Current, record: &StateRecord, id: &str) -> Result<(), String> {
    let by = match (&record.lease, lease) {
        (Some(older), _) => older.describe(now()),
        (None, l) if l.is(id) => return Ok(()),
        (None, l) => l.describe(),
    };
    Err(format!("this apply's lease on dm-apply's state record was taken over by {by}; not writing the record"))
}

/// Release our lease (best effort: the caller reports a failure). `Ok(false)`: it was no longer ours.
pub async fn release(client: &DmClient, held: &Lease) -> Result<bool, String> {
    if !read(client).await.map_err(|e| e.to_string())?.is(&held.id) {
        return Ok(false);
    }
    client.delete_template(LEASE_TEMPLATE).await.map_err(|e| e.to_string())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn a_lease_reads_back_from_its_template() {
        let home = TargetConfig {
            host: "tidb".into(),
            port: 4000,
            user: "root".into(),
            password: Secret::new("pw"),
            ..Default::default()
        };
        let lease = Lease { holder: "ci@runner \"7\"".into(), pid: 42, id: "abc".into(), since: 1_700_000_000 };
        let t = to_template(&lease, &home);
        assert_eq!(t.name, LEASE_TEMPLATE);
        assert_eq!(t.target_config.host, "tidb");
        assert_eq!(from_template(&t), Some(lease));
        // Someone else's template with that name is not a lease.
        let mut foreign = t.clone();
        foreign.binlog_filter_rule = None;
        assert_eq!(from_template(&foreign), None);
        let mut two = t;
        if let Some(r) = two.binlog_filter_rule.as_mut().and_then(|m| m.get_mut(RULE)) {
            r.ignore_sql.as_mut().unwrap().push("x".into());
        }
        assert_eq!(from_template(&two), None);
    }

    #[test]
    fn a_record_write_needs_the_lease_to_be_still_ours() {
        let lease = |id: &str| Lease { holder: "ci@runner".into(), pid: 7, id: id.into(), since: now() - 5 };
        let record = StateRecord::default();
        assert_eq!(still_ours(&Current::Held(lease("me")), &record, "me"), Ok(()));
        for (current, says) in [
            (Current::Held(lease("other")), "taken over by ci@runner (pid 7), for 5s"),
            (Current::Free, "taken over by nobody"),
            (Current::Foreign, "taken over by unknown"),
        ] {
            let e = still_ours(&current, &record, "me").unwrap_err();
            assert!(e.contains(says) && e.ends_with("not writing the record"), "{current:?}: {e}");
        }
        // An earlier build's lease put into the record meanwhile wins over ours.
        let older = StateRecord { lease: Some(lease("old")), ..StateRecord::default() };
        assert!(still_ours(&Current::Held(lease("me")), &older, "me").is_err());
    }
}
