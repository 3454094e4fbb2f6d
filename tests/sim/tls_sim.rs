//! TLS to DM-master, against the simulator served over https with certificates generated here (rcgen): a custom
//! CA works, an untrusted certificate or a wrong host name is refused by default with a clear error, mutual TLS
//! needs a client certificate from the right CA, and `--insecure-skip-tls-verify` works but always warns.
//! Library tests use `DmClient`; the CLI tests run the real binary (`plan`, `sim`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dm_apply::dm::{ClientOptions, DmClient, DmError, RetryPolicy};
use dm_apply::sim::{Generation, SimOptions, SimServer, SimTls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA that can sign server and client certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { pem, issuer: Issuer::new(params, key) }
    }

    /// A certificate for `names` (DNS names or IP addresses) and its key, as PEM.
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

async fn tls_sim(server: &(String, String), client_ca: Option<&Ca>) -> SimServer {
    let tls = SimTls {
        cert_pem: server.0.clone().into_bytes(),
        key_pem: server.1.clone().into_bytes(),
        client_ca_pem: client_ca.map(|c| c.pem.clone().into_bytes()),
    };
    // The version assertions below expect HEAD's `/status`.
    let sim = SimServer::start(SimOptions {
        tls: Some(tls),
        seed: Some(1),
        generation: Generation::Head,
        ..SimOptions::default()
    })
    .await
    .expect("simulator starts with TLS");
    assert!(sim.url().starts_with("https://127.0.0.1:"), "{}", sim.url());
    sim
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(url: &str) -> ClientOptions {
    let mut o = ClientOptions::new(url);
    o.request_timeout = Duration::from_secs(10);
    o.retry = RetryPolicy::none();
    o
}

async fn version(o: &ClientOptions) -> Result<String, DmError> {
    let c = DmClient::new(o)?;
    c.server_version().await.map(|v| v.raw.clone())
}

fn assert_tls_refused(r: Result<String, DmError>, what: &str, needle: &str) {
    match r {
        Err(e @ DmError::Tls { .. }) => {
            let text = format!("{e}");
            assert!(text.contains(needle), "{what}: the error says why ({needle}): {text}");
            assert!(!e.is_transient() && !e.is_ambiguous(), "{what}: not retried, nothing was sent");
        }
        other => panic!("{what}: expected a TLS refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn custom_ca_is_trusted_and_anything_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let sim = tls_sim(&ca.leaf(&["127.0.0.1", "localhost"]), None).await;
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);

    // Trusted through --cacert.
    let mut o = opts(&sim.url());
    o.cacert = Some(ca_file);
    assert_eq!(version(&o).await.unwrap(), "v26.4.0-alpha");
    let c = DmClient::new(&o).unwrap();
    assert!(c.list_sources(false, None).await.unwrap().is_empty());

    // By default (no --cacert), a certificate from a private CA is not trusted.
    assert_tls_refused(version(&opts(&sim.url())).await, "no --cacert", "certificate");

    // Another CA does not vouch for it either.
    let other = Ca::new("other CA");
    let mut o = opts(&sim.url());
    o.cacert = Some(write(dir.path(), "other.pem", &other.pem));
    assert_tls_refused(version(&o).await, "wrong CA", "UnknownIssuer");

    // No request reached the server.
    assert_eq!(sim.control().request_log().len(), 2, "only the two trusted requests were served");
}

#[tokio::test]
async fn a_certificate_for_another_host_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let sim = tls_sim(&ca.leaf(&["dm-master.example.internal"]), None).await;
    let mut o = opts(&sim.url());
    o.cacert = Some(write(dir.path(), "ca.pem", &ca.pem));
    assert_tls_refused(version(&o).await, "wrong host name", "certificate not valid for name");
    assert!(sim.control().request_log().is_empty());
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_from_the_trusted_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let sim = tls_sim(&server_ca.leaf(&["127.0.0.1"]), Some(&client_ca)).await;
    let ca_file = write(dir.path(), "ca.pem", &server_ca.pem);

    // Without a client certificate: the server refuses the handshake.
    let mut o = opts(&sim.url());
    o.cacert = Some(ca_file.clone());
    let r = version(&o).await;
    assert!(matches!(r, Err(DmError::Tls { .. })), "no client certificate: {r:?}");

    // With a certificate of another CA: refused too.
    let (cert, key) = server_ca.leaf(&["dm-apply"]);
    o.cert = Some(write(dir.path(), "wrong.crt", &cert));
    o.key = Some(write(dir.path(), "wrong.key", &key));
    let r = version(&o).await;
    assert!(matches!(r, Err(DmError::Tls { .. })), "client certificate of the wrong CA: {r:?}");
    assert!(sim.control().request_log().is_empty(), "nothing was served without a valid client certificate");

    // With one signed by the client CA: accepted.
    let (cert, key) = client_ca.leaf(&["dm-apply"]);
    o.cert = Some(write(dir.path(), "client.crt", &cert));
    o.key = Some(write(dir.path(), "client.key", &key));
    assert_eq!(version(&o).await.unwrap(), "v26.4.0-alpha");
    assert_eq!(sim.control().request_log().len(), 1);
}

#[tokio::test]
async fn skipping_verification_is_explicit() {
    let ca = Ca::new("test CA");
    let sim = tls_sim(&ca.leaf(&["dm-master.example.internal"]), None).await;
    let mut o = opts(&sim.url());
    o.insecure_skip_verify = true;
    assert_eq!(version(&o).await.unwrap(), "v26.4.0-alpha", "untrusted CA and wrong name both accepted");
}

#[tokio::test]
async fn bad_tls_material_is_refused_at_start_without_quoting_the_key() {
    let ca = Ca::new("test CA");
    let (cert, key) = ca.leaf(&["127.0.0.1"]);
    let (_, other_key) = ca.leaf(&["127.0.0.1"]);
    for (tls, needle) in [
        (
            SimTls { cert_pem: b"garbage".to_vec(), key_pem: key.clone().into_bytes(), client_ca_pem: None },
            "certificate",
        ),
        (SimTls { cert_pem: cert.clone().into_bytes(), key_pem: b"garbage".to_vec(), client_ca_pem: None }, "key"),
        (
            SimTls {
                cert_pem: cert.clone().into_bytes(),
                key_pem: other_key.clone().into_bytes(),
                client_ca_pem: None,
            },
            "do not match",
        ),
    ] {
        assert!(!format!("{tls:?}").contains("PRIVATE KEY"), "Debug hides the key");
        let err =
            SimServer::start(SimOptions { tls: Some(tls), ..SimOptions::default() }).await.err().expect("refused");
        let text = err.to_string();
        assert!(text.contains(needle), "{text}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");
    }
}

// ------------------------------------------------------------------------------------------------ the binary

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_dm-apply"))
            .args(&args)
            .env_remove("DM_APPLY_ADDR")
            .env("NO_COLOR", "1")
            .env("DM_SOURCE_PASSWORD", "tls-test-source-pw")
            .env("DM_TARGET_PASSWORD", "tls-test-target-pw")
            .stdin(Stdio::null())
            .output()
            .expect("binary runs")
    })
    .await
    .expect("join")
}

fn s(list: &[&str]) -> Vec<String> {
    list.iter().map(|x| x.to_string()).collect()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

const CONFIG: &str = r#"
sources:
  - source_name: mysql-a
    host: a.db.internal
    port: 3306
    user: dm
    password: ${env:DM_SOURCE_PASSWORD}
    enable_gtid: false
    enable: true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_over_https_with_cacert_and_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let sim = tls_sim(&server_ca.leaf(&["127.0.0.1"]), Some(&client_ca)).await;
    let url = sim.url();
    let cfg = write(dir.path(), "dm.yaml", CONFIG);
    let cfg = cfg.to_str().unwrap();
    let ca = write(dir.path(), "ca.pem", &server_ca.pem);
    let ca = ca.to_str().unwrap();
    let (cert, key) = client_ca.leaf(&["dm-apply"]);
    let cert = write(dir.path(), "client.crt", &cert);
    let key = write(dir.path(), "client.key", &key);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let o = run(s(&["plan", "-f", cfg, "--addr", &url, "--cacert", ca, "--cert", cert, "--key", key])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("source.mysql-a"), "{out}");
    assert!(!err.contains("insecure"), "{err}");

    // Without the CA: refused with a clear error, exit 1.
    let o = run(s(&["plan", "-f", cfg, "--addr", &url, "--cert", cert, "--key", key])).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("TLS connection to DM-master") && err.contains("--cacert"), "{err}");

    // Without the client certificate: refused.
    let o = run(s(&["plan", "-f", cfg, "--addr", &url, "--cacert", ca])).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("TLS connection to DM-master"), "{err}");

    // Skipping verification works (the client certificate is still needed) and warns every time.
    for _ in 0..2 {
        let o = run(s(&[
            "plan",
            "-q",
            "-f",
            cfg,
            "--addr",
            &url,
            "--insecure-skip-tls-verify",
            "--cert",
            cert,
            "--key",
            key,
        ]))
        .await;
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "stdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains("--insecure-skip-tls-verify") && err.contains("NOT verified"), "{err}");
    }
}

#[test]
fn sim_command_serves_https_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let (cert, key) = server_ca.leaf(&["127.0.0.1"]);
    let cert = write(dir.path(), "server.crt", &cert);
    let key = write(dir.path(), "server.key", &key);
    let client_ca_file = write(dir.path(), "client-ca.pem", &client_ca.pem);
    let mut child = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["sim", "--listen", "127.0.0.1:0", "--seed", "1", "--generation", "head"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--tls-client-ca")
        .arg(&client_ca_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dm-apply sim");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let first = lines.next().expect("a line").expect("utf-8");
    let url = first.strip_prefix("dm-apply sim listening on ").expect("the announced line").to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{first}");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let result = rt.block_on(async {
        let mut o = opts(&url);
        o.cacert = Some(write(dir.path(), "ca.pem", &server_ca.pem));
        let without = version(&o).await;
        let (c, k) = client_ca.leaf(&["dm-apply"]);
        o.cert = Some(write(dir.path(), "client.crt", &c));
        o.key = Some(write(dir.path(), "client.key", &k));
        (without, version(&o).await)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(matches!(result.0, Err(DmError::Tls { .. })), "{:?}", result.0);
    assert_eq!(result.1.unwrap(), "v26.4.0-alpha");

    // A key that does not belong to the certificate: a clear error at start, exit 1.
    let other_key = write(dir.path(), "other.key", &server_ca.leaf(&["x"]).1);
    let out = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["sim", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&other_key)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("do not match") && !err.contains("PRIVATE KEY"), "{err}");
}

#[tokio::test]
async fn a_dropped_tls_connection_is_a_lost_answer_not_a_tls_refusal() {
    // Over TLS, the simulator's reset fault must still look like a connection lost after sending (so a mutation is
    // settled by re-reading), not like a certificate problem.
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    let sim = tls_sim(&ca.leaf(&["127.0.0.1"]), None).await;
    sim.control().set_faults(1.0, vec![dm_apply::sim::FaultKind::Reset]);
    let mut o = opts(&sim.url());
    o.cacert = Some(write(dir.path(), "ca.pem", &ca.pem));
    let c = DmClient::new(&o).unwrap();
    let e = c.delete_source("nope", false).await.expect_err("reset");
    assert!(matches!(e, DmError::Connect { maybe_sent: true, .. }), "{e:?}");
    assert!(e.is_ambiguous(), "{e:?}");
    let log = sim.control().request_log();
    assert_eq!(log.len(), 1);
    assert!(log[0].faulted && log[0].status == 0, "{log:?}");
}
