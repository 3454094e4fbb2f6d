//! Saved plans through the real binary against the simulator: `apply --plan` executes only what was reviewed
//! (edited files, stage changes and other clusters are refused before any mutating request), works from another
//! directory with the recorded address, and `show` renders a saved plan exactly as `plan` printed it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dm_apply::dm::types::Stage;
use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::sim::{Generation, SimOptions, SimServer};
use serde_json::{Value, json};

const SOURCE_PW: &str = "saved-source-pw-0x5eed";
const TARGET_PW: &str = "saved-target-pw-0xf00d";

fn task(name: &str, threads: u32, extra: &str) -> String {
    format!(
        r#"
  - name: {name}
    task_mode: incremental
    target_config: {{host: tidb.internal, port: 4000, user: root, password: "${{env:DM_TARGET_PASSWORD}}"}}
    table_migrate_rule: [{{source: {{source_name: s1, schema: {name}, table: "*"}}}}]
    source_config:
      incr_migrate_conf: {{repl_threads: {threads}, repl_batch: 100}}
      source_conf: [{{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}}]
    stage: running{extra}"#
    )
}

/// Three running tasks on one source; `t-keep` has `prevent_destroy`. `threads` is `t-upd`'s `repl_threads`.
fn config(threads: u32) -> String {
    format!(
        "sources:\n  - {{source_name: s1, host: h1.internal, port: 3306, user: u, password: \
         \"${{env:DM_SOURCE_PASSWORD}}\"}}\ntasks:{}{}{}\n",
        task("t-keep", 16, "\n    lifecycle: {prevent_destroy: true}"),
        task("t-other", 16, ""),
        task("t-upd", threads, ""),
    )
}

fn bin(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    c.current_dir(cwd)
        .stdin(Stdio::null())
        .env_remove("DM_APPLY_ADDR")
        .env_remove("DM_APPLY_STATE_KEY")
        .env_remove("DM_APPLY_STATE_KEY_FILE")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "error")
        .env("DM_SOURCE_PASSWORD", SOURCE_PW)
        .env("DM_TARGET_PASSWORD", TARGET_PW);
    c
}

/// Run the binary in `cwd`, off the async runtime (the simulator runs on it).
async fn run(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let cwd = cwd.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let o: Output =
        tokio::task::spawn_blocking(move || bin(&cwd).args(&args).output().expect("binary runs")).await.expect("join");
    let (out, err) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(!out.contains(SOURCE_PW) && !err.contains(SOURCE_PW) && !err.contains(TARGET_PW), "a password leaked");
    (o.status.code().unwrap_or(-1), out, err)
}

/// A simulator and a configuration directory `<dir>/dm` applied with `repl_threads: 16`, then changed to 32:
/// `plan.json` (made in `dir`, `-f dm`) updates `task.t-upd` and nothing else.
struct World {
    sim: SimServer,
    client: DmClient,
    dir: tempfile::TempDir,
}

impl World {
    async fn new(generation: Generation, seed: u64) -> World {
        let sim = SimServer::start(SimOptions {
            generation,
            seed: Some(seed),
            stage_delay: Duration::from_millis(5),
            ..SimOptions::default()
        })
        .await
        .expect("simulator");
        let client = DmClient::new(&ClientOptions::new(sim.url())).expect("client");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("dm")).unwrap();
        let w = World { sim, client, dir };
        w.write_config(16);
        let (code, out, err) = run(w.path(), &["apply", "-f", "dm", "--auto-approve", "--addr", &w.url()]).await;
        assert_eq!(code, 0, "{out}\n{err}");
        w.write_config(32);
        let (code, out, err) = run(w.path(), &["plan", "-f", "dm", "--out", "plan.json", "--addr", &w.url()]).await;
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{out}");
        w
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> String {
        self.sim.url()
    }

    fn write_config(&self, threads: u32) {
        std::fs::write(self.path().join("dm/dm.yaml"), config(threads)).unwrap();
    }

    fn saved(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.path().join("plan.json")).unwrap()).unwrap()
    }

    /// Write an edited copy of plan.json; returns its path.
    fn edited(&self, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let mut v = self.saved();
        edit(&mut v);
        let p = self.path().join(name);
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        p
    }

    /// Mutating requests the simulator received since the last call.
    fn mutations(&self) -> Vec<String> {
        let log = self.sim.control().request_log();
        self.sim.control().clear_log();
        log.iter().filter(|r| r.mutating).map(|r| format!("{} {}", r.method, r.path)).collect()
    }

    /// The live digest a plan would record for a task (what an editor of the file can compute too).
    async fn task_digest(&self, name: &str) -> String {
        let live = dm_apply::live::fetch(&self.client).await.unwrap();
        dm_apply::plan::planner::task_digest(&live.tasks[name].task, &live.version)
    }

    async fn stages(&self, name: &str) -> Vec<Stage> {
        self.client.task_status(name).await.unwrap().into_iter().map(|s| s.stage).collect()
    }
}

fn changes(v: &mut Value) -> &mut Vec<Value> {
    v["plan"]["changes"].as_array_mut().expect("plan.changes")
}

fn delete_of(address: &str, digest: &str) -> Value {
    json!({
        "address": address,
        "action": "delete",
        "reasons": ["not in the configuration, and --prune deletes undeclared resources"],
        "impact": {"kind": "destroy", "drops_checkpoints": true},
        "live_digest": digest,
    })
}

/// How an edit changes a saved plan's JSON, given the live digests of `t-other` and `t-keep`.
type Edit = fn(&mut Value, &str, &str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_saved_plans_are_refused_before_any_change() {
    let edits: [(&str, Edit, &[&str]); 4] = [
        ("a change removed", |v, _, _| changes(v).retain(|c| c["address"] != "task.t-upd"), &["task.t-upd"]),
        (
            "a delete added",
            |v, other, _| {
                v["plan"]["prune"] = json!(true);
                v["options"]["prune"] = json!(true);
                changes(v).push(delete_of("task.t-other", other));
            },
            &["--prune"],
        ),
        (
            "a delete of a prevent_destroy task added",
            |v, _, keep| {
                v["plan"]["prune"] = json!(true);
                changes(v).push(delete_of("task.t-keep", keep));
            },
            &["task.t-keep"],
        ),
        (
            "an update turned into a restarting replace",
            |v, _, _| {
                v["options"]["allow_restart"] = json!(true);
                for c in changes(v).iter_mut().filter(|c| c["address"] == "task.t-upd") {
                    c["action"] = json!("replace");
                    c["impact"] = json!({"kind": "replace", "restarts_migration": true, "keep_meta": false});
                }
            },
            &["task.t-upd", "delete, create"],
        ),
    ];
    for (i, (what, edit, needles)) in edits.into_iter().enumerate() {
        // A world per edit: an edit that got through must not hide what the next one does.
        let w = World::new(Generation::V854, 20 + i as u64).await;
        let (other, keep) = (w.task_digest("t-other").await, w.task_digest("t-keep").await);
        let f = w.edited("edited.json", |v| edit(v, &other, &keep)).display().to_string();
        w.mutations();
        let (code, out, err) = run(w.path(), &["apply", "--plan", &f, "--addr", &w.url()]).await;
        assert_eq!(code, 1, "{what}: the edited plan was applied\n{out}\n{err}");
        assert!(err.contains("not what was reviewed") || err.contains("--prune"), "{what}: unclear message\n{err}");
        for n in needles {
            assert!(err.contains(n), "{what}: the message does not name `{n}`\n{err}");
        }
        assert_eq!(w.mutations(), Vec::<String>::new(), "{what}: DM was changed");
        // Even with every flag its options claim, the file is not what the configuration gives.
        let (code, _, err) =
            run(w.path(), &["apply", "--plan", &f, "--prune", "--allow-restart", "--addr", &w.url()]).await;
        assert_eq!(code, 1, "{what} with flags: {err}");
        assert!(err.contains("not what was reviewed") || err.contains("--prune"), "{what}: {err}");
        assert_eq!(w.mutations(), Vec::<String>::new(), "{what} with flags: DM was changed");
        // The file as written applies, exactly: one task updated, every task still running.
        let (code, out, err) = run(w.path(), &["apply", "--plan", "plan.json", "--addr", &w.url()]).await;
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("Apply complete! Resources: 0 added, 1 changed, 0 destroyed."), "{out}");
        for t in ["t-keep", "t-other", "t-upd"] {
            assert!(w.stages(t).await.iter().all(|s| *s == Stage::Running), "{t}");
        }
        w.sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_stopped_after_planning_makes_the_saved_plan_stale() {
    let w = World::new(Generation::V854, 12).await;
    // An operator stops the task on purpose after the plan was reviewed.
    w.client.stop_task("t-upd", &Default::default()).await.unwrap();
    for _ in 0..400 {
        if w.stages("t-upd").await.iter().all(|s| *s == Stage::Paused) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w.mutations();
    let (code, out, err) = run(w.path(), &["apply", "--plan", "plan.json", "--addr", &w.url()]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("stale"), "{err}");
    assert!(err.contains("task.t-upd") && err.contains("Running") && err.contains("Paused"), "{err}");
    assert_eq!(w.mutations(), Vec::<String>::new(), "DM was changed");
    assert!(w.stages("t-upd").await.iter().all(|s| *s == Stage::Paused), "the stopped task was started");
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_plan_works_from_another_directory_with_the_recorded_address() {
    let w = World::new(Generation::V854, 13).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let plan = w.path().join("plan.json").display().to_string();

    // Another directory holding another `dm/`: the current directory comes first, and its configuration is not the
    // one the plan was made from.
    std::fs::create_dir(elsewhere.path().join("dm")).unwrap();
    std::fs::write(elsewhere.path().join("dm/dm.yaml"), config(64)).unwrap();
    w.mutations();
    let (code, out, err) = run(elsewhere.path(), &["apply", "--plan", &plan, "--use-plan-addr"]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("configuration changed") && err.contains("dm"), "{err}");
    // `-f` naming another configuration: refused as well.
    let (code, _, err) = run(elsewhere.path(), &["apply", "--plan", &plan, "-f", "dm", "--use-plan-addr"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("configuration changed"), "{err}");
    assert_eq!(w.mutations(), Vec::<String>::new(), "DM was changed");
    std::fs::remove_dir_all(elsewhere.path().join("dm")).unwrap();

    // No `dm/` here: the directory the plan was made in is used. No address given: refused, naming the recorded
    // one (a plan file can be edited, and the address decides where passwords go)...
    let (code, out, err) = run(elsewhere.path(), &["apply", "--plan", &plan]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains(&w.url()) && err.contains("--use-plan-addr"), "{err}");
    assert_eq!(w.mutations(), Vec::<String>::new(), "DM was changed");
    // ...and used when asked for (no --addr, no DM_APPLY_ADDR; the default address would reach nothing).
    let (code, out, err) = run(elsewhere.path(), &["apply", "--plan", &plan, "--use-plan-addr"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Apply complete! Resources: 0 added, 1 changed, 0 destroyed."), "{out}");
    assert!(err.contains(&w.url()), "the address used is said\n{err}");
    assert!(err.contains("Verified: a new plan shows no changes."), "{err}");

    // `-f` pointing at the configuration explicitly works too.
    w.write_config(48);
    let (code, out, err) = run(w.path(), &["plan", "-f", "dm", "--out", "plan2.json", "--addr", &w.url()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let plan2 = w.path().join("plan2.json").display().to_string();
    let cfg = w.path().join("dm").display().to_string();
    let (code, out, err) = run(elsewhere.path(), &["apply", "--plan", &plan2, "-f", &cfg, "--use-plan-addr"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Apply complete! Resources: 0 added, 1 changed, 0 destroyed."), "{out}");
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_address_of_another_cluster_is_refused() {
    let w = World::new(Generation::V854, 14).await;
    // Another cluster in the same state (same configuration applied), another cluster id.
    let other = SimServer::start(SimOptions { seed: Some(99), ..SimOptions::default() }).await.unwrap();
    let cfg_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(cfg_dir.path().join("dm")).unwrap();
    std::fs::write(cfg_dir.path().join("dm/dm.yaml"), config(16)).unwrap();
    let (code, out, err) = run(cfg_dir.path(), &["apply", "-f", "dm", "--auto-approve", "--addr", &other.url()]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    other.control().clear_log();
    w.mutations();
    let (code, out, err) = run(w.path(), &["apply", "--plan", "plan.json", "--addr", &other.url()]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("another DM cluster") && err.contains(&other.url()), "{err}");
    // DM_APPLY_ADDR counts as explicit too.
    let o = tokio::task::spawn_blocking({
        let (cwd, url) = (w.path().to_path_buf(), other.url());
        move || bin(&cwd).args(["apply", "--plan", "plan.json"]).env("DM_APPLY_ADDR", url).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another DM cluster"));
    assert!(other.control().request_log().iter().all(|r| !r.mutating), "the other cluster was changed");
    assert_eq!(w.mutations(), Vec::<String>::new(), "the planned cluster was changed");
    other.shutdown().await;
    w.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prints_a_saved_plan_exactly_as_plan_did() {
    let w = World::new(Generation::V854, 15).await;
    let empty = SimServer::start(SimOptions { workers: 6, seed: Some(5), ..SimOptions::default() }).await.unwrap();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let cases: Vec<(&Path, Vec<&str>, String)> = vec![
        (w.path(), vec!["-f", "dm"], w.url()),
        (Path::new(env!("CARGO_MANIFEST_DIR")), vec!["-f", examples], empty.url()),
    ];
    for (cwd, files, url) in &cases {
        for (format, color) in [("text", "never"), ("text", "always"), ("markdown", "never"), ("json", "never")] {
            let saved = w.path().join(format!("show-{format}-{color}.json")).display().to_string();
            let mut plan_args = vec!["plan", "-o", format, "--color", color, "--out", &saved, "--addr", url];
            plan_args.extend(files.iter().copied());
            let (code, planned, err) = run(cwd, &plan_args).await;
            assert_eq!(code, 0, "{err}");
            // Offline: another directory, no address, no secrets.
            let o = tokio::task::spawn_blocking({
                let saved = saved.clone();
                let args = ["show", saved.as_str(), "-o", format, "--color", color].map(String::from);
                move || {
                    Command::new(env!("CARGO_BIN_EXE_dm-apply"))
                        .current_dir(std::env::temp_dir())
                        .env_clear()
                        .env("DM_APPLY_ADDR", "http://127.0.0.1:9")
                        .args(args)
                        .output()
                        .unwrap()
                }
            })
            .await
            .unwrap();
            let shown = String::from_utf8_lossy(&o.stdout);
            assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(shown, planned, "show -o {format} --color {color} differs from plan");
        }
    }
    // Not a saved plan: an error, exit 1.
    let (code, _, err) = run(w.path(), &["show", "dm/dm.yaml"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a dm-apply saved plan"), "{err}");
    empty.shutdown().await;
    w.sim.shutdown().await;
}
