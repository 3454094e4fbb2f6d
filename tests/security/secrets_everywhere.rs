//! Secrets never appear anywhere: every command and output format of the real binary runs with planted passwords
//! and TLS keys (source password, target password, source `ssl_key_content`, target `ssl_key_content`, the client
//! `--key` file), at normal verbosity, `-v`, and `RUST_LOG=trace`, including error paths, convert and import;
//! stdout, stderr and every file written are searched for the planted values. The simulator's request log shows
//! the values really reached DM-master, so the test is not vacuous.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dm_apply::sim::{SimOptions, SimServer, SimTls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const SRC_PW: &str = "planted-src-pw-7f3a9c";
const SRC_PW2: &str = "planted-src-pw2-44e1d0";
const TGT_PW: &str = "planted-tgt-pw-1b2d8e";
const SRC_KEY: &str = "planted-src-sslkey-c0ffee";
const TGT_KEY: &str = "planted-tgt-sslkey-facade";
const LITERAL_PW: &str = "planted-literal-pw-9d9d9d";
const BAD_KEY_FILE: &str = "planted-bad-keyfile-0b0b0b";

fn pem(marker: &str) -> String {
    format!("-----BEGIN PRIVATE KEY-----\\n{marker}\\n-----END PRIVATE KEY-----")
}

const CERT_CONTENT: &str = "-----BEGIN CERTIFICATE-----\\nMIIBnotarealcert\\n-----END CERTIFICATE-----";

fn config() -> String {
    format!(
        r#"sources:
  - source_name: mysql-sec
    host: mysql-sec.db.internal
    port: 3306
    user: dm
    password: ${{env:PLANT_SRC_PW}}
    enable_gtid: false
    enable: true
    security:
      ssl_ca_content: "{CERT_CONTENT}"
      ssl_cert_content: "{CERT_CONTENT}"
      ssl_key_content: ${{env:PLANT_SRC_KEY}}
tasks:
  - name: sec-task
    task_mode: incremental
    meta_schema: dm_meta
    enhance_online_schema_change: true
    on_duplicate: replace
    target_config:
      host: tidb.internal
      port: 4000
      user: root
      password: ${{env:PLANT_TGT_PW}}
      security:
        ssl_ca_content: "{CERT_CONTENT}"
        ssl_cert_content: "{CERT_CONTENT}"
        ssl_key_content: ${{env:PLANT_TGT_KEY}}
    table_migrate_rule:
      - source: {{source_name: mysql-sec, schema: shop, table: "*"}}
    source_config:
      source_conf:
        - {{source_name: mysql-sec, binlog_name: mysql-bin.000001, binlog_pos: 4}}
    stage: running
"#
    )
}

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "secrets test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(names).unwrap();
        (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    };
    Pki { ca_pem, server: leaf(vec!["127.0.0.1".into()]), client: leaf(vec!["dm-apply".into()]) }
}

/// Distinctive pieces of a PEM key: every base64 line of its body.
fn key_lines(pem: &str) -> Vec<String> {
    pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16).map(str::to_string).collect()
}

struct World {
    dir: tempfile::TempDir,
    url: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    planted: Vec<String>,
    /// Everything seen: (what, text).
    seen: Vec<(String, String)>,
}

impl World {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn conn(&self) -> Vec<String> {
        let p = |p: &Path| p.display().to_string();
        vec![
            "--addr".into(),
            self.url.clone(),
            "--cacert".into(),
            p(&self.ca),
            "--cert".into(),
            p(&self.cert),
            "--key".into(),
            p(&self.key),
        ]
    }

    /// Run `args` three ways (plain, `-v`, `RUST_LOG=trace`); returns the exit codes.
    async fn run3(&mut self, what: &str, args: &[String], src_pw: &str) -> Vec<Option<i32>> {
        let mut codes = vec![];
        for (verbose, trace) in [(false, false), (true, false), (false, true)] {
            codes.push(self.run(what, args, src_pw, verbose, trace).await.status.code());
        }
        codes
    }

    async fn run(&mut self, what: &str, args: &[String], src_pw: &str, verbose: bool, trace: bool) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
        if verbose {
            cmd.arg("-vv");
        }
        cmd.args(args)
            .env_remove("DM_APPLY_ADDR")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("PLANT_SRC_PW", src_pw)
            .env("PLANT_TGT_PW", TGT_PW)
            .env("PLANT_SRC_KEY", pem(SRC_KEY))
            .env("PLANT_TGT_KEY", pem(TGT_KEY))
            .stdin(Stdio::null());
        if trace {
            cmd.env("RUST_LOG", "trace");
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("binary runs")).await.unwrap();
        let label = format!("{what} (verbose={verbose}, trace={trace})");
        self.seen.push((format!("{label} stdout"), String::from_utf8_lossy(&out.stdout).into_owned()));
        self.seen.push((format!("{label} stderr"), String::from_utf8_lossy(&out.stderr).into_owned()));
        out
    }

    fn file(&mut self, what: &str, path: &Path) {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{what}: {} not written: {e}", path.display()));
        self.seen.push((what.to_string(), text));
    }

    fn assert_clean(&self) {
        // A debugging aid: SECRETS_DUMP=FILE writes everything seen, to review by eye.
        if let Ok(path) = std::env::var("SECRETS_DUMP") {
            let all: String = self.seen.iter().map(|(w, t)| format!("===== {w}\n{t}\n")).collect();
            let _ = std::fs::write(path, all);
        }
        for (what, text) in &self.seen {
            for p in &self.planted {
                assert!(!text.contains(p.as_str()), "{what} leaks a planted secret `{p}`:\n{text}");
            }
        }
    }
}

fn s(list: &[&str]) -> Vec<String> {
    list.iter().map(|x| x.to_string()).collect()
}

fn cat(a: Vec<String>, b: Vec<String>) -> Vec<String> {
    a.into_iter().chain(b).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_appears_in_any_output() {
    let pki = pki();
    let tls = SimTls {
        cert_pem: pki.server.0.clone().into_bytes(),
        key_pem: pki.server.1.clone().into_bytes(),
        client_ca_pem: Some(pki.ca_pem.clone().into_bytes()),
    };
    let opts = SimOptions { tls: Some(tls), seed: Some(5), ..SimOptions::default() };
    let sim = SimServer::start(opts).await.unwrap();
    let ctl = sim.control();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cfg_dir = dir.path().join("dm");
    std::fs::create_dir(&cfg_dir).unwrap();
    std::fs::write(cfg_dir.join("dm.yaml"), config()).unwrap();
    let ca = write("ca.pem", &pki.ca_pem);
    let cert = write("client.crt", &pki.client.0);
    let key = write("client.key", &pki.client.1);
    let mut planted: Vec<String> =
        [SRC_PW, SRC_PW2, TGT_PW, SRC_KEY, TGT_KEY, LITERAL_PW, BAD_KEY_FILE].iter().map(|x| x.to_string()).collect();
    planted.extend(key_lines(&pki.client.1));
    planted.extend(key_lines(&pki.server.1));
    let mut w = World { url: sim.url(), ca, cert, key, planted, seen: vec![], dir };
    let cfg = cfg_dir.display().to_string();
    let conn = w.conn();

    // validate (offline).
    assert_eq!(w.run3("validate", &s(&["validate", "-f", &cfg]), SRC_PW).await, [Some(0); 3]);

    // plan in every format, and saved.
    for fmt in ["text", "markdown", "json"] {
        let args = cat(s(&["plan", "-f", &cfg, "-o", fmt]), conn.clone());
        assert_eq!(w.run3(&format!("plan -o {fmt}"), &args, SRC_PW).await, [Some(0); 3], "plan -o {fmt}");
    }
    let saved = w.path("plan.json");
    let args = cat(s(&["plan", "-f", &cfg, "--out", &saved.display().to_string()]), conn.clone());
    assert_eq!(w.run("plan --out", &args, SRC_PW, false, true).await.status.code(), Some(0));
    w.file("saved plan", &saved);

    // apply refused without approval (an error message), then applied from the saved plan under trace logging.
    let args = cat(s(&["apply", "-f", &cfg]), conn.clone());
    assert_eq!(w.run3("apply without approval", &args, SRC_PW).await, [Some(1); 3]);
    let args = cat(s(&["apply", "--plan", &saved.display().to_string()]), conn.clone());
    let o = w.run("apply --plan", &args, SRC_PW, true, true).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));

    // A changed source password: plan shows it (without the value) and apply writes it, under trace.
    let args = cat(s(&["plan", "-f", &cfg, "-o", "json"]), conn.clone());
    let o = w.run("plan password change", &args, SRC_PW2, false, false).await;
    assert!(String::from_utf8_lossy(&o.stdout).contains("(sensitive value)"), "the change is shown masked");
    let args = cat(s(&["apply", "-f", &cfg, "--auto-approve"]), conn.clone());
    let o = w.run("apply password change", &args, SRC_PW2, true, true).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(w.run3("apply no changes", &args, SRC_PW2).await, [Some(0); 3]);

    // drift: text, JSON, Prometheus file; with a difference made behind dm-apply's back.
    ctl.patch_source("mysql-sec", serde_json::json!({"user": "someone-else"})).unwrap();
    let prom = w.path("dm.prom");
    for fmt in ["text", "json"] {
        let args = cat(
            s(&["drift", "-f", &cfg, "-o", fmt, "--prometheus-textfile", &prom.display().to_string()]),
            conn.clone(),
        );
        let codes = w.run3(&format!("drift -o {fmt}"), &args, SRC_PW2).await;
        assert!(codes.iter().all(|c| *c == Some(2)), "drift found the difference: {codes:?}");
        w.file("prometheus textfile", &prom);
    }

    // Errors: an invalid config with a literal password next to the mistake, a YAML syntax error on the secret's
    // line, an unreadable client key, a key that does not match the certificate, a refused TLS connection.
    let bad = w.path("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(
        bad.join("schema.yaml"),
        config()
            .replace("password: ${env:PLANT_SRC_PW}", &format!("password: {LITERAL_PW}\n    passwrd: {LITERAL_PW}")),
    )
    .unwrap();
    let bad_s = bad.display().to_string();
    assert_eq!(w.run3("validate invalid", &s(&["validate", "-f", &bad_s]), SRC_PW).await, [Some(1); 3]);
    assert_eq!(w.run3("plan invalid", &cat(s(&["plan", "-f", &bad_s]), conn.clone()), SRC_PW).await, [Some(1); 3]);
    let broken = w.path("broken.yaml");
    std::fs::write(
        &broken,
        config().replace("password: ${env:PLANT_TGT_PW}", &format!("password: \"{LITERAL_PW}\" ]]: {{")),
    )
    .unwrap();
    let broken_s = broken.display().to_string();
    assert_eq!(w.run3("validate unparsable", &s(&["validate", "-f", &broken_s]), SRC_PW).await, [Some(1); 3]);
    let bad_key = w.path("bad.key");
    std::fs::write(&bad_key, format!("-----BEGIN PRIVATE KEY-----\n{BAD_KEY_FILE}\n-----END PRIVATE KEY-----\n"))
        .unwrap();
    let other_key = w.path("other.key");
    std::fs::write(&other_key, &pki.server.1).unwrap();
    for (what, k) in [("unreadable --key", &bad_key), ("mismatched --key", &other_key)] {
        let args = s(&[
            "plan",
            "-f",
            &cfg,
            "--addr",
            &w.url.clone(),
            "--cacert",
            &w.ca.display().to_string(),
            "--cert",
            &w.cert.display().to_string(),
            "--key",
            &k.display().to_string(),
        ]);
        assert_eq!(w.run3(what, &args, SRC_PW2).await, [Some(1); 3], "{what}");
    }
    let args = s(&["plan", "-f", &cfg, "--addr", &w.url.clone()]);
    assert_eq!(w.run3("untrusted server", &args, SRC_PW2).await, [Some(1); 3]);

    // convert (offline): dmctl files with plain passwords and a key file next to them; to stdout and to a file.
    let dmctl = w.path("dmctl");
    std::fs::create_dir_all(dmctl.join("tls")).unwrap();
    let here = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dmctl");
    let src = std::fs::read_to_string(format!("{here}/source-mysql-01.yaml")).unwrap();
    std::fs::write(dmctl.join("source.yaml"), src.replace("s3cret-source-pw", LITERAL_PW)).unwrap();
    let task = std::fs::read_to_string(format!("{here}/task-all.yaml")).unwrap();
    std::fs::write(dmctl.join("task.yaml"), task.replace("plain-target-pw", TGT_PW)).unwrap();
    for f in ["ca.pem", "client.pem"] {
        std::fs::copy(format!("{here}/tls/{f}"), dmctl.join("tls").join(f)).unwrap();
    }
    std::fs::write(dmctl.join("tls/client-key.pem"), pem(SRC_KEY).replace("\\n", "\n")).unwrap();
    let dmctl_s = dmctl.display().to_string();
    let codes = w.run3("convert", &s(&["convert", &dmctl_s]), SRC_PW2).await;
    assert!(codes.iter().all(|c| *c == Some(0)), "convert: {codes:?}");
    let converted = w.path("converted.yaml");
    let o = w
        .run("convert -o", &s(&["convert", &dmctl_s, "-o", &converted.display().to_string()]), SRC_PW2, false, true)
        .await;
    assert_eq!(o.status.code(), Some(0));
    w.file("converted file", &converted);

    // import (reads DM-master, which holds every planted value): to stdout and to a file.
    let args = cat(s(&["import"]), conn.clone());
    assert_eq!(w.run3("import", &args, SRC_PW2).await, [Some(0); 3]);
    let imported = w.path("imported.yaml");
    let args = cat(s(&["import", "-o", &imported.display().to_string()]), conn.clone());
    assert_eq!(w.run("import -o", &args, SRC_PW2, true, true).await.status.code(), Some(0));
    w.file("imported file", &imported);

    w.assert_clean();

    // Not vacuous: the values really went to DM-master, and the outputs did talk about them.
    let log = serde_json::to_string(&ctl.request_log()).unwrap();
    for v in [SRC_PW, SRC_PW2, TGT_PW, SRC_KEY, TGT_KEY] {
        assert!(log.contains(v), "{v} was never sent to DM-master");
    }
    let all: String = w.seen.iter().map(|(_, t)| t.as_str()).collect();
    assert!(all.contains("(sensitive value)"), "secrets are shown masked somewhere");
    assert!(all.contains("passwrd"), "the invalid config was reported");
    assert!(all.contains("TRACE") || all.contains("trace"), "trace logging was on");
    sim.shutdown().await;
}

/// Run the binary (plain, `-vv`, `RUST_LOG=trace`) in `dir`; everything it prints.
fn outputs(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<(String, Option<i32>, String)> {
    VERBOSITIES.iter().map(|v| output(dir, args, env, *v)).collect()
}

/// Plain, `-vv`, and `RUST_LOG=trace` (every crate's trace logs).
const VERBOSITIES: [(bool, bool); 3] = [(false, false), (true, false), (false, true)];

/// One run of the binary at one verbosity: (what ran, exit code, stdout and stderr).
fn output(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    (verbose, trace): (bool, bool),
) -> (String, Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    if verbose {
        cmd.arg("-vv");
    }
    cmd.args(args).current_dir(dir).env_remove("DM_APPLY_ADDR").env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd.envs(env.iter().copied()).stdin(Stdio::null());
    if trace {
        cmd.env("RUST_LOG", "trace");
    }
    let o = cmd.output().expect("binary runs");
    let what = format!("{args:?} (verbose={verbose}, trace={trace})");
    let all = format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (what, o.status.code(), all)
}

/// YAML syntax errors next to and inside secrets (dmctl files hold plain-text passwords; `convert` reads them), a
/// lone carriage return that would join a password line to a printed one, a mapping under `password:`, a key named
/// `pw`: the snippets show where, never the secret.
#[test]
fn diagnostics_never_show_secrets_written_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let planted = ["PLANT-dup-9a8b7c", "PLANT-quote-6d5e4f", "PLANT-cr-3a2b1c", "PLANT-key-0f9e8d", "PLANT-pw-7c6b5a"];
    let files: Vec<(&str, String, &str)> = vec![
        // dmctl files, through `convert`.
        (
            "dup.yaml",
            format!("source-id: mysql-01\nfrom:\n  host: h\n  user: u\n  password: \"{}\"\n  host: h2\n", planted[0]),
            "convert",
        ),
        (
            "quote.yaml",
            format!("source-id: mysql-01\nfrom:\n  host: h\n  password: \"{}\n  port: 3306\n", planted[1]),
            "convert",
        ),
        (
            "cr.yaml",
            format!("source-id: mysql-01\nfrom:\n  user: u\r  password: {}\r  port: [3306\n", planted[2]),
            "convert",
        ),
        (
            "mapkey.yaml",
            format!("source-id: mysql-01\nfrom:\n  password:\n    {0}: 1\n    {0}: 2\n", planted[3]),
            "convert",
        ),
        // dm-apply files, through `validate`.
        (
            "pw.yaml",
            format!("sources:\n  - source_name: a\n    host: h\n    port: 3306\n    user: u\n    pw: {}\n", planted[4]),
            "validate",
        ),
        (
            "mapkey-dm.yaml",
            format!(
                "sources:\n  - source_name: a\n    host: h\n    port: 3306\n    user: u\n    password:\n      {0}: 1\n      \
                 {0}: 2\n",
                planted[3]
            ),
            "validate",
        ),
        (
            "mapping-dm.yaml",
            format!(
                "sources:\n  - source_name: a\n    host: h\n    port: 3306\n    user: u\n    password: {{{}: x}}\n",
                planted[3]
            ),
            "validate",
        ),
        (
            "cr-dm.yaml",
            format!("sources:\n  - source_name: a\n    user: u\r    password: {}\r    port: 3306\n", planted[2]),
            "validate",
        ),
    ];
    let mut reported = 0;
    for (name, text, command) in &files {
        std::fs::write(dir.path().join(name), text).unwrap();
        let args: Vec<&str> = if *command == "convert" { vec!["convert", name] } else { vec!["validate", "-f", name] };
        for (what, code, all) in outputs(dir.path(), &args, &[]) {
            assert_eq!(code, Some(1), "{what}: the file is invalid:\n{all}");
            assert!(!all.contains("panicked"), "{what}:\n{all}");
            for p in &planted {
                assert!(!all.contains(p), "{what} shows the secret `{p}`:\n{all}");
            }
            // Not vacuous: the diagnostic points into the file.
            if all.contains(&format!("{name}:")) {
                reported += 1;
            }
        }
    }
    assert_eq!(reported, files.len() * 3, "every error names its file and position");
}

/// DM-master echoing a secret it was sent (an error message quoting the target password, a status message with the
/// source password): every output scrubs the values dm-apply knows, in text and JSON, in reports and logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_echoed_by_dm_are_scrubbed() {
    let sim = SimServer::start(SimOptions { workers: 6, seed: Some(9), ..SimOptions::default() }).await.unwrap();
    let (ctl, url) = (sim.control(), sim.url());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = [("DM_SOURCE_PASSWORD", SRC_PW), ("DM_TARGET_PASSWORD", TGT_PW)];
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            outputs(root, &args, &env)
        })
    };
    let seen = run(s(&["apply", "-f", "examples", "--auto-approve", "--addr", &url])).await.unwrap();
    assert_eq!(seen[0].1, Some(0), "{}", seen[0].2);
    // DM pauses a task with a message quoting both passwords (as a driver error might).
    let msg = format!(
        "[code=10001:class=database] Error 1045: Access denied for user 'dm_writer' (password '{TGT_PW}'); source \
         said {SRC_PW}"
    );
    ctl.pause_task_with_error("orders-incremental", "mysql-orders", &msg);
    let client = dm_apply::dm::DmClient::new(&dm_apply::dm::ClientOptions::new(url.clone())).unwrap();
    let status = client.task_status("orders-incremental").await.unwrap();
    assert!(format!("{status:?}").contains(TGT_PW), "not vacuous: DM's answer holds the password");
    let mut all = vec![];
    // Read-only commands: run at once.
    let reads: Vec<_> = [
        s(&["drift", "-f", "examples", "--addr", &url]),
        s(&["drift", "-f", "examples", "-o", "json", "--addr", &url]),
        s(&["plan", "-f", "examples", "-o", "json", "--addr", &url]),
        s(&["import", "--addr", &url]),
    ]
    .into_iter()
    .map(run)
    .collect();
    for r in reads {
        all.extend(r.await.unwrap());
    }
    // apply starts the paused task; DM pauses it again with the same message: the wait fails quoting it, once the
    // few seconds have passed in which apply takes the error it saw before the start for DM's stale report. One
    // simulator per verbosity, set up alike, so that those waits run at once.
    let msg = std::sync::Arc::new(msg);
    let finals: Vec<_> = VERBOSITIES
        .into_iter()
        .map(|verbosity| {
            let msg = msg.clone();
            tokio::spawn(async move {
                let sim =
                    SimServer::start(SimOptions { workers: 6, seed: Some(9), ..SimOptions::default() }).await.unwrap();
                let (ctl, url) = (sim.control(), sim.url());
                let run = |args: Vec<String>, verbosity| {
                    tokio::task::spawn_blocking(move || {
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        output(root, &args, &env, verbosity)
                    })
                };
                let (what, code, text) =
                    run(s(&["apply", "-f", "examples", "--auto-approve", "--addr", &url]), (false, false))
                        .await
                        .unwrap();
                assert_eq!(code, Some(0), "{what}: {text}");
                ctl.pause_task_with_error("orders-incremental", "mysql-orders", &msg);
                let watcher = {
                    let (ctl, msg) = (ctl.clone(), msg.clone());
                    tokio::spawn(async move {
                        for _ in 0..20_000 {
                            let log = ctl.request_log();
                            if log.iter().any(|r| r.path.ends_with("/orders-incremental/start")) {
                                ctl.pause_task_with_error("orders-incremental", "mysql-orders", &msg);
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        }
                    })
                };
                let seen =
                    run(s(&["apply", "-f", "examples", "--auto-approve", "-o", "json", "--addr", &url]), verbosity)
                        .await;
                watcher.abort();
                sim.shutdown().await;
                let (what, code, text) = seen.unwrap();
                // Not vacuous: the wait failed on DM's message, which the report shows scrubbed.
                assert_eq!(code, Some(1), "{what}: {text}");
                assert!(
                    text.contains("Access denied for user 'dm_writer' (password '(sensitive value)')"),
                    "{what}: {text}"
                );
                (what, code, text)
            })
        })
        .collect();
    for f in finals {
        all.push(f.await.unwrap());
    }
    let mut echoed = 0;
    for (what, _, text) in &all {
        for secret in [SRC_PW, TGT_PW] {
            assert!(!text.contains(secret), "{what} shows a secret DM echoed:\n{text}");
        }
        if text.contains("Access denied for user 'dm_writer' (password '(sensitive value)')") {
            echoed += 1;
        }
    }
    assert!(echoed >= 3, "the echoed message was shown (scrubbed) by drift, import and apply: {echoed}");
    sim.shutdown().await;
}
