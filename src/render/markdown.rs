//! Markdown plan for pull-request comments: summary first (counts, banners, a table of resources with why and
//! impact), the text plan collapsed in a `diff` fence, and the summary line.
//!
//! GitHub refuses a comment over 65,536 characters, and a pipeline that cuts a comment with `head -c` leaves a
//! `<details>` block and a fence open. So dm-apply never writes more than [`COMMENT_BUDGET`] bytes into one
//! comment, and always closes what it opens:
//!
//! - [`render`] / [`document`]: one comment (stdout of `plan -o markdown`). Every summary is kept; the details are
//!   cut at line boundaries, fairly between clusters, with a note saying how to get everything.
//! - [`comments`]: as many comments as needed (`plan -o markdown --split-comments DIR`), nothing cut: the first
//!   holds the summary of every cluster, the details continue in the next ones, each `<details>` block and fence
//!   closed in the comment that opened it.

use std::fmt::Write;

use super::text;
use crate::plan::{ConfigAction, Plan, PlanProblem, ResourceChange};
use crate::ui::sanitize;

/// GitHub's comment limit, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;
/// The most dm-apply writes into one comment, in bytes (hence also in characters): 1,536 under GitHub's limit,
/// left for a marker or heading the pipeline adds.
pub const COMMENT_BUDGET: usize = 64_000;
/// Room kept for the `comment k of n` line of split comments.
const PART_LINE: usize = 80;
const MAX_BANNER_NAMES: usize = 30;
/// Longest "why" in the summary table, in characters.
const WHY_CHARS: usize = 120;

/// Text from the plan (which quotes DM's names and messages) as one line of Markdown that cannot break the
/// comment's layout.
fn esc(s: &str) -> String {
    esc_max(s, 500)
}

fn esc_max(s: &str, max: usize) -> String {
    let s: String =
        if s.chars().count() > max { format!("{}…", s.chars().take(max).collect::<String>()) } else { s.to_string() };
    sanitize::markdown_text(&s)
}

/// One plan of a comment: a cluster of a clusters file (with its heading), or the only one.
pub struct Section<'a> {
    /// `(name, address)` of the cluster, for plans of a clusters file.
    pub cluster: Option<(&'a str, &'a str)>,
    pub body: Body<'a>,
}

pub enum Body<'a> {
    /// A plan, with the problems that refused it (empty when it is valid).
    Plan { plan: &'a Plan, errors: &'a [PlanProblem] },
    /// The cluster could not be planned; its errors went to stderr.
    Failed,
}

/// How much of a summary is listed (less when many clusters share one comment).
#[derive(Clone, Copy)]
struct Limits {
    rows: usize,
    lines: usize,
}

const FULL: Limits = Limits { rows: 100, lines: 20 };

/// A part of the output: summaries are never split; details are split between comments at paragraph (resource
/// block) boundaries, or line boundaries for a block larger than a comment.
enum Piece {
    Text(String),
    Details { label: String, paragraphs: Vec<String> },
}

/// `3 to add, 4 to change, 3 to destroy` or what stands for it when nothing changes.
fn headline(plan: &Plan) -> String {
    let s = plan.summary();
    if plan.has_changes() {
        let mut h = format!("{} to add, {} to change, {} to destroy", s.add, s.change, s.destroy);
        if s.deferred + s.blocked > 0 {
            let _ = write!(h, " ({} deferred, {} blocked)", s.deferred, s.blocked);
        }
        h
    } else if plan.unmanaged.is_empty() {
        "no changes".to_string()
    } else {
        format!("no changes to managed resources ({} unmanaged in DM)", plan.unmanaged.len())
    }
}

/// The first reason of a change, short, for the summary table.
fn why(c: &ResourceChange) -> String {
    match c.reasons.first() {
        Some(r) => esc_max(r, WHY_CHARS),
        None => String::new(),
    }
}

fn caution(errors: &[PlanProblem]) -> String {
    let mut out = String::new();
    if errors.is_empty() {
        return out;
    }
    let _ = writeln!(out, "> [!CAUTION]");
    let _ = writeln!(out, "> **This plan is refused; apply will not run it:**");
    for e in errors.iter().take(MAX_BANNER_NAMES) {
        let _ = writeln!(out, "> - {}", esc(&e.to_string()));
    }
    if errors.len() > MAX_BANNER_NAMES {
        let _ = writeln!(out, "> - ... and {} more", errors.len() - MAX_BANNER_NAMES);
    }
    out.push('\n');
    out
}

/// The summary of one plan: banners, table, unmanaged count, warnings and notes.
fn summary(plan: &Plan, lim: Limits) -> String {
    let mut out = String::new();
    let changes: Vec<_> = plan.changes.iter().filter(|c| !c.is_noop()).collect();
    let names = lim.rows.min(MAX_BANNER_NAMES);
    let held: Vec<_> = changes.iter().filter(|c| c.hold.is_some()).collect();
    if !held.is_empty() {
        let _ = writeln!(out, "> [!NOTE]");
        let _ = writeln!(out, "> **{} change(s) will not be carried out by apply now:**", held.len());
        for c in held.iter().take(names) {
            if let Some(h) = &c.hold {
                let address = sanitize::markdown_code(&c.address.to_string(), false);
                // Reasons are clauses without a final stop; the remedy reads as its own sentence.
                let stop = if h.reason.trim_end().ends_with('.') { "" } else { "." };
                let _ = writeln!(
                    out,
                    "> - {address} {}: {}{stop} To do: {}",
                    h.kind.as_str(),
                    esc(&h.reason),
                    esc(&h.remedy)
                );
            }
        }
        if held.len() > names {
            let _ = writeln!(out, "> - ... and {} more", held.len() - names);
        }
        out.push('\n');
    }
    let risky: Vec<_> =
        changes.iter().filter(|c| matches!(c.action, ConfigAction::Delete | ConfigAction::Replace)).collect();
    if !risky.is_empty() {
        let _ = writeln!(out, "> [!WARNING]");
        let _ = writeln!(out, "> **This plan destroys or replaces {} resource(s):**", risky.len());
        for c in risky.iter().take(names) {
            let extra = if text::restarts(c) { " (restarts the migration from scratch)" } else { "" };
            let address = sanitize::markdown_code(&c.address.to_string(), false);
            let _ = writeln!(out, "> - {address} {}{extra}", text::header_phrase(c));
        }
        if risky.len() > names {
            let _ = writeln!(out, "> - ... and {} more", risky.len() - names);
        }
        out.push('\n');
    }
    if !changes.is_empty() && lim.rows > 0 {
        let _ = writeln!(out, "| Resource | Actions | Why | Impact |");
        let _ = writeln!(out, "|---|---|---|---|");
        for c in changes.iter().take(lim.rows) {
            let actions = match &c.hold {
                Some(h) => format!("{} ({})", c.actions().join(", "), h.kind.as_str()),
                None => c.actions().join(", "),
            };
            let address = sanitize::markdown_code(&c.address.to_string(), true);
            let _ = writeln!(out, "| {address} | {actions} | {} | {} |", why(c), esc(&c.describe_impact()));
        }
        if changes.len() > lim.rows {
            let _ = writeln!(out, "| ... | {} more | | |", changes.len() - lim.rows);
        }
        out.push('\n');
    } else if !changes.is_empty() {
        let _ = writeln!(out, "{} resource(s) change (listed in the details).\n", changes.len());
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "{} unmanaged resource(s) in DM (not declared, left untouched; listed in the details).\n",
            plan.unmanaged.len()
        );
    }
    for w in plan.warnings.iter().take(lim.lines) {
        let _ = writeln!(out, "> **Warning:** {}\n", esc(w));
    }
    if plan.warnings.len() > lim.lines {
        let _ = writeln!(out, "> ... and {} more warnings\n", plan.warnings.len() - lim.lines);
    }
    for n in plan.notes.iter().take(lim.lines) {
        let _ = writeln!(out, "> **Note:** {}\n", esc(n));
    }
    if plan.notes.len() > lim.lines {
        let _ = writeln!(out, "> ... and {} more notes\n", plan.notes.len() - lim.lines);
    }
    out
}

/// Move the change symbol of each line to column 0 so GitHub's `diff` highlighting colours it.
fn diffify(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    for sym in ["-/+", "+", "-", "~"] {
        if let Some(rest) = trimmed.strip_prefix(sym)
            && rest.starts_with(' ')
        {
            let col0 = match sym {
                "-/+" | "~" => "!",
                other => other,
            };
            // Keep the column layout: the symbol moves to column 0, its old place becomes blank.
            return format!("{col0}{}{rest}", " ".repeat((indent + sym.len()).saturating_sub(col0.len())));
        }
    }
    line.to_string()
}

/// The details of a plan: the text plan's paragraphs (resource blocks with diff colouring; the legend keeps its
/// symbols) and the unmanaged resources. Warnings and notes are in the summary already.
fn detail_paragraphs(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = text::paragraphs(plan, false)
        .into_iter()
        .map(|p| {
            if p.starts_with("Resource actions are indicated") {
                p
            } else {
                p.lines().map(|l| format!("{}\n", diffify(l))).collect()
            }
        })
        .collect();
    if !plan.unmanaged.is_empty() {
        let mut u = String::from("Unmanaged resources (in DM, not declared; left untouched):\n");
        for m in &plan.unmanaged {
            let _ = writeln!(u, "  {}: {}", sanitize::inline(&m.address.to_string()), sanitize::inline(&m.note));
        }
        out.push(u);
    }
    out
}

/// The pieces of the output, summaries limited by `lim`.
fn pieces(sections: &[Section], footer: Option<&str>, lim: Limits) -> Vec<Piece> {
    let mut out = vec![];
    let multi = sections.iter().any(|s| s.cluster.is_some());
    if multi {
        let n = sections.len();
        let mut head = format!("### dm-apply plan: {n} cluster(s)\n\n");
        if let Some(f) = footer {
            let _ = writeln!(head, "{}\n", esc(f));
        }
        out.push(Piece::Text(head));
    }
    let mut details = vec![];
    for s in sections {
        let mut t = String::new();
        if let Some((name, addr)) = s.cluster {
            let _ = writeln!(t, "## Cluster {} ({})\n", sanitize::markdown_code(name, false), esc(addr));
        }
        match &s.body {
            Body::Failed => {
                let _ = writeln!(t, "**plan failed**: see the errors in the job's log (stderr).\n");
                out.push(Piece::Text(t));
            }
            Body::Plan { plan, errors } => {
                t.push_str(&caution(errors));
                if s.cluster.is_none() {
                    let _ = writeln!(t, "### dm-apply plan: {}\n", headline(plan));
                }
                t.push_str(&summary(plan, lim));
                // Table lists collapsed; not repeated in the details (those come from `text::paragraphs`).
                t.push_str(&super::preview::markdown(plan));
                let last = format!("**{}**\n", esc(&text::last_line(plan)));
                let paragraphs = detail_paragraphs(plan);
                let label = match s.cluster {
                    Some((name, _)) => format!("Plan details: cluster {}", sanitize::markdown_code(name, false)),
                    None => "Show plan details".to_string(),
                };
                if s.cluster.is_some() {
                    // Every cluster's summary comes first; the details follow, one block per cluster.
                    t.push_str(&last);
                    t.push('\n');
                    out.push(Piece::Text(t));
                    if !paragraphs.is_empty() {
                        details.push(Piece::Details { label, paragraphs });
                    }
                } else {
                    out.push(Piece::Text(t));
                    if !paragraphs.is_empty() {
                        out.push(Piece::Details { label, paragraphs });
                    }
                    out.push(Piece::Text(last));
                }
            }
        }
    }
    if multi {
        if let Some(f) = footer {
            out.push(Piece::Text(format!("### Summary\n\n{}\n\n", esc(f))));
        }
        out.extend(details);
    }
    out
}

fn text_len(pieces: &[Piece]) -> usize {
    pieces.iter().map(|p| if let Piece::Text(t) = p { t.len() } else { 0 }).sum()
}

/// Pieces whose summaries fit in part of a comment: lists shrink when many clusters share one.
fn fitted(sections: &[Section], footer: Option<&str>) -> Vec<Piece> {
    for lim in [FULL, Limits { rows: 40, lines: 10 }, Limits { rows: 15, lines: 5 }, Limits { rows: 5, lines: 2 }] {
        let p = pieces(sections, footer, lim);
        if text_len(&p) <= COMMENT_BUDGET * 3 / 4 {
            return p;
        }
    }
    pieces(sections, footer, Limits { rows: 0, lines: 0 })
}

/// A fence longer than any backtick run in the content (values may hold backticks).
fn fence_for(paragraphs: &[String]) -> String {
    let longest = paragraphs.iter().flat_map(|p| p.split(|c| c != '`')).map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

fn open_details(label: &str, fence: &str) -> String {
    format!("<details><summary>{label}</summary>\n\n{fence}diff\n")
}

fn close_details(fence: &str) -> String {
    format!("{fence}\n\n</details>\n\n")
}

/// The longest prefix of `s` of at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The whole comment for one plan. Always at most [`COMMENT_BUDGET`] bytes.
pub fn render(plan: &Plan) -> String {
    render_with_errors(plan, &[])
}

/// Like [`render`], with the problems that refused the plan in a banner at the top.
pub fn render_with_errors(plan: &Plan, errors: &[PlanProblem]) -> String {
    document(&[Section { cluster: None, body: Body::Plan { plan, errors } }], None)
}

const CUT_NOTE: &str = "... output truncated: {n} more lines (GitHub's comment limit); `dm-apply plan -o markdown \
                        --split-comments DIR` writes the whole plan as several comments, `-o json` has all of it";

/// One comment for every section (`footer`: the combined line of a clusters file). Every summary is kept; details
/// are cut, fairly between sections, to stay within [`COMMENT_BUDGET`] bytes.
pub fn document(sections: &[Section], footer: Option<&str>) -> String {
    let pieces = fitted(sections, footer);
    let texts = text_len(&pieces);
    let overhead = 600;
    let n_details = pieces.iter().filter(|p| matches!(p, Piece::Details { .. })).count();
    if texts + overhead * n_details + 200 > COMMENT_BUDGET {
        // Hundreds of clusters: even the shortest summaries do not fit one comment.
        let all: String =
            pieces.iter().filter_map(|p| if let Piece::Text(t) = p { Some(t.as_str()) } else { None }).collect();
        return format!(
            "{}\n\n... summary truncated (GitHub's comment limit); `--split-comments DIR` writes every summary\n",
            cut(&all, COMMENT_BUDGET - 200)
        );
    }
    // Water-filling: small details whole, the rest share what is left equally.
    let room = COMMENT_BUDGET - texts - overhead * n_details - 200;
    let sizes: Vec<usize> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Details { paragraphs, .. } => Some(paragraphs.iter().map(|x| x.len() + 1).sum()),
            Piece::Text(_) => None,
        })
        .collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|i| sizes[*i]);
    let mut share = vec![0; sizes.len()];
    let mut left = room;
    for (k, i) in order.iter().enumerate() {
        let fair = left / (sizes.len() - k);
        share[*i] = sizes[*i].min(fair);
        left -= share[*i];
    }
    let mut out = String::new();
    let mut d = 0;
    for p in &pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Details { label, paragraphs } => {
                let fence = fence_for(paragraphs);
                out.push_str(&open_details(label, &fence));
                let joined = paragraphs.join("\n");
                let lines: Vec<&str> = joined.lines().collect();
                let mut budget = share[d];
                let mut cut_lines = 0;
                for (i, l) in lines.iter().enumerate() {
                    let n = l.len() + 1;
                    if n > budget {
                        cut_lines = lines.len() - i;
                        break;
                    }
                    budget -= n;
                    out.push_str(l);
                    out.push('\n');
                }
                if cut_lines > 0 {
                    out.push_str(&CUT_NOTE.replace("{n}", &cut_lines.to_string()));
                    out.push('\n');
                }
                out.push_str(&close_details(&fence));
                d += 1;
            }
        }
    }
    out
}

/// Heading of every comment after the first.
const CONTINUED: &str = "### dm-apply plan (continued)\n\n";

/// Accumulates comments of at most `cap` bytes.
struct Packer {
    cap: usize,
    done: Vec<String>,
    cur: String,
    /// `cur` holds nothing but its heading.
    fresh: bool,
    /// The fence of the `<details>` block open in `cur`.
    open: Option<String>,
}

impl Packer {
    fn room(&self) -> usize {
        self.cap.saturating_sub(self.cur.len())
    }

    fn close(&mut self) {
        if let Some(fence) = self.open.take() {
            self.cur.push_str(&close_details(&fence));
        }
    }

    /// Close what is open and start the next comment.
    fn next(&mut self) {
        self.close();
        if !self.fresh {
            self.done.push(std::mem::replace(&mut self.cur, CONTINUED.to_string()));
            self.fresh = true;
        }
    }

    fn text(&mut self, t: &str) {
        self.close();
        if t.len() > self.room() {
            self.next();
        }
        self.fresh = false;
        if t.len() > self.room() {
            // One summary longer than a comment (thousands of warnings): cut, never exceed.
            let keep = cut(t, self.room().saturating_sub(100)).to_string();
            self.cur.push_str(&keep);
            self.cur.push_str("\n\n... summary truncated (GitHub's comment limit)\n\n");
            return;
        }
        self.cur.push_str(t);
    }

    /// One unit of a details block (a paragraph or a line), in a block opened as `label` where needed.
    fn unit(&mut self, label: &str, fence: &str, unit: &str, first: &mut bool) {
        let close = close_details(fence).len();
        let open = open_details(label, fence).len() + " (continued)".len();
        let need = unit.len() + close + if self.open.is_some() { 0 } else { open };
        if need > self.room() {
            self.next();
        }
        if self.open.is_none() {
            let l = if *first { label.to_string() } else { format!("{label} (continued)") };
            self.cur.push_str(&open_details(&l, fence));
            self.open = Some(fence.to_string());
        }
        self.fresh = false;
        *first = false;
        let room = self.room().saturating_sub(close);
        if unit.len() <= room {
            self.cur.push_str(unit);
        } else {
            // A single line longer than a comment: cut at a character boundary.
            self.cur.push_str(cut(unit, room.saturating_sub(40)));
            self.cur.push_str("… (line cut)\n");
        }
    }
}

/// Every section as comments of at most [`COMMENT_BUDGET`] bytes each, nothing cut (but a single line longer
/// than a comment). The first comment holds every summary; with more than one comment each ends with
/// `dm-apply plan: comment K of N`.
pub fn comments(sections: &[Section], footer: Option<&str>) -> Vec<String> {
    let pieces = fitted(sections, footer);
    let mut p = Packer { cap: COMMENT_BUDGET - PART_LINE, done: vec![], cur: String::new(), fresh: true, open: None };
    for piece in &pieces {
        match piece {
            Piece::Text(t) => p.text(t),
            Piece::Details { label, paragraphs } => {
                let fence = fence_for(paragraphs);
                let mut first = true;
                let body_cap = p.cap - open_details(label, &fence).len() - 100 - close_details(&fence).len();
                for (i, para) in paragraphs.iter().enumerate() {
                    let para = if i + 1 < paragraphs.len() { format!("{para}\n") } else { para.clone() };
                    if para.len() <= body_cap {
                        p.unit(label, &fence, &para, &mut first);
                    } else {
                        for line in para.split_inclusive('\n') {
                            p.unit(label, &fence, line, &mut first);
                        }
                    }
                }
                p.close();
            }
        }
    }
    p.close();
    if !p.fresh {
        p.done.push(std::mem::take(&mut p.cur));
    }
    let n = p.done.len();
    if n > 1 {
        for (k, c) in p.done.iter_mut().enumerate() {
            let _ = writeln!(c, "\n<sub>dm-apply plan: comment {} of {n}</sub>", k + 1);
        }
    }
    p.done
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::plan::{Address, ClusterIdentity, Impact, StatePlan};

    fn plan(tasks: usize, value: &str) -> Plan {
        let changes = (0..tasks)
            .map(|i| ResourceChange {
                action: ConfigAction::Create,
                impact: Impact::Create,
                reasons: vec!["declared in the configuration but absent from DM".into()],
                after: Some(serde_json::json!({ "task_mode": "all", "note": value })),
                ..ResourceChange::new(Address::task(format!("t-{i:05}")))
            })
            .collect();
        Plan {
            format_version: "1.1".into(),
            cluster: ClusterIdentity { addr: "http://x".into(), cluster_id: None, server_version: "v8.5.4".into() },
            changes,
            unmanaged: vec![],
            warnings: vec![],
            targets: vec![],
            prune: false,
            notes: vec![],
            state: StatePlan::default(),
            preview: None,
        }
    }

    /// Every `<details>` closed and every opened fence closed, in order.
    fn closed(md: &str) -> bool {
        let mut fence: Option<String> = None;
        for l in md.lines() {
            match &fence {
                None if l.starts_with("```") && l.ends_with("diff") => fence = Some(l.trim_end_matches("diff").into()),
                Some(f) if l == f => fence = None,
                _ => {}
            }
        }
        fence.is_none() && md.matches("<details>").count() == md.matches("</details>").count()
    }

    #[test]
    fn three_hundred_clusters_keep_every_summary() {
        let plans: Vec<(String, Plan)> = (0..300).map(|i| (format!("c{i:03}"), plan(5, "v"))).collect();
        let sections: Vec<Section> = plans
            .iter()
            .map(|(n, p)| Section {
                cluster: Some((n.as_str(), "http://x")),
                body: Body::Plan { plan: p, errors: &[] },
            })
            .collect();
        let doc = document(&sections, Some("300 cluster(s): 300 with changes, 0 without, 0 failed"));
        assert!(doc.len() <= COMMENT_BUDGET && closed(&doc), "{}", doc.len());
        let parts = comments(&sections, Some("300 cluster(s)"));
        assert!(parts.len() > 1);
        for p in &parts {
            assert!(p.len() <= COMMENT_BUDGET && closed(p), "{}", p.len());
        }
        for (n, _) in &plans {
            assert!(parts[0].contains(&format!("## Cluster `{n}`")), "{n}");
        }
        for i in [0, 4] {
            assert_eq!(parts.concat().matches(&format!("# task.t-{i:05} will be created")).count(), 300);
        }
    }

    #[test]
    fn a_line_longer_than_a_comment_is_cut_in_its_own_comment() {
        let long = "é`".repeat(60_000);
        let p = plan(3, &long);
        let sections = [Section { cluster: None, body: Body::Plan { plan: &p, errors: &[] } }];
        let parts = comments(&sections, None);
        assert!(parts.len() >= 3, "{}", parts.len());
        for part in &parts {
            assert!(part.len() <= COMMENT_BUDGET && closed(part), "{}", part.len());
        }
        assert!(parts.concat().contains("(line cut)"));
        let doc = render(&p);
        assert!(doc.len() <= COMMENT_BUDGET && closed(&doc));
        assert!(doc.trim_end().ends_with("**Plan: 3 to add, 0 to change, 0 to destroy.**"));
    }

    #[test]
    fn cut_keeps_character_boundaries() {
        assert_eq!(cut("ééé", 3), "é");
        assert_eq!(cut("abc", 10), "abc");
    }

    #[test]
    fn diff_symbols_move_to_column_zero() {
        assert_eq!(diffify("      + host = \"h\""), "+       host = \"h\"");
        assert_eq!(diffify("-/+ task \"t\" {"), "!   task \"t\" {");
        assert_eq!(diffify("    }"), "    }");
    }
}
