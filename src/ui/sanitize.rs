//! Strings that come from outside (DM-master: names, error and status messages; file names; configuration keys)
//! must not drive the terminal or break the layout of a pull-request comment. These functions show every control
//! character visibly instead: C0 (ESC, CR, BEL, ...), DEL, C1 and the bidirectional overrides and isolates that can
//! make text read differently from what it is ("Trojan Source"). Every renderer calls them on every such string;
//! the output writers (`ui::emit`) apply [`for_stream`] to everything as a last line of defence.

use std::borrow::Cow;

/// Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069).
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// C0 (including ESC, CR, BEL), DEL, C1, bidi controls.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi(c)
}

fn escape(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.extend(c.escape_unicode()),
    }
}

/// One line of text for people: every control character (newlines and tabs too, which could forge report lines) is
/// shown escaped, e.g. `\u{1b}[2J`, `\n`.
pub fn inline(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) { escape(c, &mut out) } else { out.push(c) }
    }
    Cow::Owned(out)
}

/// Multi-line text for people: like [`inline`], but line feeds and tabs are kept.
pub fn multiline(s: &str) -> Cow<'_, str> {
    let bad = |c: char| is_unsafe(c) && c != '\n' && c != '\t';
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) { escape(c, &mut out) } else { out.push(c) }
    }
    Cow::Owned(out)
}

/// A YAML `#` comment's text: one line, nothing that drives a terminal that shows the file.
pub fn comment(s: &str) -> String {
    inline(&s.replace("\r\n", " ").replace(['\n', '\r'], " ")).into_owned()
}

/// Markdown text (a table cell, a list item, a quote): one line, with HTML and Markdown syntax neutralized so a
/// value cannot close `<details>`, open a link or an image, end a table cell or start a code span.
pub fn markdown_text(s: &str) -> String {
    let flat = inline(&s.replace("\r\n", " ").replace(['\n', '\r'], " ")).into_owned();
    let mut out = String::with_capacity(flat.len() + 8);
    for c in flat.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span holding `s` literally: the delimiter is one backtick longer than the longest run inside,
/// padded when `s` starts or ends with a backtick. In a table cell (`in_table`) a `|` is escaped, which GitHub
/// requires even inside code spans.
pub fn markdown_code(s: &str, in_table: bool) -> String {
    let flat = inline(&s.replace("\r\n", " ").replace(['\n', '\r'], " ")).into_owned();
    let flat = if in_table { flat.replace('|', "\\|") } else { flat };
    let longest = flat.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') || flat.is_empty() { " " } else { "" };
    format!("{fence}{pad}{flat}{pad}{fence}")
}

/// What a stream may carry: see [`for_stream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Text for a terminal or a log: every control character except line feed and tab is escaped; with
    /// `colors`, SGR sequences (`ESC [ digits ; m`, colours and bold only) are kept: dm-apply and miette colour
    /// their output with them, and they cannot move the cursor, retitle the window or clear the screen.
    Text { colors: bool },
    /// JSON from serde_json, which escapes C0 but writes DEL, C1 and bidi controls raw: those become `\uXXXX`
    /// escapes (only valid inside strings, which is the only place serde_json writes them). Same value, no
    /// terminal effect.
    Json,
    /// YAML written by dm-apply: scalars are escaped by the serializer, comments by [`comment`]; raw C0, DEL and
    /// C1 left anywhere are escaped; a key or value holding a bidi control becomes a double-quoted scalar with
    /// `\uXXXX` escapes (the same value).
    Yaml,
}

/// The last line of defence on every output stream.
pub fn for_stream(s: &str, policy: Policy) -> Cow<'_, str> {
    if policy == Policy::Yaml && s.chars().any(is_bidi) {
        let fixed = yaml_bidi(s);
        return Cow::Owned(for_stream(&fixed, policy).into_owned());
    }
    let bad = |c: char| match policy {
        Policy::Text { .. } => is_unsafe(c) && c != '\n' && c != '\t',
        Policy::Json => c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) || is_bidi(c),
        Policy::Yaml => c.is_control() && c != '\n' && c != '\t',
    };
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !bad(c) {
            out.push(c);
            continue;
        }
        match policy {
            Policy::Text { colors } => {
                if colors
                    && c == '\u{1b}'
                    && let Some(len) = sgr_len(&s[i..])
                {
                    out.push_str(&s[i..i + len]);
                    // Skip the rest of the sequence (ASCII: one char per byte).
                    for _ in 1..len {
                        chars.next();
                    }
                    continue;
                }
                escape(c, &mut out);
            }
            Policy::Json => out.push_str(&format!("\\u{:04x}", c as u32)),
            Policy::Yaml => escape(c, &mut out),
        }
    }
    Cow::Owned(out)
}

/// YAML with bidi controls in scalars (a name read from DM-master): each such key or value is rewritten as a
/// double-quoted scalar with `\uXXXX` escapes, the same value with nothing invisible; in a comment they are shown
/// escaped. Other lines are left as they are.
fn yaml_bidi(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 32);
    for line in s.split_inclusive('\n') {
        if !line.chars().any(is_bidi) {
            out.push_str(line);
            continue;
        }
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let indent = body.len() - body.trim_start_matches([' ', '-']).len();
        let (lead, rest) = body.split_at(indent);
        out.push_str(lead);
        if rest.starts_with('#') {
            out.push_str(&multiline(rest));
        } else {
            match yaml_key_end(rest) {
                Some(k) => {
                    out.push_str(&yaml_scalar(&rest[..k]));
                    out.push(':');
                    let value = &rest[k + 1..];
                    let v = value.trim_start();
                    out.push_str(&value[..value.len() - v.len()]);
                    out.push_str(&yaml_scalar(v));
                }
                None => out.push_str(&yaml_scalar(rest)),
            }
        }
        out.push_str(end);
    }
    out
}

/// Where the `:` after a mapping key is (outside quotes), if the text is `key: value` or `key:`.
fn yaml_key_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'"') | Some(b'\'')) {
        let q = b[0];
        i = 1;
        while i < b.len() && b[i] != q {
            i += if b[i] == b'\\' && q == b'"' { 2 } else { 1 };
        }
        i += 1;
    }
    while i < b.len() {
        if b[i] == b':' && matches!(b.get(i + 1), None | Some(b' ')) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// One scalar with its bidi controls escaped, double-quoted.
fn yaml_scalar(s: &str) -> String {
    if !s.chars().any(is_bidi) {
        return s.to_string();
    }
    let inner: String = if let Some(q) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        q.to_string()
    } else if let Some(q) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        q.replace("''", "'").replace('\\', "\\\\").replace('"', "\\\"")
    } else {
        s.replace('\\', "\\\\").replace('"', "\\\"")
    };
    let mut out = String::from("\"");
    for c in inner.chars() {
        if is_bidi(c) { out.push_str(&format!("\\u{:04X}", c as u32)) } else { out.push(c) }
    }
    out.push('"');
    out
}

/// Length of an SGR sequence (`ESC [ [0-9;]* m`) at the start of `s`.
fn sgr_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("\u{1b}[")?;
    let params = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b';').count();
    (rest.as_bytes().get(params) == Some(&b'm') && params <= 32).then_some(2 + params + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_escapes_every_control_and_bidi_character() {
        assert_eq!(inline("orders"), "orders");
        assert!(matches!(inline("orders"), Cow::Borrowed(_)));
        assert_eq!(inline("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(inline("x\ny\rz\tw"), "x\\ny\\rz\\tw");
        assert_eq!(inline("\u{7f}\u{9b}\u{202e}\u{2066}"), "\\u{7f}\\u{9b}\\u{202e}\\u{2066}");
        assert_eq!(multiline("a\nb\t\u{7}"), "a\nb\t\\u{7}");
        assert_eq!(comment("a\r\nb\rc\u{1b}"), "a b c\\u{1b}");
    }

    #[test]
    fn markdown_cannot_break_the_comment_layout() {
        let hostile = "x</details><img src=y>|`a`*b*\n# h";
        let t = markdown_text(hostile);
        assert!(!t.contains('<') && !t.contains('\n'), "{t}");
        assert!(t.contains("\\|") && t.contains("\\`") && t.contains("&lt;/details&gt;"), "{t}");
        assert_eq!(markdown_code("task.a", false), "`task.a`");
        assert_eq!(markdown_code("a``b", false), "```a``b```");
        assert_eq!(markdown_code("`x", false), "`` `x ``");
        assert_eq!(markdown_code("a|b", true), "`a\\|b`");
    }

    #[test]
    fn streams_keep_colours_only_when_allowed() {
        let s = "\u{1b}[31;1mFAILED\u{1b}[0m \u{1b}]0;title\u{7}\u{1b}[2J";
        let colored = for_stream(s, Policy::Text { colors: true });
        assert_eq!(colored, "\u{1b}[31;1mFAILED\u{1b}[0m \\u{1b}]0;title\\u{7}\\u{1b}[2J");
        let plain = for_stream(s, Policy::Text { colors: false });
        assert!(!plain.contains('\u{1b}'), "{plain}");
        assert_eq!(for_stream("a\nb\tc", Policy::Text { colors: false }), "a\nb\tc");
    }

    #[test]
    fn yaml_keeps_its_value_without_invisible_characters() {
        let yaml = "s:\n- source_name: y`|\u{202e}x\n  host: 'a''\u{2066}b'\n  \"k\u{202e}\": \"v\\\"\u{202e}\"\n# c \u{202e}\nplain: ok\n";
        let safe = for_stream(yaml, Policy::Yaml);
        assert!(!safe.chars().any(is_bidi), "{safe}");
        assert!(safe.contains("plain: ok\n"), "{safe}");
        let parse = |t: &str| serde_saphyr::from_str::<serde_json::Value>(t).unwrap();
        assert_eq!(parse(&safe), parse(yaml), "{safe}");
    }

    #[test]
    fn json_keeps_its_value() {
        let v = serde_json::json!({"name": "a\u{1b}\u{9b}\u{202e}b\u{7f}"});
        let text = serde_json::to_string(&v).unwrap();
        let safe = for_stream(&text, Policy::Json);
        assert!(!safe.chars().any(|c| c.is_control() || is_bidi(c)), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }
}
