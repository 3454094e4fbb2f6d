//! The redaction layer: everything dm-apply prints (stdout and stderr: plans, reports, JSON, diagnostics and their
//! source snippets, logs, import/convert output) goes through it. Two rules:
//!
//! 1. **Known values** ([`scrub`]): every secret dm-apply holds in this process (each [`Secret`] built from the
//!    configuration, the environment or a file registers itself through [`remember`]) is replaced by
//!    `(sensitive value)` wherever it appears, also JSON-escaped, e.g. when DM-master echoes it in an error message.
//!    Values shorter than [`MIN_SCRUB_CHARS`] characters are not scrubbed from free text: they would match ordinary
//!    words and make output unreadable (they are still never printed by dm-apply itself: `Secret` prints masked).
//! 2. **Secret-looking keys** ([`secret_ranges`]): in a source snippet, the value of a key that looks secret
//!    ([`is_secret_key`]: password, passwd, pwd, pw, secret, token, credential(s), private keys and key contents)
//!    and everything nested under it are hidden, whether the file parsed or not, with `\r`, `\r\n` and `\n` all
//!    counted as line breaks. `config::diag` renders every snippet from a copy of the file with these ranges (and
//!    the parser's own) replaced.
//!
//! [`Secret`]: crate::secret::Secret

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::secret::SENSITIVE;

/// Shortest secret (in characters) scrubbed from free text by value.
pub const MIN_SCRUB_CHARS: usize = 6;

/// Registered values, indexed by their first four bytes (every value has at least [`MIN_SCRUB_CHARS`] bytes), so
/// one pass over the text finds every occurrence whatever the number of secrets.
#[derive(Default)]
struct Known {
    by_prefix: HashMap<[u8; 4], Vec<Arc<str>>>,
    /// Bit `(b0 << 8 | b1)` set when some value starts with the bytes `b0 b1`: a cheap filter before the map.
    first_two: Vec<u64>,
    count: usize,
}

static KNOWN: RwLock<Option<Known>> = RwLock::new(None);

/// Values that are not secrets although they sit in a secret's place: placeholders, DM's mask, and the composite
/// values dm-apply only fingerprints (TLS contents joined by NUL, which include public certificates; JSON objects
/// of write-only settings or the state record), which never appear in output as they are.
fn is_placeholder(v: &str) -> bool {
    let t = v.trim();
    t == SENSITIVE
        || t.chars().all(|c| c == '*')
        || is_env_ref_only(t)
        || t.contains('\0')
        || (t.starts_with('{') && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t).is_ok())
}

/// A string written as one `${env:NAME}` reference (or empty) is not a secret in itself.
pub fn is_env_ref_only(s: &str) -> bool {
    s.is_empty() || (s.starts_with("${env:") && s.ends_with('}') && s.matches("${").count() == 1)
}

/// Register a secret value so that no output ever shows it. Called by `Secret` for every value it holds.
pub fn remember(value: &str) {
    if value.chars().count() < MIN_SCRUB_CHARS || is_placeholder(value) {
        return;
    }
    let mut forms: Vec<String> = vec![value.to_string()];
    // As it appears inside JSON strings (quotes, backslashes, line breaks escaped).
    if let Ok(json) = serde_json::to_string(value) {
        let inner = &json[1..json.len() - 1];
        if inner != value {
            forms.push(inner.to_string());
        }
    }
    let mut guard = KNOWN.write().unwrap_or_else(|p| p.into_inner());
    let known = guard.get_or_insert_with(|| Known { first_two: vec![0; 1024], ..Known::default() });
    for f in forms {
        let b = f.as_bytes();
        if b.len() < 4 {
            continue;
        }
        let key = [b[0], b[1], b[2], b[3]];
        let list = known.by_prefix.entry(key).or_default();
        if list.iter().any(|v| **v == *f) {
            continue;
        }
        list.push(Arc::from(f.as_str()));
        // Longest first: the longest match wins where one value starts another.
        list.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let bit = (usize::from(b[0]) << 8) | usize::from(b[1]);
        known.first_two[bit / 64] |= 1 << (bit % 64);
        known.count += 1;
    }
}

/// `text` with every registered secret replaced by `(sensitive value)`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let guard = KNOWN.read().unwrap_or_else(|p| p.into_inner());
    let Some(known) = guard.as_ref().filter(|k| k.count > 0) else { return Cow::Borrowed(text) };
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let (mut last, mut i) = (0, 0);
    while i + 4 <= bytes.len() {
        let bit = (usize::from(bytes[i]) << 8) | usize::from(bytes[i + 1]);
        if known.first_two[bit / 64] & (1 << (bit % 64)) != 0
            && let Some(list) = known.by_prefix.get(&[bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]])
            && let Some(v) = list.iter().find(|v| bytes[i..].starts_with(v.as_bytes()))
        {
            // A registered value is valid UTF-8, so a match starts and ends on character boundaries.
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[last..i]);
            o.push_str(SENSITIVE);
            i += v.len();
            last = i;
            continue;
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[last..]);
            Cow::Owned(o)
        }
    }
}

/// Key names whose values are secrets. Matched generously, on the key wherever it appears: a misspelt `pasword`
/// is an unknown key, but its value is still hidden.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.trim().trim_matches(['"', '\'']);
    if k.is_empty() {
        return false;
    }
    // Called for every mapping key of every configuration file: one pass, no allocation.
    let b = k.as_bytes();
    let at = |i: usize, w: &[u8]| b.len() - i >= w.len() && b[i..i + w.len()].eq_ignore_ascii_case(w);
    let part = (0..b.len()).any(|i| match b[i].to_ascii_lowercase() {
        b'p' => at(i, b"pass") || at(i, b"pwd") || at(i, b"private"),
        b's' => at(i, b"secret") || at(i, b"ssl_key") || at(i, b"ssl-key"),
        b't' => at(i, b"token"),
        b'c' => at(i, b"credential"),
        b'k' => at(i, b"key_content") || at(i, b"key-content"),
        _ => false,
    });
    part || k.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w.eq_ignore_ascii_case("pw")) || near_password(k)
}

/// Whether `key` is within edit distance 2 of `password` (ASCII case ignored).
fn near_password(key: &str) -> bool {
    const TARGET: &[u8; 8] = b"password";
    // The distance is at least the difference in length, and at least 6 of the key's characters must be kept
    // from `password` (each edit changes at most one): cheap tests that rule out almost every key.
    let n = key.chars().count();
    if !(6..=10).contains(&n) || key.bytes().filter(|c| b"pasword".contains(&c.to_ascii_lowercase())).count() < 6 {
        return false;
    }
    let mut prev = [0usize; 9];
    for (j, p) in prev.iter_mut().enumerate() {
        *p = j;
    }
    for (i, ca) in key.chars().map(|c| c.to_ascii_lowercase()).enumerate() {
        let mut cur = [i + 1; 9];
        for (j, &cb) in TARGET.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != char::from(cb))).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[8] <= 2
}

/// One line of a text: byte offset of its start and its content (without the line break).
struct Line<'a> {
    start: usize,
    body: &'a str,
}

/// Lines split at `\r\n`, `\r` and `\n` alike.
fn lines(text: &str) -> Vec<Line<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(Line { start, body: &text[start..i] });
                i += 1;
                start = i;
            }
            b'\r' => {
                out.push(Line { start, body: &text[start..i] });
                i += if bytes.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        out.push(Line { start, body: &text[start..] });
    }
    out
}

fn indent_of(body: &str) -> usize {
    body.len() - body.trim_start_matches([' ', '\t']).len()
}

/// Byte ranges `(offset, len)` of `text` to hide in snippets: the value of every secret-looking key (block or flow
/// style, YAML or JSON, quoted or not) unless it is only a `${env:NAME}` reference, and every line nested under
/// such a key (more indented than it, or inside its unclosed bracket or quote).
pub fn secret_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut st = Scan::default();
    for line in lines(text) {
        let body = line.body;
        if let Some(o) = st.open.as_mut() {
            // Inside an unclosed flow collection or quoted scalar: hidden up to where it closes.
            match o.scan(body) {
                Some(end) => {
                    st.out.push((line.start, end));
                    st.open = None;
                    st.nested = None;
                    // The rest of the line is ordinary text again.
                    find_keys(body, line.start, end, &mut st);
                }
                None => st.out.push((line.start, body.len())),
            }
            continue;
        }
        if let Some(n) = st.nested {
            let ind = indent_of(body);
            let item_at_key = n.items_at_key && ind == n.column && body[ind..].starts_with('-');
            if body.trim().is_empty() || ind > n.column || item_at_key {
                st.out.push((line.start + ind, body.len() - ind));
                continue;
            }
            st.nested = None;
        }
        find_keys(body, line.start, 0, &mut st);
    }
    let mut out = st.out;
    out.retain(|&(_, l)| l > 0);
    out.sort_unstable();
    out.dedup();
    out
}

#[derive(Default)]
struct Scan {
    out: Vec<(usize, usize)>,
    open: Option<Open>,
    nested: Option<Nested>,
}

/// A secret block key whose value may continue on the following, more indented lines.
#[derive(Clone, Copy)]
struct Nested {
    /// Byte column of the key.
    column: usize,
    /// The value was empty: a sequence may start at the key's own column (`password:` then `- x`).
    items_at_key: bool,
}

/// An unclosed construct continuing on the next lines.
enum Open {
    /// Flow collection: bracket depth still open.
    Flow(usize),
    /// Quoted scalar: the quote character.
    Quote(u8),
}

impl Open {
    /// Where on `body` the construct closes (byte offset after it), if it does.
    fn scan(&mut self, body: &str) -> Option<usize> {
        let b = body.as_bytes();
        match self {
            Open::Quote(q) => close_quote(b, 0, *q),
            Open::Flow(depth) => {
                let mut i = 0;
                while i < b.len() {
                    match b[i] {
                        b'"' | b'\'' => match close_quote(b, i + 1, b[i]) {
                            Some(e) => i = e,
                            None => return None,
                        },
                        b'{' | b'[' => {
                            *depth += 1;
                            i += 1;
                        }
                        b'}' | b']' => {
                            *depth -= 1;
                            i += 1;
                            if *depth == 0 {
                                return Some(i);
                            }
                        }
                        _ => i += 1,
                    }
                }
                None
            }
        }
    }
}

/// Offset after the closing quote `q` of a scalar whose content starts at `from`.
fn close_quote(b: &[u8], from: usize, q: u8) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        if q == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// Find `key:` pairs on one line (from byte `from`) and hide the values of secret ones.
fn find_keys(body: &str, line_start: usize, from: usize, st: &mut Scan) {
    let b = body.as_bytes();
    let mut i = from;
    // Where a key may start: the line start (after indentation and `- `), or after `{` / `,` / `[`.
    let mut key_may_start = true;
    let mut at_line_start = from == 0;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' {
            i += 1;
            continue;
        }
        if at_line_start && c == b'-' && matches!(b.get(i + 1), Some(b' ') | Some(b'\t') | None) {
            i += 1;
            continue;
        }
        if c == b'#' && (i == 0 || matches!(b[i - 1], b' ' | b'\t')) {
            return; // a comment
        }
        if matches!(c, b'{' | b'[' | b',') {
            key_may_start = true;
            at_line_start = false;
            i += 1;
            continue;
        }
        if !key_may_start {
            // Skip a scalar: quoted strings whole, so `:` or `,` inside them are not syntax.
            if c == b'"' || c == b'\'' {
                match close_quote(b, i + 1, c) {
                    Some(e) => i = e,
                    None => return,
                }
            } else {
                i += 1;
            }
            continue;
        }
        // A key: quoted or plain, up to `:`.
        let key_column = i;
        let (key, after_key) = if c == b'"' || c == b'\'' {
            match close_quote(b, i + 1, c) {
                Some(e) => (&body[i..e], e),
                None => return,
            }
        } else {
            let e = b[i..]
                .iter()
                .position(|&x| matches!(x, b':' | b',' | b'{' | b'}' | b'[' | b']' | b'#'))
                .map_or(b.len(), |p| i + p);
            (body[i..e].trim_end(), e)
        };
        let mut j = after_key;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        let is_pair = b.get(j) == Some(&b':')
            && (matches!(b.get(j + 1), None | Some(b' ') | Some(b'\t')) || c == b'"' || c == b'\'');
        let block_key = at_line_start;
        at_line_start = false;
        key_may_start = false;
        if !is_pair {
            i = after_key.max(i + 1);
            continue;
        }
        let mut v = j + 1;
        while v < b.len() && (b[v] == b' ' || b[v] == b'\t') {
            v += 1;
        }
        if !is_secret_key(key) {
            // The value may itself be a flow mapping holding keys: go on scanning from it.
            i = v;
            key_may_start = matches!(b.get(v), Some(b'{') | Some(b'['));
            continue;
        }
        // A secret key: hide its value.
        let (end, still_open) = value_end(b, v, block_key);
        let value = &body[v..end];
        let unquoted = value.trim().trim_matches(['"', '\'']);
        // A block scalar's header (`|`, `>-`, ...) holds no secret: its lines below are hidden.
        let block_header = (value.starts_with('|') || value.starts_with('>'))
            && value[1..].chars().all(|c| matches!(c, '-' | '+' | '0'..='9' | ' '));
        if still_open.is_some() || !(is_env_ref_only(unquoted) || block_header) {
            st.out.push((line_start + v, end - v));
        }
        if let Some(o) = still_open {
            st.open = Some(o);
            return;
        }
        if block_key || value.starts_with('|') || value.starts_with('>') {
            // Nested lines (a mapping, a list, a block scalar, a continued plain scalar) belong to the value.
            st.nested = Some(Nested { column: key_column, items_at_key: value.trim().is_empty() });
            return;
        }
        i = end.max(v + 1);
    }
}

/// End of a value starting at `v`: for block values the line end; in flow context up to the next `,` `}` `]`
/// outside brackets and quotes. Returns the construct still open at the line end, if any.
fn value_end(b: &[u8], v: usize, block: bool) -> (usize, Option<Open>) {
    let mut depth = 0usize;
    let mut i = v;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'') if i == v || depth > 0 => match close_quote(b, i + 1, q) {
                Some(e) => i = e,
                None => return (b.len(), Some(if depth > 0 { Open::Flow(depth) } else { Open::Quote(q) })),
            },
            b'$' if b.get(i + 1) == Some(&b'{') => {
                // A `${...}` reference: its braces are not flow syntax.
                i = b[i..].iter().position(|&x| x == b'}').map_or(b.len(), |p| i + p + 1);
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                i += 1;
                if depth == 0 && !block {
                    return (i, None);
                }
            }
            b',' | b'}' | b']' if depth == 0 && !block => return (i, None),
            _ => i += 1,
        }
    }
    (b.len(), (depth > 0).then_some(Open::Flow(depth)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_password_is_the_edit_distance() {
        for k in [
            "password",
            "Passwrd",
            "pasword",
            "passwd",
            "paswd",
            "passw0rd",
            "PASSWORDS",
            "pwd",
            "enable",
            "source",
            "schema",
            "task_mode",
            "binlog_pos",
            "passport",
            "assword",
            "xpasswordx",
            "pässword",
            "passwörd",
            "",
        ] {
            let expected = crate::config::diag::edit_distance(&k.to_ascii_lowercase(), "password") <= 2;
            assert_eq!(near_password(k), expected, "{k}");
        }
    }

    fn hidden(text: &str) -> Vec<&str> {
        secret_ranges(text).iter().map(|&(o, l)| &text[o..o + l]).collect()
    }

    /// The text as a snippet would show it.
    fn shown(text: &str) -> String {
        let mut out = String::new();
        let mut last = 0;
        for (o, l) in secret_ranges(text) {
            if o < last {
                continue;
            }
            out.push_str(&text[last..o]);
            out.push('#');
            last = o + l;
        }
        out.push_str(&text[last..]);
        out
    }

    #[test]
    fn secret_keys() {
        for k in
            ["password", "pasword", "passwd", "pwd", "pw", "db_pw", "\"pw\"", "ssl_key_content", "ssl-key", "api_token"]
        {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["PASSWORD", "Secret", "credentials", "private_key", "ssl_key_contnt"] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["ssl_ca_content", "ssl_cert_content", "port", "user", "host", "source_name", "upward", "pwn2own"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn block_values_and_everything_nested_under_them() {
        let text = "a:\n  password: hunter2\n  other: x\n  ssl_key_content: |\n    KEY1\n    KEY2\n  b: ${env:X}\n  \
                    password: ${env:PW}\n  pw:\n    hunter3: 1\n    - hunter4\n  user: u\n";
        assert_eq!(hidden(text), vec!["hunter2", "KEY1", "KEY2", "hunter3: 1", "- hunter4"]);
    }

    #[test]
    fn every_line_break_counts() {
        for text in ["user: u\rpassword: hunter2\rport: 1\r", "user: u\r\npassword: hunter2\r\n", "password: hunter2"] {
            assert_eq!(hidden(text), vec!["hunter2"], "{text:?}");
        }
        let s = shown("password:\r  hunter5: x\r  - hunter6\ruser: u\n");
        assert!(!s.contains("hunter"), "{s:?}");
        assert!(s.contains("user: u"));
    }

    #[test]
    fn flow_and_json() {
        let flow = "t: {host: h, password: hunter2, user: u}\n- {pasword: \"hunter3\"}\n{password: ${env:X}}\n";
        assert_eq!(hidden(flow), vec!["hunter2", "\"hunter3\""]);
        let json = r#"{"sources":[{"user":"u","password":{"a":1,"hunter2":[2,3]},"port":"x"},{"pw":"hunter3"}]}"#;
        let s = shown(json);
        assert!(!s.contains("hunter"), "{s}");
        assert!(s.contains(r#""port":"x""#), "{s}");
        let pretty = "{\n  \"password\": {\n    \"hunter2\": 1\n  },\n  \"user\": \"u\"\n}\n";
        let s = shown(pretty);
        assert!(!s.contains("hunter") && s.contains("\"user\": \"u\""), "{s}");
    }

    #[test]
    fn unclosed_quotes_and_brackets_hide_until_they_close() {
        let text = "password: \"hunter2\n  hunter3\"\nuser: u\n";
        let s = shown(text);
        assert!(!s.contains("hunter") && s.contains("user: u"), "{s}");
        let text = "t: {password: [hunter2,\n  hunter3], user: u}\nport: 1\n";
        let s = shown(text);
        assert!(!s.contains("hunter") && s.contains("user: u") && s.contains("port: 1"), "{s}");
        // Never closed: everything after is hidden (the location of the error is still shown).
        let s = shown("password: 'hunter2\nuser: hunter3\n");
        assert!(!s.contains("hunter"), "{s}");
    }

    #[test]
    fn quoted_keys_and_comments() {
        assert_eq!(hidden("\"password\": \"hunter2\" # note\n"), vec!["\"hunter2\" # note"]);
        assert_eq!(hidden("# password: hunter2\nuser: a # password: x\n"), Vec::<&str>::new());
        assert_eq!(hidden("note: \"password: x\"\n"), Vec::<&str>::new());
    }

    #[test]
    fn known_values_are_scrubbed_everywhere() {
        remember("zq-planted-9f8e7d");
        remember("zq\"quoted\\pw");
        remember("short"); // below the minimum: not scrubbed
        remember("${env:ZQ_PW}");
        remember("******");
        let t = "a zq-planted-9f8e7d b \"zq\\\"quoted\\\\pw\" c short ${env:ZQ_PW} ******";
        assert_eq!(
            scrub(t),
            "a (sensitive value) b \"(sensitive value)\" c short ${env:ZQ_PW} ******",
            "raw and JSON-escaped forms"
        );
        assert!(matches!(scrub("nothing here"), Cow::Borrowed(_)));
        // Multi-byte text around a match.
        assert_eq!(scrub("é zq-planted-9f8e7dé"), "é (sensitive value)é");
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";
        remember(pem);
        assert_eq!(scrub(&format!("x {pem} y")), "x (sensitive value) y");
        assert_eq!(scrub(&serde_json::to_string(pem).unwrap()), "\"(sensitive value)\"", "JSON-escaped");
        // Composites that are only fingerprinted hold public certificates: not registered.
        remember("-----BEGIN CERTIFICATE-----\nMIIBpublicpublicpublic\n\0zq-key-material-1");
        remember("{\"sorting_dir\":\"./zq-sort\"}");
        assert_eq!(
            scrub("MIIBpublicpublicpublic {\"sorting_dir\":\"./zq-sort\"}"),
            "MIIBpublicpublicpublic {\"sorting_dir\":\"./zq-sort\"}"
        );
    }
}
