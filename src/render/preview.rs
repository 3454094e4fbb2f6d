//! The replication preview section of each output format (docs/plan.md "Preview"). Upstream names come from DM:
//! every one goes through `crate::ui::sanitize`.

use std::fmt::Write;

use serde_json::Value;

use crate::plan::Plan;
use crate::preview::{CaseView, CrossStatus, Mapping, Preview, Reroute, SourcePreview, Target, TaskPreview};
use crate::ui::sanitize::{inline, markdown_code, markdown_text};

/// Tables listed per list in text output.
const TEXT_LIST: usize = 20;
/// Tables listed per list in a pull-request comment.
const MARKDOWN_LIST: usize = 50;
/// Characters the markdown section may take (the comment's limit is shared with the plan details).
const MARKDOWN_BUDGET: usize = 20_000;

fn plural(n: usize, one: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") }
}

fn name(schema: &str, table: &str) -> String {
    format!("{schema}.{table}")
}

fn target(t: &Target) -> String {
    name(&t.schema, &t.table)
}

/// "starts replicating 2 tables, stops 1, now routes 1 to a different target".
fn headline(starts: usize, stops: usize, reroutes: usize) -> String {
    let mut parts = vec![];
    if starts > 0 {
        parts.push(format!("starts replicating {}", plural(starts, "table")));
    }
    if stops > 0 {
        parts.push(format!("stops {}", plural(stops, "table")));
    }
    if reroutes > 0 {
        parts.push(format!("now routes {} to a different target", plural(reroutes, "table")));
    }
    if parts.is_empty() { "replicates the same tables to the same targets".to_string() } else { parts.join(", ") }
}

fn counts(before: Option<usize>, after: Option<usize>) -> String {
    match (before, after) {
        (Some(b), Some(a)) => format!("{b} -> {a} tables"),
        (None, Some(a)) => format!("{} after the change", plural(a, "table")),
        (Some(b), None) => format!("{} now, none after", plural(b, "table")),
        (None, None) => "not previewed".to_string(),
    }
}

fn case_note(c: CaseView) -> &'static str {
    match c {
        CaseView::Sensitive => ", case-sensitive",
        CaseView::AssumedInsensitive => ", assumed case-insensitive",
        CaseView::Irrelevant => "",
    }
}

fn cross_line(s: &SourcePreview) -> Option<String> {
    let cc = s.cross_check.as_ref()?;
    Some(match cc.status {
        CrossStatus::Agrees => {
            format!("DM's migrate_targets agree with what dm-apply computes the task replicates now ({})", cc.dm_tables)
        }
        CrossStatus::Disagrees => format!(
            "DM's migrate_targets DISAGREE with dm-apply's computation of what the task replicates now: {} only in \
             DM's list, {} only in dm-apply's, {} routed differently",
            cc.only_in_dm.count, cc.only_in_dm_apply.count, cc.routed_differently.count
        ),
        CrossStatus::Unavailable => {
            format!("not checked against DM's migrate_targets: {}", cc.detail.as_deref().unwrap_or("unavailable"))
        }
    })
}

// ------------------------------------------------------------------------------------------------------ text

fn text_mappings(out: &mut String, sym: &str, list: &[Mapping], count: usize, pad: &str) {
    for m in list.iter().take(TEXT_LIST) {
        let _ = writeln!(out, "{pad}{sym} {} -> {}", inline(&name(&m.schema, &m.table)), inline(&target(&m.target)));
    }
    if count > TEXT_LIST.min(list.len()) {
        let _ = writeln!(out, "{pad}  ... and {} more (-o json lists them)", count - TEXT_LIST.min(list.len()));
    }
}

fn text_reroutes(out: &mut String, list: &[Reroute], count: usize, pad: &str, what: &str) {
    for r in list.iter().take(TEXT_LIST) {
        let _ = writeln!(
            out,
            "{pad}~ {}: {} -> {}{what}",
            inline(&name(&r.schema, &r.table)),
            inline(&target(&r.before)),
            inline(&target(&r.after))
        );
    }
    if count > TEXT_LIST.min(list.len()) {
        let _ = writeln!(out, "{pad}  ... and {} more (-o json lists them)", count - TEXT_LIST.min(list.len()));
    }
}

/// The task's one-line summary ("not previewed" when no source could be).
fn task_headline(t: &TaskPreview) -> String {
    if t.sources.iter().all(|s| s.error.is_some()) {
        return "not previewed (see below)".to_string();
    }
    format!("{} ({})", headline(t.starts, t.stops, t.reroutes), counts(t.before, Some(t.after)))
}

fn text_task(out: &mut String, t: &TaskPreview) {
    let _ = writeln!(out, "  # {} ({}): {}", inline(&t.address.to_string()), t.action, task_headline(t));
    for s in &t.sources {
        let _ = writeln!(out, "    source {} ({}{}):", inline(&s.source), counts(s.before, s.after), case_note(s.case));
        if let Some(e) = &s.error {
            let _ = writeln!(out, "      not previewed: {}", inline(e));
        }
        text_mappings(out, "+", &s.starts.tables, s.starts.count, "      ");
        text_mappings(out, "-", &s.stops.tables, s.stops.count, "      ");
        text_reroutes(out, &s.reroutes.tables, s.reroutes.count, "      ", "");
        if s.error.is_none() && !s.complete {
            let _ = writeln!(out, "      (incomplete: some table lists were not read; counts are lower bounds)");
        }
        if let Some(line) = cross_line(s) {
            let _ = writeln!(out, "      {}", inline(&line));
        }
        if let Some(cc) = s.cross_check.as_ref().filter(|c| c.status == CrossStatus::Disagrees) {
            if cc.only_in_dm.count > 0 {
                let _ = writeln!(out, "      only in DM's list (dm-apply computes them as not replicated):");
                text_mappings(out, "?", &cc.only_in_dm.tables, cc.only_in_dm.count, "        ");
            }
            if cc.only_in_dm_apply.count > 0 {
                let _ = writeln!(out, "      only in dm-apply's computation (DM does not list them):");
                text_mappings(out, "?", &cc.only_in_dm_apply.tables, cc.only_in_dm_apply.count, "        ");
            }
            if cc.routed_differently.count > 0 {
                let _ = writeln!(out, "      routed differently (dm-apply -> DM):");
                text_reroutes(out, &cc.routed_differently.tables, cc.routed_differently.count, "        ", "");
            }
        }
    }
    for w in &t.warnings {
        let _ = writeln!(out, "    Warning ({}): {}", w.kind.as_str(), inline(&w.message));
    }
}

/// The text section, empty when the plan has no preview.
pub fn text(plan: &Plan) -> String {
    let Some(p) = &plan.preview else { return String::new() };
    text_of(p)
}

fn text_of(p: &Preview) -> String {
    let mut out = String::new();
    if p.tasks.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "Replication preview (upstream tables each changed task replicates, as DM matches them; {} to DM):\n",
        plural(p.requests, "request")
    );
    for t in &p.tasks {
        text_task(&mut out, t);
        out.push('\n');
    }
    for n in &p.notes {
        let _ = writeln!(out, "Note: {}", inline(n));
    }
    if !p.notes.is_empty() {
        out.push('\n');
    }
    out
}

// -------------------------------------------------------------------------------------------------- markdown

fn md_name(schema: &str, table: &str) -> String {
    markdown_code(&name(schema, table), true)
}

fn md_rows(out: &mut String, sym: &str, list: &[Mapping], count: usize) {
    for m in list.iter().take(MARKDOWN_LIST) {
        let _ = writeln!(
            out,
            "| {sym} | {} | {} |",
            md_name(&m.schema, &m.table),
            md_name(&m.target.schema, &m.target.table)
        );
    }
    if count > MARKDOWN_LIST.min(list.len()) {
        let _ = writeln!(out, "| {sym} | ... and {} more | |", count - MARKDOWN_LIST.min(list.len()));
    }
}

fn md_reroutes(out: &mut String, list: &[Reroute], count: usize) {
    for r in list.iter().take(MARKDOWN_LIST) {
        let _ = writeln!(
            out,
            "| ~ | {} | {} → {} |",
            md_name(&r.schema, &r.table),
            md_name(&r.before.schema, &r.before.table),
            md_name(&r.after.schema, &r.after.table)
        );
    }
    if count > MARKDOWN_LIST.min(list.len()) {
        let _ = writeln!(out, "| ~ | ... and {} more | |", count - MARKDOWN_LIST.min(list.len()));
    }
}

fn md_source(t: &TaskPreview, s: &SourcePreview) -> String {
    let mut out = String::new();
    let summary = format!(
        "{} from source {}: {} ({}{})",
        markdown_text(&t.address.to_string()),
        markdown_text(&s.source),
        headline(s.starts.count, s.stops.count, s.reroutes.count),
        counts(s.before, s.after),
        case_note(s.case)
    );
    let _ = writeln!(out, "<details><summary>{summary}</summary>\n");
    if let Some(e) = &s.error {
        let _ = writeln!(out, "Not previewed: {}\n", markdown_text(e));
    }
    if s.starts.count + s.stops.count + s.reroutes.count > 0 {
        let _ = writeln!(out, "| | Upstream table | Target |");
        let _ = writeln!(out, "|---|---|---|");
        md_rows(&mut out, "+", &s.starts.tables, s.starts.count);
        md_rows(&mut out, "−", &s.stops.tables, s.stops.count);
        md_reroutes(&mut out, &s.reroutes.tables, s.reroutes.count);
        out.push('\n');
    }
    if let Some(line) = cross_line(s) {
        let _ = writeln!(out, "{}\n", markdown_text(&line));
    }
    if let Some(cc) = s.cross_check.as_ref().filter(|c| c.status == CrossStatus::Disagrees) {
        let _ = writeln!(out, "| | Upstream table | Target |");
        let _ = writeln!(out, "|---|---|---|");
        md_rows(&mut out, "only DM", &cc.only_in_dm.tables, cc.only_in_dm.count);
        md_rows(&mut out, "only dm-apply", &cc.only_in_dm_apply.tables, cc.only_in_dm_apply.count);
        md_reroutes(&mut out, &cc.routed_differently.tables, cc.routed_differently.count);
        out.push('\n');
    }
    let _ = writeln!(out, "</details>\n");
    out
}

/// The markdown section (a summary table, the warnings, and the tables in collapsed blocks), at most
/// [`MARKDOWN_BUDGET`] characters; empty when the plan has no preview.
pub fn markdown(plan: &Plan) -> String {
    let Some(p) = plan.preview.as_ref().filter(|p| !p.tasks.is_empty()) else { return String::new() };
    let mut out = String::new();
    let _ = writeln!(out, "#### Replication preview\n");
    let _ = writeln!(out, "| Task | Starts | Stops | Re-routed | Tables |");
    let _ = writeln!(out, "|---|---:|---:|---:|---|");
    for t in p.tasks.iter().take(100) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            markdown_code(&t.address.to_string(), true),
            t.starts,
            t.stops,
            t.reroutes,
            if t.sources.iter().all(|s| s.error.is_some()) {
                "not previewed".to_string()
            } else {
                counts(t.before, Some(t.after)).replace("->", "→")
            }
        );
    }
    if p.tasks.len() > 100 {
        let _ = writeln!(out, "| ... {} more | | | | |", p.tasks.len() - 100);
    }
    out.push('\n');
    let warnings: Vec<_> = p.warnings().collect();
    if !warnings.is_empty() {
        let _ = writeln!(out, "> [!WARNING]");
        let _ = writeln!(out, "> **Replication preview: {}**", plural(warnings.len(), "warning"));
        for (t, w) in warnings.iter().take(30) {
            let _ = writeln!(
                out,
                "> - {} ({}): {}",
                markdown_code(&t.address.to_string(), false),
                w.kind.as_str(),
                markdown_text(&w.message)
            );
        }
        if warnings.len() > 30 {
            let _ = writeln!(out, "> - ... and {} more", warnings.len() - 30);
        }
        out.push('\n');
    }
    for n in &p.notes {
        let _ = writeln!(out, "> **Note:** {}\n", markdown_text(n));
    }
    let mut cut = 0;
    for t in &p.tasks {
        for s in &t.sources {
            let block = md_source(t, s);
            if cut > 0 || out.chars().count() + block.chars().count() > MARKDOWN_BUDGET {
                cut += 1;
                continue;
            }
            out.push_str(&block);
        }
    }
    if cut > 0 {
        let _ = writeln!(out, "... {} more preview block(s) left out (comment size); `-o json` has them all\n", cut);
    }
    out
}

// ------------------------------------------------------------------------------------------------------ json

/// The `preview` value of `-o json` (`null` when not computed).
pub fn json(plan: &Plan) -> Value {
    plan.preview.as_ref().and_then(|p| serde_json::to_value(p).ok()).unwrap_or(Value::Null)
}
