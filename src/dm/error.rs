//! One typed error for everything that can go wrong talking to DM-master.
//!
//! DM answers errors in three shapes (semantics §1): `{error_msg, error_code}` from handlers (always HTTP 400),
//! `{error}` from the request validator and unknown routes, `{msg}` from parameter binding, plus a 404 with an empty
//! body for `GET /sources/{unknown}`. All of them become [`DmError::Api`] with the HTTP status, the DM error code
//! (when there is one) and the message.

use miette::Diagnostic;
use thiserror::Error;

/// DM error codes dm-apply acts on (semantics §10).
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

    /// DM-master answered with an error status.
    #[error("DM-master refused {method} {path}: HTTP {status}{}: {message}", code.map(|c| format!(", DM error {c}")).unwrap_or_default())]
    #[diagnostic(code(dm::api))]
    Api {
        method: String,
        path: String,
        status: u16,
        /// DM's `error_code`; `None` for the `{error}`/`{msg}` shapes and empty bodies.
        code: Option<i64>,
        message: String,
        #[help]
        hint: Option<String>,
    },

    /// A success status with a body dm-apply cannot read.
    #[error("DM-master sent an unreadable answer to {method} {path} (HTTP {status}): {detail}")]
    #[diagnostic(code(dm::decode), help("is --addr pointing at a DM-master with OpenAPI enabled?"))]
    Decode { method: String, path: String, status: u16, detail: String },

    /// The answer was larger than dm-apply accepts.
    #[error("DM-master's answer to {method} {path} exceeds the {limit} byte limit")]
    #[diagnostic(code(dm::too_large))]
    TooLarge { method: String, path: String, limit: usize },

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
            DmError::Api { status, .. } | DmError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn has_code(&self, code: i64) -> bool {
        self.code() == Some(code)
    }

    /// Worth retrying for an idempotent read: connection errors, timeouts, 5xx and DM's latch error (46024).
    pub fn is_transient(&self) -> bool {
        match self {
            DmError::Connect { .. } | DmError::Timeout { .. } => true,
            DmError::Api { status, code, .. } => *status >= 500 || *code == Some(codes::LATCH_IN_USE),
            DmError::Decode { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// After a mutating request failed this way, the change may or may not have landed: re-read to find out.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            DmError::Connect { maybe_sent, .. } => *maybe_sent,
            DmError::Timeout { .. } => true,
            DmError::Api { status, .. } | DmError::Decode { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
