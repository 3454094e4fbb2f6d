//! A misbehaving server (truncated JSON, wrong types, huge or endless bodies, unexpected status codes, a server
//! that never answers) gets a clear, typed error from the client and never a panic or a hang.

use std::time::Duration;

use dm_apply::dm::{ClientOptions, DmClient, DmError, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a fake server answers every connection.
#[derive(Clone)]
enum Behaviour {
    /// A complete raw HTTP response.
    Raw(String),
    /// Headers, then an endless chunked body of `x`.
    Endless,
    /// Headers, then one byte per 100 ms forever.
    Trickle,
    /// Accept and never answer.
    Silent,
}

async fn server(b: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let b = b.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = sock.read(&mut buf).await;
                match b {
                    Behaviour::Raw(r) => {
                        let _ = sock.write_all(r.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    }
                    Behaviour::Endless => {
                        let head =
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                        if sock.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = format!("{:x}\r\n{}\r\n", 1 << 20, "x".repeat(1 << 20));
                        while sock.write_all(chunk.as_bytes()).await.is_ok() {}
                    }
                    Behaviour::Trickle => {
                        let head =
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n[";
                        if sock.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        loop {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            if sock.write_all(b" ").await.is_err() {
                                return;
                            }
                        }
                    }
                    Behaviour::Silent => tokio::time::sleep(Duration::from_secs(3600)).await,
                }
            });
        }
    });
    addr
}

fn raw(status: &str, content_type: &str, body: &str) -> Behaviour {
    Behaviour::Raw(format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

fn client(addr: &str) -> DmClient {
    let mut o = ClientOptions::new(addr);
    o.request_timeout = Duration::from_millis(400);
    o.retry = RetryPolicy::none();
    DmClient::new(&o).unwrap()
}

#[tokio::test]
async fn truncated_json_is_a_decode_error() {
    let addr = server(raw("200 OK", "application/json", r#"{"total":1,"data":[{"source_name":"a""#)).await;
    let e = client(&addr).list_sources(false, None).await.unwrap_err();
    assert!(matches!(e, DmError::Decode { status: 200, .. }), "{e:?}");
    assert!(e.to_string().contains("is not a source list: the answer ends too early"), "{e}");
}

#[tokio::test]
async fn wrong_types_are_a_decode_error() {
    let addr = server(raw("200 OK", "application/json", r#"{"total":"x","data":[{"source_name":7}]}"#)).await;
    let e = client(&addr).list_sources(false, None).await.unwrap_err();
    assert!(matches!(e, DmError::Decode { .. }), "{e:?}");
}

#[tokio::test]
async fn html_instead_of_json_is_not_dm_master() {
    let addr = server(raw("200 OK", "text/html", "<html>proxy login</html>")).await;
    let e = client(&addr).list_tasks(false, None, &[]).await.unwrap_err();
    assert!(matches!(e, DmError::NotDm { status: 200, .. }), "{e:?}");
    assert!(!e.to_string().contains("proxy login"), "{e}");
    // Without a content type too.
    let addr = server(raw("502 Bad Gateway", "application/octet-stream", "\n <!DOCTYPE html><p>down</p>")).await;
    let e = client(&addr).list_tasks(false, None, &[]).await.unwrap_err();
    assert!(matches!(e, DmError::NotDm { status: 502, .. }), "{e:?}");
    assert!(e.is_transient(), "a proxy's 502 page is worth retrying a read: {e:?}");
}

#[tokio::test]
async fn unexpected_status_codes_keep_status_and_text() {
    let addr = server(raw("418 I'm a teapot", "text/plain", "short and stout")).await;
    let e = client(&addr).list_sources(false, None).await.unwrap_err();
    assert_eq!(e.status(), Some(418));
    assert!(e.to_string().contains("short and stout"), "{e}");

    let addr = server(raw("502 Bad Gateway", "text/plain", "")).await;
    let e = client(&addr).get_task("t", false).await.unwrap_err();
    assert_eq!(e.status(), Some(502));
    assert!(e.is_transient());
}

#[tokio::test]
async fn endless_body_hits_the_size_limit() {
    let addr = server(Behaviour::Endless).await;
    let mut o = ClientOptions::new(&addr);
    o.request_timeout = Duration::from_secs(20);
    o.retry = RetryPolicy::none();
    let e = DmClient::new(&o).unwrap().list_sources(false, None).await.unwrap_err();
    assert!(matches!(e, DmError::TooLarge { .. }), "{e:?}");
}

#[tokio::test]
async fn trickling_body_times_out() {
    let addr = server(Behaviour::Trickle).await;
    let e = client(&addr).list_sources(false, None).await.unwrap_err();
    assert!(matches!(e, DmError::Timeout { timeout_ms: 400, .. }), "{e:?}");
}

#[tokio::test]
async fn silent_server_times_out() {
    let addr = server(Behaviour::Silent).await;
    let e = client(&addr).list_sources(false, None).await.unwrap_err();
    assert!(matches!(e, DmError::Timeout { .. }), "{e:?}");
    assert!(e.is_transient() && e.is_ambiguous());
}

#[tokio::test]
async fn refused_connection_is_a_connect_error_that_was_not_sent() {
    // Bind then drop, so nothing listens on the port.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let e = client(&format!("http://127.0.0.1:{port}")).create_task(&Default::default()).await.unwrap_err();
    assert!(matches!(e, DmError::Connect { maybe_sent: false, .. }), "{e:?}");
    assert!(!e.is_ambiguous());
    assert!(e.to_string().contains("cannot reach DM-master"), "{e}");
}

#[test]
fn bad_addresses_are_option_errors() {
    for addr in ["not a url", "ftp://x:21", ""] {
        let e = DmClient::new(&ClientOptions::new(addr)).unwrap_err();
        assert!(matches!(e, DmError::Options(_)), "{addr}: {e:?}");
    }
}

#[test]
fn unreadable_tls_files_are_option_errors() {
    let mut o = ClientOptions::new("https://127.0.0.1:1");
    o.cacert = Some("/nonexistent/ca.pem".into());
    let e = DmClient::new(&o).unwrap_err();
    assert!(e.to_string().contains("--cacert /nonexistent/ca.pem"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let mut o = ClientOptions::new("https://127.0.0.1:1");
    o.cacert = Some(junk.clone());
    assert!(matches!(DmClient::new(&o).unwrap_err(), DmError::Options(_)));

    let key = dir.path().join("key.pem");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n")
        .unwrap();
    let mut o = ClientOptions::new("https://127.0.0.1:1");
    o.cert = Some(junk);
    o.key = Some(key);
    let e = DmClient::new(&o).unwrap_err();
    assert!(!e.to_string().contains("c2VjcmV0"), "key material leaked: {e}");
}

// ================================================================================================================
// Through the binary, against a scripted server (tests/security/hostile.rs): redirects, answers that are not DM's
// shapes, OpenAPI switched off, HTML from a proxy, huge answers, credentials in --addr, secrets echoed back.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use crate::hostile::{Fake, Req, Resp, empty_dm};

const SRC_PW: &str = "planted-hostile-src-pw-5e5e5e";
const ADDR_PW: &str = "planted-addr-pw-0a0a0a";
const ADDR_USER: &str = "planted-addr-user";

const CONFIG: &str = r#"sources:
  - source_name: mysql-a
    host: a.db.internal
    port: 3306
    user: dm
    password: ${env:HOSTILE_SRC_PW}
    enable_gtid: false
    enable: true
"#;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn dm_apply(args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(args)
        .env_remove("DM_APPLY_ADDR")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("HOSTILE_SRC_PW", SRC_PW)
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    // miette wraps long messages in a box (`\n  | `): undo that so tests can look for phrases.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.lines().map(|l| l.trim_start().trim_start_matches("| ").trim()).collect::<Vec<_>>().join(" ");
    Run { code: out.status.code(), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr }
}

/// A temporary directory holding the one-source configuration.
fn config_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dm.yaml");
    std::fs::write(&path, CONFIG).unwrap();
    let p = path.display().to_string();
    (dir, p)
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// `empty_dm`, except for one route.
fn with_route(
    method: &'static str,
    path: &'static str,
    answer: impl Fn(&Req) -> Resp + Send + Sync + 'static,
) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    move |r: &Req| if r.method == method && r.path == path { answer(r) } else { empty_dm(r) }
}

fn assert_no_secret(run: &Run, what: &str) {
    for s in [SRC_PW, ADDR_PW, ADDR_USER] {
        assert!(!run.all().contains(s), "{what}: `{s}` leaked:\n{}", run.all());
    }
}

// ------------------------------------------------------------------------------------------------ redirects

/// Where a redirect points: a second listener that must never receive anything.
fn elsewhere() -> Fake {
    Fake::start(|r| {
        if r.method == "POST" { Resp::json(201, r.body_text()) } else { Resp::json(200, r#"{"total":0,"data":[]}"#) }
    })
}

fn assert_redirect_refused(run: &Run, thief: &Fake, status: &str) {
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(thief.count(), 0, "the redirect was followed: {:?}", thief.requests());
    assert!(run.stderr.contains(status), "status not named:\n{}", run.stderr);
    assert!(run.stderr.contains(&thief.addr.to_string()), "Location not named:\n{}", run.stderr);
    assert!(run.stderr.contains("--addr"), "no advice:\n{}", run.stderr);
    assert!(!run.all().contains("stolen-creds"), "credentials in the Location leaked:\n{}", run.all());
    assert_no_secret(run, "redirect");
}

#[test]
fn a_redirect_of_a_create_with_a_password_is_not_followed() {
    let thief = elsewhere();
    let location = format!("http://mallory:stolen-creds@{}/api/v1/sources", thief.addr);
    let dm = Fake::start(with_route("POST", "/api/v1/sources", move |_| Resp::redirect(307, &location)));
    let (_dir, cfg) = config_dir();
    let run = dm_apply(&["apply", "-f", &cfg, "--auto-approve", "--addr", &dm.url]);
    assert_redirect_refused(&run, &thief, "307");
    // The password went to DM-master (the address given), once, and nowhere else.
    let posts: Vec<Req> =
        dm.requests().into_iter().filter(|r| r.method == "POST" && r.path == "/api/v1/sources").collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts[0].body_text().contains(SRC_PW));
}

#[test]
fn a_redirect_from_https_to_http_is_not_followed() {
    let thief = elsewhere();
    let location = format!("http://{}/api/v1/sources", thief.addr);
    let (cert, key) = crate::hostile::self_signed();
    let dm =
        Fake::start_tls(with_route("POST", "/api/v1/sources", move |_| Resp::redirect(308, &location)), &cert, &key);
    let (dir, cfg) = config_dir();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();
    let run = dm_apply(&["apply", "-f", &cfg, "--auto-approve", "--addr", &dm.url, "--cacert", &path_str(&ca)]);
    assert_redirect_refused(&run, &thief, "308");
}

#[test]
fn a_redirect_of_a_read_is_not_followed() {
    let thief = elsewhere();
    let location = format!("http://{}/api/v1/sources", thief.addr);
    let dm = Fake::start(with_route("GET", "/api/v1/sources", move |_| Resp::redirect(301, &location)));
    let (_dir, cfg) = config_dir();
    for cmd in ["plan", "drift"] {
        let run = dm_apply(&[cmd, "-f", &cfg, "--addr", &dm.url]);
        assert_redirect_refused(&run, &thief, "301");
    }
}

// ------------------------------------------------------------------------------------------------ answer shapes

#[test]
fn a_list_with_null_data_is_an_error_not_an_empty_cluster() {
    for (path, body) in [
        ("/api/v1/sources", r#"{"total":0,"data":null}"#),
        ("/api/v1/sources", r#"{"total":3,"data":[]}"#),
        ("/api/v1/sources", r#"{"data":[]}"#),
        ("/api/v1/sources", "[]"),
        ("/api/v1/sources", "[0, []]"),
        ("/api/v1/sources", "null"),
        ("/api/v1/tasks", r#"{"total":0,"data":null}"#),
    ] {
        let dm = Fake::start(with_route("GET", path, move |_| Resp::json(200, body)));
        let (dir, cfg) = config_dir();
        let what = if path.ends_with("sources") { "is not a source list" } else { "is not a task list" };
        for cmd in ["plan", "drift"] {
            let run = dm_apply(&[cmd, "-f", &cfg, "--addr", &dm.url]);
            assert_eq!(run.code, Some(1), "{cmd} on {body}: {}", run.all());
            assert!(run.stderr.contains(what), "{cmd} on {body}:\n{}", run.stderr);
        }
        let out = dir.path().join("imported.yaml");
        let run = dm_apply(&["import", "--addr", &dm.url, "-o", &path_str(&out)]);
        assert_eq!(run.code, Some(1), "import on {body}: {}", run.all());
        assert!(!out.exists(), "import wrote a file from {body}");
    }
}

#[test]
fn an_error_body_with_a_success_status_is_dms_error() {
    for (body, needles) in [
        (
            r#"{"error_msg":"[code=38032:class=dm-master:scope=internal:level=high], Message: etcd is unavailable","error_code":38032}"#,
            &["38032", "etcd is unavailable"][..],
        ),
        (r#"{"error":"request body has an error: doesn't match schema"}"#, &["doesn't match schema"][..]),
    ] {
        let dm = Fake::start(with_route("GET", "/api/v1/sources", move |_| Resp::json(200, body)));
        let (_dir, cfg) = config_dir();
        for cmd in ["plan", "drift"] {
            let run = dm_apply(&[cmd, "-f", &cfg, "--addr", &dm.url]);
            assert_eq!(run.code, Some(1), "{cmd}: {}", run.all());
            for n in needles {
                assert!(run.stderr.contains(n), "{cmd}: `{n}` missing:\n{}", run.stderr);
            }
            assert!(!run.stderr.contains("unreadable"), "{cmd}:\n{}", run.stderr);
        }
    }
}

#[test]
fn openapi_switched_off_says_how_to_turn_it_on() {
    // DM-master without `openapi = true`: /status works, every /api/v1 path is Go's plain-text 404 page.
    let dm = Fake::start(|r| {
        if r.path == "/status" {
            Resp::text(200, crate::hostile::STATUS_TEXT)
        } else {
            Resp::text(404, "404 page not found\n")
        }
    });
    let (dir, cfg) = config_dir();
    let out = dir.path().join("imported.yaml");
    for args in [
        vec!["plan", "-f", &cfg, "--addr", &dm.url],
        vec!["drift", "-f", &cfg, "--addr", &dm.url],
        vec!["apply", "-f", &cfg, "--auto-approve", "--addr", &dm.url],
        vec!["import", "--addr", &dm.url, "-o", out.to_str().unwrap()],
    ] {
        let run = dm_apply(&args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.all());
        for n in ["does not serve the OpenAPI", "openapi = true", "server_configs", "restart DM-master"] {
            assert!(run.stderr.contains(n), "{args:?}: `{n}` missing:\n{}", run.stderr);
        }
    }
    assert!(!out.exists());
    assert!(!dm.requests().iter().any(|r| r.method != "GET"), "something was written");
}

#[test]
fn an_html_page_is_not_dm_master() {
    const PAGE: &str =
        "<!DOCTYPE html>\n<html><head><title>Corporate SSO</title></head><body>Please sign in</body></html>";
    for status in [200, 502] {
        let dm = Fake::start(move |_| Resp::new(status, "text/html; charset=utf-8", PAGE));
        let (_dir, cfg) = config_dir();
        for cmd in ["plan", "drift"] {
            let run = dm_apply(&[cmd, "-f", &cfg, "--addr", &dm.url]);
            assert_eq!(run.code, Some(1), "{cmd}: {}", run.all());
            assert!(run.stderr.contains("answered with an HTML page"), "{cmd}:\n{}", run.stderr);
            assert!(run.stderr.contains("not DM-master's API"), "{cmd}:\n{}", run.stderr);
            assert!(!run.stderr.contains("<html") && !run.stderr.contains("sign in"), "{cmd}:\n{}", run.stderr);
        }
    }
}

#[test]
fn server_messages_are_bounded_and_free_of_control_characters() {
    let message = format!("\u{1b}[2J\u{1b}[31mforged\rApply complete!\n{}", "x".repeat(200_000));
    let body = serde_json::json!({"error_msg": message, "error_code": 46001}).to_string();
    let dm = Fake::start(with_route("GET", "/api/v1/sources", move |_| Resp::json(400, body.clone())));
    let (_dir, cfg) = config_dir();
    let run = dm_apply(&["plan", "-f", &cfg, "--addr", &dm.url]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains("forged"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}') && !run.stderr.contains('\r'), "control characters:\n{:?}", run.stderr);
    assert!(run.stderr.len() < 20_000, "unbounded message: {} bytes", run.stderr.len());
}

// ------------------------------------------------------------------------------------------------ size

/// About 60 MiB of tiny sources with distinct names, about a million of them.
fn tiny_sources() -> Arc<Vec<u8>> {
    let item = |i: usize| format!(r#"{{"source_name":"s{i}","host":"h","port":1,"user":"u"}}"#);
    let mut body = Vec::with_capacity((60 << 20) + 64);
    let mut items = Vec::new();
    let mut n = 0;
    while items.len() < 60 << 20 {
        if n > 0 {
            items.push(b',');
        }
        items.extend_from_slice(item(n).as_bytes());
        n += 1;
    }
    body.extend_from_slice(format!("{{\"total\":{n},\"data\":[").as_bytes());
    body.extend_from_slice(&items);
    body.extend_from_slice(b"]}");
    Arc::new(body)
}

#[test]
fn a_60_mib_answer_of_tiny_objects_is_refused() {
    let body = tiny_sources();
    let dm = Fake::start(with_route("GET", "/api/v1/sources", move |_| Resp::shared_json(body.clone())));
    let (dir, cfg) = config_dir();
    let run = dm_apply(&["plan", "-f", &cfg, "--addr", &dm.url]);
    assert_eq!(run.code, Some(1), "{}", &run.all()[..run.all().len().min(2000)]);
    assert!(run.stderr.contains("100000 items"), "{}", run.stderr);
    let out = dir.path().join("imported.yaml");
    let run = dm_apply(&["import", "--addr", &dm.url, "-o", &path_str(&out)]);
    assert_eq!(run.code, Some(1), "{}", &run.all()[..run.all().len().min(2000)]);
    assert!(run.stderr.contains("100000 items"), "{}", run.stderr);
    assert!(!out.exists(), "import wrote {} bytes", std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0));
}

// ------------------------------------------------------------------------------------------------ flags

#[test]
fn a_zero_request_timeout_is_refused_before_any_request() {
    let dm = Fake::start(empty_dm);
    let (_dir, cfg) = config_dir();
    for t in ["0s", "0", "0ms"] {
        let run = dm_apply(&["plan", "-f", &cfg, "--addr", &dm.url, "--request-timeout", t]);
        // A usage error: clap's exit code (2) becomes 1 where the CLI layer maps usage errors; never 0.
        assert_eq!(run.code, Some(1), "{t}: {:?}\n{}", run.code, run.all());
        assert!(run.stderr.contains("--request-timeout"), "{t}:\n{}", run.stderr);
        assert!(run.stderr.contains("greater than zero"), "{t}:\n{}", run.stderr);
    }
    assert_eq!(dm.count(), 0, "requests were sent: {:?}", dm.requests());
}

#[test]
fn credentials_in_addr_never_appear_in_output_json_or_saved_plans() {
    let dm = Fake::start(empty_dm);
    let (dir, cfg) = config_dir();
    let with_creds = |url: &str| url.replacen("://", &format!("://{ADDR_USER}:{ADDR_PW}@"), 1);
    let addr = with_creds(&dm.url);
    let saved = dir.path().join("plan.json");
    let imported = dir.path().join("imported.yaml");
    let prom = dir.path().join("dm.prom");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refused = with_creds(&format!("http://127.0.0.1:{port}"));
    let off = Fake::start(|r| {
        if r.path == "/status" {
            Resp::text(200, crate::hostile::STATUS_TEXT)
        } else {
            Resp::text(404, "404 page not found\n")
        }
    });
    let off_addr = with_creds(&off.url);
    let runs = [
        vec!["plan", "-f", &cfg, "--addr", &addr],
        vec!["plan", "-f", &cfg, "--addr", &addr, "-o", "json", "--out", saved.to_str().unwrap()],
        vec!["plan", "-f", &cfg, "--addr", &addr, "-o", "markdown"],
        vec!["drift", "-f", &cfg, "--addr", &addr, "-o", "json", "--prometheus-textfile", prom.to_str().unwrap()],
        vec!["drift", "-f", &cfg, "--addr", &addr],
        vec!["import", "--addr", &addr, "-o", imported.to_str().unwrap()],
        vec!["import", "--addr", &addr],
        vec!["plan", "-f", &cfg, "--addr", &refused, "--request-timeout", "2s"],
        vec!["plan", "-f", &cfg, "--addr", &off_addr, "-vv"],
        vec!["plan", "-f", &cfg, "--addr", "http://u:planted-addr-pw-0a0a0a@[not a url", "-vv"],
    ];
    for args in &runs {
        let run = dm_apply(args);
        assert_no_secret(&run, &format!("{args:?}"));
    }
    // The address is still shown, with the credentials replaced.
    let run = dm_apply(&["plan", "-f", &cfg, "--addr", &addr, "-o", "json"]);
    assert!(run.stdout.contains(&format!("http://***@{}", dm.addr)), "{}", run.stdout);
    let run = dm_apply(&["plan", "-f", &cfg, "--addr", &refused, "--request-timeout", "2s"]);
    assert!(run.stderr.contains("***@127.0.0.1"), "{}", run.stderr);
    for f in [&saved, &imported, &prom] {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!text.contains(ADDR_PW) && !text.contains(ADDR_USER), "{}:\n{text}", f.display());
    }
    // The saved plan is still applicable from the same address.
    let run = dm_apply(&["apply", "--plan", saved.to_str().unwrap(), "--addr", &addr, "--no-verify"]);
    assert_no_secret(&run, "apply --plan");
    assert_eq!(run.code, Some(0), "{}", run.all());
    // The credentials still reach DM-master (as HTTP basic authentication), the only place they belong.
    assert!(dm.requests().iter().all(|r| r.header("authorization").is_some_and(|a| a.starts_with("Basic "))));
}

// ------------------------------------------------------------------------------------------------ echoed secrets

#[test]
fn secrets_echoed_by_the_server_never_appear() {
    let dsn_error = serde_json::json!({
        "error_msg": format!("[code=32001:class=dm-master:scope=upstream:level=high], Message: cannot connect to \
            upstream, RawCause: Error 1045: Access denied for dm:{SRC_PW}@tcp(a.db.internal:3306)/"),
        "error_code": 32001,
    })
    .to_string();
    let html = format!("<html><body>Bad gateway. Your request: {{\"password\":\"{SRC_PW}\"}}</body></html>");
    let quoted_in_decode = format!(r#"{{"source_name":"mysql-a","host":"h","port":"{SRC_PW}","user":"dm"}}"#);
    let text_echo = format!("upstream said: password {SRC_PW} rejected");
    let answers: Vec<(Resp, &str)> = vec![
        (Resp::json(400, dsn_error), "32001"),
        (Resp::new(502, "text/html", html), "HTML page"),
        (Resp::json(201, quoted_in_decode), "is not a source"),
        (Resp::text(500, &text_echo), "rejected"),
    ];
    for (answer, needle) in answers {
        let dm = Fake::start(with_route("POST", "/api/v1/sources", move |_| answer.clone()));
        let (_dir, cfg) = config_dir();
        for extra in [&[][..], &["-vv"][..]] {
            let mut args = vec!["apply", "-f", &cfg, "--auto-approve", "--addr", &dm.url];
            args.extend_from_slice(extra);
            let run = dm_apply(&args);
            assert_eq!(run.code, Some(1), "{}", run.all());
            assert!(run.all().contains(needle), "`{needle}` missing:\n{}", run.all());
            assert_no_secret(&run, needle);
        }
        // The planted value really went to the server.
        assert!(dm.requests().iter().any(|r| r.body_text().contains(SRC_PW)));
    }
}

// ------------------------------------------------------------------------------------------------ the library

fn lib_client(url: &str) -> DmClient {
    client(url)
}

#[tokio::test]
async fn redirects_are_errors_and_nothing_is_resent() {
    let thief = elsewhere();
    for status in [301, 302, 303, 307, 308] {
        let location = format!("http://user:stolen-creds@{}/api/v1/sources?token=abc", thief.addr);
        let dm = Fake::start(move |_| Resp::redirect(status, &location));
        let c = lib_client(&dm.url);
        let mut src = dm_apply::dm::types::Source { source_name: "a".into(), ..Default::default() };
        src.password = Some(dm_apply::secret::Secret::new(SRC_PW));
        for e in [c.create_source(&src, None).await.unwrap_err(), c.list_sources(false, None).await.unwrap_err()] {
            let DmError::Redirect { status: s, location, .. } = &e else { panic!("{e:?}") };
            assert_eq!(*s, status);
            assert_eq!(location, &format!("http://***@{}/api/v1/sources", thief.addr));
            assert!(!e.is_transient() && !e.is_ambiguous());
        }
    }
    assert_eq!(thief.count(), 0);
}

#[tokio::test]
async fn a_404_page_is_openapi_off_and_an_empty_404_is_absent() {
    let dm = Fake::start(|r| match r.path.as_str() {
        "/api/v1/sources/known-absent" => Resp::empty(404),
        "/status" => Resp::text(404, "404 page not found\n"),
        _ => Resp::text(404, "404 page not found\n"),
    });
    let c = lib_client(&dm.url);
    assert!(c.get_source("known-absent", false).await.unwrap().is_none());
    let e = c.get_source("other", false).await.unwrap_err();
    assert!(matches!(e, DmError::OpenApiOff { .. }), "{e:?}");
    assert!(!e.is_absent());
    // Lists, tasks and templates: the page is never "nothing there".
    assert!(matches!(c.list_sources(false, None).await, Err(DmError::OpenApiOff { .. })));
    assert!(matches!(c.get_task("t", false).await, Err(DmError::OpenApiOff { .. })));
    assert!(matches!(c.get_template("t").await, Err(DmError::OpenApiOff { .. })));
    // `/status` is served whether or not the OpenAPI is on: a 404 page there is not DM-master.
    assert!(matches!(c.server_version().await, Err(DmError::NotDm { .. })));
    // An empty 404 on a list is not "nothing exists" either.
    let dm = Fake::start(|_| Resp::empty(404));
    let e = lib_client(&dm.url).list_tasks(false, None, &[]).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
}

#[tokio::test]
async fn every_list_is_checked_against_dms_envelope() {
    let dm = Fake::start(|r| match r.path.as_str() {
        "/api/v1/sources/s/status" => Resp::json(200, r#"{"total":0,"data":null}"#),
        _ => Resp::json(200, r#"{"total":1,"data":null}"#),
    });
    let c = lib_client(&dm.url);
    let checks: Vec<(DmError, &str)> = vec![
        (c.list_sources(false, None).await.unwrap_err(), "a source list"),
        (c.list_tasks(false, None, &[]).await.unwrap_err(), "a task list"),
        (c.list_templates().await.unwrap_err(), "a task template list"),
        (c.list_masters().await.unwrap_err(), "a master list"),
        (c.list_workers().await.unwrap_err(), "a worker list"),
        (c.task_status("t").await.unwrap_err(), "a subtask status list"),
        (c.migrate_targets("t", "s", None, None).await.unwrap_err(), "a migrate target list"),
    ];
    for (e, what) in checks {
        assert!(matches!(e, DmError::Decode { status: 200, .. }), "{e:?}");
        assert!(e.to_string().contains(&format!("is not {what}: `data` is null")), "{e}");
    }
    // DM itself sends `null` for the status list of a source whose worker reported nothing.
    assert!(c.source_status("s").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_error_shape_under_a_success_status_fails_every_kind_of_call() {
    let dm = Fake::start(|_| Resp::json(200, r#"{"error_msg":"in use","error_code":"46024"}"#));
    let mut o = ClientOptions::new(&dm.url);
    o.retry = RetryPolicy::none();
    let c = DmClient::new(&o).unwrap();
    let e = c.start_task("t", &Default::default()).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(200), Some(46024)), "{e:?}");
    let e = c.get_source("s", false).await.unwrap_err();
    assert_eq!(e.code(), Some(46024), "{e:?}");
    let e = c.server_version().await.unwrap_err();
    assert_eq!(e.code(), Some(46024), "{e:?}");
}

#[tokio::test]
async fn object_answers_need_their_required_fields() {
    for body in ["null", "{}", "[]", r#"{"source_name":"a"}"#, "\"text\"", r#"["a","h",3306,"u"]"#, ""] {
        let dm = Fake::start(move |_| Resp::json(200, body));
        let e = lib_client(&dm.url).get_source("a", false).await.unwrap_err();
        assert!(e.to_string().contains("is not a source"), "{body}: {e}");
    }
}

#[tokio::test]
async fn answers_over_the_shape_limits_are_refused_before_decoding() {
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let many = format!("[{}]", vec!["\"a\""; 100_001].join(","));
    let objects =
        format!(r#"{{"cluster_id":1,"topology":[{}]}}"#, vec!["[{},{},{},{},{},{},{},{},{},{}]"; 50_001].join(","));
    for (body, needle) in
        [(deep, "deeper than 32"), (many, "more than 100000 items"), (objects, "more than 500000 objects")]
    {
        let body = Arc::new(body.into_bytes());
        let dm = Fake::start(move |_| Resp::shared_json(body.clone()));
        let c = lib_client(&dm.url);
        let e = c.source_schemas("s").await.unwrap_err();
        assert!(matches!(e, DmError::TooLarge { .. }), "{e:?}");
        assert!(e.to_string().contains(needle), "{e}");
    }
    // Exactly at the item limit is fine.
    let ok = Arc::new(format!("[{}]", vec!["\"a\""; 100_000].join(",")).into_bytes());
    let dm = Fake::start(move |_| Resp::shared_json(ok.clone()));
    assert_eq!(lib_client(&dm.url).source_schemas("s").await.unwrap().len(), 100_000);
}

#[tokio::test]
async fn decode_errors_never_quote_the_answer() {
    let body = format!(r#"{{"source_name":"a","host":"h","port":"{SRC_PW}","user":"u"}}"#);
    let other = "not-a-secret-but-quoted-by-serde";
    let body2 = format!(r#"{{"source_name":"a","host":"h","port":1,"user":"u","enable":"{other}"}}"#);
    for (b, secret) in [(body, SRC_PW), (body2, other)] {
        let dm = Fake::start(move |_| Resp::json(200, b.clone()));
        let e = lib_client(&dm.url).get_source("a", false).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains("invalid type: string, expected"), "{text}");
        assert!(text.contains("line 1"), "{text}");
        assert!(!text.contains(secret), "{text}");
    }
}

#[tokio::test]
async fn secrets_of_the_request_are_scrubbed_from_every_error() {
    let key = "-----BEGIN PRIVATE KEY-----\nplanted-key-material\n-----END PRIVATE KEY-----";
    let echo = move |r: &Req| {
        Resp::json(
            400,
            serde_json::json!({"error_msg": format!("you sent {}", r.body_text()), "error_code": 1}).to_string(),
        )
    };
    let dm = Fake::start(echo);
    let c = lib_client(&dm.url);
    let mut src = dm_apply::dm::types::Source { source_name: "a".into(), ..Default::default() };
    src.password = Some(dm_apply::secret::Secret::new("p\"w\\x%/@"));
    src.security = Some(dm_apply::dm::types::Security {
        ssl_key_content: dm_apply::secret::Secret::new(key),
        ..Default::default()
    });
    let e = c.create_source(&src, None).await.unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("planted-key-material") && !text.contains("p\\\"w") && !text.contains("p\"w"), "{text}");
    assert!(text.contains("(sensitive value)"), "{text}");
}

#[tokio::test]
async fn the_address_is_shown_without_credentials() {
    let dm = Fake::start(|r| {
        Resp::json(
            400,
            serde_json::json!({"error_msg": format!("auth was {:?}", r.header("authorization")), "error_code": 1})
                .to_string(),
        )
    });
    let url = dm.url.replacen("://", &format!("://{ADDR_USER}:{ADDR_PW}@"), 1);
    let c = lib_client(&url);
    assert_eq!(c.addr(), format!("http://***@{}", dm.addr));
    assert_eq!(c.url_with_credentials(), url);
    let e = c.list_sources(false, None).await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains(ADDR_PW), "{e}");
    for bad in
        [format!("http://u:{ADDR_PW}@[::1"), format!("ftp://u:{ADDR_PW}@h"), format!("http://u:{ADDR_PW}@h:1/?q=1")]
    {
        let e = DmClient::new(&ClientOptions::new(&bad)).unwrap_err();
        assert!(!e.to_string().contains(ADDR_PW), "{e}");
    }
    let mut o = ClientOptions::new(&dm.url);
    o.request_timeout = Duration::ZERO;
    assert!(DmClient::new(&o).unwrap_err().to_string().contains("greater than zero"));
}
