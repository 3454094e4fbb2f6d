//! DM's table matching, as one subtask (one source of a task) applies it: the block-allow list and the routes that
//! `OpenAPITaskToSubTaskConfigs` builds from the task's `table_migrate_rule` (docs/dm-behaviour.md R5.10, R13.7).
//!
//! Written from DM's behaviour, independently of the simulator's implementation (`src/sim/project.rs`), so that the
//! tests comparing the two can catch a mistake in either.
//!
//! - **Allow list.** A source without rules replicates every table. Otherwise its rules become `do_dbs` (rules with
//!   `table: ""`) and `do_tables`; a table passes when its schema matches a `do_dbs` entry (when there are any)
//!   **and** the table matches a `do_tables` entry (when there are any). With both kinds of rules on one source, a
//!   table must therefore match both.
//! - **Patterns.** `~text` is a regular expression (unanchored); anything else a wildcard where `?` is one byte,
//!   `[a-z]` / `[!a-z]` one byte of a class (a `[` without `]` is literal) and `*` (last character only) any rest.
//!   DM walks names by character but compares single bytes, so a wildcard never matches a non-ASCII character
//!   with a literal; this is reproduced.
//! - **Quirk.** For `do_tables` entries whose schema is a regular expression and whose table is a wildcard, DM
//!   checks the table against the wildcards of *all* such entries once the schema matches one of their regular
//!   expressions.
//! - **Case.** On a case-insensitive upstream DM lowercases the pattern texts (regular expressions included) and
//!   the names, and adds `(?i)` to regular expressions.
//! - **System schemas** (`mysql`, `sys`, `information_schema`, `performance_schema`, `metrics_schema`,
//!   `inspection_schema`, `dm_heartbeat`, in any case) are never replicated, whatever the rules say.
//! - **Routes.** Rules with a non-empty `target.schema`. A table takes the table-level route it matches, else the
//!   schema-level one; two matches on the level used is an error in DM's router, and the syncer then keeps the
//!   table's own name. An empty target table keeps the table's name.

use std::fmt;

use regex::Regex;

use crate::dm::types::Task;

/// How the upstream compares names (`lower_case_table_names`: 0 is case-sensitive, 1 and 2 are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Sensitive,
    Insensitive,
}

/// Schemas DM never replicates (compared without case).
pub fn is_system_schema(schema: &str) -> bool {
    const SYSTEM: [&str; 7] = [
        "dm_heartbeat",
        "sys",
        "mysql",
        "information_schema",
        "inspection_schema",
        "performance_schema",
        "metrics_schema",
    ];
    SYSTEM.iter().any(|s| s.eq_ignore_ascii_case(schema))
}

/// One byte position of a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Byte(u8),
    /// `?`
    Any,
    /// `[...]`: inclusive byte ranges, negated with `!`.
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
}

impl Atom {
    fn accepts(&self, b: u8) -> bool {
        match self {
            Atom::Byte(x) => *x == b,
            Atom::Any => true,
            Atom::Class { negated, ranges } => ranges.iter().any(|(lo, hi)| *lo <= b && b <= *hi) != *negated,
        }
    }
}

/// A wildcard: fixed positions, then optionally `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob {
    atoms: Vec<Atom>,
    star: bool,
}

/// `[...]` at the start of `p` as DM reads it; `None` without a closing `]` (then `[` is a literal).
fn class(p: &[u8]) -> Option<(Atom, usize)> {
    let close = p.iter().position(|&b| b == b']')?;
    let (negated, start) = if p.get(1) == Some(&b'!') { (true, 2) } else { (false, 1) };
    let mut ranges = vec![];
    let mut i = start;
    while i < close {
        if p.get(i + 1) == Some(&b'-') && i + 2 < close {
            ranges.push((p[i], p[i + 2]));
            i += 3;
        } else {
            ranges.push((p[i], p[i]));
            i += 1;
        }
    }
    // DM reads `[!]` as the character `!`.
    if negated && ranges.is_empty() {
        return Some((Atom::Class { negated: false, ranges: vec![(b'!', b'!')] }, close + 1));
    }
    Some((Atom::Class { negated, ranges }, close + 1))
}

impl Glob {
    fn parse(p: &str) -> Result<Glob, String> {
        let bytes = p.as_bytes();
        let mut atoms = vec![];
        let mut star = false;
        let mut i = 0;
        while i < bytes.len() {
            if star {
                return Err(format!("`{p}`: `*` must be the last character of a wildcard"));
            }
            match bytes[i] {
                b'*' => star = true,
                b'?' => atoms.push(Atom::Any),
                b'[' => match class(&bytes[i..]) {
                    Some((atom, len)) => {
                        atoms.push(atom);
                        i += len - 1;
                    }
                    None => atoms.push(Atom::Byte(b'[')),
                },
                b => atoms.push(Atom::Byte(b)),
            }
            i += 1;
        }
        Ok(Glob { atoms, star })
    }

    fn matches(&self, name: &str) -> bool {
        walk(&self.atoms, self.star, name.as_bytes())
    }
}

/// Width of the character DM's walk steps over at `s[i]`: a valid UTF-8 sequence, else one byte.
fn step(s: &[u8], i: usize) -> usize {
    let w = match s[i] {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    };
    if w > 1 && s.get(i..i + w).is_some_and(|seq| std::str::from_utf8(seq).is_ok()) { w } else { 1 }
}

/// DM's wildcard walk over one pattern: at each character start it tries `*` (when every fixed position is used),
/// then `?` and classes (one byte, the rest matched from the next byte), then a literal byte; the walk stops at
/// the first literal that differs.
fn walk(atoms: &[Atom], star: bool, s: &[u8]) -> bool {
    let mut k = 0;
    let mut stepped = false;
    let mut i = 0;
    while i < s.len() {
        if star && k == atoms.len() {
            return true;
        }
        match atoms.get(k) {
            None => return false,
            Some(Atom::Byte(b)) => {
                if s[i] != *b {
                    return false;
                }
                k += 1;
                stepped = true;
            }
            Some(a) => {
                if a.accepts(s[i]) {
                    let last = k + 1 == atoms.len() && !star;
                    if (i + 1 == s.len() && last) || walk(&atoms[k + 1..], star, &s[i + 1..]) {
                        return true;
                    }
                }
                return false;
            }
        }
        i += step(s, i);
    }
    (stepped && k == atoms.len() && !star) || (star && k == atoms.len())
}

/// A schema or table pattern as DM stores and matches it.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// As stored by DM (lowercased on a case-insensitive upstream).
    pub text: String,
    kind: PatternKind,
}

#[derive(Debug, Clone)]
enum PatternKind {
    Glob(Glob),
    Regex(Regex),
}

impl Pattern {
    /// `Err` when DM refuses the pattern (or, for a regular expression, when it cannot be evaluated here).
    pub fn new(text: &str, case: Case) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("an empty pattern".to_string());
        }
        let text = match case {
            Case::Insensitive => text.to_lowercase(),
            Case::Sensitive => text.to_string(),
        };
        let kind = match text.strip_prefix('~') {
            Some(re) => PatternKind::Regex(compile_go_regex(re, case)?),
            None => PatternKind::Glob(Glob::parse(&text)?),
        };
        Ok(Pattern { text, kind })
    }

    pub fn is_regex(&self) -> bool {
        matches!(self.kind, PatternKind::Regex(_))
    }

    /// Match a name already in the form DM compares (lowercased on a case-insensitive upstream).
    fn matches(&self, name: &str) -> bool {
        match &self.kind {
            PatternKind::Glob(g) => g.matches(name),
            PatternKind::Regex(r) => r.is_match(name),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A Go (RE2) regular expression compiled with Rust's `regex`, which reads the same syntax. Go's Perl classes
/// (`\d`, `\w`, `\s` and their negations) and `\b` are ASCII-only; Rust's are Unicode, so they are rewritten.
pub fn compile_go_regex(re: &str, case: Case) -> Result<Regex, String> {
    let mut out = String::with_capacity(re.len() + 8);
    if case == Case::Insensitive {
        out.push_str("(?i)");
    }
    let mut chars = re.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let ascii = match n {
                    'd' => Some(("0-9", false)),
                    'D' => Some(("0-9", true)),
                    'w' => Some(("0-9A-Za-z_", false)),
                    'W' => Some(("0-9A-Za-z_", true)),
                    's' => Some(("\\t\\n\\f\\r ", false)),
                    'S' => Some(("\\t\\n\\f\\r ", true)),
                    _ => None,
                };
                match (ascii, n) {
                    (Some((set, negated)), _) => {
                        let neg = if negated { "^" } else { "" };
                        // Nested classes are valid inside a class in Rust's syntax.
                        out.push_str(&format!("[{neg}{set}]"));
                    }
                    (None, 'b' | 'B') if !in_class => {
                        out.push_str("(?-u:\\");
                        out.push(n);
                        out.push(')');
                    }
                    (None, _) => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // `]` right after `[` or `[^` is a literal in both syntaxes.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class `[:alpha:]` inside a class: copy it whole.
                out.push('[');
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            '[' => out.push_str("\\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    Regex::new(&out).map_err(|e| format!("`~{re}` cannot be evaluated as a regular expression: {e}"))
}

/// One `do_tables` entry.
#[derive(Debug, Clone)]
struct TableEntry {
    schema: Pattern,
    table: Pattern,
}

/// The allow list of one subtask.
#[derive(Debug, Clone, Default)]
struct AllowList {
    do_dbs: Vec<Pattern>,
    do_tables: Vec<TableEntry>,
}

impl AllowList {
    fn schema_passes(&self, schema: &str) -> bool {
        self.do_dbs.is_empty() || self.do_dbs.iter().any(|p| p.matches(schema))
    }

    fn table_passes(&self, schema: &str, table: &str) -> bool {
        if self.do_tables.is_empty() {
            return true;
        }
        let mixed = |e: &&TableEntry| e.schema.is_regex() && !e.table.is_regex();
        // The quirk: any regex-schema entry's schema, any such entry's table wildcard.
        if self.do_tables.iter().filter(mixed).any(|e| e.schema.matches(schema))
            && self.do_tables.iter().filter(mixed).any(|e| e.table.matches(table))
        {
            return true;
        }
        self.do_tables.iter().filter(|e| !mixed(e)).any(|e| e.schema.matches(schema) && e.table.matches(table))
    }
}

/// A route rule.
#[derive(Debug, Clone)]
pub struct Route {
    pub schema: Pattern,
    /// `None`: a schema-level route.
    pub table: Option<Pattern>,
    pub target_schema: String,
    pub target_table: String,
}

/// Where a table goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub schema: String,
    pub table: String,
    /// Number of routes that matched on the level used, when more than one (DM's router refuses to choose and
    /// the syncer keeps the table's own name).
    pub ambiguous: Option<usize>,
}

/// One table migrate rule of the source, as written (for warnings).
#[derive(Debug, Clone)]
pub struct RuleView {
    /// `schema` or `schema.table`, as written in the task.
    pub label: String,
    pub schema: Option<Pattern>,
    pub table: Option<Pattern>,
    /// The text as written had characters DM lowercases (a case-insensitive upstream).
    pub has_upper: bool,
}

impl RuleView {
    /// Whether this rule's own patterns match `schema`.`table` (`table` empty: the schema).
    pub fn matches(&self, case: Case, schema: &str, table: &str) -> bool {
        let (s, t) = fold(case, schema, table);
        self.schema.as_ref().is_some_and(|p| p.matches(&s))
            && match &self.table {
                None => true,
                Some(p) => !t.is_empty() && p.matches(&t),
            }
    }
}

/// What one source of a task replicates and where to.
#[derive(Debug, Clone)]
pub struct SourceRules {
    pub case: Case,
    /// `None`: the source has no rule in the task and replicates everything.
    allow: Option<AllowList>,
    pub routes: Vec<Route>,
    pub rules: Vec<RuleView>,
    /// Patterns DM refuses (the task would not be accepted as written).
    pub invalid: Vec<String>,
}

fn fold(case: Case, schema: &str, table: &str) -> (String, String) {
    match case {
        Case::Insensitive => (schema.to_lowercase(), table.to_lowercase()),
        Case::Sensitive => (schema.to_string(), table.to_string()),
    }
}

/// Whether a text has characters DM would lowercase.
pub fn has_upper(s: &str) -> bool {
    s.chars().any(|c| c.is_uppercase())
}

impl SourceRules {
    /// The subtask of `source` for `task`: its rules (rules of other sources are not its).
    pub fn from_task(task: &Task, source: &str, case: Case) -> SourceRules {
        let mut invalid = vec![];
        let mut pat = |text: &str| match Pattern::new(text, case) {
            Ok(p) => Some(p),
            Err(e) => {
                invalid.push(e);
                None
            }
        };
        let mut allow = AllowList::default();
        let mut routes = vec![];
        let mut rules = vec![];
        let mut any = false;
        for r in task.table_migrate_rule.iter().filter(|r| r.source.source_name == source) {
            any = true;
            let (schema, table) = (&r.source.schema, &r.source.table);
            let sp = pat(schema);
            let tp = if table.is_empty() { None } else { pat(table) };
            match (&sp, &tp) {
                (Some(s), None) if table.is_empty() => allow.do_dbs.push(s.clone()),
                (Some(s), Some(t)) => allow.do_tables.push(TableEntry { schema: s.clone(), table: t.clone() }),
                _ => {}
            }
            if let Some(target) = &r.target
                && let Some(ts) = target.schema.as_deref().filter(|s| !s.is_empty())
                && let Some(s) = &sp
                && (table.is_empty() || tp.is_some())
            {
                routes.push(Route {
                    schema: s.clone(),
                    table: tp.clone(),
                    target_schema: ts.to_string(),
                    target_table: target.table.clone().unwrap_or_default(),
                });
            }
            let label = if table.is_empty() { schema.clone() } else { format!("{schema}.{table}") };
            rules.push(RuleView { label, schema: sp, table: tp, has_upper: has_upper(schema) || has_upper(table) });
        }
        SourceRules { case, allow: any.then_some(allow), routes, rules, invalid }
    }

    /// Whether DM replicates `schema`.`table`.
    pub fn allows(&self, schema: &str, table: &str) -> bool {
        if is_system_schema(schema) {
            return false;
        }
        let Some(allow) = &self.allow else { return true };
        let (s, t) = fold(self.case, schema, table);
        allow.schema_passes(&s) && allow.table_passes(&s, &t)
    }

    /// Whether a table of `schema` could be replicated or named by a rule (the schema's table list is needed).
    pub fn wants_schema(&self, schema: &str) -> bool {
        if is_system_schema(schema) {
            return false;
        }
        let (s, _) = fold(self.case, schema, "");
        self.allow.is_none() || self.rules.iter().any(|r| r.schema.as_ref().is_some_and(|p| p.matches(&s)))
    }

    /// Whether the source has rules (otherwise it replicates everything).
    pub fn has_rules(&self) -> bool {
        self.allow.is_some()
    }

    /// The target of `schema`.`table`.
    pub fn route(&self, schema: &str, table: &str) -> Routed {
        let (s, t) = fold(self.case, schema, table);
        let hits = |level_table: bool| -> Vec<&Route> {
            self.routes
                .iter()
                .filter(|r| r.table.is_some() == level_table)
                .filter(|r| r.schema.matches(&s) && r.table.as_ref().is_none_or(|p| p.matches(&t)))
                .collect()
        };
        let table_level = hits(true);
        let chosen = if table_level.is_empty() { hits(false) } else { table_level };
        match chosen.as_slice() {
            [] => Routed { schema: schema.to_string(), table: table.to_string(), ambiguous: None },
            [r] => Routed {
                schema: r.target_schema.clone(),
                table: if r.target_table.is_empty() { table.to_string() } else { r.target_table.clone() },
                ambiguous: None,
            },
            many => Routed { schema: schema.to_string(), table: table.to_string(), ambiguous: Some(many.len()) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(rules: serde_json::Value) -> Task {
        serde_json::from_value(json!({
            "name": "t", "task_mode": "incremental",
            "target_config": {"host": "h", "port": 4000, "user": "u", "password": ""},
            "table_migrate_rule": rules,
            "source_config": {"source_conf": [{"source_name": "s"}]}
        }))
        .unwrap()
    }

    fn rule(schema: &str, table: &str) -> serde_json::Value {
        json!({"source": {"source_name": "s", "schema": schema, "table": table}})
    }

    #[test]
    fn wildcards_as_dm_reads_them() {
        let g = |p: &str, n: &str| Glob::parse(p).unwrap().matches(n);
        assert!(g("ord*", "orders") && g("ord*", "ord") && !g("ord*", "or"));
        assert!(g("*", "") && g("*", "x"));
        assert!(g("a?c", "abc") && !g("a?c", "ac") && !g("a?c", "abbc"));
        assert!(g("t_[0-9]", "t_7") && !g("t_[0-9]", "t_x") && g("t_[!0-9]", "t_x"));
        assert!(g("a[b", "a[b"), "no closing bracket: literal");
        assert!(g("[!]", "!"));
        assert!(!g("[]", "a"), "an empty class matches nothing");
        assert!(Glob::parse("a*b").is_err(), "DM refuses `*` before the end");
        // Non-ASCII: DM compares one byte per character with literals, so literal patterns never match them.
        assert!(!g("é", "é"));
        assert!(g("*", "é") && g("a*", "aé"));
    }

    #[test]
    fn go_regex_classes_are_ascii() {
        let r = compile_go_regex(r"^t\d+$", Case::Sensitive).unwrap();
        assert!(r.is_match("t12") && !r.is_match("t١٢"));
        let r = compile_go_regex(r"^[\w-]+$", Case::Sensitive).unwrap();
        assert!(r.is_match("a-b_c") && !r.is_match("é"));
        let r = compile_go_regex(r"^[^\d]+$", Case::Sensitive).unwrap();
        assert!(r.is_match("abc") && !r.is_match("a1"));
        let r = compile_go_regex(r"\bx", Case::Sensitive).unwrap();
        assert!(r.is_match("a x"));
        let r = compile_go_regex(r"^[]a]$", Case::Sensitive).unwrap();
        assert!(r.is_match("]"));
        let r = compile_go_regex(r"^[[:digit:]x]$", Case::Sensitive).unwrap();
        assert!(r.is_match("7") && r.is_match("x"));
        assert!(compile_go_regex("(", Case::Sensitive).is_err());
    }

    #[test]
    fn both_kinds_of_rules_must_match() {
        let t = task(json!([rule("shop", ""), rule("crm", "accounts")]));
        let r = SourceRules::from_task(&t, "s", Case::Sensitive);
        assert!(!r.allows("crm", "accounts"), "crm is not a do-db");
        assert!(!r.allows("shop", "orders"), "orders is not a do-table");
        let t = task(json!([rule("shop", ""), rule("shop", "ord*")]));
        let r = SourceRules::from_task(&t, "s", Case::Sensitive);
        assert!(r.allows("shop", "orders") && !r.allows("shop", "customers"));
        let t = task(json!([rule("s*", "")]));
        let r = SourceRules::from_task(&t, "s", Case::Sensitive);
        assert!(r.allows("shop", "anything") && !r.allows("crm", "x"));
    }

    #[test]
    fn no_rules_replicate_everything_but_system_schemas() {
        let t = task(json!([{"source": {"source_name": "other", "schema": "x", "table": ""}}]));
        let r = SourceRules::from_task(&t, "s", Case::Sensitive);
        assert!(r.allows("anything", "t") && !r.allows("mysql", "user") && !r.allows("Sys", "x"));
        let t = task(json!([rule("*", "")]));
        assert!(!SourceRules::from_task(&t, "s", Case::Sensitive).allows("information_schema", "tables"));
    }

    #[test]
    fn regex_schema_wildcard_table_quirk() {
        let t = task(json!([rule("~^a", "x*"), rule("~^b", "y*")]));
        let r = SourceRules::from_task(&t, "s", Case::Sensitive);
        assert!(r.allows("a1", "x1") && r.allows("b1", "y1"));
        assert!(r.allows("a1", "y1"), "DM pairs any regex schema with any wildcard table of such entries");
        assert!(!r.allows("c1", "x1"));
    }

    #[test]
    fn case_insensitive_upstreams_lowercase_patterns_and_names() {
        let t = task(json!([rule("Shop", "Orders")]));
        assert!(SourceRules::from_task(&t, "s", Case::Insensitive).allows("shop", "orders"));
        assert!(SourceRules::from_task(&t, "s", Case::Insensitive).allows("SHOP", "ORDERS"));
        assert!(!SourceRules::from_task(&t, "s", Case::Sensitive).allows("shop", "orders"));
        // The regular expression's text is lowercased too (`\D` becomes `\d`).
        let t = task(json!([rule(r"~^S\D$", "")]));
        assert!(SourceRules::from_task(&t, "s", Case::Insensitive).allows("s1", "t"));
        assert!(!SourceRules::from_task(&t, "s", Case::Sensitive).allows("s1", "t"));
    }

    #[test]
    fn routes_table_level_first_ambiguity_keeps_the_name() {
        let mut rules = vec![
            json!({"source": {"source_name": "s", "schema": "shop", "table": ""}, "target": {"schema": "all"}}),
            json!({"source": {"source_name": "s", "schema": "shop", "table": "ord*"},
                   "target": {"schema": "all", "table": "orders"}}),
        ];
        let r = SourceRules::from_task(&task(json!(rules.clone())), "s", Case::Sensitive);
        let to = |s: &str, t: &str| {
            let x = r.route(s, t);
            (x.schema, x.table, x.ambiguous)
        };
        assert_eq!(to("shop", "order_1"), ("all".into(), "orders".into(), None));
        assert_eq!(to("shop", "customers"), ("all".into(), "customers".into(), None));
        assert_eq!(to("crm", "x"), ("crm".into(), "x".into(), None));
        rules.push(json!({"source": {"source_name": "s", "schema": "sh*", "table": "order?1"},
                          "target": {"schema": "other"}}));
        let r = SourceRules::from_task(&task(json!(rules)), "s", Case::Sensitive);
        let x = r.route("shop", "order_1");
        assert_eq!((x.schema.as_str(), x.ambiguous), ("shop", Some(2)));
    }
}
