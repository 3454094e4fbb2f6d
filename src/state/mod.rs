//! dm-apply's state record: what it knows of the write-only values DM never returns, and the apply lease.
//!
//! DM masks source passwords and TLS contents on every read, and v8.5 drops a task's target TLS, `import_mode` and
//! `pd_addr` on read. To notice that such a value changed in git, dm-apply keeps per resource a fingerprint of each
//! write-only value it sent ([`fingerprint`]: keyed HMAC, or memory-hard Argon2id without a key), or the
//! `write_only_version` last applied. The record lives in DM itself, in a task template ([`record`]), so it
//! travels with the cluster rather than with a CI runner. The apply lease ([`lease`]) is a second template.
//!
//! - [`record`]: the record and its template encoding (pure).
//! - [`fingerprint`]: the two schemes (pure, CPU only).
//! - [`assess`]: the planner's view: for each write-only field, unchanged / changed / not tracked (pure).
//! - [`store`], [`lease`]: reading and writing the templates (I/O).
//! - [`key`]: loading the state key.
//!
//! See docs/plan.md, "Passwords and other write-only values", for the design and the threat model.

pub mod assess;
pub mod fingerprint;
pub mod key;
pub mod lease;
pub mod record;
pub mod store;

pub use fingerprint::{Fingerprint, StateKey};
pub use record::{Entry, Lease, STATE_TEMPLATE, StateRecord};

use crate::dm::types::TargetConfig;

/// What `plan` found of the record in DM.
// One per run: the size difference between variants does not matter, and unboxed variants keep matching simple.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum StateView {
    /// No template yet.
    Absent,
    /// A record, and the target its template connects to.
    Record { record: StateRecord, target: TargetConfig },
    /// dm-apply ≤ 0.1's record: nothing in it is trusted; the next write replaces it.
    Legacy,
    /// A template with the record's name that is not dm-apply's.
    Foreign(String),
    /// dm-apply's template, but it cannot be read (damaged, or written by a newer dm-apply).
    Damaged(String),
    /// DM did not answer the read.
    Unreadable(String),
}

impl StateView {
    pub fn record(&self) -> Option<&StateRecord> {
        match self {
            StateView::Record { record, .. } => Some(record),
            _ => None,
        }
    }

    /// Whether write-only values can be judged: a record, or none yet (everything is then "not tracked").
    pub fn usable(&self) -> bool {
        matches!(self, StateView::Absent | StateView::Record { .. } | StateView::Legacy)
    }

    /// Why the record cannot be used, for warnings and refusals.
    pub fn problem(&self) -> Option<String> {
        match self {
            StateView::Foreign(why) => Some(format!(
                "task template `{STATE_TEMPLATE}` exists but is not dm-apply's state record ({why}); rename or delete \
                 that template (dm-apply cannot use another name for its record)"
            )),
            StateView::Damaged(why) => {
                Some(format!("dm-apply's state record (task template `{STATE_TEMPLATE}`) cannot be read: {why}"))
            }
            StateView::Unreadable(why) => {
                Some(format!("cannot read dm-apply's state record (task template `{STATE_TEMPLATE}`): {why}"))
            }
            _ => None,
        }
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
