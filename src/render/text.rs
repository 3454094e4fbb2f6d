//! Text plan for people, in the conventions Terraform users know.

use std::fmt::Write;

use serde_json::Value;

use crate::normalize;
use crate::plan::{ConfigAction, HoldKind, Impact, Plan, ResourceChange, RuntimeAction};
use crate::secret::SENSITIVE;
use crate::ui::sanitize::{inline, multiline};

/// The last line when nothing is to be done.
pub const NO_CHANGES: &str = "No changes. DM cluster matches the configuration.";

/// Width at which the comment lines of a resource block (reasons, holds, impact) are wrapped, so that they stay
/// inside a terminal and a pull-request comment's code block.
pub const WRAP: usize = 100;

/// The last line of a plan: [`summary_line`] when something differs; else [`NO_CHANGES`], or, when DM holds
/// resources the configuration does not declare, a line that says so (DM does not match the configuration then).
pub fn last_line(plan: &Plan) -> String {
    if plan.has_changes() {
        summary_line(plan)
    } else if plan.unmanaged.is_empty() {
        NO_CHANGES.to_string()
    } else {
        let n = plan.unmanaged.len();
        format!(
            "No changes to managed resources; {n} unmanaged resource{} in DM (listed above).",
            if n == 1 { "" } else { "s" }
        )
    }
}

/// Words of `text` in lines of at most `width` characters (a longer word stays whole on its own line).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![];
    let mut cur = String::new();
    let mut len = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let n = word.chars().count();
        if len > 0 && len + 1 + n > width {
            lines.push(std::mem::take(&mut cur));
            len = 0;
        }
        if len > 0 {
            cur.push(' ');
            len += 1;
        }
        cur.push_str(word);
        len += n;
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// A `# ...` comment line of a resource block, wrapped at [`WRAP`]: `first` starts the first line, `cont` the
/// others (aligned under the text).
fn comment(out: &mut String, first: &str, text: &str, end: &str, cont: &str) {
    let width = WRAP.saturating_sub(first.chars().count()).max(20);
    let lines = wrap(&format!("{text}{end}"), width);
    for (i, l) in lines.iter().enumerate() {
        let _ = writeln!(out, "{}{l}", if i == 0 { first } else { cont });
    }
}

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

/// The plan's symbols and emphasis, painted by the one style helper.
#[derive(Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        crate::ui::style::Style::new(self.color).paint(code, s)
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
                    RuntimeAction::StopRelay => "relay stopped",
                    RuntimeAction::Transfer => "transferred",
                    RuntimeAction::StartRelay => "relay started",
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
    let shown = c.display.as_ref().map_or(&c.attributes, |d| &d.attributes);
    match c.action {
        ConfigAction::Create | ConfigAction::Delete if c.display.is_some() => {
            let sym = if c.action == ConfigAction::Create { "+" } else { "-" };
            for a in shown {
                let Some(v) = (if c.action == ConfigAction::Create { &a.after } else { &a.before }) else { continue };
                let value = indent_block(&fmt_value(v), &format!("{pad}  "));
                let _ = writeln!(out, "{pad}{} {} = {value}", st.sym(sym), inline(&a.path));
            }
            if let (ConfigAction::Create, Some(stage)) = (c.action, c.desired_stage) {
                let _ = writeln!(out, "{pad}{} stage = {}", st.sym("+"), serde_json::json!(stage));
            }
            let n = c.display.as_ref().map_or(0, |d| d.defaults_hidden);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "{pad}  # ({n} value{} equal to DM's defaults hidden)",
                    if n == 1 { "" } else { "s" }
                );
            }
        }
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
            for a in shown {
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
                        // Lists that do not fit one line side by side read better as a line diff.
                        let wide = pad.len() + path.chars().count() + o.chars().count() + n.chars().count() + 9 > WRAP
                            && (old.is_array() || old.is_object())
                            && (new.is_array() || new.is_object());
                        if o.contains('\n') || n.contains('\n') || wide {
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
            RuntimeAction::StopRelay => "stop relay (POST /relay/disable)",
            RuntimeAction::Transfer => "transfer source to another worker (POST /transfer)",
            RuntimeAction::StartRelay => "start relay (POST /relay/enable)",
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
        comment(&mut out, "  # why: ", &inline(&h.reason), "", "  #      ");
        comment(&mut out, "  # to do: ", &inline(&h.remedy), "", "  #        ");
    }
    for r in &c.reasons {
        comment(&mut out, "  # (", &inline(r), ")", "  #  ");
    }
    comment(&mut out, "  # impact: ", &inline(&c.describe_impact()), "", "  #         ");
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

/// The paragraphs of a text plan before its notes (legend, headings, one per resource block), each ending with a
/// newline; the plan prints them separated by blank lines. Markdown packs them into comments.
pub fn paragraphs(plan: &Plan, color: bool) -> Vec<String> {
    let st = Style { color };
    let mut out = vec![];
    let changes: Vec<&ResourceChange> = plan.changes.iter().filter(|c| !c.is_noop()).collect();
    let (held, actionable): (Vec<&ResourceChange>, Vec<&ResourceChange>) =
        changes.iter().partition(|c| c.hold.is_some());
    if !changes.is_empty() {
        out.push(legend(plan, st));
    }
    if !actionable.is_empty() {
        out.push("dm-apply will perform the following actions:\n".to_string());
        // Destroys and replacements first: they are the risky ones.
        let risky = |c: &&&ResourceChange| matches!(c.action, ConfigAction::Delete | ConfigAction::Replace);
        for c in actionable.iter().filter(risky).chain(actionable.iter().filter(|c| !risky(c))) {
            out.push(resource_block(c, color));
        }
    }
    if !held.is_empty() {
        // Listed apart: apply does not carry these out, and a reviewer must not mistake them for done.
        out.push("Changes that apply will NOT carry out now (deferred or blocked):\n".to_string());
        for c in &held {
            out.push(resource_block(c, color));
        }
    }
    out
}

/// The whole text plan. Ends with [`last_line`].
pub fn render(plan: &Plan, color: bool) -> String {
    let st = Style { color };
    let mut out = String::new();
    for p in paragraphs(plan, color) {
        out.push_str(&p);
        out.push('\n');
    }
    out.push_str(&super::preview::text(plan));
    out.push_str(&notes(plan));
    let last = last_line(plan);
    out.push_str(&if plan.has_changes() { st.bold(&last) } else { last });
    out.push('\n');
    out
}

/// Whether the impact restarts a migration (for banners).
pub fn restarts(c: &ResourceChange) -> bool {
    matches!(c.impact, Impact::Replace { restarts_migration: true, .. })
}
