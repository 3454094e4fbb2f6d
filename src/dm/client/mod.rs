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

mod endpoints;
#[cfg(any(test, debug_assertions, feature = "testkit"))]
mod testkit;
mod transport;

use transport::*;

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
        if url.scheme() == "http" && opts.cacert.is_none() {
            // Plain http never does a TLS handshake (no redirects, no proxy), so the system's trust store is not
            // loaded: reading and decoding every PEM file of it is most of a short command's start-up. Should a
            // TLS connection ever be attempted, an empty store fails it closed.
            b = b.tls_certs_only(Vec::<reqwest::Certificate>::new());
        }
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
}

fn read_file(path: &PathBuf, flag: &str) -> Result<Vec<u8>, DmError> {
    std::fs::read(path).map_err(|e| DmError::Options(format!("{flag} {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::{Method, StatusCode};

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
