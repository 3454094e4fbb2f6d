//! Diagnostics of the loader: one [`Problem`] per finding, each pointing at `file:line:col` with a labelled snippet.
//!
//! Snippets are rendered from a *redacted* copy of the file: every plain-text secret value is replaced by
//! `(sensitive value)` before miette ever sees the text, so no rendering path can print it. The ranges to hide are
//! the parser's (values under a secret key, wherever they are) joined with the redaction layer's line scan
//! (`ui::redact::secret_ranges`: any key that looks secret, everything nested under it, every kind of line break),
//! so a file that does not parse is covered too. Spans are mapped from the original text to the redacted one.
//!
//! miette renders a snippet from lines of the text; a label past column 65,535 makes it panic (its padding width
//! overflows), and a 100,000-character line (a `jq -c` JSON file) is unreadable anyway. Each problem therefore
//! renders from its own [`Snippet`]: only the lines around its labels, each long line shortened to windows around
//! the labels, with line numbers and the primary `line:col` of the original file.

use std::fmt;
use std::sync::{Arc, OnceLock};

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, Severity, SourceCode, SourceSpan, SpanContents,
};

use super::yaml::Pos;
use crate::secret::SENSITIVE;
use crate::ui::{redact, sanitize};

/// One loaded file as diagnostics see it.
pub struct FileSource {
    /// The path as the user gave it (or as found under a directory they gave).
    pub name: String,
    /// Position of the file in load order, for sorting problems.
    pub order: usize,
    /// The original text and the parser's ranges to hide, until the redacted text is first needed.
    original: String,
    parser_ranges: Vec<(usize, usize)>,
    /// Built on the first use: most loads report no problem, and for a fleet file of 1 MB the redaction layer's
    /// scan and the copy cost a fifth of `validate`.
    rendered: OnceLock<Rendered>,
}

/// The redacted text and how its offsets map to the original.
struct Rendered {
    /// The redacted text, with control characters neutralized.
    text: String,
    /// (original start, original length, redacted length), sorted by start.
    redactions: Vec<(usize, usize, usize)>,
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource").field("name", &self.name).finish_non_exhaustive()
    }
}

impl FileSource {
    /// `secret_ranges` are byte ranges of `text` to hide (the parser's); the redaction layer's own scan of the text
    /// is always added.
    pub fn new(name: &str, order: usize, text: &str, secret_ranges: &[(usize, usize)]) -> Arc<FileSource> {
        Arc::new(FileSource {
            name: name.to_owned(),
            order,
            original: text.to_owned(),
            parser_ranges: secret_ranges.to_vec(),
            rendered: OnceLock::new(),
        })
    }

    fn rendered(&self) -> &Rendered {
        self.rendered.get_or_init(|| render(&self.original, &self.parser_ranges))
    }

    fn text(&self) -> &str {
        &self.rendered().text
    }

    fn map_offset(&self, offset: usize) -> usize {
        let mut delta: isize = 0;
        for &(o, l, r) in &self.rendered().redactions {
            if offset < o {
                break;
            }
            if offset < o + l {
                return (o as isize + delta) as usize;
            }
            delta += r as isize - l as isize;
        }
        (offset as isize + delta).max(0) as usize
    }

    /// Whether the original byte `offset` lies in a hidden range.
    pub fn is_hidden(&self, offset: usize) -> bool {
        self.rendered().redactions.iter().any(|&(o, l, _)| (o..o + l).contains(&offset))
    }

    /// Map a span of the original text to the redacted text miette renders.
    pub fn span(&self, pos: Pos) -> SourceSpan {
        let start = self.map_offset(pos.offset);
        let end = self.map_offset(pos.offset + pos.len).max(start);
        let text_len = self.text().len();
        let start = start.min(text_len);
        SourceSpan::new(start.into(), (end.min(text_len)) - start)
    }

    #[cfg(test)]
    pub(crate) fn rendered_text(&self) -> &str {
        self.text()
    }
}

/// The redacted copy of `text`: the parser's ranges and the redaction layer's scan, merged, each replaced.
fn render(text: &str, secret_ranges: &[(usize, usize)]) -> Rendered {
    let mut ranges: Vec<(usize, usize)> = secret_ranges
        .iter()
        .copied()
        .chain(redact::secret_ranges(text))
        .filter(|&(o, l)| l > 0 && o.checked_add(l).is_some_and(|end| end <= text.len()))
        .filter(|&(o, l)| text.is_char_boundary(o) && text.is_char_boundary(o + l))
        .collect();
    ranges.sort_unstable();
    // Overlapping ranges (the parser's and the line scan's) are hidden as one.
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (o, l) in ranges {
        match merged.last_mut() {
            Some((mo, ml)) if o < *mo + *ml => *ml = (*ml).max(o + l - *mo),
            _ => merged.push((o, l)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut redactions = Vec::new();
    let mut cursor = 0;
    for (o, l) in merged {
        let end = o + l;
        out.push_str(&text[cursor..o]);
        let replacement = redact_value(&text[o..end]);
        redactions.push((o, l, replacement.len()));
        out.push_str(&replacement);
        cursor = end;
    }
    out.push_str(&text[cursor..]);
    Rendered { text: neutralize_controls(out), redactions }
}

/// Control characters of the file (an escaped `"\e[2J"` key, or a raw one next to a syntax error) would reach the
/// terminal through the snippet and clear it, retitle it or fake output (seen in the fuzzer's first finding). Each
/// is replaced by a printable character of the same UTF-8 length, so spans stay right: `?` for C0 and DEL, `¿` for
/// C1; a `\r` (of a `\r\n` line end) becomes a space.
fn neutralize_controls(text: String) -> String {
    // A byte scan first, vectorized (`0xc2` leads the UTF-8 of C1 controls): most files have no control character.
    let maybe = text.bytes().fold(false, |m, b| m | ((b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f || b == 0xc2));
    if !maybe || !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return text;
    }
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            '\r' => ' ',
            c if c.is_control() && c.len_utf8() == 1 => '?',
            c if c.is_control() => '¿',
            c => c,
        })
        .collect()
}

/// Messages, labels and help quote keys and values of the file: control characters and bidirectional overrides
/// are shown escaped (`\u{1b}`) rather than sent to the terminal (same finding).
fn printable(text: String) -> String {
    sanitize::multiline(&text).into_owned()
}

/// The replacement keeps the line structure (and the indentation that follows each line break), so line numbers
/// of everything after a multi-line secret stay right.
fn redact_value(value: &str) -> String {
    let mut out = String::from(SENSITIVE);
    for piece in value.split('\n').skip(1) {
        out.push('\n');
        out.extend(piece.chars().take_while(|c| *c == ' ' || *c == '\t'));
    }
    out
}

/// `text` with every `quoted` part replaced: a YAML error inside a secret value names the location, never the text.
fn hide_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let rest: Vec<&str> = parts.collect();
    for (i, p) in rest.iter().enumerate() {
        out.push('`');
        // Odd pieces are inside backticks (an unmatched last backtick leaves its tail as is).
        if i % 2 == 0 && i + 1 < rest.len() { out.push_str(SENSITIVE) } else { out.push_str(p) }
    }
    out
}

/// Longest line shown whole, in characters; longer lines are cut to windows around the labels.
const MAX_LINE_CHARS: usize = 160;
/// Characters kept on each side of a label's start and end in a shortened line.
const WINDOW_CHARS: usize = 50;

/// One piece of a shortened line: bytes `from..to` of the rendered file, at `at` in the chunk's text.
#[derive(Debug, Clone, Copy)]
struct Segment {
    from: usize,
    to: usize,
    at: usize,
}

/// A run of consecutive lines of the rendered file, as shown.
#[derive(Debug, Clone)]
struct Chunk {
    /// Offset of the chunk in the snippet's coordinates.
    base: usize,
    /// 0-based line number of its first line in the file.
    first_line: usize,
    text: String,
    segments: Vec<Segment>,
}

/// What miette renders for one problem: chunks of lines around its labels, long lines shortened. Labels are in
/// the snippet's own coordinates (each chunk at its `base`, with a gap between chunks so miette never joins two).
#[derive(Debug, Clone)]
struct Snippet {
    name: String,
    chunks: Vec<Chunk>,
    labels: Vec<LabeledSpan>,
    /// The primary label's span and its 0-based line and column in the original file.
    primary: Option<(SourceSpan, usize, usize)>,
}

/// Byte offset `chars` characters before (`back`) or after `at` in `line`, clamped to the line.
fn step_chars(line: &str, at: usize, chars: usize, back: bool) -> usize {
    if back {
        line[..at].char_indices().rev().nth(chars.saturating_sub(1)).map_or(0, |(i, _)| i)
    } else {
        line[at..].char_indices().nth(chars).map_or(line.len(), |(i, _)| at + i)
    }
}

impl Snippet {
    fn build(file: &FileSource, labels: &[LabeledSpan], primary_line_col: Option<(usize, usize)>) -> Snippet {
        let t = file.text();
        let line_start = |o: usize| t[..o].rfind('\n').map_or(0, |i| i + 1);
        let line_end = |o: usize| t[o..].find('\n').map_or(t.len(), |i| o + i);
        let spans: Vec<(usize, usize)> = labels
            .iter()
            .map(|l| {
                let s = l.offset().min(t.len());
                let s = if t.is_char_boundary(s) { s } else { line_start(s) };
                let e = (l.offset() + l.len()).clamp(s, t.len());
                let e = if t.is_char_boundary(e) { e } else { s };
                (s, e)
            })
            .collect();
        // Regions of whole lines: each label's lines and one line of context on each side, merged when they meet.
        let mut regions: Vec<(usize, usize)> = spans
            .iter()
            .map(|&(s, e)| {
                let ls = line_start(s);
                let start = if ls > 0 { line_start(ls - 1) } else { 0 };
                let le = line_end(e);
                let end = if le < t.len() { line_end(le + 1) } else { le };
                (start, end)
            })
            .collect();
        regions.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for r in regions {
            match merged.last_mut() {
                Some(last) if r.0 <= last.1 + 1 => last.1 = last.1.max(r.1),
                _ => merged.push(r),
            }
        }
        let mut chunks = Vec::new();
        let (mut counted_to, mut line_no, mut base) = (0, 0, 0);
        for (start, end) in merged {
            line_no += t[counted_to..start].matches('\n').count();
            counted_to = start;
            let mut text = String::new();
            let mut segments = Vec::new();
            let mut ls = start;
            loop {
                let le = line_end(ls).min(end);
                shorten(t, ls, le, &spans, &mut text, &mut segments);
                if le >= end {
                    break;
                }
                text.push('\n');
                ls = le + 1;
            }
            let len = text.len();
            chunks.push(Chunk { base, first_line: line_no, text, segments });
            base += len + 2;
        }
        let map = |o: usize, is_end: bool| -> usize {
            for c in &chunks {
                let Some(first) = c.segments.first() else { continue };
                let last = c.segments[c.segments.len() - 1];
                if o < first.from || o > last.to {
                    continue;
                }
                let mut prev: Option<Segment> = None;
                for sg in &c.segments {
                    if o >= sg.from && o <= sg.to {
                        return c.base + sg.at + (o - sg.from);
                    }
                    if o < sg.from {
                        // In a cut-out part: snap to the shown text next to it.
                        return match (is_end, prev) {
                            (true, Some(p)) => c.base + p.at + (p.to - p.from),
                            _ => c.base + sg.at,
                        };
                    }
                    prev = Some(*sg);
                }
                return c.base + last.at + (last.to - last.from);
            }
            0
        };
        let mut mapped = Vec::with_capacity(labels.len());
        let mut primary = None;
        for (l, &(s, e)) in labels.iter().zip(&spans) {
            let ms = map(s, false);
            let me = map(e, true).max(ms);
            let span = SourceSpan::new(ms.into(), me - ms);
            if l.primary()
                && primary.is_none()
                && let Some((line, col)) = primary_line_col
            {
                primary = Some((span, line.saturating_sub(1), col.saturating_sub(1)));
            }
            let label = l.label().map(str::to_string);
            mapped.push(if l.primary() {
                LabeledSpan::new_primary_with_span(label, span)
            } else {
                LabeledSpan::new_with_span(label, span)
            });
        }
        Snippet { name: file.name.clone(), chunks, labels: mapped, primary }
    }
}

/// Append the line `t[ls..le]` to `text`, whole or cut to windows around the label ends on it.
fn shorten(t: &str, ls: usize, le: usize, spans: &[(usize, usize)], text: &mut String, segments: &mut Vec<Segment>) {
    let line = &t[ls..le];
    if line.chars().count() <= MAX_LINE_CHARS {
        segments.push(Segment { from: ls, to: le, at: text.len() });
        text.push_str(line);
        return;
    }
    // Windows (line-relative bytes) around every label start and end on this line.
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for &(s, e) in spans {
        for p in [s, e] {
            if (ls..=le).contains(&p) {
                let at = p - ls;
                windows.push((step_chars(line, at, WINDOW_CHARS, true), step_chars(line, at, WINDOW_CHARS, false)));
            }
        }
        if s < ls && e > le {
            // The middle of a label spanning several lines.
            windows.push((0, step_chars(line, 0, 2 * WINDOW_CHARS, false)));
        }
    }
    if windows.is_empty() {
        windows.push((0, step_chars(line, 0, 2 * WINDOW_CHARS, false)));
    }
    windows.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for w in windows {
        match merged.last_mut() {
            Some(last) if w.0 <= last.1 => last.1 = last.1.max(w.1),
            _ => merged.push(w),
        }
    }
    let mut shown_to = 0;
    for (a, b) in merged {
        if a > shown_to {
            text.push('…');
        }
        segments.push(Segment { from: ls + a, to: ls + b, at: text.len() });
        text.push_str(&line[a..b]);
        shown_to = b;
    }
    if shown_to < line.len() {
        text.push('…');
    }
}

impl SourceCode for Snippet {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let chunk = self
            .chunks
            .iter()
            .find(|c| span.offset() >= c.base && span.offset() + span.len() <= c.base + c.text.len())
            .ok_or(MietteError::OutOfBounds)?;
        let local = SourceSpan::new((span.offset() - chunk.base).into(), span.len());
        let inner = chunk.text.as_str().read_span(&local, context_lines_before, context_lines_after)?;
        let (line, column) = match self.primary {
            Some((p, line, col)) if p == *span && context_lines_before == 0 && context_lines_after == 0 => (line, col),
            _ => (inner.line() + chunk.first_line, inner.column()),
        };
        let at = SourceSpan::new((inner.span().offset() + chunk.base).into(), inner.span().len());
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            at,
            line,
            column,
            inner.line_count(),
        )))
    }
}

/// One finding: an error or a warning.
#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    /// Stable code, e.g. `dm_apply::config::unknown_key`.
    pub code: String,
    pub message: String,
    pub help: Option<String>,
    pub file: Option<Arc<FileSource>>,
    /// 1-based line and column of the primary label (0 when there is no position).
    pub line: usize,
    pub column: usize,
    labels: Vec<LabeledSpan>,
    related: Vec<Problem>,
    /// Built on first render, from the file and the labels.
    snippet: OnceLock<Option<Snippet>>,
}

impl Problem {
    pub fn error(code: &str, message: impl Into<String>) -> Problem {
        Problem::new(Severity::Error, code, message)
    }

    pub fn warning(code: &str, message: impl Into<String>) -> Problem {
        Problem::new(Severity::Warning, code, message)
    }

    /// A note attached to another problem (e.g. "first declared here").
    pub fn note(code: &str, message: impl Into<String>) -> Problem {
        Problem::new(Severity::Advice, code, message)
    }

    fn new(severity: Severity, code: &str, message: impl Into<String>) -> Problem {
        Problem {
            severity,
            code: format!("dm_apply::config::{code}"),
            message: printable(message.into()),
            help: None,
            file: None,
            line: 0,
            column: 0,
            labels: Vec::new(),
            related: Vec::new(),
            snippet: OnceLock::new(),
        }
    }

    /// Attach the file without a position.
    pub fn in_file(mut self, file: &Arc<FileSource>) -> Problem {
        self.file = Some(file.clone());
        self
    }

    /// The primary position and its label.
    pub fn at(mut self, file: &Arc<FileSource>, pos: Pos, label: impl Into<String>) -> Problem {
        if self.file.is_none() || self.labels.is_empty() {
            self.file = Some(file.clone());
            self.line = pos.line;
            self.column = pos.column;
        }
        let mut label = printable(label.into());
        // A YAML error inside a hidden value: its message may quote the text there (a duplicate key under
        // `password:`); show where, not what.
        if self.code.ends_with("::yaml") && file.is_hidden(pos.offset) {
            self.message = hide_quoted(&self.message);
            label = hide_quoted(&label);
        }
        self.labels.push(LabeledSpan::new_primary_with_span(Some(label), file.span(pos)));
        self.snippet = OnceLock::new();
        self
    }

    /// A secondary label in the same file.
    pub fn also(mut self, file: &Arc<FileSource>, pos: Pos, label: impl Into<String>) -> Problem {
        self.labels.push(LabeledSpan::new_with_span(Some(printable(label.into())), file.span(pos)));
        self.snippet = OnceLock::new();
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(printable(help.into()));
        self
    }

    pub fn with_related(mut self, related: Problem) -> Problem {
        self.related.push(related);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col` (or just the file, or nothing) of the primary position.
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), 0) => f.name.clone(),
            (Some(f), line) => format!("{}:{}:{}", f.name, line, self.column),
            (None, _) => String::new(),
        }
    }

    fn snippet(&self) -> Option<&Snippet> {
        self.snippet
            .get_or_init(|| {
                let file = self.file.as_ref()?;
                (!self.labels.is_empty()).then(|| {
                    let primary = (self.line > 0).then_some((self.line, self.column));
                    Snippet::build(file, &self.labels, primary)
                })
            })
            .as_ref()
    }

    pub(crate) fn sort_key(&self) -> (usize, usize, usize) {
        (self.file.as_ref().map_or(usize::MAX, |f| f.order), self.line, self.column)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.snippet().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.snippet().map(|s| Box::new(s.labels.iter().cloned()) as Box<dyn Iterator<Item = LabeledSpan>>)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() { None } else { Some(Box::new(self.related.iter().map(|p| p as &dyn Diagnostic))) }
    }
}

/// The configuration is invalid. Holds every error (as related diagnostics, sorted by file and line) and the
/// warnings found on the way.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.len() {
            1 => write!(f, "the configuration is invalid: 1 error"),
            n => write!(f, "the configuration is invalid: {n} errors"),
        }
    }
}

impl std::error::Error for LoadError {}

impl Diagnostic for LoadError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("dm_apply::config::invalid"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("run `dm-apply validate -f ...` to check the configuration offline"))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.errors.iter().map(|p| p as &dyn Diagnostic)))
    }
}

/// Render a diagnostic without colour, for tests and for stable output.
pub fn render_plain(diag: &dyn Diagnostic) -> String {
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false)
        .with_word_splitter(textwrap::WordSplitter::NoHyphenation);
    let mut out = String::new();
    let _ = handler.render_report(&mut out, diag);
    out
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate within a small distance, for "did you mean `x`?".
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 4);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_lines_and_maps_spans() {
        let text = "a: 1\npassword: hunter2\nkey: |\n  l1\n  l2\nport: 3\n";
        let pw = text.find("hunter2").unwrap();
        let block = text.find("l1").unwrap();
        let block_len = text.find("port").unwrap() - block;
        let f = FileSource::new("x.yaml", 0, text, &[(pw, 7), (block, block_len)]);
        let shown = f.rendered_text();
        assert!(!shown.contains("hunter2") && !shown.contains("l1"));
        assert_eq!(shown.lines().count(), text.lines().count());
        let port = text.find("port").unwrap();
        let s = f.span(Pos { offset: port, len: 4, line: 6, column: 1 });
        assert_eq!(&shown[s.offset()..s.offset() + s.len()], "port");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let text = "a: \u{1b}[2J\r\nb: \u{9b}x\n";
        let f = FileSource::new("x.yaml", 0, text, &[]);
        assert_eq!(f.rendered_text(), "a: ?[2J \nb: \u{bf}x\n");
        assert_eq!(f.rendered_text().len(), text.len());
        let p = Problem::error("k", "unknown key `\u{1b}]0;t\u{7}\u{202e}x`").at(&f, Pos::default(), "bad \u{1b}");
        assert_eq!(p.message, "unknown key `\\u{1b}]0;t\\u{7}\\u{202e}x`");
        let out = render_plain(&p);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    }

    #[test]
    fn a_label_far_right_on_a_huge_line_renders_shortened_around_it() {
        // One line of 200,000 characters (a `jq -c` file) with the error near its end.
        let mut text = String::from("{\"sources\":[");
        while text.len() < 200_000 {
            text.push_str("{\"source_name\":\"s\",\"port\":3306},");
        }
        let at = text.len();
        text.push_str("{\"port\":\"bad\"}]}\n");
        let f = FileSource::new("one.json", 0, &text, &[]);
        let col = text[..at + 8].chars().count() + 1;
        let p = Problem::error("type", "`port` must be an integer").at(
            &f,
            Pos { offset: at + 8, len: 5, line: 1, column: col },
            "a string",
        );
        let out = render_plain(&p);
        assert!(out.contains(&format!("[one.json:1:{col}]")), "{out}");
        assert!(out.contains("…") && out.contains("\"bad\""), "{out}");
        assert!(out.lines().all(|l| l.chars().count() < 400), "{out}");
        // Two labels far apart on the same line, and one on another line.
        let p = Problem::error("dup", "again")
            .at(&f, Pos { offset: at + 8, len: 5, line: 1, column: col }, "here")
            .also(&f, Pos { offset: 2, len: 7, line: 1, column: 3 }, "first");
        let out = render_plain(&p);
        assert!(out.contains("sources") && out.contains("\"bad\"") && out.contains("first"), "{out}");
    }

    #[test]
    fn distant_lines_keep_their_numbers() {
        let text: String = (1..=500).map(|i| format!("k{i}: v{i}\n")).collect();
        let f = FileSource::new("x.yaml", 0, &text, &[]);
        let off = |line: usize| text.match_indices('\n').nth(line - 2).map_or(0, |(i, _)| i + 1);
        let p = Problem::error("dup", "duplicate")
            .at(&f, Pos { offset: off(400), len: 4, line: 400, column: 1 }, "again here")
            .also(&f, Pos { offset: off(3), len: 2, line: 3, column: 1 }, "first here");
        let out = render_plain(&p);
        assert!(out.contains("[x.yaml:400:1]"), "{out}");
        assert!(out.contains("400 │ k400") && out.contains(" 3 │ k3:"), "{out}");
        assert!(out.contains("399 │ k399") && out.contains("401 │ k401") && !out.contains("k200"), "{out}");
    }

    #[test]
    fn yaml_errors_inside_secrets_do_not_quote_them() {
        let text = "password:\n  hunter2: 1\n  hunter2: 2\n";
        let f = FileSource::new("x.yaml", 0, text, &[]);
        assert!(!f.rendered_text().contains("hunter2"), "{}", f.rendered_text());
        let at = text.rfind("hunter2").unwrap();
        let p = Problem::error("yaml", "invalid YAML: duplicate key `hunter2`").at(
            &f,
            Pos { offset: at, len: 7, line: 3, column: 3 },
            "defined again here",
        );
        assert_eq!(p.message, format!("invalid YAML: duplicate key `{SENSITIVE}`"));
        let out = render_plain(&p);
        assert!(!out.contains("hunter2") && out.contains("[x.yaml:3:3]"), "{out}");
        assert_eq!(hide_quoted("a `b` c `d"), format!("a `{SENSITIVE}` c `d"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("enable_gitd", ["enable_gtid", "enable", "host"]), Some("enable_gtid"));
        assert_eq!(did_you_mean("zzz", ["enable_gtid", "host"]), None);
    }
}
