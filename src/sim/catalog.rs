//! The fake upstream: host-name conventions and a deterministic catalog of schemas and tables per source.
//! Which hosts can be connected to at all is `downstream.rs`'s business.
//!
//! Conventions (documented in docs/simulator.md):
//! - a host containing `mariadb` is detected as flavor `mariadb`, anything else `mysql`;
//! - a host containing `no-gtid` has `GTID_MODE=OFF` (`enable_gtid: true` fails with 26007);
//! - a host containing `lower-case` has `lower_case_table_names=1` (names listed in lower case; allow-list, route
//!   and filter patterns stored lowercased, names compared without case);
//! - a host containing `precheck-fail` fails the task precheck unless `ignore_checking_items` has `all`.

use std::collections::BTreeMap;

pub fn flavor(host: &str) -> &'static str {
    if host.to_ascii_lowercase().contains("mariadb") { "mariadb" } else { "mysql" }
}

pub fn gtid_off(host: &str) -> bool {
    host.contains("no-gtid")
}

pub fn case_insensitive(host: &str) -> bool {
    host.contains("lower-case")
}

pub fn precheck_fails(host: &str) -> bool {
    host.contains("precheck-fail")
}

/// FNV-1a, so the catalog is the same in every run and on every machine.
fn hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

const SCHEMAS: &[(&str, &[&str])] = &[
    ("shop", &["orders", "order_items", "customers", "products"]),
    ("crm", &["accounts", "contacts", "leads"]),
    ("billing", &["invoices", "payments", "refunds"]),
    ("inventory", &["stock", "warehouses", "movements"]),
    ("analytics", &["events", "sessions", "pageviews"]),
    ("hr", &["employees", "departments"]),
];

/// Schemas and tables of the upstream of `source`: `shop` always, plus two or three others picked from the name.
pub fn default_catalog(source: &str) -> BTreeMap<String, Vec<String>> {
    let h = hash(source);
    let mut out = BTreeMap::new();
    for (i, (db, tables)) in SCHEMAS.iter().enumerate() {
        if i == 0 || (h >> i) & 1 == 1 {
            out.insert(db.to_string(), tables.iter().map(|t| t.to_string()).collect());
        }
    }
    if out.len() < 3 {
        let (db, tables) = SCHEMAS[1 + (h as usize % (SCHEMAS.len() - 1))];
        out.insert(db.to_string(), tables.iter().map(|t| t.to_string()).collect());
    }
    out
}

/// `SHOW CREATE TABLE` text for a fake table.
pub fn create_table_sql(table: &str) -> String {
    format!(
        "CREATE TABLE `{table}` (\n  `id` bigint NOT NULL AUTO_INCREMENT,\n  `name` varchar(255) DEFAULT NULL,\n  `updated_at` datetime DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_deterministic_and_has_shop() {
        let a = default_catalog("mysql-01");
        assert_eq!(a, default_catalog("mysql-01"));
        assert!(a.contains_key("shop") && a.len() >= 3);
    }
}
