//! A scripted HTTP/1.1 server for tests that need DM-master to misbehave in ways the simulator never does:
//! redirects, error bodies with a success status, plain-text 404 pages, HTML from a proxy, huge answers.
//!
//! Each request is read completely (headers and body), logged, and answered by a handler the test supplies; every
//! answer closes the connection. The server runs on its own thread with its own runtime, so it serves both
//! `#[tokio::test]` library tests and `#[test]`s that run the binary. It can serve https with a certificate
//! generated here (rcgen).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw answer.
#[derive(Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Arc<Vec<u8>>,
}

impl Resp {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Resp {
        Resp { status, headers: vec![("content-type".into(), content_type.into())], body: Arc::new(body.into()) }
    }

    pub fn json(status: u16, body: impl Into<String>) -> Resp {
        Resp::new(status, "application/json; charset=utf-8", body.into())
    }

    pub fn text(status: u16, body: &str) -> Resp {
        Resp::new(status, "text/plain; charset=utf-8", body)
    }

    /// No body and no content type (DM's answer to a GET of an unknown source).
    pub fn empty(status: u16) -> Resp {
        Resp { status, headers: vec![], body: Arc::new(vec![]) }
    }

    pub fn redirect(status: u16, location: &str) -> Resp {
        Resp { status, headers: vec![("location".into(), location.into())], body: Arc::new(vec![]) }
    }

    /// A shared (possibly huge) JSON body, built once.
    pub fn shared_json(body: Arc<Vec<u8>>) -> Resp {
        Resp { status: 200, headers: vec![("content-type".into(), "application/json".into())], body }
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

/// A running scripted server.
pub struct Fake {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub url: String,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Req>>>,
}

impl Fake {
    pub fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Fake {
        Self::start_inner(Arc::new(handler), None)
    }

    /// Serve https with this certificate chain and key (PEM).
    pub fn start_tls(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static, cert_pem: &str, key_pem: &str) -> Fake {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs: Vec<_> = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("private key");
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).expect("tls");
        Self::start_inner(Arc::new(handler), Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn start_inner(handler: Handler, tls: Option<tokio_rustls::TlsAcceptor>) -> Fake {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((sock, _)) = listener.accept().await else { return };
                    let (handler, log, tls) = (handler.clone(), log2.clone(), tls.clone());
                    tokio::spawn(async move {
                        match tls {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(sock).await {
                                    serve(stream, handler, log).await;
                                }
                            }
                            None => serve(sock, handler, log).await,
                        }
                    });
                }
            });
        });
        Fake { url, addr, log }
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, handler: Handler, log: Arc<Mutex<Vec<Req>>>) {
    let Some(req) = read_request(&mut sock).await else { return };
    let resp = handler(&req);
    log.lock().unwrap().push(req);
    let reason = match resp.status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Whatever",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", resp.body.len()));
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    for chunk in resp.body.chunks(1 << 16) {
        if sock.write_all(chunk).await.is_err() {
            return;
        }
    }
    let _ = sock.flush().await;
    let _ = sock.shutdown().await;
}

async fn read_request<S: AsyncRead + Unpin>(sock: &mut S) -> Option<Req> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(Req { method, path, query, headers, body })
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert PEM, key PEM).
pub fn self_signed() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

// ------------------------------------------------------------------------------------------------ an empty DM

/// What `GET /status` of DM-master v8.5.4 prints.
pub const STATUS_TEXT: &str = "Release Version: v8.5.4\nGit Commit Hash: 0000000\nGit Branch: HEAD\n\
UTC Build Time: 2025-01-01 00:00:00\nGo Version: go1.23\nFailpoint Build: false\n";

/// An empty DM-master v8.5.4 with OpenAPI on: answers every read dm-apply makes, accepts creates (echoing them), and
/// answers anything else with a 500 so a test notices an unexpected request.
pub fn empty_dm(req: &Req) -> Resp {
    let m = req.method.as_str();
    let p = req.path.as_str();
    match (m, p) {
        ("GET", "/status") => Resp::text(200, STATUS_TEXT),
        ("GET", "/api/v1/cluster/info") => Resp::json(200, r#"{"cluster_id": 7}"#),
        ("GET", "/api/v1/sources" | "/api/v1/tasks" | "/api/v1/tasks/templates") => {
            Resp::json(200, "{\n  \"total\": 0,\n  \"data\": []\n}")
        }
        ("GET", "/api/v1/cluster/workers") => Resp::json(
            200,
            r#"{"total":1,"data":[{"name":"worker1","addr":"127.0.0.1:8262","bound_stage":"free","bound_source_name":""}]}"#,
        ),
        ("GET", _) if p.starts_with("/api/v1/tasks/templates/") => Resp::json(
            400,
            r#"{"error_msg":"[code=20051:class=functional:scope=internal:level=high], Message: task template not exist","error_code":20051}"#,
        ),
        ("GET", _) if p.starts_with("/api/v1/sources/") => Resp::empty(404),
        ("GET", _) if p.starts_with("/api/v1/tasks/") => Resp::json(
            400,
            r#"{"error_msg":"[code=46018:class=scheduler:scope=internal:level=medium], Message: task t not exist","error_code":46018}"#,
        ),
        ("POST", "/api/v1/sources") => {
            // Echo the source the way DM does (`security: null`, password kept).
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            Resp::json(201, v["source"].to_string())
        }
        ("POST", "/api/v1/tasks/templates") => Resp::json(201, req.body_text()),
        _ => Resp::json(500, r#"{"error":"unexpected request in this test"}"#),
    }
}
