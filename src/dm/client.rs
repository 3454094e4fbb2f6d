//! Typed async client for DM-master's `/api/v1`.
//!
//! Requests are shaped as the real server wants them (semantics §1-§2): wrapped `{"source": ..}` / `{"task": ..}`
//! bodies; no body and no content type for start/stop/enable/disable/relay-enable when there is nothing to say
//! (a JSON body would make v8.5.4+ inject `relay_dir`); 404-with-empty-body and 46018 mapped to "absent" for gets.
//! One `reqwest::Client` is kept for the client's life, so connections are reused.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use super::error::{DmError, codes};
use super::types::*;
use super::version::ServerVersion;

/// Largest response body accepted (a list of thousands of tasks is a few MB).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

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
    /// Retry policy for requests that are safe to repeat.
    pub retry: RetryPolicy,
}

/// Reads (GET) are retried with exponential backoff and full jitter on connection errors, timeouts, 5xx and DM's
/// latch error (46024). A mutating request is retried only when it certainly did not happen: the connection was
/// never made, or DM refused it with 46024 before doing anything. Any other failure of a mutation is returned, and
/// the caller re-reads the resource to learn whether the change landed (`DmError::is_ambiguous`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total (1 = no retry).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Self::default() }
    }

    /// Delay before retry number `attempt` (1-based): full jitter over an exponentially growing cap.
    fn delay(&self, attempt: u32) -> Duration {
        let cap = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        cap.mul_f64(rand::random::<f64>())
    }
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
    /// Without a trailing slash, e.g. `http://127.0.0.1:8261`.
    base: Arc<str>,
    version: Arc<OnceCell<ServerVersion>>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl std::fmt::Debug for DmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmClient").field("base", &self.base).finish()
    }
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

impl DmClient {
    pub fn new(opts: &ClientOptions) -> Result<Self, DmError> {
        // rustls needs a process-wide crypto provider; a second install is a harmless no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let addr = opts.addr.trim_end_matches('/');
        let url = reqwest::Url::parse(addr).map_err(|e| {
            DmError::Options(format!("--addr `{addr}` is not a URL: {e} (expected e.g. http://127.0.0.1:8261)"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DmError::Options(format!("--addr `{addr}` must start with http:// or https://")));
        }
        let mut b = reqwest::Client::builder()
            .timeout(opts.request_timeout)
            .connect_timeout(opts.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("dm-apply/", env!("CARGO_PKG_VERSION")))
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
            version: Arc::new(OnceCell::new()),
            retry: opts.retry,
            timeout: opts.request_timeout,
        })
    }

    /// The address this client talks to.
    pub fn addr(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<(StatusCode, Vec<u8>), DmError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method.clone(), &url);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Body::Json(v) = body {
            let bytes =
                v.to_json().map_err(|e| DmError::Options(format!("cannot encode the request body for {path}: {e}")))?;
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes);
        }
        tracing::debug!(%method, path, "request");
        let mut resp = req.send().await.map_err(|e| self.transport_error(&method, path, e))?;
        let status = resp.status();
        let mut buf = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(DmError::TooLarge {
                            method: method.to_string(),
                            path: path.to_string(),
                            limit: MAX_BODY_BYTES,
                        });
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.transport_error(&method, path, e)),
            }
        }
        tracing::debug!(%method, path, status = status.as_u16(), bytes = buf.len(), "response");
        Ok((status, buf))
    }

    fn transport_error(&self, method: &Method, path: &str, e: reqwest::Error) -> DmError {
        if e.is_timeout() {
            return DmError::Timeout {
                method: method.to_string(),
                path: path.to_string(),
                timeout_ms: self.timeout.as_millis() as u64,
            };
        }
        // A failure to connect means nothing was sent; anything later (reset, broken body) may have been processed.
        let maybe_sent = !e.is_connect();
        let mut detail = e.to_string();
        let mut tls = false;
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            detail = format!("{detail}: {s}");
            // A TLS failure (ours or the server's alert) means the server never saw the request.
            tls |= is_tls_error(s);
            src = s.source();
        }
        if tls {
            return DmError::Tls {
                addr: self.base.to_string(),
                method: method.to_string(),
                path: path.to_string(),
                detail,
            };
        }
        DmError::Connect {
            addr: self.base.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            detail,
            maybe_sent,
        }
    }

    /// Send and expect a success status; map error shapes otherwise.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<(StatusCode, Vec<u8>), DmError> {
        let mut attempt = 1;
        loop {
            let err = match self.send(method.clone(), path, query, body).await {
                Ok((status, bytes)) if status.is_success() => return Ok((status, bytes)),
                Ok((status, bytes)) => api_error(&method, path, status, &bytes),
                Err(e) => e,
            };
            let retryable = if method == Method::GET {
                err.is_transient()
            } else {
                err.has_code(codes::LATCH_IN_USE) || matches!(err, DmError::Connect { maybe_sent: false, .. })
            };
            if !retryable || attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let delay = self.retry.delay(attempt);
            tracing::info!(%method, path, attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<T, DmError> {
        let (status, bytes) = self.call(method.clone(), path, query, body).await?;
        decode(&method, path, status, &bytes)
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
                let (_, bytes) = self.call(Method::GET, "/status", &[], Body::None).await?;
                let text = String::from_utf8_lossy(&bytes);
                Ok(ServerVersion::parse_status(&text))
            })
            .await
    }

    // ---------------------------------------------------------------------------------------------- sources

    pub async fn create_source(&self, source: &Source, worker_name: Option<&str>) -> Result<Source, DmError> {
        let req = CreateSourceRequest { source: source.clone(), worker_name: worker_name.map(str::to_string) };
        self.call_json(Method::POST, "/api/v1/sources", &[], json(&req)).await
    }

    pub async fn list_sources(&self, with_status: bool, enable_relay: Option<bool>) -> Result<Vec<Source>, DmError> {
        let mut q = vec![];
        if with_status {
            q.push(("with_status", "true".to_string()));
        }
        if let Some(r) = enable_relay {
            q.push(("enable_relay", r.to_string()));
        }
        let l: ListResponse<Source> = self.call_json(Method::GET, "/api/v1/sources", &q, Body::None).await?;
        Ok(l.data)
    }

    /// `None` when the source does not exist (the server's 404 with an empty body).
    pub async fn get_source(&self, name: &str, with_status: bool) -> Result<Option<Source>, DmError> {
        let path = format!("/api/v1/sources/{}", seg(name));
        let q = if with_status { vec![("with_status", "true".to_string())] } else { vec![] };
        match self.call_json(Method::GET, &path, &q, Body::None).await {
            Ok(s) => Ok(Some(s)),
            Err(DmError::Api { status: 404, .. }) => Ok(None),
            Err(e) if e.has_code(codes::SOURCE_NOT_EXIST) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT keeps `source.source_name` and the path name equal (the body name decides what is written).
    /// Leave `password` as `None` to keep the stored one; never send the `******` read from a GET.
    pub async fn update_source(&self, source: &Source) -> Result<Source, DmError> {
        let path = format!("/api/v1/sources/{}", seg(&source.source_name));
        let req = UpdateSourceRequest { source: source.clone() };
        self.call_json(Method::PUT, &path, &[], json(&req)).await
    }

    pub async fn delete_source(&self, name: &str, force: bool) -> Result<(), DmError> {
        let path = format!("/api/v1/sources/{}", seg(name));
        let q = if force { vec![("force", "true".to_string())] } else { vec![] };
        self.call_unit(Method::DELETE, &path, &q, Body::None).await
    }

    pub async fn source_status(&self, name: &str) -> Result<Vec<SourceStatus>, DmError> {
        let path = format!("/api/v1/sources/{}/status", seg(name));
        let l: ListResponse<SourceStatus> = self.call_json(Method::GET, &path, &[], Body::None).await?;
        Ok(l.data)
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
        self.call_json(Method::GET, &format!("/api/v1/sources/{}/schemas", seg(name)), &[], Body::None).await
    }

    pub async fn source_tables(&self, name: &str, schema: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/sources/{}/schemas/{}", seg(name), seg(schema));
        self.call_json(Method::GET, &path, &[], Body::None).await
    }

    // ---------------------------------------------------------------------------------------------- tasks

    /// Creates the task in stage Stopped. Accepts the v6.1+ `{task, check_result}` answer and v6.0's bare task.
    pub async fn create_task(&self, task: &Task) -> Result<OperateTaskResponse, DmError> {
        let req = TaskRequest { task: task.clone() };
        let (status, bytes) = self.call(Method::POST, "/api/v1/tasks", &[], json(&req)).await?;
        decode_operate(&Method::POST, "/api/v1/tasks", status, &bytes)
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
        let l: ListResponse<Task> = self.call_json(Method::GET, "/api/v1/tasks", &q, Body::None).await?;
        Ok(l.data)
    }

    /// `None` when the task does not exist (DM answers 400 with code 46018, not 404).
    pub async fn get_task(&self, name: &str, with_status: bool) -> Result<Option<Task>, DmError> {
        let path = format!("/api/v1/tasks/{}", seg(name));
        let q = if with_status { vec![("with_status", "true".to_string())] } else { vec![] };
        match self.call_json(Method::GET, &path, &q, Body::None).await {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.has_code(codes::TASK_NOT_EXIST) || e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The task must not be Running (46035); its source set cannot change (46034).
    pub async fn update_task(&self, task: &Task) -> Result<OperateTaskResponse, DmError> {
        let path = format!("/api/v1/tasks/{}", seg(&task.name));
        let req = TaskRequest { task: task.clone() };
        let (status, bytes) = self.call(Method::PUT, &path, &[], json(&req)).await?;
        decode_operate(&Method::PUT, &path, status, &bytes)
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
        let l: ListResponse<SubTaskStatus> = self.call_json(Method::GET, &path, &[], Body::None).await?;
        Ok(l.data)
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
        let l: ListResponse<TaskMigrateTarget> = self.call_json(Method::GET, &path, &q, Body::None).await?;
        Ok(l.data)
    }

    pub async fn task_source_schemas(&self, task: &str, source: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/tasks/{}/sources/{}/schemas", seg(task), seg(source));
        self.call_json(Method::GET, &path, &[], Body::None).await
    }

    pub async fn task_source_tables(&self, task: &str, source: &str, schema: &str) -> Result<Vec<String>, DmError> {
        let path = format!("/api/v1/tasks/{}/sources/{}/schemas/{}", seg(task), seg(source), seg(schema));
        self.call_json(Method::GET, &path, &[], Body::None).await
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
        self.call_json(Method::GET, &path, &[], Body::None).await
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
        self.call_json(Method::POST, "/api/v1/tasks/converters", &[], json(req)).await
    }

    // ---------------------------------------------------------------------------------------------- templates

    /// Task templates only store `Task` JSON in etcd; they never create tasks. dm-apply keeps its small state
    /// record (secret fingerprints) in one of them, so the record lives with the cluster, not on a CI runner.
    pub async fn list_templates(&self) -> Result<Vec<Task>, DmError> {
        let l: ListResponse<Task> = self.call_json(Method::GET, "/api/v1/tasks/templates", &[], Body::None).await?;
        Ok(l.data)
    }

    /// `None` when the template does not exist (DM error 20051).
    pub async fn get_template(&self, name: &str) -> Result<Option<Task>, DmError> {
        let path = format!("/api/v1/tasks/templates/{}", seg(name));
        match self.call_json(Method::GET, &path, &[], Body::None).await {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.has_code(codes::TEMPLATE_NOT_EXIST) || e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Fails with 20050 when it exists.
    pub async fn create_template(&self, task: &Task) -> Result<Task, DmError> {
        self.call_json(Method::POST, "/api/v1/tasks/templates", &[], json(task)).await
    }

    pub async fn update_template(&self, task: &Task) -> Result<Task, DmError> {
        let path = format!("/api/v1/tasks/templates/{}", seg(&task.name));
        self.call_json(Method::PUT, &path, &[], json(task)).await
    }

    pub async fn delete_template(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::DELETE, &format!("/api/v1/tasks/templates/{}", seg(name)), &[], Body::None).await
    }

    // ---------------------------------------------------------------------------------------------- cluster

    pub async fn list_masters(&self) -> Result<Vec<ClusterMaster>, DmError> {
        let l: ListResponse<ClusterMaster> =
            self.call_json(Method::GET, "/api/v1/cluster/masters", &[], Body::None).await?;
        Ok(l.data)
    }

    pub async fn offline_master(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::DELETE, &format!("/api/v1/cluster/masters/{}", seg(name)), &[], Body::None).await
    }

    pub async fn list_workers(&self) -> Result<Vec<ClusterWorker>, DmError> {
        let l: ListResponse<ClusterWorker> =
            self.call_json(Method::GET, "/api/v1/cluster/workers", &[], Body::None).await?;
        Ok(l.data)
    }

    /// The worker must be offline (46005).
    pub async fn offline_worker(&self, name: &str) -> Result<(), DmError> {
        self.call_unit(Method::DELETE, &format!("/api/v1/cluster/workers/{}", seg(name)), &[], Body::None).await
    }

    pub async fn cluster_info(&self) -> Result<ClusterInfo, DmError> {
        self.call_json(Method::GET, "/api/v1/cluster/info", &[], Body::None).await
    }

    /// The request body is the `ClusterTopology` (the spec's `requestBody`), i.e. `info.topology`, not the whole
    /// `{cluster_id, topology}` answer shape; `cluster_id` cannot be set.
    pub async fn update_cluster_info(&self, info: &ClusterInfo) -> Result<ClusterInfo, DmError> {
        let topology = info.topology.clone().unwrap_or_else(|| serde_json::json!({}));
        self.call_json(Method::PUT, "/api/v1/cluster/info", &[], json(&topology)).await
    }
}

fn read_file(path: &PathBuf, flag: &str) -> Result<Vec<u8>, DmError> {
    std::fs::read(path).map_err(|e| DmError::Options(format!("{flag} {}: {e}", path.display())))
}

fn decode<T: DeserializeOwned>(method: &Method, path: &str, status: StatusCode, bytes: &[u8]) -> Result<T, DmError> {
    serde_json::from_slice(bytes).map_err(|e| DmError::Decode {
        method: method.to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        detail: e.to_string(),
    })
}

/// v6.1+ answers `{task, check_result}`; v6.0 a bare `Task`.
fn decode_operate(
    method: &Method,
    path: &str,
    status: StatusCode,
    bytes: &[u8],
) -> Result<OperateTaskResponse, DmError> {
    let v: serde_json::Value = decode(method, path, status, bytes)?;
    if v.get("task").is_some_and(|t| t.is_object()) {
        decode(method, path, status, bytes)
    } else {
        let task: Task = decode(method, path, status, bytes)?;
        Ok(OperateTaskResponse { task, check_result: String::new() })
    }
}

/// Map any of DM's error shapes to [`DmError::Api`].
pub(crate) fn api_error(method: &Method, path: &str, status: StatusCode, bytes: &[u8]) -> DmError {
    let v: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let field = |k: &str| v.as_ref().and_then(|v| v.get(k)).and_then(|m| m.as_str()).map(str::to_string);
    let (code, message) = if let Some(msg) = field("error_msg") {
        let code = v.as_ref().and_then(|v| v.get("error_code")).and_then(|c| {
            // Documented as a string, really an integer: accept both.
            c.as_i64().or_else(|| c.as_str().and_then(|s| s.parse().ok()))
        });
        (code, msg)
    } else if let Some(msg) = field("error").or_else(|| field("msg")) {
        (None, msg)
    } else if bytes.is_empty() {
        (None, status.canonical_reason().unwrap_or("no message").to_lowercase())
    } else {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).trim().to_string();
        (None, text)
    };
    let hint = if message.contains("no matching operation was found") {
        Some(
            "DM-master does not serve this endpoint: OpenAPI is probably not enabled. Set `openapi = true` in \
             dm-master.toml (or start DM-master with --openapi) and restart it; DM before v6.0 lacks some endpoints."
                .to_string(),
        )
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
    DmError::Api { method: method.to_string(), path: path.to_string(), status: status.as_u16(), code, message, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> DmError {
        api_error(&Method::GET, "/x", StatusCode::from_u16(status).unwrap(), body.as_bytes())
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
