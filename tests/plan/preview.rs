//! The replication preview of `dm-apply plan` (docs/plan.md "Preview"), through the CLI binary against the
//! simulator over HTTP: which tables a change starts and stops replicating, its warnings, case handling as DM
//! matches names, the cross-check with DM's migrate targets, and what it costs in requests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::plan_common::*;
use dm_apply::dm::DmClient;
use dm_apply::dm::types::{OperateTableStructureRequest, Stage, StopTaskRequest};
use dm_apply::plan::testing::desired_from_yaml;
use dm_apply::sim::{Generation, SimServer};

const SOURCES: &str = "sources:
  - {source_name: s1, host: mysql-01.db, port: 3306, user: u, password: pw}
  - {source_name: s2, host: mysql-02.db, port: 3306, user: u, password: pw}
  - {source_name: ci, host: lower-case-03.db, port: 3306, user: u, password: pw}
";

/// One incremental task over `sources` with `rules` (YAML list items, indented by 6) and `extra` task keys.
fn task(name: &str, sources: &[&str], rules: &str, extra: &str) -> String {
    let conf: Vec<String> = sources
        .iter()
        .map(|s| format!("        - {{source_name: {s}, binlog_name: mysql-bin.000001, binlog_pos: 4}}\n"))
        .collect();
    format!(
        "  - name: {name}\n    task_mode: incremental\n    target_config: {{host: tidb, port: 4000, user: root, password: tpw}}\n{extra}    table_migrate_rule:\n{rules}    source_config:\n      source_conf:\n{}    stage: running\n",
        conf.concat()
    )
}

fn config(tasks: &[String]) -> String {
    format!("{SOURCES}tasks:\n{}", tasks.concat())
}

fn catalog(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    entries.iter().map(|(s, t)| (s.to_string(), t.iter().map(|x| x.to_string()).collect())).collect()
}

struct Env {
    sim: SimServer,
    client: DmClient,
    dir: tempfile::TempDir,
}

impl Env {
    /// A simulator with the three sources and their upstream catalogs, and `initial` applied by hand.
    async fn new(initial: &str) -> Env {
        let (sim, client) = start(Generation::V854).await;
        let ctl = sim.control();
        ctl.set_catalog(
            "s1",
            catalog(&[
                ("shop", &["orders", "order_items", "customers"]),
                ("crm", &["accounts", "leads"]),
                ("mysql", &["user"]),
            ]),
        );
        ctl.set_catalog("s2", catalog(&[("shop", &["orders", "refunds"]), ("Billing", &["Invoices", "invoices"])]));
        ctl.set_catalog("ci", catalog(&[("Shop", &["Orders", "Items"]), ("crm", &["accounts"])]));
        let d = desired_from_yaml("dm.yaml", initial).unwrap();
        apply_by_hand(&client, &d).await;
        Env { sim, client, dir: tempfile::tempdir().unwrap() }
    }

    fn write(&self, yaml: &str) -> String {
        let p: PathBuf = self.dir.path().join("dm.yaml");
        std::fs::write(&p, yaml).unwrap();
        p.display().to_string()
    }

    /// `plan -o json` of `yaml`: the JSON, and the simulator's request paths of that run.
    async fn plan_json(&self, yaml: &str, extra: &[&str]) -> (Value, Vec<String>) {
        let f = self.write(yaml);
        self.sim.control().clear_log();
        let mut args = s(&["plan", "-f", &f, "--addr", &self.sim.url(), "-o", "json"]);
        args.extend(extra.iter().map(|x| x.to_string()));
        let (code, out, err) = run(args).await;
        assert_eq!(code, 0, "{err}");
        let paths = self.sim.control().request_log().iter().map(|r| r.path.clone()).collect();
        (serde_json::from_str(&out).unwrap(), paths)
    }

    async fn plan_text(&self, yaml: &str, format: &str) -> String {
        let f = self.write(yaml);
        let (code, out, err) = run(s(&["plan", "-f", &f, "--addr", &self.sim.url(), "-o", format])).await;
        assert_eq!(code, 0, "{err}");
        out
    }
}

fn task_preview<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["preview"]["tasks"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["address"] == format!("task.{name}")))
        .unwrap_or_else(|| panic!("no preview for task.{name}: {v:#}"))
}

fn source<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["sources"].as_array().and_then(|a| a.iter().find(|s| s["source"] == name)).unwrap()
}

/// `schema.table -> target_schema.target_table` of a table list.
fn listed(list: &Value) -> BTreeSet<String> {
    list["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}.{} -> {}.{}",
                m["schema"].as_str().unwrap(),
                m["table"].as_str().unwrap(),
                m["target"]["schema"].as_str().unwrap(),
                m["target"]["table"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn warnings(t: &Value) -> Vec<(String, String)> {
    t["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["kind"].as_str().unwrap().to_string(), w["message"].as_str().unwrap().to_string()))
        .collect()
}

fn has_warning(t: &Value, kind: &str) -> bool {
    warnings(t).iter().any(|(k, _)| k == kind)
}

fn rule(source: &str, schema: &str, table: &str) -> String {
    format!("      - source: {{source_name: {source}, schema: \"{schema}\", table: \"{table}\"}}\n")
}

fn routed(source: &str, schema: &str, table: &str, ts: &str, tt: &str) -> String {
    format!(
        "      - source: {{source_name: {source}, schema: \"{schema}\", table: \"{table}\"}}\n        target: {{schema: {ts}, table: \"{tt}\"}}\n"
    )
}

/// What DM (the simulator) migrates for a subtask, as `schema.table -> target`.
async fn dm_targets(client: &DmClient, task: &str, source: &str) -> BTreeSet<String> {
    client
        .migrate_targets(task, source, None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| format!("{}.{} -> {}.{}", m.source_schema, m.source_table, m.target_schema, m.target_table))
        .collect()
}

async fn wait_running(client: &DmClient, task: &str) {
    for _ in 0..400 {
        let st = client.task_status(task).await.unwrap();
        if !st.is_empty() && st.iter().all(|s| s.stage == Stage::Running) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{task} did not run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_change_shows_exactly_the_tables_it_adds_and_removes() {
    let before = config(&[task("t", &["s1"], &rule("s1", "shop", "order*"), "")]);
    let env = Env::new(&before).await;
    let after =
        config(&[task("t", &["s1"], &format!("{}{}", rule("s1", "shop", "cust*"), rule("s1", "crm", "*")), "")]);
    let (v, paths) = env.plan_json(&after, &[]).await;
    assert_eq!(v["format_version"], "1.3");
    let t = task_preview(&v, "t");
    assert_eq!(t["action"], "update");
    let s1 = source(t, "s1");
    assert_eq!(
        listed(&s1["starts"]),
        set(&["crm.accounts -> crm.accounts", "crm.leads -> crm.leads", "shop.customers -> shop.customers"])
    );
    assert_eq!(listed(&s1["stops"]), set(&["shop.order_items -> shop.order_items", "shop.orders -> shop.orders"]));
    assert_eq!((t["starts"].as_u64(), t["stops"].as_u64(), t["reroutes"].as_u64()), (Some(3), Some(2), Some(0)));
    assert_eq!((s1["before"].as_u64(), s1["after"].as_u64()), (Some(2), Some(3)));
    assert_eq!(s1["complete"], true);
    // The "before" side agrees with what DM says the running task migrates.
    assert_eq!(s1["cross_check"]["status"], "agrees", "{s1:#}");
    assert_eq!(s1["cross_check"]["dm_tables"], 2);
    assert!(warnings(t).is_empty(), "{:?}", warnings(t));
    // One schema list, one table list per schema the rules reach (shop, crm; never the system schema), one
    // migrate-targets read.
    let schema_reads: Vec<&String> =
        paths.iter().filter(|p| p.contains("/schemas") || p.contains("migrate_targets")).collect();
    assert_eq!(
        schema_reads.iter().map(|p| p.as_str()).collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "/api/v1/sources/s1/schemas",
            "/api/v1/sources/s1/schemas/crm",
            "/api/v1/sources/s1/schemas/shop",
            "/api/v1/tasks/t/sources/s1/migrate_targets"
        ])
    );
    assert_eq!(schema_reads.len(), 4, "{paths:?}");
    assert_eq!(v["preview"]["requests"], 4);

    // Text: the headline and the lists; markdown: a section with collapsed lists.
    let text = env.plan_text(&after, "text").await;
    assert!(text.contains("# task.t (update): starts replicating 3 tables, stops 2 tables (2 -> 3 tables)"), "{text}");
    assert!(text.contains("+ crm.leads -> crm.leads") && text.contains("- shop.orders -> shop.orders"), "{text}");
    assert!(text.contains("DM's migrate_targets agree"), "{text}");
    assert!(text.trim_end().ends_with("Plan: 0 to add, 1 to change, 0 to destroy."), "{text}");
    let md = env.plan_text(&after, "markdown").await;
    assert!(md.contains("#### Replication preview") && md.contains("<details><summary>task.t from source s1"), "{md}");
    assert!(md.contains("| + | `crm.leads` | `crm.leads` |"), "{md}");
    assert_eq!(md.matches("Replication preview").count(), 1, "shown once, not again in the plan details: {md}");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_plan_sends_no_preview_request_and_drift_never_does() {
    let yaml = config(&[task("t", &["s1"], &rule("s1", "shop", "*"), "")]);
    let env = Env::new(&yaml).await;
    let (v, paths) = env.plan_json(&yaml, &[]).await;
    assert_eq!(v["has_changes"], false);
    assert_eq!(v["preview"], Value::Null);
    assert!(!paths.iter().any(|p| p.contains("/schemas") || p.contains("migrate_targets")), "{paths:?}");
    assert!(paths.len() <= 7, "the plan's constant budget: {paths:?}");
    // A change, with --no-preview: no schema request either.
    let changed = config(&[task("t", &["s1"], &rule("s1", "crm", "*"), "")]);
    let (v, paths) = env.plan_json(&changed, &["--no-preview"]).await;
    assert_eq!(v["has_changes"], true);
    assert_eq!(v["preview"], Value::Null);
    assert!(!paths.iter().any(|p| p.contains("/schemas") || p.contains("migrate_targets")), "{paths:?}");
    // drift with the same change: its constant request count, no preview.
    let f = env.write(&changed);
    env.sim.control().clear_log();
    let (code, _, err) = run(s(&["drift", "-f", &f, "--addr", &env.sim.url()])).await;
    assert_eq!(code, 2, "{err}");
    let log = env.sim.control().request_log();
    assert!(!log.iter().any(|r| r.path.contains("/schemas") || r.path.contains("migrate_targets")), "{log:?}");
    assert!(log.len() <= 7, "{log:?}");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_tables_into_one_target_without_shard_mode_warns() {
    let env = Env::new(&format!("{SOURCES}tasks: []\n")).await;
    let rules = format!(
        "{}{}",
        routed("s1", "shop", "order*", "all", "orders"),
        routed("s2", "shop", "orders", "all", "orders")
    );
    let (v, _) = env.plan_json(&config(&[task("m", &["s1", "s2"], &rules, "")]), &[]).await;
    let t = task_preview(&v, "m");
    assert_eq!(t["action"], "create");
    assert_eq!(
        listed(&source(t, "s1")["starts"]),
        set(&["shop.order_items -> all.orders", "shop.orders -> all.orders"])
    );
    assert_eq!(listed(&source(t, "s2")["starts"]), set(&["shop.orders -> all.orders"]));
    let merge: Vec<_> = warnings(t).into_iter().filter(|(k, _)| k == "route-merge").collect();
    assert_eq!(merge.len(), 1, "{:?}", warnings(t));
    assert!(
        merge[0].1.starts_with("1 target table receives several upstream tables")
            && merge[0].1.contains("all.orders <- `s1:shop.order_items`, `s1:shop.orders`, `s2:shop.orders`"),
        "{merge:?}"
    );
    assert!(source(t, "s1").get("cross_check").is_none(), "a created task has nothing to check against");
    // With shard mode the merge is intended: no warning.
    let (v, _) =
        env.plan_json(&config(&[task("m", &["s1", "s2"], &rules, "    shard_mode: pessimistic\n")]), &[]).await;
    assert!(!has_warning(task_preview(&v, "m"), "route-merge"), "{v:#}");
    // Table-level routes win over schema-level ones; two on one level: DM keeps the name, and the plan says so.
    // (The schema rule and the table rules also form both allow lists: `customers` matches no table rule.)
    let rules = format!(
        "{}{}{}",
        routed("s1", "shop", "", "all", ""),
        routed("s1", "shop", "orders", "one", "o"),
        routed("s1", "shop", "ord*", "two", "o")
    );
    let (v, _) = env.plan_json(&config(&[task("r", &["s1"], &rules, "")]), &[]).await;
    let t = task_preview(&v, "r");
    assert_eq!(listed(&source(t, "s1")["starts"]), set(&["shop.order_items -> two.o", "shop.orders -> shop.orders"]));
    assert!(has_warning(t, "route-ambiguous"), "{:?}", warnings(t));
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_that_match_nothing_or_select_nothing_warn() {
    let env = Env::new(&format!("{SOURCES}tasks: []\n")).await;
    let rules = format!("{}{}", rule("s1", "shop", "nope*"), rule("s1", "mysql", "*"));
    let (v, _) = env.plan_json(&config(&[task("nothing", &["s1"], &rules, "")]), &[]).await;
    let t = task_preview(&v, "nothing");
    let w = warnings(t);
    assert!(w.iter().any(|(k, m)| k == "rule-matches-nothing" && m.contains("`shop.nope*`")), "{w:?}");
    assert!(w.iter().any(|(k, m)| k == "rule-matches-nothing" && m.contains("system schemas")), "{w:?}");
    assert!(w.iter().any(|(k, _)| k == "replicates-nothing"), "{w:?}");
    // A schema rule and a table rule of another schema on one source: DM replicates only tables matching both.
    let rules = format!("{}{}", rule("s1", "shop", ""), rule("s1", "crm", "accounts"));
    let (v, _) = env.plan_json(&config(&[task("nothing", &["s1"], &rules, "")]), &[]).await;
    let t = task_preview(&v, "nothing");
    assert_eq!(t["after"], 0);
    let w = warnings(t);
    assert!(w.iter().filter(|(k, _)| k == "rule-has-no-effect").count() == 2, "{w:?}");
    // The text output shows the warnings with the task.
    let text = env.plan_text(&config(&[task("nothing", &["s1"], &rules, "")]), "text").await;
    assert!(
        text.contains("Warning (rule-has-no-effect): rule `shop` of source s1 matches 3 upstream tables"),
        "{text}"
    );
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_handling_matches_dm_on_case_sensitive_and_case_insensitive_upstreams() {
    let env = Env::new(&format!("{SOURCES}tasks: []\n")).await;
    // s2 is case-sensitive (upper-case names prove it); `ci`'s host makes it case-insensitive.
    let rules = format!("{}{}", rule("s2", "Billing", "Invoices"), rule("ci", "Shop", "Orders"));
    let yaml = config(&[task("c", &["s2", "ci"], &rules, "")]);
    let (v, _) = env.plan_json(&yaml, &[]).await;
    let t = task_preview(&v, "c");
    let (s2, ci) = (source(t, "s2"), source(t, "ci"));
    assert_eq!(s2["case"], "sensitive");
    assert_eq!(listed(&s2["starts"]), set(&["Billing.Invoices -> Billing.Invoices"]));
    assert_eq!(ci["case"], "assumed-insensitive");
    assert_eq!(
        listed(&ci["starts"]),
        set(&["shop.orders -> shop.orders"]),
        "lower_case_table_names=1 lists lower case"
    );
    let w = warnings(t);
    assert!(w.iter().any(|(k, m)| k == "case-only-difference" && m.contains("`Shop.Orders`")), "{w:?}");
    assert!(!w.iter().any(|(k, _)| k == "rule-matches-nothing"), "{w:?}");

    // After apply, DM migrates exactly what the preview said.
    let f = env.write(&yaml);
    let (code, _, err) = run(s(&["apply", "-f", &f, "--addr", &env.sim.url(), "--auto-approve"])).await;
    assert_eq!(code, 0, "{err}");
    wait_running(&env.client, "c").await;
    assert_eq!(dm_targets(&env.client, "c", "s2").await, listed(&s2["starts"]));
    assert_eq!(dm_targets(&env.client, "c", "ci").await, listed(&ci["starts"]));

    // A lower-case pattern on the case-sensitive upstream is not its upper-case schema; the hint says so.
    let rules = format!("{}{}", rule("s2", "billing", "*"), rule("ci", "Shop", "Orders"));
    let (v, _) = env.plan_json(&config(&[task("c", &["s2", "ci"], &rules, "")]), &[]).await;
    let t = task_preview(&v, "c");
    assert_eq!(source(t, "s2")["after"], 0);
    assert_eq!(listed(&source(t, "s2")["stops"]), set(&["Billing.Invoices -> Billing.Invoices"]));
    let w = warnings(t);
    assert!(
        w.iter().any(|(k, m)| k == "rule-matches-nothing"
            && m.contains("ignoring case it would match `Billing.Invoices`, `Billing.invoices`")),
        "{w:?}"
    );
    assert!(w.iter().any(|(k, _)| k == "drops-all-tables"), "{w:?}");
    // The existing task's "before" agrees with DM on both upstreams.
    assert_eq!(source(t, "s2")["cross_check"]["status"], "agrees");
    assert_eq!(source(t, "ci")["cross_check"]["status"], "agrees");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disagreement_with_migrate_targets_is_shown_with_both_lists() {
    let yaml = config(&[task("t", &["s1"], &rule("s1", "shop", "order*"), "")]);
    let env = Env::new(&yaml).await;
    // DM's schema tracker learns a table the rules do not allow when its structure is set (operate-schema), and
    // then lists it: what DM reports is no longer what dm-apply computes from the rules.
    env.client.stop_task("t", &StopTaskRequest::default()).await.unwrap();
    for _ in 0..400 {
        if env.client.task_status("t").await.unwrap().iter().all(|s| s.stage == Stage::Paused) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let req = OperateTableStructureRequest {
        sql_content: Some("CREATE TABLE ghost (id INT PRIMARY KEY)".into()),
        flush: Some(true),
        sync: Some(false),
        ..Default::default()
    };
    env.client.put_table_structure("t", "s1", "crm", "ghost", &req).await.unwrap();
    let changed = config(&[task("t", &["s1"], &rule("s1", "shop", "*"), "")]);
    let (v, _) = env.plan_json(&changed, &[]).await;
    let t = task_preview(&v, "t");
    let cc = &source(t, "s1")["cross_check"];
    assert_eq!(cc["status"], "disagrees", "{cc:#}");
    assert_eq!(listed(&cc["only_in_dm"]), set(&["crm.ghost -> crm.ghost"]));
    assert_eq!(cc["only_in_dm_apply"]["count"], 0);
    assert!(has_warning(t, "model-disagrees"), "{:?}", warnings(t));
    let text = env.plan_text(&changed, "text").await;
    assert!(text.contains("DM's migrate_targets DISAGREE"), "{text}");
    assert!(text.contains("only in DM's list (dm-apply computes them as not replicated):"), "{text}");
    assert!(text.contains("? crm.ghost -> crm.ghost"), "{text}");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upstream_is_read_within_the_caps_and_the_preview_says_it_was_truncated() {
    let env = Env::new(&format!("{SOURCES}tasks: []\n")).await;
    let big: BTreeMap<String, Vec<String>> =
        (0..70).map(|i| (format!("db{i:02}"), vec!["t1".to_string(), "t2".to_string()])).collect();
    env.sim.control().set_catalog("s1", big);
    let (v, paths) = env.plan_json(&config(&[task("big", &["s1"], &rule("s1", "db*", ""), "")]), &[]).await;
    let p = &v["preview"];
    assert_eq!(p["truncated"], true);
    assert!(p["notes"][0].as_str().unwrap().contains("preview truncated"), "{p:#}");
    let t = task_preview(&v, "big");
    assert_eq!(source(t, "s1")["complete"], false);
    assert_eq!(t["after"], 100, "50 schemas read, 2 tables each");
    let reads = paths.iter().filter(|p| p.contains("/schemas")).count();
    assert_eq!(reads, 51, "one schema list and 50 table lists");
    assert_eq!(p["requests"], 51);
    // Nothing can be said about rules matching nothing when lists are missing.
    assert!(!has_warning(t, "rule-matches-nothing"));
    env.sim.shutdown().await;
}
