//! A fast reader for the common shape of configuration files, with the same result as serde-saphyr.
//!
//! It accepts block mappings and block lists whose keys are plain words and whose values are one-line scalars
//! (plain, or quoted without escapes), one-line lists of such scalars (`[a, "b"]`), `{}`, or nested blocks, with
//! comments and blank lines anywhere. For anything else (anchors, aliases, tags, flow mappings, block or
//! multi-line scalars, tabs, CR line ends, document markers, duplicate keys, scalars whose type is not obvious, any
//! syntax error) it returns `None`, and the caller parses the file with serde-saphyr, which then decides and
//! reports every error. So on what it accepts it must agree with serde-saphyr exactly: the same value, the same
//! spans, the same secret ranges (the tests below compare the two on every YAML file of the repository and on
//! thousands of generated documents and mutations of them).

use serde_json::{Map, Value};

use super::yaml::{Kind, MAX_DEPTH, MAX_NODES, NodeSpan, Pos, Spans, is_plain_secret, is_secret_key};

/// What the fast reader found in a text.
pub(super) struct Read {
    /// `None` for an empty text, or only comments.
    pub value: Option<Value>,
    /// The spans of the nodes down to the depth asked for (the root is at depth 0, its values at 1...).
    pub spans: Spans,
    pub secret_ranges: Vec<(usize, usize)>,
}

/// Read `text`, recording the spans of nodes down to depth `record`; `None` when the text is outside the shape
/// this reader handles.
pub(super) fn read(text: &str, record: usize) -> Option<Read> {
    let lines = content_lines(text)?;
    let Some(first) = lines.first().map(|l| l.get()) else {
        return Some(Read { value: None, spans: Spans::default(), secret_ranges: Vec::new() });
    };
    if first.indent != 0 {
        return None;
    }
    let lines_len = lines.len();
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        ascii: text.is_ascii(),
        lines,
        next: 0,
        nodes: 0,
        record,
        spans: Spans::with_capacity(if record == usize::MAX { 2 * lines_len } else { 0 }),
        secrets: Vec::new(),
        entries: Vec::new(),
        items: Vec::new(),
        secret_keys: [None; 64],
    };
    let value = p.block_node(0, first.start, None, false, 0)?;
    if p.next != p.lines.len() {
        return None;
    }
    Some(Read { value: Some(value), spans: p.spans, secret_ranges: p.secrets })
}

/// A line with content (not blank, not only a comment), as stored: in 16 bytes, as there is one per line.
#[derive(Debug, Clone, Copy)]
struct StoredLine {
    begin: u32,
    start: u32,
    end: u32,
    number: u32,
}

impl StoredLine {
    fn get(self) -> Line {
        let (begin, start) = (self.begin as usize, self.start as usize);
        Line { begin, start, end: self.end as usize, indent: start - begin, number: self.number as usize }
    }
}

/// A line with content (not blank, not only a comment).
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Byte offset of the line's first character.
    begin: usize,
    /// Byte offset of the first character after the indentation.
    start: usize,
    /// Byte offset of the line end (the `\n`, or the end of the text).
    end: usize,
    /// Spaces before `start`.
    indent: usize,
    /// 1-based.
    number: usize,
}

/// The content lines, or `None` when the text has something this reader leaves to serde-saphyr anywhere.
fn content_lines(text: &str) -> Option<Vec<StoredLine>> {
    if !text.is_ascii() && text.chars().any(unusual_char) {
        return None;
    }
    let b = text.as_bytes();
    // Offsets are stored in 32 bits (files are limited to 8 MiB anyway).
    if u32::try_from(b.len()).is_err() {
        return None;
    }
    // Tabs (indentation and separation rules), carriage returns, control characters: serde-saphyr decides. (No
    // early exit: this form is vectorized.)
    if b.iter().fold(false, |bad, &c| bad | ((c < 0x20) & (c != b'\n')) | (c == 0x7f)) {
        return None;
    }
    let mut lines = Vec::with_capacity(b.len() / 16);
    let mut begin = 0;
    let mut number = 1;
    while begin <= b.len() {
        let end = b[begin..].iter().position(|&c| c == b'\n').map_or(b.len(), |i| begin + i);
        let mut start = begin;
        while start < end && b[start] == b' ' {
            start += 1;
        }
        let rest = &text[start..end];
        // Directives and document markers.
        if start == begin && (rest.starts_with('%') || is_marker(rest, "---") || is_marker(rest, "...")) {
            return None;
        }
        if !rest.is_empty() && !rest.starts_with('#') {
            let small = |n: usize| n as u32; // below u32::MAX, checked above
            lines.push(StoredLine { begin: small(begin), start: small(start), end: small(end), number: small(number) });
        }
        begin = end + 1;
        number += 1;
    }
    Some(lines)
}

fn is_marker(rest: &str, marker: &str) -> bool {
    rest.strip_prefix(marker).is_some_and(|after| after.is_empty() || after.starts_with(' '))
}

/// Characters that YAML treats specially (other line breaks, a byte order mark, non-printable ones).
fn unusual_char(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    ascii: bool,
    lines: Vec<StoredLine>,
    /// The first content line not consumed yet.
    next: usize,
    /// Scalars, mappings and lists so far, counted as serde-saphyr's node budget counts them.
    nodes: usize,
    /// Spans are recorded for nodes down to this depth.
    record: usize,
    spans: Spans,
    secrets: Vec<(usize, usize)>,
    /// Entries of the mappings being read, innermost last (one buffer for all, rather than one per mapping).
    entries: Vec<(String, Value)>,
    /// Items of the lists being read, likewise.
    items: Vec<Value>,
    /// Whether recent key names are secret, by a hash of the name: the same few names repeat in every resource.
    secret_keys: [Option<(&'a str, bool)>; 64],
}

/// The mapping key that holds a node: where it is, and its name.
type Key<'a> = Option<(Pos, &'a str)>;

impl<'a> Parser<'a> {
    fn line(&self, li: usize) -> Line {
        self.lines[li].get()
    }

    fn line_at(&self, li: usize) -> Option<Line> {
        self.lines.get(li).map(|l| l.get())
    }

    fn pos(&self, line: &Line, offset: usize, len: usize) -> Pos {
        let column = if self.ascii {
            offset - line.begin + 1
        } else {
            self.text.get(line.begin..offset).map_or(0, |s| s.chars().count()) + 1
        };
        Pos { offset, len, line: line.number, column }
    }

    fn count(&mut self) -> Option<()> {
        self.nodes += 1;
        (self.nodes <= MAX_NODES).then_some(())
    }

    /// Count a mapping or list at nesting `depth`: near serde-saphyr's depth limit, it decides (and the recursion
    /// here stays shallow on hostile input).
    fn count_container(&mut self, depth: usize) -> Option<()> {
        if depth + 8 > MAX_DEPTH {
            return None;
        }
        self.count()
    }

    fn is_secret_key(&mut self, name: &'a str) -> bool {
        let b = name.as_bytes();
        let slot = (b.len() * 31 + usize::from(b[0]) * 7 + usize::from(b[b.len() - 1])) % self.secret_keys.len();
        match self.secret_keys[slot] {
            Some((cached, secret)) if cached == name => secret,
            _ => {
                let secret = is_secret_key(name);
                self.secret_keys[slot] = Some((name, secret));
                secret
            }
        }
    }

    /// Record where the node at `depth` is (before its descendants), if spans are recorded that deep.
    fn span(&mut self, depth: usize, pos: impl FnOnce(&Self) -> Pos, key: Key<'_>, kind: Kind) -> Option<usize> {
        if depth > self.record {
            return None;
        }
        let pos = pos(self);
        let span = NodeSpan { value: pos, defined: pos, key: key.map(|(k, _)| k) };
        Some(self.spans.push(span, key.map(|(_, name)| name), kind))
    }

    /// All descendants of mapping or list `me` are read.
    fn close(&mut self, me: Option<usize>) {
        if let Some(i) = me {
            self.spans.close(i);
        }
    }

    /// The span of a scalar of `len` bytes at `at`, and its text to hide when it is a plain-text secret.
    fn scalar_span(&mut self, depth: usize, line: &Line, at: usize, len: usize, key: Key<'_>, hide: bool) {
        if hide {
            self.secrets.push((at, len));
        }
        self.span(depth, |p| p.pos(line, at, len), key, Kind::Leaf);
    }

    fn is_dash(&self, at: usize, end: usize) -> bool {
        self.bytes[at] == b'-' && (at + 1 == end || self.bytes[at + 1] == b' ')
    }

    /// The first byte after the spaces from `at` on.
    fn skip_spaces(&self, mut at: usize, end: usize) -> usize {
        while at < end && self.bytes[at] == b' ' {
            at += 1;
        }
        at
    }

    /// Nothing, or a comment, from `at` to the line end.
    fn rest_is_empty(&self, at: usize, end: usize) -> bool {
        at == end || self.bytes[at] == b'#'
    }

    /// A mapping or a list starting at `at` on content line `li` (the start of that line, or after `- `).
    fn block_node(&mut self, li: usize, at: usize, key: Key<'_>, secret: bool, depth: usize) -> Option<Value> {
        let line = self.line(li);
        if self.is_dash(at, line.end) {
            self.block_seq(li, at - line.begin, at, key, secret, depth)
        } else if let Some(colon) = self.map_key(at, line.end) {
            self.block_map(li, at - line.begin, colon, key, secret, depth)
        } else {
            None
        }
    }

    /// The end of a plain mapping key at `at` (`word:` followed by a space or the line end).
    fn map_key(&self, at: usize, end: usize) -> Option<usize> {
        let b = self.bytes;
        if !(b[at].is_ascii_alphabetic() || b[at] == b'_') {
            return None;
        }
        let mut i = at;
        while i < end && KEY_CHAR[usize::from(b[i])] {
            i += 1;
        }
        // A longer simple key is an error in YAML (1,024 characters).
        let ok = i < end && b[i] == b':' && (i + 1 == end || b[i + 1] == b' ') && i - at <= 128;
        (ok && !is_special_word(&self.text[at..i])).then_some(i)
    }

    /// A block mapping whose keys are at column `ind` (0-based), the first on line `li` (its `:` at `colon`).
    fn block_map(
        &mut self,
        li: usize,
        ind: usize,
        colon: usize,
        key: Key<'_>,
        secret: bool,
        depth: usize,
    ) -> Option<Value> {
        self.count_container(depth)?;
        let first = self.line(li);
        let me = self.span(depth, |p| p.pos(&first, first.begin + ind, 0), key, Kind::Map);
        let base = self.entries.len();
        let (first_li, mut li) = (li, li);
        loop {
            let line = self.line(li);
            let at = line.begin + ind;
            let colon = if li == first_li { colon } else { self.map_key(at, line.end)? };
            self.count()?;
            let text = self.text;
            let name = &text[at..colon];
            // Its position is needed only when the value's span is recorded.
            let key = (depth < self.record).then(|| (self.pos(&line, at, colon - at), name));
            let secret = secret || self.is_secret_key(name);
            let q = self.skip_spaces(colon + 1, line.end);
            self.next = li + 1;
            let value = if self.rest_is_empty(q, line.end) {
                // The value is on the following lines, or there is none.
                match self.line_at(li + 1) {
                    Some(n) if n.indent > ind => self.block_node(li + 1, n.start, key, secret, depth + 1)?,
                    // A list may start at the key's own column.
                    Some(n) if n.indent == ind && self.is_dash(n.start, n.end) => {
                        self.indentless_seq(li + 1, key, secret, depth + 1)?
                    }
                    _ => {
                        // An empty value: null, placed at the `:`.
                        self.count()?;
                        self.span(depth + 1, |p| p.pos(&line, colon, 0), key, Kind::Leaf);
                        Value::Null
                    }
                }
            } else {
                self.inline_value(&line, q, key, secret, depth + 1)?
            };
            self.entries.push((name.to_owned(), value));
            match self.line_at(self.next) {
                Some(n) if n.indent == ind && !self.is_dash(n.start, n.end) => li = self.next,
                // Less indented: the mapping ends. A list item at this column, or anything deeper: not ours.
                Some(n) if n.indent >= ind => return None,
                _ => break,
            }
        }
        self.close(me);
        let mut map = Map::with_capacity(self.entries.len() - base);
        for (k, v) in self.entries.drain(base..) {
            if map.insert(k, v).is_some() {
                return None; // a duplicate key: serde-saphyr reports it
            }
        }
        Some(Value::Object(map))
    }

    /// A list at the column of the mapping key that holds it (`key:` then `- item` lines below, unindented).
    fn indentless_seq(&mut self, li: usize, key: Key<'_>, secret: bool, depth: usize) -> Option<Value> {
        // serde-saphyr places such a list at its first item's content, which must then be on the dash's line.
        let line = self.line(li);
        let content = self.skip_spaces(line.start + 1, line.end);
        if self.rest_is_empty(content, line.end) {
            return None;
        }
        self.block_seq(li, line.indent, content, key, secret, depth)
    }

    /// A block list placed at byte `at` of line `li`, whose dashes are at column `ind`, the first on line `li`.
    fn block_seq(
        &mut self,
        li: usize,
        ind: usize,
        at: usize,
        key: Key<'_>,
        secret: bool,
        depth: usize,
    ) -> Option<Value> {
        self.count_container(depth)?;
        let first = self.line(li);
        let me = self.span(depth, |p| p.pos(&first, at, 0), key, Kind::Seq { first: 0, len: 0 });
        let base = self.items.len();
        let mut li = li;
        loop {
            let line = self.line(li);
            let dash = line.begin + ind;
            if !self.is_dash(dash, line.end) {
                return None;
            }
            let q = self.skip_spaces(dash + 1, line.end);
            self.next = li + 1;
            let value = if self.rest_is_empty(q, line.end) {
                match self.line_at(li + 1) {
                    Some(n) if n.indent > ind => self.block_node(li + 1, n.start, None, secret, depth + 1)?,
                    _ => return None, // an empty item
                }
            } else if self.is_dash(q, line.end) {
                return None; // a list in a list on one line
            } else if let Some(colon) = self.map_key(q, line.end) {
                self.block_map(li, q - line.begin, colon, None, secret, depth + 1)?
            } else {
                self.inline_value(&line, q, None, secret, depth + 1)?
            };
            self.items.push(value);
            match self.line_at(self.next) {
                Some(n) if n.indent == ind && self.is_dash(n.start, n.end) => li = self.next,
                Some(n) if n.indent > ind => return None,
                // Less indented, or a mapping key at the column of an unindented list: the list ends.
                _ => break,
            }
        }
        self.close(me);
        Some(Value::Array(self.items.drain(base..).collect()))
    }

    /// A one-line value at `at`: a scalar, `{}`, or a list of scalars `[a, "b"]`; the rest of the line may only
    /// be a comment.
    fn inline_value(&mut self, line: &Line, at: usize, key: Key<'_>, secret: bool, depth: usize) -> Option<Value> {
        self.count()?;
        let b = self.bytes;
        let end = line.end;
        // Collections are placed at their opening bracket (length 1).
        let (value, after) = match b[at] {
            b'[' => {
                let me = self.span(depth, |p| p.pos(line, at, 1), key, Kind::Seq { first: 0, len: 0 });
                let (items, close) = self.flow_seq(line, at, secret, depth + 1)?;
                self.close(me);
                (Value::Array(items), close + 1)
            }
            b'{' if b.get(at + 1) == Some(&b'}') => {
                let me = self.span(depth, |p| p.pos(line, at, 1), key, Kind::Map);
                self.close(me);
                (Value::Object(Map::new()), at + 2)
            }
            _ => {
                let (value, len) = match b[at] {
                    b'"' | b'\'' => self.quoted(at, end)?,
                    _ => {
                        // A plain scalar ends at ` #` (a comment) or the line end; `: ` in it would start a
                        // mapping (an error here).
                        let mut stop = at;
                        while stop < end && !(b[stop] == b'#' && b[stop - 1] == b' ') {
                            if b[stop] == b':' && (stop + 1 == end || b[stop + 1] == b' ') {
                                return None;
                            }
                            stop += 1;
                        }
                        let token = self.text[at..stop].trim_end_matches(' ');
                        (plain_value(token)?, token.len())
                    }
                };
                self.scalar_span(depth, line, at, len, key, secret && is_plain_secret(&value));
                (value, at + len)
            }
        };
        // Then only spaces, and a comment or the line end.
        let rest = self.skip_spaces(after, end);
        if rest != end && !(b[rest] == b'#' && rest > after) {
            return None;
        }
        Some(value)
    }

    /// A quoted scalar at `at` that closes on its line, without escapes: its value and length with the quotes.
    fn quoted(&self, at: usize, end: usize) -> Option<(Value, usize)> {
        let b = self.bytes;
        let quote = b[at];
        let mut close = at + 1;
        loop {
            while close < end && b[close] != quote {
                if b[close] == b'\\' && quote == b'"' {
                    return None; // an escape
                }
                close += 1;
            }
            if close >= end {
                return None; // continued on the next line
            }
            // `''` is a quote inside single quotes.
            if quote == b'\'' && close + 1 < end && b[close + 1] == b'\'' {
                close += 2;
                continue;
            }
            break;
        }
        let inner = &self.text[at + 1..close];
        let value = if quote == b'\'' { inner.replace("''", "'") } else { inner.to_owned() };
        Some((Value::String(value), close + 1 - at))
    }

    /// A flow list of scalars on one line, `[` at `at`: its items, and where its `]` is.
    fn flow_seq(&mut self, line: &Line, at: usize, secret: bool, depth: usize) -> Option<(Vec<Value>, usize)> {
        let (b, end) = (self.bytes, line.end);
        let mut items = Vec::new();
        let mut i = self.skip_spaces(at + 1, end);
        if i < end && b[i] == b']' {
            return Some((items, i));
        }
        loop {
            if i >= end {
                return None; // continued on the next line
            }
            self.count()?;
            let (value, len) = match b[i] {
                b'"' | b'\'' => self.quoted(i, end)?,
                _ => {
                    // A plain item ends at `,` or `]`; anything else special in flow context is left to serde-saphyr.
                    let mut stop = i;
                    while stop < end && !matches!(b[stop], b',' | b']') {
                        if matches!(b[stop], b'[' | b'{' | b'}' | b'#' | b':') {
                            return None;
                        }
                        stop += 1;
                    }
                    let token = self.text[i..stop].trim_end_matches(' ');
                    (plain_value(token)?, token.len())
                }
            };
            self.scalar_span(depth, line, i, len, None, secret && is_plain_secret(&value));
            items.push(value);
            i = self.skip_spaces(i + len, end);
            match b.get(i) {
                Some(b']') if i < end => return Some((items, i)),
                Some(b',') if i < end => {
                    i = self.skip_spaces(i + 1, end);
                    // `[a, ]` and `[a,, b]`: left to serde-saphyr.
                    if i < end && matches!(b[i], b']' | b',') {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
}

/// The characters of a plain mapping key: ASCII letters and digits, `_`, `-` and `.`.
const KEY_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.';
        c += 1;
    }
    t
};

/// Words YAML (1.1 or 1.2) may read as a boolean, null or float in some spelling.
fn is_special_word(s: &str) -> bool {
    // Most words are longer, or start with another letter.
    s.len() <= 8
        && s.as_bytes()
            .first()
            .is_some_and(|c| matches!(c.to_ascii_lowercase(), b'y' | b'n' | b'o' | b't' | b'f' | b'i'))
        && ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "infinity"]
            .iter()
            .any(|w| s.eq_ignore_ascii_case(w))
}

/// The value of a plain scalar, when its type is obvious; `None` leaves it to serde-saphyr.
fn plain_value(token: &str) -> Option<Value> {
    let b = token.as_bytes();
    let first = *b.first()?;
    match token {
        "~" | "null" => return Some(Value::Null),
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    if first.is_ascii_digit() {
        if b.iter().all(u8::is_ascii_digit) {
            // No leading zero (octal, or kept as a string), and surely within u64.
            if (b.len() == 1 || first != b'0') && b.len() <= 18 {
                return token.parse::<u64>().ok().map(Value::from);
            }
            return None;
        }
        // A dotted version or address (`10.0.0.1`): no number has two dots.
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() >= 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())) {
            return Some(Value::String(token.to_owned()));
        }
        // A size or duration (`200GiB`, `10s`): a character no integer (hexadecimal, octal, binary, with `_`)
        // nor float spelling has.
        if b.iter().any(|&c| !(c.is_ascii_hexdigit() || b"xXoO._+-".contains(&c))) {
            return Some(Value::String(token.to_owned()));
        }
        return None;
    }
    // A relative path.
    if token.starts_with("./") || token.starts_with("../") {
        return Some(Value::String(token.to_owned()));
    }
    // Starting with a letter (of any script), `_`, `$` or `/`: a string unless a special word.
    if (first.is_ascii_alphabetic() || !first.is_ascii() || matches!(first, b'_' | b'$' | b'/'))
        && !is_special_word(token)
    {
        return Some(Value::String(token.to_owned()));
    }
    None
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::yaml::{parse_owned, parse_spanned};
    use super::*;

    /// Parse with both readers: when the fast one accepts `text`, serde-saphyr must accept it too, with the same
    /// value, spans and secret ranges. Returns whether the fast one accepted.
    fn agrees(text: &str) -> bool {
        let Some(fast) = read(text, usize::MAX) else { return false };
        let slow = match parse_spanned(text.to_owned()) {
            Ok(d) => d,
            Err(u) => panic!("the fast reader accepted what serde-saphyr refuses ({}):\n{text}", u.error),
        };
        // Key order too (the JSON maps compare as sets).
        let json = |v: Option<&Value>| v.map(|v| serde_json::to_string(v).unwrap());
        assert_eq!(json(fast.value.as_ref()), json(slow.value.as_ref()), "value of:\n{text}");
        assert_eq!(Some(&fast.spans), slow.spans.get(), "spans of:\n{text}");
        let sorted = |v: &[(usize, usize)]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        assert_eq!(sorted(&fast.secret_ranges), sorted(&slow.secret_ranges), "secret ranges of:\n{text}");
        assert!(slow.problems.is_empty());
        // The document as the loader gets it: the resources' spans at once, the rest read again on demand.
        let lazy = parse_owned(text.to_owned()).map_err(|u| u.error).unwrap();
        let mut pointers = vec!["/nope".to_owned(), "/sources/99/x".to_owned(), "x/y".to_owned()];
        if let Some(v) = &slow.value {
            all_pointers(v, &mut String::new(), &mut pointers);
        }
        pointers.sort_by_key(|p| p.matches('/').count());
        for p in &pointers {
            let shallow = p.matches('/').count() <= 2;
            assert_eq!(lazy.span(p), slow.span(p), "span of {p} in:\n{text}");
            assert_eq!(lazy.nearest(p), slow.nearest(p), "nearest of {p} in:\n{text}");
            if shallow && lazy.value.is_some() {
                assert!(lazy.spans.get().is_none(), "{p} needed every span");
            }
        }
        true
    }

    fn all_pointers(v: &Value, at: &mut String, out: &mut Vec<String>) {
        out.push(at.clone());
        let len = at.len();
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    at.push_str(&format!("/{i}"));
                    all_pointers(item, at, out);
                    at.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    at.push('/');
                    super::super::yaml::push_escaped(at, k);
                    all_pointers(item, at, out);
                    at.truncate(len);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn accepts_the_common_shape() {
        let cases = [
            "",
            "# only a comment\n\n",
            "sources:\n  - source_name: src-00001\n    host: mysql-1.db.internal\n    port: 3306\n    user: dm\n    \
             password: ${env:PW}\n    enable_gtid: true\n    enable: false\ntasks:\n- name: t\n  task_mode: incremental\n  \
             table_migrate_rule:\n    - source:\n        source_name: src-00001\n        schema: db\n        table: \"*\"\n",
            "# header\nsources:   # trailing comment\n\n  - source_name: 'it''s'\n    host: \"a # not a comment\"\n    \
             password: hunter2\n    port: 0\n    x-y.z: /var/lib/dm\n    empty:\n    tilde: ~\n    nothing: null\n",
            "a:\n    b:\n        c: 1\n    d: []\n    e: {}\n    f:   # comment\nz: 10.0.0.1\n",
            "- a\n- b: 1\n  c: 2\n-   d: x y z\n    e: ${env:A}-${env:B}\n-\n  f: g\n",
            "key: value with, commas [and] {brackets}:none\nk2: a#b\nk3: \"\"\nk4: ''\n",
            "# 数据库 comment\nname: 订单同步\nhost: hôte\npassword: \"mot de passe\"\n",
            "ssl:\n  ssl_key_content: secret-text\n  pasword: 1234\n  token: true\n  api_key: ${env:K}\n",
            "list:\n- one\n- two\nafter: 1\n",
            "a: [x, \"y z\", 'q''s', 3306, true, ~, ./p]   # comment\nb: [ one ]\nc: [10.0.0.1,200GiB]\n",
            "dir: ./dumped_data/catalog\nquota: 200GiB\nwait: 10s\nat: 12:30\n",
        ];
        for text in cases {
            assert!(agrees(text), "not accepted:\n{text}");
        }
    }

    #[test]
    fn leaves_the_rest_to_serde_saphyr() {
        let cases = [
            "a: &x 1\nb: *x\n",
            "<<: {a: 1}\n",
            "a: !!str 1\n",
            "a: |\n  text\n",
            "a: [1, [2]]\n",
            "a: [1,\n  2]\n",
            "a: [1, ]\n",
            "a: [b: 1]\n",
            "a: [x] y\n",
            "a: {b: 1}\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: 1\na: 2\n",
            "a: yes\n",
            "a: On\n",
            "a: 0123\n",
            "a: 1.5\n",
            "a: -1\n",
            "a: 1e5\n",
            "a: True\n",
            "a: .inf\n",
            "a: b\n  c\n",
            "---\na: 1\n",
            "a: 1\n...\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: \"x\\ty\"\n",
            "a: \"x\n  y\"\n",
            "\u{feff}a: 1\n",
            "a: b: c\n",
            "a: b:\n",
            "\"a\": 1\n",
            "1: a\n",
            "y: a\n",
            "a:\n- b\n  - c\n",
            "a:\n  - b\n c: 1\n",
            "  a: 1\n",
            "scalar\n",
            "a:\n  b\n",
            "- - a\n",
            "-\n- a\n",
            "a: 'x' y\n",
            "a: x\n  # comment\n    y\n",
            "? a\n: b\n",
            "a: @x\n",
        ];
        for text in cases {
            assert!(!agrees(text), "accepted:\n{text}");
        }
    }

    /// Every YAML file of the repository (examples, test corpus, fuzz seeds and regressions).
    #[test]
    fn agrees_on_every_file_of_the_repository() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                    out.push(p);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["examples", "tests", "fuzz"] {
            walk(&root.join(dir), &mut files);
        }
        let mut accepted = 0;
        for f in &files {
            let Ok(text) = std::fs::read_to_string(f) else { continue };
            let ok = agrees(&text);
            eprintln!("{} {}", if ok { "fast" } else { "slow" }, f.display());
            accepted += usize::from(ok);
        }
        eprintln!("{accepted} of {} files read by the fast reader", files.len());
        assert!(files.len() > 10 && accepted >= 5, "{accepted} of {}", files.len());
    }

    /// Random documents of the accepted shape, written in every style it allows, and random one-character
    /// mutations of them (mostly outside the shape, or invalid): wherever the fast reader accepts, it agrees.
    #[test]
    fn agrees_on_generated_documents() {
        let mut rng = StdRng::seed_from_u64(7);
        let (mut accepted, mut mutated_accepted) = (0, 0);
        let runs = 3000;
        for _ in 0..runs {
            let doc = gen_node(&mut rng, 0);
            let mut text = String::new();
            render(&doc, 0, &mut rng, &mut text);
            if agrees(&text) {
                accepted += 1;
            }
            let mut bytes: Vec<char> = text.chars().collect();
            if !bytes.is_empty() {
                let at = rng.random_range(0..bytes.len());
                let ch = [' ', '#', ':', '-', '"', '\'', '\n', '[', '{', '&', '*', 'x', '0', '~', '.']
                    [rng.random_range(0..15)];
                match rng.random_range(0..3) {
                    0 => bytes.insert(at, ch),
                    1 => bytes[at] = ch,
                    _ => {
                        bytes.remove(at);
                    }
                }
                let mutated: String = bytes.into_iter().collect();
                if agrees(&mutated) {
                    mutated_accepted += 1;
                }
            }
        }
        eprintln!("accepted {accepted} of {runs} generated documents, {mutated_accepted} mutations");
        assert!(accepted > runs / 2, "the generator should mostly write the accepted shape: {accepted}");
        assert!(mutated_accepted > 0);
    }

    enum Gen {
        Scalar(&'static str),
        Map(Vec<(&'static str, Gen)>),
        Seq(Vec<Gen>),
    }

    const KEYS: &[&str] =
        &["name", "host", "port", "password", "pasword", "x-a", "a.b", "source_name", "k", "ssl_key", "_u"];
    /// Scalars of the accepted shape.
    const SCALARS: &[&str] = &[
        "plain",
        "two words",
        "3306",
        "0",
        "10.0.0.1",
        "true",
        "false",
        "null",
        "~",
        "${env:DM_PW}",
        "a-${env:X}",
        "\"quoted # not a comment\"",
        "'single ''quoted'''",
        "\"\"",
        "''",
        "[]",
        "{}",
        "/var/lib",
        "数据库",
        "a#b",
        "hunter2 # comment",
        "a:b",
        "http://x:80/y",
        "[a, 'b', 3]",
        "[ x ]",
        "./dir",
        "200GiB",
        "12:30",
        "10s",
        "",
        "\"x: y\"",
        "'a # b'",
        "\"'\"",
        "'\"'",
        "[\"a, b\", 'c]']",
        "中文 # 注释",
    ];
    /// Scalars left to serde-saphyr.
    const ODD_SCALARS: &[&str] = &[
        "x: y",
        "yes",
        "007",
        "1.5",
        "-1",
        "\"esc\\\"aped\"",
        "&anchor a",
        "*alias",
        "!tag x",
        "[a, b]",
        "{a: 1}",
        "|",
        "[a, ]",
    ];

    fn gen_node(rng: &mut StdRng, depth: usize) -> Gen {
        let kind = if depth == 0 {
            rng.random_range(0..10) % 2 + 1
        } else {
            rng.random_range(0..if depth > 4 { 1 } else { 5 })
        };
        match kind {
            1 => {
                let n = rng.random_range(1..5);
                // Distinct keys mostly (duplicates are left to serde-saphyr).
                let mut keys: Vec<&str> = (0..n).map(|_| KEYS[rng.random_range(0..KEYS.len())]).collect();
                if rng.random_range(0..10) > 0 {
                    keys.sort_unstable();
                    keys.dedup();
                }
                Gen::Map(keys.into_iter().map(|k| (k, gen_node(rng, depth + 1))).collect())
            }
            2 => Gen::Seq((0..rng.random_range(1..4)).map(|_| gen_node(rng, depth + 1)).collect()),
            _ if rng.random_range(0..20) == 0 => Gen::Scalar(ODD_SCALARS[rng.random_range(0..ODD_SCALARS.len())]),
            _ => Gen::Scalar(SCALARS[rng.random_range(0..SCALARS.len())]),
        }
    }

    fn filler(rng: &mut StdRng, out: &mut String) {
        match rng.random_range(0..12) {
            0 => out.push('\n'),
            1 => out.push_str(&format!("{}# comment: - x\n", " ".repeat(rng.random_range(0..6)))),
            _ => {}
        }
    }

    fn line_end(rng: &mut StdRng, out: &mut String) {
        match rng.random_range(0..8) {
            0 => out.push_str("   "),
            1 => out.push_str(" # trailing"),
            _ => {}
        }
        out.push('\n');
        filler(rng, out);
    }

    /// Write `g` as a block node whose lines start at column `ind`, the first line already indented (or after
    /// `- ` / `key:` when `g` is a scalar).
    fn render(g: &Gen, ind: usize, rng: &mut StdRng, out: &mut String) {
        match g {
            Gen::Scalar(s) => {
                out.push_str(s);
                line_end(rng, out);
            }
            Gen::Map(entries) => {
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&" ".repeat(ind));
                    }
                    out.push_str(k);
                    out.push(':');
                    match v {
                        Gen::Scalar(_) => {
                            out.push(' ');
                            render(v, ind, rng, out);
                        }
                        Gen::Seq(_) if rng.random_range(0..2) == 0 => {
                            // An unindented list.
                            line_end(rng, out);
                            out.push_str(&" ".repeat(ind));
                            render(v, ind, rng, out);
                        }
                        _ => {
                            line_end(rng, out);
                            let deeper = ind + rng.random_range(1..4);
                            out.push_str(&" ".repeat(deeper));
                            render(v, deeper, rng, out);
                        }
                    }
                }
            }
            Gen::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&" ".repeat(ind));
                    }
                    out.push('-');
                    match item {
                        Gen::Seq(_) | Gen::Map(_) if rng.random_range(0..3) == 0 => {
                            // The item on the following lines.
                            line_end(rng, out);
                            let deeper = ind + rng.random_range(1..4);
                            out.push_str(&" ".repeat(deeper));
                            render(item, deeper, rng, out);
                        }
                        _ => {
                            let gap = rng.random_range(1..3);
                            out.push_str(&" ".repeat(gap));
                            render(item, ind + 1 + gap, rng, out);
                        }
                    }
                }
            }
        }
    }
}
