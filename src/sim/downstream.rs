//! The fake databases DM-master connects to: which hosts can be reached, and the downstream's accounts.
//!
//! Conventions (docs/simulator.md "The fake upstream and downstream"):
//! - a host under a reserved name (`.invalid`, `.test`, `.example`; RFC 6761) does not resolve: the driver says
//!   `dial tcp: lookup HOST: no such host`;
//! - a host ending in `.unreachable` resolves but refuses connections: `connect: connection refused`;
//! - a downstream `(host, port, user)` with a registered account accepts only that password (MySQL's
//!   `Error 1045 (28000): Access denied ...`); without a registered account any password is accepted;
//! - a test can add a hosts-file entry for a name (as `/etc/hosts` on DM-master's machine would): the name then
//!   resolves to a database that accepts connections, whatever the rules above say about it.
//!
//! DM wraps these driver errors as 10001 with the scope of the side it connected to (docs/dm-behaviour.md §5, §10).

use std::collections::BTreeMap;

use super::errors::{SimError, e};

/// Why a host cannot be connected to, if it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreachable {
    /// The name does not resolve.
    NoSuchHost,
    /// The address refuses TCP connections (the database is down).
    Refused,
}

fn bare(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` can be connected to at all (before any credentials are looked at).
pub(crate) fn reach(host: &str) -> Option<Unreachable> {
    let h = bare(host);
    let under = |tld: &str| h == tld || h.ends_with(&format!(".{tld}"));
    if under("invalid") || under("test") || under("example") {
        Some(Unreachable::NoSuchHost)
    } else if under("unreachable") {
        Some(Unreachable::Refused)
    } else {
        None
    }
}

/// The Go MySQL driver's text for a failed dial.
fn dial_error(host: &str, port: u16, why: Unreachable) -> String {
    match why {
        Unreachable::NoSuchHost => format!("dial tcp: lookup {host}: no such host"),
        Unreachable::Refused => format!("dial tcp {host}:{port}: connect: connection refused"),
    }
}

/// The driver error of a connection attempt to `host:port`, if it fails before authentication.
pub(crate) fn dial(host: &str, port: u16) -> Option<String> {
    reach(host).map(|why| dial_error(host, port, why))
}

/// Connect to an upstream source (`GetUpstreamDB`): 10001, scope upstream, when the host cannot be reached.
pub(crate) fn connect_upstream(host: &str, port: u16) -> Result<(), SimError> {
    match dial(host, port) {
        Some(cause) => Err(e::db_driver("upstream", cause)),
        None => Ok(()),
    }
}

/// The downstream's accounts: `(host, port, user)` → password; and the hosts-file entries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Accounts {
    accounts: BTreeMap<(String, u16, String), String>,
    hosts: std::collections::BTreeSet<String>,
}

impl Accounts {
    /// A hosts-file entry: `host` resolves and accepts connections from now on.
    pub fn add_host(&mut self, host: &str) {
        self.hosts.insert(bare(host));
    }

    pub fn register(&mut self, host: &str, port: u16, user: &str, password: &str) {
        self.accounts.insert((bare(host), port, user.to_string()), password.to_string());
    }

    pub fn clear(&mut self) {
        self.accounts.clear();
        self.hosts.clear();
    }

    /// Connect and authenticate (`GetDownstreamDB` then `SELECT version()`): the driver error, if any.
    pub fn login(&self, host: &str, port: u16, user: &str, password: &str) -> Result<(), String> {
        if !self.hosts.contains(&bare(host))
            && let Some(cause) = dial(host, port)
        {
            return Err(cause);
        }
        match self.accounts.get(&(bare(host), port, user.to_string())) {
            Some(pw) if pw != password => Err(format!(
                "Error 1045 (28000): Access denied for user '{user}'@'127.0.0.1' (using password: {})",
                if password.is_empty() { "NO" } else { "YES" }
            )),
            _ => Ok(()),
        }
    }

    /// The downstream connection of task create/update/delete: 10001, scope downstream (docs/dm-behaviour.md §5).
    pub fn connect(&self, host: &str, port: u16, user: &str, password: &str) -> Result<(), SimError> {
        self.login(host, port, user, password).map_err(|cause| e::db_driver("downstream", cause))
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let accounts: Vec<serde_json::Value> = self
            .accounts
            .iter()
            .map(|((h, p, u), pw)| serde_json::json!({"host": h, "port": p, "user": u, "password": pw}))
            .collect();
        serde_json::json!({"accounts": accounts, "hosts_entries": self.hosts})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_do_not_resolve_and_unreachable_refuses() {
        assert_eq!(reach("tidb.invalid"), Some(Unreachable::NoSuchHost));
        assert_eq!(reach("TiDB.Test."), Some(Unreachable::NoSuchHost));
        assert_eq!(reach("db.example"), Some(Unreachable::NoSuchHost));
        assert_eq!(reach("db.example.com"), None);
        assert_eq!(reach("tidb.unreachable"), Some(Unreachable::Refused));
        assert_eq!(reach("tidb.internal"), None);
    }

    #[test]
    fn registered_accounts_check_the_password_others_accept_any() {
        let mut a = Accounts::default();
        assert!(a.login("tidb", 4000, "root", "whatever").is_ok());
        a.register("tidb", 4000, "root", "right");
        assert!(a.login("tidb", 4000, "root", "right").is_ok());
        let err = a.login("tidb", 4000, "root", "wrong").unwrap_err();
        assert!(err.starts_with("Error 1045 (28000): Access denied for user 'root'@"), "{err}");
        assert!(a.login("tidb", 4000, "other", "x").is_ok(), "another user has no account: accepted");
        assert!(a.login("tidb", 4001, "root", "x").is_ok(), "another port is another database");
        assert!(a.login("tidb.invalid", 4000, "root", "right").unwrap_err().contains("no such host"));
        a.add_host("tidb.invalid");
        assert!(a.login("tidb.invalid", 4000, "root", "any").is_ok(), "a hosts entry makes the name resolve");
    }
}
