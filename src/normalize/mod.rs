//! One comparable form for desired and live resources, and the wire form dm-apply sends, in three parts:
//!
//! - [`wire`](self::wire): the configuration → the request DM receives (`source_to_wire`, `task_to_wire`), version-aware.
//! - [`compare`](self::compare): both sides → comparison values (`source_comparable`, `task_cmp`, `flatten`, ...).
//! - [`readback`](self::readback): what DM's lossy answers cannot show, tracked apart (write-only fields, secrets).
//!
//! DM's reads are lossy (docs/dm-behaviour.md §9): lists come back in random order, the server fills defaults, masks source
//! passwords and TLS contents, renames binlog filter rules, drops write-only fields and lowercases patterns on
//! case-insensitive upstreams. Both sides are therefore mapped into the same `serde_json::Value` shape here, with
//! those losses applied to both, so that `plan(x, live(x))` is empty. Secrets never enter the comparable form: the
//! planner compares them separately (source passwords through dm-apply's fingerprint record, task target passwords
//! directly) and shows `(sensitive value)`. The server defaults and version gates used here are in
//! `crate::dm::facts`.

use serde::Serialize;
use serde_json::Value;

use crate::dm::facts;

mod compare;
mod readback;
#[cfg(test)]
mod tests;
mod wire;

pub use compare::{
    CmpOpts, TaskCmp, digest, digest_of, flatten, path_matches, rule_key, source_comparable, task_cmp, task_cmp_with,
    task_comparable,
};
pub use readback::{
    SOURCE_PASSWORD_KEY, SOURCE_SECURITY_KEY, TASK_IMPORT_MODE_KEY, TASK_PD_ADDR_KEY, TASK_TARGET_SECURITY_KEY,
    TASK_WRITE_ONLY_KEY, WriteOnlyField, source_security_secret, source_write_only, task_secrets_differ,
    task_write_only, task_write_only_fields,
};
pub use wire::{source_to_wire, task_to_wire, unsupported_fields, unsupported_warnings};

/// `meta_schema` dm-apply sends when the user sets none (docs/dm-behaviour.md R5.2).
pub const DEFAULT_META_SCHEMA: &str = facts::META_SCHEMA;
/// The spec default that v8.5.4+ injects when a client omits `meta_schema` (docs/dm-behaviour.md R5.2).
pub const SPEC_META_SCHEMA: &str = facts::META_SCHEMA_INJECTED;

/// Which side a wire object comes from: the binlog filter rules read back differently (docs/dm-behaviour.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Built by dm-apply from the configuration.
    Desired,
    /// Read from DM.
    Live,
}

fn enum_str<T: Serialize>(t: &T) -> String {
    match serde_json::to_value(t) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// `Some` non-empty string (DM reads an absent string back as `""` and vice versa).
fn ne(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}
