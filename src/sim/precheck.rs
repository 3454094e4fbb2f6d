//! The task precheck that create and update both run (docs/dm-behaviour.md §5, §6): which checkers DM would run
//! for a task, which of them fail against the fake upstream, and the check output DM answers with.
//!
//! Failing checks: a source host containing `precheck-fail` fails the binlog format check (or, for modes
//! without incremental replication, the version check); an incremental (or load) task's start position fails
//! the meta position check once that binlog is purged upstream (see `SimControl::purge_binlogs`).

use serde::Serialize;
use serde_json::Value;

use super::errors::SimError;

pub(crate) const CHECK_PASSED: &str = "pre-check is passed. ";
const HEADER: &str = "fail to check synchronization configuration with type";

/// One source of the task, as the checker sees it.
pub(crate) struct Instance<'a> {
    pub host: &'a str,
    pub port: u16,
    /// Relay runs for the source (config flag or relay workers): the meta position is not checked.
    pub relay: bool,
    /// The start position DM would check, when it checks one: (what, MySQL's error) when it is purged.
    pub meta_check: MetaCheck,
}

pub(crate) enum MetaCheck {
    /// No meta position check for this source (dump modes, relay, no start position).
    Skip,
    Passes,
    /// The start position is purged upstream: MySQL's error text.
    Fails(String),
}

/// A checker DM would run: its name, its failure (error, instruction) if it fails, and the instance it checks.
struct Check {
    name: &'static str,
    fail: Option<(String, String)>,
    extra: String,
}

impl Check {
    fn new(name: &'static str, fail: Option<(String, String)>, extra: String) -> Check {
        Check { name, fail, extra }
    }
}

#[derive(Serialize)]
struct CheckError {
    severity: &'static str,
    short_error: String,
}

#[derive(Serialize)]
struct CheckResult {
    id: u64,
    name: &'static str,
    desc: &'static str,
    state: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<CheckError>,
    #[serde(skip_serializing_if = "String::is_empty")]
    instruction: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    extra: String,
}

#[derive(Serialize)]
struct Summary {
    passed: bool,
    total: u64,
    successful: u64,
    failed: u64,
    warning: u64,
}

#[derive(Serialize)]
struct Results {
    results: Vec<CheckResult>,
    summary: Summary,
}

fn has_dump(mode: &str) -> bool {
    matches!(mode, "all" | "full" | "dump")
}
fn has_load(mode: &str) -> bool {
    matches!(mode, "all" | "full" | "load")
}
fn has_sync(mode: &str) -> bool {
    matches!(mode, "all" | "incremental")
}

/// Runs the precheck. `Ok` carries the `check_result` text of the create/update answer: `pre-check is passed. `,
/// or `""` when every item is ignored (DM then runs no checker at all). `Err` is DM's 26005 with the check output.
pub(crate) fn run(
    mode: &str,
    ignore: &[String],
    online_ddl: bool,
    physical: bool,
    instances: &[Instance],
) -> Result<String, SimError> {
    if ignore.iter().any(|i| i == "all") {
        return Ok(String::new());
    }
    let on = |item: &str| !ignore.iter().any(|i| i == item);
    // Checkers in the order DM builds its list; each entry: (item, name, failure if any).
    let mut list: Vec<Check> = vec![];
    let addr = |i: &Instance| format!("address of db instance - {}:{}", i.host, i.port);
    if on("conn_number") {
        if has_dump(mode) {
            for i in instances {
                list.push(Check::new("dumper_conn_number_checker", None, addr(i)));
            }
        }
        if has_load(mode) {
            list.push(Check::new("loader_conn_number_checker", None, String::new()));
        }
    }
    if on("target_privilege") {
        list.push(Check::new("target db privilege checker", None, String::new()));
    }
    for i in instances {
        let bad_host = super::catalog::precheck_fails(i.host);
        if on("version") {
            // precheck-fail hosts fail the version check when no binlog format check runs.
            let fails = bad_host && !(has_sync(mode) && on("binlog_format"));
            let f = fails.then(|| {
                (
                    "version required less than v9.0.0 but got v99.0.0".to_string(),
                    "use a MySQL or MariaDB version DM supports".to_string(),
                )
            });
            list.push(Check::new("mysql_version", f, addr(i)));
        }
        if has_dump(mode) {
            if on("dump_privilege") {
                list.push(Check::new("source db dump privilege checker", None, addr(i)));
            }
        } else if !i.relay && on("meta_position") {
            match &i.meta_check {
                MetaCheck::Skip => {}
                MetaCheck::Passes => list.push(Check::new("meta position check", None, addr(i))),
                MetaCheck::Fails(e) => list.push(Check::new(
                    "meta position check",
                    Some((
                        e.clone(),
                        "make sure the start position of the task (source_conf binlog_name/binlog_pos/binlog_gtid) is \
                         still present upstream and not purged, and that the user has the REPLICATION SLAVE privilege"
                            .to_string(),
                    )),
                    addr(i),
                )),
            }
        }
        if has_sync(mode) {
            for (item, name) in [
                ("server_id", "mysql_server_id"),
                ("binlog_enable", "mysql_binlog_enable"),
                ("binlog_format", "mysql_binlog_format"),
                ("binlog_row_image", "mysql_binlog_row_image"),
                ("replication_privilege", "source db replication privilege checker"),
                ("online_ddl", "online ddl checker"),
                ("binlog_db", "binlog_do_db/binlog_ignore_db check"),
            ] {
                if !on(item) || (item == "online_ddl" && !online_ddl) {
                    continue;
                }
                let f = (item == "binlog_format" && bad_host).then(|| {
                    (
                        "binlog_format is STATEMENT, and should be ROW".to_string(),
                        "set binlog_format=ROW on the upstream (for cloud databases, through its parameter group)"
                            .to_string(),
                    )
                });
                list.push(Check::new(name, f, addr(i)));
            }
        }
    }
    if on("table_schema") {
        list.push(Check::new("table structure compatibility check", None, String::new()));
    }
    if physical && has_load(mode) {
        for (item, name) in [
            ("empty_region", "lightning_empty_region"),
            ("region_distribution", "lightning_region_distribution"),
            ("downstream_version", "lightning_cluster_version"),
            ("free_space", "lightning_free_space"),
            ("downstream_mutex_features", "lightning_downstream_mutex_features"),
            ("downstream_table_empty", "lightning_downstream_empty_table"),
        ] {
            if on(item) {
                list.push(Check::new(name, None, String::new()));
            }
        }
    }
    let failed: Vec<CheckResult> = list
        .iter()
        .enumerate()
        .filter_map(|(id, Check { name, fail, extra })| {
            let (err, instruction) = fail.clone()?;
            Some(CheckResult {
                id: id as u64,
                name,
                desc: desc(name),
                state: "fail",
                errors: vec![CheckError { severity: "fail", short_error: err }],
                instruction,
                extra: extra.clone(),
            })
        })
        .collect();
    if failed.is_empty() {
        return Ok(CHECK_PASSED.to_string());
    }
    let total = list.len() as u64;
    let n_failed = failed.len() as u64;
    let results = Results {
        results: failed,
        summary: Summary { passed: false, total, successful: total - n_failed, failed: n_failed, warning: 0 },
    };
    let detail = indent_json(&serde_json::to_value(&results).unwrap_or(Value::Null));
    // The message quotes the first process error and the failed checks as tab-indented JSON (docs/dm-behaviour.md §5). DM re-classes
    // this 26005 to `dm-master` on the create/update path.
    Err(SimError::new(26005, format!("{HEADER}: check was failed, please see detail\n detail: {detail}")))
}

fn desc(name: &str) -> &'static str {
    match name {
        "meta position check" => "check that the start position of the task can be read from the upstream",
        "mysql_binlog_format" => "check that the upstream's binlog_format is ROW",
        "mysql_version" => "check that the upstream's version is supported",
        _ => "",
    }
}

/// JSON indented with tabs, every line after the first prefixed with one more tab (the shape of the detail
/// text in DM's check output).
fn indent_json(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&buf).replace('\n', "\n\t")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(host: &str, meta_check: MetaCheck) -> Instance<'_> {
        Instance { host, port: 3306, relay: false, meta_check }
    }

    #[test]
    fn passes_or_everything_ignored() {
        assert_eq!(run("incremental", &[], true, false, &[inst("h", MetaCheck::Passes)]).unwrap(), CHECK_PASSED);
        assert_eq!(
            run("incremental", &["all".into()], true, false, &[inst("precheck-fail", MetaCheck::Passes)]).unwrap(),
            ""
        );
    }

    #[test]
    fn purged_start_fails_the_meta_position_check_unless_ignored() {
        let i = || inst("h", MetaCheck::Fails("ERROR 1236 (HY000): x".into()));
        let e = run("incremental", &[], true, false, &[i()]).unwrap_err();
        assert_eq!(e.code, 26005);
        assert!(e.message.starts_with("fail to check synchronization configuration with type: check was failed"));
        assert!(e.message.contains("\"name\": \"meta position check\""), "{}", e.message);
        assert!(e.message.contains("ERROR 1236"));
        assert!(e.message.contains("\n\t\t\"summary\": {"), "{}", e.message);
        assert!(run("incremental", &["meta_position".into()], true, false, &[i()]).is_ok());
    }

    #[test]
    fn precheck_fail_hosts_fail_binlog_format_or_version() {
        let e = run("all", &[], true, false, &[inst("precheck-fail.x", MetaCheck::Skip)]).unwrap_err();
        assert!(e.message.contains("mysql_binlog_format"));
        let e = run("full", &[], true, false, &[inst("precheck-fail.x", MetaCheck::Skip)]).unwrap_err();
        assert!(e.message.contains("mysql_version"));
        assert!(
            run("all", &["binlog_format".into()], true, false, &[inst("precheck-fail.x", MetaCheck::Skip)]).is_err()
        );
    }
}
