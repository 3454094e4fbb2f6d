//! HTTP layer: routing of `/api/v1/...` and `/status`, the validator's answers, the gin binding quirks, latency,
//! fault injection, the per-task latch, the request log, and the `/sim/...` control API.
//!
//! Early answers are `Response`s in `Err` (clippy's size lint does not matter on this path).
//! Routing is done by hand (one fallback handler) so that unknown routes under `/api/v1/` answer DM's
//! `400 {"error":"no matching operation was found"}` rather than a framework 404, while paths DM-master does not
//! mount (everything else, and `/api/v1/` itself when OpenAPI is off) answer Go's plain-text
//! `404 page not found` (docs/dm-behaviour.md §2).

#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::bound;
use super::clock::sleep;
use super::errors::{SimError, e};
use super::net::ConnMeta;
use super::schema::{self, BodySchema};
use super::state::{Out, R};
use super::{FaultKind, Generation, LoggedRequest, Shared, SimControl};
use crate::dm::types::*;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(entry).with_state(shared)
}

const MAX_BODY: usize = 16 * 1024 * 1024;

async fn entry(State(sh): State<Arc<Shared>>, ConnectInfo(conn): ConnectInfo<ConnMeta>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let ct = req.headers().get(header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return validation_error("request body has an error: body too large or unreadable"),
    };
    if path == "/sim" || path.starts_with("/sim/") {
        return control(&sh, &method, &path, &body).await;
    }
    if sh.offline.load(std::sync::atomic::Ordering::SeqCst) {
        conn.kill();
        log_push(&sh, &method, &path, &query, &body, &ct, true);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let idx = log_push(&sh, &method, &path, &query, &body, &ct, false);
    let fault = {
        let k = sh.knobs();
        if k.fault_rate > 0.0 && !k.fault_kinds.is_empty() {
            let mut st = sh.state();
            if st.rng.random_bool(k.fault_rate.clamp(0.0, 1.0)) {
                let i = st.rng.random_range(0..k.fault_kinds.len());
                Some((k.fault_kinds[i], k.fault_delay))
            } else {
                None
            }
        } else {
            None
        }
    };
    if let Some((kind, delay)) = fault {
        // Marked now: a client that gives up during a Delay drops the connection, and with it this handler.
        log_done(&sh, idx, 0, true);
        // A faulted request is never handled: nothing changes, whatever the method.
        let status = match kind {
            FaultKind::Reset => {
                conn.kill();
                0
            }
            FaultKind::ServerError => 503,
            FaultKind::Delay => {
                tokio::time::sleep(delay).await;
                504
            }
        };
        log_done(&sh, idx, status, true);
        return match kind {
            FaultKind::Reset => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            FaultKind::ServerError => {
                (StatusCode::SERVICE_UNAVAILABLE, "simulated fault: service unavailable\n").into_response()
            }
            FaultKind::Delay => (StatusCode::GATEWAY_TIMEOUT, "simulated fault: upstream timed out\n").into_response(),
        };
    }
    let resp = if mounted(&sh, &path) {
        api(&sh, &method, &path, &query, ct.as_deref(), &body).await
    } else {
        let latency = sh.knobs().latency;
        sleep(latency).await;
        not_mounted()
    };
    log_done(&sh, idx, resp.status().as_u16(), false);
    tracing::info!(%method, path, query, status = resp.status().as_u16(), "sim request");
    resp
}

fn log_push(
    sh: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    body: &Bytes,
    ct: &Option<String>,
    dropped: bool,
) -> usize {
    let mut log = sh.log();
    log.push(LoggedRequest {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        status: 0,
        mutating: !matches!(*method, Method::GET | Method::HEAD),
        faulted: dropped,
        body: (!body.is_empty()).then(|| String::from_utf8_lossy(body).into_owned()),
        content_type: ct.clone(),
    });
    log.len() - 1
}

fn log_done(sh: &Shared, idx: usize, status: u16, faulted: bool) {
    if let Some(l) = sh.log().get_mut(idx) {
        l.status = status;
        l.faulted = faulted;
    }
}

// ---------------------------------------------------------------------------------------------------- answers

fn json_response(status: u16, v: &Value) -> Response {
    // gin's IndentedJSON: four-space indentation.
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    let mut r = Response::new(Body::from(buf));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

/// Whether DM-master's HTTP mux has a handler for `path`: `/status` and the legacy `/apis/` always,
/// `/api/v1/` only with `openapi = true` (docs/dm-behaviour.md §2).
fn mounted(sh: &Shared, path: &str) -> bool {
    path == "/status" || path.starts_with("/apis/") || (sh.openapi && path.starts_with("/api/v1/"))
}

/// Go's `http.NotFound`: what the mux answers for a path nothing is mounted on.
fn not_mounted() -> Response {
    let mut r = Response::new(Body::from("404 page not found\n"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    r
}

fn empty(status: u16) -> Response {
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK).into_response()
}

/// The validator's shape: `400 {"error": "..."}` (docs/dm-behaviour.md §2).
fn validation_error(msg: &str) -> Response {
    json_response(400, &json!({"error": msg}))
}

/// terrorHTTPErrorHandler: every handler error is `400 {"error_msg", "error_code"}`.
fn handler_error(err: &SimError) -> Response {
    json_response(400, &json!({"error_msg": err.error_msg(), "error_code": err.code}))
}

fn render(r: R) -> Response {
    match r {
        Ok(Out::Json(code, v)) => json_response(code, &v),
        Ok(Out::Empty(code)) => empty(code),
        Ok(Out::NotFoundEmpty) => empty(404),
        Err(err) => handler_error(&err),
    }
}

// ---------------------------------------------------------------------------------------------------- routing

#[derive(Debug, Clone)]
enum Op {
    Status,
    Docs,
    DmJson,
    CreateSource,
    ListSources,
    GetSource(String),
    UpdateSource(String),
    DeleteSource(String),
    SourceStatus(String),
    EnableSource(String),
    DisableSource(String),
    TransferSource(String),
    EnableRelay(String),
    DisableRelay(String),
    PurgeRelay(String),
    SourceSchemas(String),
    SourceTables(String, String),
    CreateTask,
    ListTasks,
    GetTask(String),
    UpdateTask(#[allow(dead_code)] String),
    DeleteTask(String),
    TaskStatus(String),
    StartTask(String),
    StopTask(String),
    MigrateTargets(String, String),
    TaskSchemas(String, String),
    TaskTables(String, String, String),
    GetTable(String, String, String, String),
    PutTable(String, String, String, String),
    DeleteTable(String, String, String, String),
    Convert,
    CreateTemplate,
    ListTemplates,
    ImportTemplates,
    GetTemplate(String),
    UpdateTemplate(#[allow(dead_code)] String),
    DeleteTemplate(String),
    ClusterInfo,
    UpdateClusterInfo,
    ListMasters,
    OfflineMaster(String),
    ListWorkers,
    OfflineWorker(String),
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `Err(message)` when no operation matches: unknown path, or known path with another method.
fn route(method: &Method, path: &str) -> Result<Op, &'static str> {
    if path == "/status" {
        return if *method == Method::GET { Ok(Op::Status) } else { Err("method not allowed") };
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else { return Err("no matching operation was found") };
    let segs: Vec<String> = rest.split('/').map(pct_decode).collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = method.clone();
    let o = |x: String| x;
    let found: Option<Option<Op>> = match s.as_slice() {
        ["docs"] => Some((m == Method::GET).then_some(Op::Docs)),
        ["dm.json"] => Some((m == Method::GET).then_some(Op::DmJson)),
        ["sources"] => Some(match m {
            Method::POST => Some(Op::CreateSource),
            Method::GET => Some(Op::ListSources),
            _ => None,
        }),
        ["sources", n] => Some(match m {
            Method::GET => Some(Op::GetSource(o(n.to_string()))),
            Method::PUT => Some(Op::UpdateSource(n.to_string())),
            Method::DELETE => Some(Op::DeleteSource(n.to_string())),
            _ => None,
        }),
        ["sources", n, "status"] => Some((m == Method::GET).then(|| Op::SourceStatus(n.to_string()))),
        ["sources", n, "enable"] => Some((m == Method::POST).then(|| Op::EnableSource(n.to_string()))),
        ["sources", n, "disable"] => Some((m == Method::POST).then(|| Op::DisableSource(n.to_string()))),
        ["sources", n, "transfer"] => Some((m == Method::POST).then(|| Op::TransferSource(n.to_string()))),
        ["sources", n, "relay", "enable"] => Some((m == Method::POST).then(|| Op::EnableRelay(n.to_string()))),
        ["sources", n, "relay", "disable"] => Some((m == Method::POST).then(|| Op::DisableRelay(n.to_string()))),
        ["sources", n, "relay", "purge"] => Some((m == Method::POST).then(|| Op::PurgeRelay(n.to_string()))),
        ["sources", n, "schemas"] => Some((m == Method::GET).then(|| Op::SourceSchemas(n.to_string()))),
        ["sources", n, "schemas", d] => {
            Some((m == Method::GET).then(|| Op::SourceTables(n.to_string(), d.to_string())))
        }
        ["tasks"] => Some(match m {
            Method::POST => Some(Op::CreateTask),
            Method::GET => Some(Op::ListTasks),
            _ => None,
        }),
        ["tasks", "converters"] => Some((m == Method::POST).then_some(Op::Convert)),
        ["tasks", "templates"] => Some(match m {
            Method::POST => Some(Op::CreateTemplate),
            Method::GET => Some(Op::ListTemplates),
            _ => None,
        }),
        ["tasks", "templates", "import"] => Some((m == Method::POST).then_some(Op::ImportTemplates)),
        ["tasks", "templates", n] => Some(match m {
            Method::GET => Some(Op::GetTemplate(n.to_string())),
            Method::PUT => Some(Op::UpdateTemplate(n.to_string())),
            Method::DELETE => Some(Op::DeleteTemplate(n.to_string())),
            _ => None,
        }),
        ["tasks", t] => Some(match m {
            Method::GET => Some(Op::GetTask(t.to_string())),
            Method::PUT => Some(Op::UpdateTask(t.to_string())),
            Method::DELETE => Some(Op::DeleteTask(t.to_string())),
            _ => None,
        }),
        ["tasks", t, "status"] => Some((m == Method::GET).then(|| Op::TaskStatus(t.to_string()))),
        ["tasks", t, "start"] => Some((m == Method::POST).then(|| Op::StartTask(t.to_string()))),
        ["tasks", t, "stop"] => Some((m == Method::POST).then(|| Op::StopTask(t.to_string()))),
        ["tasks", t, "sources", so, "migrate_targets"] => {
            Some((m == Method::GET).then(|| Op::MigrateTargets(t.to_string(), so.to_string())))
        }
        ["tasks", t, "sources", so, "schemas"] => {
            Some((m == Method::GET).then(|| Op::TaskSchemas(t.to_string(), so.to_string())))
        }
        ["tasks", t, "sources", so, "schemas", d] => {
            Some((m == Method::GET).then(|| Op::TaskTables(t.to_string(), so.to_string(), d.to_string())))
        }
        ["tasks", t, "sources", so, "schemas", d, tb] => {
            let a = (t.to_string(), so.to_string(), d.to_string(), tb.to_string());
            Some(match m {
                Method::GET => Some(Op::GetTable(a.0, a.1, a.2, a.3)),
                Method::PUT => Some(Op::PutTable(a.0, a.1, a.2, a.3)),
                Method::DELETE => Some(Op::DeleteTable(a.0, a.1, a.2, a.3)),
                _ => None,
            })
        }
        ["cluster", "info"] => Some(match m {
            Method::GET => Some(Op::ClusterInfo),
            Method::PUT => Some(Op::UpdateClusterInfo),
            _ => None,
        }),
        ["cluster", "masters"] => Some((m == Method::GET).then_some(Op::ListMasters)),
        ["cluster", "masters", n] => Some((m == Method::DELETE).then(|| Op::OfflineMaster(n.to_string()))),
        ["cluster", "workers"] => Some((m == Method::GET).then_some(Op::ListWorkers)),
        ["cluster", "workers", n] => Some((m == Method::DELETE).then(|| Op::OfflineWorker(n.to_string()))),
        _ => None,
    };
    match found {
        None => Err("no matching operation was found"),
        Some(None) => Err("method not allowed"),
        Some(Some(op)) => {
            // Empty path parameters do not match a route in gin either.
            if s.iter().any(|x| x.is_empty()) { Err("no matching operation was found") } else { Ok(op) }
        }
    }
}

/// The request body schema of an operation (`None`: no requestBody in the spec, nothing validated).
fn body_schema(op: &Op, g: Generation) -> Option<BodySchema> {
    Some(match op {
        Op::CreateSource => schema::create_source(),
        Op::UpdateSource(_) => schema::update_source(),
        Op::TransferSource(_) => schema::worker_name(),
        Op::EnableRelay(_) => schema::enable_relay(),
        Op::DisableRelay(_) => schema::disable_relay(),
        Op::PurgeRelay(_) => schema::purge_relay(),
        Op::CreateTask => schema::create_task(g),
        Op::UpdateTask(_) => schema::update_task(g),
        Op::StartTask(_) => schema::start_task(),
        Op::StopTask(_) => schema::stop_task(),
        Op::PutTable(..) => schema::table_structure(g),
        Op::Convert => schema::converter(g),
        Op::CreateTemplate => schema::template(g),
        Op::ImportTemplates => schema::template_import(),
        Op::UpdateClusterInfo => schema::cluster_topology(),
        _ => return None,
    })
}

fn is_json(ct: Option<&str>) -> bool {
    ct.and_then(|c| c.split(';').next()).is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// The validator, then gin's `c.Bind`. `Ok(None)` means "no body": the handler sees an empty struct.
fn read_body(bs: Option<&BodySchema>, ct: Option<&str>, body: &[u8], g: Generation) -> Result<Option<Value>, Response> {
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if let Some(bs) = bs {
        if blank {
            if bs.required {
                return Err(validation_error(
                    "error in openapi3filter.RequestError: request body has an error: value is required but missing",
                ));
            }
        } else if !is_json(ct) {
            return Err(validation_error(&format!(
                "error in openapi3filter.RequestError: request body has an error: header Content-Type has unexpected value {:?}",
                ct.unwrap_or("")
            )));
        } else {
            let mut v: Value = serde_json::from_slice(body).map_err(|err| {
                validation_error(&format!(
                    "error in openapi3filter.RequestError: request body has an error: failed to decode request body: {err}"
                ))
            })?;
            schema::validate(&mut v, bs, g).map_err(|m| validation_error(&m))?;
            return Ok(Some(v));
        }
    }
    // gin binding: JSON content type with an empty body fails with EOF; no content type binds an empty form.
    if blank {
        if is_json(ct) {
            return Err(json_response(400, &json!({"error_msg": "EOF", "error_code": 0})));
        }
        return Ok(None);
    }
    if is_json(ct) {
        return serde_json::from_slice(body)
            .map(Some)
            .map_err(|err| json_response(400, &json!({"error_msg": err.to_string(), "error_code": 0})));
    }
    Ok(None)
}

fn decode<T: DeserializeOwned + Default>(v: Option<Value>) -> Result<T, SimError> {
    match v {
        None => Ok(T::default()),
        Some(v) => serde_json::from_value(v).map_err(|err| SimError::new(0, err.to_string())),
    }
}

fn decode_req<T: DeserializeOwned>(v: Option<Value>) -> Result<T, SimError> {
    serde_json::from_value(v.unwrap_or_else(|| json!({}))).map_err(|err| SimError::new(0, err.to_string()))
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (pct_decode(&k.replace('+', " ")), pct_decode(&v.replace('+', " ")))
                })
                .collect(),
        )
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.0.iter().filter(|(x, _)| x == k).map(|(_, v)| v.clone()).collect()
    }
    fn bool(&self, k: &str) -> Result<bool, Response> {
        match self.get(k) {
            None => Ok(false),
            Some(v) => schema::parse_bool_param(k, v).map_err(|m| validation_error(&m)),
        }
    }
}

/// The scheduler's per-task latch an operation takes, with the step DM names in its 46024 answer.
fn latch_key(op: &Op, body: &Option<Value>) -> Option<(&'static str, String)> {
    let body_name = || body.as_ref().and_then(|b| b.get("task")).and_then(|t| t.get("name")).and_then(Value::as_str);
    match op {
        Op::CreateTask => body_name().map(|n| ("AddSubTasks", n.to_string())),
        Op::UpdateTask(_) => body_name().map(|n| ("UpdateSubTasks", n.to_string())),
        Op::DeleteTask(t) => Some(("RemoveMeta", t.clone())),
        Op::StartTask(t) | Op::StopTask(t) => Some(("UpdateExpectSubTaskStage", t.clone())),
        _ => None,
    }
}

struct Latch<'a> {
    sh: &'a Shared,
    key: String,
}

impl Drop for Latch<'_> {
    fn drop(&mut self) {
        self.sh.latches.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

fn try_latch<'a>(sh: &'a Shared, key: &str) -> Option<Latch<'a>> {
    let mut l = sh.latches.lock().unwrap_or_else(|p| p.into_inner());
    if l.insert(key.to_string()) { Some(Latch { sh, key: key.to_string() }) } else { None }
}

async fn api(sh: &Shared, method: &Method, path: &str, query: &str, ct: Option<&str>, body: &[u8]) -> Response {
    let latency = sh.knobs().latency;
    let g = sh.generation;
    // grpc-gateway's legacy API is mounted whether or not the OpenAPI is (docs/dm-behaviour.md §11).
    if path.starts_with("/apis/") {
        sleep(latency).await;
        let mut st = sh.state();
        st.advance(Instant::now());
        let (status, body) = super::legacy::serve(&mut st, method.as_str(), path, &Query::parse(query).0);
        drop(st);
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return r;
    }
    let op = match route(method, path) {
        Ok(op) => op,
        Err(msg) => {
            sleep(latency).await;
            return validation_error(msg);
        }
    };
    if let Op::Status = op {
        sleep(latency).await;
        let text = format!(
            "Release Version: {}\nGit Commit Hash: 0000000000000000000000000000000000000000\nGit Branch: dm-apply-simulator\nUTC Build Time: 2026-01-01 00:00:00\nGo Version: go1.23.0\nFailpoint Build: false\n",
            g.release_version()
        );
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response();
    }
    let q = Query::parse(query);
    // Query parameters the spec declares are validated like kin-openapi does.
    for k in ["with_status", "enable_relay", "force", "keep_meta"] {
        if k == "keep_meta" && !g.head() {
            continue; // unknown to the spec before HEAD: ignored
        }
        if let Err(r) = q.bool(k) {
            sleep(latency).await;
            return r;
        }
    }
    // `TaskStage` gained `Paused` in v26.3: `?stage=Paused` fails validation on v8.5 (docs/dm-behaviour.md §8, §15).
    let stages: &[&str] =
        if g.v26() { &["Stopped", "Running", "Finished", "Paused"] } else { &["Stopped", "Running", "Finished"] };
    if let (Op::ListTasks, Some(st)) = (&op, q.get("stage"))
        && !stages.contains(&st)
    {
        sleep(latency).await;
        let allowed = if g.injects_defaults() {
            let list: Vec<String> = stages.iter().map(|s| format!("{s:?}")).collect();
            format!(" [{}]", list.join(","))
        } else {
            String::new()
        };
        return validation_error(&format!(
            "error in openapi3filter.RequestError: parameter \"stage\" in query has an error: value {st}: value is not one of the allowed values{allowed}"
        ));
    }
    let bs = body_schema(&op, g);
    // Only handlers that call `c.Bind` look at the body at all; the others ignore whatever was sent.
    let binds = bs.is_some() || matches!(op, Op::UpdateTemplate(_));
    let body = match if binds { read_body(bs.as_ref(), ct, body, g) } else { Ok(None) } {
        Ok(b) => b,
        Err(r) => {
            sleep(latency).await;
            return r;
        }
    };
    let _latch = match latch_key(&op, &body) {
        Some((what, k)) => match try_latch(sh, &k) {
            Some(l) => Some(l),
            None => {
                sleep(latency).await;
                return handler_error(&e::latch(what, &k));
            }
        },
        None => None,
    };
    // The latch is held across the latency, as DM holds it across the whole operation.
    sleep(latency).await;
    let now = Instant::now();
    // OpenAPI reads change no subtask (see `State::advance`).
    let read = *method == Method::GET;
    let mut st = if read { sh.state_read() } else { sh.state() };
    if read {
        st.advance_for_read(now);
    } else {
        st.advance(now);
    }
    let with_status = q.bool("with_status").unwrap_or(false);
    let force = q.bool("force").unwrap_or(false);
    let r: R = match op {
        Op::Status => unreachable_status(),
        Op::Docs => {
            drop(st);
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<html><body>DM OpenAPI (dm-apply simulator)</body></html>",
            )
                .into_response();
        }
        Op::DmJson => Ok(Out::Json(
            200,
            json!({"openapi": "3.0.0", "info": {"title": "DM OpenAPI (dm-apply simulator)", "version": "1.0.0"}, "paths": {}}),
        )),
        Op::CreateSource => match decode_req::<CreateSourceRequest>(body.clone()) {
            Ok(req) => {
                let echo = bound::source_echo(&req.source);
                st.create_source(req, echo)
            }
            Err(err) => Err(err),
        },
        Op::ListSources => {
            let relay = q.get("enable_relay").map(|_| q.bool("enable_relay").unwrap_or(false));
            st.list_sources(with_status, relay)
        }
        Op::GetSource(n) => st.get_source(&n, with_status),
        Op::UpdateSource(n) => match decode_req::<UpdateSourceRequest>(body.clone()) {
            Ok(req) => {
                let echo = bound::source_echo(&req.source);
                st.update_source(&n, req, echo, now)
            }
            Err(err) => Err(err),
        },
        Op::DeleteSource(n) => st.delete_source(&n, force),
        Op::SourceStatus(n) => st.source_status(&n),
        Op::EnableSource(n) => st.enable_source(&n, now),
        Op::DisableSource(n) => st.disable_source(&n, now),
        Op::TransferSource(n) => match decode_req::<WorkerNameRequest>(body) {
            Ok(req) => st.transfer_source(&n, &req.worker_name, now),
            Err(err) => Err(err),
        },
        Op::EnableRelay(n) => match decode::<EnableRelayRequest>(body) {
            Ok(req) => st.enable_relay(&n, req),
            Err(err) => Err(err),
        },
        Op::DisableRelay(n) => match decode::<DisableRelayRequest>(body) {
            Ok(req) => st.disable_relay(&n, req),
            Err(err) => Err(err),
        },
        Op::PurgeRelay(n) => match decode_req::<PurgeRelayRequest>(body) {
            Ok(req) => st.purge_relay(&n, req),
            Err(err) => Err(err),
        },
        Op::SourceSchemas(n) => st.source_schemas(&n),
        Op::SourceTables(n, d) => st.source_tables(&n, &d),
        Op::CreateTask => match decode_req::<TaskRequest>(body) {
            Ok(req) => st.create_task(req.task),
            Err(err) => Err(err),
        },
        Op::ListTasks => {
            let stage = q.get("stage").map(str::to_string);
            st.list_tasks(with_status, stage.as_deref(), &q.all("source_name_list"))
        }
        Op::GetTask(t) => st.get_task(&t, with_status),
        // The path name is ignored: the body's task.name decides (docs/dm-behaviour.md §6).
        Op::UpdateTask(_) => match decode_req::<TaskRequest>(body) {
            Ok(req) => st.update_task(req.task),
            Err(err) => Err(err),
        },
        Op::DeleteTask(t) => {
            let keep = g.head() && q.bool("keep_meta").unwrap_or(false);
            st.delete_task(&t, force, keep)
        }
        // `source_name_list` is accepted and ignored here (docs/dm-behaviour.md §8).
        Op::TaskStatus(t) => st.task_status(&t),
        Op::StartTask(t) => match decode::<StartTaskRequest>(body) {
            Ok(req) => st.start_task(&t, req, now),
            Err(err) => Err(err),
        },
        Op::StopTask(t) => match decode::<StopTaskRequest>(body) {
            Ok(req) => st.stop_task(&t, req, now),
            Err(err) => Err(err),
        },
        Op::MigrateTargets(t, s) => st.migrate_targets(&t, &s, q.get("schema_pattern"), q.get("table_pattern")),
        Op::TaskSchemas(t, s) => st.task_schemas(&t, &s),
        Op::TaskTables(t, s, d) => st.task_tables(&t, &s, &d),
        Op::GetTable(t, s, d, tb) => st.get_table(&t, &s, &d, &tb),
        Op::PutTable(t, s, d, tb) => match decode::<OperateTableStructureRequest>(body) {
            // Before HEAD the handler dereferences `sync` and `flush` unchecked: a body lacking either (`sync` has
            // no spec default, `flush` is injected from v8.5.4) panics, and gin.Recovery answers 500 with an
            // empty body (docs/dm-behaviour.md §13).
            Ok(req) if !g.head() && (req.sync.is_none() || req.flush.is_none()) => {
                if st.bound_worker(&s).is_none() {
                    Err(e::worker_no_start())
                } else {
                    drop(st);
                    return empty(500);
                }
            }
            Ok(req) => st.put_table(&t, &s, &d, &tb, req),
            Err(err) => Err(err),
        },
        Op::DeleteTable(t, s, d, tb) => st.delete_table(&t, &s, &d, &tb),
        Op::Convert => st.convert(body.unwrap_or_else(|| json!({}))),
        Op::CreateTemplate => match decode_req::<Task>(body) {
            Ok(t) => st.create_template(t),
            Err(err) => Err(err),
        },
        Op::ListTemplates => st.list_templates(),
        Op::ImportTemplates => {
            let overwrite = body.as_ref().and_then(|b| b.get("overwrite")).and_then(Value::as_bool).unwrap_or(false);
            st.import_templates(overwrite)
        }
        Op::GetTemplate(n) => st.get_template(&n),
        // No requestBody in the spec, so nothing is validated or injected; the handler binds a Task anyway.
        Op::UpdateTemplate(_) => match decode_req::<Task>(body) {
            Ok(t) => st.update_template(t),
            Err(err) => Err(err),
        },
        Op::DeleteTemplate(n) => st.delete_template(&n),
        Op::ClusterInfo => st.cluster_info(),
        Op::UpdateClusterInfo => st.update_cluster_info(body.unwrap_or_else(|| json!({}))),
        Op::ListMasters => st.list_masters(),
        Op::OfflineMaster(n) => st.offline_master(&n),
        Op::ListWorkers => st.list_workers(),
        Op::OfflineWorker(n) => st.offline_worker(&n),
    };
    drop(st);
    render(r)
}

fn unreachable_status() -> R {
    Ok(Out::Empty(200))
}

// ---------------------------------------------------------------------------------------------------- /sim

fn ms(v: &Value, k: &str) -> Option<Duration> {
    v.get(k).and_then(Value::as_u64).map(Duration::from_millis)
}

async fn control(sh: &Arc<Shared>, method: &Method, path: &str, body: &[u8]) -> Response {
    let ctl = SimControl { shared: sh.clone() };
    let v: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(err) => return json_response(400, &json!({"error": format!("bad JSON: {err}")})),
        }
    };
    let segs: Vec<String> =
        path.trim_start_matches("/sim").split('/').filter(|s| !s.is_empty()).map(pct_decode).collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let ok = || json_response(200, &json!({"ok": true}));
    let bad = |m: String| json_response(400, &json!({"error": m}));
    match (method.clone(), s.as_slice()) {
        (Method::GET, ["requests"]) => json_response(200, &json!(ctl.request_log())),
        (Method::DELETE, ["requests"]) => {
            ctl.clear_log();
            ok()
        }
        (Method::GET, ["state"]) => json_response(200, &ctl.snapshot()),
        (Method::PUT, ["faults"]) => {
            let rate = v.get("rate").and_then(Value::as_f64).unwrap_or(0.0);
            let kinds = match v.get("kinds").and_then(Value::as_array) {
                None => FaultKind::all(),
                Some(a) => {
                    let mut out = vec![];
                    for k in a {
                        match k.as_str().and_then(FaultKind::parse) {
                            Some(f) => out.push(f),
                            None => return bad(format!("unknown fault kind {k} (use 5xx, reset, delay)")),
                        }
                    }
                    out
                }
            };
            ctl.set_faults(rate, kinds);
            if let Some(d) = ms(&v, "delay_ms") {
                ctl.set_fault_delay(d);
            }
            ok()
        }
        (Method::PUT, ["latency"]) => match ms(&v, "ms") {
            Some(d) => {
                ctl.set_latency(d);
                ok()
            }
            None => bad("body must be {\"ms\": N}".into()),
        },
        (Method::PUT, ["stage_delay"]) => match ms(&v, "ms") {
            Some(d) => {
                ctl.set_stage_delay(d);
                ok()
            }
            None => bad("body must be {\"ms\": N}".into()),
        },
        (Method::PUT | Method::POST, ["status_glitch"]) => {
            ctl.fail_next_status(v.get("count").and_then(Value::as_u64).unwrap_or(1).min(u32::MAX as u64) as u32);
            ok()
        }
        (Method::POST | Method::PUT, ["offline"]) => {
            ctl.set_offline(v.get("offline").and_then(Value::as_bool).unwrap_or(true));
            ok()
        }
        (Method::POST, ["tasks", t, "sources", so, "pause"]) => {
            let msg = v.get("error_msg").and_then(Value::as_str).unwrap_or("simulated error");
            ctl.pause_task_with_error(t, so, msg);
            ok()
        }
        (Method::PUT | Method::POST, ["workers", w, "offline"]) => {
            match ctl.set_worker_offline(w, v.get("offline").and_then(Value::as_bool).unwrap_or(true)) {
                Ok(()) => ok(),
                Err(m) => bad(m),
            }
        }
        (Method::PUT | Method::POST, ["workers", w, "relay-error"]) => {
            match ctl.set_relay_error(w, v.get("error_msg").and_then(Value::as_str)) {
                Ok(()) => ok(),
                Err(m) => bad(m),
            }
        }
        (Method::PUT | Method::POST, ["workers", w, "unreachable"]) => {
            match ctl.set_worker_unreachable(w, v.get("unreachable").and_then(Value::as_bool).unwrap_or(true)) {
                Ok(()) => ok(),
                Err(m) => bad(m),
            }
        }
        (Method::PATCH, ["sources", so]) => match ctl.patch_source(so, v) {
            Ok(()) => ok(),
            Err(m) => bad(m),
        },
        (Method::PATCH, ["tasks", t]) => match ctl.patch_task(t, v) {
            Ok(()) => ok(),
            Err(m) => bad(m),
        },
        (Method::PATCH, ["tasks", t, "sources", so]) => match ctl.patch_subtask(t, so, v) {
            Ok(()) => ok(),
            Err(m) => bad(m),
        },
        (Method::DELETE, ["tasks", t]) => {
            if ctl.remove_task(t) {
                ok()
            } else {
                bad(format!("no task {t}"))
            }
        }
        (Method::POST, ["dmctl", "tasks"]) => {
            let Some(yaml) = v.get("yaml").and_then(Value::as_str) else {
                return bad("body must be {\"yaml\": \"<dmctl task file>\", \"start\": true}".into());
            };
            let start = v.get("start").and_then(Value::as_bool).unwrap_or(true);
            match ctl.create_dmctl_task(yaml, start) {
                Ok(check) => json_response(201, &json!({"check_result": check})),
                Err(err) => handler_error(&err),
            }
        }
        (Method::PUT, ["sources", so, "binlog"]) => {
            let oldest = v.get("oldest_binlog").and_then(Value::as_str);
            let purged = v.get("purged_gtid").and_then(Value::as_str);
            match ctl.purge_binlogs(so, oldest, purged) {
                Ok(()) => ok(),
                Err(m) => bad(m),
            }
        }
        (Method::PUT, ["tasks", t, "sources", so, "shard_ddl"]) => match serde_json::from_value(v) {
            Ok(state) => match ctl.set_shard_ddl(t, so, state) {
                Ok(()) => ok(),
                Err(m) => bad(m),
            },
            Err(err) => bad(format!("body must be a shard DDL state: {err}")),
        },
        (Method::DELETE, ["tasks", t, "sources", so, "shard_ddl"]) => {
            match ctl.set_shard_ddl(t, so, Default::default()) {
                Ok(()) => ok(),
                Err(m) => bad(m),
            }
        }
        (Method::PUT | Method::POST, ["downstream", "accounts"]) => {
            let field = |k: &str| v.get(k).and_then(Value::as_str);
            match (field("host"), v.get("port").and_then(Value::as_u64), field("user"), field("password")) {
                (Some(h), Some(p), Some(u), Some(pw)) if p <= u16::MAX as u64 => {
                    ctl.register_downstream_account(h, p as u16, u, pw);
                    ok()
                }
                _ => bad("body must be {\"host\": H, \"port\": P, \"user\": U, \"password\": PW}".into()),
            }
        }
        (Method::PUT | Method::POST, ["downstream", "hosts"]) => match v.get("host").and_then(Value::as_str) {
            Some(h) => {
                ctl.add_hosts_entry(h);
                ok()
            }
            None => bad("body must be {\"host\": H}".into()),
        },
        (Method::DELETE, ["downstream", "accounts"]) => {
            ctl.clear_downstream_accounts();
            ok()
        }
        (Method::PUT, ["catalog", so]) => match serde_json::from_value(v) {
            Ok(c) => {
                ctl.set_catalog(so, c);
                ok()
            }
            Err(err) => bad(format!("body must be {{\"schema\": [\"table\", ...]}}: {err}")),
        },
        _ => json_response(404, &json!({"error": format!("no simulator control {method} {path}")})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route(&Method::GET, "/api/v1/tasks/templates"), Ok(Op::ListTemplates)));
        assert!(matches!(route(&Method::GET, "/api/v1/tasks/t%201"), Ok(Op::GetTask(t)) if t == "t 1"));
        assert_eq!(route(&Method::GET, "/api/v1/nope").unwrap_err(), "no matching operation was found");
        assert_eq!(route(&Method::PATCH, "/api/v1/sources").unwrap_err(), "method not allowed");
        assert!(matches!(route(&Method::DELETE, "/api/v1/tasks/a/sources/b/schemas/c/d"), Ok(Op::DeleteTable(..))));
    }
}
