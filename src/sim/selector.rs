//! The simulator's version of DM's table filter and table router (docs/dm-behaviour.md R5.10, R13.7): wildcard
//! patterns kept in a byte trie (schema level, then table level) with tagged rules at their ends, `~regex`
//! patterns kept apart, and the block-allow and routing decisions taken from the rules a name reaches. Built the
//! way DM builds it, so its quirks come out the same; the client's preview (`crate::preview::matching`) models the
//! same behaviour per pattern, and tests compare the two.

use std::collections::BTreeMap;

use regex::Regex;

/// What a pattern's end stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tag {
    /// A `do_dbs` entry.
    Db,
    /// A `do_tables` entry of two wildcards (at the table level).
    Full,
    /// A `do_tables` entry of a wildcard schema and a regex table (key of the regex).
    SchemaPart(String),
    /// A `do_tables` entry of a regex schema and a wildcard table: the table wildcard, kept at the schema level.
    TablePart,
}

#[derive(Debug, Clone, Default)]
struct Node {
    literal: BTreeMap<u8, usize>,
    star: Option<usize>,
    one: Option<usize>,
    classes: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Item {
    child: usize,
    tags: Vec<Tag>,
    /// Root of the table level below a schema pattern.
    below: Option<usize>,
    /// For a class item: negated, and its byte ranges.
    class: Option<(bool, Vec<(u8, u8)>)>,
}

/// Wildcard patterns in a trie.
#[derive(Debug, Clone)]
struct Trie {
    nodes: Vec<Node>,
    items: Vec<Item>,
}

enum Step {
    Star,
    One,
    Class(bool, Vec<(u8, u8)>),
    Byte(u8),
}

/// A bracket class: negated, its ranges, and the length of its text.
type ClassAt = (bool, Vec<(u8, u8)>, usize);

/// `[...]` at the start of `p`: `None` when there is no `]` (a literal `[`).
fn class_at(p: &[u8]) -> Option<ClassAt> {
    let end = p.iter().position(|&b| b == b']')?;
    let mut negated = false;
    let mut i = 1;
    if p.get(1) == Some(&b'!') {
        negated = true;
        i = 2;
    }
    let mut ranges = vec![];
    while i < end {
        if p[i + 1] == b'-' && i + 2 < end {
            ranges.push((p[i], p[i + 2]));
            i += 3;
        } else {
            ranges.push((p[i], p[i]));
            i += 1;
        }
    }
    if negated && ranges.is_empty() {
        return Some((false, vec![(b'!', b'!')], end));
    }
    Some((negated, ranges, end))
}

fn same_class(a: &(bool, Vec<(u8, u8)>), b: &(bool, Vec<(u8, u8)>)) -> bool {
    let covered = |x: &[(u8, u8)], y: &[(u8, u8)]| x.iter().all(|(lo, hi)| y.iter().any(|(l, h)| l <= lo && hi <= h));
    a.0 == b.0 && covered(&a.1, &b.1) && covered(&b.1, &a.1)
}

/// How far DM's walk moves at `s[i]`: one character (a valid UTF-8 sequence), else one byte.
fn width(s: &[u8], i: usize) -> usize {
    let n = match s[i] {
        b if b < 0x80 => 1,
        b if (0xc2..=0xdf).contains(&b) => 2,
        b if (0xe0..=0xef).contains(&b) => 3,
        b if (0xf0..=0xf4).contains(&b) => 4,
        _ => 1,
    };
    match s.get(i..i + n) {
        Some(seq) if n > 1 && std::str::from_utf8(seq).is_ok() => n,
        _ => 1,
    }
}

impl Trie {
    fn new() -> Trie {
        Trie { nodes: vec![Node::default()], items: vec![] }
    }

    fn new_item(&mut self, class: Option<(bool, Vec<(u8, u8)>)>) -> usize {
        self.nodes.push(Node::default());
        self.items.push(Item { child: self.nodes.len() - 1, tags: vec![], below: None, class });
        self.items.len() - 1
    }

    /// The item at the end of `pattern` below `root`.
    fn path(&mut self, root: usize, pattern: &str) -> Result<usize, String> {
        let p = pattern.as_bytes();
        if p.is_empty() {
            return Err("empty pattern".into());
        }
        let (mut node, mut i, mut last, mut starred) = (root, 0, None, false);
        while i < p.len() {
            if starred {
                return Err(format!("pattern {pattern} not valid"));
            }
            let step = match p[i] {
                b'*' => {
                    starred = true;
                    Step::Star
                }
                b'?' => Step::One,
                b'[' => match class_at(&p[i..]) {
                    Some((neg, ranges, end)) => {
                        i += end;
                        Step::Class(neg, ranges)
                    }
                    None => Step::Byte(b'['),
                },
                b => Step::Byte(b),
            };
            let item = match step {
                Step::Star => match self.nodes[node].star {
                    Some(x) => x,
                    None => {
                        let x = self.new_item(None);
                        self.nodes[node].star = Some(x);
                        x
                    }
                },
                Step::One => match self.nodes[node].one {
                    Some(x) => x,
                    None => {
                        let x = self.new_item(None);
                        self.nodes[node].one = Some(x);
                        x
                    }
                },
                Step::Class(neg, ranges) => {
                    let spec = (neg, ranges);
                    let found = self.nodes[node]
                        .classes
                        .iter()
                        .copied()
                        .find(|&x| self.items[x].class.as_ref().is_some_and(|c| same_class(c, &spec)));
                    match found {
                        Some(x) => x,
                        None => {
                            let x = self.new_item(Some(spec));
                            self.nodes[node].classes.push(x);
                            x
                        }
                    }
                }
                Step::Byte(b) => match self.nodes[node].literal.get(&b) {
                    Some(&x) => x,
                    None => {
                        let x = self.new_item(None);
                        self.nodes[node].literal.insert(b, x);
                        x
                    }
                },
            };
            node = self.items[item].child;
            last = Some(item);
            i += 1;
        }
        last.ok_or_else(|| "empty pattern".to_string())
    }

    fn insert(&mut self, schema: &str, table: &str, tag: Tag) -> Result<(), String> {
        let s = self.path(0, schema)?;
        if table.is_empty() {
            self.items[s].tags.push(tag);
            return Ok(());
        }
        let below = match self.items[s].below {
            Some(b) => b,
            None => {
                self.nodes.push(Node::default());
                let b = self.nodes.len() - 1;
                self.items[s].below = Some(b);
                b
            }
        };
        let t = self.path(below, table)?;
        self.items[t].tags.push(tag);
        Ok(())
    }

    fn reach(&self, item: usize, tags: &mut Vec<Tag>, below: &mut Vec<usize>) {
        tags.extend(self.items[item].tags.iter().cloned());
        below.extend(self.items[item].below);
    }

    fn walk(&self, mut node: usize, s: &[u8], tags: &mut Vec<Tag>, below: &mut Vec<usize>) {
        let mut entity = None;
        let mut i = 0;
        while i < s.len() {
            let n = &self.nodes[node];
            if let Some(x) = n.star {
                self.reach(x, tags, below);
            }
            if let Some(x) = n.one {
                if i + 1 == s.len() {
                    self.reach(x, tags, below);
                }
                self.walk(self.items[x].child, &s[i + 1..], tags, below);
            }
            for &x in &n.classes {
                let Some((neg, ranges)) = &self.items[x].class else { continue };
                if ranges.iter().any(|(lo, hi)| *lo <= s[i] && s[i] <= *hi) != *neg {
                    if i + 1 == s.len() {
                        self.reach(x, tags, below);
                    }
                    self.walk(self.items[x].child, &s[i + 1..], tags, below);
                }
            }
            match n.literal.get(&s[i]) {
                Some(&x) => {
                    entity = Some(x);
                    node = self.items[x].child;
                }
                None => return,
            }
            i += width(s, i);
        }
        if let Some(x) = entity {
            self.reach(x, tags, below);
        }
        if let Some(x) = self.nodes[node].star {
            self.reach(x, tags, below);
        }
    }

    /// Tags reached by `schema` (schema level) and by `schema`.`table` (table level).
    fn lookup(&self, schema: &str, table: &str) -> Vec<Tag> {
        let (mut tags, mut below) = (vec![], vec![]);
        self.walk(0, schema.as_bytes(), &mut tags, &mut below);
        for b in below {
            self.walk(b, table.as_bytes(), &mut tags, &mut vec![]);
        }
        tags
    }
}

/// A block-allow list (`do_dbs`, `do_tables`) as DM's worker evaluates it.
#[derive(Debug, Clone)]
pub(crate) struct AllowFilter {
    lower: bool,
    trie: Trie,
    regexes: BTreeMap<String, Regex>,
    do_dbs: Vec<String>,
    do_tables: Vec<(String, String)>,
}

impl AllowFilter {
    /// `lower`: a case-insensitive upstream (patterns and names compared lowercased, regexes with `(?i)`).
    pub fn new(lower: bool, do_dbs: &[String], do_tables: &[(String, String)]) -> Result<AllowFilter, String> {
        let low = |s: &str| if lower { s.to_lowercase() } else { s.to_string() };
        let mut f = AllowFilter {
            lower,
            trie: Trie::new(),
            regexes: BTreeMap::new(),
            do_dbs: do_dbs.iter().map(|d| low(d)).collect(),
            do_tables: do_tables.iter().map(|(d, t)| (low(d), low(t))).collect(),
        };
        for d in f.do_dbs.clone() {
            match d.strip_prefix('~') {
                Some(re) => f.regex(re)?,
                None => f.trie.insert(&d, "", Tag::Db)?,
            }
        }
        for (d, t) in f.do_tables.clone() {
            if d.is_empty() || t.is_empty() {
                return Err("DoTables rule's DB string or Table string cannot be empty".into());
            }
            match (d.strip_prefix('~'), t.strip_prefix('~')) {
                (Some(dr), Some(tr)) => {
                    f.regex(dr)?;
                    f.regex(tr)?;
                }
                (Some(dr), None) => {
                    f.regex(dr)?;
                    f.trie.insert(&t, "", Tag::TablePart)?;
                }
                (None, Some(tr)) => {
                    f.regex(tr)?;
                    f.trie.insert(&d, "", Tag::SchemaPart(tr.to_string()))?;
                }
                (None, None) => f.trie.insert(&d, &t, Tag::Full)?,
            }
        }
        Ok(f)
    }

    fn regex(&mut self, re: &str) -> Result<(), String> {
        if !self.regexes.contains_key(re) {
            let text = if self.lower { format!("(?i){re}") } else { re.to_string() };
            let r = Regex::new(&text).map_err(|e| e.to_string())?;
            self.regexes.insert(re.to_string(), r);
        }
        Ok(())
    }

    fn re(&self, key: &str, s: &str) -> bool {
        self.regexes.get(key).is_some_and(|r| r.is_match(s))
    }

    fn db_matches(&self, schema: &str) -> bool {
        self.do_dbs.iter().any(|d| d.strip_prefix('~').is_some_and(|re| self.re(re, schema)))
            || self.trie.lookup(schema, "").contains(&Tag::Db)
    }

    fn table_matches(&self, schema: &str, table: &str) -> bool {
        for (d, t) in &self.do_tables {
            match (d.strip_prefix('~'), t.strip_prefix('~')) {
                (Some(dr), Some(tr)) if self.re(dr, schema) && self.re(tr, table) => return true,
                (Some(_), Some(_)) => {}
                (Some(dr), None) => {
                    if !self.re(dr, schema) {
                        continue;
                    }
                    if self.trie.lookup(table, "").contains(&Tag::TablePart) {
                        return true;
                    }
                }
                _ => {}
            }
            let schema_tags = self.trie.lookup(schema, "");
            if schema_tags.iter().any(|g| matches!(g, Tag::SchemaPart(re) if self.re(re, table))) {
                return true;
            }
            if self.trie.lookup(schema, table).contains(&Tag::Full) {
                return true;
            }
        }
        false
    }

    /// Whether `schema`.`table` passes (`table` empty: a schema-level event).
    pub fn allows(&self, schema: &str, table: &str) -> bool {
        let (s, t) =
            if self.lower { (schema.to_lowercase(), table.to_lowercase()) } else { (schema.into(), table.into()) };
        if !self.do_dbs.is_empty() && !self.db_matches(&s) {
            return false;
        }
        if t.is_empty() {
            return true;
        }
        if !self.do_tables.is_empty() && self.table_matches(&s, &t) {
            return true;
        }
        self.do_tables.is_empty()
    }
}

/// One route rule with its own one-rule filter.
#[derive(Debug, Clone)]
struct RouteRule {
    filter: AllowFilter,
    table_level: bool,
    target_schema: String,
    target_table: String,
}

/// DM's regular-expression router.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    rules: Vec<RouteRule>,
}

impl Router {
    /// `(schema, table, target schema, target table)` per rule, as stored.
    pub fn new(lower: bool, rules: &[(String, String, String, String)]) -> Result<Router, String> {
        let mut out = vec![];
        for (schema, table, ts, tt) in rules {
            if schema.is_empty() {
                return Err("schema pattern of table route rule should not be empty".into());
            }
            if ts.is_empty() {
                return Err("target schema of table route rule should not be empty".into());
            }
            let filter = if table.is_empty() {
                AllowFilter::new(lower, std::slice::from_ref(schema), &[])?
            } else {
                AllowFilter::new(lower, std::slice::from_ref(schema), &[(schema.clone(), table.clone())])?
            };
            out.push(RouteRule {
                filter,
                table_level: !table.is_empty(),
                target_schema: ts.clone(),
                target_table: tt.clone(),
            });
        }
        Ok(Router { rules: out })
    }

    /// `Err` when the table matches two rules on the level used.
    pub fn route(&self, schema: &str, table: &str) -> Result<(String, String), String> {
        let hit: Vec<&RouteRule> = self.rules.iter().filter(|r| r.filter.allows(schema, table)).collect();
        let tables: Vec<&&RouteRule> = hit.iter().filter(|r| r.table_level).collect();
        let schemas: Vec<&&RouteRule> = hit.iter().filter(|r| !r.table_level).collect();
        let level = if table.is_empty() || tables.is_empty() { schemas } else { tables };
        let (ts, tt) = match level.as_slice() {
            [] => (String::new(), String::new()),
            [r] => (r.target_schema.clone(), r.target_table.clone()),
            _ => return Err(format!("table {schema}.{table} matches more than one rule")),
        };
        Ok((if ts.is_empty() { schema.to_string() } else { ts }, if tt.is_empty() { table.to_string() } else { tt }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(dbs: &[&str], tables: &[(&str, &str)]) -> AllowFilter {
        let d: Vec<String> = dbs.iter().map(|s| s.to_string()).collect();
        let t: Vec<(String, String)> = tables.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        AllowFilter::new(false, &d, &t).unwrap()
    }

    #[test]
    fn trie_wildcards() {
        let f = allow(&["shop*", "a?c", "t[0-9]", "x[y"], &[]);
        assert!(f.allows("shop", "t") && f.allows("shop_2", "t") && !f.allows("sho", "t"));
        assert!(f.allows("abc", "t") && !f.allows("ac", "t"));
        assert!(f.allows("t7", "t") && !f.allows("tx", "t"));
        assert!(f.allows("x[y", "t"));
        assert!(AllowFilter::new(false, &["a*b".into()], &[]).is_err());
    }

    #[test]
    fn both_lists_must_match() {
        let f = allow(&["shop"], &[("crm", "accounts")]);
        assert!(!f.allows("crm", "accounts") && !f.allows("shop", "orders"));
        assert!(f.allows("shop", ""), "schema-level events pass the schema step only");
    }

    #[test]
    fn regex_schema_pairs_with_every_table_wildcard() {
        let f = allow(&[], &[("~^a", "x*"), ("~^b", "y*")]);
        assert!(f.allows("a1", "y1") && !f.allows("c", "x1"));
    }

    #[test]
    fn router_levels() {
        let r = Router::new(
            true,
            &[
                ("Shop".into(), "".into(), "all".into(), "".into()),
                ("shop".into(), "ord*".into(), "all".into(), "orders".into()),
            ],
        )
        .unwrap();
        assert_eq!(r.route("SHOP", "orders_1").unwrap(), ("all".into(), "orders".into()));
        assert_eq!(r.route("shop", "items").unwrap(), ("all".into(), "items".into()));
        let r = Router::new(
            false,
            &[("s".into(), "".into(), "a".into(), "".into()), ("s*".into(), "".into(), "b".into(), "".into())],
        )
        .unwrap();
        assert!(r.route("s", "t").is_err());
    }
}

/// The simulator's filter and router against the client's model of the same behaviour
/// (`crate::preview::matching`), written apart: they must agree on every name.
#[cfg(test)]
mod agreement {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::preview::matching::{Case, SourceRules};

    fn pattern() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "a", "b", "ab", "A", "a*", "*", "?", "a?", "?b*", "[ab]", "[!a]", "[a-b]*", "x[y", "~^a", "~b$", "~A",
            "~^[ab]+$", "a*b", "~(",
        ])
        .prop_map(str::to_string)
    }

    fn name() -> impl Strategy<Value = String> {
        "[abAx\\[y]{1,3}"
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]
        #[test]
        fn sim_and_client_agree(
            rules in prop::collection::vec((pattern(), prop::option::of(pattern()), prop::option::of("[tT]")), 1..4),
            names in prop::collection::vec((name(), name()), 1..8),
            lower in any::<bool>(),
        ) {
            let mut json_rules = vec![];
            let (mut dbs, mut tables, mut routes) = (vec![], vec![], vec![]);
            let low = |s: &str| if lower { s.to_lowercase() } else { s.to_string() };
            for (s, t, target) in &rules {
                let t = t.clone().unwrap_or_default();
                let mut r = json!({"source": {"source_name": "s", "schema": s, "table": t}});
                if let Some(ts) = target {
                    r["target"] = json!({"schema": ts});
                    routes.push((low(s), low(&t), ts.clone(), String::new()));
                }
                if t.is_empty() { dbs.push(s.clone()) } else { tables.push((s.clone(), t.clone())) }
                json_rules.push(r);
            }
            let task: crate::dm::types::Task = serde_json::from_value(json!({
                "name": "t", "task_mode": "incremental",
                "target_config": {"host": "h", "port": 4000, "user": "u", "password": ""},
                "table_migrate_rule": json_rules,
                "source_config": {"source_conf": [{"source_name": "s"}]}
            })).unwrap();
            let client = SourceRules::from_task(&task, "s", if lower { Case::Insensitive } else { Case::Sensitive });
            let sim_allow = AllowFilter::new(lower, &dbs, &tables);
            let sim_router = Router::new(lower, &routes);
            prop_assert_eq!(client.invalid.is_empty(), sim_allow.is_ok() && sim_router.is_ok(), "validity of {:?}", rules);
            let (Ok(allow), Ok(router)) = (sim_allow, sim_router) else { return Ok(()) };
            for (s, t) in &names {
                prop_assert_eq!(client.allows(s, t), allow.allows(s, t), "allows {}.{} with {:?} (lower {})", s, t, rules, lower);
                let c = client.route(s, t);
                let r = router.route(s, t).unwrap_or_else(|_| (s.clone(), t.clone()));
                prop_assert_eq!((c.schema, c.table), r, "route {}.{} with {:?} (lower {})", s, t, rules, lower);
            }
        }
    }
}
