//! Diagnostics of the loader: one [`Problem`] per finding, each pointing at `file:line:col` with a labelled snippet.
//!
//! Snippets are rendered from a *redacted* copy of the file: every plain-text secret value (the value of any key
//! that looks like a password or private key, wherever it appears and even when misspelt) is replaced by
//! `(sensitive value)` before miette ever sees the text, so no rendering path can print it. Spans are mapped from
//! the original text to the redacted one.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceCode, SourceSpan};

use super::yaml::Pos;
use crate::secret::SENSITIVE;

/// One loaded file as diagnostics see it.
pub struct FileSource {
    /// The path as the user gave it (or as found under a directory they gave).
    pub name: String,
    /// Position of the file in load order, for sorting problems.
    pub order: usize,
    named: NamedSource<String>,
    /// (original start, original length, redacted length), sorted by start.
    redactions: Vec<(usize, usize, usize)>,
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSource").field("name", &self.name).finish_non_exhaustive()
    }
}

impl FileSource {
    /// `secret_ranges` are byte ranges of `text` to hide.
    pub fn new(name: &str, order: usize, text: &str, secret_ranges: &[(usize, usize)]) -> Arc<FileSource> {
        let mut ranges: Vec<(usize, usize)> = secret_ranges
            .iter()
            .copied()
            .filter(|&(o, l)| l > 0 && o.checked_add(l).is_some_and(|end| end <= text.len()))
            .filter(|&(o, l)| text.is_char_boundary(o) && text.is_char_boundary(o + l))
            .collect();
        ranges.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut redactions = Vec::new();
        let mut cursor = 0;
        for (o, l) in ranges {
            if o < cursor {
                continue; // overlapping (nested) range, already hidden
            }
            out.push_str(&text[cursor..o]);
            let replacement = redact(&text[o..o + l]);
            redactions.push((o, l, replacement.len()));
            out.push_str(&replacement);
            cursor = o + l;
        }
        out.push_str(&text[cursor..]);
        let out = neutralize_controls(out);
        Arc::new(FileSource { name: name.to_owned(), order, named: NamedSource::new(name, out), redactions })
    }

    fn map_offset(&self, offset: usize) -> usize {
        let mut delta: isize = 0;
        for &(o, l, r) in &self.redactions {
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

    /// Map a span of the original text to the redacted text miette renders.
    pub fn span(&self, pos: Pos) -> SourceSpan {
        let start = self.map_offset(pos.offset);
        let end = self.map_offset(pos.offset + pos.len).max(start);
        let text_len = self.named.inner().len();
        let start = start.min(text_len);
        SourceSpan::new(start.into(), (end.min(text_len)) - start)
    }

    #[cfg(test)]
    pub(crate) fn rendered_text(&self) -> &str {
        self.named.inner()
    }
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
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return text;
    }
    text.chars().map(|c| if unsafe_char(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

/// The replacement keeps the line structure (and the indentation that follows each line break), so line numbers
/// of everything after a multi-line secret stay right.
fn redact(value: &str) -> String {
    let mut out = String::from(SENSITIVE);
    for piece in value.split('\n').skip(1) {
        out.push('\n');
        out.extend(piece.chars().take_while(|c| *c == ' ' || *c == '\t'));
    }
    out
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
        self.labels.push(LabeledSpan::new_primary_with_span(Some(printable(label.into())), file.span(pos)));
        self
    }

    /// A secondary label in the same file.
    pub fn also(mut self, file: &Arc<FileSource>, pos: Pos, label: impl Into<String>) -> Problem {
        self.labels.push(LabeledSpan::new_with_span(Some(printable(label.into())), file.span(pos)));
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
        match &self.file {
            Some(f) if !self.labels.is_empty() => Some(&f.named),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() { None } else { Some(Box::new(self.labels.iter().cloned())) }
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
        .with_links(false);
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
    fn suggestions() {
        assert_eq!(did_you_mean("enable_gitd", ["enable_gtid", "enable", "host"]), Some("enable_gtid"));
        assert_eq!(did_you_mean("zzz", ["enable_gtid", "host"]), None);
    }
}
