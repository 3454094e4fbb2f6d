//! The apply lease: at most one apply changes a cluster at a time.
//!
//! DM's templates have no compare-and-swap, so the lease is taken with a write of the record carrying our lease,
//! a short pause, then a re-read that must still show our id: of two applies racing, the one whose write landed
//! last sees its own id and proceeds; the other sees a foreign id and stops before any mutation. Every later write
//! of the record checks the lease is still ours. `plan` and `drift` never take it.

use std::time::Duration;

use super::record::Lease;
use super::{StateView, now, store};
use crate::dm::types::TargetConfig;
use crate::dm::{DmClient, DmError};

/// How long to wait between writing the lease and reading it back.
pub const SETTLE: Duration = Duration::from_millis(300);

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
        "cannot write dm-apply's state record (task template `dm-apply-state`, which connects to the target of \
         task.{home}): {source}; nothing was changed"
    )]
    #[diagnostic(
        code(apply::state_record),
        help(
            "DM-master connects to that target whenever the template is written: check that it can reach it with \
             the configured credentials, or pass --no-lease to apply without the lease"
        )
    )]
    Write { home: String, source: DmError },
}

/// A lease we hold.
#[derive(Debug, Clone)]
pub struct Held {
    pub lease: Lease,
    /// The lease we replaced with `--take-over-lease`.
    pub took_over: Option<Lease>,
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

/// Take the lease (see the module docs). `home_task` names the task whose target the template connects to.
pub async fn take(
    client: &DmClient,
    home: &TargetConfig,
    home_task: &str,
    take_over: bool,
    settle: Duration,
) -> Result<Held, LeaseError> {
    let view = store::read(client).await;
    let (mut record, exists) = store::base(&view).map_err(LeaseError::Unusable)?;
    let previous = record.lease.clone();
    if let Some(l) = &previous
        && !take_over
    {
        return Err(LeaseError::Held { holder: l.describe(now()) });
    }
    let lease = Lease { holder: holder(), pid: std::process::id(), id: random_id(), since: now() };
    record.lease = Some(lease.clone());
    store::write(client, &record, home, exists)
        .await
        .map_err(|e| LeaseError::Write { home: home_task.to_string(), source: e })?;
    tokio::time::sleep(settle).await;
    match store::read(client).await {
        StateView::Record { record, .. } => match record.lease {
            Some(l) if l.id == lease.id => Ok(Held { lease, took_over: previous }),
            Some(l) => Err(LeaseError::Lost { holder: l.describe(now()) }),
            None => Err(LeaseError::Lost { holder: "(another apply released it meanwhile)".into() }),
        },
        v => Err(LeaseError::Unusable(v.problem().unwrap_or_else(|| "the state record vanished".into()))),
    }
}

/// Release our lease (best effort: the caller reports a failure). `Ok(false)`: it was no longer ours.
pub async fn release(client: &DmClient, home: &TargetConfig, held: &Lease) -> Result<bool, String> {
    let view = store::read(client).await;
    let (mut record, exists) = store::base(&view)?;
    if record.lease.as_ref().is_none_or(|l| l.id != held.id) {
        return Ok(false);
    }
    record.lease = None;
    store::write(client, &record, home, exists).await.map_err(|e| e.to_string())?;
    Ok(true)
}
