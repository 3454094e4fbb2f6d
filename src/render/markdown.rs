//! Markdown plan for pull-request comments: summary first, details collapsed in a diff fence, a warning banner for
//! destroy/replace, and always under GitHub's 65,536-character comment limit (the details are cut, never the
//! summary; the fence and `<details>` are always closed).

use std::fmt::Write;

use super::text;
use crate::plan::{ConfigAction, Plan, PlanProblem};
use crate::ui::sanitize;

/// GitHub's comment limit, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;
/// Safety margin under the limit.
const BUDGET: usize = GITHUB_COMMENT_LIMIT - 536;
/// Rows of the summary table; more are counted, not listed (the details carry them when they fit).
const MAX_TABLE_ROWS: usize = 100;
const MAX_BANNER_NAMES: usize = 30;

/// Text from the plan (which quotes DM's names and messages) as one line of Markdown that cannot break the
/// comment's layout.
fn esc(s: &str) -> String {
    let s: String =
        if s.chars().count() > 500 { format!("{}…", s.chars().take(500).collect::<String>()) } else { s.to_string() };
    sanitize::markdown_text(&s)
}

/// The summary part: title, banner, table, warnings and the summary line.
fn summary(plan: &Plan) -> String {
    let mut out = String::new();
    let s = plan.summary();
    let changes: Vec<_> = plan.changes.iter().filter(|c| !c.is_noop()).collect();
    if changes.is_empty() {
        let _ = writeln!(out, "### dm-apply plan: no changes\n");
    } else {
        let _ =
            writeln!(out, "### dm-apply plan: {} to add, {} to change, {} to destroy\n", s.add, s.change, s.destroy);
    }
    let held: Vec<_> = changes.iter().filter(|c| c.hold.is_some()).collect();
    if !held.is_empty() {
        let _ = writeln!(out, "> [!NOTE]");
        let _ = writeln!(out, "> **{} change(s) will not be carried out by apply now:**", held.len());
        for c in held.iter().take(MAX_BANNER_NAMES) {
            if let Some(h) = &c.hold {
                let _ = writeln!(
                    out,
                    "> - `{}` {}: {} To do: {}",
                    c.address,
                    h.kind.as_str(),
                    esc(&h.reason),
                    esc(&h.remedy)
                );
            }
        }
        if held.len() > MAX_BANNER_NAMES {
            let _ = writeln!(out, "> - ... and {} more", held.len() - MAX_BANNER_NAMES);
        }
        out.push('\n');
    }
    let risky: Vec<_> =
        changes.iter().filter(|c| matches!(c.action, ConfigAction::Delete | ConfigAction::Replace)).collect();
    if !risky.is_empty() {
        let _ = writeln!(out, "> [!WARNING]");
        let _ = writeln!(out, "> **This plan destroys or replaces {} resource(s):**", risky.len());
        for c in risky.iter().take(MAX_BANNER_NAMES) {
            let extra = if text::restarts(c) { " (restarts the migration from scratch)" } else { "" };
            let address = sanitize::markdown_code(&c.address.to_string(), false);
            let _ = writeln!(out, "> - {address} {}{extra}", text::header_phrase(c));
        }
        if risky.len() > MAX_BANNER_NAMES {
            let _ = writeln!(out, "> - ... and {} more", risky.len() - MAX_BANNER_NAMES);
        }
        out.push('\n');
    }
    if !changes.is_empty() {
        let _ = writeln!(out, "| Resource | Actions | Impact |");
        let _ = writeln!(out, "|---|---|---|");
        for c in changes.iter().take(MAX_TABLE_ROWS) {
            let actions = match &c.hold {
                Some(h) => format!("{} ({})", c.actions().join(", "), h.kind.as_str()),
                None => c.actions().join(", "),
            };
            let address = sanitize::markdown_code(&c.address.to_string(), true);
            let _ = writeln!(out, "| {address} | {actions} | {} |", esc(&c.impact.describe()));
        }
        if changes.len() > MAX_TABLE_ROWS {
            let _ = writeln!(out, "| ... | {} more | |", changes.len() - MAX_TABLE_ROWS);
        }
        out.push('\n');
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(out, "{} unmanaged resource(s) in DM (not declared, left untouched).\n", plan.unmanaged.len());
    }
    for w in plan.warnings.iter().take(20) {
        let _ = writeln!(out, "> **Warning:** {}\n", esc(w));
    }
    if plan.warnings.len() > 20 {
        let _ = writeln!(out, "> ... and {} more warnings\n", plan.warnings.len() - 20);
    }
    for n in plan.notes.iter().take(20) {
        let _ = writeln!(out, "> **Note:** {}\n", esc(n));
    }
    out
}

/// Move the change symbol of each line to column 0 so GitHub's `diff` highlighting colours it.
fn diffify(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    for sym in ["-/+", "+", "-", "~"] {
        if trimmed.starts_with(sym) && trimmed[sym.len()..].starts_with(' ') {
            let col0 = match sym {
                "-/+" | "~" => "!",
                other => other,
            };
            // Keep the column layout: the symbol moves to column 0, its old place becomes blank.
            let rest = &trimmed[sym.len()..];
            return format!("{col0}{}{rest}", " ".repeat((indent + sym.len()).saturating_sub(col0.len())));
        }
    }
    line.to_string()
}

/// The whole comment. Always fewer than [`GITHUB_COMMENT_LIMIT`] characters.
pub fn render(plan: &Plan) -> String {
    render_with_errors(plan, &[])
}

/// Like [`render`], with the problems that refused the plan in a banner at the top.
pub fn render_with_errors(plan: &Plan, errors: &[PlanProblem]) -> String {
    let mut head = String::new();
    if !errors.is_empty() {
        let _ = writeln!(head, "> [!CAUTION]");
        let _ = writeln!(head, "> **This plan is refused; apply will not run it:**");
        for e in errors.iter().take(MAX_BANNER_NAMES) {
            let _ = writeln!(head, "> - {}", esc(&e.to_string()));
        }
        if errors.len() > MAX_BANNER_NAMES {
            let _ = writeln!(head, "> - ... and {} more", errors.len() - MAX_BANNER_NAMES);
        }
        head.push('\n');
    }
    head.push_str(&summary(plan));
    head.push_str(&super::preview::markdown(plan));
    let last = if plan.has_changes() { text::summary_line(plan) } else { text::NO_CHANGES.to_string() };
    let tail = format!("**{last}**\n");
    // The preview is shown above (with collapsed table lists), not again in the details.
    let body = text::render(&Plan { preview: None, ..plan.clone() }, false);
    // The legend keeps its symbols; resource blocks get GitHub diff colouring.
    let mut in_blocks = false;
    let lines: Vec<String> = body
        .lines()
        .map(|l| {
            if l.starts_with("dm-apply will perform") || l.starts_with("Changes that apply will NOT") {
                in_blocks = true;
            }
            if in_blocks { diffify(l) } else { l.to_string() }
        })
        .collect();
    // A fence longer than any backtick run in the content (values may hold backticks).
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let open = format!("<details><summary>Show plan details</summary>\n\n{fence}diff\n");
    let close = format!("{fence}\n\n</details>\n\n");
    let fixed = head.chars().count() + tail.chars().count() + open.chars().count() + close.chars().count();
    if fixed + 200 >= BUDGET {
        // Even the summary is too long (cannot happen with the row caps, but never exceed the limit).
        let cut: String = head.chars().take(BUDGET.saturating_sub(tail.chars().count() + 100)).collect();
        return format!("{cut}\n\n... summary truncated\n\n{tail}");
    }
    let mut budget = BUDGET - fixed - 200;
    let mut details = String::new();
    let mut cut_lines = 0;
    for (i, l) in lines.iter().enumerate() {
        let n = l.chars().count() + 1;
        if n > budget {
            cut_lines = lines.len() - i;
            break;
        }
        budget -= n;
        details.push_str(l);
        details.push('\n');
    }
    if cut_lines > 0 {
        let _ = writeln!(
            details,
            "... output truncated: {cut_lines} more lines (GitHub's comment limit); run `dm-apply plan` or use -o json \
             for the full plan"
        );
    }
    head.push_str(&open);
    head.push_str(&details);
    head.push_str(&close);
    head.push_str(&tail);
    head
}
