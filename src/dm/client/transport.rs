//! The transport under the endpoints: HTTP, TLS and timeouts (set up in `DmClient::new`), redirects refused,
//! answers validated (shape limits, DM's error shapes, HTML and 404 pages), secrets scrubbed from whatever the server
//! says, and reads retried (`call`). The endpoint methods (`endpoints.rs`) only build paths and bodies.

use reqwest::{Method, StatusCode};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::*;

/// Percent-encode one path segment (names may hold characters that are not URL-safe).
pub(super) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode `%XX` escapes (for the password of an address), keeping anything malformed as is.
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |i: usize| b.get(i).and_then(|c| (*c as char).to_digit(16));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `e` is (or wraps) a rustls error. io::Error's `source()` skips the error it wraps, and the connector
/// nests io::Errors, so look inside them explicitly.
pub(super) fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    for _ in 0..16 {
        let Some(err) = cur else { return false };
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        cur = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}

/// Request body: nothing at all (no content type either), or JSON.
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    None,
    Json(&'a (dyn erased::Json + Sync)),
}

mod erased {
    /// Object-safe JSON serialization, so `Body` needs no type parameter.
    pub trait Json {
        fn to_json(&self) -> Result<Vec<u8>, serde_json::Error>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
            serde_json::to_vec(self)
        }
    }
}

pub(super) fn json<T: Serialize + Sync>(v: &T) -> Body<'_> {
    Body::Json(v)
}

/// The secret values of one request (passwords, TLS keys, the password in `--addr`). Whatever the server answers is
/// scrubbed of them before it becomes part of an error, so a server (or proxy) that echoes the request, or quotes a
/// DSN, cannot make dm-apply print a password.
#[derive(Debug, Default, Clone)]
pub(super) struct Secrets(pub(super) Vec<String>);

/// JSON keys whose string values dm-apply sends as secrets.
pub(super) const SECRET_KEYS: [&str; 2] = ["password", "ssl_key_content"];

impl Secrets {
    pub(super) fn new(addr: &[String], body: Option<&[u8]>) -> Secrets {
        let mut s = Secrets(addr.to_vec());
        if let Some(v) = body.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()) {
            s.collect(&v);
        }
        // Longest first, so a secret containing another is replaced whole.
        s.0.retain(|x| !x.is_empty() && x != MASKED_PASSWORD);
        s.0.sort_by_key(|x| std::cmp::Reverse(x.len()));
        s.0.dedup();
        s
    }

    pub(super) fn collect(&mut self, v: &serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        serde_json::Value::String(x) if SECRET_KEYS.contains(&k.as_str()) => self.0.push(x.clone()),
                        _ => self.collect(v),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| self.collect(v)),
            _ => {}
        }
    }

    pub(super) fn longest(&self) -> usize {
        self.0.first().map(String::len).unwrap_or(0)
    }

    /// Every form a secret may take in an answer (as is, JSON-escaped, percent-encoded) becomes `(sensitive value)`.
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.0 {
            let escaped = serde_json::to_string(s).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            for form in [s.as_str(), escaped, &seg(s)] {
                if !form.is_empty() && out.contains(form) {
                    out = out.replace(form, SENSITIVE);
                }
            }
        }
        out
    }

    /// Text from the server made fit for an error message: secrets replaced, control characters replaced by
    /// spaces, at most `max` characters.
    pub(super) fn clean(&self, text: &str, max: usize) -> String {
        // Cut first (a secret that starts inside the kept part is kept whole, even JSON-escaped), then scrub, then
        // bound.
        let keep = max + 6 * self.longest() + 16;
        let cut: String = text.chars().take(keep).collect();
        clean_text(&self.scrub(&cut), max)
    }
}

/// At most `max` characters, every control character (and bidirectional override) replaced by a space, runs of
/// spaces collapsed, and a marker when something was cut.
pub(super) fn clean_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 16));
    let mut n = 0;
    let mut chars = text.trim().chars();
    for c in chars.by_ref() {
        let c = if c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            ' '
        } else {
            c
        };
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(c);
        n += 1;
        if n >= max {
            break;
        }
    }
    if chars.next().is_some() {
        out.push_str(" …(cut)");
    }
    out.trim_end().to_string()
}

/// Everything about one request that errors built from its answer need.
pub(super) struct Ctx {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) secrets: Secrets,
}

impl Ctx {
    pub(super) fn decode_error(&self, status: StatusCode, expected: &'static str, detail: String) -> DmError {
        DmError::Decode {
            method: self.method.to_string(),
            path: self.path.clone(),
            status: status.as_u16(),
            expected,
            detail: self.secrets.clean(&detail, MAX_MESSAGE_CHARS),
        }
    }
}

/// An answer as read from the wire.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) content_type: String,
    pub(super) location: Option<String>,
    pub(super) body: Vec<u8>,
}

impl Answer {
    pub(super) fn is_html(&self) -> bool {
        if self.body.trim_ascii().is_empty() {
            return false;
        }
        let ct = self.content_type.to_ascii_lowercase();
        ct.starts_with("text/html")
            || ct.starts_with("application/xhtml")
            || self.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
    }

    /// The plain-text page Go's HTTP server (and gin) answer for a path nobody serves.
    pub(super) fn is_404_page(&self) -> bool {
        self.status == StatusCode::NOT_FOUND && self.body.trim_ascii() == b"404 page not found"
    }
}

impl DmClient {
    pub(super) async fn send(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&[u8]>,
        secrets: &Secrets,
    ) -> Result<Answer, DmError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method.clone(), &url);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(bytes) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes.to_vec());
        }
        tracing::debug!(%method, path, "request");
        let too_large =
            |detail: String| DmError::TooLarge { method: method.to_string(), path: path.to_string(), detail };
        let mut resp = req.send().await.map_err(|e| self.transport_error(method, path, e, secrets))?;
        let status = resp.status();
        let header = |name: reqwest::header::HeaderName| {
            resp.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let location = header(reqwest::header::LOCATION);
        let limit = format!("more than {MAX_BODY_BYTES} bytes");
        let announced = resp.content_length().unwrap_or(0);
        if announced > MAX_BODY_BYTES as u64 {
            return Err(too_large(limit));
        }
        // Reserve what the server announced (bounded above), so the buffer does not double past it.
        let mut buf = Vec::with_capacity(announced as usize);
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(too_large(limit));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.transport_error(method, path, e, secrets)),
            }
        }
        tracing::debug!(%method, path, status = status.as_u16(), bytes = buf.len(), "response");
        Ok(Answer { status, content_type, location, body: buf })
    }

    pub(super) fn transport_error(&self, method: &Method, path: &str, e: reqwest::Error, secrets: &Secrets) -> DmError {
        if e.is_timeout() {
            return DmError::Timeout {
                method: method.to_string(),
                path: path.to_string(),
                timeout_ms: self.timeout.as_millis() as u64,
            };
        }
        // A failure to connect means nothing was sent; anything later (reset, broken body) may have been processed.
        let maybe_sent = !e.is_connect();
        // The URL may hold credentials: leave it out (the message names the address in its shown form).
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut tls = false;
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            detail = format!("{detail}: {s}");
            // A TLS failure (ours or the server's alert) means the server never saw the request.
            tls |= is_tls_error(s);
            src = s.source();
        }
        let detail = secrets.clean(&detail.replace(&*self.base, &self.shown), MAX_MESSAGE_CHARS);
        if tls {
            return DmError::Tls {
                addr: self.shown.to_string(),
                method: method.to_string(),
                path: path.to_string(),
                detail,
            };
        }
        DmError::Connect {
            addr: self.shown.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            detail,
            maybe_sent,
        }
    }

    /// Send, retrying what is safe to retry; return a success answer that passed [`Self::check`], or the error the
    /// answer means.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<(Answer, Ctx), DmError> {
        let bytes = match body {
            Body::None => None,
            Body::Json(v) => Some(
                v.to_json().map_err(|e| DmError::Options(format!("cannot encode the request body for {path}: {e}")))?,
            ),
        };
        let ctx = Ctx {
            method: method.clone(),
            path: path.to_string(),
            secrets: Secrets::new(&self.addr_secrets, bytes.as_deref()),
        };
        let mut attempt = 1;
        loop {
            let err = match self.send(&method, path, query, bytes.as_deref(), &ctx.secrets).await {
                Ok(answer) => match self.check(&ctx, answer) {
                    Ok(answer) => return Ok((answer, ctx)),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            let retryable = if method == Method::GET {
                err.is_transient()
            } else {
                self.retry_mutations
                    && (err.has_code(codes::LATCH_IN_USE) || matches!(err, DmError::Connect { maybe_sent: false, .. }))
            };
            let Some(delay) = self.retry.next_delay(attempt).filter(|_| retryable) else { return Err(err) };
            tracing::info!(%method, path, attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// What an answer means (docs/dm-behaviour.md §2): a redirect, an HTML page, the 404 page of a DM-master
    /// without OpenAPI, or one of DM's error shapes (also under a success status) is an error; a success body must
    /// stay within the shape limits.
    pub(super) fn check(&self, ctx: &Ctx, answer: Answer) -> Result<Answer, DmError> {
        let (method, path, status) = (ctx.method.to_string(), ctx.path.clone(), answer.status.as_u16());
        if answer.status.is_redirection() {
            let location = ctx.secrets.clean(&self.shown_location(answer.location.as_deref()), 300);
            return Err(DmError::Redirect { addr: self.shown.to_string(), method, path, status, location });
        }
        if answer.is_html() {
            let what = "an HTML page".to_string();
            return Err(DmError::NotDm { addr: self.shown.to_string(), method, path, status, what });
        }
        if !answer.status.is_success() {
            if answer.is_404_page() {
                return Err(if ctx.path.starts_with("/api/") {
                    DmError::OpenApiOff { addr: self.shown.to_string(), method, path }
                } else {
                    let what = "a plain-text `404 page not found`".to_string();
                    DmError::NotDm { addr: self.shown.to_string(), method, path, status, what }
                });
            }
            return Err(api_error(ctx, answer.status, &answer.body));
        }
        let maybe_error = match check_limits(&answer.body) {
            Ok(maybe_error) => maybe_error,
            Err(detail) => return Err(DmError::TooLarge { method, path, detail }),
        };
        if maybe_error && let Some(e) = error_in_success(ctx, answer.status, &answer.body) {
            return Err(e);
        }
        Ok(answer)
    }

    /// Where a redirect points, resolved against the address, without credentials, query or fragment.
    pub(super) fn shown_location(&self, location: Option<&str>) -> String {
        let Some(raw) = location else { return "(no Location header)".to_string() };
        let joined = reqwest::Url::parse(&format!("{}/", self.base)).and_then(|base| base.join(raw));
        match joined {
            Ok(mut url) => {
                url.set_query(None);
                url.set_fragment(None);
                display_addr(url.as_str())
            }
            Err(_) => display_addr(raw),
        }
    }

    pub(super) async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
        expected: &'static str,
    ) -> Result<T, DmError> {
        let (answer, ctx) = self.call(method, path, query, body).await?;
        decode(&ctx, &answer, Top::Object, expected)
    }

    /// A bare JSON array of names (schema and table lists).
    pub(super) async fn call_names(&self, path: &str, expected: &'static str) -> Result<Vec<String>, DmError> {
        let (answer, ctx) = self.call(Method::GET, path, &[], Body::None).await?;
        decode(&ctx, &answer, Top::Array, expected)
    }

    /// A list answer: DM's `{"total": n, "data": [...]}` envelope, `total` equal to the number of items. DM always
    /// sends an array (never `null`) for these lists, except the source status list of a source whose worker
    /// reported nothing (`null_is_empty`). Anything else is an error, never an empty list.
    pub(super) async fn call_list<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        expected: &'static str,
        null_is_empty: bool,
    ) -> Result<Vec<T>, DmError> {
        let (answer, ctx) = self.call(Method::GET, path, query, Body::None).await?;
        let list: ListResponse<T> = decode(&ctx, &answer, Top::Object, expected)?;
        list.into_items(null_is_empty).map_err(|detail| ctx.decode_error(answer.status, expected, detail))
    }

    pub(super) async fn call_unit(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<(), DmError> {
        self.call(method, path, query, body).await.map(|_| ())
    }
}

/// Check the raw bytes of an answer against the shape limits before decoding: the number of items of each array,
/// the number of objects, the nesting depth. One pass, no allocation; strings are skipped, escapes included.
/// `Ok(true)` when the top-level object may hold one of DM's error fields (`error_msg`, `error`: a top-level string
/// spelt so, or holding an escape, which could decode to one): only then is the answer read for an error shape (a
/// 5 MB task list read twice cost more than decoding it).
pub(super) fn check_limits(bytes: &[u8]) -> Result<bool, String> {
    // Per open container: is it an array, and how many commas at its level so far.
    let mut stack: Vec<(bool, usize)> = Vec::new();
    let mut objects = 0usize;
    let mut maybe_error = false;
    // The bytes that matter outside strings; the others (indentation, digits, letters) are skipped in a tight loop.
    const SYNTAX: [bool; 256] = {
        let mut t = [false; 256];
        let mut k = 0;
        while k < 6 {
            t[b"\"{}[],"[k] as usize] = true;
            k += 1;
        }
        t
    };
    let mut i = 0;
    while i < bytes.len() {
        if !SYNTAX[usize::from(bytes[i])] {
            i += 1;
            continue;
        }
        let b = bytes[i];
        i += 1;
        match b {
            b'"' => {
                // Skip the string: to its closing quote, past escaped characters.
                let start = i;
                let mut escapes = false;
                loop {
                    match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                        Some(p) if bytes[i + p] == b'\\' => {
                            escapes = true;
                            i = (i + p + 2).min(bytes.len());
                        }
                        Some(p) => {
                            i += p + 1;
                            break;
                        }
                        None => {
                            i = bytes.len();
                            break;
                        }
                    }
                    if i >= bytes.len() {
                        break;
                    }
                }
                if stack.len() == 1 && !stack[0].0 {
                    let raw = &bytes[start..i.saturating_sub(1).max(start)];
                    maybe_error |= escapes || raw == b"error_msg" || raw == b"error";
                }
            }
            b'{' | b'[' => {
                if b == b'{' {
                    objects += 1;
                    if objects > MAX_OBJECTS {
                        return Err(format!("it holds more than {MAX_OBJECTS} objects"));
                    }
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("it nests deeper than {MAX_DEPTH} levels"));
                }
                stack.push((b == b'[', 0));
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some((true, commas)) = stack.last_mut() {
                    *commas += 1;
                    if *commas >= MAX_LIST_ITEMS {
                        return Err(format!("a list in it holds more than {MAX_LIST_ITEMS} items"));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(maybe_error)
}

/// A JSON value read only for what it is: a string, an integer, or something else (skipped without building it).
pub(super) enum Scalar {
    Str(String),
    Int(i64),
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        pub(super) struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(i64::try_from(v).map(Scalar::Int).unwrap_or(Scalar::Other))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
                Scalar::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl Scalar {
    pub(super) fn text(self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The top-level fields of DM's error shapes, read without building anything else of the body.
#[derive(Deserialize)]
pub(super) struct ErrorShape {
    #[serde(default)]
    error_msg: Option<Scalar>,
    #[serde(default)]
    error_code: Option<Scalar>,
    #[serde(default)]
    error: Option<Scalar>,
    #[serde(default)]
    msg: Option<Scalar>,
}

impl ErrorShape {
    pub(super) fn parse(bytes: &[u8]) -> Option<ErrorShape> {
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }

    /// `error_code` is documented as a string and really an integer: accept both.
    pub(super) fn code(&mut self) -> Option<i64> {
        match self.error_code.take()? {
            Scalar::Int(c) => Some(c),
            Scalar::Str(s) => s.trim().parse().ok(),
            Scalar::Other => None,
        }
    }
}

/// DM's `{error_msg, error_code}` or `{error}` under a success status (a broken proxy or server): an error with DM's
/// code and message, never an empty or default result.
pub(super) fn error_in_success(ctx: &Ctx, status: StatusCode, bytes: &[u8]) -> Option<DmError> {
    let mut shape = ErrorShape::parse(bytes)?;
    let message =
        shape.error_msg.take().and_then(Scalar::text).or_else(|| shape.error.take().and_then(Scalar::text))?;
    Some(api_error_from(ctx, status, shape.code(), &message))
}

/// Serde's message about a body that does not fit the expected type, without quoting the body: serde_json's own
/// messages can quote input strings (a password, a key), so only the kind of problem, our own field and type names,
/// and the position are kept.
pub(super) fn serde_detail(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Eof => "the answer ends too early".to_string(),
        Category::Syntax => "not valid JSON".to_string(),
        Category::Io => "could not be read".to_string(),
        Category::Data => {
            let full = e.to_string();
            let msg = full.rsplit_once(" at line ").map(|(m, _)| m).unwrap_or(&full);
            safe_data_message(msg)
        }
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

pub(super) fn safe_data_message(msg: &str) -> String {
    // `missing field `x`` and `duplicate field `x``: x is one of our field names.
    if msg.starts_with("missing field `") || msg.starts_with("duplicate field `") {
        return msg.to_string();
    }
    // What was expected comes last and is ours (a type or field description).
    let expected = msg.rfind(", expected ").map(|i| &msg[i..]).unwrap_or("");
    if msg.starts_with("invalid length ") {
        return format!("invalid length{expected}");
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            // The kind of value (`string`, `map`, `integer`...) comes first; the value itself is quoted after it.
            let kind = rest.split(['"', '`']).next().unwrap_or("");
            let kind = kind.split(", expected").next().unwrap_or("").trim();
            return format!("{prefix}{kind}{expected}");
        }
    }
    if !expected.is_empty() {
        let head = msg.split(['`', '"']).next().unwrap_or("").trim();
        return format!("{head}{expected}");
    }
    "a value of the wrong type or shape".to_string()
}

/// What an answer must be at its top level. Checked before decoding because serde also fills a struct from an array
/// (`["a", "h", 3306, "u"]` would read as a source).
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Top {
    Object,
    Array,
}

pub(super) fn decode<T: DeserializeOwned>(
    ctx: &Ctx,
    answer: &Answer,
    top: Top,
    expected: &'static str,
) -> Result<T, DmError> {
    let (open, what) = match top {
        Top::Object => (b'{', "a JSON object"),
        Top::Array => (b'[', "a JSON array"),
    };
    if answer.body.trim_ascii_start().first() != Some(&open) {
        let found = match answer.body.trim_ascii_start().first() {
            None => "an empty body".to_string(),
            Some(b'{') => "a JSON object".to_string(),
            Some(b'[') => "a JSON array".to_string(),
            Some(b'n') if answer.body.trim_ascii() == b"null" => "`null`".to_string(),
            Some(_) => "something else".to_string(),
        };
        return Err(ctx.decode_error(answer.status, expected, format!("expected {what}, found {found}")));
    }
    serde_json::from_slice(&answer.body).map_err(|e| ctx.decode_error(answer.status, expected, serde_detail(&e)))
}

/// v6.1+ answers `{task, check_result}`; v6.0 a bare `Task`.
pub(super) fn decode_operate(ctx: &Ctx, answer: &Answer) -> Result<OperateTaskResponse, DmError> {
    /// Only whether `task` is an object; nothing else of the body is built.
    #[derive(Deserialize)]
    pub(super) struct Probe {
        #[serde(default)]
        task: Option<IsObject>,
    }
    pub(super) struct IsObject(bool);
    impl<'de> Deserialize<'de> for IsObject {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(IsObject(matches!(Scalar::deserialize(d)?, Scalar::Other)))
        }
    }
    let wrapped = serde_json::from_slice::<Probe>(&answer.body).ok().and_then(|p| p.task).is_some_and(|t| t.0);
    if wrapped {
        decode(ctx, answer, Top::Object, "a task operation result")
    } else {
        let task: Task = decode(ctx, answer, Top::Object, "a task operation result")?;
        Ok(OperateTaskResponse { task, check_result: String::new() })
    }
}

/// Map any of DM's error shapes (or any other error answer) to [`DmError::Api`].
pub(super) fn api_error(ctx: &Ctx, status: StatusCode, bytes: &[u8]) -> DmError {
    let (code, message) = match ErrorShape::parse(bytes) {
        Some(mut shape) => {
            let code = shape.code();
            let text = shape.error_msg.take().and_then(Scalar::text);
            let text = text.or_else(|| shape.error.take().and_then(Scalar::text));
            let text = text.or_else(|| shape.msg.take().and_then(Scalar::text));
            match text {
                Some(m) => (code, m),
                None => (None, String::from_utf8_lossy(&bytes[..bytes.len().min(4 * MAX_MESSAGE_CHARS)]).into_owned()),
            }
        }
        None if bytes.is_empty() => (None, status.canonical_reason().unwrap_or("no message").to_lowercase()),
        None => (None, String::from_utf8_lossy(&bytes[..bytes.len().min(4 * MAX_MESSAGE_CHARS)]).into_owned()),
    };
    let mut e = api_error_from(ctx, status, code, &message);
    if let DmError::Api { absent, hint, .. } = &mut e
        && status == StatusCode::NOT_FOUND
        && bytes.is_empty()
    {
        *absent = true;
        hint.get_or_insert_with(|| {
            "DM-master answers 404 only for a single resource that does not exist; check that --addr points at \
             DM-master itself"
                .to_string()
        });
    }
    e
}

pub(super) fn api_error_from(ctx: &Ctx, status: StatusCode, code: Option<i64>, message: &str) -> DmError {
    let message = ctx.secrets.clean(message, MAX_MESSAGE_CHARS);
    let hint = if message.contains("no matching operation was found") {
        Some(format!(
            "DM-master does not serve this endpoint: the OpenAPI is probably off, or DM-master is older than v6.0 \
             (which lacks some endpoints). To {}.",
            crate::dm::error::OPENAPI_HOWTO
        ))
    } else {
        match code {
            Some(codes::LATCH_IN_USE) => Some("another client is operating on this task; try again".to_string()),
            Some(codes::SOURCE_CFG_UPDATE) => {
                Some("stop the tasks on this source (or disable it) before updating it".to_string())
            }
            Some(codes::SUBTASK_CFG_UPDATE) => {
                Some("stop the task before updating it; some fields can only change by replacing the task".to_string())
            }
            _ => None,
        }
    };
    DmError::Api {
        method: ctx.method.to_string(),
        path: ctx.path.clone(),
        status: status.as_u16(),
        code,
        message,
        hint,
        absent: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether DM's error fields would be read from `body` (what `error_in_success` finds, without its context).
    fn has_error_message(body: &[u8]) -> bool {
        ErrorShape::parse(body)
            .is_some_and(|s| s.error_msg.and_then(Scalar::text).or_else(|| s.error.and_then(Scalar::text)).is_some())
    }

    #[test]
    fn the_scan_flags_every_answer_that_reads_as_an_error() {
        let cases: &[(&str, bool)] = &[
            (r#"{"total": 1, "data": [{"name": "error", "error_msg": "nested"}]}"#, false),
            (r#"{"error_msg": "boom", "error_code": 46001}"#, true),
            (r#"{"error": "boom"}"#, true),
            (r#"{"\u0065rror": "boom"}"#, true),
            (r#"{"error_\u006dsg": "boom"}"#, true),
            (r#"{"a": {"error": "x"}, "b": ["error_msg"]}"#, false),
            (r#"["error", "error_msg"]"#, false),
            (r#"{"msg": "error"}"#, true),
            (r#"{"name": "a\"b", "error": 3}"#, true),
            (r#"{"data": "x\\", "total": 0}"#, true),
        ];
        for (body, flagged) in cases {
            let scan = check_limits(body.as_bytes()).expect(body);
            assert_eq!(scan, *flagged, "{body}");
            // Never a false negative: whatever reads as an error is flagged.
            if has_error_message(body.as_bytes()) {
                assert!(scan, "{body}");
            }
        }
    }

    #[test]
    fn the_scan_survives_truncated_input() {
        for body in [r#"{"a\"#, r#"{"error"#, "{\"x\\", "\"", "{\"", "{\"\\u"] {
            let _ = check_limits(body.as_bytes());
        }
    }

    #[test]
    fn the_scan_enforces_the_limits() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert!(check_limits(deep.as_bytes()).unwrap_err().contains("nests deeper"));
        let long = format!("[{}0]", "0,".repeat(MAX_LIST_ITEMS));
        assert!(check_limits(long.as_bytes()).unwrap_err().contains("items"));
        // Brackets and commas inside strings do not count.
        let quoted = format!("[\"{}\"]", "[,".repeat(MAX_LIST_ITEMS));
        assert_eq!(check_limits(quoted.as_bytes()), Ok(false));
    }
}
