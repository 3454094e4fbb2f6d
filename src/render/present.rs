//! How a plan reads in the configuration's terms. The comparable form is built for comparing (binlog filters per
//! source and by content, table rules keyed by lower-cased patterns, server defaults filled in); a reviewer thinks
//! in the YAML's terms. [`annotate`] fills in `ResourceChange::display` (the attribute lines of text and markdown
//! plans) and rewrites the `changed: ...` reason in those terms:
//!
//! - binlog filters appear once, under the rule names of the YAML (`binlog_filter_rule.no-drops.ignore_event`), not
//!   once per source under the names DM generates;
//! - a table rule is named as the YAML writes it (`mysql-01 orders.order*`), and a rule whose pattern changed is
//!   one `~` line from the old pattern to the new one;
//! - a created (or deleted) resource shows what the configuration sets, not the values DM fills in by default
//!   (counted in one note instead).
//!
//! Pure (no I/O). `attributes`, `before`, `after` and everything apply reads stay as the planner made them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::{Desired, TaskSpec};
use crate::dm::ServerVersion;
use crate::dm::types::{Source, TableRuleSource, Task};
use crate::normalize::{self, Side};
use crate::plan::{AttributeChange, ConfigAction, Display, Kind, Plan, ResourceChange};

const TABLE_RULES: &str = "table_migrate_rule";
const FILTERS: &str = "binlog_filter_rule";

/// Fill in the presentation of every change of `plan` (see the module docs).
pub fn annotate(plan: &mut Plan, desired: &Desired) {
    let version = ServerVersion::parse(&plan.cluster.server_version);
    for c in &mut plan.changes {
        let spec = match c.address.kind {
            Kind::Task => desired.tasks.get(&c.address.name).map(|(t, _)| t),
            Kind::Source => None,
        };
        match c.action {
            ConfigAction::Create | ConfigAction::Delete => whole(c, desired, spec, &version),
            ConfigAction::Update | ConfigAction::Replace => {
                if let Some(spec) = spec {
                    diff(c, spec);
                }
            }
            ConfigAction::NoOp => {}
        }
    }
}

/// The comparable form of a resource that sets nothing: its leaves are the values DM (or dm-apply, for the few it
/// always sends) fills in when the configuration leaves them out.
fn defaults(c: &ResourceChange, desired: &Desired, version: &ServerVersion) -> Value {
    match c.address.kind {
        Kind::Source => {
            let spec = desired.sources.get(&c.address.name).map(|(s, _)| s);
            let mut v = normalize::source_comparable(&Source::default(), spec);
            if let Some(m) = v.as_object_mut() {
                // A source is enabled unless the configuration says otherwise.
                m.insert("enable".into(), json!(true));
            }
            v
        }
        Kind::Task => {
            let spec = desired.tasks.get(&c.address.name).map(|(t, _)| t);
            // `enhance_online_schema_change` is sent as `true` when not set (see `normalize::task_to_wire`).
            let bare = Task { enhance_online_schema_change: true, ..Task::default() };
            normalize::task_comparable(&bare, Side::Desired, spec, version)
        }
    }
}

/// Create / delete: every value but DM's defaults; table rules and binlog filters as the configuration writes them.
fn whole(c: &mut ResourceChange, desired: &Desired, spec: Option<&TaskSpec>, version: &ServerVersion) {
    let create = c.action == ConfigAction::Create;
    let Some(value) = (if create { c.after.as_ref() } else { c.before.as_ref() }) else { return };
    let dflt: BTreeMap<String, Value> = normalize::flatten(&defaults(c, desired, version)).into_iter().collect();
    let line = |path: String, v: Value| AttributeChange {
        path,
        before: (!create).then(|| v.clone()),
        after: create.then_some(v),
        sensitive: false,
        forces_replacement: false,
    };
    let mut attrs = vec![];
    let mut hidden = 0;
    for (path, leaf) in normalize::flatten(value) {
        // Absent optional blocks and empty top-level sets say nothing to a reader.
        let top_level_empty = leaf.as_object().is_some_and(|m| m.is_empty()) && !path.contains(['.', '[']);
        if leaf.is_null() || top_level_empty {
            continue;
        }
        if c.address.kind == Kind::Task
            && (normalize::path_matches(&path, TABLE_RULES) || normalize::path_matches(&path, FILTERS))
        {
            continue;
        }
        if dflt.get(&path) == Some(&leaf) {
            hidden += 1;
            continue;
        }
        attrs.push(line(path, leaf));
    }
    if c.address.kind == Kind::Task {
        let empty = Map::new();
        let rules = value.get(TABLE_RULES).and_then(Value::as_object).unwrap_or(&empty);
        for (key, rule) in rules {
            attrs.push(line(TABLE_RULES.into(), json!(rule_label(key, rule, spec))));
        }
        let filters = value.get(FILTERS).and_then(Value::as_object).unwrap_or(&empty);
        match spec.and_then(|s| filter_names(s, filters)) {
            Some(named) => {
                for (name, content) in named {
                    for (field, v) in content.as_object().into_iter().flatten() {
                        attrs.push(line(format!("{FILTERS}.{}.{field}", plain_key(&name)), v.clone()));
                    }
                }
            }
            // Not declared (a pruned task): DM's per-source view is all there is.
            None => {
                for (path, leaf) in normalize::flatten(&json!({ FILTERS: filters })) {
                    if !leaf.is_null() && leaf.as_object().is_none_or(|m| !m.is_empty()) {
                        attrs.push(line(path, leaf));
                    }
                }
            }
        }
    }
    c.display = Some(Display { attributes: attrs, defaults_hidden: hidden });
}

type Map = serde_json::Map<String, Value>;

/// `a.b` for plain names, `a["x y"]` otherwise (as `normalize::flatten` writes paths).
fn plain_key(name: &str) -> String {
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain { name.to_string() } else { format!("[{}]", json!(name)) }
}

fn filter_path(name: &str) -> String {
    let k = plain_key(name);
    if k.starts_with('[') { format!("{FILTERS}{k}") } else { format!("{FILTERS}.{k}") }
}

/// The declared filters in use, by name, with their comparable content, when the per-source lists of the
/// comparable form are exactly the declared ones (they are on the desired side).
fn filter_names(spec: &TaskSpec, per_source: &Map) -> Option<Vec<(String, Value)>> {
    let mut out: Vec<(String, Value)> = vec![];
    for (source, list) in per_source {
        let names = declared_filters(spec, source);
        let list = list.as_array()?;
        if names.len() != list.len() {
            return None;
        }
        for (n, v) in names.into_iter().zip(list) {
            if !out.iter().any(|(m, _)| *m == n) {
                out.push((n, v.clone()));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

/// The filter names a source's list is made of, in order: over the source's table rules, the defined filters each
/// names (how `normalize` builds the desired side).
fn declared_filters(spec: &TaskSpec, source: &str) -> Vec<String> {
    spec.table_migrate_rule
        .iter()
        .filter(|r| r.source.source_name == source)
        .flat_map(|r| r.binlog_filter_rule.iter().flatten())
        .filter(|n| spec.binlog_filter_rule.contains_key(*n))
        .cloned()
        .collect()
}

/// `mysql-01 orders.order*`, with ` (to dw.orders)` for a route: the declared rule's spelling when there is one,
/// else the (lower-cased) key.
fn rule_label(key: &str, rule: &Value, spec: Option<&TaskSpec>) -> String {
    let (source, pattern) = rule_pattern(key, spec);
    format!("{source} {pattern}{}", route(rule))
}

/// `(source, pattern)` of a rule: `("mysql-01", "orders.order*")`, or `("mysql-01", "orders")` for a whole schema.
fn rule_pattern(key: &str, spec: Option<&TaskSpec>) -> (String, String) {
    let declared = spec.and_then(|s| {
        s.table_migrate_rule.iter().find(|r| {
            let r = TableRuleSource {
                source_name: r.source.source_name.clone(),
                schema: r.source.schema.clone(),
                table: r.source.table.clone(),
            };
            // The key is folded on a case-insensitive upstream only.
            normalize::rule_key(&r, false) == key || normalize::rule_key(&r, true) == key
        })
    });
    match declared {
        Some(r) if r.source.table.is_empty() => (r.source.source_name.clone(), r.source.schema.clone()),
        Some(r) => (r.source.source_name.clone(), format!("{}.{}", r.source.schema, r.source.table)),
        None => match key.split_once(':') {
            Some((source, pattern)) => (source.to_string(), pattern.to_string()),
            None => (String::new(), key.to_string()),
        },
    }
}

/// ` (to dw.orders)` for a rule with a route, else nothing.
fn route(rule: &Value) -> String {
    let Some(t) = rule.get("target").and_then(Value::as_object) else { return String::new() };
    let schema = t.get("schema").and_then(Value::as_str).unwrap_or_default();
    match t.get("table").and_then(Value::as_str) {
        Some(table) => format!(" (to {schema}.{table})"),
        None => format!(" (to {schema})"),
    }
}

/// The flatten path prefix of one table rule.
fn rule_path(key: &str) -> String {
    format!("{TABLE_RULES}{}", {
        let k = plain_key(key);
        if k.starts_with('[') { k } else { format!(".{k}") }
    })
}

/// Update / replace: table rules and filters in the configuration's terms; the other attributes as they are.
fn diff(c: &mut ResourceChange, spec: &TaskSpec) {
    let touches = |prefix: &str| c.attributes.iter().any(|a| normalize::path_matches(&a.path, prefix));
    let (tables, filters) = (touches(TABLE_RULES), touches(FILTERS));
    if !tables && !filters {
        return;
    }
    let (Some(before), Some(after)) = (c.before.as_ref(), c.after.as_ref()) else { return };
    let empty = Map::new();
    let obj = |v: &Value, k: &str| v.get(k).and_then(Value::as_object).cloned().unwrap_or_else(|| empty.clone());
    let forced =
        |prefix: &str| c.attributes.iter().any(|a| a.forces_replacement && normalize::path_matches(&a.path, prefix));
    let table = if tables {
        Some(table_lines(&c.attributes, &obj(before, TABLE_RULES), &obj(after, TABLE_RULES), spec, forced(TABLE_RULES)))
    } else {
        None
    };
    // `None` also when the lists do not line up with the declaration: the comparable form is shown rather than a
    // guess.
    // Only the sources whose filters are in the diff (`lifecycle.ignore_changes` may leave some out).
    let diffed = |m: Map| -> Map {
        m.into_iter()
            .filter(|(s, _)| c.attributes.iter().any(|a| normalize::path_matches(&a.path, &filter_path(s))))
            .collect()
    };
    let filter = if filters {
        filter_lines(&diffed(obj(before, FILTERS)), &diffed(obj(after, FILTERS)), spec, forced(FILTERS))
    } else {
        None
    };
    let mut attrs = vec![];
    let (mut table_done, mut filter_done) = (false, false);
    for a in &c.attributes {
        if normalize::path_matches(&a.path, TABLE_RULES)
            && let Some(t) = &table
        {
            if !table_done {
                attrs.extend(t.lines.iter().cloned());
                table_done = true;
            }
            continue;
        }
        if normalize::path_matches(&a.path, FILTERS)
            && let Some(f) = &filter
        {
            if !filter_done {
                attrs.extend(f.lines.iter().cloned());
                filter_done = true;
            }
            continue;
        }
        attrs.push(a.clone());
    }
    // The `changed: ...` reason lists the attribute paths: name the rules instead.
    let paths: Vec<&str> = c.attributes.iter().map(|a| a.path.as_str()).collect();
    let plain_reason = format!("changed: {}", paths.join(", "));
    if let Some(r) = c.reasons.iter_mut().find(|r| **r == plain_reason) {
        let mut names: Vec<String> = vec![];
        let (mut table_named, mut filter_named) = (false, false);
        for a in &c.attributes {
            if normalize::path_matches(&a.path, TABLE_RULES)
                && let Some(t) = &table
            {
                if !table_named {
                    names.extend(t.names.iter().cloned());
                    table_named = true;
                }
            } else if normalize::path_matches(&a.path, FILTERS)
                && let Some(f) = &filter
            {
                if !filter_named {
                    names.extend(f.names.iter().cloned());
                    filter_named = true;
                }
            } else {
                names.push(a.path.clone());
            }
        }
        *r = format!("changed: {}", names.join(", "));
    }
    c.display = Some(Display { attributes: attrs, defaults_hidden: 0 });
}

/// Attribute lines and the names for the reason.
struct Presented {
    lines: Vec<AttributeChange>,
    names: Vec<String>,
}

fn change_line(path: &str, before: Option<Value>, after: Option<Value>, forced: bool) -> AttributeChange {
    AttributeChange { path: path.to_string(), before, after, sensitive: false, forces_replacement: forced }
}

/// Table rules that differ, as the configuration names them. A rule removed and one added on the same source with
/// the same route are shown as one rule whose pattern changed.
fn table_lines(attrs: &[AttributeChange], before: &Map, after: &Map, spec: &TaskSpec, forced: bool) -> Presented {
    let changed = |k: &str| attrs.iter().any(|a| normalize::path_matches(&a.path, &rule_path(k)));
    let source_of = |k: &str| k.split_once(':').map(|(s, _)| s.to_string()).unwrap_or_default();
    let removed: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k) && changed(k)).collect();
    let mut added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k) && changed(k)).collect();
    let modified: Vec<&String> = after.keys().filter(|k| before.contains_key(*k) && changed(k)).collect();
    let mut out = Presented { lines: vec![], names: vec![] };
    for k in &modified {
        let (old, new) = (rule_label(k, &before[*k], Some(spec)), rule_label(k, &after[*k], Some(spec)));
        out.lines.push(change_line(TABLE_RULES, Some(json!(old)), Some(json!(new)), forced));
        out.names.push(format!("table rule {new} (route changed)"));
    }
    for k in removed {
        let old = rule_label(k, &before[k], None);
        let pair = added
            .iter()
            .position(|a| source_of(a) == source_of(k) && after[*a].get("target") == before[k].get("target"));
        match pair {
            Some(i) => {
                let a = added.remove(i);
                let new = rule_label(a, &after[a], Some(spec));
                let (source, old_pattern) = rule_pattern(k, None);
                let (_, new_pattern) = rule_pattern(a, Some(spec));
                out.names.push(format!("table rule {source} {old_pattern} (now {new_pattern})"));
                out.lines.push(change_line(TABLE_RULES, Some(json!(old)), Some(json!(new)), forced));
            }
            None => {
                out.names.push(format!("table rule {old} (removed)"));
                out.lines.push(change_line(TABLE_RULES, Some(json!(old)), None, forced));
            }
        }
    }
    for k in added {
        let new = rule_label(k, &after[k], Some(spec));
        out.names.push(format!("table rule {new} (added)"));
        out.lines.push(change_line(TABLE_RULES, None, Some(json!(new)), forced));
    }
    out
}

/// What happened to one declared filter on one source.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Same,
    /// Replaces DM's filter at the same place (index into the before list).
    Changed(usize),
    Added,
}

/// One use of a declared filter: the source, what happened there, and the content it replaced (when changed).
type Use = (String, Fate, Option<Value>);

/// Binlog filters under their declared names, once each. DM lists a source's filters by content and in order
/// (their names are its own), so each source's live list is aligned with the declared one: a declared filter whose
/// place held another content changed, one with no counterpart was added, a live one with no counterpart is removed.
fn filter_lines(before: &Map, after: &Map, spec: &TaskSpec, forced: bool) -> Option<Presented> {
    // name → (content, its uses)
    let mut by_name: BTreeMap<String, (Value, Vec<Use>)> = BTreeMap::new();
    // removed content → sources
    let mut removed: Vec<(Value, Vec<String>)> = vec![];
    let sources: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for s in sources {
        let names = declared_filters(spec, s);
        let new: Vec<Value> = after.get(s).and_then(Value::as_array).cloned().unwrap_or_default();
        let old: Vec<Value> = before.get(s).and_then(Value::as_array).cloned().unwrap_or_default();
        if names.len() != new.len() {
            return None;
        }
        let key = |v: &Value| v.to_string();
        let ops = similar::capture_diff_slices(
            similar::Algorithm::Myers,
            &old.iter().map(key).collect::<Vec<_>>(),
            &new.iter().map(key).collect::<Vec<_>>(),
        );
        let mut fate = vec![Fate::Added; new.len()];
        let mut gone = vec![true; old.len()];
        for op in ops {
            match op {
                similar::DiffOp::Equal { old_index, new_index, len } => {
                    for i in 0..len {
                        fate[new_index + i] = Fate::Same;
                        gone[old_index + i] = false;
                    }
                }
                similar::DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                    for i in 0..old_len.min(new_len) {
                        fate[new_index + i] = Fate::Changed(old_index + i);
                        gone[old_index + i] = false;
                    }
                }
                similar::DiffOp::Delete { .. } | similar::DiffOp::Insert { .. } => {}
            }
        }
        for (i, name) in names.iter().enumerate() {
            let e = by_name.entry(name.clone()).or_insert_with(|| (new[i].clone(), vec![]));
            let was = match fate[i] {
                Fate::Changed(j) => Some(old[j].clone()),
                _ => None,
            };
            e.1.push((s.clone(), fate[i], was));
        }
        for (j, g) in gone.iter().enumerate() {
            if *g {
                match removed.iter_mut().find(|(v, _)| *v == old[j]) {
                    Some((_, on)) => on.push(s.clone()),
                    None => removed.push((old[j].clone(), vec![s.clone()])),
                }
            }
        }
    }
    let mut out = Presented { lines: vec![], names: vec![] };
    let field = |v: &Value, f: &str| v.get(f).cloned();
    for (name, (content, uses)) in &by_name {
        if uses.iter().all(|(_, f, _)| *f == Fate::Same) {
            continue;
        }
        let path = filter_path(name);
        out.names.push(format!("binlog filter rule {name}"));
        if uses.iter().all(|(_, f, _)| *f == Fate::Added) {
            for (f, v) in content.as_object().into_iter().flatten() {
                out.lines.push(change_line(&format!("{path}.{f}"), None, Some(v.clone()), forced));
            }
            continue;
        }
        // Changed: one set of lines per distinct former content (usually one: the same rule on every source).
        let mut formers: Vec<(Value, Vec<&str>)> = vec![];
        for (s, _, was) in uses {
            if let Some(w) = was {
                match formers.iter_mut().find(|(v, _)| v == w) {
                    Some((_, on)) => on.push(s),
                    None => formers.push((w.clone(), vec![s])),
                }
            }
        }
        let several = formers.len() > 1;
        for (was, on) in &formers {
            let suffix = if several { format!(" (on {})", on.join(", ")) } else { String::new() };
            for f in ["ignore_event", "ignore_sql"] {
                let (b, a) = (field(was, f), field(content, f));
                if b != a {
                    out.lines.push(change_line(&format!("{path}.{f}{suffix}"), b, a, forced));
                }
            }
        }
        let newly: Vec<&str> = uses.iter().filter(|(_, f, _)| *f == Fate::Added).map(|(s, _, _)| s.as_str()).collect();
        if !newly.is_empty() {
            out.lines.push(change_line(
                &format!("{path} (now on {})", newly.join(", ")),
                None,
                Some(content.clone()),
                forced,
            ));
        }
    }
    for (content, on) in removed {
        let label = format!("{FILTERS} (removed from {})", on.join(", "));
        out.names.push(format!("a binlog filter removed from {}", on.join(", ")));
        out.lines.push(change_line(&label, Some(content), None, forced));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{desired_from_yaml, live_after_apply};
    use crate::plan::{PlanOptions, make_plan};

    const OLD: &str = r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: pw}
  - {source_name: s2, host: h2, port: 3306, user: u, password: pw}
tasks:
  - name: t
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    binlog_filter_rule:
      no-drops: {ignore_event: [drop table]}
    table_migrate_rule:
      - source: {source_name: s1, schema: Orders, table: "*"}
        target: {schema: dw}
        binlog_filter_rule: [no-drops]
      - source: {source_name: s2, schema: Orders, table: "*"}
        target: {schema: dw}
        binlog_filter_rule: [no-drops]
    source_config:
      source_conf: [{source_name: s1, binlog_name: b.1, binlog_pos: 4}, {source_name: s2, binlog_name: b.1, binlog_pos: 4}]
"#;

    fn plan(old: &str, new: &str) -> Plan {
        let v = ServerVersion::parse("v8.5.3");
        let d_old = desired_from_yaml("dm.yaml", old).unwrap();
        let live = live_after_apply(&d_old, &v, 1);
        let d_new = desired_from_yaml("dm.yaml", new).unwrap();
        let key = Some(crate::plan::testing::test_key());
        make_plan(&d_new, &live, &PlanOptions { state_key: key, ..Default::default() }).unwrap()
    }

    #[test]
    fn a_filter_used_on_two_sources_is_one_line_under_its_name() {
        let new = OLD.replace("ignore_event: [drop table]", "ignore_event: [drop table, truncate table]");
        let p = plan(OLD, &new);
        let c = p.change(&crate::plan::Address::task("t")).unwrap();
        let d = c.display.as_ref().unwrap();
        let paths: Vec<&str> = d.attributes.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["binlog_filter_rule.no-drops.ignore_event"], "{d:?}");
        assert_eq!(d.attributes[0].after, Some(json!(["drop table", "truncate table"])));
        assert_eq!(d.attributes[0].before, Some(json!(["drop table"])));
        assert!(c.reasons.contains(&"changed: binlog filter rule no-drops".to_string()), "{:?}", c.reasons);
        // The comparable form is untouched.
        assert!(c.attributes.iter().all(|a| a.path.starts_with("binlog_filter_rule.s")));
    }

    #[test]
    fn a_table_pattern_change_names_the_rule_as_written() {
        let new = OLD.replacen(r#"schema: Orders, table: "*""#, r#"schema: Orders, table: "Order*""#, 1);
        let p = plan(OLD, &new);
        let c = p.change(&crate::plan::Address::task("t")).unwrap();
        let d = c.display.as_ref().unwrap();
        let table: Vec<&AttributeChange> = d.attributes.iter().filter(|a| a.path == TABLE_RULES).collect();
        assert_eq!(table.len(), 1, "{d:?}");
        // The live rule as DM stores it on a case-sensitive upstream (no folding).
        assert_eq!(table[0].before, Some(json!("s1 Orders.* (to dw)")));
        assert_eq!(table[0].after, Some(json!("s1 Orders.Order* (to dw)")));
        assert!(c.reasons.iter().any(|r| r.contains("table rule s1 Orders.* (now Orders.Order*)")), "{:?}", c.reasons);
    }

    #[test]
    fn a_created_task_shows_what_the_configuration_sets() {
        let p = plan("sources: []\n", OLD);
        let c = p.change(&crate::plan::Address::task("t")).unwrap();
        let d = c.display.as_ref().unwrap();
        let paths: Vec<&str> = d.attributes.iter().map(|a| a.path.as_str()).collect();
        assert!(!paths.iter().any(|p| p.contains("export_threads") || p.contains("meta_schema")), "{paths:?}");
        assert!(paths.contains(&"binlog_filter_rule.no-drops.ignore_event"), "{paths:?}");
        assert_eq!(paths.iter().filter(|p| **p == TABLE_RULES).count(), 2, "{paths:?}");
        assert!(d.defaults_hidden >= 6, "{d:?}");
        let s = p.change(&crate::plan::Address::source("s1")).unwrap().display.as_ref().unwrap();
        let paths: Vec<&str> = s.attributes.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["host", "port", "user", "password"], "{s:?}");
    }
}
