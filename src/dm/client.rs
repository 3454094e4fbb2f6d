//! Typed async client for DM-master's `/api/v1`.
//!
//! Requests are shaped as the real server wants them (docs/dm-behaviour.md §2-§8): wrapped `{"source": ..}` / `{"task": ..}`
//! bodies; no body and no content type for start/stop/enable/disable/relay-enable when there is nothing to say
//! (a JSON body would make v8.5.4+ inject `relay_dir`); 404-with-empty-body and 46018 mapped to "absent" for gets.
//! One `reqwest::Client` is kept for the client's life, so connections are reused.
//!
//! Answers are checked before anything trusts them (docs/dm-behaviour.md §2): redirects are never followed (the
//! request may carry a password); a list must be DM's `{"total": n, "data": [...]}` envelope; a success status with
//! one of DM's error shapes is an error; the plain-text 404 page means the OpenAPI is off; HTML means the address
//! is not DM-master. Bodies are size-, item-, object- and depth-checked on the raw bytes, then decoded straight into
//! typed structs. Text from the server that ends up in an error is bounded, has no control characters, and has every
//! secret of the request replaced.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::OnceCell;

use super::error::{DmError, codes};
pub use super::retry::RetryPolicy;
use super::types::*;
use super::version::ServerVersion;
use crate::secret::SENSITIVE;

/// Largest response body accepted (a list of thousands of tasks is a few MB).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Most items in any one JSON array of an answer. DM clusters hold hundreds of sources and a few thousand tasks;
/// dm-apply is measured with 10,000 tasks.
pub const MAX_LIST_ITEMS: usize = 100_000;
/// Most JSON objects in one answer (a task with its status is 10 to 40 objects). Each object becomes a struct
/// several hundred bytes large, so this, not the byte size, bounds the memory a decoded answer takes.
pub const MAX_OBJECTS: usize = 500_000;
/// Deepest nesting of arrays and objects in an answer (DM's deepest answer nests about 8 levels).
pub const MAX_DEPTH: usize = 32;
/// Longest text from the server kept in an error message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// How to reach DM-master.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// e.g. `http://127.0.0.1:8261`; `/api/v1` is appended.
    pub addr: String,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub request_timeout: Duration,
    /// Accept any server certificate. Only with an explicitly named flag, and with a warning.
    pub insecure_skip_verify: bool,
    /// Retries of reads, and of mutations that certainly did not happen (see [`super::retry`]).
    pub retry: RetryPolicy,
}

impl ClientOptions {
    pub fn new(addr: impl Into<String>) -> Self {
        ClientOptions {
            addr: addr.into(),
            cacert: None,
            cert: None,
            key: None,
            request_timeout: Duration::from_secs(30),
            insecure_skip_verify: false,
            retry: RetryPolicy::default(),
        }
    }
}

/// A cheap-to-clone handle on DM-master.
#[derive(Clone)]
pub struct DmClient {
    http: reqwest::Client,
    /// Without a trailing slash, e.g. `http://127.0.0.1:8261`. May hold credentials: never shown.
    base: Arc<str>,
    /// `base` as it may be shown: credentials replaced by `***`.
    shown: Arc<str>,
    /// The password in `base`, if any, scrubbed from everything the server answers.
    addr_secrets: Arc<Vec<String>>,
    version: Arc<OnceCell<ServerVersion>>,
    retry: RetryPolicy,
    /// Whether a mutation that certainly did not happen (connection refused, DM's 46024 latch) is sent again here.
    /// Off under the apply executor, which is then the one layer retrying mutations (see [`super::retry`]).
    retry_mutations: bool,
    timeout: Duration,
}

impl std::fmt::Debug for DmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmClient").field("addr", &self.shown).finish()
    }
}

/// `addr` as it may be printed or stored: a user name and password in it become `***`
/// (`https://user:pw@dm:8261` → `https://***@dm:8261`), and so does a query. Works on text that is not a URL.
pub fn display_addr(addr: &str) -> String {
    let start = addr.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &addr[start..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let mut out = String::with_capacity(addr.len());
    out.push_str(&addr[..start]);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str("***");
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    match tail.find(['?', '#']) {
        Some(q) => {
            out.push_str(&tail[..q]);
            out.push_str("?***");
        }
        None => out.push_str(tail),
    }
    clean_text(&out, 500)
}

/// Percent-encode one path segment (names may hold characters that are not URL-safe).
fn seg(s: &str) -> String {
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
fn percent_decode(s: &str) -> String {
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
fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
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
enum Body<'a> {
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

fn json<T: Serialize + Sync>(v: &T) -> Body<'_> {
    Body::Json(v)
}

/// The secret values of one request (passwords, TLS keys, the password in `--addr`). Whatever the server answers is
/// scrubbed of them before it becomes part of an error, so a server (or proxy) that echoes the request, or quotes a
/// DSN, cannot make dm-apply print a password.
#[derive(Debug, Default, Clone)]
struct Secrets(Vec<String>);

/// JSON keys whose string values dm-apply sends as secrets.
const SECRET_KEYS: [&str; 2] = ["password", "ssl_key_content"];

impl Secrets {
    fn new(addr: &[String], body: Option<&[u8]>) -> Secrets {
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

    fn collect(&mut self, v: &serde_json::Value) {
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

    fn longest(&self) -> usize {
        self.0.first().map(String::len).unwrap_or(0)
    }

    /// Every form a secret may take in an answer (as is, JSON-escaped, percent-encoded) becomes `(sensitive value)`.
    fn scrub(&self, text: &str) -> String {
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
    fn clean(&self, text: &str, max: usize) -> String {
        // Cut first (a secret that starts inside the kept part is kept whole, even JSON-escaped), then scrub, then
        // bound.
        let keep = max + 6 * self.longest() + 16;
        let cut: String = text.chars().take(keep).collect();
        clean_text(&self.scrub(&cut), max)
    }
}

/// At most `max` characters, every control character (and bidirectional override) replaced by a space, runs of
/// spaces collapsed, and a marker when something was cut.
fn clean_text(text: &str, max: usize) -> String {
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
struct Ctx {
    method: Method,
    path: String,
    secrets: Secrets,
}

impl Ctx {
    fn decode_error(&self, status: StatusCode, expected: &'static str, detail: String) -> DmError {
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
struct Answer {
    status: StatusCode,
    content_type: String,
    location: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn is_html(&self) -> bool {
        if self.body.trim_ascii().is_empty() {
            return false;
        }
        let ct = self.content_type.to_ascii_lowercase();
        ct.starts_with("text/html")
            || ct.starts_with("application/xhtml")
            || self.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
    }

    /// The plain-text page Go's HTTP server (and gin) answer for a path nobody serves.
    fn is_404_page(&self) -> bool {
        self.status == StatusCode::NOT_FOUND && self.body.trim_ascii() == b"404 page not found"
    }
}

impl DmClient {
    pub fn new(opts: &ClientOptions) -> Result<Self, DmError> {
        // rustls needs a process-wide crypto provider; a second install is a harmless no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let addr = opts.addr.trim_end_matches('/');
        let shown = display_addr(addr);
        let url = reqwest::Url::parse(addr).map_err(|e| {
            DmError::Options(format!("--addr `{shown}` is not a URL: {e} (expected e.g. http://127.0.0.1:8261)"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DmError::Options(format!("--addr `{shown}` must start with http:// or https://")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(DmError::Options(format!(
                "--addr `{shown}` must not have a query or fragment (expected e.g. http://127.0.0.1:8261)"
            )));
        }
        if opts.request_timeout.is_zero() {
            return Err(DmError::Options("--request-timeout must be greater than zero (e.g. 30s)".into()));
        }
        let addr_secrets: Vec<String> = match url.password() {
            Some(pw) => vec![pw.to_string(), percent_decode(pw)],
            None => vec![],
        };
        let mut b = reqwest::Client::builder()
            .timeout(opts.request_timeout)
            .connect_timeout(opts.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("dm-apply/", env!("CARGO_PKG_VERSION")))
            // A redirect would re-send the request, password included, to wherever the answer points (another
            // host, or plain http from https). DM-master never redirects its API: a 3xx is an error.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(path) = &opts.cacert {
            let pem = read_file(path, "--cacert")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                DmError::Options(format!("--cacert {}: not a PEM certificate bundle: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(DmError::Options(format!("--cacert {}: no certificate found", path.display())));
            }
            b = b.tls_certs_only(certs);
        }
        if let (Some(cert), Some(key)) = (&opts.cert, &opts.key) {
            let mut pem = read_file(cert, "--cert")?;
            pem.push(b'\n');
            pem.extend(read_file(key, "--key")?);
            // Never include the key material in the message.
            let id = reqwest::Identity::from_pem(&pem).map_err(|_| {
                DmError::Options(format!(
                    "--cert {} / --key {}: not a PEM certificate and private key pair",
                    cert.display(),
                    key.display()
                ))
            })?;
            b = b.identity(id);
        }
        if opts.insecure_skip_verify {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        let http = b.build().map_err(|e| {
            let mut detail = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                detail = format!("{detail}: {s}");
                src = s.source();
            }
            let hint = if opts.cert.is_some() { " (is --key the private key of --cert?)" } else { "" };
            DmError::Options(format!("cannot set up the HTTP client: {detail}{hint}"))
        })?;
        Ok(DmClient {
            http,
            base: addr.into(),
            shown: shown.into(),
            addr_secrets: Arc::new(addr_secrets),
            version: Arc::new(OnceCell::new()),
            retry: opts.retry,
            retry_mutations: true,
            timeout: opts.request_timeout,
        })
    }

    /// The same client (same connections), except that every mutation is sent exactly once whatever its answer: for
    /// a caller that retries mutations itself, so that retries never nest.
    pub fn sending_mutations_once(&self) -> DmClient {
        DmClient { retry_mutations: false, ..self.clone() }
    }

    /// The address this client talks to, as it may be shown or stored: credentials in it are replaced by `***`.
    pub fn addr(&self) -> &str {
        &self.shown
    }

    /// The address exactly as given, credentials included. Only for connecting; never print or store it.
    pub fn url_with_credentials(&self) -> &str {
        &self.base
    }

    async fn send(
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

    fn transport_error(&self, method: &Method, path: &str, e: reqwest::Error, secrets: &Secrets) -> DmError {
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
    async fn call(
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
    fn check(&self, ctx: &Ctx, answer: Answer) -> Result<Answer, DmError> {
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
        if let Err(detail) = check_limits(&answer.body) {
            return Err(DmError::TooLarge { method, path, detail });
        }
        if let Some(e) = error_in_success(ctx, answer.status, &answer.body) {
            return Err(e);
        }
        Ok(answer)
    }

    /// Where a redirect points, resolved against the address, without credentials, query or fragment.
    fn shown_location(&self, location: Option<&str>) -> String {
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

    async fn call_json<T: DeserializeOwned>(
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
    async fn call_names(&self, path: &str, expected: &'static str) -> Result<Vec<String>, DmError> {
        let (answer, ctx) = self.call(Method::GET, path, &[], Body::None).await?;
        decode(&ctx, &answer, Top::Array, expected)
    }

    /// A list answer: DM's `{"total": n, "data": [...]}` envelope, `total` equal to the number of items. DM always
    /// sends an array (never `null`) for these lists, except the source status list of a source whose worker
    /// reported nothing (`null_is_empty`). Anything else is an error, never an empty list.
    async fn call_list<T: DeserializeOwned>(
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

    async fn call_unit(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<(), DmError> {
        self.call(method, path, query, body).await.map(|_| ())
    }

    // ---------------------------------------------------------------------------------------------- version

    /// The server version from `GET /status` (plain text), detected once per client.
    pub async fn server_version(&self) -> Result<&ServerVersion, DmError> {
        self.version
            .get_or_try_init(|| async {
                let (answer, _) = self.call(Method::GET, "/status", &[], Body::None).await?;
                let text = String::from_utf8_lossy(&answer.body);
                let mut version = ServerVersion::parse_status(&text);
                // Shown in plans: bounded and printable whatever the server sent.
                version.raw = clean_text(&version.raw, 64);
                Ok(version)
            })
            .await
    }

    // ---------------------------------------------------------------------------------------------- sources

    pub async fn create_source(&self, source: &Source, worker_name: Option<&str>) -> Result<Source, DmError> {
        let req = CreateSourceRequest { source: source.clone(), worker_name: worker_name.map(str::to_string) };
        self.call_json(Method::POST, "/api/v1/sources", &[], json(&req), "a source").await
    }

    pub async fn list_sources(&self, with_status: bool, enable_relay: Option<bool>) -> Result<Vec<Source>, DmError> {
        let mut q = vec![];
        if with_status {
            q.push(("with_status", "true".to_string()));
        }
        if let Some(r) = enable_relay {
            q.push(("enable_relay", r.to_string()));
        }
        self.call_list("/api/v1/sources", &q, "a source list", false).await
    }

    /// `None` when the source does not exist (the server's 404 with an empty body).
    pub async fn get_source(&self, name: &str, with_status: bool) -> Result<Option<Source>, DmError> {
        let path = format!("/api/v1/sources/{}", seg(name));
        let q = if with_status { vec![("with_status", "true".to_string())] } else { vec![] };
        match self.call_json(Method::GET, &path, &q, Body::None, "a source").await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_absent() || e.has_code(codes::SOURCE_NOT_EXIST) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT keeps `source.source_name` and the path name equal (the body name decides what is written).
    /// Leave `password` as `None` to keep the stored one; never send the `******` read from a GET.
    pub async fn update_source(&self, source: &Source) -> Result<Source, DmError> {
        let path = format!("/api/v1/sources/{}", seg(&source.source_name));
        let req = UpdateSourceRequest { source: source.clone() };
        self.call_json(Method::PUT, &path, &[], json(&req), "a source").await
    }

    pub async fn delete_source(&self, name: &str, force: bool) -> Result<(), DmError> {
        let path = format!("/api/v1/sources/{}", seg(name));
        let q = if force { vec![("force", "true".to_string())] } else { vec![] };
        self.call_unit(Method::DELETE, &path, &q, Body::None).await
    }

    pub async fn source_status(&self, name: &str) -> Result<Vec<SourceStatus>, DmError> {
        let path = format!("/api/v1/sources/{}/status", seg(name));
        self.call_list(&path, &[], "a source status list", true).await
    }

    pub async fn enable_source(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::POST, &format!("/api/v1/sources/{}/enable", seg(name)), &[], Body::None).await
    }

    pub async fn disable_source(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::POST, &format!("/api/v1/sources/{}/disable", seg(name)), &[], Body::None).await
    }

    pub async fn transfer_source(&self, name: &str, worker_name: &str) -> Result<(), DmError> {
        let req = WorkerNameRequest { worker_name: worker_name.to_string() };
        self.call_unit(Method::POST, &format!("/api/v1/sources/{}/transfer", seg(name)), &[], json(&req)).await
    }

    /// With `None`, no body is sent, so v8.5.4+ does not inject a `relay_dir` (which would rewrite the source).
    pub async fn enable_relay(&self, name: &str, req: Option<&EnableRelayRequest>) -> Result<(), DmError> {
        let path = format!("/api/v1/sources/{}/relay/enable", seg(name));
        let body = match req {
            Some(r) => json(r),
            None => Body::None,
        };
        self.call_unit(Method::POST, &path, &[], body).await
    }

    pub async fn disable_relay(&self, name: &str, req: Option<&DisableRelayRequest>) -> Result<(), DmError> {
        let path = format!("/api/v1/sources/{}/relay/disable", seg(name));
        let body = match req {
            Some(r) => json(r),
            None => Body::None,
        };
        self.call_unit(Method::POST, &path, &[], body).await
    }

    pub async fn purge_relay(&self, name: &str, req: &PurgeRelayRequest) -> Result<(), DmError> {
        let path = format!("/api/v1/sources/{}/relay/purge", seg(name));
        self.call_unit(Method::POST, &path, &[], json(req)).await
    }

    pub async fn source_schemas(&self, name: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/sources/{}/schemas", seg(name));
        self.call_names(&path, "a schema name list").await
    }

    pub async fn source_tables(&self, name: &str, schema: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/sources/{}/schemas/{}", seg(name), seg(schema));
        self.call_names(&path, "a table name list").await
    }

    // ---------------------------------------------------------------------------------------------- tasks

    /// Creates the task in stage Stopped. Accepts the v6.1+ `{task, check_result}` answer and v6.0's bare task.
    pub async fn create_task(&self, task: &Task) -> Result<OperateTaskResponse, DmError> {
        let req = TaskRequest { task: task.clone() };
        let (answer, ctx) = self.call(Method::POST, "/api/v1/tasks", &[], json(&req)).await?;
        decode_operate(&ctx, &answer)
    }

    pub async fn list_tasks(
        &self,
        with_status: bool,
        stage: Option<&str>,
        source_name_list: &[String],
    ) -> Result<Vec<Task>, DmError> {
        let mut q = vec![];
        if with_status {
            q.push(("with_status", "true".to_string()));
        }
        if let Some(s) = stage {
            q.push(("stage", s.to_string()));
        }
        for s in source_name_list {
            q.push(("source_name_list", s.clone()));
        }
        self.call_list("/api/v1/tasks", &q, "a task list", false).await
    }

    /// `None` when the task does not exist (DM answers 400 with code 46018, not 404).
    pub async fn get_task(&self, name: &str, with_status: bool) -> Result<Option<Task>, DmError> {
        let path = format!("/api/v1/tasks/{}", seg(name));
        let q = if with_status { vec![("with_status", "true".to_string())] } else { vec![] };
        match self.call_json(Method::GET, &path, &q, Body::None, "a task").await {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.has_code(codes::TASK_NOT_EXIST) || e.is_absent() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The task must not be Running (46035); its source set cannot change (46034).
    pub async fn update_task(&self, task: &Task) -> Result<OperateTaskResponse, DmError> {
        let path = format!("/api/v1/tasks/{}", seg(&task.name));
        let req = TaskRequest { task: task.clone() };
        let (answer, ctx) = self.call(Method::PUT, &path, &[], json(&req)).await?;
        decode_operate(&ctx, &answer)
    }

    /// `keep_meta` is sent only when the server supports it (unreleased after v26.3.3); otherwise it is dropped
    /// and the checkpoints go with the task. Returns whether `keep_meta` was honoured.
    pub async fn delete_task(&self, name: &str, force: bool, keep_meta: bool) -> Result<bool, DmError> {
        let path = format!("/api/v1/tasks/{}", seg(name));
        let mut q = vec![];
        if force {
            q.push(("force", "true".to_string()));
        }
        let keep = keep_meta && self.server_version().await.map(|v| v.supports_keep_meta()).unwrap_or(false);
        if keep {
            q.push(("keep_meta", "true".to_string()));
        }
        self.call_unit(Method::DELETE, &path, &q, Body::None).await?;
        Ok(keep)
    }

    /// Status of every subtask (the server ignores `source_name_list` here).
    pub async fn task_status(&self, name: &str) -> Result<Vec<SubTaskStatus>, DmError> {
        let path = format!("/api/v1/tasks/{}/status", seg(name));
        self.call_list(&path, &[], "a subtask status list", false).await
    }

    /// Asynchronous: success means the expected stage was written, not that the task runs.
    pub async fn start_task(&self, name: &str, req: &StartTaskRequest) -> Result<(), DmError> {
        let path = format!("/api/v1/tasks/{}/start", seg(name));
        let body = if req.is_empty() { Body::None } else { json(req) };
        self.call_unit(Method::POST, &path, &[], body).await
    }

    /// Asynchronous; the worker shows a stopped task as `Paused`.
    pub async fn stop_task(&self, name: &str, req: &StopTaskRequest) -> Result<(), DmError> {
        let path = format!("/api/v1/tasks/{}/stop", seg(name));
        let body = if req.is_empty() { Body::None } else { json(req) };
        self.call_unit(Method::POST, &path, &[], body).await
    }

    pub async fn migrate_targets(
        &self,
        task: &str,
        source: &str,
        schema_pattern: Option<&str>,
        table_pattern: Option<&str>,
    ) -> Result<Vec<TaskMigrateTarget>, DmError> {
        let path = format!("/api/v1/tasks/{}/sources/{}/migrate_targets", seg(task), seg(source));
        let mut q = vec![];
        if let Some(p) = schema_pattern {
            q.push(("schema_pattern", p.to_string()));
        }
        if let Some(p) = table_pattern {
            q.push(("table_pattern", p.to_string()));
        }
        self.call_list(&path, &q, "a migrate target list", false).await
    }

    pub async fn task_source_schemas(&self, task: &str, source: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/tasks/{}/sources/{}/schemas", seg(task), seg(source));
        self.call_names(&path, "a schema name list").await
    }

    pub async fn task_source_tables(&self, task: &str, source: &str, schema: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/tasks/{}/sources/{}/schemas/{}", seg(task), seg(source), seg(schema));
        self.call_names(&path, "a table name list").await
    }

    pub async fn get_table_structure(
        &self,
        task: &str,
        source: &str,
        schema: &str,
        table: &str,
    ) -> Result<TableStructure, DmError> {
        let path =
            format!("/api/v1/tasks/{}/sources/{}/schemas/{}/{}", seg(task), seg(source), seg(schema), seg(table));
        self.call_json(Method::GET, &path, &[], Body::None, "a table structure").await
    }

    pub async fn put_table_structure(
        &self,
        task: &str,
        source: &str,
        schema: &str,
        table: &str,
        req: &OperateTableStructureRequest,
    ) -> Result<(), DmError> {
        let path =
            format!("/api/v1/tasks/{}/sources/{}/schemas/{}/{}", seg(task), seg(source), seg(schema), seg(table));
        self.call_unit(Method::PUT, &path, &[], json(req)).await
    }

    pub async fn delete_table_structure(
        &self,
        task: &str,
        source: &str,
        schema: &str,
        table: &str,
    ) -> Result<(), DmError> {
        let path =
            format!("/api/v1/tasks/{}/sources/{}/schemas/{}/{}", seg(task), seg(source), seg(schema), seg(table));
        self.call_unit(Method::DELETE, &path, &[], Body::None).await
    }

    /// dmctl task.yaml ⇄ OpenAPI task conversion done by the server (answers 200, not the spec's 201).
    pub async fn convert_task(&self, req: &ConverterTaskRequest) -> Result<ConverterTaskResponse, DmError> {
        self.call_json(Method::POST, "/api/v1/tasks/converters", &[], json(req), "a task conversion").await
    }

    // ---------------------------------------------------------------------------------------------- legacy

    /// The full configuration DM stores for each subtask of a task, from the legacy endpoint
    /// `GET /apis/v1alpha1/subtasks/{name}` (docs/dm-behaviour.md R11.3), reduced to the settings dm-apply compares
    /// with DM's OpenAPI model. `None` when DM does not know the task.
    ///
    /// The answer holds plain-text passwords and TLS contents: it is decoded straight into
    /// [`super::legacy::LegacySubtask`], which keeps none of them, and no error built from it quotes it.
    pub async fn subtask_configs(&self, name: &str) -> Result<Option<Vec<super::legacy::LegacySubtask>>, DmError> {
        use super::legacy::{MAX_SUBTASKS, SubTaskCfgAnswer, parse_subtask};
        let path = format!("/apis/v1alpha1/subtasks/{}", seg(name));
        let (answer, ctx) = self.call(Method::GET, &path, &[], Body::None).await?;
        const EXPECTED: &str = "the subtask configurations of a task";
        let envelope: SubTaskCfgAnswer = decode(&ctx, &answer, Top::Object, EXPECTED)?;
        drop(answer);
        if !envelope.result {
            let msg = clean_text(envelope.msg.as_deref().unwrap_or(""), MAX_MESSAGE_CHARS);
            if msg == "task not found" {
                return Ok(None);
            }
            return Err(DmError::Api {
                method: "GET".into(),
                path,
                status: 200,
                code: None,
                message: msg,
                hint: None,
                absent: false,
            });
        }
        let docs = envelope.cfgs.unwrap_or_default();
        if docs.is_empty() || docs.len() > MAX_SUBTASKS {
            let detail = format!("{} subtask documents (expected 1 to {MAX_SUBTASKS})", docs.len());
            return Err(DmError::Decode { method: "GET".into(), path, status: 200, expected: EXPECTED, detail });
        }
        let mut out = Vec::with_capacity(docs.len());
        for (i, doc) in docs.into_iter().enumerate() {
            let parsed = parse_subtask(i + 1, &doc);
            drop(doc);
            match parsed {
                Ok(s) => out.push(s),
                Err(p) => {
                    return Err(DmError::Decode {
                        method: "GET".into(),
                        path,
                        status: 200,
                        expected: EXPECTED,
                        detail: p.to_string(),
                    });
                }
            }
        }
        Ok(Some(out))
    }

    // ---------------------------------------------------------------------------------------------- templates

    /// Task templates only store `Task` JSON in etcd; they never create tasks. dm-apply keeps its small state
    /// record (secret fingerprints) in one of them, so the record lives with the cluster, not on a CI runner.
    pub async fn list_templates(&self) -> Result<Vec<Task>, DmError> {
        self.call_list("/api/v1/tasks/templates", &[], "a task template list", false).await
    }

    /// `None` when the template does not exist (DM error 20051).
    pub async fn get_template(&self, name: &str) -> Result<Option<Task>, DmError> {
        let path = format!("/api/v1/tasks/templates/{}", seg(name));
        match self.call_json(Method::GET, &path, &[], Body::None, "a task template").await {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.has_code(codes::TEMPLATE_NOT_EXIST) || e.is_absent() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Fails with 20050 when it exists.
    pub async fn create_template(&self, task: &Task) -> Result<Task, DmError> {
        self.call_json(Method::POST, "/api/v1/tasks/templates", &[], json(task), "a task template").await
    }

    pub async fn update_template(&self, task: &Task) -> Result<Task, DmError> {
        let path = format!("/api/v1/tasks/templates/{}", seg(&task.name));
        self.call_json(Method::PUT, &path, &[], json(task), "a task template").await
    }

    pub async fn delete_template(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::DELETE, &format!("/api/v1/tasks/templates/{}", seg(name)), &[], Body::None).await
    }

    // ---------------------------------------------------------------------------------------------- cluster

    pub async fn list_masters(&self) -> Result<Vec<ClusterMaster>, DmError> {
        self.call_list("/api/v1/cluster/masters", &[], "a master list", false).await
    }

    pub async fn offline_master(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::DELETE, &format!("/api/v1/cluster/masters/{}", seg(name)), &[], Body::None).await
    }

    pub async fn list_workers(&self) -> Result<Vec<ClusterWorker>, DmError> {
        self.call_list("/api/v1/cluster/workers", &[], "a worker list", false).await
    }

    /// The worker must be offline (46005).
    pub async fn offline_worker(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::DELETE, &format!("/api/v1/cluster/workers/{}", seg(name)), &[], Body::None).await
    }

    pub async fn cluster_info(&self) -> Result<ClusterInfo, DmError> {
        self.call_json(Method::GET, "/api/v1/cluster/info", &[], Body::None, "the cluster info").await
    }

    /// Only the cluster id of `GET /cluster/info`: the topology (free-form JSON) is skipped, not built.
    pub async fn cluster_id(&self) -> Result<u64, DmError> {
        #[derive(Deserialize)]
        struct Id {
            cluster_id: u64,
        }
        let id: Id = self.call_json(Method::GET, "/api/v1/cluster/info", &[], Body::None, "the cluster info").await?;
        Ok(id.cluster_id)
    }

    /// The request body is the `ClusterTopology` (the spec's `requestBody`), i.e. `info.topology`, not the whole
    /// `{cluster_id, topology}` answer shape; `cluster_id` cannot be set.
    pub async fn update_cluster_info(&self, info: &ClusterInfo) -> Result<ClusterInfo, DmError> {
        let topology = info.topology.clone().unwrap_or_else(|| serde_json::json!({}));
        self.call_json(Method::PUT, "/api/v1/cluster/info", &[], json(&topology), "the cluster info").await
    }
}

fn read_file(path: &PathBuf, flag: &str) -> Result<Vec<u8>, DmError> {
    std::fs::read(path).map_err(|e| DmError::Options(format!("{flag} {}: {e}", path.display())))
}

/// Check the raw bytes of an answer against the shape limits before decoding: the number of items of each array,
/// the number of objects, the nesting depth. One pass, no allocation; strings are skipped, escapes included.
fn check_limits(bytes: &[u8]) -> Result<(), String> {
    // Per open container: is it an array, and how many commas at its level so far.
    let mut stack: Vec<(bool, usize)> = Vec::new();
    let mut objects = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
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
    Ok(())
}

/// A JSON value read only for what it is: a string, an integer, or something else (skipped without building it).
enum Scalar {
    Str(String),
    Int(i64),
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
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
    fn text(self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The top-level fields of DM's error shapes, read without building anything else of the body.
#[derive(Deserialize)]
struct ErrorShape {
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
    fn parse(bytes: &[u8]) -> Option<ErrorShape> {
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }

    /// `error_code` is documented as a string and really an integer: accept both.
    fn code(&mut self) -> Option<i64> {
        match self.error_code.take()? {
            Scalar::Int(c) => Some(c),
            Scalar::Str(s) => s.trim().parse().ok(),
            Scalar::Other => None,
        }
    }
}

/// DM's `{error_msg, error_code}` or `{error}` under a success status (a broken proxy or server): an error with DM's
/// code and message, never an empty or default result.
fn error_in_success(ctx: &Ctx, status: StatusCode, bytes: &[u8]) -> Option<DmError> {
    let mut shape = ErrorShape::parse(bytes)?;
    let message =
        shape.error_msg.take().and_then(Scalar::text).or_else(|| shape.error.take().and_then(Scalar::text))?;
    Some(api_error_from(ctx, status, shape.code(), &message))
}

/// Serde's message about a body that does not fit the expected type, without quoting the body: serde_json's own
/// messages can quote input strings (a password, a key), so only the kind of problem, our own field and type names,
/// and the position are kept.
fn serde_detail(e: &serde_json::Error) -> String {
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

fn safe_data_message(msg: &str) -> String {
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
enum Top {
    Object,
    Array,
}

fn decode<T: DeserializeOwned>(ctx: &Ctx, answer: &Answer, top: Top, expected: &'static str) -> Result<T, DmError> {
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
fn decode_operate(ctx: &Ctx, answer: &Answer) -> Result<OperateTaskResponse, DmError> {
    /// Only whether `task` is an object; nothing else of the body is built.
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        task: Option<IsObject>,
    }
    struct IsObject(bool);
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
fn api_error(ctx: &Ctx, status: StatusCode, bytes: &[u8]) -> DmError {
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

fn api_error_from(ctx: &Ctx, status: StatusCode, code: Option<i64>, message: &str) -> DmError {
    let message = ctx.secrets.clean(message, MAX_MESSAGE_CHARS);
    let hint = if message.contains("no matching operation was found") {
        Some(format!(
            "DM-master does not serve this endpoint: the OpenAPI is probably off, or DM-master is older than v6.0 \
             (which lacks some endpoints). To {}.",
            super::error::OPENAPI_HOWTO
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

    fn ctx() -> Ctx {
        Ctx { method: Method::GET, path: "/x".into(), secrets: Secrets::default() }
    }

    fn err(status: u16, body: &str) -> DmError {
        api_error(&ctx(), StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    #[test]
    fn error_shape_error_msg_code() {
        let e =
            err(400, r#"{"error_msg":"[code=46018:class=scheduler], Message: task t not exist","error_code":46018}"#);
        assert_eq!(e.code(), Some(46018));
        assert_eq!(e.status(), Some(400));
        assert!(e.to_string().contains("task t not exist"));
    }

    #[test]
    fn error_shape_string_code() {
        assert_eq!(err(400, r#"{"error_msg":"m","error_code":"46025"}"#).code(), Some(46025));
    }

    #[test]
    fn error_shape_validator() {
        let e = err(400, r#"{"error":"request body has an error: property \"source\" is missing"}"#);
        assert_eq!(e.code(), None);
        assert!(e.to_string().contains("property \"source\" is missing"));
    }

    #[test]
    fn error_shape_msg() {
        let e = err(400, r#"{"msg":"Invalid format for parameter force"}"#);
        assert!(e.to_string().contains("Invalid format for parameter force"));
    }

    #[test]
    fn error_shape_empty_404() {
        let e = err(404, "");
        assert_eq!(e.status(), Some(404));
        assert!(e.to_string().contains("not found"));
    }

    #[test]
    fn openapi_disabled_hint() {
        let e = err(400, r#"{"error":"no matching operation was found"}"#);
        match e {
            DmError::Api { hint: Some(h), .. } => assert!(h.contains("openapi = true")),
            other => panic!("no hint: {other:?}"),
        }
    }

    #[test]
    fn transient_classification() {
        assert!(err(503, "").is_transient());
        assert!(err(400, r#"{"error_msg":"busy","error_code":46024}"#).is_transient());
        assert!(!err(400, r#"{"error_msg":"no","error_code":46025}"#).is_transient());
    }

    /// A one-shot HTTP server answering each connection with the next canned response; counts requests.
    async fn canned(responses: Vec<&'static str>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            for r in responses {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = sock.write_all(r.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        (addr, count)
    }

    const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const LATCH: &str = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 41\r\nconnection: close\r\n\r\n{\"error_msg\":\"in use\",\"error_code\":46024}";
    const STATUS_OK: &str =
        "HTTP/1.1 200 OK\r\ncontent-length: 25\r\nconnection: close\r\n\r\nRelease Version: v8.5.3\n\n";
    const START_OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

    fn fast_retry(addr: &str) -> DmClient {
        let mut o = ClientOptions::new(addr);
        o.retry =
            RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(5) };
        DmClient::new(&o).unwrap()
    }

    #[tokio::test]
    async fn reads_retry_transient_errors() {
        let (addr, count) = canned(vec![UNAVAILABLE, LATCH, STATUS_OK]).await;
        let client = fast_retry(&addr);
        let v = client.server_version().await.unwrap();
        assert_eq!(v.semver, Some((8, 5, 3)));
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn reads_give_up_after_the_budget() {
        let (addr, count) = canned(vec![UNAVAILABLE; 6]).await;
        let e = fast_retry(&addr).list_sources(false, None).await.unwrap_err();
        assert_eq!(e.status(), Some(503));
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn mutations_retry_only_the_latch() {
        let (addr, count) = canned(vec![LATCH, START_OK]).await;
        fast_retry(&addr).start_task("t", &StartTaskRequest::default()).await.unwrap();
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
        let (addr, count) = canned(vec![UNAVAILABLE, START_OK]).await;
        let e = fast_retry(&addr).start_task("t", &StartTaskRequest::default()).await.unwrap_err();
        assert!(e.is_ambiguous(), "a 5xx on a mutation may have landed: {e}");
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(seg("mysql-01_x.y"), "mysql-01_x.y");
    }
}
