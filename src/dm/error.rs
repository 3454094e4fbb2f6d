//! One typed error for everything that can go wrong talking to DM-master.
//!
//! DM answers errors in three shapes (docs/dm-behaviour.md §2): `{error_msg, error_code}` from handlers (always HTTP 400),
//! `{error}` from the request validator and unknown routes, `{msg}` from parameter binding, plus a 404 with an empty
//! body for `GET /sources/{unknown}`. All of them become [`DmError::Api`] with the HTTP status, the DM error code
//! (when there is one) and the message. Answers that are not DM-master's (redirects, the plain-text 404 page of a
//! DM-master without OpenAPI, HTML, wrong shapes, oversized answers) have their own variants
//! (docs/dm-behaviour.md §2). Every text taken from an answer is bounded, free of control characters, and free of
//! the secrets sent in the request.

use miette::Diagnostic;
use thiserror::Error;

/// DM error codes dm-apply acts on (docs/dm-behaviour.md §14).
pub mod codes {
    pub const SOURCE_EXISTS: i64 = 46007;
    pub const SOURCE_NOT_EXIST: i64 = 46008;
    pub const SOURCES_UNBOUND: i64 = 46009;
    pub const SOURCE_HAS_TASKS: i64 = 46010;
    pub const TASK_EXISTS: i64 = 46014;
    pub const TASK_NOT_EXIST: i64 = 46018;
    pub const SOURCE_RELAY_EXISTS: i64 = 46023;
    pub const LATCH_IN_USE: i64 = 46024;
    pub const SOURCE_CFG_UPDATE: i64 = 46025;
    pub const SUBTASK_NOT_EXIST: i64 = 46034;
    pub const SUBTASK_CFG_UPDATE: i64 = 46035;
    pub const WORKER_NO_START: i64 = 40070;
    pub const START_ON_DISABLED_SOURCE: i64 = 38058;
    pub const METADATA_NOT_SET: i64 = 20022;
    pub const OPENAPI_COMMON: i64 = 49001;
    pub const TEMPLATE_EXISTS: i64 = 20050;
    pub const TEMPLATE_NOT_EXIST: i64 = 20051;
}

/// How to turn DM-master's OpenAPI on (shown whenever it is off).
pub const OPENAPI_HOWTO: &str = "turn it on with `openapi = true` in the DM-master configuration file (with TiUP: \
`server_configs: master: openapi: true`, set with `tiup dm edit-config`), then restart DM-master (with TiUP: \
`tiup dm reload`)";

#[derive(Debug, Error, Diagnostic)]
pub enum DmError {
    /// The connection could not be made or broke before an answer arrived.
    #[error("cannot reach DM-master at {addr} ({method} {path}): {detail}")]
    #[diagnostic(
        code(dm::connect),
        help("check --addr / DM_APPLY_ADDR, that DM-master is running, and the network path to it")
    )]
    Connect {
        addr: String,
        method: String,
        path: String,
        detail: String,
        /// True when the request may have reached the server (the connection broke after sending).
        maybe_sent: bool,
    },

    /// The TLS handshake failed: DM-master's certificate was not trusted (unknown CA, wrong host name, expired),
    /// or DM-master refused ours. Nothing was sent, and repeating it would fail the same way.
    #[error("TLS connection to DM-master at {addr} refused ({method} {path}): {detail}")]
    #[diagnostic(
        code(dm::tls),
        help(
            "pass --cacert FILE with the CA that signed DM-master's certificate, and use a host name in --addr that \
             the certificate names; for mutual TLS pass --cert and --key. (--insecure-skip-tls-verify turns \
             verification off; never use it in production.)"
        )
    )]
    Tls { addr: String, method: String, path: String, detail: String },

    #[error("DM-master did not answer {method} {path} within {timeout_ms} ms")]
    #[diagnostic(code(dm::timeout), help("raise --request-timeout, or check DM-master's health"))]
    Timeout { method: String, path: String, timeout_ms: u64 },

    /// DM-master answered with an error status, or with one of its error shapes under a success status.
    #[error("DM-master refused {method} {path}: HTTP {status}{}: {message}", code.map(|c| format!(", DM error {c}")).unwrap_or_default())]
    #[diagnostic(code(dm::api))]
    Api {
        method: String,
        path: String,
        status: u16,
        /// DM's `error_code`; `None` for the `{error}`/`{msg}` shapes and empty bodies.
        code: Option<i64>,
        /// Bounded, without control characters, and without any secret of the request.
        message: String,
        #[help]
        hint: Option<String>,
        /// A 404 with an empty body: DM's answer to a GET of a single resource that does not exist.
        absent: bool,
    },

    /// A redirect. dm-apply never follows one: the request (with any password in it) would go to another address.
    #[error(
        "DM-master's address {addr} answered {method} {path} with a redirect (HTTP {status}) to {location}; \
         dm-apply does not follow redirects and sent nothing there: point --addr at DM-master directly"
    )]
    #[diagnostic(
        code(dm::redirect),
        help(
            "point --addr (DM_APPLY_ADDR) at DM-master itself (its OpenAPI port, 8261 by default) rather than at a \
             proxy or load balancer that redirects; if the redirect is from http to https, use the https address"
        )
    )]
    Redirect {
        addr: String,
        method: String,
        path: String,
        status: u16,
        /// Where the server pointed, without credentials or query (or `(no Location header)`).
        location: String,
    },

    /// `/api/v1` is not served: DM-master runs without `openapi = true` (every path is a plain-text 404 page).
    #[error(
        "the DM-master at {addr} does not serve the OpenAPI: {method} {path} answered HTTP 404 `404 page not found`"
    )]
    #[diagnostic(code(dm::openapi_off), help("{}", OPENAPI_HOWTO))]
    OpenApiOff { addr: String, method: String, path: String },

    /// Something answered that is not DM-master's API (a proxy's or web server's page, a 404 page for `/status`).
    #[error("the server at {addr} answered with {what} (HTTP {status}) to {method} {path}, not DM-master's API")]
    #[diagnostic(
        code(dm::not_dm),
        help(
            "check that --addr (DM_APPLY_ADDR) points at DM-master's OpenAPI port (8261 by default), not at a proxy \
             or another service, and that nothing in between rewrites the answers"
        )
    )]
    NotDm { addr: String, method: String, path: String, status: u16, what: String },

    /// A success status with a body that is not what DM-master sends for this request.
    #[error("DM-master's answer to {method} {path} (HTTP {status}) is not {expected}: {detail}")]
    #[diagnostic(
        code(dm::decode),
        help("is --addr pointing at DM-master itself (with OpenAPI enabled), and is it a supported version?")
    )]
    Decode { method: String, path: String, status: u16, expected: &'static str, detail: String },

    /// The answer was larger (bytes, list items, objects, nesting) than dm-apply accepts.
    #[error("DM-master's answer to {method} {path} is too large: {detail}")]
    #[diagnostic(
        code(dm::too_large),
        help(
            "dm-apply refuses answers over its limits (docs/safety.md, \"Hostile input\") so that a broken or \
             hostile server cannot exhaust memory; check that --addr points at DM-master"
        )
    )]
    TooLarge { method: String, path: String, detail: String },

    /// A connection option is wrong (bad URL, unreadable certificate...).
    #[error("{0}")]
    #[diagnostic(code(dm::options))]
    Options(String),
}

impl DmError {
    /// DM's error code, if the server sent one.
    pub fn code(&self) -> Option<i64> {
        match self {
            DmError::Api { code, .. } => *code,
            _ => None,
        }
    }

    /// HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DmError::Api { status, .. }
            | DmError::Decode { status, .. }
            | DmError::Redirect { status, .. }
            | DmError::NotDm { status, .. } => Some(*status),
            DmError::OpenApiOff { .. } => Some(404),
            _ => None,
        }
    }

    pub fn has_code(&self, code: i64) -> bool {
        self.code() == Some(code)
    }

    /// DM's way of saying "no such resource" for a single-resource GET: a 404 with an empty body. A 404 page (the
    /// OpenAPI switched off, a proxy) is not.
    pub fn is_absent(&self) -> bool {
        matches!(self, DmError::Api { absent: true, .. })
    }

    /// Worth retrying for an idempotent read: connection errors, timeouts, 5xx and DM's latch error (46024).
    pub fn is_transient(&self) -> bool {
        match self {
            DmError::Connect { .. } | DmError::Timeout { .. } => true,
            DmError::Api { status, code, .. } => *status >= 500 || *code == Some(codes::LATCH_IN_USE),
            DmError::Decode { status, .. } | DmError::NotDm { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// After a mutating request failed this way, the change may or may not have landed: re-read to find out.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            DmError::Connect { maybe_sent, .. } => *maybe_sent,
            DmError::Timeout { .. } => true,
            DmError::Api { status, .. } | DmError::Decode { status, .. } | DmError::NotDm { status, .. } => {
                *status >= 500
            }
            _ => false,
        }
    }
}
