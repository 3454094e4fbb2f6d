//! What one dmctl `mysql-instance` replicates (block-allow list, routes, binlog filters), carried into DM's OpenAPI
//! table rules exactly, or refused.
//!
//! How DM reads each side (from the server code; see docs/adoption.md "What convert carries"):
//!
//! - **dmctl block-allow list.** A table passes when its schema passes and then the table passes. Schema: with
//!   `do-dbs`, it must match one; otherwise it must match no `ignore-dbs`. Table (schema-level events always pass
//!   this step): matching a `do-tables` entry passes; otherwise matching an `ignore-tables` entry fails; otherwise it
//!   passes only when there are no `do-tables`. So `ignore-dbs` counts only without `do-dbs`, `ignore-tables` only
//!   without `do-tables`, and `do-dbs` with `do-tables` is an intersection, not a union. One quirk: among the
//!   `do-tables` entries whose schema is a `~regex` and table a wildcard, the table part of any of them is accepted
//!   for the schema part of any other.
//! - **OpenAPI table rules.** Per source, a rule with `table: ""` becomes a `do-dbs` entry and any other rule a
//!   `do-tables` entry of the same allow list (no rule at all: no allow list, everything). A rule with a target
//!   becomes a route with the rule's patterns; each filter named by a rule becomes a binlog filter with the rule's
//!   patterns.
//! - **Binlog filters** use wildcards only (`~` is literal), apply to every table of a schema-level pattern, and
//!   DM keeps only the first valid rule per (schema, table) pattern: two filters on one rule would lose the second,
//!   so filters meeting on one rule are merged into one.
//! - **Routes** (each its own matcher, regex allowed): a table takes the one table-level route it matches, else the
//!   one schema-level route; two matching routes of a level are an error at run time.
//!
//! The carrying never changes the set of replicated tables: a route or filter is put on the allow-list rule with the
//! same patterns, else on a new rule only when that rule provably adds nothing to what is replicated, else on the
//! existing rules it provably contains when they provably cover everything it applied to; anything else is refused.

use super::pattern::{Case, Pattern, Strictness};

/// A JSON pointer into the dmctl file (resolved to `file:line:col` by the caller).
pub(crate) type Ptr = String;

/// A block-allow list as written.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowList {
    pub name: String,
    pub ptr: Ptr,
    pub do_dbs: Vec<(String, Ptr)>,
    pub do_tables: Vec<(String, String, Ptr)>,
    pub ignore_dbs: Vec<(String, Ptr)>,
    pub ignore_tables: Vec<(String, String, Ptr)>,
}

/// A route rule an instance uses.
#[derive(Debug, Clone)]
pub(crate) struct RouteIn {
    pub name: String,
    pub ptr: Ptr,
    pub schema: String,
    pub table: String,
    pub target_schema: Option<String>,
    pub target_table: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Ignore,
    Do,
    Error,
}

/// A valid binlog filter an instance uses (the caller drops the ones DM itself would drop).
#[derive(Debug, Clone)]
pub(crate) struct FilterIn {
    pub name: String,
    pub ptr: Ptr,
    pub schema: String,
    pub table: String,
    pub action: Action,
    pub events: Vec<String>,
    pub sql: Vec<String>,
}

/// One OpenAPI table rule of the instance's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleOut {
    pub schema: String,
    pub table: String,
    pub target: Option<(Option<String>, Option<String>)>,
    /// Names of the dmctl filters on this rule (merged into one definition by the caller when several).
    pub filters: Vec<String>,
}

/// Something that cannot be carried without changing what is replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub ptr: Ptr,
    pub what: String,
    pub why: String,
    pub help: String,
}

#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub rules: Vec<RuleOut>,
    /// Notes for the reviewer (warnings): what was left out because it has no effect, how routes and filters were
    /// placed.
    pub notes: Vec<(Ptr, String)>,
    pub refusals: Vec<Refusal>,
    /// The dmctl file is invalid (DM refuses the task): the first such problem.
    pub invalid: Option<(Ptr, String)>,
}

/// A pattern read the way the task reads it, and (for a case-insensitive task) also case-sensitively: DM's OpenAPI
/// takes case sensitivity from the upstream, so proofs whose failure would replicate more must hold both ways.
#[derive(Debug, Clone)]
struct Names {
    main: Pattern,
    sensitive: Option<Pattern>,
}

impl Names {
    fn text(&self) -> &str {
        &self.main.text
    }

    fn is_regex(&self) -> bool {
        self.main.is_regex()
    }

    fn same(&self, o: &Names) -> bool {
        self.main.same(&o.main)
    }
}

/// A schema pattern and, for table-level entries, a table pattern.
#[derive(Debug, Clone)]
struct Pair {
    schema: Names,
    table: Option<Names>,
}

impl Pair {
    fn show(&self) -> String {
        match &self.table {
            Some(t) => format!("`{}`.`{}`", self.schema.text(), t.text()),
            None => format!("`{}`", self.schema.text()),
        }
    }

    fn same(&self, o: &Pair) -> bool {
        self.schema.same(&o.schema)
            && match (&self.table, &o.table) {
                (None, None) => true,
                (Some(a), Some(b)) => a.same(b),
                _ => false,
            }
    }

    /// Binlog filters read patterns as wildcards: a rule with a `~` pattern cannot carry one.
    fn can_host_filter(&self) -> bool {
        !self.schema.is_regex() && self.table.as_ref().is_none_or(|t| !t.is_regex())
    }

    /// A `do-tables` entry whose schema is a regex and table a wildcard (DM mixes their table parts).
    fn mixes(&self) -> bool {
        self.schema.is_regex() && self.table.as_ref().is_some_and(|t| !t.is_regex())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// From the block-allow list.
    Allow,
    /// Added to keep the allow list's meaning (`*`, `d`.`*`).
    Neutral,
    /// Added with a route's or filter's own patterns.
    Added,
}

#[derive(Debug, Clone)]
struct Entry {
    pair: Pair,
    origin: Origin,
    target: Option<(Option<String>, Option<String>)>,
    /// Name of the route that set `target`.
    route: Option<String>,
    filters: Vec<usize>,
}

/// Events of a kind: schema-level (`CREATE/DROP DATABASE`, table name empty) or table-level.
#[derive(Debug, Clone)]
enum Region {
    Schemas(Names),
    Tables(Names, Names),
}

struct Carrier<'a> {
    case: Case,
    /// The instance, for notes about the whole rule set.
    at: Ptr,
    out: Outcome,
    entries: Vec<Entry>,
    /// The allow list as written had no `do-dbs` / no `do-tables`.
    no_dbs: bool,
    no_tables: bool,
    /// Base `do-dbs` and (expanded) `do-tables` of the dmctl allow list, for coverage proofs.
    dbs: Vec<Names>,
    tables: Vec<Pair>,
    routes: &'a [RouteIn],
    route_pairs: Vec<Option<Pair>>,
}

/// Carry one instance. `ba` is the instance's block-allow list (`None`: everything).
pub(crate) fn carry(case: Case, at: &str, ba: Option<&AllowList>, routes: &[RouteIn], filters: &[FilterIn]) -> Outcome {
    let mut c = Carrier {
        case,
        at: at.to_owned(),
        out: Outcome::default(),
        entries: Vec::new(),
        no_dbs: true,
        no_tables: true,
        dbs: Vec::new(),
        tables: Vec::new(),
        routes,
        route_pairs: Vec::new(),
    };
    if let Some(ba) = ba {
        c.allow_list(ba);
    }
    if c.out.invalid.is_some() {
        return c.out;
    }
    c.route_pairs = routes.iter().map(|r| c.route_pair(r)).collect();
    if c.out.invalid.is_some() {
        return c.out;
    }
    for (i, r) in routes.iter().enumerate() {
        c.route(i, r);
    }
    c.filters(filters);
    c.finish(filters);
    c.out
}

impl Carrier<'_> {
    fn names(&mut self, text: &str, ptr: &str, regex_allowed: bool) -> Option<Names> {
        let parse = |case| if regex_allowed { Pattern::parse(text, case) } else { Pattern::parse_filter(text, case) };
        match parse(self.case) {
            Ok(main) => {
                let sensitive = (self.case == Case::Insensitive).then(|| parse(Case::Sensitive).ok()).flatten();
                Some(Names { main, sensitive })
            }
            Err(e) => {
                if self.out.invalid.is_none() {
                    self.out.invalid = Some((ptr.to_owned(), e.0));
                }
                None
            }
        }
    }

    fn filter_names(&self, text: &str) -> Option<Names> {
        let main = Pattern::parse_filter(text, self.case).ok()?;
        let sensitive =
            (self.case == Case::Insensitive).then(|| Pattern::parse_filter(text, Case::Sensitive).ok()).flatten();
        Some(Names { main, sensitive })
    }

    fn allow_list(&mut self, ba: &AllowList) {
        for (d, ptr) in &ba.do_dbs {
            if d.is_empty() {
                self.out.invalid =
                    Some((ptr.clone(), "a `do-dbs` entry must not be empty (DM refuses the task)".into()));
                return;
            }
            let Some(n) = self.names(d, ptr, true) else { return };
            if self.dbs.iter().any(|x| x.same(&n)) {
                continue;
            }
            self.dbs.push(n.clone());
            self.push(Pair { schema: n, table: None }, Origin::Allow);
        }
        for (s, t, ptr) in &ba.do_tables {
            if s.is_empty() || t.is_empty() {
                self.out.invalid = Some((
                    ptr.clone(),
                    "a `do-tables` entry needs a non-empty `db-name` and `tbl-name` (DM refuses the task)".into(),
                ));
                return;
            }
            let (Some(sn), Some(tn)) = (self.names(s, ptr, true), self.names(t, ptr, true)) else { return };
            let pair = Pair { schema: sn, table: Some(tn) };
            if self.tables.iter().any(|x| x.same(&pair)) {
                continue;
            }
            self.tables.push(pair.clone());
            self.push(pair, Origin::Allow);
        }
        self.no_dbs = self.dbs.is_empty();
        self.no_tables = self.tables.is_empty();
        // DM accepts the table part of any mixing entry for the schema part of any other: reason over the pairs.
        let mixing: Vec<Pair> = self.tables.iter().filter(|p| p.mixes()).cloned().collect();
        for a in &mixing {
            for b in &mixing {
                let pair = Pair { schema: a.schema.clone(), table: b.table.clone() };
                if !self.tables.iter().any(|x| x.same(&pair)) {
                    self.tables.push(pair);
                }
            }
        }

        let first_ptr = |v: &[(String, Ptr)]| v.first().map(|x| x.1.clone()).unwrap_or_else(|| ba.ptr.clone());
        if !ba.ignore_dbs.is_empty() {
            let at = first_ptr(&ba.ignore_dbs);
            if !self.no_dbs {
                self.out.notes.push((
                    at,
                    format!(
                        "`ignore-dbs` of block-allow list `{}` has no effect (DM consults it only when `do-dbs` is \
                         empty); not converted",
                        ba.name
                    ),
                ));
            } else {
                let list = ba.ignore_dbs.iter().map(|(d, _)| format!("`{d}`")).collect::<Vec<_>>().join(", ");
                self.refuse(
                    &at,
                    format!("`ignore-dbs` of block-allow list `{}` ({list})", ba.name),
                    "DM's OpenAPI task has only an allow list: without `do-dbs` these schemas are kept out only by \
                     `ignore-dbs`, so leaving it out would replicate them (at least their CREATE/DROP DATABASE)",
                    "list the schemas to replicate under `do-dbs` instead (DM then ignores `ignore-dbs`) and convert \
                     again",
                );
            }
        }
        if !ba.ignore_tables.is_empty() {
            let at = ba.ignore_tables.first().map(|x| x.2.clone()).unwrap_or_else(|| ba.ptr.clone());
            let mut unreachable = !self.no_dbs;
            if unreachable {
                for (s, _, ptr) in &ba.ignore_tables {
                    let Some(n) = self.names(s, ptr, true) else { return };
                    if self.dbs.iter().any(|d| !self.disjoint(d, &n)) {
                        unreachable = false;
                    }
                }
            }
            if !self.no_tables {
                self.out.notes.push((
                    at,
                    format!(
                        "`ignore-tables` of block-allow list `{}` has no effect (DM consults it only when `do-tables` \
                         is empty); not converted",
                        ba.name
                    ),
                ));
            } else if unreachable {
                self.out.notes.push((
                    at,
                    format!(
                        "`ignore-tables` of block-allow list `{}` has no effect (none of its schemas is in `do-dbs`); \
                         not converted",
                        ba.name
                    ),
                ));
            } else {
                let list =
                    ba.ignore_tables.iter().map(|(s, t, _)| format!("`{s}`.`{t}`")).collect::<Vec<_>>().join(", ");
                self.refuse(
                    &at,
                    format!("`ignore-tables` of block-allow list `{}` ({list})", ba.name),
                    "DM's OpenAPI task has only an allow list: without `do-tables` these tables are kept out only by \
                     `ignore-tables`, so leaving it out would replicate them",
                    "list the tables to replicate under `do-tables` instead (DM then ignores `ignore-tables`) and \
                     convert again",
                );
            }
        }
    }

    fn push(&mut self, pair: Pair, origin: Origin) -> usize {
        self.entries.push(Entry { pair, origin, target: None, route: None, filters: Vec::new() });
        self.entries.len() - 1
    }

    fn find(&self, pair: &Pair) -> Option<usize> {
        self.entries.iter().position(|e| e.pair.same(pair))
    }

    fn refuse(&mut self, ptr: &str, what: String, why: impl Into<String>, help: impl Into<String>) {
        self.out.refusals.push(Refusal { ptr: ptr.to_owned(), what, why: why.into(), help: help.into() });
    }

    // --- proofs -------------------------------------------------------------------------------------------------

    /// `a` ⊆ `b`, both ways of reading case when the task is case-insensitive (used where a wrong answer would
    /// replicate more).
    fn sub(&self, a: &Names, b: &Names) -> bool {
        a.main.subset(&b.main, self.case, Strictness::Strict)
            && match (&a.sensitive, &b.sensitive) {
                (Some(x), Some(y)) => x.subset(y, Case::Sensitive, Strictness::Strict),
                _ => true,
            }
    }

    /// `a` ⊆ `b` as the task reads case, ignoring names with the long s (used for routes only: a wrong answer
    /// changes where such a table goes, not whether it is replicated).
    fn sub_route(&self, a: &Names, b: &Names) -> bool {
        a.main.subset(&b.main, self.case, Strictness::IgnoreLongS)
    }

    fn disjoint(&self, a: &Names, b: &Names) -> bool {
        a.main.disjoint(&b.main, self.case)
            && match (&a.sensitive, &b.sensitive) {
                (Some(x), Some(y)) => x.disjoint(y, Case::Sensitive),
                _ => true,
            }
    }

    fn pair_sub(&self, a: &Pair, b: &Pair, route: bool) -> bool {
        let s = |x: &Names, y: &Names| if route { self.sub_route(x, y) } else { self.sub(x, y) };
        s(&a.schema, &b.schema)
            && match (&a.table, &b.table) {
                (Some(x), Some(y)) => s(x, y),
                (None, None) => true,
                _ => false,
            }
    }

    fn pair_disjoint(&self, a: &Pair, b: &Pair) -> bool {
        self.disjoint(&a.schema, &b.schema)
            || match (&a.table, &b.table) {
                (Some(x), Some(y)) => self.disjoint(x, y),
                _ => false,
            }
    }

    /// The events DM's dmctl allow list lets through, as regions covering them (a superset is fine: coverage is
    /// proved over it).
    fn allowed_regions(&self) -> Vec<Region> {
        let everything = || self.star();
        let mut v: Vec<Region> = if self.no_dbs {
            vec![Region::Schemas(everything())]
        } else {
            self.dbs.iter().cloned().map(Region::Schemas).collect()
        };
        if !self.no_tables {
            v.extend(self.tables.iter().filter_map(|p| Some(Region::Tables(p.schema.clone(), p.table.clone()?))));
        } else if !self.no_dbs {
            v.extend(self.dbs.iter().map(|d| Region::Tables(d.clone(), everything())));
        } else {
            v.push(Region::Tables(everything(), everything()));
        }
        v
    }

    fn star(&self) -> Names {
        let p = |case| Pattern::parse("*", case).expect("`*` is a valid pattern");
        Names { main: p(self.case), sensitive: (self.case == Case::Insensitive).then(|| p(Case::Sensitive)) }
    }

    /// The events a binlog filter with these patterns (or a rule carrying one) applies to, as regions.
    fn filter_regions(&self, p: &Pair) -> Vec<Region> {
        match &p.table {
            None => vec![Region::Schemas(p.schema.clone()), Region::Tables(p.schema.clone(), self.star())],
            Some(t) if t.main.is_everything() => {
                vec![Region::Schemas(p.schema.clone()), Region::Tables(p.schema.clone(), t.clone())]
            }
            Some(t) => vec![Region::Tables(p.schema.clone(), t.clone())],
        }
    }

    /// Every event of `r` is in the filter scope of `p`.
    fn region_in(&self, r: &Region, p: &Pair) -> bool {
        match r {
            Region::Schemas(s) => self.sub(s, &p.schema) && p.table.as_ref().is_none_or(|t| t.main.is_everything()),
            Region::Tables(s, t) => self.sub(s, &p.schema) && p.table.as_ref().is_none_or(|pt| self.sub(t, pt)),
        }
    }

    /// No event of `r` is in the filter scope of `p`.
    fn region_apart(&self, r: &Region, p: &Pair) -> bool {
        match r {
            Region::Schemas(s) => {
                self.disjoint(s, &p.schema) || p.table.as_ref().is_some_and(|t| !t.main.is_everything())
            }
            Region::Tables(s, t) => {
                self.disjoint(s, &p.schema) || p.table.as_ref().is_some_and(|pt| self.disjoint(t, pt))
            }
        }
    }

    // --- adding rules ---------------------------------------------------------------------------------------------

    /// A rule with `pair`'s patterns, added only when it provably leaves the replicated set as it is (with
    /// `*`/`d.*` companions where the allow list had no `do-dbs`/`do-tables`). `Err` says why not.
    fn add_neutral(&mut self, pair: &Pair) -> Result<usize, String> {
        if let Some(i) = self.find(pair) {
            return Ok(i);
        }
        match &pair.table {
            None => {
                if self.no_dbs {
                    // No `do-dbs`: every schema passes; a `*` entry keeps it so.
                    let star = Pair { schema: self.star(), table: None };
                    if self.find(&star).is_none() {
                        self.push(star, Origin::Neutral);
                    }
                } else if !self.dbs.iter().any(|d| self.sub(&pair.schema, d)) {
                    return Err(format!(
                        "{} is not inside any `do-dbs` entry, so a rule with these patterns would add schemas to the \
                         allow list",
                        pair.show()
                    ));
                }
            }
            Some(_) => {
                if self.no_tables {
                    // No `do-tables`: every table of an allowed schema passes; keep it so.
                    let companions: Vec<Pair> = if self.no_dbs {
                        vec![Pair { schema: self.star(), table: Some(self.star()) }]
                    } else {
                        self.dbs.iter().map(|d| Pair { schema: d.clone(), table: Some(self.star()) }).collect()
                    };
                    for c in companions {
                        if self.find(&c).is_none() {
                            self.push(c, Origin::Neutral);
                        }
                    }
                } else {
                    // DM mixes the table parts of `~regex`.`wildcard` entries: another one could add tables.
                    if pair.mixes() && self.entries.iter().any(|e| e.pair.mixes()) {
                        return Err(format!(
                            "{} would join other `~regex`.`wildcard` allow entries, whose table parts DM mixes, so \
                             it could add tables",
                            pair.show()
                        ));
                    }
                    let inside = self.tables.iter().any(|t| self.pair_sub(pair, t, false))
                        || (!self.no_dbs && self.dbs.iter().all(|d| self.disjoint(d, &pair.schema)));
                    if !inside {
                        return Err(format!(
                            "{} is not inside any `do-tables` entry, so a rule with these patterns would add tables \
                             to the allow list",
                            pair.show()
                        ));
                    }
                }
            }
        }
        Ok(self.push(pair.clone(), Origin::Added))
    }

    // --- routes ---------------------------------------------------------------------------------------------------

    fn route_pair(&mut self, r: &RouteIn) -> Option<Pair> {
        let schema = self.names(&r.schema, &r.ptr, true)?;
        let table = if r.table.is_empty() { None } else { Some(self.names(&r.table, &r.ptr, true)?) };
        Some(Pair { schema, table })
    }

    fn route(&mut self, i: usize, r: &RouteIn) {
        let Some(pair) = self.route_pairs[i].clone() else { return };
        let target = (r.target_schema.clone(), r.target_table.clone());
        if target.0.is_none() && target.1.is_none() {
            self.out.notes.push((
                r.ptr.clone(),
                format!(
                    "route `{}` has neither `target-schema` nor `target-table`: it changes nothing; not converted",
                    r.name
                ),
            ));
            return;
        }
        // A route only acts on what is replicated: one apart from all of it changes nothing.
        let allowed = self.allowed_regions();
        let apart = allowed.iter().all(|a| match (a, &pair.table) {
            (Region::Schemas(s), None) => self.disjoint(s, &pair.schema),
            (Region::Schemas(_), Some(_)) => true,
            (Region::Tables(s, t), Some(pt)) => self.disjoint(s, &pair.schema) || self.disjoint(t, pt),
            (Region::Tables(s, _), None) => self.disjoint(s, &pair.schema),
        });
        if apart {
            self.out.notes.push((
                r.ptr.clone(),
                format!(
                    "route `{}` ({}) applies to nothing the allow list replicates: it has no effect; not converted",
                    r.name,
                    pair.show()
                ),
            ));
            return;
        }
        if let Some(j) = (0..i).find(|&j| self.route_pairs[j].as_ref().is_some_and(|p| p.same(&pair))) {
            self.refuse(
                &r.ptr,
                format!("route `{}` ({})", r.name, pair.show()),
                format!(
                    "it has the same patterns as route `{}`; DM fails every table both match (\"matches more than \
                     one rule\")",
                    self.routes[j].name
                ),
                "keep one of the two routes",
            );
            return;
        }
        // 1. A rule with the same patterns, 2. a new rule that adds nothing to the allow list.
        let placed = match self.find(&pair) {
            Some(e) => Ok(e),
            None => self.add_neutral(&pair),
        };
        let why_not_new = match placed {
            Ok(e) => {
                self.set_target(e, r, &target);
                return;
            }
            Err(why) => why,
        };
        // 3. The existing rules the route contains, when they cover every allowed table it applied to.
        match self.route_on_contained(i, &pair) {
            Ok(hosts) => {
                let shown: Vec<String> = hosts.iter().map(|&e| self.entries[e].pair.show()).collect();
                for &e in &hosts {
                    self.set_target(e, r, &target);
                }
                self.out.notes.push((
                    r.ptr.clone(),
                    format!(
                        "route `{}` ({}) is carried by the allow-list rule(s) {} it contains: they route the same \
                         tables ({why_not_new})",
                        r.name,
                        pair.show(),
                        shown.join(", ")
                    ),
                ));
            }
            Err(why) => self.refuse(
                &r.ptr,
                format!("route `{}` ({})", r.name, pair.show()),
                format!(
                    "DM's OpenAPI routes only through table rules, which are also allow-list entries: {why_not_new}; \
                     and it cannot be put on the existing rules: {why}"
                ),
                "make the route's patterns equal to (or inside) a block-allow-list entry, or add the allow-list \
                 entries it should carry, then convert again",
            ),
        }
    }

    fn set_target(&mut self, e: usize, r: &RouteIn, target: &(Option<String>, Option<String>)) {
        let entry = &mut self.entries[e];
        entry.target = Some(target.clone());
        entry.route = Some(r.name.clone());
    }

    /// The allow-list rules of the route's level to carry it, or why they cannot.
    fn route_on_contained(&self, i: usize, pair: &Pair) -> Result<Vec<usize>, String> {
        let level_table = pair.table.is_some();
        let base: Vec<usize> = (0..self.entries.len())
            .filter(|&e| self.entries[e].origin == Origin::Allow && self.entries[e].pair.table.is_some() == level_table)
            .collect();
        if base.is_empty() {
            return Err(format!(
                "the allow list has no {} entries",
                if level_table { "`do-tables`" } else { "`do-dbs`" }
            ));
        }
        let mut hosts = Vec::new();
        for &e in &base {
            let p = &self.entries[e].pair;
            if self.pair_sub(p, pair, true) {
                hosts.push(e);
            } else if !self.pair_disjoint(p, pair) {
                return Err(format!(
                    "allow entry {} is neither provably inside it nor provably apart from it",
                    p.show()
                ));
            }
        }
        if level_table {
            // Tables DM lets through by mixing entries must be covered too.
            for t in &self.tables {
                let covered = hosts.iter().any(|&h| self.pair_sub(t, &self.entries[h].pair, false));
                if !covered && !self.pair_disjoint(t, pair) {
                    return Err(format!("allow entries combine into {}, which no single entry carries", t.show()));
                }
            }
        }
        if hosts.is_empty() {
            return Err("it contains none of them".into());
        }
        // Keep the largest: a table in two hosts would match two routes, which DM refuses.
        let maximal: Vec<usize> = hosts
            .iter()
            .copied()
            .filter(|&h| {
                !hosts.iter().any(|&o| {
                    o != h
                        && self.pair_sub(&self.entries[h].pair, &self.entries[o].pair, false)
                        && !(self.pair_sub(&self.entries[o].pair, &self.entries[h].pair, false) && o > h)
                })
            })
            .collect();
        for (x, &a) in maximal.iter().enumerate() {
            for &b in &maximal[x + 1..] {
                if !self.pair_disjoint(&self.entries[a].pair, &self.entries[b].pair) {
                    return Err(format!(
                        "allow entries {} and {} overlap: with the route on both, DM would refuse the tables in both",
                        self.entries[a].pair.show(),
                        self.entries[b].pair.show()
                    ));
                }
            }
        }
        for &h in &maximal {
            if let Some(other) = &self.entries[h].route {
                return Err(format!("allow entry {} already carries route `{other}`", self.entries[h].pair.show()));
            }
            for (j, rp) in self.route_pairs.iter().enumerate() {
                let Some(rp) = rp else { continue };
                if j != i && rp.table.is_some() == level_table && !self.pair_disjoint(&self.entries[h].pair, rp) {
                    return Err(format!(
                        "allow entry {} is also matched by route `{}`",
                        self.entries[h].pair.show(),
                        self.routes[j].name
                    ));
                }
            }
        }
        Ok(maximal)
    }

    // --- filters --------------------------------------------------------------------------------------------------

    fn filters(&mut self, filters: &[FilterIn]) {
        // DM keeps the first valid rule per (schema, table) pattern, whatever its action.
        let mut seen: Vec<(Pair, usize)> = Vec::new();
        for (fi, f) in filters.iter().enumerate() {
            // The caller passes only patterns DM accepts for filters.
            let Some(schema) = self.filter_names(&f.schema) else { continue };
            let table = if f.table.is_empty() {
                None
            } else {
                match self.filter_names(&f.table) {
                    Some(t) => Some(t),
                    None => continue,
                }
            };
            let pair = Pair { schema, table };
            if let Some((_, first)) = seen.iter().find(|(p, _)| p.same(&pair)) {
                self.out.notes.push((
                    f.ptr.clone(),
                    format!(
                        "binlog filter `{}` has the same patterns as `{}`, which DM applies instead (it keeps the \
                         first rule per pattern); not converted",
                        f.name, filters[*first].name
                    ),
                ));
                continue;
            }
            seen.push((pair.clone(), fi));
            self.filter(fi, f, &pair);
        }
    }

    fn filter(&mut self, fi: usize, f: &FilterIn, pair: &Pair) {
        let allowed = self.allowed_regions();
        let touches = allowed.iter().any(|a| !self.region_apart(a, pair));
        if !touches {
            self.out.notes.push((
                f.ptr.clone(),
                format!(
                    "binlog filter `{}` ({}) applies to nothing the allow list replicates: it has no effect; not \
                     converted",
                    f.name,
                    pair.show()
                ),
            ));
            return;
        }
        if f.action != Action::Ignore {
            let (action, effect) = match f.action {
                Action::Do => ("Do", "the events it does not select would be replicated"),
                _ => ("Error", "the events that stop the task would be replicated"),
            };
            self.refuse(
                &f.ptr,
                format!("binlog filter `{}` with `action: {action}`", f.name),
                format!("DM's OpenAPI binlog filters only ignore events; leaving it out, {effect}"),
                "rewrite it as an `Ignore` filter of the events to skip (DM's OpenAPI filters always ignore), or keep \
                 this task in dmctl",
            );
            return;
        }
        // 1. The rule with the same patterns.
        if let Some(e) = self.find(pair).filter(|&e| self.entries[e].pair.can_host_filter()) {
            self.entries[e].filters.push(fi);
            return;
        }
        // 2. The rules it contains, when they cover everything it applied to.
        let contained: Vec<usize> = (0..self.entries.len())
            .filter(|&e| {
                let p = &self.entries[e].pair;
                p.can_host_filter() && self.filter_regions(p).iter().all(|r| self.region_in(r, pair))
            })
            .collect();
        // Only the largest: a rule inside another host adds nothing (and would need a merged filter).
        let inside = |a: usize, b: usize| {
            self.filter_regions(&self.entries[a].pair).iter().all(|r| self.region_in(r, &self.entries[b].pair))
        };
        let hosts: Vec<usize> = contained
            .iter()
            .copied()
            .filter(|&h| !contained.iter().any(|&o| o != h && inside(h, o) && !(inside(o, h) && o > h)))
            .collect();
        let uncovered: Vec<String> = allowed
            .iter()
            .filter(|a| !self.region_apart(a, pair) && !hosts.iter().any(|&h| self.region_in(a, &self.entries[h].pair)))
            .map(region_show)
            .collect();
        if uncovered.is_empty() && !hosts.is_empty() {
            let shown: Vec<String> = hosts.iter().map(|&h| self.entries[h].pair.show()).collect();
            for &h in &hosts {
                self.entries[h].filters.push(fi);
            }
            if !(hosts.len() == 1 && self.entries[hosts[0]].pair.same(pair)) {
                self.out.notes.push((
                    f.ptr.clone(),
                    format!(
                        "binlog filter `{}` ({}) is attached to the rule(s) {} it contains, which cover every \
                         replicated table it applied to (DM's own converter also attaches filters to existing rules)",
                        f.name,
                        pair.show(),
                        shown.join(", ")
                    ),
                ));
            }
            return;
        }
        // 3. A new rule with the filter's patterns, when it adds nothing to the allow list.
        let new_rule =
            if pair.schema.text().starts_with('~') || pair.table.as_ref().is_some_and(|t| t.text().starts_with('~')) {
                Err("its `~` pattern would be a regular expression in a table rule but is literal in a binlog filter"
                    .to_owned())
            } else {
                // As a table rule the same text is read as an allow-list pattern.
                let schema = self.names(pair.schema.text(), &f.ptr, true);
                let table = pair.table.as_ref().map(|t| self.names(t.text(), &f.ptr, true));
                match (schema, table) {
                    (Some(s), None) => self.add_neutral(&Pair { schema: s, table: None }),
                    (Some(s), Some(Some(t))) => self.add_neutral(&Pair { schema: s, table: Some(t) }),
                    _ => Err("its patterns are not valid allow-list patterns".to_owned()),
                }
            };
        match new_rule {
            Ok(e) => self.entries[e].filters.push(fi),
            Err(why) => self.refuse(
                &f.ptr,
                format!("binlog filter `{}` ({})", f.name, pair.show()),
                format!(
                    "DM's OpenAPI applies a filter through table rules only, and no rule set fits: the allow list \
                     replicates {} where the filter applies, but no rule it contains covers that; {why}",
                    uncovered.join(", ")
                ),
                "give the filter the patterns of a block-allow-list entry (or add one with the filter's patterns), \
                 then convert again",
            ),
        }
    }

    fn finish(&mut self, filters: &[FilterIn]) {
        let mut rules = Vec::new();
        let mut neutral = Vec::new();
        for e in &self.entries {
            let table = e.pair.table.as_ref().map(|t| t.text().to_owned()).unwrap_or_default();
            let mut names: Vec<String> = Vec::new();
            for &fi in &e.filters {
                if !names.contains(&filters[fi].name) {
                    names.push(filters[fi].name.clone());
                }
            }
            if e.origin == Origin::Neutral {
                neutral.push(e.pair.show());
            }
            rules.push(RuleOut {
                schema: e.pair.schema.text().to_owned(),
                table,
                target: e.target.clone(),
                filters: names,
            });
        }
        if !neutral.is_empty() {
            self.out.notes.push((
                self.at.clone(),
                format!(
                    "added the rule(s) {} so that the rules added for routes or filters do not narrow the \
                     allow list (in DM a `do-dbs` list and a `do-tables` list must both match; these match \
                     everything the dmctl file replicated)",
                    neutral.join(", ")
                ),
            ));
        }
        self.out.rules = rules;
    }
}

fn region_show(r: &Region) -> String {
    match r {
        Region::Schemas(s) => format!("schema-level events of `{}`", s.text()),
        Region::Tables(s, t) => format!("`{}`.`{}`", s.text(), t.text()),
    }
}

/// Merge filter definitions that meet on one rule (DM would apply only the first): the union of their events and
/// SQL patterns. `None` when a `none` event makes the union depend on order.
pub(crate) fn merge_events(parts: &[(&[String], &[String])]) -> Option<(Vec<String>, Vec<String>)> {
    let mut events: Vec<String> = Vec::new();
    let mut sql: Vec<String> = Vec::new();
    for (ev, sq) in parts {
        for e in *ev {
            if e.to_lowercase().starts_with("none") {
                return None;
            }
            if !events.iter().any(|x| x.eq_ignore_ascii_case(e)) {
                events.push(e.clone());
            }
        }
        for s in *sq {
            if !sql.contains(s) {
                sql.push(s.clone());
            }
        }
    }
    Some((events, sql))
}

/// Stable name of a merged filter: the dmctl names joined with `+`.
pub(crate) fn merged_name(names: &[String]) -> String {
    names.join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ba(dbs: &[&str], tables: &[(&str, &str)]) -> AllowList {
        AllowList {
            name: "ba".into(),
            ptr: "/ba".into(),
            do_dbs: dbs.iter().map(|d| (d.to_string(), "/d".to_string())).collect(),
            do_tables: tables.iter().map(|(s, t)| (s.to_string(), t.to_string(), "/t".to_string())).collect(),
            ..Default::default()
        }
    }

    fn filter(name: &str, s: &str, t: &str) -> FilterIn {
        FilterIn {
            name: name.into(),
            ptr: format!("/filters/{name}"),
            schema: s.into(),
            table: t.into(),
            action: Action::Ignore,
            events: vec!["drop table".into()],
            sql: vec![],
        }
    }

    fn route(name: &str, s: &str, t: &str, ts: &str) -> RouteIn {
        RouteIn {
            name: name.into(),
            ptr: format!("/routes/{name}"),
            schema: s.into(),
            table: t.into(),
            target_schema: Some(ts.into()),
            target_table: None,
        }
    }

    fn rules(o: &Outcome) -> Vec<(String, String, bool, Vec<String>)> {
        o.rules.iter().map(|r| (r.schema.clone(), r.table.clone(), r.target.is_some(), r.filters.clone())).collect()
    }

    #[test]
    fn a_star_filter_goes_on_the_existing_rule() {
        let o = carry(Case::Insensitive, "/i", Some(&ba(&["all_mode"], &[])), &[], &[filter("f", "*", "*")]);
        assert!(o.refusals.is_empty(), "{:?}", o.refusals);
        assert_eq!(rules(&o), [("all_mode".into(), "".into(), false, vec!["f".into()])]);
    }

    #[test]
    fn a_star_filter_on_a_regex_allow_list_gets_a_neutral_rule() {
        let o = carry(Case::Insensitive, "/i", Some(&ba(&["~^test.*"], &[])), &[], &[filter("f", "*", "*")]);
        assert!(o.refusals.is_empty(), "{:?}", o.refusals);
        // `~^test.*` cannot carry a filter; `~^test.*`.`*` companion + the filter's own `*`.`*` rule.
        let r = rules(&o);
        assert!(r.contains(&("*".into(), "*".into(), false, vec!["f".into()])), "{r:?}");
        assert!(r.contains(&("~^test.*".into(), "*".into(), false, vec![])), "{r:?}");
    }

    #[test]
    fn sharding_routes_go_on_the_regex_rules() {
        let o = carry(
            Case::Insensitive,
            "/i",
            Some(&ba(&["~^sharding[\\d]+"], &[("~^sharding[\\d]+", "~^t[\\d]+")])),
            &[route("t", "sharding*", "t*", "db"), route("s", "sharding*", "", "db")],
            &[],
        );
        assert!(o.refusals.is_empty(), "{:?}", o.refusals);
        assert_eq!(
            rules(&o),
            [
                ("~^sharding[\\d]+".into(), "".into(), true, vec![]),
                ("~^sharding[\\d]+".into(), "~^t[\\d]+".into(), true, vec![])
            ]
        );
    }

    #[test]
    fn a_widening_route_is_refused() {
        // `orders_e*` overlaps `orders_?` without containing it: neither its own rule nor the allow rule fits.
        let o = carry(Case::Insensitive, "/i", Some(&ba(&["orders_?"], &[])), &[route("r", "orders_e*", "", "x")], &[]);
        assert_eq!(o.refusals.len(), 1, "{:?}", o.refusals);
        // Apart from the allow list, a route changes nothing: left out.
        let o = carry(Case::Insensitive, "/i", Some(&ba(&["orders"], &[])), &[route("r", "other", "", "x")], &[]);
        assert!(o.refusals.is_empty() && o.rules.len() == 1 && o.notes.iter().any(|n| n.1.contains("no effect")));
    }

    #[test]
    fn no_allow_list_stays_everything() {
        let o = carry(Case::Insensitive, "/i", None, &[route("r", "db", "t*", "x")], &[]);
        assert!(o.refusals.is_empty());
        let r = rules(&o);
        assert!(
            r.contains(&("*".into(), "*".into(), false, vec![]))
                && r.contains(&("db".into(), "t*".into(), true, vec![]))
        );
    }

    #[test]
    fn do_and_error_filters_are_refused_unless_they_touch_nothing() {
        let mut f = filter("f", "orders", "");
        f.action = Action::Do;
        let o = carry(Case::Insensitive, "/i", Some(&ba(&["orders"], &[])), &[], &[f.clone()]);
        assert_eq!(o.refusals.len(), 1);
        let o = carry(Case::Insensitive, "/i", Some(&ba(&["shop"], &[])), &[], &[f]);
        assert!(o.refusals.is_empty() && o.notes.iter().any(|n| n.1.contains("no effect")));
    }
}
