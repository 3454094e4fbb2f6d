//! YAML → `serde_json::Value` plus where every node came from.
//!
//! serde-saphyr has no spanned DOM, so a small recursive node type deserialized through `Spanned` gives every
//! node (and every mapping key) its byte range. JSON Schema errors carry JSON pointers; the span list turns them
//! back into `file:line:col` and a labelled snippet.
//!
//! That spanned deserialization costs about 700 instructions per byte (most of `validate`'s 0.2 s on a 1 MB file
//! of 3,000 resources), so the common shape of configuration files (block mappings and lists of one-line
//! scalars) is read first by a small reader of our own, `yaml_fast`, which gives the same result; anything else
//! goes through serde-saphyr, which also reports every syntax error.

use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

/// A byte range in the original file text, plus its 1-based line and column (characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub offset: usize,
    pub len: usize,
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_location(loc: &serde_saphyr::Location) -> Pos {
        let span = loc.span();
        Pos {
            offset: span.byte_offset().unwrap_or(0) as usize,
            len: span.byte_len().unwrap_or(0) as usize,
            line: loc.line() as usize,
            column: loc.column() as usize,
        }
    }
}

/// Where one node of the document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpan {
    /// The value, where it is used (for a value that came through an alias or merge key: the alias).
    pub value: Pos,
    /// Where the value is written (differs from `value` only for aliased values: the anchored definition).
    pub defined: Pos,
    /// The mapping key that holds this value, if it is a mapping value.
    pub key: Option<Pos>,
}

impl NodeSpan {
    /// The key when there is one (the best place for "this field" problems), else the value.
    pub fn key_or_value(&self) -> Pos {
        self.key.unwrap_or(self.value)
    }
}

/// Where each node of a document is: looked up by JSON pointer only when a problem is reported or an origin
/// recorded. One flat list in document order (a node, then its descendants), because a hash index of every
/// node's pointer, or a tree of small vectors, cost more to build and free than all the lookups together; and in
/// 32-bit numbers, as it is the largest structure of a load (files are at most a few MiB).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Spans {
    nodes: Vec<SpanNode>,
    /// Mapping keys' names, one after the other (`SpanNode::name` is a range of it).
    names: String,
    /// Each list's items' indexes in `nodes`, list after list (`Kind::Seq` holds a range of it).
    items: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
struct SpanNode {
    value: Pos32,
    defined: Pos32,
    /// Line 0 when the node is not a mapping value.
    key: Pos32,
    /// The index after this node's last descendant (its next sibling, if any).
    end: u32,
    kind: Kind,
    /// For a mapping value, its key as the JSON value names it: a range of `Spans::names`.
    name: (u32, u32),
}

impl SpanNode {
    fn span(&self) -> NodeSpan {
        let key = (self.key.line != 0).then(|| self.key.pos());
        NodeSpan { value: self.value.pos(), defined: self.defined.pos(), key }
    }
}

/// A [`Pos`] in 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Pos32 {
    offset: u32,
    len: u32,
    line: u32,
    column: u32,
}

impl Pos32 {
    fn new(p: Pos) -> Pos32 {
        Pos32 { offset: small(p.offset), len: small(p.len), line: small(p.line), column: small(p.column) }
    }

    fn pos(self) -> Pos {
        let big = |n: u32| n as usize;
        Pos { offset: big(self.offset), len: big(self.len), line: big(self.line), column: big(self.column) }
    }
}

/// `n` in 32 bits (saturated: never reached, files are limited to 8 MiB).
fn small(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Leaf,
    Map,
    /// Items at `items[first..first + len]` (filled in by [`Spans::close`]).
    Seq {
        first: u32,
        len: u32,
    },
}

impl Spans {
    pub(super) fn with_capacity(nodes: usize) -> Spans {
        Spans { nodes: Vec::with_capacity(nodes), ..Spans::default() }
    }

    /// Add a node (then its descendants, then [`Spans::close`] it unless it is a leaf); returns its index.
    pub(super) fn push(&mut self, span: NodeSpan, name: Option<&str>, kind: Kind) -> usize {
        let start = small(self.names.len());
        self.names.push_str(name.unwrap_or(""));
        let i = self.nodes.len();
        self.nodes.push(SpanNode {
            value: Pos32::new(span.value),
            defined: Pos32::new(span.defined),
            key: span.key.map(Pos32::new).unwrap_or_default(),
            end: small(i + 1),
            kind,
            name: (start, small(self.names.len())),
        });
        i
    }

    /// All descendants of mapping or list `i` are added.
    pub(super) fn close(&mut self, i: usize) {
        let end = self.nodes.len();
        self.nodes[i].end = small(end);
        if let Kind::Seq { .. } = self.nodes[i].kind {
            let first = self.items.len();
            let mut c = i + 1;
            while c < end {
                self.items.push(small(c));
                c = self.nodes[c].end as usize;
            }
            self.nodes[i].kind = Kind::Seq { first: small(first), len: small(self.items.len() - first) };
        }
    }

    /// The deepest node on the way to `pointer`, and whether it is the node itself.
    fn walk(&self, pointer: &str) -> Option<(&SpanNode, bool)> {
        let root = self.nodes.first()?;
        if pointer.is_empty() {
            return Some((root, true));
        }
        // Not a JSON pointer: nothing (not even the root) is its ancestor.
        let rest = pointer.strip_prefix('/')?;
        let mut i = 0;
        for seg in rest.split('/') {
            let node = &self.nodes[i];
            let next = match node.kind {
                Kind::Leaf => None,
                Kind::Seq { first, len } => {
                    canonical_index(seg).filter(|&k| k < len as usize).map(|k| self.items[first as usize + k] as usize)
                }
                Kind::Map => {
                    let name = unescape(seg);
                    let mut found = None;
                    let mut c = i + 1;
                    while c < node.end as usize {
                        let child = &self.nodes[c];
                        // The last of equal keys, as the JSON value keeps the last value (merge keys can repeat one).
                        if self.names[child.name.0 as usize..child.name.1 as usize] == *name {
                            found = Some(c);
                        }
                        c = child.end as usize;
                    }
                    found
                }
            };
            match next {
                Some(c) => i = c,
                None => return Some((&self.nodes[i], false)),
            }
        }
        Some((&self.nodes[i], true))
    }
}

/// Append `key` to a JSON pointer, escaped (`~` → `~0`, `/` → `~1`); allocates only for such rare keys.
pub(crate) fn push_escaped(pointer: &mut String, key: &str) {
    if key.contains(['~', '/']) {
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
    } else {
        pointer.push_str(key);
    }
}

/// A list index as a JSON pointer writes it: digits, no leading zero.
fn canonical_index(seg: &str) -> Option<usize> {
    let b = seg.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    seg.parse().ok()
}

fn unescape(seg: &str) -> std::borrow::Cow<'_, str> {
    if seg.contains('~') { seg.replace("~1", "/").replace("~0", "~").into() } else { seg.into() }
}

/// The fast reader records spans down to this depth (the root, the top-level values and their items, i.e. each
/// resource: enough for the resources' origins); a deeper lookup, which only placing a problem needs, reads the
/// text again with every span recorded.
const SHALLOW_DEPTH: usize = 2;

/// A parsed file: its content as JSON and where each node came from.
#[derive(Debug, Default)]
pub struct Document {
    /// `None` for an empty file or a file of only comments.
    pub value: Option<Value>,
    /// Every node's span; for a file the fast reader read, computed from `text` on the first lookup that needs it.
    pub(super) spans: OnceLock<Spans>,
    /// The fast reader's spans down to [`SHALLOW_DEPTH`].
    shallow: Spans,
    /// The file's text.
    text: String,
    /// Byte ranges of plain-text secret values, to redact from rendered snippets.
    pub secret_ranges: Vec<(usize, usize)>,
    /// Problems found while converting (e.g. a non-scalar mapping key).
    pub problems: Vec<(Pos, String)>,
}

impl Document {
    /// The span of the node at `pointer` (a JSON pointer as jsonschema prints it, e.g. `/tasks/0/name`).
    pub fn span(&self, pointer: &str) -> Option<NodeSpan> {
        match self.spans_for(pointer).walk(pointer)? {
            (node, true) => Some(node.span()),
            (_, false) => None,
        }
    }

    /// The span of `pointer`, or of its nearest ancestor that has one.
    pub fn nearest(&self, pointer: &str) -> Option<NodeSpan> {
        self.spans_for(pointer).walk(pointer).map(|(node, _)| node.span())
    }

    /// The text that was parsed.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn spans_for(&self, pointer: &str) -> &Spans {
        if let Some(all) = self.spans.get() {
            return all;
        }
        if pointer.matches('/').count() <= SHALLOW_DEPTH {
            return &self.shallow;
        }
        // The fast reader read this text before, so it reads it again (the same way).
        self.spans.get_or_init(|| super::yaml_fast::read(&self.text, usize::MAX).map(|r| r.spans).unwrap_or_default())
    }
}

enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        i64::try_from(v).map(Node::Int).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        u64::try_from(v).map(Node::UInt).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        String::from_utf8(v.to_vec()).map(Node::Str).map_err(|_| E::custom("binary value is not UTF-8"))
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Node>>()? {
            let v = map.next_value::<Spanned<Node>>()?;
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}

/// Deepest nesting accepted (a real configuration needs about 8 levels).
pub const MAX_DEPTH: usize = 48;
/// Most values (scalars, lists, mappings) per file: about 15,000 sources or 2,000 tasks.
pub const MAX_NODES: usize = 200_000;
/// Most anchors, and most aliases, per file.
pub const MAX_ALIASES: usize = 1_000;

/// Parser options: the duplicate-key policy and budgets that keep hostile input (alias bombs, deep nesting) cheap.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_aliases: MAX_ALIASES,
            max_anchors: MAX_ALIASES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    }
}

/// Key names whose values are secrets (the redaction layer's rule, `ui::redact::is_secret_key`).
pub fn is_secret_key(key: &str) -> bool {
    crate::ui::redact::is_secret_key(key)
}

/// A string written as one `${env:NAME}` reference (or empty) is not a secret in itself.
fn is_env_ref_only(s: &str) -> bool {
    crate::ui::redact::is_env_ref_only(s)
}

/// Whether a value under a secret key is written in plain text (and must be hidden from snippets).
pub(super) fn is_plain_secret(v: &Value) -> bool {
    match v {
        Value::String(s) => !is_env_ref_only(s),
        Value::Bool(_) | Value::Number(_) => true,
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

/// Parse one YAML document.
pub fn parse(text: &str) -> Result<Document, serde_saphyr::Error> {
    parse_owned(text.to_owned()).map_err(|u| u.error)
}

/// A text that is not valid YAML (or breaks a limit), handed back with the error.
pub(crate) struct Unparsed {
    pub error: serde_saphyr::Error,
    pub text: String,
}

/// Parse one YAML document, keeping its text.
pub(crate) fn parse_owned(text: String) -> Result<Document, Box<Unparsed>> {
    let Some(read) = super::yaml_fast::read(&text, SHALLOW_DEPTH) else { return parse_spanned(text) };
    let spans = OnceLock::new();
    if read.value.is_none() {
        let _ = spans.set(Spans::default());
    }
    Ok(Document {
        value: read.value,
        spans,
        shallow: read.spans,
        text,
        secret_ranges: read.secret_ranges,
        problems: Vec::new(),
    })
}

/// Parse with serde-saphyr: any YAML, and every syntax error.
pub(super) fn parse_spanned(text: String) -> Result<Document, Box<Unparsed>> {
    let root: Option<Spanned<Node>> = match serde_saphyr::from_str_with_options(&text, options()) {
        Ok(root) => root,
        Err(error) => return Err(Box::new(Unparsed { error, text })),
    };
    let mut doc = Document::default();
    let mut spans = Spans::default();
    if let Some(root) = root
        && !matches!(root.value, Node::Null)
    {
        doc.value = Some(convert(&root, None, &mut doc, &mut spans, false));
    }
    let _ = doc.spans.set(spans);
    doc.text = text;
    Ok(doc)
}

fn convert(
    node: &Spanned<Node>,
    key: Option<(Pos, &str)>,
    doc: &mut Document,
    spans: &mut Spans,
    secret: bool,
) -> Value {
    let value_pos = Pos::from_location(&node.referenced);
    let defined_pos =
        if node.defined == serde_saphyr::Location::UNKNOWN { value_pos } else { Pos::from_location(&node.defined) };
    let span = NodeSpan { value: value_pos, defined: defined_pos, key: key.map(|(pos, _)| pos) };
    let name = key.map(|(_, name)| name);
    if secret {
        let plain = match &node.value {
            Node::Str(s) => !is_env_ref_only(s),
            Node::Bool(_) | Node::Int(_) | Node::UInt(_) | Node::Float(_) => true,
            Node::Null | Node::Seq(_) | Node::Map(_) => false,
        };
        if plain {
            // The text to hide is where the value is written, not an alias that refers to it.
            doc.secret_ranges.push((defined_pos.offset, defined_pos.len));
        }
    }
    let kind = match &node.value {
        Node::Seq(_) => Kind::Seq { first: 0, len: 0 },
        Node::Map(_) => Kind::Map,
        _ => Kind::Leaf,
    };
    let me = spans.push(span, name, kind);
    let value = match &node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => Value::Number((*i).into()),
        Node::UInt(u) => Value::Number((*u).into()),
        // JSON Schema counts 3306.0 as an integer; make typed deserialization agree.
        Node::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Number((*f as i64).into()),
        Node::Float(f) => Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        Node::Str(s) => Value::String(s.clone()),
        Node::Seq(items) => Value::Array(items.iter().map(|item| convert(item, None, doc, spans, secret)).collect()),
        Node::Map(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let kpos = Pos::from_location(&k.referenced);
                let name = match &k.value {
                    Node::Str(s) => s.clone(),
                    Node::Bool(b) => b.to_string(),
                    Node::Int(i) => i.to_string(),
                    Node::UInt(u) => u.to_string(),
                    Node::Float(f) => f.to_string(),
                    Node::Null => "null".to_owned(),
                    Node::Seq(_) | Node::Map(_) => {
                        doc.problems.push((kpos, "a mapping key must be a plain string".to_owned()));
                        continue;
                    }
                };
                let secret = secret || is_secret_key(&name);
                let value = convert(v, Some((kpos, &name)), doc, spans, secret);
                out.insert(name, value);
            }
            Value::Object(out)
        }
    };
    if kind != Kind::Leaf {
        spans.close(me);
    }
    value
}

/// Byte ranges of secret-looking values found line by line, for files that could not be parsed (a syntax error
/// or invalid UTF-8 still renders a snippet, and it must not show a password written near the error).
pub fn heuristic_secret_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut block_indent: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start_matches([' ', '\t']).len();
        let blank = body.trim().is_empty();
        if let Some(bi) = block_indent {
            if blank || indent > bi {
                if !blank {
                    out.push((offset + indent, body.len() - indent));
                }
                offset += line.len();
                continue;
            }
            block_indent = None;
        }
        let rest = body.trim_start_matches([' ', '\t']).trim_start_matches("- ").trim_start();
        if let Some(colon) = rest.find(':') {
            let key = rest[..colon].trim().trim_matches(['"', '\'']);
            let after = &rest[colon + 1..];
            let value = after.trim();
            let plain_key = key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
            if plain_key && is_secret_key(key) && !value.is_empty() {
                let start = offset + body.len() - after.trim_start().len();
                if value.starts_with('|') || value.starts_with('>') {
                    block_indent = Some(indent);
                } else if !is_env_ref_only(value.trim_matches(['"', '\''])) {
                    out.push((start, value.len()));
                }
            }
        }
        flow_secrets(body, offset, &mut out);
        offset += line.len();
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Secret-looking `key: value` pairs inside flow mappings on one line (`{user: u, password: x}`): hide each value
/// up to the next `,` or `}`.
fn flow_secrets(body: &str, offset: usize, out: &mut Vec<(usize, usize)>) {
    let bytes = body.as_bytes();
    for (i, _) in body.match_indices(':') {
        // The key: the word before the colon, preceded by `{` or `,` (flow style).
        let before = &body[..i];
        let key_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '"' || c == '\'';
        let Some((ks, ch)) = before.char_indices().rev().find(|&(_, c)| !key_char(c)) else { continue };
        let key_start = ks + ch.len_utf8();
        let opener = before[..key_start].trim_end();
        if !(opener.ends_with('{') || opener.ends_with(',')) {
            continue;
        }
        let key = before[key_start..].trim_matches(['"', '\'']);
        if !is_secret_key(key) {
            continue;
        }
        let mut start = i + 1;
        while start < bytes.len() && bytes[start] == b' ' {
            start += 1;
        }
        // Up to the next `,` or `}` outside a `${...}` reference.
        let mut end = body.len();
        let mut depth = 0usize;
        let mut j = start;
        while j < bytes.len() {
            match bytes[j] {
                b'$' if bytes.get(j + 1) == Some(&b'{') => {
                    depth += 1;
                    j += 1;
                }
                b'}' if depth > 0 => depth -= 1,
                b',' | b'}' => {
                    end = j;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let value = body[start..end].trim_end();
        if !value.is_empty() && !is_env_ref_only(value.trim_matches(['"', '\''])) {
            out.push((offset + start, value.len()));
        }
    }
}

/// A YAML syntax (or structure) error as a diagnostic at its position.
pub fn syntax_problem(
    e: &serde_saphyr::Error,
    file: &std::sync::Arc<super::diag::FileSource>,
    text: &str,
) -> super::diag::Problem {
    use super::diag::Problem;
    let mut message = syntax_message(e);
    if message.starts_with("multiple YAML documents") {
        message = "a configuration file must hold a single YAML document (found another after `---`)".to_owned();
    } else if let Some(rest) = message.strip_prefix("budget breached: Depth") {
        let depth: String = rest.chars().filter(char::is_ascii_digit).collect();
        message = format!("nesting is too deep ({depth} levels; the limit is {MAX_DEPTH})");
    } else if let Some(rest) = message.strip_prefix("budget breached: ") {
        let what = match rest.split_whitespace().next().unwrap_or("") {
            "Nodes" => format!("more than {MAX_NODES} YAML values"),
            "Aliases" => format!("more than {MAX_ALIASES} aliases"),
            "Anchors" => format!("more than {MAX_ALIASES} anchors"),
            "Events" => "too many YAML events".to_owned(),
            _ => rest.to_owned(),
        };
        message = format!("the file exceeds a safety limit: {what}");
    }
    let lower = message.to_ascii_lowercase();
    let mut duplicate_key = None;
    let (label, help) = if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim().to_owned();
        message = format!("duplicate key `{key}`");
        duplicate_key = Some(key);
        ("defined again here", Some("each key may appear only once in a mapping; remove or merge one of them"))
    } else if lower.contains("found a tab") || lower.contains("tabs") || lower.contains(" tab ") {
        ("tab here", Some("YAML does not allow tabs for indentation; indent with spaces"))
    } else if lower.contains("limit")
        || lower.contains("alias")
        || lower.contains("recursion")
        || lower.contains("nesting")
    {
        (
            "limit reached here",
            Some(
                "dm-apply limits the size, nesting depth, number of values, anchors and aliases of a file to keep loading safe; simplify or split the file",
            ),
        )
    } else {
        ("here", None)
    };
    let problem = Problem::error("yaml", format!("invalid YAML: {message}"));
    match e.location() {
        Some(loc) if loc.line() > 0 => {
            let mut pos = Pos::from_location(&loc);
            if loc.span().byte_offset().is_none() {
                pos.offset = offset_of(text, pos.line, pos.column);
            }
            pos.offset = pos.offset.min(text.len());
            pos.len = pos.len.min(text.len() - pos.offset);
            let mut p = problem.at(file, pos, label);
            if let Some(key) = duplicate_key.as_deref()
                && let Some(first) = earlier_key(text, pos.line, pos.column, key)
            {
                p = p.also(file, first, "first defined here");
            }
            match help {
                Some(h) => p.with_help(h),
                None => p,
            }
        }
        _ => problem.in_file(file),
    }
}

/// The earlier `key:` of the same block mapping as the duplicate at `line`:`column` (block style only: scan up
/// through lines indented at least as deep, stop at the mapping's parent).
fn earlier_key(text: &str, line: usize, column: usize, key: &str) -> Option<Pos> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let indent = column.checked_sub(1)?;
    let mut offset: usize = lines.iter().take(line.checked_sub(1)?).map(|l| l.len()).sum();
    for i in (0..line.checked_sub(1)?).rev() {
        let l = lines.get(i)?;
        offset -= l.len();
        let body = l.trim_end_matches(['\n', '\r']);
        if body.trim().is_empty() || body.trim_start().starts_with('#') {
            continue;
        }
        let this_indent = body.len() - body.trim_start_matches(' ').len();
        // A list item `- key:` puts the key two columns after the dash.
        let (this_indent, rest) = match body.trim_start_matches(' ').strip_prefix("- ") {
            Some(after) => (this_indent + 2 + (after.len() - after.trim_start().len()), after.trim_start()),
            None => (this_indent, body.trim_start_matches(' ')),
        };
        if this_indent < indent {
            return None;
        }
        if this_indent == indent {
            let k = rest.split(':').next().unwrap_or("").trim().trim_matches(['"', '\'']);
            if k == key && rest.contains(':') {
                return Some(Pos {
                    offset: offset + this_indent,
                    len: key.len(),
                    line: i + 1,
                    column: this_indent + 1,
                });
            }
            if body.trim_start_matches(' ').starts_with("- ") {
                return None; // the start of this list item's mapping
            }
        }
    }
    None
}

/// The error's own text without the location suffix or snippet that serde-saphyr would add.
fn syntax_message(e: &serde_saphyr::Error) -> String {
    let opts = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let s = e.render_with_options(opts);
    let first = s.lines().next().unwrap_or("").trim().to_owned();
    let cut = first.find(" at line ").map_or(first.as_str(), |i| &first[..i]);
    cut.trim_end_matches(['.', ',']).to_owned()
}

/// Byte offset of a 1-based line and (character) column.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return off + l.char_indices().nth(column.saturating_sub(1)).map_or(l.len(), |(b, _)| b);
        }
        off += l.len();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_nodes_and_keys() {
        let text = "sources:\n  - source_name: a\n    port: 3306\n    password: \"hunter2\"\n    k: |\n      line1\n      line2\n    x: {a: 1}\n";
        let doc = parse(text).unwrap();
        let port = doc.span("/sources/0/port").unwrap();
        assert_eq!((port.value.line, port.value.column), (3, 11));
        assert_eq!(&text[port.value.offset..port.value.offset + port.value.len], "3306");
        let key = port.key.unwrap();
        assert_eq!(&text[key.offset..key.offset + key.len], "port");
        assert_eq!(doc.secret_ranges.len(), 1);
        let (o, l) = doc.secret_ranges[0];
        assert_eq!(&text[o..o + l], "\"hunter2\"");
    }

    #[test]
    fn pointers_find_nodes_and_nearest_ancestors() {
        let text = "a:\n  b/c: [x]\n  d~e:\n    - 1\n    - 2\n";
        let doc = parse_spanned(text.to_owned()).map_err(|u| u.error).unwrap();
        assert_eq!(doc.span("/a/d~0e/1").map(|s| s.value.line), Some(5));
        assert_eq!(doc.span("/a/b~1c/0").map(|s| s.value.column), Some(9));
        assert!(doc.span("/a/d~0e/01").is_none() && doc.span("/a/d~0e/+1").is_none());
        assert_eq!(doc.nearest("/a/d~0e/7/x").map(|s| s.value.line), Some(4));
        assert_eq!(doc.nearest("/a/zz").map(|s| s.key.map(|k| k.line)), Some(Some(1)));
        assert_eq!(doc.nearest(""), doc.span(""));
        assert!(doc.nearest("a/b").is_none());
        assert!(Document::default().nearest("/a").is_none());
    }

    #[test]
    fn secret_keys() {
        for k in ["password", "pasword", "passwd", "ssl_key_content", "ssl_key_contnt", "api_token", "PASSWORD"] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["ssl_ca_content", "ssl_cert_content", "port", "user", "host", "source_name", "purge"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn heuristic_ranges_cover_plain_values_and_blocks() {
        let text = "a:\n  password: hunter2\n  other: x\n  ssl_key_content: |\n    KEY1\n    KEY2\n  b: ${env:X}\n  password: ${env:PW}\n";
        let ranges = heuristic_secret_ranges(text);
        let hidden: Vec<&str> = ranges.iter().map(|&(o, l)| &text[o..o + l]).collect();
        assert_eq!(hidden, vec!["hunter2", "KEY1", "KEY2"]);
        let flow = "t: {host: h, password: hunter2, user: u}\n- {pasword: \"hunter3\"}\n{password: ${env:X}}\n";
        let hidden: Vec<&str> = heuristic_secret_ranges(flow).iter().map(|&(o, l)| &flow[o..o + l]).collect();
        assert_eq!(hidden, vec!["hunter2", "\"hunter3\""]);
    }

    #[test]
    fn earlier_duplicate_key() {
        let text =
            "sources:\n  - source_name: a\n    host: x\n    port: 1\n    host: y\n  - source_name: b\n    host: z\n";
        let first = earlier_key(text, 5, 5, "host").unwrap();
        assert_eq!((first.line, first.column), (3, 5));
        assert_eq!(&text[first.offset..first.offset + first.len], "host");
        assert!(earlier_key(text, 7, 5, "host").is_none(), "another list item's mapping");
        let corpus = "sources:\n  - source_name: mysql-01\n    host: db-a.internal\n    port: 3306\n    host: db-b.internal\n    user: dm\n";
        assert_eq!(earlier_key(corpus, 5, 5, "host").map(|p| p.line), Some(3));
        let first = earlier_key("a: 1\nb: 2\na: 3\n", 3, 1, "a").unwrap();
        assert_eq!((first.line, first.column), (1, 1));
    }

    #[test]
    fn empty_and_comments() {
        assert!(parse("").unwrap().value.is_none());
        assert!(parse("# only\n# comments\n").unwrap().value.is_none());
    }
}
