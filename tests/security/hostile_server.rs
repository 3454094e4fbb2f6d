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
    assert!(e.to_string().contains("unreadable answer"), "{e}");
}

#[tokio::test]
async fn wrong_types_are_a_decode_error() {
    let addr = server(raw("200 OK", "application/json", r#"{"total":"x","data":[{"source_name":7}]}"#)).await;
    let e = client(&addr).list_sources(false, None).await.unwrap_err();
    assert!(matches!(e, DmError::Decode { .. }), "{e:?}");
}

#[tokio::test]
async fn html_instead_of_json_is_a_decode_error() {
    let addr = server(raw("200 OK", "text/html", "<html>proxy login</html>")).await;
    let e = client(&addr).list_tasks(false, None, &[]).await.unwrap_err();
    assert!(matches!(e, DmError::Decode { .. }), "{e:?}");
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
