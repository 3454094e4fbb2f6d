//! dm-apply's state record through the CLI binary against the in-process simulator, on every server generation:
//! where the record lives (a declared task's target), trust on first use, password rotation, the version-field
//! mode, `-replace`, what a reader of DM or of a saved plan can test, the apply lease, and `${file:PATH}`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::apply_common::join_all;
use dm_apply::dm::types::TargetConfig;
use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::sim::{Generation, LoggedRequest, SimOptions, SimServer};
use dm_apply::state::lease::{self, LEASE_TEMPLATE};
use dm_apply::state::{StateView, store};

/// The generations to prove everything on (the lead extends this list at merge).
const GENERATIONS: [Generation; 4] = Generation::ALL;

const SOURCE_PW: &str = "493817";
const TARGET_PW: &str = "tgt-pw-0xbeef";

/// One source and two tasks; the task with the smallest name (`a-copy`) carries the v8.5 write-only fields:
/// target TLS, a session, physical import with `pd_addr`.
const CONFIG: &str = r#"
sources:
  - source_name: s1
    host: mysql-1.db.internal
    port: 3306
    user: dm
    password: ${env:PW_S1}
tasks:
  - name: a-copy
    task_mode: full
    target_config:
      host: tidb-a.db.internal
      port: 4000
      user: writer_a
      password: ${env:PW_T}
      security: {ssl_ca_content: CA-PEM, ssl_cert_content: CERT-PEM, ssl_key_content: "${env:PW_T}"}
      session: {foreign_key_checks: "0"}
    table_migrate_rule: [{source: {source_name: s1, schema: catalog}}]
    source_config:
      full_migrate_conf: {import_mode: physical, pd_addr: "pd.db.internal:2379", sorting_dir: ./sort}
      source_conf: [{source_name: s1}]
    lifecycle: {allow_restart: true}
  - name: b-sync
    task_mode: incremental
    target_config: {host: tidb-b.db.internal, port: 4000, user: writer_b, password: "${env:PW_T}"}
    table_migrate_rule: [{source: {source_name: s1, schema: shop}}]
    source_config:
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}]
"#;

fn bin(envs: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    c.stdin(Stdio::null())
        .env_remove("NO_COLOR")
        .env_remove("DM_APPLY_STATE_KEY")
        .env_remove("DM_APPLY_STATE_KEY_FILE")
        .env("RUST_LOG", "error")
        .env("PW_S1", SOURCE_PW)
        .env("PW_T", TARGET_PW);
    for (k, v) in envs {
        c.env(k, v);
    }
    c
}

/// Run the binary off the async runtime; (exit code, stdout, stderr).
async fn run(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let envs: Vec<(String, String)> = envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let e: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let o: Output = bin(&e).args(&args).output().expect("binary runs");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

async fn sim(g: Generation) -> (SimServer, DmClient) {
    let sim = SimServer::start(SimOptions { generation: g, workers: 4, seed: Some(11), ..SimOptions::default() })
        .await
        .expect("simulator");
    let client = DmClient::new(&ClientOptions::new(sim.url())).expect("client");
    (sim, client)
}

fn write_config(dir: &Path, yaml: &str) -> String {
    let p = dir.join("dm.yaml");
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

fn source_puts(log: &[LoggedRequest]) -> Vec<String> {
    log.iter().filter(|r| r.method == "PUT" && r.path.starts_with("/api/v1/sources/")).map(|r| r.path.clone()).collect()
}

async fn record(client: &DmClient) -> (dm_apply::state::StateRecord, TargetConfig) {
    match store::read(client).await {
        StateView::Record { record, target } => (record, target),
        v => panic!("no state record: {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_keeps_the_record_on_a_declared_target_and_the_next_plan_is_empty() {
    for g in GENERATIONS {
        let (sim, client) = sim(g).await;
        let dir = tempfile::tempdir().unwrap();
        let f = write_config(dir.path(), CONFIG);
        let url = sim.url();
        let (code, out, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &[]).await;
        assert_eq!(code, 0, "{g:?}\n{out}\n{err}");
        assert!(err.contains("Verified: a new plan shows no changes."), "{g:?} {err}");
        let (code, out, err) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &[]).await;
        assert_eq!(code, 0, "{g:?}\n{out}\n{err}");
        assert!(out.contains("No changes.") && !out.contains("Note:"), "{g:?}\n{out}");
        // The template connects to the target of the declared task with the smallest name, as DM-master needs.
        let t = client.get_template("dm-apply-state").await.unwrap().expect("template");
        assert_eq!(
            (t.target_config.host.as_str(), t.target_config.port, t.target_config.user.as_str()),
            ("tidb-a.db.internal", 4000, "writer_a"),
            "{g:?}"
        );
        assert_eq!(t.target_config.password.expose(), TARGET_PW);
        assert!(t.target_config.security.is_some(), "{g:?}: the target's TLS goes with it");
        let (rec, _) = record(&client).await;
        for a in ["source.s1", "task.a-copy", "task.b-sync"] {
            assert!(rec.resources.contains_key(a), "{g:?}: {a} not recorded: {rec:?}");
        }
        assert!(rec.lease.is_none(), "{g:?}: the lease was released");
        assert!(client.get_template(LEASE_TEMPLATE).await.unwrap().is_none(), "{g:?}: the lease was released");
        let task_fields = &rec.resources["task.a-copy"].fingerprints;
        if matches!(g, Generation::V853 | Generation::V854) {
            // v8.5 does not return them: tracked through the record.
            for k in ["target_config.security", "source_config.full_migrate_conf.pd_addr"] {
                assert!(task_fields.contains_key(k), "{g:?}: {k} missing: {task_fields:?}");
            }
        }
        // A second apply changes nothing at all.
        sim.control().clear_log();
        let (code, _, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &[]).await;
        assert_eq!(code, 0, "{err}");
        assert!(sim.control().request_log().iter().all(|r| !r.mutating), "{g:?}: a no-op apply mutated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_built_by_another_client_is_adopted_without_sending_anything() {
    for g in GENERATIONS {
        let (sim, client) = sim(g).await;
        let dir = tempfile::tempdir().unwrap();
        let f = write_config(dir.path(), CONFIG);
        let url = sim.url();
        // Another client creates the same sources and tasks from the same configuration.
        let env = |n: &str| match n {
            "PW_S1" => Some(SOURCE_PW.to_string()),
            "PW_T" => Some(TARGET_PW.to_string()),
            _ => None,
        };
        let desired = dm_apply::config::analyze_with_env(&[f.clone().into()], &env).desired;
        let version = client.server_version().await.unwrap().clone();
        for (spec, _) in desired.sources.values() {
            client.create_source(&dm_apply::normalize::source_to_wire(spec, &version), None).await.unwrap();
        }
        for (spec, _) in desired.tasks.values() {
            client.create_task(&dm_apply::normalize::task_to_wire(spec, &version)).await.unwrap();
            client.start_task(&spec.name, &Default::default()).await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (code, out, err) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &[]).await;
        assert_eq!(code, 0, "{g:?}\n{out}\n{err}");
        assert!(out.contains("No changes."), "{g:?}\n{out}");
        assert!(out.contains("Note: source.s1: write-only values trusted"), "{g:?}\n{out}");
        let (code, out, _) = run(&["drift", "-f", &f, "--addr", &url], &[]).await;
        assert_eq!(code, 0, "{g:?}: no drift\n{out}");
        sim.control().clear_log();
        let (code, out, err) = run(&["apply", "-f", &f, "--addr", &url], &[]).await;
        assert_eq!(code, 0, "{g:?}: recording needs no approval\n{out}\n{err}");
        let log = sim.control().request_log();
        assert!(source_puts(&log).is_empty(), "{g:?}: a source was sent: {log:?}");
        let other: Vec<&LoggedRequest> =
            log.iter().filter(|r| r.mutating && !r.path.starts_with("/api/v1/tasks/templates")).collect();
        assert!(other.is_empty(), "{g:?}: only the record was written: {other:?}");
        let (code, out, _) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &[]).await;
        assert_eq!(code, 0);
        assert!(!out.contains("Note:"), "{g:?}: adopted once\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_password_is_one_put_then_quiet_in_both_modes_and_replace_resends() {
    // The cases are independent (a simulator each): run at once, a failed assertion fails the test.
    join_all(GENERATIONS.into_iter().map(|g| {
        tokio::spawn(async move {
            let (sim, _client) = sim(g).await;
            let dir = tempfile::tempdir().unwrap();
            let f = write_config(dir.path(), CONFIG);
            let url = sim.url();
            let (code, _, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &[]).await;
            assert_eq!(code, 0, "{err}");
            let rotated = [("PW_S1", "271828")];

            // Fingerprint mode.
            let (code, out, err) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &rotated).await;
            assert_eq!(code, 2, "{g:?}\n{out}\n{err}");
            assert!(out.contains("~ password = (sensitive value)"), "{g:?}\n{out}");
            assert!(!out.contains("271828") && !err.contains("271828"));
            sim.control().clear_log();
            let (code, out, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &rotated).await;
            assert_eq!(code, 0, "{g:?}\n{out}\n{err}");
            assert_eq!(source_puts(&sim.control().request_log()), ["/api/v1/sources/s1"], "{g:?}");
            let (code, out, _) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &rotated).await;
            assert_eq!(code, 0, "{g:?}\n{out}");

            // Version-field mode: switching sends nothing; a new password alone is not seen; a bump sends it.
            let versioned = |v: u32| {
                CONFIG.replace(
                    "password: ${env:PW_S1}",
                    &format!("password: ${{env:PW_S1}}\n    write_only_version: {v}"),
                )
            };
            write_config(dir.path(), &versioned(1));
            sim.control().clear_log();
            let (code, out, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &rotated).await;
            assert_eq!(code, 0, "{g:?}\n{out}\n{err}");
            assert!(source_puts(&sim.control().request_log()).is_empty(), "{g:?}");
            let again = [("PW_S1", "314159")];
            let (code, out, _) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &again).await;
            assert_eq!(code, 0, "{g:?}: no fingerprint in this mode\n{out}");
            write_config(dir.path(), &versioned(2));
            let (code, out, _) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &again).await;
            assert_eq!(code, 2, "{g:?}\n{out}");
            assert!(out.contains("~ password = (sensitive value)") && out.contains("from 1 to 2"), "{g:?}\n{out}");
            sim.control().clear_log();
            let (code, out, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &again).await;
            assert_eq!(code, 0, "{g:?}\n{out}\n{err}");
            assert_eq!(source_puts(&sim.control().request_log()), ["/api/v1/sources/s1"], "{g:?}");
            let (code, out, _) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &again).await;
            assert_eq!(code, 0, "{g:?}\n{out}");

            // -replace re-sends, whatever the record says (single-dash spelling as in Terraform).
            sim.control().clear_log();
            let (code, out, err) =
                run(&["apply", "-f", &f, "--auto-approve", "-replace", "source.s1", "--addr", &url], &again).await;
            assert_eq!(code, 0, "{g:?}\n{out}\n{err}");
            assert!(out.contains("re-sent as asked"), "{g:?}\n{out}");
            assert_eq!(source_puts(&sim.control().request_log()), ["/api/v1/sources/s1"], "{g:?}");
        })
    }))
    .await;
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every run of hex digits of 16 or more characters in `text` (salts, hashes, ids).
fn hex_runs(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            cur.push(c);
        } else {
            if cur.len() >= 16 {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_dm_nor_a_saved_plan_lets_a_six_digit_password_be_tested_with_a_fast_hash() {
    for g in GENERATIONS {
        let (sim, client) = sim(g).await;
        let dir = tempfile::tempdir().unwrap();
        let f = write_config(dir.path(), CONFIG);
        let url = sim.url();
        let (code, _, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &[]).await;
        assert_eq!(code, 0, "{err}");
        // A saved plan of a rotation (it has changes, so every field a plan may carry is there).
        let saved = dir.path().join("plan.json");
        let (code, _, err) = run(
            &["plan", "-f", &f, "--out", saved.to_str().unwrap(), "-o", "json", "--addr", &url],
            &[("PW_S1", "000000")],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let plan_text = std::fs::read_to_string(&saved).unwrap();
        for word in ["salt", "argon2", "hmac", "fingerprint"] {
            assert!(!plan_text.contains(word), "{g:?}: the saved plan carries `{word}`");
        }
        let t = client.get_template("dm-apply-state").await.unwrap().expect("template");
        let template_text = serde_json::to_string(&t).unwrap();
        // Every fingerprint of the record is Argon2id with at least OWASP's parameters.
        let (rec, _) = record(&client).await;
        let fps: Vec<&dm_apply::state::Fingerprint> =
            rec.resources.values().flat_map(|e| e.fingerprints.values()).collect();
        assert!(!fps.is_empty());
        for fp in &fps {
            match fp {
                dm_apply::state::Fingerprint::Argon2id { m, t, p, .. } => {
                    assert!(*m >= 19 * 1024 && *t >= 2 && *p >= 1, "{g:?}: weak parameters {fp:?}")
                }
                other => panic!("{g:?}: not memory-hard without a key: {other:?}"),
            }
        }
        // No fast hash of the password under any stored salt (or none) appears anywhere: one SHA-256 or HMAC per
        // guess would find a 6-digit password in a second.
        for text in [&template_text, &plan_text] {
            let runs = hex_runs(text);
            let mut candidates = vec![sha256_hex(&[SOURCE_PW.as_bytes()]), hmac_hex(b"", SOURCE_PW.as_bytes())];
            for salt in &runs {
                candidates.push(sha256_hex(&[salt.as_bytes(), SOURCE_PW.as_bytes()]));
                candidates.push(sha256_hex(&[salt.as_bytes(), &[0], SOURCE_PW.as_bytes()]));
                candidates.push(sha256_hex(&[SOURCE_PW.as_bytes(), salt.as_bytes()]));
                candidates.push(hmac_hex(salt.as_bytes(), SOURCE_PW.as_bytes()));
            }
            for c in candidates {
                assert!(!text.contains(&c), "{g:?}: a fast hash of the password is stored");
            }
            assert!(!text.contains(&format!("\"{SOURCE_PW}\"")), "{g:?}: the password itself is stored");
        }
        // With a key, entries are keyed HMACs under an id; the key itself is stored nowhere.
        let key = "0123456789abcdef-state-key";
        let (code, _, err) = run(
            &["apply", "-f", &f, "--auto-approve", "--replace", "source.s1", "--addr", &url],
            &[("DM_APPLY_STATE_KEY", key)],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let (rec, _) = record(&client).await;
        assert!(matches!(
            rec.resources["source.s1"].fingerprints["password"],
            dm_apply::state::Fingerprint::Hmac { .. }
        ));
        let t = serde_json::to_string(&client.get_template("dm-apply-state").await.unwrap()).unwrap();
        assert!(!t.contains(key), "{g:?}: the key is stored in DM");
        // A plan with another key cannot verify them: not tracked, a note says why, never a change.
        let (code, out, _) = run(
            &["plan", "-f", &f, "--detailed-exitcode", "--addr", &url],
            &[("DM_APPLY_STATE_KEY", "another-key-0123456789")],
        )
        .await;
        assert_eq!(code, 0, "{g:?}\n{out}");
        assert!(out.contains("another state key"), "{g:?}\n{out}");
        // A too short key is refused.
        let (code, _, err) = run(&["plan", "-f", &f, "--addr", &url], &[("DM_APPLY_STATE_KEY", "short")]).await;
        assert_eq!(code, 1);
        assert!(err.contains("5 bytes long"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_apply_at_a_time_and_take_over() {
    for g in GENERATIONS {
        let (sim, client) = sim(g).await;
        let dir = tempfile::tempdir().unwrap();
        let f = write_config(dir.path(), CONFIG);
        let url = sim.url();
        // Two applies at once on an empty cluster: exactly one proceeds; the other changes nothing.
        sim.control().set_latency(std::time::Duration::from_millis(20));
        let args = ["apply", "-f", f.as_str(), "--auto-approve", "--addr", url.as_str()];
        let (a, b) = tokio::join!(run(&args, &[]), run(&args, &[]));
        sim.control().set_latency(std::time::Duration::ZERO);
        let codes = [a.0, b.0];
        assert!(codes.contains(&0) && codes.contains(&1), "{g:?}: {a:?}\n{b:?}");
        let loser = if a.0 == 1 { &a } else { &b };
        assert!(loser.2.contains("another apply"), "{g:?}: {}", loser.2);
        assert!(loser.2.contains("nothing was changed"), "{g:?}: {}", loser.2);

        // A lease left behind by an apply that died: refused, naming the holder and its age; then taken over.
        let (mut rec, target) = record(&client).await;
        rec.lease = Some(dm_apply::state::Lease {
            holder: "ci@runner-7".into(),
            pid: 4242,
            id: "dead-apply".into(),
            since: dm_apply::state::now() - 600,
        });
        store::write(&client, &rec, &target, true).await.unwrap();
        let rotated = [("PW_S1", "161803")];
        sim.control().clear_log();
        let (code, out, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &rotated).await;
        assert_eq!(code, 1, "{g:?}\n{out}\n{err}");
        assert!(err.contains("ci@runner-7 (pid 4242)") && err.contains("for 10m"), "{g:?}\n{err}");
        assert!(err.contains("--take-over-lease"), "{g:?}\n{err}");
        assert!(sim.control().request_log().iter().all(|r| !r.mutating), "{g:?}: refused before any mutation");
        // plan and drift never take the lease.
        let (code, _, _) = run(&["plan", "-f", &f, "--addr", &url], &rotated).await;
        assert_eq!(code, 0);
        assert!(sim.control().request_log().iter().all(|r| !r.mutating));
        let (code, out, err) =
            run(&["apply", "-f", &f, "--auto-approve", "--take-over-lease", "--addr", &url], &rotated).await;
        assert_eq!(code, 0, "{g:?}\n{out}\n{err}");
        assert!(err.contains("replaced the apply lease of ci@runner-7"), "{g:?}\n{err}");
        assert!(record(&client).await.0.lease.is_none(), "{g:?}: released at the end");
        assert!(client.get_template(LEASE_TEMPLATE).await.unwrap().is_none(), "{g:?}: released at the end");

        // The same with a lease of this build left behind (its own template): refused, then taken over.
        let dead = dm_apply::state::Lease {
            holder: "ci@runner-8".into(),
            pid: 4343,
            id: "dead-apply-2".into(),
            since: dm_apply::state::now() - 7200,
        };
        client.create_template(&lease::to_template(&dead, &target)).await.unwrap();
        sim.control().clear_log();
        let (code, out, err) =
            run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &[("PW_S1", "314159")]).await;
        assert_eq!(code, 1, "{g:?}\n{out}\n{err}");
        assert!(err.contains("ci@runner-8 (pid 4343)") && err.contains("for 2h00m"), "{g:?}\n{err}");
        assert!(err.contains("nothing was changed") && err.contains("--take-over-lease"), "{g:?}\n{err}");
        assert!(sim.control().request_log().iter().all(|r| !(r.mutating && r.status < 400)), "{g:?}: no change");
        let (code, out, err) =
            run(&["apply", "-f", &f, "--auto-approve", "--take-over-lease", "--addr", &url], &[("PW_S1", "314159")])
                .await;
        assert_eq!(code, 0, "{g:?}\n{out}\n{err}");
        assert!(err.contains("replaced the apply lease of ci@runner-8"), "{g:?}\n{err}");
        assert!(client.get_template(LEASE_TEMPLATE).await.unwrap().is_none(), "{g:?}: released at the end");

        // Someone else's template with the lease's name: refused, even with --take-over-lease, and left alone.
        let mut foreign_lease = lease::to_template(&dead, &target);
        foreign_lease.binlog_filter_rule = None;
        client.create_template(&foreign_lease).await.unwrap();
        for extra in [&[][..], &["--take-over-lease"][..]] {
            let args: Vec<&str> = ["apply", "-f", f.as_str(), "--auto-approve", "--addr", url.as_str()]
                .iter()
                .chain(extra)
                .copied()
                .collect();
            let (code, out, err) = run(&args, &[("PW_S1", "2718")]).await;
            assert_eq!(code, 1, "{g:?} {extra:?}\n{out}\n{err}");
            let flat = err.split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ");
            assert!(flat.contains("is not dm-apply's lease: rename or delete it"), "{g:?} {extra:?}\n{err}");
        }
        let kept = client.get_template(LEASE_TEMPLATE).await.unwrap().expect("left alone");
        assert!(kept.binlog_filter_rule.is_none(), "{g:?}");
        client.delete_template(LEASE_TEMPLATE).await.unwrap();

        // Someone else's template with the record's name: refused with what to do.
        let mut foreign = dm_apply::state::StateRecord::default().to_template(&target);
        foreign.binlog_filter_rule = None;
        client.update_template(&foreign).await.unwrap();
        let (code, out, _) = run(&["plan", "-f", &f, "--addr", &url], &[]).await;
        assert_eq!(code, 0);
        assert!(out.contains("not dm-apply's state record"), "{g:?}\n{out}");
        // Write-only values cannot be judged then (no change is seen); any other change is refused before it is made.
        let f2 = write_config(dir.path(), &CONFIG.replace("port: 3306", "port: 3307"));
        sim.control().clear_log();
        let (code, _, err) = run(&["apply", "-f", &f2, "--auto-approve", "--addr", &url], &rotated).await;
        assert_eq!(code, 1, "{g:?}");
        assert!(err.contains("rename or delete") && err.contains("nothing was"), "{g:?}\n{err}");
        assert!(sim.control().request_log().iter().all(|r| !r.mutating), "{g:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_dm_cannot_reach_refuses_the_lease_with_the_reason() {
    for g in GENERATIONS {
        let (sim, _client) = sim(g).await;
        let dir = tempfile::tempdir().unwrap();
        let f = write_config(dir.path(), &CONFIG.replace("tidb-a.db.internal", "tidb-a.invalid"));
        let url = sim.url();
        let (code, out, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &[]).await;
        assert_eq!(code, 1, "{g:?}\n{out}\n{err}");
        assert!(err.contains("cannot write dm-apply's state record"), "{g:?}\n{err}");
        assert!(err.contains("task.a-copy") && err.contains("no such host"), "{g:?}\n{err}");
        assert!(err.contains("--no-lease"), "{g:?}\n{err}");
        let log = sim.control().request_log();
        let ok_mutations = log.iter().filter(|r| r.mutating && r.status < 400).count();
        assert_eq!(ok_mutations, 0, "{g:?}: nothing changed: {log:?}");
        // --no-lease goes ahead (the task on the unreachable target then fails on its own).
        let (_, _, err) = run(&["apply", "-f", &f, "--auto-approve", "--no-lease", "--addr", &url], &[]).await;
        assert!(err.contains("--no-lease: no lease"), "{g:?}\n{err}");
        assert!(sim.control().request_log().iter().any(|r| r.method == "POST" && r.path == "/api/v1/sources"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_declared_task_nothing_is_recorded_and_the_plan_says_so() {
    let (sim, client) = sim(Generation::Head).await;
    let dir = tempfile::tempdir().unwrap();
    let only = "sources:\n  - {source_name: s1, host: mysql-1.db.internal, port: 3306, user: dm, password: \"${env:PW_S1}\"}\n";
    let f = write_config(dir.path(), only);
    let url = sim.url();
    let (code, _, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no lease"), "{err}");
    assert!(client.get_template("dm-apply-state").await.unwrap().is_none());
    let (code, out, _) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &[("PW_S1", "changed")]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no task is declared"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_files_are_used_and_never_shown() {
    let (sim, _client) = sim(Generation::Head).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/s1"), "file-secret-0xfeed\n").unwrap();
    let f = write_config(dir.path(), &CONFIG.replace("${env:PW_S1}", "${file:secrets/s1}"));
    let url = sim.url();
    let (code, out, err) = run(&["validate", "-f", &f], &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("file-secret") && !err.contains("file-secret"));
    // The value sent is the file's content, its trailing newline trimmed.
    let log = sim.control().request_log();
    let body = log.iter().find(|r| r.method == "POST" && r.path == "/api/v1/sources").and_then(|r| r.body.clone());
    assert!(body.unwrap_or_default().contains("\"file-secret-0xfeed\""));
    // A rotated file is seen like a rotated variable.
    std::fs::write(dir.path().join("secrets/s1"), "file-secret-0xbeef").unwrap();
    let (code, out, _) = run(&["plan", "-f", &f, "--detailed-exitcode", "-o", "json", "--addr", &url], &[]).await;
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("file-secret"));
    // A missing file: a diagnostic at file:line:col with the path and the OS error.
    std::fs::remove_file(dir.path().join("secrets/s1")).unwrap();
    let (code, _, err) = run(&["plan", "-f", &f, "--addr", &url], &[]).await;
    assert_eq!(code, 1);
    assert!(err.contains("cannot read secret file `secrets/s1`") && err.contains("No such file"), "{err}");
    assert!(err.contains("dm.yaml:7:"), "{err}");
    let (code, _, err) = run(&["validate", "-f", &f, "--allow-missing-env"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("cannot read secret file"), "{err}");
    // Only secret fields may read files.
    let f2 = write_config(dir.path(), &CONFIG.replace("host: mysql-1.db.internal", "host: ${file:secrets/s1}"));
    let (code, _, err) = run(&["validate", "-f", &f2], &[]).await;
    assert_eq!(code, 1);
    assert!(err.contains("files are read only into secret"), "{err}");
}

/// The `argon2id=N argon2id_computed=M` pairs of a run's debug log, one per planning pass that checked fingerprints.
fn argon2_passes(stderr: &str) -> Vec<(usize, usize)> {
    let field = |line: &str, name: &str| -> usize {
        let at = line.find(&format!(" {name}=")).unwrap_or_else(|| panic!("{name} in {line}"));
        let rest = &line[at + name.len() + 2..];
        rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).expect("a count")
    };
    stderr
        .lines()
        .filter(|l| l.contains("fingerprints checked"))
        .map(|l| (field(l, "argon2id"), field(l, "argon2id_computed")))
        .collect()
}

/// Without a key, apply checks each tracked value when it plans and again when it verifies: the second check, and
/// the check of a fingerprint it has just written, reuse the Argon2id hash the run already has. A new process
/// computes them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_apply_hashes_each_value_once() {
    let (sim, _client) = sim(Generation::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let f = write_config(dir.path(), CONFIG);
    let url = sim.url();
    let debug = [("RUST_LOG", "dm_apply=debug")];

    // A new cluster: nothing to check before; the verification checks what apply just recorded.
    let (code, out, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &debug).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let passes = argon2_passes(&err);
    assert_eq!(passes.len(), 1, "only the verification checks fingerprints: {passes:?}\n{err}");
    let (checked, computed) = passes[0];
    assert!(checked >= 3, "the verification checks every recorded value: {passes:?}");
    assert_eq!(computed, 0, "the verification reuses the hashes apply wrote: {passes:?}");

    // A rotated password: the plan checks everything (a new process), the verification nothing new.
    let rotated = [("RUST_LOG", "dm_apply=debug"), ("PW_S1", "271828")];
    let (code, out, err) = run(&["apply", "-f", &f, "--auto-approve", "--addr", &url], &rotated).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let passes = argon2_passes(&err);
    assert_eq!(passes.len(), 2, "the plan, then the verification: {passes:?}\n{err}");
    assert_eq!(passes[0].0, checked, "{passes:?}");
    assert_eq!(passes[0].1, checked, "a new run computes each check: {passes:?}");
    assert_eq!(passes[1], (checked, 0), "the verification computes nothing again: {passes:?}");

    // And a plan in a new process computes every one again: the hashes live only as long as the run.
    let (code, out, err) = run(&["plan", "-f", &f, "--detailed-exitcode", "--addr", &url], &rotated).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(argon2_passes(&err), [(checked, checked)], "{err}");
    for text in [&out, &err] {
        for secret in [SOURCE_PW, TARGET_PW, "271828"] {
            assert!(!text.contains(secret), "a secret in the debug log:\n{text}");
        }
    }
}
