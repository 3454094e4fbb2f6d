//! A small reference model of what DM replicates, written from DM-master/DM-worker's rules (independently of
//! `src/convert`), used to check `dm-apply convert` never replicates more than the dmctl file.
//!
//! The rules, as DM's server code applies them:
//!
//! 1. **Names and case.** Unless the task says `case-sensitive: true`, DM lower-cases pattern texts and names before
//!    matching, and regular expressions get `(?i)`.
//! 2. **Wildcards** (`*`, `?`, `[a-z]`, `[!a-z]`): matched byte by byte; `*` may only be last and matches any rest,
//!    including nothing; `[` without a closing `]` is a literal.
//! 3. **`~regex`** (block-allow lists and routes): a Go regular expression, searched anywhere in the name unless it
//!    has `^`/`$`. Binlog filters take `~` literally.
//! 4. **Block-allow list** (`do-dbs`, `do-tables`, `ignore-dbs`, `ignore-tables`). No list: every table. Otherwise a
//!    table passes when both steps pass. Schema step: with `do-dbs` the schema must match one; else it must match no
//!    `ignore-dbs`. Table step (a schema-level event, table name empty, always passes): a `do-tables` match passes;
//!    else an `ignore-tables` match fails; else it passes only without `do-tables`. Quirk: for `do-tables` entries
//!    whose schema is a regex and table a wildcard, a table matching the wildcard of *any* such entry passes once the
//!    schema matches the regex of one.
//! 5. **OpenAPI table rules** of a source become one list: `table: ""` → `do-dbs`, else `do-tables`; no rule → no
//!    list. A rule's target is a route with the rule's patterns; its filters are binlog filters with its patterns.
//! 6. **Binlog filters.** A rule with a schema pattern only applies to every table of matching schemas and to their
//!    schema-level events; one with a table pattern applies to matching tables (and to schema-level events only if
//!    the table pattern matches the empty name, i.e. is `*`). Of several rules with the same (schema, table)
//!    pattern only the first is kept. An event is ignored when a matching `Ignore` rule lists it (`all`, `all dml`,
//!    `all ddl` cover classes) or one of its SQL patterns matches the statement.
//! 7. **Routes** (each its own one-entry allow list, so regex allowed): a table takes the one table-level route it
//!    matches, else the one schema-level route (a schema-level event only looks at schema-level routes); two
//!    matches at the level used is an error.
#![allow(dead_code)]

use serde_json::Value;

/// DM's wildcard match (rule 2).
pub fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let Some((&c, rest)) = pattern.split_first() else { return name.is_empty() };
    match c {
        b'*' => true,
        b'?' => name.split_first().is_some_and(|(_, n)| glob(rest, n)),
        b'[' => match class(pattern) {
            Some((set, len)) => name.split_first().is_some_and(|(b, n)| set.contains(b) && glob(&pattern[len..], n)),
            None => name.split_first().is_some_and(|(b, n)| *b == b'[' && glob(rest, n)),
        },
        _ => name.split_first().is_some_and(|(b, n)| *b == c && glob(rest, n)),
    }
}

fn class(p: &[u8]) -> Option<(Vec<u8>, usize)> {
    let close = p.iter().position(|&b| b == b']')?;
    let (neg, start) = if p.get(1) == Some(&b'!') { (true, 2) } else { (false, 1) };
    let mut set = Vec::new();
    let mut i = start;
    while i < close {
        if p.get(i + 1) == Some(&b'-') && i + 2 < close {
            set.extend(p[i]..=p[i + 2]);
            i += 3;
        } else {
            set.push(p[i]);
            i += 1;
        }
    }
    if neg && set.is_empty() {
        return Some((vec![b'!'], close + 1));
    }
    if neg {
        set = (0..=255u8).filter(|b| !set.contains(b)).collect();
    }
    Some((set, close + 1))
}

thread_local! {
    static REGEXES: std::cell::RefCell<std::collections::HashMap<String, Option<regex::Regex>>> = Default::default();
}

fn compiled(re: &str) -> Option<regex::Regex> {
    REGEXES.with(|c| c.borrow_mut().entry(re.to_owned()).or_insert_with(|| regex::Regex::new(re).ok()).clone())
}

/// A block-allow list or route pattern against a name (rules 1-3).
pub fn matches(pattern: &str, name: &str, ci: bool) -> bool {
    let (p, n) = if ci { (pattern.to_lowercase(), name.to_lowercase()) } else { (pattern.to_owned(), name.to_owned()) };
    match p.strip_prefix('~') {
        Some(re) => {
            let re = if ci { format!("(?i){re}") } else { re.to_owned() };
            compiled(&re).is_some_and(|r| r.is_match(&n))
        }
        None => glob(p.as_bytes(), n.as_bytes()),
    }
}

/// A binlog filter pattern (rule 3: no regex).
pub fn filter_matches(pattern: &str, name: &str, ci: bool) -> bool {
    let (p, n) = if ci { (pattern.to_lowercase(), name.to_lowercase()) } else { (pattern.to_owned(), name.to_owned()) };
    glob(p.as_bytes(), n.as_bytes())
}

#[derive(Debug, Clone, Default)]
pub struct AllowList {
    pub do_dbs: Vec<String>,
    pub do_tables: Vec<(String, String)>,
    pub ignore_dbs: Vec<String>,
    pub ignore_tables: Vec<(String, String)>,
}

impl AllowList {
    fn table_in(&self, list: &[(String, String)], schema: &str, table: &str, ci: bool) -> bool {
        let mixing: Vec<&(String, String)> =
            list.iter().filter(|(s, t)| s.starts_with('~') && !t.starts_with('~')).collect();
        list.iter().any(|(s, t)| {
            if s.starts_with('~') && !t.starts_with('~') {
                matches(s, schema, ci) && mixing.iter().any(|(_, t2)| matches(t2, table, ci))
            } else {
                matches(s, schema, ci) && matches(t, table, ci)
            }
        })
    }

    /// Rule 4. `table` empty: a schema-level event.
    pub fn allows(&self, schema: &str, table: &str, ci: bool) -> bool {
        let schema_ok = if !self.do_dbs.is_empty() {
            self.do_dbs.iter().any(|d| matches(d, schema, ci))
        } else {
            !self.ignore_dbs.iter().any(|d| matches(d, schema, ci))
        };
        if !schema_ok {
            return false;
        }
        if table.is_empty() {
            return true;
        }
        if !self.do_tables.is_empty() && self.table_in(&self.do_tables, schema, table, ci) {
            return true;
        }
        if !self.ignore_tables.is_empty() && self.table_in(&self.ignore_tables, schema, table, ci) {
            return false;
        }
        self.do_tables.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct FilterRule {
    pub schema: String,
    pub table: String,
    pub events: Vec<String>,
    pub sql: Vec<String>,
}

impl FilterRule {
    fn applies(&self, schema: &str, table: &str, ci: bool) -> bool {
        filter_matches(&self.schema, schema, ci) && (self.table.is_empty() || filter_matches(&self.table, table, ci))
    }

    fn lists(&self, event: &str) -> bool {
        let dml = matches!(event, "insert" | "update" | "delete");
        self.events
            .iter()
            .map(|e| e.to_lowercase())
            .any(|e| e == "all" || e == event || (dml && e == "all dml") || (!dml && e == "all ddl"))
    }
}

/// Rule 6 for `Ignore` rules: is `event` (with statement `sql`, empty for row events) on `schema`.`table` ignored?
pub fn ignored(rules: &[FilterRule], schema: &str, table: &str, event: &str, sql: &str, ci: bool) -> bool {
    let mut kept: Vec<&FilterRule> = Vec::new();
    for r in rules {
        let key = |x: &FilterRule| {
            if ci { (x.schema.to_lowercase(), x.table.to_lowercase()) } else { (x.schema.clone(), x.table.clone()) }
        };
        if !kept.iter().any(|k| key(k) == key(r)) {
            kept.push(r);
        }
    }
    kept.iter().filter(|r| r.applies(schema, table, ci)).any(|r| {
        r.lists(event)
            || (!sql.is_empty()
                && !r.sql.is_empty()
                && compiled(&format!("(?i){}", r.sql.join("|"))).is_some_and(|re| re.is_match(sql)))
    })
}

/// A route's target schema and table.
pub type Target = (Option<String>, Option<String>);

#[derive(Debug, Clone)]
pub struct Route {
    pub schema: String,
    pub table: String,
    pub target: Target,
}

/// Rule 7: `Some(Ok(target))`, `Some(Err(()))` for two matching routes, `None` for no route.
pub fn route(routes: &[Route], schema: &str, table: &str, ci: bool) -> Option<Result<Target, ()>> {
    let hit = |r: &&Route| {
        let single = if r.table.is_empty() {
            AllowList { do_dbs: vec![r.schema.clone()], ..Default::default() }
        } else {
            AllowList {
                do_dbs: vec![r.schema.clone()],
                do_tables: vec![(r.schema.clone(), r.table.clone())],
                ..Default::default()
            }
        };
        single.allows(schema, table, ci)
    };
    let tables: Vec<&Route> = routes.iter().filter(|r| !r.table.is_empty()).filter(hit).collect();
    let schemas: Vec<&Route> = routes.iter().filter(|r| r.table.is_empty()).filter(hit).collect();
    let pick = |v: Vec<&Route>| match v.len() {
        0 => None,
        1 => Some(Ok(v[0].target.clone())),
        _ => Some(Err(())),
    };
    if table.is_empty() || tables.is_empty() { pick(schemas) } else { pick(tables) }
}

/// What one source of a task replicates.
#[derive(Debug, Clone, Default)]
pub struct Instance {
    pub allow: Option<AllowList>,
    pub filters: Vec<FilterRule>,
    pub routes: Vec<Route>,
}

impl Instance {
    pub fn replicates(&self, schema: &str, table: &str, ci: bool) -> bool {
        self.allow.as_ref().is_none_or(|a| a.allows(schema, table, ci))
    }
}

fn strs(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

/// The dmctl task's instance for `source`, as DM runs it (filters DM would drop are dropped here too: unknown
/// action, unknown event; `events` must be known to `known_event`).
/// `source_file`: the source's dmctl file, whose `filters` DM's worker adds after the task's.
pub fn dmctl_instance(
    task: &Value,
    source: &str,
    source_file: Option<&Value>,
    known_event: &dyn Fn(&str) -> bool,
) -> Instance {
    let inst = task["mysql-instances"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["source-id"].as_str() == Some(source)))
        .cloned()
        .unwrap_or(Value::Null);
    let lists = if task.get("block-allow-list").and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
        &task["block-allow-list"]
    } else {
        &task["black-white-list"]
    };
    let ba_name = inst["block-allow-list"].as_str().or(inst["black-white-list"].as_str()).filter(|s| !s.is_empty());
    let allow = ba_name.and_then(|n| lists.get(n)).filter(|b| b.is_object()).map(|b| {
        let tables = |k: &str| -> Vec<(String, String)> {
            b[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| Some((t["db-name"].as_str()?.to_owned(), t["tbl-name"].as_str()?.to_owned())))
                .collect()
        };
        AllowList {
            do_dbs: strs(b.get("do-dbs")),
            do_tables: tables("do-tables"),
            ignore_dbs: strs(b.get("ignore-dbs")),
            ignore_tables: tables("ignore-tables"),
        }
    });
    let mut filters = Vec::new();
    let task_filters = strs(inst.get("filter-rules")).into_iter().map(|n| task["filters"][&n].clone());
    let source_filters = source_file.and_then(|s| s["filters"].as_array()).into_iter().flatten().cloned();
    for f in task_filters.chain(source_filters) {
        let f = &f;
        let events = strs(f.get("events"));
        let valid = f["action"].as_str() == Some("Ignore")
            && f["schema-pattern"].as_str().is_some_and(|s| !s.is_empty())
            && events.iter().all(|e| e.is_empty() || known_event(&e.to_lowercase()));
        if valid {
            filters.push(FilterRule {
                schema: f["schema-pattern"].as_str().unwrap_or("").to_owned(),
                table: f["table-pattern"].as_str().unwrap_or("").to_owned(),
                events,
                sql: strs(f.get("sql-pattern")),
            });
        }
    }
    let mut routes = Vec::new();
    for name in strs(inst.get("route-rules")) {
        let r = &task["routes"][&name];
        let target = (
            r["target-schema"].as_str().filter(|s| !s.is_empty()).map(str::to_owned),
            r["target-table"].as_str().filter(|s| !s.is_empty()).map(str::to_owned),
        );
        if target.0.is_some() || target.1.is_some() {
            routes.push(Route {
                schema: r["schema-pattern"].as_str().unwrap_or("").to_owned(),
                table: r["table-pattern"].as_str().unwrap_or("").to_owned(),
                target,
            });
        }
    }
    Instance { allow, filters, routes }
}

/// The converted task's instance for `source` (rule 5).
pub fn openapi_instance(task: &dm_apply::config::TaskSpec, source: &str) -> Instance {
    let rules: Vec<_> = task.table_migrate_rule.iter().filter(|r| r.source.source_name == source).collect();
    let allow = (!rules.is_empty()).then(|| AllowList {
        do_dbs: rules.iter().filter(|r| r.source.table.is_empty()).map(|r| r.source.schema.clone()).collect(),
        do_tables: rules
            .iter()
            .filter(|r| !r.source.table.is_empty())
            .map(|r| (r.source.schema.clone(), r.source.table.clone()))
            .collect(),
        ..Default::default()
    });
    let mut filters = Vec::new();
    let mut routes = Vec::new();
    for r in &rules {
        for name in r.binlog_filter_rule.iter().flatten() {
            if let Some(def) = task.binlog_filter_rule.get(name) {
                filters.push(FilterRule {
                    schema: r.source.schema.clone(),
                    table: r.source.table.clone(),
                    events: def.ignore_event.clone().unwrap_or_default(),
                    sql: def.ignore_sql.clone().unwrap_or_default(),
                });
            }
        }
        if let Some(t) = &r.target
            && (t.schema.is_some() || t.table.is_some())
        {
            routes.push(Route {
                schema: r.source.schema.clone(),
                table: r.source.table.clone(),
                target: (t.schema.clone(), t.table.clone()),
            });
        }
    }
    Instance { allow, filters, routes }
}

/// The differences between what `dmctl` and `out` do for the given names: a non-empty result with `wider` entries
/// means the conversion replicates more.
#[derive(Debug, Default)]
pub struct Diff {
    pub wider: Vec<String>,
    pub narrower: Vec<String>,
    pub routed: Vec<String>,
}

pub const EVENTS: &[(&str, &str)] =
    &[("insert", ""), ("drop table", "DROP TABLE x"), ("truncate table", "TRUNCATE TABLE x")];

pub fn compare(dmctl: &Instance, out: &Instance, schemas: &[String], tables: &[String], ci: bool) -> Diff {
    let mut d = Diff::default();
    for s in schemas {
        for t in std::iter::once(&String::new()).chain(tables) {
            let (a, b) = (dmctl.replicates(s, t, ci), out.replicates(s, t, ci));
            if b && !a {
                d.wider.push(format!("`{s}`.`{t}` replicated"));
            }
            if a && !b {
                d.narrower.push(format!("`{s}`.`{t}` not replicated"));
            }
            if !(a && b) {
                continue;
            }
            let events: &[(&str, &str)] =
                if t.is_empty() { &[("create database", "CREATE DATABASE x")] } else { EVENTS };
            for (ev, sql) in events {
                let (ia, ib) = (ignored(&dmctl.filters, s, t, ev, sql, ci), ignored(&out.filters, s, t, ev, sql, ci));
                if ia && !ib {
                    d.wider.push(format!("`{ev}` on `{s}`.`{t}` replicated"));
                }
                if ib && !ia {
                    d.narrower.push(format!("`{ev}` on `{s}`.`{t}` ignored"));
                }
            }
            if let Some(Ok(target)) = route(&dmctl.routes, s, t, ci)
                && route(&out.routes, s, t, ci) != Some(Ok(target.clone()))
            {
                d.routed.push(format!(
                    "`{s}`.`{t}` routed to {target:?} by dmctl, {:?} converted",
                    route(&out.routes, s, t, ci)
                ));
            }
            if route(&dmctl.routes, s, t, ci).is_none() && route(&out.routes, s, t, ci).is_some() {
                d.routed.push(format!("`{s}`.`{t}` not routed by dmctl, routed converted"));
            }
        }
    }
    d
}
