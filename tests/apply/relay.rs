//! Relay and worker binding through the real binary against the simulator: relay declared on, applied, plan empty;
//! a source update while relay runs (relay off, update, relay on); a transfer; `relay purge`; drift of a stopped
//! relay (text, JSON, Prometheus); import then plan; more new sources than free workers.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dm_apply::dm::types::{DisableRelayRequest, EnableRelayRequest, Stage};
use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::sim::{Generation, LoggedRequest, SimOptions, SimServer};

const SOURCE_PW: &str = "relay-source-pw-0x51";
const TARGET_PW: &str = "relay-target-pw-0x52";

/// The generations whose relay requests differ: v8.5.3 (no default injection), v8.5.4 and HEAD (injection).
const RELAY_GENERATIONS: [Generation; 3] = [Generation::V853, Generation::V854, Generation::Head];

async fn run(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("DM_APPLY_ADDR")
            .env("NO_COLOR", "1")
            .env("DM_SOURCE_PASSWORD", SOURCE_PW)
            .env("DM_TARGET_PASSWORD", TARGET_PW)
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(&args).output().expect("binary runs")
    })
    .await
    .expect("join")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

async fn sim(generation: Generation, workers: usize) -> (SimServer, DmClient) {
    let sim = SimServer::start(SimOptions {
        generation,
        workers,
        seed: Some(5),
        stage_delay: Duration::from_millis(5),
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let mut o = ClientOptions::new(sim.url());
    o.request_timeout = Duration::from_secs(5);
    let client = DmClient::new(&o).expect("client");
    (sim, client)
}

/// A source; `extra` holds more of its keys (indented like `worker_name`).
fn source_yaml(name: &str, extra: &str) -> String {
    format!(
        "  - source_name: {name}\n    host: {name}.db.internal\n    port: 3306\n    user: dm\n    password: \
         \"${{env:DM_SOURCE_PASSWORD}}\"\n{extra}"
    )
}

/// An incremental task from a binlog position on one source, running.
fn task_yaml(name: &str, source: &str) -> String {
    format!(
        r#"  - name: {name}
    task_mode: incremental
    target_config: {{host: tidb.internal, port: 4000, user: root, password: "${{env:DM_TARGET_PASSWORD}}"}}
    table_migrate_rule:
      - source: {{source_name: {source}, schema: shop, table: "*"}}
    source_config:
      source_conf:
        - {{source_name: {source}, binlog_name: mysql-bin.000001, binlog_pos: 4}}
"#
    )
}

fn config(sources: &[String], tasks: &[String]) -> String {
    let mut s = format!("sources:\n{}", sources.concat());
    if !tasks.is_empty() {
        s.push_str(&format!("tasks:\n{}", tasks.concat()));
    }
    s
}

fn write(dir: &tempfile::TempDir, yaml: &str) -> String {
    let p = dir.path().join("dm.yaml");
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

/// Relay workers by source, as DM lists them (relay status present).
async fn relay_of(c: &DmClient) -> BTreeMap<String, BTreeSet<String>> {
    c.list_sources(true, Some(true))
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            let w = s
                .status_list
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.relay_status.is_some())
                .map(|e| e.worker_name)
                .collect();
            (s.source_name, w)
        })
        .collect()
}

async fn bound_to(c: &DmClient, source: &str) -> Option<String> {
    c.list_workers().await.unwrap().into_iter().find(|w| w.bound_source_name == source).map(|w| w.name)
}

fn refused(log: &[LoggedRequest]) -> Vec<String> {
    log.iter()
        .filter(|r| r.mutating && (400..500).contains(&r.status))
        .map(|r| format!("{} {} -> {} {:?}", r.method, r.path, r.status, r.body))
        .collect()
}

async fn apply_ok(url: &str, file: &str, what: &str) -> String {
    let o = run(args(&["apply", "-f", file, "--auto-approve", "--addr", url]), vec![]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{what}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("Verified: a new plan shows"), "{what}: {err}");
    out
}

async fn plan_is_empty(url: &str, file: &str, what: &str) {
    let o = run(args(&["plan", "-f", file, "--detailed-exitcode", "--addr", url]), vec![]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{what}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("No changes."), "{what}: {out}");
}

/// Source `a` on worker1 with relay on its bound worker, source `b` on worker2 with relay on worker3, a task each.
fn relay_cluster(purge: &str) -> String {
    config(
        &[
            source_yaml("a", &format!("    worker_name: worker1\n    relay: {{enabled: true}}\n{purge}")),
            source_yaml(
                "b",
                &format!("    worker_name: worker2\n    relay: {{enabled: true, workers: [worker3]}}\n{purge}"),
            ),
        ],
        &[task_yaml("ta", "a"), task_yaml("tb", "b")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_declared_on_is_applied_and_the_next_plan_is_empty() {
    for g in Generation::ALL {
        let (sim, c) = sim(g, 4).await;
        let url = sim.url();
        let dir = tempfile::tempdir().unwrap();
        let f = write(&dir, &relay_cluster(""));
        let o = run(args(&["plan", "-f", &f, "--addr", &url]), vec![]).await;
        let (out, _) = text(&o);
        assert!(out.contains("relay starts on the bound DM-worker worker1"), "{g:?}: {out}");
        assert!(out.contains("relay starts on worker3"), "{g:?}: {out}");
        assert!(out.contains("> start relay (POST /relay/enable)"), "{g:?}: {out}");
        let out = apply_ok(&url, &f, &format!("{g:?}")).await;
        assert!(out.contains("source.a: start relay on the bound worker"), "{g:?}: {out}");
        assert!(out.contains("source.b: start relay on worker3"), "{g:?}: {out}");
        assert!(out.contains("source.a: create source on worker worker1"), "{g:?}: {out}");
        let relay = relay_of(&c).await;
        assert_eq!(relay["a"], BTreeSet::from(["worker1".to_string()]), "{g:?}");
        assert_eq!(relay["b"], BTreeSet::from(["worker3".to_string()]), "{g:?}");
        // On the bound worker nothing is named and no body is sent; naming a worker sends the source's own relay_dir,
        // so DM v8.5.4+ does not inject `./relay_log` into it.
        let log = sim.control().request_log();
        let enables: Vec<&LoggedRequest> = log.iter().filter(|r| r.path.ends_with("/relay/enable")).collect();
        let a = enables.iter().find(|r| r.path == "/api/v1/sources/a/relay/enable").unwrap();
        assert!(a.body.is_none() && a.content_type.is_none(), "{g:?}: {a:?}");
        let b = enables.iter().find(|r| r.path == "/api/v1/sources/b/relay/enable").unwrap();
        assert!(b.body.as_deref().unwrap().contains("\"relay_dir\":\"relay-dir\""), "{g:?}: {b:?}");
        let stored = c.get_source("b", false).await.unwrap().unwrap().relay_config.unwrap().relay_dir;
        assert_eq!(stored.as_deref(), Some("relay-dir"), "{g:?}: the source was not rewritten");
        assert!(refused(&log).is_empty(), "{g:?}: {:#?}", refused(&log));
        plan_is_empty(&url, &f, &format!("{g:?}")).await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_update_while_relay_runs_stops_relay_updates_and_starts_it_again() {
    for g in RELAY_GENERATIONS {
        let (sim, c) = sim(g, 4).await;
        let url = sim.url();
        let dir = tempfile::tempdir().unwrap();
        let f = write(&dir, &relay_cluster(""));
        apply_ok(&url, &f, &format!("{g:?} first apply")).await;
        sim.control().clear_log();
        let f = write(&dir, &relay_cluster("    purge: {expires: 72}\n"));
        let o = run(args(&["plan", "-f", &f, "--addr", &url]), vec![]).await;
        let (out, _) = text(&o);
        assert!(!out.contains("BLOCKED"), "{g:?}: relay is declared, so the update is planned: {out}");
        assert!(
            out.contains("relay on worker1 stops before the source's configuration is written and starts again"),
            "{g:?}: {out}"
        );
        let out = apply_ok(&url, &f, &format!("{g:?} update")).await;
        for (first, then) in [
            ("source.a: stop relay on worker1", "task.ta: stop task"),
            ("task.ta: wait until Paused", "source.a: update source"),
            ("source.a: update source", "task.ta: start task"),
            ("task.ta: wait until Running", "source.a: start relay on the bound worker"),
            ("source.b: stop relay on worker3", "source.b: update source"),
            ("source.b: update source", "source.b: start relay on worker3"),
        ] {
            let (i, j) = (out.find(first), out.find(then));
            assert!(i.is_some() && j.is_some() && i < j, "{g:?}: `{first}` before `{then}`:\n{out}");
        }
        let log = sim.control().request_log();
        assert!(refused(&log).is_empty(), "{g:?}: DM refused nothing: {:#?}", refused(&log));
        let got = c.get_source("a", false).await.unwrap().unwrap();
        assert_eq!(got.purge.unwrap().expires, Some(72), "{g:?}");
        let relay = relay_of(&c).await;
        assert_eq!(relay["a"], BTreeSet::from(["worker1".to_string()]), "{g:?}");
        assert_eq!(relay["b"], BTreeSet::from(["worker3".to_string()]), "{g:?}");
        assert_eq!(c.task_status("ta").await.unwrap()[0].stage, Stage::Running, "{g:?}");
        plan_is_empty(&url, &f, &format!("{g:?}")).await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_started_by_hand_and_not_declared_still_blocks_an_update() {
    let (sim, c) = sim(Generation::V854, 3).await;
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, &config(&[source_yaml("a", "")], &[]));
    apply_ok(&url, &f, "create").await;
    c.enable_relay(
        "a",
        Some(&EnableRelayRequest {
            worker_name_list: Some(vec!["worker3".into()]),
            relay_dir: Some("relay-dir".into()),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let f = write(&dir, &config(&[source_yaml("a", "    purge: {expires: 72}\n")], &[]));
    let o = run(args(&["plan", "-f", &f, "--addr", &url, "--detailed-exitcode"]), vec![]).await;
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("BLOCKED") && out.contains("relay runs for source a"), "{out}");
    assert!(!out.contains("> stop relay"), "relay that is not declared is not touched: {out}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_the_source_and_its_tasks_end_running() {
    for g in RELAY_GENERATIONS {
        let (sim, c) = sim(g, 3).await;
        let url = sim.url();
        let dir = tempfile::tempdir().unwrap();
        let on = |w: &str| {
            config(
                &[source_yaml("a", &format!("    worker_name: {w}\n    relay: {{enabled: true}}\n"))],
                &[task_yaml("ta", "a")],
            )
        };
        let f = write(&dir, &on("worker1"));
        apply_ok(&url, &f, &format!("{g:?} create")).await;
        let f = write(&dir, &on("worker3"));
        let o = run(args(&["plan", "-f", &f, "--addr", &url]), vec![]).await;
        let (out, _) = text(&o);
        assert!(
            out.contains("moves from DM-worker worker1 to worker3 (transfer): DM pauses ta and resumes it on worker3"),
            "{g:?}: {out}"
        );
        assert!(out.contains("~ worker_name = \"worker1\" -> \"worker3\""), "{g:?}: {out}");
        let out = apply_ok(&url, &f, &format!("{g:?} transfer")).await;
        for (first, then) in [
            ("source.a: stop relay on worker1", "source.a: transfer to worker worker3"),
            ("source.a: transfer to worker worker3", "task.ta: wait until Running"),
            ("task.ta: wait until Running", "source.a: start relay on the bound worker"),
        ] {
            let (i, j) = (out.find(first), out.find(then));
            assert!(i.is_some() && j.is_some() && i < j, "{g:?}: `{first}` before `{then}`:\n{out}");
        }
        assert_eq!(bound_to(&c, "a").await.as_deref(), Some("worker3"), "{g:?}");
        assert_eq!(c.task_status("ta").await.unwrap()[0].stage, Stage::Running, "{g:?}");
        assert_eq!(relay_of(&c).await["a"], BTreeSet::from(["worker3".to_string()]), "{g:?}");
        assert!(refused(&sim.control().request_log()).is_empty(), "{g:?}");
        plan_is_empty(&url, &f, &format!("{g:?}")).await;
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_purge_refuses_without_relay_and_asks_like_apply() {
    let (sim, c) = sim(Generation::V854, 3).await;
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, &config(&[source_yaml("a", ""), source_yaml("b", "    relay: {enabled: true}\n")], &[]));
    apply_ok(&url, &f, "create").await;
    let purge = |s: &str, extra: &[&str]| {
        let mut v = args(&["relay", "purge", s, "--before", "mysql-bin.000002", "--addr", &url]);
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    sim.control().clear_log();
    let o = run(purge("a", &["--auto-approve"]), vec![]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("source `a` has no relay workers"), "{err}");
    assert!(err.contains("relay: {enabled: true}"), "the way out is named: {err}");
    let o = run(purge("ghost", &["--auto-approve"]), vec![]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("source `ghost` does not exist in DM"), "{}", text(&o).1);
    // Without a terminal and without --auto-approve nothing is sent.
    let o = run(purge("b", &[]), vec![]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("refusing to purge without approval"), "{err}");
    assert!(sim.control().request_log().iter().all(|r| !r.mutating), "nothing was sent");
    let o = run(purge("b", &["--auto-approve"]), vec![]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("Purged the relay logs of source b older than mysql-bin.000002 on worker"), "{err}");
    let log = sim.control().request_log();
    let sent: Vec<&LoggedRequest> = log.iter().filter(|r| r.mutating).collect();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].path, "/api/v1/sources/b/relay/purge");
    assert!(sent[0].body.as_deref().unwrap().contains("\"relay_binlog_name\":\"mysql-bin.000002\""));
    let _ = c;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_reports_a_stopped_relay_with_dms_error_in_text_json_and_prometheus() {
    let (sim, c) = sim(Generation::V854, 4).await;
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    // No task on b: with relay on a worker other than its bound one, DM could not report a task's status there
    // (R8.12), which drift reports on its own.
    let yaml = config(
        &[
            source_yaml("a", "    worker_name: worker1\n    relay: {enabled: true}\n"),
            source_yaml("b", "    worker_name: worker2\n    relay: {enabled: true, workers: [worker3]}\n"),
        ],
        &[task_yaml("ta", "a")],
    );
    let f = write(&dir, &yaml);
    apply_ok(&url, &f, "create").await;
    let o = run(args(&["drift", "-f", &f, "--addr", &url]), vec![]).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // Relay of a stopped by hand; relay of b paused on an error; a moved to another worker by hand.
    c.disable_relay("a", Some(&DisableRelayRequest { worker_name_list: Some(vec!["worker1".into()]) })).await.unwrap();
    sim.control().set_relay_error("worker3", Some("[code=30034:class=relay] binlog purged upstream")).unwrap();
    c.stop_task("ta", &Default::default()).await.unwrap();
    c.transfer_source("a", "worker4").await.unwrap();
    c.start_task("ta", &Default::default()).await.unwrap();
    let prom = dir.path().join("dm.prom");
    let p = prom.display().to_string();
    let o = run(args(&["drift", "-f", &f, "--addr", &url, "--prometheus-textfile", &p]), vec![]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(out.contains("Relay drift (relay does not run as declared): 2"), "{out}");
    assert!(out.contains("! source.b should have relay on worker3; observed worker3: Paused"), "{out}");
    assert!(out.contains("DM error on worker3: [code=30034:class=relay] binlog purged upstream"), "{out}");
    assert!(out.contains("! source.a should have relay on worker4; observed worker4: not relaying"), "{out}");
    assert!(out.contains("Binding drift (a source on another worker than declared): 1"), "{out}");
    assert!(out.contains("! source.a should have bound to worker1; observed bound to worker4"), "{out}");
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(metrics.contains("dm_apply_drift_resources{kind=\"relay\"} 2\n"), "{metrics}");
    assert!(metrics.contains("dm_apply_drift_resources{kind=\"binding\"} 1\n"), "{metrics}");
    assert!(metrics.contains("dm_apply_relay_running{source=\"b\",worker=\"worker3\"} 0\n"), "{metrics}");
    assert!(metrics.contains("dm_apply_relay_running{source=\"a\",worker=\"worker4\"} 0\n"), "{metrics}");
    let o = run(args(&["drift", "-f", &f, "--addr", &url, "-o", "json"]), vec![]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["counts"]["relay"], 2, "{v}");
    assert_eq!(v["counts"]["binding"], 1, "{v}");
    let b = v["relay"].as_array().unwrap().iter().find(|d| d["address"] == "source.b").unwrap();
    assert!(b["errors"][0].as_str().unwrap().contains("binlog purged upstream"), "{b}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_then_plan_is_empty_with_relay_and_explicit_bindings() {
    for g in Generation::ALL {
        let (sim, c) = sim(g, 5).await;
        let url = sim.url();
        let src = |n: &str| dm_apply::dm::types::Source {
            source_name: n.into(),
            host: format!("{n}.db.internal"),
            port: 3306,
            user: "dm".into(),
            password: Some(dm_apply::secret::Secret::new("pw")),
            enable: true,
            ..Default::default()
        };
        c.create_source(&src("a"), Some("worker2")).await.unwrap();
        c.create_source(&src("b"), Some("worker4")).await.unwrap();
        c.create_source(&src("plain"), Some("worker1")).await.unwrap();
        c.enable_relay("a", None).await.unwrap();
        let named = EnableRelayRequest {
            worker_name_list: Some(vec!["worker4".into(), "worker5".into()]),
            relay_dir: Some("relay-dir".into()),
            ..Default::default()
        };
        c.enable_relay("b", Some(&named)).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("imported.yaml");
        let o = run(args(&["import", "--addr", &url, "--out", &out.display().to_string()]), vec![]).await;
        assert_eq!(o.status.code(), Some(0), "{g:?}: {:?}", text(&o));
        let yaml = std::fs::read_to_string(&out).unwrap();
        assert!(yaml.contains("worker_name: worker2") && yaml.contains("worker_name: worker1"), "{g:?}: {yaml}");
        assert!(yaml.contains("relay:\n    enabled: true\n"), "{g:?}: {yaml}");
        assert!(yaml.contains("- worker4\n") && yaml.contains("- worker5\n"), "{g:?}: {yaml}");
        // The variables the file asks for.
        let env: Vec<(String, String)> = yaml
            .lines()
            .filter_map(|l| l.strip_prefix("#   "))
            .filter_map(|l| l.split_once(':').map(|(k, _)| (k.trim().to_string(), "pw".to_string())))
            .filter(|(k, _)| k.starts_with("DM_"))
            .collect();
        let o =
            run(args(&["plan", "-f", &out.display().to_string(), "--detailed-exitcode", "--addr", &url]), env).await;
        let (pout, perr) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{g:?}\n{yaml}\n{pout}\n{perr}");
        assert!(pout.contains("No changes."), "{g:?}: {pout}");
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_new_sources_than_free_workers_leaves_the_last_unbound_and_blocks_its_tasks() {
    let (sim, c) = sim(Generation::V854, 2).await;
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        &config(
            &[source_yaml("s1", ""), source_yaml("s2", ""), source_yaml("s3", "")],
            &[task_yaml("t1", "s1"), task_yaml("t2", "s2"), task_yaml("t3", "s3")],
        ),
    );
    let o = run(args(&["plan", "-f", &f, "--addr", &url]), vec![]).await;
    let (out, _) = text(&o);
    assert!(out.contains("1 new source(s) will stay unbound, for lack of a free DM-worker: s3"), "{out}");
    assert!(out.contains("# task.t3 will be created\n  # BLOCKED"), "{out}");
    assert!(out.contains("source s3 will not be bound to any DM-worker (none is free)"), "{out}");
    assert!(!out.contains("# task.t1 will be created\n  # BLOCKED"), "{out}");
    let o = run(args(&["apply", "-f", &f, "--auto-approve", "--addr", &url]), vec![]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("still deferred or blocked: task.t3"), "{err}");
    assert!(refused(&sim.control().request_log()).is_empty(), "{:#?}", refused(&sim.control().request_log()));
    assert_eq!(bound_to(&c, "s3").await, None, "s3 was created last and found no worker");
    assert!(bound_to(&c, "s1").await.is_some() && bound_to(&c, "s2").await.is_some());
    assert!(c.get_task("t3", false).await.unwrap().is_none());
    for t in ["t1", "t2"] {
        assert_eq!(c.task_status(t).await.unwrap()[0].stage, Stage::Running);
    }
    // Still blocked while s3 has no worker: a change, not actionable.
    let o = run(args(&["plan", "-f", &f, "--addr", &url, "--detailed-exitcode"]), vec![]).await;
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("source s3 is not bound to any DM-worker"), "{out}");
    sim.shutdown().await;
}
