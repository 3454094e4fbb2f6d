//! Text plan for people, in the conventions Terraform users know.

use std::fmt::Write;

use serde_json::Value;

use crate::normalize;
use crate::plan::{ConfigAction, HoldKind, Impact, Plan, ResourceChange, RuntimeAction};
use crate::secret::SENSITIVE;
use crate::ui::sanitize::{inline, multiline};

/// The last line when nothing is to be done.
pub const NO_CHANGES: &str = "No changes. DM cluster matches the configuration.";

/// `Plan: X to add, Y to change, Z to destroy.` (tools parse this line; keep that part exact), followed by the
/// held changes when there are some: ` Not applied now: 1 deferred, 1 blocked.`
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    let mut line = format!("Plan: {} to add, {} to change, {} to destroy.", s.add, s.change, s.destroy);
    if s.deferred + s.blocked > 0 {
        let _ = write!(line, " Not applied now: {} deferred, {} blocked.", s.deferred, s.blocked);
    }
    line
}

#[derive(Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
    fn sym(&self, sym: &str) -> String {
        let code = match sym.trim() {
            "+" => "32",
            "-" => "31",
            "~" => "33",
            _ => "35",
        };
        self.paint(code, sym)
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// Symbol column (3 characters) of a change.
pub fn symbol(c: &ResourceChange) -> &'static str {
    match c.action {
        ConfigAction::Create => "  +",
        ConfigAction::Delete => "  -",
        ConfigAction::Replace => "-/+",
        ConfigAction::Update | ConfigAction::NoOp => "  ~",
    }
}

/// `will be created` etc.
pub fn header_phrase(c: &ResourceChange) -> String {
    match c.action {
        ConfigAction::Create => "will be created".into(),
        ConfigAction::Update => "will be updated in-place".into(),
        ConfigAction::Replace => "must be replaced".into(),
        ConfigAction::Delete => "will be destroyed".into(),
        ConfigAction::NoOp => {
            let verbs: Vec<&str> = c
                .runtime
                .iter()
                .map(|r| match r {
                    RuntimeAction::Start => "started",
                    RuntimeAction::Stop => "stopped",
                    RuntimeAction::Enable => "enabled",
                    RuntimeAction::Disable => "disabled",
                })
                .collect();
            format!("will be {}", verbs.join(" and "))
        }
    }
}

/// One value on an attribute line: JSON scalars inline, short arrays inline, the rest multi-line JSON. JSON escapes
/// C0 controls; DEL, C1 and bidi controls (from values DM returned) are escaped here.
fn fmt_value(v: &Value) -> String {
    if v.as_str() == Some(SENSITIVE) {
        return SENSITIVE.to_string();
    }
    let compact = v.to_string();
    let text = match v {
        Value::Array(_) | Value::Object(_) if compact.chars().count() > 60 => {
            serde_json::to_string_pretty(v).unwrap_or(compact)
        }
        _ => compact,
    };
    multiline(&text).into_owned()
}

fn indent_block(s: &str, pad: &str) -> String {
    let mut out = String::new();
    for (i, l) in s.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(pad);
        }
        out.push_str(l);
    }
    out
}

/// Render the attribute lines of a change.
fn attributes(out: &mut String, c: &ResourceChange, st: Style) {
    let pad = "      ";
    match c.action {
        ConfigAction::Create | ConfigAction::Delete => {
            let (sym, v) = if c.action == ConfigAction::Create { ("+", &c.after) } else { ("-", &c.before) };
            if let Some(v) = v {
                for (path, leaf) in normalize::flatten(v) {
                    // Absent optional blocks and empty top-level sets say nothing to a reader.
                    let top_level_empty = leaf.as_object().is_some_and(|m| m.is_empty()) && !path.contains(['.', '[']);
                    if leaf.is_null() || top_level_empty {
                        continue;
                    }
                    let _ = writeln!(
                        out,
                        "{pad}{} {} = {}",
                        st.sym(sym),
                        inline(&path),
                        indent_block(&fmt_value(&leaf), &format!("{pad}  "))
                    );
                }
            }
            if let (ConfigAction::Create, Some(stage)) = (c.action, c.desired_stage) {
                let _ = writeln!(out, "{pad}{} stage = {}", st.sym("+"), serde_json::json!(stage));
            }
        }
        _ => {
            for a in &c.attributes {
                let path = inline(&a.path);
                let suffix = if a.forces_replacement { st.paint("31", " # forces replacement") } else { String::new() };
                if a.sensitive {
                    let _ = writeln!(out, "{pad}{} {} = {SENSITIVE}{suffix}", st.sym("~"), path);
                    continue;
                }
                match (&a.before, &a.after) {
                    (None, Some(new)) => {
                        let _ = writeln!(
                            out,
                            "{pad}{} {} = {}{suffix}",
                            st.sym("+"),
                            path,
                            indent_block(&fmt_value(new), &format!("{pad}  "))
                        );
                    }
                    (Some(old), None) => {
                        let _ = writeln!(
                            out,
                            "{pad}{} {} = {}{suffix}",
                            st.sym("-"),
                            path,
                            indent_block(&fmt_value(old), &format!("{pad}  "))
                        );
                    }
                    (Some(old), Some(new)) => {
                        let (o, n) = (fmt_value(old), fmt_value(new));
                        if o.contains('\n') || n.contains('\n') {
                            let _ = writeln!(out, "{pad}{} {} = (multi-line){suffix}", st.sym("~"), path);
                            let po = serde_json::to_string_pretty(old).unwrap_or(o.clone());
                            let pn = serde_json::to_string_pretty(new).unwrap_or(n.clone());
                            let diff = similar::TextDiff::from_lines(&po, &pn);
                            for ch in diff.iter_all_changes() {
                                let (sym, line) = match ch.tag() {
                                    similar::ChangeTag::Delete => (st.sym("-"), ch.value()),
                                    similar::ChangeTag::Insert => (st.sym("+"), ch.value()),
                                    similar::ChangeTag::Equal => (" ".to_string(), ch.value()),
                                };
                                let _ = writeln!(out, "{pad}    {sym} {}", inline(line.trim_end_matches('\n')));
                            }
                        } else {
                            let _ = writeln!(out, "{pad}{} {} = {o} -> {n}{suffix}", st.sym("~"), path);
                        }
                    }
                    (None, None) => {}
                }
            }
            if c.unchanged_attributes > 0 && c.action != ConfigAction::NoOp {
                let n = c.unchanged_attributes;
                let _ = writeln!(out, "{pad}  # ({n} unchanged attribute{} hidden)", if n == 1 { "" } else { "s" });
            }
        }
    }
    for r in &c.runtime {
        let line = match r {
            RuntimeAction::Start => "start task",
            RuntimeAction::Stop => "stop task",
            RuntimeAction::Enable => "enable source (POST /enable)",
            RuntimeAction::Disable => "disable source (POST /disable)",
        };
        let _ = writeln!(out, "{pad}{} {}", st.sym(">"), st.bold(line));
    }
}

/// One resource block (header comments, symbol line, attributes).
pub fn resource_block(c: &ResourceChange, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    let address = inline(&c.address.to_string()).into_owned();
    let _ = writeln!(out, "  {}", st.bold(&format!("# {address} {}", header_phrase(c))));
    if let Some(h) = &c.hold {
        let what = match h.kind {
            HoldKind::Deferred => "DEFERRED: apply leaves this change for a later run",
            HoldKind::Blocked => "BLOCKED: DM refuses this change now; apply leaves it alone",
        };
        let _ = writeln!(out, "  {}", st.paint("33", &format!("# {what}")));
        let _ = writeln!(out, "  # why: {}", inline(&h.reason));
        let _ = writeln!(out, "  # to do: {}", inline(&h.remedy));
    }
    for r in &c.reasons {
        let _ = writeln!(out, "  # ({})", inline(r));
    }
    let _ = writeln!(out, "  # impact: {}", inline(&c.impact.describe()));
    if let Some(o) = &c.origin {
        let _ = writeln!(out, "  # declared at {}:{}", inline(&o.file), o.line);
    }
    let _ = writeln!(out, "{} {} \"{}\" {{", st.sym(symbol(c)), c.address.kind.as_str(), inline(&c.address.name));
    attributes(&mut out, c, st);
    let _ = writeln!(out, "    }}");
    out
}

/// The legend for the symbols present.
fn legend(plan: &Plan, st: Style) -> String {
    let mut out = String::from("Resource actions are indicated with the following symbols:\n");
    let has = |f: &dyn Fn(&ResourceChange) -> bool| plan.changes.iter().any(f);
    if has(&|c| c.action == ConfigAction::Create) {
        let _ = writeln!(out, "  {} create", st.sym("+"));
    }
    if has(&|c| matches!(c.action, ConfigAction::Update | ConfigAction::NoOp)) {
        let _ = writeln!(out, "  {} update in-place (or start/stop/enable/disable)", st.sym("~"));
    }
    if has(&|c| c.action == ConfigAction::Delete) {
        let _ = writeln!(out, "  {} destroy", st.sym("-"));
    }
    if has(&|c| c.action == ConfigAction::Replace) {
        let _ = writeln!(out, "{} destroy and then create replacement", st.sym("-/+"));
    }
    if has(&|c| !c.runtime.is_empty()) {
        let _ = writeln!(out, "  {} runtime operation", st.sym(">"));
    }
    out
}

/// Unmanaged resources and warnings (shown before the last line).
pub fn notes(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(out, "Unmanaged resources (in DM, not declared; left untouched):");
        for u in &plan.unmanaged {
            let _ = writeln!(out, "  {}: {}", inline(&u.address.to_string()), inline(&u.note));
        }
        out.push('\n');
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "Warning: {}", inline(w));
    }
    if !plan.warnings.is_empty() {
        out.push('\n');
    }
    for n in &plan.notes {
        let _ = writeln!(out, "Note: {n}");
    }
    if !plan.notes.is_empty() {
        out.push('\n');
    }
    out
}

/// The whole text plan. Ends with the summary line or [`NO_CHANGES`].
pub fn render(plan: &Plan, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    let changes: Vec<&ResourceChange> = plan.changes.iter().filter(|c| !c.is_noop()).collect();
    let (held, actionable): (Vec<&ResourceChange>, Vec<&ResourceChange>) =
        changes.iter().partition(|c| c.hold.is_some());
    if !changes.is_empty() {
        out.push_str(&legend(plan, st));
        out.push('\n');
    }
    if !actionable.is_empty() {
        out.push_str("dm-apply will perform the following actions:\n\n");
        // Destroys and replacements first: they are the risky ones.
        let risky = |c: &&&ResourceChange| matches!(c.action, ConfigAction::Delete | ConfigAction::Replace);
        for c in actionable.iter().filter(risky).chain(actionable.iter().filter(|c| !risky(c))) {
            out.push_str(&resource_block(c, color));
            out.push('\n');
        }
    }
    if !held.is_empty() {
        // Listed apart: apply does not carry these out, and a reviewer must not mistake them for done.
        out.push_str("Changes that apply will NOT carry out now (deferred or blocked):\n\n");
        for c in &held {
            out.push_str(&resource_block(c, color));
            out.push('\n');
        }
    }
    out.push_str(&super::preview::text(plan));
    out.push_str(&notes(plan));
    if changes.is_empty() {
        out.push_str(NO_CHANGES);
    } else {
        out.push_str(&st.bold(&summary_line(plan)));
    }
    out.push('\n');
    out
}

/// Whether the impact restarts a migration (for banners).
pub fn restarts(c: &ResourceChange) -> bool {
    matches!(c.impact, Impact::Replace { restarts_migration: true, .. })
}
